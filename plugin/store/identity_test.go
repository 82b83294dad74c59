package store

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/opa-pat/opa-pat/plugin/store/pgtest"
)

// TestStoreIDOnce: the id is written when the store is created and kept
// when it is opened again.
func TestStoreIDOnce(t *testing.T) { adminBackends(t, testStoreIDOnce) }

func testStoreIDOnce(t *testing.T, location string) {
	a := openAt(t, location)
	id := storeID(t, a)
	if b := openAt(t, location); storeID(t, b) != id {
		t.Fatalf("store id changed on opening again: %q, was %q", storeID(t, b), id)
	}
}

// TestChangesSinceChecksTheStore: ChangesSince refuses a log that went
// backwards, holds another change at the mark (of another record, or
// another write of the same one: its nonce), or a store of another id, and
// follows an unchanged store with no error.
func TestChangesSinceChecksTheStore(t *testing.T) { adminBackends(t, testChangesSinceChecksTheStore) }

func testChangesSinceChecksTheStore(t *testing.T, location string) {
	ctx := t.Context()
	db := openAt(t, location)
	for b := byte(1); b <= 3; b++ {
		tok := Token{Hash: hashOf(b), Name: "t", Kind: KindClassic, User: "bob", Scopes: []string{"repo"}, CreatedAt: t0}
		if _, _, err := db.CreateToken(ctx, CreateTokenParams{Token: tok}); err != nil {
			t.Fatal(err)
		}
	}
	var m Mark
	if _, err := db.Load(ctx, Visitor{Mark: func(got Mark) { m = got }}); err != nil {
		t.Fatal(err)
	}
	if !m.Known || m.Seq == 0 || m.Entity == "" || m.Nonce == 0 || m.StoreID != storeID(t, db) {
		t.Fatalf("Mark = %+v", m)
	}
	if got, err := db.ChangesSince(ctx, m, 10); err != nil || len(got) != 0 {
		t.Fatalf("ChangesSince(head) = %+v, %v; want none", got, err)
	}
	for _, tc := range []struct {
		note string
		m    Mark
	}{
		{"log went backwards", Mark{Seq: m.Seq + 5, Entity: m.Entity, Key: m.Key, StoreID: m.StoreID, Known: true}},
		{"another change at the mark", Mark{Seq: m.Seq, Entity: m.Entity, Key: "other", Nonce: m.Nonce, StoreID: m.StoreID, Known: true}},
		{"another write of the same record at the mark", Mark{Seq: m.Seq, Entity: m.Entity, Key: m.Key, Nonce: m.Nonce + 1, StoreID: m.StoreID, Known: true}},
		{"another store", Mark{Seq: m.Seq, Entity: m.Entity, Key: m.Key, Nonce: m.Nonce, StoreID: "other", Known: true}},
	} {
		if _, err := db.ChangesSince(ctx, tc.m, 10); !errors.Is(err, ErrStoreReplaced) {
			t.Errorf("%s: ChangesSince = %v; want ErrStoreReplaced", tc.note, err)
		}
	}
	// An unchecked mark (Changes) reads as before.
	if got, err := db.Changes(ctx, m.Seq+5, 10); err != nil || len(got) != 0 {
		t.Fatalf("Changes(past the head) = %+v, %v; want none", got, err)
	}
}

// BenchmarkPoll is a follower's poll of an idle store: the change log read
// after the head, unchecked (Changes, what the index did before checking
// the store) and checked (ChangesSince with the load's Mark).
func BenchmarkPoll(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			location := filepath.Join(b.TempDir(), "pat.db")
			if backend == "postgres" {
				location = pgtest.Database(b, "pat_test_poll_")
			}
			ctx := b.Context()
			db := openAt(b, location)
			tok := Token{Hash: hashOf(1), Name: "t", Kind: KindClassic, User: "bob", Scopes: []string{"repo"}, CreatedAt: t0}
			if _, _, err := db.CreateToken(ctx, CreateTokenParams{Token: tok}); err != nil {
				b.Fatal(err)
			}
			var m Mark
			if _, err := db.Load(ctx, Visitor{Mark: func(got Mark) { m = got }}); err != nil {
				b.Fatal(err)
			}
			b.Run("unchecked", func(b *testing.B) {
				for b.Loop() {
					if _, err := db.Changes(ctx, m.Seq, 1000); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("checked", func(b *testing.B) {
				for b.Loop() {
					if _, err := db.ChangesSince(ctx, m, 1000); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
