package index

import (
	"context"
	"errors"
	"fmt"
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
func (r *flakyReader) ChangesSince(context.Context, store.Mark, int) ([]store.Change, error) {
	if r.down.Load() {
		return nil, errors.New("connection refused")
	}
	return nil, nil
}
func (r *flakyReader) Wake(ctx context.Context) <-chan struct{} { return make(chan struct{}) }
func (r *flakyReader) RowCounts(context.Context) (store.RowCounts, error) {
	if r.down.Load() {
		return store.RowCounts{}, errors.New("connection refused")
	}
	return store.RowCounts{}, nil
}
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

// failingLoad is a store whose loads fail (its other reads pass through).
type failingLoad struct{ store.Reader }

func (failingLoad) Load(context.Context, store.Visitor) (int64, error) {
	return 0, errors.New("disk I/O error")
}

// TestFollowPrunedLog: an index behind a change log that was pruned past
// the last change it applied never skips the removed changes. It loads the
// store afresh, answering from the records it had until the new ones are in
// place, and goes on following from there; a load that fails leaves it as it
// was, behind, so that its decisions fail closed past the bound.
func TestFollowPrunedLog(t *testing.T) {
	const bound = 300 * time.Millisecond
	ctx := t.Context()
	db := openStore(t)
	classic := func(b byte) store.Token {
		return store.Token{Hash: [32]byte{b}, Name: fmt.Sprint(b), Kind: store.KindClassic, User: "bob", Scopes: []string{"repo"}, CreatedAt: time.Now()}
	}
	create := func(b byte) int64 {
		tok, _, err := db.CreateToken(ctx, store.CreateTokenParams{Token: classic(b)})
		if err != nil {
			t.Fatal(err)
		}
		return tok.ID
	}
	first := create(1)
	x := New()
	x.SetMaxStaleness(bound)
	if err := x.Load(ctx, db); err != nil {
		t.Fatal(err)
	}
	at := x.Seq()
	// Two tokens the index has not seen, the first one revoked, then a prune
	// that removes the first creation.
	create(2)
	create(3)
	if err := db.RevokeToken(ctx, first, "erin", "leaked"); err != nil {
		t.Fatal(err)
	}
	if _, through, err := db.PruneChanges(ctx, 1); err != nil || through <= at {
		t.Fatalf("PruneChanges(1) = through %d, %v; want past the index at %d", through, err, at)
	}

	// A load that fails: the index stays where it was, says why, and goes
	// stale.
	err := x.CatchUp(ctx, failingLoad{db})
	if err == nil {
		t.Fatal("CatchUp with a failing load = nil")
	}
	want := fmt.Sprintf("the change log was pruned past change %d, the last one the index applied, "+
		"and loading the store afresh failed: disk I/O error", at)
	if err.Error() != want {
		t.Fatalf("CatchUp with a failing load = %q, want %q", err, want)
	}
	if x.Seq() != at || x.Reloads() != 0 {
		t.Fatalf("after a failed load the index is at %d with %d reloads; want %d and 0", x.Seq(), x.Reloads(), at)
	}
	if _, ok := x.Token([32]byte{3}); ok {
		t.Fatal("the index applied a change that follows the removed one")
	}
	if tok, ok := x.Token([32]byte{1}); !ok || tok.Shape.Revoked {
		t.Fatalf("after a failed load token 1 = %+v, %v; want the record the index had", tok, ok)
	}
	time.Sleep(bound + 50*time.Millisecond)
	if err := x.Current(time.Now()); !errors.Is(err, ErrStale) {
		t.Fatalf("Current = %v; want ErrStale: decisions fail closed", err)
	}

	// Following the store itself, the index loads it afresh and is current.
	followCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		x.Follow(followCtx, db, 20*time.Millisecond, func(err error) { t.Errorf("Follow: %v", err) })
	}()
	deadline := time.Now().Add(5 * time.Second)
	for x.Reloads() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if x.Reloads() != 1 {
		t.Fatalf("Reloads = %d, want 1", x.Reloads())
	}
	if err := x.Current(time.Now()); err != nil {
		t.Fatalf("after the load Current = %v", err)
	}
	for b := byte(1); b <= 3; b++ {
		if _, ok := x.Token([32]byte{b}); !ok {
			t.Fatalf("after the load the index lacks token %d", b)
		}
	}
	if tok, _ := x.Token([32]byte{1}); !tok.Shape.Revoked {
		t.Fatal("after the load token 1 is not revoked: the removed change's successor was lost")
	}
	// And it follows the log on from the load.
	reloaded := x.Seq()
	create(4)
	for _, ok := x.Token([32]byte{4}); !ok && time.Now().Before(deadline); _, ok = x.Token([32]byte{4}) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if _, ok := x.Token([32]byte{4}); !ok || x.Seq() <= reloaded || x.Reloads() != 1 {
		t.Fatalf("after the load: token 4 found %v, at %d (load at %d), %d reloads; want found, past, 1", ok, x.Seq(), reloaded, x.Reloads())
	}
}
