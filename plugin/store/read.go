package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/opa-pat/opa-pat/plugin/permissions"
)

var _ Reader = (*DB)(nil)

const tokenColumns = `id, hash, name, kind, user_login, scopes, resource_owner, repository_selection, repositories, permissions, created_at, expires_at, revoked, last_used_at`

// currentGrants selects the latest request of every (token, org): the
// current grant.
const grantColumns = `r.id, r.token_id, r.org, r.state, r.justification, r.review_reason, r.reviewer, r.created_at, r.updated_at`

const currentGrants = `SELECT ` + grantColumns + ` FROM requests r
WHERE r.id = (SELECT MAX(r2.id) FROM requests r2 WHERE r2.token_id = r.token_id AND r2.org = r.org)`

// sizesQuery estimates the records of a snapshot from the largest ids
// (index look-ups, where counting would read every row).
const sizesQuery = `SELECT (SELECT COALESCE(MAX(id), 0) FROM tokens), (SELECT COALESCE(MAX(id), 0) FROM requests),
	(SELECT COALESCE(MAX(rowid), 0) FROM users), (SELECT COALESCE(MAX(rowid), 0) FROM memberships)`

// Load streams every record to v from one read transaction (one snapshot)
// and returns the change-log sequence number of that snapshot. Records come
// in no guaranteed order. Lists and
// permission maps may be shared between the tokens it passes: treat them as
// read-only.
func (db *DB) Load(ctx context.Context, v Visitor) (seq int64, err error) {
	if db.pg != nil {
		seq, err := db.loadPostgres(ctx, v) // postgres_load.go
		return seq, db.needPrivilege(err, "SELECT", "")
	}
	tx, err := db.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true, Isolation: db.d.snapshot})
	if err != nil {
		return 0, fmt.Errorf("beginning snapshot: %w", err)
	}
	defer tx.Rollback()
	// The first read fixes the snapshot.
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM changes`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("reading change log: %w", err)
	}
	if v.Mark != nil {
		m, err := db.markAt(ctx, tx, seq)
		if err != nil {
			return 0, err
		}
		v.Mark(m)
	}
	var n Sizes
	if v.Sizes != nil {
		if err := tx.QueryRowContext(ctx, sizesQuery).Scan(&n.Tokens, &n.Grants, &n.Users, &n.Memberships); err != nil {
			return 0, fmt.Errorf("estimating sizes: %w", err)
		}
		v.Sizes(n)
	}
	if v.User != nil {
		if err := each(ctx, tx, `SELECT login, managed_by FROM users`, func(rows *sql.Rows) error {
			var u User
			if err := rows.Scan(&u.Login, &u.ManagedBy); err != nil {
				return err
			}
			return v.User(u)
		}); err != nil {
			return 0, fmt.Errorf("loading users: %w", err)
		}
	}
	if v.Membership != nil {
		if err := each(ctx, tx, `SELECT user_login, org, role FROM memberships`, func(rows *sql.Rows) error {
			var m Membership
			if err := rows.Scan(&m.User, &m.Org, &m.Role); err != nil {
				return err
			}
			return v.Membership(m)
		}); err != nil {
			return 0, fmt.Errorf("loading memberships: %w", err)
		}
	}
	if v.Repository != nil {
		if err := each(ctx, tx, `SELECT owner, name, visibility FROM repositories`, func(rows *sql.Rows) error {
			var r Repository
			if err := rows.Scan(&r.Owner, &r.Name, &r.Visibility); err != nil {
				return err
			}
			return v.Repository(r)
		}); err != nil {
			return 0, fmt.Errorf("loading repositories: %w", err)
		}
	}
	if db.d.packed {
		if err := loadPacked(ctx, tx, v, n.Users); err != nil {
			return 0, err
		}
		return seq, nil
	}
	if v.Token != nil {
		var sc tokenScanner
		if err := each(ctx, tx, `SELECT `+tokenColumns+` FROM tokens`, func(rows *sql.Rows) error {
			t, err := sc.scan(rows)
			if err != nil {
				return err
			}
			return v.Token(t)
		}); err != nil {
			return 0, fmt.Errorf("loading tokens: %w", err)
		}
	}
	if v.Grant != nil {
		if err := each(ctx, tx, currentGrants, func(rows *sql.Rows) error {
			g, err := scanGrant(rows)
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

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// each runs query and calls fn for every row.
func each(ctx context.Context, q queryer, query string, fn func(*sql.Rows) error, args ...any) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// tokenScanner scans token rows, reusing its scratch space between rows.
type tokenScanner struct {
	hash                               []byte
	scopes, repos, perms               string
	createdAt                          int64
	expiresAt, lastUsedAt              sql.NullInt64
	id                                 int64
	name, kind, user, owner, selection string
	revoked                            bool
}

type rowScanner interface{ Scan(dest ...any) error }

func (s *tokenScanner) scan(rows rowScanner) (Token, error) {
	if err := rows.Scan(&s.id, &s.hash, &s.name, &s.kind, &s.user, &s.scopes, &s.owner, &s.selection, &s.repos, &s.perms,
		&s.createdAt, &s.expiresAt, &s.revoked, &s.lastUsedAt); err != nil {
		return Token{}, err
	}
	t, err := s.token()
	if err != nil {
		return Token{}, fmt.Errorf("token %d: %w", s.id, err)
	}
	return t, nil
}

// token is the token of the columns s holds.
func (s *tokenScanner) token() (Token, error) {
	t := Token{
		ID:                  s.id,
		Name:                s.name,
		Kind:                s.kind,
		User:                s.user,
		ResourceOwner:       s.owner,
		RepositorySelection: s.selection,
		CreatedAt:           fromNanos(s.createdAt),
		ExpiresAt:           fromNullNanos(s.expiresAt),
		Revoked:             s.revoked,
		LastUsedAt:          fromNullNanos(s.lastUsedAt),
	}
	t.Scopes, t.Repositories, t.Permissions = splitList(s.scopes), splitList(s.repos), decodePermissions(s.perms)
	if len(s.hash) != len(t.Hash) {
		return Token{}, fmt.Errorf("hash is %d bytes, want %d", len(s.hash), len(t.Hash))
	}
	copy(t.Hash[:], s.hash)
	return t, nil
}

func scanGrant(rows rowScanner) (Grant, error) {
	var g Grant
	var justification, review string
	var created, updated int64
	if err := rows.Scan(&g.ID, &g.TokenID, &g.Org, &g.State, &justification, &review, &g.Reviewer, &created, &updated); err != nil {
		return Grant{}, err
	}
	g.Reason, g.ReviewReason = grantReason(justification, review), review
	g.CreatedAt = fromNanos(created)
	g.UpdatedAt = fromNanos(updated)
	return g, nil
}

// grantReason is the reason kept with a grant: the reviewer's when the
// review gave one, the requester's justification otherwise.
func grantReason(justification, review string) string {
	if review != "" {
		return review
	}
	return justification
}

// rowCountsQuery counts the rows of every table Load reads, with the change
// log's last number, in one statement: one snapshot on both backends (a
// PostgreSQL statement sees one even at READ COMMITTED).
const rowCountsQuery = `SELECT (SELECT COALESCE(MAX(seq), 0) FROM changes),
	(SELECT COUNT(*) FROM users), (SELECT COUNT(*) FROM memberships), (SELECT COUNT(*) FROM repositories),
	(SELECT COUNT(*) FROM tokens), (SELECT COUNT(*) FROM requests)`

// RowCounts counts the rows of the tables Load reads (Reader.RowCounts).
func (db *DB) RowCounts(ctx context.Context) (RowCounts, error) {
	var c RowCounts
	if err := db.rdb.QueryRowContext(ctx, rowCountsQuery).Scan(&c.Seq, &c.Users, &c.Memberships, &c.Repositories, &c.Tokens, &c.Requests); err != nil {
		return RowCounts{}, fmt.Errorf("counting the store's rows: %w", db.needPrivilege(err, "SELECT", ""))
	}
	return c, nil
}

// Changes returns at most limit change-log entries with Seq > after, or
// ErrChangesPruned when some of them were pruned (PruneChanges).
func (db *DB) Changes(ctx context.Context, after int64, limit int) ([]Change, error) {
	return db.ChangesSince(ctx, Mark{Seq: after}, limit)
}

// ChangesSince is Changes after m.Seq that, when m is Known, also checks
// that the store is the one m was read from (ErrStoreReplaced): that its
// id is m's and that its log still holds m's change at m.Seq, the same
// write (its nonce) and not only the same record. The check costs no
// statement of its own: the log is read from m.Seq on, and the store's id
// is read with how far the log is pruned.
func (db *DB) ChangesSince(ctx context.Context, m Mark, limit int) ([]Change, error) {
	if limit <= 0 {
		return nil, nil
	}
	if db.file != nil {
		// What the old file holds is no longer the store (ErrFileChanged).
		if err := db.file.check(db.now()); err != nil {
			return nil, err
		}
	}
	after := m.Seq
	var out []Change
	var at *Change // the change at after, when the log holds it
	err := each(ctx, db.rdb, `SELECT seq, entity, key, nonce FROM changes WHERE seq >= $1 ORDER BY seq LIMIT $2`, func(rows *sql.Rows) error {
		var c Change
		if err := rows.Scan(&c.Seq, &c.Entity, &c.Key, &c.Nonce); err != nil {
			return err
		}
		if c.Seq == after {
			at = &c
		} else {
			out = append(out, c)
		}
		return nil
	}, after, limit+1)
	if err != nil {
		return nil, olderSchema(ctx, db.rdb, m, fmt.Errorf("reading change log: %w", db.needPrivilege(err, "SELECT", "changes")))
	}
	if len(out) > limit {
		out = out[:limit]
	}
	next := len(out) > 0 && out[0].Seq == after+1
	if next && !m.Known {
		return out, nil // the next change is there: none was pruned
	}
	// Read after the changes: a prune that committed before them shows here.
	through, id, err := logMeta(ctx, db.rdb)
	if err != nil {
		return nil, db.needPrivilege(err, "SELECT", "meta")
	}
	if m.Known {
		switch {
		case id != m.StoreID && m.StoreID == "":
			return nil, fmt.Errorf("%w (it has an id, %q, and had none when loaded: created anew, or given its id since by a newer opa-pat)", ErrStoreReplaced, id)
		case id != m.StoreID:
			return nil, fmt.Errorf("%w (its id is %q, the one loaded had %q: a store created anew)", ErrStoreReplaced, id, m.StoreID)
		case after > 0 && at == nil && len(out) == 0:
			return nil, fmt.Errorf("%w (its change log ends before change %d, the last one applied: the log went backwards, as when a backup is restored)", ErrStoreReplaced, after)
		case at == nil && after > 0 && through < after:
			return nil, fmt.Errorf("%w (its change log no longer holds change %d, the last one applied, and was not pruned past it)", ErrStoreReplaced, after)
		case at != nil && (at.Entity != m.Entity || at.Key != m.Key):
			return nil, fmt.Errorf("%w (its change %d is of %s %q, the one applied was of %s %q: the log was rewritten, as when a backup is restored)",
				ErrStoreReplaced, after, at.Entity, at.Key, m.Entity, m.Key)
		case at != nil && at.Nonce != m.Nonce:
			return nil, fmt.Errorf("%w (its change %d is of the same record, %s %q, but not the same write: its nonce is %d, the one applied had %d; "+
				"the log was rewritten, as when a backup is restored and written to)", ErrStoreReplaced, after, at.Entity, at.Key, at.Nonce, m.Nonce)
		}
	}
	if !next && through > after {
		return nil, fmt.Errorf("%w (changes through %d removed, read after %d)", ErrChangesPruned, through, after)
	}
	return out, nil
}

// markAt reads the store's Mark at seq: the change there and the store's id.
func (db *DB) markAt(ctx context.Context, q queryRower, seq int64) (Mark, error) {
	m := Mark{Seq: seq, Known: true}
	if err := q.QueryRowContext(ctx, markQuery, seq, MetaStoreID).Scan(&m.Entity, &m.Key, &m.Nonce, &m.StoreID, &m.Schema); err != nil {
		return Mark{}, fmt.Errorf("reading the change at %d and the store's id: %w", seq, err)
	}
	return m, nil
}

// WakeInterval is how often Wake polls SQLite's data_version.
const WakeInterval = 100 * time.Millisecond

// Wake polls PRAGMA data_version on a connection of its own every
// WakeInterval and signals when another connection committed. The channel
// holds at most one pending signal and is closed when ctx ends.
func (db *DB) Wake(ctx context.Context) <-chan struct{} {
	if db.pg != nil {
		return db.wakePostgres(ctx)
	}
	ch := make(chan struct{}, 1)
	go func() {
		defer close(ch)
		var conn *sql.Conn
		defer func() {
			if conn != nil {
				conn.Close()
			}
		}()
		var last int64 = -1
		tick := time.NewTicker(WakeInterval)
		defer tick.Stop()
		for {
			if conn == nil {
				c, err := db.rdb.Conn(ctx)
				if err == nil {
					conn = c
				}
			}
			if conn != nil {
				var v int64
				if err := conn.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v); err != nil {
					// Signal anyway: the reader re-reads the change log, which
					// is always safe, and the connection is opened again.
					conn.Close()
					conn = nil
					signal(ch)
				} else if v != last {
					if last != -1 {
						signal(ch)
					}
					last = v
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return ch
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// User reads one user.
func (db *DB) User(ctx context.Context, login string) (User, bool, error) {
	u := User{Login: login}
	err := db.rdb.QueryRowContext(ctx, `SELECT managed_by FROM users WHERE login = $1`, login).Scan(&u.ManagedBy)
	u, ok, err := pointResult(u, err, "user", login)
	return u, ok, db.needPrivilege(err, "SELECT", "users")
}

// Spelling returns how the store spells a user's or an organization's
// login, compared without regard to case as GitHub compares logins (the
// policy's index folds case too): the lower-case form when the store has it
// or has no such name, else the store's own (the first in byte order, when
// it has several). Names typed in another case (a CLI flag, an admin API
// path) then reach the records they name, also in a store whose import kept
// mixed case.
func (db *DB) Spelling(ctx context.Context, login string) (string, error) {
	lower := strings.ToLower(login)
	// The usual store spells every name in lower case: the names' own
	// indexes find it, and only a name it does not have goes on to the
	// lower-case indexes.
	var held bool
	if err := db.rdb.QueryRowContext(ctx, spellingHeld, lower).Scan(&held); err != nil {
		return "", fmt.Errorf("looking up %q: %w", login, err)
	}
	if held {
		return lower, nil
	}
	var found [4]sql.NullString
	if err := db.rdb.QueryRowContext(ctx, db.d.spellingFirst, lower).Scan(&held, &found[0], &found[1], &found[2], &found[3]); err != nil {
		return "", fmt.Errorf("looking up %q: %w", login, err)
	}
	spelt := ""
	for _, f := range found {
		if f.Valid && (spelt == "" || f.String < spelt) {
			spelt = f.String
		}
	}
	if held || spelt == "" {
		return lower, nil
	}
	return spelt, nil
}

// spellingHeld says whether the store holds a name as given (in lower
// case) where the names' own indexes find it.
const spellingHeld = `SELECT EXISTS (SELECT 1 FROM users WHERE login = $1)
	OR EXISTS (SELECT 1 FROM repositories WHERE owner = $1)
	OR EXISTS (SELECT 1 FROM requests WHERE org = $1)`

// spellingFirst says whether the store holds a name given in lower case
// where only the lower-case indexes of schema migration 3 find it
// (memberships by organization, tokens by resource owner), and finds in
// each table the first spelling of the name in byte order (NULL when it
// has none): each from one entry of a lower-case index, however many rows
// share the name.
const spellingFirst = `SELECT
	EXISTS (SELECT 1 FROM memberships WHERE lower(org) = $1 AND org{{BINARY}} = $1)
		OR EXISTS (SELECT 1 FROM tokens WHERE lower(resource_owner) = $1 AND resource_owner{{BINARY}} = $1),
	(SELECT login FROM users WHERE lower(login) = $1 ORDER BY login{{BINARY}} LIMIT 1),
	(SELECT org FROM memberships WHERE lower(org) = $1 ORDER BY org{{BINARY}} LIMIT 1),
	(SELECT owner FROM repositories WHERE lower(owner) = $1 ORDER BY owner{{BINARY}} LIMIT 1),
	(SELECT resource_owner FROM tokens WHERE lower(resource_owner) = $1 ORDER BY resource_owner{{BINARY}} LIMIT 1)`

// Membership reads one membership.
func (db *DB) Membership(ctx context.Context, user, org string) (Membership, bool, error) {
	m := Membership{User: user, Org: org}
	err := db.rdb.QueryRowContext(ctx, `SELECT role FROM memberships WHERE user_login = $1 AND org = $2`, user, org).Scan(&m.Role)
	m, ok, err := pointResult(m, err, "membership", user+"/"+org)
	return m, ok, db.needPrivilege(err, "SELECT", "memberships")
}

// Repository reads one repository.
func (db *DB) Repository(ctx context.Context, owner, name string) (Repository, bool, error) {
	r := Repository{Owner: owner, Name: name}
	err := db.rdb.QueryRowContext(ctx, `SELECT visibility FROM repositories WHERE owner = $1 AND name = $2`, owner, name).Scan(&r.Visibility)
	r, ok, err := pointResult(r, err, "repository", owner+"/"+name)
	return r, ok, db.needPrivilege(err, "SELECT", "repositories")
}

// Token reads one token by id.
func (db *DB) Token(ctx context.Context, id int64) (Token, bool, error) {
	var sc tokenScanner
	t, err := sc.scan(db.rdb.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE id = $1`, id))
	t, ok, err := pointResult(t, err, "token", strconv.FormatInt(id, 10))
	return t, ok, db.needPrivilege(err, "SELECT", "tokens")
}

// TokenByHash reads one token by the SHA-256 of its raw form.
func (db *DB) TokenByHash(ctx context.Context, hash [32]byte) (Token, bool, error) {
	var sc tokenScanner
	t, err := sc.scan(db.rdb.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE hash = $1`, hash[:]))
	t, ok, err := pointResult(t, err, "token", "by hash")
	return t, ok, db.needPrivilege(err, "SELECT", "tokens")
}

// Grant reads the current grant of a token for an organization.
func (db *DB) Grant(ctx context.Context, tokenID int64, org string) (Grant, bool, error) {
	g, err := scanGrant(db.rdb.QueryRowContext(ctx, `SELECT `+grantColumns+` FROM requests r
WHERE r.token_id = $1 AND r.org = $2 ORDER BY r.id DESC LIMIT 1`, tokenID, org))
	g, ok, err := pointResult(g, err, "grant", strconv.FormatInt(tokenID, 10)+"/"+org)
	return g, ok, db.needPrivilege(err, "SELECT", "requests")
}

func pointResult[T any](v T, err error, entity, key string) (T, bool, error) {
	var zero T
	if errors.Is(err, sql.ErrNoRows) {
		return zero, false, nil
	}
	if err != nil {
		// A token's id as it is (reading token 23), a name quoted.
		if _, nerr := strconv.ParseInt(key, 10, 64); nerr == nil {
			return zero, false, fmt.Errorf("reading %s %s: %w", entity, key, err)
		}
		return zero, false, fmt.Errorf("reading %s %q: %w", entity, key, err)
	}
	return v, true, nil
}

// splitList decodes a comma-separated list; "" is an empty (nil) list.
func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func joinList(l []string) string { return strings.Join(l, ",") }

// decodePermissions decodes "name=level,name=level", with GitHub's names
// in place of the earlier names a store may hold (permissions.Normalize).
func decodePermissions(s string) map[string]string {
	if s == "" {
		return nil
	}
	m := make(map[string]string, strings.Count(s, ",")+1)
	for s != "" {
		var pair string
		pair, s, _ = strings.Cut(s, ",")
		k, v, _ := strings.Cut(pair, "=")
		m[k] = v
	}
	return permissions.Normalize(m)
}

// encodePermissions encodes permissions sorted by name.
func encodePermissions(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(m[k])
	}
	return b.String()
}

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

func fromNullNanos(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return fromNanos(n.Int64)
}

func nanos(t time.Time) int64 { return t.UnixNano() }

// nullNanos maps the zero time ("never") to NULL.
func nullNanos(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixNano(), Valid: true}
}
