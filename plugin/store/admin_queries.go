package store

// Paged, filtered reads for the admin API (plugin/admin): an organization's
// approval requests and grants with their tokens, GitHub's filters, and the
// audit log one page at a time.

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/opa-pat/opa-pat/plugin/permissions"
)

// OrgGrantFilter selects current grants of an organization (the newest
// request of each token) and one page of them. Zero fields match
// everything.
type OrgGrantFilter struct {
	Org   string
	State string // a grant state; "" matches every state
	// Owners keeps tokens of these users, compared without regard to case.
	Owners []string
	// TokenIDs keeps these tokens.
	TokenIDs []int64
	// Repository keeps tokens that can reach this repository of Org: all
	// repositories, a selection that names it, or public repositories when
	// it is public.
	Repository string
	// LiveTokens keeps tokens that are not revoked: a revoked token's
	// requests and grants are gone from GitHub's lists.
	LiveTokens bool
	// Grantless adds the fine-grained tokens aimed at Org that have no
	// grant for it and are neither revoked nor expired, as rows in state
	// NoGrant (Grant.ID 0): the caller, which knows the settings, sets it
	// when approval is effectively disabled in Org, where such tokens reach
	// it (SEMANTICS.md rule 20). State does not apply to them.
	Grantless bool
	// NoGrants leaves the grants out (with Grantless: only the tokens
	// without one).
	NoGrants bool
	// Permission keeps fine-grained tokens that hold this permission.
	Permission string
	// LastUsedBefore and LastUsedAfter bound the token's last use; a token
	// never used matches neither.
	LastUsedBefore, LastUsedAfter time.Time
	// Ascending sorts oldest first by creation of the request; the default
	// is newest first.
	Ascending bool
	// Page (from 1) and PerPage; PerPage 0 returns every row.
	Page, PerPage int
}

// NoGrant is the state of an OrgGrant row of a token without a grant
// (OrgGrantFilter.Grantless). It is no grant state: no request has it.
const NoGrant = "none"

// OrgGrant is a current grant (its request row) with its token.
type OrgGrant struct {
	Grant         Grant
	Justification string
	ReviewReason  string
	Token         Token
}

// likeEscape escapes LIKE's wildcards; patterns use ESCAPE '\'.
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// prefixedTokenColumns is tokenColumns with the table alias t.
var prefixedTokenColumns = func() string {
	cols := strings.Split(tokenColumns, ", ")
	for i, c := range cols {
		cols[i] = "t." + c
	}
	return strings.Join(cols, ", ")
}()

// withExtra scans extra leading columns before the ones a scanner asks for.
type withExtra struct {
	rows  rowScanner
	extra []any
}

func (w withExtra) Scan(dest ...any) error { return w.rows.Scan(append(w.extra, dest...)...) }

// ListOrgGrants returns one page of an organization's current grants that
// match f, and how many match in all; with f.Grantless, the live
// fine-grained tokens aimed at the organization that have no grant as well,
// as rows whose state is NoGrant.
func (db *DB) ListOrgGrants(ctx context.Context, f OrgGrantFilter) ([]OrgGrant, int, error) {
	var grants, grantless string // the parts' FROM ... WHERE ...
	var args []any
	if !f.NoGrants {
		var c where
		c.add("r.org = ?", f.Org)
		c.conds = append(c.conds, "r.id = (SELECT MAX(r2.id) FROM requests r2 WHERE r2.token_id = r.token_id AND r2.org = r.org)")
		if f.State != "" {
			c.add("r.state = ?", f.State)
		}
		if f.LiveTokens {
			c.add("t.revoked = ?", false)
		}
		f.tokenConds(&c)
		grants, args = ` FROM requests r JOIN tokens t ON t.id = r.token_id`+c.String(), c.args
	}
	if f.Grantless {
		// Rule 20 lets such a token through while approval is disabled: it
		// is fine-grained, aimed at the organization (its resource owner,
		// compared without regard to case as the policy compares it), not
		// its user's own, neither revoked nor expired, and has no request
		// for the organization as the lists spell it.
		c := where{args: args}
		c.add("t.kind = ?", KindFineGrained)
		c.add("lower(t.resource_owner) = ?", strings.ToLower(f.Org))
		c.add("lower(t.user_login) <> ?", strings.ToLower(f.Org))
		c.add("t.revoked = ?", false)
		c.add("(t.expires_at IS NULL OR t.expires_at > ?)", nanos(db.now()))
		c.add("NOT EXISTS (SELECT 1 FROM requests r2 WHERE r2.token_id = t.id AND r2.org = ?)", f.Org)
		f.tokenConds(&c)
		grantless, args = ` FROM tokens t`+c.String(), c.args
	}

	var count []string
	for _, from := range []string{grants, grantless} {
		if from != "" {
			count = append(count, `(SELECT COUNT(*)`+from+`)`)
		}
	}
	if len(count) == 0 {
		return []OrgGrant{}, 0, nil
	}
	var total int
	if err := db.rdb.QueryRowContext(ctx, `SELECT `+strings.Join(count, " + "), args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("counting grants of %s: %w", f.Org, err)
	}
	dir := "DESC"
	if f.Ascending {
		dir = "ASC"
	}
	// Newest request first (a token without a grant by its creation), then
	// by request and token id, so that pages do not overlap.
	var parts []string
	if grants != "" {
		parts = append(parts, `SELECT r.id AS g_id, r.token_id AS g_token, r.org AS g_org, r.state AS g_state, r.justification AS g_justification,
	r.review_reason AS g_review, r.reviewer AS g_reviewer, r.created_at AS g_created, r.updated_at AS g_updated, `+prefixedTokenColumns+grants)
	}
	if grantless != "" {
		args = append(args, f.Org, NoGrant)
		org, state := "$"+strconv.Itoa(len(args)-1), "$"+strconv.Itoa(len(args))
		parts = append(parts, `SELECT CAST(0 AS BIGINT) AS g_id, t.id AS g_token, CAST(`+org+` AS TEXT) AS g_org, CAST(`+state+` AS TEXT) AS g_state,
	'' AS g_justification, '' AS g_review, '' AS g_reviewer, t.created_at AS g_created, t.created_at AS g_updated, `+prefixedTokenColumns+grantless)
	}
	q := `SELECT * FROM (` + strings.Join(parts, "\nUNION ALL\n") + `) u ORDER BY g_created ` + dir + `, g_id ` + dir + `, g_token ` + dir
	q += pageClause(f.Page, f.PerPage)
	out := []OrgGrant{}
	var sc tokenScanner
	err := each(ctx, db.rdb, q, func(rows *sql.Rows) error {
		var g OrgGrant
		var created, updated int64
		t, err := sc.scan(withExtra{rows: rows, extra: []any{&g.Grant.ID, &g.Grant.TokenID, &g.Grant.Org, &g.Grant.State,
			&g.Justification, &g.ReviewReason, &g.Grant.Reviewer, &created, &updated}})
		if err != nil {
			return err
		}
		g.Token = t
		g.Grant.Reason, g.Grant.ReviewReason = grantReason(g.Justification, g.ReviewReason), g.ReviewReason
		g.Grant.CreatedAt, g.Grant.UpdatedAt = fromNanos(created), fromNanos(updated)
		out = append(out, g)
		return nil
	}, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("listing grants of %s: %w", f.Org, err)
	}
	return out, total, nil
}

// tokenConds adds the filters on the token (f's owners, ids, repository,
// permission and last use) to c.
func (f OrgGrantFilter) tokenConds(c *where) {
	if len(f.Owners) > 0 {
		// Logins without regard to case, as GitHub compares them (and the
		// policy's index): owner=BOB is bob. Logins are ASCII (checkGitHubName),
		// which SQLite's lower() and PostgreSQL's fold alike.
		c.in("lower(t.user_login)", len(f.Owners), func(i int) any { return strings.ToLower(f.Owners[i]) })
	}
	if len(f.TokenIDs) > 0 {
		c.in("t.id", len(f.TokenIDs), func(i int) any { return f.TokenIDs[i] })
	}
	if f.Repository != "" {
		c.add(`(t.repository_selection = 'all'
	OR (t.repository_selection = 'selected' AND (',' || t.repositories || ',') LIKE ? ESCAPE '\')
	OR (t.repository_selection = 'public' AND EXISTS (SELECT 1 FROM repositories p WHERE p.owner = ? AND p.name = ? AND p.visibility = 'public')))`,
			"%,"+likeEscape(f.Repository)+",%", f.Org, f.Repository)
	}
	if f.Permission != "" {
		// A token an earlier opa-pat stored may hold the permission under
		// its earlier name (variables for actions_variables), which the
		// store reads as GitHub's: either spelling matches.
		names := permissions.Spellings(permissions.Canonical(f.Permission))
		conds := make([]string, len(names))
		args := make([]any, len(names))
		for i, name := range names {
			conds[i] = `(',' || t.permissions) LIKE ? ESCAPE '\'`
			args[i] = "%," + likeEscape(name) + "=%"
		}
		c.add("("+strings.Join(conds, " OR ")+")", args...)
	}
	if !f.LastUsedBefore.IsZero() {
		c.add("t.last_used_at < ?", nanos(f.LastUsedBefore))
	}
	if !f.LastUsedAfter.IsZero() {
		c.add("t.last_used_at > ?", nanos(f.LastUsedAfter))
	}
}

func pageClause(page, perPage int) string {
	if perPage <= 0 {
		return ""
	}
	if page < 1 {
		page = 1
	}
	return " LIMIT " + strconv.Itoa(perPage) + " OFFSET " + strconv.Itoa((page-1)*perPage)
}

// OrgRequest returns one request of an organization with its token,
// whether or not it is the current grant; a request of a revoked token is
// not found, as in the organization's lists.
func (db *DB) OrgRequest(ctx context.Context, org string, id int64) (OrgGrant, bool, error) {
	var g OrgGrant
	var created, updated int64
	var sc tokenScanner
	t, err := sc.scan(withExtra{rows: db.rdb.QueryRowContext(ctx, `SELECT r.id, r.token_id, r.org, r.state, r.justification, r.review_reason, r.reviewer, r.created_at, r.updated_at, `+
		prefixedTokenColumns+` FROM requests r JOIN tokens t ON t.id = r.token_id WHERE r.org = $1 AND r.id = $2 AND t.revoked = $3`, org, id, false),
		extra: []any{&g.Grant.ID, &g.Grant.TokenID, &g.Grant.Org, &g.Grant.State, &g.Justification, &g.ReviewReason, &g.Grant.Reviewer, &created, &updated}})
	if err != nil {
		return pointResult(OrgGrant{}, err, "request", org+"/"+strconv.FormatInt(id, 10))
	}
	g.Token = t
	g.Grant.Reason = grantReason(g.Justification, g.ReviewReason)
	g.Grant.CreatedAt, g.Grant.UpdatedAt = fromNanos(created), fromNanos(updated)
	return g, true, nil
}

// OrgKnown reports whether the store knows an organization: it has
// repositories, requests or members. The indexed lookups come first, so a
// known organization costs one index probe.
func (db *DB) OrgKnown(ctx context.Context, org string) (bool, error) {
	var known bool
	err := db.rdb.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM repositories WHERE owner = $1)
	OR EXISTS (SELECT 1 FROM requests WHERE org = $1)
	OR EXISTS (SELECT 1 FROM memberships WHERE org = $1)`, org).Scan(&known)
	if err != nil {
		return false, fmt.Errorf("looking up organization %q: %w", org, err)
	}
	return known, nil
}

// OwnerRepositories returns an owner's repositories by name; visibility,
// when not empty, keeps only those of that visibility.
func (db *DB) OwnerRepositories(ctx context.Context, owner, visibility string) ([]Repository, error) {
	var c where
	c.add("owner = ?", owner)
	if visibility != "" {
		c.add("visibility = ?", visibility)
	}
	out := []Repository{}
	err := each(ctx, db.rdb, `SELECT owner, name, visibility FROM repositories`+c.String()+` ORDER BY name`, func(rows *sql.Rows) error {
		var r Repository
		if err := rows.Scan(&r.Owner, &r.Name, &r.Visibility); err != nil {
			return err
		}
		out = append(out, r)
		return nil
	}, c.args...)
	if err != nil {
		return nil, fmt.Errorf("listing repositories of %s: %w", owner, err)
	}
	return out, nil
}

// AuditPageFilter selects audit events and one page of them, newest first.
// Zero fields match everything.
type AuditPageFilter struct {
	Org string
	// Actor keeps the events of this actor, compared without regard to
	// ASCII case (an actor is a login, or the CLI's --actor).
	Actor  string
	Action string
	// TokenIDs and RequestIDs keep the events of any of these tokens and
	// requests.
	TokenIDs, RequestIDs []int64
	// Page (from 1) and PerPage; PerPage 0 returns every event.
	Page, PerPage int
}

// ListAuditPage returns one page of the audit events that match f, newest
// first, and how many match in all.
func (db *DB) ListAuditPage(ctx context.Context, f AuditPageFilter) ([]AuditEvent, int, error) {
	c := auditWhere(f.Org, "", f.Action, 0, 0)
	if f.Actor != "" {
		c.add("lower(actor) = ?", asciiLower(f.Actor))
	}
	if len(f.TokenIDs) > 0 {
		c.in("token_id", len(f.TokenIDs), func(i int) any { return f.TokenIDs[i] })
	}
	if len(f.RequestIDs) > 0 {
		c.in("request_id", len(f.RequestIDs), func(i int) any { return f.RequestIDs[i] })
	}
	var total int
	if err := db.rdb.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_events`+c.String(), c.args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("counting audit events: %w", err)
	}
	out, err := db.auditEvents(ctx, auditSelect+c.String()+` ORDER BY id DESC`+pageClause(f.Page, f.PerPage), c.args)
	if err != nil {
		return nil, 0, err
	}
	return out, total, nil
}

// UserTokens returns one page of a user's tokens, newest first, and how
// many there are.
func (db *DB) UserTokens(ctx context.Context, user string, page, perPage int) ([]Token, int, error) {
	var total int
	if err := db.rdb.QueryRowContext(ctx, `SELECT COUNT(*) FROM tokens WHERE user_login = $1`, user).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("counting tokens of %s: %w", user, err)
	}
	out := []Token{}
	var sc tokenScanner
	err := each(ctx, db.rdb, `SELECT `+tokenColumns+` FROM tokens WHERE user_login = $1 ORDER BY id DESC`+pageClause(page, perPage), func(rows *sql.Rows) error {
		t, err := sc.scan(rows)
		out = append(out, t)
		return err
	}, user)
	if err != nil {
		return nil, 0, fmt.Errorf("listing tokens of %s: %w", user, err)
	}
	return out, total, nil
}

// asciiLower folds the ASCII letters of s, as SQLite's lower() does.
func asciiLower(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}
