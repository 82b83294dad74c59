# METADATA
# title: Admin API authorization
# description: |
#   Decides who may call opa-pat's admin API (docs/admin-api.md). Owners of an organization and
#   owners of its enterprise review its approval requests and revoke its grants; users manage
#   their own tokens. The credential must also allow it: a personal access token (classic) needs
#   the admin:org scope for an organization (the user scope for the user's own tokens); a
#   fine-grained token must be owned by the organization and hold the organization permission
#   at read (GET) or write (POST).
#
#   Input: {"operation": one of the keys of data.pat.admin.operations, "org": the organization
#   (organization operations), "target_user": whose token is acted on (user operations),
#   "caller": {"token_id", "kind", "user", "scopes", "resource_owner", "permissions",
#   "created_at_ns", "expires_at_ns" (null: no expiration), and for a fine-grained token on an
#   organization operation "grant_state": its grant's state or null}}. The API authenticates the
#   caller first; the raw token is never part of the input. The organization's PAT policies
#   (access, lifetime, opt-in, approval) apply to the caller's token on organization operations.
package pat.admin

import data.pat.approval_policy
import data.pat.org_policy_denials

# METADATA
# description: |
#   The decision: allow, the HTTP status (200 when allowed, else the status of the first
#   failing check: 401, 403 or 404) and a message that says what to do next (null when allowed).
# entrypoint: true
decision := {"allow": allow, "status": _status, "message": _message}

# METADATA
# description: |
#   The effective approval policy of input.org (data.pat.approval_policy): {"value": "require" or
#   "disable", "by"}. The API asks it, once a call is allowed, for the organization's list of
#   tokens and their revocation: with "disable", fine-grained tokens of the organization without a
#   grant reach it (SEMANTICS.md rule 20), so they are listed, and an owner may revoke one.
#   Undefined without input.org.
# entrypoint: true
approval := approval_policy(input.org) if _valid_org

# METADATA
# description: Whether the call is allowed. Default deny.
default allow := false

allow if {
	_operation
	count(_denials) == 0
}

# METADATA
# description: |
#   The operations of the admin API: whether each acts on an organization or on the caller's own
#   tokens, the organization permission a fine-grained token needs and at which level, and the
#   classic scopes that allow it (any one of them).
operations := {
	"requests.list": _org_op("personal_access_token_requests", "read"),
	"requests.read": _org_op("personal_access_token_requests", "read"),
	"requests.review": _org_op("personal_access_token_requests", "write"),
	"tokens.list": _org_op("personal_access_tokens", "read"),
	"tokens.read": _org_op("personal_access_tokens", "read"),
	"tokens.revoke": _org_op("personal_access_tokens", "write"),
	"audit.list": {
		"target": "org", "permission": "organization_administration", "level": "read",
		"scopes": {"admin:org", "read:audit_log"},
	},
	"user.tokens.list": {"target": "user", "level": "read", "scopes": {"user", "read:user"}},
	"user.tokens.create": {"target": "user", "level": "write", "scopes": {"user"}},
	"user.tokens.revoke": {"target": "user", "level": "write", "scopes": {"user"}},
	"user.requests.create": {"target": "user", "level": "write", "scopes": {"user"}},
}

_org_op(permission, level) := {"target": "org", "permission": permission, "level": level, "scopes": {"admin:org"}}

_operation := operations[input.operation]

_caller := input.caller

_levels := {"read": 1, "write": 2, "admin": 3}

_classic_name := "personal access token (classic)"

default _status := 403

_status := 200 if allow

_status := _primary.status if not allow

default _message := null

_message := _primary.message if not allow

_primary := {"status": first[1], "message": first[2]} if {
	first := min({[d.rank, d.status, d.message] | some d in _denials})
}

_denial(rank, status, message) := {"rank": rank, "status": status, "message": message}

# The input contract.
_denials contains _denial(0, 403, msg) if {
	not _operation
	msg := sprintf("unknown admin operation %v", [object.get(input, "operation", null)])
}

_denials contains _denial(1, 401, "Requires authentication") if not _authenticated

_authenticated if {
	is_string(_caller.user)
	_caller.user != ""
	_caller.kind in {"classic", "fine_grained"}
}

_denials contains _denial(2, 403, "missing input.org") if {
	_operation.target == "org"
	not _valid_org
}

_valid_org if {
	is_string(input.org)
	input.org != ""
}

# Organization operations: who the caller is.
_denials contains _denial(3, 403, msg) if {
	_operation.target == "org"
	_authenticated
	_valid_org
	not is_admin(_caller.user, input.org)
	msg := sprintf(
		"Must be an owner of the %s organization or of its enterprise to manage its fine-grained personal access tokens",
		[input.org],
	)
}

# METADATA
# description: |
#   Whether a user administers an organization: an owner of it, or an owner of its enterprise
#   (data.pat.settings).
default is_admin(_, _) := false

is_admin(user, org) if pat.org_role(user, org) == "owner"

is_admin(user, org) if user in object.get(data.pat.settings, ["enterprises", _enterprise_of(org), "owners"], [])

_enterprise_of(org) := ent if {
	ent := object.get(data.pat.settings, ["organizations", org, "enterprise"], null)
	is_string(ent)
	ent != ""
}

# Organization operations: what the credential allows.
_denials contains _denial(4, 403, msg) if {
	_operation.target == "org"
	_caller.kind == "classic"
	not _has_scope(_operation.scopes)
	msg := sprintf(
		"Resource not accessible by personal access token: this %s needs the %s scope; create one with it or use a fine-grained token",
		[_classic_name, concat(" or ", sort(_operation.scopes))],
	)
}

_has_scope(wanted) if {
	some s in _caller.scopes
	s in wanted
}

_denials contains _denial(4, 403, msg) if {
	_operation.target == "org"
	_caller.kind == "fine_grained"
	_valid_org
	object.get(_caller, "resource_owner", "") != input.org
	msg := sprintf(
		"Resource not accessible by personal access token: the token's resource owner is %s, not %s; create a fine-grained token owned by %s",
		[object.get(_caller, "resource_owner", ""), input.org, input.org],
	)
}

_denials contains _denial(4, 403, msg) if {
	_operation.target == "org"
	_caller.kind == "fine_grained"
	not _has_permission(_operation.permission, _operation.level)
	msg := sprintf(
		"Resource not accessible by personal access token: it needs the organization permission %s at %s or above",
		[_operation.permission, _operation.level],
	)
}

# The organization's own PAT policies apply to the caller's token as to any request on the
# organization (data.pat.org_policy_denials, caller.rego): a kind of token it forbids, a
# lifetime it does not allow, a fine-grained token it has not opted in to or not approved. The
# input gives the token's grant for the organization as caller.grant_state. Ranked after the
# checks above, in the decision's order among themselves.
_denials contains _denial(5 + (rank / 100), 403, msg) if {
	_operation.target == "org"
	_authenticated
	_valid_org
	some [rank, msg] in org_policy_denials(_caller, input.org)
}

# GitHub's API spells organization permissions with an organization_ prefix
# (organization_personal_access_tokens); either spelling counts.
_has_permission(name, level) if {
	some key in {name, concat("", ["organization_", name])}
	have := object.get(_caller, ["permissions", key], "none")
	_levels[have] >= _levels[level]
}

# User operations: only the user's own tokens. Someone else's token is not found.
_denials contains _denial(3, 404, "Not Found") if {
	_operation.target == "user"
	_authenticated
	object.get(input, "target_user", null) != _caller.user
}

_denials contains _denial(4, 403, msg) if {
	_operation.target == "user"
	_caller.kind == "classic"
	not _has_scope(_operation.scopes)
	msg := sprintf(
		"Resource not accessible by personal access token: this %s needs the %s scope to manage your personal access tokens",
		[_classic_name, concat(" or ", sort(_operation.scopes))],
	)
}

_denials contains _denial(4, 403, msg) if {
	_operation.target == "user"
	_caller.kind == "fine_grained"
	msg := sprintf(
		"Resource not accessible by personal access token: fine-grained tokens cannot manage personal access tokens; use a %s with the user scope",
		[_classic_name],
	)
}
