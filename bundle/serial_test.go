package bundle

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// git runs git in dir with a fixed identity and committer date, so that
// a commit is the same on every run.
func git(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t",
		"GIT_COMMITTER_EMAIL=t@example.com", "GIT_AUTHOR_DATE=@1767225600 +0000", "GIT_COMMITTER_DATE=@1767225600 +0000",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// manifestOf is the .manifest of a tarball.
func manifestOf(t *testing.T, tarball []byte) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(untar(t, tarball)["/.manifest"]))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func serialOf(t *testing.T, tarball []byte) any {
	t.Helper()
	meta, _ := manifestOf(t, tarball)["metadata"].(map[string]any)
	return meta[MetaSerial]
}

// The serial is --serial, else the committer time of a clean commit, else
// none; the same inputs build the same files.
func TestBuildSerial(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	rego := fixture(t)
	root := filepath.Dir(rego)

	if got := serialOf(t, build(t, BuildOptions{RegoDir: rego}).Tarball); got != nil {
		t.Fatalf("no git: serial %v, want none", got)
	}
	if got := serialOf(t, build(t, BuildOptions{RegoDir: rego, Serial: 42}).Tarball); got != json.Number("42") {
		t.Fatalf("--serial 42: serial %v", got)
	}

	git(t, root, "init", "-q")
	git(t, root, "add", ".")
	git(t, root, "commit", "-q", "-m", "policy")
	a, b := build(t, BuildOptions{RegoDir: rego}), build(t, BuildOptions{RegoDir: rego})
	if got := serialOf(t, a.Tarball); got != json.Number("1767225600") {
		t.Fatalf("a clean commit: serial %v, want its committer time 1767225600", got)
	}
	// The same files but .signatures.json, whose ECDSA signature is
	// randomized.
	fa, fb := untar(t, a.Tarball), untar(t, b.Tarball)
	delete(fa, "/.signatures.json")
	delete(fb, "/.signatures.json")
	if mustJSON(t, fa) != mustJSON(t, fb) {
		t.Fatal("two builds of one commit differ")
	}
	key, _ := testKeys(t)
	v, err := Verify(a.Tarball, a.Sigstore, key.Public)
	if err != nil || v.Serial != 1767225600 {
		t.Fatalf("Verify: %v, serial %v", err, v)
	}
	if got := serialOf(t, build(t, BuildOptions{RegoDir: rego, Serial: 7}).Tarball); got != json.Number("7") {
		t.Fatalf("--serial 7 over a commit: serial %v", got)
	}

	if err := os.WriteFile(filepath.Join(rego, "pat", "pat.rego"), []byte(fixturePolicy+"\nx := 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := serialOf(t, build(t, BuildOptions{RegoDir: rego}).Tarball); got != nil {
		t.Fatalf("a tree with changes: serial %v, want none", got)
	}
}

func TestBuildRefusesSerials(t *testing.T) {
	rego := fixture(t)
	for _, tc := range []struct {
		note     string
		serial   int64
		manifest string
		err      string
	}{
		{note: "negative", serial: -1, err: "serial -1: give an integer from 1 to 9007199254740991"},
		{note: "too large", serial: 1 << 53, err: "serial 9007199254740992: give an integer from 1 to 9007199254740991"},
		{note: "in the source manifest", manifest: `{"roots": ["pat"], "metadata": {"serial": 9}}`,
			err: "metadata.serial: the builder sets the serial (--serial, or the commit's time); remove it"},
	} {
		t.Run(tc.note, func(t *testing.T) {
			key, _ := testKeys(t)
			opts := BuildOptions{RegoDir: rego, Key: key, Settings: []byte(fullSettings), Serial: tc.serial, Capabilities: patCapabilities(t)}
			if tc.manifest != "" {
				opts.Manifest = filepath.Join(t.TempDir(), "m.json")
				if err := os.WriteFile(opts.Manifest, []byte(tc.manifest), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Build(opts)
			if err == nil || !strings.HasSuffix(err.Error(), tc.err) {
				t.Fatalf("Build: %v; want …%s", err, tc.err)
			}
		})
	}
}

// The serial is in the .manifest, which OPA's signature covers: a bundle
// whose serial was raised after signing is refused.
func TestVerifyRefusesAChangedSerial(t *testing.T) {
	b := build(t, BuildOptions{Serial: 100})
	changed := repack(t, b.Tarball, func(name string, content []byte) []byte {
		if name == "/.manifest" {
			return bytes.Replace(content, []byte(`"serial":100`), []byte(`"serial":900`), 1)
		}
		return content
	})
	if bytes.Equal(changed, b.Tarball) {
		t.Fatal("the serial was not changed")
	}
	key, _ := testKeys(t)
	_, err := Verify(changed, nil, key.Public)
	if err == nil || !strings.Contains(err.Error(), "opa signature: .manifest: digest mismatch") {
		t.Fatalf("Verify: %v; want the manifest's digest refused", err)
	}
}
