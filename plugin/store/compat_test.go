package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Every migration admits at most the opa-pat of the version before it, the
// first admits none, and the shipped table gives the markers the docs name.
func TestMigrationsDeclareCompatibility(t *testing.T) {
	for name, ms := range map[string][]migration{"schema": migrations, "PostgreSQL schema": postgresMigrations} {
		for i, m := range ms {
			if m.compatibleWith < 0 || m.compatibleWith > i {
				t.Errorf("%s migration %d: compatibleWith %d; want 0 (breaking) or an older version", name, i+1, m.compatibleWith)
			}
		}
	}
	var got []int
	for v := 1; v <= len(migrations); v++ {
		got = append(got, compatibleFrom(migrations, v))
	}
	if want := []int{1, 2, 2, 2}; !reflect.DeepEqual(got, want) {
		t.Fatalf("markers of versions 1..%d = %v; want %v", len(migrations), got, want)
	}
}

func TestCompatibleFrom(t *testing.T) {
	ms := []migration{{}, {compatibleWith: 1}, {}, {compatibleWith: 3}, {compatibleWith: 2}, {compatibleWith: 5}}
	for _, tc := range []struct {
		note    string
		version int
		want    int
	}{
		{note: "the first migration admits only itself", version: 1, want: 1},
		{note: "a compatible migration keeps the older version", version: 2, want: 1},
		{note: "a breaking one raises it to itself", version: 3, want: 3},
		{note: "compatible with the version before", version: 4, want: 3},
		{note: "a migration that claims an older version than a breaking one before it admits no more", version: 5, want: 3},
		{note: "the highest wins", version: 6, want: 5},
	} {
		t.Run(tc.note, func(t *testing.T) {
			if got := compatibleFrom(ms, tc.version); got != tc.want {
				t.Fatalf("compatibleFrom(%d) = %d; want %d", tc.version, got, tc.want)
			}
		})
	}
}

// Stores for the tests below: a new SQLite file, or a new PostgreSQL
// database (skipped without a server), and how Open's errors name them.
// readOnly takes write access away from this process (a file it may not
// write; a role that may only read, as on a hot standby) and returns the
// location to read.
var compatBackends = []struct {
	name     string
	store    func(t *testing.T) string
	prefix   func(location string) string
	readOnly func(t *testing.T, location string) string
}{
	{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "pat.db") },
		func(location string) string { return `opening store "` + location + `": ` },
		func(t *testing.T, path string) string { denyWrites(t, path); return path }},
	{"postgres", func(t *testing.T) string { return testPostgresDSN(t) },
		func(location string) string { return `opening store "` + location + `": ` },
		func(t *testing.T, dsn string) string { return dsn + "&default_transaction_read_only=on" }},
}

// asBinary runs fn as an opa-pat whose shared migrations are ms (and whose
// PostgreSQL migrations are pgms, when not nil): a newer or an older build.
func asBinary(ms, pgms []migration, fn func()) {
	saved, pgSaved := migrations, postgresMigrations
	migrations = ms
	if pgms != nil {
		postgresMigrations = pgms
	}
	defer func() { migrations, postgresMigrations = saved, pgSaved }()
	fn()
}

// future is this build's migrations followed by more.
func future(more ...migration) []migration {
	return append(slices.Clip(migrations), more...)
}

// noteColumn is a migration 5 of a future opa-pat that older code may
// ignore: a nullable column and an index on it.
var noteColumn = migration{compatibleWith: 4, sql: `ALTER TABLE tokens ADD COLUMN note TEXT; CREATE INDEX tokens_note ON tokens (note);`}

func markers(t *testing.T, db *DB, table string) map[int]sql.NullInt64 {
	t.Helper()
	got := map[int]sql.NullInt64{}
	err := each(t.Context(), db.rdb, `SELECT version, `+markerColumn+` FROM `+table, func(rows *sql.Rows) error {
		var v int
		var m sql.NullInt64
		if err := rows.Scan(&v, &m); err != nil {
			return err
		}
		got[v] = m
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func marker(n int64) sql.NullInt64 { return sql.NullInt64{Int64: n, Valid: true} }

// A store that a newer opa-pat migrated with a migration marked compatible
// with this one: this opa-pat opens it, for writing and for reading, says
// so, reads what the newer one wrote, writes and reviews, migrates nothing
// and leaves the newer column alone; the newer opa-pat then reads what the
// older one wrote.
func TestNewerCompatibleSchema(t *testing.T) {
	for _, b := range compatBackends {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			location := b.store(t)
			newer := future(noteColumn)
			var err error
			asBinary(newer, nil, func() {
				var db *DB
				if db, err = Open(ctx, location); err != nil {
					return
				}
				defer db.Close()
				db.now = func() time.Time { return t0 }
				if _, _, err = db.CreateToken(ctx, CreateTokenParams{Token: fgToken(1, "bob", "octo-org"), GrantState: GrantPending, Justification: "deploys"}); err != nil {
					return
				}
				_, err = db.wdb.ExecContext(ctx, `UPDATE tokens SET note = 'newer' WHERE id = 1`)
				if got := db.SchemaNotice(); got != "" {
					t.Errorf("the newer opa-pat's notice = %q; want none", got)
				}
			})
			if err != nil {
				t.Fatal(err)
			}

			db, err := Open(ctx, location)
			if err != nil {
				t.Fatalf("Open by the older opa-pat = %v", err)
			}
			defer db.Close()
			db.now = func() time.Time { return t0.Add(time.Hour) }
			addMember(t, db, "bob", "octo-org") // an approval needs it (rule 10)
			const notice = "schema version 5 is newer than this opa-pat supports (4) and marked compatible with opa-pat from schema version 4: " +
				"using it as version 4, without migrating it; upgrade opa-pat to use the rest"
			if got := db.SchemaNotice(); got != notice {
				t.Fatalf("SchemaNotice = %q; want %q", got, notice)
			}
			// It reads what the newer one wrote, decides on it, and writes.
			if tok, ok, err := db.Token(ctx, 1); err != nil || !ok || tok.User != "bob" {
				t.Fatalf("Token(1) = %+v, %v, %v", tok, ok, err)
			}
			grants, err := db.Review(ctx, ReviewParams{Org: "octo-org", IDs: []int64{1}, Approve: true, Reason: "ok", Actor: "alice"})
			if err != nil || len(grants) != 1 || grants[0].State != GrantApproved {
				t.Fatalf("Review = %+v, %v", grants, err)
			}
			if _, _, err := db.CreateToken(ctx, CreateTokenParams{Token: fgToken(2, "carol", "octo-org"), GrantState: GrantApproved}); err != nil {
				t.Fatalf("CreateToken by the older opa-pat = %v", err)
			}
			var tokens []int64
			var states []string
			if _, err := db.Load(ctx, Visitor{
				Token: func(t Token) error { tokens = append(tokens, t.ID); return nil },
				Grant: func(g Grant) error { states = append(states, g.Org+"/"+g.State); return nil },
			}); err != nil {
				t.Fatal(err)
			}
			slices.Sort(tokens)
			if !reflect.DeepEqual(tokens, []int64{1, 2}) || !reflect.DeepEqual(states, []string{"octo-org/approved", "octo-org/approved"}) {
				t.Fatalf("Load: tokens %v, grants %v", tokens, states)
			}
			// Nothing migrated down, nothing recorded, the newer column kept.
			want := map[int]sql.NullInt64{1: marker(1), 2: marker(2), 3: marker(2), 4: marker(2), 5: marker(4)}
			if got := markers(t, db, "schema_migrations"); !reflect.DeepEqual(got, want) {
				t.Fatalf("schema_migrations = %v; want %v", got, want)
			}
			var notes []sql.NullString
			err = each(ctx, db.rdb, `SELECT note FROM tokens ORDER BY id`, func(rows *sql.Rows) error {
				var n sql.NullString
				notes = append(notes, n)
				return rows.Scan(&notes[len(notes)-1])
			})
			if err != nil || !reflect.DeepEqual(notes, []sql.NullString{{String: "newer", Valid: true}, {}}) {
				t.Fatalf("notes = %v, %v", notes, err)
			}

			readOnly := b.readOnly(t, location)
			if CheckWritable(readOnly) == nil { // PostgreSQL's server says for itself
				if w, err := Open(ctx, readOnly); err == nil {
					w.Close()
					t.Fatal("Open succeeded on a store this process may not write")
				}
			}
			ro, err := OpenReadOnly(ctx, readOnly)
			if err != nil {
				t.Fatalf("OpenReadOnly by the older opa-pat = %v", err)
			}
			defer ro.Close()
			if got := ro.SchemaNotice(); got != notice {
				t.Fatalf("read-only SchemaNotice = %q; want %q", got, notice)
			}
			if tok, ok, err := ro.Token(ctx, 2); err != nil || !ok || tok.User != "carol" {
				t.Fatalf("read-only Token(2) = %+v, %v, %v", tok, ok, err)
			}

			// The newer opa-pat finds its store as it left it, with the
			// older one's writes.
			asBinary(newer, nil, func() {
				var db *DB
				if db, err = Open(ctx, location); err != nil {
					return
				}
				defer db.Close()
				if got := db.SchemaNotice(); got != "" {
					t.Errorf("the newer opa-pat's notice = %q; want none", got)
				}
				var tok Token
				var ok bool
				if tok, ok, err = db.Token(ctx, 2); err == nil && (!ok || tok.User != "carol") {
					t.Errorf("Token(2) by the newer opa-pat = %+v, %v", tok, ok)
				}
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A store newer than this opa-pat that its marker does not admit is
// refused, for writing and for reading, with the version it needs; a
// newer opa-pat that the marker admits opens it.
func TestNewerIncompatibleSchema(t *testing.T) {
	for _, b := range compatBackends {
		for _, tc := range []struct {
			note  string
			more  []migration
			error string
		}{
			{note: "breaking migration", more: []migration{{sql: `CREATE TABLE extra (id BIGINT)`}},
				error: "schema version 5 is newer than this opa-pat supports (4); it needs an opa-pat that supports schema version 5 or newer"},
			{note: "compatible only with a version between", more: []migration{noteColumn, {compatibleWith: 5, sql: `CREATE INDEX tokens_note_name ON tokens (note, name)`}},
				error: "schema version 6 is newer than this opa-pat supports (4); it needs an opa-pat that supports schema version 5 or newer"},
		} {
			t.Run(b.name+"/"+tc.note, func(t *testing.T) {
				ctx := t.Context()
				location := b.store(t)
				newer := future(tc.more...)
				var err error
				asBinary(newer, nil, func() {
					var db *DB
					if db, err = Open(ctx, location); err == nil {
						db.Close()
					}
				})
				if err != nil {
					t.Fatal(err)
				}
				want := b.prefix(RedactLocation(location)) + tc.error
				if _, err := Open(ctx, location); err == nil || err.Error() != want {
					t.Fatalf("Open = %v; want %s", err, want)
				}
				if _, err := OpenReadOnly(ctx, location); err == nil || err.Error() != want {
					t.Fatalf("OpenReadOnly = %v; want %s", err, want)
				}
				if len(tc.more) < 2 {
					return
				}
				asBinary(newer[:5], nil, func() {
					var db *DB
					if db, err = Open(ctx, location); err == nil {
						defer db.Close()
						if got, want := db.SchemaNotice(), "schema version 6 is newer than this opa-pat supports (5) and marked compatible with "+
							"opa-pat from schema version 5: using it as version 5, without migrating it; upgrade opa-pat to use the rest"; got != want {
							t.Errorf("SchemaNotice at version 5 = %q; want %q", got, want)
						}
					}
				})
				if err != nil {
					t.Fatalf("Open by an opa-pat of version 5 = %v", err)
				}
			})
		}
	}
}

// dropMarkers makes db's store look like one an opa-pat before markers
// made: no marker column.
func dropMarkers(t *testing.T, db *DB) {
	t.Helper()
	if _, err := db.wdb.ExecContext(t.Context(), `ALTER TABLE schema_migrations DROP COLUMN `+markerColumn); err != nil {
		t.Fatal(err)
	}
}

// A store without a marker behaves as before markers: one newer than this
// opa-pat is refused with the message older builds give, whether the row
// of the newer version has no marker (an opa-pat before markers wrote it
// into a table that has the column) or the table has no marker column.
func TestNewerSchemaWithoutMarker(t *testing.T) {
	for _, b := range compatBackends {
		for _, column := range []bool{true, false} {
			note := "column"
			if !column {
				note = "no column"
			}
			t.Run(b.name+"/"+note, func(t *testing.T) {
				ctx := t.Context()
				location := b.store(t)
				db, err := Open(ctx, location)
				if err != nil {
					t.Fatal(err)
				}
				if !column {
					dropMarkers(t, db)
				}
				// What an opa-pat of version 5 before markers records.
				_, err = db.wdb.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (5, 0)`)
				db.Close()
				if err != nil {
					t.Fatal(err)
				}
				want := b.prefix(RedactLocation(location)) + "schema version 5 is newer than this opa-pat supports (4)"
				if _, err := Open(ctx, location); err == nil || err.Error() != want {
					t.Fatalf("Open = %v; want %s", err, want)
				}
				if _, err := OpenReadOnly(ctx, location); err == nil || err.Error() != want {
					t.Fatalf("OpenReadOnly = %v; want %s", err, want)
				}
			})
		}
	}
}

// A store an opa-pat before markers made at version 2 gains the marker
// column with migration 3, in its transaction, when several processes open
// it at once: one migrates, the others find nothing to do, and only the
// rows this opa-pat records (3 and 4) carry a marker.
func TestUpgradeAddsMarker(t *testing.T) {
	for _, b := range compatBackends {
		t.Run(b.name, func(t *testing.T) {
			location := b.store(t)
			db := openAtVersion(t, location, 2)
			dropMarkers(t, db)
			db.Close()
			openAtOnce(t, location, 4)
			db = openAt(t, location)
			want := map[int]sql.NullInt64{1: {}, 2: {}, 3: marker(2), 4: marker(2)}
			if got := markers(t, db, "schema_migrations"); !reflect.DeepEqual(got, want) {
				t.Fatalf("schema_migrations = %v; want %v", got, want)
			}
		})
	}
}

// PostgreSQL's own migrations carry a marker too.
func TestNewerPostgresSchema(t *testing.T) {
	for _, tc := range []struct {
		note   string
		more   migration
		notice string
		error  string
	}{
		{note: "compatible", more: migration{compatibleWith: 1, sql: `CREATE INDEX changes_entity ON changes (entity)`},
			notice: "PostgreSQL schema version 2 is newer than this opa-pat supports (1) and marked compatible with opa-pat from " +
				"PostgreSQL schema version 1: using it as version 1, without migrating it; upgrade opa-pat to use the rest"},
		{note: "breaking", more: migration{sql: `CREATE INDEX changes_entity ON changes (entity)`},
			error: "opening store {dsn}: PostgreSQL schema version 2 is newer than this opa-pat supports (1); " +
				"it needs an opa-pat that supports PostgreSQL schema version 2 or newer"},
	} {
		t.Run(tc.note, func(t *testing.T) {
			ctx := t.Context()
			dsn := testPostgresDSN(t)
			var err error
			asBinary(migrations, append(slices.Clip(postgresMigrations), tc.more), func() {
				var db *DB
				if db, err = Open(ctx, dsn); err == nil {
					db.Close()
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			for name, open := range map[string]func(context.Context, string) (*DB, error){"Open": Open, "OpenReadOnly": OpenReadOnly} {
				db, err := open(ctx, dsn)
				if tc.error != "" {
					if want := strings.ReplaceAll(tc.error, "{dsn}", strconv.Quote(RedactURL(dsn))); err == nil || err.Error() != want {
						t.Fatalf("%s = %v; want %s", name, err, want)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s = %v", name, err)
				}
				got := db.SchemaNotice()
				db.Close()
				if got != tc.notice {
					t.Fatalf("%s: SchemaNotice = %q; want %q", name, got, tc.notice)
				}
			}
		})
	}
}

// The notice names the store's schema only when it is newer.
func TestSchemaNoticeOfACurrentStore(t *testing.T) {
	db := openTest(t)
	if got := db.SchemaNotice(); got != "" {
		t.Fatalf("SchemaNotice = %q; want none", got)
	}
}
