package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// markerColumn is the column of schema_migrations and postgres_migrations
// that records, with each migration, the oldest schema version whose
// opa-pat may read and write the store it made (compatibleFrom). An opa-pat
// released before it existed neither writes nor reads it: its rows hold
// NULL, or the column is absent, and the store has no marker.
const markerColumn = "compatible_from"

// versionsTable is the DDL of a table that records migrations: the shared
// ones (schema_migrations) or PostgreSQL's (postgres_migrations).
func versionsTable(table string) string {
	return `CREATE TABLE IF NOT EXISTS ` + table + ` (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL, ` + markerColumn + ` BIGINT)`
}

// schemaState is what a table of migrations records.
type schemaState struct {
	// version is the highest migration applied; 0 when there is none, or
	// no table.
	version int
	// compatibleFrom is the marker of that migration: the oldest schema
	// version whose opa-pat may read and write the store; 0 when the store
	// has none (an opa-pat before markers applied it).
	compatibleFrom int
	// hasColumn is set when the table has markerColumn.
	hasColumn bool
}

// readSchemaState reads what table records, in q's transaction: a store
// made before markers has no markerColumn, and a PostgreSQL transaction
// that asked for it would be aborted, so the column is looked up first.
func readSchemaState(ctx context.Context, q queryer, d dialect, table string) (schemaState, error) {
	var st schemaState
	var n int
	column := `SELECT COUNT(*) FROM pragma_table_info($1) WHERE name = '` + markerColumn + `'`
	if d.name == postgresDialect.name {
		column = `SELECT COUNT(*) FROM pg_attribute WHERE attrelid = to_regclass(CAST($1 AS text)) AND attname = '` + markerColumn + `' AND NOT attisdropped`
	}
	if err := q.QueryRowContext(ctx, column, table).Scan(&n); err != nil {
		return st, fmt.Errorf("reading the columns of %s: %w", table, err)
	}
	st.hasColumn = n > 0
	if !st.hasColumn {
		err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM `+table).Scan(&st.version)
		return st, err
	}
	var from sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT version, `+markerColumn+` FROM `+table+` ORDER BY version DESC LIMIT 1`).Scan(&st.version, &from)
	if errors.Is(err, sql.ErrNoRows) {
		return st, nil
	}
	if from.Valid && from.Int64 > 0 && from.Int64 <= int64(st.version) {
		st.compatibleFrom = int(from.Int64)
	}
	return st, err
}

// newer checks a store at st against an opa-pat that knows the first
// `known` migrations: it reports whether the store is newer and may still
// be used (its marker admits this opa-pat), and fails when it is newer and
// may not. what names the schema in messages ("schema", "PostgreSQL
// schema"). A store without a marker is refused with the message an
// opa-pat before markers gives.
func (st schemaState) newer(what string, known int) (bool, error) {
	if st.version <= known {
		return false, nil
	}
	err := fmt.Errorf("%s version %d is newer than this opa-pat supports (%d)", what, st.version, known)
	if st.compatibleFrom == 0 {
		return false, err
	}
	if st.compatibleFrom > known {
		return false, fmt.Errorf("%w; it needs an opa-pat that supports %s version %d or newer", err, what, st.compatibleFrom)
	}
	return true, nil
}

// notice says that a store at st, newer than an opa-pat that knows `known`
// migrations, is used as that opa-pat's version.
func (st schemaState) notice(what string, known int) string {
	return fmt.Sprintf("%s version %d is newer than this opa-pat supports (%d) and marked compatible with opa-pat from %s version %d: "+
		"using it as version %d, without migrating it; upgrade opa-pat to use the rest", what, st.version, known, what, st.compatibleFrom, known)
}

// SchemaNotice is empty unless the store's schema is newer than this
// opa-pat's and marked compatible with it: then it says so, for the log
// or standard error, since the store works as this version's and what the
// newer version added is left alone.
func (db *DB) SchemaNotice() string { return db.notice }

// migrateTable applies the migrations of ms that table does not record,
// each recorded with its marker, in tx (whose write lock makes concurrent
// openers take turns): all of them or none. A store newer than ms is left
// as it is when its marker admits this opa-pat (the notice is returned),
// and refused otherwise. kind prefixes the messages' "schema" and
// "migration" ("PostgreSQL " for postgres_migrations); apply runs one
// migration's statements.
func (db *DB) migrateTable(ctx context.Context, tx *sql.Tx, table, kind string, ms []migration, apply func(v int) error) (notice string, err error) {
	what := kind + "schema"
	st, err := readSchemaState(ctx, tx, db.d, table)
	if err != nil {
		return "", fmt.Errorf("reading %s version: %w", what, err)
	}
	if newer, err := st.newer(what, len(ms)); err != nil {
		return "", err
	} else if newer {
		return st.notice(what, len(ms)), nil
	}
	if st.version == len(ms) {
		return "", nil // no DDL: a role without CREATE uses the store
	}
	migrating := fmt.Sprintf("migrate the %s from version %d to %d", what, st.version, len(ms))
	if !st.hasColumn {
		// A store that an opa-pat before markers made: the marker is added
		// with the migration that first sets it. The column may be NULL,
		// as the rows such an opa-pat writes leave it, and that opa-pat
		// names the columns it inserts, so it may still record migrations.
		if _, err := tx.ExecContext(ctx, `ALTER TABLE `+table+` ADD COLUMN `+markerColumn+` BIGINT`); err != nil {
			return "", fmt.Errorf("adding %s.%s: %w", table, markerColumn, db.needsCreate(err, migrating))
		}
	}
	for v := st.version + 1; v <= len(ms); v++ {
		if err := apply(v); err != nil {
			return "", db.needsCreate(err, migrating)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO `+table+` (version, applied_at, `+markerColumn+`) VALUES ($1, $2, $3)`,
			v, db.now().UnixNano(), compatibleFrom(ms, v)); err != nil {
			return "", fmt.Errorf("recording %smigration %d: %w", kind, v, err)
		}
	}
	return "", nil
}

// joinNotices joins the notices of the shared schema and PostgreSQL's.
func joinNotices(a, b string) string {
	if a == "" || b == "" {
		return a + b
	}
	return a + "; " + b
}
