# Rules 24-28: maximum lifetime (rule 29, at creation, is in creation_test.rego).
package pat_test

too_long(subject, kind, days, setter, lifetime) := sprintf(
	"%s forbids access via %s if the token's lifetime is greater than %d days: the policy is set by %s; %s; regenerate the token with an expiration of %d days or less",
	[subject, kind, days, setter, lifetime, days],
)

fine_grained_name := "a fine-grained personal access token"

classic_name := "a personal access token (classic)"

lasts(days) := sprintf("the token's lifetime is %d days", [days])

no_expiry := "the token has no expiration date"

test_rule_24_effective_limit[note] if {
	some note, tc in {
		"enterprise default 366 allows 90 days": {"enterprise": {}, "org": {}, "reason": null},
		"organization tightens": {"enterprise": {}, "org": {"fine_grained_max_lifetime_days": 30}, "reason": too_long("octo-org", fine_grained_name, 30, "the octo-org organization", lasts(90))},
		"enterprise sets 60": {"enterprise": {"fine_grained_max_lifetime_days": 60}, "org": {}, "reason": too_long("octo-org", fine_grained_name, 60, "the acme enterprise", lasts(90))},
		"the smaller wins, organization": {"enterprise": {"fine_grained_max_lifetime_days": 60}, "org": {"fine_grained_max_lifetime_days": 30}, "reason": too_long("octo-org", fine_grained_name, 30, "the octo-org organization", lasts(90))},
		"the smaller wins, enterprise": {"enterprise": {"fine_grained_max_lifetime_days": 30}, "org": {"fine_grained_max_lifetime_days": 60}, "reason": too_long("octo-org", fine_grained_name, 30, "the acme enterprise", lasts(90))},
		"a tie names the enterprise": {"enterprise": {"fine_grained_max_lifetime_days": 30}, "org": {"fine_grained_max_lifetime_days": 30}, "reason": too_long("octo-org", fine_grained_name, 30, "the acme enterprise", lasts(90))},
		"enterprise removes it, organization sets one": {"enterprise": {"fine_grained_max_lifetime_days": null}, "org": {"fine_grained_max_lifetime_days": 30}, "reason": too_long("octo-org", fine_grained_name, 30, "the octo-org organization", lasts(90))},
		"a limit of one day": {"enterprise": {}, "org": {"fine_grained_max_lifetime_days": 1}, "reason": "octo-org forbids access via a fine-grained personal access token if the token's lifetime is greater than 1 day: the policy is set by the octo-org organization; the token's lifetime is 90 days; regenerate the token with an expiration of 1 day or less"},
		"the organization cannot loosen": {"enterprise": {"fine_grained_max_lifetime_days": 60}, "org": {"fine_grained_max_lifetime_days": 120}, "reason": too_long("octo-org", fine_grained_name, 60, "the acme enterprise", lasts(90))},
	}
	want := lifetime_want("github_pat_bob_90_days", tc.reason)
	decide_with(request("github_pat_bob_90_days", "octo-org", "app", "write"), with_settings(tc.enterprise, tc.org)) == want
}

lifetime_want(raw, null) := allowed(raw)

lifetime_want(raw, reason) := denied(raw, 403, reason, doc) if {
	reason != null
	doc := lifetime_doc(reason)
}

lifetime_doc(reason) := enterprise_doc if contains(reason, "enterprise;")

lifetime_doc(reason) := org_doc if not contains(reason, "enterprise;")

test_rule_24_defaults[note] if {
	some note, tc in {
		"fine-grained defaults to 366 in an enterprise": {"raw": "github_pat_bob_400", "owner": "octo-org", "repository": "app", "settings": acme, "reason": too_long("octo-org", fine_grained_name, 366, "the acme enterprise", lasts(400))},
		"fine-grained defaults to 366 outside one": {"raw": "github_pat_dave_solo_400", "owner": "solo-org", "repository": "lib", "settings": {}, "reason": too_long("solo-org", fine_grained_name, 366, "the solo-org organization", lasts(400))},
		"classic has none in an enterprise": {"raw": "ghp_bob_forever", "owner": "octo-org", "repository": "app", "settings": acme, "reason": null},
		"classic has none outside one": {"raw": "ghp_bob_forever", "owner": "solo-org", "repository": "lib", "settings": {}, "reason": null},
		"classic limit of an enterprise": {"raw": "ghp_bob_forever", "owner": "octo-org", "repository": "app", "settings": with_settings({"classic_max_lifetime_days": 90}, {}), "reason": too_long("octo-org", classic_name, 90, "the acme enterprise", no_expiry)},
		"classic limit of a standalone organization": {"raw": "ghp_bob_forever", "owner": "solo-org", "repository": "lib", "settings": {"organizations": {"solo-org": {"classic_max_lifetime_days": 30}}}, "reason": too_long("solo-org", classic_name, 30, "the solo-org organization", no_expiry)},
		"a standalone organization removes the default": {"raw": "github_pat_dave_solo_400", "owner": "solo-org", "repository": "lib", "settings": {"organizations": {"solo-org": {"fine_grained_max_lifetime_days": null}}}, "reason": null},
	}
	decide_with(request(tc.raw, tc.owner, tc.repository, "write"), tc.settings) == lifetime_want(tc.raw, tc.reason)
}

test_rule_25_allow_at_the_limit if {
	decide_with(request("github_pat_bob_90_days", "octo-org", "app", "write"), with_settings({"fine_grained_max_lifetime_days": 90}, {})) == allowed("github_pat_bob_90_days")
}

test_rule_25_deny_beyond_the_limit[note] if {
	some note, tc in {
		"one day over": {"raw": "github_pat_bob_90_days", "days": 89, "lifetime": lasts(90)},
		"one second over": {"raw": "github_pat_bob_90_days_1s", "days": 90, "lifetime": lasts(91)},
		"no expiry": {"raw": "github_pat_bob_forever", "days": 366, "lifetime": no_expiry},
	}
	reason := too_long("octo-org", fine_grained_name, tc.days, "the acme enterprise", tc.lifetime)
	decide_with(request(tc.raw, "octo-org", "app", "write"), with_settings({"fine_grained_max_lifetime_days": tc.days}, {})) == denied(tc.raw, 403, reason, enterprise_doc)
}

test_rule_26_deny_members_everywhere_in_the_organization[note] if {
	some note, tc in {
		"private repository": {"raw": "github_pat_bob_400", "repository": "app", "action": "write", "days": 366},
		"public repository, read": {"raw": "github_pat_bob_400", "repository": "docs", "action": "read", "days": 366},
		"a token for another organization, public read": {"raw": "github_pat_bob_solo", "repository": "docs", "action": "read", "days": 30},
	}
	settings := with_settings({}, {"fine_grained_max_lifetime_days": tc.days})
	setter := {366: "the acme enterprise", 30: "the octo-org organization"}[tc.days]
	reason := too_long("octo-org", fine_grained_name, tc.days, setter, lasts({"github_pat_bob_400": 400, "github_pat_bob_solo": 90}[tc.raw]))
	decide_with(request(tc.raw, "octo-org", tc.repository, tc.action), settings) == denied(tc.raw, 403, reason, lifetime_doc(reason))
}

test_rule_26_allow_non_members_unchecked[note] if {
	some note, tc in {
		"classic token of a non-member": {"raw": "ghp_frank_forever", "repository": "app", "action": "write"},
		"fine-grained token of another organization's member, public read": {"raw": "github_pat_dave_solo_400", "repository": "docs", "action": "read"},
	}
	settings := with_settings({"classic_max_lifetime_days": 30}, {})
	decide_with(request(tc.raw, "octo-org", tc.repository, tc.action), settings) == allowed(tc.raw)
}

test_rule_27_deny_managed_users_on_their_own_repositories[note] if {
	some note, tc in {
		"fine-grained, enterprise default": {"raw": "github_pat_mia_own_400", "settings": acme, "reason": too_long("acme", fine_grained_name, 366, "the acme enterprise", lasts(400))},
		"classic, enterprise limit": {"raw": "ghp_mia_forever", "settings": with_settings({"classic_max_lifetime_days": 30}, {}), "reason": too_long("acme", classic_name, 30, "the acme enterprise", no_expiry)},
		"the enterprise's owner is not exempt by default": {"raw": "github_pat_erin_own_400", "settings": acme, "reason": too_long("acme", fine_grained_name, 366, "the acme enterprise", lasts(400))},
	}
	owner := tokens[tc.raw].user
	decide_with(request(tc.raw, owner, "notes", "read"), tc.settings) == denied(tc.raw, 403, tc.reason, enterprise_doc)
}

test_rule_27_allow_unmanaged_users_and_exempt_owners[note] if {
	some note, tc in {
		"an unmanaged user's own repository": {"raw": "github_pat_frank_own_400", "settings": acme},
		"managed user, no classic limit": {"raw": "ghp_mia_forever", "settings": acme},
		"the enterprise's owner, exempt": {"raw": "github_pat_erin_own_400", "settings": with_settings({"exempt_administrators": true}, {})},
	}
	owner := tokens[tc.raw].user
	decide_with(request(tc.raw, owner, "notes", "read"), tc.settings) == allowed(tc.raw)
}

test_rule_28_exempt_administrators[note] if {
	some note, tc in {
		"organization owner, exempt": {"raw": "github_pat_alice_400", "exempt": true, "reason": null},
		"enterprise owner, exempt": {"raw": "github_pat_erin_400", "exempt": true, "reason": null},
		"member, not exempt": {"raw": "github_pat_bob_400", "exempt": true, "reason": too_long("octo-org", fine_grained_name, 366, "the acme enterprise", lasts(400))},
		"organization owner, exemption off": {"raw": "github_pat_alice_400", "exempt": false, "reason": too_long("octo-org", fine_grained_name, 366, "the acme enterprise", lasts(400))},
		"enterprise owner, exemption off": {"raw": "github_pat_erin_400", "exempt": false, "reason": too_long("octo-org", fine_grained_name, 366, "the acme enterprise", lasts(400))},
	}
	settings := with_settings({"exempt_administrators": tc.exempt}, {})
	decide_with(request(tc.raw, "octo-org", "app", "write"), settings) == lifetime_want(tc.raw, tc.reason)
}

test_rule_28_standalone_organization_exempts_its_owners[note] if {
	some note, tc in {
		"exempt": {"settings": {"organizations": {"solo-org": {"exempt_administrators": true}}}, "reason": null},
		"not exempt": {"settings": {}, "reason": too_long("solo-org", fine_grained_name, 366, "the solo-org organization", lasts(400))},
	}
	decide_with(request("github_pat_dave_solo_400", "solo-org", "lib", "write"), tc.settings) == lifetime_want("github_pat_dave_solo_400", tc.reason)
}

test_rule_25_deny_records_without_times[note] if {
	some note, tc in {
		"no expires_at_ns": {"remove": "expires_at_ns", "lifetime": no_expiry, "expires": null},
		"no created_at_ns": {"remove": "created_at_ns", "lifetime": lasts(20544), "expires": in_days(90)},
	}
	record := object.remove(tokens.github_pat_bob_90_days, [tc.remove])
	d := data.pat.decision with input as request("github_pat_bob_90_days", "octo-org", "app", "write")
		with data.pat.settings as acme
		with pat.token as replaced_token
		with replaced_tokens as {"github_pat_bob_90_days": record}
		with pat.grant as mock_grant
		with pat.org_role as mock_org_role
		with pat.user as mock_user
		with pat.repository as mock_repository
		with time.now_ns as now
	reason := too_long("octo-org", fine_grained_name, 366, "the acme enterprise", tc.lifetime)
	d == object.union(denied("github_pat_bob_90_days", 403, reason, enterprise_doc), {"expires_at_ns": tc.expires})
}

# A token record a test replaces: `with replaced_tokens as {raw: record}`.
replaced_tokens := {}

replaced_token(raw) := replaced_tokens[raw]

test_rule_1_deny_a_record_without_user if {
	record := object.remove(tokens.ghp_bob_repo, ["user"])
	d := data.pat.decision with input as request("ghp_bob_repo", "octo-org", "app", "read")
		with data.pat.settings as acme
		with pat.token as replaced_token
		with replaced_tokens as {"ghp_bob_repo": record}
		with time.now_ns as now
	reason := "Bad credentials: the token's record has no user; create a new token"
	d == object.union(denied("ghp_bob_repo", 401, reason, auth_doc), {"user": null})
}

test_deny_incomplete_records[note] if {
	some note, tc in {
		"classic without scopes": {"remove": "scopes", "status": 404, "reason": no_repo_scope("octo-org"), "doc": token_doc, "kind": "classic"},
		"without kind": {"remove": "kind", "status": 403, "reason": "the token's kind is not supported by this policy", "doc": token_doc, "kind": null},
	}
	record := object.remove(tokens.ghp_bob_repo, [tc.remove])
	d := data.pat.decision with input as request("ghp_bob_repo", "octo-org", "app", "read")
		with data.pat.settings as acme
		with pat.token as replaced_token
		with replaced_tokens as {"ghp_bob_repo": record}
		with pat.grant as mock_grant
		with pat.org_role as mock_org_role
		with pat.user as mock_user
		with pat.repository as mock_repository
		with time.now_ns as now
	d == object.union(denied("ghp_bob_repo", tc.status, tc.reason, tc.doc), {"kind": tc.kind})
}

test_deny_fine_grained_record_without_resource_owner if {
	record := object.remove(tokens.github_pat_bob_app, ["resource_owner"])
	d := data.pat.decision with input as request("github_pat_bob_app", "octo-org", "app", "read")
		with data.pat.settings as acme
		with pat.token as replaced_token
		with replaced_tokens as {"github_pat_bob_app": record}
		with pat.grant as mock_grant
		with pat.org_role as mock_org_role
		with pat.user as mock_user
		with pat.repository as mock_repository
		with time.now_ns as now
	reason := "Not Found: a fine-grained personal access token reaches private and internal resources of its resource owner only, and this one belongs to ; create a token for octo-org"
	d == denied("github_pat_bob_app", 404, reason, token_doc)
}
