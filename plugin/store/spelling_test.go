package store

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// spellingBackends runs fn on a new SQLite store and a new PostgreSQL one
// (skipped without a server).
func spellingBackends(t *testing.T, fn func(t *testing.T, db *DB)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, openTest(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, openAt(t, testPostgresDSN(t))) })
}

// A store that holds several spellings of one name (written before import
// refused a second one, or by another tool) answers the first in byte
// order, and the lower-case form wherever it is held, also only in the
// tables found by the lower-case indexes (memberships, tokens).
func TestSpellingSeveralSpellings(t *testing.T) {
	spellingBackends(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		for _, q := range []string{
			`INSERT INTO users (login) VALUES ('MiXed'), ('Held-In-Tokens'), ('Held-In-Members')`,
			`INSERT INTO memberships (user_login, org, role) VALUES ('MiXed', 'MIXED', 'member'), ('MiXed', 'held-in-members', 'member')`,
			`INSERT INTO tokens (hash, name, kind, user_login, resource_owner, created_at) VALUES
				('a', 'x', 'fine_grained', 'MiXed', 'Mixed', 0), ('b', 'x', 'fine_grained', 'MiXed', 'held-in-tokens', 0),
				('c', 'x', 'fine_grained', 'MiXed', 'Held-In-Tokens', 0)`,
		} {
			if _, err := db.wdb.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		for asked, want := range map[string]string{
			"mixed": "MIXED", "MIXED": "MIXED", "mIxEd": "MIXED",
			"HELD-IN-TOKENS": "held-in-tokens", "Held-In-Members": "held-in-members", "nobody": "nobody",
		} {
			if got, err := db.Spelling(ctx, asked); err != nil || got != want {
				t.Errorf("Spelling(%q) = %q, %v; want %q", asked, got, err, want)
			}
		}
	})
}

// Spelling's statements use indexes only, never a scan of a table nor a
// sort, so that a name the store does not hold in lower case costs what a
// known one costs (BenchmarkSpelling measures it). SQLite: EXPLAIN QUERY
// PLAN. PostgreSQL: EXPLAIN with sequential scans disabled, so that the
// planner takes an index wherever one serves even on a table of a few
// rows (a Seq Scan in the plan means none does).
func TestSpellingUsesIndexes(t *testing.T) {
	spellingBackends(t, func(t *testing.T, db *DB) {
		conn, explain := explainConn(t, db)
		for _, tc := range []struct {
			query   string
			indexes []string
		}{
			{spellingHeld, nil},
			{db.d.spellingFirst, lowerIndexNames},
		} {
			checkIndexPlan(t, conn, explain+tc.query, []any{"octo-org"}, tc.indexes)
		}
	})
}

// lowerIndexNames are the lower-case indexes of schema migration 3.
var lowerIndexNames = []string{"users_login_lower", "memberships_org_lower", "repositories_owner_lower", "tokens_resource_owner_lower"}

// checkIndexPlan explains query and wants neither a scan of a table of the
// store nor a sort in the plan, and every one of indexes used.
func checkIndexPlan(t *testing.T, conn *sql.Conn, query string, args []any, indexes []string) {
	t.Helper()
	plan, err := queryPlan(t.Context(), conn, query, args...)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"SCAN users", "SCAN memberships", "SCAN repositories", "SCAN tokens", "SCAN requests", "TEMP B-TREE", "Seq Scan", "Sort", "hashed SubPlan"} {
		if strings.Contains(plan, bad) {
			t.Errorf("the plan has %q:\n%s", bad, plan)
		}
	}
	for _, index := range indexes {
		if !strings.Contains(plan, " INDEX "+index+" ") && !strings.Contains(plan, " using "+index+" ") {
			t.Errorf("the plan does not use %s:\n%s", index, plan)
		}
	}
}

// An import asks the store about the file's names only, through indexes:
// checkSpellings' statements scan no table of the store and sorts nothing
// (as TestSpellingUsesIndexes checks Spelling's), so that importing a
// small file costs a few index look-ups per name whatever the store holds
// (BenchmarkImportSmallFile measures it).
func TestCheckSpellingsUsesIndexes(t *testing.T) {
	spellingBackends(t, func(t *testing.T, db *DB) {
		conn, explain := explainConn(t, db)
		for _, tc := range []struct {
			stmt    string
			indexes []string
		}{
			{db.d.spellingsHeld, []string{"memberships_org_lower", "tokens_resource_owner_lower", "requests_org_state"}},
			{db.d.spellingsFirst, lowerIndexNames},
		} {
			checkIndexPlan(t, conn, explain+tc.stmt, []any{`["Octo-Org", "octo-org", "bob"]`}, tc.indexes)
		}
	})
}

// checkSpellings asks about all the names of a file at once: the first
// and the last of many are compared with the store and with the file's
// earlier names alike.
func TestImportSpellingsOfManyNames(t *testing.T) {
	spellingBackends(t, func(t *testing.T, db *DB) {
		if _, err := importJSON(t, db, `{"users": [{"login": "Dave", "managed_by": null}]}`); err != nil {
			t.Fatal(err)
		}
		users := make([]string, 1000)
		for i := range users {
			users[i] = fmt.Sprintf(`{"login": "u%d", "managed_by": null}`, i)
		}
		many := strings.Join(users, ", ")
		before, err := db.Export(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		refused(t, db, before, `{"users": [`+many+`, {"login": "dave", "managed_by": null}]}`,
			fmt.Sprintf(`users[%d].login: "dave" is spelt "Dave" in the store or earlier in the file; logins are compared without regard to case: write "Dave"`, len(users)))
		refused(t, db, before, `{"users": [`+many+`], "memberships": [{"user": "U7", "org": "o", "role": "member"}]}`,
			`memberships[0].user: "U7" is spelt "u7" in the store or earlier in the file; logins are compared without regard to case: write "u7"`)
		if res, err := importJSON(t, db, `{"users": [`+many+`, {"login": "Dave", "managed_by": null}]}`); err != nil || res.Users != len(users) {
			t.Fatalf("import = %+v, %v; want %d users written", res, err, len(users))
		}
	})
}

// A store that holds several spellings of a name (from before import
// refused a second one) names, in the refusal, the spelling Spelling
// answers: the lower-case one when held, else the first in byte order. Any
// spelling it holds stays importable, also one held only by a request
// ("octo-org" beside its token's "Octo-Org"). A spelling held only by a
// request for an organization other than its token's resource owner (an
// import before rule 6 was checked) is, as for Spelling, not found in
// another case: "indie-org" is imported beside the request's "Indie-Org".
func TestImportSpellingsOfAStoreWithSeveral(t *testing.T) {
	spellingBackends(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		h1, h2, h3 := hashOf(1), hashOf(2), hashOf(3)
		for _, q := range []struct {
			query string
			args  []any
		}{
			{`INSERT INTO users (login) VALUES ('MiXed'), ('Held-In-Tokens')`, nil},
			{`INSERT INTO memberships (user_login, org, role) VALUES ('MiXed', 'mixed', 'member')`, nil},
			{`INSERT INTO tokens (hash, name, kind, user_login, resource_owner, repository_selection, created_at) VALUES
				($1, 'x', 'fine_grained', 'MiXed', 'HELD-IN-TOKENS', 'all', 0), ($2, 'x', 'fine_grained', 'MiXed', 'Held-In-Tokens', 'all', 0),
				($3, 'x', 'fine_grained', 'MiXed', 'Octo-Org', 'all', 0)`, []any{h1[:], h2[:], h3[:]}},
			{`INSERT INTO requests (token_id, org, state, created_at, updated_at) VALUES (1, 'Indie-Org', 'pending', 0, 0), (3, 'octo-org', 'pending', 0, 0)`, nil},
		} {
			if _, err := db.wdb.ExecContext(ctx, q.query, q.args...); err != nil {
				t.Fatal(err)
			}
		}
		before, err := db.Export(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ world, err string }{
			{`{"users": [{"login": "MIXED", "managed_by": null}]}`,
				`users[0].login: "MIXED" is spelt "mixed" in the store or earlier in the file; logins are compared without regard to case: write "mixed"`},
			{`{"repositories": [{"owner": "held-in-tokens", "name": "app", "visibility": "private"}]}`,
				`repositories[0].owner: "held-in-tokens" is spelt "HELD-IN-TOKENS" in the store or earlier in the file; logins are compared without regard to case: write "HELD-IN-TOKENS"`},
		} {
			refused(t, db, before, tc.world, tc.err)
		}
		if _, err := importJSON(t, db, `{"users": [{"login": "MiXed", "managed_by": null}, {"login": "mixed", "managed_by": null}],
			"repositories": [{"owner": "Held-In-Tokens", "name": "app", "visibility": "private"}, {"owner": "octo-org", "name": "app", "visibility": "private"},
				{"owner": "indie-org", "name": "www", "visibility": "public"}]}`); err != nil {
			t.Fatalf("the store's own spellings: %v", err)
		}
	})
}

// queryPlan runs an EXPLAIN and returns its lines: SQLite's detail column,
// PostgreSQL's one column.
func queryPlan(ctx context.Context, conn *sql.Conn, query string, args ...any) (string, error) {
	rows, err := conn.QueryContext(ctx, query, args...)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return "", err
	}
	var lines []string
	for rows.Next() {
		values := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range values {
			ptrs[i] = &values[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return "", err
		}
		lines = append(lines, fmt.Sprintf("%s", values[len(values)-1]))
	}
	return strings.Join(lines, "\n"), rows.Err()
}

// A store made by schema version 2 gains the lower-case indexes when a
// newer opa-pat opens it, and keeps its records.
func TestMigrateFromV2(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			ctx := t.Context()
			location := filepath.Join(t.TempDir(), "v2.db")
			if backend == "postgres" {
				location = testPostgresDSN(t)
			}
			db := openAtVersion(t, location, 2)
			if _, err := db.Import(ctx, &Dump{Users: []DumpUser{{Login: "Dave", ManagedBy: Null()}},
				Memberships: []DumpMembership{{User: "Dave", Org: "Big-Org", Role: "member"}}}, "test"); err != nil {
				t.Fatal(err)
			}
			if got := lowerIndexes(t, db); len(got) != 0 {
				t.Fatalf("schema version 2 has %v", got)
			}
			db.Close()

			db = openAt(t, location)
			var version int
			if err := db.rdb.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&version); err != nil || version != 4 {
				t.Fatalf("schema version %d (%v); want 4", version, err)
			}
			want := []string{"memberships_org_lower", "repositories_owner_lower", "tokens_resource_owner_lower", "users_login_lower"}
			if got := lowerIndexes(t, db); !slices.Equal(got, want) {
				t.Fatalf("indexes %v; want %v", got, want)
			}
			for asked, want := range map[string]string{"DAVE": "Dave", "big-org": "Big-Org"} {
				if got, err := db.Spelling(ctx, asked); err != nil || got != want {
					t.Errorf("Spelling(%q) = %q, %v; want %q", asked, got, err, want)
				}
			}
		})
	}
}

// lowerIndexes names the store's indexes whose names end in _lower.
func lowerIndexes(t *testing.T, db *DB) []string {
	t.Helper()
	q := `SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE '%_lower' ORDER BY name`
	if db.pg != nil {
		q = `SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND indexname LIKE '%_lower' ORDER BY indexname`
	}
	var names []string
	if err := each(t.Context(), db.rdb, q, func(rows *sql.Rows) error {
		var n string
		err := rows.Scan(&n)
		names = append(names, n)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return names
}

// explainConn is a connection of db's for reading plans, and the statement
// prefix that asks for one: SQLite's EXPLAIN QUERY PLAN, or PostgreSQL's
// EXPLAIN with sequential scans disabled, so that the planner takes an
// index wherever one serves even on a table of a few rows.
func explainConn(t *testing.T, db *DB) (*sql.Conn, string) {
	t.Helper()
	conn, err := db.rdb.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if db.pg == nil {
		return conn, `EXPLAIN QUERY PLAN `
	}
	if _, err := conn.ExecContext(t.Context(), `SET enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	return conn, `EXPLAIN `
}
