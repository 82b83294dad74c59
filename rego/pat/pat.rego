# METADATA
# title: PAT policy
# description: |
#   Decides whether a personal access token may reach an organization's resource, following the
#   rule book (SEMANTICS.md): credential, live token, lifetime, public floor, reach, opt-in,
#   access policy, approval. docs/policy.md maps every rule to the Rego that implements it.
package pat

# METADATA
# title: Decision
# description: |
#   The decision for one request: allow, the HTTP status (200, or the status of the first
#   failing rule in evaluation order), every reason that applies (sorted), the primary reason as
#   message, a documentation URL, and the token's id, kind, user and expiry (expires_at_ns, null
#   for none). Never the raw token.
# entrypoint: true
decision := {
	"allow": true, "status": 200, "reasons": [], "message": null, "documentation_url": null,
	"token_id": object.get(t, "id", null), "kind": t.kind, "user": t.user, "expires_at_ns": object.get(t, "expires_at_ns", null),
} if {
	t := _allowed_token
} else := {
	"allow": true, "status": 200, "reasons": [], "message": null, "documentation_url": null,
	"token_id": _token_id, "kind": _kind, "user": _token_user, "expires_at_ns": _expires_at_ns,
} if {
	_live
	count(_denials) == 0
} else := {
	"allow": allow,
	"status": _status,
	"reasons": _reasons,
	"message": _message,
	"documentation_url": _documentation_url,
	"token_id": _token_id,
	"kind": _kind,
	"user": _token_user,
	"expires_at_ns": _expires_at_ns,
}

# METADATA
# title: Allow
# description: Whether the request is allowed. Default deny.
default allow := false

allow if _allowed_token

allow if _ssh_key

allow if {
	_live
	count(_denials) == 0
}

_ssh_message := "PAT policy does not apply to SSH keys: the key is allowed, also when it was created through a personal access token that is now restricted or whose grant was revoked"

_ssh_doc := "https://docs.github.com/authentication/connecting-to-github-with-ssh"

default _status := 403

_status := 200 if allow

_status := _primary.status if not allow

default _reasons := []

_reasons := [_ssh_message] if _ssh_key

_reasons := sort({d.message | some d in _denials}) if not _ssh_key

default _message := null

_message := _ssh_message if _ssh_key

_message := _primary.message if not _ssh_key

default _documentation_url := null

_documentation_url := _ssh_doc if _ssh_key

_documentation_url := _primary.documentation_url if not _ssh_key

# Every denial that applies. Only the groups that can apply are evaluated: request and token
# problems for a request that is not live, else the rules for the token's kind.
# The reach, opt-in and approval groups hold only rules that apply beyond the public floor, and
# the fine-grained ones are split by whether the resource belongs to the token's resource owner.
_denials := _common_denials | _fg_own_denials if {
	_fine_grained
	not _floor
	_same_owner
} else := _common_denials | _fg_other_denials if {
	_fine_grained
	not _floor
} else := _common_denials | _classic_denials if {
	_classic
	not _floor
} else := _common_denials if {
	_live
} else := _request_denials | _token_denials

# The denial of the first failing rule in evaluation order (lowest rank; ties by message).
_primary := _first_denial(_denials)

_first_denial(denials) := {"status": first[2], "message": first[1], "documentation_url": first[3]} if {
	first := min({[d.rank, d.message, d.status, d.documentation_url] | some d in denials})
}

_denial(rank, status, message, doc) := {"rank": rank, "status": status, "message": message, "documentation_url": doc}

# METADATA
# title: Credential denial
# description: |
#   The first failing credential rule (1-2) for input.credential alone, as {"status", "message",
#   "documentation_url"}: 401 for a token that is malformed, unknown, expired, revoked or has no
#   user, 503 while the token store or the settings are not ready. Undefined for a live token,
#   and for input that carries no personal access token. The Envoy gate asks it on a path it
#   does not cover: GitHub checks the credential before it looks at the path.
credential_denial := _first_denial(_token_denials)

default _token_id := null

_token_id := _token.id if _found

default _kind := null

_kind := _token.kind if _well_formed

default _expires_at_ns := null

_expires_at_ns := _token.expires_at_ns if _found

default _token_user := null

_token_user := _token.user if _found

# ---------------------------------------------------------------------------------------------
# Input (DESIGN.md "The decision contract").

_ssh_key if input.credential.type == "ssh_key"

_pat if input.credential.type == "pat"

_raw_token := t if {
	t := input.credential.token
	is_string(t)
	t != ""
}

# Names are case-insensitive on GitHub: the owner and the repository are compared, and looked
# up in the settings and the store, in lower case (docs/policy.md "Names").
_owner := _name(input.resource.owner)

# An absent repository means an organization-level resource.
_repository := _name(input.resource.repository)

# A name is GitHub's: letters, digits, "-", "_" and "." (not "." or ".." alone). Anything else
# ("acme-labs " with a space, an empty string) is no name: it would miss the settings and the
# store, and be decided by the defaults, so the request is refused instead.
_name(x) := lower(x) if {
	is_string(x)
	regex.match(`^[A-Za-z0-9_.-]+$`, x)
	not x in {".", ".."}
	not _token_shaped(x)
}

# A token given as a name (a caller that put the credential in the wrong field) is no name: it
# would come back, lower-cased, in the decision's messages. GitHub's prefixes with a classic
# token's length or more; names that long are rare, so the regex runs rarely.
_token_shaped(x) if {
	count(x) >= 40
	regex.match(`^(?i)(ghp|gho|ghu|ghs|ghr|github_pat)_[a-z0-9_]{36,}$`, x)
}

_actions := {"read", "write"}

_visibilities := {"public", "internal", "private"}

_action := input.action if input.action in _actions

default _permission := "contents"

_permission := name if {
	name := _renamed[input.permission]
} else := input.permission if input.permission != null

# Names that stand for another: those earlier opa-pat versions gave permissions that GitHub names
# otherwise (github/docs' fine-grained-pat-permissions.json), and GitHub's second spellings of two
# account permissions (its token pages' emails and keys; the REST API's email_addresses and
# git_ssh_keys). A request that names one is decided on the other, under which the plugin reads
# a token stored with either (plugin/permissions, renamed and spelled, which must hold the same
# pairs).
_renamed := {
	"emails": "email_addresses", "keys": "git_ssh_keys",
	"models": "user_models", "ssh_signing_keys": "git_signing_ssh_public_keys", "variables": "actions_variables",
}

# GitHub's longest permission name has 43 characters (organization_personal_access_token_requests);
# a name is echoed in messages, so a longer one, or a token written in lower case, is none.
_valid_permission if {
	is_string(_permission)
	count(_permission) <= 64
	regex.match(`^[a-z][a-z0-9_]*$`, _permission)
	not _token_shaped(_permission)
}

# A null repository or visibility counts as absent.
_valid_repository if _repository

_valid_repository if not _given_repository

_given_repository if input.resource.repository != null

_valid_visibility if not _given_visibility

_valid_visibility if input.resource.visibility in _visibilities

_given_visibility if input.resource.visibility != null

# input.resource.hidden, optional: true for what a repository keeps from the public even when it
# is public (its hooks, keys, secrets, alerts, collaborators...). The public floor (rule 12) does
# not cover it; everything else follows the repository's visibility.
_valid_hidden if not _given_hidden

_valid_hidden if is_boolean(input.resource.hidden)

_given_hidden if input.resource.hidden != null

_hidden if input.resource.hidden == true

# input.classic_scopes, optional: the scopes of which a personal access token (classic) needs
# one for this request, in place of the scope rule 11 derives from the permission for the
# action (GitHub's delete_repo for deleting a repository, read:audit_log for an audit log).
# Seeing a private or internal resource still needs "repo" (rule 11).
_valid_classic_scopes if not _given_classic_scopes

_valid_classic_scopes if {
	scopes := input.classic_scopes
	is_array(scopes)
	count(scopes) > 0
	every scope in scopes {
		is_string(scope)
		regex.match(`^[a-z][a-z0-9_:]*$`, scope)
	}
}

_given_classic_scopes if input.classic_scopes != null

_classic_scopes := input.classic_scopes if _given_classic_scopes

_named_scopes := {scope | some scope in _classic_scopes; scope != "public_repo"} if {
	_classic_scopes
	_repository
	not _public
} else := {scope | some scope in _classic_scopes} if _classic_scopes

default _raw_action := null

_raw_action := input.action

_request_ok if {
	_pat
	_raw_token
	_owner
	_action
	_valid_permission
	_valid_repository
	_valid_classic_scopes
	_valid_visibility
	_valid_hidden
}

_auth_doc := "https://docs.github.com/rest/authentication/authenticating-to-the-rest-api"

_input_doc := "https://github.com/opa-pat/opa-pat/blob/main/docs/policy.md#input"

# Rule 4 and the input problems: a request the policy cannot judge is denied with a reason.
_request_denials contains _denial(10, 401, msg, _auth_doc) if {
	not input.credential.type
	msg := "Requires authentication: missing input.credential.type; send a personal access token"
}

_request_denials contains _denial(10, 401, msg, _auth_doc) if {
	type := input.credential.type
	not type in {"pat", "ssh_key"}
	msg := sprintf("Requires authentication: unsupported credential type %s; use a personal access token or an SSH key", [_quoted_name(type)])
}

_request_denials contains _denial(10, 401, msg, _auth_doc) if {
	_pat
	not _raw_token
	msg := _token_problem(object.get(input.credential, "token", null))
}

# An empty or absent token is missing; any other value that is not a string is the caller's bug,
# and is named as such (its value is never shown: it may hold a secret).
_token_problem(t) := "Requires authentication: missing input.credential.token; send a personal access token" if {
	t in {null, ""}
} else := sprintf("Requires authentication: invalid input.credential.token %s: it must be a string; send a personal access token", [_quoted_name(t)])

_request_denials contains _denial(25, 403, "missing input.resource.owner: the calling service must name the resource's owner", _input_doc) if {
	not _ssh_key
	not _given_owner
}

_request_denials contains _denial(25, 403, msg, _input_doc) if {
	not _ssh_key
	_given_owner
	not _owner
	msg := _name_problem("input.resource.owner", input.resource.owner, sprintf("invalid input.resource.owner %s: a name holds letters, digits, \"-\", \"_\" and \".\" only, and is not \".\" or \"..\"", [_quoted_name(input.resource.owner)]))
}

# The message for a name that is none: the given one, unless the name is a token.
_name_problem(field, x, msg) := sprintf("invalid %s (not shown): it looks like a personal access token; send the token in input.credential.token only", [field]) if {
	is_string(x)
	_token_shaped(x)
} else := msg

_given_owner if input.resource.owner != null

_request_denials contains _denial(25, 403, `missing input.action: it must be "read" or "write"`, _input_doc) if {
	not _ssh_key
	_raw_action == null
}

_request_denials contains _denial(25, 403, msg, _input_doc) if {
	not _ssh_key
	_raw_action != null
	not _action
	msg := sprintf(`unknown action %s: input.action must be "read" or "write"`, [_quoted_name(_raw_action)])
}

_request_denials contains _denial(25, 403, msg, _input_doc) if {
	not _ssh_key
	not _valid_permission
	msg := _name_problem("input.permission", _permission, sprintf("unknown permission %s: input.permission must be a permission name such as \"contents\"", [_quoted_name(_permission)]))
}

_request_denials contains _denial(25, 403, msg, _input_doc) if {
	not _ssh_key
	not _valid_classic_scopes
	msg := `invalid input.classic_scopes: it must be a non-empty array of scope names such as "delete_repo", or absent`
}

_request_denials contains _denial(25, 403, msg, _input_doc) if {
	not _ssh_key
	not _valid_repository
	msg := _name_problem("input.resource.repository", input.resource.repository, "invalid input.resource.repository: it must be a repository name (letters, digits, \"-\", \"_\" and \".\"), or absent for an organization-level resource")
}

_request_denials contains _denial(25, 403, "invalid input.resource.hidden: it must be true, false or absent", _input_doc) if {
	not _ssh_key
	not _valid_hidden
}

_request_denials contains _denial(25, 403, msg, _input_doc) if {
	not _ssh_key
	not _valid_visibility
	msg := sprintf(`unknown visibility %s: input.resource.visibility must be "public", "internal" or "private"`, [_quoted_name(input.resource.visibility)])
}

# Echo a caller-given name only when it looks like a name, so a misplaced secret never reaches
# a decision: at most 32 characters, where every token, classic ones included (40), is longer. A
# value that is not a string is named by its type ("(number, not a string)"), never shown.
_quoted_name(x) := sprintf("%q", [x]) if {
	is_string(x)
	regex.match(`^[A-Za-z0-9_:.-]{1,32}$`, x)
} else := `""` if {
	x == ""
} else := "(not shown)" if {
	is_string(x)
} else := sprintf("(%s, not a string)", [type_name(x)])

# ---------------------------------------------------------------------------------------------
# Rules 1 and 2: the token is well formed, known, not expired and not revoked. The store is
# asked once per request.

# _pat and _raw_token, inline: this rule is on every request's path.
_token := pat.token(raw) if {
	input.credential.type == "pat"
	raw := input.credential.token
	is_string(raw)
	raw != ""
}

_well_formed if _token.well_formed == true

_found if {
	_well_formed
	_token.found == true
}

_expired if {
	is_number(_token.expires_at_ns)
	_token.expires_at_ns <= time.now_ns()
}

_the_token := _the_token_names[_token.kind] if _token.kind in object.keys(_the_token_names)

else := "the personal access token"

_the_token_names := {"classic": "the personal access token (classic)", "fine_grained": "the fine-grained personal access token"}

# A request the allowed path got through its base checks (_allowed_base) is live, on an
# organization's resource, and keeps its lifetime limit: the denial rules reuse that work
# instead of repeating it when the allowed path stopped at a later check.
_live if _allowed_base

_live if {
	_request_ok
	_found
	_token.revoked == false
	not _expired
	_has_user
}

_has_user if is_string(_token.user)

# Negated checks on record fields go through helper rules: `not is_string(x.f)` is not true when
# x.f is undefined.
_token_denials contains _denial(20, 401, "Bad credentials: the token's record has no user; create a new token", _auth_doc) if {
	_found
	not _has_user
}

_token_denials contains _denial(20, 503, "the token could not be checked because the token store or the policy settings are not ready; try again shortly", _auth_doc) if {
	_pat
	_raw_token
	not _token
}

_token_denials contains _denial(20, 401, msg, _auth_doc) if {
	_token
	not _well_formed
	msg := "Bad credentials: the token is not a well-formed personal access token; check that you sent the whole token, or create a new one"
}

_token_denials contains _denial(20, 401, msg, _auth_doc) if {
	_well_formed
	not _found
	msg := sprintf("Bad credentials: %s is not known; it may have been deleted; create a new token", [_the_token])
}

_token_denials contains _denial(20, 401, msg, _auth_doc) if {
	_found
	_expired
	msg := sprintf("Bad credentials: %s expired at %s; regenerate it or create a new token", [_the_token, time.format(_token.expires_at_ns)])
}

_token_denials contains _denial(20, 401, msg, _auth_doc) if {
	_found
	not _token.revoked == false
	msg := sprintf("Bad credentials: %s was revoked; create a new token", [_the_token])
}

# ---------------------------------------------------------------------------------------------
# Facts about the request, looked up once each, only for a live token.

_user := _token.user if _live

_fine_grained if {
	_live
	_token.kind == "fine_grained"
}

_classic if {
	_live
	_token.kind == "classic"
}

# A record without resource owner reaches nothing beyond the floor.
_resource_owner := object.get(_token, "resource_owner", "") if _fine_grained

# The resource belongs to a user account when the owner is a known user and not an
# organization named in the settings; anything else is an organization (unknown owners get the
# organization defaults, which is the stricter reading).
_owned_by_user if {
	_live
	not _org_configured(_owner)
	pat.user(_owner)
}

# The token's user's own account is never an organization, even when the store has no record of
# the user.
_owned_by_user if {
	_live
	_owner == lower(_user)
}

# The settings of the resource's owner and of its enterprise (settings.rego), read once; the
# effective values below are computed only when a rule needs them.
_org_conf := _org_settings(_owner) if _live

_ent := _enterprise_name(_org_conf)

_ent_conf := _enterprise_conf(_ent)

_access_policy(kind) := _binding(_ent, _ent_conf, _org_conf, _access_fields[kind], "allow")

# The classic access policy's value, for messages that suggest a classic token; never undefined,
# so that such a message cannot make its denial vanish.
default _classic_access := "restrict"

_classic_access := _access_policy("classic").value

_approval_policy := _binding(_ent, _ent_conf, _org_conf, "fine_grained_approval", "require")

_org_opted_in if _opted_in(_ent, _ent_conf, _org_conf) == true

_org_limit := _lifetime_limit(_ent, _ent_conf, _org_conf, _token.kind)

_exempt_user if {
	_exempt_admins
	_role == "owner"
}

_exempt_user if {
	_exempt_admins
	_user in object.get(_ent_conf, "owners", [])
}

_exempt_admins if _exempt_administrators(_ent, _ent_conf, _org_conf) == true

_owned_by_org if _allowed_base

_owned_by_org if {
	_live
	not _owned_by_user
}

# The token's user's role in the resource's organization.
_role := role if {
	_owned_by_org
	role := _role_or_none(_user, _owner)
	role != "none"
}

_member if _role in {"member", "owner"}

_repository_record := pat.repository(_owner, _repository) if _live

# Visibility: as given by the calling service, else the repository's record; an unknown
# repository and an organization-level resource without a given visibility count as private.
_visibility := input.resource.visibility if {
	_live
	_given_visibility
} else := _repository_record.visibility if {
	_repository_record.visibility in _visibilities
} else := "private"

_public if _visibility == "public"

# Rule 12: the public floor. A live token may read public resources of anyone, but not what a
# public repository keeps from the public (input.resource.hidden).
_floor if {
	_action == "read"
	_public
	not _hidden
}

# ---------------------------------------------------------------------------------------------
# Rules 24-29: maximum lifetime. Checked for members of the resource's organization (rule 26)
# and, for enterprise managed users, on their own repositories (rule 27). Before the floor.

_org_policy_doc := "https://docs.github.com/organizations/managing-programmatic-access-to-your-organization/setting-a-personal-access-token-policy-for-your-organization"

_enterprise_policy_doc := "https://docs.github.com/admin/enforcing-policies/enforcing-policies-for-your-enterprise/enforcing-policies-for-personal-access-tokens-in-your-enterprise"

_policy_doc("enterprise") := _enterprise_policy_doc

_policy_doc("organization") := _org_policy_doc

# The limit the token breaks, if any: checked for members of the resource's organization
# (rule 26) and for a managed user's own repositories (rule 27). The exemption (rule 28) is
# looked at only for a token that breaks its limit.
_lifetime_breach := object.union(_org_limit, {"subject": _owner, "enterprise": _ent}) if {
	not _allowed_base
	_owned_by_org
	_member
	not _within(_org_limit.days)
	not _exempt_user
}

_lifetime_breach := object.union(limit, {"subject": ent, "enterprise": ent}) if {
	_owned_by_user
	_owner == lower(_user)
	ent := pat.user(_user).managed_by
	is_string(ent)
	conf := _enterprise_conf(ent)
	limit := _enterprise_limit(conf, _token.kind)
	not _within(limit.days)
	not _managed_user_exempt(conf)
}

# A record without created_at_ns counts from 0, so it breaks any limit.
_created_at_ns := object.get(_token, "created_at_ns", 0)

_within(null)

_within(days) if _within_lifetime(_created_at_ns, _expires_at_ns, days)

_managed_user_exempt(conf) if {
	conf.exempt_administrators == true
	_user in object.get(conf, "owners", [])
}

_limit_setter(limit) := sprintf("the %s enterprise", [limit.enterprise]) if {
	limit.by == "enterprise"
} else := sprintf("the %s organization", [limit.subject])

_common_denials contains _denial(30, 403, msg, _policy_doc(limit.by)) if {
	limit := _lifetime_breach
	next := sprintf("regenerate the token with an expiration of %s or less", [_days(limit.days)])
	times := [_expires_at_ns, _created_at_ns]
	msg := _lifetime_message(limit.subject, _token.kind, limit.days, _limit_setter(limit), times, next)
}

# ---------------------------------------------------------------------------------------------
# Rules 6-11: what the token reaches, beyond the floor.

_fg_doc := "https://docs.github.com/authentication/keeping-your-account-and-data-secure/managing-your-personal-access-tokens"

_not_accessible := "Resource not accessible by personal access token"

_levels := {"read": 1, "write": 2, "admin": 3}

_same_owner if _owner == lower(_resource_owner)

# Rule 6: another owner's private or internal resource.
_fg_other_denials contains _denial(40, 404, msg, _fg_doc) if {
	not _public
	msg := sprintf("Not Found: a fine-grained personal access token reaches private and internal resources of its resource owner only, and this one belongs to %s; create a token for %s", [_resource_owner, _owner])
}

# Rule 9: another owner's public repository, for a write (or a read of what the repository keeps
# from the public).
_fg_other_denials contains _denial(40, 403, msg, _fg_doc) if {
	_public
	msg := sprintf("%s: a fine-grained personal access token cannot %s public resources of %s, because its resource owner is %s; create a token for %s", [_not_accessible, _fg_public_use, _owner, _resource_owner, _owner])
}

_fg_public_use := "write to" if _action == "write"

else := sprintf("read the %q of", [_permission])

# Rule 10: the token's user must be a member or owner of its resource-owner organization.
_fg_own_denials contains _denial(41, 403, msg, _fg_doc) if {
	_owned_by_org
	not _member
	msg := _not_member_message(_user, _owner, _classic_access)
}

# Rule 7: the repository selection.
_selected if _selects(_token, _repository)

_selects(token, _) if token.repository_selection == "all"

_selects(token, repository) if {
	token.repository_selection == "selected"
	repository in token.repositories
}

_selects(token, repository) if {
	token.repository_selection == "selected"
	some r in token.repositories
	lower(r) == repository
}

_fg_own_denials contains _denial(42, status, msg, _fg_doc) if {
	_repository
	not _selected
	status := _selection_status
	msg := _selection_message
}

_selection_status := 403 if _public

else := 404

_selection_message := sprintf("%s: this fine-grained personal access token has read-only access to public repositories; edit the token's repository access to write to %s/%s", [_not_accessible, _owner, _repository]) if {
	_token.repository_selection == "public"
	_public
	_action == "write"
} else := sprintf("%s: this fine-grained personal access token reaches only what public repositories show to everyone; edit the token's repository access to read the %q of %s/%s", [_not_accessible, _permission, _owner, _repository]) if {
	_token.repository_selection == "public"
	_public
} else := sprintf("Not Found: this fine-grained personal access token reaches public repositories only; edit the token's repository access to include %s/%s", [_owner, _repository]) if {
	_token.repository_selection == "public"
} else := sprintf("%s: %s/%s is not among the repositories this fine-grained personal access token was granted; edit the token's repository access", [_not_accessible, _owner, _repository]) if {
	_public
} else := sprintf("Not Found: %s/%s is not among the repositories this fine-grained personal access token was granted; edit the token's repository access", [_owner, _repository])

# Rule 8: the permission level; metadata: read is always present.
_permitted if _levels[_token.permissions[_permission]] >= _levels[_action]

_permitted if {
	_permission == "metadata"
	_action == "read"
}

_fg_own_denials contains _denial(43, 403, msg, _fg_doc) if {
	not _permitted
	msg := sprintf("%s: the request needs the %q permission at %q or above and %s; edit the token's permissions", [_not_accessible, _permission, _action, _held_permission])
}

_held_permission := sprintf("the token has %q", [_token.permissions[_permission]]) if {
	is_string(_token.permissions[_permission])
} else := "the token does not have it"

# Rule 11: classic scopes.
_classic_org_scopes := {
	"administration": {"read": {"read:org", "write:org", "admin:org"}, "write": {"admin:org"}},
	"organization_administration": {"read": {"read:org", "write:org", "admin:org"}, "write": {"admin:org"}},
	"members": {"read": {"read:org", "write:org", "admin:org"}, "write": {"write:org", "admin:org"}},
	"organization_actions_variables": {"read": {"admin:org"}, "write": {"admin:org"}},
	"organization_dependabot_secrets": {"read": {"admin:org"}, "write": {"admin:org"}},
	"organization_hooks": {"read": {"admin:org_hook"}, "write": {"admin:org_hook"}},
	"organization_secrets": {"read": {"admin:org"}, "write": {"admin:org"}},
	"organization_self_hosted_runners": {"read": {"admin:org"}, "write": {"admin:org"}},
	"organization_user_blocking": {"read": {"admin:org"}, "write": {"admin:org"}},
}

_org_permission if {
	not _repository
	_classic_org_scopes[_permission]
}

# An organization's own request whose scopes the request names (input.classic_scopes: Copilot's
# manage_billing:copilot, say) is one too: those scopes decide it, not repo.
_org_permission if {
	not _repository
	_classic_scopes
}

# GitHub's classic scopes for the permissions on the user's own account ("Scopes for OAuth apps";
# docs/policy.md, "Decided points"), in place of repo: what a request on an account (no
# repository) needs, one of a set. A higher scope is listed beside the lower ones it includes
# (admin:gpg_key, write:gpg_key, read:gpg_key; user, user:email, user:follow, read:user); a
# permission GitHub offers at read only (plan, private_repository_invitations) has a write entry
# all the same, so that a service asking for one is answered. The account permissions GitHub has
# no scope for (copilot_editor_context, copilot_messages, copilot_requests, interaction_limits,
# knowledge_bases, user_events, user_models) are not here: they need repo, as any private
# resource of an owner (decided). Names are the REST API's (_renamed: emails, keys).
_classic_account_scopes := {
	"blocking": {"read": {"user"}, "write": {"user"}},
	"codespaces_user_secrets": {"read": {"codespace", "codespace:secrets"}, "write": {"codespace", "codespace:secrets"}},
	"email_addresses": {"read": {"user", "user:email"}, "write": {"user"}},
	"followers": {"read": {"user", "user:follow"}, "write": {"user", "user:follow"}},
	"gists": {"read": {"gist"}, "write": {"gist"}},
	"git_signing_ssh_public_keys": {
		"read": {"read:ssh_signing_key", "write:ssh_signing_key", "admin:ssh_signing_key"},
		"write": {"write:ssh_signing_key", "admin:ssh_signing_key"},
	},
	"git_ssh_keys": {
		"read": {"read:public_key", "write:public_key", "admin:public_key"},
		"write": {"write:public_key", "admin:public_key"},
	},
	"gpg_keys": {
		"read": {"read:gpg_key", "write:gpg_key", "admin:gpg_key"},
		"write": {"write:gpg_key", "admin:gpg_key"},
	},
	"plan": {"read": {"user", "read:user"}, "write": {"user"}},
	"private_repository_invitations": {"read": {"repo", "repo:invite"}, "write": {"repo", "repo:invite"}},
	"profile": {"read": {"user", "read:user"}, "write": {"user"}},
	"starring": {"read": {"repo", "public_repo"}, "write": {"repo", "public_repo"}},
	"watching": {"read": {"repo", "notifications"}, "write": {"repo", "notifications"}},
}

# A request on an account (no repository) for a permission of the table, whose scopes the
# request does not name (input.classic_scopes, which decide in its place).
_account_request if {
	not _repository
	not _classic_scopes
	_classic_account_scopes[_permission]
}

# The scopes that see the permission's resources at all: read:gpg_key sees the GPG keys, even
# where it cannot add one.
_account_sight := {scope | some scopes in _classic_account_scopes[_permission]; some scope in scopes}

# Rule 11 on an account: a token without any of the permission's scopes does not see its private
# resources (404); one that sees them, or a public one, but lacks the action's scope is refused
# the action (403).
_classic_denials contains _denial(40, 404, msg, _fg_doc) if {
	_account_request
	not _public
	not _has_scope(_account_sight)
	wanted := _classic_account_scopes[_permission][_action]
	msg := sprintf("Not Found: a personal access token (classic) needs the %s scope to %s the %q of %s; regenerate the token with %s", [_scope_list(wanted), _action, _permission, _owner, _that_scope(wanted)])
}

_classic_denials contains _denial(41, 403, msg, _fg_doc) if {
	_account_request
	_account_seen
	wanted := _classic_account_scopes[_permission][_action]
	not _has_scope(wanted)
	msg := sprintf("%s: a personal access token (classic) needs the %s scope to %s the %q of %s; regenerate the token with %s", [_not_accessible, _scope_list(wanted), _action, _permission, _owner, _that_scope(wanted)])
}

_account_seen if _public

_account_seen if _has_scope(_account_sight)

# A request whose scopes come from a table of its own (an organization's or an account's), or
# from the request: the repository rules below do not decide it.
_scoped_request if _org_permission

_scoped_request if _account_request

_has_scope(wanted) if {
	some scope in wanted
	scope in _token.scopes
}

_scope_list(wanted) := concat(" or ", [sprintf("%q", [s]) | some s in sort(wanted)])

_classic_denials contains _denial(40, 403, msg, _fg_doc) if {
	_org_permission
	not _classic_scopes
	wanted := _classic_org_scopes[_permission][_action]
	not _has_scope(wanted)
	msg := sprintf("%s: a personal access token (classic) needs the %s scope to %s the %q of %s; regenerate the token with %s", [_not_accessible, _scope_list(wanted), _action, _permission, _owner, _that_scope(wanted)])
}

# GitHub's narrower repository scopes: each reaches one permission's requests in public,
# internal and private repositories alike, as "repo" reaches every permission's.
_narrow_scopes := {
	"deployments": {"read": {"repo_deployment"}, "write": {"repo_deployment"}},
	"repository_hooks": {
		"read": {"read:repo_hook", "write:repo_hook", "admin:repo_hook"},
		"write": {"write:repo_hook", "admin:repo_hook"},
	},
	"secret_scanning_alerts": {"read": {"security_events"}, "write": {"security_events"}},
	"security_events": {"read": {"security_events"}, "write": {"security_events"}},
	"statuses": {"read": {"repo:status"}, "write": {"repo:status"}},
	"vulnerability_alerts": {"read": {"security_events"}, "write": {"security_events"}},
}

_narrow := object.get(_narrow_scopes, [_permission, _action], set())

# The narrow scopes that see the permission's resources at all: read:repo_hook sees a private
# repository's hooks, even where it cannot change them.
_narrow_sight := {scope | some scopes in object.get(_narrow_scopes, _permission, {}); some scope in scopes}

_classic_denials contains _denial(40, 404, msg, _fg_doc) if {
	not _scoped_request
	not _public
	wanted := {"repo"} | _narrow_sight
	not _has_scope(wanted)
	msg := sprintf("Not Found: a personal access token (classic) needs the %s scope to reach private and internal resources of %s; regenerate the token with %s", [_scope_list(wanted), _owner, _regenerate_with(wanted)])
}

# A narrow scope that sees a private or internal resource but does not reach the action.
_classic_denials contains _denial(41, 403, msg, _fg_doc) if {
	not _scoped_request
	not _public
	not _classic_scopes
	_has_scope(_narrow_sight)
	wanted := {"repo"} | _narrow
	not _has_scope(wanted)
	msg := sprintf("%s: a personal access token (classic) needs the %s scope to %s the %q of %s; regenerate the token with one of them", [_not_accessible, _scope_list(wanted), _action, _permission, _owner])
}

_regenerate_with(wanted) := "the repo scope" if wanted == {"repo"}

else := "one of them"

_that_scope(wanted) := "that scope" if count(wanted) == 1

else := "one of them"

_classic_denials contains _denial(41, 403, msg, _fg_doc) if {
	not _scoped_request
	_public
	not _classic_scopes
	wanted := {"repo", "public_repo"} | _narrow
	not _has_scope(wanted)
	msg := sprintf("%s: a personal access token (classic) needs the %s scope to %s of %s; regenerate the token with one of them", [_not_accessible, _scope_list(wanted), _public_use, _owner])
}

# What a token does with a public repository beyond the floor: writes, and reads of what the
# repository keeps from the public (input.resource.hidden).
_public_use := concat(" ", [_fg_public_use, "public repositories"])

# The scopes the request names (input.classic_scopes), in place of the rules above. public_repo
# reaches public repositories only, whatever the request names: on a private repository that a
# narrow scope lets the token see, it must not stand in for the scope the action needs.
_classic_denials contains _denial(41, 403, msg, _fg_doc) if {
	wanted := _named_scopes
	not _has_scope(wanted)
	msg := sprintf("%s: a personal access token (classic) needs the %s scope to %s this resource of %s; regenerate the token with %s", [_not_accessible, _scope_list(wanted), _action, _owner, _that_scope(wanted)])
}

_classic_denials contains _denial(42, 403, msg, _fg_doc) if {
	_permission == "workflows"
	_action == "write"
	not _has_scope({"workflow"})
	msg := sprintf("%s: a personal access token (classic) needs the \"workflow\" scope to change workflows; regenerate the token with the workflow scope", [_not_accessible])
}

_known_kind if _token.kind in {"classic", "fine_grained"}

_common_denials contains _denial(44, 403, "the token's kind is not supported by this policy", _fg_doc) if {
	_live
	not _known_kind
}

# ---------------------------------------------------------------------------------------------
# Rules 30-31: fine-grained opt-in of the token's organization.

_fg_own_denials contains _denial(50, 403, msg, _enterprise_policy_doc) if {
	_owned_by_org
	not _org_opted_in
	msg := _opt_in_message(_owner, _ent, _classic_access)
}

# ---------------------------------------------------------------------------------------------
# Rules 13-16: the access policy covers resources owned by organizations.

_common_denials contains _denial(60, 403, msg, _policy_doc(policy.by)) if {
	_owned_by_org
	not _floor
	policy := _access_policy(_token.kind)
	policy.value != "allow"
	msg := _forbids_message(_owner, _token.kind, _setter(_ent, _owner, policy.by), _instead(_token.kind))
}

_instead(kind) := sprintf("use %s instead", [_kind_names[_other_kind[kind]]]) if {
	_access_policy(_other_kind[kind]).value == "allow"
	_kind_usable(_other_kind[kind])
} else := "use an SSH key for Git operations, or ask an owner to change the policy"

_kind_usable("classic")

_kind_usable("fine_grained") if _org_opted_in

# ---------------------------------------------------------------------------------------------
# Rules 17-22: approval of fine-grained tokens for the token's organization.

_approval_doc := "https://docs.github.com/organizations/managing-programmatic-access-to-your-organization/managing-requests-for-personal-access-tokens-in-your-organization"

_grant := pat.grant(_token.id, _owner) if {
	_fine_grained
	_owned_by_org
	_same_owner
}

# Rule 21: a token that reaches only public repositories needs no grant. A "public" selection
# keeps a token to public repositories, but not off the organization's own resources: a request
# on the organization (no repository) other than a read of its metadata goes beyond them, and
# needs the grant like any other token's (creation.rego records one for a token that holds more
# than metadata: read).
_approval_applies if {
	_owned_by_org
	_token.repository_selection != "public"
}

_approval_applies if {
	_owned_by_org
	not _repository
	not _metadata_read
}

_metadata_read if {
	_permission == "metadata"
	_action == "read"
}

# Rules 19 and 20: required approval needs an approved grant; with approval disabled, an owner's
# denial or revocation still stands (settings.rego, shared with caller.rego).
_fg_own_denials contains _denial(70, 403, msg, _approval_doc) if {
	_approval_applies
	policy := _approval_policy
	_unapproved(policy.value, _grant_state)
	msg := _approval_message(_owner, _ent, policy, _grant_state, _grant_reason)
}

default _grant_state := null

_grant_state := _grant.state

_grant_reason := sprintf(" (reason: %s)", [_grant.reason]) if {
	is_string(_grant.reason)
	_grant.reason != ""
} else := ""

# ---------------------------------------------------------------------------------------------
# The allowed path. Most requests are allowed, and proving that through the denial rules means
# evaluating every one of them (some 240 expressions and 50 rules). _allowed_token checks the
# passing form of each rule, in evaluation order, for the common requests on a repository of an
# organization: a classic token with "repo"; a fine-grained token on its own organization with
# an approved grant; a read on the public floor. It reads the record, the input and the
# settings into local variables, so that a request costs a dozen rule evaluations instead of
# fifty. It is a shortcut, not a definition: whatever it does not recognise (a user-owned or
# organization-level resource, an exempt administrator, approval disabled, a workflow write,
# no settings at all, ...) goes through the denial rules, which decide and give every reason.
# The tests hold both paths to the same decisions.
_allowed_token := t if {
	[t, _, _, _, settings] := _allowed_base
	t.kind == "classic"

	# Rule 11: "repo" reaches every repository; workflow writes go through the denial rules.
	"repo" in t.scopes
	_permission != "workflows"

	# Rules 13-16.
	[ent, ent_conf, org_conf] := settings
	_binding(ent, ent_conf, org_conf, "classic_access", "allow").value == "allow"
} else := t if {
	[t, owner, repository, role, settings] := _allowed_base
	t.kind == "fine_grained"

	# Rules 6 and 10: the token's own organization, of which the user is a member.
	owner == lower(t.resource_owner)
	role in {"member", "owner"}

	# Rules 7 and 8: the repository is selected, the permission held at the action's level.
	_selects(t, repository)
	_levels[t.permissions[_permission]] >= _levels[input.action]

	# Rules 30, 13-16 and 19.
	[ent, ent_conf, org_conf] := settings
	_opted_in(ent, ent_conf, org_conf) == true
	_binding(ent, ent_conf, org_conf, "fine_grained_access", "allow").value == "allow"
	pat.grant(t.id, owner).state == "approved"
} else := t if {
	# Rule 12: the public floor.
	[t, owner, repository, _, _] := _allowed_base
	input.action == "read"
	not _hidden
	_allowed_visibility(owner, repository) == "public"
}

# Rules 1-4, 15 and 24-28 in their passing form: [token, owner, repository, the user's role in
# the owner, [enterprise, its settings, the organization's settings]]. It must imply _live (every
# check of _request_ok included), _owned_by_org and no _lifetime_breach: the denial rules take
# it for them.
_allowed_base := [t, owner, repository, role, [ent, ent_conf, org_conf]] if {
	t := _token
	t.found == true
	t.well_formed == true
	t.revoked == false
	_unexpired(t.expires_at_ns)
	is_string(t.user)
	t.kind in {"classic", "fine_grained"}
	input.action in {"read", "write"}
	regex.match(`^[a-z][a-z0-9_]*$`, _permission)
	_valid_visibility
	_valid_hidden
	object.get(input, "classic_scopes", null) == null # a request that names them goes through the rules

	# _owner and _repository.
	owner := _name(input.resource.owner)
	repository := _name(input.resource.repository)

	# Rule 15: the owner is an organization: not the user, and named in the settings or not a
	# known user.
	owner != lower(t.user)
	[ent, ent_conf, org_conf] := _organization_settings(owner)

	# Rules 24-28: a member's token keeps the organization's limit.
	role := _role_or_none(t.user, owner)
	_lifetime_kept(role, t.kind, ent_conf, org_conf)
}

# Rule 2, as _expired in its passing form.
_unexpired(null)

_unexpired(expires_ns) if expires_ns > time.now_ns()

# [enterprise, its settings, the organization's settings] (settings.rego) for an owner that is an
# organization: named in the settings, or not a known user (rule 15); undefined for a user.
_organization_settings(owner) := [ent, _enterprise_conf(ent), conf] if {
	conf := data.pat.settings.organizations[owner]
	is_object(conf)
	ent := _enterprise_name(conf)
} else := [null, {}, {}] if {
	not pat.user(owner)
}

_role_or_none(user, org) := role if {
	role := pat.org_role(user, org)
} else := "none"

# Rule 26 in its passing form. Within the effective limit (_lifetime_limit) is within both the
# enterprise's limit and the organization's own, since the effective one is the tighter. An
# organization outside any enterprise (no enterprise settings) is held to the default as well:
# stricter than the denial rules when it removed its limit, which only sends that request
# through them.
_lifetime_kept(role, _, _, _) if not role in {"member", "owner"}

_lifetime_kept(_, kind, ent_conf, org_conf) if {
	field := _lifetime_fields[kind]
	_fits(object.get(ent_conf, field, _default_lifetime[kind]), _lifetime_ns)
	_fits(object.get(org_conf, field, null), _lifetime_ns)
}

# Rule 25 (_within_lifetime) for a lifetime in nanoseconds; null days is no limit.
_fits(null, _)

_fits(days, lifetime_ns) if {
	is_number(days)
	lifetime_ns < ((days * 86400) + 1) * 1000000000
}

_lifetime_ns := expires_ns - object.get(_token, "created_at_ns", 0) if {
	expires_ns := _token.expires_at_ns
	is_number(expires_ns)
}

# _visibility for a valid request, without asking whether the token is live.
_allowed_visibility(owner, repository) := v if {
	v := input.resource.visibility
	v in _visibilities
} else := v if {
	not _given_visibility
	v := pat.repository(owner, repository).visibility
	v in _visibilities
} else := "private" if {
	not _given_visibility
}
