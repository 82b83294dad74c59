package tests

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/opa-pat/opa-pat/plugin/store"
)

// cliResult is what one run of the binary produced.
type cliResult struct {
	stdout, stderr string
	code           int
}

// cli runs opa-pat with args.
func cli(t *testing.T, args ...string) cliResult {
	t.Helper()
	return runCommand(t, exec.CommandContext(t.Context(), binary(t), args...))
}

// runCommand runs a prepared opa-pat command and collects what it printed and
// its exit code; a command that could not run at all fails the test.
func runCommand(t *testing.T, cmd *exec.Cmd) cliResult {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	res := cliResult{stdout: out.String(), stderr: errOut.String()}
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		res.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running %s: %v", strings.Join(cmd.Args, " "), err)
	}
	return res
}

// cliOK runs opa-pat and fails the test unless it exits 0.
func cliOK(t *testing.T, args ...string) string {
	t.Helper()
	res := cli(t, args...)
	if res.code != 0 {
		t.Fatalf("opa-pat %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
	}
	return res.stdout
}

// cliFail runs opa-pat and expects exit status 1 with exactly stderr.
func cliFail(t *testing.T, stderr string, args ...string) {
	t.Helper()
	res := cli(t, args...)
	if res.code != 1 || res.stderr != stderr+"\n" {
		t.Fatalf("opa-pat %s: exit %d, stderr %q; want exit 1, stderr %q", strings.Join(args, " "), res.code, res.stderr, stderr+"\n")
	}
}

func decode[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("decoding %q: %v", s, err)
	}
	return v
}

const (
	cliClassic = "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"
	cliFG      = "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"
)

const cliWorld = `{
  "users":        [{"login": "bob", "managed_by": null}, {"login": "olga", "managed_by": null}, {"login": "eve", "managed_by": "acme"}],
  "memberships":  [{"user": "bob", "org": "octo-org", "role": "member"}, {"user": "olga", "org": "octo-org", "role": "owner"}],
  "repositories": [{"owner": "octo-org", "name": "app", "visibility": "private"}],
  "tokens": [{"token": "` + cliFG + `", "name": "ci", "kind": "fine_grained", "user": "bob",
              "resource_owner": "octo-org", "repository_selection": "selected", "repositories": ["app"],
              "permissions": {"contents": "write"}, "scopes": [],
              "created_at": "2026-01-01T00:00:00Z", "expires_at": "2026-03-01T00:00:00Z", "revoked": false},
             {"token": "` + cliClassic + `", "name": "old", "kind": "classic", "user": "bob", "scopes": ["repo"],
              "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}],
  "grants": [{"token_name": "ci", "user": "bob", "org": "octo-org", "state": "approved", "reason": "release"}]
}`

type cliRequest struct {
	ID      int64  `json:"id"`
	TokenID int64  `json:"token_id"`
	User    string `json:"user"`
	Org     string `json:"org"`
	State   string `json:"state"`
	Reason  string `json:"reason"`
}

func TestCLITokenLifecycle(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "pat.db")
	world := writeFile(t, dir, "world.json", cliWorld)

	if got, want := cliOK(t, "store", "import", "--store", db, world),
		"imported 3 users, 2 memberships, 1 repository, 2 tokens and 1 grant into "+db+"\n"; got != want {
		t.Fatalf("import: %q; want %q", got, want)
	}
	// The same file again: every record is as the store holds it.
	if got, want := cliOK(t, "store", "import", "--store", db, world),
		"imported 0 users, 0 memberships, 0 repositories, 0 tokens and 0 grants into "+db+"; 9 records already so, unchanged\n"; got != want {
		t.Fatalf("import again: %q; want %q", got, want)
	}

	// A member's fine-grained token for the organization starts pending.
	created := decode[struct {
		ID        int64  `json:"id"`
		Token     string `json:"token"`
		Kind      string `json:"kind"`
		CreatedAt string `json:"created_at"`
		ExpiresAt string `json:"expires_at"`
		Request   struct {
			ID    int64  `json:"id"`
			State string `json:"state"`
		} `json:"request"`
	}](t, cliOK(t, "token", "create", "--store", db, "--user", "bob", "--kind", "fine_grained", "--resource-owner", "octo-org",
		"--repositories", "app", "--permission", "contents=write", "--expires-in", "30d", "--name", "deploy", "--reason", "deploys"))
	if !regexp.MustCompile(`^github_pat_[0-9A-Za-z]{22}_[0-9A-Za-z]{59}$`).MatchString(created.Token) ||
		created.ID != 3 || created.Kind != "fine_grained" || created.Request.ID != 2 || created.Request.State != "pending" {
		t.Fatalf("token create: %+v", created)
	}
	// Times in whole seconds, as GitHub and the admin API show them.
	for _, at := range []string{created.CreatedAt, created.ExpiresAt} {
		if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`).MatchString(at) {
			t.Fatalf("token create: time %q, want whole seconds", at)
		}
	}

	pending := decode[[]cliRequest](t, cliOK(t, "requests", "list", "--store", db, "--org", "octo-org", "--state", "pending", "--output", "json"))
	if want := []cliRequest{{ID: 2, TokenID: 3, User: "bob", Org: "octo-org", State: "pending", Reason: "deploys"}}; !reflect.DeepEqual(pending, want) {
		t.Fatalf("pending requests = %+v; want %+v", pending, want)
	}
	if got := cliOK(t, "requests", "approve", "--store", db, "--org", "octo-org", "2", "--reason", "ok", "--actor", "olga"); got != "approved 1 request of octo-org: 2\n" {
		t.Fatalf("approve: %q", got)
	}
	all := decode[[]cliRequest](t, cliOK(t, "requests", "list", "--store", db, "--org", "octo-org", "--output", "json"))
	want := []cliRequest{
		{ID: 1, TokenID: 1, User: "bob", Org: "octo-org", State: "approved", Reason: "release"},
		{ID: 2, TokenID: 3, User: "bob", Org: "octo-org", State: "approved", Reason: "ok"},
	}
	if !reflect.DeepEqual(all, want) {
		t.Fatalf("requests = %+v; want %+v", all, want)
	}

	// Reviewing again, or in another organization, fails and changes nothing.
	cliFail(t, "error: request 9 not found in octo-org; only pending requests can be reviewed: request 2 is approved",
		"requests", "deny", "--store", db, "--org", "octo-org", "2", "9")
	cliFail(t, "error: request 2 not found in other-org", "requests", "deny", "--store", db, "--org", "other-org", "2")
	cliFail(t, "error: reason: longer than 1024 characters",
		"requests", "deny", "--store", db, "--org", "octo-org", "2", "--reason", strings.Repeat("x", 1025))

	// An owner revokes the grant; the token's user revokes the token.
	cliOK(t, "requests", "revoke", "--store", db, "--org", "octo-org", "3", "--reason", "left the team")
	cliOK(t, "token", "revoke", "--store", db, "3")
	cliFail(t, "error: token 3: already revoked", "token", "revoke", "--store", db, "3")

	tokens := decode[[]map[string]any](t, cliOK(t, "token", "list", "--store", db, "--all", "--output", "json"))
	if len(tokens) != 3 || tokens[2]["revoked"] != true || tokens[2]["name"] != "deploy" {
		t.Fatalf("tokens = %v", tokens)
	}

	events := decode[[]struct {
		Actor  string `json:"actor"`
		Action string `json:"action"`
		Reason string `json:"reason"`
	}](t, cliOK(t, "audit", "list", "--store", db, "--token", "3", "--output", "json"))
	var actions []string
	for _, e := range events {
		actions = append(actions, e.Action)
	}
	if want := []string{"token.create", "request.create", "request.approve", "grant.revoke", "token.revoke"}; !reflect.DeepEqual(actions, want) {
		t.Fatalf("audit actions = %v; want %v", actions, want)
	}
	if events[2].Actor != "olga" || events[2].Reason != "ok" || events[3].Reason != "left the team" {
		t.Fatalf("audit events = %+v", events)
	}

	// No raw token anywhere in the store's files.
	files, _ := filepath.Glob(db + "*")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range []string{cliClassic, cliFG, created.Token} {
			if bytes.Contains(b, []byte(raw)) {
				t.Fatalf("%s holds a raw token", f)
			}
		}
	}
}

func TestCLITokenCreate(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "pat.db")
	cliOK(t, "store", "import", "--store", db, writeFile(t, dir, "world.json", cliWorld))
	settings := writeFile(t, dir, "settings.json", `{"organizations": {"octo-org": {"fine_grained_approval": "disable", "fine_grained_max_lifetime_days": 7}}}`)
	create := []string{"token", "create", "--store", db, "--kind", "fine_grained", "--resource-owner", "octo-org", "--all-repositories"}
	for _, tc := range []struct {
		note   string
		args   []string
		state  string // the request's state; "" for none
		stderr string
	}{
		{note: "owner: approved at once", args: append(create, "--user", "olga"), state: "approved"},
		{note: "member: pending", args: append(create, "--user", "bob"), state: "pending"},
		{note: "approval disabled: approved", args: append(create, "--user", "bob", "--settings", settings, "--expires-in", "7d"), state: "approved"},
		{note: "public repositories need no grant", args: []string{"token", "create", "--store", db, "--kind", "fine_grained", "--resource-owner", "octo-org", "--user", "bob"}},
		{note: "classic", args: []string{"token", "create", "--store", db, "--kind", "classic", "--user", "bob", "--scope", "repo", "--no-expiry"}},
		{note: "not a member", args: append(create, "--user", "eve"),
			stderr: "error: token creation refused: eve is not a member of octo-org: only members of octo-org can create fine-grained personal access tokens for it; ask an owner of octo-org for membership"},
		{note: "lifetime above the organization's limit", args: append(create, "--user", "bob", "--settings", settings, "--expires-in", "8d"),
			stderr: "error: token creation refused: octo-org forbids access via a fine-grained personal access token if the token's lifetime is greater than 7 days: the policy is set by the octo-org organization; the token's lifetime is 8 days; choose an expiration of 7 days or less"},
		{note: "no kind", args: []string{"token", "create", "--store", db, "--user", "bob"}, stderr: "error: --kind: give classic or fine_grained"},
		{note: "bad lifetime", args: append(create, "--user", "bob", "--expires-in", "soon"), stderr: `error: --expires-in: "soon" is not a duration such as 30d, 12h or 1d12h`},
		{note: "a lifetime whose nanoseconds would wrap (to 25 minutes)", args: []string{"token", "create", "--store", db, "--kind", "classic", "--user", "bob", "--expires-in", "213504d"},
			stderr: `error: --expires-in: "213504d" is longer than 100000 days; for a token that does not expire, give --no-expiry`},
		{note: "bad permission", args: append(create, "--user", "bob", "--permission", "contents=all"), stderr: `error: --permission: "contents=all": level "all" must be read, write or admin`},
		{note: "scope on a fine-grained token", args: append(create, "--user", "bob", "--scope", "repo"), stderr: "error: --scope is for classic tokens; fine-grained tokens take --permission"},
		{note: "two selections", args: append(create, "--user", "bob", "--public-repositories"), stderr: "error: --repositories, --all-repositories and --public-repositories exclude each other"},
		{note: "no store", args: []string{"token", "create", "--user", "bob", "--kind", "classic"}, stderr: "error: --store: give the path of the token store (or set OPA_PAT_STORE)"},
	} {
		t.Run(tc.note, func(t *testing.T) {
			if tc.stderr != "" {
				cliFail(t, tc.stderr, tc.args...)
				return
			}
			out := decode[map[string]any](t, cliOK(t, tc.args...))
			req, _ := out["request"].(map[string]any)
			state, _ := req["state"].(string)
			if state != tc.state {
				t.Fatalf("request = %v; want state %q", out["request"], tc.state)
			}
			if _, ok := out["token"].(string); !ok {
				t.Fatalf("no token in %v", out)
			}
		})
	}
	// The text output shows the raw token once, with the request.
	res := cliOK(t, append(create, "--user", "bob", "--output", "text")...)
	if !regexp.MustCompile(`(?s)^created fine-grained token \d+ "" for bob \(expires [^)]+\)\nrequest \d+ for octo-org: pending\ncopy the token now, it will not be shown again:\ngithub_pat_\S{82}\n$`).MatchString(res) {
		t.Fatalf("text output: %q", res)
	}
}

// An enterprise managed user's own fine-grained token keeps the
// enterprise's lifetime limit at creation (rules 27 and 29), whether the
// resource owner is given or left to its default, in any case; the
// enterprise's owners are exempt where it exempts administrators (rule
// 28), and so are users no enterprise manages. Settings recorded in the
// store, as a sidecar records its bundle's.
func TestCLITokenCreateKeepsTheManagedUsersLimit(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "pat.db")
	cliOK(t, "store", "import", "--store", db, writeFile(t, dir, "world.json", cliWorld))
	cliOK(t, "store", "import", "--store", db, writeFile(t, dir, "ema.json", `{"users": [{"login": "ema", "managed_by": "acme"}]}`))
	settings := func(exempt bool) string {
		return writeFile(t, dir, fmt.Sprintf("settings-%v.json", exempt), fmt.Sprintf(`{"enterprises": {"acme": {"owners": ["ema"], "fine_grained_max_lifetime_days": 30, "exempt_administrators": %v}}}`, exempt))
	}
	cliOK(t, "store", "settings", "--store", db, settings(true))
	own := func(user string, args ...string) []string {
		return append([]string{"token", "create", "--store", db, "--kind", "fine_grained", "--user", user}, args...)
	}
	const beyond = "error: token creation refused: acme forbids access via a fine-grained personal access token if the token's lifetime is greater than 30 days: the policy is set by the acme enterprise; "
	for _, tc := range []struct {
		note   string
		args   []string
		stderr string // "" when created
	}{
		{note: "no resource owner, 90 days", args: own("eve", "--permission", "contents=read", "--expires-in", "90d"),
			stderr: beyond + "the token's lifetime is 90 days; choose an expiration of 30 days or less"},
		{note: "the user as resource owner, in another case, no expiry", args: own("EVE", "--resource-owner", "Eve", "--no-expiry"),
			stderr: beyond + "the token has no expiration date; choose an expiration of 30 days or less"},
		{note: "no expiry given: GitHub's 30 days", args: own("eve")},
		{note: "30 days", args: own("eve", "--resource-owner", "eve", "--expires-in", "30d")},
		{note: "the enterprise's owner, exempt", args: own("ema", "--expires-in", "90d")},
		{note: "the enterprise's owner, not exempt", args: own("ema", "--expires-in", "90d", "--settings", settings(false)),
			stderr: beyond + "the token's lifetime is 90 days; choose an expiration of 30 days or less"},
		{note: "a user no enterprise manages", args: own("bob", "--expires-in", "90d")},
	} {
		t.Run(tc.note, func(t *testing.T) {
			if tc.stderr != "" {
				cliFail(t, tc.stderr, tc.args...)
				return
			}
			out := decode[map[string]any](t, cliOK(t, tc.args...))
			if out["resource_owner"] != out["user"] {
				t.Fatalf("created %v; want a token for the user's own account", out)
			}
		})
	}
}

// A store that no sidecar has served, and in which no settings were
// recorded, is checked against the default settings, and token create says
// so; with settings recorded, or --settings, it says nothing.
func TestCLITokenCreateSaysWhenItUsesTheDefaultSettings(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "pat.db")
	cliOK(t, "store", "import", "--store", db, writeFile(t, dir, "world.json", cliWorld))
	settings := writeFile(t, dir, "settings.json", `{"organizations": {"octo-org": {"fine_grained_approval": "disable"}}}`)
	create := []string{"token", "create", "--store", db, "--kind", "classic", "--user", "bob", "--scope", "repo", "--expires-in", "7d"}
	warning := "warning: " + db + " records no settings (no sidecar has served it, and none were recorded): " +
		"the creation was checked against the default settings; give --settings FILE, or record them with opa-pat store settings\n"
	for _, tc := range []struct {
		note   string
		args   []string
		stderr string
	}{
		{note: "nothing recorded", args: create, stderr: warning},
		{note: "--settings", args: append(slices.Clone(create), "--settings", settings)},
	} {
		if res := cli(t, tc.args...); res.code != 0 || res.stderr != tc.stderr {
			t.Errorf("%s: exit %d, stderr %q; want 0 and %q", tc.note, res.code, res.stderr, tc.stderr)
		}
	}
	cliOK(t, "store", "settings", "--store", db, settings)
	if res := cli(t, create...); res.code != 0 || res.stderr != "" {
		t.Errorf("settings recorded: exit %d, stderr %q; want 0 and nothing", res.code, res.stderr)
	}
}

// Logins in another case name the same user or organization, as on GitHub:
// the token is the store's bob's, and the lists find it by any spelling.
func TestCLINamesInAnyCase(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "pat.db")
	cliOK(t, "store", "import", "--store", db, writeFile(t, dir, "world.json", cliWorld))
	out := decode[map[string]any](t, cliOK(t, "token", "create", "--store", db, "--kind", "fine_grained", "--user", "BOB",
		"--resource-owner", "Octo-Org", "--repositories", "App"))
	if out["user"] != "bob" || out["resource_owner"] != "octo-org" {
		t.Fatalf("created %v; want bob's token for octo-org", out)
	}
	req := out["request"].(map[string]any)
	id := fmt.Sprint(req["id"])
	for _, args := range [][]string{
		{"token", "list", "--store", db, "-o", "json", "--all", "--user", "bob", "--resource-owner", "octo-org"},
		{"requests", "list", "--store", db, "-o", "json", "--org", "octo-org", "--user", "bob"},
	} {
		want := cliOK(t, args...)
		if n := len(decode[[]map[string]any](t, want)); n < 2 {
			t.Fatalf("%v lists %d; want the world's and the new one", args, n)
		}
		mixed := slices.Clone(args)
		for i, a := range mixed {
			if a == "bob" || a == "octo-org" {
				mixed[i] = strings.ToUpper(a[:1]) + a[1:]
			}
		}
		if got := cliOK(t, mixed...); got != want {
			t.Fatalf("%v:\n%s\nwant, as in lower case:\n%s", mixed, got, want)
		}
	}
	cliOK(t, "requests", "approve", "--store", db, "--org", "Octo-Org", id)
}

// store migrate refuses a source that holds what no write would store (a
// store of an older opa-pat; here a token's name set with SQL to a raw
// token), naming the record and the field, never the value, and the target
// stays as it was, also with --replace.
func TestCLIMigrateRefusesWhatWritesRefuse(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "old.db"), filepath.Join(dir, "new.db")
	cliOK(t, "store", "import", "--store", src, writeFile(t, dir, "world.json", cliWorld))
	cliOK(t, "store", "import", "--store", dst, writeFile(t, dir, "other.json", `{"users": [{"login": "carol", "managed_by": null}]}`))
	plantTokenAsName(t, src)
	before := cliOK(t, "store", "export", "--store", dst)
	cliFail(t, "error: migrating "+src+" to "+dst+": the source's token 2 holds a value this opa-pat refuses on write (correct it in the source; "+
		"nothing was written): name: looks like a personal access token; opa-pat never stores a token in plain text",
		"store", "migrate", "--from", src, "--to", dst, "--replace")
	if after := cliOK(t, "store", "export", "--store", dst); after != before {
		t.Fatalf("a refused migration changed the target:\n%s\nwant\n%s", after, before)
	}
}

// A store migrate that fails removes the SQLite target it created (the
// store and its -wal and -shm), which would otherwise look like a migrated
// store, empty; a target that existed before stays, also when it was an
// empty file.
func TestCLIMigrateRemovesTheTargetItCreated(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "old.db")
	cliOK(t, "store", "import", "--store", src, writeFile(t, dir, "world.json", cliWorld))
	plantTokenAsName(t, src)
	refusal := func(dst string) string {
		return "error: migrating " + src + " to " + dst + ": the source's token 2 holds a value this opa-pat refuses on write (correct it in the source; " +
			"nothing was written): name: looks like a personal access token; opa-pat never stores a token in plain text"
	}
	exists := func(path string) bool {
		t.Helper()
		_, err := os.Lstat(path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		return err == nil
	}

	created := filepath.Join(dir, "new.db")
	cliFail(t, refusal(created), "store", "migrate", "--from", src, "--to", created)
	for _, f := range []string{created, created + "-wal", created + "-shm"} {
		if exists(f) {
			t.Errorf("%s is left behind", f)
		}
	}

	empty := writeFile(t, dir, "empty.db", "")
	cliFail(t, refusal(empty), "store", "migrate", "--from", src, "--to", empty)
	if !exists(empty) {
		t.Fatalf("the empty file that was there before is removed")
	}
}

func TestCLIImport(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		note   string
		world  string
		stderr string
	}{
		{note: "unknown kind", world: `{"tokens": [{"token_sha256": "` + strings.Repeat("ab", 32) + `", "kind": "foo", "user": "bob", "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}]}`,
			stderr: `tokens[0].kind: unknown kind "foo"`},
		{note: "bad checksum", world: `{"tokens": [{}, {"token": "ghp_DEpGVKt1V8xcky8Y4twk4ylS5Cwrp42bW5D1", "kind": "classic", "user": "bob", "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}]}`,
			stderr: `tokens[0].token: give token or token_sha256`},
		{note: "bad checksum second", world: `{"tokens": [{"token": "` + cliClassic + `", "kind": "classic", "user": "bob", "scopes": [], "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}, {"token": "ghp_DEpGVKt1V8xcky8Y4twk4ylS5Cwrp42bW5D1", "kind": "classic", "user": "bob", "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}]}`,
			stderr: `tokens[1].token: not a valid token (prefix, length or checksum)`},
		{note: "a fine-grained token without permissions", world: strings.Replace(cliWorld, `"permissions": {"contents": "write"}, `, ``, 1),
			stderr: `tokens[0].permissions: missing (or null); give the token's permissions, {} for metadata: read only: an import cannot narrow a token by leaving them out`},
		{note: "a user without managed_by", world: strings.Replace(cliWorld, `{"login": "eve", "managed_by": "acme"}`, `{"login": "eve"}`, 1),
			stderr: `users[2].managed_by: missing for "eve"; give the enterprise that manages the user, or null for none: an import cannot take a user out of an enterprise's policy by leaving it out`},
		{note: "wrong type", world: `{"memberships": [{"user": "bob", "org": "o", "role": 3}]}`, stderr: `memberships[0].role: expected a string, got number`},
		{note: "bad role", world: `{"memberships": [{"user": "bob", "org": "o", "role": "boss"}]}`,
			stderr: `memberships[0].role: unknown value "boss", want one of owner, member, outside_collaborator`},
		{note: "bad time", world: `{"tokens": [{"token": "` + cliClassic + `", "kind": "classic", "user": "bob", "expires_at": "tomorrow", "created_at": "2026-01-01T00:00:00Z", "revoked": false}]}`,
			stderr: `tokens[0].expires_at: "tomorrow" is not an RFC 3339 time`},
		{note: "grant for an unknown token", world: `{"grants": [{"token_name": "ci", "user": "bob", "org": "o", "state": "approved"}]}`,
			stderr: `grants[0].token_name: bob has no token named "ci"`},
		{note: "bad grant state", world: `{"grants": [{"token_name": "ci", "user": "bob", "org": "o", "state": "maybe"}]}`,
			stderr: `grants[0].state: unknown value "maybe", want one of pending, approved, denied, revoked`},
	} {
		t.Run(tc.note, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "pat.db")
			file := writeFile(t, dir, "world.json", tc.world)
			cliFail(t, "error: "+file+": "+tc.stderr, "store", "import", "--store", db, file)
		})
	}

	// Unknown fields are ignored, with a warning naming them.
	file := writeFile(t, dir, "extra.json", `{"comment": "x", "users": [{"login": "bob", "managed_by": null, "admin": true, "team": "a"}]}`)
	res := cli(t, "store", "import", "--store", filepath.Join(dir, "extra.db"), file)
	if want := "warning: " + file + `: top level: ignored unknown field "comment"` + "\n" +
		"warning: " + file + `: users[0]: ignored unknown fields "admin", "team"` + "\n"; res.code != 0 || res.stderr != want {
		t.Fatalf("import with unknown fields: exit %d, stderr %q; want %q", res.code, res.stderr, want)
	}

	// All or nothing: a bad last record leaves the store as it was.
	db := filepath.Join(dir, "pat.db")
	bad := strings.Replace(cliWorld, `"state": "approved"`, `"state": "approved"}, {"token_name": "nope", "user": "bob", "org": "o", "state": "approved"`, 1)
	file = writeFile(t, dir, "bad.json", bad)
	cliFail(t, "error: "+file+`: grants[1].token_name: bob has no token named "nope"`, "store", "import", "--store", db, file)
	// The import would have created the store: there is none.
	cliFail(t, `error: opening store "`+db+`": no store there: stat `+db+`: no such file or directory`, "store", "export", "--store", db)
	// Into a store that holds records, a failed import changes nothing.
	cliOK(t, "store", "import", "--store", db, writeFile(t, dir, "world.json", cliWorld))
	before := cliOK(t, "store", "export", "--store", db)
	cliFail(t, "error: "+file+`: grants[1].token_name: bob has no token named "nope"`, "store", "import", "--store", db, file)
	if after := cliOK(t, "store", "export", "--store", db); after != before {
		t.Fatalf("store after a failed import:\n%s\nwant\n%s", after, before)
	}
}

func TestCLIExportRoundTrip(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.db"), filepath.Join(dir, "b.db")
	cliOK(t, "store", "import", "--store", a, writeFile(t, dir, "world.json", cliWorld))
	cliOK(t, "token", "create", "--store", a, "--user", "bob", "--kind", "fine_grained", "--resource-owner", "octo-org", "--all-repositories", "--reason", "r")
	exported := cliOK(t, "store", "export", "--store", a)
	if strings.Contains(exported, cliFG) || strings.Contains(exported, cliClassic) || strings.Contains(exported, `"token":`) {
		t.Fatalf("export holds raw tokens: %s", exported)
	}
	cliOK(t, "store", "import", "--store", b, writeFile(t, dir, "export.json", exported))
	if again := cliOK(t, "store", "export", "--store", b); again != exported {
		t.Fatalf("export after import differs:\n%s\nwant:\n%s", again, exported)
	}
}

// TestCLIRecordedSettings: without --settings, token create checks against
// the settings recorded in the store (as a running sidecar records them).
func TestCLIRecordedSettings(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "pat.db")
	cliOK(t, "store", "import", "--store", db, writeFile(t, dir, "world.json", cliWorld))
	create := []string{"token", "create", "--store", db, "--user", "bob", "--kind", "fine_grained", "--resource-owner", "octo-org", "--all-repositories"}
	if got := decode[map[string]any](t, cliOK(t, create...))["request"].(map[string]any)["state"]; got != "pending" {
		t.Fatalf("with default settings: request %v; want pending", got)
	}
	settings := writeFile(t, dir, "settings.json", `{"organizations": {"octo-org": {"fine_grained_approval": "disable"}}}`)
	if got := cliOK(t, "store", "settings", "--store", db, settings, "--output", "text"); got != "recorded the settings of "+settings+" in "+db+"\n" {
		t.Fatalf("store settings: %q", got)
	}
	if got := decode[map[string]any](t, cliOK(t, create...))["request"].(map[string]any)["state"]; got != "approved" {
		t.Fatalf("with recorded settings: request %v; want approved", got)
	}
	shown := decode[map[string]any](t, cliOK(t, "store", "settings", "--store", db))
	if !reflect.DeepEqual(shown, decode[map[string]any](t, `{"organizations": {"octo-org": {"fine_grained_approval": "disable"}}}`)) {
		t.Fatalf("store settings shows %v", shown)
	}

	// Settings that do not follow the schema are refused with their paths,
	// and the recorded ones stay.
	bad := writeFile(t, dir, "bad.json", `{"organizations": {"octo-org": {"fine_grained_max_lifetime_days": "abc"}}, "enterprises": "oops"}`)
	cliFail(t, `error: `+bad+`: settings: enterprises: "oops" is not an object; organizations.octo-org.fine_grained_max_lifetime_days: "abc" is not an integer or null`,
		"store", "settings", "--store", db, bad)
	if again := decode[map[string]any](t, cliOK(t, "store", "settings", "--store", db)); !reflect.DeepEqual(again, shown) {
		t.Fatalf("after a refused file the store shows %v", again)
	}
	cliFail(t, `error: --settings: `+bad+`: settings: enterprises: "oops" is not an object; organizations.octo-org.fine_grained_max_lifetime_days: "abc" is not an integer or null`,
		append(create, "--settings", bad)...)
}

// store settings FILE is a write by --actor, and an audit event as every
// other: settings.record, with the SHA-256 of the settings recorded and of
// those they replace.
func TestCLIStoreSettingsAudit(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "pat.db")
	cliOK(t, "store", "import", "--store", db, writeFile(t, dir, "world.json", cliWorld))
	settings := writeFile(t, dir, "settings.json", `{"organizations": {"octo-org": {"fine_grained_approval": "disable"}}}`)
	cliOK(t, "store", "settings", "--store", db, "--actor", "carol", settings)
	cliOK(t, "store", "settings", "--store", db, "--actor", "dave", writeFile(t, dir, "empty.json", `{}`))
	// Reading them writes nothing.
	cliOK(t, "store", "settings", "--store", db)
	events := decode[[]map[string]any](t, cliOK(t, "audit", "list", "--store", db, "--action", "settings.record", "--output", "json"))
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	first := sum(`{"organizations":{"octo-org":{"fine_grained_approval":"disable"}}}`)
	var got []string
	for _, e := range events {
		got = append(got, fmt.Sprintf("%v %v %v", e["actor"], e["action"], e["details"]))
	}
	want := []string{
		"carol settings.record map[previous_sha256:<nil> sha256:" + first + "]",
		"dave settings.record map[previous_sha256:" + first + " sha256:" + sum(`{}`) + "]",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("settings events\n%q\nwant\n%q", got, want)
	}
}

// A command that fails on a store it would have created leaves no file.
func TestCLIFailureLeavesNoStore(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "new.db")
	world := writeFile(t, dir, "world.json", `{"users": [{"login": "bob", "managed_by": null}], "tokens": [{"token_sha256": "`+strings.Repeat("0", 64)+`", "kind": "classic", "user": "bob", "created_at": "2026-02-01T00:00:00Z", "expires_at": "2026-01-01T00:00:00Z", "revoked": false}]}`)
	cliFail(t, "error: "+world+": tokens[0].expires_at: must be after created_at", "store", "import", "--store", db, world)
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("the failed import left %v", entries)
	}
	// A store that existed stays, with what it held.
	cliOK(t, "store", "import", "--store", db, writeFile(t, dir, "bob.json", `{"users": [{"login": "bob", "managed_by": null}]}`))
	cliFail(t, "error: "+world+": tokens[0].expires_at: must be after created_at", "store", "import", "--store", db, world)
	if got := cliOK(t, "store", "export", "--store", db); !strings.Contains(got, `"login": "bob"`) {
		t.Fatalf("after a refused import the store exports %s", got)
	}
}

// TestCLIUnexpectedArguments: commands that take no positional arguments
// refuse them with one line, before touching the store.
func TestCLIUnexpectedArguments(t *testing.T) {
	store := filepath.Join(t.TempDir(), "pat.db")
	for _, args := range [][]string{
		{"token", "list", "--store", store, "extra"},
		{"token", "create", "--store", store, "--user", "bob", "--kind", "classic", "extra"},
		{"requests", "list", "--store", store, "--org", "octo-org", "extra"},
		{"requests", "create", "--store", store, "--org", "octo-org", "--token", "1", "extra"},
		{"store", "export", "--store", store, "extra"},
		{"audit", "list", "--store", store, "extra"},
		{"store", "prune-changes", "--store", store, "extra"},
	} {
		res := cli(t, args...)
		if res.code == 0 || res.stderr != "error: unexpected arguments: extra\n" {
			t.Errorf("opa-pat %s: exit %d, stderr %q; want a failure with \"error: unexpected arguments: extra\"",
				strings.Join(args, " "), res.code, res.stderr)
		}
	}
	if _, err := os.Stat(store); err == nil {
		t.Fatal("a refused command created the store")
	}
}

// TestCLIRawTokenForAnID: a raw token given where an id is expected (to
// revoke a leaked token by what was leaked) is described, never printed back.
func TestCLIRawTokenForAnID(t *testing.T) {
	store := filepath.Join(t.TempDir(), "pat.db")
	const raw = "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"
	shown := "(40 characters, not shown: it may be a raw token)"
	hint := "; token ids are the numbers in the first column of opa-pat token list (with --output json, token_sha256 is the SHA-256 of each raw token)"
	requestHint := "; request ids are the numbers in the first column of opa-pat requests list (--token ID lists a token's requests)"
	for _, tc := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"token", "revoke", "--store", store, raw}, "error: token id " + shown + ": not a positive integer" + hint},
		{[]string{"requests", "approve", "--store", store, "--org", "octo-org", raw}, "error: request id " + shown + ": not a positive integer" + requestHint},
		{[]string{"requests", "revoke", "--store", store, "--org", "octo-org", raw}, "error: token id " + shown + ": not a positive integer" + hint},
		{[]string{"requests", "create", "--store", store, "--org", "octo-org", "--token", raw},
			"error: --token: " + shown + " is not a number (see opa-pat requests create --help)"},
		{[]string{"requests", "list", "--store", store, "--token", raw},
			"error: --token: " + shown + " is not a number (see opa-pat requests list --help)"},
		{[]string{"audit", "list", "--store", store, "--token", raw},
			"error: --token: " + shown + " is not a number (see opa-pat audit list --help)"},
	} {
		res := cli(t, tc.args...)
		if res.code != 1 || res.stderr != tc.stderr+"\n" || strings.Contains(res.stdout+res.stderr, raw) {
			t.Errorf("opa-pat %s: exit %d, stderr %q; want exit 1, stderr %q", strings.Join(tc.args, " "), res.code, res.stderr, tc.stderr+"\n")
		}
	}
}

// A bad flag, a missing flag value, an unknown subcommand or filter value:
// one line and exit 1, as every other failure of opa-pat's own commands.
func TestCLIUsageErrorsAreOneLine(t *testing.T) {
	store := filepath.Join(t.TempDir(), "pat.db")
	for _, tc := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"token", "create", "--store", store, "--bogus"}, "error: unknown flag: --bogus (see opa-pat token create --help)"},
		{[]string{"requests", "list", "--state"}, "error: flag needs an argument: --state (see opa-pat requests list --help)"},
		{[]string{"store", "imprt", "--store", store, "x.json"}, `error: unknown command "imprt" for "opa-pat store" (see opa-pat store --help)`},
		{[]string{"store", "--bogus"}, "error: unknown flag: --bogus (see opa-pat store --help)"},
		{[]string{"token", "--bogus", "list"}, "error: unknown flag: --bogus (see opa-pat token --help)"},
		{[]string{"token", "--store=" + store, "lst"}, `error: unknown command "lst" for "opa-pat token" (see opa-pat token --help)`},
		{[]string{"bundle", "verify", "--key", "/nonexistent.pub", "x.tar.gz"}, "error: reading the public key: open /nonexistent.pub: no such file or directory"},
		{[]string{"store", "bogus"}, `error: unknown command "bogus" for "opa-pat store" (see opa-pat store --help)`},
		{[]string{"token", "list", "--store", store, "--kind", "Classic"}, `error: --kind: unknown kind "Classic", want classic or fine_grained`},
		{[]string{"token", "create", "--store", store, "--user", "bob", "--kind", "classic", "--actor", "  "}, `error: --actor: "  " is not a name`},
		{[]string{"token", "create", "--store", store, "--user", "bob", "--kind", "fine_grained", "--repositories", ""}, `error: --repositories: name at least one repository`},
	} {
		cliFail(t, tc.stderr, tc.args...)
	}
	if _, err := os.Stat(store); err == nil {
		t.Fatal("a refused command created the store")
	}
}

func TestCLIPruneChanges(t *testing.T) {
	store := filepath.Join(t.TempDir(), "pat.db")
	for i := range 3 {
		cliOK(t, "token", "create", "--store", store, "--user", "bob", "--kind", "classic", "--name", fmt.Sprint("t", i), "--expires-in", "7d")
	}
	// A user and three tokens: four entries, of which the newest stays.
	if out := cliOK(t, "store", "prune-changes", "--store", store, "--keep", "1"); out != "removed 3 change-log entries; the log now starts after change 3\n" {
		t.Fatalf("prune-changes: %q", out)
	}
	if out := cliOK(t, "store", "prune-changes", "--store", store, "--keep", "1"); out != "removed 0 change-log entries; the log now starts after change 3\n" {
		t.Fatalf("prune-changes again: %q", out)
	}
	cliFail(t, "error: --keep: want at least 1 entry, got 0 (see opa-pat store prune-changes --help)", "store", "prune-changes", "--store", store, "--keep", "0")

	// --vacuum gives the space back and says how much the file was and is.
	out := cliOK(t, "store", "prune-changes", "--store", store, "--keep", "1", "--vacuum")
	if !regexp.MustCompile(`^removed 0 change-log entries; the log now starts after change 3\nvacuumed the store: [0-9]+ bytes before, [0-9]+ after\n$`).MatchString(out) {
		t.Fatalf("prune-changes --vacuum: %q", out)
	}
	var v struct {
		PrunedThrough int64 `json:"pruned_through"`
		BytesBefore   int64 `json:"bytes_before"`
		BytesAfter    int64 `json:"bytes_after"`
	}
	out = cliOK(t, "store", "prune-changes", "--store", store, "--keep", "1", "--vacuum", "-o", "json")
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.PrunedThrough != 3 || v.BytesBefore == 0 || v.BytesAfter == 0 || v.BytesAfter > v.BytesBefore {
		t.Fatalf("prune-changes --vacuum -o json: %v: %s", err, out)
	}
}

// TestRunServerSaysWhyThePluginCannotStart: OPA's run --server returns a
// plugin's failure to start without printing it; opa-pat says it.
func TestRunServerSaysWhyThePluginCannotStart(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing", "pat.db")
	cfg := writeFile(t, dir, "config.yaml", fmt.Sprintf("plugins:\n  pat:\n    store: {path: %q}\n", missing))
	res := cli(t, "run", "--server", "--addr", freeAddr(t), "--config-file", cfg)
	want := fmt.Sprintf("error: opening store %q: directory %q: stat %s: no such file or directory\n", missing, filepath.Dir(missing), filepath.Dir(missing))
	if res.code != 1 || !strings.HasSuffix(res.stderr, want) {
		t.Fatalf("exit %d, stderr %q; want exit 1, stderr ending in %q", res.code, res.stderr, want)
	}
}

func TestCLIAuditListUnknownAction(t *testing.T) {
	db := filepath.Join(t.TempDir(), "pat.db")
	cliOK(t, "store", "import", "--store", db, filepath.Join(repoRoot(), "examples", "fixtures.json"))
	cliFail(t, `error: --action: unknown action "grant.delete", want one of token.create, request.create, request.approve, request.deny, grant.revoke, token.revoke, store.import, settings.record`,
		"audit", "list", "--store", db, "--action", "grant.delete")
}

// TestCLIRawTokenInAFlag: a raw token pasted as a flag's value or an
// argument is refused, or described, never printed back nor stored.
func TestCLIRawTokenInAFlag(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "pat.db")
	cliOK(t, "store", "import", "--store", db, writeFile(t, dir, "world.json", cliWorld))
	const raw = "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"
	const fg = "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"
	plain := ": looks like a personal access token; opa-pat never stores a token in plain text"
	shown := func(s string) string {
		return fmt.Sprintf("(%d characters, not shown: it looks like a personal access token)", len(s))
	}
	create := func(args ...string) []string {
		return append([]string{"token", "create", "--store", db, "--user", "bob"}, args...)
	}
	withGrant := []string{"--kind", "fine_grained", "--resource-owner", "octo-org", "--repositories", "app", "--permission", "contents=write"}
	for _, tc := range []struct {
		args   []string
		stderr string
	}{
		{create("--kind", "classic", "--name", raw), "error: name" + plain},
		{create("--kind", "classic", "--name", "the old one was "+fg), "error: name" + plain},
		{[]string{"token", "create", "--store", db, "--kind", "classic", "--user", raw}, "error: user" + plain},
		{[]string{"token", "create", "--store", db, "--kind", "classic", "--user", strings.ToLower(raw)}, "error: user" + plain},
		{create("--kind", "classic", "--scope", "repo", "--scope", raw), "error: scopes[1]" + plain},
		{create("--kind", "fine_grained", "--resource-owner", fg), "error: resource_owner" + plain},
		{create("--kind", "fine_grained", "--repositories", "app,"+raw), "error: repositories[1]" + plain},
		{create("--kind", "fine_grained", "--permission", raw+"=read"), "error: permissions" + plain},
		{create(append(withGrant, "--reason", "replaces "+raw)...), "error: reason" + plain},
		{create("--kind", "classic", "--actor", raw), "error: --actor" + plain},
		// Values refused for what they are, described rather than quoted.
		{create("--kind", raw), "error: --kind: unknown kind " + shown(raw) + ", want classic or fine_grained"},
		{create("--kind", "classic", "--expires-in", raw), "error: --expires-in: " + shown(raw) + " is not a duration such as 30d, 12h or 1d12h"},
		{create("--kind", "fine_grained", "--permission", "contents="+raw), "error: --permission: " + shown("contents="+raw) + ": level " + shown(raw) + " must be read, write or admin"},
		{create("--kind", "fine_grained", "--permission", fg), "error: --permission: " + shown(fg) + " is not name=level (e.g. contents=write)"},
		{create("--kind", "classic", "-o", raw), "error: --output: unknown format " + shown(raw) + ", want text or json"},
		{create("--kind", "classic", raw), "error: unexpected arguments: " + shown(raw)},
		{[]string{"token", "list", "--store", db, "--kind", raw}, "error: --kind: unknown kind " + shown(raw) + ", want classic or fine_grained"},
		{[]string{"audit", "list", "--store", db, "--action", raw}, "error: --action: unknown action " + shown(raw) +
			", want one of token.create, request.create, request.approve, request.deny, grant.revoke, token.revoke, store.import, settings.record"},
		{[]string{"token", raw}, "error: unknown command " + shown(raw) + ` for "opa-pat token" (see opa-pat token --help)`},
		{[]string{"requests", "approve", "--store", db, "--org", "octo-org", "1", "--reason", raw}, "error: reason" + plain},
		{[]string{"requests", "revoke", "--store", db, "--org", "octo-org", "1", "--reason", raw}, "error: reason" + plain},
		{[]string{"token", "revoke", "--store", db, "2", "--reason", raw}, "error: reason" + plain},
		// Any other error shows no token's secret either.
		{[]string{"store", "import", "--store", db, "/nonexistent/" + raw + ".json"}, "error: open /nonexistent/ghp_[redacted].json: no such file or directory"},
		{create("--kind", "classic", "-"+raw), "error: unknown shorthand flag: 'g' in -ghp_[redacted] (see opa-pat token create --help)"},
		{[]string{raw}, "Error: unknown command \"ghp_[redacted]\" for \"opa-pat\"\nRun 'opa-pat --help' for usage."},
		// A token cut short: its 30 random characters are all of its secret.
		{[]string{raw[:len(raw)-1]}, "Error: unknown command \"ghp_[redacted]\" for \"opa-pat\"\nRun 'opa-pat --help' for usage."},
		{[]string{"store", "import", "--store", db, "/nonexistent/" + raw[:len(raw)-1] + ".json"}, "error: open /nonexistent/ghp_[redacted].json: no such file or directory"},
	} {
		res := cli(t, tc.args...)
		low := strings.ToLower(res.stdout + res.stderr)
		if res.code != 1 || res.stderr != tc.stderr+"\n" || strings.Contains(low, strings.ToLower(raw[4:34])) || strings.Contains(low, strings.ToLower(fg[11:])) {
			t.Errorf("opa-pat %s:\nexit %d, stderr %q\nwant exit 1, stderr %q", strings.Join(tc.args, " "), res.code, res.stderr, tc.stderr+"\n")
		}
	}

	// An import: the record and field are named, the token is not shown,
	// and neither is an unknown field named by one.
	bad := writeFile(t, dir, "bad.json", strings.Replace(cliWorld, `"reason": "release"`, `"reason": "`+fg+`", "`+raw+`": 1`, 1))
	res := cli(t, "store", "import", "--store", db, bad)
	if want := "warning: " + bad + ": grants[0]: ignored unknown field " + shown(raw) + "\nerror: " + bad + ": grants[0].reason" + plain + "\n"; res.code != 1 || res.stderr != want {
		t.Errorf("import: exit %d, stderr %q\nwant %q", res.code, res.stderr, want)
	}
	export := strings.ToLower(cliOK(t, "store", "export", "--store", db))
	events := strings.ToLower(cliOK(t, "audit", "list", "--store", db, "-o", "json"))
	if strings.Contains(export+events, strings.ToLower(raw[4:])) || strings.Contains(export+events, strings.ToLower(fg[11:])) {
		t.Fatalf("the store holds a token:\n%s\n%s", export, events)
	}
}

// opa-pat version adds to OPA's lines its own build and the store schema
// version it supports, which a refusal of a newer store names.
func TestVersionNamesTheSchema(t *testing.T) {
	out := runCLI(t, binary(t), nil, "version")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 3 || !strings.HasPrefix(lines[0], "Version: ") {
		t.Fatalf("version printed:\n%s", out)
	}
	if got, want := lines[len(lines)-1], fmt.Sprintf("opa-pat Store Schema: %d", store.SchemaVersion()); got != want {
		t.Fatalf("last line %q; want %q", got, want)
	}
	if !strings.HasPrefix(lines[len(lines)-2], "opa-pat Build: ") {
		t.Fatalf("no build line before the schema:\n%s", out)
	}
}

// plantTokenAsName writes a raw token as token 2's name in an SQLite store,
// behind opa-pat's back, as a store of another tool may hold one: a record
// every write refuses.
func plantTokenAsName(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(t.Context(), `UPDATE tokens SET name = $1 WHERE id = 2`, cliClassic); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}
