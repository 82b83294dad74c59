//go:build unix

package extauthz

import (
	"os"
	"syscall"
)

// lockFlags open the lock file without following a symbolic link put in
// its place.
const lockFlags = os.O_RDWR | os.O_CREATE | syscall.O_NOFOLLOW

// lockFile takes an exclusive lock on f without waiting: EWOULDBLOCK when
// another open file holds it. The kernel lets it go when the process dies.
func lockFile(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != syscall.EINTR {
			return err
		}
	}
}
