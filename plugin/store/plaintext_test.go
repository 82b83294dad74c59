package store

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opa-pat/opa-pat/plugin/token"
)

const plainText = ": looks like a personal access token; opa-pat never stores a token in plain text"

// plaintextWorld is a store's content for the refusals below: bob's
// fine-grained tokens 1 (pending), 2 (approved) and 3 (denied) for
// octo-org, whose owner is olga.
func plaintextWorld() *Dump {
	created, expires := "2026-01-01T00:00:00Z", "2026-03-01T00:00:00Z"
	d := &Dump{
		Users:        []DumpUser{{Login: "bob", ManagedBy: Null()}, {Login: "olga", ManagedBy: Null()}},
		Memberships:  []DumpMembership{{User: "bob", Org: "octo-org", Role: "member"}, {User: "olga", Org: "octo-org", Role: "owner"}},
		Repositories: []DumpRepository{{Owner: "octo-org", Name: "app", Visibility: "private"}},
	}
	for i, state := range []string{GrantPending, GrantApproved, GrantDenied} {
		h := hashOf(byte(i + 1))
		d.Tokens = append(d.Tokens, DumpToken{TokenSHA256: hex.EncodeToString(h[:]), Name: "ci" + string(rune('1'+i)), Kind: KindFineGrained, User: "bob",
			ResourceOwner: "octo-org", RepositorySelection: "selected", Repositories: []string{"app"}, Permissions: map[string]string{"contents": "write"},
			CreatedAt: &created, ExpiresAt: NonNull(expires), Revoked: new(false)})
		d.Grants = append(d.Grants, DumpGrant{TokenSHA256: hex.EncodeToString(h[:]), Org: "octo-org", State: state, Reason: "release",
			Reviewer: "olga"})
	}
	return d
}

// holds names a place of the store that holds s (in any case), or "".
func holds(t *testing.T, db *DB, s string) string {
	t.Helper()
	d, err := db.Export(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	events, err := db.ListAudit(t.Context(), AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]any{"export": d, "audit log": events} {
		b, _ := json.Marshal(v)
		if strings.Contains(strings.ToLower(string(b)), strings.ToLower(s)) {
			return name + ": " + string(b)
		}
	}
	return ""
}

// A raw token pasted into a name, a reason or any other text a write
// keeps is refused, by every write, on both backends; the error names the
// field and does not show the token.
func TestRefusesTokensInPlainText(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			location := filepath.Join(t.TempDir(), "pat.db")
			if backend == "postgres" {
				location = testPostgresDSN(t)
			}
			db := openAt(t, location)
			db.now = func() time.Time { return t0.Add(time.Hour) }
			if _, err := db.Import(t.Context(), plaintextWorld(), "test"); err != nil {
				t.Fatal(err)
			}
			for _, raw := range []string{rawClassic, rawFG, strings.ToLower(rawClassic), "it was " + rawFG2 + ", sorry"} {
				testRefusals(t, db, raw)
			}
			for _, raw := range []string{rawClassic, rawFG, rawFG2} {
				secret := raw[strings.LastIndexByte(raw[:len(raw)-40], '_')+1:]
				if where := holds(t, db, secret); where != "" {
					t.Errorf("the store holds %s: %s", raw, where)
				}
			}
		})
	}
}

// A reason or justification holding a token cut short is refused too,
// where a login or a repository keeps the rule of a whole token
// (Contains): free text has no business holding a prefix and thirty
// characters of a token's.
func TestRefusesATokenCutShortInFreeText(t *testing.T) {
	db := openAt(t, filepath.Join(t.TempDir(), "pat.db"))
	db.now = func() time.Time { return t0.Add(time.Hour) }
	if _, err := db.Import(t.Context(), plaintextWorld(), "test"); err != nil {
		t.Fatal(err)
	}
	for _, reason := range []string{rawClassic[:len(rawClassic)-4], "pasted " + rawFG[:60] + " by mistake", strings.ToLower(rawClassic[:37])} {
		_, err := db.Review(t.Context(), ReviewParams{Org: "octo-org", IDs: []int64{1}, Approve: true, Reason: reason, Actor: "olga"})
		if err == nil || err.Error() != "reason"+plainText {
			t.Errorf("review with reason %q...: got %v, want %q", reason[:12], err, "reason"+plainText)
		}
	}
	for _, reason := range []string{"rotating ghp_ tokens this week", "see ACME-1234 and ghp_rotation", strings.Repeat("a", 40)} {
		if err := CheckText("reason", reason); err != nil {
			t.Errorf("reason %q: %v", reason, err)
		}
	}
}

// A token's name and who acts are free text too: a token without its last
// character (all of a classic token's random part, from which the checksum
// follows) was kept as a name, in the tokens table, the audit log and every
// listing, and as the actor of the audit log.
func TestRefusesATokenCutShortInAName(t *testing.T) {
	db := openAt(t, filepath.Join(t.TempDir(), "pat.db"))
	db.now = func() time.Time { return t0.Add(time.Hour) }
	if _, err := db.Import(t.Context(), plaintextWorld(), "test"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{rawClassic[:len(rawClassic)-1], "deploy " + rawFG[:len(rawFG)-1], strings.ToLower(rawClassic[:34])} {
		tk := fgToken(9, "bob", "octo-org")
		tk.Name = name
		if _, _, err := db.CreateToken(t.Context(), CreateTokenParams{Token: tk}); err == nil || err.Error() != "name"+plainText {
			t.Errorf("token named %q...: got %v, want %q", name[:12], err, "name"+plainText)
		}
		d := plaintextWorld()
		d.Tokens[1].Name = name
		if _, err := db.Import(t.Context(), d, "test"); err == nil || err.Error() != "tokens[1].name"+plainText {
			t.Errorf("import of a token named %q...: got %v, want %q", name[:12], err, "tokens[1].name"+plainText)
		}
		if where := holds(t, db, name); where != "" {
			t.Errorf("the store holds %q: %s", name, where)
		}
		// Nor as who acts (the CLI's --actor), which the audit log keeps.
		if err := db.RevokeTokens(t.Context(), []int64{1}, name, ""); err == nil || err.Error() != "actor"+plainText {
			t.Errorf("revocation by %q...: got %v, want %q", name[:12], err, "actor"+plainText)
		}
		if _, err := db.Import(t.Context(), plaintextWorld(), name); err == nil || err.Error() != "actor"+plainText {
			t.Errorf("import by %q...: got %v, want %q", name[:12], err, "actor"+plainText)
		}
	}
	// Names that merely start with a prefix, or hold a word after one, stay.
	for _, name := range []string{"ghp_ rotation", "rotate ghp_tokens weekly", "acme-ci-" + strings.Repeat("a", 40)} {
		tk := fgToken(10, "bob", "octo-org")
		tk.Hash = hashOf(byte(10 + len(name)))
		tk.Name = name
		if _, _, err := db.CreateToken(t.Context(), CreateTokenParams{Token: tk}); err != nil {
			t.Errorf("token named %q: %v", name, err)
		}
	}
}

func testRefusals(t *testing.T, db *DB, raw string) {
	ctx := t.Context()
	tok := strings.TrimSuffix(strings.TrimPrefix(raw, "it was "), ", sorry")
	part := strings.ToLower(tok[len(tok)-30 : len(tok)-10]) // of the secret
	token := func(edit func(*Token)) func() error {
		return func() error {
			tk := fgToken(9, "bob", "octo-org")
			edit(&tk)
			_, _, err := db.CreateToken(ctx, CreateTokenParams{Token: tk})
			return err
		}
	}
	classic := func(edit func(*Token)) func() error {
		return token(func(tk *Token) {
			*tk = Token{Hash: hashOf(9), Name: "laptop", Kind: KindClassic, User: "bob", Scopes: []string{"repo"}, CreatedAt: t0}
			edit(tk)
		})
	}
	imports := func(edit func(*Dump)) func() error {
		return func() error {
			d := plaintextWorld()
			edit(d)
			_, err := db.Import(ctx, d, "test")
			return err
		}
	}
	review := func(reason, actor string) func() error {
		return func() error {
			_, err := db.Review(ctx, ReviewParams{Org: "octo-org", IDs: []int64{1}, Approve: true, Reason: reason, Actor: actor})
			return err
		}
	}
	revokeGrant := func(reason, actor string) func() error {
		return func() error {
			_, err := db.RevokeGrants(ctx, "octo-org", []int64{2}, actor, reason)
			return err
		}
	}
	again := func(reason, actor string) func() error {
		return func() error {
			_, err := db.RequestAgain(ctx, RequestAgainParams{TokenID: 3, Org: "octo-org", Actor: actor, Justification: reason})
			return err
		}
	}
	type refusal struct {
		field    string
		write    func() error
		imported bool // an import's errors are not of a kind
	}
	imp := func(field string, edit func(*Dump)) refusal { return refusal{field, imports(edit), true} }
	for _, tc := range []refusal{
		{"name", token(func(tk *Token) { tk.Name = raw }), false},
		{"user", token(func(tk *Token) { tk.User = raw }), false},
		{"resource_owner", token(func(tk *Token) { tk.ResourceOwner = raw }), false},
		{"repositories[1]", token(func(tk *Token) { tk.Repositories = []string{"app", raw} }), false},
		{"permissions", token(func(tk *Token) { tk.Permissions = map[string]string{raw: "read"} }), false},
		{"permissions.contents", token(func(tk *Token) { tk.Permissions = map[string]string{"contents": raw} }), false},
		{"repository_selection", token(func(tk *Token) { tk.RepositorySelection = raw }), false},
		{"kind", token(func(tk *Token) { tk.Kind = raw }), false},
		{"scopes[1]", classic(func(tk *Token) { tk.Scopes = []string{"repo", raw} }), false},
		{"reason", func() error {
			_, _, err := db.CreateToken(ctx, CreateTokenParams{Token: fgToken(9, "bob", "octo-org"), GrantState: GrantPending, Justification: raw})
			return err
		}, false},
		{"actor", func() error {
			_, _, err := db.CreateToken(ctx, CreateTokenParams{Token: fgToken(9, "bob", "octo-org"), Actor: raw})
			return err
		}, false},
		{"reason", func() error { return db.RevokeTokens(ctx, []int64{1}, "bob", raw) }, false},
		{"actor", func() error { return db.RevokeTokens(ctx, []int64{1}, raw, "") }, false},
		{"reason", review(raw, "olga"), false},
		{"actor", review("", raw), false},
		{"reason", revokeGrant(raw, "olga"), false},
		{"actor", revokeGrant("", raw), false},
		{"reason", again(raw, "bob"), false},
		{"actor", again("", raw), false},

		imp("users[1].login", func(d *Dump) { d.Users[1].Login = raw }),
		imp("users[0].managed_by", func(d *Dump) { d.Users[0].ManagedBy = NonNull(raw) }),
		imp("memberships[0].user", func(d *Dump) { d.Memberships[0].User = raw }),
		imp("memberships[1].org", func(d *Dump) { d.Memberships[1].Org = raw }),
		imp("memberships[0].role", func(d *Dump) { d.Memberships[0].Role = raw }),
		imp("repositories[0].owner", func(d *Dump) { d.Repositories[0].Owner = raw }),
		imp("repositories[0].name", func(d *Dump) { d.Repositories[0].Name = raw }),
		imp("repositories[0].visibility", func(d *Dump) { d.Repositories[0].Visibility = raw }),
		imp("tokens[1].name", func(d *Dump) { d.Tokens[1].Name = raw }),
		imp("tokens[0].user", func(d *Dump) { d.Tokens[0].User = raw }),
		imp("tokens[0].kind", func(d *Dump) { d.Tokens[0].Kind = raw }),
		imp("tokens[0].resource_owner", func(d *Dump) { d.Tokens[0].ResourceOwner = raw }),
		imp("tokens[0].repository_selection", func(d *Dump) { d.Tokens[0].RepositorySelection = raw }),
		imp("tokens[0].repositories[0]", func(d *Dump) { d.Tokens[0].Repositories = []string{raw} }),
		imp("tokens[0].permissions", func(d *Dump) { d.Tokens[0].Permissions = map[string]string{raw: "read"} }),
		imp("tokens[0].permissions.contents", func(d *Dump) { d.Tokens[0].Permissions["contents"] = raw }),
		imp("tokens[0].created_at", func(d *Dump) { d.Tokens[0].CreatedAt = &raw }),
		imp("grants[0].org", func(d *Dump) { d.Grants[0].Org = raw }),
		imp("grants[0].state", func(d *Dump) { d.Grants[0].State = raw }),
		imp("grants[0].reason", func(d *Dump) { d.Grants[0].Reason = raw }),
		imp("grants[1].justification", func(d *Dump) { d.Grants[1].Justification = raw }),
		imp("grants[2].reviewer", func(d *Dump) { d.Grants[2].Reviewer = raw }),
		imp("grants[0].token_name", func(d *Dump) {
			d.Grants[0] = DumpGrant{TokenName: raw, User: "bob", Org: "octo-org", State: GrantPending}
		}),
		imp("grants[0].user", func(d *Dump) {
			d.Grants[0] = DumpGrant{TokenName: "ci1", User: raw, Org: "octo-org", State: GrantPending}
		}),
		{"actor", func() error { _, err := db.Import(ctx, plaintextWorld(), raw); return err }, true},
	} {
		err := tc.write()
		switch {
		case err == nil:
			t.Errorf("%s %q: stored", tc.field, raw)
		case strings.Contains(strings.ToLower(err.Error()), part):
			t.Errorf("%s: the error shows the token: %v", tc.field, err)
		case tc.field == "tokens[0].created_at":
			if want := "tokens[0].created_at: (" + strconv.Itoa(len(raw)) + " characters, not shown: it looks like a personal access token) is not an RFC 3339 time"; err.Error() != want {
				t.Errorf("%s: %v\nwant %s", tc.field, err, want)
			}
		case !strings.HasPrefix(err.Error(), tc.field+plainText):
			t.Errorf("%s: %v\nwant %s%s", tc.field, err, tc.field, plainText)
		case !tc.imported && !errors.Is(err, ErrInvalid):
			t.Errorf("%s: not ErrInvalid: %v", tc.field, err)
		}
	}
}

// lowerCasedPrefixRuns counts the runs of
// TestRefusesALowerCasedTokenOfTheStoresPrefix in this process.
var lowerCasedPrefixRuns atomic.Int32

// A store's own prefixes are noted when it is opened, so that a token of a
// custom prefix is refused even lower-cased (which loses its checksum), as
// GitHub's are: `token create --name` from the CLI knows no prefixes but
// the store's.
func TestRefusesALowerCasedTokenOfTheStoresPrefix(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "pat.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	// Noted prefixes stay noted for the process's life: each run (go test
	// -count=2) needs prefixes no earlier run noted.
	run := lowerCasedPrefixRuns.Add(1)
	custom := token.Prefixes{Classic: fmt.Sprintf("zqxw%d_", run), FineGrained: fmt.Sprintf("zqxwfg%d_", run)}
	for key, v := range map[string]string{MetaClassicPrefix: custom.Classic, MetaFineGrainedPrefix: custom.FineGrained} {
		if err := db.SetMeta(ctx, key, v); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	raw, err := token.Generate(KindClassic, custom)
	if err != nil {
		t.Fatal(err)
	}
	if token.Contains(strings.ToLower(raw)) {
		t.Fatal("the prefix was noted before the store was opened: the test shows nothing")
	}
	db, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tok := fgToken(1, "bob", "octo-org")
	tok.Name = "laptop " + strings.ToLower(raw)
	_, _, err = db.CreateToken(ctx, CreateTokenParams{Token: tok, GrantState: GrantPending})
	if err == nil || err.Error() != "name"+plainText {
		t.Fatalf("a lower-cased token of the store's prefix as a name: %v", err)
	}
}
