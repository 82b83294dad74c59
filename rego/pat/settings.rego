# Effective settings: the enterprise-over-organization precedence of SEMANTICS.md rules 13, 16,
# 18, 24, 28 and 30, computed from data.pat.settings for one organization at a time. Every
# field is optional; an absent settings document means all defaults.
package pat

# Settings are read by path, one organization and one enterprise at a time, never as a whole
# document; anything absent means the defaults (rule 16).
_org_settings(org) := conf if {
	conf := data.pat.settings.organizations[org]
	is_object(conf)
} else := {}

_org_configured(org) if is_object(data.pat.settings.organizations[org])

_enterprise_conf(ent) := conf if {
	conf := data.pat.settings.enterprises[ent]
	is_object(conf)
} else := {}

_access_fields := {"classic": "classic_access", "fine_grained": "fine_grained_access"}

_lifetime_fields := {"classic": "classic_max_lifetime_days", "fine_grained": "fine_grained_max_lifetime_days"}

# Rule 24: FG tokens default to 366 days, classic tokens to no limit.
_default_lifetime := {"classic": null, "fine_grained": 366}

_kind_names := {"classic": "a personal access token (classic)", "fine_grained": "a fine-grained personal access token"}

_other_kind := {"classic": "fine_grained", "fine_grained": "classic"}

# The effective policy of one organization, as one object, for the creation check. The
# decision asks the same helpers for only what a request needs (pat.rego).
#   {"enterprise": name or null, "owners": the enterprise's owners, "exempt_administrators": bool, "opted_in": bool,
#    "access": {kind: {"value", "by"}}, "approval": {"value", "by"},
#    "lifetime": {kind: {"days" (null: no limit), "by"}}}
# "by" is "enterprise" or "organization": who set the value.
_effective(org) := {
	"enterprise": ent,
	"owners": object.get(ent_conf, "owners", []),
	"exempt_administrators": _exempt_administrators(ent, ent_conf, org_conf),
	"opted_in": _opted_in(ent, ent_conf, org_conf),
	"access": {
		"classic": _binding(ent, ent_conf, org_conf, "classic_access", "allow"),
		"fine_grained": _binding(ent, ent_conf, org_conf, "fine_grained_access", "allow"),
	},
	"approval": _binding(ent, ent_conf, org_conf, "fine_grained_approval", "require"),
	"lifetime": {
		"classic": _lifetime_limit(ent, ent_conf, org_conf, "classic"),
		"fine_grained": _lifetime_limit(ent, ent_conf, org_conf, "fine_grained"),
	},
} if {
	org_conf := _org_settings(org)
	ent := _enterprise_name(org_conf)
	ent_conf := _enterprise_conf(ent)
}

# The enterprise an organization belongs to; null for an organization outside any enterprise
# (rule 16).
_enterprise_name(org_conf) := org_conf.enterprise if {
	is_string(org_conf.enterprise)
	org_conf.enterprise != ""
} else := null

# Rules 13 and 18: the enterprise's binding choice, else (org_decides, the default, or no
# enterprise) the organization's own, with its default.
_binding(ent, ent_conf, org_conf, field, org_default) := {"value": value, "by": "enterprise"} if {
	ent != null
	value := object.get(ent_conf, field, "org_decides")
	value != "org_decides"
} else := {"value": object.get(org_conf, field, org_default), "by": "organization"}

# Rule 30: an organization outside any enterprise is always opted in; inside one, it is opted in
# when it opted in itself (default false) or its enterprise did (default true).
_opted_in(null, _, _) := true

_opted_in(ent, ent_conf, org_conf) if {
	ent != null
	object.get(org_conf, "fine_grained_opt_in", false) == true
} else := object.get(ent_conf, "fine_grained_opt_in", true) == true if {
	ent != null
}

# Rule 28: exempt_administrators is the enterprise's; an organization outside any enterprise
# may set it itself (decided).
_exempt_administrators(null, _, org_conf) := object.get(org_conf, "exempt_administrators", false) == true

_exempt_administrators(ent, ent_conf, _) := object.get(ent_conf, "exempt_administrators", false) == true if ent != null

# Rule 24: the effective maximum lifetime of a kind of token, in days (null when none), and who
# set it. Inside an enterprise the organization may only tighten the enterprise's limit; outside
# one it sets its own with the same defaults.
_lifetime_limit(null, _, org_conf, kind) := {
	"days": object.get(org_conf, _lifetime_fields[kind], _default_lifetime[kind]),
	"by": "organization",
}

_lifetime_limit(ent, ent_conf, org_conf, kind) := _tighter(
	_enterprise_limit(ent_conf, kind),
	{"days": object.get(org_conf, _lifetime_fields[kind], null), "by": "organization"},
) if ent != null

_enterprise_limit(ent_conf, kind) := {
	"days": object.get(ent_conf, _lifetime_fields[kind], _default_lifetime[kind]),
	"by": "enterprise",
}

# The tighter of two limits; a tie goes to the first (the enterprise).
_tighter(a, b) := b if {
	is_number(b.days)
	_looser(a.days, b.days)
} else := a

_looser(a, _) if a == null

_looser(a, b) if {
	is_number(a)
	a > b
}

# Who set a policy, for messages: "the acme enterprise" or "the octo-org organization".
_setter(ent, _, "enterprise") := sprintf("the %s enterprise", [ent])

_setter(_, org, "organization") := sprintf("the %s organization", [org])

# Rule 28: whether a token's user is exempt from the lifetime limit.
_exempt(policy, _, role) if {
	policy.exempt_administrators
	role == "owner"
}

_exempt(policy, user, _) if {
	policy.exempt_administrators
	user in policy.owners
}

# Rule 25: compliant when expires_at - created_at, in whole seconds, is at most the limit; a
# token without an expiry is never compliant where a limit applies. In whole seconds, at most
# N seconds is less than N + 1 seconds in nanoseconds: integer arithmetic, no division.
_within_lifetime(created_ns, expires_ns, days) if {
	is_number(days)
	is_number(expires_ns)
	expires_ns - created_ns < ((days * 86400) + 1) * 1000000000
}

# The lifetime message of rule 26 and rule 29, shared by the decision and the creation check.
# subject is the organization (or, for a managed user's own repositories, the enterprise);
# setter says who set the limit; times is [expires_at_ns, created_at_ns]; next says what to do.
_lifetime_message(subject, kind, days, setter, times, next) := sprintf(
	"%s forbids access via %s if the token's lifetime is greater than %s: the policy is set by %s; %s; %s",
	[subject, _kind_names[kind], _days(days), setter, _lifetime_phrase(times[0], times[1]), next],
)

_lifetime_phrase(expires_ns, created_ns) := sprintf(
	"the token's lifetime is %s",
	[_days(ceil(((expires_ns - created_ns) / 1000000000) / 86400))],
) if {
	is_number(expires_ns)
} else := "the token has no expiration date"

# A number of days in words: "1 day", "30 days".
_days(n) := "1 day" if n == 1

else := sprintf("%d days", [n])

# Rules 19 and 20, for the decision (pat.rego) and for a token acting on its organization
# (caller.rego): whether a grant in a state (null: none) fails an approval policy value, and the
# denial's message. approval is {"value", "by"}; reason is the reviewer's, as " (reason: ...)" or "".
_unapproved(approval, state) if {
	approval != "disable"
	state != "approved"
}

_unapproved("disable", state) if state in {"denied", "revoked"}

# Where approval is disabled, a request again is refused (a pending grant would let the token
# through before any review; docs/policy.md, decided points): the next step is another.
_approval_message(org, ent, approval, state, reason) := sprintf(
	"%s does not require approval of fine-grained personal access tokens, but %s: an owner's decision stands; ask an owner of %s to require approval and then request access again, or create a new token",
	[org, _grant_phrase(org, state, reason), org],
) if {
	approval.value == "disable"
} else := sprintf(
	"%s requires approval of fine-grained personal access tokens and %s: the policy is set by %s; %s",
	[org, _grant_phrase(org, state, reason), _setter(ent, org, approval.by), _grant_next(org, state)],
)

_grant_phrase(_, "pending", _) := "this token's request is awaiting approval"

_grant_phrase(_, "denied", reason) := sprintf("an owner denied this token's request%s", [reason])

_grant_phrase(_, "revoked", reason) := sprintf("an owner revoked this token's access%s", [reason])

_grant_phrase(org, state, _) := sprintf("this token has not been approved for %s", [org]) if not state in {"pending", "denied", "revoked"}

_grant_next(org, "pending") := sprintf("ask an owner of %s to review the request", [org])

_grant_next(org, state) := sprintf("request access to %s again with a justification", [org]) if state in {"denied", "revoked"}

_grant_next(org, state) := sprintf("request access to %s with a justification", [org]) if not state in {"pending", "denied", "revoked"}

# The messages of rules 10, 30 and 14, for the decision and caller.rego.
# Both suggest a classic token only where the organization's access policy allows classic tokens.
_not_member_message(user, org, classic) := sprintf("%s is not a member of %s: outside collaborators and former members cannot use fine-grained personal access tokens on %s's resources; ask an owner of %s for membership%s", [user, org, org, org, _or_classic(classic)])

_opt_in_message(org, ent, classic) := sprintf("%s has not opted in to fine-grained personal access tokens: the %s enterprise has not enabled them and %s has not opted in; ask an owner of %s to opt in%s", [org, ent, org, org, _or_classic(classic)])

_or_classic(classic) := ", or use a personal access token (classic)" if classic == "allow"

else := ""

_forbids_message(org, kind, setter, instead) := sprintf("%s forbids access via %s: the policy is set by %s; %s", [org, _kind_names[kind], setter, instead])
