package admin

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/opa-pat/opa-pat/plugin/store"
	"github.com/opa-pat/opa-pat/plugin/token"
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// storeError maps an error of a store write: unknown ids and ids in the
// wrong state are the client's (422 naming field, or 404 when notFound404),
// anything else is the server's.
func (s *Server) storeError(err error, resource, field string, notFound404 bool, doc string) *apiError {
	switch {
	case notFound404 && errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrInvalidState):
		return newError(http.StatusNotFound, "Not Found", doc)
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrInvalidState), errors.Is(err, store.ErrInvalid):
		return invalid(doc, resource, fieldError{Field: field, Message: err.Error()})
	}
	return s.serverError(err, doc)
}

// GET /orgs/{org}/personal-access-token-requests: pending requests, or
// those in ?state= (opa-pat's addition: pending, approved, denied, revoked
// or all).
func (s *Server) listRequests(w http.ResponseWriter, r *http.Request, _ store.Token, org string) *apiError {
	return listOrgGrants(s, w, r, org, false, "PersonalAccessTokenRequest", docListRequests, s.requestItem)
}

// reviewBody is the body of the review endpoints.
type reviewBody struct {
	Action *string `json:"action"`
	Reason *string `json:"reason"`
}

func checkAction(action *string, allowed ...string) []fieldError {
	if action == nil {
		return []fieldError{{Field: "action", Code: "missing_field", Message: fmt.Sprintf("action: missing, want %s", quoteOr(allowed))}}
	}
	for _, a := range allowed {
		if *action == a {
			return nil
		}
	}
	return []fieldError{{Field: "action", Message: fmt.Sprintf("action: unknown value %s, want %s", token.Quote(*action), quoteOr(allowed))}}
}

func quoteOr(l []string) string {
	out := ""
	for i, s := range l {
		if i > 0 {
			out += " or "
		}
		out += strconv.Quote(s)
	}
	return out
}

// POST /orgs/{org}/personal-access-token-requests: review 1 to 100
// requests at once, all or none; 202.
func (s *Server) reviewRequests(w http.ResponseWriter, r *http.Request, caller store.Token, org string) *apiError {
	var body struct {
		IDs    *idList `json:"pat_request_ids"`
		Action *string `json:"action"`
		Reason *string `json:"reason"`
	}
	if e := decodeBody(r, &body, "PersonalAccessTokenRequest", docReviewRequests); e != nil {
		return e
	}
	ids, errs := checkIDs("pat_request_ids", body.IDs)
	errs = append(errs, checkAction(body.Action, "approve", "deny")...)
	errs = append(errs, checkReason(body.Reason)...)
	if len(errs) > 0 {
		return invalid(docReviewRequests, "PersonalAccessTokenRequest", errs...)
	}
	_, err := s.db.Review(r.Context(), store.ReviewParams{Org: org, IDs: ids, Approve: *body.Action == "approve", Reason: str(body.Reason), Actor: caller.User})
	if err != nil {
		return s.storeError(err, "PersonalAccessTokenRequest", "pat_request_ids", false, docReviewRequests)
	}
	writeJSON(w, http.StatusAccepted, map[string]any{})
	return nil
}

// POST /orgs/{org}/personal-access-token-requests/{id}: review one
// request; 204.
func (s *Server) reviewRequest(w http.ResponseWriter, r *http.Request, caller store.Token, org string) *apiError {
	id, ok := pathID(r, "id")
	if !ok {
		return newError(http.StatusNotFound, "Not Found", docReviewRequest)
	}
	var body reviewBody
	if e := decodeBody(r, &body, "PersonalAccessTokenRequest", docReviewRequest); e != nil {
		return e
	}
	errs := append(checkAction(body.Action, "approve", "deny"), checkReason(body.Reason)...)
	if len(errs) > 0 {
		return invalid(docReviewRequest, "PersonalAccessTokenRequest", errs...)
	}
	_, err := s.db.Review(r.Context(), store.ReviewParams{Org: org, IDs: []int64{id}, Approve: *body.Action == "approve", Reason: str(body.Reason), Actor: caller.User})
	if err != nil {
		return s.storeError(err, "PersonalAccessTokenRequest", "pat_request_id", true, docReviewRequest)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// GET /orgs/{org}/personal-access-token-requests/{id}/repositories
func (s *Server) requestRepositories(w http.ResponseWriter, r *http.Request, _ store.Token, org string) *apiError {
	id, ok := pathID(r, "id")
	if !ok {
		return newError(http.StatusNotFound, "Not Found", docRequestRepos)
	}
	g, ok, err := s.db.OrgRequest(r.Context(), org, id)
	if err != nil {
		return s.storeError(err, "Repository", "", false, docRequestRepos)
	}
	if !ok {
		return newError(http.StatusNotFound, "Not Found", docRequestRepos)
	}
	return s.writeRepositories(w, r, org, g.Token, docRequestRepos)
}

// GET /orgs/{org}/personal-access-tokens/{id}/repositories: id is the
// token's id.
func (s *Server) grantRepositories(w http.ResponseWriter, r *http.Request, _ store.Token, org string) *apiError {
	id, ok := pathID(r, "id")
	if !ok {
		return newError(http.StatusNotFound, "Not Found", docGrantRepos)
	}
	// A token listed without a grant (approval disabled) has repositories
	// too.
	disabled, err := s.policy.approvalDisabled(r.Context(), org)
	if err != nil {
		s.logger.Error("Admin API: %v.", err)
		return internal(docGrantRepos)
	}
	rows, _, err := s.db.ListOrgGrants(r.Context(), store.OrgGrantFilter{Org: org, TokenIDs: []int64{id}, LiveTokens: true, Grantless: disabled})
	if err != nil {
		return s.storeError(err, "Repository", "", false, docGrantRepos)
	}
	if len(rows) == 0 {
		return newError(http.StatusNotFound, "Not Found", docGrantRepos)
	}
	return s.writeRepositories(w, r, org, rows[0].Token, docGrantRepos)
}

// writeRepositories answers with one page of the repositories of org that
// a token can reach: all of them, its selection (an unknown repository
// counts as private) or the public ones.
func (s *Server) writeRepositories(w http.ResponseWriter, r *http.Request, org string, t store.Token, doc string) *apiError {
	p, errs := parsePage(r.URL.Query())
	if len(errs) > 0 {
		return invalid(doc, "Repository", errs...)
	}
	var repos []store.Repository
	var err error
	switch t.RepositorySelection {
	case "all":
		repos, err = s.db.OwnerRepositories(r.Context(), org, "")
	case "public":
		repos, err = s.db.OwnerRepositories(r.Context(), org, "public")
	default:
		for _, name := range sorted(t.Repositories) {
			rp, ok, rerr := s.db.Repository(r.Context(), org, name)
			if rerr != nil {
				err = rerr
				break
			}
			if !ok {
				rp = store.Repository{Owner: org, Name: name, Visibility: "private"}
			}
			repos = append(repos, rp)
		}
	}
	if err != nil {
		return s.storeError(err, "Repository", "", false, doc)
	}
	items := []repositoryJSON{}
	for i := (p.Page - 1) * p.PerPage; i < len(repos) && i < p.Page*p.PerPage; i++ {
		items = append(items, repositoryItem(repos[i]))
	}
	s.setLink(w, r, p, len(repos))
	writeJSON(w, http.StatusOK, items)
	return nil
}

// GET /orgs/{org}/personal-access-tokens: the tokens with access to the
// organization (an approved grant, or none where approval is disabled),
// or those in ?state= (opa-pat's addition).
func (s *Server) listGrants(w http.ResponseWriter, r *http.Request, _ store.Token, org string) *apiError {
	return listOrgGrants(s, w, r, org, true, "PersonalAccessToken", docListGrants, s.grantItem)
}

// listOrgGrants serves both list endpoints: they list the same grants of an
// organization and differ in the state listed when ?state= is absent, the
// resource named in errors, and how a row is rendered; the list of tokens
// (tokens) also lists the tokens that reach the organization without a
// grant, where approval is disabled (state "none").
func listOrgGrants[T any](s *Server, w http.ResponseWriter, r *http.Request, org string, tokens bool, resource, doc string,
	item func(*http.Request, store.OrgGrant) T) *apiError {
	q := r.URL.Query()
	f, p, errs := s.parseGrantFilter(q, org)
	states := `"pending", "approved", "denied", "revoked" or "all"`
	if tokens {
		states = `"approved", "none", "pending", "denied", "revoked" or "all"`
	}
	var grantless bool // whether the state asked for covers tokens without a grant
	switch st := q.Get("state"); {
	case st == "" && tokens:
		// The tokens with access: an approved grant, or none where approval
		// is disabled.
		f.State, grantless = store.GrantApproved, true
	case st == "":
		f.State = store.GrantPending
	case st == "all":
		grantless = tokens
	case st == store.NoGrant && tokens:
		f.NoGrants, grantless = true, true
	case st == store.GrantPending, st == store.GrantApproved, st == store.GrantDenied, st == store.GrantRevoked:
		f.State = st
	default:
		errs = append(errs, fieldError{Field: "state", Message: fmt.Sprintf(`state: unknown value %s, want %s`, token.Quote(st), states)})
	}
	if len(errs) > 0 {
		return invalid(doc, resource, errs...)
	}
	if grantless {
		disabled, err := s.policy.approvalDisabled(r.Context(), org)
		if err != nil {
			s.logger.Error("Admin API: %v.", err)
			return internal(doc)
		}
		f.Grantless = disabled
	}
	rows, total, err := s.db.ListOrgGrants(r.Context(), f)
	if err != nil {
		return s.storeError(err, resource, "", false, doc)
	}
	items := make([]T, len(rows))
	for i, g := range rows {
		items[i] = item(r, g)
	}
	s.setLink(w, r, p, total, grantListParams...)
	writeJSON(w, http.StatusOK, items)
	return nil
}

// POST /orgs/{org}/personal-access-tokens: revoke the grants of 1 to 100
// tokens at once, all or none; 202.
func (s *Server) revokeGrants(w http.ResponseWriter, r *http.Request, caller store.Token, org string) *apiError {
	var body struct {
		IDs    *idList `json:"pat_ids"`
		Action *string `json:"action"`
		Reason *string `json:"reason"`
	}
	if e := decodeBody(r, &body, "PersonalAccessToken", docRevokeGrants); e != nil {
		return e
	}
	ids, errs := checkIDs("pat_ids", body.IDs)
	errs = append(errs, checkAction(body.Action, "revoke")...)
	errs = append(errs, checkReason(body.Reason)...)
	if len(errs) > 0 {
		return invalid(docRevokeGrants, "PersonalAccessToken", errs...)
	}
	disabled, err := s.policy.approvalDisabled(r.Context(), org)
	if err != nil {
		s.logger.Error("Admin API: %v.", err)
		return internal(docRevokeGrants)
	}
	if _, err := s.db.RevokeAccess(r.Context(), store.RevokeParams{Org: org, TokenIDs: ids, Actor: caller.User, Reason: str(body.Reason), Grantless: disabled}); err != nil {
		return s.storeError(err, "PersonalAccessToken", "pat_ids", false, docRevokeGrants)
	}
	writeJSON(w, http.StatusAccepted, map[string]any{})
	return nil
}

// POST /orgs/{org}/personal-access-tokens/{id}: revoke one token's grant;
// 204.
func (s *Server) revokeGrant(w http.ResponseWriter, r *http.Request, caller store.Token, org string) *apiError {
	id, ok := pathID(r, "id")
	if !ok {
		return newError(http.StatusNotFound, "Not Found", docRevokeGrant)
	}
	var body struct {
		Action *string `json:"action"`
		Reason *string `json:"reason"`
	}
	if e := decodeBody(r, &body, "PersonalAccessToken", docRevokeGrant); e != nil {
		return e
	}
	errs := append(checkAction(body.Action, "revoke"), checkReason(body.Reason)...)
	if len(errs) > 0 {
		return invalid(docRevokeGrant, "PersonalAccessToken", errs...)
	}
	disabled, err := s.policy.approvalDisabled(r.Context(), org)
	if err != nil {
		s.logger.Error("Admin API: %v.", err)
		return internal(docRevokeGrant)
	}
	if _, err := s.db.RevokeAccess(r.Context(), store.RevokeParams{Org: org, TokenIDs: []int64{id}, Actor: caller.User, Reason: str(body.Reason), Grantless: disabled}); err != nil {
		return s.storeError(err, "PersonalAccessToken", "pat_id", true, docRevokeGrant)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// GET /orgs/{org}/audit-log?action=&actor=&token_id=&request_id=: the
// organization's audit events, newest first.
func (s *Server) auditLog(w http.ResponseWriter, r *http.Request, _ store.Token, org string) *apiError {
	q := r.URL.Query()
	p, errs := parsePage(q)
	f := store.AuditPageFilter{Org: org, Actor: q.Get("actor"), Action: q.Get("action"), Page: p.Page, PerPage: p.PerPage}
	if s.looksLikeToken(f.Actor) {
		errs = append(errs, tokenParam("actor"))
	}
	// token_id and request_id take the forms of the lists' token_id:
	// name[] or name, repeated or comma-separated, at most 50.
	var idErrs []fieldError
	f.TokenIDs, idErrs = queryIDs(q, "token_id", "token")
	errs = append(errs, idErrs...)
	f.RequestIDs, idErrs = queryIDs(q, "request_id", "request")
	errs = append(errs, idErrs...)
	if err := store.CheckAuditAction(f.Action); err != nil {
		errs = append(errs, fieldError{Field: "action", Message: "action: " + err.Error()})
	}
	// GitHub's audit log parameters that this log does not implement: a
	// client that sends them expects a narrower or another answer than it
	// would get, so they are refused rather than ignored.
	for _, p := range unsupportedAuditParams {
		if v, given := q[p.name]; given && !(p.name == "order" && len(v) == 1 && v[0] == "desc") {
			errs = append(errs, fieldError{Field: p.name, Code: "unsupported", Message: p.name + ": " + p.why})
		}
	}
	if len(errs) > 0 {
		return invalid(docAuditLog, "AuditEvent", errs...)
	}
	events, total, err := s.db.ListAuditPage(r.Context(), f)
	if err != nil {
		return s.storeError(err, "AuditEvent", "", false, docAuditLog)
	}
	items := make([]auditJSON, len(events))
	for i, e := range events {
		items[i] = auditItem(e)
	}
	s.setLink(w, r, p, total, auditParams...)
	writeJSON(w, http.StatusOK, items)
	return nil
}

// unsupportedAuditParams are GitHub's audit log parameters the log refuses,
// and why.
var unsupportedAuditParams = []struct{ name, why string }{
	{"phrase", "GitHub's search phrases are not supported; filter with actor, action, token_id and request_id"},
	{"include", "not supported: the log holds opa-pat's token events only"},
	{"after", "cursors are not supported; page with page and per_page"},
	{"before", "cursors are not supported; page with page and per_page"},
	{"order", `not supported but "desc": events come newest first`},
}
