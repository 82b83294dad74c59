//go:build !unix

package store

import (
	"errors"
	"io/fs"
	"os"
)

// errReadOnlyFS never matches: other systems say nothing of it here.
var errReadOnlyFS = errors.New("read-only file system")

// access reports only whether path exists: elsewhere than on Unix, SQLite's
// own errors say when a store cannot be written.
var access = func(path string) error {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
