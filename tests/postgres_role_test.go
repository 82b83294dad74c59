package tests

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/opa-pat/opa-pat/plugin/store"
	"github.com/opa-pat/opa-pat/plugin/store/pgtest"
)

// pgRole creates a login role (dropped after the database) and a database
// whose tables the test's server role owns, and returns the database's DSN
// as its owner and as the role, after grant has run as the owner.
func pgRole(t *testing.T, grant ...string) (owner, dsn, role string) {
	t.Helper()
	role = pgtest.Role(t)
	owner = pgtest.Database(t, "wt_pgrole_")
	cliOK(t, "store", "import", "--store", owner, filepath.Join(repoRoot(), "examples", "fixtures.json"))
	for _, g := range grant {
		pgtest.Exec(t, owner, strings.ReplaceAll(g, "ROLE", role))
	}
	return owner, pgtest.As(t, owner, role), role
}

// store prune-changes --vacuum as a role that may prune but does not own
// the change log: PostgreSQL would skip the VACUUM with only a warning, so
// the command fails (exit 1) naming the owner it takes, and says that the
// prune itself is done.
func TestPostgresCLIVacuumNeedsTheOwner(t *testing.T) {
	owner, dsn, role := pgRole(t, `GRANT USAGE ON SCHEMA public TO ROLE`, `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ROLE`,
		`GRANT USAGE, UPDATE ON ALL SEQUENCES IN SCHEMA public TO ROLE`)
	u, _ := url.Parse(owner)
	ownerRole := u.User.Username()
	var head int64
	conn, err := pgx.Connect(t.Context(), owner)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	if err := conn.QueryRow(t.Context(), `SELECT max(seq) FROM changes`).Scan(&head); err != nil {
		t.Fatal(err)
	}
	cliFail(t, fmt.Sprintf("error: removed %d change-log entries (the log now starts after change %d), but the role may not vacuum the change log: "+
		"the role %s neither owns table changes (its owner is %s) nor owns the database (%s) nor is a superuser, and PostgreSQL would skip it "+
		"with only a warning; run --vacuum as %s, or leave the space to autovacuum", head-1, head-1, role, ownerRole, ownerRole, ownerRole),
		"store", "prune-changes", "--store", dsn, "--keep", "1", "--vacuum")
	// The prune is done: nothing left to remove.
	if out := cliOK(t, "store", "prune-changes", "--store", dsn, "--keep", "1"); out != fmt.Sprintf("removed 0 change-log entries; the log now starts after change %d\n", head-1) {
		t.Fatalf("prune-changes again: %q", out)
	}
	// The owner vacuums it.
	if out := cliOK(t, "store", "prune-changes", "--store", owner, "--keep", "1", "--vacuum"); out != fmt.Sprintf("removed 0 change-log entries; the log now starts after change %d\nvacuumed the change log\n", head-1) {
		t.Fatalf("prune-changes --vacuum as the owner: %q", out)
	}
}

// The CLI and a sidecar as a least-privilege role (no CREATE on the schema)
// on a database at the current schema, and the CLI's read-only commands with
// target_session_attrs=read-write.
func TestPostgresCLILeastPrivilege(t *testing.T) {
	role := pgtest.Role(t)
	owner := pgtest.Database(t, "wt_pgrole_")
	pgtest.Exec(t, owner, `REVOKE CREATE ON SCHEMA public FROM PUBLIC`)
	cliOK(t, "store", "import", "--store", owner, filepath.Join(repoRoot(), "examples", "fixtures.json"))
	cliOK(t, "store", "settings", "--store", owner, writeFile(t, t.TempDir(), "settings.json", "{}"))
	pgtest.Exec(t, owner, `GRANT ALL ON ALL TABLES IN SCHEMA public TO `+role, `GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO `+role,
		`GRANT USAGE ON SCHEMA public TO `+role)
	dsn := pgtest.As(t, owner, role)

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

// A store migrate into a new PostgreSQL database that fails (a source with
// no records, refused) removes the tables opening the target created, so
// that the database is as it was (a later pg_restore without --clean would
// fail on them); a target that held the tables before keeps them.
func TestPostgresMigrateFailureLeavesNoTables(t *testing.T) {
	dsn := pgtest.Database(t, "pat_e2e_")
	empty := filepath.Join(t.TempDir(), "empty.db")
	if db, err := store.Open(t.Context(), empty); err != nil { // the schema, no record
		t.Fatal(err)
	} else {
		db.Close()
	}
	cliFail(t, "error: migrating "+empty+" to "+dsn+": the source store holds no records; check --from", "store", "migrate", "--from", empty, "--to", dsn)
	objects := func() []string {
		t.Helper()
		conn, err := pgx.Connect(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(t.Context())
		rows, err := conn.Query(t.Context(), `SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'S')
UNION ALL SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace ORDER BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return names
	}
	if left := objects(); len(left) != 0 {
		t.Fatalf("the failed migration left %v in the target", left)
	}
	// The tables there before a failed migration stay.
	cliOK(t, "store", "import", "--store", dsn, filepath.Join(repoRoot(), "examples", "fixtures.json"))
	before := objects()
	cliFail(t, "error: migrating "+empty+" to "+dsn+": the source store holds no records; check --from", "store", "migrate", "--from", empty, "--to", dsn, "--replace")
	if after := objects(); strings.Join(after, ",") != strings.Join(before, ",") || len(after) != 15 {
		t.Fatalf("objects after a failed migration into an existing store: %v; want %v", after, before)
	}
}
