package tests

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opa-pat/opa-pat/plugin/store/pgtest"
)

// TestPostgresPasswordNotShown: a password in a PostgreSQL URL given where
// a store path goes (`opa-pat up --store URL`, store.path in a configuration
// file) appears neither in the sidecar's logs nor in OPA's GET /v1/config,
// as for store.postgres.dsn: the URL is handled as the DSN; nor does its
// sslpassword. The test server trusts, so the password is ignored.
func TestPostgresPasswordNotShown(t *testing.T) {
	const password = "s3cretPW"
	bin := binary(t)
	for _, tc := range []struct {
		note   string
		start  func(t *testing.T, dsn, addr string) *exec.Cmd
		config string // GET /v1/config's plugins.pat, MASKED for the URL with its password masked
	}{
		{note: "up --store URL", config: `{"store":{"postgres":{"dsn":"MASKED"}}}`,
			start: func(t *testing.T, dsn, addr string) *exec.Cmd {
				return exec.Command(bin, "up", "--store", dsn, "--addr", addr, "--ext-authz-addr", "", "--admin-addr", "", "--log-level", "debug")
			}},
		{note: "run with the URL as store.path", config: `{"store":{"path":"MASKED"}}`,
			start: func(t *testing.T, dsn, addr string) *exec.Cmd {
				cfg := writeFile(t, t.TempDir(), "config.yaml", fmt.Sprintf("plugins:\n  pat:\n    store: {path: %q}\n", dsn))
				return exec.Command(bin, "run", "--server", "--addr", addr, "--config-file", cfg, "--log-level", "debug",
					"--ignore", "*_test.rego", filepath.Join(repoRoot(), "rego", "pat"),
					"pat.settings:"+filepath.Join(repoRoot(), "examples", "settings.json"))
			}},
	} {
		t.Run(tc.note, func(t *testing.T) {
			u, err := url.Parse(pgtest.Database(t, "cli_pw_"))
			if err != nil {
				t.Fatal(err)
			}
			// sslpassword, the passphrase of a client's TLS key, is a secret too (pgx ignores it
			// without sslkey).
			q := u.Query()
			q.Set("sslpassword", password+"_key")
			u.RawQuery = q.Encode()
			u.User = url.UserPassword(u.User.Username(), password)
			dsn := u.String()
			q.Set("sslpassword", "xxxxx")
			u.RawQuery = q.Encode()
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			masked := u.String()
			if tc.note != "up --store URL" {
				// Seeded, so that the sidecar loads tokens.
				cliOK(t, "store", "import", "--store", dsn, filepath.Join(repoRoot(), "examples", "fixtures.json"))
			}

			addr := freeAddr(t)
			var logs syncBuffer
			cmd := tc.start(t, dsn, addr)
			cmd.Stdout, cmd.Stderr = &logs, &logs
			startProcess(t, cmd, 10*time.Second, logs.String)
			poll(t, 30*time.Second, "the sidecar to be ready", func() bool { return healthCode(addr, "/health?plugins") == http.StatusOK })

			resp, err := http.Get("http://" + addr + "/v1/config")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			want := `"pat":` + strings.ReplaceAll(tc.config, "MASKED", masked)
			if got := strings.ReplaceAll(string(body), `\u0026`, "&"); !strings.Contains(got, want) {
				t.Errorf("GET /v1/config: %s\nwant it to hold %s", body, want)
			}
			loaded := `"msg":"Token store postgres \"` + strings.ReplaceAll(masked, "&", `\u0026`) + `\" loaded: 13 tokens, 6 grants, 7 memberships, 5 users, 6 repositories at change 37."`
			poll(t, 5*time.Second, "the store's load in the log", func() bool { return strings.Contains(logs.String(), loaded) })
			if out := logs.String() + string(body); strings.Contains(out, password) {
				t.Fatalf("the password is shown:\n%s", out)
			}
		})
	}
}
