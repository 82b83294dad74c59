// Package permissions is GitHub's vocabulary of personal access tokens: the
// names of fine-grained permissions and of classic scopes. Token creation
// (plugin/issue, shared by the CLI and the admin API) refuses a name
// outside it, and the admin API's permission filter does too: a typo
// ("content", "bogus:scope") would otherwise make a token that no request
// ever needs, or a filter that lists nothing, silently.
//
// The fine-grained names are those GitHub offers fine-grained personal
// access tokens, with the levels it offers them at: github/docs'
// fine-grained-pat-permissions.json (the data behind "Permissions required
// for fine-grained personal access tokens") and the table of URL parameters
// for pre-filling a fine-grained token ("Managing your personal access
// tokens"). The REST API's app-permissions schema is GitHub Apps' list, not
// the tokens': it spells two account permissions otherwise (email_addresses
// and git_ssh_keys for emails and keys: one permission each, under the REST
// API's name, spelled), and it has permissions GitHub does not offer fine-grained tokens (checks,
// single_file, packages, repository_projects, organization_packages,
// organization_personal_access_tokens,
// organization_personal_access_token_requests). Of those, token creation
// takes the ones the policy asks for (appPolicy) and refuses the others
// (appOnly). The classic scopes are "Scopes for OAuth apps" and the ones
// github.com's classic token page offers besides.
//
// The policy does not keep one list: its permission and scope names are
// spread over the Envoy gate's mapping tables and the decision's rules.
// The package's test reads every name those tables and rules use and
// requires each to be here, in GitHub's spelling, so that the two cannot
// drift apart.
package permissions

import (
	"fmt"
	"sort"
	"strings"
)

// MetadataName is the permission every fine-grained token holds at read,
// and only at read: GitHub's metadata permission is read-only.
const MetadataName = "metadata"

// repository are the fine-grained permissions on repositories.
var repository = []string{
	"actions", "actions_variables", "administration", "agent_secrets", "agent_variables", "artifact_metadata", "attestations",
	"code_quality", "codespaces", "codespaces_lifecycle_admin", "codespaces_metadata", "codespaces_secrets", "contents",
	"copilot_agent_settings", "dependabot_secrets", "deployments", "discussions", "environments", "issues", "merge_queues",
	"metadata", "pages", "pull_requests", "repository_advisories", "repository_custom_properties", "repository_hooks",
	"secret_scanning_alerts", "secrets", "security_events", "statuses", "vulnerability_alerts", "workflows",
}

// organization are the fine-grained permissions on organizations, in
// GitHub's spelling (with the organization_ prefix, but for members,
// team_discussions and some of the newest ones).
var organization = []string{
	"issue_fields", "issue_types", "members",
	"org_copilot_content_exclusion", "organization_actions_variables", "organization_administration",
	"organization_agent_secrets", "organization_agent_variables", "organization_announcement_banners",
	"organization_api_insights", "organization_campaigns", "organization_code_scanning_dismissal_requests",
	"organization_codespaces", "organization_codespaces_secrets", "organization_codespaces_settings",
	"organization_copilot_agent_settings", "organization_copilot_metrics", "organization_copilot_seat_management",
	"organization_copilot_spaces", "organization_custom_org_roles", "organization_custom_properties",
	"organization_custom_roles", "organization_dependabot_secrets", "organization_events", "organization_hooks",
	"organization_knowledge_bases", "organization_models", "organization_network_configurations", "organization_plan",
	"organization_private_registries", "organization_projects", "organization_runner_custom_images",
	"organization_secrets", "organization_self_hosted_runners", "organization_user_blocking", "team_discussions",
}

// appPolicy are GitHub App permissions that GitHub does not offer
// fine-grained tokens but the policy asks for, so that token creation
// takes them: the Envoy gate maps the Checks endpoints to checks and the
// classic Projects of a repository to repository_projects, as the REST
// API's app-permissions name them (docs/envoy.md), and the admin API lets
// a fine-grained token holding organization_personal_access_tokens or
// organization_personal_access_token_requests manage an organization's
// tokens (docs/admin-api.md), where GitHub lets only GitHub Apps. Refusing
// them would leave those endpoints to classic tokens alone.
var appPolicy = []string{
	"checks", "repository_projects",
	"organization_personal_access_token_requests", "organization_personal_access_tokens",
}

// appOnly are GitHub App permissions that GitHub does not offer
// fine-grained tokens and nothing in the policy asks for: token creation
// refuses them, as GitHub would.
var appOnly = []string{"organization_packages", "packages", "single_file"}

// organizationShort are opa-pat's own short spellings of the two
// organization permissions the admin API asks for (data.pat.admin reads
// either spelling, and docs/admin-api.md documents both). They are not
// GitHub's: GitHub spells them with the organization_ prefix. The admin
// API groups them under "organization".
var organizationShort = []string{"personal_access_token_requests", "personal_access_tokens"}

// account are the fine-grained permissions on the user's own account,
// which GitHub's organization endpoints group under "other" (Account), in
// the REST API's spelling (email_addresses and git_ssh_keys, which the
// fine-grained token pages call emails and keys: spelled).
var account = []string{
	"blocking", "codespaces_user_secrets", "copilot_editor_context", "copilot_messages", "copilot_requests",
	"email_addresses", "followers", "gists", "git_signing_ssh_public_keys", "git_ssh_keys", "gpg_keys",
	"interaction_limits", "knowledge_bases", "plan", "private_repository_invitations", "profile", "starring",
	"user_events", "user_models", "watching",
}

// spelled are GitHub's second spellings of two account permissions: its
// fine-grained token pages and URL parameters say emails and keys where the
// REST API (its app-permissions schema, and the permissions its responses
// list) says email_addresses and git_ssh_keys. Each pair is one
// permission, under the REST API's name, as a renamed one is under
// GitHub's: token creation takes either spelling and stores the REST
// API's, the store reads a token stored with the other under it
// (Normalize), the decision reads a request's other spelling as the REST
// API's (pat.rego, _renamed, which holds these pairs too), and the admin
// API's permission filter matches both (Spellings).
var spelled = map[string]string{
	"emails": "email_addresses",
	"keys":   "git_ssh_keys",
}

// renamed are names earlier opa-pat versions took for permissions GitHub
// names otherwise, with GitHub's name (github/docs'
// fine-grained-pat-permissions.json, the URL-parameter table): the gate
// asked for "variables" where GitHub's fine-grained tokens hold
// actions_variables. Token creation takes the old name and stores
// GitHub's; the store reads a token stored with an old name under
// GitHub's (Normalize), and the decision reads a request's old name as
// GitHub's (pat.rego, _renamed), so such a token keeps exactly its access.
var renamed = map[string]string{
	"models":           "user_models",
	"ssh_signing_keys": "git_signing_ssh_public_keys",
	"variables":        "actions_variables",
}

// retired are short organization names that earlier opa-pat versions took
// although no rule honoured them (a token made with them reached nothing
// more), with GitHub's name, which token creation's refusal gives. Earlier
// versions listed blocking, plan, secrets and variables among them too:
// GitHub's blocking and plan are account permissions, secrets a
// repository's, and variables is actions_variables (renamed).
var retired = map[string]string{
	"announcement_banners": "organization_announcement_banners",
	"custom_properties":    "organization_custom_properties",
	"custom_roles":         "organization_custom_roles",
	"events":               "organization_events",
	"projects":             "organization_projects",
	"self_hosted_runners":  "organization_self_hosted_runners",
	"webhooks":             "organization_hooks",
}

// readOnly are the permissions GitHub offers at read only; writeOnly
// those it offers at write only (the fine-grained token URL parameters'
// access levels).
var (
	readOnly = set([]string{
		MetadataName, "codespaces_metadata", "copilot_editor_context", "copilot_messages", "organization_api_insights",
		"organization_events", "organization_models", "organization_plan", "plan", "private_repository_invitations",
		"user_events", "user_models",
	})
	writeOnly = set([]string{"codespaces_secrets", "copilot_requests", "gists", "profile", "workflows"})
)

// scopes are the classic scopes.
var scopes = []string{
	"repo", "repo:status", "repo_deployment", "public_repo", "repo:invite", "security_events",
	"admin:repo_hook", "write:repo_hook", "read:repo_hook",
	"admin:org", "write:org", "read:org", "manage_runners:org",
	"admin:public_key", "write:public_key", "read:public_key",
	"admin:org_hook", "gist", "notifications",
	"user", "read:user", "user:email", "user:follow",
	"project", "read:project", "delete_repo",
	"write:packages", "read:packages", "delete:packages",
	"admin:gpg_key", "write:gpg_key", "read:gpg_key",
	"codespace", "codespace:secrets", "workflow",
	"write:discussion", "read:discussion",
	"admin:enterprise", "manage_runners:enterprise", "manage_billing:enterprise", "read:enterprise", "scim:enterprise",
	"audit_log", "read:audit_log", "copilot", "manage_billing:copilot",
	"admin:ssh_signing_key", "write:ssh_signing_key", "read:ssh_signing_key",
	"write:network_configurations", "read:network_configurations",
}

// canonical are renamed and spelled together: every name that stands for
// another.
var canonical = union(renamed, spelled)

var (
	github    = set(repository, organization, account, appPolicy, keys(spelled))
	fine      = set(repository, organization, account, appPolicy, organizationShort, keys(canonical))
	orgNames  = set(organization, organizationShort, keys(retired))
	appOnlys  = set(appOnly)
	scopeSet  = set(scopes)
	repoNames = set(repository)
	accounts  = set(account)
)

func set(lists ...[]string) map[string]bool {
	out := map[string]bool{}
	for _, l := range lists {
		for _, s := range l {
			out[s] = true
		}
	}
	return out
}

func union(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// Fine reports whether token creation takes name as a fine-grained
// permission: one of GitHub's, in either of its spellings, one of opa-pat's
// short organization names, or an earlier opa-pat name of one of GitHub's
// (stored as GitHub's, Canonical).
func Fine(name string) bool { return fine[name] }

// Canonical returns the name a permission is stored and decided under:
// GitHub's name of one earlier opa-pat versions named otherwise (variables:
// actions_variables), the REST API's spelling of one GitHub spells two ways
// (emails: email_addresses), and any other name as it is.
func Canonical(name string) string {
	if c, ok := canonical[name]; ok {
		return c
	}
	return name
}

// Spellings returns the names a stored token may hold a permission under:
// the name, and when it is the canonical name of others (Canonical), those
// too, sorted. Another name is returned alone.
func Spellings(name string) []string {
	var others []string
	for other, c := range canonical {
		if c == name {
			others = append(others, other)
		}
	}
	sort.Strings(others)
	return append([]string{name}, others...)
}

// Normalize returns perms with the canonical names (Canonical) in place of
// the others: perms itself, not a copy, when it holds none, as a token made
// since does. A token holding both names of a renamed permission keeps the
// earlier name's level: the one the policy decided with when it was
// stored. One holding both spellings of a spelled one (the policy decided
// each on its own before they were one) keeps the lower level, so that no
// request is let through that was refused before.
func Normalize(perms map[string]string) map[string]string {
	var out map[string]string
	for other, c := range canonical {
		level, ok := perms[other]
		if !ok {
			continue
		}
		if out == nil {
			out = make(map[string]string, len(perms))
			for k, v := range perms {
				out[k] = v
			}
		}
		delete(out, other)
		if held, ok := perms[c]; ok && spelled[other] != "" && levelRank[held] < levelRank[level] {
			level = held
		}
		out[c] = level
	}
	if out == nil {
		return perms
	}
	return out
}

// levelRank orders the levels; one that is none of them ranks lowest (the
// policy reads it as no access).
var levelRank = map[string]int{"read": 1, "write": 2, "admin": 3}

// Twice says why token creation refuses name given beside its canonical
// name (Canonical) in one request: both are stored under the canonical
// name, so one of the two levels would be lost.
func Twice(name string) string {
	c := Canonical(name)
	if _, ok := spelled[name]; ok {
		return fmt.Sprintf("GitHub's REST API spells this permission %s, which is given too; give it once, as %s", c, c)
	}
	return fmt.Sprintf("GitHub's name of this permission is %s, which is given too; give it once, as %s", c, c)
}

// Unknown says why token creation refuses a name of a permission's shape
// that Fine does not take: a GitHub App permission GitHub does not offer
// fine-grained tokens, a short name earlier versions took (with GitHub's
// name), or an unknown name.
func Unknown(name string) string {
	if appOnlys[name] {
		return "GitHub offers this permission to GitHub Apps only, not to fine-grained personal access tokens"
	}
	if c, ok := retired[name]; ok {
		return fmt.Sprintf("unknown permission; GitHub's name is %s", c)
	}
	return "unknown permission"
}

// Level says why token creation refuses a permission Fine takes at a level
// GitHub does not offer it at, or "" when GitHub offers it: a read-only
// permission above read, a write-only one at read, admin where GitHub
// offers no admin level. name is GitHub's
// (Canonical). A level that is none of read, write and admin is the
// store's to refuse.
func Level(name, level string) string {
	switch {
	case readOnly[name] && (level == "write" || level == "admin"):
		give := `give "read"`
		if name == MetadataName {
			give += " or leave it out" // every token holds it at read
		}
		return fmt.Sprintf("%q is not a level of %s, which is read-only on GitHub: %s", level, name, give)
	case writeOnly[name] && level == "read":
		return fmt.Sprintf(`"read" is not a level of %s, which is write-only on GitHub: give "write"`, name)
	case level == "admin" && !adminLevel[name]:
		return fmt.Sprintf(`"admin" is not a level of %s: GitHub offers admin for organization_custom_properties, organization_projects and repository_projects only; give "write"`, name)
	}
	return ""
}

// adminLevel are the permissions GitHub offers at admin (the URL
// parameters' access levels, and the REST API's app-permissions for
// repository_projects); the policy reads admin as write for every other,
// so an admin level there only says what GitHub would not make.
var adminLevel = set([]string{"organization_custom_properties", "organization_projects", "repository_projects"})

// Organization reports whether name is an organization permission: any
// other fine-grained permission is an account's (Account) or a
// repository's. A short name an earlier version took (retired) still
// counts, so that a stored token's permissions keep their group.
func Organization(name string) bool {
	return orgNames[name] || (strings.HasPrefix(name, "organization_") && !repoNames[name])
}

// Account reports whether name is a permission on the user's own account
// (gists, gpg_keys, user_models, ...), which GitHub's organization
// endpoints group under "other", apart from the repository permissions: in
// either spelling GitHub uses (emails or email_addresses, keys or
// git_ssh_keys; spelled), or an earlier opa-pat name of one (models,
// ssh_signing_keys; Canonical). No account permission is an
// organization's.
func Account(name string) bool { return accounts[Canonical(name)] }

// Scope reports whether name is a classic scope.
func Scope(name string) bool { return scopeSet[name] }

// Scopes returns the classic scopes, GitHub's.
func Scopes() []string { return append([]string(nil), scopes...) }
