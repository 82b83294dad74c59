package store

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opa-pat/opa-pat/plugin/token"
	"github.com/opa-pat/opa-pat/plugin/token/tokentest"
)

const (
	rawClassic = "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"
	rawFG      = "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"
	rawFG2     = "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"
)

func importJSON(t *testing.T, db *DB, world string) (ImportResult, error) {
	t.Helper()
	d, err := ParseDump(strings.NewReader(world))
	if err != nil {
		return ImportResult{}, err
	}
	return db.Import(t.Context(), d, "test")
}

func TestImportGrants(t *testing.T) {
	ctx := t.Context()
	db := openTest(t)
	h := token.Hash(rawFG)
	fgHex := hex.EncodeToString(h[:])
	world := `{"tokens": [
		{"token": "` + rawFG + `", "name": "ci", "user": "bob", "resource_owner": "octo-org", "repository_selection": "all", "permissions": {}, "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false},
		{"token": "` + rawFG2 + `", "name": "ci", "user": "bob", "resource_owner": "octo-org", "repository_selection": "all", "permissions": {}, "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}],
	"grants": [{"token_sha256": "` + fgHex + `", "org": "octo-org", "state": "pending", "reason": "please", "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false},
		{"token_sha256": "` + hex.EncodeToString(func() []byte { h := token.Hash(rawFG2); return h[:] }()) + `", "org": "octo-org", "state": "denied", "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}]}`
	res, err := importJSON(t, db, world)
	if err != nil {
		t.Fatal(err)
	}
	if want := (ImportResult{Users: 0, Tokens: 2, Grants: 2}); res != want {
		t.Fatalf("import = %+v; want %+v", res, want)
	}
	// The same world again adds no request; a changed state adds one.
	if res, err := importJSON(t, db, world); err != nil || res.Grants != 0 {
		t.Fatalf("re-import = %+v, %v", res, err)
	}
	if res, err := importJSON(t, db, strings.Replace(world, `"state": "pending", "reason": "please"`, `"state": "approved", "reason": "ok"`, 1)); err != nil || res.Grants != 1 {
		t.Fatalf("changed import = %+v, %v", res, err)
	}
	reqs, err := db.ListRequests(ctx, RequestFilter{TokenID: 1})
	if err != nil {
		t.Fatal(err)
	}
	var states []string
	for _, r := range reqs {
		states = append(states, r.State+"/"+r.Reason)
	}
	if want := []string{"pending/please", "approved/ok"}; !reflect.DeepEqual(states, want) {
		t.Fatalf("history = %v; want %v", states, want)
	}
	if tok, ok, _ := db.TokenByHash(ctx, h); !ok || tok.Kind != KindFineGrained || tok.ID != 1 {
		t.Fatalf("token = %+v", tok)
	}

	for _, tc := range []struct {
		note  string
		world string
		err   string
	}{
		{note: "ambiguous name", world: `{"grants": [{"token_name": "ci", "user": "bob", "org": "octo-org", "state": "approved"}]}`,
			err: `grants[0].token_name: bob has several tokens named "ci"; name the token by token_sha256`},
		{note: "unknown hash", world: `{"grants": [{"token_sha256": "` + strings.Repeat("0", 64) + `", "org": "o", "state": "approved", "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}]}`,
			err: `grants[0].token_sha256: no such token`},
		{note: "bad hash", world: `{"tokens": [{"token_sha256": "abc", "kind": "classic", "user": "bob", "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}]}`,
			err: `tokens[0].token_sha256: not 64 hexadecimal digits but 3 bytes (not shown: they may be a raw token)`},
		{note: "a raw token in a hash's place is not printed", world: `{"grants": [{"token_sha256": "` + rawClassic + `", "org": "o", "state": "approved", "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}]}`,
			err: `grants[0].token_sha256: not 64 hexadecimal digits but 40 bytes (not shown: they may be a raw token)`},
		{note: "both forms", world: `{"tokens": [{"token": "` + rawClassic + `", "token_sha256": "` + fgHex + `", "kind": "classic", "user": "bob", "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}]}`,
			err: `tokens[0].token: give token or token_sha256, not both`},
		{note: "kind differs from the format", world: `{"tokens": [{"token": "` + rawClassic + `", "kind": "fine_grained", "user": "bob", "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}]}`,
			err: `tokens[0].kind: "fine_grained", but the token is classic`},
		{note: "same token twice", world: `{"tokens": [{"token": "` + rawClassic + `", "user": "bob", "scopes": [], "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}, {"token": "` + rawClassic + `", "user": "eve", "scopes": [], "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}]}`,
			err: `tokens[1].token: the same token as tokens[0]`},
		{note: "expiry before creation", world: `{"tokens": [{"token": "` + rawClassic + `", "user": "bob", "created_at": "2026-02-01T00:00:00Z", "expires_at": "2026-01-01T00:00:00Z", "revoked": false}]}`,
			err: `tokens[0].expires_at: must be after created_at`},
		{note: "bad permission level", world: `{"tokens": [{"token": "` + rawFG + `", "user": "bob", "resource_owner": "o", "repository_selection": "all", "permissions": {"contents": "all"}, "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}]}`,
			err: `tokens[0].permissions.contents: unknown value "all", want one of read, write, admin`},
		{note: "comma in a name", world: `{"repositories": [{"owner": "o", "name": "a,b", "visibility": "public"}]}`,
			err: `repositories[0].name: "a,b" must not contain ',', '=', '/' or control characters`},
		{note: "empty login", world: `{"users": [{"login": "", "managed_by": null}]}`, err: `users[0].login: must not be empty`},
		{note: "a login outside ASCII", world: `{"users": [{"login": "bj\u00f6rn", "managed_by": null}]}`,
			err: `users[0].login: "björn" is not a GitHub name: ASCII letters, digits, '-', '_' and '.' only`},
		{note: "a space in an organization", world: `{"memberships": [{"user": "bob", "org": "octo org", "role": "member"}]}`,
			err: `memberships[0].org: "octo org" is not a GitHub name: ASCII letters, digits, '-', '_' and '.' only`},
		{note: "a repository named ..", world: `{"repositories": [{"owner": "o", "name": "..", "visibility": "public"}]}`,
			err: `repositories[0].name: ".." is not a GitHub name: ASCII letters, digits, '-', '_' and '.' only`},
		{note: "an expiry the store cannot keep (2300 would be written as 1715)", world: `{"tokens": [{"token": "` + rawClassic + `", "user": "bob", "expires_at": "2300-01-01T00:00:00Z", "created_at": "2026-01-01T00:00:00Z", "revoked": false}]}`,
			err: `tokens[0].expires_at: 2300-01-01T00:00:00Z is outside the times the store keeps (from 1970-01-01 to before 2262-01-01)`},
		{note: "a creation before 1970", world: `{"tokens": [{"token": "` + rawClassic + `", "user": "bob", "created_at": "1969-12-31T23:59:59Z", "expires_at": null, "revoked": false}]}`,
			err: `tokens[0].created_at: 1969-12-31T23:59:59Z is outside the times the store keeps (from 1970-01-01 to before 2262-01-01)`},
		{note: "a second document, which would be ignored", world: `{"users": [{"login": "carl", "managed_by": null}]} {"tokens": [{"token": "garbage", "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}]}`,
			err: `decoding: more after the JSON value: give one document`},
	} {
		t.Run(tc.note, func(t *testing.T) {
			_, err := importJSON(t, db, tc.world)
			if err == nil || err.Error() != tc.err {
				t.Fatalf("err = %v; want %q", err, tc.err)
			}
		})
	}
}

// A grant an import records over a pending request becomes the token's
// grant: the older request can no longer be reviewed (a review would change
// nothing the policy reads), and the change is in the organization's audit
// log, as the import's.
func TestImportedGrantSupersedesARequest(t *testing.T) {
	ctx := t.Context()
	db := openTest(t)
	tok, g, err := db.CreateToken(ctx, CreateTokenParams{Token: fgToken(1, "bob", "octo-org"), GrantState: GrantPending})
	if err != nil {
		t.Fatal(err)
	}
	h := hashOf(1)
	if _, err := importJSON(t, db, `{"grants": [{"token_sha256": "`+hex.EncodeToString(h[:])+`", "org": "octo-org", "state": "approved", "reason": "migrated", "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}]}`); err != nil {
		t.Fatal(err)
	}
	_, err = db.Review(ctx, ReviewParams{Org: "octo-org", IDs: []int64{g.ID}, Actor: "alice", Reason: "stale"})
	want := fmt.Sprintf("only a token's latest request can be reviewed; superseded: request %d by request %d", g.ID, g.ID+1)
	if err == nil || err.Error() != want || !errors.Is(err, ErrInvalidState) {
		t.Fatalf("reviewing the superseded request: %v; want %q", err, want)
	}
	if cur, ok, err := db.Grant(ctx, tok.ID, "octo-org"); err != nil || !ok || cur.State != GrantApproved || cur.ID != g.ID+1 {
		t.Fatalf("grant = %+v, %v, %v; want the imported approval", cur, ok, err)
	}
	events, err := db.ListAudit(ctx, AuditFilter{Org: "octo-org", Action: ActionRequestApprove})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || events[0].Actor != "test" || events[0].TokenID != tok.ID || events[0].RequestID != g.ID+1 ||
		events[0].Reason != "migrated" || events[0].Details["via"] != ActionStoreImport {
		t.Fatalf("audit = %+v; want one request.approve by the import", events)
	}
}

// An export keeps both texts of a reviewed grant, the requester's
// justification and the reviewer's reason, and importing it into another
// store records them as they were; importing it again changes nothing.
func TestExportKeepsJustificationAndReview(t *testing.T) {
	ctx := t.Context()
	src := openTest(t)
	world := `{"tokens": [
		{"token": "` + rawFG + `", "name": "ci", "user": "bob", "resource_owner": "octo-org", "repository_selection": "all", "permissions": {}, "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false},
		{"token": "` + rawFG2 + `", "name": "docs", "user": "bob", "resource_owner": "octo-org", "repository_selection": "all", "permissions": {}, "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}],
	"grants": [{"token_name": "ci", "user": "bob", "org": "octo-org", "state": "pending", "reason": "release automation"},
		{"token_name": "docs", "user": "bob", "org": "octo-org", "state": "pending", "reason": "publish the handbook"}]}`
	if _, err := importJSON(t, src, world); err != nil {
		t.Fatal(err)
	}
	addMember(t, src, "bob", "octo-org") // an approval needs it (rule 10)
	if _, err := src.Review(ctx, ReviewParams{Org: "octo-org", IDs: []int64{1}, Approve: true, Reason: "ok for a quarter", Actor: "alice"}); err != nil {
		t.Fatal(err)
	}
	// Approved without a reason of its own.
	if _, err := src.Review(ctx, ReviewParams{Org: "octo-org", IDs: []int64{2}, Approve: true, Actor: "alice"}); err != nil {
		t.Fatal(err)
	}
	d, err := src.Export(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, g := range d.Grants {
		got = append(got, g.TokenName+": "+g.State+", reason "+g.Reason+", justification "+g.Justification+", by "+g.Reviewer)
	}
	want := []string{"ci: approved, reason ok for a quarter, justification release automation, by alice",
		"docs: approved, reason , justification publish the handbook, by alice"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("exported grants:\n got %q\nwant %q", got, want)
	}

	dst := openTest(t)
	if _, err := dst.Import(ctx, d, "test"); err != nil {
		t.Fatal(err)
	}
	again, err := dst.Export(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again.Grants, d.Grants) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", again.Grants, d.Grants)
	}
	if res, err := dst.Import(ctx, d, "test"); err != nil || res.Grants != 0 {
		t.Fatalf("importing the export again: %+v, %v", res, err)
	}
}

// importBackends runs an import test on SQLite and, when a server answers,
// PostgreSQL, both with the clock of openTest.
func importBackends(t *testing.T, fn func(t *testing.T, db *DB)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, openTest(t)) })
	t.Run("postgres", func(t *testing.T) {
		db := openAt(t, testPostgresDSN(t))
		db.now = func() time.Time { return t0.Add(time.Hour) }
		fn(t, db)
	})
}

// importWorld is a small world: bob's fine-grained token for octo-org
// (token 1, approved) and his classic token (token 2).
const importWorld = `{"users": [{"login": "bob", "managed_by": null}], "memberships": [{"user": "bob", "org": "octo-org", "role": "member"}],
	"tokens": [
		{"token": "` + rawFG + `", "name": "ci", "user": "bob", "resource_owner": "octo-org", "repository_selection": "all", "permissions": {}, "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false},
		{"token": "` + rawClassic + `", "name": "old", "user": "bob", "scopes": ["repo"], "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}],
	"grants": [{"token_name": "ci", "user": "bob", "org": "octo-org", "state": "approved", "reason": "release"}]}`

// An import never brings a revoked token back: re-importing an export
// taken before the token was revoked is refused, naming the record, and
// writes nothing. A record may revoke a live token; the revocation is an
// audit event of its own, marked as the import's, recorded once.
func TestImportNeverRevivesARevokedToken(t *testing.T) {
	importBackends(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		if _, err := importJSON(t, db, importWorld); err != nil {
			t.Fatal(err)
		}
		old, err := db.Export(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.RevokeToken(ctx, 2, "bob", "leaked"); err != nil {
			t.Fatal(err)
		}
		old.Users = append(old.Users, DumpUser{Login: "zed", ManagedBy: Null()})
		_, err = db.Import(ctx, old, "test")
		if want := "tokens[1].revoked: token 2 is revoked in the store; an import cannot bring a revoked token back"; err == nil || err.Error() != want {
			t.Fatalf("importing the older export: %v; want %q", err, want)
		}
		if tok, ok, err := db.Token(ctx, 2); err != nil || !ok || !tok.Revoked {
			t.Fatalf("token 2 after the refused import = %+v, %v, %v; want revoked", tok, ok, err)
		}
		if _, ok, err := db.User(ctx, "zed"); err != nil || ok {
			t.Fatalf("user zed after the refused import: %v, %v; want none", ok, err)
		}

		// The export as it is now imports as a no-op.
		now, err := db.Export(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res, err := db.Import(ctx, now, "test"); err != nil || res.Grants != 0 {
			t.Fatalf("importing the current export: %+v, %v", res, err)
		}

		// A record that revokes the live token 1.
		now.Tokens[0].Revoked = new(true)
		for range 2 {
			if _, err := db.Import(ctx, now, "test"); err != nil {
				t.Fatal(err)
			}
		}
		if tok, ok, err := db.Token(ctx, 1); err != nil || !ok || !tok.Revoked {
			t.Fatalf("token 1 = %+v, %v, %v; want revoked", tok, ok, err)
		}
		events, err := db.ListAudit(ctx, AuditFilter{Action: ActionTokenRevoke})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range events {
			got = append(got, fmt.Sprintf("%s revoked token %d of %s (%q) via %v", e.Actor, e.TokenID, e.Org, e.Reason, e.Details["via"]))
		}
		want := []string{`bob revoked token 2 of  ("leaked") via <nil>`, `test revoked token 1 of octo-org ("") via store.import`}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("token.revoke events:\n got %q\nwant %q", got, want)
		}
	})
}

// An import cannot give a token in the store another user, kind or resource
// owner: bob's classic token would otherwise become carol's fine-grained
// token. The error says what the store has, never the raw token. A record
// without created_at keeps the store's.
func TestImportKeepsATokensIdentity(t *testing.T) {
	importBackends(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		before := importedWorld(t, db)
		classicHex := hashHex(rawClassic)
		for _, tc := range []struct {
			note  string
			world string
			err   string
		}{
			{note: "another user", world: `{"tokens": [{"token": "` + rawClassic + `", "name": "old", "user": "carol", "scopes": ["repo"], "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}]}`,
				err: `tokens[0].user: the store's token 2 is bob's classic token; an import cannot change a token's user, kind or resource owner`},
			{note: "another kind", world: `{"tokens": [{"token_sha256": "` + classicHex + `", "name": "old", "kind": "fine_grained", "user": "bob", "resource_owner": "octo-org", "repository_selection": "all", "permissions": {}, "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}]}`,
				err: `tokens[0].kind: the store's token 2 is bob's classic token; an import cannot change a token's user, kind or resource owner`},
			{note: "bob's classic token as carol's fine-grained one", world: `{"tokens": [{"token_sha256": "` + classicHex + `", "name": "old", "kind": "fine_grained", "user": "carol", "resource_owner": "octo-org", "repository_selection": "all", "permissions": {}, "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}]}`,
				err: `tokens[0].user: the store's token 2 is bob's classic token; an import cannot change a token's user, kind or resource owner`},
			{note: "another resource owner", world: `{"tokens": [{"token": "` + rawFG + `", "name": "ci", "user": "bob", "resource_owner": "indie-org", "repository_selection": "all", "permissions": {}, "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}]}`,
				err: `tokens[0].resource_owner: the store's token 1 is bob's fine-grained token for octo-org; an import cannot change a token's user, kind or resource owner`},
		} {
			t.Run(tc.note, func(t *testing.T) {
				refused(t, db, before, tc.world, tc.err)
			})
		}

		// Everything else of a token an import may change; created_at
		// only when the record gives it.
		if _, err := importJSON(t, db, `{"tokens": [{"token": "`+rawFG+`", "name": "deploy", "user": "bob", "resource_owner": "octo-org", "repository_selection": "all", "permissions": {}, "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}]}`); err != nil {
			t.Fatal(err)
		}
		if tok, ok, err := db.Token(ctx, 1); err != nil || !ok || tok.Name != "deploy" || !tok.CreatedAt.Equal(t0) {
			t.Fatalf("token 1 = %+v, %v, %v; want it renamed, created at %v", tok, ok, err, t0)
		}

		// Its last use only moves forward: a record without one, or with an
		// older one (an earlier export), keeps the store's.
		used := t0.Add(2 * time.Hour)
		if err := db.TouchLastUsed(ctx, []int64{1}, used); err != nil {
			t.Fatal(err)
		}
		for _, lastUsed := range []string{``, `, "last_used_at": "` + t0.Add(time.Hour).Format(time.RFC3339) + `"`} {
			if _, err := importJSON(t, db, `{"tokens": [{"token": "`+rawFG+`", "name": "deploy", "user": "bob", "resource_owner": "octo-org", "repository_selection": "all", "permissions": {}`+lastUsed+`, "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}]}`); err != nil {
				t.Fatal(err)
			}
			if tok, _, _ := db.Token(ctx, 1); !tok.LastUsedAt.Equal(used) {
				t.Fatalf("last use after importing a record with %q: %v; want %v", lastUsed, tok.LastUsedAt, used)
			}
		}
		later := t0.Add(3 * time.Hour)
		if _, err := importJSON(t, db, `{"tokens": [{"token": "`+rawFG+`", "name": "deploy", "user": "bob", "resource_owner": "octo-org", "repository_selection": "all", "permissions": {}, "last_used_at": "`+later.Format(time.RFC3339)+`", "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}]}`); err != nil {
			t.Fatal(err)
		}
		if tok, _, _ := db.Token(ctx, 1); !tok.LastUsedAt.Equal(later) {
			t.Fatalf("last use after importing a later one: %v; want %v", tok.LastUsedAt, later)
		}
	})
}

// Two records of one thing in one file are refused, naming both, and
// nothing is written: the last would otherwise win silently.
func TestImportRefusesDuplicates(t *testing.T) {
	importBackends(t, func(t *testing.T, db *DB) {
		before := importedWorld(t, db)
		h := token.Hash(rawFG)
		fgHex := hex.EncodeToString(h[:])
		newFG := `{"token": "` + rawFG2 + `", "name": "docs", "user": "bob", "resource_owner": "octo-org", "repository_selection": "all", "permissions": {}, "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}`
		for _, tc := range []struct {
			note  string
			world string
			err   string
		}{
			{note: "users", world: `{"users": [{"login": "u9", "managed_by": null}, {"login": "carl", "managed_by": null}, {"login": "u9", "managed_by": "acme"}]}`,
				err: `users[2].login: "u9" again (users[0])`},
			{note: "memberships", world: `{"memberships": [{"user": "bob", "org": "octo-org", "role": "member"}, {"user": "bob", "org": "octo-org", "role": "owner"}]}`,
				err: `memberships[1]: "bob" in "octo-org" again (memberships[0])`},
			{note: "repositories", world: `{"repositories": [{"owner": "octo-org", "name": "app", "visibility": "private"}, {"owner": "octo-org", "name": "app", "visibility": "public"}]}`,
				err: `repositories[1]: "octo-org/app" again (repositories[0])`},
			{note: "grants of a stored token, by name and by hash", world: `{"grants": [
				{"token_name": "ci", "user": "bob", "org": "octo-org", "state": "denied"},
				{"token_sha256": "` + fgHex + `", "org": "octo-org", "state": "approved", "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}]}`,
				err: `grants[1]: the same token's grant for "octo-org" again (grants[0])`},
			{note: "grants of a new token", world: `{"tokens": [` + newFG + `], "grants": [
				{"token_name": "docs", "user": "bob", "org": "octo-org", "state": "pending"},
				{"token_name": "ci", "user": "bob", "org": "octo-org", "state": "approved", "reason": "release"},
				{"token_name": "docs", "user": "bob", "org": "octo-org", "state": "approved"}]}`,
				err: `grants[2]: the same token's grant for "octo-org" again (grants[0])`},
		} {
			t.Run(tc.note, func(t *testing.T) {
				refused(t, db, before, tc.world, tc.err)
			})
		}
	})
}

// A grant the store could never hold is refused: one of a classic token
// (rule 17), one of a fine-grained token for an organization other than its
// resource owner (rule 6). A token the store has is named by id; a token new
// with the file, by its record.
func TestImportRefusesImpossibleGrants(t *testing.T) {
	importBackends(t, func(t *testing.T, db *DB) {
		before := importedWorld(t, db)
		classicHex := hashHex(rawClassic)
		h := hashOf(9)
		newClassic := `{"token_sha256": "` + hex.EncodeToString(h[:]) + `", "name": "new", "kind": "classic", "user": "bob", "scopes": [], "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}`
		newFG := `{"token": "` + rawFG2 + `", "name": "docs", "user": "bob", "resource_owner": "octo-org", "repository_selection": "all", "permissions": {}, "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}`
		for _, tc := range []struct {
			note  string
			world string
			err   string
		}{
			{note: "a stored classic token", world: `{"grants": [{"token_sha256": "` + classicHex + `", "org": "octo-org", "state": "approved", "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}]}`,
				err: `grants[0]: token 2 is a classic token; only fine-grained tokens have grants (rule 17)`},
			{note: "a stored classic token in the file", world: `{"tokens": [{"token": "` + rawClassic + `", "name": "old", "user": "bob", "scopes": ["repo"], "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}],
				"grants": [{"token_name": "old", "user": "bob", "org": "octo-org", "state": "denied"}]}`,
				err: `grants[0]: token 2 is a classic token; only fine-grained tokens have grants (rule 17)`},
			{note: "a new classic token", world: `{"tokens": [` + newClassic + `], "grants": [{"token_name": "new", "user": "bob", "org": "octo-org", "state": "pending"}]}`,
				err: `grants[0]: tokens[0] is a classic token; only fine-grained tokens have grants (rule 17)`},
			{note: "another organization", world: `{"grants": [{"token_name": "ci", "user": "bob", "org": "octo-org", "state": "approved", "reason": "release"},
				{"token_name": "ci", "user": "bob", "org": "indie-org", "state": "approved"}]}`,
				err: `grants[1].org: token 1's resource owner is octo-org, not indie-org (rule 6)`},
			{note: "a new token for another organization", world: `{"tokens": [` + newFG + `], "grants": [{"token_name": "docs", "user": "bob", "org": "indie-org", "state": "pending"}]}`,
				err: `grants[0].org: tokens[0]'s resource owner is octo-org, not indie-org (rule 6)`},
		} {
			t.Run(tc.note, func(t *testing.T) {
				refused(t, db, before, tc.world, tc.err)
			})
		}
	})
}

// An imported fine-grained token holds metadata: read whatever its record
// says (rule 8), as a created one does, so that an owner's filter on the
// permission finds it; a higher level given stays. Its export says so, and
// importing the export into another store, and again, changes nothing.
func TestImportAddsMetadataRead(t *testing.T) {
	importBackends(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		world := strings.Replace(importWorld, `"repository_selection": "all", "permissions": {},`, `"repository_selection": "all", "permissions": {"contents": "write"},`, 1)
		world = strings.Replace(world, `"scopes": ["repo"], "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}`, `"scopes": ["repo"], "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false},
		{"token": "`+rawFG2+`", "name": "docs", "user": "bob", "resource_owner": "octo-org", "repository_selection": "all", "permissions": {"metadata": "write"}, "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}`, 1)
		if _, err := importJSON(t, db, world); err != nil {
			t.Fatal(err)
		}
		var got []string
		for id := int64(1); id <= 3; id++ {
			tok, _, err := db.Token(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%s: %v", tok.Name, tok.Permissions))
		}
		if want := []string{"ci: map[contents:write metadata:read]", "old: map[]", "docs: map[metadata:write]"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("permissions:\n got %q\nwant %q", got, want)
		}
		grants, _, err := db.ListOrgGrants(ctx, OrgGrantFilter{Org: "octo-org", Permission: "metadata"})
		if err != nil || len(grants) != 1 || grants[0].Token.ID != 1 {
			t.Fatalf("grants of octo-org with metadata = %+v, %v; want token 1's", grants, err)
		}

		exported, err := db.Export(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if p := exported.Tokens[0].Permissions; p["metadata"] != "read" {
			t.Fatalf("exported permissions of token 1 = %v; want metadata: read among them", p)
		}
		dst := openTest(t)
		for i, want := range []int{3, 0} { // the second import finds every token as it is
			if res, err := dst.Import(ctx, exported, "test"); err != nil || res.Tokens != want {
				t.Fatalf("importing the export (%d): %+v, %v; want %d tokens written", i+1, res, err, want)
			}
			again, err := dst.Export(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(again, exported) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", again, exported)
			}
		}
	})
}

// refused imports world into db, wants the error want, which shows no raw
// token, and wants the store as before.
func refused(t *testing.T, db *DB, before *Dump, world, want string) {
	t.Helper()
	_, err := importJSON(t, db, world)
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v; want %q", err, want)
	}
	if strings.Contains(err.Error(), rawClassic) || strings.Contains(err.Error(), rawFG) || strings.Contains(err.Error(), rawFG2) {
		t.Fatalf("the error shows a raw token: %v", err)
	}
	after, err := db.Export(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(after, before) {
		t.Fatalf("the refused import changed the store:\n got %+v\nwant %+v", after, before)
	}
}

// importedWorld imports importWorld into db and returns its export.
func importedWorld(t *testing.T, db *DB) *Dump {
	t.Helper()
	if _, err := importJSON(t, db, importWorld); err != nil {
		t.Fatal(err)
	}
	d, err := db.Export(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// hashHex is the hex SHA-256 of a raw token, as token_sha256 takes it.
func hashHex(raw string) string {
	h := token.Hash(raw)
	return hex.EncodeToString(h[:])
}

// Spelling finds a login as the store spells it, whatever the case asked.
func TestSpelling(t *testing.T) {
	importBackends(t, func(t *testing.T, db *DB) {
		if _, err := importJSON(t, db, `{"users": [{"login": "Dave", "managed_by": null}, {"login": "erin", "managed_by": null}],
			"memberships": [{"user": "erin", "org": "Big-Org", "role": "member"}],
			"repositories": [{"owner": "Repo-Owner", "name": "x", "visibility": "public"}]}`); err != nil {
			t.Fatal(err)
		}
		for asked, want := range map[string]string{
			"dave": "Dave", "DAVE": "Dave", "Erin": "erin", "big-org": "Big-Org", "BIG-ORG": "Big-Org",
			"repo-owner": "Repo-Owner", "Nobody": "nobody", "": "",
		} {
			if got, err := db.Spelling(t.Context(), asked); err != nil || got != want {
				t.Errorf("Spelling(%q) = %q, %v; want %q", asked, got, err, want)
			}
		}
	})
}

// A login the store (or the file, earlier) spells in another case is
// refused: "dave" beside "Dave" would be one user to the policy and two to
// the store. A spelling the store has stays importable.
func TestImportRefusesAnotherSpelling(t *testing.T) {
	importBackends(t, func(t *testing.T, db *DB) {
		if _, err := importJSON(t, db, `{"users": [{"login": "Dave", "managed_by": "acme"}],
			"memberships": [{"user": "Dave", "org": "Big-Org", "role": "owner"}]}`); err != nil {
			t.Fatal(err)
		}
		before, err := db.Export(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ world, err string }{
			{`{"users": [{"login": "dave", "managed_by": null}]}`,
				`users[0].login: "dave" is spelt "Dave" in the store or earlier in the file; logins are compared without regard to case: write "Dave"`},
			{`{"users": [{"login": "erin", "managed_by": null}, {"login": "Erin", "managed_by": null}]}`,
				`users[1].login: "Erin" is spelt "erin" in the store or earlier in the file; logins are compared without regard to case: write "erin"`},
			{`{"repositories": [{"owner": "big-org", "name": "app", "visibility": "private"}]}`,
				`repositories[0].owner: "big-org" is spelt "Big-Org" in the store or earlier in the file; logins are compared without regard to case: write "Big-Org"`},
			{`{"memberships": [{"user": "DAVE", "org": "Big-Org", "role": "member"}]}`,
				`memberships[0].user: "DAVE" is spelt "Dave" in the store or earlier in the file; logins are compared without regard to case: write "Dave"`},
		} {
			refused(t, db, before, tc.world, tc.err)
		}
		if _, err := importJSON(t, db, `{"users": [{"login": "Dave", "managed_by": "acme"}],
			"repositories": [{"owner": "Big-Org", "name": "app", "visibility": "private"}]}`); err != nil {
			t.Fatalf("the store's own spelling: %v", err)
		}
	})
}

// A record of an expiring token that gives expires_at null is refused: a
// record replaces the row, and null means no expiry, so it would make the
// token live for ever (a record without the key is refused for any token).
// A date given is written; a token without an expiry stays without one.
func TestImportKeepsAnExpiry(t *testing.T) {
	importBackends(t, func(t *testing.T, db *DB) {
		world := `{"tokens": [
			{"token": "` + rawFG + `", "name": "ci", "user": "bob", "resource_owner": "octo-org", "repository_selection": "all", "permissions": {},
			 "created_at": "2026-01-01T00:00:00Z", "expires_at": "2026-03-01T00:00:00Z", "revoked": false},
			{"token": "` + rawClassic + `", "name": "old", "user": "bob", "scopes": ["repo"], "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}]}`
		if _, err := importJSON(t, db, world); err != nil {
			t.Fatal(err)
		}
		before, err := db.Export(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ record, err string }{
			{`"expires_at": null,`, `tokens[0].expires_at: token 1 expires at 2026-03-01T00:00:00Z in the store; give that time (or another) for it: an import cannot make an expiring token non-expiring`},
			{``, `tokens[0].expires_at: missing; give the token's expiry, or null for none: an import cannot make a token non-expiring by leaving it out`},
		} {
			refused(t, db, before, `{"tokens": [{"token": "`+rawFG+`", "name": "ci", "user": "bob", "resource_owner": "octo-org",
				"repository_selection": "all", "permissions": {}, `+tc.record+` "created_at": "2026-01-01T00:00:00Z", "revoked": false}]}`, tc.err)
		}
		// The classic token has no expiry: a record with null is the same.
		if res, err := importJSON(t, db, `{"tokens": [{"token": "`+rawClassic+`", "name": "old", "user": "bob", "scopes": ["repo"], "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}]}`); err != nil || res.Unchanged != 1 {
			t.Fatalf("the non-expiring token again: %+v, %v", res, err)
		}
		// A date in the record is the token's new expiry.
		if _, err := importJSON(t, db, `{"tokens": [{"token": "`+rawFG+`", "name": "ci", "user": "bob", "resource_owner": "octo-org",
			"repository_selection": "all", "permissions": {}, "expires_at": "2026-04-01T00:00:00Z", "created_at": "2026-01-01T00:00:00Z", "revoked": false}]}`); err != nil {
			t.Fatal(err)
		}
		if tok, _, err := db.Token(t.Context(), 1); err != nil || !tok.ExpiresAt.Equal(time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)) {
			t.Fatalf("token 1 expires at %v (%v)", tok.ExpiresAt, err)
		}
	})
}

// A token record must say what the token may reach: permissions for a
// fine-grained token, repositories for one for selected repositories,
// scopes for a classic token. One that leaves them out (or writes null) is
// refused, naming the record, and nothing is written, whether the store
// has the token or not: the record replaces the token's row, so the token
// would silently lose its permissions, repositories or scopes. {} and []
// are taken as written.
func TestImportRefusesARecordThatNarrowsAToken(t *testing.T) {
	importBackends(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		world := `{"tokens": [
			{"token": "` + rawFG + `", "name": "ci", "user": "bob", "resource_owner": "octo-org", "repository_selection": "selected",
			 "repositories": ["app", "docs"], "permissions": {"contents": "write"}, "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false},
			{"token": "` + rawClassic + `", "name": "old", "user": "bob", "scopes": ["repo"], "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}]}`
		if _, err := importJSON(t, db, world); err != nil {
			t.Fatal(err)
		}
		before, err := db.Export(ctx)
		if err != nil {
			t.Fatal(err)
		}
		fg := func(fields string) string {
			return `{"token": "` + rawFG + `", "name": "ci", "user": "bob", "resource_owner": "octo-org", ` + fields + `, "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}`
		}
		newFG := `{"token": "` + rawFG2 + `", "name": "docs", "user": "bob", "resource_owner": "octo-org", "repository_selection": "all", "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}`
		classic := `{"token": "` + rawClassic + `", "name": "old", "user": "bob", "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}`
		const (
			permissions  = `permissions: missing (or null); give the token's permissions, {} for metadata: read only: an import cannot narrow a token by leaving them out`
			repositories = `repositories: missing (or null); give the token's repositories, [] for none: an import cannot narrow a token by leaving them out`
			scopes       = `scopes: missing (or null); give the token's scopes, [] for none: an import cannot narrow a token by leaving them out`
		)
		for _, tc := range []struct {
			note  string
			world string
			err   string
		}{
			{note: "permissions left out", world: `{"users": [{"login": "zed", "managed_by": null}], "tokens": [` + classic[:len(classic)-1] + `, "scopes": ["repo"]}, ` +
				fg(`"repository_selection": "selected", "repositories": ["app", "docs"]`) + `]}`,
				err: `tokens[1].` + permissions},
			{note: "permissions null", world: `{"tokens": [` + fg(`"repository_selection": "selected", "repositories": ["app", "docs"], "permissions": null`) + `]}`,
				err: `tokens[0].` + permissions},
			{note: "a new token without permissions", world: `{"tokens": [` + newFG + `]}`,
				err: `tokens[0].` + permissions},
			{note: "repositories left out", world: `{"tokens": [` + fg(`"repository_selection": "selected", "permissions": {"contents": "write"}`) + `]}`,
				err: `tokens[0].` + repositories},
			{note: "repositories null", world: `{"tokens": [` + fg(`"repository_selection": "selected", "repositories": null, "permissions": {"contents": "write"}`) + `]}`,
				err: `tokens[0].` + repositories},
			{note: "scopes left out", world: `{"tokens": [` + classic + `]}`,
				err: `tokens[0].` + scopes},
			{note: "scopes null", world: `{"tokens": [` + classic[:len(classic)-1] + `, "scopes": null}]}`,
				err: `tokens[0].` + scopes},
			{note: "repositories with all", world: `{"tokens": [` + fg(`"repository_selection": "all", "repositories": ["app"], "permissions": {}`) + `]}`,
				err: `tokens[0].repositories: only with repository_selection "selected", and this token's is "all"`},
			{note: "repositories with public", world: `{"tokens": [` + fg(`"repository_selection": "public", "repositories": ["app"], "permissions": {}`) + `]}`,
				err: `tokens[0].repositories: only with repository_selection "selected", and this token's is "public"`},
		} {
			t.Run(tc.note, func(t *testing.T) {
				refused(t, db, before, tc.world, tc.err)
			})
		}

		// Written empty, they are the token's: a change the record says.
		if _, err := importJSON(t, db, `{"tokens": [`+fg(`"repository_selection": "selected", "repositories": [], "permissions": {}`)+`, `+
			classic[:len(classic)-1]+`, "scopes": []}]}`); err != nil {
			t.Fatal(err)
		}
		var got []string
		for id := int64(1); id <= 2; id++ {
			tok, _, err := db.Token(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%s: %s %q %v %q", tok.Name, tok.RepositorySelection, tok.Repositories, tok.Permissions, tok.Scopes))
		}
		if want := []string{`ci: selected [] map[metadata:read] []`, `old:  [] map[] []`}; !reflect.DeepEqual(got, want) {
			t.Fatalf("tokens:\n got %q\nwant %q", got, want)
		}
	})
}

// The export of any store the write path accepts imports again, through
// its JSON, and says the same world: every token record gives what its
// token may reach, also when that is nothing (permissions {}, repositories
// [] of a selected token, scopes []), which import requires. The tokens
// are written as they may be found in stores of older versions: a
// fine-grained token without permissions (before import added metadata:
// read), a selected one without repositories (which only token create
// refuses), repositories kept with "public" (which count for nothing and
// are left out of the export, since import refuses them).
func TestExportImportsAgain(t *testing.T) {
	importBackends(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		expires := t0.Add(30 * 24 * time.Hour)
		ci := fgToken(1, "bob", "octo-org")
		ci.Permissions = map[string]string{"contents": "write", "metadata": "read"}
		tokens := []Token{
			ci,
			{Hash: hashOf(2), Name: "none", Kind: KindFineGrained, User: "bob", ResourceOwner: "octo-org", RepositorySelection: "selected",
				Permissions: map[string]string{"metadata": "read"}, CreatedAt: t0},
			{Hash: hashOf(3), Name: "old-import", Kind: KindFineGrained, User: "bob", ResourceOwner: "octo-org", RepositorySelection: "all", CreatedAt: t0},
			{Hash: hashOf(4), Name: "public", Kind: KindFineGrained, User: "bob", ResourceOwner: "octo-org", RepositorySelection: "public",
				Repositories: []string{"www"}, Permissions: map[string]string{"metadata": "read"}, CreatedAt: t0, ExpiresAt: expires, LastUsedAt: t0.Add(time.Hour)},
			{Hash: hashOf(5), Name: "laptop", Kind: KindClassic, User: "bob", Scopes: []string{"repo", "workflow"}, CreatedAt: t0},
			{Hash: hashOf(6), Name: "bare", Kind: KindClassic, User: "bob", CreatedAt: t0, Revoked: true},
		}
		if err := db.BulkInsert(ctx, func(w *BulkWriter) error {
			for _, tk := range tokens {
				if err := ValidateToken(tk); err != nil {
					return fmt.Errorf("%s: %w", tk.Name, err)
				}
				if _, err := w.Token(tk); err != nil {
					return err
				}
			}
			_, err := w.Grant(Grant{TokenID: 1, Org: "octo-org", State: GrantApproved, Reviewer: "alice", CreatedAt: t0, UpdatedAt: t0})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		exportJSON := func(db *DB) string {
			t.Helper()
			d, err := db.Export(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// Load passes tokens in no particular order (PostgreSQL's
			// order changes with an update).
			slices.SortFunc(d.Tokens, func(a, b DumpToken) int { return strings.Compare(a.TokenSHA256, b.TokenSHA256) })
			b, err := json.Marshal(d.Tokens)
			if err != nil {
				t.Fatal(err)
			}
			return strings.ReplaceAll(string(b), "},{", "},\n{")
		}
		h := func(b byte) string { x := hashOf(b); return hex.EncodeToString(x[:]) }
		want := `[{"token_sha256":"` + h(1) + `","name":"ci","kind":"fine_grained","user":"bob","resource_owner":"octo-org","repository_selection":"selected","repositories":["app","lib"],"permissions":{"contents":"write","metadata":"read"},"created_at":"2026-01-01T00:00:00Z","expires_at":"2026-01-31T00:00:00Z","revoked":false},
{"token_sha256":"` + h(2) + `","name":"none","kind":"fine_grained","user":"bob","resource_owner":"octo-org","repository_selection":"selected","repositories":[],"permissions":{"metadata":"read"},"created_at":"2026-01-01T00:00:00Z","expires_at":null,"revoked":false},
{"token_sha256":"` + h(3) + `","name":"old-import","kind":"fine_grained","user":"bob","resource_owner":"octo-org","repository_selection":"all","permissions":{},"created_at":"2026-01-01T00:00:00Z","expires_at":null,"revoked":false},
{"token_sha256":"` + h(4) + `","name":"public","kind":"fine_grained","user":"bob","resource_owner":"octo-org","repository_selection":"public","permissions":{"metadata":"read"},"created_at":"2026-01-01T00:00:00Z","expires_at":"2026-01-31T00:00:00Z","revoked":false,"last_used_at":"2026-01-01T01:00:00Z"},
{"token_sha256":"` + h(5) + `","name":"laptop","kind":"classic","user":"bob","scopes":["repo","workflow"],"created_at":"2026-01-01T00:00:00Z","expires_at":null,"revoked":false},
{"token_sha256":"` + h(6) + `","name":"bare","kind":"classic","user":"bob","scopes":[],"created_at":"2026-01-01T00:00:00Z","expires_at":null,"revoked":true}]`
		exported := exportJSON(db)
		if exported != want {
			t.Fatalf("exported tokens:\n%s\nwant\n%s", exported, want)
		}
		d, err := db.Export(ctx)
		if err != nil {
			t.Fatal(err)
		}
		file, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}

		// Into a new store: the same tokens, but for metadata: read, which
		// import adds (rule 8).
		dst := openTest(t)
		if _, err := importJSON(t, dst, string(file)); err != nil {
			t.Fatalf("importing the export into a new store: %v", err)
		}
		wantAgain := strings.Replace(want, `"permissions":{}`, `"permissions":{"metadata":"read"}`, 1)
		if got := exportJSON(dst); got != wantAgain {
			t.Fatalf("exported again:\n%s\nwant\n%s", got, wantAgain)
		}
		// Into the store itself: only those tokens change (metadata: read
		// added, the list kept with "public" dropped).
		res, err := importJSON(t, db, string(file))
		if want := (ImportResult{Tokens: 2, Unchanged: 5}); err != nil || res != want {
			t.Fatalf("importing the export into its store: %+v, %v; want %+v", res, err, want)
		}
		if got := exportJSON(db); got != wantAgain {
			t.Fatalf("the store after importing its export:\n%s\nwant\n%s", got, wantAgain)
		}
	})
}

// A user record must give managed_by, null for a user no enterprise
// manages: one that leaves it out is refused, naming the record, and
// nothing is written, whether the store has the user or not. The record
// replaces the user's row, so leaving the key out would otherwise take a
// managed user out of the enterprise's lifetime limit on the user's own
// repositories (rule 27), silently. null is taken as written.
func TestImportRefusesAUserWithoutManagedBy(t *testing.T) {
	importBackends(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		if _, err := importJSON(t, db, `{"users": [{"login": "eve", "managed_by": "acme"}, {"login": "bob", "managed_by": null}]}`); err != nil {
			t.Fatal(err)
		}
		before, err := db.Export(ctx)
		if err != nil {
			t.Fatal(err)
		}
		const missing = `.managed_by: missing for %q; give the enterprise that manages the user, or null for none: ` +
			`an import cannot take a user out of an enterprise's policy by leaving it out`
		for _, tc := range []struct {
			note  string
			world string
			err   string
		}{
			{note: "a managed user", world: `{"users": [{"login": "eve"}]}`, err: fmt.Sprintf("users[0]"+missing, "eve")},
			{note: "a new user, after a good record", world: `{"users": [{"login": "zed", "managed_by": null}, {"login": "carl"}],
				"memberships": [{"user": "carl", "org": "octo-org", "role": "member"}]}`,
				err: fmt.Sprintf("users[1]"+missing, "carl")},
			{note: "a user the store has unmanaged", world: `{"users": [{"login": "bob"}]}`, err: fmt.Sprintf("users[0]"+missing, "bob")},
		} {
			t.Run(tc.note, func(t *testing.T) {
				refused(t, db, before, tc.world, tc.err)
			})
		}
		// A Dump built in Go says null with Null(), not with the zero value.
		if _, err := db.Import(ctx, &Dump{Users: []DumpUser{{Login: "eve"}}}, "test"); err == nil || err.Error() != fmt.Sprintf("users[0]"+missing, "eve") {
			t.Fatalf("err = %v; want the missing managed_by", err)
		}
		// A wrong type names the field, as for a string.
		if _, err := importJSON(t, db, `{"users": [{"login": "eve", "managed_by": 5}]}`); err == nil || err.Error() != `users[0].managed_by: expected a string, got number` {
			t.Fatalf("err = %v; want the wrong type", err)
		}

		// null means no enterprise, for a managed user too.
		res, err := importJSON(t, db, `{"users": [{"login": "eve", "managed_by": null}, {"login": "zed", "managed_by": null}]}`)
		if want := (ImportResult{Users: 2}); err != nil || res != want {
			t.Fatalf("import = %+v, %v; want %+v", res, err, want)
		}
		for _, login := range []string{"eve", "zed"} {
			if u, ok, err := db.User(ctx, login); err != nil || !ok || u.ManagedBy != "" {
				t.Fatalf("User(%q) = %+v, %v, %v; want no enterprise", login, u, ok, err)
			}
		}

		// The export writes null for them and imports again, into a new
		// store as the same users and into its own as nothing to do.
		if _, err := importJSON(t, db, `{"users": [{"login": "eve", "managed_by": "acme"}]}`); err != nil {
			t.Fatal(err)
		}
		d, err := db.Export(ctx)
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(d.Users, func(a, b DumpUser) int { return strings.Compare(a.Login, b.Login) })
		file, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		if want := `{"users":[{"login":"bob","managed_by":null},{"login":"eve","managed_by":"acme"},{"login":"zed","managed_by":null}],`; !strings.HasPrefix(string(file), want) {
			t.Fatalf("export = %s; want it to start %s", file, want)
		}
		dst := openTest(t)
		if res, err := importJSON(t, dst, string(file)); err != nil || res != (ImportResult{Users: 3}) {
			t.Fatalf("importing the export into a new store: %+v, %v", res, err)
		}
		again, err := dst.Export(ctx)
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(again.Users, func(a, b DumpUser) int { return strings.Compare(a.Login, b.Login) })
		if !reflect.DeepEqual(again, d) {
			t.Fatalf("exported again:\n got %+v\nwant %+v", again, d)
		}
		if res, err := importJSON(t, db, string(file)); err != nil || res != (ImportResult{Unchanged: 3}) {
			t.Fatalf("importing the export into its store: %+v, %v", res, err)
		}
	})
}

// A token record must say how long the token lives: created_at,
// expires_at (null for no expiry) and revoked. One that leaves one out (or
// writes created_at or revoked null) is refused, naming the record, and
// nothing is written, whether the store has the token or not: a token
// without created_at would be dated from the import, which shortens its
// lifetime below a limit it breaks (rules 25-26); one without expires_at
// would never expire; one without revoked would be live.
func TestImportRefusesATokenWithoutItsLifetime(t *testing.T) {
	importBackends(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		if _, err := importJSON(t, db, importWorld); err != nil {
			t.Fatal(err)
		}
		before, err := db.Export(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// known is token 2 of importWorld, newFG a token the store lacks,
		// each without the three keys.
		known := `{"token": "` + rawClassic + `", "name": "old", "user": "bob", "scopes": ["repo"]`
		newFG := `{"token": "` + rawFG2 + `", "name": "docs", "user": "bob", "resource_owner": "octo-org", "repository_selection": "all", "permissions": {}`
		const (
			createdAt = `created_at: missing (or null); give the token's creation time: an import cannot shorten a token's lifetime by leaving it out`
			expiresAt = `expires_at: missing; give the token's expiry, or null for none: an import cannot make a token non-expiring by leaving it out`
			revoked   = `revoked: missing (or null); give true or false: an import cannot make a revoked token live by leaving it out`
		)
		for _, tc := range []struct {
			note  string
			world string
			err   string
		}{
			{note: "a known token without created_at", world: `{"tokens": [` + known + `, "expires_at": null, "revoked": false}]}`, err: `tokens[0].` + createdAt},
			{note: "a new token without created_at", world: `{"tokens": [` + known + `, "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}, ` +
				newFG + `, "expires_at": "2027-01-01T00:00:00Z", "revoked": false}]}`, err: `tokens[1].` + createdAt},
			{note: "created_at null", world: `{"tokens": [` + newFG + `, "created_at": null, "expires_at": null, "revoked": false}]}`, err: `tokens[0].` + createdAt},
			{note: "a known token without expires_at", world: `{"tokens": [` + known + `, "created_at": "2026-01-01T00:00:00Z", "revoked": false}]}`, err: `tokens[0].` + expiresAt},
			{note: "a new token without expires_at", world: `{"tokens": [` + newFG + `, "created_at": "2026-01-01T00:00:00Z", "revoked": false}]}`, err: `tokens[0].` + expiresAt},
			{note: "a known token without revoked", world: `{"tokens": [` + known + `, "created_at": "2026-01-01T00:00:00Z", "expires_at": null}]}`, err: `tokens[0].` + revoked},
			{note: "a new token without revoked", world: `{"tokens": [` + newFG + `, "created_at": "2026-01-01T00:00:00Z", "expires_at": null}]}`, err: `tokens[0].` + revoked},
			{note: "revoked null", world: `{"tokens": [` + newFG + `, "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": null}]}`, err: `tokens[0].` + revoked},
			{note: "expires_at of the wrong type", world: `{"tokens": [` + newFG + `, "created_at": "2026-01-01T00:00:00Z", "expires_at": 1, "revoked": false}]}`,
				err: `tokens[0].expires_at: expected a string, got number`},
		} {
			t.Run(tc.note, func(t *testing.T) {
				refused(t, db, before, tc.world, tc.err)
			})
		}
		// A Dump built in Go gives them too.
		if _, err := db.Import(ctx, &Dump{Tokens: []DumpToken{{Token: rawFG2, User: "bob", ResourceOwner: "octo-org", RepositorySelection: "all",
			Permissions: map[string]string{}, CreatedAt: new("2026-01-01T00:00:00Z"), Revoked: new(false)}}}, "test"); err == nil || err.Error() != `tokens[0].`+expiresAt {
			t.Fatalf("err = %v; want the missing expires_at", err)
		}

		// null is no expiry, for a new token as for a known one without one.
		res, err := importJSON(t, db, `{"tokens": [`+known+`, "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}, `+
			newFG+`, "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": true}]}`)
		if want := (ImportResult{Tokens: 1, Unchanged: 1}); err != nil || res != want {
			t.Fatalf("import = %+v, %v; want %+v", res, err, want)
		}
		tok, ok, err := db.Token(ctx, 3)
		if err != nil || !ok || !tok.ExpiresAt.IsZero() || !tok.Revoked || !tok.CreatedAt.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
			t.Fatalf("token 3 = %+v, %v, %v; want docs, revoked, created 2026-01-01, no expiry", tok, ok, err)
		}
	})
}

// Whatever a file holds around a token (a dump's JSON, or not), ParseDump
// does not panic, and neither its error nor its warnings show any of the
// token's secret (tokentest.Leak): an error names a record, a field and a
// position, and describes a key that holds a token (token.Quote).
func FuzzParseDumpHidesTokens(f *testing.F) {
	tokentest.AddSeeds(f)
	f.Add(`{"users": [{"login": 5, "`, `": 1}]}`, []byte{1}, false)
	f.Add(`{"tokens": [{"token": "x"}], "`, `": [], "`, []byte{2}, true)
	f.Add(`{"`, `": [], "users": []}`, []byte{3}, false)
	f.Add(`{"tokens": [{"permissions": {"`, `": 5}}]}`, []byte{4}, true)
	f.Add(`{"users": [{"login": "`, `\ud800"}]}`, []byte{5}, false)
	f.Fuzz(func(t *testing.T, before, after string, random []byte, fine bool) {
		raw, prefix := tokentest.FromBytes(random, fine)
		d, err := ParseDump(strings.NewReader(before + raw + after))
		var out []string
		if err != nil {
			out = append(out, err.Error())
		}
		if d != nil {
			out = append(out, d.Warnings...)
		}
		for _, s := range out {
			if leaked := tokentest.Leak(s, raw[len(prefix):], before, after); leaked != "" {
				t.Fatalf("ParseDump(%q): %q shows %q of the token's secret", before+raw+after, s, leaked)
			}
		}
	})
}
