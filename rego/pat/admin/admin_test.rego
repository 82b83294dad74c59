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

classic(user, scopes) := {"token_id": 1, "kind": "classic", "user": user, "scopes": scopes, "resource_owner": "", "permissions": {}}

fine_grained(user, owner, permissions) := {
	"token_id": 2, "kind": "fine_grained", "user": user, "scopes": [],
	"resource_owner": owner, "permissions": object.union({"metadata": "read"}, permissions),
}

decide(request) := d if {
	d := admin.decision with input as request
		with pat.org_role as mock_role
		with data.pat.settings as settings
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
			"want": denied(403, "Resource not accessible by personal access token: its access to octo-org is revoked; an owner must approve it first"),
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
