package plugin

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/plugins"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/opa-pat/opa-pat/plugin/token"
)

func TestParseConfig(t *testing.T) {
	for _, tc := range []struct {
		note     string
		config   string
		location string
		prefixes token.Prefixes
		extAuthz string
		admin    string
		err      string
	}{
		{note: "path only", config: `{"store": {"path": "/var/lib/opa-pat/pat.db"}}`,
			location: "/var/lib/opa-pat/pat.db", prefixes: token.DefaultPrefixes},
		{note: "yaml with every section", config: "store: {path: pat.db}\ntoken_prefixes: {classic: acp_, fine_grained: acme_pat_}\next_authz: {addr: \"127.0.0.1:9191\"}\nadmin: {addr: \"127.0.0.1:8282\"}\n",
			location: "pat.db", prefixes: token.Prefixes{Classic: "acp_", FineGrained: "acme_pat_"},
			extAuthz: `{"addr":"127.0.0.1:9191"}`, admin: `{"addr":"127.0.0.1:8282"}`},
		{note: "one prefix keeps the other default", config: `{"store": {"path": "pat.db"}, "token_prefixes": {"classic": "acp_"}}`,
			location: "pat.db", prefixes: token.Prefixes{Classic: "acp_", FineGrained: "github_pat_"}},
		{note: "null sections are absent", config: `{"store": {"path": "pat.db"}, "ext_authz": null, "admin": null}`,
			location: "pat.db", prefixes: token.DefaultPrefixes},
		{note: "postgres", config: `{"store": {"postgres": {"dsn": "postgres://opa@db/pat"}}}`,
			location: "postgres://opa@db/pat", prefixes: token.DefaultPrefixes},
		{note: "a postgres:// URL as the path is the DSN", config: `{"store": {"path": "postgres://opa:hunter2@db/pat"}}`,
			location: "postgres://opa:hunter2@db/pat", prefixes: token.DefaultPrefixes},
		{note: "a postgres:// URL as the path beside postgres, password hidden", config: `{"store": {"path": "postgres://opa:hunter2@db/a", "postgres": {"dsn": "postgres://db/b"}}}`,
			err: `invalid configuration for plugin "pat": store: set either path or postgres, not both (path is "postgres://opa:xxxxx@db/a")`},
		{note: "another database's URL as the path, password hidden", config: `{"store": {"path": "mysql://u:hunter2@db/pat"}}`,
			err: `invalid configuration for plugin "pat": store.path: "mysql://u:xxxxx@db/pat" is neither a postgres:// URL nor a file path`},
		{note: "a key=value DSN as the path, password hidden", config: `{"store": {"path": "host=db user=u password=hunter2 dbname=pat"}}`,
			err: `invalid configuration for plugin "pat": store.path: "host=db user=u password=xxxxx dbname=pat" is a key=value connection string; give the database as a postgres:// URL (docs/postgres.md)`},
		{note: "no store", config: `{}`,
			err: `invalid configuration for plugin "pat": store.path: missing value (a file such as "/var/lib/opa-pat/pat.db", or store.postgres.dsn)`},
		{note: "blank path", config: `{"store": {"path": "  "}}`,
			err: `invalid configuration for plugin "pat": store.path: "  " is blank`},
		{note: "path and postgres", config: `{"store": {"path": "pat.db", "postgres": {"dsn": "postgres://db/pat"}}}`,
			err: `invalid configuration for plugin "pat": store: set either path or postgres, not both (path is "pat.db")`},
		{note: "postgres without dsn", config: `{"store": {"postgres": {}}}`,
			err: `invalid configuration for plugin "pat": store.postgres.dsn: missing value (e.g. "postgres://opa-pat@db/opa_pat")`},
		{note: "postgres dsn not a url, password hidden", config: `{"store": {"postgres": {"dsn": "mysql://u:secret@db/pat"}}}`,
			err: `invalid configuration for plugin "pat": store.postgres.dsn: "mysql://u:xxxxx@db/pat" is not a postgres:// URL`},
		{note: "a key=value DSN, password hidden", config: `{"store": {"postgres": {"dsn": "host=db user=u password=S3cretPw_xyz dbname=pat"}}}`,
			err: `invalid configuration for plugin "pat": store.postgres.dsn: "host=db user=u password=xxxxx dbname=pat" is a key=value connection string; give the database as a postgres:// URL (docs/postgres.md)`},
		{note: "a key=value DSN with a quoted password", config: `{"store": {"postgres": {"dsn": "dbname=pat password='my S3cret' host=db"}}}`,
			err: `invalid configuration for plugin "pat": store.postgres.dsn: "dbname=pat password=xxxxx host=db" is a key=value connection string; give the database as a postgres:// URL (docs/postgres.md)`},
		{note: "same prefixes", config: `{"store": {"path": "pat.db"}, "token_prefixes": {"classic": "x_", "fine_grained": "x_"}}`,
			err: `invalid configuration for plugin "pat": token_prefixes: classic and fine_grained prefixes must differ, both are "x_"`},
		{note: "empty classic prefix", config: `{"store": {"path": "pat.db"}, "token_prefixes": {"classic": ""}}`,
			err: `invalid configuration for plugin "pat": token_prefixes.classic: missing value (a prefix such as "ghp_"; leave the key out for GitHub's)`},
		{note: "empty fine-grained prefix", config: "store: {path: pat.db}\ntoken_prefixes: {classic: acp_, fine_grained: \"\"}\n",
			err: `invalid configuration for plugin "pat": token_prefixes.fine_grained: missing value (a prefix such as "github_pat_"; leave the key out for GitHub's)`},
		{note: "prefix with space", config: `{"store": {"path": "pat.db"}, "token_prefixes": {"classic": "a b"}}`,
			err: `invalid configuration for plugin "pat": token_prefixes.classic: "a b" contains white space`},
		{note: "unknown evaluator", config: `{"store": {"path": "pat.db"}, "evaluator": "wasm"}`,
			err: `invalid configuration for plugin "pat": evaluator: "wasm" is not "irvm" or "topdown"`},
		{note: "wrong type", config: `{"store": {"path": 7}}`,
			err: `invalid configuration for plugin "pat": store.path: a number where a string belongs`},
		{note: "not an object", config: `[1, 2]`,
			err: `invalid configuration for plugin "pat": the section: an array where an object belongs`},
		{note: "mistyped section", config: `{"store": {"path": "pat.db"}, "admn": {"addr": "127.0.0.1:8282"}}`,
			err: `invalid configuration for plugin "pat": unknown key "admn" (known: admin, bundle, evaluator, ext_authz, store, token_prefixes)`},
		{note: "mistyped nested key", config: "store:\n  postgres: {dsn: \"postgres://opa@db/pat\", passwrd: x}\n",
			err: `invalid configuration for plugin "pat": store.postgres: unknown key "passwrd" (known: dsn)`},
		{note: "keys match in any case, as the decoder matches them", config: `{"Store": {"PATH": "pat.db"}}`,
			location: "pat.db", prefixes: token.DefaultPrefixes},
		{note: "a token pasted as a prefix is refused, not quoted", config: `{"store": {"path": "pat.db"}, "token_prefixes": {"classic": "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"}}`,
			err: `invalid configuration for plugin "pat": token_prefixes: classic prefix is 40 bytes long, more than 20; a prefix is what comes before a token's random part, such as "acme_"`},
		{note: "a token with white space pasted as a prefix is not quoted either", config: `{"store": {"path": "pat.db"}, "token_prefixes": {"fine_grained": " 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"}}`,
			err: `invalid configuration for plugin "pat": token_prefixes: fine_grained prefix is 41 bytes long, more than 20; a prefix is what comes before a token's random part, such as "acme_"`},
		{note: "a negative bundle.min_serial", config: `{"store": {"path": "pat.db"}, "bundle": {"min_serial": -1}}`,
			err: `invalid configuration for plugin "pat": bundle.min_serial: -1 is not an integer from 1 to 9007199254740991 (0 sets no floor)`},
		{note: "bundle.min_serial too large", config: `{"store": {"path": "pat.db"}, "bundle": {"min_serial": 9007199254740992}}`,
			err: `invalid configuration for plugin "pat": bundle.min_serial: 9007199254740992 is not an integer from 1 to 9007199254740991 (0 sets no floor)`},
		{note: "a fractional bundle.min_serial", config: `{"store": {"path": "pat.db"}, "bundle": {"min_serial": 1.5}}`,
			err: `invalid configuration for plugin "pat": bundle.min_serial: the number 1.5 where a whole number belongs`},
		{note: "bundle.min_serial as a string", config: `{"store": {"path": "pat.db"}, "bundle": {"min_serial": "150"}}`,
			err: `invalid configuration for plugin "pat": bundle.min_serial: a string where a whole number belongs`},
		{note: "a mistyped key of bundle", config: `{"store": {"path": "pat.db"}, "bundle": {"min_seral": 150}}`,
			err: `invalid configuration for plugin "pat": bundle: unknown key "min_seral" (known: min_serial)`},
		{note: "a prefix of 20 bytes is allowed", config: `{"store": {"path": "pat.db"}, "token_prefixes": {"classic": "abcdefghijklmnopqrs_"}}`,
			location: "pat.db", prefixes: token.Prefixes{Classic: "abcdefghijklmnopqrs_", FineGrained: "github_pat_"}},
	} {
		t.Run(tc.note, func(t *testing.T) {
			c, err := ParseConfig([]byte(tc.config))
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("err = %v; want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Evaluator != EvaluatorIRVM {
				t.Fatalf("evaluator %q; want the default %q", c.Evaluator, EvaluatorIRVM)
			}
			if c.Location() != tc.location || c.Prefixes() != tc.prefixes || string(c.ExtAuthz) != tc.extAuthz || string(c.Admin) != tc.admin {
				t.Fatalf("got location %q, prefixes %+v, ext_authz %q, admin %q", c.Location(), c.Prefixes(), c.ExtAuthz, c.Admin)
			}
		})
	}
}

// OPA substitutes ${NAME} in the configuration file it reads and leaves it
// as written when NAME is unset: such a value, at any key of plugins.pat, is
// refused, naming the key and the variable, rather than taken literally (a
// store file named "${PAT_DB}", tokens issued with the prefix "${PREFIX}").
func TestParseConfigRefusesAnUnsetVariable(t *testing.T) {
	for _, name := range []string{"OPA_PAT_TEST_UNSET", "OPA_PAT_TEST_UNSET_HOST"} {
		t.Setenv(name, "") // restored afterwards
		if err := os.Unsetenv(name); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("OPA_PAT_TEST_SET", "/srv/pat.db")
	const pre = `invalid configuration for plugin "pat": `
	for _, tc := range []struct {
		note, config, err string
	}{
		{note: "the store's path", config: "store:\n  path: ${OPA_PAT_TEST_UNSET}\n",
			err: `store.path: "${OPA_PAT_TEST_UNSET}" names the environment variable OPA_PAT_TEST_UNSET, which is not set`},
		{note: "in a part of the path", config: "store:\n  path: /var/lib/${OPA_PAT_TEST_UNSET}/pat.db\n",
			err: `store.path: "/var/lib/${OPA_PAT_TEST_UNSET}/pat.db" names the environment variable OPA_PAT_TEST_UNSET, which is not set`},
		{note: "a prefix", config: "store: {path: pat.db}\ntoken_prefixes:\n  classic: ${OPA_PAT_TEST_UNSET}\n",
			err: `token_prefixes.classic: "${OPA_PAT_TEST_UNSET}" names the environment variable OPA_PAT_TEST_UNSET, which is not set`},
		{note: "a DSN, its password hidden", config: `{"store": {"postgres": {"dsn": "postgres://pat:hunter2@${OPA_PAT_TEST_UNSET_HOST}/pat"}}}`,
			err: `store.postgres.dsn: "postgres://pat:xxxxx@${OPA_PAT_TEST_UNSET_HOST}/pat" names the environment variable OPA_PAT_TEST_UNSET_HOST, which is not set`},
		{note: "a key=value DSN as the path, its password hidden", config: `{"store": {"path": "host=${OPA_PAT_TEST_UNSET_HOST} password=hunter2"}}`,
			err: `store.path: "host=${OPA_PAT_TEST_UNSET_HOST} password=xxxxx" names the environment variable OPA_PAT_TEST_UNSET_HOST, which is not set`},
		{note: "the gate's address, before its own check", config: "store: {path: pat.db}\next_authz:\n  addr: ${OPA_PAT_TEST_UNSET}\n",
			err: `ext_authz.addr: "${OPA_PAT_TEST_UNSET}" names the environment variable OPA_PAT_TEST_UNSET, which is not set`},
		{note: "the admin API's URL", config: "store: {path: pat.db}\nadmin:\n  addr: 127.0.0.1:8282\n  url: https://${OPA_PAT_TEST_UNSET_HOST}/api\n",
			err: `admin.url: "https://${OPA_PAT_TEST_UNSET_HOST}/api" names the environment variable OPA_PAT_TEST_UNSET_HOST, which is not set`},
		{note: "the first in the order of the keys", config: "token_prefixes:\n  fine_grained: ${OPA_PAT_TEST_UNSET}\nstore:\n  path: ${OPA_PAT_TEST_UNSET_HOST}\n",
			err: `store.path: "${OPA_PAT_TEST_UNSET_HOST}" names the environment variable OPA_PAT_TEST_UNSET_HOST, which is not set`},
		{note: "a section given as one", config: `{"store": "${OPA_PAT_TEST_UNSET}"}`,
			err: `store: "${OPA_PAT_TEST_UNSET}" names the environment variable OPA_PAT_TEST_UNSET, which is not set`},
		{note: "a token beside it is not shown", config: `{"store": {"path": "pat.db"}, "token_prefixes": {"classic": "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${OPA_PAT_TEST_UNSET}"}}`,
			err: `token_prefixes.classic: (61 characters, not shown: it looks like a personal access token) names the environment variable OPA_PAT_TEST_UNSET, which is not set`},
		{note: "a variable that is set, yet was not substituted", config: "store:\n  path: ${OPA_PAT_TEST_SET}\n",
			err: `store.path: "${OPA_PAT_TEST_SET}" names the environment variable OPA_PAT_TEST_SET, which OPA did not substitute (it substitutes ${NAME} in the configuration file and --set values only)`},
	} {
		t.Run(tc.note, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.config))
			if err == nil || err.Error() != pre+tc.err {
				t.Fatalf("err = %v\nwant  %s", err, pre+tc.err)
			}
		})
	}
	// A dollar sign, or braces, that make no reference are taken as written.
	for _, path := range []string{"/var/lib/$PAT/pat.db", "/var/lib/${}/pat.db", "/var/lib/{x}$/pat.db"} {
		c, err := ParseConfig([]byte(`{"store": {"path": "` + path + `"}}`))
		if err != nil || c.Location() != path {
			t.Fatalf("%s: got %v", path, err)
		}
	}
}

// Each prefix key is checked whole, classic first, so that a configuration
// with two problems gets the same message every time: the white space of
// both prefixes was looked for in a map's order, which Go varies from run
// to run.
func TestParseConfigChecksThePrefixesInOrder(t *testing.T) {
	const pre = `invalid configuration for plugin "pat": `
	for _, tc := range []struct {
		note, config, err string
	}{
		{note: "white space in both", config: `{"store": {"path": "pat.db"}, "token_prefixes": {"fine_grained": "c d", "classic": "a b"}}`,
			err: `token_prefixes.classic: "a b" contains white space`},
		{note: "white space, then a missing value", config: `{"store": {"path": "pat.db"}, "token_prefixes": {"classic": "a b", "fine_grained": ""}}`,
			err: `token_prefixes.classic: "a b" contains white space`},
		{note: "the same prefix, with white space", config: `{"store": {"path": "pat.db"}, "token_prefixes": {"classic": "a b", "fine_grained": "a b"}}`,
			err: `token_prefixes.classic: "a b" contains white space`},
		{note: "a token with white space beside a short one with white space is not quoted", config: `{"store": {"path": "pat.db"}, "token_prefixes": {"classic": " 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", "fine_grained": "c d"}}`,
			err: `token_prefixes.fine_grained: "c d" contains white space`},
	} {
		t.Run(tc.note, func(t *testing.T) {
			for range 50 {
				if _, err := ParseConfig([]byte(tc.config)); err == nil || err.Error() != pre+tc.err {
					t.Fatalf("err = %v\nwant  %s", err, pre+tc.err)
				}
			}
		})
	}
}

func TestConfigEqual(t *testing.T) {
	parse := func(s string) *Config {
		t.Helper()
		c, err := ParseConfig([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a := parse(`{"store": {"path": "pat.db"}, "ext_authz": {"addr": ":9191"}}`)
	for _, tc := range []struct {
		note  string
		other string
		equal bool
	}{
		{note: "same", other: "store: {path: pat.db}\next_authz: {addr: \":9191\"}", equal: true},
		{note: "other path", other: `{"store": {"path": "other.db"}, "ext_authz": {"addr": ":9191"}}`},
		{note: "other ext_authz", other: `{"store": {"path": "pat.db"}, "ext_authz": {"addr": ":9192"}}`},
		{note: "no ext_authz", other: `{"store": {"path": "pat.db"}}`},
		{note: "prefixes", other: `{"store": {"path": "pat.db"}, "ext_authz": {"addr": ":9191"}, "token_prefixes": {"classic": "x_"}}`},
	} {
		t.Run(tc.note, func(t *testing.T) {
			if got := a.Equal(parse(tc.other)); got != tc.equal {
				t.Fatalf("Equal = %v; want %v", got, tc.equal)
			}
		})
	}
}

// TestEvaluatorChoices: topdown is kept when asked for, changes count as a
// reconfiguration, and irvm refuses discovery (whose configuration is
// evaluated against a store of its own).
func TestEvaluatorChoices(t *testing.T) {
	td, err := ParseConfig([]byte(`{"store": {"path": "pat.db"}, "evaluator": "topdown"}`))
	if err != nil || td.Evaluator != EvaluatorTopdown {
		t.Fatalf("topdown: %v, %v", td, err)
	}
	vm, err := ParseConfig([]byte(`{"store": {"path": "pat.db"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if td.Equal(vm) {
		t.Fatal("configurations with different evaluators compare equal")
	}
	// Signed, as a sidecar's discovery must be (bundle/enforce).
	m, err := plugins.New([]byte(`{"discovery": {"resource": "/bundles/discovery.tar.gz", "signing": {"keyid": "k"}},
		"keys": {"k": {"algorithm": "ES256", "key": `+testKeyJSON+`}}, "services": {"s": {"url": "http://127.0.0.1:1"}}}`), "test", inmem.New())
	if err != nil {
		t.Fatal(err)
	}
	_, err = Factory{}.Validate(m, []byte(`{"store": {"path": "pat.db"}}`))
	want := `invalid configuration for plugin "pat": evaluator: "irvm" cannot be combined with discovery; set evaluator: "topdown"`
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v; want %q", err, want)
	}
	if _, err := (Factory{}).Validate(m, []byte(`{"store": {"path": "pat.db"}, "evaluator": "topdown"}`)); err != nil {
		t.Fatalf("topdown with discovery: %v", err)
	}
}

// TestActiveConfigHidesTheDSNPassword: OPA's GET /v1/config shows the
// manager's configuration (ActiveConfig); the DSN's password is not in it,
// in the user information or as a parameter, while the plugin still gets
// the DSN as written. A postgres:// URL given as store.path (as `opa-pat
// up --store URL` and a configuration file may give it) is a DSN too.
func TestActiveConfigHidesTheDSNPassword(t *testing.T) {
	for _, tc := range []struct{ dsn, shown string }{
		{"postgres://opa:hunter2@db:5432/pat?sslmode=disable", "postgres://opa:xxxxx@db:5432/pat?sslmode=disable"},
		{"postgresql://opa@db/pat?password=hunter2&sslmode=disable", "postgresql://opa@db/pat?password=xxxxx&sslmode=disable"},
		{"postgres://opa@db/pat?sslmode=disable&password=hunter2%zz", "postgres://opa@db/pat?sslmode=disable&password=xxxxx"},
		{"postgres://opa@db/pat", "postgres://opa@db/pat"},
		// sslpassword, the passphrase of the client's TLS key.
		{"postgres://opa@db/pat?sslmode=verify-full&sslpassword=hunter2", "postgres://opa@db/pat?sslmode=verify-full&sslpassword=xxxxx"},
	} {
		for _, asPath := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/as store.path %t", tc.dsn, asPath), func(t *testing.T) {
				raw := `{"plugins": {"pat": {"store": {"postgres": {"dsn": "` + tc.dsn + `"}}}}}`
				want := `"plugins":{"pat":{"store":{"postgres":{"dsn":"` + tc.shown + `"}}}}`
				if asPath {
					raw = `{"plugins": {"pat": {"store": {"path": "` + tc.dsn + `"}}}}`
					want = `"plugins":{"pat":{"store":{"path":"` + tc.shown + `"}}}`
				}
				m, err := plugins.New([]byte(raw), "test", inmem.New())
				if err != nil {
					t.Fatal(err)
				}
				c, err := Factory{}.Validate(m, m.Config.Plugins[Name])
				if err != nil {
					t.Fatal(err)
				}
				if got := c.(*Config).Location(); got != tc.dsn {
					t.Fatalf("the plugin's DSN is %q; want %q", got, tc.dsn)
				}
				active, err := m.GetConfig().ActiveConfig()
				if err != nil {
					t.Fatal(err)
				}
				out, err := json.Marshal(active)
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(string(out), "hunter2") {
					t.Fatalf("the active configuration shows the password: %s", out)
				}
				if !strings.Contains(strings.ReplaceAll(string(out), `\u0026`, "&"), want) {
					t.Fatalf("active configuration %s; want it to hold %s", out, want)
				}
			})
		}
	}
}

// opa.runtime() shows policies the configuration file as OPA read it and
// the environment: the DSN's password and PGPASSWORD are hidden there, in
// the term OPA's server holds.
func TestRuntimeInfoHidesTheDSNPassword(t *testing.T) {
	raw := `{"plugins": {"pat": {"store": {"postgres": {"dsn": "postgres://opa:hunter2@db:5432/pat?sslpassword=KeyPass_qq7"}}}}}`
	info := ast.MustParseTerm(`{"config": {"plugins": {"pat": {"store": {"postgres": {"dsn": "postgres://opa:hunter2@db:5432/pat?sslpassword=KeyPass_qq7"}}}}},
		"env": {"PGPASSWORD": "s3cret", "PGSSLPASSWORD": "KeyPass_zz8", "HOME": "/root"}, "version": ["1", 2]}`)
	held := info
	validateWithInfo(t, raw, info)
	want := ast.MustParseTerm(`{"config": {"plugins": {"pat": {"store": {"postgres": {"dsn": "postgres://opa:xxxxx@db:5432/pat?sslpassword=xxxxx"}}}}},
		"env": {"PGPASSWORD": "xxxxx", "PGSSLPASSWORD": "xxxxx", "HOME": "/root"}, "version": ["1", 2]}`)
	if !held.Equal(want) {
		t.Fatalf("opa.runtime() is %v; want %v", held, want)
	}
}

// A personal access token in the environment (GH_TOKEN for a CLI beside the
// sidecar) is hidden from opa.runtime() too, with a SQLite store as with
// PostgreSQL; the configured prefixes count. Other values are left alone.
func TestRuntimeInfoHidesTokensInTheEnvironment(t *testing.T) {
	raw := `{"plugins": {"pat": {"store": {"path": "/tmp/pat.db"}, "token_prefixes": {"classic": "acme_", "fine_grained": "acmefg_"}}}}`
	info := ast.MustParseTerm(`{"env": {"GH_TOKEN": "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",
		"ACME_TOKEN": "acme_4rrxSMljMErih6C6Pz50pojiaiKW3i23NCHO", "HOME": "/root", "EDITOR": "vi",
		"COSIGN_PASSWORD": "change-me-now", "PGPASSWORD": "pg-s3cret",
		"OPA_PAT_STORE": "postgres://opa:hunter2@db:5432/pat?sslmode=disable"}}`)
	held := info
	validateWithInfo(t, raw, info)
	want := ast.MustParseTerm(`{"env": {"GH_TOKEN": "xxxxx", "ACME_TOKEN": "xxxxx", "HOME": "/root", "EDITOR": "vi",
		"COSIGN_PASSWORD": "xxxxx", "PGPASSWORD": "xxxxx",
		"OPA_PAT_STORE": "postgres://opa:xxxxx@db:5432/pat?sslmode=disable"}}`)
	if !held.Equal(want) {
		t.Fatalf("opa.runtime() is %v; want %v", held, want)
	}
}

// validateWithInfo validates the pat plugin's section of an OPA
// configuration for a manager whose runtime info (opa.runtime()) is info.
func validateWithInfo(t *testing.T, raw string, info *ast.Term) {
	t.Helper()
	m, err := plugins.New([]byte(raw), "test", inmem.New(), plugins.Info(info))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (Factory{}).Validate(m, m.Config.Plugins[Name]); err != nil {
		t.Fatal(err)
	}
}

// TestValidateRefusesUnverifiableBundleSources: a sidecar whose configuration
// downloads bundles without a key to verify them would serve whatever the
// bundle service (or anyone in the middle) sends; the plugin refuses such a
// configuration, also when it is embedded in another program's OPA.
func TestParseConfigMinSerial(t *testing.T) {
	for _, tc := range []struct {
		note   string
		config string
		want   int64
	}{
		{note: "absent", config: "store: {path: pat.db}\n"},
		{note: "zero sets no floor", config: "store: {path: pat.db}\nbundle: {min_serial: 0}\n"},
		{note: "a commit's time", config: "store: {path: pat.db}\nbundle: {min_serial: 1767225600}\n", want: 1767225600},
	} {
		t.Run(tc.note, func(t *testing.T) {
			c, err := ParseConfig([]byte(tc.config))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.MinBundleSerial(); got != tc.want {
				t.Fatalf("MinBundleSerial() = %d, want %d", got, tc.want)
			}
		})
	}
}

// A floor that nothing would enforce is refused: this test process has not
// installed opa-pat's bundle activator (opa-pat run and up install it).
func TestValidateRefusesMinSerialWithoutTheActivator(t *testing.T) {
	m, err := plugins.New([]byte(`{}`), "test", inmem.New())
	if err != nil {
		t.Fatal(err)
	}
	_, err = Factory{}.Validate(m, []byte(`{"store": {"path": "pat.db"}, "bundle": {"min_serial": 150}}`))
	want := `invalid configuration for plugin "pat": bundle.min_serial: 150 needs opa-pat's bundle activator, which this process has not installed: ` +
		`opa-pat run and opa-pat up install it for a sidecar without discovery (docs/bundles.md, "Rollback protection")`
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
}

func TestValidateRefusesUnverifiableBundleSources(t *testing.T) {
	const services = `"services": {"s": {"url": "http://127.0.0.1:1"}}`
	for _, tc := range []struct{ note, config, err string }{
		{note: "bundles, no keys", config: `{"bundles": {"pat": {"service": "s", "resource": "b.tar.gz"}}, ` + services + `}`,
			err: "bundles.pat would load unsigned bundles: no keys are configured; add keys: {NAME: {algorithm: ES256, key: <the PEM of cosign.pub>}} and bundles.pat.signing: {keyid: NAME}"},
		{note: "keys, no signing block", config: `{"keys": {"k": {"algorithm": "ES256", "key": ` + testKeyJSON + `}}, "bundles": {"pat": {"service": "s"}}, ` + services + `}`,
			err: "a bundle source would load unsigned bundles: keys are configured but bundles.pat has no signing block; add bundles.pat.signing (e.g. {keyid: NAME}) so that unsigned bundles are refused"},
		{note: "keys and a signing block", config: `{"keys": {"k": {"algorithm": "ES256", "key": ` + testKeyJSON + `}}, "bundles": {"pat": {"service": "s", "signing": {"keyid": "k"}}}, ` + services + `}`},
		{note: "no bundle source", config: `{}`},
	} {
		t.Run(tc.note, func(t *testing.T) {
			m, err := plugins.New([]byte(tc.config), "test", inmem.New())
			if err != nil {
				t.Fatal(err)
			}
			_, err = Factory{}.Validate(m, []byte(`{"store": {"path": "pat.db"}}`))
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || err.Error() != tc.err) {
				t.Fatalf("err = %v; want %q", err, tc.err)
			}
		})
	}
}

// Whatever a DSN holds after its password, in the user information or as a
// password or sslpassword parameter, and whatever the configuration holds
// beside it, ParseConfig does not panic, and an error it gives does not
// show the password.
func FuzzConfigHidesTheDSNPassword(f *testing.F) {
	for _, seed := range []struct {
		shape      uint8
		tail, rest string
	}{
		{0, "db:5432/pat?sslmode=disable", ""},
		{1, "&sslmode=disable", `, "max_staleness": "x"`},
		{2, "", `, "path": "pat.db"`},
		{0, "db/pat?sslmode=bogus", `}, "token_prefixes": {"classic": ""`},
		{0, "[::1/pat", ""},
		{1, "%zz", `, "schema": "pat"`},
	} {
		f.Add(seed.shape, seed.tail, seed.rest, false)
		f.Add(seed.shape, seed.tail, seed.rest, true)
	}
	f.Fuzz(func(t *testing.T, shape uint8, tail, rest string, asPath bool) {
		const password = "hunter2"
		if strings.Contains(tail, password) || strings.Contains(rest, password) {
			return // the password elsewhere too: in a host name, say
		}
		dsn := [...]string{"postgres://opa:" + password + "@", "postgresql://opa@db/pat?password=" + password,
			"postgres://opa@db/pat?sslmode=verify-full&sslpassword=" + password}[shape%3] + tail
		quoted, err := json.Marshal(dsn)
		if err != nil {
			return
		}
		raw := `{"store": {"postgres": {"dsn": ` + string(quoted) + rest + `}}}`
		if asPath {
			raw = `{"store": {"path": ` + string(quoted) + rest + `}}`
		}
		if _, err := ParseConfig([]byte(raw)); err != nil && strings.Contains(err.Error(), password) {
			t.Fatalf("ParseConfig(%s): the error shows the password: %v", raw, err)
		}
	})
}
