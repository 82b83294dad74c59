package plugin

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/util"

	"github.com/opa-pat/opa-pat/bundle/rollback"
	"github.com/opa-pat/opa-pat/plugin/cfgkeys"
	"github.com/opa-pat/opa-pat/plugin/index"
	"github.com/opa-pat/opa-pat/plugin/store"
	"github.com/opa-pat/opa-pat/plugin/token"
)

// ErrInvalidConfig wraps every configuration error of the plugin.
var ErrInvalidConfig = fmt.Errorf("invalid configuration for plugin %q", Name)

// Config is plugins.pat:
//
//	plugins:
//	  pat:
//	    store: {path: /var/lib/opa-pat/pat.db}      # or {postgres: {dsn: "postgres://..."}}
//	    token_prefixes: {classic: ghp_, fine_grained: github_pat_}
//	    ext_authz: {addr: "127.0.0.1:9191"}          # absent: no gRPC server
//	    admin: {addr: "127.0.0.1:8282"}              # absent: no admin API
//	    evaluator: irvm                              # or topdown
//	    bundle: {min_serial: 1767225600}             # absent: no floor
//
// docs/config.md documents every key.
type Config struct {
	Store         StoreConfig     `json:"store"`
	TokenPrefixes *PrefixConfig   `json:"token_prefixes,omitempty"`
	ExtAuthz      json.RawMessage `json:"ext_authz,omitempty"` // parsed by the ext_authz service
	Admin         json.RawMessage `json:"admin,omitempty"`     // parsed by the admin API service
	// Evaluator evaluates the sidecar's queries: EvaluatorIRVM (the
	// default) or EvaluatorTopdown, OPA's own (plugin/irvm explains).
	Evaluator string `json:"evaluator,omitempty"`
	// Bundle configures the rollback protection of the policy bundle.
	Bundle *BundleConfig `json:"bundle,omitempty"`

	prefixes     token.Prefixes
	location     string
	maxStaleness time.Duration
}

// StoreConfig chooses the store: an SQLite file or a PostgreSQL database.
type StoreConfig struct {
	Path     string          `json:"path,omitempty"`
	Postgres *PostgresConfig `json:"postgres,omitempty"`
	// MaxStaleness is how long the index may go without catching up with
	// the store (e.g. PostgreSQL unreachable) before token decisions deny;
	// a Go duration, DefaultMaxStaleness when absent.
	MaxStaleness string `json:"max_staleness,omitempty"`
}

// BundleConfig is bundle: the rollback protection of the bundles that own
// opa-pat's roots (bundle/rollback).
type BundleConfig struct {
	// MinSerial is the lowest metadata.serial such a bundle may have; 0
	// (or absent) sets no floor.
	MinSerial int64 `json:"min_serial,omitempty"`
}

// The evaluators.
const (
	EvaluatorIRVM    = "irvm"
	EvaluatorTopdown = "topdown"
)

// DefaultMaxStaleness is store.max_staleness when absent.
const DefaultMaxStaleness = 60 * time.Second

// MinMaxStaleness is the smallest store.max_staleness accepted. On a healthy
// store the index is up to a poll interval and a catch-up old (at most 1.11s
// measured with a 1s poll, under CPU contention), so a bound near the poll
// interval denies token decisions on a store that answers. The status warns
// once the index is followSlack (3 polls) old; the bound leaves two status
// re-evaluations (healthInterval) after that, so that the warning is seen
// before decisions deny: 5s with a 1s poll.
const MinMaxStaleness = followSlack + 2*healthInterval

// PostgresConfig is store.postgres.
type PostgresConfig struct {
	DSN string `json:"dsn"`
}

// PrefixConfig is token_prefixes; a missing prefix keeps GitHub's. A key
// given with an empty value is refused rather than read as missing (a templated
// `classic: ${PREFIX}` with PREFIX set to ""), as an empty address is; with
// PREFIX unset, OPA leaves ${PREFIX} as written and checkEnvReferences
// refuses it.
type PrefixConfig struct {
	Classic     *string `json:"classic,omitempty"`
	FineGrained *string `json:"fine_grained,omitempty"`
}

// ParseConfig reads plugins.pat (JSON or YAML), checks it and fills in the
// defaults. Errors name the key and quote the value.
func ParseConfig(raw []byte) (*Config, error) {
	if err := checkEnvReferences(raw); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	var c Config
	if err := cfgkeys.Decode(raw, &c, ""); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if err := c.validateAndInjectDefaults(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return &c, nil
}

func (c *Config) validateAndInjectDefaults() error {
	switch {
	case c.Store.Path != "" && c.Store.Postgres != nil:
		return fmt.Errorf("store: set either path or postgres, not both (path is %q)", store.RedactLocation(c.Store.Path))
	case store.IsPostgres(c.Store.Path):
		// A postgres:// URL given as the path (as `opa-pat up --store URL`
		// writes it, as every CLI command takes it) is the DSN, and is
		// handled as one: the plugin names it redacted, and OPA's
		// GET /v1/config shows it without its password (hideDSNPassword).
		c.Store.Postgres = &PostgresConfig{DSN: c.Store.Path}
		c.Store.Path = ""
		c.location = c.Store.Postgres.DSN
	case c.Store.Postgres != nil:
		dsn := c.Store.Postgres.DSN
		if dsn == "" {
			return errors.New(`store.postgres.dsn: missing value (e.g. "postgres://opa-pat@db/opa_pat")`)
		}
		if !store.IsPostgres(dsn) {
			// libpq's key=value form gets the message that store.path and
			// the CLI give it (docs/postgres.md), password hidden.
			if store.IsKeyValueDSN(dsn) && !strings.Contains(dsn, "://") {
				return fmt.Errorf("store.postgres.dsn: %w", store.CheckLocation(dsn))
			}
			return fmt.Errorf("store.postgres.dsn: %q is not a postgres:// URL", store.RedactURL(dsn))
		}
		c.location = dsn
	case strings.TrimSpace(c.Store.Path) == "":
		if c.Store.Path != "" {
			return fmt.Errorf("store.path: %q is blank", c.Store.Path)
		}
		return errors.New(`store.path: missing value (a file such as "/var/lib/opa-pat/pat.db", or store.postgres.dsn)`)
	default:
		// Another database's URL, or libpq's key=value form, would be
		// taken for a file's path, with its password in the messages
		// that name the store.
		if err := store.CheckLocation(c.Store.Path); err != nil {
			return fmt.Errorf("store.path: %w", err)
		}
		c.location = c.Store.Path
	}

	c.maxStaleness = DefaultMaxStaleness
	if v := c.Store.MaxStaleness; v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("store.max_staleness: %q is not a positive duration (e.g. \"60s\")", v)
		}
		if d < MinMaxStaleness {
			return fmt.Errorf("store.max_staleness: %q is below the minimum of %s: the index reads the store's change log every %s, "+
				"and a smaller bound would deny token decisions on a store that answers", v, MinMaxStaleness, index.DefaultPollInterval)
		}
		c.maxStaleness = d
	}

	c.prefixes = token.DefaultPrefixes
	if p := c.TokenPrefixes; p != nil {
		for _, k := range []struct {
			key  string
			v    *string
			into *string
		}{
			{"classic", p.Classic, &c.prefixes.Classic},
			{"fine_grained", p.FineGrained, &c.prefixes.FineGrained},
		} {
			if k.v == nil {
				continue
			}
			if *k.v == "" {
				return fmt.Errorf("token_prefixes.%s: missing value (a prefix such as %q; leave the key out for GitHub's)", k.key, *k.into)
			}
			// A longer prefix is refused by Validate, without being quoted:
			// it may be a token pasted in the wrong place.
			if len(*k.v) <= token.MaxPrefixLen && strings.ContainsAny(*k.v, " \t\r\n") {
				return fmt.Errorf("token_prefixes.%s: %q contains white space", k.key, *k.v)
			}
			*k.into = *k.v
		}
		if err := c.prefixes.Validate(); err != nil {
			return fmt.Errorf("token_prefixes: %w", err)
		}
	}

	switch c.Evaluator {
	case "":
		c.Evaluator = EvaluatorIRVM
	case EvaluatorIRVM, EvaluatorTopdown:
	default:
		return fmt.Errorf("evaluator: %q is not %q or %q", c.Evaluator, EvaluatorIRVM, EvaluatorTopdown)
	}

	if b := c.Bundle; b != nil && (b.MinSerial < 0 || b.MinSerial > rollback.MaxSerial) {
		return fmt.Errorf("bundle.min_serial: %d is not an integer from 1 to %d (0 sets no floor)", b.MinSerial, int64(rollback.MaxSerial))
	}

	var err error
	if c.ExtAuthz, err = canonical(c.ExtAuthz); err != nil {
		return fmt.Errorf("ext_authz: %w", err)
	}
	if c.Admin, err = canonical(c.Admin); err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	return nil
}

// envReference is a reference to an environment variable that OPA
// substitutes in the configuration file it reads (and in --set values),
// ${NAME}: from "${" to the first "}" on the line (OPA's envRegex,
// internal/config). OPA leaves it as written when the variable is unset.
var envReference = regexp.MustCompile(`\$\{([^}\n]+)\}`)

// checkEnvReferences refuses a string of plugins.pat, at any depth, that
// still holds a ${NAME} reference: OPA left it as written because NAME is
// not set, and the plugin would take it literally (a store file named
// "${PAT_DB}", tokens issued with the prefix "${PREFIX}"). The message
// names the key, the value (a DSN's password hidden, a token not shown)
// and the variable. A raw that does not parse passes: the typed decode
// says what is wrong with it.
func checkEnvReferences(raw []byte) error {
	var doc any
	if err := util.Unmarshal(raw, &doc); err != nil {
		return nil
	}
	return envReferenceIn(doc, "")
}

func envReferenceIn(doc any, path string) error {
	switch v := doc.(type) {
	case string:
		m := envReference.FindStringSubmatch(v)
		if m == nil {
			return nil
		}
		return envReferenceError(cmp.Or(path, "the section"), v, m[1])
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			if err := envReferenceIn(v[k], strings.TrimPrefix(path+"."+k, ".")); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range v {
			if err := envReferenceIn(e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// envReferenceError is the error for the value of key that holds the
// reference ${name}: `store.path: "${PAT_DB}" names the environment
// variable PAT_DB, which is not set`. A URL or a key=value connection
// string is quoted with its password hidden (store.RedactURL), as the
// store's keys are; a value that looks like a token is not quoted.
func envReferenceError(key, value, name string) error {
	shown := value
	if strings.Contains(value, "://") || store.IsKeyValueDSN(value) {
		shown = store.RedactURL(value)
	}
	quoted := strconv.Quote(shown)
	if token.Hidden(value) {
		quoted = token.Quote(value)
	}
	if _, set := os.LookupEnv(name); set {
		// Set now, yet not substituted: a configuration OPA did not read
		// from a file (discovery), or the value of another variable.
		return fmt.Errorf("%s: %s names the environment variable %s, which OPA did not substitute (it substitutes ${NAME} in the configuration file and --set values only)", key, quoted, name)
	}
	return fmt.Errorf("%s: %s names the environment variable %s, which is not set", key, quoted, name)
}

// canonical re-encodes a section with sorted keys and no spaces, so that
// Equal compares meaning, not layout; null becomes absent.
func canonical(raw json.RawMessage) (json.RawMessage, error) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return nil, nil
	}
	var v any
	if err := util.UnmarshalJSON(t, &v); err != nil {
		return nil, err
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, fmt.Errorf("%s is not an object", t)
	}
	return json.Marshal(v)
}

// Prefixes are the token prefixes in effect.
func (c *Config) Prefixes() token.Prefixes { return c.prefixes }

// MaxStaleness is store.max_staleness: past it, token decisions deny until
// the index has caught up with the store.
func (c *Config) MaxStaleness() time.Duration { return c.maxStaleness }

// MinBundleSerial is bundle.min_serial, 0 for none.
func (c *Config) MinBundleSerial() int64 {
	if c.Bundle == nil {
		return 0
	}
	return c.Bundle.MinSerial
}

// Location is what the store is opened with: the SQLite path or the
// PostgreSQL DSN.
func (c *Config) Location() string { return c.location }

// Equal reports whether two configurations are the same.
func (c *Config) Equal(o *Config) bool {
	if c == nil || o == nil {
		return c == o
	}
	return c.location == o.location && c.prefixes == o.prefixes && c.maxStaleness == o.maxStaleness &&
		c.Evaluator == o.Evaluator && bytes.Equal(c.ExtAuthz, o.ExtAuthz) && bytes.Equal(c.Admin, o.Admin)
}

// hideDSNPassword returns raw, the section c was parsed from, with every
// string that is c's DSN replaced by the DSN without its password; false
// when there is no password to hide.
func hideDSNPassword(raw []byte, c *Config) ([]byte, bool) {
	if c.Store.Postgres == nil {
		return nil, false
	}
	dsn := c.Store.Postgres.DSN
	hidden := store.RedactURL(dsn)
	if hidden == dsn {
		return nil, false
	}
	var doc any
	if err := util.Unmarshal(raw, &doc); err != nil {
		return nil, false
	}
	out, err := json.Marshal(replaceString(doc, dsn, hidden))
	if err != nil {
		return nil, false
	}
	return out, true
}

// hideInRuntimeInfo hides, in opa.runtime()'s term (the manager's Info:
// the configuration file as OPA read it, and the environment), the DSN's
// password (and sslpassword), the values of secretEnv, the password of
// every postgres:// URL of the environment (OPA_PAT_STORE for a CLI beside
// the sidecar) and every environment variable's value that holds a
// personal access token (token.Hidden: GH_TOKEN, say): every string equal
// to such a URL becomes the URL redacted, and every string equal to one of
// those values xxxxx. OPA
// already leaves services' credentials out of the configuration there. The
// term is changed in place, before anything is served, so that whoever
// holds it (OPA's server, POST /v1/query) sees the change.
func hideInRuntimeInfo(info *ast.Term, c *Config) {
	if info == nil {
		return
	}
	replace := map[string]string{}
	if c.Store.Postgres != nil {
		if dsn := c.Store.Postgres.DSN; store.RedactURL(dsn) != dsn {
			replace[dsn] = store.RedactURL(dsn)
		}
	}
	for _, name := range secretEnv {
		if pw, ok := lookupString(info, "env", name); ok && pw != "" {
			replace[pw] = "xxxxx"
		}
	}
	if obj, ok := info.Value.(ast.Object); ok {
		if env := obj.Get(ast.StringTerm("env")); env != nil {
			if vars, ok := env.Value.(ast.Object); ok {
				vars.Foreach(func(_, v *ast.Term) {
					s, ok := v.Value.(ast.String)
					switch {
					case !ok:
					case token.Hidden(string(s), c.prefixes):
						replace[string(s)] = "xxxxx"
					case store.IsPostgres(string(s)) && store.RedactURL(string(s)) != string(s):
						// A store URL for the CLI beside the sidecar (OPA_PAT_STORE).
						replace[string(s)] = store.RedactURL(string(s))
					}
				})
			}
		}
	}
	if len(replace) == 0 {
		return
	}
	info.Value = replaceStrings(info.Value, replace)
}

// secretEnv are the environment variables whose values are secrets,
// whatever the store: PostgreSQL's password and TLS key passphrase (pgx
// reads them), and the cosign key's password (bundle.PasswordEnv), which
// README's tour exports in the shell that then starts a sidecar.
var secretEnv = []string{"PGPASSWORD", "PGSSLPASSWORD", "COSIGN_PASSWORD"}

// replaceStrings is v with each string that replace names replaced, at
// any depth of its objects and arrays; it builds new ones, leaving v as it
// was.
func replaceStrings(v ast.Value, replace map[string]string) ast.Value {
	switch x := v.(type) {
	case ast.String:
		if r, ok := replace[string(x)]; ok {
			return ast.String(r)
		}
	case ast.Object:
		out := ast.NewObjectWithCapacity(x.Len())
		x.Foreach(func(k, e *ast.Term) { out.Insert(k, ast.NewTerm(replaceStrings(e.Value, replace))) })
		return out
	case *ast.Array:
		terms := make([]*ast.Term, x.Len())
		for i := range terms {
			terms[i] = ast.NewTerm(replaceStrings(x.Elem(i).Value, replace))
		}
		return ast.NewArray(terms...)
	}
	return v
}

// lookupString is the string at path in t's objects.
func lookupString(t *ast.Term, path ...string) (string, bool) {
	for _, key := range path {
		obj, ok := t.Value.(ast.Object)
		if !ok {
			return "", false
		}
		if t = obj.Get(ast.StringTerm(key)); t == nil {
			return "", false
		}
	}
	s, ok := t.Value.(ast.String)
	return string(s), ok
}

// replaceString replaces each string of doc that equals old, at any depth.
func replaceString(doc any, old, replacement string) any {
	switch v := doc.(type) {
	case string:
		if v == old {
			return replacement
		}
	case map[string]any:
		for k, e := range v {
			v[k] = replaceString(e, old, replacement)
		}
	case []any:
		for i, e := range v {
			v[i] = replaceString(e, old, replacement)
		}
	}
	return doc
}
