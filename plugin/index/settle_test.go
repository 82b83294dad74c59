package index

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opa-pat/opa-pat/plugin/store"
)

// countingReader is a store whose row counts are counted.
type countingReader struct {
	*store.DB
	counts atomic.Int64
	fail   atomic.Bool
}

func (r *countingReader) RowCounts(ctx context.Context) (store.RowCounts, error) {
	r.counts.Add(1)
	if r.fail.Load() {
		return store.RowCounts{}, errors.New("connection refused")
	}
	return r.DB.RowCounts(ctx)
}

const testQuiet = 400 * time.Millisecond

// TestSettleAfterRestore: a backup is restored table by table under an
// index (psql < dump without --single-transaction). The index reads the
// change log once it is back, finds that it went backwards and loads the
// store afresh, while the tokens table is still empty; COPY then fills it
// and logs no change. Within the window after the reload, the index must
// notice that the counts changed, load the store again and serve the
// tokens; once the counts held for the window, it stops counting.
func TestSettleAfterRestore(t *testing.T) { restoreBackends(t, testSettleAfterRestore) }

func testSettleAfterRestore(t *testing.T, location string) {
	ctx := t.Context()
	db := openAtLocation(t, location)
	create(t, db, 1)
	create(t, db, 2)
	backup := head(t, db).Seq
	create(t, db, 3)
	create(t, db, 4)
	r := &countingReader{DB: db}
	x := New()
	x.settleQuiet = testQuiet
	if err := x.Load(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := x.CatchUp(ctx, r); err != nil || r.counts.Load() != 0 {
		t.Fatalf("a round after the first load: %v, %d counts; want no error and no count", err, r.counts.Load())
	}

	// The restore, half done: the change log is back (at the backup's
	// number), the tokens are not yet.
	raw(t, location, append([]string{
		`CREATE TABLE tokens_backup AS SELECT * FROM tokens WHERE id <= 2`,
		`DELETE FROM tokens`,
	}, rewindLog(location, backup)...)...)
	if err := x.CatchUp(ctx, r); err != nil {
		t.Fatal(err)
	}
	if x.Reloads() != 1 || !errors.Is(x.LastReload(), store.ErrStoreReplaced) {
		t.Fatalf("reloads %d (%v); want the restore noticed", x.Reloads(), x.LastReload())
	}
	if n := x.Counts().Tokens; n != 0 {
		t.Fatalf("%d tokens loaded from the half-restored store; want 0", n)
	}
	if r.counts.Load() != 0 {
		t.Errorf("%d counts in the round that loaded; want none", r.counts.Load())
	}
	if err := x.CatchUp(ctx, r); err != nil || x.Reloads() != 1 || r.counts.Load() != 1 {
		t.Fatalf("a round with the tables unchanged: %v, reloads %d, counts %d; want no reload and one count", err, x.Reloads(), r.counts.Load())
	}

	// A count that fails fails the round, as a change log that cannot be
	// read does: no reload, and the window goes on.
	r.fail.Store(true)
	if err := x.CatchUp(ctx, r); err == nil || !strings.Contains(err.Error(), "connection refused") || x.Reloads() != 1 {
		t.Fatalf("a round whose count fails: %v, reloads %d; want its error and no reload", err, x.Reloads())
	}
	r.fail.Store(false)

	// The rest of the restore: COPY fills the tokens, without a change.
	raw(t, location, `INSERT INTO tokens SELECT * FROM tokens_backup`, `DROP TABLE tokens_backup`)
	if err := x.CatchUp(ctx, r); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		if _, ok := x.Token(hashOf(i)); !ok {
			t.Errorf("token %d, restored without a change, is not served", i)
		}
	}
	if _, ok := x.Token(hashOf(3)); ok {
		t.Error("token 3, not in the backup, is served")
	}
	why := x.LastReload()
	if x.Reloads() != 2 || !errors.Is(why, ErrStoreSettling) || !strings.Contains(fmt.Sprint(why), "tokens 0 → 2") {
		t.Fatalf("reloads %d, LastReload() = %v; want a second one saying tokens 0 → 2", x.Reloads(), why)
	}
	t.Logf("LastReload: %v", why)

	// The window restarted with that reload: the counts are checked on
	// every round until they held for settleQuiet, then no more.
	reloadedAt := time.Now()
	for time.Since(reloadedAt) < testQuiet+100*time.Millisecond {
		if err := x.CatchUp(ctx, r); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	counted := r.counts.Load()
	if counted < 5 {
		t.Errorf("%d counts in the window; want one on every round", counted)
	}
	for range 5 {
		if err := x.CatchUp(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if got := r.counts.Load(); got != counted {
		t.Errorf("%d counts after the window ended; want none (%d before)", got-counted, counted)
	}
	if x.Reloads() != 2 {
		t.Errorf("reloads %d; want 2", x.Reloads())
	}
}

// TestSettleFollowsWrites: within the window, writes through the store
// change the counts by no more than the changes the index applies: they
// are followed, not loaded again. Rows written without changes are not.
func TestSettleFollowsWrites(t *testing.T) { restoreBackends(t, testSettleFollowsWrites) }

func testSettleFollowsWrites(t *testing.T, location string) {
	ctx := t.Context()
	db := openAtLocation(t, location)
	create(t, db, 1)
	backup := head(t, db).Seq
	create(t, db, 2)
	r := &countingReader{DB: db}
	x := New()
	x.settleQuiet = time.Hour
	if err := x.Load(ctx, r); err != nil {
		t.Fatal(err)
	}
	raw(t, location, append([]string{`DELETE FROM tokens WHERE id > 1`}, rewindLog(location, backup)...)...)
	if err := x.CatchUp(ctx, r); err != nil || x.Reloads() != 1 {
		t.Fatalf("CatchUp after the restore: %v, reloads %d; want 1", err, x.Reloads())
	}
	for i := 10; i < 13; i++ {
		create(t, db, i)
		if err := x.CatchUp(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	fine := fg(20, "bob")
	fine.ID = 0
	tok, g, err := db.CreateToken(ctx, store.CreateTokenParams{Token: fine, GrantState: store.GrantPending})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.RevokeToken(ctx, 1, "admin", "leaked"); err != nil {
		t.Fatal(err)
	}
	if err := x.CatchUp(ctx, r); err != nil {
		t.Fatal(err)
	}
	if x.Reloads() != 1 {
		t.Fatalf("reloads %d after writes through the store; want them followed (%v)", x.Reloads(), x.LastReload())
	}
	if _, ok := x.Token(hashOf(20)); !ok || x.Counts().Tokens != 5 {
		t.Fatalf("%d tokens, token 20 found %v; want 5, found", x.Counts().Tokens, ok)
	}
	if r.counts.Load() < 4 {
		t.Errorf("%d counts; want one on every round after the reload", r.counts.Load())
	}

	// A request reviewed, and two written behind the store's back: one
	// grant change applied, three rows more (a table restored by COPY
	// meanwhile) than it explains.
	if _, err := db.Review(ctx, store.ReviewParams{Org: "octo-org", IDs: []int64{g.ID}, Actor: "alice"}); err != nil {
		t.Fatal(err)
	}
	insert := fmt.Sprintf(`INSERT INTO requests (token_id, org, state, created_at, updated_at) VALUES (%d, 'octo-org', 'pending', 2, 2)`, tok.ID)
	raw(t, location, insert, insert)
	if err := x.CatchUp(ctx, r); err != nil {
		t.Fatal(err)
	}
	if x.Reloads() != 2 || !errors.Is(x.LastReload(), ErrStoreSettling) || !strings.Contains(fmt.Sprint(x.LastReload()), "requests 1 → 3 (1 grant change applied since)") {
		t.Fatalf("reloads %d, LastReload() = %v; want a reload for requests 1 → 3", x.Reloads(), x.LastReload())
	}
}
