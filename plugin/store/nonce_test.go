package store

import (
	"database/sql"
	"reflect"
	"testing"
)

// A store of schema version 3 gains changes.nonce with migration 4: every
// change already logged gets a random nonce of its own, and the log goes
// on numbering from where it was (a change number removed from the log is
// not given out again). An opa-pat of version 3 then uses the migrated
// store (migration 4 is marked compatible with version 2), and the changes
// it logs, naming only entity and key, get random nonces too: the database
// draws them. A handle opened before the migration (a process already
// running when it lands) goes on writing.
func TestMigrateChangesNonce(t *testing.T) {
	for _, b := range compatBackends {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			location := b.store(t)
			create := func(db *DB, i byte) {
				t.Helper()
				tok := Token{Hash: hashOf(i), Name: "t", Kind: KindClassic, User: "bob", Scopes: []string{"repo"}, CreatedAt: t0}
				if _, _, err := db.CreateToken(ctx, CreateTokenParams{Token: tok}); err != nil {
					t.Fatal(err)
				}
			}
			db := openAtVersion(t, location, 3)
			running := db
			defer running.Close()
			for i := byte(1); i <= 3; i++ {
				create(db, i)
			}
			var last int64
			if err := db.rdb.QueryRowContext(ctx, `SELECT MAX(seq) FROM changes`).Scan(&last); err != nil || last < 3 {
				t.Fatalf("the log ends at %d (%v)", last, err)
			}
			// The newest change removed (only by hand: PruneChanges keeps it):
			// its number stays given out.
			if _, err := db.wdb.ExecContext(ctx, `DELETE FROM changes WHERE seq = $1`, last); err != nil {
				t.Fatal(err)
			}

			db = openAt(t, location)
			if got, want := markers(t, db, "schema_migrations"), map[int]sql.NullInt64{1: marker(1), 2: marker(2), 3: marker(2), 4: marker(2)}; !reflect.DeepEqual(got, want) {
				t.Fatalf("schema_migrations = %v; want %v", got, want)
			}
			changes := func(want ...int64) []Change {
				t.Helper()
				got, err := db.Changes(ctx, 0, 100)
				if err != nil {
					t.Fatal(err)
				}
				var seqs []int64
				nonces := map[int64]bool{}
				for _, c := range got {
					seqs = append(seqs, c.Seq)
					if c.Nonce == 0 || nonces[c.Nonce] {
						t.Fatalf("change %d has nonce %d, not a random one of its own: %+v", c.Seq, c.Nonce, got)
					}
					nonces[c.Nonce] = true
				}
				if !reflect.DeepEqual(seqs, want) {
					t.Fatalf("changes %v; want %v", seqs, want)
				}
				return got
			}
			var logged []int64
			for s := int64(1); s < last; s++ {
				logged = append(logged, s)
			}
			migrated := changes(logged...)
			create(db, 4)
			create(running, 6)
			logged = append(logged, last+1, last+2)
			changes(logged...)

			asBinary(migrations[:3], nil, func() {
				var old *DB
				old, err := Open(ctx, location)
				if err != nil {
					t.Fatalf("Open by an opa-pat of version 3 = %v", err)
				}
				defer old.Close()
				if got, want := old.SchemaNotice(), "schema version 4 is newer than this opa-pat supports (3) and marked compatible with "+
					"opa-pat from schema version 2: using it as version 3, without migrating it; upgrade opa-pat to use the rest"; got != want {
					t.Errorf("SchemaNotice of an opa-pat of version 3 = %q; want %q", got, want)
				}
				create(old, 5)
			})
			logged = append(logged, last+3)
			all := changes(logged...)
			if !reflect.DeepEqual(all[:len(migrated)], migrated) {
				t.Fatalf("the migrated changes changed: %+v, were %+v", all[:len(migrated)], migrated)
			}
		})
	}
}
