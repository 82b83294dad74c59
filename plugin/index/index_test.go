package index

import (
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/open-policy-agent/opa/v1/ast"

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

// TestConcurrentGrowth reads while the writer adds tokens of new users
// (the tables rehash and their record slices move, the user table grows by
// chunks), renames tokens (the name arenas grow and are compacted) and
// deletes them: a reader finds a token whole, with its own user and name,
// or not at all. Run with -race.
func TestConcurrentGrowth(t *testing.T) {
	x := New()
	const n = 6000
	name := func(id, gen int) string { return fmt.Sprintf("token-%d-%d-%s", id, gen, strings.Repeat("x", id%40)) }
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for r := range 3 {
		wg.Go(func() {
			for i := r; ; i += 7 {
				select {
				case <-stop:
					return
				default:
				}
				id := i % n
				tok, ok := x.Token(hashOf(id))
				if !ok {
					continue
				}
				if tok.ID != int64(id) || tok.User == nil || tok.User.S != fmt.Sprintf("user-%d", id) ||
					!strings.HasPrefix(tok.Name, fmt.Sprintf("token-%d-", id)) || tok.Shape == nil {
					t.Errorf("token %d read as %+v", id, tok)
					return
				}
			}
		})
	}
	for gen := range 4 {
		for id := range n {
			tok := fg(id, fmt.Sprintf("user-%d", id))
			tok.Name = name(id, gen)
			x.PutToken(tok)
			if gen == 2 && id%3 == 0 {
				x.DeleteToken(int64(id))
			}
		}
	}
	close(stop)
	wg.Wait()
	if got := x.Counts().Tokens; got != n {
		t.Fatalf("%d tokens; want %d", got, n)
	}
	for id := range n {
		if tok, ok := x.Token(hashOf(id)); !ok || tok.Name != name(id, 3) {
			t.Fatalf("token %d: %+v, %v; want the last name %q", id, tok, ok, name(id, 3))
		}
	}
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

// Names are compared without regard to case, as GitHub compares them: a
// record stored as Octo-Org answers for octo-org and OCTO-ORG, and a delete
// under another spelling removes it.
func TestNamesIgnoreCase(t *testing.T) {
	x := New()
	x.PutUser(store.User{Login: "Bob", ManagedBy: "acme"})
	x.PutMembership(store.Membership{User: "Bob", Org: "Octo-Org", Role: "owner"})
	x.PutRepository(store.Repository{Owner: "Octo-Org", Name: "App", Visibility: "internal"})
	x.PutGrant(store.Grant{ID: 9, TokenID: 3, Org: "Octo-Org", State: store.GrantApproved})

	for _, tc := range []struct{ note, user, org, repo string }{
		{note: "lower case", user: "bob", org: "octo-org", repo: "app"},
		{note: "as stored", user: "Bob", org: "Octo-Org", repo: "App"},
		{note: "upper case", user: "BOB", org: "OCTO-ORG", repo: "APP"},
	} {
		t.Run(tc.note, func(t *testing.T) {
			if u, ok := x.User(tc.user); !ok || u.ManagedBy != "acme" {
				t.Fatalf("User(%q) = %v, %v; want managed by acme", tc.user, u, ok)
			}
			if r, ok := x.Role(tc.user, tc.org); !ok || r.S != "owner" {
				t.Fatalf("Role(%q, %q) = %v, %v; want owner", tc.user, tc.org, r, ok)
			}
			if r, ok := x.Repository(tc.org, tc.repo); !ok || r.Visibility != "internal" {
				t.Fatalf("Repository(%q, %q) = %v, %v; want internal", tc.org, tc.repo, r, ok)
			}
			if g, ok := x.Grant(3, tc.org); !ok || g.ID != 9 {
				t.Fatalf("Grant(3, %q) = %v, %v; want request 9", tc.org, g, ok)
			}
		})
	}

	x.DeleteMembership("BOB", "octo-org")
	if _, ok := x.Role("Bob", "Octo-Org"); ok {
		t.Fatal("membership still present after deleting it under another spelling")
	}
}

func TestFoldDoesNotAllocateForLowerCase(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _ = fold("octo-org") }); n != 0 {
		t.Fatalf("fold allocated %v times for a lower-case name", n)
	}
	if got := fold("Octo-Org"); got != "octo-org" {
		t.Fatalf("fold(Octo-Org) = %q", got)
	}
}

// A token's resource owner and repositories are matched against lower-case
// names, so the index keeps them folded.
func TestTokenReachIsFolded(t *testing.T) {
	x := New()
	h := [32]byte{1}
	x.PutToken(store.Token{ID: 1, Hash: h, Kind: store.KindFineGrained, User: "Bob", ResourceOwner: "Octo-Org",
		RepositorySelection: "selected", Repositories: []string{"App", "docs"}})
	tok, ok := x.Token(h)
	if !ok {
		t.Fatal("token not found")
	}
	if got := tok.Shape.ResourceOwner.S; got != "octo-org" {
		t.Fatalf("resource owner = %q, want octo-org", got)
	}
	if got := tok.Shape.Repositories.Items; !slices.Equal(got, []string{"app", "docs"}) {
		t.Fatalf("repositories = %q, want [app docs]", got)
	}
}

// openStore opens a real store in a file of the test's own.
func openStore(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "pat.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestLoadKeepsTheCurrentGrant loads a real store in which a token was
// denied in an organization and then requested again: the index must hold
// the new, pending request, whichever way the store passes the history,
// and no reason with it: the denial's reason is the old request's, and the
// new one's justification is no reviewer's reason.
func TestLoadKeepsTheCurrentGrant(t *testing.T) {
	ctx := t.Context()
	db := openStore(t)
	// A request again needs a member (rule 10).
	if _, err := db.Import(ctx, &store.Dump{Memberships: []store.DumpMembership{{User: "bob", Org: "octo-org", Role: "member"}}}, "test"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.CreateToken(ctx, store.CreateTokenParams{Token: fg(1, "bob"), GrantState: store.GrantPending, Justification: "first"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Review(ctx, store.ReviewParams{Org: "octo-org", IDs: []int64{1}, Actor: "alice", Reason: "no"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.RequestAgain(ctx, store.RequestAgainParams{TokenID: 1, Org: "octo-org", Actor: "bob", Justification: "second"}); err != nil {
		t.Fatal(err)
	}
	x := New()
	if err := x.Load(ctx, db); err != nil {
		t.Fatal(err)
	}
	g, ok := x.Grant(1, "octo-org")
	if !ok || g.ID != 2 || g.State.S != store.GrantPending || g.Reason != "" {
		t.Fatalf("Grant(1, octo-org) = %+v, %v; want request 2, pending, no reason", g, ok)
	}
	tok, ok := x.Token(hashOf(1))
	if !ok || tok.ID != 1 || tok.Name != "ci" || tok.User.S != "bob" || tok.Shape.Kind != store.KindFineGrained {
		t.Fatalf("Token = %+v, %v", tok, ok)
	}
}

// TestLoadShapes loads tokens that differ in one shared field each from a
// real store: a load finds shapes by the identity of the store's shared
// values, and must still tell every difference apart and share what is equal.
func TestLoadShapes(t *testing.T) {
	ctx := t.Context()
	db := openStore(t)
	tokens := map[string]store.Token{"base": fg(1, "bob"), "same": fg(2, "eve")}
	revoked := fg(3, "bob")
	revoked.Revoked = true
	perms := fg(4, "bob")
	perms.Permissions = map[string]string{"contents": "read"}
	repos := fg(5, "bob")
	repos.Repositories = []string{"app"}
	owner := fg(6, "bob")
	owner.ResourceOwner = "other-org"
	classic := store.Token{ID: 7, Hash: hashOf(7), Name: "ci", Kind: store.KindClassic, User: "bob", Scopes: []string{"repo"}, CreatedAt: t0}
	for k, tok := range map[string]store.Token{"revoked": revoked, "perms": perms, "repos": repos, "owner": owner, "classic": classic} {
		tokens[k] = tok
	}
	for _, tok := range tokens {
		p := store.CreateTokenParams{Token: tok}
		if tok.Kind == store.KindFineGrained {
			p.GrantState = store.GrantApproved
		}
		if _, _, err := db.CreateToken(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	x := New()
	if err := x.Load(ctx, db); err != nil {
		t.Fatal(err)
	}
	shapes := map[string]*Shape{}
	for k, tok := range tokens {
		got, ok := x.Token(tok.Hash)
		if !ok {
			t.Fatalf("%s: not found", k)
		}
		shapes[k] = got.Shape
	}
	if shapes["base"] != shapes["same"] {
		t.Error("two tokens with equal shared fields do not share a shape")
	}
	for _, k := range []string{"revoked", "perms", "repos", "owner", "classic"} {
		if shapes[k] == shapes["base"] {
			t.Errorf("%s: shares the shape of a token that differs from it", k)
		}
	}
	if !shapes["revoked"].Revoked || shapes["perms"].Permissions["contents"] != "read" ||
		!slices.Equal(shapes["repos"].Repositories.Items, []string{"app"}) || shapes["owner"].ResourceOwner.S != "other-org" ||
		!slices.Equal(shapes["classic"].Scopes.Items, []string{"repo"}) {
		t.Errorf("shapes: %+v", shapes)
	}
}

// TestGrantRecords: a grant keeps its reason, reviewer and times through
// the pointer-free record; a change drops a reason it no longer has; a
// record whose organization is not the one asked for (two names whose
// hashes meet) does not answer; and neither the grants' keys nor their
// records hold a pointer, which is what keeps them out of the collector's
// scan.
func TestGrantRecords(t *testing.T) {
	x := New()
	t0 := time.Unix(1767225600, 0)
	x.PutGrant(store.Grant{ID: 7, TokenID: 1, Org: "Octo-Org", State: store.GrantDenied, Reason: "no CI tokens", ReviewReason: "no CI tokens", Reviewer: "erin", UpdatedAt: t0})
	g, ok := x.Grant(1, "octo-org")
	if !ok || g.ID != 7 || g.State.S != "denied" || g.Reason != "no CI tokens" || g.Reviewer == nil || g.Reviewer.S != "erin" || g.UpdatedAtNs != t0.UnixNano() {
		t.Fatalf("Grant = %+v, %v", g, ok)
	}
	x.PutGrant(store.Grant{ID: 8, TokenID: 1, Org: "octo-org", State: store.GrantPending, UpdatedAt: t0})
	if g, ok := x.Grant(1, "OCTO-ORG"); !ok || g.ID != 8 || g.Reason != "" || g.Reviewer != nil {
		t.Fatalf("after a new request without reason: %+v, %v", g, ok)
	}
	if n := x.t.Load().reasons.len(); n != 0 {
		t.Fatalf("%d reasons kept for grants without one", n)
	}
	if _, ok := x.Grant(1, "other-org"); ok {
		t.Fatal("a grant answered for another organization")
	}
	if _, ok := x.Grant(2, "octo-org"); ok {
		t.Fatal("a grant answered for another token")
	}

	// A record filed under the hash of one name but made for another.
	tb := x.t.Load()
	tb.writeMu.Lock()
	other := tb.sym("other-org")
	tb.writeMu.Unlock()
	tb.grants.put(grantKey{5, nameHash("octo-org")}, grantRec{id: 1, org: other.ref, state: other.ref})
	if g, ok := x.Grant(5, "octo-org"); ok {
		t.Fatalf("a record for other-org answered for octo-org: %+v", g)
	}

	x.PutGrant(store.Grant{ID: 9, TokenID: 3, Org: "octo-org", State: store.GrantDenied, Reason: "again", ReviewReason: "again", UpdatedAt: t0})
	x.DeleteGrant(3, "Octo-Org")
	if _, ok := x.Grant(3, "octo-org"); ok || tb.reasons.len() != 0 {
		t.Fatalf("after DeleteGrant: found %v, %d reasons kept", ok, tb.reasons.len())
	}

	for _, typ := range []reflect.Type{reflect.TypeFor[grantKey](), reflect.TypeFor[grantRec]()} {
		if hasPointers(typ) {
			t.Errorf("%s holds pointers: the collector would scan every grant", typ)
		}
	}
}

// TestUserAndMembershipRecords: users and memberships round-trip through
// their pointer-free records, whatever the case they are asked in; a record
// whose names are not the ones asked for does not answer; deletes remove;
// and neither keys nor records hold a pointer.
func TestUserAndMembershipRecords(t *testing.T) {
	x := New()
	x.PutUser(store.User{Login: "Mona", ManagedBy: "acme"})
	x.PutUser(store.User{Login: "bob"})
	x.PutMembership(store.Membership{User: "Mona", Org: "Octo-Org", Role: "admin"})
	for _, login := range []string{"Mona", "mona", "MONA"} {
		u, ok := x.User(login)
		if !ok || u.Login != "Mona" || u.ManagedBy != "acme" || u.login == nil || u.login.S != "Mona" || u.managedBy == nil || u.managedBy.S != "acme" {
			t.Fatalf("User(%q) = %+v, %v", login, u, ok)
		}
	}
	if u, ok := x.User("bob"); !ok || u.ManagedBy != "" || u.managedBy != nil {
		t.Fatalf("User(bob) = %+v, %v; want no managing enterprise", u, ok)
	}
	if a, b := mustUser(t, x, "mona"), mustUser(t, x, "Mona"); a != b {
		t.Fatalf("two lookups of one user differ: %+v, %+v", a, b)
	}
	if r, ok := x.Role("mona", "octo-org"); !ok || r.S != "admin" {
		t.Fatalf("Role(mona, octo-org) = %v, %v", r, ok)
	}
	for _, q := range [][2]string{{"bob", "octo-org"}, {"mona", "other-org"}, {"octo-org", "mona"}} {
		if r, ok := x.Role(q[0], q[1]); ok {
			t.Fatalf("Role(%q, %q) = %v; want none", q[0], q[1], r.S)
		}
	}

	// Records filed under the hashes of names they were not made for.
	tb := x.t.Load()
	tb.writeMu.Lock()
	eve, org, role := tb.sym("eve"), tb.sym("octo-org"), tb.sym("admin")
	tb.writeMu.Unlock()
	tb.users.put(nameHash("zed"), userRec{login: eve.ref, folded: eve.ref})
	tb.memberships.put(memberKey{nameHash("zed"), nameHash("octo-org")}, memberRec{user: eve.ref, org: org.ref, role: role.ref})
	if u, ok := x.User("zed"); ok {
		t.Fatalf("a record for eve answered for zed: %+v", u)
	}
	if r, ok := x.Role("zed", "octo-org"); ok {
		t.Fatalf("a membership of eve answered for zed: %v", r.S)
	}

	x.DeleteMembership("MONA", "octo-org")
	x.DeleteUser("mona")
	if _, ok := x.Role("mona", "octo-org"); ok {
		t.Fatal("the membership outlived DeleteMembership")
	}
	if _, ok := x.User("Mona"); ok {
		t.Fatal("the user outlived DeleteUser")
	}

	for _, typ := range []reflect.Type{reflect.TypeFor[userRec](), reflect.TypeFor[memberKey](), reflect.TypeFor[memberRec]()} {
		if hasPointers(typ) {
			t.Errorf("%s holds pointers: the collector would scan every record", typ)
		}
	}
}

func mustUser(t *testing.T, x *Index, login string) User {
	t.Helper()
	u, ok := x.User(login)
	if !ok {
		t.Fatalf("no user %q", login)
	}
	return u
}

func hasPointers(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.String, reflect.Slice, reflect.Map, reflect.Interface, reflect.Chan, reflect.Func, reflect.UnsafePointer:
		return true
	case reflect.Struct:
		for i := range t.NumField() {
			if hasPointers(t.Field(i).Type) {
				return true
			}
		}
	case reflect.Array:
		return t.Len() > 0 && hasPointers(t.Elem())
	}
	return false
}

// TestSymbolText: interned names are copies (a buffer the caller reuses
// does not change them), they stay intact as later names fill one slab and
// begin the next, and a long name is kept whole.
func TestSymbolText(t *testing.T) {
	x := newTables()
	buf := make([]byte, 0, 64)
	var syms []*Sym
	var want []string
	long := strings.Repeat("l", symSlab)
	x.writeMu.Lock()
	for i := range 20_000 { // about 3.5 slabs of text
		buf = fmt.Appendf(buf[:0], "user-%06d", i)
		name := unsafe.String(&buf[0], len(buf)) // aliases buf, which the next round overwrites
		if i == 7_000 {
			name = long
		}
		syms = append(syms, x.sym(name))
		want = append(want, strings.Clone(name))
	}
	x.writeMu.Unlock()
	for i, y := range syms {
		if y.S != want[i] || string(y.Term.Value.(ast.String)) != want[i] {
			t.Fatalf("symbol %d: %q (term %v), want %q", i, y.S, y.Term, want[i])
		}
		if y != x.symRefs.at(y.ref) {
			t.Fatalf("symbol %d: its number names another symbol", i)
		}
	}
	if n := len(x.syms); n != 20_000 {
		t.Fatalf("%d symbols interned, want 20000", n)
	}
}

// Two names whose hashes meet: the second is interned apart and found
// again, and neither answers for the other. The interning table itself
// holds no pointers for the collector.
func TestSymbolClash(t *testing.T) {
	x := newTables()
	x.writeMu.Lock()
	defer x.writeMu.Unlock()
	a := x.sym("octo-org")
	x.syms[nameHash("acme")] = a.ref // as if "acme" hashed where "octo-org" is
	b := x.sym("acme")
	if b == a || b.S != "acme" || string(b.Term.Value.(ast.String)) != "acme" {
		t.Fatalf("acme interned as %q (%p, octo-org %p)", b.S, b, a)
	}
	if again := x.sym("acme"); again != b {
		t.Fatal("acme interned twice")
	}
	if again := x.sym("octo-org"); again != a {
		t.Fatal("octo-org interned twice")
	}
	if len(x.symClashes) != 1 || x.symRefs.at(x.symClashes["acme"]) != b {
		t.Fatalf("clashes: %v", x.symClashes)
	}
	typ := reflect.TypeOf(x.syms)
	if hasPointers(typ.Key()) || hasPointers(typ.Elem()) {
		t.Fatalf("%v holds pointers", typ)
	}
}
