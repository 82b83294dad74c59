package admin

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/opa-pat/opa-pat/plugin/store"
	"github.com/opa-pat/opa-pat/plugin/token"
)

// A token's permissions are grouped as GitHub's organization endpoints
// group them: the organization's, the user's own account's under "other"
// (they were under "repository"), and the repositories'.
func TestGroupPermissions(t *testing.T) {
	for _, tc := range []struct {
		note  string
		perms map[string]string
		want  string
	}{
		{"none", nil, `{"organization":{},"repository":{},"other":{}}`},
		{"repository", map[string]string{"contents": "write", "metadata": "read", "secrets": "read"},
			`{"organization":{},"repository":{"contents":"write","metadata":"read","secrets":"read"},"other":{}}`},
		{"account", map[string]string{"gists": "write", "gpg_keys": "read", "blocking": "read", "plan": "read", "user_models": "read"},
			`{"organization":{},"repository":{},"other":{"blocking":"read","gists":"write","gpg_keys":"read","plan":"read","user_models":"read"}}`},
		{"both spellings of emails and keys", map[string]string{"emails": "read", "email_addresses": "read", "keys": "write", "git_ssh_keys": "write"},
			`{"organization":{},"repository":{},"other":{"email_addresses":"read","emails":"read","git_ssh_keys":"write","keys":"write"}}`},
		{"earlier names", map[string]string{"models": "read", "ssh_signing_keys": "write", "variables": "read"},
			`{"organization":{},"repository":{"variables":"read"},"other":{"models":"read","ssh_signing_keys":"write"}}`},
		{"all three", map[string]string{"members": "read", "organization_plan": "read", "webhooks": "write", "contents": "read", "plan": "read"},
			`{"organization":{"members":"read","organization_plan":"read","webhooks":"write"},"repository":{"contents":"read"},"other":{"plan":"read"}}`},
	} {
		t.Run(tc.note, func(t *testing.T) {
			if got := marshalAsServed(groupPermissions(tc.perms)); got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// Both organization lists show a token's account permissions under
// "other": one the import stored, and one whose row holds an earlier
// opa-pat's names, which the store reads as GitHub's, and GitHub's other
// spelling of two (emails, keys), which it reads as the REST API's.
func TestListsGroupAccountPermissionsUnderOther(t *testing.T) {
	f := newFixture(t, true)
	f.importPending(t, "bob-account", map[string]string{"contents": "read", "emails": "read", "gists": "write", "gpg_keys": "read", "members": "read"})
	old := f.earlierRow(t, "bob-old", map[string]string{"metadata": "read", "models": "read", "ssh_signing_keys": "write", "variables": "read"})
	spelled := f.earlierRow(t, "bob-spelled", map[string]string{"metadata": "read", "emails": "write", "email_addresses": "read", "keys": "write"})
	for _, tc := range []struct {
		note string
		id   int64
		want string
	}{
		{"imported", f.tokenID(t, "bob-account"),
			`{"organization":{"members":"read"},"repository":{"contents":"read","metadata":"read"},"other":{"email_addresses":"read","gists":"write","gpg_keys":"read"}}`},
		{"earlier names in the row", old,
			`{"organization":{},"repository":{"actions_variables":"read","metadata":"read"},"other":{"git_signing_ssh_public_keys":"write","user_models":"read"}}`},
		// Both spellings of one: the lower level.
		{"GitHub's other spellings in the row", spelled,
			`{"organization":{},"repository":{"metadata":"read"},"other":{"email_addresses":"read","git_ssh_keys":"write"}}`},
	} {
		for _, list := range []string{"/orgs/octo-org/personal-access-token-requests", "/orgs/octo-org/personal-access-tokens"} {
			path := list + "?state=all&token_id=" + itoa(tc.id)
			r := f.do(t, "GET", path, f.as("alice-admin"), nil)
			var items []struct {
				Permissions json.RawMessage `json:"permissions"`
			}
			if r.status != 200 || json.Unmarshal([]byte(r.body), &items) != nil || len(items) != 1 {
				t.Fatalf("%s: %d %s", path, r.status, r.body)
			}
			if got := string(items[0].Permissions); got != tc.want {
				t.Errorf("%s, %s: permissions\ngot  %s\nwant %s", tc.note, path, got, tc.want)
			}
		}
	}
}

// importPending imports a fine-grained token of bob's for octo-org, with a
// pending request, holding perms; its raw form goes to f.raw[name].
func (f *fixture) importPending(t *testing.T, name string, perms map[string]string) {
	t.Helper()
	now := time.Now().UTC()
	created, expires := now.Add(-time.Hour).Format(time.RFC3339), now.Add(30*24*time.Hour).Format(time.RFC3339)
	f.raw[name] = gen(t, "fine_grained")
	if _, err := f.db.Import(t.Context(), &store.Dump{Tokens: []store.DumpToken{{
		Token: f.raw[name], Name: name, Kind: "fine_grained", User: "bob", ResourceOwner: "octo-org", RepositorySelection: "all",
		Permissions: perms, CreatedAt: &created, ExpiresAt: store.NonNull(expires), Revoked: ptr(false),
	}}, Grants: []store.DumpGrant{{TokenName: name, User: "bob", Org: "octo-org", State: "pending"}}}, "test"); err != nil {
		t.Fatal(err)
	}
}

// earlierRow writes a fine-grained token of bob's for octo-org, with a
// pending request, as an earlier opa-pat would have: perms as given, which
// may hold the names it took (variables, models), not normalised by an
// import. It returns the token's id.
func (f *fixture) earlierRow(t *testing.T, name string, perms map[string]string) int64 {
	t.Helper()
	now := time.Now().UTC()
	tok, _, err := f.db.CreateToken(t.Context(), store.CreateTokenParams{Token: store.Token{Hash: token.Hash(name), Name: name,
		Kind: store.KindFineGrained, User: "bob", ResourceOwner: "octo-org", RepositorySelection: "all", CreatedAt: now, ExpiresAt: now.Add(time.Hour),
		Permissions: perms}, GrantState: store.GrantPending})
	if err != nil {
		t.Fatal(err)
	}
	return tok.ID
}
