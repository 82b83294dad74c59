package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
the embedded policy (data.pat.decision), the example settings as data.pat.settings, and an SQLite
store (--store) that is seeded with the example world when it does not exist yet. The Envoy
ext_authz gRPC server and the admin API listen on their own addresses; an empty address turns
one off.

  opa-pat up
  curl -s localhost:8181/v1/data/pat/decision -d '{"input": {...}}'`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			applySidecarProcs()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return up(ctx, f)
		}),
	}
	fl := cmd.Flags()
	fl.StringVar(&f.store, "store", defaultUpStore, "path of the token store (SQLite); seeded from the example world when absent")
	fl.StringVarP(&f.addr, "addr", "a", defaultUpAddr, "address of OPA's REST API")
	fl.StringVar(&f.extAuthz, "ext-authz-addr", defaultUpExtAuthz, `address of the Envoy ext_authz gRPC server; "" turns it off`)
	fl.StringVar(&f.admin, "admin-addr", defaultUpAdmin, `address of the admin API; "" turns it off`)
	fl.StringVar(&f.settingsFile, "settings", "", "settings file (JSON) to use as data.pat.settings instead of the example settings")
	fl.StringVarP(&f.configFile, "config-file", "c", "", "an OPA configuration file to start from; the flags above override its plugins.pat keys")
	fl.StringVarP(&f.logLevel, "log-level", "l", "info", "log level: debug, info, warn or error")
	fl.StringVar(&f.logFormat, "log-format", "json", "log format: text, json or json-pretty")
	return cmd
}

func up(ctx context.Context, f upFlags) error {
	if f.store == "" {
		return errors.New("--store: give the path of the token store")
	}
	if f.addr == "" {
		return errors.New("--addr: give the address of OPA's REST API")
	}
	if err := seedStore(ctx, f.store); err != nil {
		return err
	}

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

	params := runtime.NewParams()
	params.Addrs = &[]string{f.addr}
	params.AddrSetByUser = true
	params.ConfigFile = f.configFile
	params.ConfigOverrides = upOverrides(f)
	params.Logging = runtime.LoggingConfig{Level: f.logLevel, Format: f.logFormat}
	params.EnableVersionCheck = false
	params.GracefulShutdownPeriod = 5
	params.StoreBuilder = func(ctx context.Context, _ logging.Logger, _ prometheus.Registerer, _ []byte, _ string) (storage.Store, error) {
		return policyStore(ctx, modules, settings)
	}

	rt, err := runtime.NewRuntime(ctx, params)
	if err != nil {
		return err
	}
	return rt.Serve(ctx)
}

// upOverrides sets plugins.pat from the flags, on top of --config-file.
func upOverrides(f upFlags) []string {
	o := []string{"plugins.pat.store.path=" + escapeOverride(f.store)}
	if f.extAuthz != "" {
		o = append(o, "plugins.pat.ext_authz.addr="+escapeOverride(f.extAuthz))
	}
	if f.admin != "" {
		o = append(o, "plugins.pat.admin.addr="+escapeOverride(f.admin))
	}
	return o
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

// seedStore imports the example world into a store file that does not
// exist yet. An existing store is left as it is.
func seedStore(ctx context.Context, path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("--store: %w", err)
	}
	// The demo dates move with the calendar (examples.FixturesAt), so
	// that the demo decisions stay those the documentation shows.
	fixtures, err := examples.FixturesAt(time.Now())
	if err != nil {
		return fmt.Errorf("reading the example world: %w", err)
	}
	dump, err := store.ParseDump(bytes.NewReader(fixtures))
	if err != nil {
		return fmt.Errorf("reading the example world: %w", err)
	}
	db, err := store.Open(ctx, path)
	if err != nil {
		return err
	}
	res, err := db.Import(ctx, dump, upActor)
	if cerr := db.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		// Leave no empty store behind, so that the next start seeds it.
		for _, suffix := range []string{"", "-wal", "-shm"} {
			_ = os.Remove(path + suffix)
		}
		return fmt.Errorf("seeding %q with the example world: %w", path, err)
	}
	b, _ := json.Marshal(res)
	fmt.Fprintf(os.Stderr, "opa-pat up: created %s with the example world %s\n", path, b)
	return nil
}
