package tests

import (
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/opa-pat/opa-pat/plugin/store/pgtest"
)

// The CLI and a sidecar as a least-privilege role (no CREATE on the schema)
// on a database at the current schema, and the CLI's read-only commands with
// target_session_attrs=read-write.
func TestPostgresCLILeastPrivilege(t *testing.T) {
	base := pgtest.BaseDSN()
	if c, err := pgx.Connect(t.Context(), base); err != nil {
		t.Skipf("no PostgreSQL server answers at %s (set OPA_PAT_TEST_POSTGRES_DSN, or run .ci/postgres.sh): %v", base, err)
	} else {
		c.Close(t.Context())
	}
	var b [6]byte
	rand.Read(b[:])
	role := "wt_pgrole_" + hex.EncodeToString(b[:])
	pgtest.Exec(t, base, `CREATE ROLE `+role+` LOGIN`)
	t.Cleanup(func() { pgtest.Exec(t, base, `DROP ROLE IF EXISTS `+role) }) // after the database's
	owner := pgtest.Database(t, "wt_pgrole_")
	pgtest.Exec(t, owner, `REVOKE CREATE ON SCHEMA public FROM PUBLIC`)
	cliOK(t, "store", "import", "--store", owner, filepath.Join(repoRoot(), "examples", "fixtures.json"))
	cliOK(t, "store", "settings", "--store", owner, writeFile(t, t.TempDir(), "settings.json", "{}"))
	pgtest.Exec(t, owner, `GRANT ALL ON ALL TABLES IN SCHEMA public TO `+role, `GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO `+role,
		`GRANT USAGE ON SCHEMA public TO `+role)
	u, err := url.Parse(owner)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	dsn := u.String()

	cliOK(t, "token", "revoke", "--store", dsn, "1")
	for _, attrs := range []string{"", "&target_session_attrs=read-write"} {
		at := dsn + attrs
		for _, args := range [][]string{
			{"token", "list", "--store", at},
			{"requests", "list", "--store", at, "--org", "octo-org"},
			{"audit", "list", "--store", at},
			{"store", "export", "--store", at},
			{"store", "settings", "--store", at},
			{"store", "migrate", "--from", at, "--to", filepath.Join(t.TempDir(), "copy.db")},
		} {
			if out := cliOK(t, args...); strings.TrimSpace(out) == "" {
				t.Fatalf("opa-pat %s printed nothing", strings.Join(args, " "))
			}
		}
	}
	cliOK(t, "token", "revoke", "--store", dsn+"&target_session_attrs=read-write", "2")

	// A sidecar as the role: it opens the store, loads it and records
	// the bundle's settings.
	if s, _ := startPGSidecar(t, dsn, "60s", false); !s.healthy() {
		t.Fatal("the sidecar of the role without CREATE is not healthy")
	}
}
