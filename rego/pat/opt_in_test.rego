# Rules 30-31 (fine-grained opt-in) and the order of evaluation (section 9).
package pat_test

not_opted_in := "octo-org has not opted in to fine-grained personal access tokens: the acme enterprise has not enabled them and octo-org has not opted in; ask an owner of octo-org to opt in, or use a personal access token (classic)"

test_rule_30_opt_in[note] if {
	some note, tc in {
		"enterprise opted in by default": {"enterprise": {}, "org": {}, "allow": true},
		"enterprise out, organization out": {"enterprise": {"fine_grained_opt_in": false}, "org": {}, "allow": false},
		"enterprise out, organization in": {"enterprise": {"fine_grained_opt_in": false}, "org": {"fine_grained_opt_in": true}, "allow": true},
		"enterprise in, organization out": {"enterprise": {"fine_grained_opt_in": true}, "org": {"fine_grained_opt_in": false}, "allow": true},
	}
	want := opt_in_want(tc.allow)
	decide_with(request("github_pat_bob_app", "octo-org", "app", "write"), with_settings(tc.enterprise, tc.org)) == want
}

opt_in_want(true) := allowed("github_pat_bob_app")

opt_in_want(false) := denied("github_pat_bob_app", 403, not_opted_in, enterprise_doc)

test_rule_30_allow_standalone_organizations_always_opted_in if {
	settings := {"organizations": {"solo-org": {"fine_grained_opt_in": false}}}
	decide_with(request("github_pat_bob_solo", "solo-org", "lib", "write"), settings) == allowed("github_pat_bob_solo")
}

test_rule_30_allow_public_reads_without_opt_in if {
	settings := with_settings({"fine_grained_opt_in": false}, {})
	decide_with(request("github_pat_bob_app", "octo-org", "docs", "read"), settings) == allowed("github_pat_bob_app")
}

test_rule_31_allow_own_resources_whatever_the_opt_in[note] if {
	some note, tc in {
		"unmanaged user": {"raw": "github_pat_bob_own", "owner": "bob", "repository": "dotfiles"},
		"managed user": {"raw": "github_pat_mia_own_400", "owner": "mia", "repository": "notes"},
	}
	settings := with_settings({"fine_grained_opt_in": false, "fine_grained_max_lifetime_days": null}, {})
	decide_with(request(tc.raw, tc.owner, tc.repository, "write"), settings) == allowed(tc.raw)
}

test_rule_31_deny_the_organization_s_resources_without_opt_in if {
	settings := with_settings({"fine_grained_opt_in": false}, {})
	decide_with(org_request("github_pat_bob_admin", "octo-org", "read", "members"), settings) == denied("github_pat_bob_admin", 403, not_opted_in, enterprise_doc)
}

# Section 9: the first failing rule decides the status; every reason that applies is listed.
test_order_first_failing_rule_decides[note] if {
	some note, tc in {
		"reach (404) before access policy": {
			"raw": "github_pat_bob_app", "repository": "ci", "settings": with_settings({"fine_grained_access": "restrict"}, {}),
			"status": 404, "message": not_selected("octo-org/ci"), "doc": token_doc,
			"reasons": [not_selected("octo-org/ci"), forbids_fine_grained("the acme enterprise", use_classic)],
		},
		"classic reach before access policy": {
			"raw": "ghp_bob_none", "repository": "app", "settings": with_settings({}, {"classic_access": "restrict"}),
			"status": 404, "message": no_repo_scope("octo-org"), "doc": token_doc,
			"reasons": [no_repo_scope("octo-org"), forbids_classic("the octo-org organization", use_fine_grained)],
		},
		"opt-in before access policy before approval": {
			"raw": "github_pat_bob_no_grant", "repository": "app", "settings": with_settings({"fine_grained_access": "restrict", "fine_grained_opt_in": false, "fine_grained_approval": "require"}, {}),
			"status": 403, "message": not_opted_in, "doc": enterprise_doc,
			"reasons": [
				forbids_fine_grained("the acme enterprise", use_classic),
				not_opted_in,
				"octo-org requires approval of fine-grained personal access tokens and this token has not been approved for octo-org: the policy is set by the acme enterprise; request access to octo-org with a justification",
			],
		},
		"lifetime before access policy": {
			"raw": "github_pat_bob_forever", "repository": "app", "settings": with_settings({"fine_grained_access": "restrict"}, {}),
			"status": 403, "message": too_long("octo-org", fine_grained_name, 366, "the acme enterprise", no_expiry), "doc": enterprise_doc,
			"reasons": [too_long("octo-org", fine_grained_name, 366, "the acme enterprise", no_expiry), forbids_fine_grained("the acme enterprise", use_classic)],
		},
		"membership before permissions": {
			"raw": "github_pat_carol", "repository": "app", "settings": acme, "permission": "issues",
			"status": 403, "message": not_member("carol"), "doc": token_doc,
			"reasons": [needs("issues", "write", "the token does not have it"), not_member("carol")],
		},
	}
	req := request_for(tc.raw, "octo-org", tc.repository, "write", object.get(tc, "permission", "contents"))
	decide_with(req, tc.settings) == denied_all(tc.raw, tc.status, tc.reasons, tc.message, tc.doc)
}

test_order_credentials_before_the_token if {
	req := {"credential": {"type": "pat", "token": "ghp_bob_expired"}, "resource": {"repository": "app"}, "action": "read"}
	decide(req) == denied_all(
		"ghp_bob_expired", 401,
		[expired, "missing input.resource.owner: the calling service must name the resource's owner"],
		expired, auth_doc,
	)
}
