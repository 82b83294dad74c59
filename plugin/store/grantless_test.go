package store

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// Where approval is disabled, a fine-grained token aimed at an organization
// reaches it without a grant (SEMANTICS.md rule 20): ListOrgGrants lists it
// with Grantless, and RevokeAccess with Grantless revokes it by recording a
// revoked grant, with its audit event and change, on both backends.
func TestGrantlessTokens(t *testing.T) { adminBackends(t, testGrantlessTokens) }

func testGrantlessTokens(t *testing.T, location string) {
	db := openAt(t, location)
	ctx := t.Context()
	now := time.Now().UTC()
	ids := map[string]int64{}
	for i, tc := range []struct {
		name, kind, user, owner string
		created, expires        time.Duration // from now
		revoked                 bool
		grant                   string
	}{
		{name: "live", kind: KindFineGrained, user: "bob", owner: "acme-labs", created: -3 * time.Hour, expires: time.Hour},
		{name: "other-case", kind: KindFineGrained, user: "carol", owner: "Acme-Labs", created: -2 * time.Hour, expires: time.Hour},
		{name: "no-expiry", kind: KindFineGrained, user: "bob", owner: "acme-labs", created: -time.Hour},
		{name: "expired", kind: KindFineGrained, user: "bob", owner: "acme-labs", created: -4 * time.Hour, expires: -time.Minute},
		{name: "revoked", kind: KindFineGrained, user: "bob", owner: "acme-labs", created: -4 * time.Hour, expires: time.Hour, revoked: true},
		{name: "own", kind: KindFineGrained, user: "bob", owner: "bob", created: -4 * time.Hour, expires: time.Hour},
		{name: "other-org", kind: KindFineGrained, user: "bob", owner: "octo-org", created: -4 * time.Hour, expires: time.Hour},
		{name: "classic", kind: KindClassic, user: "bob", created: -4 * time.Hour, expires: time.Hour},
		{name: "approved", kind: KindFineGrained, user: "bob", owner: "acme-labs", created: -5 * time.Hour, expires: time.Hour, grant: GrantApproved},
		{name: "pending", kind: KindFineGrained, user: "bob", owner: "acme-labs", created: -5 * time.Hour, expires: time.Hour, grant: GrantPending},
	} {
		var h [32]byte
		h[0], h[1] = byte(i+1), 0xee
		tok := Token{Hash: h, Name: tc.name, Kind: tc.kind, User: tc.user, CreatedAt: now.Add(tc.created), Revoked: tc.revoked}
		if tc.expires != 0 {
			tok.ExpiresAt = now.Add(tc.expires)
		}
		if tc.kind == KindFineGrained {
			tok.ResourceOwner, tok.RepositorySelection = tc.owner, "all"
			tok.Permissions = map[string]string{"contents": "write"}
		} else {
			tok.Scopes = []string{"repo"}
		}
		if tc.expires < 0 {
			tok.ExpiresAt = tok.CreatedAt.Add(time.Hour) // expired: created 4h ago for 1h
		}
		created, _, err := db.CreateToken(ctx, CreateTokenParams{Token: tok, GrantState: tc.grant})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		ids[tc.name] = created.ID
	}
	list := func(t *testing.T, f OrgGrantFilter) ([]string, int) {
		t.Helper()
		f.Org, f.LiveTokens = "acme-labs", true
		rows, total, err := db.ListOrgGrants(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		got := []string{}
		for _, r := range rows {
			got = append(got, r.Token.Name+"/"+r.Grant.State)
			if r.Grant.State == NoGrant && (r.Grant.ID != 0 || r.Grant.Org != "acme-labs" || r.Grant.TokenID != r.Token.ID || !r.Grant.CreatedAt.Equal(r.Token.CreatedAt)) {
				t.Errorf("a row without a grant: %+v", r.Grant)
			}
		}
		return got, total
	}
	for _, tc := range []struct {
		note  string
		f     OrgGrantFilter
		want  []string
		total int
	}{
		{note: "without Grantless: the grants only", f: OrgGrantFilter{}, want: []string{"pending/pending", "approved/approved"}, total: 2},
		{note: "approved and the tokens without a grant, newest first", f: OrgGrantFilter{State: GrantApproved, Grantless: true},
			want: []string{"no-expiry/none", "other-case/none", "live/none", "approved/approved"}, total: 4},
		{note: "oldest first", f: OrgGrantFilter{State: GrantApproved, Grantless: true, Ascending: true},
			want: []string{"approved/approved", "live/none", "other-case/none", "no-expiry/none"}, total: 4},
		{note: "every state", f: OrgGrantFilter{Grantless: true}, want: []string{"no-expiry/none", "other-case/none", "live/none", "pending/pending", "approved/approved"}, total: 5},
		{note: "only those without a grant", f: OrgGrantFilter{NoGrants: true, Grantless: true}, want: []string{"no-expiry/none", "other-case/none", "live/none"}, total: 3},
		{note: "paged", f: OrgGrantFilter{Grantless: true, Page: 2, PerPage: 2}, want: []string{"live/none", "pending/pending"}, total: 5},
		{note: "filters apply", f: OrgGrantFilter{Grantless: true, Owners: []string{"CAROL"}}, want: []string{"other-case/none"}, total: 1},
		{note: "token ids", f: OrgGrantFilter{Grantless: true, TokenIDs: []int64{ids["live"], ids["approved"], ids["expired"]}}, want: []string{"live/none", "approved/approved"}, total: 2},
		{note: "permission", f: OrgGrantFilter{Grantless: true, Permission: "issues"}, want: []string{}, total: 0},
		{note: "repository", f: OrgGrantFilter{Grantless: true, State: GrantApproved, Repository: "research"}, want: []string{"no-expiry/none", "other-case/none", "live/none", "approved/approved"}, total: 4},
	} {
		t.Run(tc.note, func(t *testing.T) {
			got, total := list(t, tc.f)
			if !reflect.DeepEqual(got, tc.want) || total != tc.total {
				t.Fatalf("got %v (%d), want %v (%d)", got, total, tc.want, tc.total)
			}
		})
	}

	// Revoking: only what reaches the organization without a grant, with
	// Grantless; the others as before.
	for _, tc := range []struct {
		note      string
		ids       []int64
		grantless bool
		kind      error
		err       string
	}{
		{"without Grantless", []int64{ids["live"]}, false, ErrNotFound, fmt.Sprintf("no grant for token %d in acme-labs", ids["live"])},
		{"expired", []int64{ids["expired"]}, true, ErrNotFound, fmt.Sprintf("no grant for token %d in acme-labs", ids["expired"])},
		{"a token of another organization", []int64{ids["other-org"], ids["own"], ids["classic"]}, true, ErrNotFound,
			fmt.Sprintf("no grant for tokens %d, %d, %d in acme-labs", ids["other-org"], ids["own"], ids["classic"])},
		{"revoked", []int64{ids["revoked"]}, true, ErrInvalidState, fmt.Sprintf("token %d is revoked; nothing to revoke", ids["revoked"])},
		{"all or none", []int64{ids["live"], ids["pending"]}, true, ErrInvalidState, fmt.Sprintf("only approved grants can be revoked: token %d is not approved in acme-labs", ids["pending"])},
	} {
		t.Run("revoke: "+tc.note, func(t *testing.T) {
			_, err := db.RevokeAccess(ctx, RevokeParams{Org: "acme-labs", TokenIDs: tc.ids, Actor: "alice", Grantless: tc.grantless})
			if !errors.Is(err, tc.kind) || err.Error() != tc.err {
				t.Fatalf("err = %v\nwant %s", err, tc.err)
			}
		})
	}
	before, err := db.ListAudit(ctx, AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var m Mark
	if _, err := db.Load(ctx, Visitor{Mark: func(x Mark) { m = x }}); err != nil {
		t.Fatal(err)
	}
	gs, err := db.RevokeAccess(ctx, RevokeParams{Org: "acme-labs", TokenIDs: []int64{ids["live"], ids["approved"]}, Actor: "alice", Reason: "offboarding", Grantless: true})
	if err != nil || len(gs) != 2 || gs[0].ID == 0 || gs[0].State != GrantRevoked || gs[0].Reviewer != "alice" || gs[0].ReviewReason != "offboarding" ||
		gs[0].Org != "acme-labs" || gs[1].State != GrantRevoked {
		t.Fatalf("RevokeAccess: %+v %v", gs, err)
	}
	g, ok, err := db.Grant(ctx, ids["live"], "acme-labs")
	if err != nil || !ok || g.ID != gs[0].ID || g.State != GrantRevoked || g.ReviewReason != "offboarding" || g.Reviewer != "alice" {
		t.Fatalf("the recorded grant: %+v %v %v", g, ok, err)
	}
	changes, err := db.ChangesSince(ctx, m, 100)
	if err != nil {
		t.Fatal(err)
	}
	logged := map[string]bool{}
	for _, c := range changes {
		logged[c.Entity+" "+c.Key] = true
	}
	for _, id := range []int64{ids["live"], ids["approved"]} {
		if !logged[EntityGrant+" "+grantKey(id, "acme-labs")] {
			t.Errorf("no change logged for the grant of token %d: %+v", id, changes)
		}
	}
	after, err := db.ListAudit(ctx, AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before)+2 {
		t.Fatalf("%d audit events, want %d", len(after), len(before)+2)
	}
	var recorded AuditEvent
	for _, e := range after {
		if e.TokenID == ids["live"] && e.Action == ActionGrantRevoke {
			recorded = e
		}
	}
	if recorded.Action != ActionGrantRevoke || recorded.Actor != "alice" || recorded.Org != "acme-labs" || recorded.RequestID != gs[0].ID ||
		recorded.Reason != "offboarding" || recorded.Details["had_grant"] != false {
		t.Fatalf("the audit event: %+v", recorded)
	}
	// The token has a grant now: a revoked one, listed as such (its request
	// is the newest).
	got, total := list(t, OrgGrantFilter{Grantless: true})
	if want := []string{"live/revoked", "no-expiry/none", "other-case/none", "pending/pending", "approved/revoked"}; !reflect.DeepEqual(got, want) || total != 5 {
		t.Fatalf("after the revocation: %v (%d), want %v", got, total, want)
	}
}
