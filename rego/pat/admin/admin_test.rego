package pat.admin_test

import data.pat.admin

# The world: alice owns octo-org, bob is a member, erin owns the acme enterprise that octo-org
# belongs to, mallory is an outsider.
roles := {"alice/octo-org": "owner", "bob/octo-org": "member", "mallory/evil-org": "owner"}

mock_role(user, org) := roles[sprintf("%s/%s", [user, org])]

settings := {
	"enterprises": {"acme": {"owners": ["erin"]}},
	"organizations": {"octo-org": {"enterprise": "acme"}},
}

# Tokens created on 2026-01-01; the classic one never expires, the fine-grained one lives 30
# days and has an approved grant for the organization.
created := 1767225600000000000

day := 86400000000000

classic(user, scopes) := {
	"token_id": 1, "kind": "classic", "user": user, "scopes": scopes, "resource_owner": "", "permissions": {},
	"created_at_ns": created, "expires_at_ns": null,
}

fine_grained(user, owner, permissions) := {
	"token_id": 2, "kind": "fine_grained", "user": user, "scopes": [],
	"resource_owner": owner, "permissions": object.union({"metadata": "read"}, permissions),
	"created_at_ns": created, "expires_at_ns": created + (30 * day), "grant_state": "approved",
}

decide(request) := decide_in(request, settings)

decide_in(request, world) := d if {
	d := admin.decision with input as request
		with pat.org_role as mock_role
		with data.pat.settings as world
}

allowed := {"allow": true, "status": 200, "message": null}

denied(status, message) := {"allow": false, "status": status, "message": message}

must_own := "Must be an owner of the octo-org organization or of its enterprise to manage its fine-grained personal access tokens"

needs_admin_org := "Resource not accessible by personal access token: this personal access token (classic) needs the admin:org scope; create one with it or use a fine-grained token"

needs_user := "Resource not accessible by personal access token: this personal access token (classic) needs the user scope to manage your personal access tokens"

test_org_operations[note] if {
	some note, tc in {
		"owner classic lists requests": {
			"input": {"operation": "requests.list", "org": "octo-org", "caller": classic("alice", ["admin:org"])},
			"want": allowed,
		},
		"owner classic reviews": {
			"input": {"operation": "requests.review", "org": "octo-org", "caller": classic("alice", ["admin:org", "repo"])},
			"want": allowed,
		},
		"owner classic revokes": {
			"input": {"operation": "tokens.revoke", "org": "octo-org", "caller": classic("alice", ["admin:org"])},
			"want": allowed,
		},
		"owner classic without admin:org": {
			"input": {"operation": "requests.list", "org": "octo-org", "caller": classic("alice", ["repo", "read:org"])},
			"want": denied(403, needs_admin_org),
		},
		"enterprise owner classic": {
			"input": {"operation": "tokens.list", "org": "octo-org", "caller": classic("erin", ["admin:org"])},
			"want": allowed,
		},
		"member classic with admin:org": {
			"input": {"operation": "requests.review", "org": "octo-org", "caller": classic("bob", ["admin:org"])},
			"want": denied(403, must_own),
		},
		"outsider classic": {
			"input": {"operation": "requests.list", "org": "octo-org", "caller": classic("mallory", ["admin:org"])},
			"want": denied(403, must_own),
		},
		"enterprise owner of another enterprise's org": {
			"input": {"operation": "requests.list", "org": "evil-org", "caller": classic("erin", ["admin:org"])},
			"want": denied(403, "Must be an owner of the evil-org organization or of its enterprise to manage its fine-grained personal access tokens"),
		},
		"owner fine-grained read lists": {
			"input": {"operation": "requests.list", "org": "octo-org", "caller": fine_grained("alice", "octo-org", {"personal_access_token_requests": "read"})},
			"want": allowed,
		},
		"owner fine-grained write reviews": {
			"input": {"operation": "requests.review", "org": "octo-org", "caller": fine_grained("alice", "octo-org", {"personal_access_token_requests": "write"})},
			"want": allowed,
		},
		"owner fine-grained admin revokes": {
			"input": {"operation": "tokens.revoke", "org": "octo-org", "caller": fine_grained("alice", "octo-org", {"personal_access_tokens": "admin"})},
			"want": allowed,
		},
		"owner fine-grained with GitHub's organization_ spelling": {
			"input": {"operation": "tokens.revoke", "org": "octo-org", "caller": fine_grained("alice", "octo-org", {"organization_personal_access_tokens": "write"})},
			"want": allowed,
		},
		"owner fine-grained read cannot review": {
			"input": {"operation": "requests.review", "org": "octo-org", "caller": fine_grained("alice", "octo-org", {"personal_access_token_requests": "read"})},
			"want": denied(403, "Resource not accessible by personal access token: it needs the organization permission personal_access_token_requests at write or above"),
		},
		"owner fine-grained with the other permission": {
			"input": {"operation": "tokens.list", "org": "octo-org", "caller": fine_grained("alice", "octo-org", {"personal_access_token_requests": "write"})},
			"want": denied(403, "Resource not accessible by personal access token: it needs the organization permission personal_access_tokens at read or above"),
		},
		"owner fine-grained owned by another org": {
			"input": {"operation": "requests.list", "org": "octo-org", "caller": fine_grained("alice", "alice", {"personal_access_token_requests": "read"})},
			"want": denied(403, "Resource not accessible by personal access token: the token's resource owner is alice, not octo-org; create a fine-grained token owned by octo-org"),
		},
		"owner fine-grained whose grant was revoked": {
			"input": {"operation": "tokens.list", "org": "octo-org", "caller": object.union(
				fine_grained("alice", "octo-org", {"personal_access_tokens": "read"}),
				{"grant_state": "revoked"},
			)},
			"want": denied(403, "octo-org requires approval of fine-grained personal access tokens and an owner revoked this token's access: the policy is set by the octo-org organization; request access to octo-org again with a justification"),
		},
		"owner fine-grained with an approved grant": {
			"input": {"operation": "tokens.list", "org": "octo-org", "caller": object.union(
				fine_grained("alice", "octo-org", {"personal_access_tokens": "read"}),
				{"grant_state": "approved"},
			)},
			"want": allowed,
		},
		"member fine-grained": {
			"input": {"operation": "requests.list", "org": "octo-org", "caller": fine_grained("bob", "octo-org", {"personal_access_token_requests": "write"})},
			"want": denied(403, must_own),
		},
		"audit log with read:audit_log": {
			"input": {"operation": "audit.list", "org": "octo-org", "caller": classic("alice", ["read:audit_log"])},
			"want": allowed,
		},
		"audit log fine-grained": {
			"input": {"operation": "audit.list", "org": "octo-org", "caller": fine_grained("alice", "octo-org", {"organization_administration": "read"})},
			"want": allowed,
		},
		"missing org": {
			"input": {"operation": "tokens.list", "caller": classic("alice", ["admin:org"])},
			"want": denied(403, "missing input.org"),
		},
	}
	decide(tc.input) == tc.want
}

# The organization's own PAT policies hold the caller's token too (data.pat.org_policy_denials).
test_org_policies_apply_to_the_caller[note] if {
	fg_read := fine_grained("alice", "octo-org", {"personal_access_tokens": "read"})
	some note, tc in {
		"classic restricted by the organization": {
			"settings": with_org({"classic_access": "restrict"}),
			"caller": classic("alice", ["admin:org"]),
			"want": denied(403, "octo-org forbids access via a personal access token (classic): the policy is set by the octo-org organization; use a fine-grained personal access token instead"),
		},
		"classic restricted by the enterprise, fine-grained restricted too": {
			"settings": with_enterprise({"classic_access": "restrict", "fine_grained_access": "restrict"}),
			"caller": classic("erin", ["admin:org"]),
			"want": denied(403, "octo-org forbids access via a personal access token (classic): the policy is set by the acme enterprise; ask an owner to change the policy"),
		},
		"classic allowed by the enterprise over the organization": {
			"settings": {
				"enterprises": {"acme": {"owners": ["erin"], "classic_access": "allow"}},
				"organizations": {"octo-org": {"enterprise": "acme", "classic_access": "restrict"}},
			},
			"caller": classic("alice", ["admin:org"]),
			"want": allowed,
		},
		"fine-grained restricted": {
			"settings": with_org({"fine_grained_access": "restrict"}),
			"caller": fg_read,
			"want": denied(403, "octo-org forbids access via a fine-grained personal access token: the policy is set by the octo-org organization; use a personal access token (classic) instead"),
		},
		"classic without expiry under the enterprise's limit": {
			"settings": with_enterprise({"classic_max_lifetime_days": 90}),
			"caller": classic("alice", ["admin:org"]),
			"want": denied(403, "octo-org forbids access via a personal access token (classic) if the token's lifetime is greater than 90 days: the policy is set by the acme enterprise; the token has no expiration date; regenerate the token with an expiration of 90 days or less"),
		},
		"the same, administrators exempt": {
			"settings": with_enterprise({"classic_max_lifetime_days": 90, "exempt_administrators": true}),
			"caller": classic("alice", ["admin:org"]),
			"want": allowed,
		},
		"the enterprise's limit does not reach a non-member": {
			"settings": with_enterprise({"classic_max_lifetime_days": 90}),
			"caller": classic("erin", ["admin:org"]),
			"want": allowed,
		},
		"fine-grained over the organization's tighter limit": {
			"settings": with_org({"fine_grained_max_lifetime_days": 7}),
			"caller": fg_read,
			"want": denied(403, "octo-org forbids access via a fine-grained personal access token if the token's lifetime is greater than 7 days: the policy is set by the octo-org organization; the token's lifetime is 30 days; regenerate the token with an expiration of 7 days or less"),
		},
		"fine-grained without a grant under required approval": {
			"settings": settings,
			"caller": object.union(fg_read, {"grant_state": null}),
			"want": denied(403, "octo-org requires approval of fine-grained personal access tokens and this token has not been approved for octo-org: the policy is set by the octo-org organization; request access to octo-org with a justification"),
		},
		"fine-grained pending, approval required by the enterprise": {
			"settings": with_enterprise({"fine_grained_approval": "require"}),
			"caller": object.union(fg_read, {"grant_state": "pending"}),
			"want": denied(403, "octo-org requires approval of fine-grained personal access tokens and this token's request is awaiting approval: the policy is set by the acme enterprise; ask an owner of octo-org to review the request"),
		},
		"fine-grained without a grant, approval disabled": {
			"settings": with_org({"fine_grained_approval": "disable"}),
			"caller": object.union(fg_read, {"grant_state": null}),
			"want": allowed,
		},
		"fine-grained pending, approval disabled": {
			"settings": with_org({"fine_grained_approval": "disable"}),
			"caller": object.union(fg_read, {"grant_state": "pending"}),
			"want": allowed,
		},
		"fine-grained denied, approval disabled": {
			"settings": with_org({"fine_grained_approval": "disable"}),
			"caller": object.union(fg_read, {"grant_state": "denied"}),
			"want": denied(403, "octo-org does not require approval of fine-grained personal access tokens, but an owner denied this token's request: an owner's decision stands; ask an owner of octo-org to require approval and then request access again, or create a new token"),
		},
		"fine-grained, not opted in": {
			"settings": with_enterprise({"fine_grained_opt_in": false}),
			"caller": fg_read,
			"want": denied(403, "octo-org has not opted in to fine-grained personal access tokens: the acme enterprise has not enabled them and octo-org has not opted in; ask an owner of octo-org to opt in, or use a personal access token (classic)"),
		},
		"fine-grained, not opted in, classic restricted": {
			"settings": with_enterprise({"fine_grained_opt_in": false, "classic_access": "restrict"}),
			"caller": fg_read,
			"want": denied(403, "octo-org has not opted in to fine-grained personal access tokens: the acme enterprise has not enabled them and octo-org has not opted in; ask an owner of octo-org to opt in"),
		},
		"fine-grained of a non-member, classic restricted": {
			"settings": with_org({"classic_access": "restrict"}),
			"caller": fine_grained("erin", "octo-org", {"personal_access_tokens": "read"}),
			"want": denied(403, "erin is not a member of octo-org: outside collaborators and former members cannot use fine-grained personal access tokens on octo-org's resources; ask an owner of octo-org for membership"),
		},
		"fine-grained of an enterprise owner who is not a member": {
			"settings": settings,
			"caller": fine_grained("erin", "octo-org", {"personal_access_tokens": "read"}),
			"want": denied(403, "erin is not a member of octo-org: outside collaborators and former members cannot use fine-grained personal access tokens on octo-org's resources; ask an owner of octo-org for membership, or use a personal access token (classic)"),
		},
		"the first failing rule decides: lifetime before access": {
			"settings": with_org({"classic_access": "restrict", "classic_max_lifetime_days": 30}),
			"caller": classic("alice", ["admin:org"]),
			"want": denied(403, "octo-org forbids access via a personal access token (classic) if the token's lifetime is greater than 30 days: the policy is set by the octo-org organization; the token has no expiration date; regenerate the token with an expiration of 30 days or less"),
		},
		"a missing scope is reported before the policies": {
			"settings": with_org({"classic_access": "restrict"}),
			"caller": classic("alice", ["repo"]),
			"want": denied(403, needs_admin_org),
		},
	}
	decide_in({"operation": "tokens.list", "org": "octo-org", "caller": tc.caller}, tc.settings) == tc.want
}

# The organization's policies are not the caller's own account's: user operations ignore them.
test_org_policies_leave_user_operations_alone if {
	world := with_enterprise({"classic_access": "restrict", "classic_max_lifetime_days": 1})
	decide_in({"operation": "user.tokens.list", "target_user": "alice", "caller": classic("alice", ["user"])}, world) == allowed
}

with_org(conf) := {
	"enterprises": {"acme": {"owners": ["erin"]}},
	"organizations": {"octo-org": object.union({"enterprise": "acme"}, conf)},
}

with_enterprise(conf) := {
	"enterprises": {"acme": object.union({"owners": ["erin"]}, conf)},
	"organizations": {"octo-org": {"enterprise": "acme"}},
}

test_user_operations[note] if {
	some note, tc in {
		"list own with read:user": {
			"input": {"operation": "user.tokens.list", "target_user": "bob", "caller": classic("bob", ["read:user"])},
			"want": allowed,
		},
		"create own with user": {
			"input": {"operation": "user.tokens.create", "target_user": "bob", "caller": classic("bob", ["user"])},
			"want": allowed,
		},
		"create without user": {
			"input": {"operation": "user.tokens.create", "target_user": "bob", "caller": classic("bob", ["read:user", "repo"])},
			"want": denied(403, needs_user),
		},
		"revoke someone else's": {
			"input": {"operation": "user.tokens.revoke", "target_user": "alice", "caller": classic("bob", ["user"])},
			"want": denied(404, "Not Found"),
		},
		"an owner cannot revoke a member's token here": {
			"input": {"operation": "user.tokens.revoke", "target_user": "bob", "caller": classic("alice", ["user", "admin:org"])},
			"want": denied(404, "Not Found"),
		},
		"request again": {
			"input": {"operation": "user.requests.create", "target_user": "bob", "caller": classic("bob", ["user"])},
			"want": allowed,
		},
		"fine-grained cannot manage tokens": {
			"input": {"operation": "user.tokens.list", "target_user": "bob", "caller": fine_grained("bob", "bob", {"contents": "write"})},
			"want": denied(403, "Resource not accessible by personal access token: fine-grained tokens cannot manage personal access tokens; use a personal access token (classic) with the user scope"),
		},
	}
	decide(tc.input) == tc.want
}

test_deny_input_contract[note] if {
	some note, tc in {
		"no caller": {
			"input": {"operation": "requests.list", "org": "octo-org"},
			"want": denied(401, "Requires authentication"),
		},
		"unknown operation": {
			"input": {"operation": "tokens.delete_all", "org": "octo-org", "caller": classic("alice", ["admin:org"])},
			"want": denied(403, "unknown admin operation tokens.delete_all"),
		},
		"no operation": {
			"input": {"org": "octo-org", "caller": classic("alice", ["admin:org"])},
			"want": denied(403, "unknown admin operation null"),
		},
		"caller of an unknown kind": {
			"input": {"operation": "requests.list", "org": "octo-org", "caller": {"user": "alice", "kind": "oauth"}},
			"want": denied(401, "Requires authentication"),
		},
	}
	decide(tc.input) == tc.want
}

test_deny_without_settings if {
	request := {"operation": "tokens.list", "org": "octo-org", "caller": classic("erin", ["admin:org"])}
	admin.decision == denied(403, must_own) with input as request with pat.org_role as mock_role
}

test_allow_owner_without_settings if {
	request := {"operation": "tokens.list", "org": "octo-org", "caller": classic("alice", ["admin:org"])}
	admin.decision == allowed with input as request with pat.org_role as mock_role
}

test_is_admin[note] if {
	some note, tc in {
		"org owner": {"user": "alice", "org": "octo-org", "want": true},
		"enterprise owner": {"user": "erin", "org": "octo-org", "want": true},
		"member": {"user": "bob", "org": "octo-org", "want": false},
		"nobody": {"user": "zed", "org": "nowhere", "want": false},
	}
	got := admin.is_admin(tc.user, tc.org) with pat.org_role as mock_role with data.pat.settings as settings
	got == tc.want
}

# The effective approval policy of the organization, for the API's list and revocation of tokens
# without a grant: the enterprise's binds, else the organization's, with its default.
test_approval_policy[note] if {
	some note, tc in {
		"default": {"world": {}, "want": {"value": "require", "by": "organization"}},
		"organization disables": {
			"world": {"organizations": {"octo-org": {"fine_grained_approval": "disable"}}},
			"want": {"value": "disable", "by": "organization"},
		},
		"enterprise requires over the organization": {
			"world": {
				"enterprises": {"acme": {"fine_grained_approval": "require"}},
				"organizations": {"octo-org": {"enterprise": "acme", "fine_grained_approval": "disable"}},
			},
			"want": {"value": "require", "by": "enterprise"},
		},
		"enterprise disables": {
			"world": {
				"enterprises": {"acme": {"fine_grained_approval": "disable"}},
				"organizations": {"octo-org": {"enterprise": "acme"}},
			},
			"want": {"value": "disable", "by": "enterprise"},
		},
	}
	got := admin.approval with input as {"operation": "tokens.list", "org": "Octo-Org"}
		with data.pat.settings as tc.world
	got == tc.want
}

test_approval_policy_needs_an_org if {
	not admin.approval with input as {"operation": "tokens.list"}
}
