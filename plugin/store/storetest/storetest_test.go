package storetest

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/opa-pat/opa-pat/plugin/store"
	"github.com/opa-pat/opa-pat/plugin/store/pgtest"
	"github.com/opa-pat/opa-pat/plugin/token"
)

func TestPopulateSamples(t *testing.T) {
	db, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "pat.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	w, err := PopulateSamples(t.Context(), db, 10, time.Now(), 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Classic) != 3 || len(w.FineGrained) != 3 {
		t.Fatalf("samples: %d classic, %d fine-grained; want 3 and 3", len(w.Classic), len(w.FineGrained))
	}
}

func TestPopulate(t *testing.T) {
	db, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "pat.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w, err := Populate(t.Context(), db, 2000, now)
	if err != nil {
		t.Fatal(err)
	}
	if w.Users != 500 || w.Orgs != 2 || len(w.Classic) != 1000 || len(w.FineGrained) != 1000 {
		t.Fatalf("world = %d users, %d orgs, %d classic, %d fine-grained", w.Users, w.Orgs, len(w.Classic), len(w.FineGrained))
	}
	counts := map[string]int{}
	seq, err := db.Load(t.Context(), store.Visitor{
		User:       func(store.User) error { counts["users"]++; return nil },
		Membership: func(store.Membership) error { counts["memberships"]++; return nil },
		Repository: func(store.Repository) error { counts["repositories"]++; return nil },
		Token:      func(store.Token) error { counts["tokens"]++; return nil },
		Grant:      func(g store.Grant) error { counts["grant "+g.State]++; return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"users": 500, "memberships": 500, "repositories": 40, "tokens": 2000,
		"grant approved": 800, "grant pending": 100, "grant denied": 100}
	for k, v := range want {
		if counts[k] != v {
			t.Errorf("%s = %d; want %d", k, counts[k], v)
		}
	}
	if seq != 500+500+40+2000+1000 {
		t.Errorf("seq = %d", seq)
	}
	for _, s := range append(w.Classic[:3:3], w.FineGrained[:3]...) {
		tok, ok, err := db.TokenByHash(t.Context(), token.Hash(s.Raw))
		if err != nil || !ok || tok.ID != s.ID || tok.Kind != s.Kind || tok.User != s.User {
			t.Fatalf("sample %+v: stored %+v, %v, %v", s, tok, ok, err)
		}
		if s.Kind == store.KindFineGrained {
			g, ok, _ := db.Grant(t.Context(), s.ID, s.Org)
			if !ok || g.State != s.Grant {
				t.Fatalf("sample %+v: grant %+v", s, g)
			}
		}
	}
}

func BenchmarkPopulateAndLoad(b *testing.B) {
	for b.Loop() {
		db, err := store.Open(b.Context(), filepath.Join(b.TempDir(), "pat.db"))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Populate(b.Context(), db, 100_000, time.Now()); err != nil {
			b.Fatal(err)
		}
		if _, err := db.Load(b.Context(), store.Visitor{Token: func(store.Token) error { return nil }, Grant: func(store.Grant) error { return nil }}); err != nil {
			b.Fatal(err)
		}
		db.Close()
	}
}

// BenchmarkLoad measures a sidecar's start-up read: one snapshot of every
// token and grant (1M tokens must load within 5 s).
func BenchmarkLoad(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			db, err := store.Open(b.Context(), filepath.Join(b.TempDir(), "pat.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			start := time.Now()
			if _, err := Populate(b.Context(), db, n, time.Now()); err != nil {
				b.Fatal(err)
			}
			b.Logf("populated %d tokens in %s", n, time.Since(start))
			b.ResetTimer()
			for b.Loop() {
				var tokens, grants int
				if _, err := db.Load(b.Context(), store.Visitor{
					User: func(store.User) error { return nil }, Membership: func(store.Membership) error { return nil },
					Repository: func(store.Repository) error { return nil },
					Token:      func(store.Token) error { tokens++; return nil },
					Grant:      func(store.Grant) error { grants++; return nil },
				}); err != nil {
					b.Fatal(err)
				}
				if tokens != n || grants != n/2 {
					b.Fatalf("loaded %d tokens and %d grants", tokens, grants)
				}
			}
		})
	}
}

// BenchmarkRowCounts is the statement a sidecar adds to each poll for a
// while after it loaded a replaced store (index: settling), at 100,000
// tokens.
func BenchmarkRowCounts(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			location := filepath.Join(b.TempDir(), "pat.db")
			if backend == "postgres" {
				location = pgtest.Database(b, "pat_test_counts_")
			}
			db, err := store.Open(b.Context(), location)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			if _, err := Populate(b.Context(), db, 100_000, time.Now()); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := db.RowCounts(b.Context()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
