package builtins

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/opa-pat/opa-pat/plugin/index"
	"github.com/opa-pat/opa-pat/plugin/store"
	"github.com/opa-pat/opa-pat/plugin/token"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func world(t *testing.T) (fg, classic, unknownFG string) {
	t.Helper()
	gen := func(kind string) string {
		raw, err := token.Generate(kind, token.DefaultPrefixes)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	fg, classic, unknownFG = gen(token.KindFineGrained), gen(token.KindClassic), gen(token.KindFineGrained)
	x := index.New()
	x.PutUser(store.User{Login: "bob"})
	x.PutUser(store.User{Login: "eve_acme", ManagedBy: "acme"})
	x.PutMembership(store.Membership{User: "bob", Org: "octo-org", Role: "member"})
	x.PutRepository(store.Repository{Owner: "octo-org", Name: "app", Visibility: "internal"})
	x.PutToken(store.Token{ID: 7, Hash: token.Hash(fg), Name: "ci", Kind: store.KindFineGrained, User: "bob",
		ResourceOwner: "octo-org", RepositorySelection: "selected", Repositories: []string{"lib", "app", "app"},
		Permissions: map[string]string{"contents": "write"}, CreatedAt: t0})
	x.PutToken(store.Token{ID: 1000, Hash: token.Hash(classic), Name: "laptop", Kind: store.KindClassic, User: "bob",
		Scopes: []string{"repo", "workflow"}, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour), Revoked: true})
	x.PutGrant(store.Grant{ID: 3, TokenID: 7, Org: "octo-org", State: store.GrantApproved, Reason: "release", ReviewReason: "release", Reviewer: "alice", UpdatedAt: t0})
	x.PutGrant(store.Grant{ID: 4, TokenID: 7, Org: "other", State: store.GrantPending, Reason: "", UpdatedAt: t0})
	t.Cleanup(Install(&Source{Index: x, Prefixes: token.DefaultPrefixes}))
	return fg, classic, unknownFG
}

func TestBuiltins(t *testing.T) {
	fg, classic, unknownFG := world(t)
	broken := classic[:len(classic)-1] + "x"
	if classic[len(classic)-1] == 'x' {
		broken = classic[:len(classic)-1] + "y"
	}
	for _, tc := range []struct {
		note  string
		query string
		want  string // "" for undefined
	}{
		{note: "token: fine-grained found, metadata read added, repositories a set",
			query: `pat.token("` + fg + `")`,
			want: `{"well_formed": true, "found": true, "kind": "fine_grained", "id": 7, "user": "bob", "name": "ci",
				"created_at_ns": 1767225600000000000, "expires_at_ns": null, "revoked": false, "scopes": set(),
				"resource_owner": "octo-org", "repository_selection": "selected", "repositories": {"app", "lib"},
				"permissions": {"contents": "write", "metadata": "read"}}`},
		{note: "token: classic found, revoked",
			query: `pat.token("` + classic + `")`,
			want: `{"well_formed": true, "found": true, "kind": "classic", "id": 1000, "user": "bob", "name": "laptop",
				"created_at_ns": 1767225600000000000, "expires_at_ns": 1767229200000000000, "revoked": true,
				"scopes": {"repo", "workflow"}, "resource_owner": "", "repository_selection": "", "repositories": set(),
				"permissions": {}}`},
		{note: "token: well formed, unknown", query: `pat.token("` + unknownFG + `")`,
			want: `{"well_formed": true, "kind": "fine_grained", "found": false}`},
		{note: "token: bad checksum", query: `pat.token("` + broken + `")`, want: `{"well_formed": false}`},
		{note: "token: garbage", query: `pat.token("Bearer nonsense")`, want: `{"well_formed": false}`},
		{note: "grant: approved", query: `pat.grant(7, "octo-org")`,
			want: `{"id": 3, "state": "approved", "reason": "release", "reviewer": "alice", "updated_at_ns": 1767225600000000000}`},
		{note: "grant: pending, no reviewer", query: `pat.grant(7, "other")`,
			want: `{"id": 4, "state": "pending", "reason": "", "reviewer": null, "updated_at_ns": 1767225600000000000}`},
		{note: "grant: none", query: `pat.grant(7, "nowhere")`},
		{note: "grant: not an integer", query: `pat.grant(7.5, "octo-org")`},
		{note: "org_role: member", query: `pat.org_role("bob", "octo-org")`, want: `"member"`},
		{note: "org_role: none", query: `pat.org_role("bob", "other")`},
		{note: "user: not managed", query: `pat.user("bob")`, want: `{"login": "bob", "managed_by": null}`},
		{note: "user: managed", query: `pat.user("eve_acme")`, want: `{"login": "eve_acme", "managed_by": "acme"}`},
		{note: "user: unknown", query: `pat.user("nobody")`},
		{note: "repository", query: `pat.repository("octo-org", "app")`, want: `{"owner": "octo-org", "name": "app", "visibility": "internal"}`},
		{note: "repository: unknown", query: `pat.repository("octo-org", "nope")`},
	} {
		t.Run(tc.note, func(t *testing.T) {
			got := eval(t, tc.query)
			if tc.want == "" {
				if got != nil {
					t.Fatalf("got %v; want undefined", got)
				}
				return
			}
			if want := ast.MustParseTerm(tc.want); got == nil || !got.Equal(want) {
				t.Fatalf("got %v; want %v", got, want)
			}
		})
	}
}

func TestNotReadyIsUndefined(t *testing.T) {
	fg, _, _ := world(t)
	Install(nil)
	for _, q := range []string{`pat.token("` + fg + `")`, `pat.grant(7, "octo-org")`, `pat.org_role("bob", "octo-org")`,
		`pat.user("bob")`, `pat.repository("octo-org", "app")`} {
		if got := eval(t, q); got != nil {
			t.Errorf("%s = %v; want undefined", q, got)
		}
	}
}

// eval calls the Go implementation of a built-in call such as
// pat.user("bob") and returns its term (sets stay sets), or nil when the
// call is undefined (no result or an error).
func eval(t *testing.T, query string) *ast.Term {
	t.Helper()
	call, ok := ast.MustParseExpr(query).Terms.([]*ast.Term)
	if !ok {
		t.Fatalf("%s is not a call", query)
	}
	var (
		got  *ast.Term
		err  error
		bctx rego.BuiltinContext
		args = call[1:]
	)
	switch call[0].String() {
	case TokenName:
		got, err = Token(bctx, args[0])
	case GrantName:
		got, err = Grant(bctx, args[0], args[1])
	case OrgRoleName:
		got, err = OrgRole(bctx, args[0], args[1])
	case UserName:
		got, err = User(bctx, args[0])
	case RepositoryName:
		got, err = Repository(bctx, args[0], args[1])
	default:
		t.Fatalf("unknown built-in %s", call[0])
	}
	if err != nil {
		return nil
	}
	return got
}

func TestRegistered(t *testing.T) {
	world(t)
	rs, err := rego.New(rego.Query(`x := pat.org_role("bob", "octo-org")`)).Eval(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].Bindings["x"] != "member" {
		t.Fatalf("got %v; want x = member", rs)
	}
}

func TestTokenCacheFollowsChanges(t *testing.T) {
	raw, err := token.Generate(token.KindClassic, token.DefaultPrefixes)
	if err != nil {
		t.Fatal(err)
	}
	x := index.New()
	rec := store.Token{ID: 1, Hash: token.Hash(raw), Name: "laptop", Kind: store.KindClassic, User: "bob", CreatedAt: t0}
	x.PutToken(rec)
	t.Cleanup(Install(&Source{Index: x, Prefixes: token.DefaultPrefixes}))

	first := eval(t, `pat.token("`+raw+`")`)
	if again := eval(t, `pat.token("`+raw+`")`); again != first {
		t.Fatal("an unchanged token's answer is built again instead of reused")
	}
	rec.Revoked = true
	x.PutToken(rec)
	got := eval(t, `pat.token("`+raw+`")`)
	if revoked := got.Get(ast.StringTerm("revoked")); revoked == nil || !revoked.Equal(ast.BooleanTerm(true)) {
		t.Fatalf("after revocation pat.token = %v; want revoked true", got)
	}
}

func TestGrantCacheFollowsChanges(t *testing.T) {
	x := index.New()
	x.PutGrant(store.Grant{ID: 1, TokenID: 7, Org: "octo-org", State: store.GrantPending, Reason: "ci", UpdatedAt: t0})
	x.PutGrant(store.Grant{ID: 2, TokenID: 7, Org: "acme-labs", State: store.GrantDenied, Reviewer: "alice", UpdatedAt: t0})
	t.Cleanup(Install(&Source{Index: x, Prefixes: token.DefaultPrefixes}))

	first := eval(t, `pat.grant(7, "octo-org")`)
	if again := eval(t, `pat.grant(7, "octo-org")`); again != first {
		t.Fatal("an unchanged grant's answer is built again instead of reused")
	}
	if other := eval(t, `pat.grant(7, "acme-labs")`); other.Get(ast.StringTerm("state")).Value.Compare(ast.String(store.GrantDenied)) != 0 {
		t.Fatalf("pat.grant(7, acme-labs) = %v; want denied", other)
	}
	x.PutGrant(store.Grant{ID: 1, TokenID: 7, Org: "octo-org", State: store.GrantApproved, Reviewer: "alice", Reason: "ok", ReviewReason: "ok", UpdatedAt: t0.Add(time.Minute)})
	got := eval(t, `pat.grant(7, "octo-org")`)
	if state := got.Get(ast.StringTerm("state")); state == nil || state.Value.Compare(ast.String(store.GrantApproved)) != 0 {
		t.Fatalf("after approval pat.grant = %v; want approved", got)
	}
	if reviewer := got.Get(ast.StringTerm("reviewer")); reviewer == nil || reviewer.Value.Compare(ast.String("alice")) != 0 {
		t.Fatalf("after approval pat.grant = %v; want reviewer alice", got)
	}
}

func TestUserCacheFollowsChanges(t *testing.T) {
	x := index.New()
	x.PutUser(store.User{Login: "Alice", ManagedBy: "acme"})
	x.PutUser(store.User{Login: "bob"})
	t.Cleanup(Install(&Source{Index: x, Prefixes: token.DefaultPrefixes}))

	first := eval(t, `pat.user("alice")`)
	if want := ast.MustParseTerm(`{"login": "Alice", "managed_by": "acme"}`).Value; first.Value.Compare(want) != 0 {
		t.Fatalf("pat.user(alice) = %v; want %v", first, want)
	}
	if again := eval(t, `pat.user("ALICE")`); again != first {
		t.Fatal("an unchanged user's answer is built again instead of reused")
	}
	if want := ast.MustParseTerm(`{"login": "bob", "managed_by": null}`).Value; eval(t, `pat.user("bob")`).Value.Compare(want) != 0 {
		t.Fatalf("pat.user(bob) = %v; want %v", eval(t, `pat.user("bob")`), want)
	}
	x.PutUser(store.User{Login: "Alice"}) // no longer managed
	if want := ast.MustParseTerm(`{"login": "Alice", "managed_by": null}`).Value; eval(t, `pat.user("alice")`).Value.Compare(want) != 0 {
		t.Fatalf("after the change pat.user(alice) = %v; want %v", eval(t, `pat.user("alice")`), want)
	}
}

// tokenPrefixesRuns counts the runs of TestTokenPrefixes in this process.
var tokenPrefixesRuns atomic.Int32

// pat.token_prefixes answers with no plugin running (the decision-log mask
// calls it, also from the plugin's fallback copy before a bundle is active):
// GitHub's prefixes, then every prefix this process noted, which it keeps.
func TestTokenPrefixes(t *testing.T) {
	Install(nil)
	// Noted prefixes stay noted for the process's life: each run (go test
	// -count=2) notes prefixes no earlier run noted.
	run := tokenPrefixesRuns.Add(1)
	classic, fineGrained := fmt.Sprintf("zqxmask%d", run), fmt.Sprintf("zqxmaskfg%d_", run)
	query := func() []any {
		t.Helper()
		rs, err := rego.New(rego.Query(`x := pat.token_prefixes()`)).Eval(t.Context())
		if err != nil || len(rs) != 1 {
			t.Fatalf("pat.token_prefixes(): %v, %v", rs, err)
		}
		return rs[0].Bindings["x"].([]any) // a set, as an array
	}
	has := func(got []any, p string) bool { return slices.Contains(got, any(p)) }
	got := query()
	if !has(got, "ghp_") || !has(got, "github_pat_") || has(got, classic) || has(got, fineGrained) {
		t.Fatalf("pat.token_prefixes() = %v; want GitHub's and no %s or %s", got, classic, fineGrained)
	}
	first := TokenPrefixes()
	if TokenPrefixes() != first {
		t.Fatal("an unchanged answer is built again instead of reused")
	}
	token.NotePrefixes(token.Prefixes{Classic: classic, FineGrained: fineGrained})
	got = query()
	if !has(got, "ghp_") || !has(got, classic) || !has(got, fineGrained) || len(got) != len(token.KnownPrefixes()) {
		t.Fatalf("after NotePrefixes, pat.token_prefixes() = %v; want GitHub's, %s and %s among %v", got, classic, fineGrained, token.KnownPrefixes())
	}
}

// Current says whether pat.token would answer: not without a source, not
// past the index's staleness bound, not while the settings are invalid.
func TestCurrent(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	Install(nil)
	if Current(now) {
		t.Fatal("no source: Current() = true")
	}
	x := index.New()
	x.SetMaxStaleness(time.Minute)
	x.MarkCurrent(now)
	src := &Source{Index: x, Prefixes: token.DefaultPrefixes}
	t.Cleanup(Install(src))
	for _, tc := range []struct {
		note     string
		at       time.Time
		settings error
		want     bool
	}{
		{note: "caught up", at: now.Add(time.Second), want: true},
		{note: "at the bound", at: now.Add(time.Minute), want: true},
		{note: "past the bound", at: now.Add(time.Minute + time.Second), want: false},
		{note: "invalid settings", at: now.Add(time.Second), settings: errors.New("data.pat.settings: bad"), want: false},
	} {
		src.SetSettingsError(tc.settings)
		if got := Current(tc.at); got != tc.want {
			t.Errorf("%s: Current() = %v; want %v", tc.note, got, tc.want)
		}
	}
}
