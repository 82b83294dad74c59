package pat.envoy_requirements_test

# Endpoints with more than one requirement, decided by the real data.pat.decision over a small
# world: bob is a member of octo-org, whose repository app is private; his fine-grained tokens
# are approved for octo-org and hold the permissions their names say.

import data.pat.envoy

day := 86400000000000

tokens := {
	"fg_workflows_contents_read": fine_grained({"workflows": "write", "contents": "read"}),
	"fg_workflows_contents_write": fine_grained({"workflows": "write", "contents": "write"}),
	"fg_contents_write": fine_grained({"contents": "write"}),
	"fg_pages": fine_grained({"pages": "write"}),
	"fg_pages_administration": fine_grained({"pages": "write", "administration": "write"}),
	"fg_pull_requests": fine_grained({"pull_requests": "write"}),
	"fg_contents_read": fine_grained({"contents": "read"}),
	"fg_actions": fine_grained({"actions": "write"}),
	"fg_administration_members": fine_grained({"administration": "write", "members": "read"}),
	"fg_administration": fine_grained({"administration": "write"}),
	"fg_members": fine_grained({"members": "write"}),
	"ghp_repo": classic({"repo"}),
	"ghp_repo_delete": classic({"repo", "delete_repo"}),
	"ghp_read_org": classic({"read:org"}),
	"ghp_audit_log": classic({"read:audit_log"}),
	"ghp_public_repo": classic({"public_repo"}),
	"ghp_none": classic(set()),
	"ghp_read_hook": classic({"read:repo_hook"}),
	"ghp_write_hook": classic({"write:repo_hook"}),
	"ghp_admin_hook": classic({"admin:repo_hook"}),
	"ghp_public_write_hook": classic({"public_repo", "write:repo_hook"}),
	"ghp_status": classic({"repo:status"}),
	"ghp_admin_org": classic({"admin:org"}),
	"fg_deployments": fine_grained({"deployments": "write"}),
	"fg_security_events": fine_grained({"security_events": "write"}),
	"fg_secret_scanning": fine_grained({"secret_scanning_alerts": "write"}),
	"fg_administration_read": fine_grained({"administration": "read"}),
	"fg_administration_contents": fine_grained({"administration": "write", "contents": "read"}),
	"fg_advisories": fine_grained({"repository_advisories": "write"}),
	"fg_org_administration": fine_grained({"organization_administration": "write"}),
	"fg_custom_images": fine_grained({"organization_runner_custom_images": "write"}),
	"fg_team_discussions": fine_grained({"team_discussions": "write"}),
	"fg_hooks_read": fine_grained({"repository_hooks": "read"}),
	"fg_codespaces": fine_grained({"codespaces": "write"}),
	"ghp_repo_codespace": classic({"repo", "codespace"}),
	"ghp_codespace": classic({"codespace"}),
	"fg_custom_properties": fine_grained({"organization_custom_properties": "write"}),
	"fg_security_events_read": fine_grained({"security_events": "read"}),
	"fg_advisories_read": fine_grained({"repository_advisories": "read"}),
	"ghp_repo_project": classic({"repo", "project"}),
	"ghp_write_org": classic({"write:org"}),
	"ghp_copilot": classic({"manage_billing:copilot"}),
	"fg_copilot_metrics": fine_grained({"organization_copilot_metrics": "read"}),
	"fg_copilot_seats": fine_grained({"organization_copilot_seat_management": "read"}),
	"fg_custom_roles": fine_grained({"organization_custom_roles": "write"}),
	"fg_custom_roles_read": fine_grained({"organization_custom_roles": "read"}),
	"fg_org_administration_read": fine_grained({"organization_administration": "read"}),
	"fg_members_read": fine_grained({"members": "read"}),
	"ghp_runners": classic({"manage_runners:org"}),
}

fine_grained(permissions) := {
	"well_formed": true, "found": true, "kind": "fine_grained", "id": 7, "user": "bob", "name": "t",
	"created_at_ns": time.now_ns() - day, "expires_at_ns": time.now_ns() + (30 * day), "revoked": false,
	"scopes": set(), "resource_owner": "octo-org", "repository_selection": "all", "repositories": set(),
	"permissions": object.union({"metadata": "read"}, permissions),
}

classic(scopes) := {
	"well_formed": true, "found": true, "kind": "classic", "id": 8, "user": "bob", "name": "t",
	"created_at_ns": time.now_ns() - day, "expires_at_ns": time.now_ns() + (30 * day), "revoked": false,
	"scopes": scopes,
}

mock_token(raw) := tokens[raw]

mock_grant(_, _) := {"id": 1, "state": "approved", "reason": "", "reviewer": "alice", "updated_at_ns": 0}

mock_org_role("bob", "octo-org") := "member"

mock_user("bob") := {"login": "bob", "managed_by": null}

mock_repository("octo-org", "app") := {"owner": "octo-org", "name": "app", "visibility": "private"}

mock_repository("octo-org", "docs") := {"owner": "octo-org", "name": "docs", "visibility": "public"}

request(method, target, raw) := {
	"attributes": {"request": {"http": {"method": method, "path": target, "headers": {"authorization": concat(" ", ["Bearer", raw])}}}},
	"parsed_path": split(trim_left(split(target, "?")[0], "/"), "/"),
	"parsed_query": {},
}

decide(method, target, raw) := [d.allow, d.status, d.message] if {
	d := envoy.decision with input as request(method, target, raw)
		with pat.token as mock_token
		with pat.grant as mock_grant
		with pat.org_role as mock_org_role
		with pat.user as mock_user
		with pat.repository as mock_repository
}

allowed := [true, 200, null]

needs(permission, level, held) := [false, 403, sprintf("Resource not accessible by personal access token: the request needs the %q permission at %q or above and %s; edit the token's permissions", [permission, level, held])]

lacks := "the token does not have it"

test_also[note] if {
	workflow := "/repos/octo-org/app/contents/.github/workflows/ci.yml"
	pages := "/repos/octo-org/app/pages"
	team := "/orgs/octo-org/teams/devs/repos/octo-org/app"
	some note, tc in {
		"workflow file with contents write": {"m": "PUT", "p": workflow, "raw": "fg_workflows_contents_write", "want": allowed},
		"workflow file with contents read": {"m": "PUT", "p": workflow, "raw": "fg_workflows_contents_read", "want": needs("contents", "write", `the token has "read"`)},
		"workflow file without workflows": {"m": "DELETE", "p": workflow, "raw": "fg_contents_write", "want": needs("workflows", "write", lacks)},
		"pages with administration": {"m": "POST", "p": pages, "raw": "fg_pages_administration", "want": allowed},
		"pages without administration": {"m": "PUT", "p": pages, "raw": "fg_pages", "want": needs("administration", "write", lacks)},
		"team access with both": {"m": "PUT", "p": team, "raw": "fg_administration_members", "want": allowed},
		"team access without members": {"m": "PUT", "p": team, "raw": "fg_administration", "want": needs("members", "read", lacks)},
		"team access without administration": {"m": "DELETE", "p": team, "raw": "fg_members", "want": needs("administration", "write", lacks)},
	}
	decide(tc.m, tc.p, tc.raw) == tc.want
}

test_either[note] if {
	some note, tc in {
		"issue comment with pull_requests": {"m": "POST", "p": "/repos/octo-org/app/issues/3/comments", "raw": "fg_pull_requests", "want": allowed},
		"labels with pull_requests": {"m": "POST", "p": "/repos/octo-org/app/issues/3/labels", "raw": "fg_pull_requests", "want": allowed},
		"issue comment with neither": {"m": "POST", "p": "/repos/octo-org/app/issues/3/comments", "raw": "fg_actions", "want": needs("issues", "write", lacks)},
		"creating an issue takes issues": {"m": "POST", "p": "/repos/octo-org/app/issues", "raw": "fg_pull_requests", "want": needs("issues", "write", lacks)},
		"a pull request with contents read": {"m": "GET", "p": "/repos/octo-org/app/pulls/3", "raw": "fg_contents_read", "want": allowed},
		"pull requests with contents read": {"m": "GET", "p": "/repos/octo-org/app/pulls", "raw": "fg_contents_read", "want": needs("pull_requests", "read", lacks)},
		"a pull request with neither": {"m": "GET", "p": "/repos/octo-org/app/pulls/3", "raw": "fg_actions", "want": needs("pull_requests", "read", lacks)},
	}
	decide(tc.m, tc.p, tc.raw) == tc.want
}

classic_needs(scopes, action, owner) := [false, 403, sprintf("Resource not accessible by personal access token: a personal access token (classic) needs the %s scope to %s this resource of %s; regenerate the token with %s", [scopes, action, owner, that_scope(scopes)])]

# "that scope" after one scope, "one of them" after a list.
that_scope(scopes) := "one of them" if contains(scopes, `" or "`)

else := "that scope"

test_classic_scopes[note] if {
	some note, tc in {
		"delete with repo alone": {"m": "DELETE", "p": "/repos/octo-org/app", "raw": "ghp_repo", "want": classic_needs(`"delete_repo"`, "write", "octo-org")},
		"delete with repo and delete_repo": {"m": "DELETE", "p": "/repos/octo-org/app", "raw": "ghp_repo_delete", "want": allowed},
		"update with repo": {"m": "PATCH", "p": "/repos/octo-org/app", "raw": "ghp_repo", "want": allowed},
		"audit log with read:org": {"m": "GET", "p": "/orgs/octo-org/audit-log", "raw": "ghp_read_org", "want": classic_needs(`"read:audit_log"`, "read", "octo-org")},
		"audit log with read:audit_log": {"m": "GET", "p": "/orgs/octo-org/audit-log", "raw": "ghp_audit_log", "want": allowed},
		"create repository with read:org": {"m": "POST", "p": "/orgs/octo-org/repos", "raw": "ghp_read_org", "want": classic_needs(`"repo"`, "write", "octo-org")},
	}
	decide(tc.m, tc.p, tc.raw) == tc.want
}

test_classic_scopes_to_create_a_repository[note] if {
	some note, tc in {
		"public with public_repo": {"body": {"name": "x"}, "raw": "ghp_public_repo", "want": allowed},
		"private with public_repo": {"body": {"name": "x", "private": true}, "raw": "ghp_public_repo", "want": classic_needs(`"repo"`, "write", "octo-org")},
		"no body with public_repo": {"body": null, "raw": "ghp_public_repo", "want": classic_needs(`"repo"`, "write", "octo-org")},
		"private with repo": {"body": {"name": "x", "private": true}, "raw": "ghp_repo", "want": allowed},
	}
	d := envoy.decision with input as object.union(request("POST", "/orgs/octo-org/repos", tc.raw), {"parsed_body": tc.body})
		with pat.token as mock_token
		with pat.grant as mock_grant
		with pat.org_role as mock_org_role
		with pat.user as mock_user
		with pat.repository as mock_repository
	[d.allow, d.status, d.message] == tc.want
}

# The public floor covers what a public repository shows to everyone, not its hooks or secrets.
test_public_floor_stops_at_private_reads[note] if {
	some note, tc in {
		"contents of a public repository, without contents": {"p": "/repos/octo-org/docs/contents/README.md", "raw": "fg_actions", "want": allowed},
		"hooks of a public repository, without repository_hooks": {"p": "/repos/octo-org/docs/hooks", "raw": "fg_contents_read", "want": needs("repository_hooks", "read", lacks)},
		"an actions secret of a public repository": {"p": "/repos/octo-org/docs/actions/secrets/FOO", "raw": "fg_contents_read", "want": needs("secrets", "read", lacks)},
	}
	decide("GET", tc.p, tc.raw) == tc.want
}

delete_hook_scopes := `Resource not accessible by personal access token: a personal access token (classic) needs the "admin:repo_hook" or "repo" scope to write this resource of octo-org; regenerate the token with one of them`

# Hooks, statuses and deployments take GitHub's narrower scopes; what a public repository keeps
# from the public takes public_repo, as on GitHub.
test_classic_narrow_scopes_through_the_gate[note] if {
	some note, tc in {
		"read:repo_hook lists a private repository's hooks": {"m": "GET", "p": "/repos/octo-org/app/hooks", "raw": "ghp_read_hook", "want": allowed},
		"read:repo_hook does not create one": {"m": "POST", "p": "/repos/octo-org/app/hooks", "raw": "ghp_read_hook", "want": [false, 403, `Resource not accessible by personal access token: a personal access token (classic) needs the "admin:repo_hook" or "repo" or "write:repo_hook" scope to write the "repository_hooks" of octo-org; regenerate the token with one of them`]},
		"write:repo_hook creates one": {"m": "POST", "p": "/repos/octo-org/app/hooks", "raw": "ghp_write_hook", "want": allowed},
		"write:repo_hook pings one": {"m": "POST", "p": "/repos/octo-org/app/hooks/1/pings", "raw": "ghp_write_hook", "want": allowed},
		"write:repo_hook does not delete one": {"m": "DELETE", "p": "/repos/octo-org/app/hooks/1", "raw": "ghp_write_hook", "want": [false, 403, delete_hook_scopes]},
		"public_repo with write:repo_hook does not delete one of a private repository": {"m": "DELETE", "p": "/repos/octo-org/app/hooks/1", "raw": "ghp_public_write_hook", "want": [false, 403, delete_hook_scopes]},
		"public_repo with write:repo_hook deletes one of a public repository": {"m": "DELETE", "p": "/repos/octo-org/docs/hooks/1", "raw": "ghp_public_write_hook", "want": allowed},
		"admin:repo_hook deletes one": {"m": "DELETE", "p": "/repos/octo-org/app/hooks/1", "raw": "ghp_admin_hook", "want": allowed},
		"repo deletes one": {"m": "DELETE", "p": "/repos/octo-org/app/hooks/1", "raw": "ghp_repo", "want": allowed},
		"public_repo does not delete one of a private repository": {"m": "DELETE", "p": "/repos/octo-org/app/hooks/1", "raw": "ghp_public_repo", "want": [false, 404, `Not Found: a personal access token (classic) needs the "admin:repo_hook" or "read:repo_hook" or "repo" or "write:repo_hook" scope to reach private and internal resources of octo-org; regenerate the token with one of them`]},
		"public_repo deletes one of a public repository": {"m": "DELETE", "p": "/repos/octo-org/docs/hooks/1", "raw": "ghp_public_repo", "want": allowed},
		"public_repo lists a public repository's hooks": {"m": "GET", "p": "/repos/octo-org/docs/hooks", "raw": "ghp_public_repo", "want": allowed},
		"public_repo reads a public repository's collaborators": {"m": "GET", "p": "/repos/octo-org/docs/collaborators", "raw": "ghp_public_repo", "want": allowed},
		"no scope does not list a public repository's hooks": {"m": "GET", "p": "/repos/octo-org/docs/hooks", "raw": "ghp_none", "want": [false, 403, `Resource not accessible by personal access token: a personal access token (classic) needs the "admin:repo_hook" or "public_repo" or "read:repo_hook" or "repo" or "write:repo_hook" scope to read the "repository_hooks" of public repositories of octo-org; regenerate the token with one of them`]},
		"no scope reads a public repository's contents": {"m": "GET", "p": "/repos/octo-org/docs/contents/README.md", "raw": "ghp_none", "want": allowed},
		"repo:status sets a private commit's status": {"m": "POST", "p": "/repos/octo-org/app/statuses/abc123", "raw": "ghp_status", "want": allowed},
		"repo:status reads a private ref's combined status": {"m": "GET", "p": "/repos/octo-org/app/commits/main/status", "raw": "ghp_status", "want": allowed},
		"repo:status does not read the code": {"m": "GET", "p": "/repos/octo-org/app/contents/README.md", "raw": "ghp_status", "want": [false, 404, `Not Found: a personal access token (classic) needs the "repo" scope to reach private and internal resources of octo-org; regenerate the token with the repo scope`]},
	}
	d := envoy.decision with input as request(tc.m, tc.p, tc.raw)
		with pat.token as mock_token
		with pat.grant as mock_grant
		with pat.org_role as mock_org_role
		with pat.user as mock_user
		with pat.repository as mock_repository
	[d.allow, d.status, d.message] == tc.want
}

# Endpoints whose permission GitHub's table gives apart from their neighbours': a token with the
# neighbours' permission is refused, one with GitHub's is let through.
test_github_permission_exceptions[note] if {
	repo := "/repos/octo-org/app/"
	some note, tc in {
		"deployments of a run, with actions": {"m": "POST", "p": "actions/runs/1/pending_deployments", "raw": "fg_actions", "want": needs("deployments", "write", lacks)},
		"deployments of a run, with deployments": {"m": "POST", "p": "actions/runs/1/pending_deployments", "raw": "fg_deployments", "want": allowed},
		"a run's pending deployments, read with actions": {"m": "GET", "p": "actions/runs/1/pending_deployments", "raw": "fg_actions", "want": allowed},
		"a CodeQL database, with security_events": {"m": "GET", "p": "code-scanning/codeql/databases/java", "raw": "fg_security_events", "want": needs("contents", "read", lacks)},
		"a CodeQL database, with contents": {"m": "GET", "p": "code-scanning/codeql/databases/java", "raw": "fg_contents_read", "want": allowed},
		"an autofix commit, with security_events": {"m": "POST", "p": "code-scanning/alerts/4/autofix/commits", "raw": "fg_security_events", "want": needs("contents", "write", lacks)},
		"an autofix, with security_events": {"m": "POST", "p": "code-scanning/alerts/4/autofix", "raw": "fg_security_events", "want": allowed},
		"a push protection bypass, with secret scanning alerts": {"m": "POST", "p": "secret-scanning/push-protection-bypasses", "raw": "fg_secret_scanning", "want": needs("contents", "write", lacks)},
		"rule suites, with metadata": {"m": "GET", "p": "rulesets/rule-suites", "raw": "fg_contents_read", "want": needs("administration", "read", lacks)},
		"a ruleset's history, with administration read": {"m": "GET", "p": "rulesets/5/history", "raw": "fg_administration_read", "want": needs("administration", "write", `the token has "read"`)},
		"a ruleset's history, with administration write": {"m": "GET", "p": "rulesets/5/history", "raw": "fg_administration", "want": allowed},
		"rulesets, with metadata": {"m": "GET", "p": "rulesets", "raw": "fg_contents_read", "want": allowed},
		"Pages health, with pages": {"m": "GET", "p": "pages/health", "raw": "fg_pages", "want": needs("administration", "write", lacks)},
		"Pages health, with pages and administration": {"m": "GET", "p": "pages/health", "raw": "fg_pages_administration", "want": allowed},
		"review comments, with contents": {"m": "GET", "p": "pulls/comments", "raw": "fg_contents_read", "want": needs("pull_requests", "read", lacks)},
		"an issue, with pull_requests": {"m": "GET", "p": "issues/3", "raw": "fg_pull_requests", "want": needs("issues", "read", lacks)},
		"an issue's reactions, with pull_requests": {"m": "POST", "p": "issues/3/reactions", "raw": "fg_pull_requests", "want": needs("issues", "write", lacks)},
		"sub-issues, with pull_requests": {"m": "GET", "p": "issues/3/sub_issues", "raw": "fg_pull_requests", "want": needs("issues", "read", lacks)},
		"an issue's comments, with pull_requests": {"m": "GET", "p": "issues/3/comments", "raw": "fg_pull_requests", "want": allowed},
		"an advisory's fork, with advisories": {"m": "POST", "p": "security-advisories/GHSA-1234-5678-9abc/forks", "raw": "fg_advisories", "want": needs("administration", "write", lacks)},
		"a fork, with administration": {"m": "POST", "p": "forks", "raw": "fg_administration", "want": needs("contents", "read", lacks)},
		"a fork, with administration and contents": {"m": "POST", "p": "forks", "raw": "fg_administration_contents", "want": allowed},
		"private vulnerability reporting, read with metadata": {"m": "GET", "p": "private-vulnerability-reporting", "raw": "fg_contents_read", "want": allowed},
		"the cache's retention limit, with actions": {"m": "PUT", "p": "actions/cache/retention-limit", "raw": "fg_actions", "want": needs("administration", "write", lacks)},
	}
	decide(tc.m, concat("", [repo, tc.p]), tc.raw) == tc.want
}

test_github_org_permission_exceptions[note] if {
	some note, tc in {
		"rulesets": {"m": "GET", "p": "/orgs/octo-org/rulesets", "want": {"permission": "organization_administration", "action": "write"}},
		"a rule suite": {"m": "GET", "p": "/orgs/octo-org/rulesets/rule-suites/1", "want": {"permission": "organization_administration", "action": "write"}},
		"a member's Copilot seat": {"m": "GET", "p": "/orgs/octo-org/members/bob/copilot", "want": {
			"permission": "organization_copilot_seat_management", "action": "read",
			"classic_scopes": ["manage_billing:copilot", "read:org"],
		}},
		"a member's codespace": {"m": "DELETE", "p": "/orgs/octo-org/members/bob/codespaces/x", "want": {
			"permission": "organization_codespaces", "action": "write",
			"classic_scopes": ["admin:org"],
		}},
		"members": {"m": "GET", "p": "/orgs/octo-org/members/bob", "want": {"permission": "members", "action": "read"}},
	}
	mapped := envoy.mapped with input as request(tc.m, tc.p, "fg_members")
	object.filter(mapped, ["permission", "action", "classic_scopes"]) == tc.want
}

# Endpoints where the gate asked for another permission than GitHub's: the permission the gate
# used to ask for no longer lets a token through, GitHub's does.
test_permission_github_gives_instead[note] if {
	some note, tc in {
		"an environment's protection rule apps, with actions": {"m": "GET", "p": "/repos/octo-org/app/environments/prod/deployment_protection_rules/apps", "raw": "fg_actions", "want": needs("administration", "read", lacks)},
		"an environment's protection rule apps, with administration": {"m": "GET", "p": "/repos/octo-org/app/environments/prod/deployment_protection_rules/apps", "raw": "fg_administration_read", "want": allowed},
		"a codespace from a pull request, with pull_requests": {"m": "POST", "p": "/repos/octo-org/app/pulls/3/codespaces", "raw": "fg_pull_requests", "want": needs("codespaces", "write", lacks)},
		"a custom image, with organization administration": {"m": "DELETE", "p": "/orgs/octo-org/actions/hosted-runners/images/custom/5", "raw": "fg_org_administration", "want": needs("organization_runner_custom_images", "write", lacks)},
		"a custom image, with custom images": {"m": "DELETE", "p": "/orgs/octo-org/actions/hosted-runners/images/custom/5", "raw": "fg_custom_images", "want": allowed},
		"a team discussion's reaction, with members": {"m": "DELETE", "p": "/orgs/octo-org/teams/devs/discussions/4/reactions/8", "raw": "fg_members", "want": needs("team_discussions", "write", lacks)},
		"a team discussion's reaction, with team discussions": {"m": "DELETE", "p": "/orgs/octo-org/teams/devs/discussions/4/reactions/8", "raw": "fg_team_discussions", "want": allowed},
		"a custom image, classic admin:org alone": {"m": "GET", "p": "/orgs/octo-org/actions/hosted-runners/images/custom", "raw": "ghp_admin_org", "want": classic_needs(`"manage_runners:org"`, "read", "octo-org")},
		"a custom image, classic manage_runners:org": {"m": "GET", "p": "/orgs/octo-org/actions/hosted-runners/images/custom", "raw": "ghp_runners", "want": allowed},
	}
	decide(tc.m, tc.p, tc.raw) == tc.want
}

# Endpoints where the gate asked for more than GitHub's table. A POST GitHub counts as a read is
# still not on the public floor: a classic token needs public_repo or repo for it.
test_github_read_level[note] if {
	some note, tc in {
		"a hook pinged with repository_hooks read": {"m": "POST", "p": "/repos/octo-org/app/hooks/1/pings", "raw": "fg_hooks_read", "want": allowed},
		"a hook tested with repository_hooks read": {"m": "POST", "p": "/repos/octo-org/app/hooks/1/tests", "raw": "fg_hooks_read", "want": allowed},
		"a hook pinged with read:repo_hook": {"m": "POST", "p": "/repos/octo-org/app/hooks/1/pings", "raw": "ghp_read_hook", "want": allowed},
		"a public repository's hook pinged without a scope": {"m": "POST", "p": "/repos/octo-org/docs/hooks/1/pings", "raw": "ghp_none", "want": classic_public_read("repository_hooks", `"admin:repo_hook" or "public_repo" or "read:repo_hook" or "repo" or "write:repo_hook"`)},
		"a commit commented with contents read": {"m": "POST", "p": "/repos/octo-org/app/commits/abc123/comments", "raw": "fg_contents_read", "want": allowed},
		"a public repository's commit commented without a scope": {"m": "POST", "p": "/repos/octo-org/docs/commits/abc123/comments", "raw": "ghp_none", "want": classic_public_read("contents", `"public_repo" or "repo"`)},
		"a public repository's commit commented with public_repo": {"m": "POST", "p": "/repos/octo-org/docs/commits/abc123/comments", "raw": "ghp_public_repo", "want": allowed},
		"the cache's storage limit read with actions": {"m": "GET", "p": "/repos/octo-org/app/actions/cache/storage-limit", "raw": "fg_actions", "want": allowed},
		"an issue's field values set with pull_requests": {"m": "PUT", "p": "/repos/octo-org/app/issues/3/issue-field-values", "raw": "fg_pull_requests", "want": allowed},
		"an issue's field values read with pull_requests": {"m": "GET", "p": "/repos/octo-org/app/issues/3/issue-field-values", "raw": "fg_pull_requests", "want": needs("issues", "read", lacks)},
	}
	decide(tc.m, tc.p, tc.raw) == tc.want
}

classic_public_read(permission, scopes) := [false, 403, sprintf("Resource not accessible by personal access token: a personal access token (classic) needs the %s scope to read the %q of public repositories of octo-org; regenerate the token with one of them", [scopes, permission])]

# Newly covered repository endpoints, decided: GitHub's permission lets a token through, a
# neighbour's does not; codespaces take the codespace scope of a classic token.
test_newly_covered_repository_endpoints[note] if {
	some note, tc in {
		"codespaces with codespaces": {"m": "POST", "p": "/repos/octo-org/app/codespaces", "raw": "fg_codespaces", "want": allowed},
		"codespaces with contents": {"m": "POST", "p": "/repos/octo-org/app/codespaces", "raw": "fg_contents_write", "want": needs("codespaces", "write", lacks)},
		"codespaces with repo alone": {"m": "POST", "p": "/repos/octo-org/app/codespaces", "raw": "ghp_repo", "want": classic_needs(`"codespace"`, "write", "octo-org")},
		"codespaces with repo and codespace": {"m": "POST", "p": "/repos/octo-org/app/codespaces", "raw": "ghp_repo_codespace", "want": allowed},
		"a public repository's codespaces with codespace": {"m": "GET", "p": "/repos/octo-org/docs/codespaces", "raw": "ghp_codespace", "want": allowed},
		"a public repository's codespaces without a scope": {"m": "GET", "p": "/repos/octo-org/docs/codespaces", "raw": "ghp_none", "want": classic_needs(`"codespace"`, "read", "octo-org")},
		"a source import with contents": {"m": "PUT", "p": "/repos/octo-org/app/import", "raw": "fg_contents_write", "want": allowed},
		"a public repository's source import without a scope": {"m": "GET", "p": "/repos/octo-org/docs/import", "raw": "ghp_none", "want": classic_public_read("contents", `"public_repo" or "repo"`)},
		"a public repository's attestations without a scope": {"m": "GET", "p": "/repos/octo-org/docs/attestations/sha256:abc", "raw": "ghp_none", "want": allowed},
	}
	decide(tc.m, tc.p, tc.raw) == tc.want
}

# Newly covered organization endpoints, decided.
test_newly_covered_organization_endpoints[note] if {
	some note, tc in {
		"custom property values with custom properties": {"m": "PATCH", "p": "/orgs/octo-org/properties/values", "raw": "fg_custom_properties", "want": allowed},
		"custom property values with organization administration": {"m": "PATCH", "p": "/orgs/octo-org/properties/values", "raw": "fg_org_administration", "want": needs("organization_custom_properties", "write", lacks)},
		"custom property definitions changed, not covered": {"m": "PATCH", "p": "/orgs/octo-org/properties/schema", "raw": "fg_custom_properties", "want": [false, 404, "Not Found"]},
		"projects with classic repo alone": {"m": "GET", "p": "/orgs/octo-org/projectsV2", "raw": "ghp_repo", "want": classic_needs(`"project" or "read:project"`, "read", "octo-org")},
		"projects with classic repo and project": {"m": "GET", "p": "/orgs/octo-org/projectsV2", "raw": "ghp_repo_project", "want": allowed},
		"a role for a team with members": {"m": "PUT", "p": "/orgs/octo-org/organization-roles/teams/devs/7", "raw": "fg_members", "want": allowed},
		"a role for a team with classic write:org": {"m": "PUT", "p": "/orgs/octo-org/organization-roles/teams/devs/7", "raw": "ghp_write_org", "want": classic_needs(`"admin:org"`, "write", "octo-org")},
		"code scanning alerts with security_events": {"m": "GET", "p": "/orgs/octo-org/code-scanning/alerts", "raw": "fg_security_events_read", "want": allowed},
		"security advisories with repository_advisories read": {"m": "GET", "p": "/orgs/octo-org/security-advisories", "raw": "fg_advisories_read", "want": needs("repository_advisories", "write", `the token has "read"`)},
		"security advisories with repository_advisories write": {"m": "GET", "p": "/orgs/octo-org/security-advisories", "raw": "fg_advisories", "want": allowed},
	}
	decide(tc.m, tc.p, tc.raw) == tc.want
}

# Copilot seats take organization_copilot_seat_management or organization_administration (GitHub:
# "at least one of"); a personal access token (classic) manage_billing:copilot (or read:org to read
# them), without repo: the scopes the gate names decide an organization's own request.
test_copilot_seats[note] if {
	seats := "/orgs/octo-org/copilot/billing/seats"
	some note, tc in {
		"with organization administration": {"m": "GET", "p": seats, "raw": "fg_org_administration", "want": allowed},
		"with members": {"m": "GET", "p": seats, "raw": "fg_members", "want": needs("organization_copilot_seat_management", "read", lacks)},
		"a member's seat, with organization administration": {"m": "GET", "p": "/orgs/octo-org/members/bob/copilot", "raw": "fg_org_administration", "want": allowed},
		"adding users, with organization administration": {"m": "POST", "p": "/orgs/octo-org/copilot/billing/selected_users", "raw": "fg_org_administration", "want": allowed},
		"classic manage_billing:copilot": {"m": "GET", "p": seats, "raw": "ghp_copilot", "want": allowed},
		"classic read:org": {"m": "GET", "p": seats, "raw": "ghp_read_org", "want": allowed},
		"a member's seat changed, classic read:org": {"m": "DELETE", "p": "/orgs/octo-org/members/bob/copilot", "raw": "ghp_read_org", "want": classic_needs(`"admin:org" or "manage_billing:copilot"`, "write", "octo-org")},
		"a member's seat changed, classic admin:org": {"m": "DELETE", "p": "/orgs/octo-org/members/bob/copilot", "raw": "ghp_admin_org", "want": allowed},
		"classic audit log scope": {"m": "GET", "p": seats, "raw": "ghp_audit_log", "want": classic_needs(`"manage_billing:copilot" or "read:org"`, "read", "octo-org")},
		"classic read:org adding users": {"m": "POST", "p": "/orgs/octo-org/copilot/billing/selected_users", "raw": "ghp_read_org", "want": classic_needs(`"admin:org" or "manage_billing:copilot"`, "write", "octo-org")},
	}
	decide(tc.m, tc.p, tc.raw) == tc.want
}

# The Copilot metrics of an organization or a team (GET copilot/metrics and
# team/{team_slug}/copilot/metrics, closing down on GitHub) take the Copilot seats or the
# organization's administration, as GitHub's table has them, not organization_copilot_metrics,
# which is the daily and 28-day usage reports' (copilot/metrics/reports/...).
test_copilot_metrics[note] if {
	metrics := "/orgs/octo-org/copilot/metrics"
	team := "/orgs/octo-org/team/devs/copilot/metrics"
	report := "/orgs/octo-org/copilot/metrics/reports/organization-28-day/latest"
	some note, tc in {
		"with the Copilot seats": {"m": "GET", "p": metrics, "raw": "fg_copilot_seats", "want": allowed},
		"with organization administration": {"m": "GET", "p": metrics, "raw": "fg_org_administration", "want": allowed},
		"with the Copilot metrics reports' permission": {"m": "GET", "p": metrics, "raw": "fg_copilot_metrics", "want": needs("organization_copilot_seat_management", "read", lacks)},
		"a team's, with the Copilot seats": {"m": "GET", "p": team, "raw": "fg_copilot_seats", "want": allowed},
		"a team's, with organization administration": {"m": "GET", "p": team, "raw": "fg_org_administration", "want": allowed},
		"a team's, with the Copilot metrics reports' permission": {"m": "GET", "p": team, "raw": "fg_copilot_metrics", "want": needs("organization_copilot_seat_management", "read", lacks)},
		"a team's, classic manage_billing:copilot": {"m": "GET", "p": team, "raw": "ghp_copilot", "want": allowed},
		"a team's, classic read:org": {"m": "GET", "p": team, "raw": "ghp_read_org", "want": allowed},
		"a team's, classic audit log scope": {"m": "GET", "p": team, "raw": "ghp_audit_log", "want": classic_needs(`"manage_billing:copilot" or "read:org"`, "read", "octo-org")},
		"a report, with the Copilot metrics reports' permission": {"m": "GET", "p": report, "raw": "fg_copilot_metrics", "want": allowed},
		"a report, with the Copilot seats": {"m": "GET", "p": report, "raw": "fg_copilot_seats", "want": needs("organization_copilot_metrics", "read", lacks)},
	}
	decide(tc.m, tc.p, tc.raw) == tc.want
}

# GitHub Enterprise Cloud: custom repository roles are read with organization_custom_roles or the
# organization's administration ("at least one of"), changed with organization_custom_roles alone;
# a team's external group takes members at write, also to read it.
test_enterprise_cloud_organization_endpoints[note] if {
	roles := "/orgs/octo-org/custom-repository-roles"
	some note, tc in {
		"custom repository roles with their permission": {"m": "GET", "p": roles, "raw": "fg_custom_roles_read", "want": allowed},
		"custom repository roles with organization administration": {"m": "GET", "p": roles, "raw": "fg_org_administration_read", "want": allowed},
		"custom repository roles with members": {"m": "GET", "p": roles, "raw": "fg_members", "want": needs("organization_custom_roles", "read", lacks)},
		"a custom repository role created, with organization administration": {"m": "POST", "p": roles, "raw": "fg_org_administration", "want": needs("organization_custom_roles", "write", lacks)},
		"a custom repository role created, with its permission": {"m": "POST", "p": roles, "raw": "fg_custom_roles", "want": allowed},
		"custom repository roles, classic repo": {"m": "GET", "p": roles, "raw": "ghp_repo", "want": allowed},
		"custom repository roles, classic read:org": {"m": "GET", "p": roles, "raw": "ghp_read_org", "want": classic_needs(`"admin:org" or "repo"`, "read", "octo-org")},
		"a custom repository role created, classic repo": {"m": "POST", "p": roles, "raw": "ghp_repo", "want": classic_needs(`"admin:org"`, "write", "octo-org")},
		"a team's external group with members read": {"m": "GET", "p": "/orgs/octo-org/teams/devs/external-groups", "raw": "fg_members_read", "want": needs("members", "write", `the token has "read"`)},
		"a team's external group with members write": {"m": "GET", "p": "/orgs/octo-org/teams/devs/external-groups", "raw": "fg_members", "want": allowed},
	}
	decide(tc.m, tc.p, tc.raw) == tc.want
}
