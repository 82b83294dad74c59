package extauthz

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// listen binds the configured address: a TCP host:port, or a Unix socket.
//
// A Unix socket is bound with three guarantees:
//
//   - One sidecar per path. A lock file beside the socket (path + ".lock",
//     flock'ed while the gate serves) stops a second sidecar configured
//     with the same path, rather than letting both decide that the other's
//     socket is stale and remove it.
//   - No window with the umask's mode. With socket_mode set, the socket is
//     bound inside a private directory made for the purpose, given its
//     mode there, and only then linked at the configured path; chmod never
//     follows a link someone else placed.
//   - Nothing else is lost. A socket file left by a sidecar that did not
//     stop cleanly (killed, or its node lost power) would make every
//     restart fail with "address already in use": it is removed when
//     nothing answers on it, and only then. A file that is not a socket, or
//     a socket another process serves, is left as it is and reported; the
//     link never replaces a file.
func listen(ctx context.Context, cfg *Config) (net.Listener, error) {
	lc := &net.ListenConfig{}
	if cfg.network != "unix" {
		return lc.Listen(ctx, cfg.network, cfg.address)
	}
	path := cfg.address
	lock, err := lockSocketPath(path)
	if err != nil {
		return nil, err
	}
	var lis *net.UnixListener
	if cfg.socketMode == 0 {
		lis, err = bindInPlace(ctx, lc, path)
	} else {
		lis, err = bindWithMode(ctx, lc, path, cfg.socketMode)
	}
	if err != nil {
		lock.Close()
		return nil, err
	}
	return &unixListener{UnixListener: lis, addr: &net.UnixAddr{Name: path, Net: "unix"}, lock: lock}, nil
}

// bindInPlace binds the socket at path, with the mode the umask leaves.
func bindInPlace(ctx context.Context, lc *net.ListenConfig, path string) (*net.UnixListener, error) {
	l, err := lc.Listen(ctx, "unix", path)
	if errors.Is(err, syscall.EADDRINUSE) {
		if err := removeStaleSocket(path); err != nil {
			return nil, err
		}
		l, err = lc.Listen(ctx, "unix", path)
	}
	if err != nil {
		return nil, err
	}
	ul := l.(*net.UnixListener)
	// Closing the listener removes the path itself (unixListener.Close),
	// before the lock is let go.
	ul.SetUnlinkOnClose(false)
	return ul, nil
}

// maxSocketPath is the longest path a Unix socket can be bound at (Linux's
// sun_path holds 108 bytes with the terminating NUL; macOS's 104).
const maxSocketPath = 107

// bindWithMode binds the socket in a private directory beside path, sets
// its mode there, and links it at path.
func bindWithMode(ctx context.Context, lc *net.ListenConfig, path string, mode os.FileMode) (*net.UnixListener, error) {
	dir, err := privateDir(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("making a private directory to bind the socket in: %w", err)
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "s")
	if len(tmp) > maxSocketPath {
		return nil, fmt.Errorf("with socket_mode the socket is bound first at %s, %d bytes, and a Unix socket path holds at most %d; choose a shorter path", tmp, len(tmp), maxSocketPath)
	}
	l, err := lc.Listen(ctx, "unix", tmp)
	if err != nil {
		return nil, err
	}
	ul := l.(*net.UnixListener)
	ul.SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, mode); err != nil {
		ul.Close()
		return nil, fmt.Errorf("setting the socket's mode: %w", err)
	}
	// A hard link, unlike a rename, fails rather than replace what is at path.
	err = os.Link(tmp, path)
	if errors.Is(err, fs.ErrExist) {
		if err = removeStaleSocket(path); err == nil {
			err = os.Link(tmp, path)
		}
	}
	if err != nil {
		ul.Close()
		var le *os.LinkError
		if errors.As(err, &le) {
			err = fmt.Errorf("placing the socket at %s: %w", path, le.Err)
		}
		return nil, err
	}
	return ul, nil
}

// privateDir makes a 0700 directory in parent with a short name ("." and
// three letters or digits), so that the socket bound in it, parent/.xyz/s,
// is no longer than the configured path whenever that path's file name has
// five characters or more ("gate.sock"). Names are tried until one is free.
func privateDir(parent string) (string, error) {
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
	var err error
	for range 1000 {
		name := []byte{'.', letters[rand.IntN(len(letters))], letters[rand.IntN(len(letters))], letters[rand.IntN(len(letters))]}
		dir := filepath.Join(parent, string(name))
		if err = os.Mkdir(dir, 0o700); err == nil {
			return dir, nil
		} else if !errors.Is(err, fs.ErrExist) {
			return "", err
		}
	}
	return "", err
}

// lockSocketPath takes the lock that makes the sidecar the only one at
// path. The lock file stays when the sidecar stops (removing it would let
// two sidecars each hold a lock on a different file of the same name).
func lockSocketPath(path string) (*os.File, error) {
	name := path + ".lock"
	f, err := os.OpenFile(name, lockFlags, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the socket's lock file: %w", err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another sidecar serves on %s or is starting to (it holds %s); give each sidecar its own socket path", path, name)
		}
		return nil, fmt.Errorf("locking %s: %w", name, err)
	}
	return f, nil
}

// unixListener is the gate's socket: it reports the configured path (not
// the private one it may have been bound at), and on Close removes the
// path and then lets the lock go.
type unixListener struct {
	*net.UnixListener
	addr *net.UnixAddr
	lock *os.File
	once sync.Once
	err  error
}

func (l *unixListener) Addr() net.Addr { return l.addr }

func (l *unixListener) Close() error {
	l.once.Do(func() {
		l.err = l.UnixListener.Close()
		if err := os.Remove(l.addr.Name); err != nil && !errors.Is(err, fs.ErrNotExist) && l.err == nil {
			l.err = err
		}
		l.lock.Close()
	})
	return l.err
}

// removeStaleSocket removes the socket at path when no process accepts
// connections on it.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket; move it away or choose another path", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("another process serves on %s", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("cannot tell whether a process serves on %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("removing the stale socket: %w", err)
	}
	return nil
}
