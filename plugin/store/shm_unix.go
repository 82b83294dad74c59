//go:build unix

package store

import (
	"os"
	"syscall"
)

// shmDeadManSwitch is the byte of a WAL database's -shm file on which every
// SQLite connection, in any process, holds a shared lock while it has the
// file open (os_unix.c: UNIX_SHM_DMS, 120 + SQLITE_SHM_NLOCK).
const shmDeadManSwitch = 128

// shmInUse reports whether another process has the -shm file at path open
// through SQLite: whether its dead-man-switch byte refuses a write lock.
// POSIX locks do not conflict within one process, and the store's own
// connections are closed when it asks. In doubt (an error), it is in use.
func shmInUse(path string) bool {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return true
	}
	defer f.Close()
	lock := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0, Start: shmDeadManSwitch, Len: 1}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lock); err != nil {
		return true
	}
	lock.Type = syscall.F_UNLCK
	_ = syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lock)
	return false
}
