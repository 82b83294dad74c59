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
	// companions are the WAL and shared-memory files beside the opened
	// file, as last seen while it was still the file at path. SQLite finds
	// them by name: once the file is replaced they would be taken for the
	// new file's, so Close removes them (dropOrphans).
	companions map[string]os.FileInfo

	mu    sync.Mutex
	since time.Time // when the current problem was first seen; zero while none
	err   error
}

func newFileWatch(path string) (*fileWatch, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	w := &fileWatch{path: path, opened: fi, companions: map[string]os.FileInfo{}}
	w.noteCompanions()
	return w, nil
}

// companionSuffixes name SQLite's files beside a database in WAL mode.
var companionSuffixes = []string{"-wal", "-shm"}

// noteCompanions records the companion files now at the path, while the
// database file there is the one opened.
func (w *fileWatch) noteCompanions() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, suffix := range companionSuffixes {
		if fi, err := os.Stat(w.path + suffix); err == nil {
			w.companions[suffix] = fi
		}
	}
}

// dropOrphans removes the opened file's companions from the path when
// another file, or none, is there now, and no other process uses them: the
// next process to open the path would otherwise replay the old file's WAL
// onto the new one. A process that already opened the new file shares them
// (it found them by name), and removing them would split its view of the
// file from the next process's: they stay (shmInUse).
func (w *fileWatch) dropOrphans() {
	if fi, err := os.Stat(w.path); err == nil && os.SameFile(fi, w.opened) {
		return // still this store's file: SQLite's close took care of them
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	shm, wal := w.companions["-shm"], w.companions["-wal"]
	if shm == nil || !w.same("-shm", shm) || shmInUse(w.path+"-shm") {
		return
	}
	if wal != nil && w.same("-wal", wal) {
		_ = os.Remove(w.path + "-wal")
	}
	_ = os.Remove(w.path + "-shm")
}

// same reports whether the companion at the path is still the one recorded.
func (w *fileWatch) same(suffix string, ours os.FileInfo) bool {
	fi, err := os.Stat(w.path + suffix)
	return err == nil && os.SameFile(fi, ours)
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
	if problem == "" {
		w.noteCompanions()
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
