package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/opa-pat/opa-pat/plugin/store"
	"github.com/opa-pat/opa-pat/plugin/store/pgtest"
)

// The store a sidecar follows can be put back from a backup, or created
// anew, under it. Its change log then goes backwards, or holds other
// changes at the numbers the index applied: reading the changes after the
// index's number sees none of the writes since, and a token revoked after
// the restore would stay allowed. The index must notice and load the store
// afresh within a poll.

func restoreBackends(t *testing.T, fn func(t *testing.T, location string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, filepath.Join(t.TempDir(), "pat.db")) })
	t.Run("postgres", func(t *testing.T) { fn(t, pgtest.Database(t, "pat_test_restore_")) })
}

// raw runs statements on the store at location behind its back, as psql or
// sqlite3 would.
func raw(t *testing.T, location string, stmts ...string) {
	t.Helper()
	ctx := t.Context()
	if store.IsPostgres(location) {
		c, err := pgx.Connect(ctx, location)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(context.Background())
		for _, s := range stmts {
			if _, err := c.Exec(ctx, s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
		return
	}
	db, err := sql.Open("sqlite", location+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // one session, so that BEGIN and COMMIT enclose the statements between (restore)
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// restore runs statements on the store at location in one transaction, as
// a restore in one transaction (psql --single-transaction) makes its
// changes visible: all at once. Statements run one by one (raw) may be
// seen one by one, and a store that changes outside its change log after a
// reload is loaded again (settle.go).
func restore(t *testing.T, location string, stmts ...string) {
	t.Helper()
	raw(t, location, append(append([]string{"BEGIN"}, stmts...), "COMMIT")...)
}

// rewindLog makes the change log end at seq, and the next change seq+1, as
// restoring a backup taken at seq does.
func rewindLog(location string, seq int64) []string {
	stmts := []string{fmt.Sprintf(`DELETE FROM changes WHERE seq > %d`, seq)}
	if store.IsPostgres(location) {
		return append(stmts, fmt.Sprintf(`SELECT setval(pg_get_serial_sequence('changes', 'seq'), %d)`, seq))
	}
	return append(stmts, fmt.Sprintf(`UPDATE sqlite_sequence SET seq = %d WHERE name = 'changes'`, seq))
}

func classic(i int) store.Token {
	return store.Token{Hash: hashOf(i), Name: fmt.Sprintf("t%d", i), Kind: store.KindClassic, User: "bob", Scopes: []string{"repo"}, CreatedAt: t0}
}

func create(t *testing.T, db *store.DB, i int) int64 {
	t.Helper()
	tok, _, err := db.CreateToken(t.Context(), store.CreateTokenParams{Token: classic(i)})
	if err != nil {
		t.Fatal(err)
	}
	return tok.ID
}

func head(t *testing.T, db *store.DB) store.Change {
	t.Helper()
	all, err := db.Changes(t.Context(), 0, 1<<20)
	if err != nil || len(all) == 0 {
		t.Fatalf("reading the change log: %d changes, %v", len(all), err)
	}
	return all[len(all)-1]
}

// follow loads db into a new index and follows it until the test ends.
func follow(t *testing.T, db *store.DB, poll time.Duration) *Index {
	t.Helper()
	x := New()
	if err := x.Load(t.Context(), db); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); x.Follow(ctx, db, poll, nil) }()
	t.Cleanup(func() { cancel(); <-done })
	return x
}

// waitRevoked waits at most two polls for the index to hold token i as
// revoked.
func waitRevoked(t *testing.T, x *Index, i int, poll time.Duration) {
	t.Helper()
	deadline := time.Now().Add(2*poll + time.Second)
	for {
		if tok, ok := x.Token(hashOf(i)); ok && tok.Shape.Revoked {
			return
		}
		if time.Now().After(deadline) {
			tok, ok := x.Token(hashOf(i))
			t.Fatalf("token %d is still allowed (found %v, revoked %v) with the index at change %d after %d reloads", i, ok, ok && tok.Shape.Revoked, x.Seq(), x.Reloads())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const testPoll = 200 * time.Millisecond

// TestFollowRestoredBackup: a backup taken at change n is restored under a
// sidecar whose index is past n, and a token is revoked: that write takes a
// number the index already applied.
func TestFollowRestoredBackup(t *testing.T) { restoreBackends(t, testFollowRestoredBackup) }

func testFollowRestoredBackup(t *testing.T, location string) {
	db := openAtLocation(t, location)
	id1 := create(t, db, 1)
	create(t, db, 2)
	backup := head(t, db).Seq
	id3 := create(t, db, 3)
	create(t, db, 4)
	create(t, db, 5)
	x := follow(t, db, testPoll)
	if x.Seq() <= backup+1 {
		t.Fatalf("index at %d, backup at %d: want the index two changes past it", x.Seq(), backup)
	}

	// The restore: the tokens created after the backup and their changes
	// are gone, and the next change takes number backup+1.
	restore(t, location, append([]string{fmt.Sprintf(`DELETE FROM tokens WHERE id >= %d`, id3)}, rewindLog(location, backup)...)...)
	if err := db.RevokeToken(t.Context(), id1, "admin", "leaked"); err != nil {
		t.Fatal(err)
	}
	waitRevoked(t, x, 1, testPoll)
	if _, ok := x.Token(hashOf(3)); ok {
		t.Error("token 3, not in the backup, is still in the index")
	}
	if got := fmt.Sprint(x.LastReload()); !strings.Contains(got, "went backwards") || !errors.Is(x.LastReload(), store.ErrStoreReplaced) {
		t.Errorf("LastReload() = %q, want it to say the log went backwards", got)
	}

	// Written on past the index's old number, the log holds another change
	// at every number the index applied: noticed too.
	want := x.Reloads()
	for i := 6; head(t, db).Seq <= x.Seq()+1; i++ {
		create(t, db, i)
	}
	if x.Reloads() != want {
		t.Fatalf("reloads %d after ordinary writes, want %d", x.Reloads(), want)
	}
	at := x.Seq()
	restore(t, location, append([]string{`DELETE FROM tokens WHERE id > ` + fmt.Sprint(id1+1)}, rewindLog(location, backup)...)...)
	if err := db.RevokeToken(t.Context(), id1+1, "admin", "leaked"); err != nil {
		t.Fatal(err)
	}
	for i := 100; head(t, db).Seq < at+3; i++ {
		create(t, db, i) // the same kind of change, other keys: more than the index applied
	}
	waitRevoked(t, x, 2, testPoll)
	if x.Reloads() != want+1 {
		t.Errorf("reloads %d, want %d", x.Reloads(), want+1)
	}
}

// TestFollowRecreatedStore: the store is created anew (a dropped and
// recreated database) and given a world whose change log ends at the
// index's number, with the change there of the same record: only the
// store's id tells them apart.
func TestFollowRecreatedStore(t *testing.T) { restoreBackends(t, testFollowRecreatedStore) }

func testFollowRecreatedStore(t *testing.T, location string) {
	db := openAtLocation(t, location)
	for i := 1; i <= 4; i++ {
		create(t, db, i)
	}
	last := head(t, db)
	x := follow(t, db, testPoll)

	var fresh *store.DB
	if store.IsPostgres(location) {
		u, err := url.Parse(location)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(u.Path, "/")
		u.Path = "/postgres"
		raw(t, u.String(), `DROP DATABASE `+name+` WITH (FORCE)`, `CREATE DATABASE `+name)
		fresh = openAtLocation(t, location)
	} else {
		// A new file can be told by its inode (ErrFileChanged); a store
		// emptied in place and given a new id is the same case as a new
		// database.
		raw(t, location, `DELETE FROM requests`, `DELETE FROM tokens`, `DELETE FROM changes`, `DELETE FROM sqlite_sequence`,
			`UPDATE meta SET value = 'another' WHERE key = '`+store.MetaStoreID+`'`)
		fresh = db
	}
	id1 := create(t, fresh, 1)
	if err := fresh.RevokeToken(t.Context(), id1, "admin", "leaked"); err != nil {
		t.Fatal(err)
	}
	var pad []string
	for n := head(t, fresh).Seq; n < last.Seq-1; n++ {
		pad = append(pad, `INSERT INTO changes (entity, key) VALUES ('user', 'nobody')`)
	}
	pad = append(pad, fmt.Sprintf(`INSERT INTO changes (entity, key) VALUES ('%s', '%s')`, last.Entity, last.Key))
	raw(t, location, pad...)
	if got := head(t, fresh); got.Seq != last.Seq || got.Entity != last.Entity || got.Key != last.Key {
		t.Fatalf("the new store's log ends at %+v, want %+v", got, last)
	}
	waitRevoked(t, x, 1, testPoll)
	if got := fmt.Sprint(x.LastReload()); !strings.Contains(got, "created anew") {
		t.Errorf("LastReload() = %q, want it to say the store was created anew", got)
	}
}

func openAtLocation(t *testing.T, location string) *store.DB {
	t.Helper()
	db, err := store.Open(t.Context(), location)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestFollowRestoredSameRecord: a backup taken at change b is restored
// under an index at b+2, and written past b+2 so that the change there
// names the same record as the one the index applied (a token revoked
// before the restore is revoked again after it). The log neither went
// backwards nor holds another record at the index's number, and the store
// keeps its id: only the change's nonce, random per write, tells the two
// changes apart. Without it the index would read on from b+2 and miss the
// revocation at b+1. The index reads the log once everything was written,
// as a sidecar whose poll comes after the restore and the writes (cut off
// from the database meanwhile, or simply late) does.
func TestFollowRestoredSameRecord(t *testing.T) { restoreBackends(t, testFollowRestoredSameRecord) }

func testFollowRestoredSameRecord(t *testing.T, location string) {
	ctx := t.Context()
	db := openAtLocation(t, location)
	id1 := create(t, db, 1)
	id2 := create(t, db, 2)
	backup := head(t, db).Seq
	id3 := create(t, db, 3) // backup+1
	if err := db.RevokeToken(ctx, id1, "admin", "leaked"); err != nil {
		t.Fatal(err) // backup+2
	}
	before := head(t, db)
	if before.Seq != backup+2 || before.Entity != store.EntityToken || before.Key != fmt.Sprint(id1) {
		t.Fatalf("the log ends at %+v; want change %d of token %d", before, backup+2, id1)
	}
	x := New()
	if err := x.Load(ctx, db); err != nil {
		t.Fatal(err)
	}
	if x.Seq() != before.Seq {
		t.Fatalf("index at %d, want %d", x.Seq(), before.Seq)
	}

	// The restore: token 3 and the revocation of token 1 are gone, and the
	// next change takes number backup+1.
	raw(t, location, append([]string{fmt.Sprintf(`DELETE FROM tokens WHERE id >= %d`, id3),
		fmt.Sprintf(`UPDATE tokens SET revoked = FALSE WHERE id = %d`, id1)}, rewindLog(location, backup)...)...)
	if err := db.RevokeToken(ctx, id2, "admin", "leaked"); err != nil {
		t.Fatal(err) // backup+1: a number the index has passed
	}
	if err := db.RevokeToken(ctx, id1, "admin", "leaked again"); err != nil {
		t.Fatal(err) // backup+2: the same record as the index's change there
	}
	after := head(t, db)
	if after.Seq != before.Seq || after.Entity != before.Entity || after.Key != before.Key {
		t.Fatalf("the restored log ends at %+v; want %+v (the same record at the same number)", after, before)
	}
	if after.Nonce == before.Nonce {
		t.Fatalf("changes %d before and after the restore have the same nonce %d", after.Seq, after.Nonce)
	}
	if err := x.CatchUp(ctx, db); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{1, 2} {
		if tok, ok := x.Token(hashOf(i)); !ok || !tok.Shape.Revoked {
			t.Errorf("token %d: found %v, revoked %v; want it revoked", i, ok, ok && tok.Shape.Revoked)
		}
	}
	if _, ok := x.Token(hashOf(3)); ok {
		t.Error("token 3, not in the backup, is still in the index")
	}
	if x.Seq() != after.Seq {
		t.Errorf("index at %d, want %d", x.Seq(), after.Seq)
	}
	if x.Reloads() != 1 {
		t.Errorf("reloads %d, want 1", x.Reloads())
	}
	want := fmt.Sprintf("its change %d is of the same record, token %q, but not the same write", before.Seq, before.Key)
	if got := fmt.Sprint(x.LastReload()); !strings.Contains(got, want) || !errors.Is(x.LastReload(), store.ErrStoreReplaced) {
		t.Errorf("LastReload() = %q, want it to say %q", got, want)
	}
}

// TestFollowRestoredOlderBackup: a backup taken before schema version 4
// (no nonces) is restored under an index of this version. Its polls fail,
// rather than follow a log they cannot check, and the index fails closed
// at once (Current), well within its staleness bound: it may hold tokens
// the backup does not. Once a process of this version opens the store and
// migrates it, every change has a new nonce, and the index loads the store
// afresh and answers again.
func TestFollowRestoredOlderBackup(t *testing.T) { restoreBackends(t, testFollowRestoredOlderBackup) }

func testFollowRestoredOlderBackup(t *testing.T, location string) {
	ctx := t.Context()
	db := openAtLocation(t, location)
	id1 := create(t, db, 1)
	create(t, db, 2)
	x := New()
	x.SetMaxStaleness(time.Hour)
	if err := x.Load(ctx, db); err != nil {
		t.Fatal(err)
	}
	at := x.Seq()

	// The restore: the same records and log, at schema version 3.
	raw(t, location, `ALTER TABLE changes DROP COLUMN nonce`, `DELETE FROM schema_migrations WHERE version = 4`)
	err := x.CatchUp(ctx, db)
	t.Logf("CatchUp: %v", err) // the line a sidecar logs
	const want3 = "it is at schema version 3 and was at 4 when loaded"
	const migrate = "a process of this opa-pat version (schema version 4) must open it for writing"
	if !errors.Is(err, store.ErrStoreOlder) || !strings.Contains(err.Error(), want3) ||
		!strings.Contains(err.Error(), migrate) || !strings.Contains(err.Error(), "nonce") {
		t.Fatalf("CatchUp on a store at schema version 3 = %v; want store.ErrStoreOlder saying %q, %q and what failed (the nonce column)", err, want3, migrate)
	}
	for range 2 { // and again on the next poll
		if err := x.Current(time.Now()); !errors.Is(err, ErrStale) || !errors.Is(err, store.ErrStoreOlder) {
			t.Fatalf("Current() = %v within the staleness bound; want it to fail at once with ErrStale and store.ErrStoreOlder", err)
		}
		if err := x.StoreOlder(); !errors.Is(err, store.ErrStoreOlder) {
			t.Fatalf("StoreOlder() = %v", err)
		}
		if err := x.CatchUp(ctx, db); !errors.Is(err, store.ErrStoreOlder) {
			t.Fatalf("CatchUp again = %v; want store.ErrStoreOlder", err)
		}
	}
	writer := openAtLocation(t, location) // migrates it again
	if err := writer.RevokeToken(ctx, id1, "admin", "leaked"); err != nil {
		t.Fatal(err)
	}
	if err := x.CatchUp(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := x.Current(time.Now()); err != nil || x.StoreOlder() != nil {
		t.Errorf("after the migration: Current() = %v, StoreOlder() = %v; want both nil", err, x.StoreOlder())
	}
	if tok, ok := x.Token(hashOf(1)); !ok || !tok.Shape.Revoked {
		t.Errorf("token 1: found %v, revoked %v; want it revoked", ok, ok && tok.Shape.Revoked)
	}
	if x.Reloads() != 1 || x.Seq() != at+1 {
		t.Errorf("reloads %d, index at %d; want 1 reload, at %d", x.Reloads(), x.Seq(), at+1)
	}
	want := fmt.Sprintf("its change %d is of the same record", at)
	if got := fmt.Sprint(x.LastReload()); !strings.Contains(got, want) {
		t.Errorf("LastReload() = %q, want it to say %q", got, want)
	}
}
