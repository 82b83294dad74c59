package rawio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/mem"
)

// gRPC's transport reads through this interface when a connection has it
// (internal/transport/readyreader.Reader).
var _ interface {
	ReadOnReady(int, mem.BufferPool) (*[]byte, int, error)
} = (*directConn)(nil)

// sockConn is what TCP and Unix connections both have beyond net.Conn.
type sockConn interface {
	net.Conn
	SetReadBuffer(int) error
	SetWriteBuffer(int) error
	CloseWrite() error
}

// networks are the kinds of connection the gate serves through rawio.
var networks = []string{"tcp", "unix"}

// directPair returns the accepted side of a TCP connection on loopback, or of
// a Unix socket connection, as the gate's listener hands it to gRPC, and the
// dialing side, a plain TCPConn or UnixConn.
func directPair(t *testing.T, network string) (*directConn, sockConn) {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = t.TempDir() + "/gate.sock"
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client, err := net.Dial(network, l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	c, err := Listener(l).Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	dc, ok := c.(*directConn)
	if !ok {
		t.Fatalf("accepted a %T, want *directConn", c)
	}
	return dc, client.(sockConn)
}

// forEachNetwork runs test on a TCP pair and on a Unix socket pair.
func forEachNetwork(t *testing.T, test func(t *testing.T, dc *directConn, client sockConn)) {
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			dc, client := directPair(t, network)
			test(t, dc, client)
		})
	}
}

// A write larger than the socket's buffers fills it (EAGAIN), waits in the
// poller for the slow reader, and writes every byte in order.
func TestDirectConnWriteWaitsForRoom(t *testing.T) {
	forEachNetwork(t, func(t *testing.T, dc *directConn, client sockConn) {
		// Small socket buffers, so that the write fills them many times over.
		if err := dc.Conn.(sockConn).SetWriteBuffer(64 << 10); err != nil {
			t.Fatal(err)
		}
		if err := client.SetReadBuffer(64 << 10); err != nil {
			t.Fatal(err)
		}
		want := make([]byte, 4<<20)
		for i := range want {
			want[i] = byte(i * 7)
		}
		got := make(chan []byte)
		go func() {
			var b bytes.Buffer
			time.Sleep(50 * time.Millisecond) // let the writer fill the socket first
			_, _ = io.Copy(&b, client)
			got <- b.Bytes()
		}()
		n, err := dc.Write(want)
		if err != nil || n != len(want) {
			t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(want))
		}
		dc.Conn.(sockConn).CloseWrite()
		if b := <-got; !bytes.Equal(b, want) {
			t.Fatalf("the reader got %d bytes, not the %d written", len(b), len(want))
		}
	})
}

func TestDirectConnRead(t *testing.T) {
	forEachNetwork(t, func(t *testing.T, dc *directConn, client sockConn) {
		go func() {
			for _, s := range []string{"Check ", "requests ", "arrive"} {
				client.Write([]byte(s))
				time.Sleep(5 * time.Millisecond)
			}
			client.CloseWrite()
		}()
		got, err := io.ReadAll(dc)
		if err != nil || string(got) != "Check requests arrive" {
			t.Fatalf("ReadAll = %q, %v", got, err)
		}
		if n, err := dc.Read(make([]byte, 8)); n != 0 || err != io.EOF {
			t.Fatalf("after the peer's close: %d, %v; want 0, EOF", n, err)
		}
	})
}

// countingPool counts the buffers handed out and not yet given back.
type countingPool struct {
	mem.BufferPool
	out, gets atomic.Int64
}

func (p *countingPool) Get(n int) *[]byte {
	p.out.Add(1)
	p.gets.Add(1)
	return p.BufferPool.Get(n)
}

func (p *countingPool) Put(b *[]byte) {
	p.out.Add(-1)
	p.BufferPool.Put(b)
}

// ReadOnReady holds no buffer while it waits: it gives back the one it
// tried, and takes one again when data arrives.
func TestDirectConnReadOnReady(t *testing.T) {
	forEachNetwork(t, func(t *testing.T, dc *directConn, client sockConn) {
		pool := &countingPool{BufferPool: mem.NewTieredBufferPool(64, 1024)}
		type result struct {
			buf *[]byte
			n   int
			err error
		}
		done := make(chan result)
		go func() {
			b, n, err := dc.ReadOnReady(64, pool)
			done <- result{b, n, err}
		}()
		deadline := time.Now().Add(5 * time.Second)
		for pool.gets.Load() == 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(10 * time.Millisecond)
		if out := pool.out.Load(); pool.gets.Load() == 0 || out != 0 {
			t.Fatalf("waiting: %d buffers taken, %d not given back; want some taken, none kept", pool.gets.Load(), out)
		}
		client.Write([]byte("envoy"))
		r := <-done
		if r.err != nil || string((*r.buf)[:r.n]) != "envoy" {
			t.Fatalf("ReadOnReady = %q, %v", (*r.buf)[:r.n], r.err)
		}
		if out := pool.out.Load(); out != 1 {
			t.Fatalf("%d buffers out after the read, want the one returned", out)
		}
		pool.Put(r.buf)

		client.CloseWrite()
		if b, n, err := dc.ReadOnReady(64, pool); b != nil || n != 0 || err != io.EOF {
			t.Fatalf("after the peer's close: %v, %d, %v; want nil, 0, EOF", b, n, err)
		}
		if out := pool.out.Load(); out != 0 {
			t.Fatalf("%d buffers not given back after EOF", out)
		}
	})
}

func TestDirectConnDeadlinesAndErrors(t *testing.T) {
	forEachNetwork(t, func(t *testing.T, dc *directConn, client sockConn) {
		dc.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		_, err := dc.Read(make([]byte, 8))
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Read past the deadline: %v, want a timeout", err)
		}
		dc.SetReadDeadline(time.Time{})

		// Writes to a peer that is gone fail, as a *net.OpError.
		if tc, ok := client.(*net.TCPConn); ok {
			tc.SetLinger(0) // Close sends a RST
		}
		client.Close()
		var werr error
		for range 100 {
			if _, werr = dc.Write([]byte("answer")); werr != nil {
				break
			}
			time.Sleep(time.Millisecond)
		}
		var oe *net.OpError
		if !errors.As(werr, &oe) || oe.Op != "write" || oe.Net != client.LocalAddr().Network() {
			t.Fatalf("Write to a closed peer: %v, want a write *net.OpError on %s", werr, client.LocalAddr().Network())
		}

		dc.Close()
		if _, err := dc.Read(make([]byte, 8)); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Read after Close: %v, want net.ErrClosed", err)
		}
	})
}

// Concurrent writers do not interleave their bytes.
func TestDirectConnConcurrentWrites(t *testing.T) {
	forEachNetwork(t, func(t *testing.T, dc *directConn, client sockConn) {
		const writers, each = 8, 64 << 10
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				dc.Write(bytes.Repeat([]byte{byte('a' + w)}, each))
			})
		}
		got := make(chan []byte)
		go func() {
			b, _ := io.ReadAll(client)
			got <- b
		}()
		wg.Wait()
		dc.Conn.(sockConn).CloseWrite()
		b := <-got
		if len(b) != writers*each {
			t.Fatalf("read %d bytes, want %d", len(b), writers*each)
		}
		for i := 0; i < len(b); i += each {
			if !bytes.Equal(b[i:i+each], bytes.Repeat(b[i:i+1], each)) {
				t.Fatalf("the write at %d is interleaved with another", i)
			}
		}
	})
}
