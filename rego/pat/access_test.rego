# Rule 12 (the public floor) and rules 13-16 (the access policy, enterprise over organization).
package pat_test

forbids_classic(setter, instead) := sprintf("octo-org forbids access via a personal access token (classic): the policy is set by %s; %s", [setter, instead])

forbids_fine_grained(setter, instead) := sprintf("octo-org forbids access via a fine-grained personal access token: the policy is set by %s; %s", [setter, instead])

use_fine_grained := "use a fine-grained personal access token instead"

use_classic := "use a personal access token (classic) instead"

use_ssh := "use an SSH key for Git operations, or ask an owner to change the policy"

everything_closed := with_settings(
	{"classic_access": "restrict", "fine_grained_access": "restrict", "fine_grained_opt_in": false, "fine_grained_approval": "require"},
	{},
)

test_rule_12_allow_public_reads_whatever_the_policy[note] if {
	some note, raw in {
		"classic, restricted": "ghp_bob_none",
		"fine-grained, restricted and not opted in": "github_pat_bob_app",
		"grant pending": "github_pat_bob_pending",
		"grant denied": "github_pat_bob_denied",
		"grant revoked": "github_pat_bob_revoked_grant",
		"no grant": "github_pat_bob_no_grant",
		"outside collaborator": "github_pat_carol",
		"token of another organization": "github_pat_dave_solo",
	}
	decide_with(request(raw, "octo-org", "docs", "read"), everything_closed) == allowed(raw)
}

test_rule_12_allow_public_organization_level_reads if {
	req := {"credential": {"type": "pat", "token": "github_pat_bob_no_grant"}, "resource": {"owner": "octo-org", "visibility": "public"}, "action": "read", "permission": "members"}
	decide_with(req, everything_closed) == allowed("github_pat_bob_no_grant")
}

test_rule_12_deny_public_writes_go_through_the_rules[note] if {
	some note, tc in {
		"classic": {"raw": "ghp_bob_repo", "reasons": [forbids_classic("the acme enterprise", use_ssh)]},
		"fine-grained": {"raw": "github_pat_bob_90_days", "reasons": [
			forbids_fine_grained("the acme enterprise", use_ssh),
			# Classic tokens are restricted too: the message does not suggest one.
			"octo-org has not opted in to fine-grained personal access tokens: the acme enterprise has not enabled them and octo-org has not opted in; ask an owner of octo-org to opt in",
		]}}
		want := denied_all(tc.raw, 403, tc.reasons, tc.reasons[count(tc.reasons) - 1], enterprise_doc)
		decide_with(request(tc.raw, "octo-org", "docs", "write"), everything_closed) == want
	}

	test_rule_12_visibility_given_by_the_service_wins[note] if {
		some note, tc in {
			"given public": {"visibility": "public", "want": allowed("ghp_bob_none")},
			"given private": {"visibility": "private", "want": denied("ghp_bob_none", 404, no_repo_scope("octo-org"), token_doc)},
		}
		req := {"credential": {"type": "pat", "token": "ghp_bob_none"}, "resource": {"owner": "octo-org", "repository": "docs", "visibility": tc.visibility}, "action": "read"}
		decide(req) == tc.want
	}

	test_rule_13_effective_access[note] if {
		some note, tc in {
			"all defaults": {"enterprise": {}, "org": {}, "want": allowed("ghp_bob_repo")},
			"org decides, org allows": {"enterprise": {"classic_access": "org_decides"}, "org": {"classic_access": "allow"}, "want": allowed("ghp_bob_repo")},
			"org decides, org restricts": {"enterprise": {"classic_access": "org_decides"}, "org": {"classic_access": "restrict"}, "want": denied("ghp_bob_repo", 403, forbids_classic("the octo-org organization", use_fine_grained), org_doc)},
			"enterprise restricts over org allow": {"enterprise": {"classic_access": "restrict"}, "org": {"classic_access": "allow"}, "want": denied("ghp_bob_repo", 403, forbids_classic("the acme enterprise", use_fine_grained), enterprise_doc)},
			"enterprise allows over org restrict": {"enterprise": {"classic_access": "allow"}, "org": {"classic_access": "restrict"}, "want": allowed("ghp_bob_repo")},
			"kinds are separate": {"enterprise": {"fine_grained_access": "restrict"}, "org": {}, "want": allowed("ghp_bob_repo")},
		}
		decide_with(request("ghp_bob_repo", "octo-org", "app", "write"), with_settings(tc.enterprise, tc.org)) == tc.want
	}

	test_rule_13_allow_without_any_settings if {
		d := data.pat.decision with input as request("github_pat_bob_app", "octo-org", "app", "write")
			with pat.token as mock_token
			with pat.grant as mock_grant
			with pat.org_role as mock_org_role
			with pat.user as mock_user
			with pat.repository as mock_repository
			with time.now_ns as now
		d == allowed("github_pat_bob_app")
	}

	test_rule_14_deny_restricted_kind[note] if {
		some note, tc in {
			"enterprise restricts classic": {
				"raw": "ghp_bob_repo", "enterprise": {"classic_access": "restrict"}, "org": {},
				"reason": forbids_classic("the acme enterprise", use_fine_grained), "doc": enterprise_doc,
			},
			"organization restricts fine-grained": {
				"raw": "github_pat_bob_app", "enterprise": {}, "org": {"fine_grained_access": "restrict"},
				"reason": forbids_fine_grained("the octo-org organization", use_classic), "doc": org_doc,
			},
			"enterprise restricts fine-grained, organization restricts classic": {
				"raw": "github_pat_bob_app", "enterprise": {"fine_grained_access": "restrict"}, "org": {"classic_access": "restrict"},
				"reason": forbids_fine_grained("the acme enterprise", use_ssh), "doc": enterprise_doc,
			},
			"classic restricted, fine-grained not opted in": {
				"raw": "ghp_bob_repo", "enterprise": {"classic_access": "restrict", "fine_grained_opt_in": false}, "org": {},
				"reason": forbids_classic("the acme enterprise", use_ssh), "doc": enterprise_doc,
			},
		}
		decide_with(request(tc.raw, "octo-org", "app", "write"), with_settings(tc.enterprise, tc.org)) == denied(tc.raw, 403, tc.reason, tc.doc)
	}

	test_rule_14_allow_the_other_kind if {
		decide_with(request("github_pat_bob_app", "octo-org", "app", "write"), with_settings({"classic_access": "restrict"}, {})) == allowed("github_pat_bob_app")
	}

	test_rule_15_allow_user_owned_repositories_whatever_the_policy[note] if {
		some note, tc in {
			"classic on another user's private repository": {"raw": "ghp_bob_repo", "owner": "alice", "repository": "site"},
			"fine-grained on the user's own repository": {"raw": "github_pat_bob_own", "owner": "bob", "repository": "dotfiles"},
		}
		decide_with(request(tc.raw, tc.owner, tc.repository, "write"), everything_closed) == allowed(tc.raw)
	}

	test_rule_15_deny_every_visibility_of_organizations[note] if {
		some note, tc in {
			"private": {"repository": "app", "action": "read"},
			"internal": {"repository": "tools", "action": "read"},
			"public write": {"repository": "docs", "action": "write"},
			"organization-level": {"repository": null, "action": "read"},
			"unknown owner is an organization": {"owner": "ghost-org", "repository": "x", "action": "read"},
		}
		owner := object.get(tc, "owner", "octo-org")
		settings := {"organizations": {"octo-org": {"classic_access": "restrict"}, "ghost-org": {"classic_access": "restrict"}}}
		reason := sprintf("%s forbids access via a personal access token (classic): the policy is set by the %s organization; use a fine-grained personal access token instead", [owner, owner])
		decide_with(request("ghp_bob_repo", owner, tc.repository, tc.action), settings) == denied("ghp_bob_repo", 403, reason, org_doc)
	}

	test_rule_16_standalone_organizations[note] if {
		some note, tc in {
			"an enterprise's restriction does not reach outside it": {
				"settings": {"enterprises": {"acme": {"classic_access": "restrict"}}, "organizations": {"octo-org": {"enterprise": "acme"}}},
				"want": allowed("ghp_bob_repo"),
			},
			"absent from the settings: all defaults": {"settings": {}, "want": allowed("ghp_bob_repo")},
			"its own restriction": {
				"settings": {"organizations": {"solo-org": {"classic_access": "restrict"}}},
				"want": denied("ghp_bob_repo", 403, "solo-org forbids access via a personal access token (classic): the policy is set by the solo-org organization; use a fine-grained personal access token instead", org_doc),
			},
		}
		decide_with(request("ghp_bob_repo", "solo-org", "lib", "write"), tc.settings) == tc.want
	}

	test_rule_16_enterprise_absent_from_the_settings_has_defaults if {
		settings := {"organizations": {"octo-org": {"enterprise": "nowhere", "classic_access": "restrict"}}}
		decide_with(request("ghp_bob_repo", "octo-org", "app", "write"), settings) == denied("ghp_bob_repo", 403, forbids_classic("the octo-org organization", use_fine_grained), org_doc)
	}
