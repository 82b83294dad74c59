package plugin

import (
	"context"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage"

	patrego "github.com/opa-pat/opa-pat/rego"
)

// MaskPolicyID is the id under which the plugin keeps its own copy of the
// decision-log mask (rego/system/log/log.rego, package system.log) while no
// loaded policy defines that package.
//
// OPA masks decision-log events with data.system.log.mask, which ships in
// the signed bundle. Until a bundle is active (its server unreachable at
// start, say), nothing would mask: the decision log of an OPA API query or
// an ext_authz Check would hold the raw token. With this copy in OPA's store
// the mask is there from the plugin's start. A bundle whose roots cover
// system/log replaces it when it activates (OPA erases store policies under
// a bundle's roots); a bundle that leaves system/log out keeps it.
const MaskPolicyID = "opa-pat/fallback/system/log/log.rego"

const maskPackage = "system.log"

// ensureMask adds the mask to OPA's store unless a policy of package
// system.log (or below) is already there.
func (p *Plugin) ensureMask(ctx context.Context) error {
	mods, err := patrego.Modules()
	if err != nil {
		return err
	}
	src := mods["system/log/log.rego"]
	store := p.manager.Store
	return storage.Txn(ctx, store, storage.WriteParams, func(txn storage.Transaction) error {
		ids, err := store.ListPolicies(ctx, txn)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if id == MaskPolicyID {
				return nil
			}
			bs, err := store.GetPolicy(ctx, txn, id)
			if err != nil {
				return err
			}
			if pkg, err := ast.ParsePackage(packageClause(bs)); err == nil && underMaskPackage(pkg) {
				return nil
			}
		}
		return store.UpsertPolicy(ctx, txn, MaskPolicyID, []byte(src))
	})
}

// keepMask adds the mask back whenever a policy change removed it (a bundle
// whose roots cover system/log but that brings no mask: `opa build` makes
// bundles with the root "" by default), until the returned function is
// called; that function returns once the goroutine has stopped, so that
// nothing adds the mask after dropMask. OPA calls compiler triggers inside
// the commit, where no other write can start, so the trigger only wakes a
// goroutine that writes after it.
func (p *Plugin) keepMask() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	wake := make(chan struct{}, 1)
	p.maskWake.Store(&wake)
	p.maskTrigger.Do(func() {
		p.manager.RegisterCompilerTrigger(func(storage.Transaction) {
			if w := p.maskWake.Load(); w != nil {
				select {
				case *w <- struct{}{}:
				default:
				}
			}
		})
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-wake:
			}
			if err := p.ensureMask(ctx); err != nil && ctx.Err() == nil {
				p.logger().Error("Adding the decision-log mask again: %v.", err)
			}
		}
	}()
	return func() {
		p.maskWake.Store(nil)
		cancel()
		<-done
	}
}

// dropMask removes the plugin's copy of the mask, if it is still there.
func (p *Plugin) dropMask(ctx context.Context) {
	store := p.manager.Store
	_ = storage.Txn(ctx, store, storage.WriteParams, func(txn storage.Transaction) error {
		if _, err := store.GetPolicy(ctx, txn, MaskPolicyID); err != nil {
			return nil // not there (a bundle replaced it)
		}
		return store.DeletePolicy(ctx, txn, MaskPolicyID)
	})
}

// packageClause is a module's package line, found without parsing the module.
func packageClause(module []byte) string {
	for line := range strings.SplitSeq(string(module), "\n") {
		if t := strings.TrimSpace(line); strings.HasPrefix(t, "package ") {
			return t
		}
	}
	return ""
}

func underMaskPackage(pkg *ast.Package) bool {
	name := strings.TrimPrefix(pkg.Path.String(), "data.")
	return name == maskPackage || strings.HasPrefix(name, maskPackage+".")
}
