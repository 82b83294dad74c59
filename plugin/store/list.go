package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// where builds a conjunction of conditions with $n placeholders.
type where struct {
	conds []string
	args  []any
}

// add appends a condition whose ? marks take args, in order, as numbered
// placeholders ($1, $2, ...), which both backends bind by position.
func (w *where) add(cond string, args ...any) {
	for _, a := range args {
		w.args = append(w.args, a)
		cond = strings.Replace(cond, "?", "$"+strconv.Itoa(len(w.args)), 1)
	}
	w.conds = append(w.conds, cond)
}

// in appends "column IN (...)" with n placeholders whose values arg gives.
func (w *where) in(column string, n int, arg func(i int) any) {
	marks := make([]string, n)
	for i := range n {
		w.args = append(w.args, arg(i))
		marks[i] = "$" + strconv.Itoa(len(w.args))
	}
	w.conds = append(w.conds, column+" IN ("+strings.Join(marks, ", ")+")")
}

func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// TokenFilter selects tokens; zero fields match everything.
type TokenFilter struct {
	User          string
	ResourceOwner string
	Kind          string
	// Live excludes revoked tokens and expired ones (expires_at <= now,
	// SEMANTICS.md rule 2).
	Live bool
}

// ListTokens returns the tokens that match f, by id.
func (db *DB) ListTokens(ctx context.Context, f TokenFilter) ([]Token, error) {
	var w where
	if f.User != "" {
		w.add("user_login = ?", f.User)
	}
	if f.ResourceOwner != "" {
		w.add("resource_owner = ?", f.ResourceOwner)
	}
	if f.Kind != "" {
		w.add("kind = ?", f.Kind)
	}
	if f.Live {
		w.add("revoked = ?", false)
		w.add("(expires_at IS NULL OR expires_at > ?)", nanos(db.now()))
	}
	out := []Token{}
	var sc tokenScanner
	err := each(ctx, db.rdb, `SELECT `+tokenColumns+` FROM tokens`+w.String()+` ORDER BY id`, func(rows *sql.Rows) error {
		t, err := sc.scan(rows)
		out = append(out, t)
		return err
	}, w.args...)
	if err != nil {
		return nil, fmt.Errorf("listing tokens: %w", err)
	}
	return out, nil
}

// Request is one approval request: a row of a grant's history. The current
// grant of (token, org) is its newest request.
type Request struct {
	ID            int64     `json:"id"`
	TokenID       int64     `json:"token_id"`
	TokenName     string    `json:"token_name"`
	User          string    `json:"user"`
	Org           string    `json:"org"`
	State         string    `json:"state"`
	Reason        string    `json:"reason"`
	Justification string    `json:"justification"`
	ReviewReason  string    `json:"review_reason"`
	Reviewer      string    `json:"reviewer"`
	Current       bool      `json:"current"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// RequestFilter selects requests; zero fields match everything.
type RequestFilter struct {
	Org     string
	State   string
	User    string // the token's owner
	TokenID int64
	// Current keeps only the newest request of each (token, org).
	Current bool
	// Live leaves out the requests of revoked tokens, as the admin API's
	// request and token listings do.
	Live bool
}

// ListRequests returns the requests that match f, by id.
func (db *DB) ListRequests(ctx context.Context, f RequestFilter) ([]Request, error) {
	var w where
	if f.Org != "" {
		w.add("r.org = ?", f.Org)
	}
	if f.State != "" {
		if err := checkEnum("state", f.State, grantStates); err != nil {
			return nil, classify(ErrInvalid, err)
		}
		w.add("r.state = ?", f.State)
	}
	if f.User != "" {
		w.add("t.user_login = ?", f.User)
	}
	if f.TokenID != 0 {
		w.add("r.token_id = ?", f.TokenID)
	}
	if f.Live {
		w.add("t.revoked = ?", false)
	}
	latest := `r.id = (SELECT MAX(r2.id) FROM requests r2 WHERE r2.token_id = r.token_id AND r2.org = r.org)`
	if f.Current {
		w.conds = append(w.conds, latest)
	}
	q := `SELECT r.id, r.token_id, t.name, t.user_login, r.org, r.state, r.justification, r.review_reason, r.reviewer, r.created_at, r.updated_at, ` + latest + `
FROM requests r JOIN tokens t ON t.id = r.token_id` + w.String() + ` ORDER BY r.id`
	out := []Request{}
	err := each(ctx, db.rdb, q, func(rows *sql.Rows) error {
		var r Request
		var created, updated int64
		if err := rows.Scan(&r.ID, &r.TokenID, &r.TokenName, &r.User, &r.Org, &r.State, &r.Justification, &r.ReviewReason, &r.Reviewer,
			&created, &updated, &r.Current); err != nil {
			return err
		}
		r.Reason = grantReason(r.Justification, r.ReviewReason)
		r.CreatedAt, r.UpdatedAt = fromNanos(created), fromNanos(updated)
		out = append(out, r)
		return nil
	}, w.args...)
	if err != nil {
		return nil, fmt.Errorf("listing requests: %w", err)
	}
	return out, nil
}

// AuditFilter selects audit events; zero fields match everything.
type AuditFilter struct {
	Org       string
	Actor     string
	Action    string
	TokenID   int64
	RequestID int64
	// Limit keeps the newest Limit events; 0 keeps all.
	Limit int
}

// ListAudit returns the audit events that match f, oldest first.
func (db *DB) ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, error) {
	w := auditWhere(f.Org, f.Actor, f.Action, f.TokenID, f.RequestID)
	q := auditSelect + w.String() + ` ORDER BY id DESC`
	if f.Limit > 0 {
		q += " LIMIT " + strconv.Itoa(f.Limit)
	}
	out, err := db.auditEvents(ctx, q, w.args)
	if err != nil {
		return nil, err
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// auditSelect reads audit events in the column order scanAuditEvent expects.
const auditSelect = `SELECT id, at, actor, action, org, token_id, request_id, reason, details FROM audit_events`

// auditWhere selects audit events by the fields both audit listings filter
// on; zero values match everything.
func auditWhere(org, actor, action string, tokenID, requestID int64) where {
	var w where
	if org != "" {
		w.add("org = ?", org)
	}
	if actor != "" {
		w.add("actor = ?", actor)
	}
	if action != "" {
		w.add("action = ?", action)
	}
	if tokenID != 0 {
		w.add("token_id = ?", tokenID)
	}
	if requestID != 0 {
		w.add("request_id = ?", requestID)
	}
	return w
}

// auditEvents runs an auditSelect query and decodes its rows.
func (db *DB) auditEvents(ctx context.Context, q string, args []any) ([]AuditEvent, error) {
	out := []AuditEvent{}
	err := each(ctx, db.rdb, q, func(rows *sql.Rows) error {
		var e AuditEvent
		var at int64
		var tokenID, requestID sql.NullInt64
		var details string
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Org, &tokenID, &requestID, &e.Reason, &details); err != nil {
			return err
		}
		e.At, e.TokenID, e.RequestID = fromNanos(at), tokenID.Int64, requestID.Int64
		if details != "" && details != "{}" {
			if err := json.Unmarshal([]byte(details), &e.Details); err != nil {
				return fmt.Errorf("audit event %d: details: %w", e.ID, err)
			}
		}
		out = append(out, e)
		return nil
	}, args...)
	if err != nil {
		return nil, fmt.Errorf("listing audit events: %w", err)
	}
	return out, nil
}
