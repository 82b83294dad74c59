package plugin

import (
	"testing"

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
		{note: "same prefixes", config: `{"store": {"path": "pat.db"}, "token_prefixes": {"classic": "x_", "fine_grained": "x_"}}`,
			err: `invalid configuration for plugin "pat": token_prefixes: classic and fine_grained prefixes must differ, both are "x_"`},
		{note: "prefix with space", config: `{"store": {"path": "pat.db"}, "token_prefixes": {"classic": "a b"}}`,
			err: `invalid configuration for plugin "pat": token_prefixes.classic: "a b" contains white space`},
		{note: "unknown evaluator", config: `{"store": {"path": "pat.db"}, "evaluator": "wasm"}`,
			err: `invalid configuration for plugin "pat": evaluator: "wasm" is not "irvm" or "topdown"`},
		{note: "wrong type", config: `{"store": {"path": 7}}`,
			err: `invalid configuration for plugin "pat": json: cannot unmarshal number into Go struct field StoreConfig.store.path of type string`},
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
	m, err := plugins.New([]byte(`{"discovery": {"resource": "/bundles/discovery.tar.gz"}, "services": {"s": {"url": "http://127.0.0.1:1"}}}`), "test", inmem.New())
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
