package store

import (
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestSeedIfEmptyOnce seeds one new store from several handles at once, as
// several `opa-pat up` starting together do: every handle finds the store
// empty at its first look (the hook holds them there until all have), and
// exactly one imports; the others find its records under the write lock and
// say so. The store holds the world once, with one store.import event.
func TestSeedIfEmptyOnce(t *testing.T) {
	for _, tc := range []struct {
		backend  string
		handles  int
		location func(t *testing.T) string
	}{
		{backend: "sqlite", handles: 2, location: func(t *testing.T) string { return filepath.Join(t.TempDir(), "pat.db") }},
		{backend: "postgres", handles: 4, location: func(t *testing.T) string { return testPostgresDSN(t) }},
	} {
		t.Run(tc.backend, func(t *testing.T) {
			location := tc.location(t)
			dbs := make([]*DB, tc.handles)
			for i := range dbs {
				dbs[i] = openAt(t, location)
			}
			// Every handle has looked, without the lock, before any takes it.
			var arrived sync.WaitGroup
			arrived.Add(tc.handles)
			seedLockHook = func() { arrived.Done(); arrived.Wait() }
			t.Cleanup(func() { seedLockHook = nil })

			results := make([]SeedResult, tc.handles)
			errs := make([]error, tc.handles)
			var wg sync.WaitGroup
			for i, db := range dbs {
				wg.Go(func() {
					results[i], errs[i] = db.SeedIfEmpty(t.Context(), "opa-pat up", func() (*Dump, error) {
						return ParseDump(strings.NewReader(importWorld))
					})
				})
			}
			wg.Wait()

			seeded := 0
			for i, res := range results {
				if errs[i] != nil {
					t.Fatalf("handle %d: %v", i, errs[i])
				}
				switch {
				case res.Seeded:
					seeded++
					if want := (SeedResult{Seeded: true, Import: ImportResult{Users: 1, Memberships: 1, Tokens: 2, Grants: 1}}); res != want {
						t.Errorf("handle %d seeded: %+v; want %+v", i, res, want)
					}
				default:
					if want := (SeedResult{Found: "1 users, 1 memberships, 2 tokens, 1 requests, 2 audit_events", Meanwhile: true}); res != want {
						t.Errorf("handle %d: %+v; want %+v", i, res, want)
					}
				}
			}
			if seeded != 1 {
				t.Fatalf("%d handles seeded the store; want exactly 1: %+v", seeded, results)
			}
			events, err := dbs[0].ListAudit(t.Context(), AuditFilter{Action: ActionStoreImport})
			if err != nil || len(events) != 1 {
				t.Fatalf("store.import events = %+v, %v; want exactly 1", events, err)
			}
			tokens, err := dbs[0].ListTokens(t.Context(), TokenFilter{})
			if err != nil || len(tokens) != 2 {
				t.Fatalf("tokens = %d, %v; want the world's 2", len(tokens), err)
			}

			// A later start finds the records without the lock, and says
			// what it found without "meanwhile".
			seedLockHook = func() { t.Error("SeedIfEmpty took the lock on a store that holds records") }
			res, err := dbs[0].SeedIfEmpty(t.Context(), "opa-pat up", func() (*Dump, error) {
				t.Error("SeedIfEmpty read the dump for a store that holds records")
				return nil, nil
			})
			if want := (SeedResult{Found: "1 users, 1 memberships, 2 tokens, 1 requests, 2 audit_events"}); err != nil || res != want {
				t.Fatalf("a later start: %+v, %v; want %+v", res, err, want)
			}
		})
	}
}

// The store's own bookkeeping (meta: its id, which the first writer
// records) is no record: a process that finds the store seeded by another
// names what that one imported, and only that.
func TestDescribeRecordsLeavesMetaOut(t *testing.T) {
	if got := describeRecords(map[string]int64{"meta": 1, "users": 5, "tokens": 13}); got != "5 users, 13 tokens" {
		t.Fatalf("got %q", got)
	}
	if got := describeRecords(map[string]int64{"meta": 1}); got != "" {
		t.Fatalf("a store with its id alone: got %q, want none", got)
	}
}
