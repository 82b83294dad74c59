package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the embedded backend

	"github.com/opa-pat/opa-pat/plugin/token"
)

// busyTimeout is how long a statement waits for another process's write lock.
const busyTimeout = 10 * time.Second

// DB is a token store. It is safe for concurrent use, and several processes
// (the CLI and running sidecars) may open the same store at once.
type DB struct {
	location string
	d        dialect
	// rdb serves reads: deferred transactions, any number of connections,
	// each a consistent snapshot in WAL mode.
	rdb *sql.DB
	// wdb serves writes: one connection whose transactions begin IMMEDIATE,
	// so a writer takes the write lock up front and waits (busy_timeout)
	// instead of failing when it would upgrade a read lock.
	wdb *sql.DB
	// now is the clock; tests replace it.
	now func() time.Time
	// pg is set for a PostgreSQL store (postgres.go).
	pg *pgState
	// file is the SQLite file opened (file.go); nil for PostgreSQL.
	file *fileWatch
	// readOnly is set by OpenReadOnly: wdb is nil and write fails.
	readOnly bool
	// unlocked is set when OpenReadOnly read a SQLite file without locks
	// (readonly.go): what it was like when opened.
	unlocked *fileState
	// notice is SchemaNotice's: set when the store's schema is newer than
	// this build's and marked compatible with it.
	notice string
}

// Open opens the store at location, creating it and its schema when absent
// and applying pending migrations. Location is a file path (SQLite).
func Open(ctx context.Context, location string) (*DB, error) {
	if location == "" {
		return nil, errors.New("store: no location given")
	}
	if err := CheckLocation(location); err != nil {
		return nil, err // it names the location
	}
	if IsPostgres(location) {
		db, err := openPostgres(ctx, location)
		if err != nil {
			// Named as a file is (below), without its password.
			return nil, fmt.Errorf("opening store %q: %w", RedactURL(location), oneLineError{err})
		}
		db.notePrefixes(ctx)
		return db, nil
	}
	db, err := openSQLite(ctx, location)
	if errors.As(err, new(readOnlyError)) {
		return nil, err // it names the store
	}
	if err != nil {
		return nil, fmt.Errorf("opening store %q: %w", location, err)
	}
	db.notePrefixes(ctx)
	return db, nil
}

// notePrefixes tells the process the token prefixes this store issues, so
// that a token of a custom prefix written into a field (CheckPlain), an
// error message (token.Quote) or a log line is recognised as one even when
// lower-cased, as GitHub's are. A store whose meta cannot be read notes
// nothing: GitHub's prefixes and the checksum still apply.
func (db *DB) notePrefixes(ctx context.Context) {
	if p, err := db.Prefixes(ctx); err == nil {
		token.NotePrefixes(p)
	}
}

func openSQLite(ctx context.Context, path string) (*DB, error) {
	// A plain path (not a file: URI): the driver strips its parameters after
	// '?' and SQLite takes the rest literally, '%' and '#' included.
	if strings.Contains(path, "?") || strings.HasPrefix(path, "file:") {
		return nil, errors.New("the path must not contain '?' or start with \"file:\"")
	}
	dir := filepath.Dir(path)
	if st, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("directory %q: %w", dir, err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("%q is not a directory", dir)
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return nil, errors.New("it is a directory")
	}
	if st, err := os.Stat(path); err == nil && st.Size() > 0 {
		if err := foreign(ctx, readURI(path, false)); err != nil {
			return nil, sqliteReadOnly(path, err)
		}
	}
	rdb, err := sql.Open("sqlite", path+"?"+sqliteParams)
	if err != nil {
		return nil, err
	}
	wdb, err := sql.Open("sqlite", path+"?"+sqliteParams+"&_txlock=immediate")
	if err != nil {
		rdb.Close()
		return nil, err
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetConnMaxIdleTime(0)
	db := &DB{location: path, d: sqliteDialect, rdb: rdb, wdb: wdb, now: time.Now}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, sqliteReadOnly(path, err)
	}
	// The file exists now (migrate wrote its schema): remember which it is.
	if db.file, err = newFileWatch(path); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// sqliteParams are the connection parameters of a store's SQLite file.
var sqliteParams = fmt.Sprintf("_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_pragma=temp_store(MEMORY)",
	busyTimeout.Milliseconds())

// foreign refuses an SQLite file that holds another application's tables
// (a mistyped store.path): opening it as the store would switch it to WAL
// and add opa-pat's tables to it. It looks through a read-only connection
// to uri (readURI), which changes nothing. A file with opa-pat's
// schema_migrations, or no tables at all, is the store's.
func foreign(ctx context.Context, uri string) error {
	ro, err := sql.Open("sqlite", uri)
	if err != nil {
		return err
	}
	defer ro.Close()
	var tables []string
	err = each(ctx, ro, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`, func(rows *sql.Rows) error {
		var name string
		if err := rows.Scan(&name); err != nil {
			return err
		}
		tables = append(tables, name)
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading its tables: %w", err)
	}
	if len(tables) == 0 || slices.Contains(tables, "schema_migrations") {
		return nil
	}
	if len(tables) > 5 {
		tables = append(tables[:5], "...")
	}
	return fmt.Errorf("it is not an opa-pat store: it holds other tables (%s) and no schema_migrations; give the store a file of its own", strings.Join(tables, ", "))
}

// Location is where the store lives, as given to Open.
func (db *DB) Location() string { return db.location }

// Close closes the store.
func (db *DB) Close() error {
	err := db.rdb.Close()
	if db.wdb != nil {
		err = errors.Join(err, db.wdb.Close())
	}
	if db.file != nil {
		// SQLite leaves its WAL beside a file that moved while open: drop it
		// unless the file at the path is still this store's.
		db.file.dropOrphans()
	}
	return err
}

// SchemaVersion is the number of migrations this build knows.
func SchemaVersion() int { return len(migrations) }

func (db *DB) migrate(ctx context.Context) error {
	// PostgreSQL's migratePostgres created it, under the write lock and only
	// when missing.
	if db.pg == nil {
		if _, err := db.wdb.ExecContext(ctx, versionsTable("schema_migrations")); err != nil {
			return fmt.Errorf("creating schema_migrations: %w", err)
		}
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		notice, err := db.migrateTable(ctx, tx, "schema_migrations", "", migrations, func(v int) error {
			if _, err := tx.ExecContext(ctx, db.d.ddl(migrations[v-1].sql)); err != nil {
				return fmt.Errorf("applying migration %d: %w", v, err)
			}
			if v == packedMigration && db.d.packed {
				// Pack the tokens written before the column existed.
				if _, err := tx.ExecContext(ctx, `UPDATE tokens SET packed = `+immutablePacked+` WHERE packed = ''`); err != nil {
					return fmt.Errorf("applying migration %d: packing tokens: %w", v, err)
				}
			}
			return nil
		})
		db.notice = notice
		if err != nil {
			return err
		}
		return db.ensureStoreID(ctx, tx)
	})
}

// write runs fn in one write transaction: all of it commits or none.
func (db *DB) write(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
	if db.readOnly {
		return fmt.Errorf("%w: %s was opened for reading only", ErrReadOnly, RedactLocation(db.location))
	}
	if db.pg == nil {
		defer func() { err = sqliteReadOnly(db.location, err) }()
	} else {
		// A session that turned read-only after the store was opened (a
		// primary demoted to a standby, a role or database altered).
		defer func() {
			if err != nil && !errors.Is(err, ErrReadOnly) && pgCode(err) == sqlstateReadOnly {
				err = fmt.Errorf("%w: %s: %w", ErrReadOnly, readOnlySessionWhy, err)
			}
		}()
	}
	if db.file != nil {
		// A SQLite file replaced under the store: writing on would add the
		// old file's frames to a WAL that SQLite finds by name, and that the
		// new file's processes may share.
		if err := db.file.check(db.now()); err != nil {
			return err
		}
	}
	tx, err := db.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	if db.d.writeLock != "" {
		if _, err := tx.ExecContext(ctx, db.d.writeLock); err != nil {
			return errors.Join(fmt.Errorf("taking the write lock: %w", err), ignoreDone(tx.Rollback()))
		}
	}
	if err := fn(tx); err != nil {
		// A statement the role may not run, which fn did not explain:
		// a role that writes needs these on every table.
		err = db.needPrivilege(err, "SELECT, INSERT, UPDATE and DELETE", "")
		return errors.Join(err, ignoreDone(tx.Rollback()))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	return nil
}

func ignoreDone(err error) error {
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return err
}

// logChange appends one entry to the change log, in the caller's transaction.
func logChange(ctx context.Context, tx execer, entity, key string) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO changes (entity, key) VALUES ($1, $2)`, entity, key); err != nil {
		return fmt.Errorf("recording change of %s %q: %w", entity, key, err)
	}
	return nil
}

// Meta keys.
const (
	// MetaSettings holds the JSON of data.pat.settings that a running
	// sidecar recorded when its bundle activated.
	MetaSettings = "settings"
	// MetaClassicPrefix and MetaFineGrainedPrefix hold the token prefixes
	// of this store, when they are not GitHub's.
	MetaClassicPrefix     = "token_prefix.classic"
	MetaFineGrainedPrefix = "token_prefix.fine_grained"
)

// Meta returns the value of a meta key; ok is false when it is unset.
func (db *DB) Meta(ctx context.Context, key string) (value string, ok bool, err error) {
	err = db.rdb.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = $1`, key).Scan(&value)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("reading meta %q: %w", key, db.needPrivilege(err, "SELECT", "meta"))
	}
	return value, true, nil
}

// SetMeta sets a meta key.
func (db *DB) SetMeta(ctx context.Context, key, value string) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
		if err != nil {
			return fmt.Errorf("writing meta %q: %w", key, db.needPrivilege(err, "INSERT and UPDATE", "meta"))
		}
		return nil
	})
}

// Settings returns the settings JSON a running sidecar recorded; nil when
// none was recorded.
func (db *DB) Settings(ctx context.Context) ([]byte, error) {
	v, ok, err := db.Meta(ctx, MetaSettings)
	if err != nil || !ok {
		return nil, err
	}
	return []byte(v), nil
}

// SetSettings records the settings JSON of the active bundle: a sidecar's
// copy of what its signed bundle holds, which the bundle's revision
// accounts for, so no audit event (RecordSettings records one).
//
// Settings the store already holds are not written again: a fleet's
// sidecars run one bundle, and the first records it for all, so the others
// need no right to write (docs/postgres.md "Roles and privileges").
func (db *DB) SetSettings(ctx context.Context, settings []byte) error {
	if have, ok, err := db.Meta(ctx, MetaSettings); err == nil && ok && have == string(settings) {
		return nil
	}
	return db.SetMeta(ctx, MetaSettings, string(settings))
}

// RecordSettings records settings JSON given by someone (the CLI's store
// settings FILE), with a settings.record audit event in the same
// transaction, as every other write someone makes: actor is who, and the
// event's details hold the SHA-256 of the settings recorded (sha256) and
// of those they replace (previous_sha256, null when there were none).
func (db *DB) RecordSettings(ctx context.Context, settings []byte, actor string) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		var previous any
		var old string
		err := tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = $1`, MetaSettings).Scan(&old)
		switch {
		case err == nil:
			previous = sha256Hex([]byte(old))
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("reading meta %q: %w", MetaSettings, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
			MetaSettings, string(settings)); err != nil {
			return fmt.Errorf("writing meta %q: %w", MetaSettings, err)
		}
		return db.audit(ctx, tx, AuditEvent{Actor: actor, Action: ActionSettingsRecord,
			Details: map[string]any{"sha256": sha256Hex(settings), "previous_sha256": previous}})
	})
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
