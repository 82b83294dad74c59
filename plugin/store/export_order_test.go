package store

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// An export lists one world's records in one order on SQLite and on
// PostgreSQL, also after updates (which move a PostgreSQL row).
func TestExportSortedOrder(t *testing.T) {
	const world = `{
  "users": [{"login": "zed", "managed_by": null}, {"login": "bob", "managed_by": null}, {"login": "amy", "managed_by": null}],
  "memberships": [{"user": "zed", "org": "b-org", "role": "member"}, {"user": "bob", "org": "b-org", "role": "owner"},
                  {"user": "bob", "org": "a-org", "role": "member"}],
  "repositories": [{"owner": "b-org", "name": "z", "visibility": "private"}, {"owner": "a-org", "name": "y", "visibility": "public"},
                   {"owner": "b-org", "name": "a", "visibility": "internal"}],
  "tokens": [
    {"token_sha256": "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "name": "one", "kind": "fine_grained", "user": "zed",
     "resource_owner": "b-org", "repository_selection": "all", "permissions": {}, "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false},
    {"token_sha256": "1111111111111111111111111111111111111111111111111111111111111111", "name": "two", "kind": "classic", "user": "bob", "scopes": [], "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false},
    {"token_sha256": "8888888888888888888888888888888888888888888888888888888888888888", "name": "three", "kind": "fine_grained", "user": "bob",
     "resource_owner": "a-org", "repository_selection": "all", "permissions": {}, "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}],
  "grants": [{"token_name": "three", "user": "bob", "org": "a-org", "state": "pending"},
             {"token_name": "one", "user": "zed", "org": "b-org", "state": "approved"}]
}`
	exports := map[string]string{}
	for name, location := range map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return filepath.Join(t.TempDir(), "pat.db") },
		"postgres": func(t *testing.T) string { return testPostgresDSN(t) },
	} {
		t.Run(name, func(t *testing.T) {
			db := openAt(t, location(t))
			d, err := ParseDump(strings.NewReader(world))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.Import(t.Context(), d, "test"); err != nil {
				t.Fatal(err)
			}
			// Updates rewrite the first rows: on PostgreSQL they move to
			// the end of their tables.
			if err := db.RevokeToken(t.Context(), 1, "test", ""); err != nil {
				t.Fatal(err)
			}
			d, err = db.ExportSorted(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, u := range d.Users {
				got = append(got, u.Login)
			}
			for _, m := range d.Memberships {
				got = append(got, m.User+"@"+m.Org)
			}
			for _, r := range d.Repositories {
				got = append(got, r.Owner+"/"+r.Name)
			}
			for _, tk := range d.Tokens {
				got = append(got, tk.Name)
			}
			for _, g := range d.Grants {
				got = append(got, g.TokenName+"->"+g.Org)
			}
			want := "amy bob zed bob@a-org bob@b-org zed@b-org a-org/y b-org/a b-org/z one two three one->b-org three->a-org"
			if strings.Join(got, " ") != want {
				t.Fatalf("export order:\n%s\nwant\n%s", strings.Join(got, " "), want)
			}
			b, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			exports[name] = string(b)
		})
	}
	if len(exports) == 2 && exports["sqlite"] != exports["postgres"] {
		t.Fatalf("exports differ:\nsqlite:   %s\npostgres: %s", exports["sqlite"], exports["postgres"])
	}
}
