package admin

import (
	"encoding/json"
	"testing"
)

// invalidBody is the 422 answer naming one field of resource.
func invalidBody(resource, field, code, message, doc string) string {
	b, _ := json.Marshal(apiError{Message: validationFailedText + ": " + message,
		Errors: []fieldError{{Resource: resource, Field: field, Code: code, Message: message}}, DocumentationURL: doc})
	return string(b)
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
	// An empty list is no list.
	r := f.do(t, "POST", path, f.as("bob-user"), map[string]any{"name": "x", "kind": "fine_grained", "resource_owner": "octo-org",
		"repository_selection": "all", "repositories": []string{}})
	if r.status != 201 {
		t.Fatalf("all with an empty list: %d %s", r.status, r.body)
	}
}
