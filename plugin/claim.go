package plugin

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/opa-pat/opa-pat/bundle/rollback"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/config"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/util"
)

// ClaimedRoots are the roots of opa-pat's bundle (the repository's
// .opa-manifest): the policy and its settings, and the decision-log mask.
var ClaimedRoots = []string{"pat", "system/log"}

// ClaimMetadataKey marks, in a manifest's metadata, a claim the plugin wrote
// rather than an activated bundle's manifest.
const ClaimMetadataKey = "opa_pat_claim"

// claimNote is the claim's metadata value, for whoever reads
// data.system.bundles.
const claimNote = "roots reserved by the pat plugin until this bundle activates"

// OPA's REST API refuses writes (PUT /v1/policies, PUT and PATCH /v1/data)
// under the roots of a bundle whose manifest is in its store
// (/system/bundles/NAME/manifest), and a bundle's manifest is written there
// only when the bundle activates. Until then (the bundle service unreachable,
// or serving only bundles the sidecar refuses) anyone who reaches the API
// could install a policy under package pat that allows everything.
//
// claimRoots writes, for the configured bundle source, the manifest of a
// bundle that has not activated yet: its roots are ClaimedRoots, its metadata
// says it is a claim. OPA's server then refuses those writes from the start,
// as once the bundle is active. The bundle activates over the claim as over a
// previous version of itself: OPA erases what lies under the roots of the
// manifest in its store and writes the bundle's own manifest (whatever its
// roots). A refused bundle changes nothing, so the claim stays.
//
// The source is the only one under bundles:, or the one named pat among
// several (the claim could otherwise collide with the roots of another
// source's bundle and keep it from activating); with none of those no claim
// is made. A manifest already there (the bundle active, from a persisted
// copy, say) is left alone, as is a root another bundle in the store owns.
// Claims written for another source (the configuration changed) are
// removed. It returns the source claimed for, "" for none.
func (p *Plugin) claimRoots(ctx context.Context) (string, error) {
	target := claimTarget(p.manager.GetConfig())
	store := p.manager.Store
	claimed := ""
	err := storage.Txn(ctx, store, storage.WriteParams, func(txn storage.Transaction) error {
		names, err := bundle.ReadBundleNamesFromStore(ctx, store, txn)
		if err != nil && !storage.IsNotFound(err) {
			return err
		}
		for _, name := range names {
			if name == target {
				continue
			}
			if isClaim(ctx, store, txn, name) {
				if err := bundle.EraseManifestFromStore(ctx, store, txn, name); err != nil {
					return err
				}
				continue
			}
			roots, err := bundle.ReadBundleRootsFromStore(ctx, store, txn, name)
			if err != nil && !storage.IsNotFound(err) {
				return err
			}
			if rollback.Overlaps(roots, ClaimedRoots) {
				target = "" // that bundle owns them already
			}
		}
		if target == "" || slices.Contains(names, target) {
			return nil
		}
		claimed = target
		return bundle.WriteManifestToStore(ctx, store, txn, target, bundle.Manifest{
			Roots:    new(slices.Clone(ClaimedRoots)),
			Metadata: map[string]any{ClaimMetadataKey: claimNote},
		})
	})
	if err != nil {
		return "", err
	}
	return claimed, nil
}

// releaseClaims removes the claims the plugin wrote that no bundle has
// replaced yet: the plugin stops, and the roots are no longer its to keep.
func (p *Plugin) releaseClaims(ctx context.Context) error {
	store := p.manager.Store
	return storage.Txn(ctx, store, storage.WriteParams, func(txn storage.Transaction) error {
		names, err := bundle.ReadBundleNamesFromStore(ctx, store, txn)
		if err != nil {
			if storage.IsNotFound(err) {
				return nil
			}
			return err
		}
		for _, name := range names {
			if isClaim(ctx, store, txn, name) {
				if err := bundle.EraseManifestFromStore(ctx, store, txn, name); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// claimTarget is the bundle source a claim is made for: the only one, or the
// one named pat; "" for none.
func claimTarget(c *config.Config) string {
	if c == nil || len(c.Bundles) == 0 {
		return ""
	}
	var sources map[string]json.RawMessage
	if err := util.Unmarshal(c.Bundles, &sources); err != nil {
		return ""
	}
	if len(sources) == 1 {
		for name := range sources {
			return name
		}
	}
	if _, ok := sources[Name]; ok {
		return Name
	}
	return ""
}

// isClaim reports whether the manifest of bundle name is a claim.
func isClaim(ctx context.Context, store storage.Store, txn storage.Transaction, name string) bool {
	meta, err := bundle.ReadBundleMetadataFromStore(ctx, store, txn, name)
	if err != nil {
		return false
	}
	_, ok := meta[ClaimMetadataKey]
	return ok
}
