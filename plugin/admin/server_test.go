package admin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/plugins"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/opa-pat/opa-pat/plugin/builtins"
	"github.com/opa-pat/opa-pat/plugin/index"
	"github.com/opa-pat/opa-pat/plugin/irvm"
	"github.com/opa-pat/opa-pat/plugin/store"
	"github.com/opa-pat/opa-pat/plugin/token"
)

// fixture is an admin API over httptest, a real SQLite store, the real
// data.pat.admin policy in a real plugins.Manager, and an index the
// built-ins answer from.
type fixture struct {
	ts  *httptest.Server
	srv *Server
	db  *store.DB
	raw map[string]string
}

var testSettings = map[string]any{
	"enterprises":   map[string]any{"acme": map[string]any{"owners": []any{"erin"}}},
	"organizations": map[string]any{"octo-org": map[string]any{"enterprise": "acme"}},
}

func gen(t *testing.T, kind string) string {
	t.Helper()
	raw, err := token.Generate(kind, token.DefaultPrefixes)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func ptr[T any](v T) *T { return &v }

// newFixture holds the settings in OPA's store as ast values, as the
// sidecar's store does by default (opa-pat up; opa-pat run with
// --optimize-store-for-read-speed on).
func newFixture(t *testing.T, withPolicy bool) *fixture {
	t.Helper()
	return newFixtureStore(t, withPolicy, true)
}

// newFixtureStore is newFixture with the settings held as ast values or,
// astValues false, as Go values (OPA's default store).
func newFixtureStore(t *testing.T, withPolicy, astValues bool) *fixture {
	t.Helper()
	ctx := t.Context()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "pat.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{db: db, raw: map[string]string{}}
	now := time.Now().UTC()
	created, expires, past := now.Add(-time.Hour).Format(time.RFC3339), now.Add(30*24*time.Hour).Format(time.RFC3339), now.Add(-time.Minute).Format(time.RFC3339)
	d := &store.Dump{
		Users: []store.DumpUser{{Login: "alice", ManagedBy: store.Null()}, {Login: "bob", ManagedBy: store.Null()}},
		Memberships: []store.DumpMembership{
			{User: "alice", Org: "octo-org", Role: "owner"}, {User: "bob", Org: "octo-org", Role: "member"},
		},
		Repositories: []store.DumpRepository{
			{Owner: "octo-org", Name: "app", Visibility: "private"}, {Owner: "octo-org", Name: "docs", Visibility: "public"},
			{Owner: "octo-org", Name: "lib", Visibility: "internal"},
		},
	}
	add := func(name string, tk store.DumpToken) {
		tk.Token, tk.Name = gen(t, tk.Kind), name
		if tk.CreatedAt == nil {
			tk.CreatedAt = &created
		}
		if !tk.ExpiresAt.Present {
			tk.ExpiresAt = store.NonNull(expires)
		}
		if tk.Revoked == nil {
			tk.Revoked = new(false)
		}
		f.raw[name] = tk.Token
		d.Tokens = append(d.Tokens, tk)
	}
	add("alice-admin", store.DumpToken{Kind: "classic", User: "alice", Scopes: []string{"admin:org"}})
	add("bob-user", store.DumpToken{Kind: "classic", User: "bob", Scopes: []string{"user"}})
	add("bob-expired", store.DumpToken{Kind: "classic", User: "bob", Scopes: []string{"user"}, ExpiresAt: store.NonNull(past)})
	add("bob-revoked", store.DumpToken{Kind: "classic", User: "bob", Scopes: []string{"user"}, Revoked: new(true)})
	add("bob-all", store.DumpToken{Kind: "fine_grained", User: "bob", ResourceOwner: "octo-org", RepositorySelection: "all",
		Permissions: map[string]string{"contents": "read"}})
	add("alice-fg", store.DumpToken{Kind: "fine_grained", User: "alice", ResourceOwner: "octo-org", RepositorySelection: "public",
		Permissions: map[string]string{"personal_access_tokens": "read"}})
	// Approved, but living longer than the default limit of 366 days.
	long := now.Add(400*24*time.Hour - time.Hour).Format(time.RFC3339)
	add("alice-fg-long", store.DumpToken{Kind: "fine_grained", User: "alice", ResourceOwner: "octo-org", RepositorySelection: "all",
		Permissions: map[string]string{"personal_access_tokens": "read"}, ExpiresAt: store.NonNull(long)})
	// A token that creates tokens reaching what it reaches (repo), and
	// no further.
	add("bob-maker", store.DumpToken{Kind: "classic", User: "bob", Scopes: []string{"repo", "user"}})
	d.Grants = []store.DumpGrant{
		{TokenName: "bob-all", User: "bob", Org: "octo-org", State: "pending", Reason: "read everything"},
		{TokenName: "alice-fg", User: "alice", Org: "octo-org", State: "denied"},
		{TokenName: "alice-fg-long", User: "alice", Org: "octo-org", State: "approved"},
	}
	if _, err := db.Import(ctx, d, "test"); err != nil {
		t.Fatal(err)
	}

	idx := index.New()
	if err := idx.Load(ctx, db); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(builtins.Install(&builtins.Source{Index: idx, Prefixes: token.DefaultPrefixes}))

	data := inmem.NewFromObjectWithOpts(map[string]any{"pat": map[string]any{"settings": testSettings}},
		inmem.OptRoundTripOnWrite(false), inmem.OptReturnASTValuesOnRead(astValues))
	if withPolicy {
		// The admin policy and the package pat it asks for the
		// organization's policies (caller.rego and its helpers).
		if err := storage.Txn(ctx, data, storage.WriteParams, func(txn storage.Transaction) error {
			for _, name := range []string{"admin/admin.rego", "caller.rego", "settings.rego", "pat.rego"} {
				src, err := os.ReadFile(filepath.Join("..", "..", "rego", "pat", filepath.FromSlash(name)))
				if err != nil {
					return err
				}
				if err := data.UpsertPolicy(ctx, txn, "pat/"+name, src); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	m, err := plugins.New([]byte(`{}`), "test", data)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if os.Getenv("OPA_PAT_TEST_EVALUATOR") != "topdown" {
		// As the pat plugin does by default (evaluator: irvm).
		t.Cleanup(irvm.SetDefault(m.Store))
	}
	f.srv = New(&Config{Addr: "127.0.0.1:0"}, Deps{Manager: m, Store: db, Prefixes: token.DefaultPrefixes})
	f.ts = httptest.NewServer(f.srv.Handler())
	t.Cleanup(f.ts.Close)
	return f
}

type response struct {
	status int
	header http.Header
	body   string
}

func (f *fixture) do(t *testing.T, method, path, auth string, body any) response {
	t.Helper()
	var rd io.Reader
	if s, ok := body.(string); ok {
		rd = strings.NewReader(s)
	} else if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(t.Context(), method, f.ts.URL+path, rd)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return send(t, req)
}

// send sends req and reads the whole answer.
func send(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: strings.TrimSpace(string(b))}
}

func (f *fixture) as(name string) string { return "Bearer " + f.raw[name] }

func errBody(message, doc string) string {
	return marshalAsServed(apiError{Message: message, DocumentationURL: doc})
}

func TestAuthentication(t *testing.T) {
	f := newFixture(t, true)
	const path = "/user/personal-access-tokens"
	for _, tc := range []struct {
		note, auth string
		status     int
		body       string
	}{
		{note: "none", status: 401, body: errBody("Requires authentication", docUserTokens)},
		{note: "bearer", auth: f.as("bob-user"), status: 200},
		{note: "token scheme", auth: "token " + f.raw["bob-user"], status: 200},
		{note: "lower-case scheme", auth: "bearer " + f.raw["bob-user"], status: 200},
		{note: "basic scheme", auth: "Basic " + f.raw["bob-user"], status: 401, body: errBody("Bad credentials", docUserTokens)},
		{note: "bad checksum", auth: "Bearer " + otherLast(f.raw["bob-user"]), status: 401, body: errBody("Bad credentials", docUserTokens)},
		{note: "unknown", auth: "Bearer " + gen(t, "classic"), status: 401, body: errBody("Bad credentials", docUserTokens)},
		{note: "expired", auth: f.as("bob-expired"), status: 401,
			body: errBody("Bad credentials: this personal access token has expired; create a new one", docUserTokens)},
		{note: "revoked", auth: f.as("bob-revoked"), status: 401,
			body: errBody("Bad credentials: this personal access token was revoked; create a new one", docUserTokens)},
	} {
		t.Run(tc.note, func(t *testing.T) {
			r := f.do(t, "GET", path, tc.auth, nil)
			if r.status != tc.status || (tc.body != "" && r.body != tc.body) {
				t.Fatalf("got %d %s\nwant %d %s", r.status, r.body, tc.status, tc.body)
			}
		})
	}
}

// Credentials given twice are a 401 whatever they are: Go's reader took the
// first of several Authorization headers (bob's, 403 on an organization's
// list) where a proxy may check or log the last (alice's), and the other
// order answered 200. Nothing of the request is done.
func TestAuthenticationTwice(t *testing.T) {
	f := newFixture(t, true)
	const path = "/orgs/octo-org/personal-access-tokens"
	twoHeaders := errBody("Bad credentials: the request has more than one Authorization header; send one token, in one header", docListGrants)
	twoInOne := errBody("Bad credentials: the Authorization header holds more than one credential; send one token, in one header", docListGrants)
	for _, tc := range []struct {
		note    string
		headers []string
		status  int
		body    string
	}{
		{note: "one", headers: []string{f.as("alice-admin")}, status: 200},
		{note: "two headers, the owner's second", headers: []string{f.as("bob-user"), f.as("alice-admin")}, status: 401, body: twoHeaders},
		{note: "two headers, the owner's first", headers: []string{f.as("alice-admin"), f.as("bob-user")}, status: 401, body: twoHeaders},
		{note: "the same header twice", headers: []string{f.as("alice-admin"), f.as("alice-admin")}, status: 401, body: twoHeaders},
		{note: "an empty header beside one", headers: []string{"", f.as("alice-admin")}, status: 401, body: twoHeaders},
		{note: "two credentials joined by a comma", headers: []string{f.as("alice-admin") + ", " + f.as("bob-user")}, status: 401, body: twoInOne},
		{note: "two tokens after one scheme", headers: []string{f.as("alice-admin") + " " + f.raw["bob-user"]}, status: 401, body: twoInOne},
	} {
		t.Run(tc.note, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), "GET", f.ts.URL+path, nil)
			for _, h := range tc.headers {
				req.Header.Add("Authorization", h)
			}
			r := send(t, req)
			if r.status != tc.status || (tc.body != "" && r.body != tc.body) {
				t.Fatalf("got %d %s\nwant %d %s", r.status, r.body, tc.status, tc.body)
			}
		})
	}
	// A revocation sent twice-authenticated is not done.
	before := f.requestsAndAudit(t, "octo-org")
	req, _ := http.NewRequestWithContext(t.Context(), "POST", f.ts.URL+"/orgs/octo-org/personal-access-tokens/"+itoa(f.tokenID(t, "alice-fg-long")),
		strings.NewReader(`{"action": "revoke"}`))
	req.Header.Add("Authorization", f.as("alice-admin"))
	req.Header.Add("Authorization", f.as("bob-user"))
	if r := send(t, req); r.status != 401 {
		t.Fatalf("revoke with two headers: %d %s", r.status, r.body)
	}
	if after := f.requestsAndAudit(t, "octo-org"); after != before {
		t.Fatalf("a refused request wrote:\n%s\nwas\n%s", after, before)
	}
}

func TestNoPolicy(t *testing.T) {
	f := newFixture(t, false)
	r := f.do(t, "GET", "/orgs/octo-org/personal-access-tokens", f.as("alice-admin"), nil)
	want := errBody("the admin policy data.pat.admin.decision is not loaded: deploy a bundle that contains it", docListGrants)
	if r.status != 503 || r.body != want {
		t.Fatalf("got %d %s", r.status, r.body)
	}
}

func TestFineGrainedCaller(t *testing.T) {
	f := newFixture(t, true)
	r := f.do(t, "GET", "/orgs/octo-org/personal-access-tokens", f.as("alice-fg"), nil)
	want := errBody("octo-org requires approval of fine-grained personal access tokens and an owner denied this token's request: the policy is set by the octo-org organization; request access to octo-org again with a justification", docListGrants)
	if r.status != 403 || r.body != want {
		t.Fatalf("got %d %s", r.status, r.body)
	}
	// The organization's lifetime limit holds the caller's own token: the
	// policy sees its created_at_ns and expires_at_ns.
	r = f.do(t, "GET", "/orgs/octo-org/personal-access-tokens", f.as("alice-fg-long"), nil)
	want = errBody("octo-org forbids access via a fine-grained personal access token if the token's lifetime is greater than 366 days: the policy is set by the acme enterprise; the token's lifetime is 400 days; regenerate the token with an expiration of 366 days or less", docListGrants)
	if r.status != 403 || r.body != want {
		t.Fatalf("got %d %s", r.status, r.body)
	}
}

func TestRequests(t *testing.T) {
	f := newFixture(t, true)
	const reqs = "/orgs/octo-org/personal-access-token-requests"
	r := f.do(t, "GET", reqs, f.as("alice-admin"), nil)
	var items []map[string]any
	if r.status != 200 || json.Unmarshal([]byte(r.body), &items) != nil || len(items) != 1 {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	// The organization's login in another case is the same organization.
	if upper := f.do(t, "GET", "/orgs/Octo-Org/personal-access-token-requests", f.as("alice-admin"), nil); upper.status != 200 || upper.body != r.body {
		t.Fatalf("list as Octo-Org: %d %s; want %s", upper.status, upper.body, r.body)
	}
	it := items[0]
	id := int64(it["id"].(float64))
	for k, want := range map[string]any{
		"reason": "read everything", "repository_selection": "all", "token_name": "bob-all", "token_expired": false,
		"token_last_used_at": nil, "state": "pending", "reviewer": nil,
		"repositories_url": f.ts.URL[len("http://"):] + "",
	} {
		if k == "repositories_url" {
			if got := it[k].(string); got != "http://"+want.(string)+reqs+"/"+itoa(id)+"/repositories" {
				t.Errorf("repositories_url = %s", got)
			}
			continue
		}
		if it[k] != want {
			t.Errorf("%s = %v, want %v", k, it[k], want)
		}
	}
	if got, _ := json.Marshal(it["permissions"]); string(got) != `{"organization":{},"other":{},"repository":{"contents":"read","metadata":"read"}}` {
		t.Errorf("permissions = %s", got)
	}
	if got, _ := json.Marshal(it["owner"]); string(got) != `{"login":"bob","site_admin":false,"type":"User"}` {
		t.Errorf("owner = %s", got)
	}

	t.Run("repositories of an all-repositories token, paged", func(t *testing.T) {
		r := f.do(t, "GET", reqs+"/"+itoa(id)+"/repositories?per_page=2", f.as("alice-admin"), nil)
		var repos []struct{ Name, Visibility string }
		if r.status != 200 || json.Unmarshal([]byte(r.body), &repos) != nil || len(repos) != 2 || repos[0].Name != "app" || repos[1].Name != "docs" {
			t.Fatalf("%d %s", r.status, r.body)
		}
		if want := `<` + f.ts.URL + reqs + "/" + itoa(id) + `/repositories?page=2&per_page=2>; rel="next", <` + f.ts.URL + reqs + "/" + itoa(id) + `/repositories?page=2&per_page=2>; rel="last"`; r.header.Get("Link") != want {
			t.Fatalf("Link = %s", r.header.Get("Link"))
		}
		// A page far past the list, even one whose offset would overflow,
		// is empty.
		for _, page := range []string{"50", "92233720368547760"} {
			r := f.do(t, "GET", reqs+"/"+itoa(id)+"/repositories?per_page=100&page="+page, f.as("alice-admin"), nil)
			if r.status != 200 || r.body != "[]" {
				t.Fatalf("page %s: %d %s", page, r.status, r.body)
			}
		}
		r = f.do(t, "GET", reqs+"/999/repositories", f.as("alice-admin"), nil)
		if r.status != 404 || r.body != errBody("Not Found", docRequestRepos) {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})

	for _, tc := range []struct {
		note   string
		path   string
		body   any
		status int
		field  string
	}{
		{note: "not JSON", path: reqs, body: "{", status: 400},
		{note: "a second value after the body: nothing is applied", path: reqs, body: `{"pat_request_ids": [` + itoa(id) + `], "action": "approve"} {"junk`, status: 400},
		{note: "ids of the wrong type", path: reqs, body: `{"pat_request_ids": ["a"], "action": "deny"}`, status: 422, field: "pat_request_ids"},
		{note: "no ids", path: reqs, body: map[string]any{"action": "deny"}, status: 422, field: "pat_request_ids"},
		{note: "empty ids", path: reqs, body: map[string]any{"pat_request_ids": []int{}, "action": "deny"}, status: 422, field: "pat_request_ids"},
		{note: "an id twice", path: reqs, body: map[string]any{"pat_request_ids": []int64{id, id}, "action": "deny"}, status: 422, field: "pat_request_ids"},
		{note: "no action", path: reqs, body: map[string]any{"pat_request_ids": []int64{id}}, status: 422, field: "action"},
		{note: "single: unknown action", path: reqs + "/" + itoa(id), body: map[string]any{"action": "revoke"}, status: 422, field: "action"},
		{note: "single: long reason", path: reqs + "/" + itoa(id), body: map[string]any{"action": "deny", "reason": strings.Repeat("é", 1025)}, status: 422, field: "reason"},
		{note: "single: reason with NUL", path: reqs + "/" + itoa(id), body: map[string]any{"action": "deny", "reason": "x\x00y"}, status: 422, field: "reason"},
		{note: "single: not a number", path: reqs + "/abc", body: map[string]any{"action": "deny"}, status: 404},
	} {
		t.Run(tc.note, func(t *testing.T) {
			r := f.do(t, "POST", tc.path, f.as("alice-admin"), tc.body)
			var e apiError
			if err := json.Unmarshal([]byte(r.body), &e); err != nil || r.status != tc.status {
				t.Fatalf("got %d %s", r.status, r.body)
			}
			if tc.field != "" && (len(e.Errors) != 1 || e.Errors[0].Field != tc.field || !strings.HasPrefix(e.Message, "Validation Failed: "+tc.field)) {
				t.Fatalf("want field %s: %s", tc.field, r.body)
			}
		})
	}

	t.Run("deny, then the user asks again", func(t *testing.T) {
		if r := f.do(t, "POST", reqs+"/"+itoa(id), f.as("alice-admin"), map[string]any{"action": "deny", "reason": "too broad"}); r.status != 204 || r.body != "" {
			t.Fatalf("deny: %d %s", r.status, r.body)
		}
		tokenID := int64(it["token_id"].(float64))
		r := f.do(t, "POST", "/user/personal-access-tokens/"+itoa(tokenID)+"/requests", f.as("bob-user"), map[string]any{"reason": "only reads"})
		var g grantSummary
		if r.status != 201 || json.Unmarshal([]byte(r.body), &g) != nil || g.State != "pending" || g.Org != "octo-org" || g.ID == id {
			t.Fatalf("request again: %d %s", r.status, r.body)
		}
		r = f.do(t, "POST", "/user/personal-access-tokens/"+itoa(tokenID)+"/requests", f.as("bob-user"), nil)
		if r.status != 422 {
			t.Fatalf("request again while pending: %d %s", r.status, r.body)
		}
		r = f.do(t, "POST", "/user/personal-access-tokens/"+itoa(tokenID)+"/requests", f.as("alice-admin"), nil)
		if r.status != 404 {
			t.Fatalf("someone else's token: %d %s", r.status, r.body)
		}

		// A grant that is not approved grants no access: no access_granted_at.
		r = f.do(t, "GET", "/orgs/octo-org/personal-access-tokens?state=all&token_id="+itoa(tokenID), f.as("alice-admin"), nil)
		var grants []map[string]any
		if r.status != 200 || json.Unmarshal([]byte(r.body), &grants) != nil || len(grants) != 1 || grants[0]["state"] != "pending" ||
			grants[0]["access_granted_at"] != nil {
			t.Fatalf("the pending grant: %d %s", r.status, r.body)
		}

		// Once its user revokes the token, its requests and grants leave
		// the lists and its pending request cannot be reviewed, as on GitHub.
		if err := f.db.RevokeToken(t.Context(), tokenID, "bob", "lost"); err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{reqs + "?state=all", "/orgs/octo-org/personal-access-tokens?state=all"} {
			r := f.do(t, "GET", path, f.as("alice-admin"), nil)
			var items []map[string]any
			if r.status != 200 || json.Unmarshal([]byte(r.body), &items) != nil {
				t.Fatalf("%s: %d %s", path, r.status, r.body)
			}
			for _, it := range items {
				if int64(it["token_id"].(float64)) == tokenID {
					t.Fatalf("%s lists the revoked token %d: %s", path, tokenID, r.body)
				}
			}
		}
		if r := f.do(t, "GET", reqs+"/"+itoa(g.ID)+"/repositories", f.as("alice-admin"), nil); r.status != 404 {
			t.Fatalf("the repositories of the revoked token's request: %d %s", r.status, r.body)
		}
		r = f.do(t, "POST", reqs+"/"+itoa(g.ID), f.as("alice-admin"), map[string]any{"action": "approve"})
		if r.status != 422 || !strings.Contains(r.body, "the token of a request is revoked; nothing to review: request "+itoa(g.ID)+" (token "+itoa(tokenID)+")") {
			t.Fatalf("approving the revoked token's request: %d %s", r.status, r.body)
		}
	})
}

// TestCreateToken runs against both forms of OPA's store: creation checks
// read data.pat.settings (the lifetime limit below comes from them).
func TestCreateToken(t *testing.T) {
	for _, astValues := range []bool{true, false} {
		t.Run(fmt.Sprintf("ast_values=%t", astValues), func(t *testing.T) {
			testCreateToken(t, newFixtureStore(t, true, astValues))
		})
	}
}

func testCreateToken(t *testing.T, f *fixture) {
	const path = "/user/personal-access-tokens"
	for _, tc := range []struct {
		note   string
		as     string
		body   any
		status int
		state  string // the request's state, "" for none
		field  string
	}{
		{note: "classic", as: "bob-maker", body: map[string]any{"name": "laptop", "kind": "classic", "scopes": []string{"repo"}}, status: 201},
		{note: "classic, a scope repo includes", as: "bob-maker", body: map[string]any{"name": "laptop", "kind": "classic", "scopes": []string{"public_repo", "read:user"}}, status: 201},
		{note: "fine-grained for the user", as: "bob-maker", body: map[string]any{"name": "own", "kind": "fine_grained", "repository_selection": "all", "permissions": map[string]string{"contents": "write"}}, status: 201},
		{note: "fine-grained for the org: pending", as: "bob-maker", body: map[string]any{"name": "ci", "kind": "fine_grained", "resource_owner": "octo-org", "repository_selection": "selected", "repositories": []string{"app"}, "permissions": map[string]string{"contents": "write"}, "reason": "ci"}, status: 201, state: "pending"},
		{note: "fine-grained for a public-only token: no request", as: "bob-user", body: map[string]any{"name": "pub", "kind": "fine_grained", "resource_owner": "octo-org"}, status: 201},
		{note: "over the lifetime limit", as: "bob-user", body: map[string]any{"name": "long", "kind": "fine_grained", "resource_owner": "octo-org", "repository_selection": "all", "expires_in_days": 400}, status: 422, field: "token"},
		{note: "unknown kind", as: "bob-user", body: map[string]any{"name": "x", "kind": "oauth"}, status: 422, field: "kind"},
		{note: "two expiries", as: "bob-user", body: map[string]any{"name": "x", "kind": "classic", "expires_in_days": 3, "no_expiry": true}, status: 422, field: "expires_at"},
		{note: "past expiry", as: "bob-user", body: map[string]any{"name": "x", "kind": "classic", "expires_at": "2001-01-01T00:00:00Z"}, status: 422, field: "expires_at"},
		{note: "expiry past the store's times", as: "bob-user", body: map[string]any{"name": "x", "kind": "classic", "expires_at": "2300-01-01T00:00:00Z"}, status: 422, field: "expires_at"},
		{note: "days past the store's times (213,504 days wrapped to 25 minutes)", as: "bob-user", body: map[string]any{"name": "x", "kind": "classic", "expires_in_days": 213504}, status: 422, field: "expires_in_days"},
		{note: "days past 2262", as: "bob-user", body: map[string]any{"name": "x", "kind": "classic", "expires_in_days": 90000}, status: 422, field: "expires_in_days"},
		{note: "bad selection", as: "bob-user", body: map[string]any{"name": "x", "kind": "fine_grained", "repository_selection": "some"}, status: 422, field: "repository_selection"},
		{note: "without the user scope", as: "alice-admin", body: map[string]any{"name": "x", "kind": "classic"}, status: 403},
	} {
		t.Run(tc.note, func(t *testing.T) {
			r := f.do(t, "POST", path, f.as(tc.as), tc.body)
			if r.status != tc.status {
				t.Fatalf("got %d %s", r.status, r.body)
			}
			if tc.status == 201 {
				var out tokenJSON
				if err := json.Unmarshal([]byte(r.body), &out); err != nil {
					t.Fatal(err)
				}
				if _, ok := token.Parse(out.Token, token.DefaultPrefixes); !ok || r.header.Get("Cache-Control") != "no-store" {
					t.Fatalf("raw token: %s", r.body)
				}
				if got := ""; out.Request != nil {
					got = out.Request.State
					if got != tc.state {
						t.Fatalf("request state %q, want %q", got, tc.state)
					}
				} else if tc.state != "" {
					t.Fatalf("no request: %s", r.body)
				}
				list := f.do(t, "GET", path+"?per_page=100", f.as(tc.as), nil)
				if list.status != 200 || strings.Contains(list.body, out.Token) || !strings.Contains(list.body, `"id":`+itoa(out.ID)+`,`) {
					t.Fatalf("listing: %d %s", list.status, list.body)
				}
			}
			if tc.field != "" {
				var e apiError
				if json.Unmarshal([]byte(r.body), &e) != nil || len(e.Errors) == 0 || e.Errors[0].Field != tc.field {
					t.Fatalf("want field %s: %s", tc.field, r.body)
				}
			}
		})
	}
}

func TestParseConfig(t *testing.T) {
	for _, tc := range []struct {
		note, raw, err string
	}{
		{note: "addr", raw: `{"addr": "127.0.0.1:8282"}`},
		{note: "yaml with url", raw: "addr: 127.0.0.1:8282\nurl: https://pat.example.com/api/\n"},
		{note: "no addr", raw: `{}`, err: `invalid configuration for plugins.pat.admin: admin.addr: missing value (e.g. "127.0.0.1:8282")`},
		{note: "bad addr", raw: `{"addr": "8282"}`, err: `invalid configuration for plugins.pat.admin: admin.addr: "8282" is not host:port: address 8282: missing port in address`},
		{note: "bad url", raw: `{"addr": ":1", "url": "ftp://x"}`, err: `invalid configuration for plugins.pat.admin: admin.url: "ftp://x" is not an http(s) URL`},
		{note: "mistyped key", raw: `{"addr": ":1", "base_url": "https://pat.example.com"}`, err: `invalid configuration for plugins.pat.admin: admin: unknown key "base_url" (known: addr, url)`},
		{note: "addr of the wrong type", raw: `{"addr": 8282}`, err: `invalid configuration for plugins.pat.admin: admin.addr: a number where a string belongs`},
	} {
		t.Run(tc.note, func(t *testing.T) {
			c, err := ParseConfig([]byte(tc.raw))
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if tc.note == "yaml with url" && c.baseURL != "https://pat.example.com/api" {
					t.Fatalf("baseURL = %q", c.baseURL)
				}
				return
			}
			if err == nil || err.Error() != tc.err {
				t.Fatalf("err = %v\nwant %s", err, tc.err)
			}
		})
	}
}

func TestSetLink(t *testing.T) {
	s := &Server{cfg: &Config{baseURL: "https://pat.example.com"}}
	for _, tc := range []struct {
		note  string
		p     page
		total int
		want  string
	}{
		{note: "one page", p: page{1, 30}, total: 3, want: ""},
		{note: "empty", p: page{1, 30}, total: 0, want: ""},
		{note: "middle", p: page{2, 2}, total: 5, want: `<https://pat.example.com/x?owner=a&page=1&per_page=2>; rel="prev", <https://pat.example.com/x?owner=a&page=3&per_page=2>; rel="next", <https://pat.example.com/x?owner=a&page=3&per_page=2>; rel="last", <https://pat.example.com/x?owner=a&page=1&per_page=2>; rel="first"`},
		{note: "beyond the last", p: page{9, 2}, total: 5, want: `<https://pat.example.com/x?owner=a&page=3&per_page=2>; rel="prev", <https://pat.example.com/x?owner=a&page=1&per_page=2>; rel="first"`},
	} {
		t.Run(tc.note, func(t *testing.T) {
			w := httptest.NewRecorder()
			// Parameters the endpoint does not read are not carried.
			r := httptest.NewRequest("GET", "/x?owner=a&page=7&access_token=t", nil)
			s.setLink(w, r, tc.p, tc.total, "owner", "repository")
			if got := w.Header().Get("Link"); got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
	// A value that looks like a token is never carried, even of a
	// parameter the endpoint reads (the endpoints refuse one before
	// listing; this is the last guard).
	w := httptest.NewRecorder()
	s.setLink(w, httptest.NewRequest("GET", "/x?owner=a&repository="+strings.ToLower(pastedClassic), nil), page{1, 2}, 3, "owner", "repository")
	if got, want := w.Header().Get("Link"), `<https://pat.example.com/x?owner=a&page=2&per_page=2>; rel="next", <https://pat.example.com/x?owner=a&page=2&per_page=2>; rel="last"`; got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestStartStop(t *testing.T) {
	f := newFixture(t, true)
	s := New(&Config{Addr: "127.0.0.1:0"}, f.srv.deps)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ note, method, path string }{
		{note: "unknown path", method: "GET", path: "/nowhere"},
		{note: "unknown method", method: "PUT", path: "/orgs/octo-org/personal-access-tokens"},
		{note: "DELETE on a GET path", method: "DELETE", path: "/orgs/octo-org/audit-log"},
	} {
		req, _ := http.NewRequest(tc.method, "http://"+s.Addr()+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 404 || strings.TrimSpace(string(b)) != errBody("Not Found", docNotFound) {
			t.Errorf("%s: %d %s", tc.note, resp.StatusCode, b)
		}
	}
	resp, err := http.Get("http://" + s.Addr() + "/nowhere")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	s.Stop(context.Background())
	if _, err := http.Get("http://" + s.Addr() + "/"); err == nil && s.Addr() != "" {
		t.Fatal("still serving after Stop")
	}
}

// TestPolicyFollowsActivation: a new policy (a new compiler, as a bundle
// activation makes) and new settings apply to the next call.
func TestPolicyFollowsActivation(t *testing.T) {
	f := newFixture(t, true)
	m := f.srv.deps.Manager
	const path = "/orgs/octo-org/personal-access-tokens"
	mustOwn := errBody("Must be an owner of the octo-org organization or of its enterprise to manage its fine-grained personal access tokens", docListGrants)
	if r := f.do(t, "GET", path, f.as("bob-user"), nil); r.status != 403 || r.body != mustOwn {
		t.Fatalf("before: %d %s", r.status, r.body)
	}

	// Settings: bob becomes an owner of the acme enterprise; what he lacks now is the scope.
	ctx := t.Context()
	if err := storage.Txn(ctx, m.Store, storage.WriteParams, func(txn storage.Transaction) error {
		return m.Store.Write(ctx, txn, storage.AddOp, storage.MustParsePath("/pat/settings/enterprises/acme/owners"), []any{"erin", "bob"})
	}); err != nil {
		t.Fatal(err)
	}
	needsScope := errBody("Resource not accessible by personal access token: this personal access token (classic) needs the admin:org scope; create one with it or use a fine-grained token", docListGrants)
	if r := f.do(t, "GET", path, f.as("bob-user"), nil); r.status != 403 || r.body != needsScope {
		t.Fatalf("after the settings change: %d %s", r.status, r.body)
	}

	// Policy: a new module replaces the compiler.
	before := m.GetCompiler()
	if err := storage.Txn(ctx, m.Store, storage.WriteParams, func(txn storage.Transaction) error {
		return m.Store.UpsertPolicy(ctx, txn, "pat/admin/admin.rego", []byte(`package pat.admin

decision := {"allow": false, "status": 403, "message": "closed for maintenance"}
`))
	}); err != nil {
		t.Fatal(err)
	}
	if m.GetCompiler() == before {
		t.Fatal("the manager kept its compiler")
	}
	if r := f.do(t, "GET", path, f.as("alice-admin"), nil); r.status != 403 || r.body != errBody("closed for maintenance", docListGrants) {
		t.Fatalf("after the policy change: %d %s", r.status, r.body)
	}
}

func TestStatusOf(t *testing.T) {
	for _, tc := range []struct {
		note string
		v    any
		want int
		err  string
	}{
		{note: "json number", v: json.Number("404"), want: 404},
		{note: "float", v: float64(403), want: 403},
		{note: "not an error status", v: json.Number("200"), err: "200 is not an HTTP error status"},
		{note: "fraction", v: json.Number("403.5"), err: "403.5 is not an integer"},
		{note: "string", v: "403", err: "want a number, got string"},
	} {
		t.Run(tc.note, func(t *testing.T) {
			got, err := statusOf(tc.v)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("err = %v, want %s", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %d %v", got, err)
			}
		})
	}
}

// otherLast returns raw with its last character replaced by a different one,
// so the checksum no longer matches (a fixed replacement would leave the
// token intact whenever it already ended in that character).
func otherLast(raw string) string {
	last := raw[len(raw)-1]
	repl := byte('x')
	if last == repl {
		repl = 'y'
	}
	return raw[:len(raw)-1] + string(repl)
}

// While data.pat.settings are invalid (the plugin sets the built-ins'
// settings error), the admin API does not decide: broken settings would
// read as the defaults, which allow.
func TestInvalidSettingsRefuse(t *testing.T) {
	f := newFixture(t, true)
	const list = "/orgs/octo-org/personal-access-tokens"
	if r := f.do(t, "GET", list, f.as("alice-admin"), nil); r.status != 200 {
		t.Fatalf("valid settings: %d %s", r.status, r.body)
	}
	src := builtins.Installed()
	src.SetSettingsError(errors.New("data.pat.settings are invalid (settings: organizations.octo-org.enterprise: [\"acme\"] is not a string or null)"))
	r := f.do(t, "GET", list, f.as("alice-admin"), nil)
	want := errBody("the settings (data.pat.settings) are invalid: the admin API refuses to decide until they are fixed", docListGrants)
	if r.status != 503 || r.body != want {
		t.Fatalf("invalid settings: %d %s", r.status, r.body)
	}
	src.SetSettingsError(nil)
	if r := f.do(t, "GET", list, f.as("alice-admin"), nil); r.status != 200 {
		t.Fatalf("valid again: %d %s", r.status, r.body)
	}
}

// OPA stops plugins with a context that is already canceled when a signal
// ends the sidecar. Stop still lets a request in flight finish (within
// shutdownTimeout) rather than cutting its connection.
func TestStopDrainsWithCanceledContext(t *testing.T) {
	f := newFixture(t, true)
	s := New(&Config{Addr: "127.0.0.1:0"}, f.srv.deps)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"action": "deny", "pat_request_ids": [999999], "reason": "no"}`
	head := "POST /orgs/octo-org/personal-access-token-requests HTTP/1.1\r\nHost: admin\r\n" +
		"Authorization: " + f.as("alice-admin") + "\r\nContent-Type: application/json\r\n" +
		fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body))
	if _, err := io.WriteString(conn, head+body[:10]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the request is in flight, its body half sent

	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	stopped := make(chan struct{})
	go func() {
		s.Stop(canceled)
		close(stopped)
	}()
	time.Sleep(100 * time.Millisecond)
	if _, err := io.WriteString(conn, body[10:]); err != nil {
		t.Fatalf("sending the rest of the body during Stop: %v", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("the request in flight got no answer: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// The request was read whole and answered: a review of a request the
	// organization does not have.
	if resp.StatusCode != 422 || !strings.Contains(string(b), `"message":"Validation Failed: request 999999 not found in octo-org"`) {
		t.Fatalf("the request in flight: %d %s", resp.StatusCode, b)
	}
	<-stopped
}
