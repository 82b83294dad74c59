package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// loadPostgres is Load for PostgreSQL, on pgx directly: rows come in
// PostgreSQL's binary format and are decoded in place, without
// database/sql's conversions (about 28 allocations per token otherwise).
// It reads the same statements in one REPEATABLE READ, READ ONLY
// transaction, and shares identical strings, lists and permission maps
// between tokens as the packed SQLite path does.
func (db *DB) loadPostgres(ctx context.Context, v Visitor) (seq int64, err error) {
	conn, err := db.rdb.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("beginning snapshot: %w", err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("unexpected driver connection %T", dc)
		}
		tx, err := sc.Conn().BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
		if err != nil {
			return fmt.Errorf("beginning snapshot: %w", err)
		}
		defer tx.Rollback(context.Background())
		seq, err = loadPostgresTx(ctx, tx, v)
		return err
	})
	return seq, err
}

// pgRow is one row of a binary-format result.
type pgRow [][]byte

func (r pgRow) text(i int) string { return string(r[i]) }

// shared returns column i as a string shared with every equal value read
// before; it allocates only for a value not seen yet.
func (r pgRow) shared(i int, sh *packedScanner) string {
	if v, ok := sh.strs[string(r[i])]; ok {
		return v
	}
	return sh.intern(string(r[i]))
}

// list returns column i decoded as a shared list (see packedScanner.list).
func (r pgRow) list(i int, sh *packedScanner) []string {
	if l, ok := sh.lists[string(r[i])]; ok {
		return l
	}
	return sh.list(string(r[i]))
}

// permissions returns column i decoded as a shared permission map.
func (r pgRow) permissions(i int, sh *packedScanner) map[string]string {
	if m, ok := sh.perms[string(r[i])]; ok {
		return m
	}
	return sh.permissions(string(r[i]))
}

func (r pgRow) int64(i int) (int64, error) {
	if len(r[i]) != 8 {
		return 0, fmt.Errorf("column %d: %d bytes for a bigint", i, len(r[i]))
	}
	return int64(binary.BigEndian.Uint64(r[i])), nil
}

// nullInt64 decodes a nullable bigint column; ok is false for NULL.
func (r pgRow) nullInt64(i int) (int64, bool, error) {
	if r[i] == nil {
		return 0, false, nil
	}
	n, err := r.int64(i)
	return n, true, err
}

// pgEach runs query in tx with every result column in binary format and
// calls fn for every row; the row is valid until fn returns.
func pgEach(ctx context.Context, tx pgx.Tx, query string, columns int, fn func(pgRow) error) error {
	formats := make(pgx.QueryResultFormats, columns)
	for i := range formats {
		formats[i] = pgx.BinaryFormatCode
	}
	rows, err := tx.Query(ctx, query, formats)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		raw := rows.RawValues()
		if len(raw) != columns {
			return fmt.Errorf("%d columns, want %d", len(raw), columns)
		}
		if err := fn(raw); err != nil {
			return err
		}
	}
	return rows.Err()
}

// pgSizesQuery is sizesQuery for PostgreSQL, whose tables have no row ids:
// users and memberships come from the planner's statistics (reltuples is
// -1 before a table was first analyzed: no estimate).
const pgSizesQuery = `SELECT (SELECT COALESCE(MAX(id), 0) FROM tokens), (SELECT COALESCE(MAX(id), 0) FROM requests),
	(SELECT GREATEST(reltuples, 0)::bigint FROM pg_class WHERE oid = 'users'::regclass),
	(SELECT GREATEST(reltuples, 0)::bigint FROM pg_class WHERE oid = 'memberships'::regclass)`

func loadPostgresTx(ctx context.Context, tx pgx.Tx, v Visitor) (seq int64, err error) {
	if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(seq), 0) FROM changes`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("reading change log: %w", err)
	}
	if v.Mark != nil {
		m := Mark{Seq: seq, Known: true}
		if err := tx.QueryRow(ctx, markQuery, seq, MetaStoreID).Scan(&m.Entity, &m.Key, &m.Nonce, &m.StoreID, &m.Schema); err != nil {
			return 0, fmt.Errorf("reading the change at %d and the store's id: %w", seq, err)
		}
		v.Mark(m)
	}
	var n [4]int64 // tokens, grants, users, memberships
	if v.Sizes != nil {
		if err := tx.QueryRow(ctx, pgSizesQuery).Scan(&n[0], &n[1], &n[2], &n[3]); err != nil {
			return 0, fmt.Errorf("estimating sizes: %w", err)
		}
		v.Sizes(Sizes{Tokens: int(n[0]), Grants: int(n[1]), Users: int(n[2]), Memberships: int(n[3])})
	}
	sh := newPackedScanner(int(n[2]))
	if v.User != nil {
		if err := pgEach(ctx, tx, `SELECT login, managed_by FROM users`, 2, func(r pgRow) error {
			return v.User(User{Login: r.text(0), ManagedBy: r.shared(1, sh)})
		}); err != nil {
			return 0, fmt.Errorf("loading users: %w", err)
		}
	}
	if v.Membership != nil {
		if err := pgEach(ctx, tx, `SELECT user_login, org, role FROM memberships`, 3, func(r pgRow) error {
			return v.Membership(Membership{User: r.text(0), Org: r.shared(1, sh), Role: r.shared(2, sh)})
		}); err != nil {
			return 0, fmt.Errorf("loading memberships: %w", err)
		}
	}
	if v.Repository != nil {
		if err := pgEach(ctx, tx, `SELECT owner, name, visibility FROM repositories`, 3, func(r pgRow) error {
			return v.Repository(Repository{Owner: r.shared(0, sh), Name: r.shared(1, sh), Visibility: r.shared(2, sh)})
		}); err != nil {
			return 0, fmt.Errorf("loading repositories: %w", err)
		}
	}
	if v.Token != nil {
		if err := pgEach(ctx, tx, `SELECT `+tokenColumns+` FROM tokens`, 14, func(r pgRow) error {
			t, err := pgToken(r, sh)
			if err != nil {
				return err
			}
			return v.Token(t)
		}); err != nil {
			return 0, fmt.Errorf("loading tokens: %w", err)
		}
	}
	if v.Grant != nil {
		query := postgresDialect.currentGrants
		if v.EveryRequest {
			// A scan of the primary key: 49-73 ms for 500,000 requests,
			// where DISTINCT ON sorted them on disk in 240-270 ms.
			query = `SELECT ` + grantColumns + ` FROM requests r ORDER BY r.id`
		}
		if err := pgEach(ctx, tx, query, 9, func(r pgRow) error {
			g, err := pgGrant(r, sh)
			if err != nil {
				return err
			}
			return v.Grant(g)
		}); err != nil {
			return 0, fmt.Errorf("loading grants: %w", err)
		}
	}
	return seq, nil
}

// pgToken decodes a row of tokenColumns.
func pgToken(r pgRow, sh *packedScanner) (Token, error) {
	id, err := r.int64(0)
	if err != nil {
		return Token{}, err
	}
	t := Token{
		ID:                  id,
		Name:                r.text(2),
		Kind:                r.shared(3, sh),
		User:                r.shared(4, sh),
		Scopes:              r.list(5, sh),
		ResourceOwner:       r.shared(6, sh),
		RepositorySelection: r.shared(7, sh),
		Repositories:        r.list(8, sh),
		Permissions:         r.permissions(9, sh),
	}
	if len(r[1]) != len(t.Hash) {
		return Token{}, fmt.Errorf("token %d: hash is %d bytes, want %d", id, len(r[1]), len(t.Hash))
	}
	copy(t.Hash[:], r[1])
	created, err := r.int64(10)
	if err != nil {
		return Token{}, fmt.Errorf("token %d: created_at: %w", id, err)
	}
	t.CreatedAt = fromNanos(created)
	if n, ok, err := r.nullInt64(11); err != nil {
		return Token{}, fmt.Errorf("token %d: expires_at: %w", id, err)
	} else if ok {
		t.ExpiresAt = fromNanos(n)
	}
	if len(r[12]) != 1 {
		return Token{}, fmt.Errorf("token %d: revoked: %d bytes for a boolean", id, len(r[12]))
	}
	t.Revoked = r[12][0] != 0
	if n, ok, err := r.nullInt64(13); err != nil {
		return Token{}, fmt.Errorf("token %d: last_used_at: %w", id, err)
	} else if ok {
		t.LastUsedAt = fromNanos(n)
	}
	return t, nil
}

// pgGrant decodes a row of grantColumns.
func pgGrant(r pgRow, sh *packedScanner) (Grant, error) {
	var g Grant
	var errs []error
	var created, updated int64
	for _, f := range []struct {
		dst *int64
		i   int
	}{{&g.ID, 0}, {&g.TokenID, 1}, {&created, 7}, {&updated, 8}} {
		n, err := r.int64(f.i)
		*f.dst = n
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return Grant{}, fmt.Errorf("grant: %w", err)
	}
	g.Org, g.State, g.Reviewer = r.shared(2, sh), r.shared(3, sh), r.shared(6, sh)
	review := r.text(5)
	g.Reason, g.ReviewReason = grantReason(r.text(4), review), review
	g.CreatedAt, g.UpdatedAt = fromNanos(created), fromNanos(updated)
	return g, nil
}
