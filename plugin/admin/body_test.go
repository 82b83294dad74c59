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
