package permissions

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	patrego "github.com/opa-pat/opa-pat/rego"
)

// policyNames reads every fine-grained permission and classic scope the
// policy names: the Envoy gate's tables (repo_permissions, org_permissions,
// _private_permissions), every object with a "permission" or
// "classic_scopes" key (the routes' requirements), the decision's tables of
// classic scopes (_classic_org_scopes, _narrow_scopes,
// _classic_account_scopes) and the admin
// policy's operations.
func policyNames(t *testing.T) (perms, scopes map[string][]string) {
	t.Helper()
	mods, err := patrego.Modules()
	if err != nil {
		t.Fatal(err)
	}
	perms, scopes = map[string][]string{}, map[string][]string{}
	add := func(m map[string][]string, where string, t *ast.Term) {
		if s, ok := t.Value.(ast.String); ok {
			m[string(s)] = append(m[string(s)], where)
		}
	}
	// leaves adds the strings of an array or a set literal; anything else
	// (a reference, a variable) names nothing here.
	leaves := func(m map[string][]string, where string, t *ast.Term) {
		switch v := t.Value.(type) {
		case *ast.Array:
			v.Foreach(func(x *ast.Term) { add(m, where, x) })
		case ast.Set:
			v.Foreach(func(x *ast.Term) { add(m, where, x) })
		}
	}
	for path, src := range mods {
		mod, err := ast.ParseModuleWithOpts(path, src, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			t.Fatal(err)
		}
		for _, rule := range mod.Rules {
			name := rule.Head.Name.String()
			where := path + ": " + name
			if rule.Head.Value == nil {
				continue
			}
			switch name {
			case "repo_permissions", "org_permissions":
				obj, _ := rule.Head.Value.Value.(ast.Object)
				obj.Foreach(func(_, v *ast.Term) {
					add(perms, where, v)
					if o, ok := v.Value.(ast.Object); ok {
						for _, k := range []string{"read", "write"} {
							if x := o.Get(ast.StringTerm(k)); x != nil {
								add(perms, where, x)
							}
						}
					}
				})
			case "_private_permissions":
				leaves(perms, where, rule.Head.Value)
			case "_classic_org_scopes", "_narrow_scopes", "_classic_account_scopes":
				obj, _ := rule.Head.Value.Value.(ast.Object)
				obj.Foreach(func(k, v *ast.Term) {
					add(perms, where, k)
					if o, ok := v.Value.(ast.Object); ok {
						o.Foreach(func(_, set *ast.Term) { leaves(scopes, where, set) })
					}
				})
			}
		}
		ast.WalkTerms(mod, func(x *ast.Term) bool {
			switch v := x.Value.(type) {
			case ast.Object:
				if p := v.Get(ast.StringTerm("permission")); p != nil {
					add(perms, path+": a requirement", p)
				}
				for _, k := range []string{"classic_scopes", "scopes"} {
					if s := v.Get(ast.StringTerm(k)); s != nil {
						leaves(scopes, path+": "+k, s)
					}
				}
			case ast.Call:
				// The admin policy's _org_op(permission, level).
				if len(v) == 3 && v[0].String() == "_org_op" {
					add(perms, path+": _org_op", v[1])
				}
			}
			return false
		})
	}
	return perms, scopes
}

// Every permission and scope the policy names is GitHub's, as this package
// knows them: a name the gate maps a route to but token creation refused
// would make that route unreachable with any new token. A permission is
// named in GitHub's spelling (or, for the admin API, opa-pat's short one),
// never an earlier name that tokens are stored under GitHub's name for.
func TestThePolicysNamesAreKnown(t *testing.T) {
	perms, scopes := policyNames(t)
	if len(perms) < 40 || len(scopes) < 10 {
		t.Fatalf("read %d permissions and %d scopes from the policy: the walk missed its tables", len(perms), len(scopes))
	}
	var missing []string
	for name, where := range perms {
		if !Fine(name) {
			missing = append(missing, "permission "+name+" ("+where[0]+")")
		} else if c := Canonical(name); c != name {
			missing = append(missing, "permission "+name+" ("+where[0]+"): GitHub's name is "+c)
		}
	}
	for name, where := range scopes {
		if !Scope(name) {
			missing = append(missing, "scope "+name+" ("+where[0]+")")
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("the policy names what this package does not know:\n%s", strings.Join(missing, "\n"))
	}
}

// The decision reads a request's earlier name as GitHub's, and GitHub's
// second spelling as the REST API's (pat.rego's _renamed), as the store
// reads a stored token's (renamed, spelled): a service that asks for
// "variables" is decided on the actions_variables a token is stored with,
// one that asks for "emails" on its email_addresses. The tables must be
// one.
func TestThePolicyRenamesAsTheStore(t *testing.T) {
	if got := ruleValue[map[string]string](t, "data.pat", "_renamed"); !maps.Equal(got, canonical) {
		t.Fatalf("pat.rego's _renamed = %v; want %v", got, canonical)
	}
	if len(canonical) != len(renamed)+len(spelled) {
		t.Fatalf("renamed and spelled share a name: %v, %v", renamed, spelled)
	}
}

// A token that creates one through the admin API needs admin:org for
// the new token's organization permissions (creation.rego), which it
// tells by their organization_ prefix or by name: its list of the names
// without the prefix must be this package's.
func TestCreationKnowsTheOrganizationPermissions(t *testing.T) {
	got := ruleValue[[]string](t, "data.pat", "_unprefixed_org_permissions")
	var want []string
	for name := range fine {
		if Organization(name) && !strings.HasPrefix(name, "organization_") {
			want = append(want, name)
		}
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("creation.rego's _unprefixed_org_permissions = %q; want %q", got, want)
	}
}

// A token that creates one through the admin API needs repo for the new
// token's account permissions, whatever its repository selection
// (creation.rego): the decision asks a classic token for repo on the
// user's own account, where the selection does not apply. The check tells
// them by name: its list must be this package's.
func TestCreationKnowsTheAccountPermissions(t *testing.T) {
	got := ruleValue[[]string](t, "data.pat", "_account_permissions")
	want := slices.Clone(account)
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("creation.rego's _account_permissions = %q; want %q", got, want)
	}
}

// ruleValue reads the value of a rule of the policy's package pkg.
func ruleValue[T any](t *testing.T, pkg, name string) T {
	t.Helper()
	mods, err := patrego.Modules()
	if err != nil {
		t.Fatal(err)
	}
	var v T
	found := false
	for path, src := range mods {
		mod, err := ast.ParseModuleWithOpts(path, src, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			t.Fatal(err)
		}
		for _, rule := range mod.Rules {
			if rule.Head.Name.String() != name || mod.Package.Path.String() != pkg {
				continue
			}
			x, err := ast.JSON(rule.Head.Value.Value)
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(x)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &v); err != nil {
				t.Fatal(err)
			}
			found = true
		}
	}
	if !found {
		t.Fatalf("no rule %s.%s", pkg, name)
	}
	return v
}

func TestNames(t *testing.T) {
	for _, name := range []string{"contents", "metadata", "organization_administration", "personal_access_tokens", "members", "gpg_keys",
		// GitHub's names of the fine-grained token pages (github/docs
		// fine-grained-pat-permissions.json, the URL-parameter table).
		"emails", "keys", "user_events", "private_repository_invitations", "copilot_requests", "blocking", "plan",
		"organization_code_scanning_dismissal_requests",
		"actions_variables", "git_signing_ssh_public_keys", "user_models",
		// The REST API's app-permissions spelling of emails and keys, the
		// one they are stored under.
		"email_addresses", "git_ssh_keys",
		// GitHub App permissions the policy asks for.
		"checks", "repository_projects", "organization_personal_access_tokens", "organization_personal_access_token_requests",
		// Earlier opa-pat names, taken and stored as GitHub's.
		"variables", "ssh_signing_keys", "models"} {
		if !Fine(name) {
			t.Errorf("Fine(%q) = false", name)
		}
	}
	for _, name := range []string{"bogus_perm", "content", "Contents", "", "repo", "organization_",
		// GitHub App permissions GitHub does not offer fine-grained tokens.
		"packages", "single_file", "organization_packages",
		// Short organization names no rule honoured.
		"announcement_banners", "custom_properties", "custom_roles", "events", "projects", "self_hosted_runners", "webhooks"} {
		if Fine(name) {
			t.Errorf("Fine(%q) = true", name)
		}
	}
	for _, name := range []string{"repo", "admin:org", "read:audit_log", "workflow", "manage_billing:copilot"} {
		if !Scope(name) {
			t.Errorf("Scope(%q) = false", name)
		}
	}
	for _, name := range []string{"bogus:scope", "REPO", "contents", ""} {
		if Scope(name) {
			t.Errorf("Scope(%q) = true", name)
		}
	}
	for name, want := range map[string]bool{"members": true, "personal_access_tokens": true, "organization_hooks": true,
		"organization_anything_new": true, "contents": false, "administration": false, "gpg_keys": false,
		// GitHub's repository and account permissions, once listed as
		// short organization names.
		"secrets": false, "variables": false, "actions_variables": false, "blocking": false, "plan": false,
		// A stored token's retired short name keeps its group.
		"webhooks": true, "self_hosted_runners": true} {
		if Organization(name) != want {
			t.Errorf("Organization(%q) = %t", name, !want)
		}
	}
}

// The account permissions, in every spelling a token may hold them under,
// are told from the repository and organization ones: GitHub's
// organization endpoints group them under "other".
func TestAccount(t *testing.T) {
	for name, want := range map[string]bool{
		"blocking": true, "emails": true, "email_addresses": true, "keys": true, "git_ssh_keys": true, "followers": true,
		"gists": true, "gpg_keys": true, "profile": true, "starring": true, "watching": true, "plan": true,
		"user_models": true, "git_signing_ssh_public_keys": true, "codespaces_user_secrets": true, "copilot_requests": true,
		// Earlier opa-pat names of account permissions.
		"models": true, "ssh_signing_keys": true,
		// A repository's, also under an earlier name, and an organization's.
		"contents": false, "metadata": false, "secrets": false, "actions_variables": false, "variables": false,
		"organization_plan": false, "organization_models": false, "organization_user_blocking": false, "members": false,
		"personal_access_tokens": false, "webhooks": false,
		"bogus_perm": false, "": false,
	} {
		if got := Account(name); got != want {
			t.Errorf("Account(%q) = %t; want %t", name, got, want)
		}
	}
	// Every name token creation takes is in one group at most, and every
	// name of the account list is an account's.
	for name := range fine {
		if Account(name) && Organization(name) {
			t.Errorf("%s is an account's and an organization's", name)
		}
	}
	for _, name := range account {
		if !Account(name) {
			t.Errorf("Account(%q) = false", name)
		}
	}
}

func TestCanonical(t *testing.T) {
	for name, want := range map[string]string{"variables": "actions_variables", "ssh_signing_keys": "git_signing_ssh_public_keys",
		"models": "user_models", "actions_variables": "actions_variables", "bogus": "bogus",
		// GitHub's two spellings: the REST API's is the one.
		"emails": "email_addresses", "email_addresses": "email_addresses", "keys": "git_ssh_keys", "git_ssh_keys": "git_ssh_keys"} {
		if got := Canonical(name); got != want {
			t.Errorf("Canonical(%q) = %q; want %q", name, got, want)
		}
	}
	for name, want := range map[string][]string{"actions_variables": {"actions_variables", "variables"}, "variables": {"variables"},
		"user_models": {"user_models", "models"}, "contents": {"contents"},
		"email_addresses": {"email_addresses", "emails"}, "git_ssh_keys": {"git_ssh_keys", "keys"}, "emails": {"emails"}} {
		if got := Spellings(name); !slices.Equal(got, want) {
			t.Errorf("Spellings(%q) = %q; want %q", name, got, want)
		}
	}
}

// A token stored with an earlier name holds GitHub's at the same level; a
// map without one is returned as it is, not copied.
func TestNormalize(t *testing.T) {
	for _, tc := range []struct {
		in, want map[string]string
	}{
		{map[string]string{"variables": "read", "contents": "write"}, map[string]string{"actions_variables": "read", "contents": "write"}},
		{map[string]string{"ssh_signing_keys": "write", "models": "read"}, map[string]string{"git_signing_ssh_public_keys": "write", "user_models": "read"}},
		// Both names: the earlier one decided when the token was stored.
		{map[string]string{"variables": "read", "actions_variables": "write"}, map[string]string{"actions_variables": "read"}},
		// GitHub's other spelling of an account permission: the REST API's.
		{map[string]string{"emails": "read", "keys": "write", "gpg_keys": "read"}, map[string]string{"email_addresses": "read", "git_ssh_keys": "write", "gpg_keys": "read"}},
		// Both spellings, each decided on its own when stored: the lower
		// level, whichever spelling held it.
		{map[string]string{"emails": "write", "email_addresses": "read"}, map[string]string{"email_addresses": "read"}},
		{map[string]string{"emails": "read", "email_addresses": "write"}, map[string]string{"email_addresses": "read"}},
		{map[string]string{"keys": "write", "git_ssh_keys": "write"}, map[string]string{"git_ssh_keys": "write"}},
		{nil, nil},
	} {
		in := maps.Clone(tc.in)
		if got := Normalize(in); !maps.Equal(got, tc.want) || (tc.in != nil && !maps.Equal(in, tc.in)) {
			t.Errorf("Normalize(%v) = %v (input now %v); want %v", tc.in, got, in, tc.want)
		}
	}
	m := map[string]string{"contents": "read", "actions_variables": "write"}
	if got := Normalize(m); reflect.ValueOf(got).UnsafePointer() != reflect.ValueOf(m).UnsafePointer() {
		t.Fatal("Normalize copied a map that holds GitHub's names only")
	}
	if n := testing.AllocsPerRun(100, func() { Normalize(m) }); n != 0 {
		t.Fatalf("Normalize of GitHub's names allocates %v times", n)
	}
}

func TestUnknown(t *testing.T) {
	for name, want := range map[string]string{
		"packages":      "GitHub offers this permission to GitHub Apps only, not to fine-grained personal access tokens",
		"single_file":   "GitHub offers this permission to GitHub Apps only, not to fine-grained personal access tokens",
		"webhooks":      "unknown permission; GitHub's name is organization_hooks",
		"custom_roles":  "unknown permission; GitHub's name is organization_custom_roles",
		"bogus_perm":    "unknown permission",
		"organization_": "unknown permission",
	} {
		if got := Unknown(name); got != want {
			t.Errorf("Unknown(%q) = %q; want %q", name, got, want)
		}
	}
}

func TestLevel(t *testing.T) {
	for _, tc := range []struct{ name, level, want string }{
		{"metadata", "write", `"write" is not a level of metadata, which is read-only on GitHub: give "read" or leave it out`},
		{"metadata", "admin", `"admin" is not a level of metadata, which is read-only on GitHub: give "read" or leave it out`},
		{"user_models", "write", `"write" is not a level of user_models, which is read-only on GitHub: give "read"`},
		{"organization_events", "admin", `"admin" is not a level of organization_events, which is read-only on GitHub: give "read"`},
		{"workflows", "read", `"read" is not a level of workflows, which is write-only on GitHub: give "write"`},
		{"copilot_requests", "read", `"read" is not a level of copilot_requests, which is write-only on GitHub: give "write"`},
		{"contents", "admin", `"admin" is not a level of contents: GitHub offers admin for organization_custom_properties, organization_projects and repository_projects only; give "write"`},
		{"workflows", "admin", `"admin" is not a level of workflows: GitHub offers admin for organization_custom_properties, organization_projects and repository_projects only; give "write"`},
		{"metadata", "read", ""}, {"user_models", "read", ""}, {"workflows", "write", ""}, {"organization_projects", "admin", ""},
		{"organization_custom_properties", "admin", ""}, {"repository_projects", "admin", ""},
		{"contents", "read", ""}, {"contents", "write", ""}, {"metadata", "bogus", ""}, {"workflows", "bogus", ""},
	} {
		if got := Level(tc.name, tc.level); got != tc.want {
			t.Errorf("Level(%q, %q) = %q; want %q", tc.name, tc.level, got, tc.want)
		}
	}
}

// The lists hold each name once, and no name is in two of them: a name
// is one permission, of one kind.
func TestListsDoNotOverlap(t *testing.T) {
	seen := map[string]string{}
	for list, names := range map[string][]string{"repository": repository, "organization": organization, "account": account,
		"appPolicy": appPolicy, "appOnly": appOnly, "organizationShort": organizationShort,
		"renamed": keys(renamed), "retired": keys(retired), "spelled": keys(spelled)} {
		for _, n := range names {
			if other, ok := seen[n]; ok {
				t.Errorf("%s is in %s and %s", n, other, list)
			}
			seen[n] = list
		}
	}
	for name := range readOnly {
		if !github[name] || writeOnly[name] {
			t.Errorf("read-only %s: not GitHub's, or write-only too", name)
		}
	}
	for name := range writeOnly {
		if !github[name] {
			t.Errorf("write-only %s: not GitHub's", name)
		}
	}
	for other, c := range spelled {
		if !accounts[c] || accounts[other] {
			t.Errorf("%s stands for %s: the account list must hold the REST API's spelling alone", other, c)
		}
	}
	for _, m := range []map[string]string{renamed, retired, spelled} {
		for old, c := range m {
			if !github[c] {
				t.Errorf("%s stands for %s, which is not GitHub's", old, c)
			}
		}
	}
}

// Token creation refuses a permission given under two names that are one,
// saying which name it is stored under.
func TestTwice(t *testing.T) {
	for name, want := range map[string]string{
		"variables": "GitHub's name of this permission is actions_variables, which is given too; give it once, as actions_variables",
		"models":    "GitHub's name of this permission is user_models, which is given too; give it once, as user_models",
		"emails":    "GitHub's REST API spells this permission email_addresses, which is given too; give it once, as email_addresses",
		"keys":      "GitHub's REST API spells this permission git_ssh_keys, which is given too; give it once, as git_ssh_keys",
	} {
		if got := Twice(name); got != want {
			t.Errorf("Twice(%q) = %q; want %q", name, got, want)
		}
	}
}
