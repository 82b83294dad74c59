package tests

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opa-pat/opa-pat/bundle/bundletest"
)

const bundleSettings = `{
  "enterprises": {"acme": {"owners": ["alice"], "fine_grained_max_lifetime_days": 90}},
  "organizations": {"octo-org": {"enterprise": "acme", "classic_access": "restrict"}}
}`

const bundlePolicy = `package pat

default allow := false

allow if {
	info := pat.token(input.credential.token)
	info.found
}

restricted contains org if {
	some org, s in data.pat.settings.organizations
	s.classic_access == "restrict"
}
`

// signingWorld is a policy tree, a settings file and two key pairs.
type signingWorld struct {
	dir      string
	rego     string
	settings string
	keyA     string // PREFIX of key pair A
	keyB     string
}

func newSigningWorld(t *testing.T) *signingWorld {
	t.Helper()
	dir := t.TempDir()
	w := &signingWorld{dir: dir, rego: filepath.Join(dir, "rego"), settings: filepath.Join(dir, "settings.json"),
		keyA: filepath.Join(dir, "a"), keyB: filepath.Join(dir, "b")}
	files := map[string]string{
		".opa-manifest":          `{"roots": ["pat"], "rego_version": 1, "metadata": {"name": "e2e"}}`,
		"rego/pat/pat.rego":      bundlePolicy,
		"rego/pat/pat_test.rego": "package pat_test\n\ntest_nothing if true\n",
		"rego/capabilities.json": `{}`,
		"settings.json":          bundleSettings,
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	w.run(t, 0, "keys", "generate", "--output-prefix", w.keyA)
	w.run(t, 0, "keys", "generate", "--output-prefix", w.keyB)
	return w
}

// run runs opa-pat in the world's directory with COSIGN_PASSWORD set and
// checks the exit status; it returns stdout and stderr.
func (w *signingWorld) run(t *testing.T, wantExit int, args ...string) (string, string) {
	t.Helper()
	return runSigning(t, w.dir, []string{"COSIGN_PASSWORD=e2e"}, wantExit, args...)
}

func runSigning(t *testing.T, dir string, env []string, wantExit int, args ...string) (string, string) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if e, ok := err.(*exec.ExitError); ok {
		code = e.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if code != wantExit {
		t.Fatalf("opa-pat %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, wantExit, stdout.String(), stderr.String())
	}
	return stdout.String(), stderr.String()
}

// build makes a bundle signed with key PREFIX and returns its path.
func (w *signingWorld) build(t *testing.T, name, prefix string) string {
	t.Helper()
	out := filepath.Join(w.dir, name)
	w.run(t, 0, "bundle", "build", "--settings", w.settings, "--key", prefix+".key", "--output", out, w.rego)
	return out
}

func TestKeysGenerate(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "cosign")
	stdout, _ := runSigning(t, dir, []string{"COSIGN_PASSWORD=pw"}, 0, "keys", "generate", "--output-prefix", prefix)
	if want := fmt.Sprintf("Private key written to %s.key\nPublic key written to %s.pub\n", prefix, prefix); stdout != want {
		t.Fatalf("stdout %q, want %q", stdout, want)
	}
	key, _ := os.ReadFile(prefix + ".key")
	pub, _ := os.ReadFile(prefix + ".pub")
	if !bytes.HasPrefix(key, []byte("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n")) || !bytes.HasPrefix(pub, []byte("-----BEGIN PUBLIC KEY-----\n")) {
		t.Fatalf("key files:\n%s\n%s", key, pub)
	}
	if fi, _ := os.Stat(prefix + ".key"); fi.Mode().Perm() != 0o600 {
		t.Errorf("private key mode %v, want 0600", fi.Mode().Perm())
	}

	for _, tc := range []struct {
		note   string
		env    []string
		args   []string
		stderr string
	}{
		{note: "existing files", env: []string{"COSIGN_PASSWORD=pw"}, args: []string{"--output-prefix", prefix},
			stderr: fmt.Sprintf("error: %s.key exists: refusing to overwrite it (use --force)\n", prefix)},
		{note: "no password", args: []string{"--output-prefix", filepath.Join(dir, "other")},
			stderr: "error: key password: COSIGN_PASSWORD is not set\n"},
		{note: "no prefix", env: []string{"COSIGN_PASSWORD=pw"},
			stderr: "error: --output-prefix: give the key files' path prefix\n"},
	} {
		t.Run(tc.note, func(t *testing.T) {
			env := tc.env
			if env == nil {
				env = []string{"COSIGN_PASSWORD="}
			}
			cmd := exec.Command(binary(t), append([]string{"keys", "generate"}, tc.args...)...)
			cmd.Env = slices.DeleteFunc(os.Environ(), func(e string) bool { return strings.HasPrefix(e, "COSIGN_PASSWORD=") })
			if tc.env != nil {
				cmd.Env = append(cmd.Env, env...)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Run(); err == nil {
				t.Fatal("exit 0")
			}
			if stderr.String() != tc.stderr {
				t.Fatalf("stderr %q, want %q", stderr.String(), tc.stderr)
			}
		})
	}
}

func TestBundleBuildAndVerify(t *testing.T) {
	w := newSigningWorld(t)
	out := filepath.Join(w.dir, "bundle.tar.gz")
	stdout, _ := w.run(t, 0, "bundle", "build", "--settings", w.settings, "--key", w.keyA+".key", "--output", out, "--format", "json", w.rego)
	var built struct {
		Modules  []string       `json:"modules"`
		Metadata map[string]any `json:"metadata"`
	}
	if err := json.Unmarshal([]byte(stdout), &built); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	if !slices.Equal(built.Modules, []string{"pat/pat.rego"}) || built.Metadata["name"] != "e2e" || built.Metadata["settings_sha256"] == nil {
		t.Fatalf("build output %s", stdout)
	}
	if _, err := os.Stat(out + ".sigstore.json"); err != nil {
		t.Fatal(err)
	}

	stdout, _ = w.run(t, 0, "bundle", "verify", "--key", w.keyA+".pub", out)
	if !strings.HasPrefix(stdout, fmt.Sprintf("Verified %s: OPA signature (ES256), cosign signature (%s.sigstore.json), manifest (revision sha256:", out, out)) {
		t.Fatalf("stdout %q", stdout)
	}
}

func TestBundleBuildRefuses(t *testing.T) {
	w := newSigningWorld(t)
	for _, tc := range []struct {
		note     string
		settings string
		policy   string
		stderr   string
	}{
		{
			note:     "an unknown value",
			settings: `{"organizations": {"octo-org": {"classic_access": "maybe"}}}`,
			stderr:   `error: settings: organizations.octo-org.classic_access: "maybe" is not one of allow, restrict`,
		},
		{
			note:     "a lifetime outside 1..366",
			settings: `{"enterprises": {"acme": {"classic_max_lifetime_days": 400}}}`,
			stderr:   `error: settings: enterprises.acme.classic_max_lifetime_days: 400 is not between 1 and 366`,
		},
		{
			note:     "an unknown field",
			settings: `{"enterprises": {"acme": {"owner": ["alice"]}}}`,
			stderr:   `error: settings: enterprises.acme.owner: unknown field (known: classic_access, classic_max_lifetime_days, exempt_administrators, fine_grained_access, fine_grained_approval, fine_grained_max_lifetime_days, fine_grained_opt_in, owners)`,
		},
		{
			note:     "a lone surrogate",
			settings: `{"organizations": {"octo-org": {"classic_access": "allow"}, "evil\udc00": {"classic_access": "restrict"}}}`,
			stderr:   `error: settings: organizations: a key with a lone UTF-16 surrogate, \udc00, at line 1, column 66: it stands for no character, and would be read as U+FFFD; write the character itself, or both halves of a surrogate pair`,
		},
		{
			note:   "a broken policy",
			policy: "package pat\n\nx := pat.tokn(1)\n",
			stderr: `error: policy: 1 error occurred: pat/broken.rego:3: rego_type_error: undefined function pat.tokn`,
		},
	} {
		t.Run(tc.note, func(t *testing.T) {
			settings := w.settings
			if tc.settings != "" {
				settings = filepath.Join(t.TempDir(), "settings.json")
				if err := os.WriteFile(settings, []byte(tc.settings), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if tc.policy != "" {
				p := filepath.Join(w.rego, "pat", "broken.rego")
				if err := os.WriteFile(p, []byte(tc.policy), 0o644); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { os.Remove(p) })
			}
			out := filepath.Join(t.TempDir(), "b.tar.gz")
			_, stderr := w.run(t, 1, "bundle", "build", "--settings", settings, "--key", w.keyA+".key", "--output", out, w.rego)
			if stderr != tc.stderr+"\n" {
				t.Fatalf("stderr:\n got %q\nwant %q", stderr, tc.stderr+"\n")
			}
			if _, err := os.Stat(out); err == nil {
				t.Fatal("a refused build wrote a bundle")
			}
		})
	}
}

// The repository's own policy, manifest and example settings build and verify.
func TestBundleBuildRepositoryPolicy(t *testing.T) {
	root := repoRoot()
	settings := filepath.Join(root, "examples", "settings.json")
	if _, err := os.Stat(settings); err != nil {
		settings = filepath.Join(t.TempDir(), "settings.json")
		if err := os.WriteFile(settings, []byte(bundleSettings), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	prefix := filepath.Join(dir, "k")
	env := []string{"COSIGN_PASSWORD=pw"}
	runSigning(t, root, env, 0, "keys", "generate", "--output-prefix", prefix)
	out := filepath.Join(dir, "bundle.tar.gz")
	runSigning(t, root, env, 0, "bundle", "build", "--settings", settings, "--key", prefix+".key", "--output", out)
	runSigning(t, root, env, 0, "bundle", "verify", "--key", prefix+".pub", out)
	files := bundleTarFiles(t, out)
	for name := range files {
		if strings.HasSuffix(name, "_test.rego") || strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "capabilities.json") {
			t.Errorf("%s is in the bundle", name)
		}
	}
	for _, want := range []string{"/.manifest", "/.signatures.json", "/data.json", "/pat/pat.rego"} {
		if _, ok := files[want]; !ok {
			t.Errorf("%s is missing from the bundle", want)
		}
	}
}

// tampered variants of a signed bundle, each with the message verify gives.
type tamperCase struct {
	note      string
	bundle    string // path of the variant; its sigstore bundle beside it, unless removed
	stderr    string // exact, after "error: PATH refused: "
	inSidecar string // what a sidecar with keys: logs refusing it; "": it loads the same signed files
	withFlag  string // what `run --verification-key --bundle` says refusing it; "": it starts
}

func tamperCases(t *testing.T, w *signingWorld, good string) []tamperCase {
	t.Helper()
	goodBytes, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	sigstore, err := os.ReadFile(good + ".sigstore.json")
	if err != nil {
		t.Fatal(err)
	}
	variant := func(name string, tarball []byte, withSigstore bool) string {
		p := filepath.Join(w.dir, name)
		if err := os.WriteFile(p, tarball, 0o644); err != nil {
			t.Fatal(err)
		}
		if withSigstore {
			if err := os.WriteFile(p+".sigstore.json", sigstore, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}
	signedDigest := bundleSHA256(goodBytes)
	notSigned := func(b []byte) string {
		return fmt.Sprintf("cosign signature: the tarball is not the one that was signed: its sha256 is %s, the signed sha256 is %s", bundleSHA256(b), signedDigest)
	}

	files := bundleTarFiles(t, good)
	evilPolicy := strings.Replace(bundlePolicy, "default allow := false", "default allow := true", 1)
	changedFile := bundleRepack(t, files, func(name string, b []byte) []byte {
		if name == "/pat/pat.rego" {
			return []byte(evilPolicy)
		}
		return b
	})
	changedData := bundleRepack(t, files, func(name string, b []byte) []byte {
		if name == "/data.json" {
			return bytes.Replace(b, []byte(`"restrict"`), []byte(`"allow"`), 1)
		}
		return b
	})
	noSignatures := bundleRepack(t, files, func(name string, b []byte) []byte {
		if name == "/.signatures.json" {
			return nil
		}
		return b
	})
	trailer := bytes.Clone(goodBytes)
	trailer[len(trailer)-6] ^= 0x01 // gzip's CRC-32: OPA reads the same files

	byB := w.build(t, "by-b.tar.gz", w.keyB)
	goodPolicyDigest := bundleSHA256([]byte(bundlePolicy))

	missing := variant("no-sigstore.tar.gz", goodBytes, false)
	return []tamperCase{
		{
			note:     "a changed byte in the tarball",
			bundle:   variant("trailer.tar.gz", trailer, true),
			stderr:   notSigned(trailer),
			withFlag: "cosign signature: the tarball is not the one that was signed",
		},
		{
			note:      "a changed file inside",
			bundle:    variant("changed-file.tar.gz", changedFile, true),
			stderr:    notSigned(changedFile) + fmt.Sprintf("; opa signature: pat/pat.rego: digest mismatch (want: %s, got: %s)", goodPolicyDigest, bundleSHA256([]byte(evilPolicy))),
			inSidecar: "pat/pat.rego: digest mismatch",
			withFlag:  "cosign signature: the tarball is not the one that was signed",
		},
		{
			note:      "changed settings inside",
			bundle:    variant("changed-data.tar.gz", changedData, true),
			stderr:    "PREFIX" + notSigned(changedData) + "; opa signature: data.json: digest mismatch",
			inSidecar: "data.json: digest mismatch",
			withFlag:  "cosign signature: the tarball is not the one that was signed",
		},
		{
			note:      "no .signatures.json",
			bundle:    variant("no-signatures.tar.gz", noSignatures, true),
			stderr:    notSigned(noSignatures) + "; opa signature: bundle missing .signatures.json file",
			inSidecar: "bundle missing .signatures.json file",
			withFlag:  "cosign signature: the tarball is not the one that was signed",
		},
		{
			note:      "signed by another key",
			bundle:    byB,
			stderr:    "PREFIXcosign signature: signed by another key (key hint ",
			inSidecar: "failed to verify JWT signature",
			withFlag:  "cosign signature: signed by another key",
		},
		{
			note:   "no sigstore bundle",
			bundle: missing,
			stderr: fmt.Sprintf("cosign signature: the sigstore bundle %s.sigstore.json is missing", missing),
		},
	}
}

func TestBundleVerifyRefusesTampering(t *testing.T) {
	w := newSigningWorld(t)
	good := w.build(t, "good.tar.gz", w.keyA)
	for _, tc := range tamperCases(t, w, good) {
		t.Run(tc.note, func(t *testing.T) {
			_, stderr := w.run(t, 1, "bundle", "verify", "--key", w.keyA+".pub", tc.bundle)
			stderr = strings.TrimSuffix(stderr, "\n")
			head := fmt.Sprintf("error: %s refused: ", tc.bundle)
			if want, ok := strings.CutPrefix(tc.stderr, "PREFIX"); ok {
				if !strings.HasPrefix(stderr, head+want) || strings.Contains(stderr, "\n") {
					t.Fatalf("stderr:\n got %q\nwant a line starting %q", stderr, head+want)
				}
				return
			}
			if stderr != head+tc.stderr {
				t.Fatalf("stderr:\n got %q\nwant %q", stderr, head+tc.stderr)
			}
		})
	}
}

// A sidecar configured with the public key under keys: serves the signed
// bundle and refuses every tampered or unsigned one, although the config has
// no signing block (stock OPA would load an unsigned bundle there).
func TestSidecarRefusesUnsignedAndTamperedBundles(t *testing.T) {
	w := newSigningWorld(t)
	good := w.build(t, "good.tar.gz", w.keyA)
	pub, err := os.ReadFile(w.keyA + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	config := func(t *testing.T, bundlePath string) string {
		t.Helper()
		cfg, _ := json.Marshal(map[string]any{
			"keys":    map[string]any{"default": map[string]any{"key": string(pub), "algorithm": "ES256"}},
			"bundles": map[string]any{"authz": map[string]any{"resource": "file://" + bundlePath}},
		})
		p := filepath.Join(t.TempDir(), "config.json")
		if err := os.WriteFile(p, cfg, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}

	t.Run("signed: served", func(t *testing.T) {
		s := startSignedSidecar(t, w.dir, "--config-file", config(t, good))
		s.waitHealthy(t)
		if got := s.get(t, "/v1/data/pat/restricted"); got != `{"result":["octo-org"]}` {
			t.Fatalf("data.pat.restricted: %s", got)
		}
	})
	for _, tc := range tamperCases(t, w, good) {
		if tc.inSidecar == "" {
			continue // OPA reads the same signed files; bundle verify refuses it
		}
		t.Run(tc.note+": refused", func(t *testing.T) {
			s := startSignedSidecar(t, w.dir, "--config-file", config(t, tc.bundle))
			s.waitLog(t, "Bundle load failed: "+tc.inSidecar)
			if code := s.waitListening(t, "/health?bundles"); code != http.StatusInternalServerError {
				t.Fatalf("health %d with a refused bundle", code)
			}
		})
	}
	t.Run("unsigned bundle from stock opa build: refused", func(t *testing.T) {
		plain := filepath.Join(t.TempDir(), "plain.tar.gz")
		runSigning(t, w.dir, nil, 0, "build", "-b", w.rego, "-o", plain, "--ignore", "*_test.rego", "--ignore", "capabilities.json")
		s := startSignedSidecar(t, w.dir, "--config-file", config(t, plain))
		s.waitLog(t, "Bundle load failed: bundle missing .signatures.json file")
	})
}

// With --verification-key, OPA's own flag, local bundles are verified at
// start: a refused bundle stops the sidecar with a one-line error.
func TestSidecarVerificationKeyFlag(t *testing.T) {
	w := newSigningWorld(t)
	good := w.build(t, "good.tar.gz", w.keyA)
	flags := []string{"run", "--server", "--addr", "127.0.0.1:0", "--verification-key", w.keyA + ".pub", "--signing-alg", "ES256", "--bundle"}

	s := startSignedSidecar(t, w.dir, "--verification-key", w.keyA+".pub", "--signing-alg", "ES256", "--bundle", good)
	s.waitHealthy(t)
	// --signing-alg may be left out: a cosign key means ES256.
	s = startSignedSidecar(t, w.dir, "--verification-key", w.keyA+".pub", "--bundle", good)
	s.waitHealthy(t)

	for _, tc := range tamperCases(t, w, good) {
		if tc.withFlag == "" {
			continue // the signed files, unchanged: it starts
		}
		t.Run(tc.note, func(t *testing.T) {
			stdout, stderr := w.run(t, 1, append(slices.Clone(flags), tc.bundle)...)
			want := fmt.Sprintf("error: bundle %s refused: %s", tc.bundle, tc.withFlag)
			if !strings.HasPrefix(stderr, want) || stdout != "" {
				t.Fatalf("stderr %q, stdout %q; want stderr starting %q", stderr, stdout, want)
			}
		})
	}
	// Without a sigstore bundle beside it, OPA's own check refuses.
	for _, tc := range []struct{ note, from, want string }{
		{note: "a changed file, no sigstore bundle", from: "changed-file.tar.gz", want: "pat/pat.rego: digest mismatch"},
		{note: "no .signatures.json, no sigstore bundle", from: "no-signatures.tar.gz", want: "bundle missing .signatures.json file"},
	} {
		t.Run(tc.note, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(w.dir, tc.from))
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(t.TempDir(), tc.from)
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			stdout, stderr := w.run(t, 1, append(slices.Clone(flags), p)...)
			want := "error: load error: bundle " + p + ": " + tc.want
			if stdout != "" || !strings.HasPrefix(stderr, want) {
				t.Fatalf("stdout %q, stderr %q: want nothing on stdout and stderr starting %q", stdout, stderr, want)
			}
		})
	}
}

// The design's invocation: the key under keys: in the configuration and a
// local bundle with --bundle. Stock OPA would load the local bundle without
// verifying it; opa-pat verifies it with the configured key (the only one, or
// the one the signature's key id names).
func TestSidecarKeysWithLocalBundle(t *testing.T) {
	w := newSigningWorld(t)
	good := w.build(t, "good.tar.gz", w.keyA)
	keyConfig := func(t *testing.T, names map[string]string) string {
		t.Helper()
		var b strings.Builder
		b.WriteString("keys:\n")
		for _, name := range slices.Sorted(maps.Keys(names)) {
			pub, err := os.ReadFile(names[name] + ".pub")
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "  %s:\n    algorithm: ES256\n    key: |\n      %s\n", name, strings.ReplaceAll(strings.TrimSpace(string(pub)), "\n", "\n      "))
		}
		p := filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	oneKey := keyConfig(t, map[string]string{"pat": w.keyA})
	twoKeys := keyConfig(t, map[string]string{"pat-old": w.keyA, "pat-new": w.keyB})

	t.Run("signed: served", func(t *testing.T) {
		s := startSignedSidecar(t, w.dir, "--config-file", oneKey, "--bundle", good)
		s.waitHealthy(t)
		if got := s.get(t, "/v1/data/pat/restricted"); got != `{"result":["octo-org"]}` {
			t.Fatalf("data.pat.restricted: %s", got)
		}
	})
	t.Run("two keys, the signature's key id names one: served", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "new.tar.gz")
		w.run(t, 0, "bundle", "build", "--settings", w.settings, "--key", w.keyB+".key", "--key-id", "pat-new", "--output", out, w.rego)
		s := startSignedSidecar(t, w.dir, "--config-file", twoKeys, "--bundle", out)
		s.waitHealthy(t)
	})
	for _, tc := range tamperCases(t, w, good) {
		if tc.withFlag == "" {
			continue
		}
		t.Run(tc.note+": refused", func(t *testing.T) {
			_, stderr := w.run(t, 1, "run", "--server", "--addr", "127.0.0.1:0", "--config-file", oneKey, "--bundle", tc.bundle)
			want := fmt.Sprintf("error: bundle %s refused: %s", tc.bundle, tc.withFlag)
			if !strings.HasPrefix(stderr, want) {
				t.Fatalf("stderr %q, want it to start %q", stderr, want)
			}
		})
	}
	for _, tc := range []struct{ note, config, bundle, want string }{
		{note: "changed file, no sigstore bundle: OPA refuses", config: oneKey, bundle: "changed-file.tar.gz", want: "pat/pat.rego: digest mismatch"},
		{note: "unsigned: OPA refuses", config: oneKey, bundle: "no-signatures.tar.gz", want: "bundle missing .signatures.json file"},
		{note: "a key id keys: does not name", config: twoKeys, bundle: "good.tar.gz",
			want: `refused: it is signed with key id "default", which keys: does not name (keys: pat-new, pat-old)`},
	} {
		t.Run(tc.note, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(w.dir, tc.bundle))
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(t.TempDir(), tc.bundle)
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			stdout, stderr := w.run(t, 1, "run", "--server", "--addr", "127.0.0.1:0", "--config-file", tc.config, "--bundle", p)
			if stdout != "" || !strings.HasPrefix(stderr, "error: ") || !strings.Contains(stderr, tc.want) {
				t.Fatalf("stdout %q, stderr %q: want nothing on stdout and an error on stderr that says %q", stdout, stderr, tc.want)
			}
		})
	}
	// OPA's --watch reloads a changed file without verifying it: a tampered
	// bundle copied over the signed one became the policy.
	const watchRefused = "error: --watch reloads local paths without verifying their signatures, so it is refused while local bundles are verified: " +
		"serve the bundle from a bundle service (bundles: with a signing block) to update a verified policy, or restart the sidecar after replacing the file\n"
	for _, tc := range []struct {
		note string
		args []string
	}{
		{note: "--watch with keys: refused", args: []string{"--config-file", oneKey}},
		{note: "--watch with --verification-key: refused", args: []string{"--verification-key", w.keyA + ".pub"}},
	} {
		t.Run(tc.note, func(t *testing.T) {
			args := append([]string{"run", "--server", "--addr", "127.0.0.1:0", "--watch"}, tc.args...)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, binary(t), append(args, "--bundle", good)...)
			cmd.Dir = w.dir
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if ctx.Err() != nil {
				t.Fatalf("the sidecar started and served; want it refused\nstderr: %s", stderr.String())
			}
			if e, ok := err.(*exec.ExitError); !ok || e.ExitCode() != 1 || stdout.String() != "" || stderr.String() != watchRefused {
				t.Fatalf("%v, stdout %q, stderr:\n got %q\nwant %q", err, stdout.String(), stderr.String(), watchRefused)
			}
		})
	}
	t.Run("--watch with --skip-verify: served", func(t *testing.T) {
		s := startSignedSidecar(t, w.dir, "--config-file", oneKey, "--skip-verify", "--watch", "--bundle", good)
		s.waitHealthy(t)
	})
	t.Run("a directory: refused", func(t *testing.T) {
		_, stderr := w.run(t, 1, "run", "--server", "--addr", "127.0.0.1:0", "--config-file", oneKey, "--bundle", w.rego)
		want := fmt.Sprintf("error: keys are configured, so local paths must be signed bundle files: %s: read %s: is a directory (or pass --skip-verify to load it unverified)\n", w.rego, w.rego)
		if stderr != want {
			t.Fatalf("stderr:\n got %q\nwant %q", stderr, want)
		}
	})
}

type signedSidecar struct {
	addr string
	log  *syncBuffer
	cmd  *exec.Cmd
}

// startSignedSidecar runs `opa-pat run --server` on a free port until the test ends.
func startSignedSidecar(t *testing.T, dir string, args ...string) *signedSidecar {
	t.Helper()
	addr := freeAddr(t)
	s := &signedSidecar{addr: addr, log: &syncBuffer{}}
	cmd := exec.Command(binary(t), append([]string{"run", "--server", "--addr", addr, "--log-level", "debug"}, args...)...)
	s.cmd = cmd
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("sidecar log:\n%s", s.log.String())
		}
	})
	return s
}

func (s *signedSidecar) status(t *testing.T, path string) int {
	t.Helper()
	resp, err := http.Get("http://" + s.addr + path)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (s *signedSidecar) get(t *testing.T, path string) string {
	t.Helper()
	resp, err := http.Get("http://" + s.addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b))
}

// waitListening polls path until the server answers (it loads bundles
// before it listens) and returns the status.
func (s *signedSidecar) waitListening(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if code := s.status(t, path); code != 0 {
			return code
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the sidecar never listened")
	return 0
}

func (s *signedSidecar) waitHealthy(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if s.status(t, "/health?bundles") == http.StatusOK {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the sidecar did not become healthy")
}

func (s *signedSidecar) waitLog(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(s.log.String(), want) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the sidecar never logged %q", want)
}

func bundleSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func bundleTarFiles(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = b
	}
}

// bundleRepack writes files as a new tarball, edit deciding each file's new
// content (nil drops it).
func bundleRepack(t *testing.T, files map[string][]byte, edit func(string, []byte) []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := bundletest.WriteWithZeroFiles(&out, bundletest.Edited(files, edit)); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// Key rotation as docs/bundles.md describes it: a sidecar trusting two keys,
// with a signing block naming none, takes bundles signed by either, each
// under its own key id, and refuses a signature whose key id names the other
// key or no configured key.
func TestSidecarKeyRotation(t *testing.T) {
	w := newSigningWorld(t)
	pubA, _ := os.ReadFile(w.keyA + ".pub")
	pubB, _ := os.ReadFile(w.keyB + ".pub")
	signed := func(name, prefix, keyID string) string {
		out := filepath.Join(w.dir, name)
		w.run(t, 0, "bundle", "build", "--settings", w.settings, "--key", prefix+".key", "--key-id", keyID, "--output", out, w.rego)
		return out
	}
	config := func(t *testing.T, bundlePath string) string {
		t.Helper()
		cfg, _ := json.Marshal(map[string]any{
			"keys": map[string]any{
				"pat-old": map[string]any{"key": string(pubA), "algorithm": "ES256"},
				"pat-new": map[string]any{"key": string(pubB), "algorithm": "ES256"},
			},
			"bundles": map[string]any{"authz": map[string]any{"resource": "file://" + bundlePath, "signing": map[string]any{}}},
		})
		p := filepath.Join(t.TempDir(), "config.json")
		if err := os.WriteFile(p, cfg, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		note, prefix, keyID string
		refused             string // "": served
	}{
		{note: "old key", prefix: w.keyA, keyID: "pat-old"},
		{note: "new key", prefix: w.keyB, keyID: "pat-new"},
		{note: "new key under the old key's id", prefix: w.keyB, keyID: "pat-old", refused: "failed to verify JWT signature"},
		{note: "a key id no key has", prefix: w.keyB, keyID: "pat-next", refused: "verification key corresponding to ID pat-next not found"},
	} {
		t.Run(tc.note, func(t *testing.T) {
			b := signed(strings.ReplaceAll(tc.note, " ", "-")+".tar.gz", tc.prefix, tc.keyID)
			s := startSignedSidecar(t, w.dir, "--config-file", config(t, b))
			if tc.refused == "" {
				s.waitHealthy(t)
				return
			}
			s.waitLog(t, "Bundle load failed: "+tc.refused)
		})
	}
}

// bundleWithFirstEntry is bundleRepack(files) with one more entry first:
// hdr (its mode and size filled in) and content, of any type.
func bundleWithFirstEntry(t *testing.T, files map[string][]byte, hdr *tar.Header, content []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := bundletest.WriteWithFirstEntry(&out, hdr, content, files); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
