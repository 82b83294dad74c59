package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/opa-pat/opa-pat/plugin/store"
	"github.com/opa-pat/opa-pat/plugin/token"
)

// BenchmarkSpelling measures store.Spelling, which the CLI runs on every
// --user and --org and the admin API on every organization it does not
// know, on a store of 100,000 generated tokens in lower case plus
// mixedTokens tokens of an organization spelt "Mixed-Org" (as an older
// import may have kept it). On SQLite and PostgreSQL (skipped without a
// server).
//
//	go test ./plugin/store -run '^$' -bench Spelling -benchtime 200x
func BenchmarkSpelling(b *testing.B) {
	const n, mixedTokens = 100_000, 10_000
	ctx := b.Context()
	lite, start := populatedSQLite(b, n)
	if err := populateMixed(ctx, lite, mixedTokens, start); err != nil {
		b.Fatal(err)
	}
	backends := []struct {
		name string
		db   func(b *testing.B) *store.DB
	}{
		{"sqlite", func(*testing.B) *store.DB { return lite }},
		{"postgres", func(b *testing.B) *store.DB { return postgresCopy(b, lite) }},
	}
	for _, backend := range backends {
		b.Run(backend.name, func(b *testing.B) {
			db := backend.db(b)
			for _, tc := range []struct{ note, asked, want string }{
				// Held in lower case: the indexed lookups of the names.
				{"held", "USER-7", "user-7"},
				// Not held at all (a new user, a mistyped organization).
				{"unknown", "Nobody-Here", "nobody-here"},
				// Held only in another case, by many tokens.
				{"other-case", "mixed-org", "Mixed-Org"},
			} {
				b.Run(tc.note, func(b *testing.B) {
					for b.Loop() {
						got, err := db.Spelling(ctx, tc.asked)
						if err != nil || got != tc.want {
							b.Fatalf("Spelling(%q) = %q, %v; want %q", tc.asked, got, err, tc.want)
						}
					}
				})
			}
		})
	}
}

// populateMixed adds n fine-grained tokens for the organization "Mixed-Org",
// of one member, spelt as an import from before spellings were checked may
// have kept them, with one repository.
func populateMixed(ctx context.Context, db *store.DB, n int, now time.Time) error {
	return db.BulkInsert(ctx, func(w *store.BulkWriter) error {
		if err := w.User(store.User{Login: "mixed-user"}); err != nil {
			return err
		}
		if err := w.Membership(store.Membership{User: "mixed-user", Org: "Mixed-Org", Role: "member"}); err != nil {
			return err
		}
		if err := w.Repository(store.Repository{Owner: "Mixed-Org", Name: "app", Visibility: "private"}); err != nil {
			return err
		}
		for i := range n {
			raw, err := token.Generate(store.KindFineGrained, token.DefaultPrefixes)
			if err != nil {
				return err
			}
			if _, err := w.Token(store.Token{Hash: token.Hash(raw), Name: fmt.Sprintf("mixed-%d", i), Kind: store.KindFineGrained,
				User: "mixed-user", ResourceOwner: "Mixed-Org", RepositorySelection: "all",
				Permissions: map[string]string{"metadata": "read"}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
				return err
			}
		}
		return nil
	})
}
