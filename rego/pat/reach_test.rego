# Rules 6-11: what fine-grained and classic tokens reach.
package pat_test

test_rule_6_allow_own_resource_owner[note] if {
	some note, tc in {
		"organization's private repository": {"raw": "github_pat_bob_app", "owner": "octo-org", "repository": "app"},
		"the user's own private repository": {"raw": "github_pat_bob_own", "owner": "bob", "repository": "dotfiles"},
		"the user's own repository, the user unknown to the store": {"raw": "github_pat_ghost_own", "owner": "ghost", "repository": "x"},
	}
	decide(request(tc.raw, tc.owner, tc.repository, "write")) == allowed(tc.raw)
}

test_rule_6_deny_other_owners_private_and_internal[note] if {
	some note, tc in {
		"private repository of another organization": {"raw": "github_pat_bob_app", "owner": "solo-org", "repository": "lib", "belongs": "octo-org"},
		"internal repository of another organization": {"raw": "github_pat_dave_solo", "owner": "octo-org", "repository": "tools", "belongs": "solo-org"},
		"the user's own repository with an organization's token": {"raw": "github_pat_bob_app", "owner": "bob", "repository": "dotfiles", "belongs": "octo-org"},
		"an organization's repository with the user's own token": {"raw": "github_pat_bob_own", "owner": "octo-org", "repository": "app", "belongs": "bob"},
		"an organization-level resource": {"raw": "github_pat_bob_app", "owner": "solo-org", "belongs": "octo-org"},
	}
	req := request(tc.raw, tc.owner, object.get(tc, "repository", null), "read")
	decide(req) == denied(tc.raw, 404, sprintf("Not Found: a fine-grained personal access token reaches private and internal resources of its resource owner only, and this one belongs to %s; create a token for %s", [tc.belongs, tc.owner]), token_doc)
}

not_selected(repository) := sprintf("Not Found: %s is not among the repositories this fine-grained personal access token was granted; edit the token's repository access", [repository])

public_only := "Not Found: this fine-grained personal access token reaches public repositories only; edit the token's repository access to include octo-org/app"

read_only := sprintf("%s: this fine-grained personal access token has read-only access to public repositories; edit the token's repository access to write to octo-org/docs", [not_accessible])

needs(permission, action, held) := sprintf(`%s: the request needs the %q permission at %q or above and %s; edit the token's permissions`, [not_accessible, permission, action, held])

test_rule_7_allow_selected_repositories[note] if {
	some note, tc in {
		"selected, read": {"raw": "github_pat_bob_app", "repository": "app", "action": "read"},
		"selected, write": {"raw": "github_pat_bob_app", "repository": "app", "action": "write"},
		"all, private": {"raw": "github_pat_bob_all_read", "repository": "ci", "action": "read"},
		"public, public read": {"raw": "github_pat_bob_public", "repository": "docs", "action": "read"},
	}
	decide(request(tc.raw, "octo-org", tc.repository, tc.action)) == allowed(tc.raw)
}

test_rule_7_allow_all_covers_internal if {
	decide_with(request("github_pat_bob_pending", "octo-org", "tools", "write"), with_settings({}, {"fine_grained_approval": "disable"})) == allowed("github_pat_bob_pending")
}

test_rule_7_deny_outside_the_selection[note] if {
	some note, tc in {
		"private, not selected": {"raw": "github_pat_bob_app", "repository": "ci", "action": "read", "status": 404, "reasons": [not_selected("octo-org/ci")]},
		"internal, not selected": {"raw": "github_pat_bob_app", "repository": "tools", "action": "read", "status": 404, "reasons": [not_selected("octo-org/tools")]},
		"public, not selected, write": {"raw": "github_pat_bob_app", "repository": "docs", "action": "write", "status": 403, "reasons": [sprintf("%s: octo-org/docs is not among the repositories this fine-grained personal access token was granted; edit the token's repository access", [not_accessible])]},
		"public selection, private": {"raw": "github_pat_bob_public", "repository": "app", "action": "read", "status": 404, "reasons": [public_only, needs("contents", "read", "the token does not have it")]},
		"public selection, public write": {"raw": "github_pat_bob_public", "repository": "docs", "action": "write", "status": 403, "reasons": [needs("contents", "write", "the token does not have it"), read_only], "message": read_only},
		"unknown repository counts as private": {"raw": "github_pat_bob_app", "repository": "ghost", "action": "read", "status": 404, "reasons": [not_selected("octo-org/ghost")]},
	}
	want := denied_all(tc.raw, tc.status, tc.reasons, object.get(tc, "message", tc.reasons[0]), token_doc)
	decide(request(tc.raw, "octo-org", tc.repository, tc.action)) == want
}

test_rule_8_allow_enough_permission[note] if {
	some note, tc in {
		"write covers read": {"raw": "github_pat_bob_app", "permission": "contents", "action": "read"},
		"write": {"raw": "github_pat_bob_app", "permission": "contents", "action": "write"},
		"read": {"raw": "github_pat_bob_app", "permission": "issues", "action": "read"},
		"metadata is always readable": {"raw": "github_pat_bob_app", "permission": "metadata", "action": "read"},
		"admin covers write": {"raw": "github_pat_bob_admin", "permission": "contents", "action": "write"},
		"metadata even when the store leaves it out": {"raw": "github_pat_bob_no_metadata", "permission": "metadata", "action": "read"},
	}
	decide(request_for(tc.raw, "octo-org", "app", tc.action, tc.permission)) == allowed(tc.raw)
}

test_rule_8_deny_missing_permission[note] if {
	some note, tc in {
		"read is not write": {"raw": "github_pat_bob_app", "permission": "issues", "action": "write", "held": `the token has "read"`},
		"not granted": {"raw": "github_pat_bob_app", "permission": "pull_requests", "action": "read", "held": "the token does not have it"},
		"metadata is never writable": {"raw": "github_pat_bob_app", "permission": "metadata", "action": "write", "held": `the token has "read"`},
		"contents read only": {"raw": "github_pat_bob_all_read", "permission": "contents", "action": "write", "held": `the token has "read"`},
	}
	decide(request_for(tc.raw, "octo-org", "app", tc.action, tc.permission)) == denied(tc.raw, 403, needs(tc.permission, tc.action, tc.held), token_doc)
}

# A request that names a permission as earlier opa-pat versions did is decided on GitHub's name:
# a service that still asks for "variables" keeps the access of a token stored with it.
test_rule_8_allow_earlier_permission_names[note] if {
	some note, tc in {
		"earlier name": {"permission": "variables"},
		"GitHub's name": {"permission": "actions_variables"},
	}
	decide(request_for("github_pat_bob_variables", "octo-org", "app", "read", tc.permission)) == allowed("github_pat_bob_variables")
}

test_rule_8_deny_earlier_permission_names_by_githubs_name[note] if {
	some note, tc in {
		"variables": {"permission": "variables", "held": `the token has "read"`, "action": "write", "raw": "github_pat_bob_variables", "name": "actions_variables"},
		"ssh_signing_keys": {"permission": "ssh_signing_keys", "held": "the token does not have it", "action": "read", "raw": "github_pat_bob_app", "name": "git_signing_ssh_public_keys"},
		"models": {"permission": "models", "held": "the token does not have it", "action": "read", "raw": "github_pat_bob_app", "name": "user_models"},
	}
	decide(request_for(tc.raw, "octo-org", "app", tc.action, tc.permission)) == denied(tc.raw, 403, needs(tc.name, tc.action, tc.held), token_doc)
}

test_rule_8_allow_organization_permission if {
	decide(org_request("github_pat_bob_admin", "octo-org", "read", "members")) == allowed("github_pat_bob_admin")
}

test_rule_8_deny_organization_permission if {
	decide(org_request("github_pat_bob_app", "octo-org", "read", "members")) == denied("github_pat_bob_app", 403, needs("members", "read", "the token does not have it"), token_doc)
}

test_rule_9_allow_reading_public_repositories_anywhere[note] if {
	some note, tc in {
		"another organization": {"owner": "solo-org", "repository": "www"},
		"another user": {"owner": "bob", "repository": "blog"},
	}
	decide(request("github_pat_bob_app", tc.owner, tc.repository, "read")) == allowed("github_pat_bob_app")
}

test_rule_9_deny_writing_public_repositories_of_another_owner if {
	decide(request("github_pat_bob_app", "solo-org", "www", "write")) == denied(
		"github_pat_bob_app", 403,
		sprintf("%s: a fine-grained personal access token cannot write to public resources of solo-org, because its resource owner is octo-org; create a token for solo-org", [not_accessible]),
		token_doc,
	)
}

not_member(user) := sprintf("%s is not a member of octo-org: outside collaborators and former members cannot use fine-grained personal access tokens on octo-org's resources; ask an owner of octo-org for membership, or use a personal access token (classic)", [user])

test_rule_10_deny_non_members[note] if {
	some note, tc in {
		"outside collaborator": {"raw": "github_pat_carol", "user": "carol", "action": "read"},
		"no longer a member": {"raw": "github_pat_frank_octo", "user": "frank", "action": "write"},
	}
	decide(request(tc.raw, "octo-org", "app", tc.action)) == denied(tc.raw, 403, not_member(tc.user), token_doc)
}

# Where classic tokens are restricted too, the message does not suggest one.
test_rule_10_deny_non_members_classic_restricted if {
	want := "carol is not a member of octo-org: outside collaborators and former members cannot use fine-grained personal access tokens on octo-org's resources; ask an owner of octo-org for membership"
	decide_with(request("github_pat_carol", "octo-org", "app", "read"), with_settings({}, {"classic_access": "restrict"})) == denied("github_pat_carol", 403, want, token_doc)
}

test_rule_10_deny_non_members_beyond_the_floor_only[note] if {
	some note, tc in {
		"public read is the floor": {"action": "read", "want": allowed("github_pat_carol")},
		"public write is not": {"action": "write", "want": denied("github_pat_carol", 403, not_member("carol"), token_doc)},
	}
	decide(request("github_pat_carol", "octo-org", "docs", tc.action)) == tc.want
}

test_rule_10_allow_members_and_owners[note] if {
	some note, raw in {
		"member": "github_pat_bob_app",
		"owner": "github_pat_alice_400",
	}
	settings := with_settings({"fine_grained_max_lifetime_days": null}, {})
	decide_with(request(raw, "octo-org", "app", "write"), settings) == allowed(raw)
}

no_repo_scope(owner) := sprintf(`Not Found: a personal access token (classic) needs the "repo" scope to reach private and internal resources of %s; regenerate the token with the repo scope`, [owner])

no_public_repo_scope := sprintf(`%s: a personal access token (classic) needs the "public_repo" or "repo" scope to write to public repositories of octo-org; regenerate the token with one of them`, [not_accessible])

no_workflow_scope := sprintf(`%s: a personal access token (classic) needs the "workflow" scope to change workflows; regenerate the token with the workflow scope`, [not_accessible])

test_rule_11_allow_classic_scopes[note] if {
	some note, tc in {
		"repo reads private": {"raw": "ghp_bob_repo", "repository": "app", "action": "read", "permission": "contents"},
		"repo writes private": {"raw": "ghp_bob_repo", "repository": "app", "action": "write", "permission": "pull_requests"},
		"repo writes internal of the member's enterprise": {"raw": "ghp_bob_repo", "repository": "tools", "action": "write", "permission": "issues"},
		"repo writes public": {"raw": "ghp_bob_repo", "repository": "docs", "action": "write", "permission": "contents"},
		"public_repo writes public": {"raw": "ghp_bob_public_repo", "repository": "docs", "action": "write", "permission": "issues"},
		"no scope reads public": {"raw": "ghp_bob_none", "repository": "docs", "action": "read", "permission": "contents"},
		"repo reads workflows": {"raw": "ghp_bob_repo", "repository": "app", "action": "read", "permission": "workflows"},
		"workflow writes workflows": {"raw": "ghp_bob_workflow", "repository": "app", "action": "write", "permission": "workflows"},
	}
	decide(request_for(tc.raw, "octo-org", tc.repository, tc.action, tc.permission)) == allowed(tc.raw)
}

test_rule_11_deny_missing_scopes[note] if {
	some note, tc in {
		"no scope, private": {"raw": "ghp_bob_none", "repository": "app", "action": "read", "permission": "contents", "status": 404, "reasons": [no_repo_scope("octo-org")]},
		"no scope, internal": {"raw": "ghp_bob_none", "repository": "tools", "action": "read", "permission": "issues", "status": 404, "reasons": [no_repo_scope("octo-org")]},
		"public_repo, private": {"raw": "ghp_bob_public_repo", "repository": "app", "action": "read", "permission": "contents", "status": 404, "reasons": [no_repo_scope("octo-org")]},
		"no scope, public write": {"raw": "ghp_bob_none", "repository": "docs", "action": "write", "permission": "contents", "status": 403, "reasons": [no_public_repo_scope]},
		"repo without workflow": {"raw": "ghp_bob_repo", "repository": "app", "action": "write", "permission": "workflows", "status": 403, "reasons": [no_workflow_scope]},
		"public_repo without workflow, private": {"raw": "ghp_bob_public_repo", "repository": "app", "action": "write", "permission": "workflows", "status": 404, "reasons": [no_repo_scope("octo-org"), no_workflow_scope]},
	}
	decide(request_for(tc.raw, "octo-org", tc.repository, tc.action, tc.permission)) == denied_all(tc.raw, tc.status, tc.reasons, tc.reasons[0], token_doc)
}

needs_org_scope(scopes, action, permission) := sprintf(`%s: a personal access token (classic) needs the %s scope to %s the %q of octo-org; regenerate the token with %s`, [not_accessible, scopes, action, permission, that_scope(scopes)])

# "that scope" after one scope, "one of them" after a list.
that_scope(scopes) := "one of them" if contains(scopes, `" or "`)

else := "that scope"

test_rule_11_allow_organization_scopes[note] if {
	some note, tc in {
		"admin:org administers": {"raw": "ghp_alice_admin", "action": "write", "permission": "administration"},
		"admin:org reads members": {"raw": "ghp_alice_admin", "action": "read", "permission": "members"},
		"read:org reads members": {"raw": "ghp_alice_read_org", "action": "read", "permission": "members"},
		"read:org reads administration": {"raw": "ghp_alice_read_org", "action": "read", "permission": "organization_administration"},
		"admin:org administers the organization": {"raw": "ghp_alice_admin", "action": "write", "permission": "organization_administration"},
		"admin:org writes secrets": {"raw": "ghp_alice_admin", "action": "write", "permission": "organization_secrets"},
		"admin:org reads variables": {"raw": "ghp_alice_admin", "action": "read", "permission": "organization_actions_variables"},
		"admin:org registers runners": {"raw": "ghp_alice_admin", "action": "write", "permission": "organization_self_hosted_runners"},
		"admin:org blocks users": {"raw": "ghp_alice_admin", "action": "write", "permission": "organization_user_blocking"},
		"admin:org writes Dependabot secrets": {"raw": "ghp_alice_admin", "action": "write", "permission": "organization_dependabot_secrets"},
	}
	decide(org_request(tc.raw, "octo-org", tc.action, tc.permission)) == allowed(tc.raw)
}

test_rule_11_deny_missing_organization_scopes[note] if {
	some note, tc in {
		"repo does not administer": {"raw": "ghp_bob_repo", "action": "write", "permission": "administration", "scopes": `"admin:org"`},
		"read:org does not write members": {"raw": "ghp_alice_read_org", "action": "write", "permission": "members", "scopes": `"admin:org" or "write:org"`},
		"repo does not read members": {"raw": "ghp_bob_repo", "action": "read", "permission": "members", "scopes": `"admin:org" or "read:org" or "write:org"`},
		"read:org does not administer the organization": {"raw": "ghp_alice_read_org", "action": "write", "permission": "organization_administration", "scopes": `"admin:org"`},
		"read:org does not read secrets": {"raw": "ghp_alice_read_org", "action": "read", "permission": "organization_secrets", "scopes": `"admin:org"`},
		"repo does not register runners": {"raw": "ghp_bob_repo", "action": "write", "permission": "organization_self_hosted_runners", "scopes": `"admin:org"`},
		"repo does not read Dependabot secrets": {"raw": "ghp_bob_repo", "action": "read", "permission": "organization_dependabot_secrets", "scopes": `"admin:org"`},
		"admin:org does not write hooks": {"raw": "ghp_alice_admin", "action": "write", "permission": "organization_hooks", "scopes": `"admin:org_hook"`},
	}
	want := needs_org_scope(tc.scopes, tc.action, tc.permission)
	decide(org_request(tc.raw, "octo-org", tc.action, tc.permission)) == denied(tc.raw, 403, want, token_doc)
}

# input.classic_scopes: a request may name the scopes a classic token needs for its action, in
# place of those rule 11 derives from the permission (GitHub's delete_repo, read:audit_log).
with_classic_scopes(request, scopes) := object.union(request, {"classic_scopes": scopes})

needs_named_scope(scopes, action, owner) := sprintf(`%s: a personal access token (classic) needs the %s scope to %s this resource of %s; regenerate the token with %s`, [not_accessible, scopes, action, owner, that_scope(scopes)])

test_rule_11_classic_scopes_named_by_the_request[note] if {
	delete_app := with_classic_scopes(request_for("ghp_bob_repo", "octo-org", "app", "write", "administration"), ["delete_repo"])
	some note, tc in {
		"repo without delete_repo": {"request": delete_app, "want": denied("ghp_bob_repo", 403, needs_named_scope(`"delete_repo"`, "write", "octo-org"), token_doc)},
		"repo and delete_repo": {"request": object.union(delete_app, {"credential": {"type": "pat", "token": "ghp_bob_repo_delete"}}), "want": allowed("ghp_bob_repo_delete")},
		"delete_repo alone, public": {
			"request": with_classic_scopes(request_for("ghp_bob_delete_repo", "octo-org", "docs", "write", "administration"), ["delete_repo"]),
			"want": allowed("ghp_bob_delete_repo"),
		},
		"delete_repo alone cannot see a private repository": {
			"request": with_classic_scopes(request_for("ghp_bob_delete_repo", "octo-org", "app", "write", "administration"), ["delete_repo"]),
			"want": denied("ghp_bob_delete_repo", 404, no_repo_scope("octo-org"), token_doc),
		},
		"read:audit_log reads the audit log": {
			"request": with_classic_scopes(org_request("ghp_alice_audit_log", "octo-org", "read", "organization_administration"), ["read:audit_log"]),
			"want": allowed("ghp_alice_audit_log"),
		},
		"read:org does not read the audit log": {
			"request": with_classic_scopes(org_request("ghp_alice_read_org", "octo-org", "read", "organization_administration"), ["read:audit_log"]),
			"want": denied("ghp_alice_read_org", 403, needs_named_scope(`"read:audit_log"`, "read", "octo-org"), token_doc),
		},
		"either of two": {
			"request": with_classic_scopes(org_request("ghp_alice_admin", "octo-org", "read", "organization_administration"), ["read:audit_log", "admin:org"]),
			"want": allowed("ghp_alice_admin"),
		},
		"fine-grained tokens ignore them": {
			"request": with_classic_scopes(request_for("github_pat_bob_app", "octo-org", "app", "read", "contents"), ["delete_repo"]),
			"want": allowed("github_pat_bob_app"),
		},
	}
	decide(tc.request) == tc.want
}

test_rule_11_invalid_classic_scopes[note] if {
	some note, scopes in {"empty": [], "not an array": "delete_repo", "not names": ["Delete Repo"], "false": false}
	d := decide(with_classic_scopes(request_for("ghp_bob_repo", "octo-org", "app", "read", "contents"), scopes))
	d.allow == false
	d.status == 403
	d.message == `invalid input.classic_scopes: it must be a non-empty array of scope names such as "delete_repo", or absent`
}

test_rule_11_null_classic_scopes_are_absent if {
	decide(with_classic_scopes(request_for("ghp_bob_repo", "octo-org", "app", "read", "contents"), null)) == allowed("ghp_bob_repo")
}

# GitHub's narrower repository scopes reach their own permission's requests in public, internal
# and private repositories, and nothing else.
test_rule_11_narrow_scopes_allow[note] if {
	some note, tc in {
		"repo:status writes a private repository's statuses": {"raw": "ghp_bob_status", "repository": "app", "action": "write", "permission": "statuses"},
		"repo:status reads an internal repository's statuses": {"raw": "ghp_bob_status", "repository": "tools", "action": "read", "permission": "statuses"},
		"repo:status writes a public repository's statuses": {"raw": "ghp_bob_status", "repository": "docs", "action": "write", "permission": "statuses"},
		"read:repo_hook reads a private repository's hooks": {"raw": "ghp_bob_read_hook", "repository": "app", "action": "read", "permission": "repository_hooks"},
		"repo_deployment creates a deployment": {"raw": "ghp_bob_deployment", "repository": "app", "action": "write", "permission": "deployments"},
		"security_events reads code scanning alerts": {"raw": "ghp_bob_security_events", "repository": "app", "action": "read", "permission": "security_events"},
		"security_events reads Dependabot alerts": {"raw": "ghp_bob_security_events", "repository": "app", "action": "read", "permission": "vulnerability_alerts"},
		"security_events dismisses a secret scanning alert": {"raw": "ghp_bob_security_events", "repository": "app", "action": "write", "permission": "secret_scanning_alerts"},
	}
	decide(request_for(tc.raw, "octo-org", tc.repository, tc.action, tc.permission)) == allowed(tc.raw)
}

test_rule_11_narrow_scopes_deny[note] if {
	some note, tc in {
		"repo:status does not read code": {
			"raw": "ghp_bob_status", "repository": "app", "action": "read", "permission": "contents", "status": 404,
			"message": no_repo_scope("octo-org"),
		},
		"repo:status does not write a public repository's code": {
			"raw": "ghp_bob_status", "repository": "docs", "action": "write", "permission": "contents", "status": 403,
			"message": no_public_repo_scope,
		},
		"read:repo_hook sees hooks but does not write them": {
			"raw": "ghp_bob_read_hook", "repository": "app", "action": "write", "permission": "repository_hooks", "status": 403,
			"message": sprintf(`%s: a personal access token (classic) needs the "admin:repo_hook" or "repo" or "write:repo_hook" scope to write the "repository_hooks" of octo-org; regenerate the token with one of them`, [not_accessible]),
		},
		"no scope, a private repository's statuses": {
			"raw": "ghp_bob_none", "repository": "app", "action": "read", "permission": "statuses", "status": 404,
			"message": `Not Found: a personal access token (classic) needs the "repo" or "repo:status" scope to reach private and internal resources of octo-org; regenerate the token with one of them`,
		},
		"public_repo, a private repository's deployments": {
			"raw": "ghp_bob_public_repo", "repository": "app", "action": "write", "permission": "deployments", "status": 404,
			"message": `Not Found: a personal access token (classic) needs the "repo" or "repo_deployment" scope to reach private and internal resources of octo-org; regenerate the token with one of them`,
		},
		"no scope, a public repository's statuses": {
			"raw": "ghp_bob_none", "repository": "docs", "action": "write", "permission": "statuses", "status": 403,
			"message": sprintf(`%s: a personal access token (classic) needs the "public_repo" or "repo" or "repo:status" scope to write to public repositories of octo-org; regenerate the token with one of them`, [not_accessible]),
		},
	}
	decide(request_for(tc.raw, "octo-org", tc.repository, tc.action, tc.permission)) == denied(tc.raw, tc.status, tc.message, token_doc)
}

# input.resource.hidden: what a public repository keeps from the public is not on the floor; a
# classic token needs public_repo (or repo, or the permission's narrower scope) to read it.
hidden(request) := object.union(request, {"resource": {"hidden": true}})

test_hidden_reads_of_a_public_repository[note] if {
	hooks := request_for("ghp_bob_none", "octo-org", "docs", "read", "repository_hooks")
	some note, tc in {
		"on the floor when not hidden": {"request": hooks, "want": allowed("ghp_bob_none")},
		"hidden, false": {"request": object.union(hooks, {"resource": {"hidden": false}}), "want": allowed("ghp_bob_none")},
		"hidden, null": {"request": object.union(hooks, {"resource": {"hidden": null}}), "want": allowed("ghp_bob_none")},
		"hidden, no scope": {"request": hidden(hooks), "want": denied("ghp_bob_none", 403, sprintf(`%s: a personal access token (classic) needs the "admin:repo_hook" or "public_repo" or "read:repo_hook" or "repo" or "write:repo_hook" scope to read the "repository_hooks" of public repositories of octo-org; regenerate the token with one of them`, [not_accessible]), token_doc)},
		"hidden, public_repo": {"request": hidden(object.union(hooks, {"credential": {"type": "pat", "token": "ghp_bob_public_repo"}})), "want": allowed("ghp_bob_public_repo")},
		"hidden, read:repo_hook": {"request": hidden(object.union(hooks, {"credential": {"type": "pat", "token": "ghp_bob_read_hook"}})), "want": allowed("ghp_bob_read_hook")},
		"hidden, a fine-grained token of another owner": {
			"request": hidden(request_for("github_pat_dave_solo", "octo-org", "docs", "read", "repository_hooks")),
			"want": denied("github_pat_dave_solo", 403, sprintf(`%s: a fine-grained personal access token cannot read the "repository_hooks" of public resources of octo-org, because its resource owner is solo-org; create a token for octo-org`, [not_accessible]), token_doc),
		},
		"hidden, a fine-grained token without the permission": {
			"request": hidden(request_for("github_pat_bob_app", "octo-org", "docs", "read", "repository_hooks")),
			"want": denied_all("github_pat_bob_app", 403, [sprintf(`%s: octo-org/docs is not among the repositories this fine-grained personal access token was granted; edit the token's repository access`, [not_accessible]), needs("repository_hooks", "read", "the token does not have it")], sprintf(`%s: octo-org/docs is not among the repositories this fine-grained personal access token was granted; edit the token's repository access`, [not_accessible]), token_doc),
		},
		"hidden, a fine-grained token for public repositories": {
			"request": hidden(request_for("github_pat_bob_public", "octo-org", "docs", "read", "repository_hooks")),
			"want": denied_all("github_pat_bob_public", 403, [needs("repository_hooks", "read", "the token does not have it"), sprintf(`%s: this fine-grained personal access token reaches only what public repositories show to everyone; edit the token's repository access to read the "repository_hooks" of octo-org/docs`, [not_accessible])], sprintf(`%s: this fine-grained personal access token reaches only what public repositories show to everyone; edit the token's repository access to read the "repository_hooks" of octo-org/docs`, [not_accessible]), token_doc),
		},
	}
	decide(tc.request) == tc.want
}

test_invalid_hidden[note] if {
	some note, value in {"a string": "yes", "a number": 1, "an array": [true]}
	d := decide(object.union(request("ghp_bob_repo", "octo-org", "docs", "read"), {"resource": {"hidden": value}}))
	[d.allow, d.status, d.message] == [false, 403, "invalid input.resource.hidden: it must be true, false or absent"]
}

test_rule_11_organization_level_resources_count_as_private[note] if {
	some note, tc in {
		"repo reads": {"raw": "ghp_bob_repo", "want": allowed("ghp_bob_repo")},
		"no scope does not": {"raw": "ghp_bob_none", "want": denied("ghp_bob_none", 404, no_repo_scope("octo-org"), token_doc)},
	}
	decide(org_request(tc.raw, "octo-org", "read", "contents")) == tc.want
}

test_deny_unsupported_token_kind if {
	decide(request("github_pat_bob_weird_kind", "octo-org", "app", "read")) == denied("github_pat_bob_weird_kind", 403, "the token's kind is not supported by this policy", token_doc)
}

test_deny_unsupported_token_kind_revoked if {
	decide(request("github_pat_weird_revoked", "octo-org", "app", "read")) == denied("github_pat_weird_revoked", 401, "Bad credentials: the personal access token was revoked; create a new token", auth_doc)
}
