// Package rawio gives TCP and Unix socket connections reads and writes made
// with raw system calls: ones the Go scheduler is not told about. The
// ext_authz gate serves its connections through it.
//
// Why. Entering a system call the usual way wakes the runtime's monitor
// thread (sysmon) when it sleeps, so that it can take the P from a thread
// that blocks; and a call that lasts over a sysmon tick (20 µs under load)
// does lose its P to another thread. A sidecar at a few thousand Checks a
// second goes idle between Checks, sysmon sleeps each time, and each
// Check's first read woke it again: a futex wake-up and context switches on
// the sidecar's CPU, then sysmon polling every 20 µs. An answer's write,
// which also wakes the client on its CPU, takes tens of microseconds in a
// VM, and lost the P mid-write: two threads then took turns on one CPU. On
// the 2-vCPU VM of docs/PERFORMANCE.md ("Seventh session"), sysmon's
// sleeping and waking alone was 12% of the sidecar's CPU.
//
// A read or write on a non-blocking socket never blocks: it copies, or
// fails with EAGAIN, and then the goroutine waits in the runtime's poller
// as before. So it can run as a raw call and keep its P: nothing else could
// have run on that CPU meanwhile anyway. Deadlines, Close and the rest are
// the TCPConn's.
//
// The trade: sysmon also preempts goroutines that compute for over 10 ms
// without a system call, and woken less often it may sleep through the
// start of such a run until the process's next timer (docs/envoy.md, "The
// gate's connections").
package rawio

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"google.golang.org/grpc/mem"
)

// Listener wraps l so that the TCP and Unix connections it accepts read and
// write with raw system calls.
func Listener(l net.Listener) net.Listener { return listener{l} }

type listener struct{ net.Listener }

// Wrapped reports whether l is one of Listener's: whether the connections
// it accepts read and write with raw system calls.
func Wrapped(l net.Listener) bool {
	_, ok := l.(listener)
	return ok
}

func (l listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return c, err
	}
	return Conn(c), nil
}

// Conn returns c with raw reads and writes when it is a TCP or Unix socket
// connection, and c itself otherwise.
func Conn(c net.Conn) net.Conn {
	var sc interface {
		net.Conn
		SyscallConn() (syscall.RawConn, error)
	}
	network := "tcp"
	switch c := c.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		sc, network = c, "unix"
	default:
		return c
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	dc := &directConn{Conn: c, rc: rc, network: network}
	// Bound once: a method value made per call would allocate.
	dc.r.fn, dc.w.fn = dc.read, dc.write
	return dc
}

// directConn is a TCP or Unix connection that reads and writes with
// RawSyscall.
type directConn struct {
	net.Conn
	rc      syscall.RawConn
	network string  // "tcp" or "unix", for errors
	r       ioState // one Read or ReadOnReady at a time, as gRPC's reader does
	w       ioState // one Write at a time
}

// SyscallConn is the connection's own, as for a *net.TCPConn or
// *net.UnixConn.
func (c *directConn) SyscallConn() (syscall.RawConn, error) { return c.rc, nil }

// ioState is one direction's call in progress, kept in the connection so
// that the function the poller calls needs no closure.
type ioState struct {
	mu  sync.Mutex
	fn  func(fd uintptr) bool
	buf []byte
	n   int
	err syscall.Errno

	// ReadOnReady reads into a buffer from pool (nil for Read), taken only
	// when the socket has data and given back when it has none, so an idle
	// connection holds no buffer.
	pool   mem.BufferPool
	size   int
	pooled *[]byte
}

func (c *directConn) Write(b []byte) (int, error) {
	s := &c.w
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf, s.n, s.err = b, 0, 0
	err := c.rc.Write(s.fn) // the poller waits for room when fn returns false
	n := s.n
	s.buf = nil
	return n, c.opError("write", err, s.err)
}

// write writes what is left of the buffer; false means the socket is full.
func (c *directConn) write(fd uintptr) bool {
	s := &c.w
	for s.n < len(s.buf) {
		p := s.buf[s.n:]
		r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		switch e {
		case 0:
			s.n += int(r)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			s.err = e
			return true
		}
	}
	return true
}

func (c *directConn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	s := &c.r
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf, s.n, s.err = b, 0, 0
	err := c.rc.Read(s.fn)
	n := s.n
	s.buf = nil
	if err == nil && s.err == 0 && n == 0 {
		return 0, io.EOF
	}
	return n, c.opError("read", err, s.err)
}

// ReadOnReady is gRPC's optional reader interface (internal/transport/
// readyreader.Reader): wait until the socket has data, then read up to
// size bytes into a buffer from pool, which the caller gives back.
func (c *directConn) ReadOnReady(size int, pool mem.BufferPool) (*[]byte, int, error) {
	if size <= 0 {
		return nil, 0, io.ErrShortBuffer
	}
	s := &c.r
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pool, s.size, s.pooled, s.n, s.err = pool, size, nil, 0, 0
	err := c.rc.Read(s.fn)
	buf, n := s.pooled, s.n
	s.pool, s.pooled = nil, nil
	if err == nil && s.err == 0 && n == 0 {
		err = io.EOF
	} else {
		err = c.opError("read", err, s.err)
	}
	if err != nil {
		if buf != nil {
			pool.Put(buf)
		}
		return nil, 0, err
	}
	return buf, n, nil
}

// read reads once into the caller's buffer or a pooled one; false means
// the socket has no data yet.
func (c *directConn) read(fd uintptr) bool {
	s := &c.r
	p := s.buf
	if s.pool != nil {
		s.pooled = s.pool.Get(s.size)
		p = *s.pooled
	}
	for {
		r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		switch e {
		case 0:
			s.n = int(r)
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			if s.pool != nil {
				s.pool.Put(s.pooled)
				s.pooled = nil
			}
			return false
		default:
			s.err = e
			return true
		}
	}
}

// opError reports a failed call as net.Conn methods do.
func (c *directConn) opError(op string, waitErr error, callErr syscall.Errno) error {
	err := waitErr
	if err == nil && callErr != 0 {
		err = os.NewSyscallError(op, callErr)
	}
	if err == nil {
		return nil
	}
	return &net.OpError{Op: op, Net: c.network, Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
