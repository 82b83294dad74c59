package admin

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/opa-pat/opa-pat/plugin/builtins"
	"github.com/opa-pat/opa-pat/plugin/lastused"
	"github.com/opa-pat/opa-pat/plugin/store"
	"github.com/opa-pat/opa-pat/plugin/token"
)

// authenticate checks the caller's token: `Authorization: Bearer <PAT>` or
// `token <PAT>`, its format and checksum first, then the store by SHA-256.
// Unknown, malformed, expired and revoked tokens get a 401, and so do
// credentials given twice: several Authorization headers (Go's reader takes
// the first, a proxy may log or check the last, and the audit log would
// name someone else than the proxy saw), or one that holds more than one
// credential ("Bearer A, Bearer B", as a proxy may join two headers).
func (s *Server) authenticate(r *http.Request) (store.Token, *apiError) {
	hs := r.Header.Values("Authorization")
	if len(hs) == 0 || len(hs) == 1 && hs[0] == "" {
		return store.Token{}, newError(http.StatusUnauthorized, "Requires authentication", docAuthentication)
	}
	if len(hs) > 1 {
		return store.Token{}, newError(http.StatusUnauthorized, "Bad credentials: the request has more than one Authorization header; send one token, in one header", docAuthentication)
	}
	bad := newError(http.StatusUnauthorized, "Bad credentials", docAuthentication)
	scheme, raw, ok := strings.Cut(strings.TrimSpace(hs[0]), " ")
	if !ok || (!strings.EqualFold(scheme, "bearer") && !strings.EqualFold(scheme, "token")) {
		return store.Token{}, bad
	}
	raw = strings.TrimSpace(raw)
	if strings.ContainsAny(raw, ", \t") {
		return store.Token{}, newError(http.StatusUnauthorized, "Bad credentials: the Authorization header holds more than one credential; send one token, in one header", docAuthentication)
	}
	if _, ok := token.Parse(raw, s.deps.Prefixes); !ok {
		return store.Token{}, bad
	}
	t, ok, err := s.db.TokenByHash(r.Context(), token.Hash(raw))
	if err != nil {
		return store.Token{}, s.serverError(err, docAuthentication)
	}
	if !ok {
		return store.Token{}, bad
	}
	if t.Revoked {
		return store.Token{}, newError(http.StatusUnauthorized, "Bad credentials: this personal access token was revoked; create a new one", docAuthentication)
	}
	if !t.ExpiresAt.IsZero() && !s.now().Before(t.ExpiresAt) {
		return store.Token{}, newError(http.StatusUnauthorized, "Bad credentials: this personal access token has expired; create a new one", docAuthentication)
	}
	lastused.Mark(t.ID)
	return t, nil
}

// callerInput is the caller as the policy sees it: never the raw token.
func callerInput(t store.Token) map[string]any {
	scopes := make([]any, len(t.Scopes))
	for i, sc := range t.Scopes {
		scopes[i] = sc
	}
	perms := make(map[string]any, len(t.Permissions))
	for k, v := range t.Permissions {
		perms[k] = v
	}
	var expires any // null: no expiration
	if !t.ExpiresAt.IsZero() {
		expires = t.ExpiresAt.UnixNano()
	}
	return map[string]any{
		"token_id": t.ID, "kind": t.Kind, "user": t.User, "scopes": scopes,
		"resource_owner": t.ResourceOwner, "permissions": perms,
		"created_at_ns": t.CreatedAt.UnixNano(), "expires_at_ns": expires,
	}
}

// authorize asks data.pat.admin whether the caller may run op; a denial
// comes back as the error to answer with.
func (s *Server) authorize(ctx context.Context, caller store.Token, op, org, targetUser, doc string) *apiError {
	// Broken settings would read as the defaults in the policy: refuse, as
	// token decisions do meanwhile (plugin: settingsChecked).
	if src := builtins.Installed(); src != nil {
		if err := src.SettingsError(); err != nil {
			s.logger.Error("Admin API: %v.", err)
			return newError(http.StatusServiceUnavailable, "the settings (data.pat.settings) are invalid: the admin API refuses to decide until they are fixed", doc)
		}
	}
	ci := callerInput(caller)
	input := map[string]any{"operation": op, "caller": ci}
	if org != "" {
		input["org"] = org
		if caller.Kind == store.KindFineGrained {
			g, ok, err := s.db.Grant(ctx, caller.ID, org)
			if err != nil {
				return s.serverError(err, doc)
			}
			ci["grant_state"] = nil
			if ok {
				ci["grant_state"] = g.State
			}
		}
	}
	if targetUser != "" {
		input["target_user"] = targetUser
	}
	d, err := s.policy.decide(ctx, input)
	if errors.Is(err, errNoPolicy) {
		s.logger.Warn("Admin API: %v.", err)
		return newError(http.StatusServiceUnavailable, "the admin policy "+DecisionQuery+" is not loaded: deploy a bundle that contains it", doc)
	}
	if err != nil {
		s.logger.Error("Admin API: %v.", err)
		return internal(doc)
	}
	if d.Allow {
		return nil
	}
	return newError(d.Status, d.Message, doc)
}

// org wraps a handler of an organization endpoint: authentication, the
// organization's existence (404), then the policy.
func (s *Server) org(op, doc string, h func(w http.ResponseWriter, r *http.Request, caller store.Token, org string) *apiError) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		caller, e := s.authenticate(r)
		if e != nil {
			e.DocumentationURL = doc
			writeError(w, e)
			return
		}
		// GitHub compares logins without regard to case: /orgs/Octo-Org is
		// octo-org, as the store spells it (looked up only when the name as
		// given is not known).
		org := r.PathValue("org")
		known, err := s.db.OrgKnown(r.Context(), org)
		if err == nil && !known {
			var spelt string
			if spelt, err = s.db.Spelling(r.Context(), org); err == nil && spelt != org {
				org = spelt
				known, err = s.db.OrgKnown(r.Context(), org)
			}
		}
		if err != nil {
			writeError(w, s.serverError(err, doc))
			return
		}
		if !known {
			writeError(w, newError(http.StatusNotFound, "Not Found", doc))
			return
		}
		if e := s.authorize(r.Context(), caller, op, org, "", doc); e != nil {
			writeError(w, e)
			return
		}
		if e := readableQuery(r, doc); e != nil {
			writeError(w, e)
			return
		}
		r = r.WithContext(store.WithActorToken(r.Context(), caller.ID))
		if e := h(w, r, caller, org); e != nil {
			if e.DocumentationURL == "" {
				e.DocumentationURL = doc
			}
			writeError(w, e)
		}
	}
}

// authenticated wraps a handler of the caller's own tokens: the handler
// authorizes once it knows whose token is acted on.
func (s *Server) authenticated(doc string, h func(w http.ResponseWriter, r *http.Request, caller store.Token) *apiError) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		caller, e := s.authenticate(r)
		if e != nil {
			e.DocumentationURL = doc
			writeError(w, e)
			return
		}
		if e := readableQuery(r, doc); e != nil {
			writeError(w, e)
			return
		}
		r = r.WithContext(store.WithActorToken(r.Context(), caller.ID))
		if e := h(w, r, caller); e != nil {
			if e.DocumentationURL == "" {
				e.DocumentationURL = doc
			}
			writeError(w, e)
		}
	}
}

// readableQuery refuses the query of a GET that cannot be read whole: Go's
// reader drops a pair with a bad escape (token_id=%zz) and every pair of a
// query of more than 10,000, so a filter would be left out and the list
// would say more than was asked. A POST reads no query.
func readableQuery(r *http.Request, doc string) *apiError {
	if r.Method != http.MethodGet {
		return nil
	}
	if _, err := url.ParseQuery(r.URL.RawQuery); err != nil {
		return newError(http.StatusBadRequest, "Bad Request: the query cannot be read: "+err.Error(), doc)
	}
	return nil
}
