package store

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// ErrFileChanged reports that the SQLite file at the store's path is no
// longer the one the store opened: removed, replaced by another file (a
// restore, a second import at the same path) or emptied. The open
// connections keep reading the old file, which nothing updates any more, so
// the store refuses to report its changes as current (Changes fails, Health
// says disconnected): the index then goes stale, and past
// store.max_staleness token decisions deny, as they do when PostgreSQL is
// unreachable.
var ErrFileChanged = errors.New("the store file changed under the sidecar")

// fileWatch is the identity of the SQLite file a store opened, and what was
// last seen at its path.
type fileWatch struct {
	path   string
	opened os.FileInfo

	mu    sync.Mutex
	since time.Time // when the current problem was first seen; zero while none
	err   error
}

func newFileWatch(path string) (*fileWatch, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	return &fileWatch{path: path, opened: fi}, nil
}

// check looks at the path again: nil while it is still the file opened.
func (w *fileWatch) check(now time.Time) error {
	var problem string
	switch fi, err := os.Stat(w.path); {
	case errors.Is(err, os.ErrNotExist):
		problem = "was removed"
	case err != nil:
		problem = fmt.Sprintf("cannot be checked (%v)", err)
	case !os.SameFile(fi, w.opened):
		problem = "was replaced by another file"
	case fi.Size() == 0:
		problem = "was emptied"
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if problem == "" {
		w.since, w.err = time.Time{}, nil
		return nil
	}
	if w.since.IsZero() {
		w.since = now
	}
	w.err = fmt.Errorf("%w: %s %s after the sidecar opened it; restart the sidecar to serve from the file now at that path",
		ErrFileChanged, w.path, problem)
	return w.err
}

// state is the last check's outcome.
func (w *fileWatch) state() (time.Time, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.since, w.err
}
