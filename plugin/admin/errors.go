package admin

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/opa-pat/opa-pat/plugin/store"
)

// Documentation links, GitHub's for the endpoints GitHub has, ours for the
// others.
const (
	githubDocs           = "https://docs.github.com/rest/orgs/personal-access-tokens"
	docListRequests      = githubDocs + "#list-requests-to-access-organization-resources-with-fine-grained-personal-access-tokens"
	docReviewRequests    = githubDocs + "#review-requests-to-access-organization-resources-with-fine-grained-personal-access-tokens"
	docReviewRequest     = githubDocs + "#review-a-request-to-access-organization-resources-with-a-fine-grained-personal-access-token"
	docRequestRepos      = githubDocs + "#list-repositories-requested-to-be-accessed-by-a-fine-grained-personal-access-token"
	docListGrants        = githubDocs + "#list-fine-grained-personal-access-tokens-with-access-to-organization-resources"
	docRevokeGrants      = githubDocs + "#update-the-access-to-organization-resources-via-fine-grained-personal-access-tokens"
	docRevokeGrant       = githubDocs + "#update-the-access-a-fine-grained-personal-access-token-has-to-organization-resources"
	docGrantRepos        = githubDocs + "#list-repositories-a-fine-grained-personal-access-token-has-access-to"
	ourDocs              = "https://github.com/opa-pat/opa-pat/blob/main/docs/admin-api.md"
	docAuditLog          = ourDocs + "#audit-log"
	docUserTokens        = ourDocs + "#your-own-tokens"
	docAuthentication    = ourDocs + "#authentication"
	docServing           = ourDocs + "#serving-it"
	docNotFound          = ourDocs
	maxOwners            = 10
	maxIDs               = 50 // token_id and request_id filters, as GitHub's token_id
	defaultPerPage       = 30
	maxPerPage           = 100
	maxPage              = 10_000_000 // pages beyond it read as it: empty
	validationFailedText = "Validation Failed"
)

// apiError is an error answer, GitHub's shape: {"message",
// "documentation_url"} and, for a 422, the fields at fault.
type apiError struct {
	Status int `json:"-"`
	// RetryAfter, in seconds, is sent as the Retry-After header when set.
	RetryAfter       int          `json:"-"`
	Message          string       `json:"message"`
	Errors           []fieldError `json:"errors,omitempty"`
	DocumentationURL string       `json:"documentation_url"`
}

// fieldError names a bad field of a request, as GitHub's 422 answers do.
type fieldError struct {
	Resource string `json:"resource"`
	Field    string `json:"field"`
	Code     string `json:"code"`
	Message  string `json:"message"`
}

func newError(status int, message, doc string) *apiError {
	return &apiError{Status: status, Message: message, DocumentationURL: doc}
}

// invalid is a 422 naming the bad fields; the message repeats them so that
// a client that shows only the message still learns what to fix.
func invalid(doc, resource string, errs ...fieldError) *apiError {
	msgs := make([]string, len(errs))
	for i := range errs {
		errs[i].Resource = resource
		if errs[i].Code == "" {
			errs[i].Code = "invalid"
		}
		msgs[i] = errs[i].Message
	}
	return &apiError{Status: http.StatusUnprocessableEntity, Message: validationFailedText + ": " + strings.Join(msgs, "; "),
		Errors: errs, DocumentationURL: doc}
}

func notFound() *apiError { return newError(http.StatusNotFound, "Not Found", docNotFound) }

func internal(doc string) *apiError {
	return newError(http.StatusInternalServerError, "Server Error: the admin API could not complete the request; see the server log", doc)
}

// storeRetryAfter is the Retry-After, in seconds, of a 503 while the token
// store cannot be reached: a sidecar reconnects within 2s of its return.
const storeRetryAfter = 5

// serverError is the answer to an error that is not the request's: 503
// with Retry-After while the token store cannot be reached
// (store.Unavailable: the database down, renamed, out of connections),
// which says so and no more, and a warning in the log with the cause; 500
// for anything else (a bug), logged as an error.
func (s *Server) serverError(err error, doc string) *apiError {
	if store.Unavailable(err) {
		s.logger.Warn("Admin API: the token store is unavailable: %v.", err)
		e := newError(http.StatusServiceUnavailable, "Service Unavailable: the token store is unavailable; try again shortly", doc)
		e.RetryAfter = storeRetryAfter
		return e
	}
	s.logger.Error("Admin API: %v.", err)
	return internal(doc)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, e *apiError) {
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	writeJSON(w, e.Status, e)
}
