package admin

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/storage"

	"github.com/opa-pat/opa-pat/plugin/builtins"
	"github.com/opa-pat/opa-pat/plugin/index"
	"github.com/opa-pat/opa-pat/plugin/store"
	"github.com/opa-pat/opa-pat/plugin/token"
)

// grantlessWorld adds acme-labs to the fixture: approval disabled in its
// settings, alice its owner, bob a member, and bob's fine-grained tokens
// aimed at it without a grant (imported so: a token created there gets an
// approved grant at once); and a token of octo-org, where approval is
// required, without one.
func grantlessWorld(t *testing.T) (*fixture, map[string]int64) {
	t.Helper()
	f := newFixture(t, true)
	ctx := t.Context()
	m := f.srv.deps.Manager
	if err := storage.Txn(ctx, m.Store, storage.WriteParams, func(txn storage.Transaction) error {
		return m.Store.Write(ctx, txn, storage.AddOp, storage.MustParsePath("/pat/settings/organizations/acme-labs"),
			map[string]any{"fine_grained_approval": "disable"})
	}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	created, expires := now.Add(-time.Hour).Format(time.RFC3339), now.Add(30*24*time.Hour).Format(time.RFC3339)
	d := &store.Dump{
		Memberships:  []store.DumpMembership{{User: "alice", Org: "acme-labs", Role: "owner"}, {User: "bob", Org: "acme-labs", Role: "member"}},
		Repositories: []store.DumpRepository{{Owner: "acme-labs", Name: "research", Visibility: "private"}},
	}
	for _, tk := range []struct {
		name, owner, selection string
		repos                  []string
		expires                string
	}{
		{"labs", "acme-labs", "all", nil, expires},
		{"labs-selected", "acme-labs", "selected", []string{"research"}, expires},
		{"labs-expired", "acme-labs", "all", nil, now.Add(-time.Minute).Format(time.RFC3339)},
		{"octo-nogrant", "octo-org", "all", nil, expires},
	} {
		raw := gen(t, "fine_grained")
		f.raw[tk.name] = raw
		d.Tokens = append(d.Tokens, store.DumpToken{Token: raw, Name: tk.name, Kind: "fine_grained", User: "bob", ResourceOwner: tk.owner,
			RepositorySelection: tk.selection, Repositories: tk.repos, Permissions: map[string]string{"contents": "write"},
			CreatedAt: &created, ExpiresAt: store.NonNull(tk.expires), Revoked: ptr(false)})
	}
	if _, err := f.db.Import(ctx, d, "test"); err != nil {
		t.Fatal(err)
	}
	// The built-ins answer from an index of the store as it is now.
	idx := index.New()
	if err := idx.Load(ctx, f.db); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(builtins.Install(&builtins.Source{Index: idx, Prefixes: token.DefaultPrefixes}))
	ids := map[string]int64{}
	for _, name := range []string{"labs", "labs-selected", "labs-expired", "octo-nogrant"} {
		ids[name] = f.tokenID(t, name)
	}
	return f, ids
}

// Where approval is disabled, a member's fine-grained token aimed at the
// organization reaches it without a grant (SEMANTICS.md rule 20): GitHub's
// list of tokens with access to the organization lists it, and an owner can
// revoke it. It was left out of ?state=all, and its revocation was a 404
// (one) or a 422 "no grant for token 11" (many).
func TestGrantlessTokensAreListedAndRevocable(t *testing.T) {
	f, ids := grantlessWorld(t)
	const list = "/orgs/acme-labs/personal-access-tokens"
	items := func(t *testing.T, path string) []map[string]any {
		t.Helper()
		r := f.do(t, "GET", path, f.as("alice-admin"), nil)
		var out []map[string]any
		if r.status != 200 || json.Unmarshal([]byte(r.body), &out) != nil {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
		return out
	}
	names := func(items []map[string]any) string {
		var out []string
		for _, it := range items {
			out = append(out, fmt.Sprintf("%s/%s", it["token_name"], it["state"]))
		}
		return strings.Join(out, ",")
	}
	for _, tc := range []struct{ query, want string }{
		{"", "labs-selected/none,labs/none"},
		{"?state=all", "labs-selected/none,labs/none"},
		{"?state=none", "labs-selected/none,labs/none"},
		{"?state=approved", ""},
		{"?state=none&owner=BOB&repository=research&permission=contents", "labs-selected/none,labs/none"},
		{"?state=none&direction=asc&per_page=1&page=2", "labs-selected/none"},
	} {
		if got := names(items(t, list+tc.query)); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.query, got, tc.want)
		}
	}
	labs := itoa(ids["labs"])
	it := items(t, list+"?token_id="+labs)
	want := fmt.Sprintf(`{"access_granted_at":null,"id":%s,"owner":{"login":"bob","site_admin":false,"type":"User"},"permissions":{"organization":{},"other":{},"repository":{"contents":"write","metadata":"read"}},"reason":null,"repositories_url":"%s/orgs/acme-labs/personal-access-tokens/%s/repositories","repository_selection":"all","reviewer":null,"state":"none","token_expired":false,"token_expires_at":%q,"token_id":%s,"token_last_used_at":null,"token_name":"labs"}`,
		labs, f.ts.URL, labs, it[0]["token_expires_at"], labs)
	if got, _ := json.Marshal(it[0]); len(it) != 1 || string(got) != want {
		t.Fatalf("the item:\n%s\nwant\n%s", got, want)
	}
	if r := f.do(t, "GET", list+"/"+labs+"/repositories", f.as("alice-admin"), nil); r.status != 200 || !strings.Contains(r.body, `"full_name":"acme-labs/research"`) {
		t.Fatalf("its repositories: %d %s", r.status, r.body)
	}
	// The requests list has no request of it.
	if got := f.do(t, "GET", "/orgs/acme-labs/personal-access-token-requests?state=all", f.as("alice-admin"), nil); got.status != 200 || got.body != "[]" {
		t.Fatalf("requests: %d %s", got.status, got.body)
	}
	if r := f.do(t, "GET", "/orgs/acme-labs/personal-access-token-requests?state=none", f.as("alice-admin"), nil); r.status != 422 {
		t.Fatalf("requests ?state=none: %d %s", r.status, r.body)
	}

	// One, then many: each records a revoked grant with its audit event.
	if r := f.do(t, "POST", list+"/"+labs, f.as("alice-admin"), map[string]any{"action": "revoke", "reason": "offboarding"}); r.status != 204 || r.body != "" {
		t.Fatalf("revoke one: %d %s", r.status, r.body)
	}
	sel := itoa(ids["labs-selected"])
	if r := f.do(t, "POST", list, f.as("alice-admin"), map[string]any{"pat_ids": []int64{ids["labs-selected"]}, "action": "revoke"}); r.status != 202 || r.body != "{}" {
		t.Fatalf("revoke many: %d %s", r.status, r.body)
	}
	if got := names(items(t, list+"?state=all")); got != "labs-selected/revoked,labs/revoked" {
		t.Fatalf("after the revocations: %s", got)
	}
	if got := names(items(t, list)); got != "" {
		t.Fatalf("the tokens with access after the revocations: %s", got)
	}
	for _, id := range []string{labs, sel} {
		g, ok, err := f.db.Grant(t.Context(), ids[map[string]string{labs: "labs", sel: "labs-selected"}[id]], "acme-labs")
		if err != nil || !ok || g.State != store.GrantRevoked || g.Reviewer != "alice" {
			t.Fatalf("the grant of token %s: %+v %v %v", id, g, ok, err)
		}
	}
	r := f.do(t, "GET", "/orgs/acme-labs/audit-log?action=grant.revoke&token_id="+labs, f.as("alice-admin"), nil)
	var events []auditJSON
	if r.status != 200 || json.Unmarshal([]byte(r.body), &events) != nil || len(events) != 1 || events[0].Actor != "alice" ||
		events[0].Reason == nil || *events[0].Reason != "offboarding" || events[0].RequestID == nil || events[0].Details["had_grant"] != false ||
		events[0].Details["actor_token_id"] != float64(f.tokenID(t, "alice-admin")) {
		t.Fatalf("the audit event: %d %s", r.status, r.body)
	}
	// Revoked, it is an approved-or-not grant like any other: a second
	// revocation is refused.
	if r := f.do(t, "POST", list+"/"+labs, f.as("alice-admin"), map[string]any{"action": "revoke"}); r.status != 422 ||
		!strings.Contains(r.body, "only approved grants can be revoked: token "+labs+" is not approved in acme-labs") {
		t.Fatalf("revoke again: %d %s", r.status, r.body)
	}
}

// What does not reach the organization without a grant is neither listed
// nor revocable: an expired token, and any token of an organization that
// requires approval.
func TestGrantlessTokensOnlyWhereApprovalIsDisabled(t *testing.T) {
	f, ids := grantlessWorld(t)
	expired, octo := itoa(ids["labs-expired"]), itoa(ids["octo-nogrant"])
	for _, tc := range []struct {
		method, path string
		body         any
		status       int
		want         string
	}{
		{"GET", "/orgs/octo-org/personal-access-tokens?state=all&token_id=" + octo, nil, 200, "[]"},
		{"GET", "/orgs/octo-org/personal-access-tokens/" + octo + "/repositories", nil, 404, errBody("Not Found", docGrantRepos)},
		{"POST", "/orgs/octo-org/personal-access-tokens/" + octo, map[string]any{"action": "revoke"}, 404, errBody("Not Found", docRevokeGrant)},
		{"POST", "/orgs/octo-org/personal-access-tokens", map[string]any{"pat_ids": []string{octo}, "action": "revoke"}, 422,
			invalidBody("PersonalAccessToken", "pat_ids", "invalid", "no grant for token "+octo+" in octo-org", docRevokeGrants)},
		{"GET", "/orgs/acme-labs/personal-access-tokens?state=all&token_id=" + expired, nil, 200, "[]"},
		{"POST", "/orgs/acme-labs/personal-access-tokens/" + expired, map[string]any{"action": "revoke"}, 404, errBody("Not Found", docRevokeGrant)},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			body := tc.body
			if l, ok := body.(map[string]any); ok {
				if ids, ok := l["pat_ids"].([]string); ok {
					body = `{"pat_ids": [` + strings.Join(ids, ",") + `], "action": "revoke"}`
				}
			}
			r := f.do(t, tc.method, tc.path, f.as("alice-admin"), body)
			if r.status != tc.status || r.body != tc.want {
				t.Fatalf("got  %d %s\nwant %d %s", r.status, r.body, tc.status, tc.want)
			}
		})
	}
}
