package plugin

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/config"
	"github.com/open-policy-agent/opa/v1/logging"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/plugins"
	"github.com/open-policy-agent/opa/v1/storage"
)

// claimConfig is an OPA configuration with the given bundle sources, signed.
func claimConfig(sources ...string) string {
	bundles := map[string]any{}
	for _, name := range sources {
		bundles[name] = map[string]any{"service": "s", "resource": name + ".tar.gz", "signing": map[string]any{"keyid": "k"}}
	}
	b, _ := json.Marshal(map[string]any{
		"keys":     map[string]any{"k": map[string]any{"algorithm": "ES256", "key": testPublicKeyPEM}},
		"services": map[string]any{"s": map[string]any{"url": "http://127.0.0.1:1"}},
		"bundles":  bundles,
	})
	return string(b)
}

// newClaimManager is newManager with an OPA configuration of its own.
func newClaimManager(t *testing.T, opaConfig string) (*plugins.Manager, *Plugin) {
	t.Helper()
	path, _ := seed(t)
	return newManagerWith(t, opaConfig, logging.NewNoOpLogger(), `{"store": {"path": "`+path+`"}}`)
}

// manifests returns the manifests in OPA's store, by bundle name.
func manifests(t *testing.T, m *plugins.Manager) map[string]bundle.Manifest {
	t.Helper()
	out := map[string]bundle.Manifest{}
	err := storage.Txn(t.Context(), m.Store, storage.TransactionParams{}, func(txn storage.Transaction) error {
		names, err := bundle.ReadBundleNamesFromStore(t.Context(), m.Store, txn)
		if storage.IsNotFound(err) {
			return nil
		} else if err != nil {
			return err
		}
		for _, name := range names {
			v, err := m.Store.Read(t.Context(), txn, bundle.ManifestStoragePath(name))
			if err != nil {
				return err
			}
			if av, ok := v.(ast.Value); ok {
				if v, err = ast.JSON(av); err != nil {
					return err
				}
			}
			raw, _ := json.Marshal(v)
			var mf bundle.Manifest
			if err := json.Unmarshal(raw, &mf); err != nil {
				return err
			}
			out[name] = mf
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func isClaimManifest(mf bundle.Manifest) bool {
	_, ok := mf.Metadata[ClaimMetadataKey]
	return ok && mf.Roots != nil && slices.Equal(*mf.Roots, ClaimedRoots)
}

// activate activates a bundle in the manager's store as OPA's bundle plugin
// does (bundle.Activate, in one write transaction).
func activate(t *testing.T, m *plugins.Manager, name, revision string, roots []string, modules map[string]string) error {
	t.Helper()
	b := &bundle.Bundle{Manifest: bundle.Manifest{Revision: revision, Roots: &roots}, Data: map[string]any{}}
	for path, src := range modules {
		parsed, err := ast.ParseModule(path, src)
		if err != nil {
			t.Fatal(err)
		}
		b.Modules = append(b.Modules, bundle.ModuleFile{URL: path, Path: path, Raw: []byte(src), Parsed: parsed})
	}
	return storage.Txn(t.Context(), m.Store, storage.WriteParams, func(txn storage.Transaction) error {
		return bundle.Activate(&bundle.ActivateOpts{
			Ctx: t.Context(), Store: m.Store, Txn: txn, Compiler: ast.NewCompiler(), Metrics: metrics.New(),
			Bundles: map[string]*bundle.Bundle{name: b},
		})
	})
}

// ClaimedRoots are the roots of the repository's .opa-manifest.
func TestClaimedRootsAreTheManifests(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", ".opa-manifest"))
	if err != nil {
		t.Fatal(err)
	}
	var mf struct {
		Roots []string `json:"roots"`
	}
	if err := json.Unmarshal(raw, &mf); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(mf.Roots, ClaimedRoots) {
		t.Fatalf(".opa-manifest's roots are %v; ClaimedRoots %v", mf.Roots, ClaimedRoots)
	}
}

// The plugin claims the bundle's roots at start; the bundle activates over the
// claim, first with other roots than the claim's and then again (an update);
// the decision-log mask the claim's system/log root erased comes back; Stop
// leaves an activated bundle's manifest alone.
func TestClaimThenActivate(t *testing.T) {
	m, p := newClaimManager(t, claimConfig("authz"))
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := manifests(t, m); len(got) != 1 || !isClaimManifest(got["authz"]) {
		t.Fatalf("manifests after Start: %+v; want the claim for authz", got)
	}
	if !hasPolicy(t, m, MaskPolicyID) {
		t.Fatal("no decision-log mask after Start")
	}

	// A refused bundle (here one that does not compile) changes nothing:
	// the claim stays.
	if err := activate(t, m, "authz", "bad", []string{"pat"}, map[string]string{"/pat/x.rego": "package pat\n\nallow := undefined_thing\n"}); err == nil {
		t.Fatal("a bundle that does not compile activated")
	}
	if got := manifests(t, m); !isClaimManifest(got["authz"]) {
		t.Fatalf("after a refused activation: %+v; want the claim", got)
	}

	// Roots other than the claim's: OPA erases under the claim's and the
	// bundle's roots, and writes the bundle's manifest.
	if err := activate(t, m, "authz", "r1", []string{"pat"}, map[string]string{"/pat/p.rego": "package pat\n\nallow := false\n"}); err != nil {
		t.Fatalf("activating over the claim: %v", err)
	}
	got := manifests(t, m)
	if mf := got["authz"]; isClaimManifest(mf) || mf.Revision != "r1" || !slices.Equal(*mf.Roots, []string{"pat"}) {
		t.Fatalf("after activation: %+v", got)
	}
	poll(t, 5*time.Second, func() bool { return hasPolicy(t, m, MaskPolicyID) })

	if err := activate(t, m, "authz", "r2", []string{"pat", "system/log"}, map[string]string{"/pat/p.rego": "package pat\n\nallow := false\n"}); err != nil {
		t.Fatalf("an update: %v", err)
	}
	if mf := manifests(t, m)["authz"]; mf.Revision != "r2" {
		t.Fatalf("after the update: %+v", mf)
	}

	p.Stop(context.Background())
	if mf, ok := manifests(t, m)["authz"]; !ok || mf.Revision != "r2" {
		t.Fatalf("after Stop: %+v, %v; want the bundle's manifest", mf, ok)
	}
}

func TestClaimTargets(t *testing.T) {
	for _, tc := range []struct {
		note    string
		sources []string
		want    string // the bundle claimed for, "" for none
	}{
		{note: "no bundle source"},
		{note: "one source", sources: []string{"authz"}, want: "authz"},
		{note: "several, one named pat", sources: []string{"other", "pat"}, want: "pat"},
		{note: "several, none named pat", sources: []string{"a", "b"}},
	} {
		t.Run(tc.note, func(t *testing.T) {
			opaConfig := `{}`
			if tc.sources != nil {
				opaConfig = claimConfig(tc.sources...)
			}
			m, p := newClaimManager(t, opaConfig)
			if err := p.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			defer p.Stop(context.Background())
			got := manifests(t, m)
			if tc.want == "" {
				if len(got) != 0 {
					t.Fatalf("manifests %+v; want none", got)
				}
				return
			}
			if len(got) != 1 || !isClaimManifest(got[tc.want]) {
				t.Fatalf("manifests %+v; want the claim for %s", got, tc.want)
			}
		})
	}
}

// A manifest already in the store (the bundle active before the plugin
// started), or another bundle that owns the roots, is left alone; Stop
// releases a claim no bundle replaced; a changed configuration moves the
// claim to the source it names.
func TestClaimLeavesBundlesAlone(t *testing.T) {
	t.Run("already active", func(t *testing.T) {
		m, p := newClaimManager(t, claimConfig("pat"))
		if err := activate(t, m, "pat", "r0", []string{"pat"}, nil); err != nil {
			t.Fatal(err)
		}
		if err := p.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		defer p.Stop(context.Background())
		if mf := manifests(t, m)["pat"]; isClaimManifest(mf) || mf.Revision != "r0" {
			t.Fatalf("manifest %+v; want the active bundle's", mf)
		}
	})
	t.Run("another bundle owns the roots", func(t *testing.T) {
		m, p := newClaimManager(t, claimConfig("pat"))
		if err := activate(t, m, "local.tar.gz", "r0", []string{""}, nil); err != nil {
			t.Fatal(err)
		}
		if err := p.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		defer p.Stop(context.Background())
		if got := manifests(t, m); len(got) != 1 {
			t.Fatalf("manifests %+v; want only local.tar.gz's", got)
		}
	})
	t.Run("stop and reconfigure", func(t *testing.T) {
		m, p := newClaimManager(t, claimConfig("pat"))
		if err := p.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		next, err := config.ParseConfig([]byte(claimConfig("authz")), "test")
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Reconfigure(next); err != nil {
			t.Fatal(err)
		}
		p.Reconfigure(t.Context(), p.Config())
		if got := manifests(t, m); len(got) != 1 || !isClaimManifest(got["authz"]) {
			t.Fatalf("after reconfiguring: %+v; want the claim for authz only", got)
		}
		p.Stop(context.Background())
		if got := manifests(t, m); len(got) != 0 {
			t.Fatalf("after Stop: %+v; want no claim", got)
		}
	})
}
