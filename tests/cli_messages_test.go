package tests

import (
	"errors"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/opa-pat/opa-pat/plugin/store/pgtest"
)

// An empty --actor is refused as a blank one is, by every command that
// takes it, and nothing is written: the audit log would otherwise record the
// token's user (token create) or nobody (the others).
func TestCLIEmptyActor(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "pat.db")
	cliOK(t, "store", "import", "--store", db, writeFile(t, dir, "world.json", cliWorld))
	before := cliOK(t, "audit", "list", "--store", db, "--output", "json")
	for _, tc := range []struct {
		note string
		args []string
	}{
		{note: "token create", args: []string{"token", "create", "--store", db, "--user", "bob", "--kind", "classic"}},
		{note: "token revoke", args: []string{"token", "revoke", "--store", db, "2"}},
		{note: "requests approve", args: []string{"requests", "approve", "--store", db, "--org", "octo-org", "1"}},
		{note: "requests deny", args: []string{"requests", "deny", "--store", db, "--org", "octo-org", "1"}},
		{note: "requests revoke", args: []string{"requests", "revoke", "--store", db, "--org", "octo-org", "1"}},
		{note: "requests create", args: []string{"requests", "create", "--store", db, "--org", "octo-org", "--token", "1"}},
		{note: "store import", args: []string{"store", "import", "--store", db, filepath.Join(dir, "world.json")}},
		{note: "store settings", args: []string{"store", "settings", "--store", db, writeFile(t, dir, "settings.json", "{}")}},
	} {
		t.Run(tc.note, func(t *testing.T) {
			for _, actor := range []string{"", "  "} {
				cliFail(t, `error: --actor: "`+actor+`" is not a name`, append(tc.args, "--actor", actor)...)
			}
		})
	}
	if after := cliOK(t, "audit", "list", "--store", db, "--output", "json"); after != before {
		t.Fatalf("audit log after the refusals:\n%s\nbefore:\n%s", after, before)
	}
}

// A URL of a database opa-pat cannot use is refused as such by every
// command that takes a store, not taken for a file path, and its password
// is not printed.
func TestCLIStoreURLOfAnotherDatabase(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "pat.db")
	world := writeFile(t, dir, "world.json", cliWorld)
	cliOK(t, "store", "import", "--store", db, world)
	const other = "mysql://u:hunter2@h/db"
	const refused = `"mysql://u:xxxxx@h/db" is neither a postgres:// URL nor a file path`
	for _, args := range [][]string{
		{"store", "import", "--store", other, world},
		{"store", "export", "--store", other},
		{"store", "settings", "--store", other},
		{"store", "prune-changes", "--store", other},
		{"token", "create", "--store", other, "--user", "bob", "--kind", "classic"},
		{"token", "list", "--store", other},
		{"token", "revoke", "--store", other, "1"},
		{"requests", "list", "--store", other},
		{"requests", "approve", "--store", other, "--org", "octo-org", "1"},
		{"requests", "create", "--store", other, "--org", "octo-org", "--token", "1"},
		{"audit", "list", "--store", other},
	} {
		cliFail(t, "error: --store: "+refused, args...)
	}
	cliFail(t, "error: --to: "+refused, "store", "migrate", "--from", db, "--to", other)
	cliFail(t, "error: --from: "+refused, "store", "migrate", "--from", other, "--to", filepath.Join(dir, "new.db"))
	if _, err := os.Stat(filepath.Join(dir, "new.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("migrate from a refused URL left new.db: %v", err)
	}
}

// The CLI never prints a PostgreSQL password: the store is named with it
// masked, as store migrate names it.
func TestCLIPostgresPasswordNotPrinted(t *testing.T) {
	dsn := pgtest.Database(t, "pat_cli_")
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), "hunter2") // the test server trusts, so any password does
	withPassword := u.String()
	u.User = url.UserPassword(u.User.Username(), "xxxxx")
	masked := u.String()
	dir := t.TempDir()
	world := writeFile(t, dir, "world.json", cliWorld)
	if got, want := cliOK(t, "store", "import", "--store", withPassword, world),
		"imported 3 users, 2 memberships, 1 repository, 2 tokens and 1 grant into "+masked+"\n"; got != want {
		t.Fatalf("import: %q; want %q", got, want)
	}
	if got, want := cliOK(t, "store", "settings", "--output", "text", "--store", withPassword, writeFile(t, dir, "settings.json", "{}")),
		"recorded the settings of "+filepath.Join(dir, "settings.json")+" in "+masked+"\n"; got != want {
		t.Fatalf("settings: %q; want %q", got, want)
	}
}
