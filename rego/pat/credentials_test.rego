# Rules 1-5 (credentials and tokens) and the input contract.
package pat_test

no_token(kind, status, reasons, doc) := {
	"allow": false, "status": status, "reasons": reasons, "message": reasons[0], "documentation_url": doc,
	"token_id": null, "kind": kind, "user": null, "expires_at_ns": null,
}

malformed := "Bad credentials: the token is not a well-formed personal access token; check that you sent the whole token, or create a new one"

test_rule_1_allow_known_tokens[note] if {
	some note, raw in {
		"classic": "ghp_bob_repo",
		"fine grained": "github_pat_bob_app",
	}
	decide(request(raw, "octo-org", "app", "read")) == allowed(raw)
}

test_rule_1_deny_malformed_or_unknown[note] if {
	some note, tc in {
		"garbage": {"raw": "hunter2", "want": no_token(null, 401, [malformed], auth_doc)},
		"wrong prefix": {"raw": "gho_16C7e42F292c6912E7710c838347Ae178B4a", "want": no_token(null, 401, [malformed], auth_doc)},
		"unknown classic": {"raw": "ghp_unknown", "want": no_token("classic", 401, ["Bad credentials: the personal access token (classic) is not known; it may have been deleted; create a new token"], auth_doc)},
		"unknown fine grained": {"raw": "github_pat_unknown", "want": no_token("fine_grained", 401, ["Bad credentials: the fine-grained personal access token is not known; it may have been deleted; create a new token"], auth_doc)},
	}
	decide(request(tc.raw, "octo-org", "docs", "read")) == tc.want
}

test_rule_1_deny_store_not_ready if {
	d := data.pat.decision with input as request("ghp_bob_repo", "octo-org", "docs", "read")
		with pat.token as not_ready
		with time.now_ns as now
	d == no_token(null, 503, ["the token could not be checked because the token store or the policy settings are not ready; try again shortly"], auth_doc)
}

test_rule_1_deny_raw_token_never_in_decision if {
	d := decide(request("ghp_secretvalue", "octo-org", "docs", "read"))
	not contains(json.marshal(d), "secretvalue")
	d.status == 401
}

expired := "Bad credentials: the personal access token (classic) expired at 2026-01-31T00:00:00Z; regenerate it or create a new token"

test_rule_2_deny_expired_or_revoked[note] if {
	some note, tc in {
		"expired": {"raw": "ghp_bob_expired", "reasons": [expired]},
		"revoked": {"raw": "ghp_bob_revoked", "reasons": ["Bad credentials: the personal access token (classic) was revoked; create a new token"]},
		"expiring now, and revoked": {"raw": "ghp_bob_expired_revoked", "reasons": [
			"Bad credentials: the personal access token (classic) expired at 2026-03-01T00:00:00Z; regenerate it or create a new token",
			"Bad credentials: the personal access token (classic) was revoked; create a new token",
		]},
	}
	decide(request(tc.raw, "octo-org", "app", "read")) == denied_all(tc.raw, 401, tc.reasons, tc.reasons[0], auth_doc)
}

test_rule_2_deny_expired_even_on_the_public_floor if {
	decide(request("ghp_bob_expired", "octo-org", "docs", "read")) == denied("ghp_bob_expired", 401, expired, auth_doc)
}

test_rule_2_allow_live_and_without_expiry[note] if {
	some note, raw in {
		"expires later": "ghp_bob_repo",
		"never expires, no limit for classic": "ghp_bob_forever",
	}
	decide(request(raw, "octo-org", "app", "write")) == allowed(raw)
}

ssh_message := "PAT policy does not apply to SSH keys: the key is allowed, also when it was created through a personal access token that is now restricted or whose grant was revoked"

ssh_allowed := {
	"allow": true, "status": 200, "reasons": [ssh_message], "message": ssh_message,
	"documentation_url": "https://docs.github.com/authentication/connecting-to-github-with-ssh",
	"token_id": null, "kind": null, "user": null, "expires_at_ns": null,
}

test_rule_3_allow_ssh_key_where_pats_are_restricted[note] if {
	some note, req in {
		"private repository": {"credential": {"type": "ssh_key"}, "resource": {"owner": "octo-org", "repository": "app"}, "action": "write"},
		"no resource at all": {"credential": {"type": "ssh_key"}},
	}
	decide_with(req, with_settings({"classic_access": "restrict", "fine_grained_access": "restrict"}, {})) == ssh_allowed
}

test_rule_3_deny_the_pat_that_made_the_key if {
	settings := with_settings({"classic_access": "restrict"}, {})
	decide_with(request("ghp_bob_repo", "octo-org", "app", "write"), settings).allow == false
	decide_with({"credential": {"type": "ssh_key"}, "resource": {"owner": "octo-org", "repository": "app"}, "action": "write"}, settings) == ssh_allowed
}

test_rule_4_deny_unsupported_credentials[note] if {
	some note, tc in {
		"oauth app token": {"type": "oauth", "reason": `Requires authentication: unsupported credential type "oauth"; use a personal access token or an SSH key`},
		"installation token": {"type": "app_installation", "reason": `Requires authentication: unsupported credential type "app_installation"; use a personal access token or an SSH key`},
		"a secret in the type is not echoed": {"type": "ghs_16C7e42F292c6912E7710c838347Ae178B4a/with spaces", "reason": `Requires authentication: unsupported credential type (not shown); use a personal access token or an SSH key`},
		"a classic token in the type is not echoed": {"type": "ghp_16C7e42F292c6912E7710c838347Ae178B4a", "reason": `Requires authentication: unsupported credential type (not shown); use a personal access token or an SSH key`},
	}
	req := {"credential": {"type": tc.type, "token": "x"}, "resource": {"owner": "octo-org", "repository": "app"}, "action": "read"}
	decide(req) == no_token(null, 401, [tc.reason], auth_doc)
}

test_rule_4_allow_pat_credentials if {
	decide(request("github_pat_bob_app", "octo-org", "app", "write")) == allowed("github_pat_bob_app")
}

test_deny_input_problems[note] if {
	some note, tc in {
		"no input at all": {"input": {}, "status": 401, "reasons": [
			"Requires authentication: missing input.credential.type; send a personal access token",
			`missing input.action: it must be "read" or "write"`,
			"missing input.resource.owner: the calling service must name the resource's owner",
		]},
		"missing token": {"input": {"credential": {"type": "pat"}, "resource": {"owner": "octo-org"}, "action": "read"}, "status": 401, "reasons": ["Requires authentication: missing input.credential.token; send a personal access token"]},
		"token not a string": {"input": {"credential": {"type": "pat", "token": 123}, "resource": {"owner": "octo-org"}, "action": "read"}, "status": 401, "reasons": ["Requires authentication: invalid input.credential.token (number, not a string): it must be a string; send a personal access token"]},
		"token an object": {"input": {"credential": {"type": "pat", "token": {"raw": "ghp_x"}}, "resource": {"owner": "octo-org"}, "action": "read"}, "status": 401, "reasons": ["Requires authentication: invalid input.credential.token (object, not a string): it must be a string; send a personal access token"]},
		"empty token": {"input": {"credential": {"type": "pat", "token": ""}, "resource": {"owner": "octo-org"}, "action": "read"}, "status": 401, "reasons": ["Requires authentication: missing input.credential.token; send a personal access token"]},
		"missing owner": {"input": {"credential": {"type": "pat", "token": "hunter2"}, "resource": {"repository": "app"}, "action": "read"}, "status": 401, "reasons": [
			malformed,
			"missing input.resource.owner: the calling service must name the resource's owner",
		]},
	}
	decide(tc.input) == no_token(null, tc.status, tc.reasons, auth_doc)
}

test_deny_request_problems_with_a_live_token[note] if {
	some note, tc in {
		"missing owner": {"resource": {"repository": "app"}, "action": "read", "reason": "missing input.resource.owner: the calling service must name the resource's owner"},
		"unknown action": {"resource": {"owner": "octo-org"}, "action": "delete", "reason": `unknown action "delete": input.action must be "read" or "write"`},
		"bad permission": {"resource": {"owner": "octo-org"}, "action": "read", "permission": "Contents!", "reason": `unknown permission (not shown): input.permission must be a permission name such as "contents"`},
		"permission not a string": {"resource": {"owner": "octo-org"}, "action": "read", "permission": 7, "reason": `unknown permission (number, not a string): input.permission must be a permission name such as "contents"`},
		"permission longer than any of GitHub's": {"resource": {"owner": "octo-org"}, "action": "read", "permission": concat("", array.concat(["a"], [x | some _ in numbers.range(1, 64); x := "b"])), "reason": `unknown permission (not shown): input.permission must be a permission name such as "contents"`},
		"a token in lower case as the permission": {"resource": {"owner": "octo-org"}, "action": "read", "permission": "ghp_4rrxsmljmerih6c6pz50pojiaikw3i23ncho", "reason": "invalid input.permission (not shown): it looks like a personal access token; send the token in input.credential.token only"},
		"bad visibility": {"resource": {"owner": "octo-org", "visibility": "secret"}, "action": "read", "reason": `unknown visibility "secret": input.resource.visibility must be "public", "internal" or "private"`},
		"repository not a string": {"resource": {"owner": "octo-org", "repository": 42}, "action": "read", "reason": bad_repository},
		"empty repository": {"resource": {"owner": "octo-org", "repository": ""}, "action": "write", "reason": bad_repository},
		"repository with a space": {"resource": {"owner": "octo-org", "repository": "app "}, "action": "write", "reason": bad_repository},
		"repository ..": {"resource": {"owner": "octo-org", "repository": ".."}, "action": "read", "reason": bad_repository},
		"owner with a space": {"resource": {"owner": "acme-labs ", "repository": "app"}, "action": "write", "reason": `invalid input.resource.owner (not shown): a name holds letters, digits, "-", "_" and "." only, and is not "." or ".."`},
		"empty owner": {"resource": {"owner": ""}, "action": "read", "reason": `invalid input.resource.owner "": a name holds letters, digits, "-", "_" and "." only, and is not "." or ".."`},
		"a token as the owner": {"resource": {"owner": "ghp_16C7e42F292c6912E7710c838347Ae178B4a", "repository": "app"}, "action": "read", "reason": "invalid input.resource.owner (not shown): it looks like a personal access token; send the token in input.credential.token only"},
		"a fine-grained token as the repository": {"resource": {"owner": "octo-org", "repository": "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefgh"}, "action": "read", "reason": "invalid input.resource.repository (not shown): it looks like a personal access token; send the token in input.credential.token only"},
		"owner .": {"resource": {"owner": "."}, "action": "read", "reason": `invalid input.resource.owner ".": a name holds letters, digits, "-", "_" and "." only, and is not "." or ".."`},
		"action missing": {"resource": {"owner": "octo-org"}, "reason": `missing input.action: it must be "read" or "write"`},
		"action null": {"resource": {"owner": "octo-org"}, "action": null, "reason": `missing input.action: it must be "read" or "write"`},
		"action not a string": {"resource": {"owner": "octo-org"}, "action": true, "reason": `unknown action (boolean, not a string): input.action must be "read" or "write"`},
		"owner not a string": {"resource": {"owner": 7}, "action": "read", "reason": `invalid input.resource.owner (number, not a string): a name holds letters, digits, "-", "_" and "." only, and is not "." or ".."`},
	}
	req := object.union(
		{"credential": {"type": "pat", "token": "ghp_bob_repo"}},
		object.remove(tc, ["reason"]),
	)
	decide(req) == denied("ghp_bob_repo", 403, tc.reason, input_doc)
}

bad_repository := `invalid input.resource.repository: it must be a repository name (letters, digits, "-", "_" and "."), or absent for an organization-level resource`

test_null_permission_counts_as_absent if {
	req := {"credential": {"type": "pat", "token": "ghp_bob_repo"}, "resource": {"owner": "octo-org", "repository": "app"}, "action": "read", "permission": null}
	decide(req) == allowed("ghp_bob_repo")
}

test_allow_null_repository_and_visibility_count_as_absent if {
	req := {"credential": {"type": "pat", "token": "ghp_bob_repo"}, "resource": {"owner": "octo-org", "repository": null, "visibility": null}, "action": "read"}
	decide(req) == allowed("ghp_bob_repo")
}

# Rule 5: opa-pat checks the token side only; the upstream service checks the user's own
# permissions. bob's classic token with repo reaches alice's private repository as far as PAT
# policy goes; without repo it does not.
test_rule_5_allow_token_side_only if {
	decide(request("ghp_bob_repo", "alice", "site", "write")) == allowed("ghp_bob_repo")
}

test_rule_5_deny_when_the_token_side_lacks_it if {
	decide(request("ghp_bob_none", "alice", "site", "read")) == denied(
		"ghp_bob_none", 404,
		`Not Found: a personal access token (classic) needs the "repo" scope to reach private and internal resources of alice; regenerate the token with the repo scope`,
		token_doc,
	)
}

# data.pat.allow is the boolean entrypoint; it agrees with the decision.
test_allow_entrypoint[note] if {
	some note, tc in {
		"allowed": {"input": request("ghp_bob_repo", "octo-org", "app", "write"), "want": true},
		"ssh key": {"input": {"credential": {"type": "ssh_key"}}, "want": true},
		"denied": {"input": request("ghp_bob_none", "octo-org", "app", "read"), "want": false},
		"no input": {"input": {}, "want": false},
	}
	got := data.pat.allow with input as tc.input
		with data.pat.settings as acme
		with pat.token as mock_token
		with pat.grant as mock_grant
		with pat.org_role as mock_org_role
		with pat.user as mock_user
		with pat.repository as mock_repository
		with time.now_ns as now
	got == tc.want
}

# Only a token's shape is refused as a name: long names, and names that start like a prefix, are names.
test_long_names_are_names if {
	data.pat._name("ghp-tools-for-the-release-automation-of-everything") == "ghp-tools-for-the-release-automation-of-everything"
	data.pat._name("ghp_tools") == "ghp_tools"
	data.pat._name("GHP_16C7e42F292c6912E7710c838347Ae178B4a-x") == "ghp_16c7e42f292c6912e7710c838347ae178b4a-x"
	not data.pat._name("GHP_16C7e42F292c6912E7710c838347Ae178B4a")
}
