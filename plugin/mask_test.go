package plugin

import (
	"context"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/plugins"
	"github.com/open-policy-agent/opa/v1/storage"
)

func hasPolicy(t *testing.T, m *plugins.Manager, id string) bool {
	t.Helper()
	found := false
	err := storage.Txn(t.Context(), m.Store, storage.TransactionParams{}, func(txn storage.Transaction) error {
		_, err := m.Store.GetPolicy(t.Context(), txn, id)
		found = err == nil
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func maskRules(m *plugins.Manager) int {
	c := m.GetCompiler()
	if c == nil {
		return 0
	}
	return len(c.GetRulesExact(ast.MustParseRef("data.system.log.mask")))
}

func writePolicies(t *testing.T, m *plugins.Manager, del []string, put map[string]string) {
	t.Helper()
	err := storage.Txn(t.Context(), m.Store, storage.WriteParams, func(txn storage.Transaction) error {
		for _, id := range del {
			if err := m.Store.DeletePolicy(t.Context(), txn, id); err != nil {
				return err
			}
		}
		for id, src := range put {
			if err := m.Store.UpsertPolicy(t.Context(), txn, id, []byte(src)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The decision-log mask is there from the plugin's start, comes back when a
// policy change removes it (a bundle without one whose roots cover
// system/log), steps aside for a policy that brings its own, and leaves with
// the plugin.
func TestMaskPolicyFallback(t *testing.T) {
	path, _ := seed(t)
	m, p := newManager(t, `{"store": {"path": "`+path+`"}}`)
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !hasPolicy(t, m, MaskPolicyID) || maskRules(m) == 0 {
		t.Fatalf("after Start: policy %v, %d mask rules", hasPolicy(t, m, MaskPolicyID), maskRules(m))
	}

	// As a bundle activation erases store policies under its roots.
	writePolicies(t, m, []string{MaskPolicyID}, map[string]string{"bundle/pat.rego": "package pat\n\nx := 1\n"})
	poll(t, 5*time.Second, func() bool { return hasPolicy(t, m, MaskPolicyID) && maskRules(m) > 0 })

	// A policy of its own in package system.log: the plugin's copy is not
	// put back once it is gone.
	writePolicies(t, m, []string{MaskPolicyID}, map[string]string{
		"bundle/system/log/log.rego": "package system.log\n\nmask contains \"/input/secret\"\n",
	})
	time.Sleep(200 * time.Millisecond)
	if hasPolicy(t, m, MaskPolicyID) {
		t.Fatal("the plugin's mask came back beside the bundle's")
	}

	writePolicies(t, m, []string{"bundle/system/log/log.rego"}, nil)
	poll(t, 5*time.Second, func() bool { return hasPolicy(t, m, MaskPolicyID) })
	p.Stop(context.Background())
	if hasPolicy(t, m, MaskPolicyID) {
		t.Fatal("the plugin's mask stayed after Stop")
	}
}
