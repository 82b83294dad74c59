# The allowed path (_allowed_token in pat.rego) is a shortcut: it must never allow what the denial
# rules deny, and the denial rules, which reuse its base checks, must still find every reason.
# These cases were found by comparing every decision of the policy before the allowed path with
# the decisions after it, over tokens x owners x repositories x requests x settings.
package pat_test

test_deny_allowed_path_keeps_every_input_check[note] if {
	some note, tc in {
		"classic token, unknown visibility": {"raw": "ghp_bob_repo", "owner": "octo-org"},
		"classic token, unknown visibility, organization absent from the settings": {"raw": "ghp_bob_forever", "owner": "other-org"},
		"fine-grained token, unknown visibility": {"raw": "github_pat_bob_app", "owner": "octo-org"},
	}
	req := object.union(request(tc.raw, tc.owner, "app", "read"), {"resource": {"owner": tc.owner, "repository": "app", "visibility": "secret"}})
	reason := `unknown visibility "secret": input.resource.visibility must be "public", "internal" or "private"`
	decide(req) == denied(tc.raw, 403, reason, input_doc)
}

test_deny_allowed_path_keeps_the_kind_check_on_the_public_floor[note] if {
	some note, owner in {"another organization": "other-org", "the token's organization": "octo-org"}
	req := object.union(request("github_pat_bob_weird_kind", owner, "site", "read"), {"resource": {"owner": owner, "repository": "site", "visibility": "public"}})
	decide(req) == denied("github_pat_bob_weird_kind", 403, "the token's kind is not supported by this policy", token_doc)
}
