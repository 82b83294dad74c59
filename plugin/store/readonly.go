package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrNoSchema reports a store opened for reading that holds no opa-pat
// schema: OpenReadOnly creates nothing.
var ErrNoSchema = errors.New("no store there: it holds no opa-pat tables")

// ErrReadOnly reports a write to a store that cannot be written: a SQLite
// file or directory this process may not write, or a store opened with
// OpenReadOnly.
var ErrReadOnly = errors.New("the store is read-only")

// OpenReadOnly opens an existing store for reading only. Nothing is
// created or written (but for the upgrade of an older schema, below), and
// no write lock is taken (a listing does not wait for an import), so it
// serves commands that only read, also on a SQLite file, or a directory,
// that this process may not write, and on a PostgreSQL role or server that
// only reads (a hot standby). Writes through the returned DB fail with
// ErrReadOnly.
//
// The store must be at this build's schema version (or a newer one whose
// marker admits it): this build reads no older layout. One that an older
// opa-pat made is upgraded first, as Open does, which needs write access:
// without it the error says so and what to do.
//
// A SQLite file that no process has open (no -wal file beside it) and that
// this process may not write is read without locks (SQLite's immutable
// mode), since reading it with locks would need files created beside it:
// ReadConsistent then tells whether another process opened it meanwhile.
func OpenReadOnly(ctx context.Context, location string) (*DB, error) {
	if location == "" {
		return nil, errors.New("store: no location given")
	}
	if err := CheckLocation(location); err != nil {
		return nil, err // it names the location
	}
	if IsPostgres(location) {
		db, err := openPostgresReadOnly(ctx, location)
		if err != nil {
			// Named as a file is (below), without its password.
			return nil, fmt.Errorf("opening store %q: %w", RedactURL(location), oneLineError{err})
		}
		db.notePrefixes(ctx)
		return db, nil
	}
	db, err := openSQLiteReadOnly(ctx, location)
	if err != nil {
		return nil, fmt.Errorf("opening store %q: %w", location, err)
	}
	db.notePrefixes(ctx)
	return db, nil
}

func openSQLiteReadOnly(ctx context.Context, path string) (*DB, error) {
	if strings.Contains(path, "?") || strings.HasPrefix(path, "file:") {
		return nil, errors.New("the path must not contain '?' or start with \"file:\"")
	}
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no store there: %w", err)
	}
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, errors.New("it is a directory")
	}
	db := &DB{location: path, d: sqliteDialect, now: time.Now, readOnly: true}
	var uri string
	if writable(path) == nil {
		// A connection that may write cleans up the -wal and -shm files it
		// shares when it is the last to close; this one never writes (and
		// sets no journal mode: the store's file keeps its own).
		uri = path + "?" + readParams
	} else {
		if db.unlocked, err = statStore(path); err != nil {
			return nil, err
		}
		uri = readURI(path, !db.unlocked.wal)
		if db.unlocked.wal {
			db.unlocked = nil // read with locks, through the -shm file
		}
	}
	if err := foreign(ctx, uri); err != nil {
		return nil, err
	}
	if db.rdb, err = sql.Open("sqlite", uri); err != nil {
		return nil, err
	}
	state, err := db.schemaState(ctx, "schema_migrations", "")
	if err != nil {
		db.Close()
		return nil, err
	}
	newer, err := state.newer("schema", len(migrations))
	if err != nil {
		db.Close()
		return nil, err
	}
	if newer {
		db.notice = state.notice("schema", len(migrations))
	} else if state.version != len(migrations) {
		db.Close()
		return upgradeForReading(ctx, path, state.version)
	}
	return db, nil
}

// upgradeForReading opens a store of an older schema version with Open,
// which upgrades it, for a reader: the returned DB refuses writes. The
// caller has refused a newer store that may not be used (schemaState.newer).
func upgradeForReading(ctx context.Context, location string, version int) (*DB, error) {
	if version == 0 {
		// No opa-pat tables (an empty file, a database that is not the
		// store's): a reader creates nothing, as for a file that is not there.
		return nil, ErrNoSchema
	}
	open := openSQLite
	if IsPostgres(location) {
		open = openPostgres
	}
	err := CheckWritable(location)
	var db *DB
	if err == nil {
		db, err = open(ctx, location)
	}
	switch {
	case errors.Is(err, ErrReadOnly):
		// The upgrade is the one write of a command that only reads, and
		// what to do is to make it once where writing is allowed: saying
		// that reading works here would be wrong until then.
		who := "as a user that may write it"
		if errors.Is(err, errReadOnlySession) {
			err = errReadOnlySessionCause
			who = "with a session that may write, on the primary, as a role that may migrate"
		}
		return nil, fmt.Errorf("its schema version %d is older than this opa-pat's (%d), and a store is upgraded before it is read, "+
			"which this command could not do: %w; upgrade it once by running this command, or any opa-pat command, %s; "+
			"then commands that only read work here", version, len(migrations), err, who)
	case err != nil:
		return nil, fmt.Errorf("its schema version %d is older than this opa-pat's (%d) and upgrading it failed: %w", version, len(migrations), err)
	}
	db.readOnly = true
	return db, nil
}

// schemaState reads what the store's table of migrations records, from one
// snapshot; the zero state for a database without it (an empty file). kind
// prefixes "schema" in messages ("PostgreSQL " for postgres_migrations).
func (db *DB) schemaState(ctx context.Context, table, kind string) (schemaState, error) {
	tx, err := db.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true, Isolation: db.d.snapshot})
	if err != nil {
		return schemaState{}, fmt.Errorf("reading %sschema version: %w", kind, err)
	}
	defer tx.Rollback()
	st, err := readSchemaState(ctx, tx, db.d, table)
	if isMissingTable(err) {
		return schemaState{}, nil
	}
	if err != nil {
		return schemaState{}, fmt.Errorf("reading %sschema version: %w", kind, err)
	}
	return st, nil
}

// readParams are the connection parameters of a reader of a store's
// SQLite file.
var readParams = fmt.Sprintf("_pragma=busy_timeout(%d)", busyTimeout.Milliseconds())

// readURI is a URI filename that opens path read-only, and without locks
// when immutable (SQLite then assumes that nobody writes the file). The
// driver decodes its escapes.
func readURI(path string, immutable bool) string {
	uri := "file:" + strings.NewReplacer("%", "%25", "#", "%23").Replace(path) + "?mode=ro&" + readParams
	if immutable {
		uri += "&immutable=1"
	}
	return uri
}

// fileState is what a SQLite file looked like when a reader opened it
// without locks.
type fileState struct {
	path string
	info os.FileInfo
	// wal is true when a -wal file lay beside it: a process has the file
	// open, or had it and did not close it cleanly.
	wal bool
}

func statStore(path string) (*fileState, error) {
	path = resolved(path)
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	_, err = os.Stat(path + "-wal")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return &fileState{path: path, info: info, wal: err == nil}, nil
}

// resolved is path with its symbolic links resolved, where SQLite keeps
// the -wal and -shm files of a store reached through a link (its unix VFS
// resolves the name it opens); path itself when it cannot be resolved (it
// does not exist yet).
func resolved(path string) string {
	if r, err := filepath.EvalSymlinks(path); err == nil {
		return r
	}
	return path
}

// ErrChangedWhileRead reports that a SQLite file read without locks was
// opened by another process while it was read: what was read may be torn.
var ErrChangedWhileRead = errors.New("another process opened the store while it was read without locks")

// ReadConsistent reports whether what db has read so far is one consistent
// state of the store. It always is, except for a SQLite file that
// OpenReadOnly read without locks: then another process may have written
// it meanwhile, and ReadConsistent fails with ErrChangedWhileRead when one
// opened it (a -wal file appeared) or changed it (its size or modification
// time moved) since it was opened. Call it after the reads and before
// using what they returned.
func (db *DB) ReadConsistent() error {
	if db.unlocked == nil {
		return nil
	}
	now, err := statStore(db.unlocked.path)
	if err == nil && !now.wal && os.SameFile(now.info, db.unlocked.info) && now.info.Size() == db.unlocked.info.Size() &&
		now.info.ModTime().Equal(db.unlocked.info.ModTime()) {
		return nil
	}
	return fmt.Errorf("%w (it is read-only to this process, and no process had it open, so it was read as it lay on disk); run the command again", ErrChangedWhileRead)
}

// ReadWithoutLocks reports whether db reads a SQLite file without locks
// (OpenReadOnly): its readers check ReadConsistent before they use what
// they read.
func (db *DB) ReadWithoutLocks() bool { return db.unlocked != nil }

// CheckWritable returns nil when this process may write the store at
// location, and otherwise an error wrapping ErrReadOnly that says why: a
// command that writes checks it before it opens the store, so that it fails
// before it reads or creates anything. It checks SQLite files only (a
// PostgreSQL server says for itself), and only what the file system says:
// a process running as root may write any file.
func CheckWritable(location string) error {
	if IsPostgres(location) {
		return nil
	}
	if err := writable(location); err != nil {
		return readOnlyError{location, err}
	}
	return nil
}

// readOnlyError names a store that cannot be written, and why. It is
// ErrReadOnly.
type readOnlyError struct {
	location string
	why      error
}

func (e readOnlyError) Error() string {
	return fmt.Sprintf("store %q is read-only: %v; nothing was written", e.location, e.why)
}

func (e readOnlyError) Unwrap() []error { return []error{ErrReadOnly, e.why} }

// writable says why this process may not write the SQLite store at path,
// or nil when it may (also when the file does not exist yet and its
// directory is writable). SQLite writes the file and, in WAL mode, a -wal
// and a -shm file beside it, which it creates unless they exist.
func writable(path string) error {
	path = resolved(path)
	dir := filepath.Dir(path)
	switch err := access(path); {
	case errors.Is(err, fs.ErrNotExist):
		if err := access(dir); err != nil {
			return fmt.Errorf("it does not exist, and its directory %q cannot be written (%s)", dir, why(err))
		}
		return nil
	case err != nil:
		return fmt.Errorf("the file cannot be written (%s)", why(err))
	}
	if err := access(dir); err != nil {
		for _, suffix := range companionSuffixes {
			if access(path+suffix) != nil {
				return fmt.Errorf("its directory %q cannot be written (%s), where SQLite keeps %s-wal and %s-shm beside the file",
					dir, why(err), filepath.Base(path), filepath.Base(path))
			}
		}
	}
	return nil
}

// why words a failed access check.
func why(err error) string {
	switch {
	case errors.Is(err, errReadOnlyFS):
		return "a read-only file system"
	case errors.Is(err, fs.ErrPermission):
		return "permission denied to this user"
	}
	return err.Error()
}

// sqliteReadOnly rewrites a SQLite error that a write to a read-only file
// caused (SQLITE_READONLY and its extended codes) to name the file and say
// why it cannot be written; other errors, and nil, pass as they are.
func sqliteReadOnly(path string, err error) error {
	var serr *sqlite.Error
	if !errors.As(err, &serr) || serr.Code()&0xff != sqlite3.SQLITE_READONLY {
		return err
	}
	reason := writable(path)
	if reason == nil {
		reason = serr
	}
	return readOnlyError{path, reason}
}

// isMissingTable reports whether err says that a table does not exist.
func isMissingTable(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "no such table") || strings.Contains(err.Error(), "SQLSTATE 42P01"))
}
