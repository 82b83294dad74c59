package store

import (
	"bufio"
	"bytes"
	"database/sql"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A SQLite file removed, replaced or emptied under an open store: the
// connections would go on reading the old file, which nothing updates, so
// Changes fails (the index goes stale) and Health says so. Putting the same
// file back heals it.
func TestFileChangedUnderTheStore(t *testing.T) {
	for _, tc := range []struct {
		note   string
		change func(t *testing.T, path string)
		want   string
	}{
		{note: "removed", want: "removed", change: func(t *testing.T, path string) {
			if err := os.Rename(path, path+".moved"); err != nil {
				t.Fatal(err)
			}
		}},
		{note: "replaced", want: "replaced by another file", change: func(t *testing.T, path string) {
			other := filepath.Join(filepath.Dir(path), "other.db")
			o, err := Open(t.Context(), other)
			if err != nil {
				t.Fatal(err)
			}
			o.Close()
			if err := os.Rename(path, path+".moved"); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(other, path); err != nil {
				t.Fatal(err)
			}
		}},
		{note: "emptied", want: "emptied", change: func(t *testing.T, path string) {
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.note, func(t *testing.T) {
			db := openTest(t)
			path := db.Location()
			if _, err := db.Changes(t.Context(), 0, 10); err != nil {
				t.Fatal(err)
			}
			if h := db.Health(); !h.Connected || h.LastError != "" {
				t.Fatalf("before: %+v", h)
			}
			tc.change(t, path)
			_, err := db.Changes(t.Context(), 0, 10)
			want := "the store file changed under the sidecar: " + path + " was " + tc.want +
				" after the sidecar opened it; restart the sidecar to serve from the file now at that path"
			if !errors.Is(err, ErrFileChanged) || err.Error() != want {
				t.Fatalf("Changes: %v\nwant %s", err, want)
			}
			h := db.Health()
			if h.Connected || h.LastError != want || !h.Since.Equal(t0.Add(time.Hour)) {
				t.Fatalf("Health: %+v", h)
			}
			if tc.note == "emptied" {
				return
			}
			// The same file back at its path: current again.
			if err := os.Rename(path+".moved", path); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Changes(t.Context(), 0, 10); err != nil {
				t.Fatalf("after restoring the file: %v", err)
			}
			if h := db.Health(); !h.Connected || h.LastError != "" || !h.Since.IsZero() {
				t.Fatalf("Health after restoring: %+v", h)
			}
		})
	}
}

func TestRedactLocation(t *testing.T) {
	for in, want := range map[string]string{
		"/var/lib/pat.db":                           "/var/lib/pat.db",
		"postgres://u:secret@db/pat":                "postgres://u:xxxxx@db/pat",
		"postgres://u@db/pat?password=secret&x=1":   "postgres://u@db/pat?password=xxxxx&x=1",
		"postgresql://u:secret@db/pat?sslmode=full": "postgresql://u:xxxxx@db/pat?sslmode=full",
		// A black-box run found these printed as written.
		"postgres://u@db/pat?sslmode=disable&password=S3cret%zzPw": "postgres://u@db/pat?sslmode=disable&password=xxxxx",
		"postgres://u@db/pat?PASSWORD=secret":                      "postgres://u@db/pat?PASSWORD=xxxxx",
		"postgres://u:S3cr tPw%zz@db/pat":                          "postgres://u:xxxxx@db/pat",
		"postgres://u:S3cret#x@db/pat":                             "postgres://u:xxxxx@db/pat",
		// sslpassword, the passphrase of the client's TLS key, was shown as written.
		"postgres://u:pw@db/pat?sslmode=disable&sslpassword=KeyPass_qq7": "postgres://u:xxxxx@db/pat?sslmode=disable&sslpassword=xxxxx",
		"postgres://u@db/pat?SSLPASSWORD=KeyPass%zz":                     "postgres://u@db/pat?SSLPASSWORD=xxxxx",
	} {
		if got := RedactLocation(in); got != want {
			t.Errorf("RedactLocation(%q) = %q; want %q", in, got, want)
		}
	}
	// libpq's key=value form, and a driver's message quoting it.
	for in, want := range map[string]string{
		"host=db user=u password=S3cretPw_xyz dbname=pat":        "host=db user=u password=xxxxx dbname=pat",
		"host=db password = 'it\\'s a b' dbname=pat":             "host=db password = xxxxx dbname=pat",
		"host=db password='a b' dbname=pat":                      "host=db password=xxxxx dbname=pat",
		"mysql://u:secret@db/pat":                                "mysql://u:xxxxx@db/pat",
		"cannot parse `postgres://u@db/x?password=S3cret%zz`: x": "cannot parse `postgres://u@db/x?password=xxxxx`: x",
		"host=db sslpassword=KeyPass_qq7 dbname=pat":             "host=db sslpassword=xxxxx dbname=pat",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q; want %q", in, got, want)
		}
	}
}

// An unparsable URL's error quotes no part of it.
func TestPgConfigQuotesNoPassword(t *testing.T) {
	for _, dsn := range []string{
		"postgres://bb_app:S3cr tPw%zz@127.0.0.1:5432/pat",
		"postgres://bb_app:S3cret#x@127.0.0.1:5432/pat",
		"postgres://bb_app:S3cret[x@127.0.0.1:5432/pat",
	} {
		_, _, err := pgConfig(dsn)
		if err == nil || strings.Contains(err.Error(), "S3cr") {
			t.Errorf("pgConfig(%q): %v", dsn, err)
		}
	}
}

// openWithState opens a store at path whose meta "state" is state; the
// test closes it.
func openWithState(t *testing.T, path, state string) *DB {
	t.Helper()
	db, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.SetMeta(t.Context(), "state", state); err != nil {
		t.Fatal(err)
	}
	return db
}

// A store's file replaced under it (a restore, a new store moved into
// place): when it closes, nothing of the old file may reach the new one.
// SQLite finds a WAL by name, and one left at the path is replayed onto the
// next file there by the next process that opens it.
func TestReplacedFileGetsNoOldWAL(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	path := filepath.Join(dir, "pat.db")
	a := openWithState(t, path, "old")
	// The replacement: a copy of the store, changed, moved into place.
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "restore.db")
	if err := os.WriteFile(other, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := Open(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.SetMeta(ctx, "state", "new"); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if err := os.Rename(other, path); err != nil {
		t.Fatal(err)
	}
	// The old store writes on (a last-use flush) and then closes.
	werr := a.SetMeta(ctx, "state", "old, written after the replacement")
	wal, _ := os.Stat(path + "-wal")
	t.Logf("write after the replacement: %v; wal: %v", werr, wal)
	if _, err := a.Changes(ctx, 0, 10); !errors.Is(err, ErrFileChanged) {
		t.Fatalf("Changes: %v", err)
	}
	a.Close()
	c, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, _, err := c.Meta(ctx, "state"); err != nil || got != "new" {
		t.Fatalf("the file at the path says %q (%v); want the replacement's \"new\"", got, err)
	}
}

// A store.path that names another application's SQLite file is refused
// before anything is written to it: no opa-pat table, no WAL mode.
func TestOpenRefusesAnotherApplicationsFile(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "app.db")
	other, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.ExecContext(ctx, `CREATE TABLE meta (k TEXT); CREATE TABLE orders (id INTEGER)`); err != nil {
		t.Fatal(err)
	}
	other.Close()
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	db, err := Open(ctx, path)
	if err == nil {
		db.Close()
		t.Fatal("Open took another application's file for a store")
	}
	want := "it is not an opa-pat store: it holds other tables (meta, orders) and no schema_migrations; give the store a file of its own"
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("Open: %v\nwant it to say %s", err, want)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("the other application's file changed")
	}
	// A store, closed and opened again, is the store's.
	store := filepath.Join(t.TempDir(), "we%ird#name.db")
	for range 2 {
		db, err := Open(ctx, store)
		if err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
}

// TestHelperHoldStore is not a test: TestReplacedFileInUseKeepsItsWAL runs
// the test binary with it to hold a store open in another process.
func TestHelperHoldStore(t *testing.T) {
	path := os.Getenv("OPA_PAT_TEST_HOLD_STORE")
	if path == "" {
		t.Skip("a helper process of TestReplacedFileInUseKeepsItsWAL")
	}
	db, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, _, err := db.Meta(t.Context(), "state"); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("holding\n")
	io.Copy(io.Discard, os.Stdin) // until the test closes stdin
}

// A process that opened the replacement while the old store still ran
// shares the WAL and shared-memory files it found at the path: the old
// store's Close must leave them, or the next process would get fresh ones
// and a view of the file apart from the holder's.
func TestReplacedFileInUseKeepsItsWAL(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	path := filepath.Join(dir, "pat.db")
	a := openWithState(t, path, "old")
	other := filepath.Join(dir, "restore.db")
	b, err := Open(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	if err := os.Rename(other, path); err != nil {
		t.Fatal(err)
	}
	holder := exec.Command(os.Args[0], "-test.run=^TestHelperHoldStore$")
	holder.Env = append(os.Environ(), "OPA_PAT_TEST_HOLD_STORE="+path)
	stdin, err := holder.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	holder.Stderr = os.Stderr
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	holding, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "holding" {
				close(holding)
			}
		}
	}()
	defer func() { stdin.Close(); <-done; holder.Wait() }()
	select {
	case <-holding:
	case <-time.After(10 * time.Second):
		t.Fatal("the holder did not open the store")
	}
	if _, err := a.Changes(ctx, 0, 10); !errors.Is(err, ErrFileChanged) {
		t.Fatalf("Changes: %v", err)
	}
	a.Close()
	if _, err := os.Stat(path + "-shm"); err != nil {
		t.Fatalf("the old store removed the shared memory the holder uses: %v", err)
	}
}
