package index

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/opa-pat/opa-pat/plugin/store"
)

// stuckReader is an empty store whose change log does not answer while
// stuck is open (a table locked by another session): a read waits for it or
// for its context.
type stuckReader struct {
	flakyReader
	stuck chan struct{}
}

func (r *stuckReader) ChangesSince(ctx context.Context, m store.Mark, n int) ([]store.Change, error) {
	select {
	case <-r.stuck:
		return r.flakyReader.ChangesSince(ctx, m, n)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// A read of the change log that does not answer is given up after
// ReadTimeout, and Reading names it, from its first try, until a read
// returns; the catch-up then succeeds and Reading is clear.
func TestReadThatDoesNotAnswer(t *testing.T) {
	x := New()
	x.SetMaxStaleness(400 * time.Millisecond)
	if got := x.ReadTimeout(); got != 200*time.Millisecond {
		t.Fatalf("ReadTimeout() = %s with a bound of 400ms; want half of it, 200ms", got)
	}
	r := &stuckReader{stuck: make(chan struct{})}
	if err := x.Load(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	if _, ok := x.Reading(); ok {
		t.Fatal("Reading() reports a read before any")
	}

	first := time.Now()
	errs := make(chan error, 1)
	go func() { errs <- x.CatchUp(t.Context(), r) }()
	time.Sleep(50 * time.Millisecond)
	if rd, ok := x.Reading(); !ok || rd.What != "the change log" || rd.Since.Before(first) || rd.Since.After(time.Now()) {
		t.Fatalf("Reading() = %+v, %v while the read is in flight; want the change log, since %s", rd, ok, first)
	}
	err := <-errs
	took := time.Since(first)
	want := "reading the store's change log after change 0: no answer within 200ms, given up (tried again on the next poll): context deadline exceeded"
	if !errors.Is(err, ErrNoAnswer) || err.Error() != want || took < 200*time.Millisecond || took > 2*time.Second {
		t.Fatalf("CatchUp() = %v after %s; want %q after 200ms", err, took, want)
	}
	rd, ok := x.Reading()
	if !ok || rd.What != "the change log" {
		t.Fatalf("Reading() = %+v, %v after the read was given up; want the change log", rd, ok)
	}
	since := rd.Since

	// Sent again: still the read of the change log since the first try.
	go func() { errs <- x.CatchUp(t.Context(), r) }()
	time.Sleep(50 * time.Millisecond)
	if rd, ok := x.Reading(); !ok || rd.What != "the change log" || !rd.Since.Equal(since) {
		t.Fatalf("Reading() = %+v, %v on the second try; want the change log since %s", rd, ok, since)
	}
	close(r.stuck) // the lock is released
	if err := <-errs; err != nil {
		t.Fatalf("CatchUp() = %v once the change log answers", err)
	}
	if rd, ok := x.Reading(); ok {
		t.Fatalf("Reading() = %+v after the read returned", rd)
	}
}

// Without a bound, or with one of 20s or more, a read waits at most
// DefaultReadTimeout.
func TestReadTimeoutDefault(t *testing.T) {
	x := New()
	for _, bound := range []time.Duration{0, 20 * time.Second, time.Hour} {
		x.SetMaxStaleness(bound)
		if got := x.ReadTimeout(); got != DefaultReadTimeout {
			t.Fatalf("ReadTimeout() = %s with a bound of %s; want %s", got, bound, DefaultReadTimeout)
		}
	}
	x.SetMaxStaleness(5 * time.Second)
	if got := x.ReadTimeout(); got != 2500*time.Millisecond {
		t.Fatalf("ReadTimeout() = %s with a bound of 5s; want 2.5s", got)
	}
}

// tokenDenied is a store whose change log names token 23, which the role
// may not read.
type tokenDenied struct{ flakyReader }

var errDenied = errors.New(`reading token 23: ERROR: permission denied for table tokens (SQLSTATE 42501)`)

func (*tokenDenied) ChangesSince(_ context.Context, m store.Mark, _ int) ([]store.Change, error) {
	if m.Seq >= 12 {
		return nil, nil
	}
	return []store.Change{{Seq: 12, Entity: store.EntityToken, Key: "23"}}, nil
}

func (*tokenDenied) Token(context.Context, int64) (store.Token, bool, error) {
	return store.Token{}, false, errDenied
}

// A record that cannot be read is a RecordError naming the change and the
// store's error, which names the record.
func TestRecordError(t *testing.T) {
	x := New()
	err := x.CatchUp(t.Context(), &tokenDenied{})
	var re *RecordError
	if !errors.As(err, &re) || re.Seq != 12 || re.Entity != store.EntityToken || re.Key != "23" || !errors.Is(err, errDenied) ||
		err.Error() != `applying change 12: reading token 23: ERROR: permission denied for table tokens (SQLSTATE 42501)` {
		t.Fatalf("CatchUp() = %v", err)
	}
}
