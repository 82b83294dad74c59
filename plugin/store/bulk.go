package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
)

// BulkWriter inserts records inside one BulkInsert transaction with prepared
// statements. Records must be new (no upserts) and valid: it checks nothing,
// which is what makes it fast. It is meant for generated data (benchmarks,
// tests), not for user input; use Import for that.
type BulkWriter struct {
	ctx                                             context.Context
	tx                                              *sql.Tx
	user, membership, repository, token, grant, log *sql.Stmt
}

// BulkInsert runs fn with a BulkWriter in one write transaction: all of it
// commits or none. Every record also goes to the change log.
func (db *DB) BulkInsert(ctx context.Context, fn func(w *BulkWriter) error) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		w := &BulkWriter{ctx: ctx, tx: tx}
		for _, s := range []struct {
			stmt **sql.Stmt
			q    string
		}{
			{&w.user, `INSERT INTO users (login, managed_by) VALUES ($1, $2)`},
			{&w.membership, `INSERT INTO memberships (user_login, org, role) VALUES ($1, $2, $3)`},
			{&w.repository, `INSERT INTO repositories (owner, name, visibility) VALUES ($1, $2, $3)`},
			{&w.token, `INSERT INTO tokens (hash, name, kind, user_login, scopes, resource_owner, repository_selection, repositories, permissions, created_at, expires_at, revoked, last_used_at, packed)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id`},
			{&w.grant, `INSERT INTO requests (token_id, org, state, justification, review_reason, reviewer, created_at, updated_at)
VALUES ($1, $2, $3, $4, '', $5, $6, $7) RETURNING id`},
			{&w.log, `INSERT INTO changes (entity, key) VALUES ($1, $2)`},
		} {
			stmt, err := tx.PrepareContext(ctx, s.q)
			if err != nil {
				return fmt.Errorf("preparing bulk insert: %w", err)
			}
			defer stmt.Close()
			*s.stmt = stmt
		}
		return fn(w)
	})
}

func (w *BulkWriter) change(entity, key string) error {
	_, err := w.log.ExecContext(w.ctx, entity, key)
	return err
}

// User inserts a user.
func (w *BulkWriter) User(u User) error {
	if _, err := w.user.ExecContext(w.ctx, u.Login, u.ManagedBy); err != nil {
		return fmt.Errorf("user %q: %w", u.Login, err)
	}
	return w.change(EntityUser, u.Login)
}

// Membership inserts a membership.
func (w *BulkWriter) Membership(m Membership) error {
	if _, err := w.membership.ExecContext(w.ctx, m.User, m.Org, m.Role); err != nil {
		return fmt.Errorf("membership %s/%s: %w", m.User, m.Org, err)
	}
	return w.change(EntityMembership, m.User+"/"+m.Org)
}

// Repository inserts a repository.
func (w *BulkWriter) Repository(r Repository) error {
	if _, err := w.repository.ExecContext(w.ctx, r.Owner, r.Name, r.Visibility); err != nil {
		return fmt.Errorf("repository %s/%s: %w", r.Owner, r.Name, err)
	}
	return w.change(EntityRepository, r.Owner+"/"+r.Name)
}

// Token inserts a token and returns its id.
func (w *BulkWriter) Token(t Token) (int64, error) {
	var id int64
	err := w.token.QueryRowContext(w.ctx, t.Hash[:], t.Name, t.Kind, t.User, joinList(t.Scopes), t.ResourceOwner, t.RepositorySelection,
		joinList(t.Repositories), encodePermissions(t.Permissions), nanos(t.CreatedAt), nullNanos(t.ExpiresAt), t.Revoked, nullNanos(t.LastUsedAt),
		packToken(t)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("token %q of %s: %w", t.Name, t.User, err)
	}
	return id, w.change(EntityToken, strconv.FormatInt(id, 10))
}

// Grant inserts a request as the current grant of (g.TokenID, g.Org) and
// returns its id. g.Reason is kept as the justification.
func (w *BulkWriter) Grant(g Grant) (int64, error) {
	var id int64
	err := w.grant.QueryRowContext(w.ctx, g.TokenID, g.Org, g.State, g.Reason, g.Reviewer, nanos(g.CreatedAt), nanos(g.UpdatedAt)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("grant %s: %w", grantKey(g.TokenID, g.Org), err)
	}
	return id, w.change(EntityGrant, grantKey(g.TokenID, g.Org))
}
