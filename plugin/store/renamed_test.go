package store

import (
	"encoding/hex"
	"maps"
	"reflect"
	"testing"

	"github.com/opa-pat/opa-pat/plugin/token"
)

// oldPermissions are a token's permissions as an earlier opa-pat stored
// them, with its names for what GitHub calls actions_variables,
// git_signing_ssh_public_keys and user_models; githubPermissions are the
// same permissions in GitHub's names.
var (
	oldPermissions    = map[string]string{"contents": "write", "metadata": "read", "models": "read", "ssh_signing_keys": "write", "variables": "read"}
	githubPermissions = map[string]string{"contents": "write", "metadata": "read", "user_models": "read", "git_signing_ssh_public_keys": "write", "actions_variables": "read"}
)

// A store an earlier opa-pat wrote holds tokens under its names for some
// permissions. Every read gives GitHub's names at the same levels, without
// rewriting the row (an earlier opa-pat sharing the store still reads
// it); the admin API's permission filter finds the token by either name.
func TestEarlierPermissionNamesReadAsGitHubs(t *testing.T) {
	adminBackends(t, testEarlierPermissionNames)
}

func testEarlierPermissionNames(t *testing.T, location string) {
	ctx := t.Context()
	db := openAt(t, location)
	old := fgToken(1, "bob", "octo-org")
	old.Permissions = oldPermissions
	created, _, err := db.CreateToken(ctx, CreateTokenParams{Token: old, GrantState: GrantApproved})
	if err != nil {
		t.Fatal(err)
	}
	other := fgToken(2, "bob", "octo-org")
	other.Permissions = map[string]string{"secrets": "read"}
	if _, _, err := db.CreateToken(ctx, CreateTokenParams{Token: other, GrantState: GrantApproved}); err != nil {
		t.Fatal(err)
	}
	want := func(where string, got map[string]string) {
		t.Helper()
		if !maps.Equal(got, githubPermissions) {
			t.Errorf("%s: permissions = %v; want %v", where, got, githubPermissions)
		}
	}

	var stored string
	if err := db.rdb.QueryRowContext(ctx, `SELECT permissions FROM tokens WHERE id = $1`, created.ID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if w := "contents=write,metadata=read,models=read,ssh_signing_keys=write,variables=read"; stored != w {
		t.Fatalf("stored row = %q; want it as written, %q", stored, w)
	}

	// The load the index makes (packed rows on SQLite, PostgreSQL's binary
	// rows), also of a row whose packed column another tool left empty.
	load := func(where string) {
		t.Helper()
		var loaded map[string]string
		if _, err := db.Load(ctx, Visitor{Token: func(tk Token) error {
			if tk.ID == created.ID {
				loaded = tk.Permissions
			}
			return nil
		}}); err != nil {
			t.Fatal(err)
		}
		want(where, loaded)
	}
	load("Load")
	if !IsPostgres(location) {
		if _, err := db.wdb.ExecContext(ctx, `UPDATE tokens SET packed = '' WHERE id = $1`, created.ID); err != nil {
			t.Fatal(err)
		}
		load("Load of a row without its packed column")
	}
	got, ok, err := db.TokenByHash(ctx, old.Hash)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	want("TokenByHash", got.Permissions)
	list, err := db.ListTokens(ctx, TokenFilter{User: "bob"})
	if err != nil || len(list) != 2 {
		t.Fatal(list, err)
	}
	for _, tk := range list {
		if tk.ID == created.ID {
			want("ListTokens", tk.Permissions)
		}
	}
	dump, err := db.Export(ctx)
	if err != nil {
		t.Fatal(err)
	}
	oldHex := hex.EncodeToString(old.Hash[:])
	for _, dt := range dump.Tokens {
		if dt.TokenSHA256 == oldHex {
			want("Export", dt.Permissions)
		}
	}

	for _, name := range []string{"actions_variables", "variables", "user_models", "models", "git_signing_ssh_public_keys", "ssh_signing_keys"} {
		rows, total, err := db.ListOrgGrants(ctx, OrgGrantFilter{Org: "octo-org", Permission: name})
		if err != nil {
			t.Fatal(err)
		}
		if total != 1 || len(rows) != 1 || rows[0].Token.ID != created.ID {
			t.Errorf("permission=%s: %d rows (total %d); want token %d alone", name, len(rows), total, created.ID)
			continue
		}
		want("ListOrgGrants, permission="+name, rows[0].Token.Permissions)
	}
	if rows, total, err := db.ListOrgGrants(ctx, OrgGrantFilter{Org: "octo-org", Permission: "secrets"}); err != nil || total != 1 || rows[0].Token.Name != "ci" || rows[0].Token.ID == created.ID {
		t.Errorf("permission=secrets: %v (total %d), %v; want the other token alone", rows, total, err)
	}
}

// An export an earlier opa-pat wrote names permissions as it did: the
// import stores GitHub's names, and importing it again changes nothing.
func TestImportEarlierPermissionNames(t *testing.T) {
	ctx := t.Context()
	db := openTest(t)
	world := `{"tokens": [{"token": "` + rawFG + `", "name": "ci", "user": "bob", "resource_owner": "octo-org",
		"repository_selection": "all", "permissions": {"contents": "write", "models": "read", "ssh_signing_keys": "write", "variables": "read"},
		"created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}]}`
	if res, err := importJSON(t, db, world); err != nil || res.Tokens != 1 {
		t.Fatalf("import = %+v, %v", res, err)
	}
	var stored string
	if err := db.rdb.QueryRowContext(ctx, `SELECT permissions FROM tokens`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if w := "actions_variables=read,contents=write,git_signing_ssh_public_keys=write,metadata=read,user_models=read"; stored != w {
		t.Fatalf("stored row = %q; want %q", stored, w)
	}
	if res, err := importJSON(t, db, world); err != nil || res.Tokens != 0 || res.Unchanged != 1 {
		t.Fatalf("re-import = %+v, %v; want the token unchanged", res, err)
	}
	dump, err := db.Export(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h := token.Hash(rawFG)
	if len(dump.Tokens) != 1 || dump.Tokens[0].TokenSHA256 != hex.EncodeToString(h[:]) || !reflect.DeepEqual(dump.Tokens[0].Permissions, githubPermissions) {
		t.Fatalf("export = %+v; want permissions %v", dump.Tokens, githubPermissions)
	}
}
