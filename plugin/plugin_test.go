package plugin

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/logging"
	"github.com/open-policy-agent/opa/v1/plugins"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/opa-pat/opa-pat/plugin/store"
	"github.com/opa-pat/opa-pat/plugin/token"
)

// seed imports a small world into a new store file and returns its path
// and a raw classic token that it holds.
func seed(t *testing.T) (path, classic string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "pat.db")
	return path, seedAt(t, path)
}

// seedAt imports seed's world into the store at location (created when
// absent) and returns the raw classic token.
func seedAt(t *testing.T, path string) (classic string) {
	t.Helper()
	db, err := store.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	classic, err = token.Generate(token.KindClassic, token.DefaultPrefixes)
	if err != nil {
		t.Fatal(err)
	}
	created, expires := "2026-01-01T00:00:00Z", "2026-03-01T00:00:00Z"
	_, err = db.Import(t.Context(), &store.Dump{
		Users:        []store.DumpUser{{Login: "bob", ManagedBy: store.Null()}},
		Memberships:  []store.DumpMembership{{User: "bob", Org: "octo-org", Role: "member"}},
		Repositories: []store.DumpRepository{{Owner: "octo-org", Name: "app", Visibility: "private"}},
		Tokens: []store.DumpToken{{Token: classic, Name: "laptop", Kind: store.KindClassic, User: "bob",
			Scopes: []string{"repo"}, CreatedAt: &created, ExpiresAt: store.NonNull(expires), Revoked: new(false)}},
	}, "test")
	if err != nil {
		t.Fatal(err)
	}
	return classic
}

// newManager returns a real plugin manager over an in-memory OPA store with
// the pat plugin configured from config.
func newManager(t *testing.T, config string) (*plugins.Manager, *Plugin) {
	t.Helper()
	return newManagerWith(t, `{}`, logging.NewNoOpLogger(), config)
}

// newManagerWith is newManager with an OPA configuration and a logger of its
// own.
func newManagerWith(t *testing.T, opaConfig string, logger logging.Logger, config string) (*plugins.Manager, *Plugin) {
	t.Helper()
	m, err := plugins.New([]byte(opaConfig), "test", inmem.New(), plugins.Logger(logger))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	cfg, err := Factory{}.Validate(m, []byte(config))
	if err != nil {
		t.Fatal(err)
	}
	p := Factory{}.New(m, cfg).(*Plugin)
	m.Register(Name, p)
	return m, p
}

func status(m *plugins.Manager) plugins.State {
	if s := m.PluginStatus()[Name]; s != nil {
		return s.State
	}
	return ""
}

func evalTerm(t *testing.T, query string) *ast.Term {
	t.Helper()
	rs, err := rego.New(rego.Query("x := " + query)).Eval(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) == 0 {
		return nil
	}
	v, err := ast.InterfaceToValue(rs[0].Bindings["x"])
	if err != nil {
		t.Fatal(err)
	}
	return ast.NewTerm(v)
}

func TestLifecycle(t *testing.T) {
	path, classic := seed(t)
	m, p := newManager(t, `{"store": {"path": "`+path+`"}}`)
	if got := status(m); got != plugins.StateNotReady {
		t.Fatalf("status after New = %q; want %q", got, plugins.StateNotReady)
	}
	if Lookup(m) != p {
		t.Fatal("Lookup did not return the plugin")
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := status(m); got != plugins.StateOK {
		t.Fatalf("status after Start = %q; want %q", got, plugins.StateOK)
	}
	if p.Store() == nil || p.Index() == nil || p.Manager() != m {
		t.Fatal("accessors are empty after Start")
	}

	got := evalTerm(t, `pat.token("`+classic+`")`)
	want := ast.MustParseTerm(`{"well_formed": true, "found": true, "kind": "classic", "id": 1, "user": "bob", "name": "laptop",
		"created_at_ns": 1767225600000000000, "expires_at_ns": 1772323200000000000, "revoked": false, "scopes": ["repo"],
		"resource_owner": "", "repository_selection": "", "repositories": [], "permissions": {}}`) // sets come back as arrays
	if got == nil || !got.Equal(want) {
		t.Fatalf("pat.token = %v; want %v", got, want)
	}
	sets := `[is_set(pat.token("` + classic + `").scopes), is_set(pat.token("` + classic + `").repositories)]`
	if got := evalTerm(t, sets); got == nil || !got.Equal(ast.MustParseTerm(`[true, true]`)) {
		t.Fatalf("scopes and repositories are not sets: %v", got)
	}
	if got := evalTerm(t, `pat.org_role("bob", "octo-org")`); got == nil || !got.Equal(ast.StringTerm("member")) {
		t.Fatalf("pat.org_role = %v", got)
	}

	// Reconfigure with the same configuration keeps the same store handle.
	db := p.Store()
	cfg, _ := ParseConfig([]byte(`{"store": {"path": "` + path + `"}}`))
	p.Reconfigure(t.Context(), cfg)
	if p.Store() != db {
		t.Fatal("Reconfigure with an unchanged configuration reopened the store")
	}

	p.Stop(t.Context())
	if got := status(m); got != plugins.StateNotReady {
		t.Fatalf("status after Stop = %q; want %q", got, plugins.StateNotReady)
	}
	if p.Store() != nil || p.Index() != nil {
		t.Fatal("accessors are set after Stop")
	}
	if got := evalTerm(t, `pat.token("`+classic+`")`); got != nil {
		t.Fatalf("pat.token after Stop = %v; want undefined", got)
	}
}

func TestReconfigureSwitchesStores(t *testing.T) {
	first, raw := seed(t)
	second, _ := seed(t) // another store that does not know raw
	_, p := newManager(t, `{"store": {"path": "`+first+`"}}`)
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer p.Stop(context.Background())
	found := func() *ast.Term { return evalTerm(t, `pat.token("`+raw+`").found`) }
	if got := found(); got == nil || !got.Equal(ast.BooleanTerm(true)) {
		t.Fatalf("found in the first store = %v; want true", got)
	}
	cfg, err := ParseConfig([]byte(`{"store": {"path": "` + second + `"}}`))
	if err != nil {
		t.Fatal(err)
	}
	p.Reconfigure(t.Context(), cfg)
	if got := p.Store().Location(); got != second {
		t.Fatalf("store after Reconfigure = %q; want %q", got, second)
	}
	if got := found(); got == nil || !got.Equal(ast.BooleanTerm(false)) {
		t.Fatalf("found after switching stores = %v; want false", got)
	}
}

func TestStartFailureNamesTheStore(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "missing", "pat.db")
	m, p := newManager(t, `{"store": {"path": "`+path+`"}}`)
	err := p.Start(t.Context())
	if err == nil || !strings.HasPrefix(err.Error(), `opening store "`+path+`": `) {
		t.Fatalf("err = %v; want it to name the store", err)
	}
	if s := m.PluginStatus()[Name]; s == nil || s.State != plugins.StateErr || s.Message != err.Error() {
		t.Fatalf("status = %+v; want %q with the error", s, plugins.StateErr)
	}
}

func TestChangesReachTheBuiltins(t *testing.T) {
	path, _ := seed(t)
	_, p := newManager(t, `{"store": {"path": "`+path+`"}}`)
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer p.Stop(context.Background())

	// Another process (the CLI) writes to the same file.
	cli, err := store.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	raw, _ := token.Generate(token.KindFineGrained, token.DefaultPrefixes)
	start := time.Now()
	tok, grant, err := cli.CreateToken(t.Context(), store.CreateTokenParams{
		Token: store.Token{Hash: token.Hash(raw), Name: "ci", Kind: store.KindFineGrained, User: "bob",
			ResourceOwner: "octo-org", RepositorySelection: "selected", Repositories: []string{"app"},
			Permissions: map[string]string{"contents": "write"}, CreatedAt: start, ExpiresAt: start.Add(24 * time.Hour)},
		GrantState: store.GrantPending, Justification: "release",
	})
	if err != nil {
		t.Fatal(err)
	}
	query := `pat.token("` + raw + `").found`
	poll(t, time.Second, func() bool { got := evalTerm(t, query); return got != nil && got.Equal(ast.BooleanTerm(true)) })

	// The grant, written in the token's transaction, may reach the built-ins
	// a moment after the token (seen once under the race detector in CI).
	state := func() *ast.Term { return evalTerm(t, `pat.grant(`+itoa(tok.ID)+`, "octo-org").state`) }
	poll(t, time.Second, func() bool { got := state(); return got != nil && got.Equal(ast.StringTerm("pending")) })
	if _, err := cli.Review(t.Context(), store.ReviewParams{Org: "octo-org", IDs: []int64{grant.ID}, Approve: true, Actor: "alice"}); err != nil {
		t.Fatal(err)
	}
	poll(t, time.Second, func() bool { got := state(); return got != nil && got.Equal(ast.StringTerm("approved")) })
}

func TestSettingsAreRecorded(t *testing.T) {
	path, _ := seed(t)
	m, p := newManager(t, `{"store": {"path": "`+path+`"}}`)
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer p.Stop(context.Background())

	settings := map[string]any{"organizations": map[string]any{"octo-org": map[string]any{"fine_grained_approval": "disable"}}}
	err := storage.Txn(t.Context(), m.Store, storage.WriteParams, func(txn storage.Transaction) error {
		return m.Store.Write(t.Context(), txn, storage.AddOp, storage.MustParsePath("/pat"), map[string]any{"settings": settings})
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"organizations":{"octo-org":{"fine_grained_approval":"disable"}}}`
	poll(t, time.Second, func() bool {
		got, err := p.Store().Settings(t.Context())
		return err == nil && string(got) == want
	})
}

func itoa(n int64) string { return ast.IntNumberTerm(int(n)).String() }

// poll waits until ok holds, failing the test after d.
func poll(t *testing.T, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestServiceFailureIsAnError: when the ext_authz server stops serving by
// itself, the plugin's status turns ERROR with the cause, and stays so (the
// health watcher does not turn it back to OK); a restart clears it.
func TestServiceFailureIsAnError(t *testing.T) {
	path, _ := seed(t)
	m, p := newManager(t, `{"store": {"path": "`+path+`"}, "ext_authz": {"addr": "127.0.0.1:0"}}`)
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(context.Background()) })
	if st := status(m); st != plugins.StateOK {
		t.Fatalf("status %s after start", st)
	}
	p.serviceFailed(errors.New("accept tcp 127.0.0.1:9191: use of closed network connection"))
	want := "ext_authz gRPC server stopped serving: accept tcp 127.0.0.1:9191: use of closed network connection; restart the sidecar"
	check := func() {
		t.Helper()
		s := m.PluginStatus()[Name]
		if s == nil || s.State != plugins.StateErr || s.Message != want {
			t.Fatalf("status %+v; want ERROR %q", s, want)
		}
	}
	check()
	time.Sleep(healthInterval + 200*time.Millisecond) // one health check later
	check()

	p.Stop(t.Context())
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st := status(m); st != plugins.StateOK {
		t.Fatalf("status %s after a restart", st)
	}
}
