// Package storetest fills token stores with realistic generated worlds for
// tests and benchmarks: organizations with repositories, users with
// memberships, classic and fine-grained tokens with approval grants.
package storetest

import (
	"context"
	"fmt"
	"time"

	"github.com/opa-pat/opa-pat/plugin/store"
	"github.com/opa-pat/opa-pat/plugin/token"
)

// Shape of a generated world.
const (
	TokensPerUser = 4
	UsersPerOrg   = 250
	ReposPerOrg   = 20
	// Enterprise is the enterprise of every tenth user (managed users).
	Enterprise = "ent-0"
	// SampleSize is how many raw tokens of each kind Populate returns.
	SampleSize = 1000
)

// Sample is a generated token whose raw form is known.
type Sample struct {
	Raw   string
	ID    int64
	Kind  string
	User  string
	Org   string // the user's organization (the FG token's resource owner)
	Grant string // the FG token's grant state; "" for classic tokens
	Repo  string // a private repository of Org the token may reach
}

// World is what Populate generated.
type World struct {
	Tokens, Users, Orgs int
	Classic             []Sample
	FineGrained         []Sample
}

// OrgName, UserName and RepoName name generated records.
func OrgName(i int) string  { return fmt.Sprintf("org-%d", i) }
func UserName(i int) string { return fmt.Sprintf("user-%d", i) }
func RepoName(i int) string { return fmt.Sprintf("repo-%d", i) }

// Populate inserts n tokens into an empty store in one transaction: n/4
// users, one organization per 250 users (every 50th user an owner, every
// 10th a managed user of Enterprise), 20 repositories per organization
// (private, internal, public in turn), alternately classic tokens (scopes
// repo, workflow) and fine-grained tokens for the user's organization
// (3 selected repositories, contents write, issues read, metadata read;
// grants: 8 in 10 approved, 1 pending, 1 denied), all created a day before
// now and expiring 29 days after now. It returns up to SampleSize raw
// tokens of each kind.
func Populate(ctx context.Context, db *store.DB, n int, now time.Time) (*World, error) {
	return PopulateSamples(ctx, db, n, now, SampleSize)
}

// PopulateSamples is Populate returning up to samples raw tokens of each
// kind (every generated token when samples >= n/2).
func PopulateSamples(ctx context.Context, db *store.DB, n int, now time.Time, samples int) (*World, error) {
	users := max(1, (n+TokensPerUser-1)/TokensPerUser)
	orgs := max(1, (users+UsersPerOrg-1)/UsersPerOrg)
	w := &World{Tokens: n, Users: users, Orgs: orgs}
	created, expires := now.Add(-24*time.Hour).UTC(), now.Add(29*24*time.Hour).UTC()
	err := db.BulkInsert(ctx, func(b *store.BulkWriter) error {
		for o := range orgs {
			for r := range ReposPerOrg {
				vis := [...]string{"private", "internal", "public"}[r%3]
				if err := b.Repository(store.Repository{Owner: OrgName(o), Name: RepoName(r), Visibility: vis}); err != nil {
					return err
				}
			}
		}
		for u := range users {
			user := store.User{Login: UserName(u)}
			if u%10 == 9 {
				user.ManagedBy = Enterprise
			}
			if err := b.User(user); err != nil {
				return err
			}
			role := "member"
			if u%50 == 0 {
				role = "owner"
			}
			if err := b.Membership(store.Membership{User: user.Login, Org: OrgName(u % orgs), Role: role}); err != nil {
				return err
			}
		}
		for i := range n {
			u := i / TokensPerUser
			org := OrgName(u % orgs)
			kind := store.KindClassic
			if i%2 == 1 {
				kind = store.KindFineGrained
			}
			raw, err := token.Generate(kind, token.DefaultPrefixes)
			if err != nil {
				return err
			}
			t := store.Token{Hash: token.Hash(raw), Name: fmt.Sprintf("token-%d", i), Kind: kind, User: UserName(u), CreatedAt: created, ExpiresAt: expires}
			s := Sample{Raw: raw, Kind: kind, User: t.User, Org: org, Repo: RepoName((i / 2 % 7) * 3)}
			if kind == store.KindClassic {
				t.Scopes = []string{"repo", "workflow"}
			} else {
				r := i / 2 % 7 * 3 // a private repository (index divisible by 3), and two more
				t.ResourceOwner, t.RepositorySelection = org, "selected"
				t.Repositories = []string{RepoName(r), RepoName(r + 1), RepoName(r + 2)}
				t.Permissions = map[string]string{"contents": "write", "issues": "read", "metadata": "read"}
			}
			if t.ID, err = b.Token(t); err != nil {
				return err
			}
			s.ID = t.ID
			if kind == store.KindFineGrained {
				g := store.Grant{TokenID: t.ID, Org: org, State: store.GrantApproved, Reviewer: "owner", CreatedAt: created, UpdatedAt: created}
				switch i / 2 % 10 {
				case 8:
					g.State, g.Reviewer = store.GrantPending, ""
				case 9:
					g.State = store.GrantDenied
				}
				if _, err := b.Grant(g); err != nil {
					return err
				}
				s.Grant = g.State
				if len(w.FineGrained) < samples {
					w.FineGrained = append(w.FineGrained, s)
				}
			} else if len(w.Classic) < samples {
				w.Classic = append(w.Classic, s)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("populating the store with %d tokens: %w", n, err)
	}
	return w, nil
}
