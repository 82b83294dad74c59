package store_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/opa-pat/opa-pat/plugin/index"
	"github.com/opa-pat/opa-pat/plugin/store"
	"github.com/opa-pat/opa-pat/plugin/store/storetest"
)

// BenchmarkPostgresLoad measures a sidecar's start-up read from PostgreSQL:
// the store's snapshot alone, and the in-memory index built from it. The
// store is generated in SQLite and moved with MigrateStore (also timed).
// OPA_PAT_BENCH_TOKENS sets the size (default 100000).
//
//	OPA_PAT_BENCH_TOKENS=1000000 go test ./plugin/store -run '^$' -bench PostgresLoad -benchtime 3x -timeout 30m
func BenchmarkPostgresLoad(b *testing.B) {
	n := 100_000
	if v := os.Getenv("OPA_PAT_BENCH_TOKENS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	ctx := b.Context()
	lite, _ := populatedSQLite(b, n)
	pg, err := store.Open(ctx, store.TestPostgresDSN(b))
	if err != nil {
		b.Fatal(err)
	}
	defer pg.Close()
	start := time.Now()
	res, err := store.MigrateStore(ctx, lite, pg, store.MigrateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("MigrateStore to PostgreSQL: %s for %v", time.Since(start).Round(time.Millisecond), res.Rows)

	b.Run(fmt.Sprintf("snapshot/%d", n), func(b *testing.B) {
		for b.Loop() {
			var tokens, grants int
			if _, err := pg.Load(ctx, store.Visitor{
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
	b.Run(fmt.Sprintf("index/%d", n), func(b *testing.B) {
		for b.Loop() {
			x := index.New()
			if err := x.Load(ctx, pg); err != nil {
				b.Fatal(err)
			}
			runtime.KeepAlive(x)
		}
	})
}

// populatedSQLite is a SQLite store with n generated tokens
// (storetest.Populate), closed when the benchmark ends, and the time the
// tokens were created at.
func populatedSQLite(b *testing.B, n int) (*store.DB, time.Time) {
	b.Helper()
	lite, err := store.Open(b.Context(), filepath.Join(b.TempDir(), "pat.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { lite.Close() })
	start := time.Now()
	if _, err := storetest.Populate(b.Context(), lite, n, start); err != nil {
		b.Fatal(err)
	}
	b.Logf("populated SQLite with %d tokens in %s", n, time.Since(start).Round(time.Millisecond))
	return lite, start
}

// postgresCopy is a new PostgreSQL store (skipped without a server) that
// holds lite's records, copied by MigrateStore (so that its statistics are
// fresh and the plans are the planner's own), closed when the benchmark
// ends.
func postgresCopy(b *testing.B, lite *store.DB) *store.DB {
	b.Helper()
	pg, err := store.Open(b.Context(), store.TestPostgresDSN(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { pg.Close() })
	if _, err := store.MigrateStore(b.Context(), lite, pg, store.MigrateOptions{}); err != nil {
		b.Fatal(err)
	}
	return pg
}
