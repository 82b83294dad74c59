package admin

import (
	"net/http"
	"sort"
	"time"

	"github.com/opa-pat/opa-pat/plugin/permissions"
	"github.com/opa-pat/opa-pat/plugin/store"
)

// simpleUser is GitHub's simple-user, with what opa-pat knows of a user.
type simpleUser struct {
	Login     string `json:"login"`
	Type      string `json:"type"`
	SiteAdmin bool   `json:"site_admin"`
}

// permissionsJSON is GitHub's grouping of a fine-grained token's
// permissions.
type permissionsJSON struct {
	Organization map[string]string `json:"organization"`
	Repository   map[string]string `json:"repository"`
	Other        map[string]string `json:"other"`
}

// groupPermissions groups perms as GitHub's organization endpoints do:
// the organization permissions under organization, the permissions on the
// user's own account (gists, gpg_keys, user_models, ...) under other, and
// the rest, the repository permissions, under repository.
func groupPermissions(perms map[string]string) permissionsJSON {
	out := permissionsJSON{Organization: map[string]string{}, Repository: map[string]string{}, Other: map[string]string{}}
	for k, v := range perms {
		switch {
		case permissions.Organization(k):
			out.Organization[k] = v
		case permissions.Account(k):
			out.Other[k] = v
		default:
			out.Repository[k] = v
		}
	}
	return out
}

func timeString(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func nullTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := timeString(t)
	return &s
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// tokenFields are the token_* fields GitHub's items share.
type tokenFields struct {
	TokenID         int64   `json:"token_id"`
	TokenName       string  `json:"token_name"`
	TokenExpired    bool    `json:"token_expired"`
	TokenExpiresAt  *string `json:"token_expires_at"`
	TokenLastUsedAt *string `json:"token_last_used_at"`
}

func (s *Server) tokenFields(t store.Token) tokenFields {
	return tokenFields{
		TokenID: t.ID, TokenName: t.Name, TokenExpired: !t.ExpiresAt.IsZero() && !s.now().Before(t.ExpiresAt),
		TokenExpiresAt: nullTime(t.ExpiresAt), TokenLastUsedAt: nullTime(t.LastUsedAt),
	}
}

// requestJSON is an item of GET /orgs/{org}/personal-access-token-requests.
// state, reviewer and review_reason are opa-pat's additions.
type requestJSON struct {
	ID                  int64           `json:"id"`
	Reason              *string         `json:"reason"`
	Owner               simpleUser      `json:"owner"`
	RepositorySelection string          `json:"repository_selection"`
	RepositoriesURL     string          `json:"repositories_url"`
	Permissions         permissionsJSON `json:"permissions"`
	CreatedAt           string          `json:"created_at"`
	tokenFields
	State        string  `json:"state"`
	Reviewer     *string `json:"reviewer"`
	ReviewReason *string `json:"review_reason"`
}

// grantJSON is an item of GET /orgs/{org}/personal-access-tokens. Its id is
// the token's id (the pat_id the revoke endpoints take). state, reviewer and
// reason are opa-pat's additions.
type grantJSON struct {
	ID                  int64           `json:"id"`
	Owner               simpleUser      `json:"owner"`
	RepositorySelection string          `json:"repository_selection"`
	RepositoriesURL     string          `json:"repositories_url"`
	Permissions         permissionsJSON `json:"permissions"`
	AccessGrantedAt     *string         `json:"access_granted_at"`
	tokenFields
	State    string  `json:"state"`
	Reviewer *string `json:"reviewer"`
	Reason   *string `json:"reason"`
}

func (s *Server) base(r *http.Request) string {
	if s.cfg.baseURL != "" {
		return s.cfg.baseURL
	}
	return "http://" + r.Host
}

// githubSelection is a token's repository selection in the enum of
// GitHub's organization endpoints: all, subset (opa-pat's "selected") or
// none (opa-pat's "public": no repository of the organization beyond the
// public ones every token reads). opa-pat's own endpoints and the CLI keep
// opa-pat's names.
func githubSelection(selection string) string {
	switch selection {
	case "selected":
		return "subset"
	case "public":
		return "none"
	}
	return selection
}

func (s *Server) requestItem(r *http.Request, g store.OrgGrant) requestJSON {
	return requestJSON{
		ID: g.Grant.ID, Reason: nullString(g.Justification), Owner: simpleUser{Login: g.Token.User, Type: "User"},
		RepositorySelection: githubSelection(g.Token.RepositorySelection),
		RepositoriesURL:     s.base(r) + "/orgs/" + g.Grant.Org + "/personal-access-token-requests/" + itoa(g.Grant.ID) + "/repositories",
		Permissions:         groupPermissions(g.Token.Permissions), CreatedAt: timeString(g.Grant.CreatedAt),
		tokenFields: s.tokenFields(g.Token), State: g.Grant.State, Reviewer: nullString(g.Grant.Reviewer), ReviewReason: nullString(g.ReviewReason),
	}
}

func (s *Server) grantItem(r *http.Request, g store.OrgGrant) grantJSON {
	return grantJSON{
		ID: g.Token.ID, Owner: simpleUser{Login: g.Token.User, Type: "User"}, RepositorySelection: githubSelection(g.Token.RepositorySelection),
		RepositoriesURL: s.base(r) + "/orgs/" + g.Grant.Org + "/personal-access-tokens/" + itoa(g.Token.ID) + "/repositories",
		Permissions:     groupPermissions(g.Token.Permissions), AccessGrantedAt: accessGrantedAt(g.Grant),
		tokenFields: s.tokenFields(g.Token), State: g.Grant.State, Reviewer: nullString(g.Grant.Reviewer), Reason: nullString(g.Grant.Reason),
	}
}

// accessGrantedAt is when an approved grant was approved (its request's
// last update); a grant that is not approved grants no access.
func accessGrantedAt(g store.Grant) *string {
	if g.State != store.GrantApproved {
		return nil
	}
	s := timeString(g.UpdatedAt)
	return &s
}

// repositoryJSON is GitHub's minimal-repository, with what opa-pat knows.
type repositoryJSON struct {
	Name       string     `json:"name"`
	FullName   string     `json:"full_name"`
	Owner      simpleUser `json:"owner"`
	Private    bool       `json:"private"`
	Visibility string     `json:"visibility"`
}

func repositoryItem(r store.Repository) repositoryJSON {
	return repositoryJSON{Name: r.Name, FullName: r.Owner + "/" + r.Name, Owner: simpleUser{Login: r.Owner, Type: "Organization"},
		Private: r.Visibility != "public", Visibility: r.Visibility}
}

// tokenJSON is a token as its user sees it: never the raw token, except
// once in the answer to its creation.
type tokenJSON struct {
	ID                  int64             `json:"id"`
	Token               string            `json:"token,omitempty"`
	Name                string            `json:"name"`
	Kind                string            `json:"kind"`
	User                string            `json:"user"`
	Scopes              []string          `json:"scopes"`
	ResourceOwner       *string           `json:"resource_owner"`
	RepositorySelection *string           `json:"repository_selection"`
	Repositories        []string          `json:"repositories"`
	Permissions         map[string]string `json:"permissions"`
	CreatedAt           string            `json:"created_at"`
	ExpiresAt           *string           `json:"expires_at"`
	Expired             bool              `json:"expired"`
	Revoked             bool              `json:"revoked"`
	LastUsedAt          *string           `json:"last_used_at"`
	Request             *grantSummary     `json:"request"` // null: no grant (docs/admin-api.md)
}

// grantSummary is a token's current grant for its organization: reason is
// the requester's justification and review_reason the reviewer's, as in
// the organization's list of requests, so that a review does not replace
// what the user wrote.
type grantSummary struct {
	ID           int64   `json:"id"`
	Org          string  `json:"org"`
	State        string  `json:"state"`
	Reason       *string `json:"reason"`
	Reviewer     *string `json:"reviewer"`
	ReviewReason *string `json:"review_reason"`
}

func summary(g store.Grant, justification, review string) *grantSummary {
	return &grantSummary{ID: g.ID, Org: g.Org, State: g.State, Reason: nullString(justification), Reviewer: nullString(g.Reviewer),
		ReviewReason: nullString(review)}
}

func (s *Server) tokenItem(t store.Token, g *grantSummary) tokenJSON {
	out := tokenJSON{
		ID: t.ID, Name: t.Name, Kind: t.Kind, User: t.User, Scopes: sorted(t.Scopes), ResourceOwner: nullString(t.ResourceOwner),
		RepositorySelection: nullString(t.RepositorySelection), Repositories: sorted(t.Repositories), Permissions: t.Permissions,
		CreatedAt: timeString(t.CreatedAt), ExpiresAt: nullTime(t.ExpiresAt), Expired: !t.ExpiresAt.IsZero() && !s.now().Before(t.ExpiresAt),
		Revoked: t.Revoked, LastUsedAt: nullTime(t.LastUsedAt),
	}
	if out.Permissions == nil {
		out.Permissions = map[string]string{}
	}
	out.Request = g
	return out
}

func sorted(l []string) []string {
	out := append([]string{}, l...)
	sort.Strings(out)
	return out
}

// auditJSON is an audit event.
type auditJSON struct {
	ID        int64          `json:"id"`
	CreatedAt string         `json:"created_at"`
	Actor     string         `json:"actor"`
	Action    string         `json:"action"`
	Org       string         `json:"org"`
	TokenID   *int64         `json:"token_id"`
	RequestID *int64         `json:"request_id"`
	Reason    *string        `json:"reason"`
	Details   map[string]any `json:"details"`
}

func auditItem(e store.AuditEvent) auditJSON {
	out := auditJSON{ID: e.ID, CreatedAt: e.At.UTC().Format(time.RFC3339Nano), Actor: e.Actor, Action: e.Action, Org: e.Org,
		Reason: nullString(e.Reason), Details: e.Details}
	if e.TokenID != 0 {
		out.TokenID = &e.TokenID
	}
	if e.RequestID != 0 {
		out.RequestID = &e.RequestID
	}
	if out.Details == nil {
		out.Details = map[string]any{}
	}
	return out
}
