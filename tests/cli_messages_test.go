package tests

import (
	"path/filepath"
	"testing"
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
