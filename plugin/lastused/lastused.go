// Package lastused records which tokens were used, off the decision path:
// Mark is a lock-free map lookup and an atomic store; a Recorder's goroutine
// writes the marked tokens to the store every few seconds, in chunks with
// pauses between them (store.TouchLastUsed). A token's last use is
// therefore accurate to the flush interval, and a sidecar that dies loses at
// most one interval of marks.
package lastused

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultInterval is how often a Recorder writes.
const DefaultInterval = 5 * time.Second

// A flush writes chunkSize tokens at a time and pauses between chunks.
// Writing to the embedded store is the sidecar's own CPU (about 5 µs a
// token): thousands at once would hold a one-CPU sidecar's only P for
// milliseconds, and every Check behind it would wait. A pause parks the
// goroutine, so the scheduler polls the network and runs those Checks.
const (
	chunkSize  = 128
	chunkPause = time.Millisecond
)

// Toucher is the store's side: record that tokens were used at a time.
type Toucher interface {
	TouchLastUsed(ctx context.Context, ids []int64, at time.Time) error
}

// Recorder collects marks and flushes them to a Toucher.
type Recorder struct {
	// marks holds one *atomic.Bool per token ever marked; true means used
	// since the last flush. Entries are never removed, so after a token's
	// first use Mark only loads from the map (sync.Map's lock-free read
	// path) and stores to the flag.
	marks    sync.Map
	toucher  Toucher
	interval time.Duration
	now      func() time.Time
	onErr    func(error)
	chunk    int
	pause    time.Duration

	stop chan struct{}
	done chan struct{}
}

// New returns a Recorder that flushes to t every interval (DefaultInterval
// when zero or negative). onErr, which may be nil, hears about failed
// flushes, whose marks are kept for the next one, and, with nil, about the
// first periodic flush that succeeds after one failed.
func New(t Toucher, interval time.Duration, onErr func(error)) *Recorder {
	if interval <= 0 {
		interval = DefaultInterval
	}
	return &Recorder{toucher: t, interval: interval, now: time.Now, onErr: onErr, chunk: chunkSize, pause: chunkPause}
}

// Mark records that a token was used. It never blocks on I/O.
func (r *Recorder) Mark(id int64) {
	if v, ok := r.marks.Load(id); ok {
		f := v.(*atomic.Bool)
		if !f.Load() { // skip the store (a cache-line write) when already marked
			f.Store(true)
		}
		return
	}
	f := new(atomic.Bool)
	f.Store(true)
	if v, loaded := r.marks.LoadOrStore(id, f); loaded {
		v.(*atomic.Bool).Store(true)
	}
}

// Flush writes the tokens marked since the last flush, as used now, a
// chunk at a time with a pause between chunks. A chunk that fails is kept
// for the next flush, with every chunk after it.
func (r *Recorder) Flush(ctx context.Context) error { return r.flush(ctx, r.pause) }

func (r *Recorder) flush(ctx context.Context, pause time.Duration) error {
	var ids []int64
	r.marks.Range(func(k, v any) bool {
		if v.(*atomic.Bool).CompareAndSwap(true, false) {
			ids = append(ids, k.(int64))
		}
		return true
	})
	at := r.now()
	for start := 0; start < len(ids); start += r.chunk {
		if start > 0 {
			if err := sleep(ctx, pause); err != nil {
				r.keep(ids[start:])
				return err
			}
		}
		if err := r.toucher.TouchLastUsed(ctx, ids[start:min(start+r.chunk, len(ids))], at); err != nil {
			r.keep(ids[start:])
			return err
		}
	}
	return nil
}

// keep marks ids again, for the next flush.
func (r *Recorder) keep(ids []int64) {
	for _, id := range ids {
		r.Mark(id)
	}
}

// sleep waits d, or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Start runs the flushing goroutine until Stop.
func (r *Recorder) Start() {
	r.stop, r.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(r.done)
		tick := time.NewTicker(r.interval)
		defer tick.Stop()
		failing := false
		for {
			select {
			case <-r.stop:
				return
			case <-tick.C:
				err := r.Flush(context.Background())
				if r.onErr != nil && (err != nil || failing) {
					r.onErr(err)
				}
				failing = err != nil
			}
		}
	}()
}

// StopFlushTimeout bounds the last flush of Stop.
const StopFlushTimeout = 5 * time.Second

// Stop ends the goroutine and flushes what is left, without pauses: a
// sidecar that stops serves no more Checks. The flush does not end with
// ctx: OPA stops its plugins with a context that a signal has already
// canceled, and the last marks would be lost; it has StopFlushTimeout.
func (r *Recorder) Stop(ctx context.Context) error {
	if r.stop != nil {
		close(r.stop)
		<-r.done
		r.stop = nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), StopFlushTimeout)
	defer cancel()
	return r.flush(ctx, 0)
}

// installed is the process's recorder, marked by the pat.token built-in.
var installed atomic.Pointer[Recorder]

// Install makes Mark record into r and returns a function that uninstalls
// it again (unless another one was installed since).
func Install(r *Recorder) (uninstall func()) {
	installed.Store(r)
	return func() { installed.CompareAndSwap(r, nil) }
}

// Mark records a use of a token in the installed recorder; without one it
// does nothing.
func Mark(id int64) {
	if r := installed.Load(); r != nil {
		r.Mark(id)
	}
}

// Service runs a Recorder as one of the pat plugin's services: Start
// installs it for Mark and starts flushing; Stop flushes what is left and
// uninstalls it.
type Service struct {
	r         *Recorder
	uninstall func()
}

// NewService returns a service around a new Recorder.
func NewService(t Toucher, interval time.Duration, onErr func(error)) *Service {
	return &Service{r: New(t, interval, onErr)}
}

// Recorder is the service's recorder.
func (s *Service) Recorder() *Recorder { return s.r }

// Start installs the recorder and starts flushing.
func (s *Service) Start(context.Context) error {
	s.uninstall = Install(s.r)
	s.r.Start()
	return nil
}

// Stop stops flushing, writes the last marks and uninstalls the recorder.
func (s *Service) Stop(ctx context.Context) {
	if s.uninstall != nil {
		s.uninstall()
		s.uninstall = nil
	}
	if err := s.r.Stop(ctx); err != nil && s.r.onErr != nil {
		s.r.onErr(err)
	}
}
