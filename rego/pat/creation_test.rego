# Rules 21 and 29: the creation check, data.pat.creation. No built-in is mocked: the check must
# not call any.
package pat_test

new_token(fields) := object.union(
	{
		"kind": "fine_grained", "user": "bob", "resource_owner": "octo-org", "repository_selection": "selected",
		"created_at_ns": created, "expires_at_ns": in_days(90),
	},
	fields,
)

create(token, role, settings) := result if {
	result := data.pat.creation with input as {"token": token, "role": role} with data.pat.settings as settings
}

create_without_role(token, settings) := result if {
	result := data.pat.creation with input as {"token": token} with data.pat.settings as settings
}

created_ok(grant_state, limit) := {"allowed": true, "errors": [], "grant_state": grant_state, "limit_days": limit}

refused(errors, grant_state, limit) := {"allowed": false, "errors": errors, "grant_state": grant_state, "limit_days": limit}

test_rule_21_grant_state[note] if {
	some note, tc in {
		"member: pending": {"token": {}, "role": "member", "settings": acme, "want": created_ok("pending", 366)},
		"organization owner: approved": {"token": {"user": "alice"}, "role": "owner", "settings": acme, "want": created_ok("approved", 366)},
		"enterprise owner: approved": {"token": {"user": "erin"}, "role": "member", "settings": acme, "want": created_ok("approved", 366)},
		"approval disabled by the organization": {"token": {}, "role": "member", "settings": with_settings({}, {"fine_grained_approval": "disable"}), "want": created_ok("approved", 366)},
		"approval disabled by the enterprise": {"token": {}, "role": "member", "settings": with_settings({"fine_grained_approval": "disable"}, {"fine_grained_approval": "require"}), "want": created_ok("approved", 366)},
		"approval required by the enterprise": {"token": {}, "role": "member", "settings": with_settings({"fine_grained_approval": "require"}, {"fine_grained_approval": "disable"}), "want": created_ok("pending", 366)},
		"standalone organization requires by default": {"token": {"resource_owner": "solo-org"}, "role": "member", "settings": {}, "want": created_ok("pending", 366)},
		"public repositories only: no grant": {"token": {"repository_selection": "public"}, "role": "member", "settings": acme, "want": created_ok(null, 366)},
		"public repositories and a repository permission: pending": {"token": {"repository_selection": "public", "permissions": {"metadata": "read", "contents": "read"}}, "role": "member", "settings": acme, "want": created_ok("pending", 366)},
		"public repositories and metadata: write: pending": {"token": {"repository_selection": "public", "permissions": {"metadata": "write"}}, "role": "member", "settings": acme, "want": created_ok("pending", 366)},
		"public repositories and metadata: read only: no grant": {"token": {"repository_selection": "public", "permissions": {"metadata": "read"}}, "role": "member", "settings": acme, "want": created_ok(null, 366)},
		"public repositories and organization_secrets: pending": {"token": {"repository_selection": "public", "permissions": {"organization_secrets": "read"}}, "role": "member", "settings": acme, "want": created_ok("pending", 366)},
		"public repositories and an organization permission: pending": {"token": {"repository_selection": "public", "permissions": {"metadata": "read", "members": "write"}}, "role": "member", "settings": acme, "want": created_ok("pending", 366)},
		"public repositories, organization permission, owner: approved": {"token": {"user": "alice", "repository_selection": "public", "permissions": {"members": "write"}}, "role": "owner", "settings": acme, "want": created_ok("approved", 366)},
		"the user's own token: no grant": {"token": {"resource_owner": "bob", "repository_selection": "all"}, "role": null, "settings": acme, "want": created_ok(null, null)},
		"classic: no grant": {"token": {"kind": "classic", "resource_owner": "", "repository_selection": "", "expires_at_ns": null}, "role": null, "settings": acme, "want": created_ok(null, null)},
	}
	create(new_token(tc.token), tc.role, tc.settings) == tc.want
}

not_a_member := "bob is not a member of octo-org: only members of octo-org can create fine-grained personal access tokens for it; ask an owner of octo-org for membership"

test_rule_21_deny_non_members[note] if {
	some note, tc in {
		"outside collaborator": {"role": "outside_collaborator"},
		"unknown role": {"role": "maintainer"},
	}
	create(new_token({}), tc.role, acme) == refused([not_a_member], "pending", 366)
}

test_rule_21_deny_without_any_role if {
	create_without_role(new_token({}), acme) == refused([not_a_member], "pending", 366)
}

creation_too_long(org, days, setter, lifetime) := sprintf(
	"%s forbids access via a fine-grained personal access token if the token's lifetime is greater than %d days: the policy is set by %s; %s; choose an expiration of %d days or less",
	[org, days, setter, lifetime, days],
)

test_rule_29_allow_within_the_limit[note] if {
	some note, tc in {
		"90 days under 366": {"token": {}, "role": "member", "settings": acme, "want": created_ok("pending", 366)},
		"exactly at the limit": {"token": {}, "role": "member", "settings": with_settings({}, {"fine_grained_max_lifetime_days": 90}), "want": created_ok("pending", 90)},
		"no limit at all": {"token": {"expires_at_ns": null}, "role": "member", "settings": with_settings({"fine_grained_max_lifetime_days": null}, {}), "want": created_ok("pending", null)},
		"exempt organization owner": {"token": {"user": "alice", "expires_at_ns": null}, "role": "owner", "settings": with_settings({"exempt_administrators": true}, {}), "want": created_ok("approved", null)},
		"exempt enterprise owner": {"token": {"user": "erin", "expires_at_ns": in_days(400)}, "role": "member", "settings": with_settings({"exempt_administrators": true}, {}), "want": created_ok("approved", null)},
		"exempt owner of a standalone organization": {"token": {"resource_owner": "solo-org", "expires_at_ns": in_days(400)}, "role": "owner", "settings": {"organizations": {"solo-org": {"exempt_administrators": true}}}, "want": created_ok("approved", null)},
	}
	create(new_token(tc.token), tc.role, tc.settings) == tc.want
}

test_rule_29_deny_beyond_the_limit[note] if {
	some note, tc in {
		"enterprise default": {"token": {"expires_at_ns": in_days(400)}, "settings": acme, "limit": 366, "error": creation_too_long("octo-org", 366, "the acme enterprise", lasts(400))},
		"organization tightens": {"token": {}, "settings": with_settings({}, {"fine_grained_max_lifetime_days": 30}), "limit": 30, "error": creation_too_long("octo-org", 30, "the octo-org organization", lasts(90))},
		"one second over": {"token": {"expires_at_ns": in_days(90) + 1000000000}, "settings": with_settings({"fine_grained_max_lifetime_days": 90}, {}), "limit": 90, "error": creation_too_long("octo-org", 90, "the acme enterprise", lasts(91))},
		"no expiry": {"token": {"expires_at_ns": null}, "settings": acme, "limit": 366, "error": creation_too_long("octo-org", 366, "the acme enterprise", no_expiry)},
		"expiry absent": {"token": {}, "drop": true, "settings": acme, "limit": 366, "error": creation_too_long("octo-org", 366, "the acme enterprise", no_expiry)},
		"standalone organization default": {"token": {"resource_owner": "solo-org", "expires_at_ns": in_days(367)}, "settings": {}, "limit": 366, "error": creation_too_long("solo-org", 366, "the solo-org organization", lasts(367))},
	}
	token := object.remove(new_token(tc.token), {x | tc.drop; x := "expires_at_ns"})
	create(token, "member", tc.settings) == refused([tc.error], "pending", tc.limit)
}

test_rule_29_deny_lists_every_error if {
	token := new_token({"expires_at_ns": in_days(400)})
	want := refused([not_a_member, creation_too_long("octo-org", 366, "the acme enterprise", lasts(400))], "pending", 366)
	create(token, "outside_collaborator", acme) == want
}

test_deny_creation_input_problems[note] if {
	some note, tc in {
		"unknown kind": {"token": {"kind": "oauth"}, "errors": [`token.kind must be "classic" or "fine_grained"`], "grant": null, "limit": null},
		"no user": {"token": {"user": ""}, "errors": ["token.user must be a non-empty string"], "grant": "pending", "limit": 366},
		"no resource owner": {"token": {"resource_owner": ""}, "errors": ["a fine-grained personal access token needs a resource owner: the user or an organization"], "grant": null, "limit": null},
		"creation time not a number": {"token": {"created_at_ns": "yesterday", "expires_at_ns": null}, "errors": ["token.created_at_ns must be a number"], "grant": "pending", "limit": 366},
		"bad expiry": {"token": {"expires_at_ns": "soon"}, "errors": [creation_too_long("octo-org", 366, "the acme enterprise", no_expiry), "token.expires_at_ns must be a number or null"], "grant": "pending", "limit": 366},
		"expires before it is created": {"token": {"expires_at_ns": created - day}, "errors": ["the token must expire after it is created"], "grant": "pending", "limit": 366},
	}
	create(new_token(tc.token), "member", acme) == refused(tc.errors, tc.grant, tc.limit)
}

test_creation_without_settings if {
	result := data.pat.creation with input as {"token": new_token({}), "role": "member"}
	result == created_ok("pending", 366)
}

test_deny_creation_without_fields[note] if {
	some note, tc in {
		"no kind": {"remove": "kind", "errors": [`token.kind must be "classic" or "fine_grained"`], "grant": null, "limit": null},
		"no creation time": {"remove": "created_at_ns", "errors": ["token.created_at_ns must be a number"], "grant": "pending", "limit": 366},
	}
	create(object.remove(new_token({}), [tc.remove]), "member", acme) == refused(tc.errors, tc.grant, tc.limit)
}

create_managed(token, managed_by, settings) := result if {
	result := data.pat.creation with input as {"token": token, "managed_by": managed_by} with data.pat.settings as settings
}

own_token(fields) := new_token(object.union({"user": "mia", "resource_owner": "mia", "repository_selection": "all"}, fields))

test_rule_27_deny_creation_beyond_the_managed_users_enterprise_limit[note] if {
	some note, tc in {
		"enterprise default": {"token": {"expires_at_ns": in_days(400)}, "settings": acme, "limit": 366, "error": creation_too_long("acme", 366, "the acme enterprise", lasts(400))},
		"enterprise limit": {"token": {}, "settings": with_settings({"fine_grained_max_lifetime_days": 30}, {}), "limit": 30, "error": creation_too_long("acme", 30, "the acme enterprise", lasts(90))},
		"no expiry": {"token": {"expires_at_ns": null}, "settings": acme, "limit": 366, "error": creation_too_long("acme", 366, "the acme enterprise", no_expiry)},
		"names in another case": {"token": {"resource_owner": "Mia", "expires_at_ns": in_days(400)}, "managed_by": "ACME", "settings": acme, "limit": 366, "error": creation_too_long("acme", 366, "the acme enterprise", lasts(400))},
		"the enterprise's owner, exemption off": {"token": {"user": "erin", "resource_owner": "erin", "expires_at_ns": in_days(400)}, "settings": acme, "limit": 366, "error": creation_too_long("acme", 366, "the acme enterprise", lasts(400))},
	}
	managed_by := object.get(tc, "managed_by", "acme")
	create_managed(own_token(tc.token), managed_by, tc.settings) == refused([tc.error], null, tc.limit)
}

test_rule_27_allow_creation_within_or_outside_the_enterprise_limit[note] if {
	some note, tc in {
		"within the enterprise's limit": {"token": {}, "managed_by": "acme", "settings": acme, "want": created_ok(null, 366)},
		"not a managed user": {"token": {"expires_at_ns": in_days(400)}, "managed_by": null, "settings": acme, "want": created_ok(null, null)},
		"no enterprise limit": {"token": {"expires_at_ns": null}, "managed_by": "acme", "settings": with_settings({"fine_grained_max_lifetime_days": null}, {}), "want": created_ok(null, null)},
		"the enterprise's owner, exempt": {"token": {"user": "erin", "resource_owner": "erin", "expires_at_ns": in_days(400)}, "managed_by": "acme", "settings": with_settings({"exempt_administrators": true}, {}), "want": created_ok(null, null)},
		"a classic token": {"token": {"kind": "classic", "resource_owner": "", "repository_selection": "", "expires_at_ns": null}, "managed_by": "acme", "settings": acme, "want": created_ok(null, null)},
	}
	create_managed(own_token(tc.token), tc.managed_by, tc.settings) == tc.want
}

test_rule_27_organization_tokens_keep_the_organizations_limit if {
	token := new_token({"user": "mia", "expires_at_ns": in_days(400)})
	want := refused([creation_too_long("octo-org", 366, "the acme enterprise", lasts(400))], "pending", 366)
	data.pat.creation with input as {"token": token, "role": "member", "managed_by": "acme"} with data.pat.settings as acme == want
}

test_creation_names_in_another_case if {
	token := new_token({"resource_owner": "OCTO-ORG", "expires_at_ns": in_days(100)})
	want := refused([creation_too_long("octo-org", 90, "the octo-org organization", lasts(100))], "pending", 90)
	create(token, "member", with_settings({}, {"fine_grained_max_lifetime_days": 90})) == want
}

# A token that creates a token (the admin API) cannot make one that outlives it or reaches
# further than it; the CLI gives no creator and is not held to it.
create_by(token, creator) := result if {
	result := data.pat.creation with input as {"token": token, "role": "member", "creator": creator}
		with data.pat.settings as acme
}

outreach(what) := sprintf("a token cannot create one that reaches further than it: %s, or ask an operator (opa-pat token create)", [what])

test_creation_by_a_token[note] if {
	some note, tc in {
		"classic within the creator's scopes": {"token": {"kind": "classic", "scopes": ["repo", "user"]}, "creator": {"scopes": ["user", "repo"], "expires_at_ns": null}, "errors": []},
		"classic scopes the creator's include": {"token": {"kind": "classic", "scopes": ["public_repo", "read:org", "read:user", "repo:status"]}, "creator": {"scopes": ["user", "repo", "admin:org"], "expires_at_ns": null}, "errors": []},
		"write:org does not include admin:org": {"token": {"kind": "classic", "scopes": ["admin:org", "read:org"]}, "creator": {"scopes": ["user", "write:org"], "expires_at_ns": null}, "errors": [outreach(`the token making this request lacks the "admin:org" scope; create the token with one that has it`)]},
		"classic beyond the creator's scopes": {"token": {"kind": "classic", "scopes": ["delete_repo", "repo", "user"]}, "creator": {"scopes": ["user"], "expires_at_ns": null}, "errors": [outreach(`the token making this request lacks the scopes "delete_repo", "repo"; create the token with one that has them`)]},
		"fine-grained repository permissions need repo": {"token": {"permissions": {"contents": "write", "issues": "read", "metadata": "read"}}, "creator": {"scopes": ["user"], "expires_at_ns": null}, "errors": [outreach(`the permissions "contents", "issues", "metadata" need the "repo" scope, which the token making this request lacks; create the token with one that has it`)]},
		"fine-grained organization permissions need admin:org": {"token": {"permissions": {"members": "read", "organization_secrets": "write", "contents": "read"}}, "creator": {"scopes": ["user", "repo"], "expires_at_ns": null}, "errors": [outreach(`the permissions "members", "organization_secrets" need the "admin:org" scope, which the token making this request lacks; create the token with one that has it`)]},
		"unprefixed organization permissions need what the gate asks": {"token": {"permissions": {"personal_access_tokens": "write", "team_discussions": "read", "issue_types": "read", "contents": "read"}}, "creator": {"scopes": ["user", "repo"], "expires_at_ns": null}, "errors": [
			outreach(`the permissions "issue_types", "personal_access_tokens" need the "admin:org" scope, which the token making this request lacks; create the token with one that has it`),
			outreach(`the permissions "team_discussions" need the "read:discussion" or "write:discussion" scope, which the token making this request lacks; create the token with one that has it`),
		]},
		"fine-grained within repo and admin:org": {"token": {"permissions": {"members": "read", "contents": "write"}}, "creator": {"scopes": ["user", "repo", "admin:org"], "expires_at_ns": null}, "errors": []},
		"public repositories: reads need nothing": {"token": {"repository_selection": "public", "permissions": {"contents": "read", "metadata": "read"}}, "creator": {"scopes": ["user"], "expires_at_ns": null}, "errors": []},
		"public repositories: writes need public_repo": {"token": {"repository_selection": "public", "permissions": {"issues": "write"}}, "creator": {"scopes": ["user"], "expires_at_ns": null}, "errors": [outreach(`the permissions "issues" need the "public_repo" scope, which the token making this request lacks; create the token with one that has it`)]},
		"public repositories: repo includes public_repo": {"token": {"repository_selection": "public", "permissions": {"issues": "write"}}, "creator": {"scopes": ["user", "repo"], "expires_at_ns": null}, "errors": []},
		"expires with the creator": {"token": {"kind": "classic", "scopes": [], "expires_at_ns": in_days(30)}, "creator": {"scopes": ["user"], "expires_at_ns": in_days(30)}, "errors": []},
		"outlives the creator": {"token": {"kind": "classic", "scopes": [], "expires_at_ns": in_days(30) + 1000000000}, "creator": {"scopes": ["user"], "expires_at_ns": in_days(30)}, "errors": [sprintf("a token cannot create one that outlives it: the token making this request expires at %s and the new one at %s; choose an expiration on or before then", [second(in_days(30)), second(in_days(30) + 1000000000)])]},
		"no expiry beside an expiring creator": {"token": {"kind": "classic", "scopes": [], "expires_at_ns": null}, "creator": {"scopes": ["user"], "expires_at_ns": in_days(30)}, "errors": [sprintf("a token cannot create one that outlives it: the token making this request expires at %s and the new one has no expiration date; choose an expiration on or before then", [second(in_days(30))])]},
		"a creator without expiry bounds nothing": {"token": {"kind": "classic", "scopes": [], "expires_at_ns": null}, "creator": {"scopes": ["user"], "expires_at_ns": null}, "errors": []},
	}
	got := create_by(new_token(tc.token), tc.creator)
	got.errors == tc.errors
}

second(ns) := time.format([ns, "UTC", "2006-01-02T15:04:05Z07:00"])

test_creation_by_the_cli_has_no_creator if {
	create(new_token({"kind": "classic", "scopes": ["delete_repo"], "expires_at_ns": null}), "member", acme).errors == []
}

# F1 (rule 11): a token creates no fine-grained token with a permission whose requests the Envoy
# gate and the decision would refuse the creator: for every request the new token could make with
# its permissions, the scopes the gate asks a personal access token (classic) (the gate's tables
# and routes, creation.rego's _gate_needs).
lacks_for(perms, scopes) := outreach(sprintf("the permissions %s need the %s scope, which the token making this request lacks; create the token with one that has it", [perms, scopes]))

test_creation_reaches_no_further_than_the_gate_asks[note] if {
	some note, tc in {
		"repo does not create workflows: write": {"token": {"permissions": {"workflows": "write", "contents": "write"}}, "scopes": ["user", "repo"], "errors": [lacks_for(`"workflows"`, `"workflow"`)]},
		"repo and workflow create workflows: write": {"token": {"permissions": {"workflows": "write", "contents": "write"}}, "scopes": ["user", "repo", "workflow"], "errors": []},
		"repo does not create administration: write (DELETE /repos/{o}/{r})": {"token": {"permissions": {"administration": "write"}}, "scopes": ["user", "repo", "admin:org"], "errors": [lacks_for(`"administration"`, `"delete_repo"`)]},
		"administration: write on the organization (POST /orgs/{org}/repos/...) takes admin:org": {"token": {"permissions": {"administration": "write"}}, "scopes": ["user", "repo", "delete_repo"], "errors": [lacks_for(`"administration"`, `"admin:org"`)]},
		"repo creates administration: read": {"token": {"permissions": {"administration": "read"}}, "scopes": ["user", "repo"], "errors": []},
		"repo does not create codespaces": {"token": {"permissions": {"codespaces": "read"}}, "scopes": ["user", "repo"], "errors": [lacks_for(`"codespaces"`, `"codespace"`)]},
		"admin:org does not create organization_hooks": {"token": {"repository_selection": "public", "permissions": {"organization_hooks": "write"}}, "scopes": ["user", "admin:org"], "errors": [lacks_for(`"organization_hooks"`, `"admin:org_hook"`)]},
		"admin:org_hook creates organization_hooks": {"token": {"repository_selection": "public", "permissions": {"organization_hooks": "write"}}, "scopes": ["user", "admin:org_hook"], "errors": []},
		"admin:org does not create organization_projects": {"token": {"repository_selection": "public", "permissions": {"organization_projects": "read"}}, "scopes": ["user", "admin:org", "repo"], "errors": [lacks_for(`"organization_projects"`, `"project" or "read:project"`)]},
		"write needs project itself": {"token": {"repository_selection": "public", "permissions": {"organization_projects": "write"}}, "scopes": ["user", "read:project", "repo"], "errors": [lacks_for(`"organization_projects"`, `"project"`)]},
		"admin:org does not create team_discussions: write": {"token": {"repository_selection": "public", "permissions": {"team_discussions": "write"}}, "scopes": ["user", "admin:org", "read:discussion"], "errors": [lacks_for(`"team_discussions"`, `"write:discussion"`)]},
		"admin:org does not create custom runner images": {"token": {"repository_selection": "public", "permissions": {"organization_runner_custom_images": "write"}}, "scopes": ["user", "admin:org"], "errors": [lacks_for(`"organization_runner_custom_images"`, `"manage_runners:org"`)]},
		"admin:org does not create network configurations": {"token": {"repository_selection": "public", "permissions": {"organization_network_configurations": "write"}}, "scopes": ["user", "admin:org", "read:network_configurations"], "errors": [lacks_for(`"organization_network_configurations"`, `"write:network_configurations"`)]},
		"read:org does not create members: read (organization roles take admin:org)": {"token": {"repository_selection": "public", "permissions": {"members": "read"}}, "scopes": ["user", "read:org"], "errors": [lacks_for(`"members"`, `"admin:org"`)]},
		"user alone: metadata on all repositories": {"token": {"repository_selection": "all", "permissions": {}}, "scopes": ["user"], "errors": [lacks_for(`"metadata"`, `"repo"`)]},
		"user alone: metadata on selected repositories": {"token": {"repository_selection": "selected", "repositories": ["app"], "permissions": {"metadata": "read"}}, "scopes": ["user", "public_repo"], "errors": [lacks_for(`"metadata"`, `"repo"`)]},
		"user alone: metadata on public repositories": {"token": {"repository_selection": "public", "permissions": {"metadata": "read"}}, "scopes": ["user"], "errors": []},
		"public repositories: the organization's code scanning alerts": {"token": {"repository_selection": "public", "permissions": {"security_events": "read"}}, "scopes": ["user"], "errors": [lacks_for(`"security_events"`, `"repo" or "security_events"`)]},
		"the audit log takes read:audit_log": {"token": {"repository_selection": "public", "permissions": {"organization_administration": "read"}}, "scopes": ["user", "admin:org", "repo"], "errors": [lacks_for(`"organization_administration"`, `"read:audit_log"`)]},
		"every scope the gate asks": {"token": {"permissions": {"workflows": "write", "administration": "write", "organization_hooks": "write", "organization_projects": "write", "team_discussions": "write", "codespaces": "write"}}, "scopes": ["user", "repo", "workflow", "delete_repo", "admin:org_hook", "project", "write:discussion", "codespace", "admin:org"], "errors": []},
	}
	got := create_by(new_token(tc.token), {"kind": "classic", "scopes": tc.scopes, "created_at_ns": created, "expires_at_ns": null})
	got.errors == tc.errors
}

# F3 (rules 13-16, 24-28): the token making the request must itself reach the organization it
# makes a fine-grained token for; what the organization refuses it, a token it makes would do.
refused_creator(org, reason) := sprintf("a token cannot create one that reaches further than it: %s refuses the token making this request (%s); create the token with one that %s lets through, or ask an operator (opa-pat token create)", [org, reason, org])

create_in(token, role, creator, settings) := result if {
	result := data.pat.creation with input as {"token": token, "role": role, "creator": creator}
		with data.pat.settings as settings
}

test_creation_by_a_token_the_organization_refuses[note] if {
	classic_creator := {"kind": "classic", "scopes": ["user", "repo"], "created_at_ns": created, "expires_at_ns": in_days(90)}
	some note, tc in {
		"classic access restricted by the organization": {
			"settings": with_settings({}, {"classic_access": "restrict"}), "token": {}, "role": "member",
			"errors": [refused_creator("octo-org", "octo-org forbids access via a personal access token (classic): the policy is set by the octo-org organization; use a fine-grained personal access token instead")],
		},
		"classic access restricted by the enterprise, an owner, public repositories": {
			"settings": with_settings({"classic_access": "restrict"}, {}), "token": {"user": "alice", "repository_selection": "public"}, "role": "owner",
			"errors": [refused_creator("octo-org", "octo-org forbids access via a personal access token (classic): the policy is set by the acme enterprise; use a fine-grained personal access token instead")],
		},
		"a classic lifetime limit the creator breaks (rule 26)": {
			"settings": with_settings({}, {"classic_max_lifetime_days": 30}), "token": {"expires_at_ns": in_days(20)}, "role": "member",
			"errors": [refused_creator("octo-org", "octo-org forbids access via a personal access token (classic) if the token's lifetime is greater than 30 days: the policy is set by the octo-org organization; the token's lifetime is 90 days; regenerate the token with an expiration of 30 days or less")],
		},
		"a classic lifetime limit the creator keeps": {"settings": with_settings({}, {"classic_max_lifetime_days": 90}), "token": {}, "role": "member", "errors": []},
		"exempt administrators (rule 28)": {"settings": with_settings({"exempt_administrators": true}, {"classic_max_lifetime_days": 30}), "token": {"user": "alice", "expires_at_ns": in_days(20)}, "role": "owner", "errors": []},
		"classic access allowed": {"settings": acme, "token": {}, "role": "member", "errors": []},
		"a token for the user's own account": {"settings": with_settings({}, {"classic_access": "restrict"}), "token": {"resource_owner": "bob"}, "role": "member", "errors": []},
		"a classic token": {"settings": with_settings({}, {"classic_access": "restrict"}), "token": {"kind": "classic", "resource_owner": "", "scopes": ["repo"]}, "role": "member", "errors": []},
	}
	got := create_in(new_token(tc.token), tc.role, classic_creator, tc.settings)
	got.errors == tc.errors
}

test_creation_by_the_cli_ignores_the_creators_policy if {
	create(new_token({}), "member", with_settings({}, {"classic_access": "restrict"})).errors == []
}

# Account permissions (gpg_keys, email_addresses, ...): the gate routes no /user endpoint; a
# service asks the decision itself, on the user's own account (resource.owner the user, no
# repository). There a fine-grained token holds the permission whatever its repository selection,
# and the decision asks a personal access token (classic) for GitHub's scope of the permission
# (rule 11, _classic_account_scopes), or repo where GitHub has none. A token creates such a
# permission only when it holds that scope, also for a token limited to public repositories
# (GitHub's default), which needed nothing to read and public_repo to write before.
account_permissions := [
	"blocking", "codespaces_user_secrets", "copilot_editor_context", "copilot_messages", "copilot_requests",
	"email_addresses", "followers", "gists", "git_signing_ssh_public_keys", "git_ssh_keys", "gpg_keys",
	"interaction_limits", "knowledge_bases", "plan", "private_repository_invitations", "profile", "starring",
	"user_events", "user_models", "watching",
]

# GitHub's other spellings and opa-pat's earlier names of account permissions, which a creation
# may give and a service may ask for.
account_spellings := {"emails": "email_addresses", "keys": "git_ssh_keys", "models": "user_models", "ssh_signing_keys": "git_signing_ssh_public_keys"}

own_account_token(selection, permissions) := new_token({"resource_owner": "bob", "repository_selection": selection, "permissions": permissions})

gpg_write := `"admin:gpg_key" or "write:gpg_key"`

gpg_read := `"admin:gpg_key" or "read:gpg_key" or "write:gpg_key"`

test_creation_of_account_permissions[note] if {
	some note, tc in {
		"read:gpg_key creates gpg_keys: read": {"token": own_account_token("public", {"gpg_keys": "read"}), "scopes": ["read:gpg_key"], "errors": []},
		"read:gpg_key does not create gpg_keys: write": {"token": own_account_token("public", {"gpg_keys": "write"}), "scopes": ["read:gpg_key"], "errors": [lacks_for(`"gpg_keys"`, gpg_write)]},
		"admin:gpg_key includes write:gpg_key": {"token": own_account_token("public", {"gpg_keys": "write"}), "scopes": ["admin:gpg_key"], "errors": []},
		"repo does not stand in for read:gpg_key": {"token": own_account_token("public", {"gpg_keys": "read"}), "scopes": ["user", "repo"], "errors": [lacks_for(`"gpg_keys"`, gpg_read)]},
		"user creates what it covers, under either spelling": {"token": own_account_token("public", {"emails": "write", "profile": "write", "followers": "write", "blocking": "write", "plan": "read"}), "scopes": ["user"], "errors": []},
		"user:email and read:user read but do not write": {"token": own_account_token("public", {"email_addresses": "write", "profile": "write"}), "scopes": ["user:email", "read:user"], "errors": [lacks_for(`"email_addresses", "profile"`, `"user"`)]},
		"user:email does not read the profile": {"token": own_account_token("public", {"email_addresses": "read", "profile": "write"}), "scopes": ["user:email"], "errors": [lacks_for(`"profile"`, `"user"`)]},
		"keys: the public_key scopes": {"token": own_account_token("public", {"keys": "write"}), "scopes": ["read:public_key", "admin:gpg_key"], "errors": [lacks_for(`"keys"`, `"admin:public_key" or "write:public_key"`)]},
		"all repositories: metadata needs repo, the account permission its own scope": {"token": own_account_token("all", {"git_ssh_keys": "write"}), "scopes": ["user"], "errors": [lacks_for(`"git_ssh_keys"`, `"admin:public_key" or "write:public_key"`), lacks_for(`"metadata"`, `"repo"`)]},
		"gists need gist": {"token": own_account_token("public", {"gists": "write"}), "scopes": ["user", "repo"], "errors": [lacks_for(`"gists"`, `"gist"`)]},
		"watching and starring": {"token": own_account_token("public", {"watching": "write", "starring": "write"}), "scopes": ["notifications", "public_repo"], "errors": []},
		"notifications does not star": {"token": own_account_token("public", {"starring": "read"}), "scopes": ["notifications"], "errors": [lacks_for(`"starring"`, `"public_repo" or "repo"`)]},
		"codespace:secrets": {"token": own_account_token("public", {"codespaces_user_secrets": "write"}), "scopes": ["codespace:secrets"], "errors": []},
		"repo:invite": {"token": own_account_token("public", {"private_repository_invitations": "read"}), "scopes": ["repo:invite"], "errors": []},
		"no GitHub scope: repo, not user": {"token": own_account_token("public", {"user_models": "read", "copilot_requests": "write", "user_events": "read"}), "scopes": ["user", "public_repo"], "errors": [lacks_for(`"copilot_requests", "user_events", "user_models"`, `"repo"`)]},
		"an earlier name of an account permission": {"token": own_account_token("public", {"models": "read", "ssh_signing_keys": "read"}), "scopes": ["user", "public_repo", "read:ssh_signing_key"], "errors": [lacks_for(`"models"`, `"repo"`)]},
		"beside a repository permission: each names its own": {"token": own_account_token("public", {"gpg_keys": "write", "issues": "write"}), "scopes": ["user"], "errors": [lacks_for(`"gpg_keys"`, gpg_write), lacks_for(`"issues"`, `"public_repo"`)]},
		"an organization's token: the same scopes": {"token": new_token({"repository_selection": "public", "permissions": {"gpg_keys": "write"}}), "scopes": ["user", "public_repo"], "errors": [lacks_for(`"gpg_keys"`, gpg_write)]},
		"GitHub's scopes create every account permission": {"token": own_account_token("public", {name: "write" | some name in account_permissions}), "scopes": ["user", "repo", "admin:gpg_key", "admin:public_key", "admin:ssh_signing_key", "gist", "notifications", "codespace"], "errors": []},
		"and on all repositories": {"token": own_account_token("all", {"gpg_keys": "write", "watching": "read"}), "scopes": ["repo", "write:gpg_key"], "errors": []},
	}
	got := create_by(tc.token, {"kind": "classic", "scopes": tc.scopes, "created_at_ns": created, "expires_at_ns": null})
	got.errors == tc.errors
}

# The creation check and the decision agree on every account permission, in every spelling, level
# and creator: the creation allows a permission at a level exactly when the decision allows the
# creator (a personal access token (classic) with those scopes) every request the new token could
# make with it on the user's own account, which the new token, limited to public repositories, may
# make.
tokens["ghp_bob_account_scopes"] := classic(60, "bob", {"user", "public_repo", "admin:gpg_key", "admin:public_key", "admin:ssh_signing_key", "gist", "notifications", "codespace", "copilot"}, in_days(180))

tokens["ghp_bob_user_repo"] := classic(61, "bob", {"user", "repo"}, in_days(180))

tokens["ghp_bob_admin_gpg_key"] := classic(62, "bob", {"admin:gpg_key"}, in_days(180))

tokens["github_pat_bob_account_read"] := fine_grained(63, "bob", "bob", "public", set(), {name: "read" | some name in account_permissions}, in_days(90))

tokens["github_pat_bob_account_write"] := fine_grained(64, "bob", "bob", "public", set(), {name: "write" | some name in account_permissions}, in_days(90))

tokens["ghp_bob_read_scopes"] := classic(65, "bob", {"read:gpg_key", "read:public_key", "read:ssh_signing_key", "read:user", "user:email", "user:follow", "repo:invite", "codespace:secrets"}, in_days(180))

tokens["ghp_bob_user"] := classic(66, "bob", {"user"}, in_days(180))

tokens["ghp_bob_user_email"] := classic(67, "bob", {"user:email"}, in_days(180))

tokens["ghp_bob_notifications"] := classic(68, "bob", {"notifications", "gist"}, in_days(180))

account_request(raw, action, permission) := org_request(raw, "bob", action, permission)

level_actions := {"read": ["read"], "write": ["read", "write"]}

# The permissions a creation's errors name ("the permissions "a", "b" need ...").
named_permissions(errors) := {name |
	some msg in errors
	some match in regex.find_all_string_submatch_n(`the permissions ((?:"[a-z_]+"(?:, )?)+) need`, msg, -1)
	some quoted in split(match[1], ", ")
	name := trim(quoted, `"`)
}

account_names := {name | some name in account_permissions} | {name | some name, _ in account_spellings}

test_creation_of_account_permissions_follows_the_decision[raw] if {
	some raw in ["ghp_bob_account_scopes", "ghp_bob_user_repo", "ghp_bob_read_scopes", "ghp_bob_user", "ghp_bob_repo", "ghp_bob_notifications"]
	denied := {[name, a] | some name in account_names; some a in ["read", "write"]; not decide(account_request(raw, a, name)).allow}
	every level, actions in level_actions {
		# One creation per level, with every account permission: each refused one is named.
		token := own_account_token("public", {name: level | some name in account_names})
		creator := {"kind": "classic", "scopes": tokens[raw].scopes, "created_at_ns": created, "expires_at_ns": null}
		refused_names := named_permissions(create_by(token, creator).errors)
		refused_names == {name | some [name, a] in denied; a in actions}
	}
}

# The new token, limited to public repositories, makes every request its level reaches.
test_account_permissions_reach_the_users_account_whatever_the_selection if {
	every name in account_permissions {
		every level, actions in level_actions {
			every a in actions {
				decide(account_request(sprintf("github_pat_bob_account_%s", [level]), a, name)).allow
			}
		}
	}
}

# What the decision asks on the user's own account, word for word: GitHub's scope of a personal
# access token (classic), the read scopes to read and the write scopes to write (404 without any
# of them, 403 with a read scope alone), unless the service names other scopes; the permission of
# a fine-grained token, whatever its repository selection.
test_account_permissions_decision[note] if {
	no_gpg_read := sprintf(`Not Found: a personal access token (classic) needs the %s scope to read the "gpg_keys" of bob; regenerate the token with one of them`, [gpg_read])
	no_gpg_write := sprintf(`Not Found: a personal access token (classic) needs the %s scope to write the "gpg_keys" of bob; regenerate the token with one of them`, [gpg_write])
	read_only := sprintf(`%s: a personal access token (classic) needs the %s scope to write the "gpg_keys" of bob; regenerate the token with one of them`, [not_accessible, gpg_write])
	some note, tc in {
		"read:gpg_key reads": {"raw": "ghp_bob_read_scopes", "action": "read", "want": allowed("ghp_bob_read_scopes")},
		"read:gpg_key sees the keys but does not write them: 403": {"raw": "ghp_bob_read_scopes", "action": "write", "want": denied("ghp_bob_read_scopes", 403, read_only, token_doc)},
		"admin:gpg_key writes": {"raw": "ghp_bob_admin_gpg_key", "action": "write", "want": allowed("ghp_bob_admin_gpg_key")},
		"repo does not read them: 404": {"raw": "ghp_bob_repo", "action": "read", "want": denied("ghp_bob_repo", 404, no_gpg_read, token_doc)},
		"user does not write them: 404": {"raw": "ghp_bob_user", "action": "write", "want": denied("ghp_bob_user", 404, no_gpg_write, token_doc)},
		"a public resource, a write without the scope: 403": {"raw": "ghp_bob_user", "action": "write", "visibility": "public", "want": denied("ghp_bob_user", 403, sprintf(`%s: a personal access token (classic) needs the %s scope to write the "gpg_keys" of bob; regenerate the token with one of them`, [not_accessible, gpg_write]), token_doc)},
		"a public resource, a read: the floor": {"raw": "ghp_bob_user", "action": "read", "visibility": "public", "want": allowed("ghp_bob_user")},
		"GitHub's scope, named by the service": {"raw": "ghp_bob_admin_gpg_key", "action": "write", "classic_scopes": ["admin:gpg_key"], "want": allowed("ghp_bob_admin_gpg_key")},
		"repo, where the service names GitHub's scope": {"raw": "ghp_bob_repo", "action": "write", "classic_scopes": ["admin:gpg_key"], "want": denied("ghp_bob_repo", 403, `Resource not accessible by personal access token: a personal access token (classic) needs the "admin:gpg_key" scope to write this resource of bob; regenerate the token with that scope`, token_doc)},
		"repo, where the service names repo": {"raw": "ghp_bob_repo", "action": "write", "classic_scopes": ["repo"], "want": allowed("ghp_bob_repo")},
		"fine-grained, public repositories, held at write": {"raw": "github_pat_bob_account_write", "action": "write", "want": allowed("github_pat_bob_account_write")},
		"fine-grained, held at read, a write": {"raw": "github_pat_bob_account_read", "action": "write", "want": denied("github_pat_bob_account_read", 403, needs("gpg_keys", "write", `the token has "read"`), token_doc)},
		"fine-grained, not held": {"raw": "github_pat_bob_own", "action": "read", "want": denied("github_pat_bob_own", 403, needs("gpg_keys", "read", "the token does not have it"), token_doc)},
	}
	named := {k: v | some k, v in tc; k == "classic_scopes"}
	req := object.union(account_request(tc.raw, tc.action, "gpg_keys"), named)
	decide(with_visibility(req, object.get(tc, "visibility", null))) == tc.want
}

with_visibility(req, null) := req

with_visibility(req, v) := object.union(req, {"resource": {"visibility": v}}) if v != null

# GitHub spells two account permissions two ways (emails and email_addresses, keys and
# git_ssh_keys): one permission each, under the REST API's name, which a token is stored with
# (plugin/permissions reads a token stored with the other spelling so). A request naming either
# is decided on it, and the message names it.
tokens["github_pat_bob_rest_spelling"] := fine_grained(69, "bob", "bob", "public", set(), {"email_addresses": "read", "git_ssh_keys": "write"}, in_days(90))

test_account_permissions_under_either_spelling[note] if {
	some note, tc in {
		"emails, read": {"raw": "github_pat_bob_rest_spelling", "permission": "emails", "action": "read", "want": allowed("github_pat_bob_rest_spelling")},
		"email_addresses, read": {"raw": "github_pat_bob_rest_spelling", "permission": "email_addresses", "action": "read", "want": allowed("github_pat_bob_rest_spelling")},
		"emails, write": {"raw": "github_pat_bob_rest_spelling", "permission": "emails", "action": "write", "want": denied("github_pat_bob_rest_spelling", 403, needs("email_addresses", "write", `the token has "read"`), token_doc)},
		"keys, write": {"raw": "github_pat_bob_rest_spelling", "permission": "keys", "action": "write", "want": allowed("github_pat_bob_rest_spelling")},
		"git_ssh_keys, write": {"raw": "github_pat_bob_rest_spelling", "permission": "git_ssh_keys", "action": "write", "want": allowed("github_pat_bob_rest_spelling")},
		"classic, emails, user:email": {"raw": "ghp_bob_user_email", "permission": "emails", "action": "read", "want": allowed("ghp_bob_user_email")},
		"classic, keys, user": {"raw": "ghp_bob_user", "permission": "keys", "action": "read", "want": denied("ghp_bob_user", 404, `Not Found: a personal access token (classic) needs the "admin:public_key" or "read:public_key" or "write:public_key" scope to read the "git_ssh_keys" of bob; regenerate the token with one of them`, token_doc)},
	}
	decide(account_request(tc.raw, tc.action, tc.permission)) == tc.want
}
