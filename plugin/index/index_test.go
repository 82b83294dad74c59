package index

import (
	"sync"
	"testing"
	"time"

	"github.com/opa-pat/opa-pat/plugin/store"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func hashOf(i int) [32]byte {
	var h [32]byte
	h[0], h[1], h[2] = byte(i), byte(i>>8), byte(i>>16)
	return h
}

func fg(id int, user string) store.Token {
	return store.Token{ID: int64(id), Hash: hashOf(id), Name: "ci", Kind: store.KindFineGrained, User: user,
		ResourceOwner: "octo-org", RepositorySelection: "selected", Repositories: []string{"app", "lib"},
		Permissions: map[string]string{"contents": "write"}, CreatedAt: t0}
}

func TestSharing(t *testing.T) {
	x := New()
	x.PutToken(fg(1, "bob"))
	x.PutToken(fg(2, "bob"))
	other := fg(3, "eve")
	other.Repositories = []string{"lib", "app"} // same set, other order
	x.PutToken(other)
	revoked := fg(4, "bob")
	revoked.Revoked = true
	x.PutToken(revoked)

	a, _ := x.Token(hashOf(1))
	b, _ := x.Token(hashOf(2))
	c, _ := x.Token(hashOf(3))
	d, _ := x.Token(hashOf(4))
	if a.Shape != b.Shape || a.Shape != c.Shape {
		t.Fatal("tokens with the same kind, owner, selection, repositories and permissions do not share a shape")
	}
	if a.User != b.User {
		t.Fatal("the same user is not interned")
	}
	if d.Shape == a.Shape || !d.Shape.Revoked || a.Shape.Revoked {
		t.Fatal("a revoked token shares the shape of a live one")
	}
	if d.Shape.Repositories != a.Shape.Repositories || d.Shape.PermissionsTerm != a.Shape.PermissionsTerm {
		t.Fatal("shapes that differ only in revoked do not share their sets")
	}
	if got, want := a.Shape.Permissions, map[string]string{"contents": "write", "metadata": "read"}; len(got) != 2 || got["contents"] != want["contents"] || got["metadata"] != want["metadata"] {
		t.Fatalf("permissions = %v; want %v", got, want)
	}
}

func TestPutAndDelete(t *testing.T) {
	x := New()
	x.PutUser(store.User{Login: "bob"})
	x.PutMembership(store.Membership{User: "bob", Org: "octo-org", Role: "member"})
	x.PutRepository(store.Repository{Owner: "octo-org", Name: "app", Visibility: "private"})
	x.PutToken(fg(1, "bob"))
	x.PutGrant(store.Grant{ID: 9, TokenID: 1, Org: "octo-org", State: store.GrantPending, UpdatedAt: t0})
	if got, want := x.Counts(), (Counts{Tokens: 1, Grants: 1, Memberships: 1, Users: 1, Repositories: 1}); got != want {
		t.Fatalf("counts = %+v; want %+v", got, want)
	}

	// A change replaces the record.
	x.PutMembership(store.Membership{User: "bob", Org: "octo-org", Role: "owner"})
	if r, ok := x.Role("bob", "octo-org"); !ok || r.S != "owner" {
		t.Fatalf("role = %v, %v; want owner", r, ok)
	}
	x.PutGrant(store.Grant{ID: 9, TokenID: 1, Org: "octo-org", State: store.GrantApproved, Reviewer: "alice", UpdatedAt: t0})
	if g, ok := x.Grant(1, "octo-org"); !ok || g.State.S != "approved" || g.Reviewer.S != "alice" {
		t.Fatalf("grant = %+v, %v; want approved by alice", g, ok)
	}

	x.DeleteUser("bob")
	x.DeleteMembership("bob", "octo-org")
	x.DeleteRepository("octo-org", "app")
	x.DeleteToken(1)
	x.DeleteGrant(1, "octo-org")
	if got := x.Counts(); got != (Counts{}) {
		t.Fatalf("counts after deleting everything = %+v", got)
	}
}

// TestConcurrentReadsAndWrites runs under -race in CI: readers never see
// a torn record while the writer replaces records.
func TestConcurrentReadsAndWrites(t *testing.T) {
	x := New()
	for i := range 1000 {
		x.PutToken(fg(i, "bob"))
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				tok, ok := x.Token(hashOf(i % 1000))
				if !ok || tok.ID != int64(i%1000) || tok.Shape == nil || tok.User == nil {
					t.Errorf("token %d: %+v, %v", i%1000, tok, ok)
					return
				}
			}
		})
	}
	for i := range 5000 {
		tok := fg(i%1000, "eve")
		tok.Revoked = i%2 == 0
		x.PutToken(tok)
	}
	close(stop)
	wg.Wait()
}

// BenchmarkLookup measures Token lookups from parallel readers, alone and
// while one writer replaces records as fast as it can (far above any real
// change rate): readers wait at most for one map assignment on one of 64
// shards.
func BenchmarkLookup(b *testing.B) {
	const n = 100_000
	x := New()
	for i := range n {
		x.PutToken(fg(i, "bob"))
	}
	for _, writing := range []bool{false, true} {
		b.Run(map[bool]string{false: "readers only", true: "with a writer"}[writing], func(b *testing.B) {
			stop := make(chan struct{})
			var wg sync.WaitGroup
			if writing {
				wg.Go(func() {
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						tok := fg(i%n, "eve")
						tok.Revoked = i%2 == 0
						x.PutToken(tok)
					}
				})
			}
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if _, ok := x.Token(hashOf(i % n)); !ok {
						b.Error("token not found")
						return
					}
					i += 7
				}
			})
			close(stop)
			wg.Wait()
		})
	}
}
