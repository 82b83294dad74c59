package store_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/opa-pat/opa-pat/plugin/store"
	"github.com/opa-pat/opa-pat/plugin/store/storetest"
	"github.com/opa-pat/opa-pat/plugin/token"
)

// BenchmarkImportSmallFile measures an import of a small file (a world
// synced from cron: a few users, a membership, a repository, a token and
// its grant, most of it known) into a store of 100,000 generated tokens,
// on SQLite and PostgreSQL (skipped without a server). After the first
// round the file says what the store holds: each import then checks every
// record, writes nothing but its audit event, and commits.
//
//	go test ./plugin/store -run '^$' -bench ImportSmallFile -benchtime 100x
func BenchmarkImportSmallFile(b *testing.B) {
	const n = 100_000
	lite, _ := populatedSQLite(b, n)
	raw, err := token.Generate(store.KindFineGrained, token.DefaultPrefixes)
	if err != nil {
		b.Fatal(err)
	}
	user, org := storetest.UserName(7), storetest.OrgName(7)
	file := `{"users": [{"login": "` + user + `", "managed_by": null}, {"login": "new-user", "managed_by": null}],
	"memberships": [{"user": "new-user", "org": "` + org + `", "role": "member"}],
	"repositories": [{"owner": "` + org + `", "name": "new-repo", "visibility": "private"}],
	"tokens": [{"token": "` + raw + `", "name": "sync", "user": "` + user + `", "resource_owner": "` + org + `",
		"repository_selection": "selected", "repositories": ["new-repo"], "permissions": {"contents": "read"},
		"created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false}],
	"grants": [{"token_name": "sync", "user": "` + user + `", "org": "` + org + `", "state": "approved"}]}`
	d, err := store.ParseDump(strings.NewReader(file))
	if err != nil {
		b.Fatal(err)
	}
	for _, backend := range importBackends(lite) {
		b.Run(backend.name, func(b *testing.B) {
			db := backend.db(b)
			if _, err := db.Import(b.Context(), d, "bench"); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				res, err := db.Import(b.Context(), d, "bench")
				if err != nil || res != (store.ImportResult{Unchanged: 6}) {
					b.Fatalf("import = %+v, %v; want 6 records unchanged", res, err)
				}
			}
		})
	}
}

// BenchmarkImportExport measures an import of the export of a store of
// 100,000 generated tokens into that store (a world synced in full): every
// record is found as it is, and checkSpellings asks about its 25,000 users
// and 100 organizations. SQLite and PostgreSQL (skipped without a server),
// each through a store opened afresh, as the CLI opens it: on the handle
// that has just populated it, the first import's reads of SQLite pages
// varied tenfold with what ran before them.
//
//	go test ./plugin/store -run '^$' -bench ImportExport -benchtime 2x
func BenchmarkImportExport(b *testing.B) {
	const n = 100_000
	lite, _ := populatedSQLite(b, n)
	d, err := lite.Export(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	records := len(d.Users) + len(d.Memberships) + len(d.Repositories) + len(d.Tokens) + len(d.Grants)
	for _, backend := range importBackends(lite) {
		b.Run(backend.name, func(b *testing.B) {
			db, err := store.Open(b.Context(), backend.db(b).Location())
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			for b.Loop() {
				res, err := db.Import(b.Context(), d, "bench")
				if err != nil || res != (store.ImportResult{Unchanged: records}) {
					b.Fatalf("import = %+v, %v; want %d records unchanged", res, err, records)
				}
			}
		})
	}
}

// importBackend is a store the import benchmarks run on.
type importBackend struct {
	name string
	db   func(b *testing.B) *store.DB
}

// importBackends are the populated SQLite store itself, and a PostgreSQL copy
// of it (skipped without a server).
func importBackends(lite *store.DB) []importBackend {
	return []importBackend{
		{"sqlite", func(*testing.B) *store.DB { return lite }},
		{"postgres", func(b *testing.B) *store.DB { return postgresCopy(b, lite) }},
	}
}

// BenchmarkImportNewStore measures a whole-store import: the export of
// 100,000 generated tokens (with their users, memberships, repositories
// and grants) into a new SQLite store, as a move to a new host or a
// restore from an export does.
//
//	go test ./plugin/store -run '^$' -bench ImportNewStore -benchtime 2x
func BenchmarkImportNewStore(b *testing.B) {
	lite, _ := populatedSQLite(b, 100_000)
	d, err := lite.Export(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		db, err := store.Open(b.Context(), filepath.Join(b.TempDir(), "new.db"))
		if err != nil {
			b.Fatal(err)
		}
		res, err := db.Import(b.Context(), d, "bench")
		if err != nil || res.Tokens != len(d.Tokens) {
			b.Fatalf("import = %+v, %v; want %d tokens", res, err, len(d.Tokens))
		}
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
