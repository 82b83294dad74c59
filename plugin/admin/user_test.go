package admin

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opa-pat/opa-pat/plugin/store"
	"github.com/opa-pat/opa-pat/plugin/token"
)

// marshalAsServed encodes v as writeJSON does: without HTML escapes.
func marshalAsServed(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return strings.TrimSpace(b.String())
}

// invalidBody is the 422 answer naming one field of resource.
func invalidBody(resource, field, code, message, doc string) string {
	return marshalAsServed(apiError{Message: validationFailedText + ": " + message,
		Errors: []fieldError{{Resource: resource, Field: field, Code: code, Message: message}}, DocumentationURL: doc})
}

// repositories go only with "selected", as the CLI's --repositories
// excludes --all-repositories and --public-repositories: a list beside
// another selection is a 422 naming it, and nothing is created.
func TestCreateTokenRepositoriesOnlyWithSelected(t *testing.T) {
	f := newFixture(t, true)
	const path = "/user/personal-access-tokens"
	before := f.do(t, "GET", path+"?per_page=100", f.as("bob-user"), nil)
	for _, tc := range []struct {
		note      string
		selection any
		want      string
	}{
		{note: "all", selection: "all", want: `repositories: only a token for "selected" repositories names them; this one is for "all" repositories`},
		{note: "public", selection: "public", want: `repositories: only a token for "selected" repositories names them; this one is for "public" repositories`},
		{note: "public by default", want: `repositories: only a token for "selected" repositories names them; this one is for "public" (the default) repositories`},
	} {
		t.Run(tc.note, func(t *testing.T) {
			body := map[string]any{"name": "x", "kind": "fine_grained", "resource_owner": "octo-org", "repositories": []string{"app"}}
			if tc.selection != nil {
				body["repository_selection"] = tc.selection
			}
			r := f.do(t, "POST", path, f.as("bob-user"), body)
			if want := invalidBody("PersonalAccessToken", "repositories", "invalid", tc.want, docUserTokens); r.status != 422 || r.body != want {
				t.Fatalf("got %d %s\nwant 422 %s", r.status, r.body, want)
			}
		})
	}
	if after := f.do(t, "GET", path+"?per_page=100", f.as("bob-user"), nil); after.body != before.body {
		t.Fatalf("a token was created:\n%s\nwas\n%s", after.body, before.body)
	}
	// An empty list is no list (bob-maker holds repo, which a token for
	// all repositories needs).
	r := f.do(t, "POST", path, f.as("bob-maker"), map[string]any{"name": "x", "kind": "fine_grained", "resource_owner": "octo-org",
		"repository_selection": "all", "repositories": []string{}})
	if r.status != 201 {
		t.Fatalf("all with an empty list: %d %s", r.status, r.body)
	}
}

// tokenID is the id of the fixture's token of that name.
func (f *fixture) tokenID(t *testing.T, name string) int64 {
	t.Helper()
	tk, ok, err := f.db.TokenByHash(t.Context(), token.Hash(f.raw[name]))
	if err != nil || !ok {
		t.Fatalf("token %s: %v", name, err)
	}
	return tk.ID
}

// Every 422 names its resource, a type error too, and a missing kind is
// missing (missing_field), as a missing action is.
func TestBodyErrorsNameTheResource(t *testing.T) {
	f := newFixture(t, true)
	bobAll := itoa(f.tokenID(t, "bob-all"))
	for _, tc := range []struct {
		note, as, method, path, body string
		want                         string
	}{
		{note: "no kind", as: "bob-user", path: "/user/personal-access-tokens", body: `{"name": "a"}`,
			want: invalidBody("PersonalAccessToken", "kind", "missing_field", `kind: missing, want "classic" or "fine_grained"`, docUserTokens)},
		{note: "an empty kind", as: "bob-user", path: "/user/personal-access-tokens", body: `{"name": "a", "kind": ""}`,
			want: invalidBody("PersonalAccessToken", "kind", "missing_field", `kind: missing, want "classic" or "fine_grained"`, docUserTokens)},
		{note: "a name of the wrong type", as: "bob-user", path: "/user/personal-access-tokens", body: `{"name": 5, "kind": "classic"}`,
			want: invalidBody("PersonalAccessToken", "name", "invalid", "name: want a string, got a JSON number", docUserTokens)},
		{note: "a reason of the wrong type", as: "bob-user", path: "/user/personal-access-tokens/" + bobAll + "/requests", body: `{"reason": true}`,
			want: invalidBody("PersonalAccessTokenRequest", "reason", "invalid", "reason: want a string, got a JSON bool", docUserTokens)},
		{note: "review: ids of the wrong type", as: "alice-admin", path: "/orgs/octo-org/personal-access-token-requests", body: `{"pat_request_ids": ["1"], "action": "deny"}`,
			want: invalidBody("PersonalAccessTokenRequest", "pat_request_ids", "invalid", `pat_request_ids[0]: want a positive integer id, got the string "1"`, docReviewRequests)},
		{note: "review one: an action of the wrong type", as: "alice-admin", path: "/orgs/octo-org/personal-access-token-requests/1", body: `{"action": 1}`,
			want: invalidBody("PersonalAccessTokenRequest", "action", "invalid", "action: want a string, got a JSON number", docReviewRequest)},
		{note: "revoke: ids of the wrong type", as: "alice-admin", path: "/orgs/octo-org/personal-access-tokens", body: `{"pat_ids": 7, "action": "revoke"}`,
			want: invalidBody("PersonalAccessToken", "pat_ids", "invalid", "pat_ids: want an array of integers, got a JSON number", docRevokeGrants)},
		{note: "revoke one: a reason of the wrong type", as: "alice-admin", path: "/orgs/octo-org/personal-access-tokens/7", body: `{"action": "revoke", "reason": []}`,
			want: invalidBody("PersonalAccessToken", "reason", "invalid", "reason: want a string, got a JSON array", docRevokeGrant)},
	} {
		t.Run(tc.note, func(t *testing.T) {
			r := f.do(t, "POST", tc.path, f.as(tc.as), tc.body)
			if r.status != 422 || r.body != tc.want {
				t.Fatalf("got  %d %s\nwant 422 %s", r.status, r.body, tc.want)
			}
		})
	}
}

// A token's request in the user's list keeps the user's justification as
// reason once reviewed, and the reviewer's reason as review_reason, as the
// organization's list of requests has them.
func TestOwnTokensKeepTheJustification(t *testing.T) {
	f := newFixture(t, true)
	id := f.tokenID(t, "bob-all")
	request := func(t *testing.T) (string, string) {
		t.Helper()
		r := f.do(t, "GET", "/user/personal-access-tokens?per_page=100", f.as("bob-user"), nil)
		var items []struct {
			ID      int64           `json:"id"`
			Request json.RawMessage `json:"request"`
		}
		if r.status != 200 || json.Unmarshal([]byte(r.body), &items) != nil {
			t.Fatalf("own tokens: %d %s", r.status, r.body)
		}
		own := ""
		for _, it := range items {
			if it.ID == id {
				own = string(it.Request)
			}
		}
		r = f.do(t, "GET", "/orgs/octo-org/personal-access-token-requests?state=all&token_id="+itoa(id), f.as("alice-admin"), nil)
		var reqs []map[string]any
		if r.status != 200 || json.Unmarshal([]byte(r.body), &reqs) != nil || len(reqs) != 1 {
			t.Fatalf("the organization's requests: %d %s", r.status, r.body)
		}
		org, _ := json.Marshal(map[string]any{"id": reqs[0]["id"], "org": "octo-org", "state": reqs[0]["state"], "reason": reqs[0]["reason"],
			"reviewer": reqs[0]["reviewer"], "review_reason": reqs[0]["review_reason"]})
		return own, string(org)
	}
	own, org := request(t)
	if want := `{"id":1,"org":"octo-org","state":"pending","reason":"read everything","reviewer":null,"review_reason":null}`; own != want {
		t.Fatalf("pending: got %s\nwant %s", own, want)
	}
	if r := f.do(t, "POST", "/orgs/octo-org/personal-access-token-requests/1", f.as("alice-admin"), map[string]any{"action": "deny", "reason": "too broad"}); r.status != 204 {
		t.Fatalf("deny: %d %s", r.status, r.body)
	}
	own, org = request(t)
	if want := `{"id":1,"org":"octo-org","state":"denied","reason":"read everything","reviewer":"alice","review_reason":"too broad"}`; own != want {
		t.Fatalf("denied: got %s\nwant %s", own, want)
	}
	var a, b map[string]any
	if json.Unmarshal([]byte(own), &a) != nil || json.Unmarshal([]byte(org), &b) != nil || !reflect.DeepEqual(a, b) {
		t.Fatalf("the user's list says %s, the organization's %s", own, org)
	}
}

// A body over 1 MiB is a 413 and nothing of it is applied; one of exactly
// 1 MiB is read.
func TestBodyTooLarge(t *testing.T) {
	f := newFixture(t, true)
	const path = "/user/personal-access-tokens"
	body := func(n int) string {
		b := `{"name": "big", "kind": "classic", "scopes": ["user"]}`
		return b + strings.Repeat(" ", n-len(b))
	}
	r := f.do(t, "POST", path, f.as("bob-user"), body(maxBody+1))
	if want := errBody("the body is larger than 1048576 bytes", docUserTokens); r.status != 413 || r.body != want {
		t.Fatalf("got %d %s\nwant 413 %s", r.status, r.body, want)
	}
	if list := f.do(t, "GET", path, f.as("bob-user"), nil); strings.Contains(list.body, `"name":"big"`) {
		t.Fatalf("a token was created: %s", list.body)
	}
	if r := f.do(t, "POST", path, f.as("bob-user"), body(maxBody)); r.status != 201 {
		t.Fatalf("1 MiB: %d %s", r.status, r.body)
	}
}

// Asking again with a token that has no organization to ask, or whose grant
// is still open, is a 422 naming the id, in the store's words
// (store.RequestAgain), each message with the field, as docs/admin-api.md
// says of every 422.
func TestRequestAgainRefusals(t *testing.T) {
	f := newFixture(t, true)
	own, _, err := f.db.CreateToken(t.Context(), store.CreateTokenParams{Token: store.Token{Hash: token.Hash("own"), Name: "own", Kind: store.KindFineGrained,
		User: "bob", ResourceOwner: "bob", RepositorySelection: "all", CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}})
	if err != nil {
		t.Fatal(err)
	}
	classic, all, revoked := f.tokenID(t, "bob-user"), f.tokenID(t, "bob-all"), f.tokenID(t, "bob-revoked")
	for _, tc := range []struct {
		note    string
		id      int64
		message string
	}{
		{"classic", classic, fmt.Sprintf("id: token %d is not a fine-grained token aimed at an organization", classic)},
		{"revoked classic", revoked, fmt.Sprintf("id: token %d is not a fine-grained token aimed at an organization", revoked)},
		{"the user's own", own.ID, fmt.Sprintf("id: token %d is not a fine-grained token aimed at an organization", own.ID)},
		{"pending", all, fmt.Sprintf("id: token %d: its grant for octo-org is pending; only a denied or revoked grant can be requested again", all)},
	} {
		t.Run(tc.note, func(t *testing.T) {
			r := f.do(t, "POST", "/user/personal-access-tokens/"+itoa(tc.id)+"/requests", f.as("bob-user"), map[string]any{"reason": "again"})
			if want := invalidBody("PersonalAccessTokenRequest", "id", "invalid", tc.message, docUserTokens); r.status != 422 || r.body != want {
				t.Fatalf("got  %d %s\nwant 422 %s", r.status, r.body, want)
			}
		})
	}
}

// A token cannot create one that outlives it or reaches further than it
// (rego/pat/creation.rego): bob-user has the user scope only and expires in
// 30 days.
func TestCreateTokenNoFurtherThanItsCreator(t *testing.T) {
	f := newFixture(t, true)
	const path = "/user/personal-access-tokens"
	var mine []tokenJSON
	if r := f.do(t, "GET", path+"?per_page=100", f.as("bob-user"), nil); r.status != 200 || json.Unmarshal([]byte(r.body), &mine) != nil {
		t.Fatalf("listing: %d %s", r.status, r.body)
	}
	i := slices.IndexFunc(mine, func(tk tokenJSON) bool { return tk.Name == "bob-user" })
	if i < 0 || mine[i].ExpiresAt == nil {
		t.Fatalf("bob-user in %+v", mine)
	}
	creatorExpires := *mine[i].ExpiresAt

	expect422(t, f.do(t, "POST", path, f.as("bob-user"), map[string]any{"name": "x", "kind": "classic", "scopes": []string{"repo", "user"}}), "token",
		`a token cannot create one that reaches further than it: the token making this request lacks the "repo" scope; create the token with one that has it, or ask an operator (opa-pat token create)`)
	expect422(t, f.do(t, "POST", path, f.as("bob-user"), map[string]any{"name": "x", "kind": "fine_grained", "repository_selection": "all", "permissions": map[string]string{"contents": "write"}}), "token",
		`a token cannot create one that reaches further than it: the permissions "contents", "metadata" need the "repo" scope, which the token making this request lacks; create the token with one that has it, or ask an operator (opa-pat token create)`)
	expect422(t, f.do(t, "POST", path, f.as("bob-user"), map[string]any{"name": "x", "kind": "classic", "scopes": []string{"user"}, "no_expiry": true}), "token",
		"a token cannot create one that outlives it: the token making this request expires at "+creatorExpires+" and the new one has no expiration date; choose an expiration on or before then")

	// Without an expiry the new token gets GitHub's 30 days, or its
	// creator's expiry when that comes first.
	r := f.do(t, "POST", path, f.as("bob-user"), map[string]any{"name": "default", "kind": "classic", "scopes": []string{"read:user"}})
	var out tokenJSON
	if r.status != 201 || json.Unmarshal([]byte(r.body), &out) != nil || out.ExpiresAt == nil || *out.ExpiresAt != creatorExpires {
		t.Fatalf("got %d %s, want 201 expiring at %s", r.status, r.body, creatorExpires)
	}
	if list := f.do(t, "GET", path+"?per_page=100", f.as("bob-user"), nil); strings.Count(list.body, `"name":"x"`) != 0 {
		t.Fatalf("a refused token was created: %s", list.body)
	}
}

// A token cannot create a fine-grained token with a permission whose
// requests the Envoy gate would refuse it (creation.rego, _gate_needs):
// bob-maker holds repo and user, not workflow, delete_repo or admin:org.
func TestCreateTokenNoFurtherThanTheGateAsks(t *testing.T) {
	f := newFixture(t, true)
	const path = "/user/personal-access-tokens"
	fg := func(perms map[string]string) map[string]any {
		return map[string]any{"name": "x", "kind": "fine_grained", "resource_owner": "octo-org", "repository_selection": "all", "permissions": perms}
	}
	expect422(t, f.do(t, "POST", path, f.as("bob-maker"), fg(map[string]string{"workflows": "write", "contents": "write"})), "token",
		`a token cannot create one that reaches further than it: the permissions "workflows" need the "workflow" scope, which the token making this request lacks; create the token with one that has it, or ask an operator (opa-pat token create)`)
	expect422(t, f.do(t, "POST", path, f.as("bob-maker"), fg(map[string]string{"codespaces": "read"})), "token",
		`a token cannot create one that reaches further than it: the permissions "codespaces" need the "codespace" scope, which the token making this request lacks; create the token with one that has it, or ask an operator (opa-pat token create)`)
	// metadata: read on private repositories, with the user scope alone.
	expect422(t, f.do(t, "POST", path, f.as("bob-user"), fg(nil)), "token",
		`a token cannot create one that reaches further than it: the permissions "metadata" need the "repo" scope, which the token making this request lacks; create the token with one that has it, or ask an operator (opa-pat token create)`)
	if list := f.do(t, "GET", path+"?per_page=100", f.as("bob-user"), nil); strings.Contains(list.body, `"name":"x"`) {
		t.Fatalf("a refused token was created: %s", list.body)
	}
	// Public repositories only: metadata needs nothing more than before.
	if r := f.do(t, "POST", path, f.as("bob-user"), map[string]any{"name": "public", "kind": "fine_grained", "resource_owner": "octo-org"}); r.status != 201 {
		t.Fatalf("public repositories, metadata only: %d %s", r.status, r.body)
	}
}

// A new token's scopes and permissions are GitHub's names: anything else is
// a 422 naming the field (plugin/permissions), and nothing is created.
func TestCreateTokenRefusesUnknownNames(t *testing.T) {
	f := newFixture(t, true)
	const path = "/user/personal-access-tokens"
	before := f.do(t, "GET", path+"?per_page=100", f.as("bob-user"), nil)
	for _, tc := range []struct {
		note, field, message string
		body                 map[string]any
	}{
		{"an unknown permission", "permissions.bogus_perm", "permissions.bogus_perm: unknown permission",
			map[string]any{"name": "x", "kind": "fine_grained", "repository_selection": "all", "permissions": map[string]string{"bogus_perm": "read"}}},
		{"metadata: write", "permissions.metadata", `permissions.metadata: "write" is not a level of metadata, which is read-only on GitHub: give "read" or leave it out`,
			map[string]any{"name": "x", "kind": "fine_grained", "resource_owner": "octo-org", "repository_selection": "all", "permissions": map[string]string{"metadata": "write"}}},
		{"GitHub's two spellings of one permission", "permissions.emails",
			"permissions.emails: GitHub's REST API spells this permission email_addresses, which is given too; give it once, as email_addresses",
			map[string]any{"name": "x", "kind": "fine_grained", "permissions": map[string]string{"emails": "read", "email_addresses": "read"}}},
		{"an unknown scope", "scopes[0]", `scopes[0]: unknown scope "bogus:scope"`,
			map[string]any{"name": "x", "kind": "classic", "scopes": []string{"bogus:scope", "repo"}}},
	} {
		t.Run(tc.note, func(t *testing.T) {
			r := f.do(t, "POST", path, f.as("bob-user"), tc.body)
			if want := invalidBody("PersonalAccessToken", tc.field, "invalid", tc.message, docUserTokens); r.status != 422 || r.body != want {
				t.Fatalf("got  %d %s\nwant 422 %s", r.status, r.body, want)
			}
		})
	}
	if after := f.do(t, "GET", path+"?per_page=100", f.as("bob-user"), nil); after.body != before.body {
		t.Fatalf("a token was created:\n%s\nwas\n%s", after.body, before.body)
	}
}

// A control character in a new token's name (LF, BEL) is a 422 naming
// name, and nothing is created.
func TestCreateTokenRefusesControlCharactersInTheName(t *testing.T) {
	f := newFixture(t, true)
	for name, message := range map[string]string{
		"ci\nprod": `name: "ci\nprod" holds a control character (U+000A); a name is one line of text without them`,
		"ci\a":     `name: "ci\a" holds a control character (U+0007); a name is one line of text without them`,
	} {
		r := f.do(t, "POST", "/user/personal-access-tokens", f.as("bob-user"), map[string]any{"name": name, "kind": "classic"})
		if want := invalidBody("PersonalAccessToken", "name", "invalid", message, docUserTokens); r.status != 422 || r.body != want {
			t.Fatalf("%q: got  %d %s\nwant 422 %s", name, r.status, r.body, want)
		}
	}
	if list := f.do(t, "GET", "/user/personal-access-tokens?per_page=100", f.as("bob-user"), nil); strings.Contains(list.body, `"name":"ci`) {
		t.Fatalf("a token was created: %s", list.body)
	}
}

// Every token of the user's list has a request, null for a token without a
// grant (a classic token, one of the user's own), as documented: the key
// was left out.
func TestOwnTokensRequestIsNull(t *testing.T) {
	f := newFixture(t, true)
	r := f.do(t, "GET", "/user/personal-access-tokens?per_page=100", f.as("bob-user"), nil)
	var items []map[string]json.RawMessage
	if r.status != 200 || json.Unmarshal([]byte(r.body), &items) != nil || len(items) < 2 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	for _, it := range items {
		req, ok := it["request"]
		var name string
		_ = json.Unmarshal(it["name"], &name)
		switch {
		case !ok:
			t.Errorf("%s: no request key", name)
		case name == "bob-user" && string(req) != "null":
			t.Errorf("%s: request %s, want null", name, req)
		case name == "bob-all" && !strings.Contains(string(req), `"state":"pending"`):
			t.Errorf("%s: request %s", name, req)
		}
	}
	// A new classic token's answer has it too.
	r = f.do(t, "POST", "/user/personal-access-tokens", f.as("bob-user"), map[string]any{"name": "c", "kind": "classic"})
	if r.status != 201 || !strings.Contains(r.body, `"request":null`) {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
}
