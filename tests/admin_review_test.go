package tests

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// callRaw sends body as it is, with one Authorization header per token
// named (or raw token) in as.
func (w *admWorld) callRaw(t *testing.T, method, path, body string, as ...string) admResponse {
	t.Helper()
	return w.send(t, method, path, strings.NewReader(body), as...)
}

// admMessage expects status and the answer's message, word for word.
func admMessage(t *testing.T, r admResponse, status int, message string) {
	t.Helper()
	var e struct {
		Message string `json:"message"`
	}
	if err := json.Unmarshal([]byte(r.body), &e); err != nil || r.status != status || e.Message != message {
		t.Fatalf("got  %d %s\nwant %d %q", r.status, r.body, status, message)
	}
}

// requestsAndAudit is an organization's every request and its audit log,
// to check that a refusal wrote nothing.
func (w *admWorld) requestsAndAudit(t *testing.T, org string) string {
	t.Helper()
	a := w.call(t, "GET", "/orgs/"+org+"/personal-access-token-requests?state=all&per_page=100", "alice-admin", nil)
	b := w.call(t, "GET", "/orgs/"+org+"/audit-log?per_page=100", "alice-admin", nil)
	if a.status != 200 || b.status != 200 {
		t.Fatalf("requests %d %s; audit log %d %s", a.status, a.body, b.status, b.body)
	}
	return a.body + "\n" + b.body
}

// Where approval is disabled (acme-labs), a request again after an owner
// revoked a token's access would let the token through before any review
// (a pending grant does not block there, rule 20), and take it out of the
// owner's list of tokens, unrevocable. Through the admin API and the CLI
// (which reads the settings the sidecar recorded in the store) it is
// refused, with why and what to do, nothing is written, and the decision
// keeps denying the token.
func TestAdminAPIOwnersDecisionStandsWhereApprovalIsDisabled(t *testing.T) {
	w := startAdmin(t)
	id := w.importLabs(t)
	admExpect(t, w.call(t, "POST", fmt.Sprintf("/orgs/acme-labs/personal-access-tokens/%d", id), "alice-admin",
		map[string]any{"action": "revoke", "reason": "offboarding"}), 204, "")
	poll(t, time.Second, "the decision to deny the revoked token", func() bool {
		allow, msg := w.decideAt(t, "labs", "acme-labs", "research")
		return !allow && msg == labsRevoked
	})
	revoked := admItems(t, w.call(t, "GET", "/orgs/acme-labs/personal-access-token-requests?state=revoked", "alice-admin", nil))
	if len(revoked) != 1 || revoked[0].TokenID != id {
		t.Fatalf("the revoked grant: %+v", revoked)
	}
	why := fmt.Sprintf("token %d: approval of fine-grained personal access tokens is disabled in acme-labs, so a new request would let the token "+
		"through before an owner reviewed it: an owner revoked its access (request %d), and an owner's decision stands (rule 20); "+
		"ask an owner of acme-labs to require approval, or create a new token", id, revoked[0].ID)
	before := w.requestsAndAudit(t, "acme-labs")
	admMessage(t, w.call(t, "POST", fmt.Sprintf("/user/personal-access-tokens/%d/requests", id), "bob-user", map[string]any{"reason": "pls"}),
		422, "Validation Failed: id: "+why)
	cliFail(t, "error: "+why, "requests", "create", "--store", w.store, "--org", "acme-labs", "--token", fmt.Sprint(id), "--reason", "pls")
	if after := w.requestsAndAudit(t, "acme-labs"); after != before {
		t.Fatalf("a refused request wrote:\n%s\nwas\n%s", after, before)
	}
	// The token stays denied, and revoked in the owner's list.
	time.Sleep(200 * time.Millisecond)
	if allow, msg := w.decideAt(t, "labs", "acme-labs", "research"); allow || msg != labsRevoked {
		t.Fatalf("after the refused requests: allow %t, %s", allow, msg)
	}
	if items := admItems(t, w.call(t, "GET", "/orgs/acme-labs/personal-access-tokens?state=revoked", "alice-admin", nil)); len(items) != 1 || items[0].ID != id {
		t.Fatalf("the revoked grant: %+v", items)
	}
}

// The audit's other findings, through the real admin API and CLI: keys in
// another case (F4), two Authorization headers (F6), an expired token's
// request (F7), a former member's request (F5). Each refusal writes
// nothing.
func TestAdminAPIReviewRefusals(t *testing.T) {
	w := startAdmin(t)
	pending := map[string]int64{} // token name -> its pending request
	for _, it := range admItems(t, w.call(t, "GET", "/orgs/octo-org/personal-access-token-requests?per_page=100", "alice-admin", nil)) {
		pending[it.TokenName] = it.ID
	}
	before := w.requestsAndAudit(t, "octo-org")

	// F4: {"action": "deny", "Action": "approve"} approved.
	admMessage(t, w.callRaw(t, "POST", "/orgs/octo-org/personal-access-token-requests",
		fmt.Sprintf(`{"pat_request_ids": [%d], "action": "deny", "Action": "approve"}`, pending["ci1"]), "alice-admin"),
		400, `Problems parsing JSON: the keys "action" and "Action" differ only in case; give each key once, as documented`)
	admMessage(t, w.callRaw(t, "POST", "/orgs/octo-org/personal-access-token-requests",
		fmt.Sprintf(`{"pat_request_ids": [%d], "ACTION": "approve"}`, pending["ci1"]), "alice-admin"),
		400, `Problems parsing JSON: the key "ACTION" is "action" in another case; keys are matched exactly, as on GitHub: give "action"`)
	admMessage(t, w.callRaw(t, "POST", "/user/personal-access-tokens",
		`{"name": "x", "kind": "classic", "scopes": ["repo"], "Kind": "fine_grained", "resource_owner": "octo-org"}`, "bob-user"),
		400, `Problems parsing JSON: the keys "kind" and "Kind" differ only in case; give each key once, as documented`)

	// F6: two Authorization headers; the first one was taken.
	admMessage(t, w.callRaw(t, "POST", fmt.Sprintf("/orgs/octo-org/personal-access-token-requests/%d", pending["ci1"]), `{"action": "approve"}`,
		"alice-admin", "bob-admin"),
		401, "Bad credentials: the request has more than one Authorization header; send one token, in one header")
	if after := w.requestsAndAudit(t, "octo-org"); after != before {
		t.Fatalf("a refused request wrote:\n%s\nwas\n%s", after, before)
	}

	// F7: a request whose token has expired is not approved; a denial closes it.
	dir := t.TempDir()
	raw := admGenerate(t, "fine_grained")
	now := time.Now().UTC()
	runCLI(t, w.bin, nil, "store", "import", "--store", w.store, writeFile(t, dir, "expired.json", fmt.Sprintf(`{
  "tokens": [{"token": %q, "name": "gone", "kind": "fine_grained", "user": "bob", "created_at": %q, "expires_at": %q, "revoked": false,
              "resource_owner": "octo-org", "repository_selection": "all", "permissions": {"contents": "read"}}],
  "grants": [{"token_name": "gone", "user": "bob", "org": "octo-org", "state": "pending", "reason": "ci"}]
}`, raw, now.Add(-time.Hour).Format(time.RFC3339), now.Add(-time.Minute).Format(time.RFC3339))))
	var gone admItem
	for _, it := range admItems(t, w.call(t, "GET", "/orgs/octo-org/personal-access-token-requests?per_page=100", "alice-admin", nil)) {
		if it.TokenName == "gone" {
			gone = it
		}
	}
	before = w.requestsAndAudit(t, "octo-org")
	expired := fmt.Sprintf("the token of a request has expired; nothing to approve (deny the request to close it): request %d (token %d)", gone.ID, gone.TokenID)
	admMessage(t, w.call(t, "POST", fmt.Sprintf("/orgs/octo-org/personal-access-token-requests/%d", gone.ID), "alice-admin", map[string]any{"action": "approve"}),
		422, "Validation Failed: "+expired)
	cliFail(t, "error: "+expired, "requests", "approve", "--store", w.store, "--org", "octo-org", fmt.Sprint(gone.ID))

	// F5: carol is an outside collaborator now: her request is not
	// approved, and she cannot ask again for a denied token.
	runCLI(t, w.bin, nil, "store", "import", "--store", w.store, writeFile(t, dir, "carol.json",
		`{"memberships": [{"user": "carol", "org": "octo-org", "role": "outside_collaborator"}]}`))
	carol := w.tokenID(t, "carol-ci")
	outside := fmt.Sprintf("the user of a request's token is not a member of octo-org (rule 10); nothing to approve (deny the request to close it): request %d (token %d of carol)",
		pending["carol-ci"], carol)
	before = w.requestsAndAudit(t, "octo-org")
	admMessage(t, w.call(t, "POST", "/orgs/octo-org/personal-access-token-requests", "alice-admin",
		map[string]any{"pat_request_ids": []int64{pending["carol-ci"]}, "action": "approve"}), 422, "Validation Failed: "+outside)
	cliFail(t, "error: "+outside, "requests", "approve", "--store", w.store, "--org", "octo-org", fmt.Sprint(pending["carol-ci"]))
	if after := w.requestsAndAudit(t, "octo-org"); after != before {
		t.Fatalf("a refused review wrote:\n%s\nwas\n%s", after, before)
	}
	admExpect(t, w.call(t, "POST", "/orgs/octo-org/personal-access-token-requests", "alice-admin",
		map[string]any{"pat_request_ids": []int64{pending["carol-ci"], gone.ID}, "action": "deny"}), 202, "")
	before = w.requestsAndAudit(t, "octo-org")
	cliFail(t, "error: carol is not a member of octo-org: only members of octo-org can create fine-grained personal access tokens for it; ask an owner of octo-org for membership",
		"requests", "create", "--store", w.store, "--org", "octo-org", "--token", fmt.Sprint(carol))
	if after := w.requestsAndAudit(t, "octo-org"); after != before {
		t.Fatalf("a refused request wrote:\n%s\nwas\n%s", after, before)
	}
}
