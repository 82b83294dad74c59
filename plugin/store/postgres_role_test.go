package store

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/opa-pat/opa-pat/plugin/store/pgtest"
)

// restrictedRole creates a database and a login role that may use its
// schema but not create in it (PostgreSQL 15 gives PUBLIC no CREATE on
// public; older servers lose it here). It returns the database's DSN as
// its owner and as the role, and grant, which gives the role what a
// least-privilege fleet grants: every right on the tables and sequences
// that exist. The role is dropped when the test ends, after the database.
func restrictedRole(t *testing.T) (owner, restricted string, grant func()) {
	t.Helper()
	role := pgtest.Role(t)
	owner = pgtest.Database(t, "wt_pgrole_") // dropped before the role
	pgtest.Exec(t, owner, `REVOKE CREATE ON SCHEMA public FROM PUBLIC`)
	pgtest.Exec(t, owner, `GRANT USAGE ON SCHEMA public TO `+role)
	return owner, pgtest.As(t, owner, role), func() {
		pgtest.Exec(t, owner, `GRANT ALL ON ALL TABLES IN SCHEMA public TO `+role)
		pgtest.Exec(t, owner, `GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO `+role)
	}
}

// A role without CREATE on the schema uses a store at the current schema,
// for writing and reading: opening it runs no DDL. It cannot create or
// migrate one, and says what it lacks.
func TestPostgresRoleWithoutCreate(t *testing.T) {
	ctx := t.Context()
	owner, dsn, grant := restrictedRole(t)

	// An empty database: the role may not create the tables.
	_, err := Open(ctx, dsn)
	if want := "opening store " + strconv.Quote(dsn) + ": creating schema_migrations: the role wt_pgrole_"; err == nil || !strings.HasPrefix(err.Error(), want) ||
		!strings.Contains(err.Error(), " may not create the store's tables: that takes CREATE on schema public") ||
		!strings.HasSuffix(err.Error(), "permission denied for schema public (SQLSTATE 42501)") {
		t.Fatalf("Open of an empty database = %v; want %s...", err, want)
	}

	db := openAt(t, owner)
	if _, err := importJSON(t, db, importWorld); err != nil {
		t.Fatal(err)
	}
	grant()

	w, err := Open(ctx, dsn)
	if err != nil {
		t.Fatalf("Open by the role without CREATE = %v", err)
	}
	if err := w.RevokeToken(ctx, 1, "test", ""); err != nil {
		t.Fatalf("RevokeToken = %v", err)
	}
	w.Close()
	ro, err := OpenReadOnly(ctx, dsn)
	if err != nil {
		t.Fatalf("OpenReadOnly by the role without CREATE = %v", err)
	}
	if n := listedTokens(t, ro); n != 2 {
		t.Fatalf("%d tokens; want 2", n)
	}
	ro.Close()

	// A migration is due: the role says it may not run it.
	newer := append(slices.Clip(migrations), migration{compatibleWith: len(migrations), sql: `CREATE TABLE wt_extra (x BIGINT)`})
	asBinary(newer, nil, func() {
		var w *DB
		if w, err = Open(ctx, dsn); err == nil {
			w.Close()
		}
	})
	if err == nil || !strings.Contains(err.Error(), " may not migrate the schema from version "+strconv.Itoa(len(migrations))+" to "+strconv.Itoa(len(newer))+
		": that takes CREATE on schema public") || !strings.Contains(err.Error(), "permission denied for schema public (SQLSTATE 42501)") {
		t.Fatalf("Open by the newer opa-pat as the role without CREATE = %v", err)
	}
	// Nothing of it was applied: the owner still migrates.
	asBinary(newer, nil, func() {
		var w *DB
		if w, err = Open(ctx, owner); err == nil {
			w.Close()
		}
	})
	if err != nil {
		t.Fatalf("Open by the newer opa-pat as the owner = %v", err)
	}
}

// A writer's open of a session that may not write says so, and is
// ErrReadOnly; a reader opens it.
func TestPostgresReadOnlySession(t *testing.T) {
	ctx := t.Context()
	owner, dsn, grant := restrictedRole(t)
	db := openAt(t, owner)
	if _, err := importJSON(t, db, importWorld); err != nil {
		t.Fatal(err)
	}
	grant()
	u, _ := url.Parse(dsn)
	pgtest.Exec(t, owner, `ALTER ROLE `+u.User.Username()+` SET default_transaction_read_only = on`)
	_, err := Open(ctx, dsn)
	if want := "opening store " + strconv.Quote(dsn) + ": the store is read-only: the PostgreSQL session may not write (transaction_read_only is on"; !errors.Is(err, ErrReadOnly) || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("Open = %v; want %s...", err, want)
	}
	ro, err := OpenReadOnly(ctx, dsn)
	if err != nil {
		t.Fatalf("OpenReadOnly = %v", err)
	}
	defer ro.Close()
	if n := listedTokens(t, ro); n != 2 {
		t.Fatalf("%d tokens; want 2", n)
	}

	// A session that turns read-only once the store is open (a primary
	// demoted to a standby) makes a write fail with the same reason.
	w := openAt(t, owner)
	conn, err := w.wdb.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, `SET SESSION default_transaction_read_only = on`); err != nil {
		t.Fatal(err)
	}
	conn.Close() // back to the pool of one connection
	err = w.RevokeToken(ctx, 1, "test", "")
	if !errors.Is(err, ErrReadOnly) || !strings.Contains(err.Error(), "the PostgreSQL session may not write") || !strings.Contains(err.Error(), "SQLSTATE 25006") {
		t.Fatalf("RevokeToken on a read-only session = %v", err)
	}
}

// A store of an older schema is upgraded before it is read, also by a
// reader: on a session that may not write that fails, and the error says
// how to upgrade it rather than that readers work with the session. Nothing
// is written.
func TestPostgresReadOnlySessionOlderSchema(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.Database(t, "cli_rosession_")
	openAtVersion(t, dsn, 3).Close()
	readOnly := dsn + "&default_transaction_read_only=on"
	_, err := OpenReadOnly(ctx, readOnly)
	want := "opening store " + strconv.Quote(readOnly) + ": its schema version 3 is older than this opa-pat's (4), and a store is " +
		"upgraded before it is read, which this command could not do: the store is read-only: the PostgreSQL session may not write " +
		"(transaction_read_only is on: a hot standby, or default_transaction_read_only set for the role, the database or in the URL); " +
		"upgrade it once by running this command, or any opa-pat command, with a session that may write, on the primary, " +
		"as a role that may migrate; then commands that only read work here"
	if !errors.Is(err, ErrReadOnly) || err == nil || err.Error() != want {
		t.Fatalf("OpenReadOnly = %v\nwant %s", err, want)
	}
	if st := schemaVersion(t, dsn); st != 3 {
		t.Fatalf("schema version %d after the refused upgrade; want 3", st)
	}
	// On a session that may write, the reader upgrades it: its one write.
	db, err := OpenReadOnly(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if st := schemaVersion(t, dsn); st != len(migrations) {
		t.Fatalf("schema version %d after a reader's open; want %d", st, len(migrations))
	}
}

// schemaVersion is the newest migration recorded at dsn.
func schemaVersion(t *testing.T, dsn string) int {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var v int
	if err := conn.QueryRow(t.Context(), `SELECT max(version) FROM schema_migrations`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// A sidecar's role that may only SELECT opens a store whose id is
// recorded (it writes nothing then), reads it, and finds settings already
// recorded without writing them; what it may not write, and what it may not
// read, says which privilege on which table it needs and the GRANT.
func TestPostgresSelectOnlyRole(t *testing.T) {
	ctx := t.Context()
	owner, dsn, _ := restrictedRole(t)
	db := openAt(t, owner)
	if _, err := importJSON(t, db, importWorld); err != nil {
		t.Fatal(err)
	}
	if err := db.SetSettings(ctx, []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(dsn)
	role := u.User.Username()
	pgtest.Exec(t, owner, `GRANT SELECT ON ALL TABLES IN SCHEMA public TO `+role)

	ro, err := Open(ctx, dsn)
	if err != nil {
		t.Fatalf("Open by a role that may only SELECT, the store's id recorded = %v", err)
	}
	defer ro.Close()
	if n := listedTokens(t, ro); n != 2 {
		t.Fatalf("%d tokens; want 2", n)
	}
	if err := ro.SetSettings(ctx, []byte(`{"a":1}`)); err != nil {
		t.Fatalf("SetSettings of the settings recorded = %v; want nil (nothing to write)", err)
	}
	hint := func(privilege, table string) string {
		return fmt.Sprintf(`; the role %s needs %s on table %s (GRANT %s ON %s TO %s; docs/postgres.md "Roles and privileges")`,
			role, privilege, table, strings.ReplaceAll(privilege, " and", ","), table, role)
	}
	err = ro.SetSettings(ctx, []byte(`{"a":2}`))
	if want := `writing meta "settings": ERROR: permission denied for table meta (SQLSTATE 42501)` + hint("INSERT and UPDATE", "meta"); err == nil || err.Error() != want {
		t.Fatalf("SetSettings of other settings = %v\nwant %s", err, want)
	}
	err = ro.TouchLastUsed(ctx, []int64{1}, time.Now())
	if want := `recording last use: ERROR: permission denied for table tokens (SQLSTATE 42501)` + hint("UPDATE (last_used_at)", "tokens"); err == nil || err.Error() != want {
		t.Fatalf("TouchLastUsed = %v\nwant %s", err, want)
	}
	pgtest.Exec(t, owner, `GRANT UPDATE (last_used_at) ON tokens TO `+role)
	if err := ro.TouchLastUsed(ctx, []int64{1}, time.Now()); err != nil {
		t.Fatalf("TouchLastUsed with UPDATE (last_used_at) on tokens = %v", err)
	}

	// Reads: a token, the change log.
	pgtest.Exec(t, owner, `REVOKE SELECT ON tokens FROM `+role, `REVOKE SELECT ON changes FROM `+role)
	_, _, err = ro.Token(ctx, 1)
	if want := `reading token 1: ERROR: permission denied for table tokens (SQLSTATE 42501)` + hint("SELECT", "tokens"); err == nil || err.Error() != want {
		t.Fatalf("Token = %v\nwant %s", err, want)
	}
	_, err = ro.Changes(ctx, 0, 10)
	if want := `reading change log: ERROR: permission denied for table changes (SQLSTATE 42501)` + hint("SELECT", "changes"); err == nil || err.Error() != want {
		t.Fatalf("Changes = %v\nwant %s", err, want)
	}

	// A store without an id: opening it would record one, which the role
	// may not.
	pgtest.Exec(t, owner, `DELETE FROM meta WHERE key = 'store.id'`)
	_, err = Open(ctx, dsn)
	if want := "opening store " + strconv.Quote(dsn) + `: recording the store's id: ERROR: permission denied for table meta (SQLSTATE 42501)` + hint("INSERT", "meta"); err == nil || err.Error() != want {
		t.Fatalf("Open of a store without an id = %v\nwant %s", err, want)
	}
}

// PostgreSQL skips VACUUM of a table the role does not own with only a
// WARNING: Vacuum by such a role fails, naming the owner it takes, after a
// prune that the role may make.
func TestPostgresVacuumNeedsTheOwner(t *testing.T) {
	ctx := t.Context()
	owner, dsn, grant := restrictedRole(t)
	db := openAt(t, owner)
	if _, err := importJSON(t, db, importWorld); err != nil {
		t.Fatal(err)
	}
	grant()
	w, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	removed, through, err := w.PruneChanges(ctx, 1)
	if err != nil || removed == 0 {
		t.Fatalf("PruneChanges by the role = %d, %d, %v", removed, through, err)
	}
	u, _ := url.Parse(dsn)
	o, _ := url.Parse(owner)
	role, ownerRole := u.User.Username(), o.User.Username()
	_, _, err = w.Vacuum(ctx)
	want := "the role may not vacuum the change log: the role " + role + " neither owns table changes (its owner is " + ownerRole +
		") nor owns the database (" + ownerRole + ") nor is a superuser, and PostgreSQL would skip it with only a warning; run --vacuum as " +
		ownerRole + ", or leave the space to autovacuum"
	if !errors.Is(err, ErrCannotVacuum) || err.Error() != want {
		t.Fatalf("Vacuum by a role that does not own the table = %v\nwant %s", err, want)
	}
	// A member of the owning role may.
	pgtest.Exec(t, owner, `CREATE ROLE `+role+`_owner`, `ALTER TABLE changes OWNER TO `+role+`_owner`, `GRANT `+role+`_owner TO `+role)
	t.Cleanup(func() { pgtest.Exec(t, pgtest.BaseDSN(), `DROP ROLE IF EXISTS `+role+`_owner`) })
	if _, _, err := w.Vacuum(ctx); err != nil {
		t.Fatalf("Vacuum by a member of the table's owner = %v", err)
	}
	pgtest.Exec(t, owner, `ALTER TABLE changes OWNER TO `+ownerRole) // so that the role can be dropped
}

// A database that cannot be reached (renamed away) is Unavailable; a
// statement the server refuses is not.
func TestPostgresUnavailable(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.Database(t, "pat_unavail_")
	db := openAt(t, dsn)
	if _, err := importJSON(t, db, importWorld); err != nil {
		t.Fatal(err)
	}
	_, _, err := db.Token(ctx, 1)
	if err != nil || Unavailable(nil) {
		t.Fatalf("Token = %v", err)
	}
	if _, err := db.rdb.ExecContext(ctx, `SELECT no_such_column FROM tokens`); err == nil || Unavailable(err) {
		t.Fatalf("a refused statement: %v; Unavailable = %v, want false", err, Unavailable(err))
	}
	u, _ := url.Parse(dsn)
	name := strings.TrimPrefix(u.Path, "/")
	pgtest.Exec(t, pgtest.BaseDSN(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '`+name+`'`,
		`ALTER DATABASE `+name+` RENAME TO `+name+`_away`)
	renamed := false
	defer func() {
		if renamed {
			pgtest.Exec(t, pgtest.BaseDSN(), `ALTER DATABASE `+name+`_away RENAME TO `+name)
		}
	}()
	renamed = true
	_, _, err = db.TokenByHash(ctx, [32]byte{})
	if err == nil || !Unavailable(err) {
		t.Fatalf("TokenByHash with the database renamed = %v; Unavailable = %v, want true", err, Unavailable(err))
	}
}
