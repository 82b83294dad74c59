package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/opa-pat/opa-pat/plugin/store/pgtest"
)

// populate gives a store one of every record, with a request history.
func populate(t *testing.T, db *DB) {
	t.Helper()
	ctx := t.Context()
	if _, err := db.Import(ctx, &Dump{
		Users:        []DumpUser{{Login: "alice", ManagedBy: Null()}, {Login: "bob_acme", ManagedBy: NonNull("acme")}},
		Memberships:  []DumpMembership{{User: "alice", Org: "octo-org", Role: "owner"}, {User: "bob", Org: "octo-org", Role: "member"}},
		Repositories: []DumpRepository{{Owner: "octo-org", Name: "app", Visibility: "private"}, {Owner: "octo-org", Name: "www", Visibility: "public"}},
	}, "admin"); err != nil {
		t.Fatal(err)
	}
	for i := byte(1); i <= 3; i++ {
		if _, _, err := db.CreateToken(ctx, CreateTokenParams{Token: fgToken(i, "bob", "octo-org"), GrantState: GrantPending, Justification: "ci"}); err != nil {
			t.Fatal(err)
		}
	}
	classic := Token{Hash: hashOf(9), Name: "old", Kind: KindClassic, User: "alice", Scopes: []string{"repo", "workflow"}, CreatedAt: t0}
	if _, _, err := db.CreateToken(ctx, CreateTokenParams{Token: classic}); err != nil {
		t.Fatal(err)
	}
	steps := []func() error{
		func() error {
			// While token 1 lives (30 days from t0): an expired token's
			// request is not approved.
			now := db.now
			db.now = func() time.Time { return t0.Add(time.Hour) }
			defer func() { db.now = now }()
			_, err := db.Review(ctx, ReviewParams{Org: "octo-org", IDs: []int64{1}, Approve: true, Actor: "alice", Reason: "ok"})
			return err
		},
		func() error {
			_, err := db.Review(ctx, ReviewParams{Org: "octo-org", IDs: []int64{2}, Actor: "alice", Reason: "no"})
			return err
		},
		func() error {
			_, err := db.RequestAgain(ctx, RequestAgainParams{TokenID: 2, Org: "octo-org", Actor: "bob", Justification: "please"})
			return err
		},
		func() error { _, err := db.RevokeGrants(ctx, "octo-org", []int64{1}, "alice", "left"); return err },
		func() error { return db.RevokeToken(ctx, 4, "alice", "leaked") },
		func() error { return db.TouchLastUsed(ctx, []int64{3}, t0.Add(time.Hour)) },
		func() error { return db.SetMeta(ctx, "settings", `{"organizations":{}}`) },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
}

// tableRows renders every row of every copied table, in key order.
func tableRows(t *testing.T, db *DB) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, tb := range copyTables {
		names := make([]string, len(tb.columns))
		for i, c := range tb.columns {
			names[i] = c.name
		}
		cols := strings.Join(names, ", ")
		rows, err := db.rdb.QueryContext(t.Context(), `SELECT `+cols+` FROM `+tb.from()+` ORDER BY `+cols)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			vals := make([]any, len(tb.columns))
			dest := make([]any, len(tb.columns))
			for i, c := range tb.columns {
				switch c.kind {
				case colBool:
					dest[i] = new(bool)
				case colNullInt:
					dest[i] = new(sql.NullInt64)
				case colBlob:
					dest[i] = new([]byte)
				default:
					dest[i] = new(string)
				}
			}
			if err := rows.Scan(dest...); err != nil {
				t.Fatal(err)
			}
			for i := range dest {
				vals[i] = reflect.ValueOf(dest[i]).Elem().Interface()
			}
			out[tb.name] = append(out[tb.name], fmt.Sprintf("%v", vals))
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestMigrateStoreRoundTrip(t *testing.T) {
	ctx := t.Context()
	dsn := testPostgresDSN(t)
	dir := t.TempDir()
	lite := openTest(t)
	populate(t, lite)
	want := tableRows(t, lite)
	pg := openAt(t, dsn)

	// A follower attached to the empty target sees the migrated records.
	f := follow(ctx, t, pg)
	res, err := MigrateStore(ctx, lite, pg, MigrateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantRows := map[string]int64{"meta": 1, "users": 3, "memberships": 2, "repositories": 2, "tokens": 4, "requests": 4, "audit_events": 13}
	if !reflect.DeepEqual(res.Rows, wantRows) {
		t.Fatalf("rows = %v; want %v", res.Rows, wantRows)
	}
	if got := tableRows(t, pg); !reflect.DeepEqual(got, want) {
		t.Fatalf("PostgreSQL rows differ:\n got %v\nwant %v", got, want)
	}
	f.await(ctx, t, EntityGrant, "3/octo-org", time.Second)

	// The id sequences continue after the copied ids.
	tok, g, err := pg.CreateToken(ctx, CreateTokenParams{Token: fgToken(7, "bob", "octo-org"), GrantState: GrantPending})
	if err != nil || tok.ID != 5 || g.ID != 5 {
		t.Fatalf("CreateToken after migrate = %d, %+v, %v; want ids 5 and 5", tok.ID, g, err)
	}

	// And back, into a new SQLite file.
	back, err := Open(ctx, filepath.Join(dir, "back.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	if _, err := MigrateStore(ctx, pg, back, MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, want := tableRows(t, back), tableRows(t, pg); !reflect.DeepEqual(got, want) {
		t.Fatalf("SQLite rows differ:\n got %v\nwant %v", got, want)
	}
	if tok, _, err := back.CreateToken(ctx, CreateTokenParams{Token: fgToken(8, "bob", "octo-org")}); err != nil || tok.ID != 6 {
		t.Fatalf("CreateToken after migrate back = %d, %v; want id 6", tok.ID, err)
	}
}

func TestMigrateStoreTarget(t *testing.T) {
	ctx := t.Context()
	dsn := testPostgresDSN(t)
	lite := openTest(t)
	populate(t, lite)
	pg := openAt(t, dsn)
	if _, _, err := pg.CreateToken(ctx, CreateTokenParams{Token: fgToken(42, "carol", "other-org")}); err != nil {
		t.Fatal(err)
	}
	before := tableRows(t, pg)
	_, err := MigrateStore(ctx, lite, pg, MigrateOptions{})
	if want := "the target store is not empty (1 users, 1 tokens, 1 audit_events); pass --replace to overwrite it"; err == nil || err.Error() != want || !errors.Is(err, ErrTargetNotEmpty) {
		t.Fatalf("err = %v; want %q", err, want)
	}
	if got := tableRows(t, pg); !reflect.DeepEqual(got, before) {
		t.Fatalf("a refused migration changed the target")
	}

	// Replace: the follower drops what was there and sees what came.
	f := follow(ctx, t, pg)
	if _, err := MigrateStore(ctx, lite, pg, MigrateOptions{Replace: true}); err != nil {
		t.Fatal(err)
	}
	if got, want := tableRows(t, pg), tableRows(t, lite); !reflect.DeepEqual(got, want) {
		t.Fatalf("rows after replace differ:\n got %v\nwant %v", got, want)
	}
	f.await(ctx, t, EntityUser, "carol", time.Second)

	// All or nothing: a value the write path refuses (and PostgreSQL could
	// not store: NUL in text), in the last table copied, leaves the target
	// as it was.
	if _, err := lite.wdb.ExecContext(ctx, `UPDATE audit_events SET reason = 'a' || char(0) || 'b' WHERE id = 13`); err != nil {
		t.Fatal(err)
	}
	before = tableRows(t, pg)
	_, err = MigrateStore(ctx, lite, pg, MigrateOptions{Replace: true})
	if want := "the source's audit event 13" + migrateRefuses + "reason: must not contain NUL"; err == nil || err.Error() != want {
		t.Fatalf("err = %v; want %q", err, want)
	}
	if got := tableRows(t, pg); !reflect.DeepEqual(got, before) {
		t.Fatalf("a failed migration changed the target")
	}
}

func TestMigrateStoreUnknownColumn(t *testing.T) {
	ctx := t.Context()
	a, b := openTest(t), openTest(t)
	if _, err := a.wdb.ExecContext(ctx, `ALTER TABLE requests ADD COLUMN note TEXT NOT NULL DEFAULT ''`); err != nil {
		t.Fatal(err)
	}
	_, err := MigrateStore(ctx, a, b, MigrateOptions{})
	if want := `table requests has a column "note" that this opa-pat does not copy`; err == nil || err.Error() != want {
		t.Fatalf("err = %v; want %q", err, want)
	}
}

func TestMigrateStoreSchemaVersions(t *testing.T) {
	ctx := context.Background()
	a, b := openTest(t), openTest(t)
	if _, err := b.wdb.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)`); err != nil {
		t.Fatal(err)
	}
	_, err := MigrateStore(ctx, a, b, MigrateOptions{})
	if want := fmt.Sprintf("the source's schema version is %d and the target's 999; open both with the same opa-pat first", SchemaVersion()); err == nil || err.Error() != want {
		t.Fatalf("err = %v; want %q", err, want)
	}
}

// TestPostgresLoadMatchesSQLite loads one world from both backends (SQLite
// with its packed reads, PostgreSQL with its own grant query) and expects
// the same records.
func TestPostgresLoadMatchesSQLite(t *testing.T) {
	ctx := t.Context()
	lite := openTest(t)
	populate(t, lite)
	pg := openAt(t, testPostgresDSN(t))
	if _, err := MigrateStore(ctx, lite, pg, MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	load := func(db *DB) map[string][]string {
		out := map[string][]string{}
		add := func(kind string, v any) error { out[kind] = append(out[kind], fmt.Sprintf("%+v", v)); return nil }
		if _, err := db.Load(ctx, Visitor{
			User:       func(u User) error { return add("users", u) },
			Membership: func(m Membership) error { return add("memberships", m) },
			Repository: func(r Repository) error { return add("repositories", r) },
			Token:      func(tk Token) error { return add("tokens", tk) },
			Grant:      func(g Grant) error { return add("grants", g) },
		}); err != nil {
			t.Fatal(err)
		}
		for _, v := range out {
			slices.Sort(v)
		}
		return out
	}
	want, got := load(lite), load(pg)
	if len(want["grants"]) != 3 || len(want["tokens"]) != 4 {
		t.Fatalf("SQLite loaded %d grants and %d tokens; want 3 and 4", len(want["grants"]), len(want["tokens"]))
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("PostgreSQL loaded\n%v\nSQLite loaded\n%v", got, want)
	}
}

// A migration into a PostgreSQL database that failed (here: a source with
// no records, refused) removes the schema that opening the target created,
// in one transaction, and leaves the database with nothing of opa-pat's in
// it; a target whose tables existed before is never removed.
func TestRemoveCreatedSchema(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.Database(t, "pat_rmschema_")
	src, err := Open(ctx, filepath.Join(t.TempDir(), "empty.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if !dst.CreatedSchema() {
		t.Fatal("CreatedSchema() = false for a new database")
	}
	if _, err := MigrateStore(ctx, src, dst, MigrateOptions{}); !errors.Is(err, ErrSourceEmpty) {
		t.Fatalf("MigrateStore from an empty store = %v", err)
	}
	if err := dst.RemoveCreatedSchema(ctx); err != nil {
		t.Fatalf("RemoveCreatedSchema() = %v", err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var left []string
	rows, err := conn.Query(ctx, `SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace
UNION ALL SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		left = append(left, name)
	}
	if rows.Err() != nil || len(left) != 0 {
		t.Fatalf("left in the database: %v (%v)", left, rows.Err())
	}

	// Opened again, the tables exist: not its to remove; nor are records
	// another process wrote.
	again, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	other, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if other.CreatedSchema() {
		t.Fatal("CreatedSchema() = true for a database that had the tables")
	}
	if err := other.RemoveCreatedSchema(ctx); err == nil || err.Error() != RedactLocation(dsn)+": opening it did not create its tables; nothing removed" {
		t.Fatalf("RemoveCreatedSchema() of tables it did not create = %v", err)
	}
	if _, err := importJSON(t, other, importWorld); err != nil {
		t.Fatal(err)
	}
	err = again.RemoveCreatedSchema(ctx)
	if err == nil || !strings.HasPrefix(err.Error(), "it holds records now (") || !strings.HasSuffix(err.Error(), "), written by another process: left in place") {
		t.Fatalf("RemoveCreatedSchema() of a store written meanwhile = %v", err)
	}
	if n := listedTokens(t, other); n != 2 {
		t.Fatalf("%d tokens after the refused removal; want 2", n)
	}
}
