package lastused

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"
)

type fakeToucher struct {
	mu    sync.Mutex
	calls [][]int64
	err   error
}

func (f *fakeToucher) TouchLastUsed(ctx context.Context, ids []int64, _ time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	if err := ctx.Err(); err != nil { // as the store's transactions do
		return err
	}
	f.calls = append(f.calls, slices.Sorted(slices.Values(ids)))
	return nil
}

func (f *fakeToucher) setErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *fakeToucher) all() [][]int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]int64{}, f.calls...)
}

func TestFlush(t *testing.T) {
	for _, tc := range []struct {
		note  string
		marks [][]int64 // marks before each flush
		want  [][]int64 // the batches written
	}{
		{note: "nothing marked writes nothing", marks: [][]int64{nil}, want: [][]int64{}},
		{note: "one batch, duplicates once", marks: [][]int64{{3, 1, 3, 2, 1}}, want: [][]int64{{1, 2, 3}}},
		{note: "only what was marked since", marks: [][]int64{{1, 2}, {2}, nil, {5, 1}}, want: [][]int64{{1, 2}, {2}, {1, 5}}},
	} {
		t.Run(tc.note, func(t *testing.T) {
			f := &fakeToucher{}
			r := New(f, time.Hour, nil)
			for _, ids := range tc.marks {
				for _, id := range ids {
					r.Mark(id)
				}
				if err := r.Flush(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			if got := f.all(); !reflect.DeepEqual(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFailedFlushKeepsMarks(t *testing.T) {
	f := &fakeToucher{err: errors.New("database is locked")}
	r := New(f, time.Hour, nil)
	r.Mark(7)
	if err := r.Flush(t.Context()); err == nil {
		t.Fatal("want the store's error")
	}
	f.err = nil
	if err := r.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := f.all(); !reflect.DeepEqual(got, [][]int64{{7}}) {
		t.Fatalf("got %v", got)
	}
}

// failAt fails the n-th call (from 1) and every call after it.
type failAt struct {
	fakeToucher
	n, calls int
}

func (f *failAt) TouchLastUsed(ctx context.Context, ids []int64, at time.Time) error {
	f.calls++
	if f.calls >= f.n {
		return errors.New("disk I/O error")
	}
	return f.fakeToucher.TouchLastUsed(ctx, ids, at)
}

// chunked returns a Recorder writing chunk ids at a time with pause
// between chunks, with ids 0 to n-1 marked.
func chunked(t Toucher, chunk int, pause time.Duration, n int64) *Recorder {
	r := New(t, time.Hour, nil)
	r.chunk, r.pause = chunk, pause
	for id := range n {
		r.Mark(id)
	}
	return r
}

func TestFlushInChunks(t *testing.T) {
	f := &fakeToucher{}
	r := chunked(f, 2, 0, 5)
	if err := r.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	var sizes []int
	var all []int64
	for _, c := range f.all() {
		sizes = append(sizes, len(c))
		all = append(all, c...)
	}
	slices.Sort(all)
	if !reflect.DeepEqual(sizes, []int{2, 2, 1}) || !reflect.DeepEqual(all, []int64{0, 1, 2, 3, 4}) {
		t.Fatalf("chunks of %v holding %v, want 2, 2, 1 holding 0-4", sizes, all)
	}
}

// A chunk that fails is kept for the next flush with every chunk after it;
// the chunks written before it are not written again.
func TestFailedChunkKeepsTheRest(t *testing.T) {
	f := &failAt{n: 2}
	r := chunked(f, 2, 0, 5)
	if err := r.Flush(t.Context()); err == nil || err.Error() != "disk I/O error" {
		t.Fatalf("got %v, want the store's error", err)
	}
	written := f.all()
	if len(written) != 1 || len(written[0]) != 2 {
		t.Fatalf("written before the failure: %v, want one chunk of 2", written)
	}
	f.n = 1 << 30 // the store recovers
	if err := r.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	var all []int64
	for _, c := range f.all() {
		all = append(all, c...)
	}
	slices.Sort(all)
	if !reflect.DeepEqual(all, []int64{0, 1, 2, 3, 4}) {
		t.Fatalf("written over both flushes: %v, want each of 0-4 once", all)
	}
}

// A flush whose context ends during a pause stops there and keeps the rest.
func TestFlushPauseCanceled(t *testing.T) {
	f := &fakeToucher{}
	r := chunked(f, 2, time.Hour, 3)
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(10*time.Millisecond, cancel)
	if err := r.Flush(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	r.pause = 0
	if err := r.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := f.all(); len(got) != 2 || len(got[0]) != 2 || len(got[1]) != 1 {
		t.Fatalf("got %v, want a chunk of 2, then the 1 kept", got)
	}
}

// Stop's flush does not pause between chunks.
func TestStopFlushesWithoutPauses(t *testing.T) {
	f := &fakeToucher{}
	r := chunked(f, 1, time.Hour, 3)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := r.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.all(); len(got) != 3 {
		t.Fatalf("got %v, want three chunks of one", got)
	}
}

func TestServiceFlushesPeriodicallyAndOnStop(t *testing.T) {
	f := &fakeToucher{}
	s := NewService(f, 10*time.Millisecond, nil)
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	Mark(1) // through the installed recorder, as pat.token does
	deadline := time.Now().Add(5 * time.Second)
	for len(f.all()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no flush within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	Mark(2)
	s.Stop(t.Context())
	Mark(3) // uninstalled: ignored
	var got []int64
	for _, c := range f.all() {
		got = append(got, c...)
	}
	if !reflect.DeepEqual(got, []int64{1, 2}) {
		t.Fatalf("got %v", got)
	}
}

func TestMarkConcurrently(t *testing.T) {
	f := &fakeToucher{}
	r := New(f, time.Hour, nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				r.Mark(int64(i%50 + g%2))
			}
		}()
	}
	wg.Wait()
	if err := r.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := f.all(); len(got) != 1 || len(got[0]) != 51 {
		t.Fatalf("got %v", got)
	}
}

func BenchmarkMark(b *testing.B) {
	r := New(&fakeToucher{}, time.Hour, nil)
	r.Mark(42)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Mark(42)
		}
	})
}

// OPA stops plugins with a context a signal has canceled: the last marks
// are written all the same.
func TestStopFlushesWithACanceledContext(t *testing.T) {
	f := &fakeToucher{}
	var errs []error
	s := NewService(f, time.Hour, func(err error) { errs = append(errs, err) })
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	Mark(7)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	s.Stop(ctx)
	if got := f.all(); !reflect.DeepEqual(got, [][]int64{{7}}) || len(errs) != 0 {
		t.Fatalf("written %v, errors %v; want [[7]] and none", got, errs)
	}
}

// A periodic flush that fails is reported, every time; the first that
// succeeds after it is reported with nil, once.
func TestServiceReportsRecovery(t *testing.T) {
	f := &fakeToucher{err: errors.New("permission denied for table tokens")}
	var mu sync.Mutex
	var errs []error
	s := NewService(f, 10*time.Millisecond, func(err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, err)
	})
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer s.Stop(t.Context())
	Mark(1)
	reported := func() []error {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(errs)
	}
	for deadline := time.Now().Add(5 * time.Second); len(reported()) < 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("reported %v within 5s; want two failures", reported())
		}
	}
	f.setErr(nil)
	for deadline := time.Now().Add(5 * time.Second); !slices.Contains(reported(), nil); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("reported %v within 5s; want the recovery (nil)", reported())
		}
	}
	time.Sleep(50 * time.Millisecond) // more flushes, each fine
	got := reported()
	if got[len(got)-1] != nil || slices.Index(got, nil) != len(got)-1 {
		t.Fatalf("reported %v; want failures, then one nil", got)
	}
	for _, err := range got[:len(got)-1] {
		if err == nil || err.Error() != "permission denied for table tokens" {
			t.Fatalf("reported %v", got)
		}
	}
}
