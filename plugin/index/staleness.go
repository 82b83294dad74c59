package index

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// ErrStale is returned by Current when the index may be too far behind the
// store to answer: the store has not been reachable for longer than the
// staleness bound. The pat.token built-in then fails, the call is undefined
// and the policy denies (fail closed) until the index has caught up.
var ErrStale = errors.New("the token index is stale")

// freshness records when the index last reflected the whole store: the
// start of the last Load or CatchUp that read the change log to its end.
type freshness struct {
	currentAt atomic.Int64 // Unix nanoseconds; 0: never
	maxStale  atomic.Int64 // nanoseconds; 0: no bound
}

// markCurrent records that the index reflected every change committed
// before t.
func (f *freshness) markCurrent(t time.Time) {
	n := t.UnixNano()
	for {
		old := f.currentAt.Load()
		if old >= n || f.currentAt.CompareAndSwap(old, n) {
			return
		}
	}
}

// MarkCurrent records that the index reflected every change the store
// committed before t; Load and Follow call it. It never moves back.
func (x *Index) MarkCurrent(t time.Time) { x.fresh.markCurrent(t) }

// SetMaxStaleness sets the staleness bound: once the index has not caught
// up with the store for longer than d, Current fails. d <= 0 removes the
// bound.
func (x *Index) SetMaxStaleness(d time.Duration) { x.fresh.maxStale.Store(max(int64(d), 0)) }

// CurrentAt is when the index last reflected the whole store (the start of
// the last successful Load or catch-up); zero before the first.
func (x *Index) CurrentAt() time.Time {
	n := x.fresh.currentAt.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Current returns nil when the index may answer: it caught up with the
// store within the staleness bound, or no bound is set. Otherwise it
// returns an error wrapping ErrStale that says how far behind it is.
//
// It fails at once, whatever the bound, while the store's schema is older
// than the one the index loaded (StoreOlder): the index may hold tokens
// that the restored store does not.
func (x *Index) Current(now time.Time) error {
	if p := x.older.Load(); p != nil {
		return fmt.Errorf("%w: %w", ErrStale, *p)
	}
	bound := x.fresh.maxStale.Load()
	if bound == 0 {
		return nil
	}
	at := x.fresh.currentAt.Load()
	if at == 0 {
		return fmt.Errorf("%w: it has not loaded the token store yet", ErrStale)
	}
	if behind := now.UnixNano() - at; behind > bound {
		return fmt.Errorf("%w: it last caught up with the token store %s ago, past the bound of %s",
			ErrStale, time.Duration(behind).Round(time.Millisecond), time.Duration(bound))
	}
	return nil
}
