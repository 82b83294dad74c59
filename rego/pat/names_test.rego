# Names are case-insensitive on GitHub: the owner and the repository are compared, and looked up
# in the settings and the store, in lower case, whatever case the caller or the record used. A
# request for "OCTO-ORG" is a request for octo-org, with octo-org's settings.
package pat_test

test_deny_names_in_another_case_get_the_organizations_settings[note] if {
	some note, tc in {
		"classic restricted": {
			"raw": "ghp_bob_repo", "owner": "OCTO-ORG", "settings": with_settings({}, {"classic_access": "restrict"}),
			"reason": forbids_classic("the octo-org organization", use_fine_grained), "doc": org_doc,
		},
		"fine-grained restricted by the enterprise": {
			"raw": "github_pat_bob_app", "owner": "Octo-Org", "settings": with_settings({"fine_grained_access": "restrict"}, {}),
			"reason": forbids_fine_grained("the acme enterprise", use_classic), "doc": enterprise_doc,
		},
		"approval pending": {
			"raw": "github_pat_bob_pending", "owner": "OCTO-ORG", "settings": acme,
			"reason": awaiting("the octo-org organization"), "doc": approval_doc,
		},
		"lifetime limit": {
			"raw": "github_pat_bob_app", "owner": "OCTO-org", "settings": with_settings({}, {"fine_grained_max_lifetime_days": 30}),
			"reason": too_long("octo-org", fine_grained_name, 30, "the octo-org organization", lasts(90)), "doc": org_doc,
		},
	}
	decide_with(request(tc.raw, tc.owner, "APP", "write"), tc.settings) == denied(tc.raw, 403, tc.reason, tc.doc)
}

test_allow_names_in_another_case[note] if {
	some note, tc in {
		"owner and repository in upper case": {"raw": "github_pat_bob_app", "owner": "OCTO-ORG", "repository": "APP"},
		"classic token": {"raw": "ghp_bob_repo", "owner": "Octo-Org", "repository": "App"},
		"a record in another case": {"raw": "github_pat_bob_mixed_case", "owner": "octo-org", "repository": "app"},
		"a record and a request in other cases": {"raw": "github_pat_bob_mixed_case", "owner": "OCTO-ORG", "repository": "aPP"},
		"the user's own repository": {"raw": "github_pat_bob_own", "owner": "Bob", "repository": "Dotfiles"},
	}
	decide(request(tc.raw, tc.owner, tc.repository, "write")) == allowed(tc.raw)
}

test_deny_names_in_another_case_outside_the_selection if {
	reason := "Not Found: octo-org/tools is not among the repositories this fine-grained personal access token was granted; edit the token's repository access"
	decide(request("github_pat_bob_mixed_case", "Octo-Org", "Tools", "write")) == denied("github_pat_bob_mixed_case", 404, reason, token_doc)
}
