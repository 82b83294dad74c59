package tests

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// rollbackWorld builds bundles of the signing world whose policy says
// which build it is (data.pat.marker), each with a serial or none.
type rollbackWorld struct {
	*signingWorld
}

func newRollbackWorld(t *testing.T) *rollbackWorld {
	t.Helper()
	return &rollbackWorld{newSigningWorld(t)}
}

// build writes the policy with marker, and builds a bundle of it at
// revision r-MARKER, with --serial serial (0: none; the world is no git
// tree, so the builder derives none).
func (w *rollbackWorld) build(t *testing.T, marker string, serial int) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(w.rego, "pat", "marker.rego"), fmt.Appendf(nil, "package pat\n\nmarker := %q\n", marker), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(w.dir, marker+".tar.gz")
	args := []string{"bundle", "build", "--settings", w.settings, "--key", w.keyA + ".key", "--output", out, "--revision", "r-" + marker}
	if serial > 0 {
		args = append(args, "--serial", fmt.Sprint(serial))
	}
	w.run(t, 0, append(args, w.rego)...)
	return out
}

// logged is s as it appears in a JSON log line's msg.
func logged(s string) string {
	b, _ := json.Marshal(s)
	return strings.Trim(string(b), `"`)
}

// waitMarker waits until data.pat.marker is want.
func (s *signedSidecar) waitMarker(t *testing.T, want string) {
	t.Helper()
	poll(t, 20*time.Second, "data.pat.marker "+want, func() bool {
		return s.get(t, "/v1/data/pat/marker") == fmt.Sprintf(`{"result":%q}`, want)
	})
}

const keepNote = `; the sidecar keeps the bundle it has (to roll back on purpose, build the older policy with a higher --serial: docs/bundles.md, "Rollback protection")`

// A sidecar never activates a bundle older than the one it has: whoever
// serves bundles cannot bring back a policy that was replaced, though its
// bundle is validly signed. The refusal keeps the active bundle, and says
// so in OPA's log and bundle status and in the pat plugin's log; a newer
// bundle activates.
func TestSidecarRefusesAnOlderBundle(t *testing.T) {
	w := newRollbackWorld(t)
	old, current, next := w.build(t, "old", 100), w.build(t, "current", 200), w.build(t, "next", 300)
	server := newBundleServer(t)
	s := startSignedSidecar(t, w.dir, "--config-file", downloadingSidecarConfig(t, server, w.keyA))
	s.waitListening(t, "/health")

	server.serve(t, current)
	s.waitHealthy(t)
	s.waitMarker(t, "current")

	server.serve(t, old)
	want := `bundle "pat" refused: serial 100 (revision "r-old") is older than serial 200 of the active bundle (revision "r-current")` + keepNote
	s.waitLog(t, logged("Bundle activation failed: "+want))
	s.waitLog(t, logged("Rollback protection: "+want+"."))
	if got := s.get(t, "/v1/data/pat/marker"); got != `{"result":"current"}` {
		t.Fatalf("data.pat.marker after the older bundle: %s; want the active bundle's", got)
	}
	if got := s.get(t, "/v1/data/system/bundles/pat/manifest/metadata/serial"); got != `{"result":200}` {
		t.Fatalf("the active serial: %s", got)
	}
	if code := s.status(t, "/health?bundles"); code != http.StatusOK {
		t.Fatalf("/health?bundles %d after a refused update; want 200 (a bundle is active)", code)
	}

	server.serve(t, next)
	s.waitMarker(t, "next")
}

// A bundle without a serial (opa build, an older opa-pat) activates while
// the sidecar trusts no serial, with a warning; once a bundle with one is
// active, it is refused like any older bundle.
func TestSidecarBundlesWithoutSerial(t *testing.T) {
	w := newRollbackWorld(t)
	first, serialed, second := w.build(t, "first", 0), w.build(t, "serialed", 5), w.build(t, "second", 0)
	server := newBundleServer(t)
	s := startSignedSidecar(t, w.dir, "--config-file", downloadingSidecarConfig(t, server, w.keyA))
	s.waitListening(t, "/health")

	server.serve(t, first)
	s.waitMarker(t, "first")
	s.waitLog(t, logged(`Bundle "pat" (revision "r-first") has no serial (metadata.serial): it activates because the sidecar trusts no serial for it yet`))

	server.serve(t, serialed)
	s.waitMarker(t, "serialed")

	server.serve(t, second)
	s.waitLog(t, logged(`Bundle activation failed: bundle "pat" refused: it has no serial (metadata.serial; revision "r-second"), so it is older than serial 5 of the active bundle (revision "r-serialed")`+keepNote))
	if got := s.get(t, "/v1/data/pat/marker"); got != `{"result":"serialed"}` {
		t.Fatalf("data.pat.marker after a bundle without serial: %s", got)
	}
}

// plugins.pat.bundle.min_serial keeps a fresh sidecar, which has no bundle
// to compare with, from starting on an old one: it stays without policy
// (default deny, /health?bundles 500) until a bundle at the floor comes.
func TestSidecarMinSerial(t *testing.T) {
	w := newRollbackWorld(t)
	old, unserialed, current := w.build(t, "old", 100), w.build(t, "unserialed", 0), w.build(t, "current", 200)
	server := newBundleServer(t)
	config := downloadingSidecarConfig(t, server, w.keyA)
	s := startSignedSidecar(t, w.dir, "--config-file", config, "--set", "plugins.pat.bundle.min_serial=150")
	s.waitListening(t, "/health")

	server.serve(t, old)
	s.waitLog(t, logged(`Bundle activation failed: bundle "pat" refused: serial 100 (revision "r-old") is older than serial 150 in plugins.pat.bundle.min_serial`+keepNote))
	server.serve(t, unserialed)
	s.waitLog(t, logged(`Bundle activation failed: bundle "pat" refused: it has no serial (metadata.serial; revision "r-unserialed"), so it is older than serial 150 in plugins.pat.bundle.min_serial`+keepNote))
	if code := s.status(t, "/health?bundles"); code != http.StatusInternalServerError {
		t.Fatalf("/health?bundles %d with only older bundles served; want 500", code)
	}
	if got := s.get(t, "/v1/data/pat/marker"); got != `{}` {
		t.Fatalf("data.pat.marker with only older bundles served: %s; want none", got)
	}

	server.serve(t, current)
	s.waitMarker(t, "current")

	// A local bundle below the floor: the sidecar does not start.
	_, stderr := runRefused(t, w.dir, "--config-file", sidecarConfig(t, fmt.Sprintf("keys:\n  pat:\n    algorithm: ES256\n    key: |\n      %s\n",
		strings.ReplaceAll(strings.TrimSpace(readFile(t, w.keyA+".pub")), "\n", "\n      "))),
		"--set", "plugins.pat.bundle.min_serial=150", "--bundle", old)
	if want := fmt.Sprintf(`error: rollback protection: bundle %q has serial 100 (revision "r-old"), older than serial 150 in plugins.pat.bundle.min_serial: use a newer bundle, or lower the floor (docs/bundles.md, "Rollback protection")`, old); !strings.Contains(stderr, want) {
		t.Fatalf("stderr:\n%s\nwant %s", stderr, want)
	}
}

// With OPA's persist: true, the bundle a sidecar persisted is the one it
// trusts after a restart: a bundle service serving an older one then gets
// it refused.
func TestSidecarPersistedBundleIsTrustedAfterRestart(t *testing.T) {
	w := newRollbackWorld(t)
	old, current := w.build(t, "old", 100), w.build(t, "current", 200)
	server := newBundleServer(t)
	persisted := t.TempDir()
	config := downloadingSidecarConfigWith(t, server, w.keyA, "    persist: true\npersistence_directory: "+persisted+"\n")

	first := startSignedSidecar(t, w.dir, "--config-file", config)
	first.waitListening(t, "/health")
	server.serve(t, current)
	first.waitMarker(t, "current")
	first.waitLog(t, "Bundle persisted to disk successfully")
	first.stop(t)

	server.serve(t, old)
	s := startSignedSidecar(t, w.dir, "--config-file", config)
	s.waitListening(t, "/health")
	s.waitMarker(t, "current")
	s.waitLog(t, logged(`Bundle activation failed: bundle "pat" refused: serial 100 (revision "r-old") is older than serial 200 of the active bundle (revision "r-current")`+keepNote))
	if got := s.get(t, "/v1/data/pat/marker"); got != `{"result":"current"}` {
		t.Fatalf("data.pat.marker: %s", got)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// stop ends the sidecar with SIGTERM and waits for it.
func (s *signedSidecar) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the sidecar did not stop")
	}
}
