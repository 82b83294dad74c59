package tests

import (
	"database/sql"
	"path/filepath"
	"testing"
)

// TestCLINewerStoreSchema runs the CLI on a store that a future opa-pat of
// schema version 5 migrated, written here by hand as it would leave it: a
// column this opa-pat does not know, and the migration recorded with the
// marker it gave. Marked compatible with this opa-pat, the store is read,
// written and reviewed as this version's, with a warning on stderr;
// marked for version 5, every command refuses it, naming the version it
// needs; without a marker (an opa-pat before markers), with the message
// such stores always got.
func TestCLINewerStoreSchema(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pat.db")
	cliOK(t, "store", "import", "--store", path, writeFile(t, dir, "world.json", cliWorld))
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, stmt := range []string{`ALTER TABLE tokens ADD COLUMN note TEXT`,
		`INSERT INTO schema_migrations (version, applied_at, compatible_from) VALUES (5, 0, 4)`} {
		if _, err := db.ExecContext(t.Context(), stmt); err != nil {
			t.Fatal(err)
		}
	}

	warning := "warning: store " + path + ": schema version 5 is newer than this opa-pat supports (4) and marked compatible with " +
		"opa-pat from schema version 4: using it as version 4, without migrating it; upgrade opa-pat to use the rest\n"
	for _, tc := range []struct {
		note   string
		args   []string
		stdout string
	}{
		{note: "a command that writes", args: []string{"token", "create", "--store", path, "--user", "bob", "--kind", "fine_grained",
			"--resource-owner", "octo-org", "--repositories", "app", "--permission", "contents=write", "--expires-in", "30d",
			"--name", "deploy", "--reason", "deploys", "--output", "text",
			// settings of its own: a store without any recorded says so
			"--settings", writeFile(t, filepath.Dir(path), "settings.json", `{}`)}},
		{note: "a review", args: []string{"requests", "approve", "--store", path, "--org", "octo-org", "2", "--reason", "ok", "--actor", "olga"},
			stdout: "approved 1 request of octo-org: 2\n"},
		{note: "a command that only reads", args: []string{"requests", "list", "--store", path, "--org", "octo-org", "--state", "approved", "--output", "json"}},
	} {
		t.Run(tc.note, func(t *testing.T) {
			res := cli(t, tc.args...)
			if res.code != 0 || res.stderr != warning || (tc.stdout != "" && res.stdout != tc.stdout) {
				t.Fatalf("exit %d\nstdout: %s\nstderr: %q\nwant stderr %q", res.code, res.stdout, res.stderr, warning)
			}
		})
	}
	approved := decode[[]cliRequest](t, cliOK(t, "requests", "list", "--store", path, "--org", "octo-org", "--state", "approved", "--output", "json"))
	if len(approved) != 2 || approved[1].ID != 2 || approved[1].TokenID != 3 || approved[1].Reason != "ok" {
		t.Fatalf("approved requests = %+v", approved)
	}
	var version int
	if err := db.QueryRowContext(t.Context(), `SELECT MAX(version) FROM schema_migrations`).Scan(&version); err != nil || version != 5 {
		t.Fatalf("schema version %d (%v); want 5, untouched", version, err)
	}

	for _, tc := range []struct {
		note   string
		marker any
		error  string
	}{
		{note: "marked for version 5", marker: 5, error: "; it needs an opa-pat that supports schema version 5 or newer"},
		{note: "no marker", marker: nil},
	} {
		t.Run(tc.note, func(t *testing.T) {
			if _, err := db.ExecContext(t.Context(), `UPDATE schema_migrations SET compatible_from = $1 WHERE version = 5`, tc.marker); err != nil {
				t.Fatal(err)
			}
			want := `error: opening store "` + path + `": schema version 5 is newer than this opa-pat supports (4)` + tc.error
			for _, args := range [][]string{{"token", "list", "--store", path}, {"requests", "approve", "--store", path, "--org", "octo-org", "1"}} {
				cliFail(t, want, args...)
			}
		})
	}
}
