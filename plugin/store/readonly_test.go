package store

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// denyWrites makes access report that this process may not write the
// paths given (as a user other than root finds a file mode 0444 or a
// directory it does not own), for one test: tests run as root, which
// access(2) lets write anything. tests/readonly_test.go runs the binary as
// another user to check the real thing.
func denyWrites(t *testing.T, paths ...string) {
	t.Helper()
	saved := access
	t.Cleanup(func() { access = saved })
	access = func(path string) error {
		for _, p := range paths {
			if path == p {
				return syscall.EACCES
			}
		}
		return saved(path)
	}
}

// readOnlyStore is a SQLite store in a directory of its own holding bob's
// two tokens (importWorld), closed again: no process has it open.
func readOnlyStore(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pat.db")
	db, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := importJSON(t, db, importWorld); err != nil {
		t.Fatal(err)
	}
	db.Close()
	return path
}

func listedTokens(t *testing.T, db *DB) int {
	t.Helper()
	tokens, err := db.ListTokens(t.Context(), TokenFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return len(tokens)
}

// OpenReadOnly reads a store and writes nothing to it: writes fail with
// ErrReadOnly, and it takes no write lock, so a listing does not wait for a
// writer. A missing file is an error, not a new store.
func TestOpenReadOnly(t *testing.T) {
	ctx := t.Context()
	path := readOnlyStore(t)
	db, err := OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.ReadWithoutLocks() {
		t.Fatal("a store this process may write is read without locks")
	}
	if n := listedTokens(t, db); n != 2 {
		t.Fatalf("%d tokens; want 2", n)
	}
	if err := db.RevokeToken(ctx, 1, "test", ""); !errors.Is(err, ErrReadOnly) || err.Error() != "the store is read-only: "+path+" was opened for reading only" {
		t.Fatalf("RevokeToken = %v; want ErrReadOnly", err)
	}

	// A writer holds the write lock: the read-only store opens and reads
	// at once (Open would wait for the lock, busy_timeout, to migrate).
	w := openAt(t, path)
	tx, err := w.wdb.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('held', 'yes')`); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	again, err := OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if n := listedTokens(t, again); n != 2 || time.Since(start) > busyTimeout/2 {
		t.Fatalf("%d tokens after %s", n, time.Since(start))
	}

	missing := filepath.Join(t.TempDir(), "nope.db")
	if _, err := OpenReadOnly(ctx, missing); err == nil || !errors.Is(err, fs.ErrNotExist) ||
		err.Error() != `opening store "`+missing+`": no store there: stat `+missing+`: no such file or directory` {
		t.Fatalf("OpenReadOnly(missing) = %v", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenReadOnly created %s", missing)
	}
}

// A store an older opa-pat made is upgraded before it is read, as Open
// would; one this process may not write cannot be, and the error says so.
func TestOpenReadOnlyUpgrades(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "v2.db")
	openAtVersion(t, path, 2).Close()

	t.Run("read-only", func(t *testing.T) {
		denyWrites(t, path)
		if _, err := OpenReadOnly(ctx, path); !errors.Is(err, ErrReadOnly) || err.Error() != `opening store "`+path+
			`": its schema version 2 is older than this opa-pat's (4), and a store is upgraded before it is read, which this command could not do: store "`+path+
			`" is read-only: the file cannot be written (permission denied to this user); nothing was written; `+
			`upgrade it once by running this command, or any opa-pat command, as a user that may write it; then commands that only read work here` {
			t.Fatalf("OpenReadOnly(v2, read-only) = %v", err)
		}
	})
	db, err := OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if st, err := db.schemaState(ctx, "schema_migrations", ""); err != nil || st.version != 4 {
		t.Fatalf("schema version %d (%v); want 4", st.version, err)
	}
	if err := db.SetMeta(ctx, "k", "v"); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("SetMeta on the upgraded reader = %v; want ErrReadOnly", err)
	}
}

// A store this process may not write, that no process has open, is read
// without locks (reading it with them would create its -wal and -shm
// files), and creates nothing. ReadConsistent then tells whether another
// process opened it meanwhile. A store with a -wal file (a process has it
// open) is read with locks, and sees what that process committed.
func TestOpenReadOnlyWithoutLocks(t *testing.T) {
	ctx := t.Context()
	path := readOnlyStore(t)
	denyWrites(t, path, filepath.Dir(path))
	db, err := OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if !db.ReadWithoutLocks() {
		t.Fatal("read with locks")
	}
	if n := listedTokens(t, db); n != 2 {
		t.Fatalf("%d tokens; want 2", n)
	}
	if err := db.ReadConsistent(); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil || len(entries) != 1 {
		t.Fatalf("the directory holds %v (%v); want pat.db alone", entries, err)
	}

	// Another process opens the store and writes.
	w := openAt(t, path)
	if err := w.SetMeta(ctx, "written", "meanwhile"); err != nil {
		t.Fatal(err)
	}
	if err := db.ReadConsistent(); !errors.Is(err, ErrChangedWhileRead) {
		t.Fatalf("ReadConsistent = %v; want ErrChangedWhileRead", err)
	}

	// With the writer open (its -wal beside the file), a reader takes
	// locks and reads what it committed.
	locked, err := OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer locked.Close()
	if v, ok, err := locked.Meta(ctx, "written"); locked.ReadWithoutLocks() || !ok || v != "meanwhile" || err != nil {
		t.Fatalf("without locks %v; meta %q, %v, %v", locked.ReadWithoutLocks(), v, ok, err)
	}
	if err := locked.ReadConsistent(); err != nil {
		t.Fatal(err)
	}
}

// A store this process may not write can be the source of MigrateStore;
// read without locks, the copy commits only if nobody opened the source
// meanwhile.
func TestMigrateFromReadOnly(t *testing.T) {
	ctx := t.Context()
	path := readOnlyStore(t)
	denyWrites(t, path, filepath.Dir(path))
	src, err := OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst := openTest(t)
	if res, err := MigrateStore(ctx, src, dst, MigrateOptions{}); err != nil || res.Rows["tokens"] != 2 {
		t.Fatalf("MigrateStore = %+v, %v", res, err)
	}
	w := openAt(t, path)
	if err := w.SetMeta(ctx, "written", "meanwhile"); err != nil {
		t.Fatal(err)
	}
	other := openTest(t)
	if _, err := MigrateStore(ctx, src, other, MigrateOptions{}); !errors.Is(err, ErrChangedWhileRead) {
		t.Fatalf("MigrateStore from a source opened meanwhile = %v; want ErrChangedWhileRead", err)
	}
	if empty, err := other.Empty(ctx); err != nil || !empty {
		t.Fatalf("the target holds records after a refused copy (%v)", err)
	}
}

// CheckWritable says why a store cannot be written, naming the file; the
// SQLite errors of a write to a read-only file are rewritten to say the
// same.
func TestCheckWritable(t *testing.T) {
	path := readOnlyStore(t)
	dir := filepath.Dir(path)
	if err := CheckWritable(path); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		deny []string
		path string
		want string
	}{
		{[]string{path}, path, `store "` + path + `" is read-only: the file cannot be written (permission denied to this user); nothing was written`},
		{[]string{dir}, path, `store "` + path + `" is read-only: its directory "` + dir + `" cannot be written (permission denied to this user), where SQLite keeps pat.db-wal and pat.db-shm beside the file; nothing was written`},
		{[]string{dir}, filepath.Join(dir, "new.db"), `store "` + filepath.Join(dir, "new.db") + `" is read-only: it does not exist, and its directory "` + dir + `" cannot be written (permission denied to this user); nothing was written`},
	} {
		t.Run(tc.want, func(t *testing.T) {
			denyWrites(t, tc.deny...)
			if err := CheckWritable(tc.path); !errors.Is(err, ErrReadOnly) || err.Error() != tc.want {
				t.Fatalf("CheckWritable = %v; want %q", err, tc.want)
			}
		})
	}
	// The directory may be read-only when the -wal and -shm files exist
	// and may be written.
	w := openAt(t, path)
	if err := w.SetMeta(t.Context(), "k", "v"); err != nil {
		t.Fatal(err)
	}
	denyWrites(t, dir)
	if err := CheckWritable(path); err != nil {
		t.Fatalf("with the -wal and -shm files there: %v", err)
	}

	t.Run("a SQLite error", func(t *testing.T) {
		ro, err := sql.Open("sqlite", readURI(path, false))
		if err != nil {
			t.Fatal(err)
		}
		defer ro.Close()
		_, err = ro.ExecContext(context.Background(), `INSERT INTO meta (key, value) VALUES ('x', 'y')`)
		denyWrites(t, path)
		got := sqliteReadOnly(path, err)
		if want := `store "` + path + `" is read-only: the file cannot be written (permission denied to this user); nothing was written`; !errors.Is(got, ErrReadOnly) || got.Error() != want {
			t.Fatalf("sqliteReadOnly(%v) = %v; want %q", err, got, want)
		}
		if other := errors.New("x"); sqliteReadOnly(path, other) != other {
			t.Fatal("another error was rewritten")
		}
	})
}

// On PostgreSQL, OpenReadOnly migrates nothing and reads in read-only
// transactions, without the write lock: it reads a database in which
// nothing may be written (a hot standby, a role that may only read; here a
// database whose transactions default to read only), where Open fails.
func TestOpenReadOnlyPostgres(t *testing.T) {
	ctx := t.Context()
	dsn := testPostgresDSN(t)
	db := openAt(t, dsn)
	if _, err := importJSON(t, db, importWorld); err != nil {
		t.Fatal(err)
	}

	// The write lock is held: the reader does not wait for it.
	tx, err := db.wdb.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, pgWriteLock); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	ro, err := OpenReadOnly(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if n := listedTokens(t, ro); n != 2 || time.Since(start) > 2*time.Second {
		t.Fatalf("%d tokens after %s", n, time.Since(start))
	}
	if err := ro.RevokeToken(ctx, 1, "test", ""); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("RevokeToken = %v; want ErrReadOnly", err)
	}
	ro.Close()
	tx.Rollback()

	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.wdb.ExecContext(ctx, `ALTER DATABASE `+strings.TrimPrefix(u.Path, "/")+` SET default_transaction_read_only = on`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if w, err := Open(ctx, dsn); err == nil {
		w.Close()
		t.Fatal("Open succeeded on a database that may not be written")
	}
	ro, err = OpenReadOnly(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if n := listedTokens(t, ro); n != 2 {
		t.Fatalf("%d tokens; want 2", n)
	}
	if d, err := ro.Export(ctx); err != nil || len(d.Tokens) != 2 || len(d.Grants) != 1 {
		t.Fatalf("Export = %+v, %v", d, err)
	}
}

// A reader works with every target_session_attrs that a primary satisfies:
// its session turns read-only after pgx checked the server (read-write
// asks whether the session may write), and every transaction of it is
// still read only.
func TestOpenReadOnlyPostgresTargetSessionAttrs(t *testing.T) {
	ctx := t.Context()
	dsn := testPostgresDSN(t)
	db := openAt(t, dsn)
	if _, err := importJSON(t, db, importWorld); err != nil {
		t.Fatal(err)
	}
	for _, attrs := range []string{"any", "read-write", "primary", "prefer-standby"} {
		t.Run(attrs, func(t *testing.T) {
			ro, err := OpenReadOnly(ctx, dsn+"&target_session_attrs="+attrs)
			if err != nil {
				t.Fatalf("OpenReadOnly = %v", err)
			}
			defer ro.Close()
			if n := listedTokens(t, ro); n != 2 {
				t.Fatalf("%d tokens; want 2", n)
			}
			if d, err := ro.Export(ctx); err != nil || len(d.Tokens) != 2 {
				t.Fatalf("Export = %+v, %v", d, err)
			}
			// Not only write refuses: the server does, on every connection.
			for range PostgresMaxReadConns + 1 {
				if _, err := ro.rdb.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('x', 'y')`); err == nil || !strings.Contains(err.Error(), "SQLSTATE 25006") {
					t.Fatalf("INSERT through the reader = %v; want a read-only transaction's error", err)
				}
			}
		})
	}
	// A primary is no standby: pgx refuses it before the session turns
	// read-only.
	if ro, err := OpenReadOnly(ctx, dsn+"&target_session_attrs=standby"); err == nil {
		ro.Close()
		t.Fatal("OpenReadOnly with target_session_attrs=standby succeeded on a primary")
	}
}

// A reader creates no store: not in an empty SQLite file, nor in a
// PostgreSQL database without opa-pat's tables (a mistyped DSN).
func TestOpenReadOnlyCreatesNoSchema(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "empty.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if db, err := OpenReadOnly(ctx, path); !errors.Is(err, ErrNoSchema) {
		if db != nil {
			db.Close()
		}
		t.Errorf("OpenReadOnly of an empty file = %v; want ErrNoSchema", err)
	}
	if st, err := os.Stat(path); err != nil || st.Size() != 0 {
		t.Errorf("the empty file was written: %v", err)
	}
}

// A store reached through a symbolic link keeps its -wal and -shm files
// beside the file the link names, where SQLite puts them: a reader that may
// not write it finds a writer's -wal there and reads what the writer
// committed, with locks, not the file as it lies on disk.
func TestOpenReadOnlyThroughSymlink(t *testing.T) {
	ctx := t.Context()
	path := readOnlyStore(t)
	link := filepath.Join(t.TempDir(), "pat.db")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	denyWrites(t, path, filepath.Dir(path), link, filepath.Dir(link))
	w := openAt(t, path)
	if err := w.SetMeta(ctx, "written", "meanwhile"); err != nil {
		t.Fatal(err)
	}
	db, err := OpenReadOnly(ctx, link)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, ok, err := db.Meta(ctx, "written"); db.ReadWithoutLocks() || !ok || v != "meanwhile" || err != nil {
		t.Fatalf("without locks %v; meta %q, %v, %v: the writer's commit is not read", db.ReadWithoutLocks(), v, ok, err)
	}
}

// A store reached through a link in a directory this process may not write
// is writable when the file and the directory it lies in are.
func TestCheckWritableThroughSymlink(t *testing.T) {
	path := readOnlyStore(t)
	link := filepath.Join(t.TempDir(), "pat.db")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	denyWrites(t, filepath.Dir(link))
	if err := CheckWritable(link); err != nil {
		t.Fatalf("CheckWritable through a link = %v; want nil", err)
	}
	denyWrites(t, filepath.Dir(path))
	if err := CheckWritable(link); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("CheckWritable through a link to a directory it may not write = %v; want ErrReadOnly", err)
	}
}
