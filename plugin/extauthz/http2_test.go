package extauthz

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/protobuf/proto"
)

// TestFixedWindowsNoProbes speaks HTTP/2 to the gate frame by frame, as
// Envoy's client does, and sends two Checks. The gate must grant its fixed
// windows and send no PING: grpc-go's bandwidth probe is a PING after
// received data, and every probe costs both ends a wake-up.
func TestFixedWindowsNoProbes(t *testing.T) {
	f := newFixture(t, `{"addr": "127.0.0.1:0"}`)
	conn, err := net.Dial("tcp", f.server.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}

	req, err := proto.Marshal(httpCheck("GET", "/octo-org/app.git/info/refs?service=git-upload-pack", nil))
	if err != nil {
		t.Fatal(err)
	}
	msg := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(req))) // not compressed, length
	msg = append(msg, req...)

	var (
		window, connIncrement uint32
		pings                 int
	)
	for _, stream := range []uint32{1, 3} {
		var block bytes.Buffer
		enc := hpack.NewEncoder(&block)
		for _, h := range [][2]string{
			{":method", "POST"}, {":scheme", "http"}, {":path", "/" + serviceName + "/Check"},
			{":authority", "gate"}, {"content-type", "application/grpc"}, {"te", "trailers"},
		} {
			if err := enc.WriteField(hpack.HeaderField{Name: h[0], Value: h[1]}); err != nil {
				t.Fatal(err)
			}
		}
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: block.Bytes(), EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
		if err := fr.WriteData(stream, true, msg); err != nil {
			t.Fatal(err)
		}
		// Read until the Check's trailers.
		status := ""
		for status == "" {
			frame, err := fr.ReadFrame()
			if err != nil {
				t.Fatalf("stream %d: %v", stream, err)
			}
			switch x := frame.(type) {
			case *http2.SettingsFrame:
				if v, ok := x.Value(http2.SettingInitialWindowSize); ok {
					window = v
				}
			case *http2.WindowUpdateFrame:
				if x.StreamID == 0 {
					connIncrement += x.Increment
				}
			case *http2.PingFrame:
				pings++
			case *http2.MetaHeadersFrame:
				if x.StreamID == stream && x.StreamEnded() {
					status = "no grpc-status"
					for _, h := range x.Fields {
						if h.Name == "grpc-status" {
							status = "grpc-status " + h.Value
						}
					}
				}
			}
		}
		if status != "grpc-status 0" {
			t.Fatalf("stream %d ended with %q, want grpc-status 0", stream, status)
		}
	}
	if window != streamWindow {
		t.Errorf("SETTINGS_INITIAL_WINDOW_SIZE = %d, want %d", window, streamWindow)
	}
	// The connection starts with HTTP/2's 65,535 bytes; the gate raises it.
	if connIncrement < connWindow-65535 {
		t.Errorf("connection window raised by %d, want at least %d", connIncrement, connWindow-65535)
	}
	if pings != 0 {
		t.Errorf("the gate sent %d PING frames over two Checks, want none", pings)
	}
}
