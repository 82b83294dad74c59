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

	"github.com/opa-pat/opa-pat/plugin/store/pgtest"
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
	r := newRestoreRun(t, pgDatabase(t))
	id, raw := r.create()
	r.wait("the token allowed", raw, "true 200", 5*time.Second)
	dump := r.dump()
	// Written after the backup, followed by the sidecar: its index is now
	// several changes past the backup's.
	_, later := r.create()
	_, last := r.create()
	r.wait("the later tokens allowed", last, "true 200", 5*time.Second)
	r.wait("the later tokens allowed", later, "true 200", time.Second)

	restoreDump(t, r.dsn, dump, "")
	runCLI(t, r.bin, nil, "token", "revoke", "--store", r.dsn, id)

	r.wait("the token revoked after the restore denied", raw, "false 401", 3*time.Second)
	r.wait("a token not in the backup unknown", last, "false 401", time.Second)
	// The sidecar logs the reload once the new index is in place, so the
	// line may follow the first denial by a moment.
	poll(t, 2*time.Second, "the sidecar to log the restore it noticed", func() bool {
		return r.s.loggedSince(0, "went backwards") && r.s.loggedSince(0, "the index loaded the store afresh")
	})
}

// restoreDump is an operator's restore of a pg_dump file: DROP DATABASE,
// CREATE DATABASE, psql < dump, in one transaction with the statements of
// after appended.
func restoreDump(t *testing.T, dsn, dump, after string) {
	t.Helper()
	recreateDatabase(t, dsn)
	sqlText, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	psqlRun(t, dsn, string(sqlText)+"\n"+after, true)
}

// recreateDatabase drops the database of dsn, ending its sessions (the
// sidecar's), and creates it again, empty.
func recreateDatabase(t *testing.T, dsn string) {
	t.Helper()
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
	defer admin.Close(ctx)
	for _, q := range []string{`DROP DATABASE ` + name + ` WITH (FORCE)`, `CREATE DATABASE ` + name} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// psqlRun feeds sqlText to psql, stopping at the first error; in one
// transaction when single is set, else each statement commits by itself.
func psqlRun(t *testing.T, dsn, sqlText string, single bool) {
	t.Helper()
	args := []string{"--quiet", "--set", "ON_ERROR_STOP=1", "--dbname", dsn}
	if single {
		args = append(args, "--single-transaction")
	}
	restore := exec.Command("psql", args...)
	restore.Stdin = strings.NewReader(sqlText)
	if out, err := restore.CombinedOutput(); err != nil {
		t.Fatalf("psql < dump: %v\n%s", err, out)
	}
}

// TestPostgresRestoreInPieces restores a plain pg_dump under a sidecar in
// more than one transaction, as psql < dump without --single-transaction
// does: the schema and the change log first, then (once the sidecar has
// loaded that half-filled database, whose log went backwards) the tables
// of records, by COPY, which logs no change. The example token is unknown
// while its table is empty; the sidecar must notice the rows that came
// back without changes and allow it again, without a restart.
func TestPostgresRestoreInPieces(t *testing.T) {
	r := newRestoreRun(t, pgtest.Database(t, "idx_e2e_pieces_"))
	r.wait("the example token allowed", bobLaptop, "true 200", 5*time.Second)
	_, raw := r.create()
	r.wait("a created token allowed", raw, "true 200", 5*time.Second)
	dump := r.dump()
	_, later := r.create() // not in the backup: the restored log goes backwards
	r.wait("the later token allowed", later, "true 200", 5*time.Second)
	text, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	first, rest := splitDump(t, string(text))

	mark := len(r.s.logs.String())
	recreateDatabase(t, r.dsn)
	// The schema, the change log and the store's id, all at once, so
	// that the sidecar sees this state, and no earlier one, when its
	// polls find the tables again.
	psqlRun(t, r.dsn, first, true)
	poll(t, 10*time.Second, "the sidecar to load the half-restored store", func() bool {
		return r.s.loggedSince(mark, "went backwards") && r.s.loggedSince(mark, "the index loaded the store afresh")
	})
	r.wait("the example token unknown while the tokens are not restored", bobLaptop, "false 401", 3*time.Second)
	if got := r.s.verdict(raw, "octo-org", "app", "write"); got != "false 401" {
		t.Fatalf("a token of the backup, before its table is restored: %s; want false 401", got)
	}

	mark = len(r.s.logs.String())
	start := time.Now()
	psqlRun(t, r.dsn, rest, false) // statement by statement
	r.wait("the example token allowed once its table is restored", bobLaptop, "true 200", 5*time.Second)
	t.Logf("allowed %s after the rest of the restore began", time.Since(start).Round(time.Millisecond))
	r.wait("the created token allowed", raw, "true 200", time.Second)
	if got := r.s.verdict(later, "octo-org", "app", "write"); got != "false 401" {
		t.Errorf("the token not in the backup: %s; want false 401", got)
	}
	for l := range strings.SplitSeq(r.s.logs.String()[mark:], "\n") {
		if strings.Contains(l, "changed outside its change log") {
			t.Logf("logged: %s", l)
		}
	}
	for _, line := range []string{"changed outside its change log", "tokens 0 → ", "the index loaded the store afresh"} {
		if !r.s.loggedSince(mark, line) {
			t.Errorf("the sidecar did not log %q; its log since the rest of the restore:\n%s", line, r.s.logs.String()[mark:])
		}
	}
}

// splitDump cuts a plain pg_dump in two scripts: first, its schema and
// the data of the tables a sidecar does not load (the change log, the
// store's id); rest, the data of the tables it loads (users, memberships,
// repositories, tokens, requests), the sequences and what the dump puts
// after the data (keys, indexes, the trigger). Both start with the dump's
// session settings.
func splitDump(t *testing.T, dump string) (first, rest string) {
	t.Helper()
	lines := strings.SplitAfter(dump, "\n")
	loaded := map[string]bool{"users": true, "memberships": true, "repositories": true, "tokens": true, "requests": true}
	var header, a, b strings.Builder
	inHeader, copying, toRest, afterData := true, false, false, false
	copies := 0
	for _, l := range lines {
		if inHeader && strings.HasPrefix(l, "-- Name: ") {
			inHeader = false
		}
		switch {
		case inHeader:
			header.WriteString(l)
			continue
		case copying:
			if toRest {
				b.WriteString(l)
			} else {
				a.WriteString(l)
			}
			if l == "\\.\n" {
				copying = false
			}
			continue
		case strings.HasPrefix(l, "COPY public."):
			table, _, _ := strings.Cut(strings.TrimPrefix(l, "COPY public."), " ")
			copying, toRest = true, loaded[table]
			copies++
			if toRest {
				b.WriteString(l)
			} else {
				a.WriteString(l)
			}
			continue
		case strings.HasPrefix(l, "SELECT pg_catalog.setval("):
			afterData = true
		}
		if afterData {
			b.WriteString(l)
		} else {
			a.WriteString(l)
		}
	}
	if copies < 9 || !afterData || !strings.Contains(b.String(), "COPY public.tokens ") || !strings.Contains(a.String(), "COPY public.changes ") {
		t.Fatalf("the dump is not laid out as expected (%d COPY blocks, sequences found %v):\n%s", copies, afterData, dump)
	}
	return header.String() + a.String(), header.String() + b.String()
}

// TestPostgresRestoreOlderBackup restores, under a running sidecar, a
// backup taken before schema migration 4 (changes.nonce): the sidecar's
// polls cannot read the change log, and it may hold tokens the backup does
// not. It must deny token decisions at once (503, status not OK, an error
// line naming the schema versions), not answer from its index until
// store.max_staleness; once a process of this version migrates the
// database (the CLI's next write), it loads the store afresh and answers
// again.
func TestPostgresRestoreOlderBackup(t *testing.T) {
	r := newRestoreRun(t, pgtest.Database(t, "idx_e2e_older_"))
	s, bin, dsn, wait := r.s, r.bin, r.dsn, r.wait
	id, raw := r.create()
	wait("the token allowed", raw, "true 200", 5*time.Second)
	dump := r.dump()
	_, later := r.create() // not in the backup
	wait("the later token allowed", later, "true 200", 5*time.Second)

	// The backup as an opa-pat of schema version 3 left it: no nonces.
	mark := len(s.logs.String())
	restoreDump(t, dsn, dump, `ALTER TABLE public.changes DROP COLUMN nonce; DELETE FROM public.schema_migrations WHERE version = 4;`)
	start := time.Now()
	wait("the token not in the backup denied (503)", later, "false 503", 3*time.Second)
	t.Logf("denied %s after the restore, with store.max_staleness 60s", time.Since(start).Round(time.Millisecond))
	if got := s.verdict(raw, "octo-org", "app", "write"); got != "false 503" {
		t.Errorf("the token in the backup: %s; want false 503 until the store is migrated", got)
	}
	poll(t, 3*time.Second, "the plugin status to be an error", func() bool { return !s.healthy() })
	for _, line := range []string{
		"the index cannot follow the store: the store's schema is older than the one this reader loaded: it is at schema version 3 and was at 4 when loaded",
		"a process of this opa-pat version (schema version 4) must open it for writing",
		"token decisions deny at once (fail closed)",
		`cannot be followed: the store's schema is older`,
	} {
		poll(t, 3*time.Second, "the sidecar to log "+line, func() bool { return s.loggedSince(mark, line) })
	}
	for l := range strings.SplitSeq(s.logs.String()[mark:], "\n") {
		if strings.Contains(l, "cannot be followed") && strings.Contains(l, `database \"`) {
			t.Errorf("the status cites the error of the dropped database: %s", l)
		}
	}

	// The CLI's next write migrates the database: the sidecar loads it.
	runCLI(t, bin, nil, "token", "revoke", "--store", dsn, id)
	wait("the token revoked after the migration denied", raw, "false 401", 3*time.Second)
	wait("the token not in the backup unknown", later, "false 401", time.Second)
	poll(t, 3*time.Second, "the plugin status to be OK", s.healthy)
	if !s.loggedSince(mark, "the index loaded the store afresh") {
		t.Errorf("the sidecar did not log that it loaded the store afresh; its log:\n%s", s.logs.String()[mark:])
	}
}

// restoreRun is a sidecar following a PostgreSQL store seeded with the
// example world, and the CLI that writes to it, for the restore tests.
type restoreRun struct {
	t        *testing.T
	dsn, bin string
	s        *pgSidecar
}

func newRestoreRun(t *testing.T, dsn string) *restoreRun {
	for _, tool := range []string{"pg_dump", "psql"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: %v", tool, err)
		}
	}
	r := &restoreRun{t: t, dsn: dsn, bin: binary(t)}
	runCLI(t, r.bin, nil, "store", "import", "--store", dsn, filepath.Join(repoRoot(), "examples", "fixtures.json"))
	r.s, _ = startPGSidecar(t, dsn, "60s", false)
	return r
}

// create makes a release token and approves its request; it returns the
// token's id and raw form.
func (r *restoreRun) create() (id, raw string) {
	r.t.Helper()
	created := createReleaseToken(r.t, r.bin, r.dsn)
	runCLI(r.t, r.bin, nil, "requests", "approve", "--store", r.dsn, "--org", "octo-org", strconv.FormatInt(created.Request.ID, 10), "--actor", "alice")
	return strconv.FormatInt(created.ID, 10), created.Token
}

// wait polls until the sidecar's verdict on raw writing to octo-org/app is
// want.
func (r *restoreRun) wait(what, raw, want string, within time.Duration) {
	r.t.Helper()
	poll(r.t, within, what, func() bool { return r.s.verdict(raw, "octo-org", "app", "write") == want })
}

// dump takes a pg_dump of the store and returns its file.
func (r *restoreRun) dump() string {
	r.t.Helper()
	dump := filepath.Join(r.t.TempDir(), "backup.sql")
	if out, err := exec.Command("pg_dump", "--dbname", r.dsn, "--file", dump).CombinedOutput(); err != nil {
		r.t.Fatalf("pg_dump: %v\n%s", err, out)
	}
	return dump
}
