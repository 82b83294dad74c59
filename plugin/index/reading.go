package index

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// DefaultReadTimeout bounds one read of a catch-up (the change log, a record
// a change names, the row counts) when the staleness bound is 20s or more; a
// smaller bound gives each read half of it. A read that gets no answer
// within it (a lock that another session holds on the table, a connection
// that died without a word) is given up, and the next poll sends it again,
// on a connection that works if the pool has one. A load of the whole store
// within a catch-up has reloadTimeout.
const DefaultReadTimeout = 10 * time.Second

// reloadTimeout bounds a load of the whole store that a catch-up makes
// (after a prune past the index, a restore): seconds at a million tokens,
// and far from for ever.
const reloadTimeout = 10 * time.Minute

// ErrNoAnswer marks a read of a catch-up that was given up for want of an
// answer within its time (ReadTimeout).
var ErrNoAnswer = errors.New("no answer")

// Reading is a read of the store that a catch-up sent and that has not
// returned: in flight, or given up for want of an answer (ErrNoAnswer) and
// not yet sent again.
type Reading struct {
	// What is read: "the change log", "token 23", `user "bob"`, "the
	// store's row counts", "the whole store".
	What string
	// Since is when it was first sent: a read given up and sent again
	// keeps the time of the first try.
	Since time.Time
}

// reading is the state behind Reading.
type reading struct {
	Reading
	// gaveUp is set once a try was given up (ErrNoAnswer).
	gaveUp bool
}

// Reading reports the read of the store that the index's catch-up waits
// for, if any (see Reading): the plugin's status names it while the index
// falls behind.
func (x *Index) Reading() (Reading, bool) {
	if r := x.inflight.Load(); r != nil {
		return r.Reading, true
	}
	return Reading{}, false
}

// ReadTimeout is how long one read of a catch-up may wait for its answer:
// DefaultReadTimeout, or half the staleness bound when that is less.
func (x *Index) ReadTimeout() time.Duration {
	d := DefaultReadTimeout
	if bound := time.Duration(x.fresh.maxStale.Load()); bound > 0 && bound/2 < d {
		d = bound / 2
	}
	return d
}

// read runs one read of a catch-up, what it reads named for Reading, with
// a deadline (ReadTimeout, or reloadTimeout for a load of the whole store):
// a read that gets no answer by then fails with ErrNoAnswer, and Reading
// keeps naming it, since its first try, until a read returns.
func (x *Index) read(ctx context.Context, what string, timeout time.Duration, fn func(ctx context.Context) error) error {
	since := time.Now()
	if r := x.inflight.Load(); r != nil && r.gaveUp && r.What == what {
		since = r.Since
	}
	x.inflight.Store(&reading{Reading: Reading{What: what, Since: since}})
	rctx, cancel := context.WithTimeout(ctx, timeout)
	err := fn(rctx)
	cancel()
	if err != nil && ctx.Err() == nil && errors.Is(rctx.Err(), context.DeadlineExceeded) {
		x.inflight.Store(&reading{Reading: Reading{What: what, Since: since}, gaveUp: true})
		return fmt.Errorf("%w within %s, given up (tried again on the next poll): %w", ErrNoAnswer, timeout, err)
	}
	x.inflight.Store(nil)
	return err
}

// describeRecord names the record a change names, for Reading.
func describeRecord(entity, key string) string {
	if _, err := strconv.ParseInt(key, 10, 64); err == nil {
		return entity + " " + key
	}
	return entity + " " + strconv.Quote(key)
}
