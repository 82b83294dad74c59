package tests

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opa-pat/opa-pat/plugin/store/pgtest"
)

// An empty --actor is refused as a blank one is, by every command that
// takes it, and nothing is written: the audit log would otherwise record the
// token's user (token create) or nobody (the others).
func TestCLIEmptyActor(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "pat.db")
	cliOK(t, "store", "import", "--store", db, writeFile(t, dir, "world.json", cliWorld))
	before := cliOK(t, "audit", "list", "--store", db, "--output", "json")
	for _, tc := range []struct {
		note string
		args []string
	}{
		{note: "token create", args: []string{"token", "create", "--store", db, "--user", "bob", "--kind", "classic"}},
		{note: "token revoke", args: []string{"token", "revoke", "--store", db, "2"}},
		{note: "requests approve", args: []string{"requests", "approve", "--store", db, "--org", "octo-org", "1"}},
		{note: "requests deny", args: []string{"requests", "deny", "--store", db, "--org", "octo-org", "1"}},
		{note: "requests revoke", args: []string{"requests", "revoke", "--store", db, "--org", "octo-org", "1"}},
		{note: "requests create", args: []string{"requests", "create", "--store", db, "--org", "octo-org", "--token", "1"}},
		{note: "store import", args: []string{"store", "import", "--store", db, filepath.Join(dir, "world.json")}},
		{note: "store settings", args: []string{"store", "settings", "--store", db, writeFile(t, dir, "settings.json", "{}")}},
	} {
		t.Run(tc.note, func(t *testing.T) {
			for _, actor := range []string{"", "  "} {
				cliFail(t, `error: --actor: "`+actor+`" is not a name`, append(tc.args, "--actor", actor)...)
			}
		})
	}
	if after := cliOK(t, "audit", "list", "--store", db, "--output", "json"); after != before {
		t.Fatalf("audit log after the refusals:\n%s\nbefore:\n%s", after, before)
	}
}

// A URL of a database opa-pat cannot use is refused as such by every
// command that takes a store, not taken for a file path, and its password
// is not printed.
func TestCLIStoreURLOfAnotherDatabase(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "pat.db")
	world := writeFile(t, dir, "world.json", cliWorld)
	cliOK(t, "store", "import", "--store", db, world)
	const other = "mysql://u:hunter2@h/db"
	const refused = `"mysql://u:xxxxx@h/db" is neither a postgres:// URL nor a file path`
	for _, args := range [][]string{
		{"store", "import", "--store", other, world},
		{"store", "export", "--store", other},
		{"store", "settings", "--store", other},
		{"store", "prune-changes", "--store", other},
		{"token", "create", "--store", other, "--user", "bob", "--kind", "classic"},
		{"token", "list", "--store", other},
		{"token", "revoke", "--store", other, "1"},
		{"requests", "list", "--store", other},
		{"requests", "approve", "--store", other, "--org", "octo-org", "1"},
		{"requests", "create", "--store", other, "--org", "octo-org", "--token", "1"},
		{"audit", "list", "--store", other},
	} {
		cliFail(t, "error: --store: "+refused, args...)
	}
	cliFail(t, "error: --to: "+refused, "store", "migrate", "--from", db, "--to", other)
	cliFail(t, "error: --from: "+refused, "store", "migrate", "--from", other, "--to", filepath.Join(dir, "new.db"))
	if _, err := os.Stat(filepath.Join(dir, "new.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("migrate from a refused URL left new.db: %v", err)
	}
}

// The CLI never prints a PostgreSQL password: the store is named with it
// masked, as store migrate names it.
func TestCLIPostgresPasswordNotPrinted(t *testing.T) {
	dsn := pgtest.Database(t, "pat_cli_")
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), "hunter2") // the test server trusts, so any password does
	withPassword := u.String()
	u.User = url.UserPassword(u.User.Username(), "xxxxx")
	masked := u.String()
	dir := t.TempDir()
	world := writeFile(t, dir, "world.json", cliWorld)
	if got, want := cliOK(t, "store", "import", "--store", withPassword, world),
		"imported 3 users, 2 memberships, 1 repository, 2 tokens and 1 grant into "+masked+"\n"; got != want {
		t.Fatalf("import: %q; want %q", got, want)
	}
	if got, want := cliOK(t, "store", "settings", "--output", "text", "--store", withPassword, writeFile(t, dir, "settings.json", "{}")),
		"recorded the settings of "+filepath.Join(dir, "settings.json")+" in "+masked+"\n"; got != want {
		t.Fatalf("settings: %q; want %q", got, want)
	}
}

// A file whose text Go's JSON reader would read otherwise than written (a
// lone UTF-16 surrogate escape, a byte that is not UTF-8: U+FFFD in their
// place, without a word) is refused, naming the file, the field and the
// line and column, and nothing is written: an import creates no store.
func TestCLIRefusesWhatGoReadsAsFFFD(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "pat.db")
	const surrogate = `: it stands for no character, and would be read as U+FFFD; write the character itself, or both halves of a surrogate pair`
	world := writeFile(t, dir, "world.json", strings.Replace(cliWorld, `"name": "old"`, `"name": "old\ud800"`, 1))
	cliFail(t, "error: "+world+`: tokens[1].name: a lone UTF-16 surrogate, \ud800, at line 9, column 80`+surrogate,
		"store", "import", "--store", db, world)
	settings := writeFile(t, dir, "settings.json", "{\"enterprises\": {\"acme\": {\"owners\": [\"al\xffce\"]}}}")
	notUTF8 := "error: " + settings + `: settings: enterprises.acme.owners[0]: a byte that is not UTF-8, 0xff, at line 1, column 41: it would be read as U+FFFD; write the file in UTF-8`
	cliFail(t, notUTF8, "store", "settings", "--store", db, settings)
	// up, before it creates and seeds its store.
	up := filepath.Join(dir, "up.db")
	evil := writeFile(t, dir, "evil.json", `{"organizations": {"octo-org": {}, "evil\udc00": {}}}`)
	res := runBounded(t, dir, "up", "--store", up, "--addr", "127.0.0.1:0", "--ext-authz-addr", "", "--admin-addr", "", "--settings", evil)
	if want := "error: --settings: " + evil + `: settings: organizations: a key with a lone UTF-16 surrogate, \udc00, at line 1, column 41` + surrogate + "\n"; res.code != 1 || res.stderr != want {
		t.Fatalf("up: exit %d, stderr %q; want exit 1, stderr %q", res.code, res.stderr, want)
	}
	for _, p := range []string{db, up} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("a refused file left a store: %v", err)
		}
	}

	cliOK(t, "store", "import", "--store", db, writeFile(t, dir, "good.json", cliWorld))
	before := cliOK(t, "audit", "list", "--store", db, "--output", "json")
	cliFail(t, "error: --settings: "+strings.TrimPrefix(notUTF8, "error: "),
		"token", "create", "--store", db, "--user", "bob", "--kind", "classic", "--settings", settings)
	if after := cliOK(t, "audit", "list", "--store", db, "--output", "json"); after != before {
		t.Fatalf("audit log after a refused create:\n%s\nbefore:\n%s", after, before)
	}
}

// A file that is not JSON, or an import file with a key twice in one
// object, is refused with where the trouble is, a line and a column, as an
// editor shows them: Go's message gave at most a byte offset, and
// "unexpected EOF" for a file cut short; a key twice was read silently.
func TestCLINamesWhereAFileIsNotJSON(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "pat.db")
	cut := writeFile(t, dir, "cut.json", "{\"users\": [\n  {\"login\": \"bob\"},\n")
	bad := writeFile(t, dir, "bad.json", "{\"a\": 1,\n \"users\":   [ x]}")
	cliFail(t, "error: "+cut+": decoding: unexpected EOF: the text ends at line 3, column 1, before its JSON value does",
		"store", "import", "--store", db, cut)
	cliFail(t, "error: "+bad+": decoding: invalid character 'x' looking for beginning of value, at line 2, column 15",
		"store", "import", "--store", db, bad)
	cliFail(t, "error: "+cut+": settings: invalid JSON: EOF: the text ends at line 3, column 1, before its JSON value does",
		"store", "settings", "--store", db, cut)
	cliFail(t, "error: "+bad+": settings: invalid JSON: invalid character 'x' looking for beginning of value, at line 2, column 15",
		"store", "settings", "--store", db, bad)
	// A key twice in one record, also in another case: Go's reader kept
	// the last without a word.
	twice := writeFile(t, dir, "twice.json", "{\"users\": [{\"login\": \"bob\"},\n {\"login\": \"a\", \"Login\": \"eve\"}]}")
	cliFail(t, "error: "+twice+`: users[1]: the keys "login" and "Login" differ only in case, at line 2, column 17: both would be read as one field, the last; give each key once, as documented`,
		"store", "import", "--store", db, twice)
	again := writeFile(t, dir, "again.json", `{"users": [{"login": "bob", "login": "eve"}]}`)
	cliFail(t, "error: "+again+`: users[0]: the key "login" is given twice, at line 1, column 29: only one of the two would be read; give each key once`,
		"store", "import", "--store", db, again)
	if _, err := os.Stat(db); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a refused file left a store: %v", err)
	}
}

// The configuration is read as OPA reads it: ${NAME} is the variable's
// value, and left as written when NAME is unset. Such a value in plugins.pat
// is refused, by run and by up before it seeds a store, naming the key and
// the variable: it used to be taken literally, a store file named
// "${OPA_PAT_TEST_UNSET_DB}" in the working directory.
func TestConfigRefusesAnUnsetVariable(t *testing.T) {
	const refused = `error: config error: invalid configuration for plugin "pat": `
	for _, tc := range []struct {
		note, config, stderr string
		args                 []string
	}{
		{note: "run", args: []string{"run", "--server", "--addr", "127.0.0.1:0"},
			config: "plugins:\n  pat:\n    store:\n      path: ${OPA_PAT_TEST_UNSET_DB}\n",
			stderr: `store.path: "${OPA_PAT_TEST_UNSET_DB}" names the environment variable OPA_PAT_TEST_UNSET_DB, which is not set`},
		{note: "up", args: []string{"up", "--addr", "127.0.0.1:0", "--ext-authz-addr", "", "--admin-addr", ""},
			config: "plugins:\n  pat:\n    store:\n      path: ${OPA_PAT_TEST_UNSET_DB}\n",
			stderr: `store.path: "${OPA_PAT_TEST_UNSET_DB}" names the environment variable OPA_PAT_TEST_UNSET_DB, which is not set`},
		{note: "up --store, beside a prefix", args: []string{"up", "--store", "pat.db", "--addr", "127.0.0.1:0", "--ext-authz-addr", "", "--admin-addr", ""},
			config: "plugins:\n  pat:\n    token_prefixes:\n      classic: ${OPA_PAT_TEST_UNSET_DB}\n",
			stderr: `token_prefixes.classic: "${OPA_PAT_TEST_UNSET_DB}" names the environment variable OPA_PAT_TEST_UNSET_DB, which is not set`},
	} {
		t.Run(tc.note, func(t *testing.T) {
			dir := t.TempDir()
			config := writeFile(t, dir, "config.yaml", tc.config)
			res := runBounded(t, dir, append(tc.args, "--config-file", config)...)
			if want := refused + tc.stderr + "\n"; res.code != 1 || res.stderr != want {
				t.Fatalf("exit %d, stderr %q; want exit 1, stderr %q", res.code, res.stderr, want)
			}
			if entries, err := os.ReadDir(dir); err != nil || len(entries) != 1 {
				t.Fatalf("the refused start left files: %v %v", entries, err)
			}
		})
	}
}

// runBounded runs opa-pat in dir, without the variables the tests take for
// unset (OPA_PAT_TEST_UNSET*) in its environment, and stops it after a
// minute: a start that should have been refused and serves instead fails
// the test rather than hang it.
func runBounded(t *testing.T, dir string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), args...)
	cmd.Dir = dir
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "OPA_PAT_TEST_UNSET") })
	return runCommand(t, cmd)
}

// up checks every flag and file before it creates the store, and removes a
// store it created when the start then fails: a mistake leaves no store
// holding the published demo tokens.
func TestUpCreatesNoStoreOnAFailedStart(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "pat.db")
	missing := filepath.Join(dir, "missing.json")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct {
		note   string
		args   []string
		stderr string
	}{
		{note: "a missing settings file", args: []string{"--settings", missing},
			stderr: "error: --settings: open " + missing + ": no such file or directory\n"},
		{note: "settings that break the schema", args: []string{"--settings", writeFile(t, dir, "bad.json", `{"organizations": {"o": {"classic_access": "maybe"}}}`)},
			stderr: "error: --settings: " + filepath.Join(dir, "bad.json") + ": settings: organizations.o.classic_access: \"maybe\" is not one of allow, restrict\n"},
		{note: "a bad plugins.pat", args: []string{"--config-file", writeFile(t, dir, "config.yaml", "plugins:\n  pat:\n    bogus: 1\n")},
			stderr: "error: config error: invalid configuration for plugin \"pat\": unknown key \"bogus\" (known: admin, bundle, evaluator, ext_authz, store, token_prefixes)\n"},
		{note: "another database's URL", args: []string{"--store", "mysql://u:hunter2@h/db"},
			stderr: "error: --store: \"mysql://u:xxxxx@h/db\" is neither a postgres:// URL nor a file path\n"},
		{note: "an address in use", args: []string{"--addr", busy.Addr().String()}},
	} {
		t.Run(tc.note, func(t *testing.T) {
			args := append([]string{"up", "--store", db, "--addr", freeAddr(t), "--ext-authz-addr", "", "--admin-addr", ""}, tc.args...)
			res := cli(t, args...)
			if res.code != 1 {
				t.Fatalf("up: exit %d; want 1\nstderr: %s", res.code, res.stderr)
			}
			if tc.stderr != "" && res.stderr != tc.stderr {
				t.Fatalf("up: stderr %q; want %q", res.stderr, tc.stderr)
			}
			if tc.stderr == "" && !strings.HasSuffix(res.stderr, "opa-pat up: removed "+db+", which this run created\n"+
				"error: listen tcp "+busy.Addr().String()+": bind: address already in use\n") {
				t.Fatalf("up: stderr %q", res.stderr)
			}
			for _, suffix := range []string{"", "-wal", "-shm"} {
				if _, err := os.Stat(db + suffix); !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("up left %s behind: %v", db+suffix, err)
				}
			}
		})
	}
}

// A PostgreSQL server that does not answer is one error line (pgx writes
// each connection attempt on a line of its own) that names the store as a
// file's is named, without the password.
func TestCLIPostgresConnectionErrorIsOneLine(t *testing.T) {
	dsn := "postgres://postgres:hunter2@127.0.0.1:1/pat"
	const refused = "127.0.0.1:1 (127.0.0.1): dial error: dial tcp 127.0.0.1:1: connect: connection refused"
	cliFail(t, `error: opening store "postgres://postgres:xxxxx@127.0.0.1:1/pat": reading schema version: failed to connect to `+"`user=postgres database=pat`: "+refused,
		"token", "list", "--store", dsn)
	cliFail(t, `error: opening store "postgres://postgres:xxxxx@127.0.0.1:1/pat": beginning transaction: failed to connect to `+"`user=postgres database=pat`: "+refused,
		"token", "create", "--store", dsn, "--user", "bob", "--kind", "classic")
}

// requests list leaves out the requests of revoked tokens, as the admin API
// does (--history keeps them), and takes --state all as the API does.
func TestCLIRequestsOfRevokedTokens(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "pat.db")
	cliOK(t, "store", "import", "--store", db, writeFile(t, dir, "world.json", cliWorld))
	cliOK(t, "token", "create", "--store", db, "--user", "bob", "--kind", "fine_grained", "--resource-owner", "octo-org",
		"--repositories", "app", "--reason", "deploys")
	cliOK(t, "token", "revoke", "--store", db, "3")
	approved := []cliRequest{{ID: 1, TokenID: 1, User: "bob", Org: "octo-org", State: "approved", Reason: "release"}}
	for _, tc := range []struct {
		note string
		args []string
		want []cliRequest
	}{
		{note: "current", want: approved},
		{note: "all", args: []string{"--state", "all"}, want: approved},
		{note: "pending", args: []string{"--state", "pending"}, want: []cliRequest{}},
		{note: "the revoked token's", args: []string{"--token", "3"}, want: []cliRequest{}},
		{note: "history", args: []string{"--history"},
			want: append(approved, cliRequest{ID: 2, TokenID: 3, User: "bob", Org: "octo-org", State: "pending", Reason: "deploys"})},
	} {
		t.Run(tc.note, func(t *testing.T) {
			got := decode[[]cliRequest](t, cliOK(t, append([]string{"requests", "list", "--store", db, "--org", "octo-org", "--output", "json"}, tc.args...)...))
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("requests list %v = %+v; want %+v", tc.args, got, tc.want)
			}
		})
	}
	cliFail(t, `error: --state: unknown state "open", want pending, approved, denied, revoked or all`,
		"requests", "list", "--store", db, "--state", "open")
}

// requests create says why a token cannot ask an organization, as the
// admin API does, instead of "has no grant".
func TestCLIRequestsCreateRefusals(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "pat.db")
	cliOK(t, "store", "import", "--store", db, writeFile(t, dir, "world.json", cliWorld))
	cliOK(t, "token", "create", "--store", db, "--user", "bob", "--kind", "fine_grained") // 3: bob's own
	for _, tc := range []struct {
		note, org, token, stderr string
	}{
		{note: "unknown token", org: "octo-org", token: "999", stderr: "error: --token: token 999 not found"},
		{note: "classic token", org: "octo-org", token: "2", stderr: "error: --token: token 2 is not a fine-grained token aimed at an organization"},
		{note: "the user's own", org: "bob", token: "3", stderr: "error: --token: token 3 is not a fine-grained token aimed at an organization"},
		{note: "another organization", org: "indie-org", token: "1", stderr: "error: --token: token 1's resource owner is octo-org, not indie-org (rule 6)"},
		{note: "approved", org: "octo-org", token: "1", stderr: "error: token 1: its grant for octo-org is approved; only a denied or revoked grant can be requested again"},
	} {
		t.Run(tc.note, func(t *testing.T) {
			cliFail(t, tc.stderr, "requests", "create", "--store", db, "--org", tc.org, "--token", tc.token)
		})
	}
}

// A number flag given something else says so in the CLI's words, not
// strconv's.
func TestCLINumberFlags(t *testing.T) {
	db := filepath.Join(t.TempDir(), "pat.db")
	for _, tc := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"requests", "list", "--store", db, "--token", "abc"}, `error: --token: "abc" is not a number (see opa-pat requests list --help)`},
		{[]string{"requests", "create", "--store", db, "--org", "o", "--token", "abc"}, `error: --token: "abc" is not a number (see opa-pat requests create --help)`},
		{[]string{"audit", "list", "--store", db, "--limit", "abc"}, `error: --limit: "abc" is not a number (see opa-pat audit list --help)`},
		{[]string{"audit", "list", "--store", db, "--request", "1.5"}, `error: --request: "1.5" is not a number (see opa-pat audit list --help)`},
		{[]string{"store", "prune-changes", "--store", db, "--keep", "abc"}, `error: --keep: "abc" is not a number (see opa-pat store prune-changes --help)`},
	} {
		cliFail(t, tc.stderr, tc.args...)
	}
}

// A number flag below what it means is refused as it is read, naming the
// flag: an id is 1 or more, --limit 0 or more. (--token=-5 listed nothing,
// and --limit -1 listed every event, without a word.)
func TestCLINumberFlagsBelowTheirMinimum(t *testing.T) {
	db := filepath.Join(t.TempDir(), "pat.db")
	for _, tc := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"requests", "list", "--store", db, "--token=-5"}, `error: --token: want a token id (1 or more), got -5 (see opa-pat requests list --help)`},
		{[]string{"requests", "list", "--store", db, "--token", "0"}, `error: --token: want a token id (1 or more), got 0 (see opa-pat requests list --help)`},
		{[]string{"requests", "create", "--store", db, "--org", "o", "--token", "-1"}, `error: --token: want a token id (1 or more), got -1 (see opa-pat requests create --help)`},
		{[]string{"audit", "list", "--store", db, "--token=-5"}, `error: --token: want a token id (1 or more), got -5 (see opa-pat audit list --help)`},
		{[]string{"audit", "list", "--store", db, "--request", "0"}, `error: --request: want a request id (1 or more), got 0 (see opa-pat audit list --help)`},
		{[]string{"audit", "list", "--store", db, "--limit", "-1"}, `error: --limit: want 0 (all events) or more, got -1 (see opa-pat audit list --help)`},
		// Unchanged: a missing --token, and --keep's own check.
		{[]string{"requests", "create", "--store", db, "--org", "o"}, `error: --token: give the token id`},
		{[]string{"store", "prune-changes", "--store", db, "--keep", "-1"}, `error: --keep: want at least 1 entry, got -1 (see opa-pat store prune-changes --help)`},
	} {
		cliFail(t, tc.stderr, tc.args...)
	}
}

// A user named as a fine-grained token's resource owner is refused as such,
// not as "bob is not a member of olga".
func TestCLIResourceOwnerIsAUser(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "pat.db")
	cliOK(t, "store", "import", "--store", db, writeFile(t, dir, "world.json", cliWorld))
	cliFail(t, "error: resource_owner: olga is a user, not an organization; a fine-grained token's resource owner is its own user (bob) or an organization",
		"token", "create", "--store", db, "--user", "bob", "--kind", "fine_grained", "--resource-owner", "Olga")
}

// store export --file writes mode 0600 also over an existing file of
// another mode: an export holds token hashes and user data.
func TestCLIExportFileMode(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "pat.db")
	cliOK(t, "store", "import", "--store", db, writeFile(t, dir, "world.json", cliWorld))
	out := filepath.Join(dir, "out.json")
	if err := os.WriteFile(out, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(out, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.json")
	if err := os.Symlink(out, link); err != nil {
		t.Fatal(err)
	}
	cliOK(t, "store", "export", "--store", db, "--file", link)
	st, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("export over a 0644 file: mode %o; want 600", st.Mode().Perm())
	}
	if lst, err := os.Lstat(link); err != nil || lst.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("the link given as --file was replaced: %v %v", lst, err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := cliOK(t, "store", "export", "--store", db); string(b) != want {
		t.Fatalf("export file:\n%s\nwant\n%s", b, want)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"link.json", "out.json", "pat.db", "world.json"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("files after the export: %v; want %v", names, want)
	}
}

// token list prints the live tokens: neither revoked nor expired (rule 2);
// --all adds the others.
func TestCLITokenListLive(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "pat.db")
	// The world's token 1 expired on 2026-03-01; token 2 never expires.
	cliOK(t, "store", "import", "--store", db, writeFile(t, dir, "world.json", cliWorld))
	cliOK(t, "token", "create", "--store", db, "--user", "bob", "--kind", "classic", "--name", "gone")
	cliOK(t, "token", "revoke", "--store", db, "3")
	ids := func(args ...string) []int64 {
		t.Helper()
		var out []int64
		for _, tk := range decode[[]struct {
			ID int64 `json:"id"`
		}](t, cliOK(t, append([]string{"token", "list", "--store", db, "--output", "json"}, args...)...)) {
			out = append(out, tk.ID)
		}
		return out
	}
	if got := ids(); !reflect.DeepEqual(got, []int64{2}) {
		t.Fatalf("token list: ids %v; want [2]", got)
	}
	if got := ids("--all"); !reflect.DeepEqual(got, []int64{1, 2, 3}) {
		t.Fatalf("token list --all: ids %v; want [1 2 3]", got)
	}
}
