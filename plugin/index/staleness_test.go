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

// flakyReader is an empty store whose change log fails while down is set.
type flakyReader struct {
	down atomic.Bool
}

func (r *flakyReader) Load(context.Context, store.Visitor) (int64, error) { return 0, nil }
func (r *flakyReader) Changes(context.Context, int64, int) ([]store.Change, error) {
	if r.down.Load() {
		return nil, errors.New("connection refused")
	}
	return nil, nil
}
func (r *flakyReader) Wake(ctx context.Context) <-chan struct{} { return make(chan struct{}) }
func (r *flakyReader) User(context.Context, string) (store.User, bool, error) {
	return store.User{}, false, nil
}
func (r *flakyReader) Membership(context.Context, string, string) (store.Membership, bool, error) {
	return store.Membership{}, false, nil
}
func (r *flakyReader) Repository(context.Context, string, string) (store.Repository, bool, error) {
	return store.Repository{}, false, nil
}
func (r *flakyReader) Token(context.Context, int64) (store.Token, bool, error) {
	return store.Token{}, false, nil
}
func (r *flakyReader) Grant(context.Context, int64, string) (store.Grant, bool, error) {
	return store.Grant{}, false, nil
}

func TestCurrent(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, tc := range []struct {
		note      string
		bound     time.Duration
		currentAt time.Time
		err       string
	}{
		{note: "no bound", bound: 0, currentAt: time.Time{}},
		{note: "never loaded", bound: time.Minute, err: "the token index is stale: it has not loaded the token store yet"},
		{note: "within the bound", bound: time.Minute, currentAt: now.Add(-time.Minute)},
		{note: "past the bound", bound: time.Minute, currentAt: now.Add(-time.Minute - time.Millisecond),
			err: "the token index is stale: it last caught up with the token store 1m0.001s ago, past the bound of 1m0s"},
	} {
		t.Run(tc.note, func(t *testing.T) {
			x := New()
			x.SetMaxStaleness(tc.bound)
			if !tc.currentAt.IsZero() {
				x.fresh.markCurrent(tc.currentAt)
			}
			err := x.Current(now)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("Current() = %v; want nil", err)
			case tc.err != "" && (err == nil || !errors.Is(err, ErrStale)):
				t.Fatalf("Current() = %v; want ErrStale", err)
			case tc.err != "" && err.Error() != tc.err:
				t.Fatalf("Current() = %q; want %q", err, tc.err)
			}
		})
	}
}

// TestFollowStaleness: an index that cannot read the change log answers
// until the bound, fails closed past it, and answers again once a catch-up
// succeeds.
func TestFollowStaleness(t *testing.T) {
	const bound = 300 * time.Millisecond
	r := &flakyReader{}
	x := New()
	x.SetMaxStaleness(bound)
	if err := x.Load(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); x.Follow(ctx, r, 20*time.Millisecond, nil) }()

	waitFor := func(what string, within time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(within)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %s", what, within)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("current while the store answers", time.Second, func() bool { return x.Current(time.Now()) == nil })
	r.down.Store(true)
	downAt := time.Now()
	waitFor("stale after the bound", 2*time.Second, func() bool { return errors.Is(x.Current(time.Now()), ErrStale) })
	if d := time.Since(downAt); d < bound-50*time.Millisecond {
		t.Fatalf("stale after %s; want at least the bound minus one poll (%s)", d, bound)
	}
	r.down.Store(false)
	waitFor("current after recovery", time.Second, func() bool { return x.Current(time.Now()) == nil })
	cancel()
	<-done
}

// TestFollowPrunedLog: an index behind a change log pruned past it does not
// skip the removed changes. It stops advancing, says why, and fails closed
// past the bound; a fresh load follows the pruned log again.
func TestFollowPrunedLog(t *testing.T) {
	const bound = 300 * time.Millisecond
	ctx := t.Context()
	db := openStore(t)
	classic := func(b byte) store.Token {
		return store.Token{Hash: [32]byte{b}, Name: fmt.Sprint(b), Kind: store.KindClassic, User: "bob", Scopes: []string{"repo"}, CreatedAt: time.Now()}
	}
	if _, _, err := db.CreateToken(ctx, store.CreateTokenParams{Token: classic(1)}); err != nil {
		t.Fatal(err)
	}
	x := New()
	x.SetMaxStaleness(bound)
	if err := x.Load(ctx, db); err != nil {
		t.Fatal(err)
	}
	at := x.Seq()
	// Two tokens the index has not seen, then a prune that removes the first.
	for b := byte(2); b <= 3; b++ {
		if _, _, err := db.CreateToken(ctx, store.CreateTokenParams{Token: classic(b)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, through, err := db.PruneChanges(ctx, 1); err != nil || through <= at {
		t.Fatalf("PruneChanges(1) = through %d, %v; want past the index at %d", through, err, at)
	}
	err := x.CatchUp(ctx, db)
	if !errors.Is(err, store.ErrChangesPruned) || !strings.Contains(err.Error(), "restart the sidecar") {
		t.Fatalf("CatchUp = %v; want ErrChangesPruned, which says what to do", err)
	}
	if x.Seq() != at {
		t.Fatalf("the index moved to %d past a gap; want it at %d", x.Seq(), at)
	}
	if _, ok := x.Token([32]byte{3}); ok {
		t.Fatal("the index applied a change that follows the removed one")
	}
	// Following it, the index never catches up again: past the bound its
	// decisions fail closed, and every round reports why.
	followCtx, cancel := context.WithCancel(ctx)
	var reported atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		x.Follow(followCtx, db, 20*time.Millisecond, func(err error) {
			if errors.Is(err, store.ErrChangesPruned) {
				reported.Add(1)
			}
		})
	}()
	time.Sleep(bound + 100*time.Millisecond)
	cancel()
	<-done
	if err := x.Current(time.Now()); !errors.Is(err, ErrStale) {
		t.Fatalf("Current = %v; want ErrStale: decisions fail closed", err)
	}
	if reported.Load() == 0 || x.Seq() != at {
		t.Fatalf("Follow reported ErrChangesPruned %d times and moved to %d; want reports, and %d", reported.Load(), x.Seq(), at)
	}

	fresh := New()
	if err := fresh.Load(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := fresh.CatchUp(ctx, db); err != nil {
		t.Fatalf("a fresh load's CatchUp = %v", err)
	}
	for b := byte(1); b <= 3; b++ {
		if _, ok := fresh.Token([32]byte{b}); !ok {
			t.Fatalf("a fresh load lacks token %d", b)
		}
	}
}
