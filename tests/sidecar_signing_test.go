package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sidecarConfig writes an OPA configuration that configures the pat plugin
// (a sidecar) on a new store, with extra YAML after it, and returns its path.
func sidecarConfig(t *testing.T, extra string) string {
	t.Helper()
	dir := t.TempDir()
	store := filepath.Join(dir, "pat.db")
	runCLI(t, binary(t), nil, "store", "import", "--store", store, filepath.Join(repoRoot(), "examples", "fixtures.json"))
	return writeFile(t, dir, "config.yaml", fmt.Sprintf("plugins:\n  pat:\n    store: {path: %q}\n%s", store, extra))
}

// runRefused runs `opa-pat run --server` with args in dir and returns its
// stdout and stderr once it exits with status 1. A sidecar that starts and
// serves instead fails the test (it is stopped after 30 seconds).
func runRefused(t *testing.T, dir string, args ...string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), append([]string{"run", "--server", "--addr", freeAddr(t)}, args...)...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("opa-pat run %s started and served; want it refused\nstderr: %s", strings.Join(args, " "), stderr.String())
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("opa-pat run %s: %v; want exit status 1\nstderr: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), stderr.String()
}

// A sidecar (plugins.pat configured) with no key refuses a local bundle it
// cannot verify, and says what to do: stock OPA loads an unsigned (so
// possibly tampered) bundle silently, and refuses a signed one with "load
// error: ... verification key not provided". With the key it serves; with
// --skip-verify, the development escape, an unsigned bundle serves.
func TestSidecarRefusesLocalBundlesItCannotVerify(t *testing.T) {
	w := newSigningWorld(t)
	good := w.build(t, "good.tar.gz", w.keyA)
	// Tampered: the signature removed and the settings edited.
	unsigned := filepath.Join(w.dir, "unsigned.tar.gz")
	tampered := bundleRepack(t, bundleTarFiles(t, good), func(name string, b []byte) []byte {
		switch name {
		case "/.signatures.json":
			return nil
		case "/data.json":
			return bytes.Replace(b, []byte(`"restrict"`), []byte(`"allow"`), 1)
		}
		return b
	})
	if err := os.WriteFile(unsigned, tampered, 0o644); err != nil {
		t.Fatal(err)
	}
	config := sidecarConfig(t, "")
	notSigned := func(p string) string {
		return "error: bundle " + p + " is not signed: sign it with opa-pat bundle build --key, or pass --skip-verify to load it unverified (development only)\n"
	}
	signedNoKey := func(p string) string {
		return "error: bundle " + p + " is signed, but no key is given to verify it: add --verification-key cosign.pub (or the key under keys: in the configuration)\n"
	}

	for _, tc := range []struct {
		note   string
		args   []string
		stderr string
	}{
		{note: "unsigned", args: []string{"--bundle", unsigned}, stderr: notSigned(unsigned)},
		{note: "unsigned, a relative path", args: []string{"-b", "unsigned.tar.gz"}, stderr: notSigned("unsigned.tar.gz")},
		{note: "unsigned, without --bundle", args: []string{unsigned}, stderr: notSigned(unsigned)},
		{note: "signed, no key", args: []string{"--bundle", good}, stderr: signedNoKey(good)},
		{note: "signed, no key, relative path", args: []string{"--bundle", "good.tar.gz"}, stderr: signedNoKey("good.tar.gz")},
		{note: "a directory as a bundle", args: []string{"--bundle", w.rego}, stderr: notSigned(w.rego)},
	} {
		t.Run(tc.note, func(t *testing.T) {
			stdout, stderr := runRefused(t, w.dir, append([]string{"--config-file", config}, tc.args...)...)
			if stdout != "" || stderr != tc.stderr {
				t.Fatalf("stdout %q, stderr:\n got %q\nwant %q", stdout, stderr, tc.stderr)
			}
		})
	}

	t.Run("signed, --verification-key: served", func(t *testing.T) {
		s := startSignedSidecar(t, w.dir, "--config-file", config, "--verification-key", w.keyA+".pub", "--bundle", good)
		s.waitHealthy(t)
		if got := s.get(t, "/v1/data/pat/restricted"); got != `{"result":["octo-org"]}` {
			t.Fatalf("data.pat.restricted: %s", got)
		}
	})
	t.Run("unsigned, --skip-verify: served", func(t *testing.T) {
		s := startSignedSidecar(t, w.dir, "--config-file", config, "--skip-verify", "--bundle", unsigned)
		s.waitHealthy(t)
		if got := s.get(t, "/v1/data/pat/restricted"); got != `{"result":[]}` {
			t.Fatalf("data.pat.restricted: %s; want the tampered settings' (none restricted)", got)
		}
	})
	t.Run("no plugins.pat: OPA's own rules", func(t *testing.T) {
		s := startSignedSidecar(t, w.dir, "--bundle", unsigned)
		s.waitHealthy(t)
	})
}

// A sidecar whose configuration downloads bundles (or its configuration, by
// discovery) without any key would activate whatever it is served: it does
// not start, and says what to add.
func TestSidecarRefusesBundleSourcesWithoutKeys(t *testing.T) {
	const services = "services:\n  s: {url: \"http://127.0.0.1:1\"}\n"
	for _, tc := range []struct {
		note, extra, stderr string
	}{
		{
			note:   "bundles",
			extra:  services + "bundles:\n  pat: {service: s, resource: pat/bundle.tar.gz}\n",
			stderr: "error: bundles.pat would load unsigned bundles: no keys are configured; add keys: {NAME: {algorithm: ES256, key: <the PEM of cosign.pub>}} and bundles.pat.signing: {keyid: NAME}\n",
		},
		{
			note:   "bundles with a signing block, no keys",
			extra:  services + "bundles:\n  pat: {service: s, resource: pat/bundle.tar.gz, signing: {keyid: pat}}\n",
			stderr: "error: bundles.pat would load unsigned bundles: no keys are configured; add keys: {NAME: {algorithm: ES256, key: <the PEM of cosign.pub>}} and bundles.pat.signing: {keyid: NAME}\n",
		},
		{
			note:   "discovery",
			extra:  services + "discovery: {service: s, resource: discovery.tar.gz}\n",
			stderr: "error: discovery would load unsigned bundles: no keys are configured; add keys: {NAME: {algorithm: ES256, key: <the PEM of cosign.pub>}} and discovery.signing: {keyid: NAME}\n",
		},
	} {
		t.Run(tc.note, func(t *testing.T) {
			config := sidecarConfig(t, tc.extra)
			stdout, stderr := runRefused(t, t.TempDir(), "--config-file", config)
			if stdout != "" || stderr != tc.stderr {
				t.Fatalf("stdout %q, stderr:\n got %q\nwant %q", stdout, stderr, tc.stderr)
			}
		})
	}
}
