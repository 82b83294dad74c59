# Rules 17-23: approval of fine-grained tokens.
package pat_test

awaiting(setter) := sprintf("octo-org requires approval of fine-grained personal access tokens and this token's request is awaiting approval: the policy is set by %s; ask an owner of octo-org to review the request", [setter])

denied_request := "octo-org requires approval of fine-grained personal access tokens and an owner denied this token's request (reason: use the release app): the policy is set by the octo-org organization; request access to octo-org again with a justification"

revoked_access := "octo-org requires approval of fine-grained personal access tokens and an owner revoked this token's access: the policy is set by the octo-org organization; request access to octo-org again with a justification"

not_approved := "octo-org requires approval of fine-grained personal access tokens and this token has not been approved for octo-org: the policy is set by the octo-org organization; request access to octo-org with a justification"

approval_disabled := with_settings({}, {"fine_grained_approval": "disable"})

test_rule_17_allow_classic_tokens_without_approval if {
	decide_with(request("ghp_bob_repo", "octo-org", "app", "write"), with_settings({"fine_grained_approval": "require"}, {})) == allowed("ghp_bob_repo")
}

test_rule_17_deny_fine_grained_tokens_without_approval if {
	decide_with(request("github_pat_bob_no_grant", "octo-org", "app", "write"), with_settings({"fine_grained_approval": "require"}, {})) == denied("github_pat_bob_no_grant", 403, sprintf("octo-org requires approval of fine-grained personal access tokens and this token has not been approved for octo-org: the policy is set by %s; request access to octo-org with a justification", ["the acme enterprise"]), approval_doc)
}

test_rule_18_effective_approval[note] if {
	some note, tc in {
		"defaults: the organization requires": {"enterprise": {}, "org": {}, "want": denied("github_pat_bob_pending", 403, awaiting("the octo-org organization"), approval_doc)},
		"org decides, org disables": {"enterprise": {"fine_grained_approval": "org_decides"}, "org": {"fine_grained_approval": "disable"}, "want": allowed("github_pat_bob_pending")},
		"enterprise requires over org disable": {"enterprise": {"fine_grained_approval": "require"}, "org": {"fine_grained_approval": "disable"}, "want": denied("github_pat_bob_pending", 403, awaiting("the acme enterprise"), approval_doc)},
		"enterprise disables over org require": {"enterprise": {"fine_grained_approval": "disable"}, "org": {"fine_grained_approval": "require"}, "want": allowed("github_pat_bob_pending")},
	}
	decide_with(request("github_pat_bob_pending", "octo-org", "app", "write"), with_settings(tc.enterprise, tc.org)) == tc.want
}

test_rule_18_standalone_organization_requires_by_default[note] if {
	some note, tc in {
		"default": {"settings": {}, "want": allowed("github_pat_bob_solo")},
		"disabled": {"settings": {"organizations": {"solo-org": {"fine_grained_approval": "disable"}}}, "want": allowed("github_pat_bob_solo")},
	}
	decide_with(request("github_pat_bob_solo", "solo-org", "lib", "write"), tc.settings) == tc.want
}

test_rule_19_deny_without_an_approved_grant[note] if {
	some note, tc in {
		"pending": {"raw": "github_pat_bob_pending", "reason": awaiting("the octo-org organization")},
		"denied": {"raw": "github_pat_bob_denied", "reason": denied_request},
		"revoked": {"raw": "github_pat_bob_revoked_grant", "reason": revoked_access},
		"no grant": {"raw": "github_pat_bob_no_grant", "reason": not_approved},
	}
	some repository in ["app", "docs"] # a write to a public repository needs approval too
	decide(request(tc.raw, "octo-org", repository, "write")) == denied(tc.raw, 403, tc.reason, approval_doc)
}

test_rule_19_allow_with_an_approved_grant if {
	decide(request("github_pat_bob_90_days", "octo-org", "docs", "write")) == allowed("github_pat_bob_90_days")
}

test_rule_20_allow_without_grant_when_approval_is_disabled[note] if {
	some note, raw in {
		"pending": "github_pat_bob_pending",
		"no grant": "github_pat_bob_no_grant",
		"approved": "github_pat_bob_90_days",
	}
	decide_with(request(raw, "octo-org", "app", "write"), approval_disabled) == allowed(raw)
}

test_rule_20_deny_denied_or_revoked_grants_even_when_disabled[note] if {
	some note, tc in {
		"denied": {"raw": "github_pat_bob_denied", "phrase": "an owner denied this token's request (reason: use the release app)"},
		"revoked": {"raw": "github_pat_bob_revoked_grant", "phrase": "an owner revoked this token's access"},
	}
	reason := sprintf("octo-org does not require approval of fine-grained personal access tokens, but %s: an owner's decision stands; ask an owner of octo-org to require approval and then request access again, or create a new token", [tc.phrase])
	decide_with(request(tc.raw, "octo-org", "app", "write"), approval_disabled) == denied(tc.raw, 403, reason, approval_doc)
}

test_rule_21_allow_public_only_tokens_without_a_grant if {
	decide(request("github_pat_bob_public", "octo-org", "docs", "read")) == allowed("github_pat_bob_public")
}

test_rule_21_deny_public_only_tokens_beyond_public_reads if {
	decide(request_for("github_pat_bob_public", "octo-org", "app", "read", "metadata")) == denied("github_pat_bob_public", 404, public_only, token_doc)
}

# A "public" selection keeps the token off private repositories, not off the organization's own
# resources: a request on the organization that needs more than metadata needs the grant.
test_rule_21_deny_public_only_tokens_on_organization_resources_without_a_grant[note] if {
	some note, tc in {
		"write members": {"raw": "github_pat_bob_public_members", "action": "write", "permission": "members"},
		"read members": {"raw": "github_pat_bob_public_members", "action": "read", "permission": "members"},
		"write metadata": {"raw": "github_pat_bob_public_metadata_write", "action": "write", "permission": "metadata"},
	}
	decide(org_request(tc.raw, "octo-org", tc.action, tc.permission)) == denied(tc.raw, 403, not_approved, approval_doc)
}

test_rule_21_allow_public_only_tokens_on_organization_resources[note] if {
	some note, tc in {
		"metadata needs no grant": {"raw": "github_pat_bob_public", "permission": "metadata", "action": "read", "settings": acme},
		"approval disabled": {"raw": "github_pat_bob_public_members", "permission": "members", "action": "write", "settings": approval_disabled},
	}
	decide_with(org_request(tc.raw, "octo-org", tc.action, tc.permission), tc.settings) == allowed(tc.raw)
}

# Rule 22: the policy reads grants at request time. Turning approval off lets a pending token
# through; turning it on again keeps approved grants working.
test_rule_22_allow_policy_changes_take_effect_at_once[note] if {
	some note, tc in {
		"approval off, pending passes": {"raw": "github_pat_bob_pending", "settings": approval_disabled},
		"approval on, approved stays": {"raw": "github_pat_bob_90_days", "settings": with_settings({"fine_grained_approval": "require"}, {})},
	}
	decide_with(request(tc.raw, "octo-org", "app", "write"), tc.settings) == allowed(tc.raw)
}

test_rule_22_deny_pending_once_approval_is_on_again if {
	decide(request("github_pat_bob_pending", "octo-org", "app", "write")) == denied("github_pat_bob_pending", 403, awaiting("the octo-org organization"), approval_doc)
}

# Rule 23: reviews live in the store; the policy sees the current grant. A denied token that
# requests again is pending, and an approval lets it through.
regrant(state) := {"id": 300, "state": state, "reason": "second try", "reviewer": null, "updated_at_ns": now}

test_rule_23_deny_a_new_request_until_reviewed if {
	d := data.pat.decision with input as request("github_pat_bob_denied", "octo-org", "app", "write")
		with data.pat.settings as acme
		with pat.token as mock_token
		with pat.grant as pending_again
		with pat.org_role as mock_org_role
		with pat.user as mock_user
		with pat.repository as mock_repository
		with time.now_ns as now
	d == denied("github_pat_bob_denied", 403, awaiting("the octo-org organization"), approval_doc)
}

test_rule_23_allow_once_approved if {
	d := data.pat.decision with input as request("github_pat_bob_denied", "octo-org", "app", "write")
		with data.pat.settings as acme
		with pat.token as mock_token
		with pat.grant as approved_again
		with pat.org_role as mock_org_role
		with pat.user as mock_user
		with pat.repository as mock_repository
		with time.now_ns as now
	d == allowed("github_pat_bob_denied")
}

pending_again(_, _) := regrant("pending")

approved_again(_, _) := regrant("approved")
