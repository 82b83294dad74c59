package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// colKind is how a column's values travel between backends: SQLite keeps
// booleans as integers, PostgreSQL wants a boolean.
type colKind int

const (
	colText colKind = iota
	colInt
	colNullInt
	colBool
	colBlob
)

type copyColumn struct {
	name string
	kind colKind
}

// copyTable is a table that MigrateStore copies, with its columns in the
// order they are inserted. identity names the auto-incrementing column, if
// any: ids are copied as they are (requests and audit events refer to
// tokens by id, and so do grant keys in the change log), and PostgreSQL's
// sequence is moved past them.
type copyTable struct {
	name     string
	identity string
	columns  []copyColumn
	// rows, when set, is the SQL condition that chooses the rows a store
	// copies, counts and clears (the rest belong to the store itself).
	rows string
}

// from is the table with its rows condition, for a FROM or DELETE clause.
func (t copyTable) from() string {
	if t.rows == "" {
		return t.name
	}
	return t.name + ` WHERE ` + t.rows
}

// copyTables are every table of the schema except the change log and the
// migration records, parents before children. A new table needs a line here.
var copyTables = []copyTable{
	// How far a store's change log is pruned describes that log, not the
	// records, and the store's id names the store it is in: neither is
	// copied nor cleared.
	{name: "meta", columns: []copyColumn{{"key", colText}, {"value", colText}}, rows: `key NOT IN ('` + MetaChangesPrunedThrough + `', '` + MetaStoreID + `')`},
	{name: "users", columns: []copyColumn{{"login", colText}, {"managed_by", colText}}},
	{name: "memberships", columns: []copyColumn{{"user_login", colText}, {"org", colText}, {"role", colText}}},
	{name: "repositories", columns: []copyColumn{{"owner", colText}, {"name", colText}, {"visibility", colText}}},
	{name: "tokens", identity: "id", columns: []copyColumn{{"id", colInt}, {"hash", colBlob}, {"name", colText}, {"kind", colText},
		{"user_login", colText}, {"scopes", colText}, {"resource_owner", colText}, {"repository_selection", colText},
		{"repositories", colText}, {"permissions", colText}, {"created_at", colInt}, {"expires_at", colNullInt},
		{"revoked", colBool}, {"last_used_at", colNullInt}, {"packed", colText}}},
	{name: "requests", identity: "id", columns: []copyColumn{{"id", colInt}, {"token_id", colInt}, {"org", colText}, {"state", colText},
		{"justification", colText}, {"review_reason", colText}, {"reviewer", colText}, {"created_at", colInt}, {"updated_at", colInt}}},
	{name: "audit_events", identity: "id", columns: []copyColumn{{"id", colInt}, {"at", colInt}, {"actor", colText}, {"action", colText},
		{"org", colText}, {"token_id", colNullInt}, {"request_id", colNullInt}, {"reason", colText}, {"details", colText}}},
}

// changeKeys select the change-log entry of every record a sidecar indexes,
// so that a sidecar already following the target sees what a migration
// wrote or removed.
var changeKeys = []string{
	`SELECT '` + EntityUser + `', login FROM users`,
	`SELECT '` + EntityMembership + `', user_login || '/' || org FROM memberships`,
	`SELECT '` + EntityRepository + `', owner || '/' || name FROM repositories`,
	`SELECT '` + EntityToken + `', CAST(id AS TEXT) FROM tokens`,
	`SELECT DISTINCT '` + EntityGrant + `', CAST(token_id AS TEXT) || '/' || org FROM requests`,
}

// copyBatch is how many rows one INSERT carries: 14 columns × 500 rows
// stays well below both backends' limits on bound parameters.
const copyBatch = 500

// MigrateOptions tune MigrateStore.
type MigrateOptions struct {
	// Replace allows a target that holds records: they are removed, in the
	// same transaction, before the copy.
	Replace bool
}

// MigrateResult counts the rows copied, by table.
type MigrateResult struct {
	Rows map[string]int64 `json:"rows"`
}

// ErrSourceEmpty is returned when the source holds no records.
var ErrSourceEmpty = errors.New("the source store holds no records; check --from")

// ErrTargetNotEmpty is returned when the target holds records and
// MigrateOptions.Replace is false.
var ErrTargetNotEmpty = errors.New("the target store is not empty")

// MigrateStore copies every record of from (users, memberships,
// repositories, tokens by hash with their ids, requests with their history,
// audit events and meta) into to, in one transaction on to: all of it or
// nothing. It reads from one snapshot of from, refuses a target that holds
// records unless opts.Replace, refuses a record that holds what the write
// path refuses (checkRow: an error of kind ErrInvalid that names the record
// and field) or that breaks a rule import checks across records
// (checkSource, the same kind of error), and checks, before it commits, that every table of to holds
// as many rows as from's. The target's change log gets an
// entry for every record, so sidecars already following it catch up.
func MigrateStore(ctx context.Context, from, to *DB, opts MigrateOptions) (MigrateResult, error) {
	res := MigrateResult{Rows: map[string]int64{}}
	src, err := from.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true, Isolation: from.d.snapshot})
	if err != nil {
		return res, fmt.Errorf("reading the source: %w", err)
	}
	defer src.Rollback()
	if err := sameSchema(ctx, src, to); err != nil {
		return res, err
	}
	if err := knownColumns(ctx, src); err != nil {
		return res, err
	}
	// A source without records is a mistyped one (a new store made at the
	// wrong path): copying it would only empty a target with --replace.
	if counts, err := tableCounts(ctx, src); err != nil {
		return res, fmt.Errorf("counting the source's records: %w", err)
	} else if describeCounts(counts) == "" {
		return res, ErrSourceEmpty
	}
	err = to.write(ctx, func(dst *sql.Tx) error {
		counts, err := tableCounts(ctx, dst)
		if err != nil {
			return fmt.Errorf("counting the target's records: %w", err)
		}
		if nonEmpty := describeCounts(counts); nonEmpty != "" {
			if !opts.Replace {
				return fmt.Errorf("%w (%s); pass --replace to overwrite it", ErrTargetNotEmpty, nonEmpty)
			}
			if err := clearTarget(ctx, dst); err != nil {
				return err
			}
		}
		for _, t := range copyTables {
			n, err := copyRows(ctx, src, dst, t)
			if _, refused := errors.AsType[*Error](err); refused {
				return err // checkRow's, which names the record
			} else if err != nil {
				return fmt.Errorf("copying %s: %w", t.name, err)
			}
			res.Rows[t.name] = n
			if t.identity != "" && to.d.name == postgresDialect.name {
				if _, err := dst.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence('`+t.name+`', '`+t.identity+`'), COALESCE(MAX(`+t.identity+`), 0) + 1, false) FROM `+t.name); err != nil {
					return fmt.Errorf("moving the id sequence of %s: %w", t.name, err)
				}
			}
		}
		// Every row passed checkRow: now the rules across records.
		if err := checkSource(ctx, src, from.d); err != nil {
			if _, refused := errors.AsType[*Error](err); refused {
				return err
			}
			return fmt.Errorf("checking the source: %w", err)
		}
		for _, q := range changeKeys {
			if _, err := dst.ExecContext(ctx, `INSERT INTO changes (entity, key) `+q); err != nil {
				return fmt.Errorf("recording changes: %w", err)
			}
		}
		// Verify: the source's counts, from its snapshot, against what the
		// target holds now, before anything commits.
		want, err := tableCounts(ctx, src)
		if err != nil {
			return fmt.Errorf("counting the source's records: %w", err)
		}
		got, err := tableCounts(ctx, dst)
		if err != nil {
			return fmt.Errorf("counting the target's records: %w", err)
		}
		for _, t := range copyTables {
			if got[t.name] != want[t.name] || res.Rows[t.name] != want[t.name] {
				return fmt.Errorf("verifying %s: the source holds %d rows, %d were copied and the target holds %d", t.name, want[t.name], res.Rows[t.name], got[t.name])
			}
		}
		// A source read without locks (OpenReadOnly) was one state only if
		// nobody opened it meanwhile.
		return from.ReadConsistent()
	})
	if err != nil {
		return MigrateResult{}, err
	}
	return res, nil
}

// sameSchema refuses to copy between stores of different schema versions.
func sameSchema(ctx context.Context, src *sql.Tx, to *DB) error {
	var from, target int
	if err := src.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&from); err != nil {
		return fmt.Errorf("reading the source's schema version: %w", err)
	}
	if err := to.rdb.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&target); err != nil {
		return fmt.Errorf("reading the target's schema version: %w", err)
	}
	if from != target {
		return fmt.Errorf("the source's schema version is %d and the target's %d; open both with the same opa-pat first", from, target)
	}
	return nil
}

// knownColumns refuses to copy a table that has a column copyTables does
// not list: it would be lost on the way.
func knownColumns(ctx context.Context, q queryer) error {
	for _, t := range copyTables {
		rows, err := q.QueryContext(ctx, `SELECT * FROM `+t.name+` LIMIT 0`)
		if err != nil {
			return fmt.Errorf("reading the columns of %s: %w", t.name, err)
		}
		cols, err := rows.Columns()
		rows.Close()
		if err != nil {
			return fmt.Errorf("reading the columns of %s: %w", t.name, err)
		}
		for _, c := range cols {
			if !slices.ContainsFunc(t.columns, func(k copyColumn) bool { return k.name == c }) {
				return fmt.Errorf("table %s has a column %q that this opa-pat does not copy", t.name, c)
			}
		}
	}
	return nil
}

func tableCounts(ctx context.Context, q queryer) (map[string]int64, error) {
	counts := make(map[string]int64, len(copyTables))
	for _, t := range copyTables {
		var n int64
		if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+t.from()).Scan(&n); err != nil {
			return nil, fmt.Errorf("counting %s: %w", t.name, err)
		}
		counts[t.name] = n
	}
	return counts, nil
}

// Empty reports whether the store holds no record: no settings, users,
// memberships, repositories, tokens, requests or audit events (what a
// fresh store holds).
func (db *DB) Empty(ctx context.Context) (bool, error) {
	counts, err := tableCounts(ctx, db.rdb)
	if err != nil {
		return false, err
	}
	for _, n := range counts {
		if n > 0 {
			return false, nil
		}
	}
	return true, nil
}

// describeCounts names the tables that hold rows: "2 users, 5 tokens".
func describeCounts(counts map[string]int64) string {
	var parts []string
	for _, t := range copyTables {
		if n := counts[t.name]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, t.name))
		}
	}
	return strings.Join(parts, ", ")
}

// clearTarget removes every record of the target, children first, after
// logging a change for each indexed record so that followers drop them.
func clearTarget(ctx context.Context, dst *sql.Tx) error {
	for _, q := range changeKeys {
		if _, err := dst.ExecContext(ctx, `INSERT INTO changes (entity, key) `+q); err != nil {
			return fmt.Errorf("recording removals: %w", err)
		}
	}
	for i := len(copyTables) - 1; i >= 0; i-- {
		if _, err := dst.ExecContext(ctx, `DELETE FROM `+copyTables[i].from()); err != nil {
			return fmt.Errorf("clearing %s: %w", copyTables[i].name, err)
		}
	}
	return nil
}

// copyRows copies a table in primary-key order, copyBatch rows per INSERT.
func copyRows(ctx context.Context, src, dst *sql.Tx, t copyTable) (int64, error) {
	names := make([]string, len(t.columns))
	for i, c := range t.columns {
		names[i] = c.name
	}
	list := strings.Join(names, ", ")
	rows, err := src.QueryContext(ctx, `SELECT `+list+` FROM `+t.from()+` ORDER BY `+list)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var n int64
	batch := make([]any, 0, copyBatch*len(t.columns))
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		var q strings.Builder
		q.WriteString(`INSERT INTO ` + t.name + ` (` + list + `) VALUES `)
		for r := 0; r < len(batch)/len(t.columns); r++ {
			if r > 0 {
				q.WriteByte(',')
			}
			q.WriteByte('(')
			for c := range t.columns {
				if c > 0 {
					q.WriteByte(',')
				}
				q.WriteString("$" + strconv.Itoa(r*len(t.columns)+c+1))
			}
			q.WriteByte(')')
		}
		if _, err := dst.ExecContext(ctx, q.String(), batch...); err != nil {
			return err
		}
		batch = batch[:0]
		return nil
	}
	dest := make([]any, len(t.columns))
	cols := make(map[string]int, len(t.columns))
	for i, c := range t.columns {
		cols[c.name] = i
	}
	for rows.Next() {
		vals := make([]any, len(t.columns))
		for i, c := range t.columns {
			switch c.kind {
			case colText:
				dest[i] = new(string)
			case colInt:
				dest[i] = new(int64)
			case colNullInt:
				dest[i] = new(sql.NullInt64)
			case colBool:
				dest[i] = new(bool)
			case colBlob:
				dest[i] = new([]byte)
			}
		}
		if err := rows.Scan(dest...); err != nil {
			return n, err
		}
		for i, c := range t.columns {
			switch c.kind {
			case colText:
				vals[i] = *dest[i].(*string)
			case colInt:
				vals[i] = *dest[i].(*int64)
			case colNullInt:
				vals[i] = *dest[i].(*sql.NullInt64)
			case colBool:
				vals[i] = *dest[i].(*bool)
			case colBlob:
				vals[i] = *dest[i].(*[]byte)
			}
		}
		if err := checkRow(t, copiedRow{cols: cols, vals: vals}); err != nil {
			return n, err
		}
		batch = append(batch, vals...)
		n++
		if len(batch) == copyBatch*len(t.columns) {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return n, err
	}
	return n, flush()
}
