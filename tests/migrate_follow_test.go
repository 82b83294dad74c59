package tests

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// TestSidecarFollowsMigrateReplace: `store migrate --replace` into the store
// a running sidecar follows, from a store whose token 14 is another token
// than the target's. The sidecar must deny the target's old token 14 at
// once (its hash is no longer in the store), allow the new one, and never
// record the old one's use as the new one's; the same when the source's
// token 14 is revoked.
func TestSidecarFollowsMigrateReplace(t *testing.T) {
	s := startUp(t)
	bin := binary(t)
	fixtures := filepath.Join(repoRoot(), "examples", "fixtures.json")
	create := func(store, name string) createdToken {
		t.Helper()
		c := decode[createdToken](t, runCLI(t, bin, nil, "token", "create", "--store", store, "--user", "bob",
			"--kind", "classic", "--scope", "repo", "--name", name, "--output", "json"))
		if c.ID != 14 {
			t.Fatalf("token %s got id %d; want 14", name, c.ID)
		}
		return c
	}
	decision := func(raw string) string {
		d := s.decide(t, raw, "octo-org", "app", "read")
		return fmt.Sprintf("allow=%v status=%v token_id=%v", d["allow"], d["status"], d["token_id"])
	}
	source := func(name string) (string, createdToken) {
		db := filepath.Join(t.TempDir(), name+".db")
		runCLI(t, bin, nil, "store", "import", "--store", db, fixtures)
		return db, create(db, name)
	}

	v := create(s.store, "v")
	poll(t, 3*time.Second, "token v, 14, to be allowed", func() bool { return decision(v.Token) == "allow=true status=200 token_id=14" })
	time.Sleep(6 * time.Second) // the usage recorder flushes every 5 s: v's use is recorded on v
	g, w := source("w")
	// z, token 15 of the source only, tells when the sidecar has applied
	// the migration without asking for token 14.
	z := decode[createdToken](t, runCLI(t, bin, nil, "token", "create", "--store", g, "--user", "bob",
		"--kind", "classic", "--scope", "repo", "--name", "z", "--output", "json"))
	runCLI(t, bin, nil, "store", "migrate", "--from", g, "--to", s.store, "--replace")
	poll(t, 3*time.Second, "token z, 15, to be allowed", func() bool { return decision(z.Token) == "allow=true status=200 token_id=15" })
	for range 3 {
		if got, want := decision(v.Token), "allow=false status=401 token_id=<nil>"; got != want {
			t.Fatalf("the old token 14 after the migration: %s; want %s", got, want)
		}
	}
	// Past the usage recorder's flush: no use of the new token 14 is
	// recorded (before, the old token's was, as the new one's).
	time.Sleep(6 * time.Second)
	listed := decode[[]map[string]any](t, runCLI(t, bin, nil, "token", "list", "--store", s.store, "--all", "--output", "json"))
	found := false
	for _, tok := range listed {
		if fmt.Sprint(tok["id"]) == "14" {
			found = true
			if tok["last_used_at"] != nil {
				t.Errorf("token 14 (w, never used) has last_used_at %v: the old token's use was recorded as its", tok["last_used_at"])
			}
		}
	}
	if !found {
		t.Fatalf("token list shows no token 14: %v", listed)
	}
	if got, want := decision(w.Token), "allow=true status=200 token_id=14"; got != want {
		t.Fatalf("token w, 14 in the migrated store: %s; want %s", got, want)
	}

	// A source whose token 14 is another token again, revoked.
	g2, x := source("x")
	runCLI(t, bin, nil, "token", "revoke", "--store", g2, "14")
	runCLI(t, bin, nil, "store", "migrate", "--from", g2, "--to", s.store, "--replace")
	poll(t, 3*time.Second, "token w to be unknown (401)", func() bool { return decision(w.Token) == "allow=false status=401 token_id=<nil>" })
	if got, want := decision(x.Token), "allow=false status=401 token_id=14"; got != want {
		t.Fatalf("token x, 14 and revoked in the migrated store: %s; want %s", got, want)
	}
	if got, want := decision(v.Token), "allow=false status=401 token_id=<nil>"; got != want {
		t.Fatalf("token v: %s; want %s", got, want)
	}
}
