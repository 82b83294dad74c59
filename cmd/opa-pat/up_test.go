package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/opa-pat/opa-pat/plugin/store"
	"github.com/opa-pat/opa-pat/plugin/store/pgtest"
)

// --config-file's plugins.pat against up's flags: a flag given wins, a key
// the file lacks takes the flag's default, a key the file sets stays.
func TestResolveUp(t *testing.T) {
	defaults := upFlags{store: defaultUpStore, extAuthz: defaultUpExtAuthz, admin: defaultUpAdmin}
	t.Setenv("OPA_PAT_TEST_UP_STORE", "/srv/pat/pat.db")
	t.Setenv("OPA_PAT_TEST_UP_COMMA", "/srv/a,b")
	for _, tc := range []struct {
		note      string
		config    string
		flags     upFlags
		changed   []string
		location  string
		overrides []string
		err       string
	}{
		{note: "no file", flags: defaults, location: defaultUpStore, overrides: []string{
			"plugins.pat.store.path=./opa-pat.db", "plugins.pat.ext_authz.addr=127.0.0.1:9191", "plugins.pat.admin.addr=127.0.0.1:8282"}},
		{note: "the file sets them all", flags: defaults,
			config:   "plugins:\n  pat:\n    store: {path: /var/lib/pat.db}\n    ext_authz: {addr: 127.0.0.1:9393}\n    admin: {addr: 127.0.0.1:8484}\n",
			location: "/var/lib/pat.db"},
		{note: "the file on PostgreSQL", flags: defaults,
			config:   "plugins:\n  pat:\n    store:\n      postgres: {dsn: \"postgres://u:pw@db/pat\"}\n",
			location: "postgres://u:pw@db/pat", overrides: []string{"plugins.pat.ext_authz.addr=127.0.0.1:9191", "plugins.pat.admin.addr=127.0.0.1:8282"}},
		{note: "flags given win", flags: upFlags{store: "/tmp/x.db", extAuthz: "127.0.0.1:1", admin: defaultUpAdmin},
			changed:  []string{"store", "ext-authz-addr"},
			config:   "plugins:\n  pat:\n    store: {path: /var/lib/pat.db}\n    ext_authz: {addr: 127.0.0.1:9393}\n    admin: {addr: 127.0.0.1:8484}\n",
			location: "/tmp/x.db", overrides: []string{"plugins.pat.store.path=/tmp/x.db", "plugins.pat.ext_authz.addr=127.0.0.1:1"}},
		{note: "an address turned off", flags: upFlags{store: defaultUpStore, extAuthz: "", admin: defaultUpAdmin}, changed: []string{"ext-authz-addr"},
			location: defaultUpStore, overrides: []string{"plugins.pat.store.path=./opa-pat.db", "plugins.pat.admin.addr=127.0.0.1:8282"}},
		{note: "environment variables, as OPA substitutes them", flags: defaults,
			config:   "plugins:\n  pat:\n    store: {path: ${OPA_PAT_TEST_UP_STORE}}\n    ext_authz: {addr: \"${OPA_PAT_TEST_UNSET}\"}\n    admin: {addr: 127.0.0.1:8484}\n",
			location: "/srv/pat/pat.db"},
		{note: "${} is removed, as OPA removes it", flags: defaults,
			config:   "plugins:\n  pat:\n    store:\n      path: /var/lib/${}pat.db\n    ext_authz: {addr: 127.0.0.1:9393}\n    admin: {addr: 127.0.0.1:8484}\n",
			location: "/var/lib/pat.db"},
		{note: "--store with a variable, which OPA substitutes in the override", flags: upFlags{store: "${OPA_PAT_TEST_UP_STORE}", extAuthz: defaultUpExtAuthz, admin: defaultUpAdmin},
			changed: []string{"store"}, location: "/srv/pat/pat.db", overrides: []string{
				"plugins.pat.store.path=/srv/pat/pat.db", "plugins.pat.ext_authz.addr=127.0.0.1:9191", "plugins.pat.admin.addr=127.0.0.1:8282"}},
		{note: "--store with a variable that holds a comma", flags: upFlags{store: "${OPA_PAT_TEST_UP_COMMA}/pat.db"},
			changed: []string{"store"}, location: "/srv/a,b/pat.db", overrides: []string{`plugins.pat.store.path=/srv/a\,b/pat.db`}},
		{note: "--store with an unset variable is left for the plugin to refuse", flags: upFlags{store: "${OPA_PAT_TEST_UNSET}/pat.db"},
			changed: []string{"store"}, location: "${OPA_PAT_TEST_UNSET}/pat.db", overrides: []string{"plugins.pat.store.path=${OPA_PAT_TEST_UNSET}/pat.db"}},
		{note: "an address turned off over the file's", flags: upFlags{store: defaultUpStore, extAuthz: defaultUpExtAuthz, admin: ""}, changed: []string{"admin-addr"},
			config: "plugins:\n  pat:\n    store: {path: /var/lib/pat.db}\n    admin: {addr: 127.0.0.1:8484}\n",
			err:    `--admin-addr "": the configuration file CONFIG sets plugins.pat.admin; remove it there to turn the admin API off`},
		{note: "the gate turned off over the file's", flags: upFlags{store: defaultUpStore, extAuthz: "", admin: defaultUpAdmin}, changed: []string{"ext-authz-addr"},
			config: "plugins:\n  pat:\n    store: {path: /var/lib/pat.db}\n    ext_authz: {addr: 127.0.0.1:9393}\n",
			err:    `--ext-authz-addr "": the configuration file CONFIG sets plugins.pat.ext_authz; remove it there to turn the ext_authz server off`},
		{note: "an address turned off that the file does not set", flags: upFlags{store: defaultUpStore, extAuthz: defaultUpExtAuthz, admin: ""}, changed: []string{"admin-addr"},
			config:   "plugins:\n  pat:\n    store: {path: /var/lib/pat.db}\n",
			location: "/var/lib/pat.db", overrides: []string{"plugins.pat.ext_authz.addr=127.0.0.1:9191"}},
		{note: "--store a postgres:// URL: the DSN", flags: upFlags{store: "postgres://u:pw@db/pat?sslmode=disable", extAuthz: defaultUpExtAuthz}, changed: []string{"store"},
			location: "postgres://u:pw@db/pat?sslmode=disable", overrides: []string{
				"plugins.pat.store.postgres.dsn=postgres://u:pw@db/pat?sslmode=disable", "plugins.pat.ext_authz.addr=127.0.0.1:9191"}},
		{note: "--store a postgres:// URL beside the file's store section", flags: upFlags{store: "postgres://u:pw@db/pat"}, changed: []string{"store"},
			config:   "plugins:\n  pat:\n    store: {max_staleness: 30s}\n",
			location: "postgres://u:pw@db/pat", overrides: []string{"plugins.pat.store.postgres.dsn=postgres://u:pw@db/pat"}},
		{note: "--store a postgres:// URL over the file's path, which the plugin takes for the DSN", flags: upFlags{store: "postgres://u:pw@db/pat"}, changed: []string{"store"},
			config:   "plugins:\n  pat:\n    store: {path: /var/lib/pat.db}\n",
			location: "postgres://u:pw@db/pat", overrides: []string{"plugins.pat.store.path=postgres://u:pw@db/pat"}},
		{note: "--store beside the file's postgres", flags: upFlags{store: "/tmp/x.db"}, changed: []string{"store"},
			config: "plugins:\n  pat:\n    store:\n      postgres: {dsn: \"postgres://u:pw@db/pat\"}\n",
			err:    "--store /tmp/x.db: the configuration file CONFIG sets plugins.pat.store.postgres; give one of the two"},
	} {
		t.Run(tc.note, func(t *testing.T) {
			f := tc.flags
			if tc.config != "" {
				f.configFile = filepath.Join(t.TempDir(), "config.yaml")
				if err := os.WriteFile(f.configFile, []byte(tc.config), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cfg, err := readUpConfig(f.configFile)
			if err != nil {
				t.Fatal(err)
			}
			changed := func(name string) bool { return slices.Contains(tc.changed, name) }
			location, overrides, err := resolveUp(f, cfg, changed)
			if tc.err != "" {
				if err == nil || err.Error() != strings.ReplaceAll(tc.err, "CONFIG", f.configFile) {
					t.Fatalf("error %v; want %s", err, tc.err)
				}
				return
			}
			if err != nil || location != tc.location || !reflect.DeepEqual(overrides, tc.overrides) {
				t.Fatalf("got %q %q %v\nwant %q %q", location, overrides, err, tc.location, tc.overrides)
			}
		})
	}
}

// up seeds a store only while it holds nothing: a second start, on SQLite
// or on PostgreSQL, keeps what was changed since.
func TestSeedStoreOnlyWhenEmpty(t *testing.T) {
	locations := map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return filepath.Join(t.TempDir(), "pat.db") },
		"postgres": func(t *testing.T) string { return pgtest.Database(t, "pat_up_") },
	}
	for name, location := range locations {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			loc := location(t)
			if _, err := seedStore(ctx, loc, io.Discard); err != nil {
				t.Fatal(err)
			}
			db, err := store.Open(ctx, loc)
			if err != nil {
				t.Fatal(err)
			}
			tokens, err := db.ListTokens(ctx, store.TokenFilter{})
			if err != nil || len(tokens) == 0 {
				t.Fatalf("seeded store: %d tokens, %v", len(tokens), err)
			}
			if err := db.RevokeToken(ctx, tokens[0].ID, "test", ""); err != nil {
				t.Fatal(err)
			}
			db.Close()

			if _, err := seedStore(ctx, loc, io.Discard); err != nil {
				t.Fatal(err)
			}
			db, err = store.Open(ctx, loc)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			again, err := db.ListTokens(ctx, store.TokenFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if len(again) != len(tokens) {
				t.Fatalf("%d tokens after the second start, %d before: seeded again", len(again), len(tokens))
			}
			for _, tk := range again {
				if tk.ID == tokens[0].ID && !tk.Revoked {
					t.Fatalf("token %d is active again after the second start", tk.ID)
				}
			}
		})
	}
}

// Several `opa-pat up` starting together on one new store seed it once: one
// says it created the store, and records the import; each other one says
// that another process seeded it meanwhile, or (when it looked after the
// seeding) nothing, as a start on a seeded store does.
func TestSeedStoreConcurrently(t *testing.T) {
	const world = `{"Users":5,"Memberships":7,"Repositories":6,"Tokens":13,"Grants":6}`
	const found = "5 users, 7 memberships, 6 repositories, 13 tokens, 6 requests, 7 audit_events"
	for _, tc := range []struct {
		backend  string
		starts   int
		location func(t *testing.T) string
		// A database is only seeded. A new file is created by the start
		// that seeds it, or by another that opened it first, and then
		// seeded: either may win the import.
		verbs []string
	}{
		{backend: "sqlite", starts: 2, location: func(t *testing.T) string { return filepath.Join(t.TempDir(), "pat.db") }, verbs: []string{"created", "seeded"}},
		{backend: "postgres", starts: 4, location: func(t *testing.T) string { return pgtest.Database(t, "pat_upseed_") }, verbs: []string{"seeded"}},
	} {
		t.Run(tc.backend, func(t *testing.T) {
			ctx := context.Background()
			loc := tc.location(t)
			outs := make([]strings.Builder, tc.starts)
			errs := make([]error, tc.starts)
			var wg sync.WaitGroup
			for i := range tc.starts {
				wg.Go(func() { _, errs[i] = seedStore(ctx, loc, &outs[i]) })
			}
			wg.Wait()
			where := store.RedactLocation(loc)
			var created []string
			for _, verb := range tc.verbs {
				created = append(created, "opa-pat up: "+verb+" "+where+" with the example world "+world+"\n")
			}
			meanwhile := "opa-pat up: " + where + " was empty, then another process seeded it; serving what it holds: " + found + "\n"
			var seeded int
			for i := range outs {
				if errs[i] != nil {
					t.Fatalf("start %d: %v", i, errs[i])
				}
				switch out := outs[i].String(); {
				case slices.Contains(created, out):
					seeded++
				case out == meanwhile, out == "":
				default:
					t.Errorf("start %d printed %q; want %q, %q or nothing", i, out, created, meanwhile)
				}
			}
			if seeded != 1 {
				t.Errorf("%d starts said they created the store; want exactly 1", seeded)
			}
			db, err := store.OpenReadOnly(ctx, loc)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			imports, err := db.ListAudit(ctx, store.AuditFilter{Action: store.ActionStoreImport})
			if err != nil || len(imports) != 1 || imports[0].Actor != upActor {
				t.Fatalf("store.import events: %+v, %v; want exactly one, by %q", imports, err, upActor)
			}
			tokens, err := db.ListTokens(ctx, store.TokenFilter{})
			if err != nil || len(tokens) != 13 {
				t.Fatalf("%d tokens, %v; want the example world's 13", len(tokens), err)
			}
		})
	}
}
