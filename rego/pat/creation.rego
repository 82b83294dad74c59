# The creation check for `opa-pat token create` and the admin API (SEMANTICS.md rules 21 and
# 29). Everything comes from input and data.pat.settings: no pat.* built-in is called.
package pat

import data.pat.envoy

# METADATA
# title: Creation
# description: |
#   Whether a token may be created, and the grant it starts with. Input:
#   {"token": {"kind", "user", "resource_owner", "repository_selection", "permissions" (name ->
#   level, optional), "created_at_ns", "expires_at_ns" (or null)}, "role": the creator's role in
#   resource_owner, absent when none, "managed_by": the creator's enterprise when the creator is
#   an enterprise managed user, absent or null otherwise}. Names are compared in lower case.
#   Output: {"allowed", "errors" (sorted), "grant_state" ("approved", "pending" or null when no
#   grant is needed), "limit_days" (the lifetime limit enforced on this token, or null)}.
# entrypoint: true
creation := {
	"allowed": count(_creation_errors) == 0,
	"errors": sort(_creation_errors),
	"grant_state": _creation_grant_state,
	"limit_days": _creation_limit_days,
}

_new_token := object.get(input, "token", {})

_new_kind := _new_token.kind

_new_user := _new_token.user

_new_role := object.get(input, "role", null)

# The organization the new token is aimed at, in lower case; undefined for a classic token and
# for a token owned by its user.
_new_org := org if {
	org := _name(_new_token.resource_owner)
	org != lower(_new_user)
}

# A fine-grained token for the user's own account.
_new_own_token if {
	_new_kind == "fine_grained"
	_name(_new_token.resource_owner) == lower(_new_user)
}

# The creator's enterprise when the creator is an enterprise managed user.
_new_managed_by := _name(input.managed_by)

_creation_errors contains msg if {
	not _known_new_kind
	msg := `token.kind must be "classic" or "fine_grained"`
}

_known_new_kind if _new_kind in {"classic", "fine_grained"}

_creation_errors contains "token.user must be a non-empty string" if not _valid_new_user

_valid_new_user if {
	is_string(_new_user)
	_new_user != ""
}

_creation_errors contains "a fine-grained personal access token needs a resource owner: the user or an organization" if {
	_new_kind == "fine_grained"
	not _valid_new_owner
}

_valid_new_owner if {
	is_string(_new_token.resource_owner)
	_new_token.resource_owner != ""
}

_new_created := object.get(_new_token, "created_at_ns", null)

_creation_errors contains "token.created_at_ns must be a number" if not is_number(_new_created)

_creation_errors contains "token.expires_at_ns must be a number or null" if {
	not is_number(object.get(_new_token, "expires_at_ns", null))
	object.get(_new_token, "expires_at_ns", null) != null
}

_creation_errors contains "the token must expire after it is created" if {
	_new_token.expires_at_ns <= _new_token.created_at_ns
	is_number(_new_token.expires_at_ns)
}

# Rule 10: only members and owners may aim a fine-grained token at an organization.
_creation_errors contains msg if {
	_new_kind == "fine_grained"
	org := _new_org
	not _new_role in {"member", "owner"}
	msg := sprintf("%s is not a member of %s: only members of %s can create fine-grained personal access tokens for it; ask an owner of %s for membership", [_new_user, org, org, org])
}

# The effective settings of the organization (settings.rego).
_new_policy := _effective(_new_org)

# Rule 29: the lifetime must respect the organization's effective limit.
_creation_limit := object.union(limit, {"subject": _new_org, "setter": setter}) if {
	_new_org
	not _exempt(_new_policy, _new_user, _new_role)
	limit := _new_policy.lifetime[_new_kind]
	limit.days != null
	setter := _setter(_new_policy.enterprise, _new_org, limit.by)
}

# Rule 27: a managed user's token for the user's own account keeps the enterprise's limit, as
# the decision does; the enterprise's owners are exempt when it exempts administrators (28).
_creation_limit := {"days": limit.days, "subject": ent, "setter": sprintf("the %s enterprise", [ent])} if {
	_new_own_token
	ent := _new_managed_by
	conf := _enterprise_conf(ent)
	not _new_exempt_managed(conf)
	limit := _enterprise_limit(conf, _new_kind)
	limit.days != null
}

_new_exempt_managed(conf) if {
	conf.exempt_administrators == true
	_new_user in object.get(conf, "owners", [])
}

default _creation_limit_days := null

_creation_limit_days := _creation_limit.days

_creation_errors contains msg if {
	limit := _creation_limit
	is_number(_new_created)
	not _within_lifetime(_new_created, object.get(_new_token, "expires_at_ns", null), limit.days)
	expires := object.get(_new_token, "expires_at_ns", null)
	next := sprintf("choose an expiration of %s or less", [_days(limit.days)])
	msg := _lifetime_message(limit.subject, _new_kind, limit.days, limit.setter, [expires, _new_created], next)
}

# Rule 21: the grant a new fine-grained token for an organization starts with.
default _creation_grant_state := null

_creation_grant_state := "approved" if {
	_needs_grant
	_approved_at_once
} else := "pending" if {
	_needs_grant
}

_needs_grant if {
	_new_kind == "fine_grained"
	_new_org
	_new_token.repository_selection != "public"
}

# A token limited to public repositories that holds more than metadata: read can use it only on
# the organization's own resources (on repositories its selection keeps it to public reads), and
# there it needs the grant (pat.rego, _approval_applies): the two rules say the same.
_needs_grant if {
	_new_kind == "fine_grained"
	_new_org
	some name, level in object.get(_new_token, "permissions", {})
	not _metadata_read_permission(name, level)
}

_metadata_read_permission("metadata", "read")

_approved_at_once if _new_role == "owner"

_approved_at_once if _new_user in _new_policy.owners

_approved_at_once if _new_policy.approval.value == "disable"

# ---------------------------------------------------------------------------------------------
# A token that creates a token (the admin API's POST /user/personal-access-tokens) cannot make
# one that outlives it or reaches further than it: otherwise a leaked token with the user scope
# would mint a token that never expires, with every scope. input.creator: {"kind", "scopes",
# "created_at_ns", "expires_at_ns" (null: no expiration)}; absent for the CLI, whose operator
# creates tokens for anyone. The admin API takes only classic tokens as creators (the admin
# policy refuses fine-grained ones, which cannot manage personal access tokens); one given here
# has no scopes, so reaches no further than public reads, and is held to its own grant
# (input.creator.grant_state). Decided: GitHub creates tokens only in a signed-in session, so it
# has no such rule.

_creator := input.creator if is_object(input.creator)

_creator_expires := object.get(_creator, "expires_at_ns", null)

_creation_errors contains msg if {
	is_number(_creator_expires)
	is_number(_new_created)
	not _new_expires_before(_creator_expires)
	msg := sprintf("a token cannot create one that outlives it: the token making this request expires at %s and %s; choose an expiration on or before then", [_second(_creator_expires), _new_expiry_phrase])
}

_new_expires_before(limit) if {
	expires := object.get(_new_token, "expires_at_ns", null)
	is_number(expires)
	expires <= limit
}

_new_expiry_phrase := sprintf("the new one at %s", [_second(expires)]) if {
	expires := object.get(_new_token, "expires_at_ns", null)
	is_number(expires)
} else := "the new one has no expiration date"

# A time to the second, in UTC.
_second(ns) := time.format([ns, "UTC", "2006-01-02T15:04:05Z07:00"])

# GitHub's scopes and the narrower scopes each includes.
_scope_includes := {
	"repo": {"repo:status", "repo_deployment", "public_repo", "repo:invite", "security_events"},
	"admin:repo_hook": {"write:repo_hook", "read:repo_hook"},
	"write:repo_hook": {"read:repo_hook"},
	"admin:org": {"write:org", "read:org"},
	"write:org": {"read:org"},
	"admin:public_key": {"write:public_key", "read:public_key"},
	"write:public_key": {"read:public_key"},
	"user": {"read:user", "user:email", "user:follow"},
	"project": {"read:project"},
	"write:packages": {"read:packages"},
	"admin:gpg_key": {"write:gpg_key", "read:gpg_key"},
	"write:gpg_key": {"read:gpg_key"},
	"admin:ssh_signing_key": {"write:ssh_signing_key", "read:ssh_signing_key"},
	"write:ssh_signing_key": {"read:ssh_signing_key"},
	"codespace": {"codespace:secrets"},
	"admin:enterprise": {"manage_runners:enterprise", "manage_billing:enterprise", "read:enterprise"},
}

_creator_scopes := {s | some s in object.get(_creator, "scopes", [])}

_creator_has(scope) if scope in _creator_scopes

_creator_has(scope) if {
	some held in _creator_scopes
	scope in object.get(_scope_includes, held, set())
}

_creation_errors contains msg if {
	_creator
	_new_kind == "classic"
	missing := sort({s | some s in object.get(_new_token, "scopes", []); not _creator_has(s)})
	count(missing) > 0
	msg := sprintf("a token cannot create one that reaches further than it: the token making this request lacks %s; create the token with one that has %s, or ask an operator (opa-pat token create)", _scope_names(missing))
}

_scope_names(scopes) := [sprintf("the %q scope", scopes), "it"] if {
	count(scopes) == 1
} else := [sprintf("the scopes %s", [concat(", ", [sprintf("%q", [s]) | some s in scopes])]), "them"]

# The token making the request must itself reach the organization it makes a fine-grained token
# for: what the organization's policies refuse it there (the decision's reasons for the token on
# the organization's resources, data.pat.org_policy_denials: a kind of token it forbids, rules
# 13-16; a lifetime over its limit, rules 24-28; for a fine-grained token, membership, opt-in
# and approval, rules 10, 19-20 and 30), a token it makes would otherwise do. input.creator gives
# the token's kind and times (the admin API); its user is the new token's, whose role is
# input.role.
_creation_errors contains msg if {
	_creator
	_new_kind == "fine_grained"
	org := _new_org
	some [_, reason] in _org_policy_denials(_creator_token, org, _new_role)
	msg := sprintf("a token cannot create one that reaches further than it: %s refuses the token making this request (%s); create the token with one that %s lets through, or ask an operator (opa-pat token create)", [org, reason, org])
}

_creator_token := {
	"kind": object.get(_creator, "kind", "classic"),
	"user": _new_user,
	"created_at_ns": object.get(_creator, "created_at_ns", 0),
	"expires_at_ns": _creator_expires,
	"grant_state": object.get(_creator, "grant_state", null),
}

# A fine-grained token's permissions, in the classic scopes of the token making the request: for
# every permission at its level, the creator must hold what the Envoy gate and the decision ask
# a personal access token (classic) for every request the new token could make with it (read:
# the reads; write and admin: the reads and the writes), so that the new token does nothing its
# creator could not do itself. The requirements come from the gate's own tables
# (data.pat.envoy.org_permissions and repo_permissions), from the routes the gate writes as code
# (_gate_code_routes below, which plugin/issue's test checks against every requirement the gate
# names), and from the decision's classic scope rules (rule 11: _classic_org_scopes,
# _narrow_scopes, workflow). Each requirement is a set of scopes of which one will do, held
# itself or through a scope that includes it (_scope_includes).
_creation_errors contains msg if {
	_creator
	_new_kind == "fine_grained"
	some need in _unmet_needs
	not _wider_than_unmet(need)
	perms := sort({name | some [n, name] in _new_needs; n in _unmet_needs; _includes_all(n, need)})
	msg := sprintf("a token cannot create one that reaches further than it: the permissions %s need the %s scope, which the token making this request lacks; create the token with one that has it, or ask an operator (opa-pat token create)", [concat(", ", [sprintf("%q", [p]) | some p in perms]), _scope_alternatives(need)])
}

_unmet_needs := {need | some [need, _] in _new_needs; not _creator_meets(need)}

# A requirement that another one the creator misses narrows (read:project or project, beside
# project alone) is said with that one: the message names what to get.
_wider_than_unmet(need) if {
	some other in _unmet_needs
	other != need
	_includes_all(need, other)
}

_includes_all(wide, narrow) if count(narrow - wide) == 0

_creator_meets(need) if {
	some scope in need
	_creator_has(scope)
}

_scope_alternatives(need) := concat(" or ", [sprintf("%q", [s]) | some s in sort(need)])

# [need, permission]: every requirement of every request the new token could make. metadata:
# read is always there (rule 8): a token for all or selected repositories reads private
# repositories' metadata (the repository, its collaborators, its tags), which a personal access
# token (classic) sees only with repo.
_new_needs contains [need, name] if {
	some name, level in _new_permissions
	some action in object.get(_level_actions, level, set())
	some [where, _, route_action, scopes] in _gate_needs_of[name]
	route_action == action
	_new_reaches(where)
	need := _classic_need(where, name, action, scopes)
	count(need) > 0
}

# A repository permission where the token reaches private repositories: repo (what the routes
# ask beyond it, delete_repo or codespace, comes from the gate above).
_new_needs contains [{"repo"}, name] if {
	_new_token.repository_selection != "public"
	some name, _ in object.get(_new_token, "permissions", {})
	name != "metadata"
	_repository_permission(name)
}

# A token limited to public repositories: public_repo to write (reads are what public
# repositories show to everyone).
_new_needs contains [{"public_repo"}, name] if {
	_new_token.repository_selection == "public"
	some name, level in object.get(_new_token, "permissions", {})
	level != "read"
	name != "metadata"
	_repository_permission(name)
}

# An account permission (gpg_keys, email_addresses, followers, ...): the gate routes no /user
# endpoint, so only a service that asks the decision itself asks for one, on the user's own
# account (a request that names the user as resource.owner and no repository). There the
# repository selection does not apply (pat.rego reads it only for a request that names a
# repository), so a token limited to public repositories holds the permission as fully as one for
# all of them; and the decision asks a personal access token (classic) for GitHub's scope of the
# permission at the action (rule 11, _classic_account_scopes: read:gpg_key to read the GPG keys,
# user or user:email to read the email addresses, ...), or repo for one GitHub has no scope for
# (_classic_need below). So each level needs that, whatever the selection. A service that names
# other scopes (input.classic_scopes) is held to them; this check cannot know them, and asks what
# the decision asks by default.
_new_needs contains [need, name] if {
	some name, level in object.get(_new_token, "permissions", {})
	_account_permission(name)
	some action in object.get(_level_actions, level, set())
	need := _classic_need("account", name, action, null)
}

# An organization permission that no route of the gate names (the admin API's short spellings,
# say): admin:org, as the admin API asks.
_new_needs contains [{"admin:org"}, name] if {
	some name, _ in object.get(_new_token, "permissions", {})
	_org_level_permission(name)
	not _routed(name)
}

_routed(name) if _gate_needs_of[name]

# The requirements by permission.
_gate_needs_of[name] contains item if {
	some item in _gate_needs
	name := item[1]
}

_new_permissions := object.union({"metadata": "read"}, object.get(_new_token, "permissions", {}))

_level_actions := {"read": {"read"}, "write": {"read", "write"}, "admin": {"read", "write"}}

# The organization's own resources, whatever the repository selection; repositories' only for a
# token that reaches private ones (a token limited to public repositories reads what everyone
# does there, and writes nothing: rule 7).
_new_reaches("org")

_new_reaches("repo") if _new_token.repository_selection != "public"

# What the decision asks a personal access token (classic) for a request needing permission at
# action, on an organization's own resource ("org", private unless a service says otherwise), on
# a private repository ("repo") or on the user's own account ("account", private unless a service
# says otherwise), given the scopes the route names (null: none): one of a set.
# The scopes a route names decide (on a private repository, public_repo does not count); else
# rule 11: the organization scopes of _classic_org_scopes, the account scopes of
# _classic_account_scopes (under the permission's REST API name, _renamed), or repo (or a
# narrower scope that reaches the action, _narrow_scopes).
_classic_need(where, permission, action, scopes) := {s | some s in scopes; _named_counts(where, s)} if {
	scopes != null
} else := need if {
	where == "org"
	need := _classic_org_scopes[permission][action]
} else := need if {
	where == "account"
	need := _classic_account_scopes[object.get(_renamed, permission, permission)][action]
} else := {"repo"} | object.get(_narrow_scopes, [permission, action], set())

_named_counts("org", _)

_named_counts("repo", scope) if scope != "public_repo"

# [where, permission, action, scopes or null] of every requirement the gate maps a request to,
# but reading an organization's metadata (its profile, public on GitHub; a token reaches its
# repositories' metadata through its selection, above).
_gate_needs contains item if {
	some item in _gate_requirements
	not _org_metadata_read(item)
}

_org_metadata_read(["org", "metadata", "read", null])

_gate_requirements contains item if {
	some entry in envoy.org_permissions
	some action in {"read", "write"}
	need := _table_need(entry, action)
	some item in _endpoint_needs("org", need, action)
}

_gate_requirements contains item if {
	some entry in envoy.repo_permissions
	some action in {"read", "write"}
	need := _table_need(entry, action)
	some item in _endpoint_needs("repo", need, action)
}

_gate_requirements contains item if {
	some [where, need, action] in _gate_code_routes
	some item in _endpoint_needs(where, need, action)
}

# Rule 11: changing a workflow file takes the workflow scope (the decision asks it whatever the
# route names).
_gate_requirements contains ["repo", "workflows", "write", ["workflow"]]

# A table's entry, as the gate reads it (envoy.rego, _org_by_action and _by_action).
_table_need(entry, action) := entry if is_string(entry)

else := entry if entry.permission

else := entry[action]

# The requirements of one endpoint's need (envoy.rego, _need and _requirement_input): its first
# requirement and those in "also" and "either", each with its own action and scopes.
_endpoint_needs(where, need, method_action) := {item |
	first := _as_need(need)
	action := object.get(first, "action", method_action)
	some r in array.concat([first], array.concat(object.get(first, "also", []), object.get(first, "either", [])))
	item := [_need_where(where, r), r.permission, object.get(r, "action", action), object.get(r, "classic_scopes", null)]
}

_as_need(need) := {"permission": need} if is_string(need)

else := need

_need_where(where, r) := "repo" if r.resource.repository

else := where

# The gate's routes written as code rather than in its tables (envoy.rego: _repo_permission,
# _org_permission, _org_exception), as [where, need, method's action]: on repositories, those
# that name classic scopes (the others need repo, above); on organizations, all of them.
# plugin/issue's TestCreationCoversTheGate fails when the gate names a requirement that this
# list and the tables do not cover.
_gate_code_routes := {
	# DELETE /repos/{o}/{r}; a pull request's codespace; DELETE of a hook; codespaces.
	["repo", {"permission": "administration", "classic_scopes": ["delete_repo"]}, "write"],
	["repo", {"permission": "codespaces", "classic_scopes": ["codespace"]}, "write"],
	["repo", {"permission": "repository_hooks", "classic_scopes": ["admin:repo_hook", "public_repo", "repo"]}, "write"],
	["repo", {"permission": "codespaces_metadata", "classic_scopes": ["codespace"]}, "read"],
	["repo", {"permission": "codespaces_metadata", "classic_scopes": ["codespace"]}, "write"],
	["repo", {"permission": "codespaces", "action": "write", "classic_scopes": ["codespace"]}, "write"],
	# /orgs/{org}: reading it (metadata, left out above), changing it.
	["org", "organization_administration", "write"],
	# A team's access to a repository.
	["org", {"resource": {"owner": "o", "repository": "r"}, "action": "write", "permission": "administration", "also": [{"resource": {"owner": "o"}, "action": "read", "permission": "members"}]}, "write"],
	# Creating a repository: repo, or public_repo for a public one (the stricter).
	["org", {"permission": "administration", "classic_scopes": ["repo"]}, "write"],
	# Two-segment organization endpoints.
	["org", "organization_self_hosted_runners", "read"],
	["org", "organization_self_hosted_runners", "write"],
	["org", "organization_secrets", "read"],
	["org", "organization_secrets", "write"],
	["org", "organization_actions_variables", "read"],
	["org", "organization_actions_variables", "write"],
	["org", "organization_administration", "read"],
	["org", {"permission": "organization_administration", "action": "write"}, "read"],
	["org", {"permission": "organization_agent_secrets", "classic_scopes": ["admin:org"]}, "read"],
	["org", {"permission": "organization_agent_secrets", "classic_scopes": ["admin:org"]}, "write"],
	["org", {"permission": "organization_agent_variables", "classic_scopes": ["admin:org"]}, "read"],
	["org", {"permission": "organization_agent_variables", "classic_scopes": ["admin:org"]}, "write"],
	["org", "security_events", "read"],
	["org", "security_events", "write"],
	["org", {"permission": "organization_codespaces", "classic_scopes": ["admin:org"]}, "read"],
	["org", {"permission": "organization_codespaces", "classic_scopes": ["admin:org"]}, "write"],
	["org", {"permission": "organization_codespaces_settings", "classic_scopes": ["admin:org"]}, "read"],
	["org", {"permission": "organization_codespaces_settings", "classic_scopes": ["admin:org"]}, "write"],
	["org", {"permission": "organization_codespaces_secrets", "classic_scopes": ["admin:org"]}, "read"],
	["org", {"permission": "organization_codespaces_secrets", "classic_scopes": ["admin:org"]}, "write"],
	["org", "vulnerability_alerts", "read"],
	["org", "vulnerability_alerts", "write"],
	["org", "organization_dependabot_secrets", "read"],
	["org", "organization_dependabot_secrets", "write"],
	["org", "secret_scanning_alerts", "read"],
	["org", "secret_scanning_alerts", "write"],
	["org", {"permission": "organization_network_configurations", "classic_scopes": ["read:network_configurations"]}, "read"],
	["org", {"permission": "organization_network_configurations", "classic_scopes": ["write:network_configurations"]}, "write"],
	# Deeper organization endpoints.
	["org", {"permission": "organization_runner_custom_images", "classic_scopes": ["manage_runners:org"]}, "read"],
	["org", {"permission": "organization_runner_custom_images", "classic_scopes": ["manage_runners:org"]}, "write"],
	["org", {"permission": "team_discussions", "classic_scopes": envoy._discussion_scopes.read}, "read"],
	["org", {"permission": "team_discussions", "classic_scopes": envoy._discussion_scopes.write}, "write"],
	["org", {"permission": "members", "action": "write"}, "read"],
	["org", {"permission": "members", "action": "write"}, "write"],
	["org", envoy._copilot_seat_read, "read"],
	["org", {"permission": "organization_copilot_seat_management", "classic_scopes": envoy._copilot_seat_scopes.write, "either": [{"permission": "organization_administration"}]}, "write"],
	["org", {"permission": "organization_copilot_agent_settings", "classic_scopes": ["admin:org"]}, "read"],
	["org", {"permission": "organization_copilot_agent_settings", "classic_scopes": ["admin:org"]}, "write"],
	["org", {"permission": "org_copilot_content_exclusion", "classic_scopes": ["admin:org"]}, "read"],
	["org", {"permission": "org_copilot_content_exclusion", "classic_scopes": ["admin:org"]}, "write"],
	["org", {"permission": "organization_copilot_metrics", "classic_scopes": ["manage_billing:copilot", "read:org"]}, "read"],
	["org", {"permission": "organization_copilot_seat_management", "classic_scopes": ["admin:org"]}, "read"],
	["org", {"permission": "organization_copilot_seat_management", "classic_scopes": ["admin:org"]}, "write"],
	["org", {"permission": "members", "classic_scopes": ["admin:org"]}, "read"],
	["org", {"permission": "members", "classic_scopes": ["admin:org"]}, "write"],
	["org", {"permission": "organization_custom_org_roles", "classic_scopes": ["admin:org"]}, "read"],
	["org", {"permission": "organization_custom_org_roles", "classic_scopes": ["admin:org"]}, "write"],
	["org", {"permission": "organization_custom_properties", "classic_scopes": envoy._org_scopes.read}, "read"],
	["org", {"permission": "organization_custom_properties", "classic_scopes": envoy._org_scopes.write}, "write"],
}

_org_level_permission(name) if startswith(name, "organization_")

_org_level_permission(name) if name in _unprefixed_org_permissions

# The organization permissions without the organization_ prefix: GitHub's own, and opa-pat's short
# spellings of the two the admin API asks for (plugin/permissions, whose test keeps this set and
# its organization permissions one).
_unprefixed_org_permissions := {
	"issue_fields", "issue_types", "members", "org_copilot_content_exclusion", "personal_access_token_requests",
	"personal_access_tokens", "team_discussions",
}

# A repository's permission: neither an organization's nor an account's.
_repository_permission(name) if {
	not _org_level_permission(name)
	not _account_permission(name)
}

# An account permission, also under a name earlier opa-pat versions gave it or GitHub's other
# spelling (pat.rego, _renamed).
_account_permission(name) if object.get(_renamed, name, name) in _account_permissions

# GitHub's fine-grained permissions on the user's own account (plugin/permissions, account, whose
# test keeps this set and that list one), in the REST API's spelling: the token pages' emails and
# keys are email_addresses and git_ssh_keys (_renamed).
_account_permissions := {
	"blocking", "codespaces_user_secrets", "copilot_editor_context", "copilot_messages", "copilot_requests",
	"email_addresses", "followers", "gists", "git_signing_ssh_public_keys", "git_ssh_keys", "gpg_keys",
	"interaction_limits", "knowledge_bases", "plan", "private_repository_invitations", "profile", "starring",
	"user_events", "user_models", "watching",
}
