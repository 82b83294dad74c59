package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
)

// MetaStoreID holds a random id written once, when the store is created or
// first opened (for writing) by a build that knows it. A backup restored
// keeps it; a store created anew (a dropped and recreated database, a new
// file) gets another. It is neither copied nor cleared by MigrateStore.
const MetaStoreID = "store.id"

// ErrStoreReplaced is returned by ChangesSince when the store is not the one
// the reader loaded: its change log ends before the change the reader last
// applied (a backup restored), holds another change at that number, or the
// store's id changed (a store created anew). Following it would skip
// changes: the reader must load the store afresh (the index does).
var ErrStoreReplaced = errors.New("the store is not the one this reader loaded; it must load the store afresh")

// ErrStoreOlder is returned by ChangesSince when the store's schema is at
// an older version than the one the reader loaded: a backup taken before an
// upgrade was restored under it. Its change log cannot be checked (the
// nonces of migration 4 are missing) nor, often, read: the reader must not
// answer from what it loaded (it holds records the store may not), and
// cannot load it either until an opa-pat of this version opens the store
// for writing, which migrates it (the index then loads it afresh).
var ErrStoreOlder = errors.New("the store's schema is older than the one this reader loaded")

// Mark is where a reader is in the change log, and which store it read: the
// last change it applied and the store's id. Known is false for a Mark that
// only holds a sequence number: nothing about the store is checked then.
type Mark struct {
	Seq     int64
	Entity  string // of the change at Seq ("" when Seq is 0)
	Key     string
	Nonce   int64  // of the change at Seq (0 when Seq is 0)
	StoreID string // MetaStoreID; "" when the store has none
	// Schema is the store's schema version (schema_migrations) when read.
	Schema int
	Known  bool
}

// After is the Mark of the last of changes, read from the same store as m.
func (m Mark) After(c Change) Mark {
	m.Seq, m.Entity, m.Key, m.Nonce = c.Seq, c.Entity, c.Key, c.Nonce
	return m
}

// markQuery reads the change at a sequence number, the store's id and its
// schema version: primary-key look-ups in one statement.
const markQuery = `SELECT COALESCE((SELECT entity FROM changes WHERE seq = $1), ''),
	COALESCE((SELECT key FROM changes WHERE seq = $1), ''),
	COALESCE((SELECT nonce FROM changes WHERE seq = $1), 0),
	COALESCE((SELECT value FROM meta WHERE key = $2), ''),
	` + schemaVersionQuery

// schemaVersionQuery is the store's schema version as a sub-select.
const schemaVersionQuery = `(SELECT COALESCE(MAX(version), 0) FROM schema_migrations)`

// olderSchema is called when reading the change log after m failed with
// readErr: it returns an ErrStoreOlder error when the store's schema is now
// older than m's (a backup from before an upgrade restored), and readErr
// otherwise. Only a failed read pays for the look-up: an idle poll costs
// what it did.
func olderSchema(ctx context.Context, q queryer, m Mark, readErr error) error {
	if !m.Known || m.Schema == 0 {
		return readErr
	}
	var v int
	if err := q.QueryRowContext(ctx, `SELECT `+schemaVersionQuery).Scan(&v); err != nil || v >= m.Schema {
		return readErr
	}
	return fmt.Errorf("%w: it is at schema version %d and was at %d when loaded (a backup taken before an upgrade restored?), "+
		"so its change log cannot be followed (%w); a process of this opa-pat version (schema version %d) must open it for writing "+
		"(any command that writes, the CLI's included) to migrate it, and the index then loads it afresh",
		ErrStoreOlder, v, m.Schema, readErr, len(migrations))
}

// ensureStoreID writes MetaStoreID unless the store has one, in the
// caller's (migration) transaction. A store that has one is only read, so
// that a role that may only read it (a sidecar's, docs/postgres.md "Roles
// and privileges") opens it.
func (db *DB) ensureStoreID(ctx context.Context, tx *sql.Tx) error {
	var have int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM meta WHERE key = $1`, MetaStoreID).Scan(&have); err != nil {
		return fmt.Errorf("reading the store's id: %w", db.needPrivilege(err, "SELECT", "meta"))
	}
	if have > 0 {
		return nil
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("making the store's id: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`,
		MetaStoreID, hex.EncodeToString(b[:])); err != nil {
		return fmt.Errorf("recording the store's id: %w", db.needPrivilege(err, "INSERT", "meta"))
	}
	return nil
}

// logMeta reads how far the change log is pruned (0: never) and the
// store's id in one statement.
func logMeta(ctx context.Context, q queryer) (through int64, id string, err error) {
	err = each(ctx, q, `SELECT key, value FROM meta WHERE key IN ($1, $2)`, func(rows *sql.Rows) error {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return err
		}
		switch k {
		case MetaStoreID:
			id = v
		case MetaChangesPrunedThrough:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fmt.Errorf("meta %s: %q is not a sequence number", MetaChangesPrunedThrough, v)
			}
			through = n
		}
		return nil
	}, MetaChangesPrunedThrough, MetaStoreID)
	if err != nil {
		return 0, "", fmt.Errorf("reading the change log's meta: %w", err)
	}
	return through, id, nil
}
