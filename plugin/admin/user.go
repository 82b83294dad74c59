package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage"

	"github.com/opa-pat/opa-pat/plugin/issue"
	"github.com/opa-pat/opa-pat/plugin/store"
	"github.com/opa-pat/opa-pat/plugin/token"
)

var settingsPath = storage.MustParsePath("/pat/settings")

// GET /user/personal-access-tokens: the caller's tokens, newest first.
func (s *Server) listOwnTokens(w http.ResponseWriter, r *http.Request, caller store.Token) *apiError {
	if e := s.authorize(r.Context(), caller, "user.tokens.list", "", caller.User, docUserTokens); e != nil {
		return e
	}
	p, errs := parsePage(r.URL.Query())
	if len(errs) > 0 {
		return invalid(docUserTokens, "PersonalAccessToken", errs...)
	}
	tokens, total, err := s.db.UserTokens(r.Context(), caller.User, p.Page, p.PerPage)
	if err != nil {
		return s.storeError(err, "PersonalAccessToken", "", false, docUserTokens)
	}
	// The current grants of the page's tokens aimed at an organization, one
	// query per organization, with the justification and the review's
	// reason apart, as the organization's list of requests has them.
	aimed := map[string][]int64{}
	for _, t := range tokens {
		if t.Kind == store.KindFineGrained && t.ResourceOwner != "" && t.ResourceOwner != t.User {
			aimed[t.ResourceOwner] = append(aimed[t.ResourceOwner], t.ID)
		}
	}
	grants := map[int64]*grantSummary{}
	for org, ids := range aimed {
		rows, _, err := s.db.ListOrgGrants(r.Context(), store.OrgGrantFilter{Org: org, TokenIDs: ids})
		if err != nil {
			return s.storeError(err, "PersonalAccessToken", "", false, docUserTokens)
		}
		for _, g := range rows {
			grants[g.Token.ID] = summary(g.Grant, g.Justification, g.ReviewReason)
		}
	}
	items := make([]tokenJSON, len(tokens))
	for i, t := range tokens {
		items[i] = s.tokenItem(t, grants[t.ID])
	}
	s.setLink(w, r, p, total)
	writeJSON(w, http.StatusOK, items)
	return nil
}

// createBody is the body of POST /user/personal-access-tokens.
type createBody struct {
	Name                string                     `json:"name"`
	Kind                string                     `json:"kind"`
	Scopes              jsonList                   `json:"scopes"`
	ResourceOwner       string                     `json:"resource_owner"`
	RepositorySelection string                     `json:"repository_selection"`
	Repositories        jsonList                   `json:"repositories"`
	Permissions         map[string]json.RawMessage `json:"permissions"`
	ExpiresInDays       *int                       `json:"expires_in_days"`
	ExpiresAt           *string                    `json:"expires_at"`
	NoExpiry            bool                       `json:"no_expiry"`
	Reason              *string                    `json:"reason"`
}

// POST /user/personal-access-tokens: create a token for the caller; the
// raw token is in this answer only. The creation check (data.pat.creation,
// with the active bundle's settings) decides, as for the CLI.
func (s *Server) createToken(w http.ResponseWriter, r *http.Request, caller store.Token) *apiError {
	if e := s.authorize(r.Context(), caller, "user.tokens.create", "", caller.User, docUserTokens); e != nil {
		return e
	}
	var body createBody
	if e := decodeBody(r, &body, "PersonalAccessToken", docUserTokens); e != nil {
		return e
	}
	now := s.now()
	scopes, errs := body.Scopes.texts("scopes")
	repos, repoErrs := body.Repositories.texts("repositories")
	errs = append(errs, repoErrs...)
	perms, permErrs := permissionLevels(body.Permissions)
	errs = append(errs, permErrs...)
	req := issue.Request{
		Kind: body.Kind, User: caller.User, Name: body.Name, Scopes: scopes, ResourceOwner: body.ResourceOwner,
		RepositorySelection: body.RepositorySelection, Repositories: repos, Permissions: perms,
		NoExpiry: body.NoExpiry, Reason: str(body.Reason), Actor: caller.User, Creator: &caller,
	}
	switch body.Kind {
	case store.KindClassic, store.KindFineGrained:
	case "":
		errs = append(errs, fieldError{Field: "kind", Code: "missing_field", Message: `kind: missing, want "classic" or "fine_grained"`})
	default:
		errs = append(errs, fieldError{Field: "kind", Message: fmt.Sprintf(`kind: unknown value %s, want "classic" or "fine_grained"`, token.Quote(body.Kind))})
	}
	given := 0
	if body.ExpiresInDays != nil {
		given++
		switch days := *body.ExpiresInDays; {
		case days < 1:
			errs = append(errs, fieldError{Field: "expires_in_days", Message: fmt.Sprintf("expires_in_days: %d is not a positive number of days", days)})
		case days > 100_000 || !now.AddDate(0, 0, int(days)).Before(store.MaxTime):
			errs = append(errs, fieldError{Field: "expires_in_days", Message: fmt.Sprintf("expires_in_days: %d days from now is past %s, the latest expiry the store keeps; give no_expiry for a token that does not expire", days, store.MaxTime.Format(time.DateOnly))})
		default:
			req.ExpiresIn = time.Duration(days) * 24 * time.Hour
		}
	}
	if body.ExpiresAt != nil {
		given++
		t, err := time.Parse(time.RFC3339, *body.ExpiresAt)
		switch {
		case err != nil || !t.After(now):
			errs = append(errs, fieldError{Field: "expires_at", Message: fmt.Sprintf("expires_at: %s is not a future ISO 8601 time", token.Quote(*body.ExpiresAt))})
		case !t.Before(store.MaxTime):
			errs = append(errs, fieldError{Field: "expires_at", Message: fmt.Sprintf("expires_at: %s is past %s, the latest expiry the store keeps; give no_expiry for a token that does not expire", token.Quote(*body.ExpiresAt), store.MaxTime.Format(time.DateOnly))})
		default:
			req.ExpiresIn = t.Sub(now)
		}
	}
	if body.NoExpiry {
		given++
	}
	if given > 1 {
		errs = append(errs, fieldError{Field: "expires_at", Message: "expires_at: give one of expires_in_days, expires_at and no_expiry"})
	}
	errs = append(errs, checkReason(body.Reason)...)
	if len(errs) > 0 {
		return invalid(docUserTokens, "PersonalAccessToken", errs...)
	}
	checker, err := s.creationChecker(r.Context())
	if err != nil {
		return s.serverError(err, docUserTokens)
	}
	res, err := issue.Issue(r.Context(), s.db, checker, req, now)
	if refused, ok := errors.AsType[*issue.Refused](err); ok {
		errs := make([]fieldError, len(refused.Errors))
		for i, msg := range refused.Errors {
			errs[i] = fieldError{Field: "token", Code: "custom", Message: msg}
		}
		return invalid(docUserTokens, "PersonalAccessToken", errs...)
	}
	if err != nil {
		// Validation errors of the issuer and the store start with the field.
		msg := strings.TrimPrefix(err.Error(), store.ErrInvalid.Error()+": ")
		if field, _, ok := strings.Cut(msg, ": "); ok && field != "" && !strings.ContainsAny(field, " ") {
			return invalid(docUserTokens, "PersonalAccessToken", fieldError{Field: field, Message: msg})
		}
		return s.storeError(err, "PersonalAccessToken", "", false, docUserTokens)
	}
	var g *grantSummary
	if res.Grant != nil {
		// A new grant: its reason is the justification, not yet reviewed.
		g = summary(*res.Grant, res.Grant.Reason, "")
	}
	out := s.tokenItem(res.Token, g)
	out.Token = res.Raw
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// permissionLevels reads a new token's permissions: each a level, a
// string; null or another type is a 422 naming the permission
// (permissions.contents), where a map of strings would read null as "".
// The levels themselves are the issuer's and the store's to check.
func permissionLevels(raw map[string]json.RawMessage) (map[string]string, []fieldError) {
	if raw == nil {
		return nil, nil
	}
	out := make(map[string]string, len(raw))
	var errs []fieldError
	for _, name := range slices.Sorted(maps.Keys(raw)) {
		v := bytes.TrimSpace(raw[name])
		var level string
		if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, &level) != nil {
			field := "permissions." + name
			if token.Hidden(name) || !permissionShape(name) {
				field = "permissions" // the name is quoted in the message, or not at all
				errs = append(errs, fieldError{Field: field, Message: fmt.Sprintf(`permissions: the level of %s: want "read", "write" or "admin", got %s`, token.Quote(name), jsonValue(v))})
				continue
			}
			errs = append(errs, fieldError{Field: field, Message: fmt.Sprintf(`%s: want "read", "write" or "admin", got %s`, field, jsonValue(v))})
			continue
		}
		out[name] = level
	}
	return out, errs
}

// permissionShape reports whether name looks like a permission's, such as
// may stand in a field's name.
func permissionShape(name string) bool {
	if name == "" || len(name) > 64 || name[0] < 'a' || name[0] > 'z' {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// creationChecker returns the creation check for the active settings
// (data.pat.settings in OPA's store), compiled again only when they change.
func (s *Server) creationChecker(ctx context.Context) (*issue.Checker, error) {
	var settings map[string]any
	v, err := storage.ReadOne(ctx, s.deps.Manager.Store, settingsPath)
	switch {
	case storage.IsNotFound(err):
	case err != nil:
		return nil, fmt.Errorf("reading data.pat.settings: %w", err)
	default:
		if av, ok := v.(ast.Value); ok { // OPA's store gives ast values when optimized for reads
			if v, err = ast.JSON(av); err != nil {
				return nil, fmt.Errorf("encoding data.pat.settings: %w", err)
			}
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("encoding data.pat.settings: %w", err)
		}
		if settings, err = issue.ParseSettings(b); err != nil {
			return nil, err
		}
	}
	key, _ := json.Marshal(settings)
	s.checkerMu.Lock()
	defer s.checkerMu.Unlock()
	if s.checker != nil && s.checkerSettings == string(key) {
		return s.checker, nil
	}
	c, err := issue.NewChecker(ctx, settings)
	if err != nil {
		return nil, err
	}
	s.checker, s.checkerSettings = c, string(key)
	return c, nil
}

// ownToken reads a token of the path and asks the policy whether the caller
// may run op on it; someone else's token is not found.
func (s *Server) ownToken(r *http.Request, caller store.Token, op string) (store.Token, *apiError) {
	id, ok := pathID(r, "id")
	if !ok {
		return store.Token{}, newError(http.StatusNotFound, "Not Found", docUserTokens)
	}
	t, ok, err := s.db.Token(r.Context(), id)
	if err != nil {
		return store.Token{}, s.storeError(err, "PersonalAccessToken", "", false, docUserTokens)
	}
	if !ok {
		return store.Token{}, newError(http.StatusNotFound, "Not Found", docUserTokens)
	}
	if e := s.authorize(r.Context(), caller, op, "", t.User, docUserTokens); e != nil {
		return store.Token{}, e
	}
	return t, nil
}

// DELETE /user/personal-access-tokens/{id}: revoke one of the caller's
// tokens; 204.
func (s *Server) revokeOwnToken(w http.ResponseWriter, r *http.Request, caller store.Token) *apiError {
	t, e := s.ownToken(r, caller, "user.tokens.revoke")
	if e != nil {
		return e
	}
	if err := s.db.RevokeToken(r.Context(), t.ID, caller.User, ""); err != nil {
		return s.storeError(err, "PersonalAccessToken", "id", true, docUserTokens)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// POST /user/personal-access-tokens/{id}/requests: after a denial or a
// revocation, ask the token's organization again; 201 with the request.
func (s *Server) requestAgain(w http.ResponseWriter, r *http.Request, caller store.Token) *apiError {
	t, e := s.ownToken(r, caller, "user.requests.create")
	if e != nil {
		return e
	}
	var body struct {
		Reason *string `json:"reason"`
	}
	if e := decodeBody(r, &body, "PersonalAccessTokenRequest", docUserTokens); e != nil {
		return e
	}
	if errs := checkReason(body.Reason); len(errs) > 0 {
		return invalid(docUserTokens, "PersonalAccessTokenRequest", errs...)
	}
	// Where approval is disabled, a pending request would let the token
	// through before any owner reviewed it (rules 20 and 22): the store
	// refuses one after a denial or a revocation (store.ErrDecisionStands).
	// The active policy says whether it is (a token aimed at no
	// organization is the store's to refuse).
	disabled := false
	if t.Kind == store.KindFineGrained && t.ResourceOwner != "" && !strings.EqualFold(t.ResourceOwner, t.User) {
		var err error
		if disabled, err = s.policy.approvalDisabled(r.Context(), t.ResourceOwner); err != nil {
			s.logger.Error("Admin API: %v.", err)
			return internal(docUserTokens)
		}
	}
	// The token's own organization: the store refuses a token that has
	// none (store.ErrNotOrgToken), a revoked one, one whose user is not a
	// member of the organization, one whose grant is pending or approved,
	// and one whose owner's decision stands.
	g, err := s.db.RequestAgain(r.Context(), store.RequestAgainParams{TokenID: t.ID, Org: t.ResourceOwner, Actor: caller.User,
		Justification: str(body.Reason), ApprovalDisabled: disabled})
	switch {
	case errors.Is(err, store.ErrNotOrgToken), errors.Is(err, store.ErrTokenRevoked), errors.Is(err, store.ErrGrantOpen),
		errors.Is(err, store.ErrNotMember), errors.Is(err, store.ErrDecisionStands):
		// What the id names is at fault: the message says which field.
		return invalid(docUserTokens, "PersonalAccessTokenRequest", fieldError{Field: "id", Message: "id: " + err.Error()})
	case err != nil:
		return s.storeError(err, "PersonalAccessTokenRequest", "id", false, docUserTokens)
	}
	// A new request: its reason is the justification, not yet reviewed.
	writeJSON(w, http.StatusCreated, summary(g, g.Reason, ""))
	return nil
}
