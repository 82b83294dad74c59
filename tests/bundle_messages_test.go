package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// run refuses what it cannot verify with messages that say what is wrong:
// a --verification-key file that is not there, and a local path that is a
// plain file rather than a bundle tarball while keys are configured. (The
// name is long on purpose: t.TempDir puts it and up to ten random digits in
// the path, and a run of exactly 36 letters and digits is redacted from
// stderr as a classic token's secret; with 28 letters, one run in 50 was.)
func TestRunSaysWhyItCannotVerifyALocalPath(t *testing.T) {
	w := newSigningWorld(t)
	good := w.build(t, "good.tar.gz", w.keyA)
	pub, err := os.ReadFile(w.keyA + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(w.dir, "config.yaml")
	keys := fmt.Sprintf("keys:\n  pat:\n    algorithm: ES256\n    key: |\n      %s\n", strings.ReplaceAll(strings.TrimSpace(string(pub)), "\n", "\n      "))
	if err := os.WriteFile(config, []byte(keys), 0o644); err != nil {
		t.Fatal(err)
	}
	evil := filepath.Join(w.dir, "evil.rego")
	if err := os.WriteFile(evil, []byte("package evil\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		note   string
		args   []string
		stderr string
	}{
		{note: "a missing key file", args: []string{"--bundle", "--verification-key", "nope.pub", good},
			stderr: "error: --verification-key: neither a PEM public key nor a file that can be read: open nope.pub: no such file or directory\n"},
		{note: "a policy file with keys configured", args: []string{"--config-file", config, evil},
			stderr: "error: keys are configured, so local paths must be signed bundle files: " + evil +
				" is not a bundle file (a gzipped tarball, as opa-pat bundle build writes) (or pass --skip-verify to load it unverified)\n"},
	} {
		t.Run(tc.note, func(t *testing.T) {
			_, stderr := w.run(t, 1, append([]string{"run", "--server", "--addr", "127.0.0.1:0"}, tc.args...)...)
			if stderr != tc.stderr {
				t.Fatalf("stderr:\n got %q\nwant %q", stderr, tc.stderr)
			}
		})
	}
}

// run --server says why it exits also when the failure comes from starting
// the runtime rather than building it: OPA returns those without a word in
// server mode. A pat section that discovery would configure with the irvm
// evaluator is refused when the plugins start, and the one line on stderr
// says so (it used to exit 1 with nothing on either stream).
func TestRunServerSaysWhyThePluginsCannotStart(t *testing.T) {
	w := newSigningWorld(t)
	pub, err := os.ReadFile(w.keyA + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(w.dir, "config.yaml")
	yaml := fmt.Sprintf(`services:
  bundles:
    url: http://127.0.0.1:1
keys:
  pat:
    algorithm: ES256
    key: |
      %s
discovery:
  service: bundles
  resource: discovery.tar.gz
  signing: {keyid: pat}
plugins:
  pat:
    store: {path: %s}
    evaluator: irvm
`, strings.ReplaceAll(strings.TrimSpace(string(pub)), "\n", "\n      "), filepath.Join(w.dir, "pat.db"))
	if err := os.WriteFile(config, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr := w.run(t, 1, "run", "--server", "--addr", "127.0.0.1:0", "--config-file", config)
	want := `error: invalid configuration for plugin "pat": evaluator: "irvm" cannot be combined with discovery; set evaluator: "topdown"` + "\n"
	if stdout != "" || stderr != want {
		t.Fatalf("stdout %q, stderr:\n got %q\nwant %q", stdout, stderr, want)
	}
}
