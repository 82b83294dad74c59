package extauthz

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"syscall"
	"time"
)

// listen binds the configured address: a TCP host:port, or a Unix socket.
//
// A socket file left by a sidecar that did not stop cleanly (killed, or its
// node lost power) would make every restart fail with "address already in
// use". listen removes such a file when nothing answers on it, and only
// then: a file that is not a socket, or a socket another process serves,
// is left as it is and reported.
func listen(ctx context.Context, cfg *Config) (net.Listener, error) {
	lc := &net.ListenConfig{}
	if cfg.network != "unix" {
		return lc.Listen(ctx, cfg.network, cfg.address)
	}
	lis, err := lc.Listen(ctx, "unix", cfg.address)
	if errors.Is(err, syscall.EADDRINUSE) {
		if staleErr := removeStaleSocket(cfg.address); staleErr != nil {
			return nil, staleErr
		}
		lis, err = lc.Listen(ctx, "unix", cfg.address)
	}
	if err != nil {
		return nil, err
	}
	if cfg.socketMode != 0 {
		if err := os.Chmod(cfg.address, cfg.socketMode); err != nil {
			lis.Close()
			return nil, fmt.Errorf("setting the socket's mode: %w", err)
		}
	}
	return lis, nil
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
