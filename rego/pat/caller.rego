# An organization's PAT policies for a token that acts on the organization itself, such as the
# caller of the admin API (data.pat.admin) managing the organization's tokens. A request for a
# resource goes through the decision (pat.rego); this is the part of it that does not need one:
# lifetime (rules 24-28), membership for fine-grained tokens (rule 10), the fine-grained opt-in
# (rule 30), the access policy (rules 13-16) and approval (rules 17-20). The public floor and the
# token's reach are the caller's to check: they depend on what the request touches.
package pat

# METADATA
# title: Organization policy for a token
# description: |
#   The reasons the organization's PAT policies refuse a token that acts on the organization,
#   as a set of [rank, message], ranked in SEMANTICS.md's order of evaluation as the decision
#   ranks them; empty when the policies let it through. token: {"kind", "user",
#   "created_at_ns", "expires_at_ns" (null: no expiration), "grant_state" (fine-grained: the
#   state of its grant for org, or null when it has none)}. org is compared in lower case.
org_policy_denials(token, org) := _org_policy_denials(token, o, _role_or_none(token.user, o)) if o := lower(org)

# The same for a token whose user's role in org (lower case) is known: the creation check
# (creation.rego) has it in its input and calls no built-in.
_org_policy_denials(token, org, role) := (_org_lifetime(token, org, p, role) | _org_fine_grained(token, org, p, role)) | _org_access(token, org, p) if {
	p := _effective(org)
}

# Rules 24-28: a member's token must keep the organization's effective lifetime limit, unless
# the organization exempts administrators and the user is one.
_org_lifetime(token, org, policy, role) := {[30, msg] |
	role in {"member", "owner"}
	not _exempt(policy, token.user, role)
	limit := policy.lifetime[token.kind]
	limit.days != null
	created := object.get(token, "created_at_ns", 0)
	expires := object.get(token, "expires_at_ns", null)
	not _within_lifetime(created, expires, limit.days)
	next := sprintf("regenerate the token with an expiration of %s or less", [_days(limit.days)])
	msg := _lifetime_message(org, token.kind, limit.days, _setter(policy.enterprise, org, limit.by), [expires, created], next)
}

_org_fine_grained(token, org, policy, role) := (_org_member(token, org, policy, role) | _org_opt_in(org, policy)) | _org_approval(token, org, policy) if {
	token.kind == "fine_grained"
} else := set()

# Rule 10: only members use fine-grained tokens on the organization.
_org_member(token, org, policy, role) := {[41, msg] |
	not role in {"member", "owner"}
	msg := _not_member_message(token.user, org, policy.access.classic.value)
}

# Rule 30: the organization, or its enterprise, must have opted in.
_org_opt_in(org, policy) := {[50, msg] |
	not policy.opted_in
	msg := _opt_in_message(org, policy.enterprise, policy.access.classic.value)
}

# Rules 13-16: the effective access policy for the token's kind.
_org_access(token, org, policy) := {[60, msg] |
	access := policy.access[token.kind]
	access.value != "allow"
	msg := _forbids_message(org, token.kind, _setter(policy.enterprise, org, access.by), _org_instead(token.kind, policy))
}

_org_instead(kind, policy) := sprintf("use %s instead", [_kind_names[other]]) if {
	other := _other_kind[kind]
	policy.access[other].value == "allow"
	_org_kind_usable(other, policy)
} else := "ask an owner to change the policy"

_org_kind_usable("classic", _)

_org_kind_usable("fine_grained", policy) if policy.opted_in

# Rules 17-20: with approval required, only an approved grant; with approval disabled, an
# owner's denial or revocation still stands. The caller's input gives no grant reason.
_org_approval(token, org, policy) := {[70, msg] |
	state := object.get(token, "grant_state", null)
	_unapproved(policy.approval.value, state)
	msg := _approval_message(org, policy.enterprise, policy.approval, state, "")
}

# METADATA
# title: Effective approval policy
# description: |
#   The effective approval policy of an organization for fine-grained tokens (rule 18):
#   {"value": "require" or "disable", "by": "enterprise" or "organization"}. org is compared in
#   lower case. With "disable", a fine-grained token of the organization without a grant reaches
#   it (rule 20): the admin API lists such tokens with the organization's tokens and lets an owner
#   revoke one, which records a revoked grant that still blocks.
approval_policy(org) := _effective(lower(org)).approval
