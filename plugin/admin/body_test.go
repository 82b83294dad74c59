package admin

import (
	"fmt"
	"strings"
	"testing"
)

// pendingRequests is the organization's list of pending requests, to check
// that a refused body changed nothing.
func (f *fixture) pendingRequests(t *testing.T) string {
	t.Helper()
	r := f.do(t, "GET", "/orgs/octo-org/personal-access-token-requests", f.as("alice-admin"), nil)
	if r.status != 200 {
		t.Fatalf("pending requests: %d %s", r.status, r.body)
	}
	return r.body
}

// A key given twice in one object of a body, at any depth, is a 400 naming
// the key, and nothing of the body is applied: readers disagree on which
// value counts (Go's keeps the last: {"action": "deny", "action":
// "approve"} approved).
func TestBodyWithAKeyTwice(t *testing.T) {
	f := newFixture(t, true)
	before := f.pendingRequests(t)
	for _, tc := range []struct {
		note, as, path, body, key, doc string
	}{
		{note: "review one: action twice", as: "alice-admin", path: "/orgs/octo-org/personal-access-token-requests/1",
			body: `{"action": "deny", "action": "approve"}`, key: `"action"`, doc: docReviewRequest},
		{note: "review many: action twice, once escaped", as: "alice-admin", path: "/orgs/octo-org/personal-access-token-requests",
			body: `{"pat_request_ids": [1], "action": "deny", "\u0061ction": "approve"}`, key: `"action"`, doc: docReviewRequests},
		{note: "revoke: reason twice", as: "alice-admin", path: "/orgs/octo-org/personal-access-tokens/7",
			body: `{"action": "revoke", "reason": "a", "reason": "b"}`, key: `"reason"`, doc: docRevokeGrant},
		{note: "create: a permission twice", as: "bob-user", path: "/user/personal-access-tokens",
			body: `{"name": "x", "kind": "fine_grained", "permissions": {"contents": "read", "contents": "write"}}`, key: `"contents"`, doc: docUserTokens},
		{note: "a key that looks like a token is described", as: "bob-user", path: "/user/personal-access-tokens",
			body: fmt.Sprintf(`{"name": "x", "kind": "classic", %q: 1, %[1]q: 2}`, pastedClassic),
			key:  "(40 characters, not shown: it looks like a personal access token)", doc: docUserTokens},
	} {
		t.Run(tc.note, func(t *testing.T) {
			r := f.do(t, "POST", tc.path, f.as(tc.as), tc.body)
			if want := errBody("Problems parsing JSON: the key "+tc.key+" appears twice", tc.doc); r.status != 400 || r.body != want {
				t.Fatalf("got  %d %s\nwant 400 %s", r.status, r.body, want)
			}
		})
	}
	if after := f.pendingRequests(t); after != before {
		t.Fatalf("a refused body changed the requests:\n%s\nwas\n%s", after, before)
	}
	if list := f.do(t, "GET", "/user/personal-access-tokens?per_page=100", f.as("bob-user"), nil); strings.Contains(list.body, `"name":"x"`) {
		t.Fatalf("a refused body created a token: %s", list.body)
	}
	// The same key in two objects is no repetition.
	r := f.do(t, "POST", "/user/personal-access-tokens", f.as("bob-maker"),
		`{"name": "twice-ok", "kind": "fine_grained", "repository_selection": "all", "permissions": {"contents": "read", "issues": "read"}, "reason": "r"}`)
	if r.status != 201 {
		t.Fatalf("distinct keys: %d %s", r.status, r.body)
	}
}

// A body that is not UTF-8 is a 400, as on GitHub, and nothing is applied:
// Go's decoder would keep U+FFFD in the reason.
func TestBodyNotUTF8(t *testing.T) {
	f := newFixture(t, true)
	before := f.pendingRequests(t)
	for _, tc := range []struct {
		note, as, path, body, doc string
	}{
		{note: "a reason", as: "alice-admin", path: "/orgs/octo-org/personal-access-token-requests/1",
			body: "{\"action\": \"deny\", \"reason\": \"\xff\xfe\"}", doc: docReviewRequest},
		{note: "a key", as: "alice-admin", path: "/orgs/octo-org/personal-access-token-requests",
			body: "{\"pat_request_ids\": [1], \"action\": \"deny\", \"\xc3\": 1}", doc: docReviewRequests},
		{note: "a name", as: "bob-user", path: "/user/personal-access-tokens",
			body: "{\"name\": \"ci\xe2\x82\", \"kind\": \"classic\"}", doc: docUserTokens},
	} {
		t.Run(tc.note, func(t *testing.T) {
			r := f.do(t, "POST", tc.path, f.as(tc.as), tc.body)
			if want := errBody("Problems parsing JSON: the body is not valid UTF-8", tc.doc); r.status != 400 || r.body != want {
				t.Fatalf("got  %d %s\nwant 400 %s", r.status, r.body, want)
			}
		})
	}
	if after := f.pendingRequests(t); after != before {
		t.Fatalf("a refused body changed the requests:\n%s\nwas\n%s", after, before)
	}
	if list := f.do(t, "GET", "/user/personal-access-tokens?per_page=100", f.as("bob-user"), nil); strings.Contains(list.body, `"name":"ci`) {
		t.Fatalf("a refused body created a token: %s", list.body)
	}
}

// A body that escapes half a UTF-16 surrogate pair alone is a 400 as one
// that is not UTF-8 is, naming the escape as written, and nothing is
// applied: Go's decoder would keep U+FFFD in the name or the reason, and
// read "a\ud800" and "a\udc00" as one key. A pair is one character.
func TestBodyLoneSurrogate(t *testing.T) {
	f := newFixture(t, true)
	before := f.pendingRequests(t)
	for _, tc := range []struct {
		note, as, path, body, escape, doc string
	}{
		{note: "a reason", as: "alice-admin", path: "/orgs/octo-org/personal-access-token-requests/1",
			body: `{"action": "deny", "reason": "\ud800"}`, escape: `\ud800`, doc: docReviewRequest},
		{note: "a low surrogate first", as: "alice-admin", path: "/orgs/octo-org/personal-access-token-requests",
			body: `{"pat_request_ids": [1], "action": "deny", "reason": "\udc00x"}`, escape: `\udc00`, doc: docReviewRequests},
		{note: "a high one without its low one", as: "alice-admin", path: "/orgs/octo-org/personal-access-tokens/7",
			body: `{"action": "revoke", "reason": "\uD83Dx"}`, escape: `\uD83D`, doc: docRevokeGrant},
		{note: "two keys Go reads as one", as: "alice-admin", path: "/orgs/octo-org/personal-access-tokens",
			body: `{"pat_ids": [7], "action": "revoke", "a\ud800": 1, "a\udc00": 2}`, escape: `\ud800`, doc: docRevokeGrants},
		{note: "a name", as: "bob-user", path: "/user/personal-access-tokens",
			body: `{"name": "ci\udfff", "kind": "classic"}`, escape: `\udfff`, doc: docUserTokens},
	} {
		t.Run(tc.note, func(t *testing.T) {
			r := f.do(t, "POST", tc.path, f.as(tc.as), tc.body)
			if want := errBody("Problems parsing JSON: the body holds a lone UTF-16 surrogate, "+tc.escape, tc.doc); r.status != 400 || r.body != want {
				t.Fatalf("got  %d %s\nwant 400 %s", r.status, r.body, want)
			}
			// As served: the backslash escaped once more.
			if want := `"message":"Problems parsing JSON: the body holds a lone UTF-16 surrogate, \` + tc.escape + `"`; !strings.Contains(r.body, want) {
				t.Fatalf("got %s, want it to hold %s", r.body, want)
			}
		})
	}
	if after := f.pendingRequests(t); after != before {
		t.Fatalf("a refused body changed the requests:\n%s\nwas\n%s", after, before)
	}
	if list := f.do(t, "GET", "/user/personal-access-tokens?per_page=100", f.as("bob-user"), nil); strings.Contains(list.body, `"name":"ci`) {
		t.Fatalf("a refused body created a token: %s", list.body)
	}
	// A pair, and an escaped backslash before "ud800", are taken as sent.
	r := f.do(t, "POST", "/user/personal-access-tokens", f.as("bob-user"), `{"name": "ci \ud83d\ude00 \\ud800", "kind": "classic"}`)
	if r.status != 201 || !strings.Contains(r.body, `"name":"ci 😀 \\ud800"`) {
		t.Fatalf("a pair: got %d %s", r.status, r.body)
	}
}

// A 422 for a body value of the wrong type names the value it got: [null]
// is not "0 is not an id", {"contents": null} not `unknown value ""`, and
// the type wanted reads as English ("an array of strings").
func TestBodyTypeErrorsNameTheValue(t *testing.T) {
	f := newFixture(t, true)
	for _, tc := range []struct {
		note, as, path, body, resource, field, message, doc string
	}{
		{"a null id", "alice-admin", "/orgs/octo-org/personal-access-token-requests", `{"pat_request_ids": [null], "action": "deny"}`,
			"PersonalAccessTokenRequest", "pat_request_ids", "pat_request_ids[0]: want a positive integer id, got null", docReviewRequests},
		{"a null id after one", "alice-admin", "/orgs/octo-org/personal-access-tokens", `{"pat_ids": [7, null], "action": "revoke"}`,
			"PersonalAccessToken", "pat_ids", "pat_ids[1]: want a positive integer id, got null", docRevokeGrants},
		{"id 0", "alice-admin", "/orgs/octo-org/personal-access-tokens", `{"pat_ids": [0], "action": "revoke"}`,
			"PersonalAccessToken", "pat_ids", "pat_ids[0]: want a positive integer id, got 0", docRevokeGrants},
		{"a fraction", "alice-admin", "/orgs/octo-org/personal-access-tokens", `{"pat_ids": [1.5], "action": "revoke"}`,
			"PersonalAccessToken", "pat_ids", "pat_ids[0]: want a positive integer id, got 1.5", docRevokeGrants},
		{"a negative id", "alice-admin", "/orgs/octo-org/personal-access-tokens", `{"pat_ids": [-3], "action": "revoke"}`,
			"PersonalAccessToken", "pat_ids", "pat_ids[0]: want a positive integer id, got -3", docRevokeGrants},
		{"an object", "alice-admin", "/orgs/octo-org/personal-access-tokens", `{"pat_ids": [{}], "action": "revoke"}`,
			"PersonalAccessToken", "pat_ids", "pat_ids[0]: want a positive integer id, got a JSON object", docRevokeGrants},
		{"a token as an id", "alice-admin", "/orgs/octo-org/personal-access-tokens", `{"pat_ids": ["` + pastedClassic + `"], "action": "revoke"}`,
			"PersonalAccessToken", "pat_ids", "pat_ids[0]: want a positive integer id, got the string (40 characters, not shown: it looks like a personal access token)", docRevokeGrants},
		{"a null level", "bob-user", "/user/personal-access-tokens", `{"name": "x", "kind": "fine_grained", "permissions": {"contents": null}}`,
			"PersonalAccessToken", "permissions.contents", `permissions.contents: want "read", "write" or "admin", got null`, docUserTokens},
		{"a level of the wrong type", "bob-user", "/user/personal-access-tokens", `{"name": "x", "kind": "fine_grained", "permissions": {"issues": 2}}`,
			"PersonalAccessToken", "permissions.issues", `permissions.issues: want "read", "write" or "admin", got 2`, docUserTokens},
		{"permissions of the wrong type", "bob-user", "/user/personal-access-tokens", `{"name": "x", "kind": "fine_grained", "permissions": ["contents"]}`,
			"PersonalAccessToken", "permissions", "permissions: want an object, got a JSON array", docUserTokens},
		{"scopes of the wrong type", "bob-user", "/user/personal-access-tokens", `{"name": "x", "kind": "classic", "scopes": "repo"}`,
			"PersonalAccessToken", "scopes", "scopes: want an array of strings, got a JSON string", docUserTokens},
		{"a null scope", "bob-user", "/user/personal-access-tokens", `{"name": "x", "kind": "classic", "scopes": ["repo", null]}`,
			"PersonalAccessToken", "scopes[1]", "scopes[1]: want a string, got null", docUserTokens},
		{"a repository of the wrong type", "bob-user", "/user/personal-access-tokens", `{"name": "x", "kind": "fine_grained", "repository_selection": "selected", "repositories": [true]}`,
			"PersonalAccessToken", "repositories[0]", "repositories[0]: want a string, got true", docUserTokens},
		{"expires_in_days of the wrong type", "bob-user", "/user/personal-access-tokens", `{"name": "x", "kind": "classic", "expires_in_days": "3"}`,
			"PersonalAccessToken", "expires_in_days", "expires_in_days: want an integer, got a JSON string", docUserTokens},
	} {
		t.Run(tc.note, func(t *testing.T) {
			r := f.do(t, "POST", tc.path, f.as(tc.as), tc.body)
			if want := invalidBody(tc.resource, tc.field, "invalid", tc.message, tc.doc); r.status != 422 || r.body != want {
				t.Fatalf("got  %d %s\nwant 422 %s", r.status, r.body, want)
			}
		})
	}
}

// auditLog is the organization's audit log, to check that a refusal wrote
// nothing.
func (f *fixture) auditLog(t *testing.T, org string) string {
	t.Helper()
	r := f.do(t, "GET", "/orgs/"+org+"/audit-log?per_page=100", f.as("alice-admin"), nil)
	if r.status != 200 {
		t.Fatalf("audit log: %d %s", r.status, r.body)
	}
	return r.body
}

// Go's decoder binds a body's key to a field without regard to case, the
// last of several: {"action": "deny", "Action": "approve"} approved, and
// {"kind": "classic", "Kind": "fine_grained"} made a fine-grained token,
// where GitHub and most readers compare keys exactly. Two keys of one
// object equal but for case, at any depth, and a key of the endpoint in
// another case (as Go's decoder folds it: "ſ" is "s", "K" (Kelvin) is
// "k") are 400s naming them, and nothing of the body is applied.
func TestBodyKeysInAnotherCase(t *testing.T) {
	f := newFixture(t, true)
	before, audit := f.pendingRequests(t), f.auditLog(t, "octo-org")
	pending := f.tokenID(t, "bob-all")
	const (
		reviewMany = "/orgs/octo-org/personal-access-token-requests"
		reviewOne  = "/orgs/octo-org/personal-access-token-requests/1"
		create     = "/user/personal-access-tokens"
	)
	pair := func(a, b string) string {
		return fmt.Sprintf("Problems parsing JSON: the keys %s and %s differ only in case; give each key once, as documented", a, b)
	}
	single := func(key, want string) string {
		return fmt.Sprintf("Problems parsing JSON: the key %s is %q in another case; keys are matched exactly, as on GitHub: give %[2]q", key, want)
	}
	for _, tc := range []struct {
		note, as, path, body, message, doc string
	}{
		{note: "review many: action and Action", as: "alice-admin", path: reviewMany,
			body: `{"pat_request_ids": [1], "action": "deny", "Action": "approve"}`, message: pair(`"action"`, `"Action"`), doc: docReviewRequests},
		{note: "review many: ACTION alone", as: "alice-admin", path: reviewMany,
			body: `{"pat_request_ids": [1], "ACTION": "deny"}`, message: single(`"ACTION"`, "action"), doc: docReviewRequests},
		{note: "review many: Pat_Request_Ids", as: "alice-admin", path: reviewMany,
			body: `{"Pat_Request_Ids": [1], "action": "deny"}`, message: single(`"Pat_Request_Ids"`, "pat_request_ids"), doc: docReviewRequests},
		{note: "review one: Action alone", as: "alice-admin", path: reviewOne,
			body: `{"Action": "approve"}`, message: single(`"Action"`, "action"), doc: docReviewRequest},
		{note: "review one: reason with a long s", as: "alice-admin", path: reviewOne,
			body: `{"action": "deny", "rea\u017fon": "x"}`, message: single(`"reaſon"`, "reason"), doc: docReviewRequest},
		{note: "revoke: Action", as: "alice-admin", path: "/orgs/octo-org/personal-access-tokens/7",
			body: `{"action": "revoke", "Reason": "x"}`, message: single(`"Reason"`, "reason"), doc: docRevokeGrant},
		{note: "create: kind and Kind", as: "bob-maker", path: create,
			body:    `{"name": "x", "kind": "classic", "scopes": ["repo"], "Kind": "fine_grained", "resource_owner": "octo-org", "permissions": {"contents": "read"}}`,
			message: pair(`"kind"`, `"Kind"`), doc: docUserTokens},
		{note: "create: Kind with a Kelvin sign", as: "bob-maker", path: create,
			body: `{"name": "x", "\u212aind": "classic"}`, message: single(`"`+"\u212a"+`ind"`, "kind"), doc: docUserTokens},
		{note: "create: No_Expiry", as: "bob-maker", path: create,
			body: `{"name": "x", "kind": "classic", "scopes": ["repo"], "No_Expiry": true}`, message: single(`"No_Expiry"`, "no_expiry"), doc: docUserTokens},
		{note: "create: a permission in two cases", as: "bob-maker", path: create,
			body: `{"name": "x", "kind": "fine_grained", "permissions": {"contents": "read", "Contents": "write"}}`, message: pair(`"contents"`, `"Contents"`), doc: docUserTokens},
		{note: "request again: Reason", as: "bob-user", path: "/user/personal-access-tokens/" + itoa(pending) + "/requests",
			body: `{"Reason": "again"}`, message: single(`"Reason"`, "reason"), doc: docUserTokens},
	} {
		t.Run(tc.note, func(t *testing.T) {
			r := f.do(t, "POST", tc.path, f.as(tc.as), tc.body)
			if want := errBody(tc.message, tc.doc); r.status != 400 || r.body != want {
				t.Fatalf("got  %d %s\nwant 400 %s", r.status, r.body, want)
			}
		})
	}
	if after := f.pendingRequests(t); after != before {
		t.Fatalf("a refused body changed the requests:\n%s\nwas\n%s", after, before)
	}
	if after := f.auditLog(t, "octo-org"); after != audit {
		t.Fatalf("a refused body wrote to the audit log:\n%s\nwas\n%s", after, audit)
	}
	if list := f.do(t, "GET", "/user/personal-access-tokens?per_page=100", f.as("bob-user"), nil); strings.Contains(list.body, `"name":"x"`) {
		t.Fatalf("a refused body created a token: %s", list.body)
	}
	// A key unknown in every case is ignored, as on GitHub.
	if r := f.do(t, "POST", reviewOne, f.as("alice-admin"), `{"action": "deny", "note": "x"}`); r.status != 204 {
		t.Fatalf("an unknown key: %d %s", r.status, r.body)
	}
}
