package issue

import (
	"cmp"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/opa-pat/opa-pat/plugin/store"
	"github.com/opa-pat/opa-pat/plugin/token"
)

func openStore(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "pat.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	d, err := store.ParseDump(strings.NewReader(`{"users": [{"login": "mia", "managed_by": "acme"}, {"login": "ema", "managed_by": "acme"}], "memberships": [
		{"user": "bob", "org": "octo-org", "role": "member"},
		{"user": "olga", "org": "octo-org", "role": "owner"},
		{"user": "carl", "org": "octo-org", "role": "outside_collaborator"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Import(t.Context(), d, "test"); err != nil {
		t.Fatal(err)
	}
	return db
}

func TestIssue(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	emuLimit := map[string]any{"enterprises": map[string]any{"acme": map[string]any{"fine_grained_max_lifetime_days": 30}}}
	// ema owns acme: exempt from its limit only where it exempts administrators (rule 28).
	emuOwner := func(exempt bool) map[string]any {
		return map[string]any{"enterprises": map[string]any{"acme": map[string]any{"fine_grained_max_lifetime_days": 30, "owners": []any{"ema"}, "exempt_administrators": exempt}}}
	}
	const beyond30 = "token creation refused: acme forbids access via a fine-grained personal access token if the token's lifetime is greater than 30 days: the policy is set by the acme enterprise; "
	disabled := map[string]any{"organizations": map[string]any{"octo-org": map[string]any{"fine_grained_approval": "disable"}}}
	fg := func(user string, mod func(*Request)) Request {
		r := Request{Kind: store.KindFineGrained, User: user, Name: "ci", ResourceOwner: "octo-org", RepositorySelection: "selected",
			Repositories: []string{"app"}, Permissions: map[string]string{"contents": "write"}, Reason: "release"}
		if mod != nil {
			mod(&r)
		}
		return r
	}
	for _, tc := range []struct {
		note     string
		settings map[string]any
		req      Request
		grant    string // "" for none
		reviewer string
		err      string
	}{
		{note: "classic", req: Request{Kind: store.KindClassic, User: "bob", Scopes: []string{"repo", "repo"}}},
		{note: "member: pending", req: fg("bob", nil), grant: store.GrantPending},
		{note: "owner: approved", req: fg("olga", nil), grant: store.GrantApproved, reviewer: store.AutomaticReviewer},
		{note: "approval disabled: approved", settings: disabled, req: fg("bob", nil), grant: store.GrantApproved, reviewer: store.AutomaticReviewer},
		{note: "public repositories, metadata only: no grant", req: fg("bob", func(r *Request) {
			r.RepositorySelection, r.Repositories, r.Permissions = "public", nil, nil
		})},
		{note: "public repositories with contents: pending (on the organization it would need the grant)", grant: store.GrantPending,
			req: fg("bob", func(r *Request) { r.RepositorySelection, r.Repositories = "public", nil })},
		{note: "public repositories with an organization permission: pending", grant: store.GrantPending, req: fg("bob", func(r *Request) {
			r.RepositorySelection, r.Repositories, r.Permissions = "public", nil, map[string]string{"members": "write"}
		})},
		{note: "own resources: no grant", req: fg("bob", func(r *Request) { r.ResourceOwner = "bob" })},
		{note: "outside collaborator refused", req: fg("carl", nil),
			err: "token creation refused: carl is not a member of octo-org: only members of octo-org can create fine-grained personal access tokens for it; ask an owner of octo-org for membership"},
		{note: "stranger refused", req: fg("zed", nil),
			err: "token creation refused: zed is not a member of octo-org: only members of octo-org can create fine-grained personal access tokens for it; ask an owner of octo-org for membership"},
		{note: "lifetime above the default limit", req: fg("bob", func(r *Request) { r.ExpiresIn = 367 * 24 * time.Hour }),
			err: "token creation refused: octo-org forbids access via a fine-grained personal access token if the token's lifetime is greater than 366 days: the policy is set by the octo-org organization; the token's lifetime is 367 days; choose an expiration of 366 days or less"},
		{note: "no expiry under the default limit", req: fg("bob", func(r *Request) { r.NoExpiry = true }),
			err: "token creation refused: octo-org forbids access via a fine-grained personal access token if the token's lifetime is greater than 366 days: the policy is set by the octo-org organization; the token has no expiration date; choose an expiration of 366 days or less"},
		{note: "366 days is within the limit", req: fg("bob", func(r *Request) { r.ExpiresIn = 366 * 24 * time.Hour }), grant: store.GrantPending},
		{note: "managed user's own token within the enterprise's limit", settings: emuLimit,
			req: fg("mia", func(r *Request) { r.ResourceOwner, r.ExpiresIn = "mia", 30*24*time.Hour })},
		{note: "managed user's own token above the enterprise's limit (rule 27)", settings: emuLimit,
			req: fg("mia", func(r *Request) { r.ResourceOwner, r.ExpiresIn = "mia", 31*24*time.Hour }),
			err: "token creation refused: acme forbids access via a fine-grained personal access token if the token's lifetime is greater than 30 days: the policy is set by the acme enterprise; the token's lifetime is 31 days; choose an expiration of 30 days or less"},
		{note: "a managed user named in upper case is that user (rule 27)", settings: emuLimit,
			req: fg("MIA", func(r *Request) { r.ResourceOwner, r.ExpiresIn = "mia", 31*24*time.Hour }),
			err: "token creation refused: acme forbids access via a fine-grained personal access token if the token's lifetime is greater than 30 days: the policy is set by the acme enterprise; the token's lifetime is 31 days; choose an expiration of 30 days or less"},
		{note: "managed user's own token, the resource owner left to its default (rule 27)", settings: emuLimit,
			req: fg("mia", func(r *Request) {
				r.ResourceOwner, r.RepositorySelection, r.Repositories, r.ExpiresIn = "", "", nil, 90*24*time.Hour
			}),
			err: beyond30 + "the token's lifetime is 90 days; choose an expiration of 30 days or less"},
		{note: "managed user's own token without expiry (rule 27)", settings: emuLimit,
			req: fg("mia", func(r *Request) { r.ResourceOwner, r.NoExpiry = "mia", true }),
			err: beyond30 + "the token has no expiration date; choose an expiration of 30 days or less"},
		{note: "the enterprise's owner, exempt (rule 28)", settings: emuOwner(true),
			req: fg("ema", func(r *Request) { r.ResourceOwner, r.ExpiresIn = "ema", 90*24*time.Hour })},
		{note: "the enterprise's owner, not exempt (rule 28)", settings: emuOwner(false),
			req: fg("ema", func(r *Request) { r.ResourceOwner, r.ExpiresIn = "ema", 90*24*time.Hour }),
			err: beyond30 + "the token's lifetime is 90 days; choose an expiration of 30 days or less"},
		{note: "a managed user's classic token is not refused (the decision blocks it on the user's repositories)", settings: map[string]any{"enterprises": map[string]any{"acme": map[string]any{"classic_max_lifetime_days": 30}}},
			req: Request{Kind: store.KindClassic, User: "mia", Scopes: []string{"repo"}, ExpiresIn: 90 * 24 * time.Hour}},
		{note: "an owner and organization named in mixed case: approved", req: fg("Olga", func(r *Request) {
			r.ResourceOwner, r.Repositories = "Octo-Org", []string{"App"}
		}), grant: store.GrantApproved, reviewer: store.AutomaticReviewer},
		{note: "another user as the resource owner", req: fg("bob", func(r *Request) { r.ResourceOwner = "Mia" }),
			err: "resource_owner: mia is a user, not an organization; a fine-grained token's resource owner is its own user (bob) or an organization"},
		{note: "a selection of no repositories", req: fg("bob", func(r *Request) { r.Repositories = nil }),
			err: "repositories: a token for selected repositories names at least one, as on GitHub"},
		{note: "bad selection", req: fg("bob", func(r *Request) { r.RepositorySelection = "some" }),
			err: `repository_selection: unknown value "some", want one of all, selected, public`},
		{note: "both expiries", req: fg("bob", func(r *Request) { r.NoExpiry, r.ExpiresIn = true, time.Hour }),
			err: "expires_in: give an expiry or no expiry, not both"},
	} {
		t.Run(tc.note, func(t *testing.T) {
			db := openStore(t)
			c, err := NewChecker(t.Context(), tc.settings)
			if err != nil {
				t.Fatal(err)
			}
			res, err := Issue(t.Context(), db, c, tc.req, now)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("err = %v; want %q", err, tc.err)
				}
				if list, _ := db.ListTokens(t.Context(), store.TokenFilter{}); len(list) != 0 {
					t.Fatalf("a refused token was stored: %+v", list)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if kind, ok := token.Parse(res.Raw, token.DefaultPrefixes); !ok || kind != tc.req.Kind {
				t.Fatalf("raw token %q: %q, %v", res.Raw, kind, ok)
			}
			stored, ok, err := db.TokenByHash(t.Context(), token.Hash(res.Raw))
			if err != nil || !ok || !reflect.DeepEqual(stored, res.Token) {
				t.Fatalf("stored = %+v, %v, %v; want %+v", stored, ok, err, res.Token)
			}
			owner := strings.ToLower(tc.req.ResourceOwner)
			if tc.req.Kind == store.KindFineGrained {
				owner = cmp.Or(owner, res.Token.User)
			}
			if tk := res.Token; tk.User != strings.ToLower(tc.req.User) || tk.ResourceOwner != owner ||
				strings.ToLower(strings.Join(tc.req.Repositories, ",")) != strings.Join(tk.Repositories, ",") {
				t.Fatalf("stored names %q, %q, %q; want the request's in lower case", tk.User, tk.ResourceOwner, tk.Repositories)
			}
			if tc.grant == "" {
				if res.Grant != nil {
					t.Fatalf("grant = %+v; want none", res.Grant)
				}
				return
			}
			if res.Grant == nil || res.Grant.State != tc.grant || res.Grant.Reviewer != tc.reviewer || res.Grant.Reason != "release" {
				t.Fatalf("grant = %+v; want %s by %q", res.Grant, tc.grant, tc.reviewer)
			}
			events, err := db.ListAudit(t.Context(), store.AuditFilter{TokenID: res.Token.ID})
			if err != nil {
				t.Fatal(err)
			}
			var actions []string
			for _, e := range events {
				actions = append(actions, e.Action)
			}
			want := []string{store.ActionTokenCreate, store.ActionRequestCreate}
			if tc.grant == store.GrantApproved {
				want = append(want, store.ActionRequestApprove)
			}
			if !reflect.DeepEqual(actions, want) {
				t.Fatalf("audit actions = %v; want %v", actions, want)
			}
		})
	}
}

// A store whose import kept a login's capitals ("Dave"): a token for "dave"
// or "DAVE" is Dave's, held to his enterprise's limit (rule 27), not a new
// unmanaged user's.
func TestIssueFindsTheStoresSpelling(t *testing.T) {
	db := openStore(t)
	d, err := store.ParseDump(strings.NewReader(`{"users": [{"login": "Dave", "managed_by": "acme"}],
		"memberships": [{"user": "Dave", "org": "Big-Org", "role": "owner"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Import(t.Context(), d, "test"); err != nil {
		t.Fatal(err)
	}
	c, err := NewChecker(t.Context(), map[string]any{"enterprises": map[string]any{"acme": map[string]any{"fine_grained_max_lifetime_days": 30}}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	_, err = Issue(t.Context(), db, c, Request{Kind: store.KindFineGrained, User: "DAVE", ExpiresIn: 31 * 24 * time.Hour}, now)
	if want := "token creation refused: acme forbids access via a fine-grained personal access token if the token's lifetime is greater than 30 days: the policy is set by the acme enterprise; the token's lifetime is 31 days; choose an expiration of 30 days or less"; err == nil || err.Error() != want {
		t.Fatalf("err = %v; want %q", err, want)
	}
	res, err := Issue(t.Context(), db, c, Request{Kind: store.KindFineGrained, User: "dave", ResourceOwner: "big-org", RepositorySelection: "all",
		ExpiresIn: 7 * 24 * time.Hour}, now)
	if err != nil {
		t.Fatal(err)
	}
	if res.Token.User != "Dave" || res.Token.ResourceOwner != "Big-Org" || res.Grant == nil || res.Grant.State != store.GrantApproved {
		t.Fatalf("token %+v, grant %+v; want Dave's for Big-Org, approved (an owner's)", res.Token, res.Grant)
	}
}

// A raw token given as a name is refused before names are lower-cased: the
// checksum that finds a token whatever its prefix does not survive lower
// case, and a store's own prefixes are not GitHub's. The error does not
// show it, and nothing is stored.
func TestIssueRefusesATokenAsAName(t *testing.T) {
	db := openStore(t)
	prefixes := token.Prefixes{Classic: "acme_", FineGrained: "acmefg_"}
	if err := db.SetMeta(t.Context(), store.MetaClassicPrefix, prefixes.Classic); err != nil {
		t.Fatal(err)
	}
	if err := db.SetMeta(t.Context(), store.MetaFineGrainedPrefix, prefixes.FineGrained); err != nil {
		t.Fatal(err)
	}
	c, err := NewChecker(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	classic, err := token.Generate(store.KindClassic, prefixes)
	if err != nil {
		t.Fatal(err)
	}
	fg, err := token.Generate(store.KindFineGrained, prefixes)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		field string
		req   Request
	}{
		{"user", Request{Kind: store.KindClassic, User: classic}},
		{"resource_owner", Request{Kind: store.KindFineGrained, User: "bob", ResourceOwner: fg}},
		{"repositories[1]", Request{Kind: store.KindFineGrained, User: "bob", RepositorySelection: "selected", Repositories: []string{"app", classic}}},
		// Scopes are sorted: the error names the one given.
		{"scopes[1]", Request{Kind: store.KindClassic, User: "bob", Scopes: []string{"repo", classic}}},
	} {
		_, err := Issue(t.Context(), db, c, tc.req, now)
		want := tc.field + ": looks like a personal access token; opa-pat never stores a token in plain text"
		if err == nil || err.Error() != want {
			t.Errorf("%s: err = %v; want %s", tc.field, err, want)
		}
	}
	if list, _ := db.ListTokens(t.Context(), store.TokenFilter{}); len(list) != 0 {
		t.Fatalf("stored: %+v", list)
	}
}

// What GitHub has no name for is refused before anything is written, for
// the CLI and the admin API alike: an unknown scope, an unknown permission,
// and metadata above read.
func TestIssueRefusesUnknownNames(t *testing.T) {
	db := openStore(t)
	c, err := NewChecker(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fg := func(perms map[string]string) Request {
		return Request{Kind: store.KindFineGrained, User: "bob", ResourceOwner: "octo-org", RepositorySelection: "all", Permissions: perms}
	}
	for _, tc := range []struct {
		note string
		req  Request
		err  string
	}{
		{"an unknown scope", Request{Kind: store.KindClassic, User: "bob", Scopes: []string{"bogus:scope"}}, `scopes[0]: unknown scope "bogus:scope"`},
		{"an unknown scope after a known one", Request{Kind: store.KindClassic, User: "bob", Scopes: []string{"repo", "Repo"}}, `scopes[1]: unknown scope "Repo"`},
		{"an unknown permission", fg(map[string]string{"bogus_perm": "read"}), "permissions.bogus_perm: unknown permission"},
		{"the first unknown permission by name", fg(map[string]string{"contents": "read", "zz": "read", "content": "write"}), "permissions.content: unknown permission"},
		{"a name of another shape", fg(map[string]string{"Contents": "read"}), `permissions: unknown permission "Contents"`},
		{"metadata: write", fg(map[string]string{"metadata": "write"}), `permissions.metadata: "write" is not a level of metadata, which is read-only on GitHub: give "read" or leave it out`},
		{"metadata: admin", fg(map[string]string{"metadata": "admin", "contents": "read"}), `permissions.metadata: "admin" is not a level of metadata, which is read-only on GitHub: give "read" or leave it out`},
		{"a GitHub App permission", fg(map[string]string{"packages": "read"}),
			"permissions.packages: GitHub offers this permission to GitHub Apps only, not to fine-grained personal access tokens"},
		{"a short organization name no rule honoured", fg(map[string]string{"webhooks": "write"}),
			"permissions.webhooks: unknown permission; GitHub's name is organization_hooks"},
		{"a read-only permission at write", fg(map[string]string{"codespaces_metadata": "write"}),
			`permissions.codespaces_metadata: "write" is not a level of codespaces_metadata, which is read-only on GitHub: give "read"`},
		{"a read-only permission at admin, by its earlier name", fg(map[string]string{"models": "admin"}),
			`permissions.models: "admin" is not a level of user_models, which is read-only on GitHub: give "read"`},
		{"a write-only permission at read", fg(map[string]string{"contents": "write", "workflows": "read"}),
			`permissions.workflows: "read" is not a level of workflows, which is write-only on GitHub: give "write"`},
		{"an earlier name beside GitHub's", fg(map[string]string{"variables": "read", "actions_variables": "write"}),
			"permissions.variables: GitHub's name of this permission is actions_variables, which is given too; give it once, as actions_variables"},
		{"GitHub's two spellings of one permission", fg(map[string]string{"emails": "read", "email_addresses": "write"}),
			"permissions.emails: GitHub's REST API spells this permission email_addresses, which is given too; give it once, as email_addresses"},
		{"GitHub's two spellings, at one level", fg(map[string]string{"keys": "write", "git_ssh_keys": "write", "gpg_keys": "read"}),
			"permissions.keys: GitHub's REST API spells this permission git_ssh_keys, which is given too; give it once, as git_ssh_keys"},
	} {
		t.Run(tc.note, func(t *testing.T) {
			_, err := Issue(t.Context(), db, c, tc.req, now)
			if err == nil || err.Error() != tc.err {
				t.Fatalf("err = %v\nwant %s", err, tc.err)
			}
		})
	}
	if list, _ := db.ListTokens(t.Context(), store.TokenFilter{}); len(list) != 0 {
		t.Fatalf("stored: %+v", list)
	}
	// GitHub's names pass: either spelling of an organization permission,
	// metadata at read, a classic token's scopes.
	for _, req := range []Request{
		fg(map[string]string{"metadata": "read", "organization_administration": "write", "personal_access_tokens": "read", "members": "read"}),
		fg(map[string]string{"workflows": "write", "contents": "write", "codespaces_metadata": "read", "user_models": "read", "gists": "write"}),
		{Kind: store.KindClassic, User: "bob", Scopes: []string{"repo", "admin:org", "read:audit_log", "workflow"}},
	} {
		if _, err := Issue(t.Context(), db, c, req, now); err != nil {
			t.Fatalf("%+v: %v", req, err)
		}
	}
}

// A permission named as earlier opa-pat versions named it is taken, and
// the token holds it under GitHub's name, which the policy asks for; one
// GitHub spells two ways (emails, keys) under the REST API's spelling.
func TestIssueStoresGitHubsNames(t *testing.T) {
	db := openStore(t)
	c, err := NewChecker(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	res, err := Issue(t.Context(), db, c, Request{Kind: store.KindFineGrained, User: "bob", RepositorySelection: "all",
		Permissions: map[string]string{"variables": "read", "ssh_signing_keys": "write", "models": "read", "contents": "write", "emails": "read", "keys": "write"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"actions_variables": "read", "git_signing_ssh_public_keys": "write", "user_models": "read", "contents": "write", "metadata": "read",
		"email_addresses": "read", "git_ssh_keys": "write"}
	if !reflect.DeepEqual(res.Token.Permissions, want) {
		t.Fatalf("created with %v; want %v", res.Token.Permissions, want)
	}
	stored, ok, err := db.TokenByHash(t.Context(), token.Hash(res.Raw))
	if err != nil || !ok || !reflect.DeepEqual(stored.Permissions, want) {
		t.Fatalf("stored %v (%t, %v); want %v", stored.Permissions, ok, err, want)
	}
}

// ApprovalDisabled decides as the admin API's data.pat.admin.approval: the
// enterprise's require or disable binds its organizations, an organization
// decides otherwise, and the default is require (SEMANTICS.md rule 18).
func TestApprovalDisabled(t *testing.T) {
	settings := map[string]any{
		"enterprises": map[string]any{"acme": map[string]any{"fine_grained_approval": "disable"}, "strict": map[string]any{"fine_grained_approval": "require"}},
		"organizations": map[string]any{
			"acme-labs": map[string]any{"enterprise": "acme"},
			"locked":    map[string]any{"enterprise": "strict", "fine_grained_approval": "disable"},
			"indie-org": map[string]any{"fine_grained_approval": "disable"},
		},
	}
	for _, tc := range []struct {
		settings map[string]any
		org      string
		want     bool
	}{
		{nil, "octo-org", false},
		{settings, "acme-labs", true},
		{settings, "Acme-Labs", true},
		{settings, "locked", false},
		{settings, "indie-org", true},
		{settings, "octo-org", false},
	} {
		got, err := ApprovalDisabled(t.Context(), tc.settings, tc.org)
		if err != nil || got != tc.want {
			t.Errorf("ApprovalDisabled(%s) = %v, %v; want %v", tc.org, got, err, tc.want)
		}
	}
}
