package admin

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/opa-pat/opa-pat/plugin/store"
)

// requestsAndAudit is an organization's every request and its audit log, to
// check that a refusal wrote nothing.
func (f *fixture) requestsAndAudit(t *testing.T, org string) string {
	t.Helper()
	r := f.do(t, "GET", "/orgs/"+org+"/personal-access-token-requests?state=all&per_page=100", f.as("alice-admin"), nil)
	if r.status != 200 {
		t.Fatalf("requests: %d %s", r.status, r.body)
	}
	return r.body + "\n" + f.auditLog(t, org)
}

// currentRequest is the id of a token's current request in org.
func (f *fixture) currentRequest(t *testing.T, org string, tokenID int64) int64 {
	t.Helper()
	r := f.do(t, "GET", fmt.Sprintf("/orgs/%s/personal-access-token-requests?state=all&token_id=%d", org, tokenID), f.as("alice-admin"), nil)
	var items []struct {
		ID int64 `json:"id"`
	}
	if r.status != 200 || json.Unmarshal([]byte(r.body), &items) != nil || len(items) != 1 {
		t.Fatalf("requests of token %d: %d %s", tokenID, r.status, r.body)
	}
	return items[0].ID
}

// Where approval is disabled (acme-labs), a pending grant lets a token
// through (rules 20 and 22): a request again after an owner revoked or
// denied a token's access would give it back before any review, and the
// token would drop out of the owner's list of tokens, unrevocable. The
// request is a 422 naming id, saying which decision stands and what to do,
// and nothing is written.
func TestRequestAgainWhereApprovalIsDisabled(t *testing.T) {
	f, ids := grantlessWorld(t)
	again := func(id int64) response {
		return f.do(t, "POST", "/user/personal-access-tokens/"+itoa(id)+"/requests", f.as("bob-user"), map[string]any{"reason": "pls"})
	}
	refusal := func(id, request int64, decision string) string {
		return fmt.Sprintf("id: token %d: approval of fine-grained personal access tokens is disabled in acme-labs, so a new request would let "+
			"the token through before an owner reviewed it: an owner %s (request %d), and an owner's decision stands (rule 20); "+
			"ask an owner of acme-labs to require approval, or create a new token", id, decision, request)
	}
	// Revoked: the owner revoked the access labs had without a grant.
	labs := ids["labs"]
	if r := f.do(t, "POST", "/orgs/acme-labs/personal-access-tokens/"+itoa(labs), f.as("alice-admin"), map[string]any{"action": "revoke", "reason": "leaked"}); r.status != 204 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	revoked := f.currentRequest(t, "acme-labs", labs)
	// Denied: a first request is filed (the token has no grant), and denied.
	sel := ids["labs-selected"]
	if r := again(sel); r.status != 201 {
		t.Fatalf("first request: %d %s", r.status, r.body)
	}
	denied := f.currentRequest(t, "acme-labs", sel)
	if r := f.do(t, "POST", "/orgs/acme-labs/personal-access-token-requests/"+itoa(denied), f.as("alice-admin"), map[string]any{"action": "deny"}); r.status != 204 {
		t.Fatalf("deny: %d %s", r.status, r.body)
	}
	before := f.requestsAndAudit(t, "acme-labs")
	for _, tc := range []struct {
		note    string
		id      int64
		message string
	}{
		{"revoked", labs, refusal(labs, revoked, "revoked its access")},
		{"denied", sel, refusal(sel, denied, "denied its request")},
	} {
		t.Run(tc.note, func(t *testing.T) {
			r := again(tc.id)
			if want := invalidBody("PersonalAccessTokenRequest", "id", "invalid", tc.message, docUserTokens); r.status != 422 || r.body != want {
				t.Fatalf("got  %d %s\nwant 422 %s", r.status, r.body, want)
			}
		})
	}
	if after := f.requestsAndAudit(t, "acme-labs"); after != before {
		t.Fatalf("a refused request wrote:\n%s\nwas\n%s", after, before)
	}
	// The revoked token stays revoked: listed, and still revocable is moot.
	if r := f.do(t, "GET", "/orgs/acme-labs/personal-access-tokens?state=revoked", f.as("alice-admin"), nil); !containsID(t, r.body, labs) {
		t.Fatalf("token %d is not listed as revoked: %s", labs, r.body)
	}
}

func containsID(t *testing.T, body string, id int64) bool {
	t.Helper()
	var items []struct {
		ID int64 `json:"id"`
	}
	if err := json.Unmarshal([]byte(body), &items); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	for _, it := range items {
		if it.ID == id {
			return true
		}
	}
	return false
}

// A user who is no longer a member of the organization (an outside
// collaborator now) cannot ask again for an old token, in creation's words
// (rule 10), and an owner cannot approve such a user's pending request: it
// would start to work the day the user is a member again. A denial closes
// it. Nothing is written on a refusal.
func TestNonMembersRequests(t *testing.T) {
	f := newFixture(t, true)
	ctx := t.Context()
	all := f.tokenID(t, "bob-all")
	// bob's pending request (bob-all), and a denied one to ask again for.
	r := f.do(t, "POST", "/user/personal-access-tokens", f.as("bob-maker"),
		map[string]any{"name": "later", "kind": "fine_grained", "resource_owner": "octo-org", "repository_selection": "all", "permissions": map[string]string{"contents": "read"}})
	var made struct {
		ID      int64 `json:"id"`
		Request struct {
			ID int64 `json:"id"`
		} `json:"request"`
	}
	if r.status != 201 || json.Unmarshal([]byte(r.body), &made) != nil {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	if r := f.do(t, "POST", "/orgs/octo-org/personal-access-token-requests/"+itoa(made.Request.ID), f.as("alice-admin"), map[string]any{"action": "deny"}); r.status != 204 {
		t.Fatalf("deny: %d %s", r.status, r.body)
	}
	if _, err := f.db.Import(ctx, &store.Dump{Memberships: []store.DumpMembership{{User: "bob", Org: "octo-org", Role: "outside_collaborator"}}}, "test"); err != nil {
		t.Fatal(err)
	}
	before := f.requestsAndAudit(t, "octo-org")
	r = f.do(t, "POST", "/user/personal-access-tokens/"+itoa(made.ID)+"/requests", f.as("bob-user"), map[string]any{"reason": "not a member anymore"})
	msg := "id: bob is not a member of octo-org: only members of octo-org can create fine-grained personal access tokens for it; ask an owner of octo-org for membership"
	if want := invalidBody("PersonalAccessTokenRequest", "id", "invalid", msg, docUserTokens); r.status != 422 || r.body != want {
		t.Fatalf("request again: got %d %s\nwant 422 %s", r.status, r.body, want)
	}
	pending := f.currentRequest(t, "octo-org", all)
	msg = fmt.Sprintf("the user of a request's token is not a member of octo-org (rule 10); nothing to approve (deny the request to close it): request %d (token %d of bob)", pending, all)
	r = f.do(t, "POST", "/orgs/octo-org/personal-access-token-requests/"+itoa(pending), f.as("alice-admin"), map[string]any{"action": "approve"})
	if want := invalidBody("PersonalAccessTokenRequest", "pat_request_id", "invalid", msg, docReviewRequest); r.status != 422 || r.body != want {
		t.Fatalf("approve one: got %d %s\nwant 422 %s", r.status, r.body, want)
	}
	r = f.do(t, "POST", "/orgs/octo-org/personal-access-token-requests", f.as("alice-admin"), map[string]any{"pat_request_ids": []int64{pending}, "action": "approve"})
	if want := invalidBody("PersonalAccessTokenRequest", "pat_request_ids", "invalid", msg, docReviewRequests); r.status != 422 || r.body != want {
		t.Fatalf("approve many: got %d %s\nwant 422 %s", r.status, r.body, want)
	}
	if after := f.requestsAndAudit(t, "octo-org"); after != before {
		t.Fatalf("a refusal wrote:\n%s\nwas\n%s", after, before)
	}
	if r := f.do(t, "POST", "/orgs/octo-org/personal-access-token-requests/"+itoa(pending), f.as("alice-admin"), map[string]any{"action": "deny"}); r.status != 204 {
		t.Fatalf("deny: %d %s", r.status, r.body)
	}
}

// A request whose token has expired cannot be approved (the token gets 401
// everywhere, rule 2), as one of a revoked token cannot be reviewed; it
// may be denied, which closes it: the organization's list still shows it,
// with "token_expired": true. Nothing is written on the refusal.
func TestExpiredTokensRequestIsNotApproved(t *testing.T) {
	f := newFixture(t, true)
	ctx := t.Context()
	now := time.Now().UTC()
	raw := gen(t, "fine_grained")
	f.raw["soon"] = raw
	if _, err := f.db.Import(ctx, &store.Dump{
		Tokens: []store.DumpToken{{Token: raw, Name: "soon", Kind: "fine_grained", User: "bob", ResourceOwner: "octo-org", RepositorySelection: "all",
			Permissions: map[string]string{"contents": "read"}, CreatedAt: ptr(now.Add(-time.Hour).Format(time.RFC3339)),
			ExpiresAt: store.NonNull(now.Add(-time.Minute).Format(time.RFC3339)), Revoked: ptr(false)}},
		Grants: []store.DumpGrant{{TokenName: "soon", User: "bob", Org: "octo-org", State: "pending", Reason: "ci"}},
	}, "test"); err != nil {
		t.Fatal(err)
	}
	id := f.tokenID(t, "soon")
	req := f.currentRequest(t, "octo-org", id)
	before := f.requestsAndAudit(t, "octo-org")
	msg := fmt.Sprintf("the token of a request has expired; nothing to approve (deny the request to close it): request %d (token %d)", req, id)
	r := f.do(t, "POST", "/orgs/octo-org/personal-access-token-requests/"+itoa(req), f.as("alice-admin"), map[string]any{"action": "approve"})
	if want := invalidBody("PersonalAccessTokenRequest", "pat_request_id", "invalid", msg, docReviewRequest); r.status != 422 || r.body != want {
		t.Fatalf("approve: got %d %s\nwant 422 %s", r.status, r.body, want)
	}
	if after := f.requestsAndAudit(t, "octo-org"); after != before {
		t.Fatalf("a refusal wrote:\n%s\nwas\n%s", after, before)
	}
	if r := f.do(t, "POST", "/orgs/octo-org/personal-access-token-requests/"+itoa(req), f.as("alice-admin"), map[string]any{"action": "deny"}); r.status != 204 {
		t.Fatalf("deny: %d %s", r.status, r.body)
	}
}
