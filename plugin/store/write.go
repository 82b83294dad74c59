package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/opa-pat/opa-pat/plugin/token"
)

// Sentinel errors, for callers (the admin API) that map them to statuses.
var (
	ErrNotFound     = errors.New("not found")
	ErrInvalidState = errors.New("invalid state")
	ErrInvalid      = errors.New("invalid")
)

// Error is an error of a kind callers test with errors.Is (ErrNotFound,
// ErrInvalidState, ErrInvalid); its message does not repeat the kind.
type Error struct {
	Kind error
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns both the kind and the cause.
func (e *Error) Unwrap() []error { return []error{e.Kind, e.Err} }

func errorf(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Err: fmt.Errorf(format, args...)}
}

func classify(kind, err error) error { return &Error{Kind: kind, Err: err} }

// refusal is a sentinel error that is also of a kind: errors.Is finds both
// in an Error whose Kind it is.
type refusal struct {
	what string
	kind error
}

func (r *refusal) Error() string { return r.what }
func (r *refusal) Unwrap() error { return r.kind }

// Why RequestAgain refuses a token, for callers that word it in their own
// terms (the CLI names its --token flag, the admin API its id field). Each
// is also of a kind above: ErrNotFound, ErrInvalid or ErrInvalidState.
var (
	// ErrNoSuchToken: no token has the id.
	ErrNoSuchToken error = &refusal{"no such token", ErrNotFound}
	// ErrNotOrgToken: the token is classic, or a fine-grained token of its
	// own user: it has no organization to ask (rules 6 and 17).
	ErrNotOrgToken error = &refusal{"not a fine-grained token aimed at an organization", ErrInvalid}
	// ErrOtherOrg: the token is aimed at another organization (rule 6).
	ErrOtherOrg error = &refusal{"aimed at another organization", ErrInvalid}
	// ErrTokenRevoked: the token is revoked and never works again.
	ErrTokenRevoked error = &refusal{"token revoked", ErrInvalidState}
	// ErrGrantOpen: the token's grant is pending or approved, not denied
	// or revoked.
	ErrGrantOpen error = &refusal{"grant pending or approved", ErrInvalidState}
	// ErrNotMember: the token's user is not a member (or an owner) of the
	// organization (rule 10): outside collaborators cannot use fine-grained
	// tokens there, nor create one for it.
	ErrNotMember error = &refusal{"not a member", ErrInvalidState}
	// ErrDecisionStands: approval is disabled in the organization and the
	// token's grant is denied or revoked: a pending request would let the
	// token through before an owner reviewed it (rules 20 and 22).
	ErrDecisionStands error = &refusal{"an owner's decision stands", ErrInvalidState}
)

// Limits of a review (SEMANTICS.md rule 23).
const (
	MaxReviewIDs   = 100
	MaxReasonChars = 1024
)

// Audit actions.
const (
	ActionTokenCreate    = "token.create"
	ActionTokenRevoke    = "token.revoke"
	ActionRequestCreate  = "request.create"
	ActionRequestApprove = "request.approve"
	ActionRequestDeny    = "request.deny"
	ActionGrantRevoke    = "grant.revoke"
	ActionStoreImport    = "store.import"
	ActionSettingsRecord = "settings.record"
)

// AuditActions are the actions an organization's audit log (the admin
// API's) may be filtered on, in the order of a token's life: every action
// the audit log records but settings.record, whose events concern no
// organization. (store.import's events concern none either; the admin API
// has taken it since before settings were recorded.)
var AuditActions = []string{ActionTokenCreate, ActionRequestCreate, ActionRequestApprove, ActionRequestDeny,
	ActionGrantRevoke, ActionTokenRevoke, ActionStoreImport}

// StoreAuditActions are every action the audit log records: those the
// store's whole log (opa-pat audit list) may be filtered on.
var StoreAuditActions = append(slices.Clip(AuditActions), ActionSettingsRecord)

// CheckAuditAction refuses a filter on an action an organization's log
// never holds (a typo would otherwise list nothing, silently).
func CheckAuditAction(action string) error { return checkAuditAction(action, AuditActions) }

// CheckStoreAuditAction refuses a filter on an action the store's log never
// holds.
func CheckStoreAuditAction(action string) error { return checkAuditAction(action, StoreAuditActions) }

func checkAuditAction(action string, actions []string) error {
	if action == "" || slices.Contains(actions, action) {
		return nil
	}
	return fmt.Errorf("unknown action %s, want one of %s", token.Quote(action), strings.Join(actions, ", "))
}

// AutomaticReviewer is the reviewer of a grant approved automatically at
// creation (SEMANTICS.md rule 21).
const AutomaticReviewer = "opa-pat (automatic)"

// AuditEvent is one entry of the audit log: who did what, when and why.
type AuditEvent struct {
	ID        int64          `json:"id"`
	At        time.Time      `json:"at"`
	Actor     string         `json:"actor"`
	Action    string         `json:"action"`
	Org       string         `json:"org,omitempty"`
	TokenID   int64          `json:"token_id,omitempty"`
	RequestID int64          `json:"request_id,omitempty"`
	Reason    string         `json:"reason,omitempty"`
	Details   map[string]any `json:"details,omitempty"`
}

// actorTokenKey is the context key of the token an action is taken with.
type actorTokenKey struct{}

// WithActorToken returns a context whose audit events record the id of the
// token the actor used (details.actor_token_id): the admin API sets it to
// its caller's token, so an event says which credential acted, not only
// whose.
func WithActorToken(ctx context.Context, id int64) context.Context {
	return context.WithValue(ctx, actorTokenKey{}, id)
}

func (db *DB) audit(ctx context.Context, tx execer, e AuditEvent) error {
	// Every write records who made it: a token given as the actor (the
	// CLI's --actor), or one cut short, is refused here, and the write
	// with it.
	if err := CheckActor("actor", e.Actor); err != nil {
		return classify(ErrInvalid, err)
	}
	if id, ok := ctx.Value(actorTokenKey{}).(int64); ok && id != 0 {
		e.Details = maps.Clone(e.Details)
		if e.Details == nil {
			e.Details = map[string]any{}
		}
		e.Details["actor_token_id"] = id
	}
	details := "{}"
	if len(e.Details) > 0 {
		b, err := json.Marshal(e.Details)
		if err != nil {
			return fmt.Errorf("encoding audit details: %w", err)
		}
		details = string(b)
	}
	at := e.At
	if at.IsZero() {
		at = db.now()
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO audit_events (at, actor, action, org, token_id, request_id, reason, details)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, nanos(at), e.Actor, e.Action, e.Org, nullID(e.TokenID), nullID(e.RequestID), e.Reason, details)
	if err != nil {
		return fmt.Errorf("writing audit event %s: %w", e.Action, err)
	}
	return nil
}

func nullID(id int64) sql.NullInt64 { return sql.NullInt64{Int64: id, Valid: id != 0} }

// Valid values.
var (
	roles       = []string{"owner", "member", "outside_collaborator"}
	visibility  = []string{"public", "internal", "private"}
	selections  = []string{"all", "selected", "public"}
	levels      = []string{"read", "write", "admin"}
	grantStates = []string{GrantPending, GrantApproved, GrantDenied, GrantRevoked}
)

// CheckPlain refuses a value that holds a personal access token, or what is
// left of one (token.Contains): a token pasted into a name or a reason by
// mistake would be kept, readable, where only its SHA-256 belongs. The
// error names the field and does not show the value.
func CheckPlain(field, v string) error {
	if token.Contains(v) {
		return fmt.Errorf("%s: looks like a personal access token; opa-pat never stores a token in plain text", field)
	}
	return nil
}

// CheckText checks a reason or justification: no token (CheckPlain), not
// even one cut short (what the decision-log mask and the admin API's
// filters take for a token, token.Hidden: free text has no business holding
// a prefix and thirty characters of a token's), at most MaxReasonChars
// characters of valid UTF-8 without NUL, which PostgreSQL cannot store (and
// SQLite would keep, so that the store could not be migrated).
func CheckText(field, v string) error {
	if err := checkStored(field, v); err != nil {
		return err
	}
	if err := checkNoTokenLeft(field, v); err != nil {
		return err
	}
	if utf8.RuneCountInString(v) > MaxReasonChars {
		return fmt.Errorf("%s: longer than %d characters", field, MaxReasonChars)
	}
	return nil
}

// CheckActor checks who acts, as the audit log records it: free text (the
// CLI's --actor, "cli:" and the system user by default), which holds no
// token (CheckPlain), not even one cut short (checkNoTokenLeft).
func CheckActor(field, v string) error {
	if err := CheckPlain(field, v); err != nil {
		return err
	}
	return checkNoTokenLeft(field, v)
}

// checkNoTokenLeft refuses free text (a reason, a token's name) that holds
// what is left of a token cut short: a known prefix, in any case, and 30 or
// more token characters with a capital or a digit among them (token.Hidden,
// the rule of the decision-log mask and the admin API's filters). A classic
// token's 30 random characters are all of its secret (the checksum follows
// from them), so "ghp_" and a token without its last characters is the
// token.
func checkNoTokenLeft(field, v string) error {
	if token.Hidden(v) {
		return fmt.Errorf("%s: looks like a personal access token; opa-pat never stores a token in plain text", field)
	}
	return nil
}

// checkStored checks what every text the store keeps must be: no token
// (CheckPlain), and valid UTF-8 without NUL, which PostgreSQL cannot store.
func checkStored(field, v string) error {
	if err := CheckPlain(field, v); err != nil {
		return err
	}
	switch {
	case !utf8.ValidString(v):
		return fmt.Errorf("%s: not valid UTF-8", field)
	case strings.ContainsRune(v, 0):
		return fmt.Errorf("%s: must not contain NUL", field)
	}
	return nil
}

// checkName refuses names that would break the list encoding, and tokens
// (CheckPlain).
func checkName(field, v string) error {
	if v == "" {
		return fmt.Errorf("%s: must not be empty", field)
	}
	if err := CheckPlain(field, v); err != nil {
		return err
	}
	if strings.ContainsAny(v, ",=/") || strings.ContainsFunc(v, unicode.IsControl) {
		return fmt.Errorf("%s: %s must not contain ',', '=', '/' or control characters", field, token.Quote(v))
	}
	return nil
}

// githubName is what GitHub allows in a login, an organization, an
// enterprise's slug and a repository's name (and what the policy takes as
// an owner or a repository): ASCII letters, digits, '-', '_' and '.', but
// not "." or "..". Names outside it would be refused by every decision, and
// would be compared without regard to case differently by SQLite (whose
// lower() folds ASCII only) and PostgreSQL.
func checkGitHubName(field, v string) error {
	if err := checkName(field, v); err != nil {
		return err
	}
	if v == "." || v == ".." || strings.ContainsFunc(v, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
	}) {
		return fmt.Errorf("%s: %s is not a GitHub name: ASCII letters, digits, '-', '_' and '.' only", field, token.Quote(v))
	}
	return nil
}

func checkEnum(field, v string, allowed []string) error {
	if !slices.Contains(allowed, v) {
		if err := CheckPlain(field, v); err != nil {
			return err
		}
		return fmt.Errorf("%s: unknown value %s, want one of %s", field, token.Quote(v), strings.Join(allowed, ", "))
	}
	return nil
}

func validateUser(u User) error {
	if err := checkGitHubName("login", u.Login); err != nil {
		return err
	}
	if u.ManagedBy != "" {
		return checkGitHubName("managed_by", u.ManagedBy)
	}
	return nil
}

func validateMembership(m Membership) error {
	return errors.Join(checkGitHubName("user", m.User), checkGitHubName("org", m.Org), checkEnum("role", m.Role, roles))
}

func validateRepository(r Repository) error {
	return errors.Join(checkGitHubName("owner", r.Owner), checkGitHubName("name", r.Name), checkEnum("visibility", r.Visibility, visibility))
}

// ValidateToken checks a token record; errors name the field.
func ValidateToken(t Token) error {
	switch t.Kind {
	case KindClassic, KindFineGrained:
	default:
		if err := CheckPlain("kind", t.Kind); err != nil {
			return err
		}
		return fmt.Errorf("kind: unknown kind %s", token.Quote(t.Kind))
	}
	if err := checkGitHubName("user", t.User); err != nil {
		return err
	}
	// A name is free text, as a reason is (CheckText): a token cut short
	// is refused there too. Logins, repositories and scopes, which are
	// names of GitHub's shape, keep the whole-token rule (CheckPlain).
	if err := CheckPlain("name", t.Name); err != nil {
		return err
	}
	if err := checkNoTokenLeft("name", t.Name); err != nil {
		return err
	}
	if strings.ContainsRune(t.Name, 0) || !utf8.ValidString(t.Name) || utf8.RuneCountInString(t.Name) > 255 {
		return errors.New("name: must be at most 255 characters of UTF-8 without NUL")
	}
	if t.CreatedAt.IsZero() {
		return errors.New("created_at: must be set")
	}
	if err := CheckTime("created_at", t.CreatedAt); err != nil {
		return err
	}
	if !t.ExpiresAt.IsZero() {
		if err := CheckTime("expires_at", t.ExpiresAt); err != nil {
			return err
		}
		if !t.ExpiresAt.After(t.CreatedAt) {
			return errors.New("expires_at: must be after created_at")
		}
	}
	if t.Hash == ([32]byte{}) {
		return errors.New("token: no hash")
	}
	for i, s := range t.Scopes {
		if err := checkName(fmt.Sprintf("scopes[%d]", i), s); err != nil {
			return err
		}
	}
	if t.Kind == KindClassic {
		switch {
		case t.ResourceOwner != "":
			return errors.New("resource_owner: only fine-grained tokens have one")
		case t.RepositorySelection != "":
			return errors.New("repository_selection: only fine-grained tokens have one")
		case len(t.Repositories) > 0:
			return errors.New("repositories: only fine-grained tokens have them")
		case len(t.Permissions) > 0:
			return errors.New("permissions: only fine-grained tokens have them")
		}
		return nil
	}
	if len(t.Scopes) > 0 {
		return errors.New("scopes: only classic tokens have them")
	}
	if err := checkGitHubName("resource_owner", t.ResourceOwner); err != nil {
		return err
	}
	if err := checkEnum("repository_selection", t.RepositorySelection, selections); err != nil {
		return err
	}
	// Repositories only count with "selected"; a list kept with "all" or
	// "public", or an empty selection, is recorded as given (import records
	// what exists).
	for i, r := range t.Repositories {
		if err := checkGitHubName(fmt.Sprintf("repositories[%d]", i), r); err != nil {
			return err
		}
	}
	for k, v := range t.Permissions {
		if err := checkName("permissions", k); err != nil {
			return err
		}
		if err := checkEnum("permissions."+k, v, levels); err != nil {
			return err
		}
	}
	return nil
}

// ensureUser creates a user record (not managed) when it is absent.
func ensureUser(ctx context.Context, tx execer, login string) error {
	res, err := tx.ExecContext(ctx, `INSERT INTO users (login, managed_by) VALUES ($1, '') ON CONFLICT (login) DO NOTHING`, login)
	if err != nil {
		return fmt.Errorf("creating user %q: %w", login, err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return logChange(ctx, tx, EntityUser, login)
	}
	return nil
}

func insertToken(ctx context.Context, tx execer, t Token) (int64, error) {
	var id int64
	err := tx.QueryRowContext(ctx, `INSERT INTO tokens (hash, name, kind, user_login, scopes, resource_owner, repository_selection, repositories, permissions, created_at, expires_at, revoked, last_used_at, packed)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
ON CONFLICT (hash) DO UPDATE SET name = excluded.name, kind = excluded.kind, user_login = excluded.user_login, scopes = excluded.scopes,
	resource_owner = excluded.resource_owner, repository_selection = excluded.repository_selection, repositories = excluded.repositories,
	permissions = excluded.permissions, created_at = excluded.created_at, expires_at = excluded.expires_at, revoked = excluded.revoked,
	last_used_at = excluded.last_used_at, packed = excluded.packed
RETURNING id`,
		t.Hash[:], t.Name, t.Kind, t.User, joinList(t.Scopes), t.ResourceOwner, t.RepositorySelection, joinList(t.Repositories),
		encodePermissions(t.Permissions), nanos(t.CreatedAt), nullNanos(t.ExpiresAt), t.Revoked, nullNanos(t.LastUsedAt), packToken(t)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("writing token: %w", err)
	}
	return id, logChange(ctx, tx, EntityToken, strconv.FormatInt(id, 10))
}

// insertRequest adds a request row: the new current grant of (token, org).
func insertRequest(ctx context.Context, tx execer, g Grant, justification, review string) (int64, error) {
	var id int64
	err := tx.QueryRowContext(ctx, `INSERT INTO requests (token_id, org, state, justification, review_reason, reviewer, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
		g.TokenID, g.Org, g.State, justification, review, g.Reviewer, nanos(g.CreatedAt), nanos(g.UpdatedAt)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("writing request: %w", err)
	}
	return id, logChange(ctx, tx, EntityGrant, grantKey(g.TokenID, g.Org))
}

func grantKey(tokenID int64, org string) string { return strconv.FormatInt(tokenID, 10) + "/" + org }

// CreateTokenParams describes a new token and the grant it starts with.
type CreateTokenParams struct {
	// Token is the record; its Hash is the SHA-256 of the raw token. ID is
	// assigned by the store.
	Token Token
	// Actor is who creates it; empty means Token.User.
	Actor string
	// GrantState, when not empty, creates a grant for Token.ResourceOwner in
	// that state: GrantPending (a request) or GrantApproved (approved
	// automatically, SEMANTICS.md rule 21).
	GrantState string
	// Justification is the requester's reason, kept with the request.
	Justification string
	// ApprovalNote says why an automatic approval happened (audit log).
	ApprovalNote string
}

// CreateToken stores a new token, its grant and their audit events in one
// transaction. It refuses a hash already in the store.
func (db *DB) CreateToken(ctx context.Context, p CreateTokenParams) (Token, *Grant, error) {
	t := p.Token
	if err := ValidateToken(t); err != nil {
		return Token{}, nil, classify(ErrInvalid, err)
	}
	if p.GrantState != "" && p.GrantState != GrantPending && p.GrantState != GrantApproved {
		return Token{}, nil, errorf(ErrInvalid, "grant state: %q is neither pending nor approved", p.GrantState)
	}
	if p.GrantState != "" && t.Kind != KindFineGrained {
		return Token{}, nil, errorf(ErrInvalid, "grant state: only fine-grained tokens have grants")
	}
	if err := CheckText("reason", p.Justification); err != nil {
		return Token{}, nil, classify(ErrInvalid, err)
	}
	actor := p.Actor
	if actor == "" {
		actor = t.User
	}
	var grant *Grant
	err := db.write(ctx, func(tx *sql.Tx) error {
		var exists int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM tokens WHERE hash = $1`, t.Hash[:]).Scan(&exists)
		if err == nil {
			return errorf(ErrInvalid, "token: a token with this hash already exists")
		} else if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("checking token hash: %w", err)
		}
		if err := ensureUser(ctx, tx, t.User); err != nil {
			return err
		}
		if t.ID, err = insertToken(ctx, tx, t); err != nil {
			return err
		}
		if err := db.audit(ctx, tx, AuditEvent{At: t.CreatedAt, Actor: actor, Action: ActionTokenCreate, Org: t.ResourceOwner, TokenID: t.ID,
			Details: map[string]any{"kind": t.Kind, "user": t.User, "name": t.Name}}); err != nil {
			return err
		}
		if p.GrantState == "" {
			return nil
		}
		g := Grant{TokenID: t.ID, Org: t.ResourceOwner, State: p.GrantState, Reason: p.Justification, CreatedAt: t.CreatedAt, UpdatedAt: t.CreatedAt}
		if p.GrantState == GrantApproved {
			g.Reviewer = AutomaticReviewer
		}
		if g.ID, err = insertRequest(ctx, tx, g, p.Justification, ""); err != nil {
			return err
		}
		if err := db.audit(ctx, tx, AuditEvent{At: t.CreatedAt, Actor: actor, Action: ActionRequestCreate, Org: g.Org, TokenID: t.ID, RequestID: g.ID, Reason: p.Justification}); err != nil {
			return err
		}
		if p.GrantState == GrantApproved {
			if err := db.audit(ctx, tx, AuditEvent{At: t.CreatedAt, Actor: actor, Action: ActionRequestApprove, Org: g.Org, TokenID: t.ID, RequestID: g.ID,
				Reason: p.ApprovalNote, Details: map[string]any{"automatic": true}}); err != nil {
				return err
			}
		}
		grant = &g
		return nil
	})
	if err != nil {
		return Token{}, nil, err
	}
	return t, grant, nil
}

// RevokeToken revokes a token (its user's action; the grant is kept).
func (db *DB) RevokeToken(ctx context.Context, id int64, actor, reason string) error {
	return db.RevokeTokens(ctx, []int64{id}, actor, reason)
}

// RevokeTokens revokes tokens, all or none.
func (db *DB) RevokeTokens(ctx context.Context, ids []int64, actor, reason string) error {
	if err := checkIDs("token ids", ids); err != nil {
		return err
	}
	if err := CheckText("reason", reason); err != nil {
		return classify(ErrInvalid, err)
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		for _, id := range ids {
			var revoked bool
			var owner string
			err := tx.QueryRowContext(ctx, `SELECT revoked, resource_owner FROM tokens WHERE id = $1`, id).Scan(&revoked, &owner)
			if errors.Is(err, sql.ErrNoRows) {
				return errorf(ErrNotFound, "token %d: not found", id)
			} else if err != nil {
				return fmt.Errorf("reading token %d: %w", id, err)
			}
			if revoked {
				return errorf(ErrInvalidState, "token %d: already revoked", id)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked = $1 WHERE id = $2`, true, id); err != nil {
				return fmt.Errorf("revoking token %d: %w", id, err)
			}
			if err := logChange(ctx, tx, EntityToken, strconv.FormatInt(id, 10)); err != nil {
				return err
			}
			if err := db.audit(ctx, tx, AuditEvent{Actor: actor, Action: ActionTokenRevoke, Org: owner, TokenID: id, Reason: reason}); err != nil {
				return err
			}
		}
		return nil
	})
}

// ReviewParams is an owner's decision on pending requests of an
// organization.
type ReviewParams struct {
	Org     string
	IDs     []int64 // request ids, 1..MaxReviewIDs
	Approve bool    // false: deny
	Reason  string  // at most MaxReasonChars characters
	Actor   string
}

func checkIDs(field string, ids []int64) error {
	if len(ids) == 0 || len(ids) > MaxReviewIDs {
		return errorf(ErrInvalid, "%s: give 1 to %d ids, got %d", field, MaxReviewIDs, len(ids))
	}
	seen := make(map[int64]bool, len(ids))
	for _, id := range ids {
		if seen[id] {
			return errorf(ErrInvalid, "%s: %d given twice", field, id)
		}
		seen[id] = true
	}
	return nil
}

// tokenRevoked reports whether a token was revoked.
func tokenRevoked(ctx context.Context, tx *sql.Tx, id int64) (bool, error) {
	var revoked bool
	if err := tx.QueryRowContext(ctx, `SELECT revoked FROM tokens WHERE id = $1`, id).Scan(&revoked); err != nil {
		return false, fmt.Errorf("reading token %d: %w", id, err)
	}
	return revoked, nil
}

func joinIDs(ids []int64) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatInt(id, 10)
	}
	return strings.Join(s, ", ")
}

// Review approves or denies pending requests of one organization, all or
// none. It returns the resulting grants in the order of p.IDs.
func (db *DB) Review(ctx context.Context, p ReviewParams) ([]Grant, error) {
	if err := checkIDs("request ids", p.IDs); err != nil {
		return nil, err
	}
	if err := CheckText("reason", p.Reason); err != nil {
		return nil, classify(ErrInvalid, err)
	}
	state, action := GrantDenied, ActionRequestDeny
	if p.Approve {
		state, action = GrantApproved, ActionRequestApprove
	}
	var out []Grant
	err := db.write(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		var missing, notPending []int64
		var notPendingStates []string // "request 2 is approved"
		var superseded []string       // "request 2 by request 7"
		var dead []string             // "request 2 (token 5)"
		var expired []string          // "request 2 (token 5)"
		var outside []string          // "request 2 (token 5 of bob)"
		for _, id := range p.IDs {
			g, err := scanGrant(tx.QueryRowContext(ctx, `SELECT `+grantColumns+` FROM requests r WHERE r.id = $1 AND r.org = $2`, id, p.Org))
			if errors.Is(err, sql.ErrNoRows) {
				missing = append(missing, id)
				continue
			} else if err != nil {
				return fmt.Errorf("reading request %d: %w", id, err)
			}
			if g.State != GrantPending {
				notPending = append(notPending, id)
				notPendingStates = append(notPendingStates, fmt.Sprintf("request %d is %s", id, g.State))
				continue
			}
			// The token's grant is its latest request: reviewing an older
			// one (an import recorded a newer one) would change nothing the
			// policy reads, and the audit log would say it had.
			var latest int64
			if err := tx.QueryRowContext(ctx, `SELECT MAX(id) FROM requests WHERE token_id = $1 AND org = $2`, g.TokenID, p.Org).Scan(&latest); err != nil {
				return fmt.Errorf("reading the latest request of token %d: %w", g.TokenID, err)
			}
			if latest != g.ID {
				superseded = append(superseded, fmt.Sprintf("request %d by request %d", id, latest))
				continue
			}
			var revoked bool
			var user string
			var expires sql.NullInt64
			if err := tx.QueryRowContext(ctx, `SELECT revoked, user_login, expires_at FROM tokens WHERE id = $1`, g.TokenID).Scan(&revoked, &user, &expires); err != nil {
				return fmt.Errorf("reading token %d: %w", g.TokenID, err)
			}
			if revoked {
				dead = append(dead, fmt.Sprintf("request %d (token %d)", id, g.TokenID))
				continue
			}
			// An approval that could never take effect is refused; a
			// denial closes the request, which the organization's list
			// still shows. An expired token gets 401 everywhere (rule 2).
			// A user who is no longer a member reaches nothing of the
			// organization (rule 10), and an approval would start to work
			// the day the user is a member again, unreviewed then; creation
			// and a request again refuse a non-member (ErrNotMember).
			if p.Approve {
				if expires.Valid && expires.Int64 <= nanos(db.now()) {
					expired = append(expired, fmt.Sprintf("request %d (token %d)", id, g.TokenID))
					continue
				}
				if member, err := isMember(ctx, tx, user, p.Org); err != nil {
					return err
				} else if !member {
					outside = append(outside, fmt.Sprintf("request %d (token %d of %s)", id, g.TokenID, user))
					continue
				}
			}
			out = append(out, g)
		}
		var errs []error
		if len(missing) > 0 {
			errs = append(errs, errorf(ErrNotFound, "%s %s not found in %s", plural("request", len(missing)), joinIDs(missing), p.Org))
		}
		if len(notPending) > 0 {
			errs = append(errs, errorf(ErrInvalidState, "only pending requests can be reviewed: %s", strings.Join(notPendingStates, ", ")))
		}
		if len(superseded) > 0 {
			errs = append(errs, errorf(ErrInvalidState, "only a token's latest request can be reviewed; superseded: %s", strings.Join(superseded, ", ")))
		}
		if len(dead) > 0 {
			errs = append(errs, errorf(ErrInvalidState, "the token of a request is revoked; nothing to review: %s", strings.Join(dead, ", ")))
		}
		if len(expired) > 0 {
			errs = append(errs, errorf(ErrInvalidState, "the token of a request has expired; nothing to approve (deny the request to close it): %s", strings.Join(expired, ", ")))
		}
		if len(outside) > 0 {
			errs = append(errs, errorf(ErrInvalidState, "the user of a request's token is not a member of %s (rule 10); nothing to approve (deny the request to close it): %s",
				p.Org, strings.Join(outside, ", ")))
		}
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
		now := db.now()
		for i := range out {
			g := &out[i]
			if _, err := tx.ExecContext(ctx, `UPDATE requests SET state = $1, review_reason = $2, reviewer = $3, updated_at = $4 WHERE id = $5`,
				state, p.Reason, p.Actor, nanos(now), g.ID); err != nil {
				return fmt.Errorf("reviewing request %d: %w", g.ID, err)
			}
			g.State, g.Reviewer, g.UpdatedAt, g.ReviewReason = state, p.Actor, now, p.Reason
			if p.Reason != "" {
				g.Reason = p.Reason
			}
			if err := logChange(ctx, tx, EntityGrant, grantKey(g.TokenID, g.Org)); err != nil {
				return err
			}
			if err := db.audit(ctx, tx, AuditEvent{At: now, Actor: p.Actor, Action: action, Org: p.Org, TokenID: g.TokenID, RequestID: g.ID, Reason: p.Reason}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func plural(word string, n int) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

func pluralVerb(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

// RevokeGrants revokes the approved grants of tokens for an organization
// (an owner's action), all or none.
func (db *DB) RevokeGrants(ctx context.Context, org string, tokenIDs []int64, actor, reason string) ([]Grant, error) {
	return db.RevokeAccess(ctx, RevokeParams{Org: org, TokenIDs: tokenIDs, Actor: actor, Reason: reason})
}

// RevokeParams is an owner's revocation of tokens' access to an
// organization.
type RevokeParams struct {
	Org      string
	TokenIDs []int64 // 1..MaxReviewIDs
	Actor    string
	Reason   string // at most MaxReasonChars characters
	// Grantless lets a token without a grant for Org be revoked when it
	// reaches Org without one, as ListOrgGrants's Grantless lists it: a
	// fine-grained token aimed at Org, neither revoked nor expired. The
	// caller sets it when approval is effectively disabled in Org
	// (SEMANTICS.md rule 20). The revocation records a revoked grant, which
	// blocks the token while approval stays disabled ("an owner's decision
	// stands") and after it is required again.
	Grantless bool
}

// RevokeAccess revokes tokens' access to an organization, all or none: the
// approved grant of each, or with p.Grantless the access of a token that
// reaches the organization without a grant. Each is a grant.revoke audit
// event.
func (db *DB) RevokeAccess(ctx context.Context, p RevokeParams) ([]Grant, error) {
	org, tokenIDs, actor, reason := p.Org, p.TokenIDs, p.Actor, p.Reason
	if err := checkIDs("token ids", tokenIDs); err != nil {
		return nil, err
	}
	if err := CheckText("reason", reason); err != nil {
		return nil, classify(ErrInvalid, err)
	}
	var out []Grant
	err := db.write(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		var missing, notApproved, dead []int64
		for _, id := range tokenIDs {
			g, err := scanGrant(tx.QueryRowContext(ctx, `SELECT `+grantColumns+` FROM requests r WHERE r.token_id = $1 AND r.org = $2 ORDER BY r.id DESC LIMIT 1`, id, org))
			if errors.Is(err, sql.ErrNoRows) {
				if !p.Grantless {
					missing = append(missing, id)
					continue
				}
				switch reaches, revoked, err := db.reachesWithoutGrant(ctx, tx, id, org); {
				case err != nil:
					return err
				case revoked:
					dead = append(dead, id)
				case !reaches:
					missing = append(missing, id)
				default:
					// A grant to record: ID 0 until it is written.
					out = append(out, Grant{TokenID: id, Org: org})
				}
				continue
			} else if err != nil {
				return fmt.Errorf("reading grant of token %d: %w", id, err)
			}
			if g.State != GrantApproved {
				notApproved = append(notApproved, id)
				continue
			}
			// A revoked token reaches nothing: its grant is out of the
			// organization's lists, and there is nothing left to revoke.
			if revoked, err := tokenRevoked(ctx, tx, id); err != nil {
				return err
			} else if revoked {
				dead = append(dead, id)
				continue
			}
			out = append(out, g)
		}
		var errs []error
		if len(missing) > 0 {
			errs = append(errs, errorf(ErrNotFound, "no grant for %s %s in %s", plural("token", len(missing)), joinIDs(missing), org))
		}
		if len(notApproved) > 0 {
			errs = append(errs, errorf(ErrInvalidState, "only approved grants can be revoked: %s %s %s not approved in %s", plural("token", len(notApproved)), joinIDs(notApproved), pluralVerb(len(notApproved)), org))
		}
		if len(dead) > 0 {
			errs = append(errs, errorf(ErrInvalidState, "%s %s %s revoked; nothing to revoke", plural("token", len(dead)), joinIDs(dead), pluralVerb(len(dead))))
		}
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
		now := db.now()
		for i := range out {
			g := &out[i]
			var details map[string]any
			if g.ID == 0 {
				// No grant: the revocation is one, recorded as a request
				// reviewed at once, with no justification.
				g.State, g.Reviewer, g.CreatedAt, g.UpdatedAt = GrantRevoked, actor, now, now
				id, err := insertRequest(ctx, tx, *g, "", reason)
				if err != nil {
					return err
				}
				g.ID, details = id, map[string]any{"had_grant": false}
			} else {
				if _, err := tx.ExecContext(ctx, `UPDATE requests SET state = $1, review_reason = $2, reviewer = $3, updated_at = $4 WHERE id = $5`,
					GrantRevoked, reason, actor, nanos(now), g.ID); err != nil {
					return fmt.Errorf("revoking grant %d: %w", g.ID, err)
				}
				if err := logChange(ctx, tx, EntityGrant, grantKey(g.TokenID, g.Org)); err != nil {
					return err
				}
			}
			g.State, g.Reviewer, g.UpdatedAt, g.ReviewReason = GrantRevoked, actor, now, reason
			if reason != "" {
				g.Reason = reason
			}
			if err := db.audit(ctx, tx, AuditEvent{At: now, Actor: actor, Action: ActionGrantRevoke, Org: org, TokenID: g.TokenID, RequestID: g.ID,
				Reason: reason, Details: details}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// reachesWithoutGrant reports whether a token that has no grant for org
// reaches it while approval is disabled (RevokeParams.Grantless), and
// whether it is revoked (it then reaches nothing, and has nothing left to
// revoke).
func (db *DB) reachesWithoutGrant(ctx context.Context, tx *sql.Tx, id int64, org string) (reaches, revoked bool, err error) {
	var kind, owner, user string
	var expires sql.NullInt64
	err = tx.QueryRowContext(ctx, `SELECT kind, resource_owner, user_login, revoked, expires_at FROM tokens WHERE id = $1`, id).
		Scan(&kind, &owner, &user, &revoked, &expires)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, false, nil
	case err != nil:
		return false, false, fmt.Errorf("reading token %d: %w", id, err)
	case kind != KindFineGrained || !strings.EqualFold(owner, org) || strings.EqualFold(user, org):
		return false, false, nil
	case revoked:
		return false, true, nil
	}
	return !expires.Valid || expires.Int64 > nanos(db.now()), false, nil
}

// RequestAgainParams is a user's request for a token's access to an
// organization, again after a denial or a revocation, or for the first time.
type RequestAgainParams struct {
	TokenID       int64
	Org           string
	Actor         string
	Justification string // at most MaxReasonChars characters
	// ApprovalDisabled says that approval of fine-grained tokens is
	// effectively disabled in Org (SEMANTICS.md rules 18 and 20): the
	// caller knows the settings (the admin API asks the active policy, the
	// CLI the settings recorded in the store). A pending grant then lets
	// the token through (rule 22), so a request after a denial or a
	// revocation would undo the owner's decision before any review: it is
	// refused (ErrDecisionStands).
	ApprovalDisabled bool
}

// RequestAgain files a new pending request for a token whose grant for
// p.Org was denied or revoked (SEMANTICS.md rule 23), or for a
// fine-grained token of the organization that has no grant at all: one
// created while it needed none (a token limited to public repositories,
// before its organization permissions counted; rule 21), or imported
// without one.
//
// It refuses, in this order and each with its reason (errors.Is): a token
// that does not exist (ErrNoSuchToken), one that is not a fine-grained
// token aimed at an organization (ErrNotOrgToken), one aimed at an
// organization other than p.Org, spelled as the token records it
// (ErrOtherOrg), a revoked token (ErrTokenRevoked), a token whose user is
// not a member or an owner of the organization (ErrNotMember, rule 10, as
// creation refuses it), a token whose grant is pending or approved
// (ErrGrantOpen), and, with p.ApprovalDisabled, a token whose grant is
// denied or revoked (ErrDecisionStands, rule 20). Nothing is written then.
func (db *DB) RequestAgain(ctx context.Context, p RequestAgainParams) (Grant, error) {
	tokenID, org, actor, justification := p.TokenID, p.Org, p.Actor, p.Justification
	if err := CheckText("reason", justification); err != nil {
		return Grant{}, classify(ErrInvalid, err)
	}
	var g Grant
	err := db.write(ctx, func(tx *sql.Tx) error {
		var kind, owner, user string
		var revoked bool
		err := tx.QueryRowContext(ctx, `SELECT kind, resource_owner, user_login, revoked FROM tokens WHERE id = $1`, tokenID).Scan(&kind, &owner, &user, &revoked)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return errorf(ErrNoSuchToken, "token %d not found", tokenID)
		case err != nil:
			return fmt.Errorf("reading token %d: %w", tokenID, err)
		case kind != KindFineGrained || owner == "" || strings.EqualFold(owner, user):
			return errorf(ErrNotOrgToken, "token %d is not a fine-grained token aimed at an organization", tokenID)
		case owner != org:
			// The organization as the token records it, exactly as the
			// grant lookup below compares it: "Octo-Org" for a token of
			// octo-org would file a request no list of octo-org shows.
			// Grants exist only for a token's resource owner (rule 6).
			return errorf(ErrOtherOrg, "token %d's resource owner is %s, not %s (rule 6)", tokenID, owner, org)
		case revoked:
			// A revoked token never works again: a request for it would
			// only sit in the organization's queue.
			return errorf(ErrTokenRevoked, "token %d is revoked; create a new token and ask for access with it", tokenID)
		}
		// Only members and owners may aim a fine-grained token at an
		// organization (rule 10): a user who left it, or is an outside
		// collaborator now, is refused as creation refuses one
		// (rego/pat/creation.rego, the same words). An approval would
		// otherwise wait for the day the user is a member again.
		if member, err := isMember(ctx, tx, user, org); err != nil {
			return err
		} else if !member {
			return errorf(ErrNotMember, "%s", NotMemberMessage(user, org))
		}
		cur, err := scanGrant(tx.QueryRowContext(ctx, `SELECT `+grantColumns+` FROM requests r WHERE r.token_id = $1 AND r.org = $2 ORDER BY r.id DESC LIMIT 1`, tokenID, org))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			// No grant yet: a first request.
		case err != nil:
			return fmt.Errorf("reading grant of token %d: %w", tokenID, err)
		case cur.State != GrantDenied && cur.State != GrantRevoked:
			return errorf(ErrGrantOpen, "token %d: its grant for %s is %s; only a denied or revoked grant can be requested again", tokenID, org, cur.State)
		case p.ApprovalDisabled:
			// A pending grant lets the token through where approval is
			// disabled (rules 20 and 22): the request would undo the
			// owner's decision before any owner saw it.
			decision := "revoked its access"
			if cur.State == GrantDenied {
				decision = "denied its request"
			}
			return errorf(ErrDecisionStands, "token %d: approval of fine-grained personal access tokens is disabled in %s, so a new request "+
				"would let the token through before an owner reviewed it: an owner %s (request %d), and an owner's decision stands (rule 20); "+
				"ask an owner of %s to require approval, or create a new token", tokenID, org, decision, cur.ID, org)
		}
		now := db.now()
		g = Grant{TokenID: tokenID, Org: org, State: GrantPending, Reason: justification, CreatedAt: now, UpdatedAt: now}
		if g.ID, err = insertRequest(ctx, tx, g, justification, ""); err != nil {
			return err
		}
		return db.audit(ctx, tx, AuditEvent{At: now, Actor: actor, Action: ActionRequestCreate, Org: org, TokenID: tokenID, RequestID: g.ID, Reason: justification})
	})
	return g, err
}

// NotMemberMessage is why a user who is not a member (or an owner) of an
// organization cannot aim a fine-grained token at it, in the words of the
// creation check (rego/pat/creation.rego, rule 10).
func NotMemberMessage(user, org string) string {
	return fmt.Sprintf("%s is not a member of %s: only members of %s can create fine-grained personal access tokens for it; ask an owner of %s for membership", user, org, org, org)
}

// isMember reports whether user is a member or an owner of org (rule 10),
// comparing names without regard to case, as the decision's index does.
func isMember(ctx context.Context, tx *sql.Tx, user, org string) (bool, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM memberships WHERE lower(user_login) = lower($1) AND lower(org) = lower($2) AND role IN ('member', 'owner')`,
		user, org).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("reading the membership of %s in %s: %w", user, org, err)
	}
	return n > 0, nil
}

// touchBatch is the most ids one TouchLastUsed statement carries.
const touchBatch = 500

// TouchLastUsed records that tokens were used at at, in one statement per
// batch of touchBatch ids. It writes no change-log entry: last use does not
// change a decision.
func (db *DB) TouchLastUsed(ctx context.Context, ids []int64, at time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		for start := 0; start < len(ids); start += touchBatch {
			batch := ids[start:min(start+touchBatch, len(ids))]
			var q strings.Builder
			q.WriteString(`UPDATE tokens SET last_used_at = $1 WHERE id IN (`)
			args := make([]any, 0, len(batch)+1)
			args = append(args, nanos(at))
			for i, id := range batch {
				if i > 0 {
					q.WriteByte(',')
				}
				q.WriteString("$" + strconv.Itoa(i+2))
				args = append(args, id)
			}
			q.WriteString(`) AND (last_used_at IS NULL OR last_used_at < $1)`)
			if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
				return fmt.Errorf("recording last use: %w", db.needPrivilege(err, "UPDATE (last_used_at)", "tokens"))
			}
		}
		return nil
	})
}
