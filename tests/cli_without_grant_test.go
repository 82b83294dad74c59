package tests

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// cliGrantlessWorld's tokens, by id (import order): 1 approved in octo-org,
// 2 classic, 3, 4 and 11 fine-grained tokens of octo-org without a grant,
// 5 expired, 6 revoked, 7 its user's own, 8 pending, 9 denied, 10 aimed
// at indie-org.
func cliGrantlessWorld(t *testing.T) string {
	t.Helper()
	tok := func(name, kind, owner, expires string, revoked bool) map[string]any {
		sum := sha256.Sum256([]byte(name))
		m := map[string]any{"token_sha256": hex.EncodeToString(sum[:]), "name": name, "kind": kind, "user": "bob",
			"created_at": "2026-01-01T00:00:00Z", "expires_at": expires, "revoked": revoked}
		if kind == "classic" {
			m["scopes"] = []string{"repo"}
		} else {
			m["resource_owner"], m["repository_selection"], m["permissions"] = owner, "all", map[string]string{"contents": "read"}
		}
		return m
	}
	const live = "2099-01-01T00:00:00Z"
	world := map[string]any{
		"users": []map[string]any{{"login": "bob", "managed_by": nil}, {"login": "olga", "managed_by": nil}},
		"memberships": []map[string]any{{"user": "bob", "org": "octo-org", "role": "member"}, {"user": "olga", "org": "octo-org", "role": "owner"},
			{"user": "bob", "org": "indie-org", "role": "member"}},
		"repositories": []map[string]any{{"owner": "octo-org", "name": "app", "visibility": "private"}},
		"tokens": []map[string]any{
			tok("ci", "fine_grained", "octo-org", live, false), tok("old", "classic", "", live, false),
			tok("nogrant", "fine_grained", "octo-org", live, false), tok("nogrant2", "fine_grained", "octo-org", live, false),
			tok("expired", "fine_grained", "octo-org", "2026-03-01T00:00:00Z", false), tok("gone", "fine_grained", "octo-org", live, true),
			tok("own", "fine_grained", "bob", live, false), tok("pending", "fine_grained", "octo-org", live, false),
			tok("denied", "fine_grained", "octo-org", live, false), tok("other", "fine_grained", "indie-org", live, false),
			tok("nogrant3", "fine_grained", "octo-org", live, false),
		},
		"grants": []map[string]any{
			{"token_name": "ci", "user": "bob", "org": "octo-org", "state": "approved", "reason": "release"},
			{"token_name": "pending", "user": "bob", "org": "octo-org", "state": "pending", "justification": "deploys"},
			{"token_name": "denied", "user": "bob", "org": "octo-org", "state": "denied", "reason": "no"},
		},
	}
	b, err := json.Marshal(world)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "pat.db")
	cliOK(t, "store", "import", "--store", db, writeFile(t, dir, "world.json", string(b)))
	return db
}

// requests revoke --without-grant revokes what the admin API revokes where
// approval is disabled: the access of a live fine-grained token of the
// organization that has no grant there, by recording a revoked grant (the
// owner as reviewer, no justification) and a grant.revoke audit event with
// details.had_grant false, through the same store function. Every other
// token is refused, all or none, each with what to do; without the flag a
// token without a grant is refused with an error that names it.
func TestCLIRequestsRevokeWithoutGrant(t *testing.T) {
	db := cliGrantlessWorld(t)
	revoke := func(args ...string) []string {
		return append([]string{"requests", "revoke", "--store", db}, args...)
	}

	// Without the flag: approved grants only, as before; a token the flag
	// is for is named with it, and one it is not for is not.
	cliFail(t, "error: no grant for token 3 in octo-org; token 3 reaches octo-org without a grant when approval is disabled there: to revoke that access, give --without-grant",
		revoke("--org", "octo-org", "3")...)
	cliFail(t, "error: no grant for tokens 3, 4, 5, 10 in octo-org; tokens 3, 4 reach octo-org without a grant when approval is disabled there: to revoke that access, give --without-grant",
		revoke("--org", "octo-org", "3", "4", "5", "10")...)
	cliFail(t, "error: no grant for token 5 in octo-org", revoke("--org", "octo-org", "5")...)

	// With the flag, every token that is not one it is for, in the order
	// given, whatever the case of --org; nothing is written.
	cliFail(t, "error: --without-grant: "+strings.Join([]string{
		"token 1 has an approved grant in octo-org (request 1): leave out --without-grant to revoke it",
		"token 2 is a classic token, which has no grants: to stop it, revoke the token (opa-pat token revoke 2)",
		"token 5 expired at 2026-03-01T00:00:00Z: nothing to revoke",
		"token 6 is revoked: nothing to revoke",
		"token 7's resource owner is bob, not octo-org (rule 6): it has no access to octo-org to revoke",
		"token 8's grant in octo-org is pending (request 2): deny the request instead (opa-pat requests deny --org octo-org 2)",
		"token 9's grant in octo-org is already denied (request 3), which blocks it: nothing to revoke",
		"token 10's resource owner is indie-org, not octo-org (rule 6): it has no access to octo-org to revoke",
		"token 999 not found",
	}, "; "), revoke("--org", "Octo-Org", "--without-grant", "1", "2", "3", "5", "6", "7", "8", "9", "10", "999")...)
	// All or none: a good token with a bad one is not revoked either.
	cliFail(t, "error: --without-grant: token 1 has an approved grant in octo-org (request 1): leave out --without-grant to revoke it",
		revoke("--org", "octo-org", "--without-grant", "3", "1")...)
	if got := cliOK(t, "requests", "list", "--store", db, "--history", "--output", "json"); len(decode[[]cliRequest](t, got)) != 3 {
		t.Fatalf("a refused revocation wrote requests: %s", got)
	}

	if got, want := cliOK(t, revoke("--org", "octo-org", "--without-grant", "3", "4", "--reason", "offboarding", "--actor", "olga")...),
		"revoked the access of tokens 3, 4 to octo-org, which had no grant: recorded as revoked requests 4, 5\n"; got != want {
		t.Fatalf("revoke --without-grant: %q; want %q", got, want)
	}
	type grant struct {
		ID       int64  `json:"id"`
		TokenID  int64  `json:"token_id"`
		Org      string `json:"org"`
		State    string `json:"state"`
		Reason   string `json:"reason"`
		Reviewer string `json:"reviewer"`
	}
	if got, want := decode[[]grant](t, cliOK(t, revoke("--org", "octo-org", "--without-grant", "11", "--actor", "olga", "--output", "json")...)),
		[]grant{{ID: 6, TokenID: 11, Org: "octo-org", State: "revoked", Reviewer: "olga"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("revoke --without-grant --output json: %+v; want %+v", got, want)
	}

	// The grant and the audit event the admin API records.
	type request struct {
		ID            int64  `json:"id"`
		TokenID       int64  `json:"token_id"`
		State         string `json:"state"`
		Reason        string `json:"reason"`
		Justification string `json:"justification"`
		ReviewReason  string `json:"review_reason"`
		Reviewer      string `json:"reviewer"`
		Current       bool   `json:"current"`
	}
	if got, want := decode[[]request](t, cliOK(t, "requests", "list", "--store", db, "--org", "octo-org", "--state", "revoked", "--output", "json")),
		[]request{
			{ID: 4, TokenID: 3, State: "revoked", Reason: "offboarding", ReviewReason: "offboarding", Reviewer: "olga", Current: true},
			{ID: 5, TokenID: 4, State: "revoked", Reason: "offboarding", ReviewReason: "offboarding", Reviewer: "olga", Current: true},
			{ID: 6, TokenID: 11, State: "revoked", Reviewer: "olga", Current: true},
		}; !reflect.DeepEqual(got, want) {
		t.Fatalf("revoked requests: %+v; want %+v", got, want)
	}
	type event struct {
		Actor     string         `json:"actor"`
		Action    string         `json:"action"`
		Org       string         `json:"org"`
		TokenID   int64          `json:"token_id"`
		RequestID int64          `json:"request_id"`
		Reason    string         `json:"reason"`
		Details   map[string]any `json:"details"`
	}
	if got, want := decode[[]event](t, cliOK(t, "audit", "list", "--store", db, "--action", "grant.revoke", "--output", "json")),
		[]event{
			{Actor: "olga", Action: "grant.revoke", Org: "octo-org", TokenID: 3, RequestID: 4, Reason: "offboarding", Details: map[string]any{"had_grant": false}},
			{Actor: "olga", Action: "grant.revoke", Org: "octo-org", TokenID: 4, RequestID: 5, Reason: "offboarding", Details: map[string]any{"had_grant": false}},
			{Actor: "olga", Action: "grant.revoke", Org: "octo-org", TokenID: 11, RequestID: 6, Details: map[string]any{"had_grant": false}},
		}; !reflect.DeepEqual(got, want) {
		t.Fatalf("grant.revoke events: %+v; want %+v", got, want)
	}

	// Done once: the token now has a grant, revoked.
	cliFail(t, "error: --without-grant: token 3's grant in octo-org is already revoked (request 4), which blocks it: nothing to revoke",
		revoke("--org", "octo-org", "--without-grant", "3")...)
	cliFail(t, "error: only approved grants can be revoked: token 3 is not approved in octo-org", revoke("--org", "octo-org", "3")...)
}
