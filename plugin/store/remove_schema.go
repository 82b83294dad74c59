package store

import (
	"context"
	"database/sql"
	"fmt"
)

// schemaObjects are what opa-pat's migrations create in a PostgreSQL
// database: its tables (their sequences, indexes and triggers go with them),
// then its function. TestRemoveCreatedSchema checks that nothing else is
// left.
var schemaObjects = []string{
	`DROP TABLE audit_events, requests, tokens, repositories, memberships, users, changes, meta, postgres_migrations, schema_migrations`,
	`DROP FUNCTION opa_pat_notify_changes()`,
}

// CreatedSchema reports whether opening this PostgreSQL store created its
// tables (the database held none of opa-pat's).
func (db *DB) CreatedSchema() bool { return db.pg != nil && db.pg.createdSchema }

// RemoveCreatedSchema removes the tables and function that opening this
// PostgreSQL store created (CreatedSchema), in one transaction under the
// write lock, so that a command that failed (store migrate) leaves the
// database as it found it: empty tables would make a later pg_restore
// without --clean fail, and look like a store to a sidecar. It removes
// nothing, and says so, when the store holds a record by then or its
// change log an entry (another process wrote to it meanwhile), or when it
// did not create them.
func (db *DB) RemoveCreatedSchema(ctx context.Context) error {
	if !db.CreatedSchema() {
		return fmt.Errorf("%s: opening it did not create its tables; nothing removed", RedactLocation(db.location))
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		counts, err := tableCounts(ctx, tx)
		if err != nil {
			return fmt.Errorf("counting its records: %w", err)
		}
		var changes int64
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM changes`).Scan(&changes); err != nil {
			return fmt.Errorf("counting its changes: %w", err)
		}
		if held := describeCounts(counts); held != "" || changes > 0 {
			if held == "" {
				held = fmt.Sprintf("%d changes", changes)
			}
			return fmt.Errorf("it holds records now (%s), written by another process: left in place", held)
		}
		for _, stmt := range schemaObjects {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("removing the tables it created: %w", err)
			}
		}
		return nil
	})
}
