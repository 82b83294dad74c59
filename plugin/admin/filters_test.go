package admin

import (
	"encoding/json"
	"testing"
)

// owner, owner[] and the audit log's actor are logins: compared without
// regard to case, as the organization in the path is (owner=BOB was []).
func TestLoginFiltersIgnoreCase(t *testing.T) {
	f := newFixture(t, true)
	count := func(t *testing.T, path string) int {
		t.Helper()
		r := f.do(t, "GET", path, f.as("alice-admin"), nil)
		var items []json.RawMessage
		if r.status != 200 || json.Unmarshal([]byte(r.body), &items) != nil {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
		return len(items)
	}
	for _, tc := range []struct {
		lower, other string
	}{
		{"/orgs/octo-org/personal-access-token-requests?state=all&owner=bob", "/orgs/octo-org/personal-access-token-requests?state=all&owner=BOB"},
		{"/orgs/octo-org/personal-access-token-requests?state=all&owner[]=bob", "/orgs/Octo-Org/personal-access-token-requests?state=all&owner[]=Bob"},
		{"/orgs/octo-org/personal-access-tokens?state=all&owner=alice,bob", "/orgs/octo-org/personal-access-tokens?state=all&owner=ALICE,bOb"},
		{"/orgs/octo-org/audit-log?actor=test", "/orgs/octo-org/audit-log?actor=TEST"},
	} {
		t.Run(tc.other, func(t *testing.T) {
			want := count(t, tc.lower)
			if want == 0 {
				t.Fatalf("%s lists nothing", tc.lower)
			}
			if got := count(t, tc.other); got != want {
				t.Fatalf("%s lists %d, %s lists %d", tc.other, got, tc.lower, want)
			}
		})
	}
}

// A permission GitHub has no name for, or a repository filter that is no
// repository's name, is a 422 naming the parameter (permission=bogus was
// [] with 200, as if nothing matched).
func TestFilterValuesAreNames(t *testing.T) {
	f := newFixture(t, true)
	for _, tc := range []struct {
		query, field, message string
	}{
		{"permission=bogus", "permission", `permission: unknown permission "bogus"`},
		{"permission=Contents", "permission", `permission: unknown permission "Contents"`},
		{"repository=octo-org/app", "repository", `repository: "octo-org/app" is not a repository name: ASCII letters, digits, '-', '_' and '.' only, without the owner`},
		{"repository=%3Capp%3E", "repository", `repository: "<app>" is not a repository name: ASCII letters, digits, '-', '_' and '.' only, without the owner`},
		{"repository=my%20app", "repository", `repository: "my app" is not a repository name: ASCII letters, digits, '-', '_' and '.' only, without the owner`},
		{"repository=..", "repository", `repository: ".." is not a repository name: ASCII letters, digits, '-', '_' and '.' only, without the owner`},
	} {
		for _, list := range []struct{ path, resource, doc string }{
			{"/orgs/octo-org/personal-access-tokens", "PersonalAccessToken", docListGrants},
			{"/orgs/octo-org/personal-access-token-requests", "PersonalAccessTokenRequest", docListRequests},
		} {
			t.Run(list.path+"?"+tc.query, func(t *testing.T) {
				r := f.do(t, "GET", list.path+"?"+tc.query, f.as("alice-admin"), nil)
				if want := invalidBody(list.resource, tc.field, "invalid", tc.message, list.doc); r.status != 422 || r.body != want {
					t.Fatalf("got  %d %s\nwant 422 %s", r.status, r.body, want)
				}
			})
		}
	}
	// Names still filter, a repository in any case too.
	for _, q := range []string{"permission=contents", "permission=personal_access_tokens", "repository=APP", "repository=docs.v2"} {
		if r := f.do(t, "GET", "/orgs/octo-org/personal-access-token-requests?state=all&"+q, f.as("alice-admin"), nil); r.status != 200 {
			t.Fatalf("%s: %d %s", q, r.status, r.body)
		}
	}
}
