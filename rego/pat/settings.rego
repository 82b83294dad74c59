# Effective settings: the enterprise-over-organization precedence of SEMANTICS.md rules 13, 16,
# 18, 24, 28 and 30, computed from data.pat.settings for one organization at a time. Every
# field is optional; an absent settings document means all defaults.
package pat

# The settings document; absent means all defaults (rule 16).
default _settings := {}

_settings := data.pat.settings

_access_fields := {"classic": "classic_access", "fine_grained": "fine_grained_access"}

_lifetime_fields := {"classic": "classic_max_lifetime_days", "fine_grained": "fine_grained_max_lifetime_days"}

# Rule 24: FG tokens default to 366 days, classic tokens to no limit.
_default_lifetime := {"classic": null, "fine_grained": 366}

_kind_names := {"classic": "a personal access token (classic)", "fine_grained": "a fine-grained personal access token"}

_other_kind := {"classic": "fine_grained", "fine_grained": "classic"}

_org_settings(org) := object.get(_settings, ["organizations", org], {})

_enterprise_settings(ent) := object.get(_settings, ["enterprises", ent], {})

# The enterprise an organization belongs to; undefined for an organization outside any
# enterprise (rule 16).
_enterprise_of(org) := ent if {
	ent := _org_settings(org).enterprise
	is_string(ent)
	ent != ""
}

# Who set a policy, for messages: "the acme enterprise" or "the octo-org organization".
_setter(org, "enterprise") := sprintf("the %s enterprise", [_enterprise_of(org)])

_setter(org, "organization") := sprintf("the %s organization", [org])

# Rule 13: the effective access policy for one kind of token, and who set it. The enterprise's
# restrict/allow binds; under org_decides (the default) the organization's choice counts,
# allow by default.
_access(org, kind) := {"value": value, "by": "enterprise"} if {
	ent := _enterprise_of(org)
	value := object.get(_enterprise_settings(ent), _access_fields[kind], "org_decides")
	value != "org_decides"
} else := {"value": object.get(_org_settings(org), _access_fields[kind], "allow"), "by": "organization"}

# Rule 18: the effective approval policy for fine-grained tokens, and who set it.
_approval(org) := {"value": value, "by": "enterprise"} if {
	ent := _enterprise_of(org)
	value := object.get(_enterprise_settings(ent), "fine_grained_approval", "org_decides")
	value != "org_decides"
} else := {"value": object.get(_org_settings(org), "fine_grained_approval", "require"), "by": "organization"}

_approval_disabled(org) if _approval(org).value == "disable"

# Rule 30: an organization outside any enterprise is always opted in; inside one, it is opted in
# when it opted in itself (default false) or its enterprise did (default true).
_opted_in(org) if not _enterprise_of(org)

_opted_in(org) if _org_settings(org).fine_grained_opt_in == true

_opted_in(org) if {
	ent := _enterprise_of(org)
	object.get(_enterprise_settings(ent), "fine_grained_opt_in", true) == true
}

# Rule 24: the effective maximum lifetime of a kind of token in an organization, in days (null
# when none), and who set it. Inside an enterprise the organization may only tighten the
# enterprise's limit; outside one it sets its own with the same defaults.
_lifetime_limit(org, kind) := _tighter(
	_enterprise_lifetime_limit(ent, kind),
	_org_lifetime_limit(org, kind, null),
) if {
	ent := _enterprise_of(org)
} else := _org_lifetime_limit(org, kind, _default_lifetime[kind])

_org_lifetime_limit(org, kind, default_days) := {
	"days": object.get(_org_settings(org), _lifetime_fields[kind], default_days),
	"by": "organization",
	"setter": sprintf("the %s organization", [org]),
}

_enterprise_lifetime_limit(ent, kind) := {
	"days": object.get(_enterprise_settings(ent), _lifetime_fields[kind], _default_lifetime[kind]),
	"by": "enterprise",
	"setter": sprintf("the %s enterprise", [ent]),
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

# Rule 25: compliant when expires_at - created_at, in whole seconds, is at most the limit; a
# token without an expiry is never compliant where a limit applies.
_within_lifetime(created_ns, expires_ns, days) if {
	is_number(expires_ns)
	floor((expires_ns - created_ns) / 1000000000) <= days * 86400
}

# Rule 28: exempt_administrators exempts the enterprise's owners and the organization's owners.
# An organization outside any enterprise may set exempt_administrators itself (decided).
_exempt_from_lifetime(org, _, role) if {
	_exemption_on(org)
	role == "owner"
}

_exempt_from_lifetime(org, user, _) if {
	_exemption_on(org)
	_enterprise_owner(_enterprise_of(org), user)
}

_exemption_on(org) if _enterprise_settings(_enterprise_of(org)).exempt_administrators == true

_exemption_on(org) if {
	not _enterprise_of(org)
	_org_settings(org).exempt_administrators == true
}

_enterprise_owner(ent, user) if user in object.get(_enterprise_settings(ent), "owners", [])

# The lifetime message of rule 26 and rule 29, shared by the decision and the creation check.
# subject is the organization (or, for a managed user's own repositories, the enterprise);
# times is [expires_at_ns, created_at_ns]; next says what to do.
_lifetime_message(subject, kind, limit, times, next) := sprintf(
	"%s forbids access via %s if the token's lifetime is greater than %d days: the policy is set by %s; %s; %s",
	[subject, _kind_names[kind], limit.days, limit.setter, _lifetime_phrase(times[0], times[1]), next],
)

_lifetime_phrase(expires_ns, created_ns) := sprintf(
	"the token's lifetime is %d days",
	[ceil(((expires_ns - created_ns) / 1000000000) / 86400)],
) if {
	is_number(expires_ns)
} else := "the token has no expiration date"
