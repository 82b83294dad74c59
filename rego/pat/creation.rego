# The creation check for `opa-pat token create` and the admin API (SEMANTICS.md rules 21 and
# 29). Everything comes from input and data.pat.settings: no pat.* built-in is called.
package pat

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
# would mint a token that never expires, with every scope. input.creator: {"scopes",
# "expires_at_ns" (null: no expiration)}; absent for the CLI, whose operator creates tokens for
# anyone. Decided: GitHub creates tokens only in a signed-in session, so it has no such rule.

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

# A fine-grained token's permissions, in the classic scopes of the token making the request:
# organization permissions need admin:org; the others (repository and account permissions) repo,
# or, for a token limited to public repositories, nothing to read (what public repositories show
# to everyone) and public_repo to write. metadata: read, which every fine-grained token holds,
# needs nothing.
_creation_errors contains msg if {
	_creator
	_new_kind == "fine_grained"
	some scope in {"repo", "public_repo", "admin:org"}
	not _creator_has(scope)
	perms := sort({name |
		some name, level in object.get(_new_token, "permissions", {})
		_permission_scope(name, level) == scope
	})
	count(perms) > 0
	msg := sprintf("a token cannot create one that reaches further than it: the permissions %s need the %q scope, which the token making this request lacks; create the token with one that has it, or ask an operator (opa-pat token create)", [concat(", ", [sprintf("%q", [p]) | some p in perms]), scope])
}

_permission_scope(name, level) := "admin:org" if {
	_org_level_permission(name)
} else := null if {
	name == "metadata"
} else := null if {
	_new_token.repository_selection == "public"
	level == "read"
} else := "public_repo" if {
	_new_token.repository_selection == "public"
} else := "repo"

_org_level_permission(name) if startswith(name, "organization_")

_org_level_permission(name) if name in _unprefixed_org_permissions

# The organization permissions without the organization_ prefix: GitHub's own, and opa-pat's short
# spellings of the two the admin API asks for (plugin/permissions, whose test keeps this set and
# its organization permissions one).
_unprefixed_org_permissions := {
	"issue_fields", "issue_types", "members", "org_copilot_content_exclusion", "personal_access_token_requests",
	"personal_access_tokens", "team_discussions",
}
