package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/open-policy-agent/opa/v1/logging"
	"github.com/open-policy-agent/opa/v1/runtime"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/util"
	prometheus "github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/opa-pat/opa-pat/bundle"
	"github.com/opa-pat/opa-pat/bundle/enforce"
	"github.com/opa-pat/opa-pat/bundle/rollback"
	"github.com/opa-pat/opa-pat/examples"
	"github.com/opa-pat/opa-pat/plugin/store"
	"github.com/opa-pat/opa-pat/rego"
)

func init() {
	subcommands = append(subcommands, newUpCmd)
}

// Defaults of `opa-pat up`.
const (
	defaultUpStore    = "./opa-pat.db"
	defaultUpAddr     = "127.0.0.1:8181"
	defaultUpExtAuthz = "127.0.0.1:9191"
	defaultUpAdmin    = "127.0.0.1:8282"
	upActor           = "opa-pat up"
)

type upFlags struct {
	store        string
	addr         string
	extAuthz     string
	admin        string
	settingsFile string
	configFile   string
	logLevel     string
	logFormat    string
}

func newUpCmd() *cobra.Command {
	var f upFlags
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start a sidecar with the embedded policy, the example settings and a local store",
		Long: `Start an OPA server with the pat plugin, like "opa-pat run --server", with everything built in:
the embedded policy (data.pat.decision), the example settings as data.pat.settings, and a store
(--store: an SQLite file, or a PostgreSQL database) that is seeded with the example world while it
holds no records. The Envoy ext_authz gRPC server and the admin API listen on their own addresses;
an empty address turns one off (an error when --config-file sets that section: remove it there).

  opa-pat up
  curl -s localhost:8181/v1/data/pat/decision -d '{"input": {...}}'`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			applySidecarRuntime()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return up(ctx, f, cmd.Flags().Changed)
		}),
	}
	fl := cmd.Flags()
	fl.StringVar(&f.store, "store", defaultUpStore, "the token store: an SQLite path or a postgres:// URL; seeded with the example world while it holds nothing")
	fl.StringVarP(&f.addr, "addr", "a", defaultUpAddr, "address of OPA's REST API")
	fl.StringVar(&f.extAuthz, "ext-authz-addr", defaultUpExtAuthz, `address of the Envoy ext_authz gRPC server; "" turns it off (an error if --config-file sets plugins.pat.ext_authz)`)
	fl.StringVar(&f.admin, "admin-addr", defaultUpAdmin, `address of the admin API; "" turns it off (an error if --config-file sets plugins.pat.admin)`)
	fl.StringVar(&f.settingsFile, "settings", "", "settings file (JSON) to use as data.pat.settings instead of the example settings")
	fl.StringVarP(&f.configFile, "config-file", "c", "", "an OPA configuration file to start from; the flags above, when given, override its plugins.pat keys, and their defaults fill in the keys it lacks")
	fl.StringVarP(&f.logLevel, "log-level", "l", "info", "log level: debug, info, warn or error")
	fl.StringVar(&f.logFormat, "log-format", "json", "log format: text, json or json-pretty")
	return cmd
}

func up(ctx context.Context, f upFlags, changed func(flag string) bool) (err error) {
	if f.store == "" {
		return errors.New("--store: give the path of the token store")
	}
	if f.addr == "" {
		return errors.New("--addr: give the address of OPA's REST API")
	}
	cfg, err := readUpConfig(f.configFile)
	if err != nil {
		return err
	}
	location, overrides, err := resolveUp(f, cfg, changed)
	if err != nil {
		return err
	}
	if err := store.CheckLocation(location); err != nil {
		if changed("store") || cfg.Store == nil {
			return fmt.Errorf("--store: %w", err)
		}
		return fmt.Errorf("the configuration file %s: plugins.pat.store: %w", f.configFile, err)
	}

	// Everything given is checked before the store is created and seeded:
	// a mistyped flag must not leave a store holding the demo tokens.
	settingsJSON := examples.Settings
	if f.settingsFile != "" {
		b, err := os.ReadFile(f.settingsFile)
		if err != nil {
			return fmt.Errorf("--settings: %w", err)
		}
		settingsJSON = b
	}
	if _, err := bundle.ParseSettings(settingsJSON); err != nil {
		return fmt.Errorf("--settings: %s: %w", f.settingsFile, err)
	}
	var settings any
	if err := util.UnmarshalJSON(settingsJSON, &settings); err != nil {
		return fmt.Errorf("--settings: %q is not JSON: %w", f.settingsFile, err)
	}
	if _, ok := settings.(map[string]any); !ok {
		return fmt.Errorf("--settings: %q is not a JSON object", f.settingsFile)
	}
	modules, err := rego.Modules()
	if err != nil {
		return fmt.Errorf("reading the embedded policy: %w", err)
	}

	// As opa-pat run does for a sidecar without discovery: no bundle older
	// than the one the sidecar trusts activates (bundle/rollback).
	if c, err := enforce.LoadRunConfig(f.configFile, nil, nil); err == nil && c["discovery"] == nil {
		rollback.Install()
	}

	params := runtime.NewParams()
	params.Addrs = &[]string{f.addr}
	params.AddrSetByUser = true
	params.ConfigFile = f.configFile
	params.ConfigOverrides = overrides
	params.Logging = runtime.LoggingConfig{Level: f.logLevel, Format: f.logFormat}
	params.EnableVersionCheck = false
	params.GracefulShutdownPeriod = 5
	params.StoreBuilder = func(ctx context.Context, _ logging.Logger, _ prometheus.Registerer, _ []byte, _ string) (storage.Store, error) {
		return policyStore(ctx, modules, settings)
	}

	// The runtime checks the whole configuration (plugins.pat included) and
	// the log flags; the plugin opens the store only when it starts.
	rt, err := runtime.NewRuntime(ctx, params)
	if err != nil {
		return err
	}
	seeded, err := seedStore(ctx, location, os.Stderr)
	if err != nil {
		return err
	}
	if seeded != nil {
		defer func() {
			if err != nil {
				seeded.removeIfUnused()
			}
		}()
	}
	return rt.Serve(ctx)
}

// upPlugin is what up needs of plugins.pat in --config-file.
type upPlugin struct {
	Store *struct {
		Path     string `json:"path"`
		Postgres *struct {
			DSN string `json:"dsn"`
		} `json:"postgres"`
	} `json:"store"`
	ExtAuthz *struct{} `json:"ext_authz"`
	Admin    *struct{} `json:"admin"`
}

func readUpConfig(path string) (upPlugin, error) {
	var doc struct {
		Plugins struct {
			Pat upPlugin `json:"pat"`
		} `json:"plugins"`
	}
	if path == "" {
		return doc.Plugins.Pat, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return doc.Plugins.Pat, fmt.Errorf("--config-file: %w", err)
	}
	if err := util.Unmarshal([]byte(enforce.SubstituteEnv(string(b))), &doc); err != nil {
		return doc.Plugins.Pat, fmt.Errorf("--config-file %s: %w", path, err)
	}
	return doc.Plugins.Pat, nil
}

// resolveUp gives the store up seeds and plugins.pat's overrides of
// --config-file: a flag given on the command line wins over the file; a key
// the file lacks takes the flag's default; a key the file sets and no flag
// names stays as the file says.
func resolveUp(f upFlags, cfg upPlugin, changed func(flag string) bool) (location string, overrides []string, err error) {
	switch {
	case changed("store") && cfg.Store != nil && cfg.Store.Postgres != nil:
		return "", nil, fmt.Errorf("--store %s: the configuration file %s sets plugins.pat.store.postgres; give one of the two", store.RedactLocation(f.store), f.configFile)
	case changed("store") || cfg.Store == nil:
		// OPA substitutes ${NAME} in an override as in the file: the store
		// up seeds is the one the plugin opens (--store '${DIR}/pat.db'
		// seeded a file named so and served an empty one). The override
		// gives the substituted value, escaped, so that a comma in the
		// variable's value is not taken for another override.
		location = enforce.SubstituteEnv(f.store)
		// A PostgreSQL database is configured as one, store.postgres.dsn,
		// which GET /v1/config shows without its password. Over a file's
		// store.path (which an override cannot remove) it goes to the path,
		// where the plugin takes a postgres:// URL for the DSN all the same.
		key := "plugins.pat.store.path="
		if store.IsPostgres(location) && (cfg.Store == nil || cfg.Store.Path == "") {
			key = "plugins.pat.store.postgres.dsn="
		}
		overrides = append(overrides, key+escapeOverride(location))
	case cfg.Store.Postgres != nil:
		location = cfg.Store.Postgres.DSN
	default:
		location = cfg.Store.Path
	}
	if location == "" {
		return "", nil, fmt.Errorf("the configuration file %s sets plugins.pat.store without a path or a postgres dsn", f.configFile)
	}
	// OPA's overrides cannot remove a section the file sets, and an empty
	// address is not "off" to the plugin: say so rather than serve on the
	// file's address against the flag.
	if changed("ext-authz-addr") && f.extAuthz == "" && cfg.ExtAuthz != nil {
		return "", nil, fmt.Errorf(`--ext-authz-addr "": the configuration file %s sets plugins.pat.ext_authz; remove it there to turn the ext_authz server off`, f.configFile)
	}
	if changed("admin-addr") && f.admin == "" && cfg.Admin != nil {
		return "", nil, fmt.Errorf(`--admin-addr "": the configuration file %s sets plugins.pat.admin; remove it there to turn the admin API off`, f.configFile)
	}
	if f.extAuthz != "" && (changed("ext-authz-addr") || cfg.ExtAuthz == nil) {
		overrides = append(overrides, "plugins.pat.ext_authz.addr="+escapeOverride(f.extAuthz))
	}
	if f.admin != "" && (changed("admin-addr") || cfg.Admin == nil) {
		overrides = append(overrides, "plugins.pat.admin.addr="+escapeOverride(f.admin))
	}
	return location, overrides, nil
}

// escapeOverride escapes the characters that --set style overrides treat
// as separators.
func escapeOverride(v string) string {
	return strings.NewReplacer(`\`, `\\`, `,`, `\,`).Replace(v)
}

// policyStore is OPA's in-memory store holding the embedded policy and the
// settings at data.pat.settings.
func policyStore(ctx context.Context, modules map[string]string, settings any) (storage.Store, error) {
	// ast values on read, as `opa run --optimize-store-for-read-speed`: a
	// query then reads the settings without converting them.
	s := inmem.NewFromObjectWithOpts(map[string]any{"pat": map[string]any{"settings": settings}},
		inmem.OptRoundTripOnWrite(false), inmem.OptReturnASTValuesOnRead(true))
	err := storage.Txn(ctx, s, storage.WriteParams, func(txn storage.Transaction) error {
		for path, src := range modules {
			if err := s.UpsertPolicy(ctx, txn, "embedded/"+path, []byte(src)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("loading the embedded policy: %w", err)
	}
	return s, nil
}

// seededStore is a SQLite store that up created and seeded in this run.
type seededStore struct {
	location string
	// events is how many audit events the seeded store holds.
	events int
}

// removeIfUnused removes a store up created in this run and then failed to
// serve, so that a failed start leaves nothing behind and the next start
// seeds it again. A store that holds an audit event the seeding did not
// write (a token created, a request reviewed, while the sidecar served) is
// kept.
func (s *seededStore) removeIfUnused() {
	ctx := context.Background()
	db, err := store.OpenReadOnly(ctx, s.location)
	if err != nil {
		return
	}
	events, err := db.ListAudit(ctx, store.AuditFilter{})
	db.Close()
	if err != nil || len(events) != s.events {
		return
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		_ = os.Remove(s.location + suffix)
	}
	fmt.Fprintf(os.Stderr, "opa-pat up: removed %s, which this run created\n", s.location)
}

// seedStore imports the example world into a store that holds nothing yet
// (a new SQLite file, an empty PostgreSQL schema). A store that holds
// anything is left as it is. Several processes seeding one new store at once
// seed it once (store.SeedIfEmpty): the one that did says so on w, the
// others that it was seeded meanwhile. It returns the store when it is a
// SQLite file that did not exist before and this call seeded it.
func seedStore(ctx context.Context, location string, w io.Writer) (*seededStore, error) {
	sqlite := !store.IsPostgres(location)
	existed := true
	if sqlite {
		if _, err := os.Stat(location); errors.Is(err, fs.ErrNotExist) {
			existed = false
		} else if err != nil {
			return nil, fmt.Errorf("--store: %w", err)
		}
	}
	db, err := store.Open(ctx, location)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	res, err := db.SeedIfEmpty(ctx, upActor, func() (*store.Dump, error) {
		// The demo dates move with the calendar (examples.FixturesAt), so
		// that the demo decisions stay those the documentation shows.
		fixtures, err := examples.FixturesAt(time.Now())
		if err != nil {
			return nil, fmt.Errorf("reading the example world: %w", err)
		}
		dump, err := store.ParseDump(bytes.NewReader(fixtures))
		if err != nil {
			return nil, fmt.Errorf("reading the example world: %w", err)
		}
		return dump, nil
	})
	if err != nil {
		if sqlite && !existed {
			// Leave no empty store behind, so that the next start seeds it;
			// one that another process seeded meanwhile stays.
			empty, eerr := db.Empty(ctx)
			db.Close()
			if eerr == nil && empty {
				for _, suffix := range []string{"", "-wal", "-shm"} {
					_ = os.Remove(location + suffix)
				}
			}
		}
		return nil, fmt.Errorf("seeding %s with the example world: %w", store.RedactLocation(location), err)
	}
	if !res.Seeded {
		if res.Meanwhile {
			fmt.Fprintf(w, "opa-pat up: %s was empty, then another process seeded it; serving what it holds: %s\n", store.RedactLocation(location), res.Found)
		}
		return nil, nil
	}
	b, _ := json.Marshal(res.Import)
	// A new SQLite file is created here; an empty file or a PostgreSQL
	// database that someone else created is only filled.
	verb := "created"
	if !sqlite || existed {
		verb = "seeded"
	}
	fmt.Fprintf(w, "opa-pat up: %s %s with the example world %s\n", verb, store.RedactLocation(location), b)
	if !sqlite || existed {
		return nil, nil
	}
	events, err := db.ListAudit(ctx, store.AuditFilter{})
	if err != nil {
		return nil, fmt.Errorf("reading the store %s: %w", store.RedactLocation(location), err)
	}
	return &seededStore{location: location, events: len(events)}, nil
}
