package admin

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opa-pat/opa-pat/plugin/store"
	"github.com/opa-pat/opa-pat/plugin/token"
)

const (
	pastedClassic = "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"
	pastedFG      = "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"
	plainText     = ": looks like a personal access token; opa-pat never stores a token in plain text"
)

// shows reports whether s shows any of the pasted tokens, in any case.
func shows(s string) bool {
	s = strings.ToLower(s)
	for _, raw := range []string{pastedClassic, pastedFG} {
		if strings.Contains(s, strings.ToLower(raw[len(raw)-30:len(raw)-10])) {
			return true
		}
	}
	return false
}

// expect422 checks a 422 whose single error names field with message.
func expect422(t *testing.T, r response, field, message string) {
	t.Helper()
	var e apiError
	if r.status != 422 || json.Unmarshal([]byte(r.body), &e) != nil || len(e.Errors) != 1 || e.Errors[0].Field != field ||
		e.Errors[0].Message != message || e.Message != validationFailedText+": "+message {
		t.Errorf("got %d %s\nwant 422 naming %s: %s", r.status, r.body, field, message)
	}
	if shows(r.body) || shows(r.header.Get("Link")) {
		t.Errorf("the answer shows the token: %s", r.body)
	}
}

// A raw token pasted into a field of a new token is a 422 naming the field,
// without the token, and nothing is stored.
func TestCreateTokenRefusesARawToken(t *testing.T) {
	f := newFixture(t, true)
	const path = "/user/personal-access-tokens"
	fg := func(edit func(map[string]any)) map[string]any {
		b := map[string]any{"name": "ci", "kind": "fine_grained", "resource_owner": "octo-org", "repository_selection": "selected",
			"repositories": []string{"app"}, "permissions": map[string]string{"contents": "write"}, "reason": "ci"}
		edit(b)
		return b
	}
	for _, raw := range []string{pastedClassic, pastedFG, "it is " + pastedClassic + "."} {
		for _, tc := range []struct {
			field, message string
			body           map[string]any
		}{
			{"name", "name" + plainText, fg(func(b map[string]any) { b["name"] = raw })},
			{"scopes[1]", "scopes[1]" + plainText, map[string]any{"name": "x", "kind": "classic", "scopes": []string{"repo", raw}}},
			{"resource_owner", "resource_owner" + plainText, fg(func(b map[string]any) { b["resource_owner"] = raw })},
			{"repositories[1]", "repositories[1]" + plainText, fg(func(b map[string]any) { b["repositories"] = []string{"app", raw} })},
			{"permissions", "permissions" + plainText, fg(func(b map[string]any) { b["permissions"] = map[string]string{raw: "read"} })},
			{"permissions.contents", "permissions.contents" + plainText, fg(func(b map[string]any) { b["permissions"] = map[string]string{"contents": raw} })},
			{"repository_selection", "repository_selection" + plainText, fg(func(b map[string]any) { b["repository_selection"] = raw })},
			{"reason", "reason" + plainText, fg(func(b map[string]any) { b["reason"] = raw })},
			// Values the API checks itself are described, not quoted.
			{"kind", `kind: unknown value ` + describe(raw) + `, want "classic" or "fine_grained"`, fg(func(b map[string]any) { b["kind"] = raw })},
			{"expires_at", "expires_at: " + describe(raw) + " is not a future ISO 8601 time", fg(func(b map[string]any) { b["expires_at"] = raw })},
		} {
			t.Run(tc.field, func(t *testing.T) {
				expect422(t, f.do(t, "POST", path, f.as("bob-user"), tc.body), tc.field, tc.message)
			})
		}
	}
	if list := f.do(t, "GET", path+"?per_page=100", f.as("bob-user"), nil); list.status != 200 || shows(list.body) {
		t.Fatalf("listing: %d %s", list.status, list.body)
	}
	events, err := f.db.ListAudit(t.Context(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(events); shows(string(b)) {
		t.Fatalf("audit log: %s", b)
	}
}

// A token's name is free text, as a reason is: a token cut short (here
// without its last character, which its checksum gives back) is a 422
// naming it too, and the token is not created.
func TestCreateTokenRefusesATokenCutShortInItsName(t *testing.T) {
	f := newFixture(t, true)
	const path = "/user/personal-access-tokens"
	for _, name := range []string{pastedClassic[:len(pastedClassic)-1], "ci " + pastedFG[:len(pastedFG)-1]} {
		body := map[string]any{"name": name, "kind": "classic"}
		expect422(t, f.do(t, "POST", path, f.as("bob-user"), body), "name", "name"+plainText)
	}
	if list := f.do(t, "GET", path+"?per_page=100", f.as("bob-user"), nil); list.status != 200 || shows(list.body) {
		t.Fatalf("listing: %d %s", list.status, list.body)
	}
}

func describe(raw string) string {
	return "(" + itoa(int64(len(raw))) + " characters, not shown: it looks like a personal access token)"
}

// A reason given with a review, a revocation or a new request is a 422
// naming it, without the token.
func TestReasonsRefuseARawToken(t *testing.T) {
	f := newFixture(t, true)
	const reqs = "/orgs/octo-org/personal-access-token-requests"
	body := map[string]any{"action": "approve", "reason": "ok " + pastedFG}
	expect422(t, f.do(t, "POST", reqs+"/1", f.as("alice-admin"), body), "reason", "reason"+plainText)
	expect422(t, f.do(t, "POST", reqs, f.as("alice-admin"), map[string]any{"pat_request_ids": []int64{1}, "action": "deny", "reason": pastedClassic}),
		"reason", "reason"+plainText)
	expect422(t, f.do(t, "POST", "/orgs/octo-org/personal-access-tokens/7", f.as("alice-admin"), map[string]any{"action": "revoke", "reason": pastedClassic}),
		"reason", "reason"+plainText)
}

// A query parameter that looks like a token is described in a 422, not
// quoted; other values are still quoted.
func TestParametersAreNotQuotedWhenTheyLookLikeTokens(t *testing.T) {
	f := newFixture(t, true)
	const grants = "/orgs/octo-org/personal-access-tokens"
	for _, tc := range []struct {
		path, field, message string
	}{
		{grants + "?per_page=", "per_page", "per_page: %s is not a positive integer"},
		{grants + "?page=", "page", "page: %s is not a positive integer"},
		{grants + "?token_id=", "token_id", "token_id: %s is not a token id"},
		{grants + "?sort=", "sort", `sort: unknown value %s, want "created_at"`},
		{grants + "?direction=", "direction", `direction: unknown value %s, want "asc" or "desc"`},
		{grants + "?last_used_before=", "last_used_before", "last_used_before: %s is not an ISO 8601 time (YYYY-MM-DDTHH:MM:SSZ)"},
		{grants + "?state=", "state", `state: unknown value %s, want "approved", "none", "pending", "denied", "revoked" or "all"`},
		{"/orgs/octo-org/audit-log?token_id=", "token_id", "token_id: %s is not a token id"},
		{"/orgs/octo-org/audit-log?action=", "action", "action: unknown action %s, want one of " + strings.Join(store.AuditActions, ", ")},
		{"/user/personal-access-tokens?per_page=", "per_page", "per_page: %s is not a positive integer"},
	} {
		t.Run(tc.field, func(t *testing.T) {
			who := "alice-admin"
			if strings.HasPrefix(tc.path, "/user/") {
				who = "bob-user"
			}
			for _, v := range []string{pastedClassic, pastedFG} {
				expect422(t, f.do(t, "GET", tc.path+url.QueryEscape(v), f.as(who), nil), tc.field, strings.Replace(tc.message, "%s", describe(v), 1))
			}
			expect422(t, f.do(t, "GET", tc.path+"x9", f.as(who), nil), tc.field, strings.Replace(tc.message, "%s", `"x9"`, 1))
		})
	}
	r := f.do(t, "POST", "/orgs/octo-org/personal-access-token-requests/1", f.as("alice-admin"), map[string]any{"action": pastedClassic})
	expect422(t, r, "action", `action: unknown value `+describe(pastedClassic)+`, want "approve" or "deny"`)
}

// Link carries the parameters the endpoint reads, nothing else: a token
// sent as ?access_token= (which proxies log) is not copied into it.
func TestLinkCarriesOnlyTheEndpointsParameters(t *testing.T) {
	f := newFixture(t, true)
	for _, tc := range []struct {
		as, path, want string
	}{
		{"bob-user", "/user/personal-access-tokens?per_page=1&access_token=" + pastedClassic + "&utm=x",
			`<{base}/user/personal-access-tokens?page=2&per_page=1>; rel="next", <{base}/user/personal-access-tokens?page=5&per_page=1>; rel="last"`},
		{"alice-admin", "/orgs/octo-org/personal-access-tokens?state=all&owner[]=bob&owner=alice&per_page=1&access_token=" + pastedFG + "&token=" + pastedClassic,
			`<{base}/orgs/octo-org/personal-access-tokens?owner=alice&owner%5B%5D=bob&page=2&per_page=1&state=all>; rel="next", <{base}/orgs/octo-org/personal-access-tokens?owner=alice&owner%5B%5D=bob&page=3&per_page=1&state=all>; rel="last"`},
		// A parameter read once keeps the value the endpoint read.
		{"alice-admin", "/orgs/octo-org/personal-access-tokens?state=all&state=" + pastedClassic + "&sort=created_at&sort=" + pastedFG + "&direction=asc&direction=" + pastedClassic + "&per_page=1",
			`<{base}/orgs/octo-org/personal-access-tokens?direction=asc&page=2&per_page=1&sort=created_at&state=all>; rel="next", <{base}/orgs/octo-org/personal-access-tokens?direction=asc&page=3&per_page=1&sort=created_at&state=all>; rel="last"`},
		{"alice-admin", "/orgs/octo-org/audit-log?per_page=1&actor=test&actor=" + pastedClassic + "&access_token=" + pastedClassic,
			`<{base}/orgs/octo-org/audit-log?actor=test&page=2&per_page=1>; rel="next", <{base}/orgs/octo-org/audit-log?actor=test&page=3&per_page=1>; rel="last"`},
		{"alice-admin", "/orgs/octo-org/personal-access-tokens/5/repositories?per_page=1&access_token=" + pastedClassic,
			`<{base}/orgs/octo-org/personal-access-tokens/5/repositories?page=2&per_page=1>; rel="next", <{base}/orgs/octo-org/personal-access-tokens/5/repositories?page=3&per_page=1>; rel="last"`},
	} {
		r := f.do(t, "GET", tc.path, f.as(tc.as), nil)
		if want := strings.ReplaceAll(tc.want, "{base}", f.ts.URL); r.status != 200 || r.header.Get("Link") != want {
			t.Errorf("%s: %d %s\nLink %s\nwant %s", tc.path, r.status, r.body, r.header.Get("Link"), want)
		}
		if shows(r.header.Get("Link")) || shows(r.body) {
			t.Errorf("%s: the answer shows the token", tc.path)
		}
	}
}

// A filter the endpoint keeps in its links (a login, a repository, a
// permission, an actor) that holds a token is a 422 naming it, neither
// quoted nor described, and no Link carries it: lower-cased (no checksum
// left) or written into other text too.
func TestFiltersRefuseARawToken(t *testing.T) {
	f := newFixture(t, true)
	const (
		reqs   = "/orgs/octo-org/personal-access-token-requests?state=all&per_page=1&"
		grants = "/orgs/octo-org/personal-access-tokens?state=all&per_page=1&"
		audit  = "/orgs/octo-org/audit-log?per_page=1&"
	)
	for _, raw := range []string{pastedClassic, pastedFG, strings.ToLower(pastedClassic), strings.ToLower(pastedFG), strings.ToUpper(pastedClassic), "x" + pastedFG + "y"} {
		for _, tc := range []struct{ path, field string }{
			{reqs + "owner=bob," + url.QueryEscape(raw), "owner"},
			{reqs + "owner[]=bob&owner[]=" + url.QueryEscape(raw), "owner"},
			{reqs + "repository=" + url.QueryEscape(raw), "repository"},
			{reqs + "permission=" + url.QueryEscape(raw), "permission"},
			{grants + "owner=bob," + url.QueryEscape(raw), "owner"},
			{grants + "repository=" + url.QueryEscape(raw), "repository"},
			{audit + "actor=" + url.QueryEscape(raw), "actor"},
		} {
			t.Run(tc.path, func(t *testing.T) { expectFilterRefused(t, f, tc.path, tc.field) })
		}
	}
	// Without a token the same filters list and link as before.
	r := f.do(t, "GET", reqs+"owner=alice,bob&repository=app", f.as("alice-admin"), nil)
	want := `<{base}/orgs/octo-org/personal-access-token-requests?owner=alice%2Cbob&page=2&per_page=1&repository=app&state=all>; rel="next", <{base}/orgs/octo-org/personal-access-token-requests?owner=alice%2Cbob&page=2&per_page=1&repository=app&state=all>; rel="last"`
	if want = strings.ReplaceAll(want, "{base}", f.ts.URL); r.status != 200 || r.header.Get("Link") != want {
		t.Fatalf("%d %s\nLink %s\nwant %s", r.status, r.body, r.header.Get("Link"), want)
	}
}

// A token cut short (a few characters lost at its end: no checksum, no
// full secret) is still refused in a filter, as the decision-log mask
// hides it; a login or repository that merely starts with a prefix lists.
func TestFiltersRefuseATokenCutShort(t *testing.T) {
	f := newFixture(t, true)
	const (
		reqs  = "/orgs/octo-org/personal-access-token-requests?state=all&per_page=1&"
		audit = "/orgs/octo-org/audit-log?per_page=1&"
	)
	for _, raw := range []string{pastedClassic[:37], pastedClassic[:34], strings.ToLower(pastedClassic[:37]), pastedFG[:60], pastedFG[:90], "x " + pastedFG[:50]} {
		for _, tc := range []struct{ path, field string }{
			{reqs + "owner=bob," + url.QueryEscape(raw), "owner"},
			{reqs + "repository=" + url.QueryEscape(raw), "repository"},
			{reqs + "permission=" + url.QueryEscape(raw), "permission"},
			{audit + "actor=" + url.QueryEscape(raw), "actor"},
		} {
			t.Run(tc.path, func(t *testing.T) { expectFilterRefused(t, f, tc.path, tc.field) })
		}
	}
	for _, v := range []string{"acmecorp", "acme-corp", "ghp_", "github_pat_", "ghp_rotation", "octo-org", pastedClassic[:33]} {
		for _, path := range []string{reqs + "owner=" + url.QueryEscape(v), reqs + "repository=" + url.QueryEscape(v), audit + "actor=" + url.QueryEscape(v)} {
			if r := f.do(t, "GET", path, f.as("alice-admin"), nil); r.status != 200 {
				t.Errorf("%s: %d %s", path, r.status, r.body)
			}
		}
	}
}

// customPrefixRuns counts the runs of TestFiltersRefuseATokenOfTheDeploymentsPrefix
// in this process: noted prefixes stay noted for its life.
var customPrefixRuns atomic.Int32

// The deployment's own prefixes count even when the process has not noted
// them: a lower-cased token of a prefix that does not end in "_" has
// neither a checksum nor a shape that stands alone.
func TestFiltersRefuseATokenOfTheDeploymentsPrefix(t *testing.T) {
	f := newFixture(t, true)
	run := customPrefixRuns.Add(1)
	custom := token.Prefixes{Classic: fmt.Sprintf("zqxwadm%d", run), FineGrained: token.DefaultPrefixes.FineGrained}
	admin, err := token.Generate(store.KindClassic, custom)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, _, err := f.db.CreateToken(t.Context(), store.CreateTokenParams{Token: store.Token{Kind: store.KindClassic, User: "alice", Name: "custom-admin",
		Scopes: []string{"admin:org"}, Hash: token.Hash(admin), CreatedAt: now, ExpiresAt: now.Add(time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	pasted, err := token.Generate(store.KindClassic, custom)
	if err != nil {
		t.Fatal(err)
	}
	lower := strings.ToLower(pasted)
	if token.Hidden(lower) {
		t.Fatal("the custom prefix is known without the deployment's prefixes: the test shows nothing")
	}
	ts := httptest.NewServer(New(&Config{Addr: "127.0.0.1:0"}, Deps{Manager: f.srv.deps.Manager, Store: f.db, Prefixes: custom}).Handler())
	t.Cleanup(ts.Close)
	for _, q := range []string{"owner=bob," + lower, "repository=" + lower, "permission=" + lower} {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", ts.URL+"/orgs/octo-org/personal-access-token-requests?state=all&per_page=1&"+q, nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		field, _, _ := strings.Cut(q, "=")
		want := `{"message":"Validation Failed: ` + field + `: looks like a personal access token; send a token only in the Authorization header, never in a URL",` +
			`"errors":[{"resource":"PersonalAccessTokenRequest","field":"` + field + `","code":"invalid","message":"` + field +
			`: looks like a personal access token; send a token only in the Authorization header, never in a URL"}],"documentation_url":"` + docListRequests + `"}`
		if resp.StatusCode != 422 || strings.TrimSpace(string(b)) != want || resp.Header.Get("Link") != "" {
			t.Errorf("%s: %d %s\nLink %s\nwant 422 %s", q, resp.StatusCode, b, resp.Header.Get("Link"), want)
		}
	}
}

// Without a configured url, the links and *_url fields are built from the
// Host header: one that looks like a token is a 400, before anything else.
// With a url, the Host header is not used and not looked at.
func TestHostHeaderThatLooksLikeAToken(t *testing.T) {
	f := newFixture(t, true)
	get := func(t *testing.T, url, host string) response {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), "GET", url+"/orgs/octo-org/personal-access-token-requests?state=all&per_page=1", nil)
		req.Host = host
		req.Header.Set("Authorization", f.as("alice-admin"))
		return send(t, req)
	}
	want := errBody("Bad Request: the Host header looks like a personal access token; send a token only in the Authorization header", docServing)
	for _, host := range []string{strings.ToLower(pastedClassic), strings.ToLower(pastedClassic) + ":8282"} {
		if r := get(t, f.ts.URL, host); r.status != 400 || r.body != want || r.header.Get("Link") != "" {
			t.Errorf("Host %s: %d %s\nLink %s", host, r.status, r.body, r.header.Get("Link"))
		}
	}
	withURL := httptest.NewServer(New(&Config{Addr: "127.0.0.1:0", baseURL: "https://pat.example.com"},
		Deps{Manager: f.srv.deps.Manager, Store: f.db, Prefixes: token.DefaultPrefixes}).Handler())
	t.Cleanup(withURL.Close)
	r := get(t, withURL.URL, strings.ToLower(pastedClassic))
	if r.status != 200 || shows(r.body) || !strings.HasPrefix(r.header.Get("Link"), "<https://pat.example.com/orgs/octo-org/") {
		t.Errorf("with a url: %d %s\nLink %s", r.status, r.body, r.header.Get("Link"))
	}
}

// expectFilterRefused asks for path and expects the 422 of a token in the
// filter field, with no Link header.
func expectFilterRefused(t *testing.T, f *fixture, path, field string) {
	t.Helper()
	r := f.do(t, "GET", path, f.as("alice-admin"), nil)
	expect422(t, r, field, field+": looks like a personal access token; send a token only in the Authorization header, never in a URL")
	if r.header.Get("Link") != "" {
		t.Errorf("Link: %s", r.header.Get("Link"))
	}
}
