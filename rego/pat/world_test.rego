# The test world shared by the policy's tests: tokens, grants, memberships, users and
# repositories behind mock pat.* built-ins, a fixed clock, settings, and helpers that build
# requests and expected decisions. Built-ins are mocked with functions (`with pat.token as
# mock_token`) so that stock OPA runs the tests with rego/capabilities.json.
package pat_test

# 2026-01-01T00:00:00Z, when every token of the world was created.
created := 1767225600000000000

day := 86400000000000

# 2026-03-01T00:00:00Z, the tests' clock.
now := 1772323200000000000

classic(id, user, scopes, expires) := {
	"well_formed": true, "found": true, "kind": "classic", "id": id, "user": user, "name": sprintf("token %d", [id]),
	"created_at_ns": created, "expires_at_ns": expires, "revoked": false, "scopes": scopes,
	"resource_owner": "", "repository_selection": "", "repositories": set(), "permissions": {},
}

fine_grained(id, user, owner, selection, repositories, permissions, expires) := {
	"well_formed": true, "found": true, "kind": "fine_grained", "id": id, "user": user, "name": sprintf("token %d", [id]),
	"created_at_ns": created, "expires_at_ns": expires, "revoked": false, "scopes": set(),
	"resource_owner": owner, "repository_selection": selection, "repositories": repositories,
	"permissions": object.union({"metadata": "read"}, permissions),
}

in_days(n) := created + (n * day)

write := {"contents": "write"}

# One rule per token, so that a lookup evaluates only the token asked for.
tokens["ghp_bob_repo"] := classic(1, "bob", {"repo"}, in_days(180))

tokens["ghp_bob_none"] := classic(2, "bob", set(), in_days(180))

tokens["ghp_bob_public_repo"] := classic(3, "bob", {"public_repo"}, in_days(180))

tokens["ghp_bob_workflow"] := classic(4, "bob", {"repo", "workflow"}, in_days(180))

tokens["ghp_alice_admin"] := classic(5, "alice", {"admin:org"}, in_days(180))

tokens["ghp_bob_forever"] := classic(6, "bob", {"repo"}, null)

tokens["ghp_bob_expired"] := classic(7, "bob", {"repo"}, in_days(30))

tokens["ghp_bob_revoked"] := object.union(classic(8, "bob", {"repo"}, in_days(180)), {"revoked": true})

tokens["ghp_alice_read_org"] := classic(9, "alice", {"read:org"}, in_days(180))

tokens["ghp_bob_expired_revoked"] := object.union(classic(10, "bob", {"repo"}, now), {"revoked": true})

tokens["ghp_mia_forever"] := classic(11, "mia", {"repo"}, null)

tokens["github_pat_bob_app"] := fine_grained(20, "bob", "octo-org", "selected", {"app"}, {"contents": "write", "issues": "read"}, in_days(90))

tokens["github_pat_bob_all_read"] := fine_grained(21, "bob", "octo-org", "all", set(), {"contents": "read"}, in_days(90))

tokens["github_pat_bob_public"] := fine_grained(22, "bob", "octo-org", "public", set(), {}, in_days(90))

# Public repositories only, with an organization permission, and no grant.
tokens["github_pat_bob_public_members"] := fine_grained(48, "bob", "octo-org", "public", set(), {"members": "write"}, in_days(90))

tokens["github_pat_bob_public_metadata_write"] := fine_grained(49, "bob", "octo-org", "public", set(), {"metadata": "write"}, in_days(90))

tokens["github_pat_bob_own"] := fine_grained(23, "bob", "bob", "all", set(), write, in_days(90))

tokens["github_pat_carol"] := fine_grained(24, "carol", "octo-org", "all", set(), write, in_days(90))

tokens["github_pat_dave_solo"] := fine_grained(25, "dave", "solo-org", "all", set(), write, in_days(90))

tokens["github_pat_bob_pending"] := fine_grained(26, "bob", "octo-org", "all", set(), write, in_days(90))

tokens["github_pat_bob_denied"] := fine_grained(27, "bob", "octo-org", "all", set(), write, in_days(90))

tokens["github_pat_bob_revoked_grant"] := fine_grained(28, "bob", "octo-org", "all", set(), write, in_days(90))

tokens["github_pat_bob_no_grant"] := fine_grained(29, "bob", "octo-org", "all", set(), write, in_days(90))

tokens["github_pat_bob_400"] := fine_grained(30, "bob", "octo-org", "all", set(), write, in_days(400))

tokens["github_pat_alice_400"] := fine_grained(31, "alice", "octo-org", "all", set(), write, in_days(400))

tokens["github_pat_mia_own_400"] := fine_grained(32, "mia", "mia", "all", set(), write, in_days(400))

tokens["github_pat_bob_forever"] := fine_grained(33, "bob", "octo-org", "all", set(), write, null)

tokens["github_pat_erin_400"] := fine_grained(34, "erin", "octo-org", "all", set(), write, in_days(400))

tokens["github_pat_bob_admin"] := fine_grained(35, "bob", "octo-org", "all", set(), {"contents": "admin", "members": "read"}, in_days(90))

tokens["github_pat_bob_solo"] := fine_grained(36, "bob", "solo-org", "all", set(), write, in_days(90))

tokens["github_pat_frank_own_400"] := fine_grained(37, "frank", "frank", "all", set(), write, in_days(400))

tokens["github_pat_erin_own_400"] := fine_grained(38, "erin", "erin", "all", set(), write, in_days(400))

tokens["github_pat_frank_octo"] := fine_grained(40, "frank", "octo-org", "all", set(), write, in_days(90))

tokens["github_pat_dave_solo_400"] := fine_grained(41, "dave", "solo-org", "all", set(), write, in_days(400))

tokens["github_pat_bob_90_days"] := fine_grained(42, "bob", "octo-org", "all", set(), write, in_days(90))

tokens["github_pat_bob_90_days_1s"] := fine_grained(43, "bob", "octo-org", "all", set(), write, in_days(90) + 1000000000)

tokens["ghp_frank_forever"] := classic(12, "frank", {"repo"}, null)

tokens["ghp_bob_repo_delete"] := classic(13, "bob", {"repo", "delete_repo"}, in_days(180))

tokens["ghp_bob_delete_repo"] := classic(14, "bob", {"delete_repo"}, in_days(180))

tokens["ghp_alice_audit_log"] := classic(15, "alice", {"read:audit_log"}, in_days(180))

tokens["ghp_bob_status"] := classic(16, "bob", {"repo:status"}, in_days(180))

tokens["ghp_bob_read_hook"] := classic(17, "bob", {"read:repo_hook"}, in_days(180))

tokens["ghp_bob_deployment"] := classic(18, "bob", {"repo_deployment"}, in_days(180))

tokens["ghp_bob_security_events"] := classic(19, "bob", {"security_events"}, in_days(180))

tokens["github_pat_bob_no_metadata"] := object.union(fine_grained(44, "bob", "octo-org", "all", set(), write, in_days(90)), {"permissions": write})

tokens["github_pat_weird_revoked"] := object.union(classic(45, "bob", {"repo"}, in_days(90)), {"kind": "oauth", "revoked": true})

tokens["github_pat_ghost_own"] := fine_grained(46, "ghost", "ghost", "all", set(), write, in_days(90))

# A record that spells its resource owner and repositories in another case.
tokens["github_pat_bob_mixed_case"] := fine_grained(47, "bob", "Octo-Org", "selected", {"App"}, write, in_days(90))

# A token an earlier opa-pat stored with {"variables": "read"}: the plugin reads it under GitHub's
# name (plugin/permissions, Normalize).
tokens["github_pat_bob_variables"] := fine_grained(50, "bob", "octo-org", "all", set(), {"actions_variables": "read"}, in_days(90))

tokens["github_pat_bob_weird_kind"] := object.union(classic(39, "bob", {"repo"}, in_days(90)), {"kind": "oauth"})

grants := {
	20: {"octo-org": grant(200, "approved", "")},
	21: {"octo-org": grant(201, "approved", "")},
	24: {"octo-org": grant(202, "approved", "")},
	25: {"solo-org": grant(203, "approved", "")},
	26: {"octo-org": grant(204, "pending", "release automation")},
	27: {"octo-org": grant(205, "denied", "use the release app")},
	28: {"octo-org": grant(206, "revoked", "")},
	30: {"octo-org": grant(207, "approved", "")},
	31: {"octo-org": grant(208, "approved", "")},
	33: {"octo-org": grant(209, "approved", "")},
	34: {"octo-org": grant(210, "approved", "")},
	35: {"octo-org": grant(211, "approved", "")},
	36: {"solo-org": grant(212, "approved", "")},
	40: {"octo-org": grant(213, "approved", "")},
	41: {"solo-org": grant(214, "approved", "")},
	42: {"octo-org": grant(215, "approved", "")},
	43: {"octo-org": grant(216, "approved", "")},
	44: {"octo-org": grant(217, "approved", "")},
	47: {"octo-org": grant(218, "approved", "")},
	50: {"octo-org": grant(219, "approved", "")},
}

grant(id, state, reason) := {"id": id, "state": state, "reason": reason, "reviewer": "alice", "updated_at_ns": created}

roles := {
	"octo-org": {"alice": "owner", "bob": "member", "carol": "outside_collaborator", "erin": "member"},
	"solo-org": {"dave": "owner", "bob": "member"},
}

users := {
	"alice": {"login": "alice", "managed_by": null},
	"bob": {"login": "bob", "managed_by": null},
	"carol": {"login": "carol", "managed_by": null},
	"dave": {"login": "dave", "managed_by": null},
	"erin": {"login": "erin", "managed_by": "acme"},
	"frank": {"login": "frank", "managed_by": null},
	"mia": {"login": "mia", "managed_by": "acme"},
}

repositories := {
	"octo-org": {"app": "private", "docs": "public", "tools": "internal", "ci": "private"},
	"solo-org": {"lib": "private", "www": "public"},
	"bob": {"dotfiles": "private", "blog": "public"},
	"mia": {"notes": "private"},
	"alice": {"site": "private"},
}

# The mock built-ins, with the shapes of plugin/builtins/decls.go.
mock_token(raw) := tokens[raw]

mock_token(raw) := {"well_formed": true, "kind": "classic", "found": false} if {
	not tokens[raw]
	startswith(raw, "ghp_")
}

mock_token(raw) := {"well_formed": true, "kind": "fine_grained", "found": false} if {
	not tokens[raw]
	startswith(raw, "github_pat_")
}

mock_token(raw) := {"well_formed": false} if {
	not startswith(raw, "ghp_")
	not startswith(raw, "github_pat_")
}

mock_grant(id, org) := grants[id][org]

mock_org_role(user, org) := roles[org][user]

mock_user(login) := users[login]

mock_repository(owner, name) := {"owner": owner, "name": name, "visibility": repositories[owner][name]}

# A store that is not ready: every built-in is undefined.
not_ready(_) := x if {
	x := 1
	false
}

# The settings most tests use: octo-org belongs to the acme enterprise, whose owner is erin;
# solo-org is outside any enterprise (absent from the settings).
acme := {
	"enterprises": {"acme": {"owners": ["erin"]}},
	"organizations": {"octo-org": {"enterprise": "acme"}},
}

# acme with extra enterprise and octo-org fields.
with_settings(enterprise, org) := {
	"enterprises": {"acme": object.union({"owners": ["erin"]}, enterprise)},
	"organizations": {"octo-org": object.union({"enterprise": "acme"}, org)},
}

decide(request) := decide_with(request, acme)

decide_with(request, settings) := decision if {
	decision := data.pat.decision with input as request
		with data.pat.settings as settings
		with pat.token as mock_token
		with pat.grant as mock_grant
		with pat.org_role as mock_org_role
		with pat.user as mock_user
		with pat.repository as mock_repository
		with time.now_ns as now
}

request(raw, owner, repository, action) := {
	"credential": {"type": "pat", "token": raw},
	"resource": {"owner": owner, "repository": repository},
	"action": action,
}

request_for(raw, owner, repository, action, permission) := object.union(
	request(raw, owner, repository, action),
	{"permission": permission},
)

org_request(raw, owner, action, permission) := {
	"credential": {"type": "pat", "token": raw},
	"resource": {"owner": owner},
	"action": action,
	"permission": permission,
}

allowed(raw) := {
	"allow": true, "status": 200, "reasons": [], "message": null, "documentation_url": null,
	"token_id": tokens[raw].id, "kind": tokens[raw].kind, "user": tokens[raw].user,
	"expires_at_ns": tokens[raw].expires_at_ns,
}

# A denial with one reason.
denied(raw, status, reason, doc) := denied_all(raw, status, [reason], reason, doc)

# A denial with several reasons (sorted) and the primary one.
denied_all(raw, status, reasons, message, doc) := {
	"allow": false, "status": status, "reasons": reasons, "message": message, "documentation_url": doc,
	"token_id": tokens[raw].id, "kind": tokens[raw].kind, "user": tokens[raw].user,
	"expires_at_ns": tokens[raw].expires_at_ns,
}

auth_doc := "https://docs.github.com/rest/authentication/authenticating-to-the-rest-api"

input_doc := "https://github.com/opa-pat/opa-pat/blob/main/docs/policy.md#input"

token_doc := "https://docs.github.com/authentication/keeping-your-account-and-data-secure/managing-your-personal-access-tokens"

org_doc := "https://docs.github.com/organizations/managing-programmatic-access-to-your-organization/setting-a-personal-access-token-policy-for-your-organization"

enterprise_doc := "https://docs.github.com/admin/enforcing-policies/enforcing-policies-for-your-enterprise/enforcing-policies-for-personal-access-tokens-in-your-enterprise"

approval_doc := "https://docs.github.com/organizations/managing-programmatic-access-to-your-organization/managing-requests-for-personal-access-tokens-in-your-organization"

not_accessible := "Resource not accessible by personal access token"
