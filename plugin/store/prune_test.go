package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
)

func TestPruneChanges(t *testing.T) { adminBackends(t, testPruneChanges) }

func testPruneChanges(t *testing.T, location string) {
	ctx := t.Context()
	db := openAt(t, location)
	classic := func(b byte) Token {
		return Token{Hash: hashOf(b), Name: string('a' + rune(b)), Kind: KindClassic, User: "bob", Scopes: []string{"repo"}, CreatedAt: t0}
	}
	for b := byte(1); b <= 5; b++ {
		if _, _, err := db.CreateToken(ctx, CreateTokenParams{Token: classic(b)}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := db.Changes(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	n := int64(len(all))
	head := all[n-1].Seq
	if n < 5 {
		t.Fatalf("%d changes for 5 tokens", n)
	}

	if _, _, err := db.PruneChanges(ctx, 0); err == nil {
		t.Fatal("PruneChanges(0) removed the head of the log")
	}
	removed, through, err := db.PruneChanges(ctx, 2)
	if err != nil || removed != n-2 || through != head-2 {
		t.Fatalf("PruneChanges(2) = %d, %d, %v; want %d, %d", removed, through, err, n-2, head-2)
	}
	if got, err := db.Changes(ctx, through, 100); err != nil || !reflect.DeepEqual(got, all[n-2:]) {
		t.Fatalf("Changes(%d) = %+v, %v; want the two kept: %+v", through, got, err, all[n-2:])
	}
	for _, after := range []int64{0, through - 1} {
		if _, err := db.Changes(ctx, after, 100); !errors.Is(err, ErrChangesPruned) {
			t.Fatalf("Changes(%d) after pruning through %d: %v; want ErrChangesPruned", after, through, err)
		}
	}
	if got, err := db.Changes(ctx, head, 100); err != nil || len(got) != 0 {
		t.Fatalf("Changes(head) = %+v, %v; want none", got, err)
	}

	// Again, or keeping more than there is: nothing to remove.
	for _, keep := range []int64{2, 100} {
		if removed, again, err := db.PruneChanges(ctx, keep); err != nil || removed != 0 || again != through {
			t.Fatalf("PruneChanges(%d) again = %d, %d, %v; want 0, %d", keep, removed, again, err, through)
		}
	}
	// A load still starts at the head, and following it misses nothing.
	seq, err := db.Load(ctx, Visitor{})
	if err != nil || seq != head {
		t.Fatalf("Load = %d, %v; want the head %d", seq, err, head)
	}
	if _, _, err := db.CreateToken(ctx, CreateTokenParams{Token: classic(6)}); err != nil {
		t.Fatal(err)
	}
	if got, err := db.Changes(ctx, seq, 100); err != nil || len(got) != 1 || got[0].Entity != EntityToken {
		t.Fatalf("Changes after the load = %+v, %v; want the new token", got, err)
	}
	if v, ok, err := db.Meta(ctx, MetaChangesPrunedThrough); err != nil || !ok || v == "" {
		t.Fatalf("meta %s = %q, %v, %v", MetaChangesPrunedThrough, v, ok, err)
	}
}

// How far a store's change log is pruned belongs to that log: a migration
// neither copies the source's mark nor clears the target's own.
func TestMigrateKeepsEachLogsPruneMark(t *testing.T) {
	adminBackends(t, testMigrateKeepsEachLogsPruneMark)
}

func testMigrateKeepsEachLogsPruneMark(t *testing.T, location string) {
	ctx := t.Context()
	src, err := Open(ctx, filepath.Join(t.TempDir(), "src.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	for b := byte(1); b <= 5; b++ {
		tok := Token{Hash: hashOf(b), Name: string('a' + rune(b)), Kind: KindClassic, User: "bob", Scopes: []string{"repo"}, CreatedAt: t0}
		if _, _, err := src.CreateToken(ctx, CreateTokenParams{Token: tok}); err != nil {
			t.Fatal(err)
		}
	}
	if _, through, err := src.PruneChanges(ctx, 1); err != nil || through == 0 {
		t.Fatalf("PruneChanges = %d, %v", through, err)
	}
	dst, err := Open(ctx, location)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dst.Close() })
	if _, err := MigrateStore(ctx, src, dst, MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := dst.Meta(ctx, MetaChangesPrunedThrough); err != nil || ok {
		t.Fatalf("the target holds the source's prune mark %q (%v)", v, err)
	}
	if got, err := dst.Changes(ctx, 0, 1000); err != nil || len(got) == 0 {
		t.Fatalf("the target's change log from the start: %d entries, %v", len(got), err)
	}

	_, own, err := dst.PruneChanges(ctx, 1)
	if err != nil || own == 0 {
		t.Fatalf("pruning the target = %d, %v", own, err)
	}
	if _, err := MigrateStore(ctx, src, dst, MigrateOptions{Replace: true}); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := dst.Meta(ctx, MetaChangesPrunedThrough); err != nil || !ok || v != fmt.Sprint(own) {
		t.Fatalf("after a replacing migration the target's prune mark is %q, %v, %v; want its own %d", v, ok, err, own)
	}
	if _, err := dst.Changes(ctx, own, 1000); err != nil {
		t.Fatalf("following the target after its own mark: %v", err)
	}
}

// TestVacuum: after a prune, Vacuum gives the space back. On SQLite the
// file shrinks (20,000 change-log entries pruned to 1) and the store reads
// as before; on PostgreSQL it runs VACUUM on the change log and reports no
// sizes.
func TestVacuum(t *testing.T) { adminBackends(t, testVacuum) }

func testVacuum(t *testing.T, location string) {
	ctx := t.Context()
	db := openAt(t, location)
	const users = 20_000
	err := db.BulkInsert(ctx, func(w *BulkWriter) error {
		for i := range users {
			if err := w.User(User{Login: fmt.Sprintf("user-%05d-with-a-longer-login", i)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if removed, _, err := db.PruneChanges(ctx, 1); err != nil || removed != users-1 {
		t.Fatalf("PruneChanges(1) = %d, %v; want %d", removed, err, users-1)
	}
	before, after, err := db.Vacuum(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if IsPostgres(location) {
		if before != 0 || after != 0 {
			t.Fatalf("Vacuum on PostgreSQL = %d, %d; want no sizes", before, after)
		}
	} else if after >= before || before-after < 512<<10 {
		t.Fatalf("Vacuum: %d bytes before, %d after; want the pruned log's pages (at least 512 KiB) back", before, after)
	}
	if u, ok, err := db.User(ctx, "user-12345-with-a-longer-login"); err != nil || !ok || u.Login != "user-12345-with-a-longer-login" {
		t.Fatalf("after Vacuum: User = %+v, %v, %v", u, ok, err)
	}
	if got, err := db.Changes(ctx, 0, 10); !errors.Is(err, ErrChangesPruned) || got != nil {
		t.Fatalf("after Vacuum: Changes(0) = %v, %v; want ErrChangesPruned", got, err)
	}
}
