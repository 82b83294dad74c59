# A service team's test of the PAT decision, runnable with the stock OPA CLI as well as opa-pat:
#
#   opa test --capabilities rego/capabilities.json rego/pat/pat.rego rego/pat/settings.rego examples/policy/
#
# The pat.* built-ins answer from a running sidecar's token store, which a test does not have: mock
# every one the decision calls, with functions (`with pat.token as mock_token`). A function mock
# works under both CLIs; a value mock (`with pat.token as {...}`) needs the built-in's
# implementation, which the stock CLI does not have. A built-in left unmocked is undefined, and
# the decision then denies without an error.
#
# Do not `import data.pat` here: `pat.token` would then name the rule data.pat.token, not the
# built-in, and the mocks would replace nothing. Refer to the decision as data.pat.decision.
package service_test

# 2026-03-01T00:00:00Z, the tests' clock.
now := 1772323200000000000

day := 86400000000000

# What pat.token returns for a token the store knows (docs/builtins.md has every field).
tokens := {"github_pat_ci": {
	"well_formed": true, "found": true, "kind": "fine_grained", "id": 7, "user": "bob", "name": "ci",
	"created_at_ns": now - (10 * day), "expires_at_ns": now + (20 * day), "revoked": false,
	"scopes": set(), "resource_owner": "octo-org", "repository_selection": "all", "repositories": set(),
	"permissions": {"contents": "read", "metadata": "read"},
}}

mock_token(raw) := tokens[raw]

mock_token(raw) := {"well_formed": true, "kind": "fine_grained", "found": false} if {
	not tokens[raw]
	startswith(raw, "github_pat_")
}

mock_grant(id, org) := {"id": 1, "state": "approved", "reason": "", "reviewer": "alice", "updated_at_ns": 0} if {
	id == 7
	org == "octo-org"
}

mock_org_role(user, org) := "member" if {
	user == "bob"
	org == "octo-org"
}

mock_user(login) := {"login": login, "managed_by": null} if login in {"alice", "bob"}

mock_repository(owner, name) := {"owner": owner, "name": name, "visibility": "private"} if {
	owner == "octo-org"
	name == "app"
}

# octo-org belongs to the acme enterprise, which requires approval of fine-grained tokens.
settings := {
	"enterprises": {"acme": {"owners": ["erin"], "fine_grained_approval": "require"}},
	"organizations": {"octo-org": {"enterprise": "acme"}},
}

decide(raw, action) := decision if {
	decision := data.pat.decision with input as {
		"credential": {"type": "pat", "token": raw},
		"resource": {"owner": "octo-org", "repository": "app"},
		"action": action, "permission": "contents",
	}
		with data.pat.settings as settings
		with pat.token as mock_token
		with pat.grant as mock_grant
		with pat.org_role as mock_org_role
		with pat.user as mock_user
		with pat.repository as mock_repository
		with time.now_ns as now
}

test_approved_token_reads if {
	d := decide("github_pat_ci", "read")
	d.allow == true
	d.status == 200
	d.user == "bob"
}

test_read_only_token_cannot_write if {
	d := decide("github_pat_ci", "write")
	d.allow == false
	d.status == 403
}

test_unknown_token_is_401 if {
	d := decide("github_pat_unknown", "read")
	d.allow == false
	d.status == 401
}
