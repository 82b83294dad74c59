package admin

import (
	"fmt"
	"strings"
	"testing"
)

// An id in a path is plain decimal digits: "+1" (which strconv takes for
// 1), "%2B1", " 1" or "1.0" names no id and is a 404 like an unknown id,
// and nothing is applied.
func TestPathIDsAreDigits(t *testing.T) {
	f := newFixture(t, true)
	bobAll := itoa(f.tokenID(t, "bob-all"))
	before := f.pendingRequests(t)
	for _, id := range []string{"+1", "%2B1", "%201", "1.0", "-1", "0", "1e0", "０１"} {
		for _, tc := range []struct {
			method, path, as, doc string
			body                  any
		}{
			{"POST", "/orgs/octo-org/personal-access-token-requests/" + id, "alice-admin", docReviewRequest, map[string]any{"action": "deny"}},
			{"GET", "/orgs/octo-org/personal-access-token-requests/" + id + "/repositories", "alice-admin", docRequestRepos, nil},
			{"POST", "/orgs/octo-org/personal-access-tokens/" + id, "alice-admin", docRevokeGrant, map[string]any{"action": "revoke"}},
			{"GET", "/orgs/octo-org/personal-access-tokens/" + id + "/repositories", "alice-admin", docGrantRepos, nil},
			{"DELETE", "/user/personal-access-tokens/" + id, "bob-user", docUserTokens, nil},
			{"POST", "/user/personal-access-tokens/" + id + "/requests", "bob-user", docUserTokens, map[string]any{"reason": "x"}},
		} {
			t.Run(tc.method+" "+tc.path, func(t *testing.T) {
				r := f.do(t, tc.method, tc.path, f.as(tc.as), tc.body)
				if want := errBody("Not Found", tc.doc); r.status != 404 || r.body != want {
					t.Fatalf("got  %d %s\nwant 404 %s", r.status, r.body, want)
				}
			})
		}
	}
	if after := f.pendingRequests(t); after != before {
		t.Fatalf("a path that names no id changed the requests:\n%s\nwas\n%s", after, before)
	}
	// The digits alone still name the request and the token.
	if r := f.do(t, "GET", "/orgs/octo-org/personal-access-token-requests/1/repositories", f.as("alice-admin"), nil); r.status != 200 {
		t.Fatalf("request 1: %d %s", r.status, r.body)
	}
	if r := f.do(t, "POST", "/user/personal-access-tokens/"+bobAll+"/requests", f.as("bob-user"), map[string]any{"reason": "x"}); r.status != 422 {
		t.Fatalf("token %s: %d %s", bobAll, r.status, r.body)
	}
}

// Ids and numbers in a query are plain decimal digits too: "%2B5" is a 422
// naming the parameter ("+" itself is a space in a query).
func TestQueryNumbersAreDigits(t *testing.T) {
	f := newFixture(t, true)
	for _, tc := range []struct {
		path, field, message, doc, resource string
	}{
		{"/orgs/octo-org/personal-access-tokens?token_id=%2B5", "token_id", `token_id: "+5" is not a token id`, docListGrants, "PersonalAccessToken"},
		{"/orgs/octo-org/personal-access-token-requests?token_id%5B%5D=%2B5", "token_id", `token_id: "+5" is not a token id`, docListRequests, "PersonalAccessTokenRequest"},
		{"/orgs/octo-org/personal-access-tokens?per_page=%2B2", "per_page", `per_page: "+2" is not a positive integer`, docListGrants, "PersonalAccessToken"},
		{"/orgs/octo-org/personal-access-tokens?page=%2B2", "page", `page: "+2" is not a positive integer`, docListGrants, "PersonalAccessToken"},
		{"/orgs/octo-org/audit-log?token_id=%2B5", "token_id", `token_id: "+5" is not a token id`, docAuditLog, "AuditEvent"},
		{"/orgs/octo-org/audit-log?request_id=%2B5", "request_id", `request_id: "+5" is not a request id`, docAuditLog, "AuditEvent"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			r := f.do(t, "GET", tc.path, f.as("alice-admin"), nil)
			if want := invalidBody(tc.resource, tc.field, "invalid", tc.message, tc.doc); r.status != 422 || r.body != want {
				t.Fatalf("got  %d %s\nwant 422 %s", r.status, r.body, want)
			}
		})
	}
}

// token_id takes at most 50 ids, as on GitHub: more is a 422 naming the
// count, not each id, and no Link header carries them.
func TestTokenIDFilterAtMost50(t *testing.T) {
	f := newFixture(t, true)
	list := func(n int, sep string) string {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = itoa(int64(i + 1))
		}
		return strings.Join(ids, sep)
	}
	for _, tc := range []struct {
		path, doc, resource string
		n                   int
	}{
		{"/orgs/octo-org/personal-access-tokens?token_id=" + list(51, ","), docListGrants, "PersonalAccessToken", 51},
		{"/orgs/octo-org/personal-access-token-requests?token_id[]=" + list(20000, ","), docListRequests, "PersonalAccessTokenRequest", 20000},
		{"/orgs/octo-org/personal-access-token-requests?token_id[]=" + list(60, "&token_id[]="), docListRequests, "PersonalAccessTokenRequest", 60},
		{"/orgs/octo-org/personal-access-token-requests?token_id=" + list(30, ",") + "&token_id[]=" + list(21, ","), docListRequests, "PersonalAccessTokenRequest", 51},
	} {
		t.Run(fmt.Sprint(tc.n), func(t *testing.T) {
			r := f.do(t, "GET", tc.path, f.as("alice-admin"), nil)
			msg := fmt.Sprintf("token_id: at most 50 token ids, got %d", tc.n)
			if want := invalidBody(tc.resource, "token_id", "invalid", msg, tc.doc); r.status != 422 || r.body != want || r.header.Get("Link") != "" {
				t.Fatalf("got  %d %s\nwant 422 %s", r.status, r.body, want)
			}
		})
	}
	r := f.do(t, "GET", "/orgs/octo-org/personal-access-tokens?state=all&per_page=1&token_id="+list(50, ","), f.as("alice-admin"), nil)
	if r.status != 200 || len(r.header.Get("Link")) > 2*4*50*4 {
		t.Fatalf("50 ids: %d %s, Link %d bytes", r.status, r.body, len(r.header.Get("Link")))
	}
}

// A query Go's reader cannot read whole is a 400: it would drop the pair
// with a bad escape, or every pair of a query of more than 10,000, and list
// more than was asked.
func TestUnreadableQuery(t *testing.T) {
	f := newFixture(t, true)
	many := strings.Repeat("token_id[]=1&", 10001)
	for _, tc := range []struct {
		path, as, doc, err string
	}{
		{"/orgs/octo-org/personal-access-tokens?state=all&token_id=%zz", "alice-admin", docListGrants, `invalid URL escape "%zz"`},
		{"/orgs/octo-org/personal-access-token-requests?" + many, "alice-admin", docListRequests, "number of URL query parameters exceeded limit"},
		{"/orgs/octo-org/audit-log?actor=bob;action=x", "alice-admin", docAuditLog, "invalid semicolon separator in query"},
		{"/orgs/octo-org/personal-access-tokens/1/repositories?page=%zz", "alice-admin", docGrantRepos, `invalid URL escape "%zz"`},
		{"/user/personal-access-tokens?page=%zz", "bob-user", docUserTokens, `invalid URL escape "%zz"`},
	} {
		t.Run(tc.err, func(t *testing.T) {
			r := f.do(t, "GET", tc.path, f.as(tc.as), nil)
			if want := errBody("Bad Request: the query cannot be read: "+tc.err, tc.doc); r.status != 400 || r.body != want {
				t.Fatalf("got  %d %s\nwant 400 %s", r.status, r.body, want)
			}
		})
	}
}
