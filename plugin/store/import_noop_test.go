package store

import (
	"database/sql"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// writeCounter counts, through triggers, every row inserted into or updated
// in the tables a sidecar follows and the change log: what an import wrote
// beyond its audit events.
type writeCounter struct {
	db *DB
}

// countedTables are the tables writeCounter watches.
var countedTables = []string{"users", "memberships", "repositories", "tokens", "requests", "changes"}

func countWrites(t *testing.T, db *DB) writeCounter {
	t.Helper()
	stmts := []string{`CREATE TABLE test_writes (tbl TEXT NOT NULL)`}
	if db.pg != nil {
		stmts = append(stmts, `CREATE FUNCTION test_count_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO test_writes (tbl) VALUES (TG_TABLE_NAME);
	RETURN NULL;
END
$$`)
	}
	for _, table := range countedTables {
		if db.pg != nil {
			stmts = append(stmts, fmt.Sprintf(`CREATE TRIGGER test_%[1]s_writes AFTER INSERT OR UPDATE ON %[1]s FOR EACH ROW EXECUTE FUNCTION test_count_write()`, table))
			continue
		}
		for _, op := range []string{"INSERT", "UPDATE"} {
			stmts = append(stmts, fmt.Sprintf(`CREATE TRIGGER test_%[1]s_%[2]s AFTER %[2]s ON %[1]s BEGIN INSERT INTO test_writes (tbl) VALUES ('%[1]s'); END`, table, op))
		}
	}
	for _, s := range stmts {
		if _, err := db.wdb.ExecContext(t.Context(), s); err != nil {
			t.Fatal(err)
		}
	}
	return writeCounter{db}
}

// take returns the writes counted since the last take, by table.
func (c writeCounter) take(t *testing.T) map[string]int {
	t.Helper()
	got := map[string]int{}
	if err := each(t.Context(), c.db.wdb, `SELECT tbl, COUNT(*) FROM test_writes GROUP BY tbl`, func(rows *sql.Rows) error {
		var table string
		var n int
		err := rows.Scan(&table, &n)
		got[table] = n
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.db.wdb.ExecContext(t.Context(), `DELETE FROM test_writes`); err != nil {
		t.Fatal(err)
	}
	return got
}

// Importing the store's own export writes nothing but its audit event: no
// row inserted or updated, no change-log entry (each would make every
// sidecar re-read the record). The store.import event says that the import
// happened and that it changed nothing. A record that differs is written,
// alone.
func TestImportOfTheStoresExportWritesNothing(t *testing.T) {
	importBackends(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		for _, world := range []string{importWorld, `{"users": [{"login": "emu", "managed_by": "acme"}],
			"repositories": [{"owner": "octo-org", "name": "app", "visibility": "private"}, {"owner": "octo-org", "name": "docs", "visibility": "public"}],
			"tokens": [{"token": "` + rawFG2 + `", "name": "docs", "user": "emu", "resource_owner": "octo-org", "repository_selection": "selected",
				"repositories": ["docs", "app"], "permissions": {"contents": "read"}, "created_at": "2026-01-01T00:00:00.123456789Z",
				"expires_at": "2026-02-01T00:00:00Z", "revoked": false}],
			"grants": [{"token_name": "docs", "user": "emu", "org": "octo-org", "state": "denied", "reason": "no", "reviewer": "alice", "justification": "docs"}]}`} {
			if _, err := importJSON(t, db, world); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.TouchLastUsed(ctx, []int64{1}, t0.Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		exported, err := db.Export(ctx)
		if err != nil {
			t.Fatal(err)
		}
		writes := countWrites(t, db)
		changes, err := db.Changes(ctx, 0, 0)
		if err != nil {
			t.Fatal(err)
		}

		res, err := db.Import(ctx, exported, "cron")
		if err != nil {
			t.Fatal(err)
		}
		records := len(exported.Users) + len(exported.Memberships) + len(exported.Repositories) + len(exported.Tokens) + len(exported.Grants)
		if want := (ImportResult{Unchanged: records}); res != want {
			t.Errorf("import of the export = %+v; want %+v", res, want)
		}
		if got := writes.take(t); len(got) != 0 {
			t.Errorf("the import of the export wrote rows: %v", got)
		}
		if after, err := db.Changes(ctx, 0, 0); err != nil || len(after) != len(changes) {
			t.Errorf("change log: %d entries after, %d before (%v)", len(after), len(changes), err)
		}
		if again, err := db.Export(ctx); err != nil || !reflect.DeepEqual(again, exported) {
			t.Errorf("the store changed:\n got %+v\nwant %+v (%v)", again, exported, err)
		}
		events, err := db.ListAudit(ctx, AuditFilter{Action: ActionStoreImport, Limit: 1})
		if err != nil || len(events) != 1 {
			t.Fatalf("store.import events = %+v, %v", events, err)
		}
		if got, want := fmt.Sprintln(events[0].Actor, events[0].Details), fmt.Sprintf("cron map[grants:0 memberships:0 repositories:0 tokens:0 unchanged:%d users:0]\n", records); got != want {
			t.Errorf("the import's audit event: %s; want %s", got, want)
		}

		// One membership and one token that differ: those two, and only
		// those, are written.
		exported.Memberships[0].Role = "owner"
		exported.Tokens[1].Name = "docs-2"
		res, err = db.Import(ctx, exported, "cron")
		if err != nil {
			t.Fatal(err)
		}
		if want := (ImportResult{Memberships: 1, Tokens: 1, Unchanged: records - 2}); res != want {
			t.Errorf("import of two changes = %+v; want %+v", res, want)
		}
		if got, want := writes.take(t), map[string]int{"memberships": 1, "tokens": 1, "changes": 2}; !reflect.DeepEqual(got, want) {
			t.Errorf("writes = %v; want %v", got, want)
		}
	})
}
