package store

import (
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func openTest(t *testing.T) *DB {
	t.Helper()
	db, err := Open(t.Context(), filepath.Join(t.TempDir(), "pat.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.now = func() time.Time { return t0.Add(time.Hour) }
	return db
}

// sortTokens orders tokens by id: Load passes them in no particular order.
func sortTokens(tokens []Token) {
	slices.SortFunc(tokens, func(a, b Token) int { return cmp.Compare(a.ID, b.ID) })
}

func hashOf(b byte) [32]byte {
	var h [32]byte
	h[0], h[31] = b, 1
	return h
}

func fgToken(b byte, user, org string) Token {
	return Token{Hash: hashOf(b), Name: "ci", Kind: KindFineGrained, User: user, ResourceOwner: org, RepositorySelection: "selected",
		Repositories: []string{"app", "lib"}, Permissions: map[string]string{"contents": "write", "issues": "read"},
		CreatedAt: t0, ExpiresAt: t0.Add(30 * 24 * time.Hour)}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		note string
		path string
		err  string
	}{
		{note: "missing directory", path: filepath.Join(dir, "nope", "pat.db"),
			err: `opening store "` + filepath.Join(dir, "nope", "pat.db") + `": directory "` + filepath.Join(dir, "nope") + `": stat ` + filepath.Join(dir, "nope") + `: no such file or directory`},
		{note: "a directory", path: dir, err: `opening store "` + dir + `": it is a directory`},
		{note: "empty", path: "", err: "store: no location given"},
	} {
		t.Run(tc.note, func(t *testing.T) {
			_, err := Open(t.Context(), tc.path)
			if err == nil || err.Error() != tc.err {
				t.Fatalf("err = %v; want %q", err, tc.err)
			}
		})
	}
	t.Run("not a database", func(t *testing.T) {
		p := filepath.Join(dir, "junk.db")
		if err := os.WriteFile(p, []byte(strings.Repeat("not sqlite ", 200)), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Open(t.Context(), p)
		if err == nil || !strings.HasPrefix(err.Error(), `opening store "`+p+`": `) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("reopen keeps data and schema", func(t *testing.T) {
		p := filepath.Join(dir, "a #b %20c.db")
		db, err := Open(t.Context(), p)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.SetMeta(t.Context(), "k", "v"); err != nil {
			t.Fatal(err)
		}
		db.Close()
		db, err = Open(t.Context(), p)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		v, ok, err := db.Meta(t.Context(), "k")
		if err != nil || !ok || v != "v" {
			t.Fatalf("Meta = %q, %v, %v", v, ok, err)
		}
		var n int
		if err := db.rdb.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(migrations) {
			t.Fatalf("migrations = %d, %v", n, err)
		}
		var mode string
		if err := db.rdb.QueryRowContext(t.Context(), `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
			t.Fatalf("journal_mode = %q, %v", mode, err)
		}
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("the store is not at its literal path: %v", err)
		}
	})
}

func TestCreateLoadChanges(t *testing.T) {
	ctx := t.Context()
	db := openTest(t)
	tok, g, err := db.CreateToken(ctx, CreateTokenParams{Token: fgToken(1, "bob", "octo-org"), GrantState: GrantPending, Justification: "release"})
	if err != nil {
		t.Fatal(err)
	}
	if tok.ID != 1 || g == nil || g.ID != 1 || g.State != GrantPending || g.Reason != "release" {
		t.Fatalf("CreateToken = %+v, %+v", tok, g)
	}
	classic := Token{Hash: hashOf(2), Name: "old", Kind: KindClassic, User: "bob", Scopes: []string{"repo", "workflow"}, CreatedAt: t0}
	if _, g, err := db.CreateToken(ctx, CreateTokenParams{Token: classic}); err != nil || g != nil {
		t.Fatalf("CreateToken classic: %v, %v", g, err)
	}

	var users []User
	var tokens []Token
	var grants []Grant
	seq, err := db.Load(ctx, Visitor{
		User:  func(u User) error { users = append(users, u); return nil },
		Token: func(t Token) error { tokens = append(tokens, t); return nil },
		Grant: func(g Grant) error { grants = append(grants, g); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	want := fgToken(1, "bob", "octo-org")
	want.ID = 1
	classic.ID = 2
	sortTokens(tokens)
	if !reflect.DeepEqual(tokens, []Token{want, classic}) {
		t.Fatalf("tokens = %+v", tokens)
	}
	if !reflect.DeepEqual(users, []User{{Login: "bob"}}) {
		t.Fatalf("users = %+v", users)
	}
	wantGrant := Grant{ID: 1, TokenID: 1, Org: "octo-org", State: GrantPending, Reason: "release", CreatedAt: t0, UpdatedAt: t0}
	if !reflect.DeepEqual(grants, []Grant{wantGrant}) {
		t.Fatalf("grants = %+v", grants)
	}
	changes, err := db.Changes(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := db.Changes(ctx, 2, 1); len(c) != 1 || len(changes) != 4 || c[0] != changes[2] {
		t.Fatalf("Changes(2, 1) = %+v, of %+v", c, changes)
	}
	// Every change has a nonce of its own, drawn by the database.
	nonces := map[int64]bool{}
	for i, c := range changes {
		if c.Nonce == 0 || nonces[c.Nonce] {
			t.Fatalf("change %d has nonce %d, not a new random one: %+v", c.Seq, c.Nonce, changes)
		}
		nonces[c.Nonce] = true
		changes[i].Nonce = 0
	}
	wantChanges := []Change{{Seq: 1, Entity: EntityUser, Key: "bob"}, {Seq: 2, Entity: EntityToken, Key: "1"},
		{Seq: 3, Entity: EntityGrant, Key: "1/octo-org"}, {Seq: 4, Entity: EntityToken, Key: "2"}}
	if !reflect.DeepEqual(changes, wantChanges) || seq != 4 {
		t.Fatalf("changes = %+v, seq %d", changes, seq)
	}

	// Point reads.
	if got, ok, err := db.Token(ctx, 1); err != nil || !ok || !reflect.DeepEqual(got, want) {
		t.Fatalf("Token(1) = %+v, %v, %v", got, ok, err)
	}
	if _, ok, err := db.Token(ctx, 99); err != nil || ok {
		t.Fatalf("Token(99) = %v, %v", ok, err)
	}
	if got, ok, err := db.Grant(ctx, 1, "octo-org"); err != nil || !ok || !reflect.DeepEqual(got, wantGrant) {
		t.Fatalf("Grant = %+v, %v, %v", got, ok, err)
	}
	if got, ok, err := db.TokenByHash(ctx, hashOf(2)); err != nil || !ok || got.ID != 2 {
		t.Fatalf("TokenByHash = %+v, %v, %v", got, ok, err)
	}

	// A duplicate hash is refused.
	_, _, err = db.CreateToken(ctx, CreateTokenParams{Token: classic})
	if err == nil || err.Error() != "token: a token with this hash already exists" || !errors.Is(err, ErrInvalid) {
		t.Fatalf("duplicate: %v", err)
	}
}

func TestReview(t *testing.T) {
	ctx := t.Context()
	db := openTest(t)
	addMember(t, db, "bob", "octo-org") // an approval needs it (rule 10)
	for i := byte(1); i <= 3; i++ {
		if _, _, err := db.CreateToken(ctx, CreateTokenParams{Token: fgToken(i, "bob", "octo-org"), GrantState: GrantPending}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Review(ctx, ReviewParams{Org: "octo-org", IDs: []int64{1}, Approve: true, Actor: "alice", Reason: "ok"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		note string
		p    ReviewParams
		err  string
	}{
		{note: "no ids", p: ReviewParams{Org: "octo-org"}, err: "request ids: give 1 to 100 ids, got 0"},
		{note: "too many ids", p: ReviewParams{Org: "octo-org", IDs: make([]int64, 101)}, err: "request ids: give 1 to 100 ids, got 101"},
		{note: "duplicate", p: ReviewParams{Org: "octo-org", IDs: []int64{2, 2}}, err: "request ids: 2 given twice"},
		{note: "reason too long", p: ReviewParams{Org: "octo-org", IDs: []int64{2}, Reason: strings.Repeat("é", 1025)}, err: "reason: longer than 1024 characters"},
		{note: "reason with NUL", p: ReviewParams{Org: "octo-org", IDs: []int64{2}, Reason: "a\x00b"}, err: "reason: must not contain NUL"},
		{note: "reason not UTF-8", p: ReviewParams{Org: "octo-org", IDs: []int64{2}, Reason: "a\xffb"}, err: "reason: not valid UTF-8"},
		{note: "other org", p: ReviewParams{Org: "other", IDs: []int64{2, 3}}, err: "requests 2, 3 not found in other"},
		{note: "not pending and missing", p: ReviewParams{Org: "octo-org", IDs: []int64{1, 2, 9}},
			err: "request 9 not found in octo-org\nonly pending requests can be reviewed: request 1 is approved"},
	} {
		t.Run(tc.note, func(t *testing.T) {
			_, err := db.Review(ctx, tc.p)
			if err == nil || err.Error() != tc.err {
				t.Fatalf("err = %v; want %q", err, tc.err)
			}
		})
	}
	// All or nothing: 2 stays pending after the failed reviews.
	if g, _, _ := db.Grant(ctx, 2, "octo-org"); g.State != GrantPending {
		t.Fatalf("grant 2 = %+v", g)
	}
	gs, err := db.Review(ctx, ReviewParams{Org: "octo-org", IDs: []int64{2, 3}, Actor: "alice", Reason: "no"})
	if err != nil || len(gs) != 2 || gs[0].State != GrantDenied || gs[1].Reason != "no" || gs[1].Reviewer != "alice" {
		t.Fatalf("deny = %+v, %v", gs, err)
	}
	// Revoke an approved grant, then request again.
	if _, err := db.RevokeGrants(ctx, "octo-org", []int64{2}, "alice", ""); err == nil ||
		err.Error() != "only approved grants can be revoked: token 2 is not approved in octo-org" {
		t.Fatalf("revoke denied: %v", err)
	}
	if gs, err := db.RevokeGrants(ctx, "octo-org", []int64{1}, "alice", "left"); err != nil || gs[0].State != GrantRevoked {
		t.Fatalf("revoke = %+v, %v", gs, err)
	}
	if _, err := db.RequestAgain(ctx, RequestAgainParams{TokenID: 3, Org: "octo-org", Actor: "bob", Justification: ""}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.RequestAgain(ctx, RequestAgainParams{TokenID: 3, Org: "octo-org", Actor: "bob", Justification: ""}); err == nil ||
		err.Error() != "token 3: its grant for octo-org is pending; only a denied or revoked grant can be requested again" {
		t.Fatalf("again: %v", err)
	}
	if g, _, _ := db.Grant(ctx, 3, "octo-org"); g.State != GrantPending || g.ID != 4 {
		t.Fatalf("grant 3 = %+v", g)
	}

	// A fine-grained token of the organization with no grant at all may ask
	// for one; a token aimed elsewhere, a classic one or a missing one may not.
	if _, _, err := db.CreateToken(ctx, CreateTokenParams{Token: fgToken(4, "bob", "octo-org")}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.CreateToken(ctx, CreateTokenParams{Token: fgToken(5, "bob", "bob")}); err != nil {
		t.Fatal(err)
	}
	if g, err := db.RequestAgain(ctx, RequestAgainParams{TokenID: 4, Org: "octo-org", Actor: "bob", Justification: "members"}); err != nil || g.State != GrantPending || g.TokenID != 4 || g.Reason != "members" {
		t.Fatalf("first request = %+v, %v", g, err)
	}
	// A revoked token does not ask again.
	if err := db.RevokeToken(ctx, 3, "bob", ""); err != nil {
		t.Fatal(err)
	}
	// Nor is its pending request reviewed: GitHub drops a deleted token's requests.
	if _, err := db.Review(ctx, ReviewParams{Org: "octo-org", IDs: []int64{4}, Actor: "alice", Approve: true}); !errors.Is(err, ErrInvalidState) ||
		err.Error() != "the token of a request is revoked; nothing to review: request 4 (token 3)" {
		t.Fatalf("review of a revoked token's request: %v", err)
	}
	if g, _, _ := db.Grant(ctx, 3, "octo-org"); g.State != GrantPending {
		t.Fatalf("grant 3 = %+v after a refused review", g)
	}
	// An approved grant of a revoked token has nothing left to revoke.
	dead, g6, err := db.CreateToken(ctx, CreateTokenParams{Token: fgToken(6, "bob", "octo-org"), GrantState: GrantPending})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Review(ctx, ReviewParams{Org: "octo-org", IDs: []int64{g6.ID}, Actor: "alice", Approve: true}); err != nil {
		t.Fatal(err)
	}
	if err := db.RevokeToken(ctx, dead.ID, "bob", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := db.RevokeGrants(ctx, "octo-org", []int64{dead.ID}, "alice", ""); !errors.Is(err, ErrInvalidState) || err.Error() != fmt.Sprintf("token %d is revoked; nothing to revoke", dead.ID) {
		t.Fatalf("revoking the grant of a revoked token: %v", err)
	}
	classic, _, err := db.CreateToken(ctx, CreateTokenParams{Token: Token{Hash: hashOf(7), Name: "laptop", Kind: KindClassic, User: "bob",
		Scopes: []string{"repo"}, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}})
	if err != nil {
		t.Fatal(err)
	}
	// Why a token cannot ask, each case with its own reason (for the CLI's
	// and the admin API's words) and kind, in this order: a revoked token
	// aimed elsewhere is refused as aimed elsewhere.
	for _, tc := range []struct {
		note   string
		id     int64
		org    string
		reason error
		kind   error
		err    string
	}{
		{"unknown", 99, "octo-org", ErrNoSuchToken, ErrNotFound, "token 99 not found"},
		{"classic", classic.ID, "octo-org", ErrNotOrgToken, ErrInvalid, fmt.Sprintf("token %d is not a fine-grained token aimed at an organization", classic.ID)},
		{"the user's own", 5, "bob", ErrNotOrgToken, ErrInvalid, "token 5 is not a fine-grained token aimed at an organization"},
		{"another organization", 4, "other-org", ErrOtherOrg, ErrInvalid, "token 4's resource owner is octo-org, not other-org (rule 6)"},
		{"the organization spelled otherwise", 4, "Octo-Org", ErrOtherOrg, ErrInvalid, "token 4's resource owner is octo-org, not Octo-Org (rule 6)"},
		{"revoked, aimed elsewhere", 3, "other-org", ErrOtherOrg, ErrInvalid, "token 3's resource owner is octo-org, not other-org (rule 6)"},
		{"revoked", 3, "octo-org", ErrTokenRevoked, ErrInvalidState, "token 3 is revoked; create a new token and ask for access with it"},
		{"pending", 4, "octo-org", ErrGrantOpen, ErrInvalidState, "token 4: its grant for octo-org is pending; only a denied or revoked grant can be requested again"},
	} {
		t.Run(tc.note, func(t *testing.T) {
			_, err := db.RequestAgain(ctx, RequestAgainParams{TokenID: tc.id, Org: tc.org, Actor: "bob", Justification: ""})
			if err == nil || err.Error() != tc.err || !errors.Is(err, tc.reason) || !errors.Is(err, tc.kind) {
				t.Fatalf("RequestAgain(%d, %s) = %v; want %q (%v, %v)", tc.id, tc.org, err, tc.err, tc.reason, tc.kind)
			}
			for _, other := range []error{ErrNoSuchToken, ErrNotOrgToken, ErrOtherOrg, ErrTokenRevoked, ErrGrantOpen, ErrNotMember, ErrDecisionStands} {
				if other != tc.reason && errors.Is(err, other) {
					t.Fatalf("RequestAgain(%d, %s) = %v is also %v", tc.id, tc.org, err, other)
				}
			}
		})
	}
}

func TestWake(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	db := openTest(t)
	other, err := Open(ctx, db.Location())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ch := db.Wake(ctx)
	time.Sleep(2 * WakeInterval) // the first poll records the version
	if err := other.SetMeta(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(2 * time.Second):
		t.Fatal("no wake-up within 2s of a write by another connection")
	}
	cancel()
	deadline := time.After(2 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("channel not closed after ctx ended")
		}
	}
}

func TestTouchLastUsed(t *testing.T) {
	ctx := t.Context()
	db := openTest(t)
	var ids []int64
	for i := range 3 {
		tok, _, err := db.CreateToken(ctx, CreateTokenParams{Token: Token{Hash: hashOf(byte(i + 1)), Kind: KindClassic, User: "bob", CreatedAt: t0}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tok.ID)
	}
	at := t0.Add(time.Minute)
	if err := db.TouchLastUsed(ctx, ids[:2], at); err != nil {
		t.Fatal(err)
	}
	for i, want := range []time.Time{at, at, {}} {
		tok, _, _ := db.Token(ctx, ids[i])
		if !tok.LastUsedAt.Equal(want) {
			t.Fatalf("token %d last used %v; want %v", ids[i], tok.LastUsedAt, want)
		}
	}
}

// TestLoadPacked checks the packed rows of the SQLite Load against the
// point reads, with values that contain the separator and multibyte text.
func TestLoadPacked(t *testing.T) {
	ctx := t.Context()
	db := openTest(t)
	tricky := fgToken(1, "bob", "octo-org")
	tricky.Name = "déploy\x1fname,=x"
	tricky.LastUsedAt = t0.Add(time.Minute)
	tricky.Revoked = true
	if _, _, err := db.CreateToken(ctx, CreateTokenParams{Token: tricky, GrantState: GrantPending, Justification: "é\x1fwhy"}); err != nil {
		t.Fatal(err)
	}
	noExpiry := Token{Hash: hashOf(2), Kind: KindClassic, User: "bob", CreatedAt: t0}
	if _, _, err := db.CreateToken(ctx, CreateTokenParams{Token: noExpiry}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.CreateToken(ctx, CreateTokenParams{Token: fgToken(3, "bob", "octo-org"), GrantState: GrantPending, Justification: "ü"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Review(ctx, ReviewParams{Org: "octo-org", IDs: []int64{2}, Reason: "nö\x1fpe", Actor: "al\x1fice"}); err != nil {
		t.Fatal(err)
	}
	var tokens []Token
	var grants []Grant
	if _, err := db.Load(ctx, Visitor{
		Token: func(t Token) error { tokens = append(tokens, t); return nil },
		Grant: func(g Grant) error { grants = append(grants, g); return nil },
	}); err != nil {
		t.Fatal(err)
	}
	if len(tokens) != 3 || len(grants) != 2 {
		t.Fatalf("loaded %d tokens, %d grants", len(tokens), len(grants))
	}
	sortTokens(tokens)
	for _, got := range tokens {
		want, _, err := db.Token(ctx, got.ID)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("token %d: Load %+v; Token %+v (%v)", got.ID, got, want, err)
		}
	}
	for _, got := range grants {
		want, _, err := db.Grant(ctx, got.TokenID, got.Org)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("grant %d: Load %+v; Grant %+v (%v)", got.ID, got, want, err)
		}
	}
	if grants[0].Reason != "é\x1fwhy" || grants[1].Reason != "nö\x1fpe" || grants[1].Reviewer != "al\x1fice" || tokens[0].Name != tricky.Name {
		t.Fatalf("tokens %+v, grants %+v", tokens, grants)
	}

	// The packed column written in Go is what SQL computes for rows that
	// lack it (copied by another tool), and such rows load the same.
	var same int
	if err := db.rdb.QueryRowContext(ctx, `SELECT COUNT(*) FROM tokens WHERE packed = `+immutablePacked).Scan(&same); err != nil || same != 3 {
		t.Fatalf("%d of 3 packed columns match SQL's packing (%v)", same, err)
	}
	if _, err := db.wdb.ExecContext(ctx, `UPDATE tokens SET packed = ''`); err != nil {
		t.Fatal(err)
	}
	var again []Token
	if _, err := db.Load(ctx, Visitor{Token: func(t Token) error { again = append(again, t); return nil }}); err != nil {
		t.Fatal(err)
	}
	sortTokens(again)
	if !reflect.DeepEqual(again, tokens) {
		t.Fatalf("unpacked rows load as %+v; want %+v", again, tokens)
	}
}

// TestLoadManyAndVisitorError loads more rows than one pipeline batch and
// checks that a visitor's error stops the load and is returned.
func TestLoadManyAndVisitorError(t *testing.T) {
	ctx := t.Context()
	db := openTest(t)
	const n = 3*pipelineBatch + 7
	if err := db.BulkInsert(ctx, func(w *BulkWriter) error {
		for i := range n {
			var h [32]byte
			h[0], h[1], h[2] = byte(i), byte(i>>8), 1
			if _, err := w.Token(Token{Hash: h, Kind: KindClassic, User: "bob", CreatedAt: t0}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	seq, err := db.Load(ctx, Visitor{Token: func(t Token) error { ids = append(ids, t.ID); return nil }})
	slices.Sort(ids)
	if err != nil || seq != n || len(ids) != n || ids[0] != 1 || ids[n-1] != n {
		t.Fatalf("Load: seq %d, %d ids, %v", seq, len(ids), err)
	}
	stop := errors.New("stop")
	count := 0
	_, err = db.Load(ctx, Visitor{Token: func(t Token) error {
		count++
		if count == pipelineBatch+2 {
			return stop
		}
		return nil
	}})
	if !errors.Is(err, stop) || err.Error() != "loading tokens: stop" || count != pipelineBatch+2 {
		t.Fatalf("Load = %v after %d tokens", err, count)
	}
	// The store is still usable.
	if _, ok, err := db.Token(ctx, 1); err != nil || !ok {
		t.Fatalf("Token(1) = %v, %v", ok, err)
	}
}

// openAtVersion opens (creating) a store at location as an opa-pat whose
// schema ends at version v made it.
func openAtVersion(t *testing.T, location string, v int) *DB {
	t.Helper()
	saved := migrations
	migrations = migrations[:v]
	db, err := Open(t.Context(), location)
	migrations = saved
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// TestMigrateFromV1: a store made by schema version 1 is upgraded on open,
// its tokens packed, and loads as before.
func TestMigrateFromV1(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "v1.db")
	db := openAtVersion(t, path, 1)
	tok := fgToken(1, "bob", "octo-org")
	if _, err := db.wdb.ExecContext(ctx, `INSERT INTO tokens (hash, name, kind, user_login, repositories, permissions, resource_owner, repository_selection, created_at, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, tok.Hash[:], tok.Name, tok.Kind, tok.User, joinList(tok.Repositories), encodePermissions(tok.Permissions),
		tok.ResourceOwner, tok.RepositorySelection, nanos(tok.CreatedAt), nanos(tok.ExpiresAt)); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var version int
	var packed string
	if err := db.rdb.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&version); err != nil || version != len(migrations) {
		t.Fatalf("schema version %d (%v); want %d", version, err, len(migrations))
	}
	tok.ID = 1
	if err := db.rdb.QueryRowContext(ctx, `SELECT packed FROM tokens WHERE id = 1`).Scan(&packed); err != nil || packed != packToken(tok) {
		t.Fatalf("packed = %q (%v); want %q", packed, err, packToken(tok))
	}
	var got []Token
	if _, err := db.Load(ctx, Visitor{Token: func(t Token) error { got = append(got, t); return nil }}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, []Token{tok}) {
		t.Fatalf("Load = %+v; want %+v", got, []Token{tok})
	}
}

// TestLoadEveryRequest: a token denied in an organization and requested
// again has two requests there. Load passes only the current one, unless
// the visitor asks for every request: then both come, in id order, the
// current one last. On SQLite and on PostgreSQL (skipped without a server).
func TestLoadEveryRequest(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			db := openTest(t)
			if backend == "postgres" {
				db = openAt(t, testPostgresDSN(t))
				db.now = func() time.Time { return t0.Add(time.Hour) }
			}
			testLoadEveryRequest(t, db)
		})
	}
}

func testLoadEveryRequest(t *testing.T, db *DB) {
	ctx := t.Context()
	addMember(t, db, "bob", "octo-org") // a request again needs it (rule 10)
	if _, _, err := db.CreateToken(ctx, CreateTokenParams{Token: fgToken(1, "bob", "octo-org"), GrantState: GrantPending, Justification: "first"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Review(ctx, ReviewParams{Org: "octo-org", IDs: []int64{1}, Actor: "alice", Reason: "no"}); err != nil {
		t.Fatal(err)
	}
	again, err := db.RequestAgain(ctx, RequestAgainParams{TokenID: 1, Org: "octo-org", Actor: "bob", Justification: "second"})
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != 2 {
		t.Fatalf("the new request is %d; want 2", again.ID)
	}
	for _, tc := range []struct {
		note  string
		every bool
		want  []string // id:state:reason
	}{
		{note: "current grants", want: []string{"2:pending:second"}},
		{note: "every request", every: true, want: []string{"1:denied:no", "2:pending:second"}},
	} {
		t.Run(tc.note, func(t *testing.T) {
			var got []string
			if _, err := db.Load(ctx, Visitor{EveryRequest: tc.every, Grant: func(g Grant) error {
				got = append(got, fmt.Sprintf("%d:%s:%s", g.ID, g.State, g.Reason))
				return nil
			}}); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("grants %q; want %q", got, tc.want)
			}
		})
	}
}

// TestLoadSizes: Load announces how many records follow before the first
// one. SQLite counts by the largest ids; PostgreSQL has no row ids for
// users and memberships and gives its statistics, which a table gets when
// it is first analyzed.
func TestLoadSizes(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			ctx := t.Context()
			db := openTest(t)
			if backend == "postgres" {
				db = openAt(t, testPostgresDSN(t))
			}
			dump := &Dump{
				Users:       []DumpUser{{Login: "bob", ManagedBy: Null()}, {Login: "eve", ManagedBy: Null()}, {Login: "al", ManagedBy: Null()}},
				Memberships: []DumpMembership{{User: "bob", Org: "octo-org", Role: "member"}, {User: "eve", Org: "octo-org", Role: "owner"}},
			}
			if _, err := db.Import(ctx, dump, "test"); err != nil {
				t.Fatal(err)
			}
			for i := byte(1); i <= 2; i++ {
				if _, _, err := db.CreateToken(ctx, CreateTokenParams{Token: fgToken(i, "bob", "octo-org"), GrantState: GrantPending}); err != nil {
					t.Fatal(err)
				}
			}
			want := Sizes{Tokens: 2, Grants: 2, Users: 3, Memberships: 2}
			if backend == "postgres" {
				if _, err := db.wdb.ExecContext(ctx, `ANALYZE users; ANALYZE memberships`); err != nil {
					t.Fatal(err)
				}
			}
			var got Sizes
			calls, records := 0, 0
			if _, err := db.Load(ctx, Visitor{
				Sizes: func(n Sizes) {
					if records > 0 {
						t.Error("Sizes called after a record")
					}
					got = n
					calls++
				},
				User:  func(User) error { records++; return nil },
				Token: func(Token) error { records++; return nil },
			}); err != nil {
				t.Fatal(err)
			}
			if calls != 1 || got != want {
				t.Fatalf("Sizes called %d times with %+v; want once with %+v", calls, got, want)
			}
		})
	}
}

// A fresh store is empty; one record makes it not.
func TestEmpty(t *testing.T) {
	db := openTest(t)
	if empty, err := db.Empty(t.Context()); err != nil || !empty {
		t.Fatalf("fresh store: Empty = %v, %v", empty, err)
	}
	if _, _, err := db.CreateToken(t.Context(), CreateTokenParams{Token: fgToken(1, "bob", "octo-org")}); err != nil {
		t.Fatal(err)
	}
	if empty, err := db.Empty(t.Context()); err != nil || empty {
		t.Fatalf("with a token: Empty = %v, %v", empty, err)
	}
}

// Settings someone records are an audit event, as every other write
// someone makes; those a sidecar copies from its bundle (SetSettings) are
// not. A token given as the actor is refused, and the settings with it.
func TestRecordSettingsAudit(t *testing.T) { adminBackends(t, testRecordSettingsAudit) }

func testRecordSettingsAudit(t *testing.T, location string) {
	ctx := t.Context()
	db := openAt(t, location)
	hexOf := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	first, second := `{"organizations":{"octo-org":{"classic_access":"deny"}}}`, `{}`
	if err := db.RecordSettings(ctx, []byte(first), "cli:alice"); err != nil {
		t.Fatal(err)
	}
	if err := db.SetSettings(ctx, []byte(`{"from":"bundle"}`)); err != nil {
		t.Fatal(err)
	}
	if err := db.RecordSettings(ctx, []byte(second), "cli:bob"); err != nil {
		t.Fatal(err)
	}
	if err := db.RecordSettings(ctx, []byte(`{"x":1}`), "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"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a token as the actor: %v", err)
	}
	if b, err := db.Settings(ctx); err != nil || string(b) != second {
		t.Fatalf("Settings() = %s, %v", b, err)
	}
	events, err := db.ListAudit(ctx, AuditFilter{Action: ActionSettingsRecord})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range events {
		got = append(got, fmt.Sprintf("%s %s %s %v -> %v", e.Actor, e.Action, e.Org, e.Details["previous_sha256"], e.Details["sha256"]))
	}
	want := []string{
		"cli:alice settings.record  <nil> -> " + hexOf(first),
		"cli:bob settings.record  " + hexOf(`{"from":"bundle"}`) + " -> " + hexOf(second),
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events\n%q\nwant\n%q", got, want)
	}
	if all, err := db.ListAudit(ctx, AuditFilter{}); err != nil || len(all) != 2 {
		t.Fatalf("every event: %+v, %v", all, err)
	}
	// The store's log is filtered on it; an organization's has no such events.
	if err := CheckStoreAuditAction(ActionSettingsRecord); err != nil {
		t.Fatal(err)
	}
	if err := CheckAuditAction(ActionSettingsRecord); err == nil {
		t.Fatal("an organization's log filtered on settings.record")
	}
}

// addMember makes user a member (role member) of org, as an approval and
// a request again need it (rule 10), without an import's audit event.
func addMember(t testing.TB, db *DB, user, org string) {
	t.Helper()
	ctx := context.Background()
	if err := db.write(ctx, func(tx *sql.Tx) error {
		if err := ensureUser(ctx, tx, user); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO memberships (user_login, org, role) VALUES ($1, $2, 'member') ON CONFLICT (user_login, org) DO NOTHING`, user, org)
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// storeRows is every request and audit event, to check that a refusal
// wrote nothing.
func storeRows(t *testing.T, db *DB) string {
	t.Helper()
	reqs, err := db.ListRequests(t.Context(), RequestFilter{})
	if err != nil {
		t.Fatal(err)
	}
	events, err := db.ListAudit(t.Context(), AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%+v\n%+v", reqs, events)
}

// Where approval is disabled (the caller says so), a pending grant lets the
// token through (rules 20 and 22): a request after a denial or a
// revocation would undo the owner's decision before any review, so it is
// refused, naming which decision stands, and nothing is written. A first
// request, and a request again where approval is required, are filed.
func TestRequestAgainWhereApprovalIsDisabled(t *testing.T) {
	ctx := t.Context()
	db := openTest(t)
	addMember(t, db, "bob", "acme-labs")
	for i := byte(1); i <= 3; i++ {
		if _, _, err := db.CreateToken(ctx, CreateTokenParams{Token: fgToken(i, "bob", "acme-labs"), GrantState: GrantApproved}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.RevokeGrants(ctx, "acme-labs", []int64{1}, "alice", "leaked"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.RequestAgain(ctx, RequestAgainParams{TokenID: 2, Org: "acme-labs", Actor: "bob"}); !errors.Is(err, ErrGrantOpen) {
		t.Fatalf("approved: %v", err)
	}
	if _, err := db.RevokeGrants(ctx, "acme-labs", []int64{2}, "alice", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := db.RequestAgain(ctx, RequestAgainParams{TokenID: 2, Org: "acme-labs", Actor: "bob"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Review(ctx, ReviewParams{Org: "acme-labs", IDs: []int64{4}, Actor: "alice", Reason: "no"}); err != nil {
		t.Fatal(err)
	}
	before := storeRows(t, db)
	for _, tc := range []struct {
		note string
		id   int64
		err  string
	}{
		{"revoked", 1, "token 1: approval of fine-grained personal access tokens is disabled in acme-labs, so a new request would let the token through " +
			"before an owner reviewed it: an owner revoked its access (request 1), and an owner's decision stands (rule 20); " +
			"ask an owner of acme-labs to require approval, or create a new token"},
		{"denied", 2, "token 2: approval of fine-grained personal access tokens is disabled in acme-labs, so a new request would let the token through " +
			"before an owner reviewed it: an owner denied its request (request 4), and an owner's decision stands (rule 20); " +
			"ask an owner of acme-labs to require approval, or create a new token"},
	} {
		t.Run(tc.note, func(t *testing.T) {
			_, err := db.RequestAgain(ctx, RequestAgainParams{TokenID: tc.id, Org: "acme-labs", Actor: "bob", Justification: "again", ApprovalDisabled: true})
			if err == nil || err.Error() != tc.err || !errors.Is(err, ErrDecisionStands) || !errors.Is(err, ErrInvalidState) {
				t.Fatalf("RequestAgain = %v; want %q", err, tc.err)
			}
		})
	}
	if after := storeRows(t, db); after != before {
		t.Fatalf("a refused request wrote:\n%s\nwas\n%s", after, before)
	}
	// An approved grant is refused as before, a first request is filed.
	if _, err := db.RequestAgain(ctx, RequestAgainParams{TokenID: 3, Org: "acme-labs", Actor: "bob", ApprovalDisabled: true}); !errors.Is(err, ErrGrantOpen) {
		t.Fatalf("approved, approval disabled: %v", err)
	}
	if _, _, err := db.CreateToken(ctx, CreateTokenParams{Token: fgToken(9, "bob", "acme-labs")}); err != nil {
		t.Fatal(err)
	}
	if g, err := db.RequestAgain(ctx, RequestAgainParams{TokenID: 4, Org: "acme-labs", Actor: "bob", ApprovalDisabled: true}); err != nil || g.State != GrantPending {
		t.Fatalf("first request, approval disabled: %+v %v", g, err)
	}
	// Where approval is required, the revoked and denied grants are asked again.
	for _, id := range []int64{1, 2} {
		if g, err := db.RequestAgain(ctx, RequestAgainParams{TokenID: id, Org: "acme-labs", Actor: "bob", Justification: "again"}); err != nil || g.State != GrantPending {
			t.Fatalf("token %d, approval required: %+v %v", id, g, err)
		}
	}
}

// A user who is not a member (or an owner) of the organization, an outside
// collaborator or one who left, cannot ask for a token's access to it, in
// creation's words (rule 10), and nothing is written. An owner may.
func TestRequestAgainNeedsAMember(t *testing.T) {
	ctx := t.Context()
	db := openTest(t)
	if _, err := db.Import(ctx, &Dump{Memberships: []DumpMembership{{User: "carol", Org: "octo-org", Role: "outside_collaborator"},
		{User: "dave", Org: "octo-org", Role: "owner"}}}, "test"); err != nil {
		t.Fatal(err)
	}
	for i, user := range []string{"bob", "carol", "dave"} {
		if _, _, err := db.CreateToken(ctx, CreateTokenParams{Token: fgToken(byte(i+1), user, "octo-org"), GrantState: GrantPending}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Review(ctx, ReviewParams{Org: "octo-org", IDs: []int64{int64(i + 1)}, Actor: "alice"}); err != nil {
			t.Fatal(err)
		}
	}
	before := storeRows(t, db)
	for id, user := range map[int64]string{1: "bob", 2: "carol"} {
		_, err := db.RequestAgain(ctx, RequestAgainParams{TokenID: id, Org: "octo-org", Actor: user})
		want := user + " is not a member of octo-org: only members of octo-org can create fine-grained personal access tokens for it; ask an owner of octo-org for membership"
		if err == nil || err.Error() != want || !errors.Is(err, ErrNotMember) {
			t.Fatalf("%s: %v; want %q", user, err, want)
		}
	}
	if after := storeRows(t, db); after != before {
		t.Fatalf("a refused request wrote:\n%s\nwas\n%s", after, before)
	}
	if _, err := db.RequestAgain(ctx, RequestAgainParams{TokenID: 3, Org: "octo-org", Actor: "dave"}); err != nil {
		t.Fatalf("an owner: %v", err)
	}
}

// An approval that could never take effect is refused, naming each
// request: one whose token has expired (rule 2), and one whose token's
// user is no longer a member of the organization (rule 10). Nothing is
// written. Either may be denied, to close the request.
func TestReviewRefusesApprovalsThatCannotTakeEffect(t *testing.T) {
	ctx := t.Context()
	db := openTest(t) // now: t0 + 1h
	addMember(t, db, "bob", "octo-org")
	expired := fgToken(1, "bob", "octo-org")
	expired.ExpiresAt = t0.Add(time.Hour) // expired at now, as the decision has it
	for _, tk := range []Token{expired, fgToken(2, "carol", "octo-org"), fgToken(3, "bob", "octo-org")} {
		if _, _, err := db.CreateToken(ctx, CreateTokenParams{Token: tk, GrantState: GrantPending}); err != nil {
			t.Fatal(err)
		}
	}
	before := storeRows(t, db)
	_, err := db.Review(ctx, ReviewParams{Org: "octo-org", IDs: []int64{1, 2, 3}, Approve: true, Actor: "alice"})
	want := "the token of a request has expired; nothing to approve (deny the request to close it): request 1 (token 1)\n" +
		"the user of a request's token is not a member of octo-org (rule 10); nothing to approve (deny the request to close it): request 2 (token 2 of carol)"
	if err == nil || err.Error() != want || !errors.Is(err, ErrInvalidState) {
		t.Fatalf("Review = %v; want %q", err, want)
	}
	if after := storeRows(t, db); after != before {
		t.Fatalf("a refused review wrote:\n%s\nwas\n%s", after, before)
	}
	if gs, err := db.Review(ctx, ReviewParams{Org: "octo-org", IDs: []int64{1, 2}, Actor: "alice", Reason: "closing"}); err != nil || len(gs) != 2 || gs[1].State != GrantDenied {
		t.Fatalf("deny = %+v %v", gs, err)
	}
	if gs, err := db.Review(ctx, ReviewParams{Org: "octo-org", IDs: []int64{3}, Approve: true, Actor: "alice"}); err != nil || gs[0].State != GrantApproved {
		t.Fatalf("approve = %+v %v", gs, err)
	}
}
