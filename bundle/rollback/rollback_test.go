package rollback_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	opabundle "github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/plugins"
	bundleplugin "github.com/open-policy-agent/opa/v1/plugins/bundle"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/opa-pat/opa-pat/bundle"
	"github.com/opa-pat/opa-pat/bundle/bundletest"
	"github.com/opa-pat/opa-pat/bundle/rollback"
)

func TestParseSerial(t *testing.T) {
	for _, tc := range []struct {
		note string
		v    any
		want int64
		err  string
	}{
		{note: "json.Number", v: json.Number("1767225600"), want: 1767225600},
		{note: "float64", v: float64(42), want: 42},
		{note: "int", v: 7, want: 7},
		{note: "ast.Number", v: ast.Number("9"), want: 9},
		{note: "the largest", v: json.Number("9007199254740991"), want: rollback.MaxSerial},
		{note: "above the largest", v: json.Number("9007199254740992"), err: "metadata.serial: 9007199254740992 is not an integer from 1 to 9007199254740991"},
		{note: "zero", v: json.Number("0"), err: "metadata.serial: 0 is not an integer from 1 to 9007199254740991"},
		{note: "negative", v: -3, err: "metadata.serial: -3 is not an integer from 1 to 9007199254740991"},
		{note: "a fraction", v: json.Number("1.5"), err: "metadata.serial: 1.5 is not an integer from 1 to 9007199254740991"},
		{note: "a float fraction", v: 1.5, err: "metadata.serial: 1.5 is not an integer from 1 to 9007199254740991"},
		{note: "a string", v: "12", err: `metadata.serial: "12" is not an integer from 1 to 9007199254740991`},
		{note: "null", v: nil, err: "metadata.serial: null is not an integer from 1 to 9007199254740991"},
	} {
		t.Run(tc.note, func(t *testing.T) {
			got, err := rollback.ParseSerial(tc.v)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("ParseSerial(%#v) = %d, %v; want error %q", tc.v, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseSerial(%#v) = %d, %v; want %d", tc.v, got, err, tc.want)
			}
		})
	}
}

// world builds signed bundles with opa-pat's builder and serves one at a
// time, as a bundle service would.
type world struct {
	dir string
	key *bundle.SigningKey

	mu      sync.Mutex
	tarball []byte
	url     string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	priv, _, err := bundle.GenerateKeys([]byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := bundle.LoadSigningKey(priv, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	w := &world{dir: t.TempDir(), key: key}
	write := func(name, content string) {
		p := filepath.Join(w.dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(".opa-manifest", `{"roots": ["pat"], "rego_version": 1}`)
	write("rego/pat/pat.rego", "package pat\n\ndefault allow := false\n")
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.tarball == nil {
			http.NotFound(rw, nil)
			return
		}
		_, _ = rw.Write(w.tarball)
	}))
	t.Cleanup(srv.Close)
	w.url = srv.URL
	return w
}

// build returns a bundle whose data.pat.marker is marker, at revision
// r-MARKER, with serial (0: none; the directory is no git tree).
func (w *world) build(t *testing.T, marker string, serial int64) []byte {
	t.Helper()
	if err := os.WriteFile(filepath.Join(w.dir, "rego", "pat", "marker.rego"), fmt.Appendf(nil, "package pat\n\nmarker := %q\n", marker), 0o644); err != nil {
		t.Fatal(err)
	}
	built, err := bundle.Build(bundle.BuildOptions{
		Settings: []byte(`{}`), RegoDir: filepath.Join(w.dir, "rego"), Key: w.key, KeyID: "k",
		Revision: "r-" + marker, Serial: serial,
	})
	if err != nil {
		t.Fatal(err)
	}
	return built.Tarball
}

func (w *world) serve(tarball []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.tarball = tarball
}

// sidecar is a plugin manager with OPA's bundle plugin, polling on
// demand (trigger: manual), and the guard of its store.
type sidecar struct {
	m      *plugins.Manager
	p      *bundleplugin.Plugin
	guard  *rollback.Guard
	status func() bundleplugin.Status
}

func newSidecar(t *testing.T, w *world, opts rollback.Options) *sidecar {
	t.Helper()
	rollback.Install()
	ctx := t.Context()
	config, err := json.Marshal(map[string]any{
		"services": map[string]any{"s": map[string]any{"url": w.url}},
		"keys":     map[string]any{"k": map[string]any{"algorithm": "ES256", "key": bundletest.PublicKeyPEM(t, w.key.Public)}},
		"bundles": map[string]any{"pat": map[string]any{
			"service": "s", "resource": "bundle.tar.gz", "signing": map[string]any{"keyid": "k"}, "trigger": "manual",
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	m, err := plugins.New(config, "test", inmem.New())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Init(ctx); err != nil {
		t.Fatal(err)
	}
	parsed, err := bundleplugin.NewConfigBuilder().WithBytes(m.Config.Bundles).WithServices(m.Services()).WithKeyConfigs(m.PublicKeys()).Parse()
	if err != nil {
		t.Fatal(err)
	}
	s := &sidecar{m: m, guard: rollback.Protect(m.Store, opts)}
	t.Cleanup(s.guard.Release)
	s.p = bundleplugin.New(parsed, m)
	var mu sync.Mutex
	var last bundleplugin.Status
	s.p.Register("test", func(st bundleplugin.Status) {
		mu.Lock()
		defer mu.Unlock()
		last = st
	})
	s.status = func() bundleplugin.Status {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
	m.Register(bundleplugin.Name, s.p)
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Stop(context.Background()) })
	return s
}

// poll downloads and activates what the world serves, and returns OPA's
// bundle status of pat after it.
func (s *sidecar) poll(t *testing.T) bundleplugin.Status {
	t.Helper()
	_ = s.p.Trigger(t.Context()) // an activation error is in the status
	return s.status()
}

// marker is data.pat.marker, "" when undefined.
func (s *sidecar) marker(t *testing.T) string {
	t.Helper()
	rs, err := rego.New(rego.Query("data.pat.marker"), rego.Store(s.m.Store), rego.Compiler(s.m.GetCompiler())).Eval(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) == 0 {
		return ""
	}
	return rs[0].Expressions[0].Value.(string)
}

const keep = `; the sidecar keeps the bundle it has (to roll back on purpose, build the older policy with a higher --serial: docs/bundles.md, "Rollback protection")`

// OPA's bundle plugin, activating through the installed activator, refuses
// a bundle older than the one the guard trusts: the error is in the
// bundle's status, and the active bundle stays.
func TestGuardRefusesOlderBundles(t *testing.T) {
	w := newWorld(t)
	old, current, next := w.build(t, "old", 100), w.build(t, "current", 200), w.build(t, "next", 300)
	var refused []string
	s := newSidecar(t, w, rollback.Options{Floor: 150, FloorKey: "plugins.pat.bundle.min_serial", Roots: []string{"pat", "system/log"},
		Refused: func(err error) { refused = append(refused, err.Error()) }})

	for _, step := range []struct {
		note    string
		serve   []byte
		message string // the bundle status's
		marker  string // data.pat.marker after it
	}{
		{note: "below the floor, nothing active", serve: old,
			message: `bundle "pat" refused: serial 100 (revision "r-old") is older than serial 150 in plugins.pat.bundle.min_serial` + keep},
		{note: "at a serial above the floor", serve: current, marker: "current"},
		{note: "older than the active bundle", serve: old, marker: "current",
			message: `bundle "pat" refused: serial 100 (revision "r-old") is older than serial 200 of the active bundle (revision "r-current")` + keep},
		{note: "the same serial again", serve: current, marker: "current"},
		{note: "newer", serve: next, marker: "next"},
		{note: "the one before", serve: current, marker: "next",
			message: `bundle "pat" refused: serial 200 (revision "r-current") is older than serial 300 of the active bundle (revision "r-next")` + keep},
	} {
		w.serve(step.serve)
		st := s.poll(t)
		if st.Message != step.message {
			t.Fatalf("%s: bundle status message\n got %q\nwant %q", step.note, st.Message, step.message)
		}
		if step.message != "" && st.Code != "bundle_error" {
			t.Fatalf("%s: bundle status code %q, want bundle_error", step.note, st.Code)
		}
		if got := s.marker(t); got != step.marker {
			t.Fatalf("%s: data.pat.marker %q, want %q", step.note, got, step.marker)
		}
	}
	if len(refused) != 3 {
		t.Fatalf("Refused told %d refusals, want 3: %q", len(refused), refused)
	}

	// The serial this process activated holds though the active bundle's
	// manifest went (OPA's REST API can delete it when unprotected).
	err := storage.Txn(t.Context(), s.m.Store, storage.WriteParams, func(txn storage.Transaction) error {
		return opabundle.EraseManifestFromStore(t.Context(), s.m.Store, txn, "pat")
	})
	if err != nil {
		t.Fatal(err)
	}
	w.serve(old)
	want := `bundle "pat" refused: serial 100 (revision "r-old") is older than serial 300, the highest this sidecar has activated under that name (revision "r-next")` + keep
	if st := s.poll(t); st.Message != want {
		t.Fatalf("after the manifest was erased: bundle status message\n got %q\nwant %q", st.Message, want)
	}
	if got := s.marker(t); got != "next" {
		t.Fatalf("data.pat.marker %q, want next", got)
	}

	// Without the guard, OPA activates the older bundle: what the guard
	// stops.
	s.guard.Release()
	w.serve(old)
	if st := s.poll(t); st.Message != "" || s.marker(t) != "old" {
		t.Fatalf("without the guard: status %q, marker %q; want the older bundle active", st.Message, s.marker(t))
	}
}

// A bundle without a serial activates while the guard trusts no serial
// (no floor, none active), and is told; after a bundle with a serial it is
// refused.
func TestGuardBundlesWithoutSerial(t *testing.T) {
	w := newWorld(t)
	first, serialed, second := w.build(t, "first", 0), w.build(t, "serialed", 5), w.build(t, "second", 0)
	var unserialed []string
	s := newSidecar(t, w, rollback.Options{Roots: []string{"pat"}, Unserialed: func(name, rev string) { unserialed = append(unserialed, name+" "+rev) }})

	w.serve(first)
	if st := s.poll(t); st.Message != "" || s.marker(t) != "first" {
		t.Fatalf("without a serial, none trusted: status %q, marker %q", st.Message, s.marker(t))
	}
	if fmt.Sprint(unserialed) != "[pat r-first]" {
		t.Fatalf("Unserialed told %q", unserialed)
	}
	w.serve(serialed)
	if st := s.poll(t); st.Message != "" || s.marker(t) != "serialed" {
		t.Fatalf("a serial after none: status %q, marker %q", st.Message, s.marker(t))
	}
	w.serve(second)
	want := `bundle "pat" refused: it has no serial (metadata.serial; revision "r-second"), so it is older than serial 5 of the active bundle (revision "r-serialed")` + keep
	st := s.poll(t)
	if st.Message != want {
		t.Fatalf("bundle status message\n got %q\nwant %q", st.Message, want)
	}
	if s.marker(t) != "serialed" {
		t.Fatalf("data.pat.marker %q, want serialed", s.marker(t))
	}
}

// The floor applies to bundles that own the given roots only; the serials
// of the active bundle and of those activated apply to every bundle.
func TestGuardFloorAppliesToTheRoots(t *testing.T) {
	w := newWorld(t)
	old := w.build(t, "old", 100)
	s := newSidecar(t, w, rollback.Options{Floor: 150, FloorKey: "min", Roots: []string{"other"}})
	w.serve(old)
	if st := s.poll(t); st.Message != "" || s.marker(t) != "old" {
		t.Fatalf("a floor for other roots: status %q, marker %q; want the bundle active", st.Message, s.marker(t))
	}
}

// Below finds an active bundle under the floor (a local bundle, activated
// before the guard existed), and leaves claims and other roots alone.
func TestBelow(t *testing.T) {
	ctx := t.Context()
	store := inmem.New()
	write := func(name string, m opabundle.Manifest) {
		t.Helper()
		err := storage.Txn(ctx, store, storage.WriteParams, func(txn storage.Transaction) error {
			return opabundle.WriteManifestToStore(ctx, store, txn, name, m)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	roots := func(r ...string) *[]string { return &r }
	write("claim", opabundle.Manifest{Roots: roots("pat"), Metadata: map[string]any{"claim": true}})
	write("other", opabundle.Manifest{Roots: roots("elsewhere"), Revision: "o"})
	o := rollback.Options{Floor: 150, FloorKey: "plugins.pat.bundle.min_serial", Roots: []string{"pat"}}
	skip := func(meta map[string]any) bool { return meta["claim"] == true }
	below := func() error {
		return storage.Txn(ctx, store, storage.TransactionParams{}, func(txn storage.Transaction) error {
			return rollback.Below(ctx, store, txn, o, skip)
		})
	}
	if err := below(); err != nil {
		t.Fatalf("a claim and other roots: %v", err)
	}
	write("local.tar.gz", opabundle.Manifest{Roots: roots("pat"), Revision: "r1", Metadata: map[string]any{"serial": 100}})
	want := `bundle "local.tar.gz" has serial 100 (revision "r1"), older than serial 150 in plugins.pat.bundle.min_serial: use a newer bundle, or lower the floor (docs/bundles.md, "Rollback protection")`
	if err := below(); err == nil || err.Error() != want {
		t.Fatalf("Below: %v\nwant %s", err, want)
	}
	write("local.tar.gz", opabundle.Manifest{Roots: roots("pat"), Revision: "r1"})
	want = `bundle "local.tar.gz" has no serial (metadata.serial; revision "r1"), and plugins.pat.bundle.min_serial is 150: build it with opa-pat bundle build, or remove the floor (docs/bundles.md, "Rollback protection")`
	if err := below(); err == nil || err.Error() != want {
		t.Fatalf("Below: %v\nwant %s", err, want)
	}
	write("local.tar.gz", opabundle.Manifest{Roots: roots("pat"), Revision: "r2", Metadata: map[string]any{"serial": 150}})
	if err := below(); err != nil {
		t.Fatalf("at the floor: %v", err)
	}
}

func TestRefusedErrorIsErrRolledBack(t *testing.T) {
	err := error(&rollback.RefusedError{Name: "pat", Serial: 1, Revision: "r", Trusted: "serial 2"})
	if !errors.Is(err, rollback.ErrRolledBack) || !strings.HasPrefix(err.Error(), `bundle "pat" refused: serial 1 (revision "r") is older than serial 2;`) {
		t.Fatalf("%v", err)
	}
}
