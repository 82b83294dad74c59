package tests

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/elliptic"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opa-pat/opa-pat/bundle"
	"github.com/opa-pat/opa-pat/bundle/bundletest"
	"github.com/opa-pat/opa-pat/examples"
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
	// The same, with what OPA does not take for the signatures: an entry
	// of type 'Z' named .signatures.json in front, which opa-pat read and
	// could not parse, so it left the bundle to OPA, which loaded it
	// unverified (black-box: the changed policy answered). And a
	// .signatures.json in a directory, which OPA does take for the
	// signatures (opa-pat called the bundle unsigned).
	files := bundleTarFiles(t, good)
	changed := map[string][]byte{}
	for name, b := range files {
		switch name {
		case "/.signatures.json":
		case "/data.json":
			changed[name] = bytes.Replace(b, []byte(`"restrict"`), []byte(`"allow"`), 1)
		default:
			changed[name] = b
		}
	}
	typeZ := writeFile(t, w.dir, "type-z.tar.gz", string(bundleWithFirstEntry(t, changed, &tar.Header{Name: "/.signatures.json", Typeflag: 'Z'}, []byte("not JSON"))))
	nested := writeFile(t, w.dir, "nested.tar.gz", string(bundleWithFirstEntry(t, changed, &tar.Header{Name: "/pat/.signatures.json", Typeflag: tar.TypeReg}, files["/.signatures.json"])))
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
		{note: "unsigned, an entry of type Z named .signatures.json", args: []string{"--bundle", typeZ}, stderr: notSigned(typeZ)},
		{note: "unsigned, an entry of type Z named .signatures.json, without --bundle", args: []string{typeZ}, stderr: notSigned(typeZ)},
		{note: "signed in a directory, no key", args: []string{"--bundle", nested}, stderr: signedNoKey(nested)},
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

// bundleServer serves one bundle at /pat/bundle.tar.gz, which the test
// changes; 404 while there is none.
type bundleServer struct {
	mu      sync.Mutex
	tarball []byte
	url     string
}

func newBundleServer(t *testing.T) *bundleServer {
	t.Helper()
	b := &bundleServer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		tarball := b.tarball
		b.mu.Unlock()
		if r.URL.Path != "/pat/bundle.tar.gz" || tarball == nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/gzip")
		_, _ = w.Write(tarball)
	}))
	t.Cleanup(srv.Close)
	b.url = srv.URL
	return b
}

func (b *bundleServer) serve(t *testing.T, path string) {
	t.Helper()
	tarball, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	b.tarball = tarball
	b.mu.Unlock()
}

// signedExampleBundles makes a cosign key pair in a new directory and
// returns the directory, the key's prefix and a function that builds there a
// bundle of the example settings signed with it, at a revision.
func signedExampleBundles(t *testing.T) (dir, key string, build func(name, revision string) string) {
	t.Helper()
	root := repoRoot()
	dir = t.TempDir()
	env := []string{"COSIGN_PASSWORD=pw"}
	key = filepath.Join(dir, "k")
	runSigning(t, root, env, 0, "keys", "generate", "--output-prefix", key)
	settings := filepath.Join(root, "examples", "settings.json")
	return dir, key, func(name, revision string) string {
		out := filepath.Join(dir, name)
		runSigning(t, root, env, 0, "bundle", "build", "--settings", settings, "--key", key+".key", "--revision", revision, "--output", out)
		return out
	}
}

// downloadingSidecarConfig is a sidecar's configuration that downloads bundle
// pat from b, signed by the key PREFIX.pub.
func downloadingSidecarConfig(t *testing.T, b *bundleServer, prefix string) string {
	t.Helper()
	return downloadingSidecarConfigWith(t, b, prefix, "")
}

// downloadingSidecarConfigWith is downloadingSidecarConfig with more YAML
// in bundles.pat (each line indented by four spaces).
func downloadingSidecarConfigWith(t *testing.T, b *bundleServer, prefix, source string) string {
	t.Helper()
	pub, err := os.ReadFile(prefix + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	store := filepath.Join(dir, "pat.db")
	fixtures, err := examples.FixturesAt(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	runCLI(t, binary(t), nil, "store", "import", "--store", store, writeFile(t, dir, "fixtures.json", string(fixtures)))
	return writeFile(t, dir, "config.yaml", fmt.Sprintf(`plugins:
  pat:
    store: {path: %q}
services:
  bundles: {url: %q}
keys:
  pat:
    algorithm: ES256
    key: |
      %s
bundles:
  pat:
    service: bundles
    resource: pat/bundle.tar.gz
    signing: {keyid: pat}
    polling: {min_delay_seconds: 1, max_delay_seconds: 1}
%s`, store, b.url, strings.ReplaceAll(strings.TrimSpace(string(pub)), "\n", "\n      "), source))
}

// send makes a request to the sidecar's API and returns the status and body.
func (s *signedSidecar) send(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+s.addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// OPA's REST API refuses writes under an active bundle's roots; before the
// bundle activates (its server down, or serving only bundles the sidecar
// refuses) it took a policy under package pat that allows everything. The pat
// plugin claims the bundle's roots at start, so the API refuses that write
// from the first moment; the signed bundle then activates over the claim (and
// so do its updates), and a refused bundle leaves the claim in place.
func TestSidecarClaimsTheBundleRootsBeforeActivation(t *testing.T) {
	dir, key, build := signedExampleBundles(t)
	r1, r2 := build("r1.tar.gz", "r1"), build("r2.tar.gz", "r2")
	unsigned := filepath.Join(dir, "unsigned.tar.gz")
	evilPolicy := "package pat\n\nallow := true\n"
	tampered := bundleRepack(t, bundleTarFiles(t, r1), func(name string, b []byte) []byte {
		switch name {
		case "/.signatures.json":
			return nil
		case "/data.json":
			return bytes.ReplaceAll(b, []byte(`"restrict"`), []byte(`"allow"`))
		}
		return b
	})
	if err := os.WriteFile(unsigned, tampered, 0o644); err != nil {
		t.Fatal(err)
	}

	server := newBundleServer(t)
	s := startSignedSidecar(t, dir, "--config-file", downloadingSidecarConfig(t, server, key))
	if code := s.waitListening(t, "/health?bundles"); code != http.StatusInternalServerError {
		t.Fatalf("/health?bundles %d with no bundle served", code)
	}
	const owned = `path pat is owned by bundle \"pat\"`
	refused := func(t *testing.T, when string) {
		t.Helper()
		code, body := s.send(t, http.MethodPut, "/v1/policies/evil", evilPolicy)
		if code != http.StatusBadRequest || !strings.Contains(body, owned) {
			t.Fatalf("%s: PUT /v1/policies/evil: %d %s; want 400 and %s", when, code, body, owned)
		}
		code, body = s.send(t, http.MethodPut, "/v1/data/pat/settings", `{}`)
		if code != http.StatusBadRequest || !strings.Contains(body, `path pat/settings is owned by bundle \"pat\"`) {
			t.Fatalf("%s: PUT /v1/data/pat/settings: %d %s; want 400", when, code, body)
		}
		code, body = s.send(t, http.MethodPut, "/v1/policies/evil-mask", "package system.log\n\nmask contains \"/nothing\"\n")
		if code != http.StatusBadRequest || !strings.Contains(body, `path system/log is owned by bundle \"pat\"`) {
			t.Fatalf("%s: PUT /v1/policies/evil-mask: %d %s; want 400", when, code, body)
		}
		if code, body := s.send(t, http.MethodPost, "/v1/data/pat/allow", `{"input": {}}`); code != http.StatusOK || body != "{}" {
			t.Fatalf("%s: POST /v1/data/pat/allow: %d %s; want 200 and no result", when, code, body)
		}
	}
	refused(t, "no bundle served")

	server.serve(t, unsigned)
	s.waitLog(t, "Bundle load failed: bundle missing .signatures.json file")
	refused(t, "an unsigned bundle refused")
	if got := s.get(t, "/v1/data/system/bundles/pat/manifest/metadata/opa_pat_claim"); !strings.Contains(got, "reserved by the pat plugin") {
		t.Fatalf("the claim after a refused bundle: %s", got)
	}

	server.serve(t, r1)
	s.waitHealthy(t)
	if code, body := s.send(t, http.MethodPut, "/v1/policies/evil", evilPolicy); code != http.StatusBadRequest || !strings.Contains(body, owned) {
		t.Fatalf("bundle active: PUT /v1/policies/evil: %d %s", code, body)
	}
	if got := s.get(t, "/v1/data/system/bundles/pat/manifest/revision"); got != `{"result":"r1"}` {
		t.Fatalf("revision: %s", got)
	}
	decisions := &sidecar{addr: s.addr}
	poll(t, 20*time.Second, "token decisions", func() bool { return healthCode(s.addr, "/health?plugins") == http.StatusOK })
	if d := decisions.decide(t, bobLaptop, "octo-org", "app", "read"); d["allow"] != true || d["status"] != float64(200) {
		t.Fatalf("bob's classic token reads octo-org/app: %v; want allowed (200)", d)
	}
	if d := decisions.decide(t, bobDeploy, "octo-org", "app", "read"); d["allow"] != false || d["status"] != float64(403) {
		t.Fatalf("bob's pending fine-grained token: %v; want denied (403)", d)
	}

	server.serve(t, r2)
	poll(t, 20*time.Second, "the update to activate", func() bool {
		return s.get(t, "/v1/data/system/bundles/pat/manifest/revision") == `{"result":"r2"}`
	})
	if code, body := s.send(t, http.MethodPut, "/v1/policies/evil", evilPolicy); code != http.StatusBadRequest || !strings.Contains(body, owned) {
		t.Fatalf("after the update: PUT /v1/policies/evil: %d %s", code, body)
	}
}

// A bundle whose roots are not the claim's (here only pat) activates over it;
// the plugin's decision-log mask, erased with the claim's system/log root,
// comes back.
func TestSidecarBundleWithOtherRootsActivatesOverTheClaim(t *testing.T) {
	w := newSigningWorld(t)
	good := w.build(t, "good.tar.gz", w.keyA) // roots: ["pat"]
	server := newBundleServer(t)
	s := startSignedSidecar(t, w.dir, "--config-file", downloadingSidecarConfig(t, server, w.keyA))
	s.waitListening(t, "/health")
	if got := s.get(t, "/v1/data/system/bundles/pat/manifest/roots"); got != `{"result":["pat","system/log"]}` {
		t.Fatalf("the claim's roots: %s", got)
	}
	server.serve(t, good)
	s.waitHealthy(t)
	if got := s.get(t, "/v1/data/system/bundles/pat/manifest/roots"); got != `{"result":["pat"]}` {
		t.Fatalf("roots: %s", got)
	}
	if got := s.get(t, "/v1/data/pat/restricted"); got != `{"result":["octo-org"]}` {
		t.Fatalf("data.pat.restricted: %s", got)
	}
	poll(t, 10*time.Second, "the decision-log mask to come back", func() bool {
		return strings.Contains(s.get(t, "/v1/policies"), `"id":"opa-pat/fallback/system/log/log.rego"`)
	})
}

// A sidecar verifies with ES256 keys only, the algorithm of opa-pat's
// signatures: with --signing-alg HS256 OPA would take cosign.pub's PEM for
// an HMAC secret, and anyone who has the public key could sign a bundle.
func TestSidecarRefusesOtherSigningAlgorithms(t *testing.T) {
	w := newSigningWorld(t)
	good := w.build(t, "good.tar.gz", w.keyA)
	rsaPub := writeFile(t, w.dir, "rsa.pub", bundletest.PublicKeyPEM(t, &bundletest.RSAKey(t).PublicKey))
	config := sidecarConfig(t, "")
	hmacConfig := sidecarConfig(t, "keys:\n  k: {algorithm: HS256, key: secret}\n")
	const es256Only = "opa-pat bundles are signed ES256 (ECDSA P-256, the cosign key), and a sidecar verifies with ES256 keys only; set algorithm: ES256 with the PEM of cosign.pub"
	for _, tc := range []struct {
		note   string
		args   []string
		stderr string
	}{
		{
			note:   "--signing-alg HS256 with the cosign key",
			args:   []string{"--config-file", config, "--verification-key", w.keyA + ".pub", "--signing-alg", "HS256", "--bundle", good},
			stderr: "error: --signing-alg HS256: a sidecar verifies bundles signed ES256 only (ECDSA P-256, the cosign key); leave the flag out\n",
		},
		{
			note:   "an RSA --verification-key",
			args:   []string{"--config-file", config, "--verification-key", rsaPub, "--bundle", good},
			stderr: "error: --verification-key: the public key is RSA 2048 bits, want ECDSA P-256 (ES256)\n",
		},
		{
			note:   "an HMAC key under keys:",
			args:   []string{"--config-file", hmacConfig, "--bundle", good},
			stderr: "error: keys.k.algorithm: HS256: " + es256Only + "\n",
		},
	} {
		t.Run(tc.note, func(t *testing.T) {
			stdout, stderr := runRefused(t, w.dir, tc.args...)
			if stdout != "" || stderr != tc.stderr {
				t.Fatalf("stdout %q, stderr:\n got %q\nwant %q", stdout, stderr, tc.stderr)
			}
		})
	}
}

// A key under keys: with algorithm ES256 must be an ECDSA P-256 public key.
// OPA found out about another only when a bundle came: a local bundle died
// with "dsig.VerifyECDSA: failed to unpack ECDSA signature: invalid
// signature length for curve P-384", or with an error about
// --verification-key, a flag the operator never used; a bundles: source
// logged "Bundle load failed" on every poll. The sidecar now does not
// start, names the key, and never shows its value.
func TestSidecarRefusesKeysThatAreNotP256(t *testing.T) {
	w := newSigningWorld(t)
	good := w.build(t, "good.tar.gz", w.keyA)
	p384 := bundletest.ECDSAKey(t, elliptic.P384())
	rsaKey := bundletest.RSAKey(t)
	pemOf := func(pub any) string { return bundletest.PublicKeyPEM(t, pub) }
	keys := func(key string) string {
		return "keys:\n  k:\n    algorithm: ES256\n    key: |\n      " + strings.ReplaceAll(strings.TrimSpace(key), "\n", "\n      ") + "\n"
	}
	const download = "services:\n  s: {url: \"http://127.0.0.1:1\"}\nbundles:\n  pat: {service: s, resource: pat/bundle.tar.gz, signing: {keyid: k}}\n"
	for _, tc := range []struct {
		note, config string
		args         []string
		stderr       string
	}{
		{
			note:   "ECDSA P-384, a local bundle",
			config: keys(pemOf(&p384.PublicKey)),
			args:   []string{"--bundle", good},
			stderr: "error: keys.k.key: the public key is ECDSA P-384, want ECDSA P-256 (ES256)\n",
		},
		{
			note:   "ECDSA P-384, a bundles: source",
			config: keys(pemOf(&p384.PublicKey)) + download,
			stderr: "error: keys.k.key: the public key is ECDSA P-384, want ECDSA P-256 (ES256)\n",
		},
		{
			note:   "RSA, a local bundle",
			config: keys(pemOf(&rsaKey.PublicKey)),
			args:   []string{"--bundle", good},
			stderr: "error: keys.k.key: the public key is RSA 2048 bits, want ECDSA P-256 (ES256)\n",
		},
		{
			note:   "not a PEM, a local bundle",
			config: keys("hunter2"),
			args:   []string{"--bundle", good},
			stderr: "error: keys.k.key: not a PEM public key; give the PEM of cosign.pub\n",
		},
		{
			note:   "not a PEM, a bundles: source",
			config: keys("hunter2") + download,
			stderr: "error: keys.k.key: not a PEM public key; give the PEM of cosign.pub\n",
		},
	} {
		t.Run(tc.note, func(t *testing.T) {
			config := sidecarConfig(t, tc.config)
			stdout, stderr := runRefused(t, w.dir, append([]string{"--config-file", config}, tc.args...)...)
			if stdout != "" || stderr != tc.stderr {
				t.Fatalf("stdout %q, stderr:\n got %q\nwant %q", stdout, stderr, tc.stderr)
			}
		})
	}
}

// Entries under keys: with only a private_key are a service's credentials:
// they verify no bundle, so a configuration that has only those has no key.
// They counted as keys: a local bundle got OPA's bare "verification key not
// provided", and a bundles: source started and logged "verification key
// corresponding to ID default not found" forever. They now get the
// refusals of a configuration without keys, and beside a verification key
// they are not candidates for a local bundle's key.
func TestSidecarPrivateKeysAreNotVerificationKeys(t *testing.T) {
	w := newSigningWorld(t)
	good := w.build(t, "good.tar.gz", w.keyA) // key id "default"
	const credentials = "keys:\n  client: {private_key: not-a-key, algorithm: RS256}\n"
	const download = "services:\n  s: {url: \"http://127.0.0.1:1\"}\nbundles:\n  pat: {service: s, resource: pat/bundle.tar.gz}\n"
	for _, tc := range []struct {
		note, config string
		args         []string
		stderr       string
	}{
		{
			note:   "a local bundle",
			config: credentials,
			args:   []string{"--bundle", good},
			stderr: "error: bundle " + good + " is signed, but no key is given to verify it: add --verification-key cosign.pub (or the key under keys: in the configuration)\n",
		},
		{
			note:   "a bundles: source",
			config: credentials + download,
			stderr: "error: bundles.pat would load unsigned bundles: no keys are configured (keys.client has no key field: an entry with only a private_key is a service's credentials and verifies no bundle); " +
				"add keys: {NAME: {algorithm: ES256, key: <the PEM of cosign.pub>}} and bundles.pat.signing: {keyid: NAME}\n",
		},
	} {
		t.Run(tc.note, func(t *testing.T) {
			stdout, stderr := runRefused(t, w.dir, append([]string{"--config-file", sidecarConfig(t, tc.config)}, tc.args...)...)
			if stdout != "" || stderr != tc.stderr {
				t.Fatalf("stdout %q, stderr:\n got %q\nwant %q", stdout, stderr, tc.stderr)
			}
		})
	}

	// The only verification key verifies a local bundle whatever its key
	// id, with a service's private key beside it.
	t.Run("beside a verification key: served", func(t *testing.T) {
		config := sidecarConfig(t, keysConfig(t, w.keyA)+"  client: {private_key: not-a-key, algorithm: RS256}\n")
		s := startSignedSidecar(t, w.dir, "--config-file", config, "--bundle", good)
		s.waitHealthy(t)
		if got := s.get(t, "/v1/data/pat/restricted"); got != `{"result":["octo-org"]}` {
			t.Fatalf("data.pat.restricted: %s", got)
		}
	})
}

// A signed bundle unpacked into a directory and passed without --bundle
// loaded as plain policy and data files, unverified, even after a file was
// changed; with --bundle it is verified. A sidecar refuses such a directory
// unless --bundle or --skip-verify says which; policy directories, which
// have neither .manifest nor .signatures.json, load as before.
func TestSidecarRefusesBundleDirectoriesWithoutBundleFlag(t *testing.T) {
	w := newSigningWorld(t)
	good := w.build(t, "good.tar.gz", w.keyA)
	unpack := func(name string, keep func(string) bool) string {
		dir := filepath.Join(w.dir, name)
		for file, b := range bundleTarFiles(t, good) {
			if !keep(file) {
				continue
			}
			if file == "/data.json" { // tampered: nothing restricted
				b = bytes.ReplaceAll(b, []byte(`"restrict"`), []byte(`"allow"`))
			}
			p := filepath.Join(dir, filepath.FromSlash(file))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	sd := unpack("sd", func(string) bool { return true })
	manifestOnly := unpack("manifest-only", func(f string) bool { return f != "/.signatures.json" })
	nested := unpack(filepath.Join("policies", "team", "sd"), func(string) bool { return true })
	// A signed tarball with its settings changed (nothing restricted), in a
	// directory: OPA's loader loads a .tar.gz under a directory path as a
	// bundle without verifying it, whatever the keys, and it served the
	// changed settings although the tarball given as a path is refused.
	changed := bundleRepack(t, bundleTarFiles(t, good), func(name string, b []byte) []byte {
		if name == "/data.json" {
			return bytes.ReplaceAll(b, []byte(`"restrict"`), []byte(`"allow"`))
		}
		return b
	})
	withTarball := filepath.Join(w.dir, "etc-opa-pat")
	deepTarball := filepath.Join(w.dir, "deep")
	for _, p := range []string{filepath.Join(withTarball, "bundle.tar.gz"), filepath.Join(deepTarball, "a", "b", "bundle.tar.gz")} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, changed, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	config := sidecarConfig(t, "")
	withKeys := sidecarConfig(t, keysConfig(t, w.keyA))
	holds := func(dir, files string) string {
		return "error: " + dir + " holds a bundle (" + files + "): pass it with --bundle so that it is verified, or --skip-verify to load it unverified (development only)\n"
	}
	holdsFile := func(dir, file string) string {
		return "error: " + dir + " holds a bundle file, " + file + ", which OPA would load without verifying its signature: pass the bundle file with --bundle so that it is verified, or --skip-verify to load it unverified (development only)\n"
	}
	for _, tc := range []struct {
		note   string
		args   []string
		stderr string
	}{
		{note: "--verification-key", args: []string{"--config-file", config, "--verification-key", w.keyA + ".pub", sd}, stderr: holds(sd, ".manifest, .signatures.json")},
		{note: "no key", args: []string{"--config-file", config, sd}, stderr: holds(sd, ".manifest, .signatures.json")},
		{note: "the key under keys:", args: []string{"--config-file", withKeys, sd}, stderr: holds(sd, ".manifest, .signatures.json")},
		{note: "a relative path", args: []string{"--config-file", config, "sd"}, stderr: holds("sd", ".manifest, .signatures.json")},
		{note: "a manifest only", args: []string{"--config-file", config, manifestOnly}, stderr: holds(manifestOnly, ".manifest")},
		{note: "a bundle in a subdirectory", args: []string{"--config-file", config, filepath.Join(w.dir, "policies")}, stderr: holds(nested, ".manifest, .signatures.json")},
		{note: "a changed tarball in the directory, no key", args: []string{"--config-file", config, withTarball}, stderr: holdsFile(withTarball, filepath.Join(withTarball, "bundle.tar.gz"))},
		{note: "a changed tarball deeper, no key", args: []string{"--config-file", config, "deep"}, stderr: holdsFile("deep", filepath.Join("deep", "a", "b", "bundle.tar.gz"))},
		{note: "a changed tarball in the directory, --verification-key", args: []string{"--config-file", config, "--verification-key", w.keyA + ".pub", withTarball}, stderr: holdsFile(withTarball, filepath.Join(withTarball, "bundle.tar.gz"))},
		{note: "a changed tarball in the directory, the key under keys:", args: []string{"--config-file", withKeys, withTarball}, stderr: holdsFile(withTarball, filepath.Join(withTarball, "bundle.tar.gz"))},
	} {
		t.Run(tc.note, func(t *testing.T) {
			stdout, stderr := runRefused(t, w.dir, tc.args...)
			if stdout != "" || stderr != tc.stderr {
				t.Fatalf("stdout %q, stderr:\n got %q\nwant %q", stdout, stderr, tc.stderr)
			}
		})
	}

	// OPA 1.22.2 names a directory's files with the directory in front
	// ("file sd/.manifest not included in bundle signature"), so it
	// refuses every signed directory, changed or not (docs/bundles.md).
	t.Run("with --bundle: verified, and refused", func(t *testing.T) {
		_, stderr := runRefused(t, w.dir, "--config-file", config, "--verification-key", w.keyA+".pub", "--bundle", "sd")
		if !strings.HasPrefix(stderr, "error: load error: bundle sd: ") {
			t.Fatalf("stderr %q; want OPA's refusal", stderr)
		}
	})
	t.Run("--skip-verify: served", func(t *testing.T) {
		s := startSignedSidecar(t, w.dir, "--config-file", config, "--skip-verify", sd)
		s.waitHealthy(t)
		if got := s.get(t, "/v1/data/pat/restricted"); got != `{"result":[]}` {
			t.Fatalf("data.pat.restricted: %s; want the tampered settings' (none restricted)", got)
		}
	})
	t.Run("a tarball given with --bundle: verified, and refused", func(t *testing.T) {
		_, stderr := runRefused(t, w.dir, "--config-file", withKeys, "--bundle", filepath.Join(withTarball, "bundle.tar.gz"))
		if !strings.Contains(stderr, "data.json: digest mismatch") {
			t.Fatalf("stderr %q; want OPA's refusal", stderr)
		}
	})
	t.Run("a tarball in a directory, --skip-verify: served unverified", func(t *testing.T) {
		s := startSignedSidecar(t, w.dir, "--config-file", config, "--skip-verify", withTarball)
		s.waitHealthy(t)
		if got := s.get(t, "/v1/data/pat/restricted"); got != `{"result":[]}` {
			t.Fatalf("data.pat.restricted: %s; want the changed settings' (none restricted)", got)
		}
	})
	t.Run("a policy directory: served", func(t *testing.T) {
		s := startSignedSidecar(t, w.dir, "--config-file", config, filepath.Join(w.rego, "pat"), "pat.settings:"+w.settings, "--ignore", "*_test.rego")
		s.waitHealthy(t)
		if got := s.get(t, "/v1/data/pat/restricted"); got != `{"result":["octo-org"]}` {
			t.Fatalf("data.pat.restricted: %s", got)
		}
	})
}

// opa-pat run gives a sidecar's bundles: sources a size_limit_bytes of
// 32 MiB a file unless the configuration sets one: OPA's default, 1 GiB,
// let a tampered bundle of compressed zeros take gigabytes on every poll.
// A size_limit_bytes of 0 or less in the file is OPA's default too, so it
// gets the same. A file over the limit is refused from its tar header.
func TestSidecarLimitsDownloadedFiles(t *testing.T) {
	dir, key, build := signedExampleBundles(t)
	good := build("good.tar.gz", "r1")
	bomb := filepath.Join(dir, "bomb.tar.gz")
	tarball := bundleRepack(t, bundleTarFiles(t, good), func(name string, b []byte) []byte {
		if name == "/data.json" {
			return make([]byte, bundle.MaxFileBytes+1)
		}
		return b
	})
	if err := os.WriteFile(bomb, tarball, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ note, source string }{
		{note: "absent"},
		{note: "0", source: "    size_limit_bytes: 0\n"},
		{note: "negative", source: "    size_limit_bytes: -1\n"},
	} {
		t.Run(tc.note, func(t *testing.T) {
			server := newBundleServer(t)
			server.serve(t, bomb)
			s := startSignedSidecar(t, dir, "--config-file", downloadingSidecarConfigWith(t, server, key, tc.source))
			s.waitLog(t, fmt.Sprintf("Bundle load failed: bundle read failed: bundle file /data.json size (%d bytes) exceeds configured size_limit_bytes (%d bytes)", bundle.MaxFileBytes+1, bundle.MaxFileBytes))
			server.serve(t, good)
			s.waitHealthy(t)
		})
	}
}

// withZeroFiles writes the files of the bundle at path, then a file of
// zeros of each size (/zeros/0.txt, …), as a new tarball at out. The zeros
// are streamed: the test holds none of them.
func withZeroFiles(t *testing.T, path, out string, sizes ...int64) string {
	t.Helper()
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := bundletest.WriteWithZeroFiles(f, bundleTarFiles(t, path), sizes...); err != nil {
		t.Fatal(err)
	}
	return out
}

// keysConfig is the keys: section that trusts the public key PREFIX.pub
// under the name pat.
func keysConfig(t *testing.T, prefix string) string {
	t.Helper()
	pub, err := os.ReadFile(prefix + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("keys:\n  pat:\n    algorithm: ES256\n    key: |\n      %s\n", strings.ReplaceAll(strings.TrimSpace(string(pub)), "\n", "\n      "))
}

// A sidecar refuses a local bundle whose files OPA would read into memory
// beyond 32 MiB a file or 64 MiB in all, before OPA reads it: OPA reads
// every file of a local bundle, up to 1 GiB each, before it checks the
// signature, and a tarball of a megabyte, a file of 900 MiB of zeros, took
// 974 MB to refuse. Bundle directories are summed from the files' sizes.
// (The name is longer than 35 characters: with the digits of its temporary
// directory, a name of 26 to 35 can make a run of exactly 36 base62
// characters, which the sidecar's stderr redacts as a classic token's.)
func TestSidecarLimitsTheSizeOfLocalBundles(t *testing.T) {
	w := newSigningWorld(t)
	good := w.build(t, "good.tar.gz", w.keyA)
	bigFile := withZeroFiles(t, good, filepath.Join(w.dir, "big-file.tar.gz"), bundle.MaxFileBytes+1)
	manyFiles := withZeroFiles(t, good, filepath.Join(w.dir, "many-files.tar.gz"), slices.Repeat([]int64{31 << 20}, 25)...)
	sum := int64(3 * (31 << 20))
	for _, b := range bundleTarFiles(t, good) {
		sum += int64(len(b))
	}
	bigDir := filepath.Join(w.dir, "big-dir")
	for i := range 3 {
		p := filepath.Join(bigDir, "zeros", fmt.Sprintf("%d.json", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, 30<<20); err != nil { // sparse: no disk space
			t.Fatal(err)
		}
	}
	inDir := filepath.Join(w.dir, "in-dir")
	if err := os.MkdirAll(filepath.Join(inDir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(manyFiles, filepath.Join(inDir, "sub", "many-files.tar.gz")); err != nil {
		t.Fatal(err)
	}
	config := sidecarConfig(t, "")
	withKeys := sidecarConfig(t, keysConfig(t, w.keyA))
	fileOver := "file /zeros/0.txt is 33554433 bytes unpacked, over the limit of 33554432 bytes (32 MiB) a file"
	sumOver := fmt.Sprintf("the files up to /zeros/2.txt sum to %d bytes unpacked, over the limit of 67108864 bytes (64 MiB) a bundle", sum)
	for _, tc := range []struct {
		note   string
		args   []string
		stderr string
	}{
		{
			note:   "a file over 32 MiB, --verification-key",
			args:   []string{"--config-file", config, "--verification-key", w.keyA + ".pub", "--bundle", bigFile},
			stderr: "error: bundle " + bigFile + " refused: " + fileOver + "\n",
		},
		{
			note:   "files over 64 MiB, the key under keys:",
			args:   []string{"--config-file", withKeys, "--bundle", manyFiles},
			stderr: "error: bundle " + manyFiles + " refused: " + sumOver + "\n",
		},
		{
			note:   "files over 64 MiB, a .tar.gz without --bundle, no key",
			args:   []string{"--config-file", config, manyFiles},
			stderr: "error: bundle " + manyFiles + " refused: " + sumOver + "\n",
		},
		{
			note:   "files over 64 MiB, --skip-verify",
			args:   []string{"--config-file", config, "--skip-verify", "--bundle", manyFiles},
			stderr: "error: bundle " + manyFiles + " refused: " + sumOver + "\n",
		},
		{
			// OPA loads a .tar.gz under a directory as a bundle.
			note:   "files over 64 MiB, a .tar.gz in a directory, --skip-verify",
			args:   []string{"--config-file", config, "--skip-verify", inDir},
			stderr: "error: bundle " + filepath.Join(inDir, "sub", "many-files.tar.gz") + " refused: " + sumOver + "\n",
		},
		{
			note:   "a bundle directory over 64 MiB",
			args:   []string{"--config-file", config, "--verification-key", w.keyA + ".pub", "--bundle", bigDir},
			stderr: "error: bundle " + bigDir + " refused: the files up to " + filepath.Join(bigDir, "zeros", "2.json") + " sum to 94371840 bytes unpacked, over the limit of 67108864 bytes (64 MiB) a bundle\n",
		},
	} {
		t.Run(tc.note, func(t *testing.T) {
			stdout, stderr := runRefused(t, w.dir, tc.args...)
			if stdout != "" || stderr != tc.stderr {
				t.Fatalf("stdout %q, stderr:\n got %q\nwant %q", stdout, stderr, tc.stderr)
			}
		})
	}
}

// A delta bundle (a manifest of type delta and a patch.json) carries no
// signature. OPA refuses one from a source with a signing block, unless
// the block sets allow_unsigned_delta_bundles: then whoever serves bundles
// could patch data.pat.settings without the key, and a sidecar activated
// it (black-box: octo-org's approval requirement turned off by an unsigned
// delta). A sidecar does not start with that opt-out, from the file or
// from --set; without it, the delta is refused and the signed bundle
// keeps serving.
func TestSidecarRefusesUnsignedDeltaBundles(t *testing.T) {
	dir, key, build := signedExampleBundles(t)
	good := build("good.tar.gz", "r1")
	delta := filepath.Join(dir, "delta.tar.gz")
	tarball := bundleRepack(t, map[string][]byte{
		"/.manifest":  []byte(`{"revision": "delta-1", "roots": ["pat", "system/log"], "type": "delta", "rego_version": 1}`),
		"/patch.json": []byte(`{"data": [{"op": "upsert", "path": "/pat/settings/organizations/octo-org/fine_grained_approval", "value": "disable"}]}`),
	}, func(_ string, b []byte) []byte { return b })
	if err := os.WriteFile(delta, tarball, 0o644); err != nil {
		t.Fatal(err)
	}
	server := newBundleServer(t)
	config := downloadingSidecarConfig(t, server, key)
	raw, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	optOut := writeFile(t, t.TempDir(), "config.yaml", strings.Replace(string(raw), "signing: {keyid: pat}", "signing: {keyid: pat, allow_unsigned_delta_bundles: true}", 1))
	want := "error: a bundle source would activate unsigned delta bundles: bundles.pat.signing.allow_unsigned_delta_bundles is true, and a delta bundle carries no signature, so whoever serves bundles could change the policy's data (data.pat.settings) without the signing key; remove it: opa-pat bundle build makes signed snapshot bundles only\n"
	for _, tc := range []struct {
		note string
		args []string
	}{
		{note: "in the file", args: []string{"--config-file", optOut}},
		{note: "from --set", args: []string{"--config-file", config, "--set", "bundles.pat.signing.allow_unsigned_delta_bundles=true"}},
	} {
		t.Run(tc.note, func(t *testing.T) {
			stdout, stderr := runRefused(t, dir, tc.args...)
			if stdout != "" || stderr != want {
				t.Fatalf("stdout %q, stderr:\n got %q\nwant %q", stdout, stderr, want)
			}
		})
	}
	t.Run("without it: refused, the signed bundle serves", func(t *testing.T) {
		server.serve(t, good)
		s := startSignedSidecar(t, dir, "--config-file", config)
		s.waitHealthy(t)
		server.serve(t, delta)
		s.waitLog(t, "Bundle load failed: delta bundles do not support signature verification")
		if got := s.get(t, "/v1/data/pat/settings/organizations/octo-org/fine_grained_approval"); got != `{"result":"require"}` {
			t.Fatalf("octo-org's fine_grained_approval: %s; want the signed settings'", got)
		}
	})
}
