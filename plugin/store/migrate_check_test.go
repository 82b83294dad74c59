package store

import (
	"errors"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/opa-pat/opa-pat/plugin/token"
)

// refusedByMigrate are values the write path refuses and an older store
// may hold (written here with SQL into populate's world), with the error
// MigrateStore answers.
var refusedByMigrate = []struct {
	note string
	sql  string
	args []any
	err  string
}{
	{note: "a token as a token's name", sql: `UPDATE tokens SET name = $1 WHERE id = 2`, args: []any{rawClassic},
		err: `token 2` + migrateRefuses + `name: ` + plainRefusal},
	{note: "a lower-cased token in a scope", sql: `UPDATE tokens SET scopes = 'repo,' || $1 WHERE id = 4`, args: []any{strings.ToLower(rawClassic)},
		err: `token 4` + migrateRefuses + `scopes[1]: ` + plainRefusal},
	{note: "a token in the packed fields only", sql: `UPDATE tokens SET packed = packed || ' ' || $1 WHERE id = 1`, args: []any{rawFG},
		err: `token 1` + migrateRefuses + `packed: ` + plainRefusal},
	{note: "a hash of 3 bytes", sql: `UPDATE tokens SET hash = $1 WHERE id = 3`, args: []any{[]byte{1, 2, 3}},
		err: `token 3` + migrateRefuses + `hash is 3 bytes, want 32`},
	{note: "a login outside ASCII", sql: `INSERT INTO users (login) VALUES ('björn')`,
		err: `user "björn"` + migrateRefuses + `login: "björn" is not a GitHub name: ASCII letters, digits, '-', '_' and '.' only`},
	{note: "a token as a login", sql: `INSERT INTO users (login) VALUES ($1)`, args: []any{rawClassic},
		err: `user (40 characters, not shown: it looks like a personal access token)` + migrateRefuses + `login: ` + plainRefusal},
	{note: "a lower-cased token as an organization", sql: `UPDATE memberships SET org = $1 WHERE user_login = 'bob'`, args: []any{strings.ToLower(rawClassic)},
		err: `membership "bob" in (40 characters, not shown: it looks like a personal access token)` + migrateRefuses + `org: ` + plainRefusal},
	{note: "an enterprise outside GitHub's names", sql: `UPDATE users SET managed_by = 'acme corp' WHERE login = 'bob_acme'`,
		err: `user "bob_acme"` + migrateRefuses + `managed_by: "acme corp" is not a GitHub name: ASCII letters, digits, '-', '_' and '.' only`},
	{note: "a NUL in a repository's name", sql: `UPDATE repositories SET name = 'a' || chr(0) || 'b' WHERE name = 'www'`,
		err: `repository "octo-org/a\x00b"` + migrateRefuses + `name: "a\x00b" must not contain ',', '=', '/' or control characters`},
	{note: "a token in a justification", sql: `UPDATE requests SET justification = 'see ' || $1 WHERE id = 1`, args: []any{rawFG},
		err: `request 1` + migrateRefuses + `justification: ` + plainRefusal},
	{note: "an unknown grant state", sql: `UPDATE requests SET state = 'maybe' WHERE id = 2`,
		err: `request 2` + migrateRefuses + `state: unknown value "maybe", want one of pending, approved, denied, revoked`},
	{note: "a NUL in an audit event's reason", sql: `UPDATE audit_events SET reason = 'a' || chr(0) || 'b' WHERE id = 13`,
		err: `audit event 13` + migrateRefuses + `reason: must not contain NUL`},
	{note: "invalid UTF-8 in an audit event's details", sql: `UPDATE audit_events SET details = '{"x": "' || CAST($1 AS TEXT) || '"}' WHERE id = 2`, args: []any{"\xff"},
		err: `audit event 2` + migrateRefuses + `details: not valid UTF-8`},
	{note: "a token as an actor", sql: `UPDATE audit_events SET actor = $1 WHERE id = 1`, args: []any{rawClassic},
		err: `audit event 1` + migrateRefuses + `actor: ` + plainRefusal},
	// The rules import checks across records, with import's code.
	{note: "a request of a classic token", sql: `UPDATE requests SET token_id = 4 WHERE id = 1`,
		err: `request 1` + migrateRefuses + `token 4 is a classic token; only fine-grained tokens have grants (rule 17)`},
	{note: "a request for another organization than its token's", sql: `UPDATE requests SET org = 'other-org' WHERE id = 2`,
		err: `request 2` + migrateRefuses + `org: token 2's resource owner is octo-org, not other-org (rule 6)`},
	{note: "a login in two cases", sql: `INSERT INTO users (login) VALUES ('Alice')`,
		err: `user "alice"` + migrateRefuses + `login: "alice" is spelt "Alice" earlier in the source; logins are compared without regard to case: write "Alice"`},
	{note: "an organization in two cases", sql: `UPDATE tokens SET resource_owner = 'Octo-Org' WHERE id = 3`,
		err: `token 3` + migrateRefuses + `resource_owner: "Octo-Org" is spelt "octo-org" earlier in the source; logins are compared without regard to case: write "octo-org"`},
	{note: "a token in the settings", sql: `UPDATE meta SET value = '{"x": "' || $1 || '"}' WHERE key = 'settings'`, args: []any{rawClassic},
		err: `meta key "settings"` + migrateRefuses + `value: ` + plainRefusal},
}

const (
	migrateRefuses = ` holds a value this opa-pat refuses on write (correct it in the source; nothing was written): `
	plainRefusal   = `looks like a personal access token; opa-pat never stores a token in plain text`
)

// A store written by an older opa-pat that holds what the write path
// refuses is not copied: the error names the record and the field, shows
// no token, and the target is left as it was, also when Replace would have
// cleared it first. SQLite to SQLite: every value.
func TestMigrateStoreRefusesWhatWritesRefuse(t *testing.T) {
	for _, tc := range refusedByMigrate {
		t.Run(tc.note, func(t *testing.T) {
			src, dst := openTest(t), openTest(t)
			populate(t, src)
			if _, _, err := dst.CreateToken(t.Context(), CreateTokenParams{Token: fgToken(42, "carol", "other-org")}); err != nil {
				t.Fatal(err)
			}
			if _, err := src.wdb.ExecContext(t.Context(), strings.ReplaceAll(tc.sql, "chr(0)", "char(0)"), tc.args...); err != nil {
				t.Fatal(err)
			}
			migrateRefused(t, src, dst, "the source's "+tc.err)
		})
	}
}

// The same from PostgreSQL (which cannot hold a NUL nor invalid UTF-8),
// and from SQLite into PostgreSQL.
func TestMigrateStoreRefusesWhatWritesRefusePostgres(t *testing.T) {
	for _, tc := range refusedByMigrate {
		if strings.Contains(tc.sql, "chr(0)") || slices.ContainsFunc(tc.args, func(a any) bool { s, ok := a.(string); return ok && s == "\xff" }) {
			continue
		}
		t.Run(tc.note, func(t *testing.T) {
			pg, lite := openAt(t, testPostgresDSN(t)), openTest(t)
			populate(t, pg)
			if _, err := pg.wdb.ExecContext(t.Context(), tc.sql, tc.args...); err != nil {
				t.Fatal(err)
			}
			migrateRefused(t, pg, lite, "the source's "+tc.err)
		})
	}
	t.Run("into PostgreSQL", func(t *testing.T) {
		lite, pg := openTest(t), openAt(t, testPostgresDSN(t))
		populate(t, lite)
		if _, _, err := pg.CreateToken(t.Context(), CreateTokenParams{Token: fgToken(42, "carol", "other-org")}); err != nil {
			t.Fatal(err)
		}
		tc := refusedByMigrate[0]
		if _, err := lite.wdb.ExecContext(t.Context(), tc.sql, tc.args...); err != nil {
			t.Fatal(err)
		}
		migrateRefused(t, lite, pg, "the source's "+tc.err)
	})
}

// migrateRefused migrates src into dst with Replace, wants the error want
// (of kind ErrInvalid, showing no raw token) and dst as before.
func migrateRefused(t *testing.T, src, dst *DB, want string) {
	t.Helper()
	before := tableRows(t, dst)
	_, err := MigrateStore(t.Context(), src, dst, MigrateOptions{Replace: true})
	if err == nil || err.Error() != want || !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v; want %q", err, want)
	}
	for _, raw := range []string{rawClassic, rawFG} {
		if strings.Contains(strings.ToLower(err.Error()), strings.ToLower(raw)) {
			t.Fatalf("the error shows a raw token: %v", err)
		}
	}
	if got := tableRows(t, dst); !reflect.DeepEqual(got, before) {
		t.Fatalf("a refused migration changed the target:\n got %v\nwant %v", got, before)
	}
}

// Every table MigrateStore copies has its checks (a new table needs a
// line in rowChecks as in copyTables), and a record of each that the write
// path wrote passes them: populate's world migrates.
func TestMigrateStoreChecksEveryTable(t *testing.T) {
	var tables []string
	for _, tb := range copyTables {
		tables = append(tables, tb.name)
	}
	if got := slices.Sorted(maps.Keys(rowChecks)); !reflect.DeepEqual(got, slices.Sorted(slices.Values(tables))) {
		t.Fatalf("rowChecks has %v; want the tables of copyTables, %v", got, tables)
	}
	src, dst := openTest(t), openTest(t)
	populate(t, src)
	dstID := storeID(t, dst)
	if _, err := MigrateStore(t.Context(), src, dst, MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The target keeps its own id: a follower of either tells them apart.
	if got, srcID := storeID(t, dst), storeID(t, src); got != dstID || got == srcID {
		t.Fatalf("target's store id %q after migrating, %q before, source's %q: want its own kept", got, dstID, srcID)
	}
	if got, want := tableRows(t, dst), tableRows(t, src); !reflect.DeepEqual(got, want) {
		t.Fatalf("rows differ:\n got %v\nwant %v", got, want)
	}
	if !token.Hidden(rawClassic) {
		t.Fatal("token.Hidden(rawClassic) = false; the refusals above expect it described")
	}
}

// storeID is db's MetaStoreID, which every store opened for writing has.
func storeID(t *testing.T, db *DB) string {
	t.Helper()
	id, ok, err := db.Meta(t.Context(), MetaStoreID)
	if err != nil || !ok || len(id) != 32 {
		t.Fatalf("store id %q, %v, %v; want 32 hexadecimal digits", id, ok, err)
	}
	return id
}
