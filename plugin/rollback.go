package plugin

import (
	"context"
	"fmt"

	"github.com/open-policy-agent/opa/v1/storage"

	"github.com/opa-pat/opa-pat/bundle/rollback"
)

// minSerialKey names the floor in messages.
const minSerialKey = "plugins.pat.bundle.min_serial"

// protect registers the plugin's rollback guard for the manager's store
// (bundle/rollback), once the process has installed opa-pat's bundle
// activator (opa-pat run and opa-pat up do, for a sidecar without
// discovery): from then on OPA activates no bundle older than the one the
// sidecar trusts.
func (p *Plugin) protect() {
	if p.guard != nil || !rollback.Installed() {
		return
	}
	p.guard = rollback.Protect(p.manager.Store, p.rollbackOptions(p.config))
}

// rollbackOptions are the guard's options for a configuration: the floor
// applies to the bundles that own opa-pat's roots (ClaimedRoots), and
// refusals and bundles without a serial are logged by the plugin.
func (p *Plugin) rollbackOptions(c *Config) rollback.Options {
	return rollback.Options{
		Floor:    c.MinBundleSerial(),
		FloorKey: minSerialKey,
		Roots:    ClaimedRoots,
		Refused: func(err error) {
			p.logger().Error("Rollback protection: %v.", err)
		},
		Unserialed: func(name, revision string) {
			p.logger().Warn("Bundle %q (revision %q) has no serial (metadata.serial): it activates because the sidecar trusts no serial for it yet; "+
				"once a bundle with a serial is active under that name, or with %s set, a bundle without one is refused (docs/bundles.md, \"Rollback protection\").",
				name, revision, minSerialKey)
		},
	}
}

// checkRollback refuses to start with an active bundle below the floor:
// OPA activates local bundles (--bundle) before it builds the plugins, so
// the guard never saw them. Without the activator it says, when bundles
// are downloaded, that rollback protection is off.
func (p *Plugin) checkRollback(ctx context.Context) error {
	p.protect()
	if p.guard == nil {
		if c := p.manager.GetConfig(); c != nil && len(c.Bundles) > 0 {
			p.logger().Warn("Rollback protection is off: this process has not installed opa-pat's bundle activator " +
				"(opa-pat run and opa-pat up install it for a sidecar without discovery), so an older bundle, validly signed, activates (docs/bundles.md, \"Rollback protection\").")
		}
		return nil
	}
	store := p.manager.Store
	return storage.Txn(ctx, store, storage.TransactionParams{}, func(txn storage.Transaction) error {
		err := rollback.Below(ctx, store, txn, p.rollbackOptions(p.config), func(meta map[string]any) bool {
			_, claim := meta[ClaimMetadataKey]
			return claim
		})
		if err != nil {
			return fmt.Errorf("rollback protection: %w", err)
		}
		return nil
	})
}
