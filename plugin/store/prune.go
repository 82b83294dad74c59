package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// MetaChangesPrunedThrough holds the highest sequence number PruneChanges
// removed from the change log.
const MetaChangesPrunedThrough = "changes.pruned_through"

// ErrChangesPruned is returned by Changes when the change log no longer
// holds every change after the sequence number asked for: PruneChanges
// removed some that the reader has not applied, so following the log would
// skip them. The reader must load the store afresh (the index does).
var ErrChangesPruned = errors.New("the change log was pruned past the changes this reader has applied; " +
	"it must load the store afresh")

// PruneChanges removes all but the newest keep entries of the change log,
// which every change appends to and nothing else shrinks. It returns how
// many entries it removed and the sequence number through which the log is
// now pruned. keep must be at least 1: the newest entry stays, so the log's
// head, where a load starts following, is never lost.
//
// A sidecar whose index has not applied a removed change gets
// ErrChangesPruned instead of skipping it, and loads the whole store afresh
// (answering from the records it had meanwhile). Keep far more entries than
// a running sidecar can lag behind (it applies every change within a second
// or so): a load costs seconds of CPU and, while it runs, twice the index's
// memory.
func (db *DB) PruneChanges(ctx context.Context, keep int64) (removed, through int64, err error) {
	if keep < 1 {
		return 0, 0, fmt.Errorf("keep: want at least 1 change, got %d", keep)
	}
	err = db.write(ctx, func(tx *sql.Tx) error {
		var last int64
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM changes`).Scan(&last); err != nil {
			return fmt.Errorf("reading the change log's head: %w", err)
		}
		var err error
		if through, err = prunedThrough(ctx, tx); err != nil {
			return err
		}
		cutoff := last - keep
		if cutoff <= through {
			return nil
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM changes WHERE seq <= $1`, cutoff)
		if err != nil {
			return fmt.Errorf("pruning the change log: %w", err)
		}
		if removed, err = res.RowsAffected(); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
			MetaChangesPrunedThrough, strconv.FormatInt(cutoff, 10)); err != nil {
			return fmt.Errorf("recording how far the change log is pruned: %w", err)
		}
		through = cutoff
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	return removed, through, nil
}

// queryRower is a *sql.DB or a *sql.Tx.
type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// prunedThrough reads the sequence number through which the change log is
// pruned (0: never pruned).
func prunedThrough(ctx context.Context, q queryRower) (int64, error) {
	var v string
	err := q.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = $1`, MetaChangesPrunedThrough).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading how far the change log is pruned: %w", err)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("meta %s: %q is not a sequence number", MetaChangesPrunedThrough, v)
	}
	return n, nil
}

// Vacuum gives back the space that deleted rows left, after a prune. On
// SQLite it rewrites the database (VACUUM: the file shrinks to its live
// pages; it needs free disk of about the file's size while it runs and
// holds the write lock meanwhile, so other writers wait) and then folds
// the write-ahead log into the file and truncates it. On PostgreSQL it
// runs VACUUM on the change log, which lets its pages be reused (autovacuum
// would do the same later); the files do not shrink. It returns the size of
// the SQLite file before and after (0, 0 on PostgreSQL).
func (db *DB) Vacuum(ctx context.Context) (before, after int64, err error) {
	if db.pg != nil {
		return 0, 0, db.vacuumPostgres(ctx)
	}
	size := func() (int64, error) {
		fi, err := os.Stat(db.location)
		if err != nil {
			return 0, err
		}
		return fi.Size(), nil
	}
	// The file as it would be with its log folded in: checkpoint first.
	if _, err := db.wdb.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return 0, 0, fmt.Errorf("checkpointing the store: %w", err)
	}
	if before, err = size(); err != nil {
		return 0, 0, err
	}
	if _, err := db.wdb.ExecContext(ctx, `VACUUM`); err != nil {
		return 0, 0, fmt.Errorf("vacuuming the store: %w", err)
	}
	if _, err := db.wdb.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return 0, 0, fmt.Errorf("checkpointing the store: %w", err)
	}
	if after, err = size(); err != nil {
		return 0, 0, err
	}
	return before, after, nil
}

// ErrCannotVacuum reports a VACUUM that PostgreSQL would skip, or skipped:
// the role neither owns the table nor may otherwise vacuum it.
var ErrCannotVacuum = errors.New("the role may not vacuum the change log")

// vacuumPostgres runs VACUUM on the change log. PostgreSQL skips a table
// the role may not vacuum with only a WARNING, and the statement succeeds:
// so the role's right is checked first (owner of the table, or a member of
// its owner, the database's owner, a superuser, or on PostgreSQL 17 the
// MAINTAIN privilege), and a warning the server sends during the VACUUM
// fails it all the same.
func (db *DB) vacuumPostgres(ctx context.Context) error {
	var may bool
	var role, owner, dbOwner string
	var version int
	err := db.wdb.QueryRowContext(ctx, `SELECT current_user, pg_get_userbyid(c.relowner), pg_get_userbyid(d.datdba),
	current_setting('server_version_num')::int,
	r.rolsuper OR pg_has_role(c.relowner, 'USAGE') OR pg_has_role(d.datdba, 'USAGE')
FROM pg_class c, pg_database d, pg_roles r
WHERE c.oid = 'changes'::regclass AND d.datname = current_database() AND r.rolname = current_user`).Scan(&role, &owner, &dbOwner, &version, &may)
	if err != nil {
		return fmt.Errorf("vacuuming the change log: checking the role's right: %w", err)
	}
	if !may && version >= 170000 {
		// PostgreSQL 17's MAINTAIN privilege and pg_maintain role.
		if err := db.wdb.QueryRowContext(ctx, `SELECT has_table_privilege('changes', 'MAINTAIN')`).Scan(&may); err != nil {
			return fmt.Errorf("vacuuming the change log: checking the role's right: %w", err)
		}
	}
	if !may {
		return fmt.Errorf("%w: the role %s neither owns table changes (its owner is %s) nor owns the database (%s) nor is a superuser, "+
			"and PostgreSQL would skip it with only a warning; run --vacuum as %s, or leave the space to autovacuum", ErrCannotVacuum, role, owner, dbOwner, owner)
	}
	config := db.pg.config.Copy()
	var warnings []string
	var mu sync.Mutex
	config.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		if n.Severity == "WARNING" {
			mu.Lock()
			warnings = append(warnings, n.Message)
			mu.Unlock()
		}
	}
	conn, err := pgx.ConnectConfig(ctx, config)
	if err != nil {
		return fmt.Errorf("vacuuming the change log: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `VACUUM changes`); err != nil {
		return fmt.Errorf("vacuuming the change log: %w", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(warnings) > 0 {
		return fmt.Errorf("%w: PostgreSQL did not vacuum it: %s", ErrCannotVacuum, strings.Join(warnings, "; "))
	}
	return nil
}
