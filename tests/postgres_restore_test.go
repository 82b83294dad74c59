package tests

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestPostgresRestoreBackup is the operator's restore, as an operator does
// it (docs/postgres.md): pg_dump, more writes that the sidecar follows, then
// DROP DATABASE, CREATE DATABASE, psql --single-transaction < dump (a
// restore in several transactions may let the sidecar load a half-filled
// database), and a token revoked with the CLI. That
// revocation takes a change number the sidecar has passed; it must notice
// that the log went backwards, load the store afresh and deny the token
// within a poll or two.
func TestPostgresRestoreBackup(t *testing.T) {
	for _, tool := range []string{"pg_dump", "psql"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: %v", tool, err)
		}
	}
	dsn := pgDatabase(t)
	bin := binary(t)
	runCLI(t, bin, nil, "store", "import", "--store", dsn, filepath.Join(repoRoot(), "examples", "fixtures.json"))
	s, _ := startPGSidecar(t, dsn, "60s", false)

	create := func() (id, raw string) {
		t.Helper()
		created := createReleaseToken(t, bin, dsn)
		runCLI(t, bin, nil, "requests", "approve", "--store", dsn, "--org", "octo-org", strconv.FormatInt(created.Request.ID, 10), "--actor", "alice")
		return strconv.FormatInt(created.ID, 10), created.Token
	}
	wait := func(what, raw, want string, within time.Duration) {
		t.Helper()
		poll(t, within, what, func() bool { return s.verdict(raw, "octo-org", "app", "write") == want })
	}

	id, raw := create()
	wait("the token allowed", raw, "true 200", 5*time.Second)
	dump := filepath.Join(t.TempDir(), "backup.sql")
	if out, err := exec.Command("pg_dump", "--dbname", dsn, "--file", dump).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, out)
	}
	// Written after the backup, followed by the sidecar: its index is now
	// several changes past the backup's.
	_, later := create()
	_, last := create()
	wait("the later tokens allowed", last, "true 200", 5*time.Second)
	wait("the later tokens allowed", later, "true 200", time.Second)

	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	u.Path = "/postgres"
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DROP DATABASE ` + name + ` WITH (FORCE)`, `CREATE DATABASE ` + name} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	admin.Close(ctx)
	sqlText, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	restore := exec.Command("psql", "--quiet", "--single-transaction", "--set", "ON_ERROR_STOP=1", "--dbname", dsn)
	restore.Stdin = strings.NewReader(string(sqlText))
	if out, err := restore.CombinedOutput(); err != nil {
		t.Fatalf("psql < dump: %v\n%s", err, out)
	}
	runCLI(t, bin, nil, "token", "revoke", "--store", dsn, id)

	wait("the token revoked after the restore denied", raw, "false 401", 3*time.Second)
	wait("a token not in the backup unknown", last, "false 401", time.Second)
	if logs := s.logs.String(); !strings.Contains(logs, "went backwards") || !strings.Contains(logs, "the index loaded the store afresh") {
		t.Errorf("the sidecar did not log the restore it noticed; its log:\n%s", logs)
	}
}
