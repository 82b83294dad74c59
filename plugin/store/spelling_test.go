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
		ctx := t.Context()
		conn, err := db.rdb.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		explain := `EXPLAIN QUERY PLAN `
		if db.pg != nil {
			explain = `EXPLAIN `
			if _, err := conn.ExecContext(ctx, `SET enable_seqscan = off`); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			query   string
			indexes []string
		}{
			{spellingHeld, nil},
			{db.d.spellingFirst, []string{"users_login_lower", "memberships_org_lower", "repositories_owner_lower", "tokens_resource_owner_lower"}},
		} {
			plan, err := queryPlan(ctx, conn, explain+tc.query, "octo-org")
			if err != nil {
				t.Fatal(err)
			}
			for _, bad := range []string{"SCAN users", "SCAN memberships", "SCAN repositories", "SCAN tokens", "SCAN requests", "TEMP B-TREE", "Seq Scan", "Sort"} {
				if strings.Contains(plan, bad) {
					t.Errorf("the plan has %q:\n%s", bad, plan)
				}
			}
			for _, index := range tc.indexes {
				if !strings.Contains(plan, " INDEX "+index+" ") && !strings.Contains(plan, " using "+index+" ") {
					t.Errorf("the plan does not use %s:\n%s", index, plan)
				}
			}
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
			if _, err := db.Import(ctx, &Dump{Users: []DumpUser{{Login: "Dave"}},
				Memberships: []DumpMembership{{User: "Dave", Org: "Big-Org", Role: "member"}}}, "test"); err != nil {
				t.Fatal(err)
			}
			if got := lowerIndexes(t, db); len(got) != 0 {
				t.Fatalf("schema version 2 has %v", got)
			}
			db.Close()

			db = openAt(t, location)
			var version int
			if err := db.rdb.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&version); err != nil || version != 3 {
				t.Fatalf("schema version %d (%v); want 3", version, err)
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
