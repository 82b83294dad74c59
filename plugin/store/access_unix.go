//go:build unix

package store

import (
	"errors"

	"golang.org/x/sys/unix"
)

// errReadOnlyFS is access's error on a read-only file system.
var errReadOnlyFS = unix.EROFS

// access checks that this process may write path (access(2) with W_OK,
// which root passes except on a read-only file system). Tests replace it.
var access = func(path string) error {
	err := unix.Access(path, unix.W_OK)
	if errors.Is(err, unix.EINTR) {
		err = unix.Access(path, unix.W_OK)
	}
	return err
}
