package extauthz

import (
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/opa-pat/opa-pat/plugin/extauthz/rawio"
	"google.golang.org/protobuf/proto"
)

// The gate on a Unix socket (unix:///path, as opa-envoy-plugin and gRPC
// write it) answers Checks as on TCP, with the socket mode asked for, and
// removes its socket when it stops.
func TestUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "gate.sock")
	f := newFixtureLogs(t, `{"addr": "unix://`+sock+`", "socket_mode": "0666"}`, false)
	if got := f.server.Addr(); got != "unix://"+sock {
		t.Fatalf("Addr = %q, want unix://%s", got, sock)
	}
	fi, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o666 {
		t.Fatalf("socket file mode %v, want a socket with 0666", fi.Mode())
	}
	if runtime.GOOS == "linux" && !rawio.Wrapped(f.server.lis) {
		t.Fatal("the gate does not serve through rawio")
	}

	tests := []struct {
		req  *authv3.CheckRequest
		want *authv3.CheckResponse
	}{
		{
			req:  httpCheck("GET", "/octo-org/app.git/info/refs?service=git-upload-pack", basicAuth("x-access-token", goodToken)),
			want: allowedBob(),
		},
		{
			req:  httpCheck("GET", "/octo-org/app.git/info/refs?service=git-upload-pack", nil),
			want: denied(typev3.StatusCode_Unauthorized, `{"documentation_url":"https://docs.github.com/rest","message":"Requires authentication"}`, jsonType, challenge),
		},
	}
	for _, tc := range tests {
		got, err := f.client.Check(t.Context(), tc.req)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got, tc.want) {
			t.Fatalf("Check %s:\ngot  %v\nwant %v", tc.req.GetAttributes().GetRequest().GetHttp().GetPath(), got, tc.want)
		}
	}

	// The socket was bound in a private directory beside it, which is gone;
	// the lock file stays, readable by the sidecar's user only.
	entries, err := os.ReadDir(filepath.Dir(sock))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"gate.sock", "gate.sock.lock"}; !slices.Equal(names, want) {
		t.Fatalf("the socket's directory holds %q, want %q", names, want)
	}
	if fi, err := os.Lstat(sock + ".lock"); err != nil {
		t.Fatal(err)
	} else if fi.Mode() != 0o600 {
		t.Fatalf("lock file mode %v, want a regular file with 0600", fi.Mode())
	}

	f.server.Stop(t.Context())
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Fatalf("after Stop the socket file is still there (%v)", err)
	}
	// The next sidecar takes the path over.
	if err := f.server.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := f.server.Addr(); got != "unix://"+sock {
		t.Fatalf("after a restart Addr = %q, want unix://%s", got, sock)
	}
	f.server.Stop(t.Context())
}

// A socket file left by a sidecar that was killed does not stop the next
// one from starting; a file that is not a socket, or a socket another
// process serves, is left alone and reported.
func TestUnixSocketLeftBehind(t *testing.T) {
	t.Run("umask", func(t *testing.T) { testUnixSocketLeftBehind(t, "") })
	t.Run("socket_mode", func(t *testing.T) { testUnixSocketLeftBehind(t, `, "socket_mode": "0660"`) })
}

func testUnixSocketLeftBehind(t *testing.T, mode string) {
	dir := t.TempDir()
	start := func(sock string) (*Server, error) {
		f := newFixture(t, `{"addr": "127.0.0.1:0"}`)
		cfg, err := ParseConfig([]byte(`{"addr": "unix://` + sock + `"` + mode + `}`))
		if err != nil {
			t.Fatal(err)
		}
		s := New(f.manager, cfg)
		t.Cleanup(func() { s.Stop(t.Context()) })
		return s, s.Start(t.Context())
	}

	t.Run("stale socket", func(t *testing.T) {
		sock := filepath.Join(dir, "stale.sock")
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		l.SetUnlinkOnClose(false) // as a killed process leaves it
		l.Close()
		s, err := start(sock)
		if err != nil {
			t.Fatalf("Start over a stale socket: %v", err)
		}
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatalf("the gate does not accept on %s: %v", sock, err)
		}
		c.Close()
		s.Stop(t.Context())
	})

	t.Run("not a socket", func(t *testing.T) {
		path := filepath.Join(dir, "notes.txt")
		if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := start(path)
		want := `ext_authz: listening on "unix://` + path + `": ` + path + ` exists and is not a socket; move it away or choose another path`
		if err == nil || err.Error() != want {
			t.Fatalf("Start: got %v, want %s", err, want)
		}
		if b, err := os.ReadFile(path); err != nil || string(b) != "keep me" {
			t.Fatalf("the file was touched: %q, %v", b, err)
		}
	})

	t.Run("served by another sidecar", func(t *testing.T) {
		sock := filepath.Join(dir, "busy.sock")
		first, err := start(sock)
		if err != nil {
			t.Fatal(err)
		}
		_, err = start(sock)
		want := `ext_authz: listening on "unix://` + sock + `": another sidecar serves on ` + sock + ` or is starting to (it holds ` + sock + `.lock); give each sidecar its own socket path`
		if err == nil || err.Error() != want {
			t.Fatalf("Start: got %v, want %s", err, want)
		}
		if first.Addr() != "unix://"+sock || !first.Serving() {
			t.Fatal("the first gate stopped serving")
		}
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatalf("the first gate's socket was removed: %v", err)
		}
		c.Close()
	})

	t.Run("served by another process", func(t *testing.T) {
		sock := filepath.Join(dir, "foreign.sock")
		l, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		_, err = start(sock)
		want := `ext_authz: listening on "unix://` + sock + `": another process serves on ` + sock
		if err == nil || err.Error() != want {
			t.Fatalf("Start: got %v, want %s", err, want)
		}
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatalf("the other process's socket was removed: %v", err)
		}
		c.Close()
	})

	t.Run("a link", func(t *testing.T) {
		target := filepath.Join(dir, "target.txt")
		if err := os.WriteFile(target, []byte("keep me"), 0o600); err != nil {
			t.Fatal(err)
		}
		sock := filepath.Join(dir, "link.sock")
		if err := os.Symlink(target, sock); err != nil {
			t.Fatal(err)
		}
		_, err := start(sock)
		want := `ext_authz: listening on "unix://` + sock + `": ` + sock + ` exists and is not a socket; move it away or choose another path`
		if err == nil || err.Error() != want {
			t.Fatalf("Start: got %v, want %s", err, want)
		}
		if fi, err := os.Stat(target); err != nil {
			t.Fatal(err)
		} else if fi.Mode() != 0o600 {
			t.Fatalf("the link's target was chmodded to %v", fi.Mode())
		}
	})

	t.Run("a link in the lock's place", func(t *testing.T) {
		target := filepath.Join(dir, "lock-target.txt")
		if err := os.WriteFile(target, []byte("keep me"), 0o644); err != nil {
			t.Fatal(err)
		}
		sock := filepath.Join(dir, "locklink.sock")
		if err := os.Symlink(target, sock+".lock"); err != nil {
			t.Fatal(err)
		}
		_, err := start(sock)
		want := `ext_authz: listening on "unix://` + sock + `": opening the socket's lock file: open ` + sock + `.lock: too many levels of symbolic links`
		if err == nil || err.Error() != want {
			t.Fatalf("Start: got %v, want %s", err, want)
		}
		if b, err := os.ReadFile(target); err != nil || string(b) != "keep me" {
			t.Fatalf("the link's target was touched: %q, %v", b, err)
		}
	})

	// Nothing but the lock files is left of the failed starts.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			t.Errorf("a private directory was left behind: %s", e.Name())
		}
	}
}

// A socket path of the longest length a socket can have binds with
// socket_mode too: the private directory it is bound in first makes no
// longer a path.
func TestUnixSocketLongestPath(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, strings.Repeat("d", maxSocketPath-len(base)-len("/gate.sock")-1))
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "gate.sock")
	if len(sock) != maxSocketPath {
		t.Fatalf("test path is %d bytes, want %d", len(sock), maxSocketPath)
	}
	for range 20 { // the private directory's name is random
		cfg, err := ParseConfig([]byte(`{"addr": "unix://` + sock + `", "socket_mode": "0660"}`))
		if err != nil {
			t.Fatal(err)
		}
		l, err := listen(t.Context(), cfg)
		if err != nil {
			t.Fatalf("listen on a %d-byte path: %v", len(sock), err)
		}
		if fi, err := os.Lstat(sock); err != nil || fi.Mode().Perm() != 0o660 {
			t.Fatalf("socket: %v, %v", fi, err)
		}
		l.Close()
	}
	_, err := ParseConfig([]byte(`{"addr": "unix://` + sock + `x"}`))
	want := `invalid configuration for ext_authz: ext_authz.addr: "unix://` + sock + `x" is 108 bytes; a Unix socket path holds at most 107`
	if err == nil || err.Error() != want {
		t.Fatalf("a 108-byte path: %v; want %s", err, want)
	}
}
