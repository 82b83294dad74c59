// Package plugin is the `pat` OPA plugin: it opens the token store, loads
// the in-memory index the pat.* built-ins answer from, keeps it current from
// the store's change log, records the active settings for the CLI, and runs
// the services the configuration asks for (the Envoy ext_authz server, the
// admin API).
package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/logging"
	"github.com/open-policy-agent/opa/v1/plugins"
	"github.com/open-policy-agent/opa/v1/storage"

	"github.com/opa-pat/opa-pat/bundle/enforce"
	"github.com/opa-pat/opa-pat/bundle/rollback"
	"github.com/opa-pat/opa-pat/plugin/admin"
	"github.com/opa-pat/opa-pat/plugin/builtins"
	"github.com/opa-pat/opa-pat/plugin/extauthz"
	"github.com/opa-pat/opa-pat/plugin/index"
	"github.com/opa-pat/opa-pat/plugin/irvm"
	"github.com/opa-pat/opa-pat/plugin/issue"
	"github.com/opa-pat/opa-pat/plugin/lastused"
	"github.com/opa-pat/opa-pat/plugin/store"
	"github.com/opa-pat/opa-pat/plugin/token"
)

// Name is the plugin's name under plugins: in OPA's configuration.
const Name = "pat"

// settingsPath is where the settings live in OPA's data.
var settingsPath = storage.MustParsePath("/pat/settings")

// Factory builds the plugin for OPA's runtime.
type Factory struct{}

// Validate parses and checks plugins.pat.
func (Factory) Validate(m *plugins.Manager, config []byte) (any, error) {
	// Signed bundles (bundle/enforce): refuse a bundle source that would load
	// unsigned bundles, in a configuration without keys, or without a
	// signing block beside keys.
	if m != nil {
		if err := enforce.RequireSigningConfig(m.GetConfig()); err != nil {
			return nil, err
		}
	}
	c, err := ParseConfig(config)
	if err != nil {
		return nil, err
	}
	// irvm becomes the evaluator of every query that names no target, all
	// against the sidecar's store; discovery evaluates its configuration
	// against a store of its own.
	if m != nil && c.Evaluator == EvaluatorIRVM && len(m.Config.Discovery) > 0 {
		return nil, fmt.Errorf(`%w: evaluator: %q cannot be combined with discovery; set evaluator: %q`,
			ErrInvalidConfig, EvaluatorIRVM, EvaluatorTopdown)
	}
	// OPA's GET /v1/config shows each plugin's section as written, so the
	// manager keeps this one with the DSN's password hidden; the plugin uses
	// c. With discovery the section comes from the discovery bundle and the
	// manager parses it again, so there it stays as written (docs/postgres.md
	// says to give the password through PGPASSWORD or a passfile instead).
	if m != nil && m.Config != nil && len(m.Config.Discovery) == 0 {
		if hidden, ok := hideDSNPassword(m.Config.Plugins[Name], c); ok {
			m.Config.Plugins[Name] = hidden
		}
	}
	// opa.runtime() shows policies and POST /v1/query the configuration
	// file as read and the environment: the DSN's password, and
	// PGPASSWORD, are hidden there too.
	if m != nil {
		hideInRuntimeInfo(m.Info, c)
	}
	if c.ExtAuthz != nil {
		if _, err := extauthz.ParseConfig(c.ExtAuthz); err != nil {
			return nil, err
		}
	}
	if c.Admin != nil { // admin API (plugin/admin)
		if _, err := admin.ParseConfig(c.Admin); err != nil {
			return nil, err
		}
	}
	// A floor that nothing enforces would be a promise not kept.
	if n := c.MinBundleSerial(); n > 0 && !rollback.Installed() {
		return nil, fmt.Errorf(`%w: bundle.min_serial: %d needs opa-pat's bundle activator, which this process has not installed: `+
			`opa-pat run and opa-pat up install it for a sidecar without discovery (docs/bundles.md, "Rollback protection")`, ErrInvalidConfig, n)
	}
	return c, nil
}

// New returns the plugin, not yet started.
func (Factory) New(m *plugins.Manager, config any) plugins.Plugin {
	p := &Plugin{manager: m, config: config.(*Config)}
	// Before OPA's bundle plugin starts: it activates a persisted bundle
	// in its Start.
	p.protect()
	m.UpdatePluginStatus(Name, &plugins.Status{State: plugins.StateNotReady})
	return p
}

// Lookup returns the pat plugin of a manager, or nil.
func Lookup(m *plugins.Manager) *Plugin {
	if p, ok := m.Plugin(Name).(*Plugin); ok {
		return p
	}
	return nil
}

// service is something the plugin runs beside the index: the ext_authz
// server, the admin API. Start returns once the service serves; Stop
// returns once it has stopped.
type service interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context)
}

// Plugin is the running pat plugin.
type Plugin struct {
	manager *plugins.Manager

	mu        sync.Mutex
	config    *Config
	db        *store.DB
	index     *index.Index
	services  []service
	stopIndex context.CancelFunc
	indexDone chan struct{}
	uninstall func()
	// source is what the built-ins answer from while the plugin runs.
	source *builtins.Source
	// undefault hands the process's queries back to topdown (irvm.SetDefault).
	undefault func()
	// failure is set when a service stopped by itself (serviceFailed).
	failure atomic.Pointer[string]
	// maskWake wakes keepMask's goroutine after a policy change; nil while
	// the plugin is stopped. maskTrigger registers the compiler trigger
	// once (OPA cannot unregister one).
	maskWake    atomic.Pointer[chan struct{}]
	maskTrigger sync.Once
	stopMask    func()
	// settingsFailure is set while data.pat.settings are invalid
	// (recordSettings): token decisions deny and the status says why.
	settingsFailure atomic.Pointer[string]
	// behind is the error the index's follower last met, until it catches
	// up: the plugin status names it when the store itself reports none (a
	// SQLite file corrupted in place fails the read, not the connection).
	behind  atomic.Pointer[followFailure]
	trigger storage.TriggerHandle

	settingsMu   sync.Mutex
	lastSettings []byte

	health storeHealth // health.go

	// guard refuses bundles older than the one the sidecar trusts
	// (rollback.go); nil when the activator is not installed.
	guard *rollback.Guard
}

// Manager is the OPA plugin manager the plugin runs in.
func (p *Plugin) Manager() *plugins.Manager { return p.manager }

// Config is the configuration in effect.
func (p *Plugin) Config() *Config {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.config
}

// Store is the open token store, nil while the plugin is stopped.
func (p *Plugin) Store() *store.DB {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.db
}

// Index is the in-memory index the built-ins answer from, nil while the
// plugin is stopped.
func (p *Plugin) Index() *index.Index {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.index
}

func (p *Plugin) logger() logging.Logger {
	return p.manager.Logger().WithFields(map[string]any{"plugin": Name})
}

// Start opens the store, loads the index, installs it for the built-ins and
// starts the configured services. The status is OK only once all of that
// is done.
func (p *Plugin) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.start(ctx); err != nil {
		p.manager.UpdatePluginStatus(Name, &plugins.Status{State: plugins.StateErr, Message: err.Error()})
		return err
	}
	if msg := p.settingsFailure.Load(); msg != nil {
		p.manager.UpdatePluginStatus(Name, &plugins.Status{State: plugins.StateErr, Message: *msg})
		return nil
	}
	p.manager.UpdatePluginStatus(Name, &plugins.Status{State: plugins.StateOK})
	return nil
}

func (p *Plugin) start(ctx context.Context) (err error) {
	cfg := p.config
	p.failure.Store(nil)
	p.settingsFailure.Store(nil)
	where := p.describeStore()
	defer func() {
		if err != nil {
			p.stop(ctx)
		}
	}()

	// First: OPA's API must refuse a policy under pat before the bundle
	// brings one, and the API listens once the plugins have started.
	if err := p.claim(ctx); err != nil {
		return err
	}
	if err := p.checkRollback(ctx); err != nil {
		return err
	}

	db, err := store.Open(ctx, cfg.Location()) // its errors name the store
	if err != nil {
		return err
	}
	p.db = db
	// A store a newer opa-pat migrated, marked compatible with this one:
	// it serves as this version's, and the operator should know why the
	// newer version's features do not show.
	if notice := db.SchemaNotice(); notice != "" {
		p.logger().Warn("Token store %s: %s.", where, notice)
	}

	prefixes, err := p.prefixes(ctx, db)
	if err != nil {
		return fmt.Errorf("token store %s: %w", where, err)
	}

	idx := index.New()
	idx.SetMaxStaleness(cfg.MaxStaleness())
	if err := idx.Load(ctx, db); err != nil {
		return fmt.Errorf("loading the token store %s: %w", where, err)
	}
	p.index = idx
	token.NotePrefixes(prefixes) // for the sidecar's log filter
	p.source = &builtins.Source{Index: idx, Prefixes: prefixes}
	// Settings are checked before the built-ins answer: a source installed
	// first would answer for a moment as if they were valid.
	if err := p.watchSettings(ctx, db); err != nil {
		return fmt.Errorf("watching data.pat.settings: %w", err)
	}
	p.uninstall = builtins.Install(p.source)
	if cfg.Evaluator == EvaluatorIRVM {
		// Queries prepared from now on (OPA's REST API, ext_authz, the
		// admin API) run on irvm; the ones OPA's server prepared before
		// are prepared again on the next policy activation.
		p.undefault = irvm.SetDefault(p.manager.Store)
	}
	p.logger().Info("Token store %s loaded: %s.", where, idx)

	followCtx, cancel := context.WithCancel(context.Background())
	p.stopIndex, p.indexDone = cancel, make(chan struct{})
	p.health.set(db, idx)
	p.registerMetrics()
	go func(done chan struct{}) {
		defer close(done)
		var wg sync.WaitGroup
		defer wg.Wait()
		followed := &followLog{logger: p.logger(), where: where, bound: cfg.MaxStaleness()}
		wg.Go(func() { p.watchHealth(followCtx, db, idx, cfg.MaxStaleness(), where, followed) })
		reloads := idx.Reloads()
		idx.Follow(followCtx, db, index.DefaultPollInterval, func(err error) {
			p.behind.Store(&followFailure{msg: err.Error(), records: errors.As(err, new(*index.RecordError))})
			followed.failed(err, idx.CurrentAt())
		}, func() {
			p.behind.Store(nil)
			followed.caughtUp(idx.CurrentAt())
			if n := idx.Reloads(); n != reloads {
				reloads = n
				why := idx.LastReload()
				switch {
				case errors.Is(why, store.ErrChangesPruned):
					p.logger().Warn("Token store %s: the change log was pruned past the index, which loaded the store afresh: %s.", where, idx)
				case errors.Is(why, index.ErrStoreSettling):
					// Rows came back without changes (a restore in several
					// transactions): the error names the tables and counts.
					p.logger().Warn("Token store %s: %v; the index loaded the store afresh: %s; "+
						"it compares the tables' row counts on every poll until they have not changed for %s.", where, why, idx, index.DefaultSettleQuiet)
				default:
					// A backup restored or the store created anew under the
					// sidecar: say which, so that the operator knows.
					p.logger().Warn("Token store %s: %v; the index loaded the store afresh: %s.", where, why, idx)
				}
			}
		})
	}(p.indexDone)

	if err := p.ensureMask(ctx); err != nil {
		return fmt.Errorf("adding the decision-log mask: %w", err)
	}
	p.stopMask = p.keepMask()

	services, err := p.newServices(cfg)
	if err != nil {
		return err
	}
	for _, s := range services {
		if err := s.Start(ctx); err != nil {
			return err
		}
		p.services = append(p.services, s)
	}
	return nil
}

// prefixes are the token prefixes in effect: the configured ones, which are
// recorded in the store so that the CLI issues tokens with them, or else the
// ones the store records (GitHub's by default).
func (p *Plugin) prefixes(ctx context.Context, db *store.DB) (token.Prefixes, error) {
	if p.config.TokenPrefixes == nil {
		return db.Prefixes(ctx)
	}
	want := p.config.Prefixes()
	have, err := db.Prefixes(ctx)
	if err != nil || have == want {
		return want, err
	}
	if err := db.SetMeta(ctx, store.MetaClassicPrefix, want.Classic); err != nil {
		return want, err
	}
	return want, db.SetMeta(ctx, store.MetaFineGrainedPrefix, want.FineGrained)
}

// serviceFailed records that a service stopped by itself: the plugin's
// status is ERROR with err until the plugin is started again.
func (p *Plugin) serviceFailed(err error) {
	msg := fmt.Sprintf("ext_authz gRPC server stopped serving: %v; restart the sidecar", err)
	p.failure.Store(&msg)
	p.manager.UpdatePluginStatus(Name, &plugins.Status{State: plugins.StateErr, Message: msg})
}

// newServices builds the services the configuration asks for, in start
// order. They are stopped in reverse order.
func (p *Plugin) newServices(cfg *Config) ([]service, error) {
	var out []service
	if cfg.ExtAuthz != nil {
		c, err := extauthz.ParseConfig(cfg.ExtAuthz)
		if err != nil {
			return nil, err
		}
		// Cached decisions are used only at the index version they were
		// made at, and only while the built-ins answer (a stale index, invalid
		// settings: the Check is evaluated and denies).
		out = append(out, extauthz.New(p.manager, c, extauthz.WithVersion(p.index.Seq), extauthz.WithCurrent(builtins.Current), extauthz.WithFailureHook(p.serviceFailed)))
	}
	// token_last_used_at: uses marked by pat.token, written in batches (plugin/lastused).
	out = append(out, lastused.NewService(p.db, lastUsedInterval, p.lastUsedFailed()))
	if cfg.Admin != nil { // admin API (plugin/admin)
		c, err := admin.ParseConfig(cfg.Admin)
		if err != nil {
			return nil, err
		}
		out = append(out, admin.New(c, admin.Deps{Manager: p.manager, Store: p.db, Prefixes: builtins.Installed().Prefixes}))
	}
	return out, nil
}

// lastUsedInterval is how often tokens' last use is written; tests
// shorten it.
var lastUsedInterval = lastused.DefaultInterval

// lastUsedFailed is what the plugin does when recording tokens' last use
// fails (a role without UPDATE on tokens, the store unreachable): a
// warning, once per error rather than on every flush, and an info line
// once it works again. Decisions do not wait for these writes, and the
// uses are kept for the next one.
func (p *Plugin) lastUsedFailed() func(error) {
	var last string // only the recorder's goroutine calls it, Stop's last flush after that
	return func(err error) {
		switch {
		case err == nil:
			if last != "" {
				p.logger().Info("Recording token_last_used_at works again.")
			}
			last = ""
		case err.Error() != last:
			last = err.Error()
			p.logger().Warn("Recording token_last_used_at: %v; token decisions are not affected, and the uses are recorded once it works (said once until then).", err)
		}
	}
}

// claim reserves the bundle's roots in OPA's store (claimRoots).
func (p *Plugin) claim(ctx context.Context) error {
	name, err := p.claimRoots(ctx)
	if err != nil {
		return fmt.Errorf("reserving the roots %s of the bundle in OPA's store: %w", strings.Join(ClaimedRoots, ", "), err)
	}
	if name != "" {
		p.logger().Info("Reserved the roots %s for bundle %q until it activates: OPA's API refuses policies and data under them.", strings.Join(ClaimedRoots, ", "), name)
	}
	return nil
}

// Stop stops the services, the index and closes the store, and releases
// the claim on the bundle's roots.
func (p *Plugin) Stop(ctx context.Context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stop(ctx)
	if err := p.releaseClaims(ctx); err != nil {
		p.logger().Warn("Releasing the roots reserved for the bundle: %v.", err)
	}
	if p.guard != nil {
		p.guard.Release()
		p.guard = nil
	}
	p.manager.UpdatePluginStatus(Name, &plugins.Status{State: plugins.StateNotReady})
}

func (p *Plugin) stop(ctx context.Context) {
	for i := len(p.services) - 1; i >= 0; i-- {
		p.services[i].Stop(ctx)
	}
	p.services = nil
	if p.stopMask != nil {
		p.stopMask()
		p.stopMask = nil
	}
	p.dropMask(ctx)
	if p.trigger != nil {
		_ = storage.Txn(ctx, p.manager.Store, storage.WriteParams, func(txn storage.Transaction) error {
			p.trigger.Unregister(ctx, txn)
			return nil
		})
		p.trigger = nil
	}
	if p.uninstall != nil {
		p.uninstall()
		p.uninstall = nil
	}
	if p.undefault != nil {
		p.undefault()
		p.undefault = nil
	}
	if p.stopIndex != nil {
		p.stopIndex()
		<-p.indexDone
		p.stopIndex, p.indexDone = nil, nil
	}
	p.index = nil
	p.health.set(nil, nil)
	if p.db != nil {
		if err := p.db.Close(); err != nil {
			p.logger().Warn("Closing the token store %s: %v.", p.describeStore(), err)
		}
		p.db = nil
	}
}

// Reconfigure restarts the plugin with a new configuration; it returns early
// when nothing changed.
func (p *Plugin) Reconfigure(ctx context.Context, config any) {
	cfg := config.(*Config)
	p.mu.Lock()
	defer p.mu.Unlock()
	// The bundle sources may have changed (discovery) while plugins.pat has
	// not: claim for the source configured now.
	if err := p.claim(ctx); err != nil {
		p.logger().Error("%v.", err)
	}
	// bundle.min_serial takes effect without a restart of the plugin.
	if p.guard != nil {
		p.guard.Configure(p.rollbackOptions(cfg))
	}
	if p.config.Equal(cfg) {
		p.config = cfg
		return
	}
	p.stop(ctx)
	p.config = cfg
	if err := p.start(ctx); err != nil {
		p.logger().Error("Reconfiguring failed: %v.", err)
		p.manager.UpdatePluginStatus(Name, &plugins.Status{State: plugins.StateErr, Message: err.Error()})
		return
	}
	p.manager.UpdatePluginStatus(Name, &plugins.Status{State: plugins.StateOK})
}

// describeStore names the store in messages, without a DSN's password.
func (p *Plugin) describeStore() string {
	if p.config.Store.Postgres != nil {
		return fmt.Sprintf("postgres %q", store.RedactURL(p.config.Location()))
	}
	return fmt.Sprintf("%q", p.config.Location())
}

// watchSettings records data.pat.settings in the store's meta now and after
// every commit that changes OPA's data (a bundle activation), so that the
// CLI applies the creation rules the sidecars enforce.
func (p *Plugin) watchSettings(ctx context.Context, db *store.DB) error {
	return storage.Txn(ctx, p.manager.Store, storage.WriteParams, func(txn storage.Transaction) error {
		p.recordSettings(ctx, txn, db)
		h, err := p.manager.Store.Register(ctx, txn, storage.TriggerConfig{
			OnCommit: func(ctx context.Context, txn storage.Transaction, event storage.TriggerEvent) {
				if event.DataChanged() {
					p.recordSettings(ctx, txn, db)
				}
			},
		})
		p.trigger = h
		return err
	})
}

// recordSettings reads data.pat.settings in txn and, when they differ from
// what was last recorded, writes them to the store's meta.
func (p *Plugin) recordSettings(ctx context.Context, txn storage.Transaction, db *store.DB) {
	v, err := p.manager.Store.Read(ctx, txn, settingsPath)
	if err != nil {
		if !storage.IsNotFound(err) {
			p.logger().Warn("Reading data.pat.settings: %v.", err)
		} else {
			p.settingsChecked(nil) // absent: every default
		}
		return
	}
	if av, ok := v.(ast.Value); ok { // the store may return AST values
		if v, err = ast.JSON(av); err != nil {
			p.logger().Warn("Encoding data.pat.settings: %v.", err)
			return
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		p.logger().Warn("Encoding data.pat.settings: %v.", err)
		return
	}
	p.settingsMu.Lock()
	defer p.settingsMu.Unlock()
	if string(b) == string(p.lastSettings) {
		return
	}
	// Settings that break the schema (loaded as plain data, or written
	// through OPA's API, without the bundle build's check) would read as the
	// defaults where they are broken: deny instead until they are fixed.
	if _, err := issue.ParseSettings(b); err != nil {
		p.lastSettings = nil // so that the valid ones, back, count as new
		p.settingsChecked(err)
		return
	}
	p.settingsChecked(nil)
	if err := db.SetSettings(ctx, b); err != nil {
		p.logger().Warn("Recording data.pat.settings in the token store: %v.", err)
		return
	}
	p.lastSettings = b
}

// settingsChecked records whether data.pat.settings are valid: while they
// are not, pat.token fails (token decisions deny, 503) and the plugin's
// status is ERROR with the problems.
func (p *Plugin) settingsChecked(err error) {
	if err == nil {
		if p.settingsFailure.Swap(nil) != nil {
			p.logger().Info("data.pat.settings are valid again: token decisions resume.")
		}
		if p.source != nil {
			p.source.SetSettingsError(nil)
		}
		return
	}
	msg := fmt.Sprintf("data.pat.settings are invalid (%v); token decisions deny until they are fixed", err)
	if old := p.settingsFailure.Swap(&msg); old == nil || *old != msg {
		p.logger().Error("%s.", msg)
	}
	if p.source != nil {
		p.source.SetSettingsError(errors.New(msg))
	}
	// The status follows within healthInterval (watchHealth).
}
