// Package rollback makes a sidecar refuse to activate a bundle older than
// the one it trusts: the rollback attack of TUF, where whoever serves
// bundles (or sits between the sidecar and the server) serves an older
// bundle, validly signed by a trusted key, to bring back a policy or
// settings since replaced.
//
// The ordering key is a serial in the bundle's manifest, metadata.serial (a
// positive integer that opa-pat bundle build writes): the .manifest is one
// of the files OPA's signature covers, so nobody without the signing key
// can change it. A Guard, registered for a plugin manager's store, checks
// every activation into that store: a bundle whose serial is below the
// serial the sidecar trusts for it (the active bundle's of the same name,
// the highest this process activated under that name, and a configured
// floor for the bundles that own opa-pat's roots) is refused, and OPA's
// activation fails before anything changed, so the active bundle stays
// and OPA's bundle status carries the error.
//
// The check runs in OPA's bundle activation, through OPA's activator
// extension (Install). The package is light (OPA and the standard library
// only) so the pat plugin can use it.
package rollback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
)

// MetaSerial is the manifest metadata key of a bundle's serial.
const MetaSerial = "serial"

// MaxSerial is the largest serial: JSON numbers above it are not exact in
// the float64 that many readers, OPA's store among them, turn them into.
const MaxSerial = 1<<53 - 1

// ErrRolledBack is wrapped by the error of an activation refused because
// the bundle is older than the one the sidecar trusts.
var ErrRolledBack = errors.New("older than the bundle the sidecar trusts")

// Serial returns a manifest's serial (metadata.serial), 0 when it has
// none. A serial that is not an integer from 1 to MaxSerial is an error.
func Serial(m bundle.Manifest) (int64, error) {
	v, ok := m.Metadata[MetaSerial]
	if !ok {
		return 0, nil
	}
	return ParseSerial(v)
}

// ParseSerial reads a serial as a JSON decoder (with or without UseNumber),
// OPA's store or a configuration file gives it: an integer from 1 to
// MaxSerial.
func ParseSerial(v any) (int64, error) {
	var s string
	switch n := v.(type) {
	case json.Number:
		s = n.String()
	case ast.Number:
		s = string(n)
	case float64:
		if n != math.Trunc(n) || n < 1 || n > MaxSerial {
			return 0, fmt.Errorf("metadata.%s: %v is not an integer from 1 to %d", MetaSerial, v, int64(MaxSerial))
		}
		return int64(n), nil
	case int:
		s = strconv.Itoa(n)
	case int64:
		s = strconv.FormatInt(n, 10)
	default:
		return 0, fmt.Errorf("metadata.%s: %s is not an integer from 1 to %d", MetaSerial, describe(v), int64(MaxSerial))
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 || n > MaxSerial {
		return 0, fmt.Errorf("metadata.%s: %s is not an integer from 1 to %d", MetaSerial, s, int64(MaxSerial))
	}
	return n, nil
}

func describe(v any) string {
	if b, err := json.Marshal(v); err == nil {
		return string(b)
	}
	return fmt.Sprintf("%v", v)
}

// activatorID is the id under which Install registers the activator.
const activatorID = "opa-pat-rollback"

var (
	installMu sync.Mutex
	installed bool
	guardsMu  sync.Mutex
	guards    = map[storage.Store]*Guard{}
)

// Install makes the activator OPA's default bundle activator, once per
// process: every activation without an activator of its own (OPA's bundle
// plugin's, its persisted bundles' and local bundles') goes through it.
// For a store with a Guard it checks the bundles first; it activates with
// OPA's DefaultActivator.
//
// OPA takes an installed default activator for an extension that reads
// bundles lazily (bundle.HasExtension): bundle readers that are not told
// otherwise keep a bundle's data unparsed (OPA's bundle plugin reads its
// downloads so anyway), and rego.New without a store asks
// bundle.BundleExtStore for one, which Install sets to an in-memory store
// when nobody has. Install only in a sidecar that uses no discovery: OPA's
// discovery reads its bundle's data, which a lazy read leaves empty, from
// a persisted copy and from OCI registries.
func Install() {
	installMu.Lock()
	defer installMu.Unlock()
	if installed {
		return
	}
	bundle.RegisterActivator(activatorID, activator{})
	bundle.RegisterDefaultBundleActivator(activatorID)
	if bundle.BundleExtStore == nil {
		bundle.RegisterStoreFunc(func() storage.Store { return inmem.New() })
	}
	installed = true
}

// Installed reports whether Install has run: without it, no Guard is
// consulted.
func Installed() bool {
	installMu.Lock()
	defer installMu.Unlock()
	return installed
}

type activator struct{}

func (activator) Activate(opts *bundle.ActivateOpts) error {
	guardsMu.Lock()
	g := guards[opts.Store]
	guardsMu.Unlock()
	if g == nil {
		return (&bundle.DefaultActivator{}).Activate(opts)
	}
	accepted, err := g.check(opts)
	if err != nil {
		return err
	}
	if err := (&bundle.DefaultActivator{}).Activate(opts); err != nil {
		return err
	}
	g.activated(accepted)
	return nil
}

// Options configure a Guard.
type Options struct {
	// Floor is the lowest serial a bundle owning one of Roots may have
	// (0: none): a fresh sidecar, with no active bundle to compare with,
	// is not taken back further than this.
	Floor int64
	// FloorKey names the floor in messages (a configuration key).
	FloorKey string
	// Roots are the data paths whose bundles the floor applies to: a
	// bundle whose roots overlap one of them.
	Roots []string
	// Refused is told each refusal (for the plugin's log); Unserialed
	// each bundle without a serial that is activated. Either may be nil.
	Refused    func(err error)
	Unserialed func(name, revision string)
}

// Guard checks the activations into one store.
type Guard struct {
	store storage.Store

	mu   sync.Mutex
	opts Options
	// highest is, by bundle name, the highest serial activated into the
	// store while the guard was registered, and the revision of it.
	highest map[string]activated
}

type activated struct {
	serial   int64
	revision string
}

// Protect registers a guard for the activations into store, replacing the
// one there was; Release unregisters it. It has effect once Install has
// run.
func Protect(store storage.Store, opts Options) *Guard {
	g := &Guard{store: store, opts: opts, highest: map[string]activated{}}
	guardsMu.Lock()
	guards[store] = g
	guardsMu.Unlock()
	return g
}

// Release unregisters the guard; activations into its store are no longer
// checked.
func (g *Guard) Release() {
	guardsMu.Lock()
	defer guardsMu.Unlock()
	if guards[g.store] == g {
		delete(guards, g.store)
	}
}

// Configure replaces the guard's options (a configuration reloaded); the
// serials it has seen activated stay.
func (g *Guard) Configure(opts Options) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.opts = opts
}

// check returns the serials of the bundles in opts, by name, or the error
// that refuses the activation: the first bundle, by name, older than the
// bundle the sidecar trusts for it.
func (g *Guard) check(opts *bundle.ActivateOpts) (map[string]activated, error) {
	g.mu.Lock()
	o, highest := g.opts, g.highest
	g.mu.Unlock()
	accepted := map[string]activated{}
	for _, name := range sortedNames(opts.Bundles) {
		b := opts.Bundles[name]
		serial, err := Serial(b.Manifest)
		if err != nil {
			err = fmt.Errorf("bundle %q refused: %w; the sidecar keeps the bundle it has", name, err)
			g.report(o, err)
			return nil, err
		}
		trusted, why := g.trusted(opts, name, b.Manifest, o, highest)
		if serial < trusted {
			err := refusal(name, serial, b.Manifest.Revision, why)
			g.report(o, err)
			return nil, err
		}
		if serial == 0 && o.Unserialed != nil {
			o.Unserialed(name, b.Manifest.Revision)
		}
		accepted[name] = activated{serial: serial, revision: b.Manifest.Revision}
	}
	return accepted, nil
}

func (g *Guard) report(o Options, err error) {
	if o.Refused != nil {
		o.Refused(err)
	}
}

// trusted is the serial a bundle named name must reach, and what sets it
// ("serial 7 of the active bundle (revision r)", "serial 9 in
// plugins.pat.bundle.min_serial"); 0 and "" when nothing does.
func (g *Guard) trusted(opts *bundle.ActivateOpts, name string, m bundle.Manifest, o Options, highest map[string]activated) (int64, string) {
	var best int64
	var why string
	raise := func(serial int64, reason string) {
		if serial > best {
			best, why = serial, reason
		}
	}
	if o.Floor > 0 && m.Roots != nil && Overlaps(*m.Roots, o.Roots) {
		raise(o.Floor, fmt.Sprintf("serial %d in %s", o.Floor, o.FloorKey))
	}
	if meta, err := bundle.ReadBundleMetadataFromStore(opts.Ctx, opts.Store, opts.Txn, name); err == nil {
		if v, ok := meta[MetaSerial]; ok {
			// A serial that does not parse was refused before it
			// activated: take none.
			if serial, err := ParseSerial(v); err == nil {
				rev, _ := bundle.ReadBundleRevisionFromStore(opts.Ctx, opts.Store, opts.Txn, name)
				raise(serial, fmt.Sprintf("serial %d of the active bundle (revision %s)", serial, quoteRevision(rev)))
			}
		}
	}
	if h, ok := highest[name]; ok {
		raise(h.serial, fmt.Sprintf("serial %d, the highest this sidecar has activated under that name (revision %s)", h.serial, quoteRevision(h.revision)))
	}
	return best, why
}

func (g *Guard) activated(accepted map[string]activated) {
	g.mu.Lock()
	defer g.mu.Unlock()
	highest := maps.Clone(g.highest)
	for name, a := range accepted {
		if a.serial >= highest[name].serial {
			highest[name] = a
		}
	}
	g.highest = highest
}

// RefusedError is the error of an activation refused because the bundle
// is older than the one the sidecar trusts; it wraps ErrRolledBack.
type RefusedError struct {
	Name     string
	Serial   int64 // 0: none
	Revision string
	// Trusted says what the bundle is older than: "serial 7 of the active
	// bundle (revision \"r\")", "serial 9 in plugins.pat.bundle.min_serial".
	Trusted string
}

func (e *RefusedError) Error() string {
	const keep = "; the sidecar keeps the bundle it has (to roll back on purpose, build the older policy with a higher --serial: docs/bundles.md, \"Rollback protection\")"
	if e.Serial == 0 {
		return fmt.Sprintf("bundle %q refused: it has no serial (metadata.%s; revision %s), so it is older than %s%s",
			e.Name, MetaSerial, quoteRevision(e.Revision), e.Trusted, keep)
	}
	return fmt.Sprintf("bundle %q refused: serial %d (revision %s) is older than %s%s",
		e.Name, e.Serial, quoteRevision(e.Revision), e.Trusted, keep)
}

// Unwrap lets callers test errors.Is(err, ErrRolledBack).
func (e *RefusedError) Unwrap() error { return ErrRolledBack }

func refusal(name string, serial int64, revision, why string) error {
	return &RefusedError{Name: name, Serial: serial, Revision: revision, Trusted: why}
}

func quoteRevision(rev string) string {
	if rev == "" {
		return "none"
	}
	return strconv.Quote(rev)
}

func sortedNames(bundles map[string]*bundle.Bundle) []string {
	return slices.Sorted(maps.Keys(bundles))
}

// Overlaps reports whether a root of a lies at, under or above a root of b
// (the empty root is every path): whether bundles with those roots would
// own some path in common.
func Overlaps(a, b []string) bool {
	for _, x := range a {
		x = strings.Trim(x, "/")
		for _, y := range b {
			y = strings.Trim(y, "/")
			if x == "" || y == "" || x == y || strings.HasPrefix(x, y+"/") || strings.HasPrefix(y, x+"/") {
				return true
			}
		}
	}
	return false
}

// Below checks the bundles active in store (read in txn) that own one of
// o.Roots against o.Floor: OPA activates local bundles (--bundle) before
// it builds its plugins, so before a guard can see them. It returns the
// error for the first, by name, whose serial is below the floor. Bundles
// of other roots, and those skip names (the pat plugin's claims), are not
// checked.
func Below(ctx context.Context, store storage.Store, txn storage.Transaction, o Options, skip func(metadata map[string]any) bool) error {
	if o.Floor <= 0 {
		return nil
	}
	names, err := bundle.ReadBundleNamesFromStore(ctx, store, txn)
	if err != nil {
		if storage.IsNotFound(err) {
			return nil
		}
		return err
	}
	slices.Sort(names)
	for _, name := range names {
		roots, err := bundle.ReadBundleRootsFromStore(ctx, store, txn, name)
		if err != nil || !Overlaps(roots, o.Roots) {
			continue
		}
		meta, err := bundle.ReadBundleMetadataFromStore(ctx, store, txn, name)
		if err != nil {
			return err
		}
		if skip != nil && skip(meta) {
			continue
		}
		var serial int64
		if v, ok := meta[MetaSerial]; ok {
			if serial, err = ParseSerial(v); err != nil {
				return fmt.Errorf("bundle %q: %w", name, err)
			}
		}
		if serial >= o.Floor {
			continue
		}
		rev, _ := bundle.ReadBundleRevisionFromStore(ctx, store, txn, name)
		if serial == 0 {
			return fmt.Errorf("bundle %q has no serial (metadata.%s; revision %s), and %s is %d: build it with opa-pat bundle build, or remove the floor (docs/bundles.md, \"Rollback protection\")",
				name, MetaSerial, quoteRevision(rev), o.FloorKey, o.Floor)
		}
		return fmt.Errorf("bundle %q has serial %d (revision %s), older than serial %d in %s: use a newer bundle, or lower the floor (docs/bundles.md, \"Rollback protection\")",
			name, serial, quoteRevision(rev), o.Floor, o.FloorKey)
	}
	return nil
}
