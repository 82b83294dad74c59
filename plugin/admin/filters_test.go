package admin

import (
	"encoding/json"
	"testing"
)

// owner, owner[] and the audit log's actor are logins: compared without
// regard to case, as the organization in the path is (owner=BOB was []).
func TestLoginFiltersIgnoreCase(t *testing.T) {
	f := newFixture(t, true)
	count := func(t *testing.T, path string) int {
		t.Helper()
		r := f.do(t, "GET", path, f.as("alice-admin"), nil)
		var items []json.RawMessage
		if r.status != 200 || json.Unmarshal([]byte(r.body), &items) != nil {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
		return len(items)
	}
	for _, tc := range []struct {
		lower, other string
	}{
		{"/orgs/octo-org/personal-access-token-requests?state=all&owner=bob", "/orgs/octo-org/personal-access-token-requests?state=all&owner=BOB"},
		{"/orgs/octo-org/personal-access-token-requests?state=all&owner[]=bob", "/orgs/Octo-Org/personal-access-token-requests?state=all&owner[]=Bob"},
		{"/orgs/octo-org/personal-access-tokens?state=all&owner=alice,bob", "/orgs/octo-org/personal-access-tokens?state=all&owner=ALICE,bOb"},
		{"/orgs/octo-org/audit-log?actor=test", "/orgs/octo-org/audit-log?actor=TEST"},
	} {
		t.Run(tc.other, func(t *testing.T) {
			want := count(t, tc.lower)
			if want == 0 {
				t.Fatalf("%s lists nothing", tc.lower)
			}
			if got := count(t, tc.other); got != want {
				t.Fatalf("%s lists %d, %s lists %d", tc.other, got, tc.lower, want)
			}
		})
	}
}
