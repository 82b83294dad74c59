// Package admin is opa-pat's admin API: GitHub's REST endpoints for managing
// fine-grained personal access tokens of an organization (approval requests,
// grants, their repositories), an audit log endpoint, and endpoints for
// users' own tokens. Callers authenticate with their own personal access
// token; the policy data.pat.admin decides what they may do. Every change
// goes through the token store, so it reaches decisions through the store's
// change log like a change made with the CLI. docs/admin-api.md is the
// reference.
package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/logging"
	"github.com/open-policy-agent/opa/v1/plugins"

	"github.com/opa-pat/opa-pat/plugin/issue"
	"github.com/opa-pat/opa-pat/plugin/store"
	"github.com/opa-pat/opa-pat/plugin/token"
)

// shutdownTimeout bounds how long Stop waits for requests in flight.
const shutdownTimeout = 5 * time.Second

// Deps is what the admin API works with.
type Deps struct {
	// Manager evaluates data.pat.admin and holds data.pat.settings.
	Manager *plugins.Manager
	// Store is the token store the API reads and changes.
	Store *store.DB
	// Prefixes are the token prefixes of the deployment.
	Prefixes token.Prefixes
	// Logger; nil means the manager's.
	Logger logging.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server is the admin API.
type Server struct {
	cfg    *Config
	deps   Deps
	db     *store.DB
	policy *evaluator
	logger logging.Logger
	now    func() time.Time
	mux    *http.ServeMux

	checkerMu       sync.Mutex
	checker         *issue.Checker
	checkerSettings string

	mu       sync.Mutex
	srv      *http.Server
	listener net.Listener
	done     chan struct{}
}

// New returns the admin API, not yet listening.
func New(cfg *Config, deps Deps) *Server {
	s := &Server{cfg: cfg, deps: deps, db: deps.Store, policy: newEvaluator(deps.Manager), logger: deps.Logger, now: deps.Now}
	if s.logger == nil {
		s.logger = deps.Manager.Logger()
	}
	s.logger = s.logger.WithFields(map[string]any{"plugin": "pat", "service": "admin"})
	if s.now == nil {
		s.now = time.Now
	}
	s.mux = http.NewServeMux()
	s.routes()
	return s
}

func (s *Server) routes() {
	s.mux.HandleFunc("GET /orgs/{org}/personal-access-token-requests", s.org("requests.list", docListRequests, s.listRequests))
	s.mux.HandleFunc("POST /orgs/{org}/personal-access-token-requests", s.org("requests.review", docReviewRequests, s.reviewRequests))
	s.mux.HandleFunc("POST /orgs/{org}/personal-access-token-requests/{id}", s.org("requests.review", docReviewRequest, s.reviewRequest))
	s.mux.HandleFunc("GET /orgs/{org}/personal-access-token-requests/{id}/repositories", s.org("requests.read", docRequestRepos, s.requestRepositories))
	s.mux.HandleFunc("GET /orgs/{org}/personal-access-tokens", s.org("tokens.list", docListGrants, s.listGrants))
	s.mux.HandleFunc("POST /orgs/{org}/personal-access-tokens", s.org("tokens.revoke", docRevokeGrants, s.revokeGrants))
	s.mux.HandleFunc("POST /orgs/{org}/personal-access-tokens/{id}", s.org("tokens.revoke", docRevokeGrant, s.revokeGrant))
	s.mux.HandleFunc("GET /orgs/{org}/personal-access-tokens/{id}/repositories", s.org("tokens.read", docGrantRepos, s.grantRepositories))
	s.mux.HandleFunc("GET /orgs/{org}/audit-log", s.org("audit.list", docAuditLog, s.auditLog))
	s.mux.HandleFunc("GET /user/personal-access-tokens", s.authenticated(docUserTokens, s.listOwnTokens))
	s.mux.HandleFunc("POST /user/personal-access-tokens", s.authenticated(docUserTokens, s.createToken))
	s.mux.HandleFunc("DELETE /user/personal-access-tokens/{id}", s.authenticated(docUserTokens, s.revokeOwnToken))
	s.mux.HandleFunc("POST /user/personal-access-tokens/{id}/requests", s.authenticated(docUserTokens, s.requestAgain))
	// Other methods on these paths, and other paths, are GitHub's JSON 404
	// rather than ServeMux's plain-text 405.
	for _, p := range []string{
		"/orgs/{org}/personal-access-token-requests", "/orgs/{org}/personal-access-token-requests/{id}",
		"/orgs/{org}/personal-access-token-requests/{id}/repositories", "/orgs/{org}/personal-access-tokens",
		"/orgs/{org}/personal-access-tokens/{id}", "/orgs/{org}/personal-access-tokens/{id}/repositories",
		"/orgs/{org}/audit-log", "/user/personal-access-tokens", "/user/personal-access-tokens/{id}",
		"/user/personal-access-tokens/{id}/requests", "/",
	} {
		s.mux.HandleFunc(p, func(w http.ResponseWriter, _ *http.Request) { writeError(w, notFound()) })
	}
}

// Handler is the API's HTTP handler.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// serveHTTP refuses a Host header that looks like a token when the links
// and *_url fields of the answer would be built from it (no url
// configured): it would come back in them. Any other request goes to its
// endpoint.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if s.cfg.baseURL == "" && s.looksLikeToken(r.Host) {
		writeError(w, newError(http.StatusBadRequest, "Bad Request: the Host header looks like a personal access token; send a token only in the Authorization header", docServing))
		return
	}
	s.mux.ServeHTTP(w, r)
}

// Start listens on the configured address and serves until Stop.
func (s *Server) Start(_ context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("admin API: listening on %q: %w", s.cfg.Addr, err)
	}
	s.listener = ln
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	s.done = make(chan struct{})
	go func(srv *http.Server, done chan struct{}) {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("The admin API stopped serving: %v.", err)
		}
	}(s.srv, s.done)
	s.logger.Info("Admin API listening on %s.", ln.Addr())
	return nil
}

// Addr is the address the API listens on, once started.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listener == nil {
		return ""
	}
	return s.listener.Addr().String()
}

// Stop stops serving, waiting a little for requests in flight.
func (s *Server) Stop(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return
	}
	if ctx.Err() != nil {
		// OPA stops its plugins with a context that is already canceled
		// when a signal ends the process: Shutdown would close the
		// connections of requests in flight at once. shutdownTimeout bounds
		// the wait instead.
		ctx = context.WithoutCancel(ctx)
	}
	ctx, cancel := context.WithTimeout(ctx, shutdownTimeout)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		s.srv.Close()
	}
	<-s.done
	s.srv, s.listener, s.done = nil, nil, nil
}
