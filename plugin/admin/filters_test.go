package admin

import (
	"encoding/json"
	"reflect"
	"sort"
	"testing"

	"github.com/opa-pat/opa-pat/plugin/store"
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
// [] with 200, as if nothing matched). A permission's 422 gives token
// creation's reason: permission=webhooks did not say GitHub's name,
// organization_hooks.
func TestFilterValuesAreNames(t *testing.T) {
	f := newFixture(t, true)
	for _, tc := range []struct {
		query, field, message string
	}{
		{"permission=bogus", "permission", `permission: "bogus": unknown permission`},
		{"permission=Contents", "permission", `permission: "Contents": unknown permission`},
		// Token creation's reasons: GitHub's name of a short name earlier
		// versions took, and a GitHub App permission.
		{"permission=webhooks", "permission", `permission: "webhooks": unknown permission; GitHub's name is organization_hooks`},
		{"permission=projects", "permission", `permission: "projects": unknown permission; GitHub's name is organization_projects`},
		{"permission=packages", "permission", `permission: "packages": GitHub offers this permission to GitHub Apps only, not to fine-grained personal access tokens`},
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

// The permission filter takes GitHub's name and the earlier opa-pat name of
// a renamed permission alike, and either of GitHub's two spellings of an
// account permission, and either finds a token that holds it under either
// name: one the import stored under GitHub's (actions_variables,
// user_models; the REST API's email_addresses, git_ssh_keys) and one whose
// row an earlier opa-pat wrote with its own (variables, models) or with
// GitHub's other spelling (emails, keys).
func TestPermissionFilterTakesEitherName(t *testing.T) {
	f := newFixture(t, true)
	f.importPending(t, "bob-github", map[string]string{"actions_variables": "read", "user_models": "read", "emails": "read", "git_ssh_keys": "write"})
	f.earlierRow(t, "bob-earlier", map[string]string{"metadata": "read", "models": "read", "variables": "write", "email_addresses": "read", "keys": "read"})
	for _, list := range []string{"/orgs/octo-org/personal-access-token-requests", "/orgs/octo-org/personal-access-tokens"} {
		for _, name := range []string{"variables", "actions_variables", "models", "user_models", "emails", "email_addresses", "keys", "git_ssh_keys"} {
			path := list + "?state=all&permission=" + name
			r := f.do(t, "GET", path, f.as("alice-admin"), nil)
			var items []struct {
				TokenName string `json:"token_name"`
			}
			if r.status != 200 || json.Unmarshal([]byte(r.body), &items) != nil {
				t.Fatalf("%s: %d %s", path, r.status, r.body)
			}
			var got []string
			for _, it := range items {
				got = append(got, it.TokenName)
			}
			sort.Strings(got)
			if want := []string{"bob-earlier", "bob-github"}; !reflect.DeepEqual(got, want) {
				t.Errorf("%s: %q; want %q", path, got, want)
			}
		}
	}
}

// The organization endpoints, GitHub's, give repository_selection in
// GitHub's enum: all, subset (opa-pat's selected), none (opa-pat's public);
// the user's own endpoints keep opa-pat's names.
func TestRepositorySelectionInGitHubsEnum(t *testing.T) {
	f := newFixture(t, true)
	ctx := t.Context()
	if _, err := f.db.Import(ctx, &store.Dump{Tokens: []store.DumpToken{{
		Token: gen(t, "fine_grained"), Name: "bob-selected", Kind: "fine_grained", User: "bob", ResourceOwner: "octo-org",
		RepositorySelection: "selected", Repositories: []string{"app"}, Permissions: map[string]string{"contents": "read"},
		CreatedAt: ptr("2026-01-01T00:00:00Z"), ExpiresAt: store.NonNull("2099-01-01T00:00:00Z"), Revoked: ptr(false),
	}}, Grants: []store.DumpGrant{{TokenName: "bob-selected", User: "bob", Org: "octo-org", State: "pending"}}}, "test"); err != nil {
		t.Fatal(err)
	}
	selections := func(t *testing.T, path, as string) map[string]string {
		t.Helper()
		r := f.do(t, "GET", path, f.as(as), nil)
		var items []map[string]any
		if r.status != 200 || json.Unmarshal([]byte(r.body), &items) != nil {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
		out := map[string]string{}
		for _, it := range items {
			name, _ := it["token_name"].(string)
			if name == "" {
				name, _ = it["name"].(string)
			}
			sel, _ := it["repository_selection"].(string)
			out[name] = sel
		}
		return out
	}
	want := map[string]string{"bob-all": "all", "alice-fg": "none", "alice-fg-long": "all", "bob-selected": "subset"}
	for _, path := range []string{"/orgs/octo-org/personal-access-token-requests?state=all", "/orgs/octo-org/personal-access-tokens?state=all"} {
		if got := selections(t, path, "alice-admin"); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %v, want %v", path, got, want)
		}
	}
	if got := selections(t, "/user/personal-access-tokens?per_page=100", "bob-user"); got["bob-selected"] != "selected" || got["bob-all"] != "all" {
		t.Errorf("/user: %v, want opa-pat's names", got)
	}
}
