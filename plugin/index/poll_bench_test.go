package index

import (
	"path/filepath"
	"testing"

	"github.com/opa-pat/opa-pat/plugin/store"
	"github.com/opa-pat/opa-pat/plugin/store/pgtest"
)

// BenchmarkCatchUpIdle is a follower's round on an idle store, as Follow
// runs it every poll: CatchUp with nothing to apply, outside any window
// after a reload.
func BenchmarkCatchUpIdle(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			location := filepath.Join(b.TempDir(), "pat.db")
			if backend == "postgres" {
				location = pgtest.Database(b, "pat_test_idle_")
			}
			ctx := b.Context()
			db, err := store.Open(ctx, location)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { db.Close() })
			for i := 1; i <= 3; i++ {
				if _, _, err := db.CreateToken(ctx, store.CreateTokenParams{Token: classic(i)}); err != nil {
					b.Fatal(err)
				}
			}
			x := New()
			if err := x.Load(ctx, db); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if err := x.CatchUp(ctx, db); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
