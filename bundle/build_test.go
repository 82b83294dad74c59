package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/opa-pat/opa-pat/bundle/bundletest"
	_ "github.com/opa-pat/opa-pat/plugin/builtins" // pat.token_prefixes, whose answer the mask check replaces
)

const fixtureManifest = `{"roots": ["pat"], "rego_version": 1, "metadata": {"name": "fixture"}}`

const fixturePolicy = `package pat

default allow := false

allow if {
	info := pat.token(input.credential.token)
	info.found
	data.pat.settings.organizations[input.resource.owner].classic_access == "allow"
}
`

// fixture writes a policy tree: ROOT/.opa-manifest and ROOT/rego with a
// policy, a test, a capabilities file and a Go file. It returns ROOT/rego.
func fixture(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		".opa-manifest":              fixtureManifest,
		"rego/pat/pat.rego":          fixturePolicy,
		"rego/pat/pat_test.rego":     "package pat_test\n\ntest_x if true\n",
		"rego/pat/sub/sub.rego":      "package pat.sub\n\nx := 1\n",
		"rego/capabilities.json":     `{"builtins": []}`,
		"rego/embed.go":              "package rego\n",
		"rego/.hidden/hidden.rego":   "package pat.hidden\n\nx := 1\n",
		"rego/pat/notes.md":          "# notes\n",
		"rego/pat/data.json":         `{"not": "included"}`,
		"rego/pat/sub/sub_test.rego": "package pat.sub_test\n\ntest_y if true\n",
	}
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(root, "rego")
}

var (
	keyOnce sync.Once
	keyA    *SigningKey
	keyB    *SigningKey
	keyErr  error
)

// testKeys are two cosign key pairs, made once per run (scrypt is slow).
func testKeys(t *testing.T) (a, b *SigningKey) {
	t.Helper()
	keyOnce.Do(func() {
		load := func() *SigningKey {
			priv, _, err := GenerateKeys([]byte("pw"))
			if err != nil {
				keyErr = err
				return nil
			}
			k, err := LoadSigningKey(priv, []byte("pw"))
			if err != nil {
				keyErr = err
			}
			return k
		}
		keyA, keyB = load(), load()
	})
	if keyErr != nil {
		t.Fatal(keyErr)
	}
	return keyA, keyB
}

// patCapabilities are the repository's capabilities, with the pat.* built-ins
// (the opa-pat binary has them registered; this package does not).
func patCapabilities(t *testing.T) *ast.Capabilities {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	caps, err := ast.LoadCapabilitiesFile(filepath.Join(filepath.Dir(file), "..", "rego", "capabilities.json"))
	if err != nil {
		t.Fatal(err)
	}
	return caps
}

func build(t *testing.T, opts BuildOptions) *Built {
	t.Helper()
	if opts.Capabilities == nil {
		opts.Capabilities = patCapabilities(t)
	}
	if opts.Key == nil {
		opts.Key, _ = testKeys(t)
	}
	if opts.Settings == nil {
		opts.Settings = []byte(fullSettings)
	}
	if opts.RegoDir == "" {
		opts.RegoDir = fixture(t)
	}
	b, err := Build(opts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// untar lists a tarball's files and their content.
func untar(t *testing.T, tarball []byte) map[string][]byte {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(tarball))
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

// repack rewrites a tarball with edit applied to each file; edit returns
// the new content, or nil to drop the file.
func repack(t *testing.T, tarball []byte, edit func(name string, b []byte) []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := bundletest.WriteWithZeroFiles(&out, bundletest.Edited(untar(t, tarball), edit)); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestBuildContents(t *testing.T) {
	b := build(t, BuildOptions{})
	files := untar(t, b.Tarball)
	var names []string
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	want := []string{"/.manifest", "/.signatures.json", "/data.json", "/pat/pat.rego", "/pat/sub/sub.rego"}
	if !slices.Equal(names, want) {
		t.Fatalf("files %v, want %v", names, want)
	}

	var data map[string]any
	if err := json.Unmarshal(files["/data.json"], &data); err != nil {
		t.Fatal(err)
	}
	var settings any
	_ = json.Unmarshal([]byte(fullSettings), &settings)
	if got, want := mustJSON(t, data), mustJSON(t, map[string]any{"pat": map[string]any{"settings": settings}}); got != want {
		t.Fatalf("data.json %s, want %s", got, want)
	}

	var m struct {
		Revision    string         `json:"revision"`
		Roots       []string       `json:"roots"`
		RegoVersion int            `json:"rego_version"`
		Metadata    map[string]any `json:"metadata"`
	}
	if err := json.Unmarshal(files["/.manifest"], &m); err != nil {
		t.Fatal(err)
	}
	settingsDigest, _ := SettingsDigest(settings)
	if !strings.HasPrefix(m.Revision, "sha256:") || len(m.Revision) != len("sha256:")+64 {
		t.Errorf("revision %q, want a content digest (no git here)", m.Revision)
	}
	if m.Metadata[MetaSettingsDigest] != settingsDigest || m.Metadata["name"] != "fixture" ||
		m.Metadata[MetaContentDigest] != strings.TrimPrefix(m.Revision, "sha256:") {
		t.Errorf("metadata %v", m.Metadata)
	}
	if !slices.Equal(m.Roots, []string{"pat"}) || m.RegoVersion != 1 {
		t.Errorf("manifest %+v", m)
	}
	if !bytes.Equal(files["/pat/pat.rego"], []byte(fixturePolicy)) {
		t.Error("pat/pat.rego changed on the way in")
	}

	// The same content gives the same revision; other settings another.
	again := build(t, BuildOptions{})
	other := build(t, BuildOptions{Settings: []byte(`{}`)})
	if again.Manifest.Revision != b.Manifest.Revision {
		t.Errorf("revision %s then %s for the same content", b.Manifest.Revision, again.Manifest.Revision)
	}
	if other.Manifest.Revision == b.Manifest.Revision {
		t.Error("other settings, same revision")
	}
	if r := build(t, BuildOptions{Revision: "v1.2.3"}).Manifest.Revision; r != "v1.2.3" {
		t.Errorf("revision %q, want the one given", r)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestBuildRefuses(t *testing.T) {
	keyA, _ := testKeys(t)
	for _, tc := range []struct {
		note  string
		files map[string]string // written into the fixture (relative to its root); "" deletes
		opts  BuildOptions
		err   string
	}{
		{
			note: "settings that break the schema",
			opts: BuildOptions{Settings: []byte(`{"organizations": {"octo-org": {"classic_access": "maybe"}}}`)},
			err:  `settings: organizations.octo-org.classic_access: "maybe" is not one of allow, restrict`,
		},
		{
			note:  "a syntax error",
			files: map[string]string{"rego/pat/broken.rego": "package pat\n\nx := \n"},
			err:   `policy: 2 errors occurred:; pat/broken.rego:4: rego_parse_error: unexpected eof token; x :=; ^; pat/broken.rego:4: rego_parse_error: unexpected eof token: expected rule value term (e.g., x := <VALUE> { ... }); x :=; ^`,
		},
		{
			note:  "an unknown function",
			files: map[string]string{"rego/pat/broken.rego": "package pat\n\nx := pat.nope(1)\n"},
			err:   `policy: 1 error occurred: pat/broken.rego:3: rego_type_error: undefined function pat.nope`,
		},
		{
			note:  "a package outside the roots",
			files: map[string]string{"rego/other/other.rego": "package other\n\nx := 1\n"},
			err:   `policy: other/other.rego: package data.other is outside the manifest's roots [pat]`,
		},
		{
			note:  "roots that do not own the settings",
			files: map[string]string{".opa-manifest": `{"roots": ["pat/envoy"]}`},
			err:   `manifest MANIFEST: roots [pat/envoy] do not cover pat/settings, where the settings go`,
		},
		{
			note:  "a root twice",
			files: map[string]string{".opa-manifest": `{"roots": ["pat", "pat", "system/log"]}`},
			err:   `manifest MANIFEST: roots "pat" and "pat" overlap: give each path once, and no root inside another ("" is every path)`,
		},
		{
			note:  "an empty root beside others",
			files: map[string]string{".opa-manifest": `{"roots": ["pat", "system/log", ""]}`},
			err:   `manifest MANIFEST: roots "pat" and "" overlap: give each path once, and no root inside another ("" is every path)`,
		},
		{
			note:  "a root inside another",
			files: map[string]string{".opa-manifest": `{"roots": ["pat", "/pat/envoy/"]}`},
			err:   `manifest MANIFEST: roots "pat" and "/pat/envoy/" overlap: give each path once, and no root inside another ("" is every path)`,
		},
		{
			note:  "a key twice",
			files: map[string]string{".opa-manifest": `{"roots": ["evil"], "roots": ["pat", "system/log"]}`},
			err:   `manifest MANIFEST: roots: duplicate field`,
		},
		{
			// "pat\ud800" would be the root "pat\ufffd" to OPA: a bundle
			// that owns neither what the file says nor the settings.
			note:  "a lone surrogate in a root",
			files: map[string]string{".opa-manifest": `{"roots": ["pat", "system/log\ud800"]}`},
			err:   `manifest MANIFEST: roots[1]: a lone UTF-16 surrogate, \ud800, at line 1, column 30: it stands for no character, and would be read as U+FFFD; write the character itself, or both halves of a surrogate pair`,
		},
		{
			note:  "a byte that is not UTF-8 in the metadata",
			files: map[string]string{".opa-manifest": "{\"roots\": [\"pat\"], \"metadata\": {\"name\": \"opa-pat \xff\"}}"},
			err:   `manifest MANIFEST: metadata.name: a byte that is not UTF-8, 0xff, at line 1, column 50: it would be read as U+FFFD; write the file in UTF-8`,
		},
		{
			note:  "per-file Rego versions",
			files: map[string]string{".opa-manifest": `{"roots": ["pat"], "rego_version": 1, "file_rego_versions": {"/pat/pat.rego": 0}}`},
			err:   `manifest MANIFEST: file_rego_versions: the policy is Rego v1 throughout; remove the entries`,
		},
		{
			note:  "wasm entries",
			files: map[string]string{".opa-manifest": `{"roots": ["pat"], "wasm": [{"entrypoint": "pat/allow", "module": "/policy.wasm"}]}`},
			err:   `manifest MANIFEST: wasm: opa-pat bundles hold Rego only; remove the wasm entries`,
		},
		{
			note:  "an unknown manifest field",
			files: map[string]string{".opa-manifest": `{"roots": ["pat"], "revison": "x"}`},
			err:   `manifest MANIFEST: json: unknown field "revison"`,
		},
		{
			note:  "no policy",
			files: map[string]string{"rego/pat/pat.rego": "", "rego/pat/sub/sub.rego": ""},
			err:   `policy directory REGO has no .rego files`,
		},
	} {
		t.Run(tc.note, func(t *testing.T) {
			dir := fixture(t)
			root := filepath.Dir(dir)
			for name, content := range tc.files {
				p := filepath.Join(root, name)
				if content == "" {
					if err := os.Remove(p); err != nil {
						t.Fatal(err)
					}
					continue
				}
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			opts := tc.opts
			opts.RegoDir, opts.Key, opts.Capabilities = dir, keyA, patCapabilities(t)
			if opts.Settings == nil {
				opts.Settings = []byte(fullSettings)
			}
			_, err := Build(opts)
			want := strings.NewReplacer("MANIFEST", filepath.Join(root, ManifestSource), "REGO", dir).Replace(tc.err)
			if err == nil || err.Error() != want {
				t.Fatalf("error:\n got %v\nwant %s", err, want)
			}
		})
	}
}

func TestFindManifest(t *testing.T) {
	dir := fixture(t)
	got, err := FindManifest(dir)
	if err != nil || got != filepath.Join(filepath.Dir(dir), ManifestSource) {
		t.Fatalf("got %q, %v", got, err)
	}
	// Without one beside the policy, the working directory's.
	bare := filepath.Join(t.TempDir(), "rego")
	wd := t.TempDir()
	if err := os.WriteFile(filepath.Join(wd, ManifestSource), []byte(fixtureManifest), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(wd)
	if got, err := FindManifest(bare); err != nil || got != filepath.Join(wd, ManifestSource) {
		t.Fatalf("got %q, %v", got, err)
	}
	if err := os.Remove(filepath.Join(wd, ManifestSource)); err != nil {
		t.Fatal(err)
	}
	_, err = FindManifest(bare)
	if want := fmt.Sprintf("no .opa-manifest in %s or the working directory (pass --manifest)", filepath.Dir(bare)); err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}

func TestVerify(t *testing.T) {
	keyA, keyB := testKeys(t)
	dir := fixture(t)
	good := build(t, BuildOptions{RegoDir: dir, Key: keyA})
	byB := build(t, BuildOptions{RegoDir: dir, Key: keyB})
	hintA, _ := KeyHint(keyA.Public)
	hintB, _ := KeyHint(keyB.Public)

	// The key hint in the envelope is not signed: it decides nothing.
	// B's signature over this very tarball, given A's hint, is still B's.
	bOverGood, err := SignBlob(keyB, good.Tarball)
	if err != nil {
		t.Fatal(err)
	}

	// A file of zeros one byte over the limit: 33 MiB that compress to 33 KB.
	huge := repack(t, good.Tarball, func(name string, b []byte) []byte {
		if name == "/pat/sub/sub.rego" {
			return make([]byte, MaxFileBytes+1)
		}
		return b
	})

	// The OPA signature's header made to say HS256: OPA's error alone
	// ("failed to unpack ECDSA signature") does not name the algorithm.
	hs256 := repack(t, good.Tarball, func(name string, b []byte) []byte {
		if name != "/.signatures.json" {
			return b
		}
		var sc struct {
			Signatures []string `json:"signatures"`
		}
		if err := json.Unmarshal(b, &sc); err != nil {
			t.Fatal(err)
		}
		_, rest, _ := strings.Cut(sc.Signatures[0], ".")
		sc.Signatures[0] = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","kid":"default"}`)) + "." + rest
		out, err := json.Marshal(sc)
		if err != nil {
			t.Fatal(err)
		}
		return out
	})

	flipped := bytes.Clone(good.Tarball)
	flipped[len(flipped)-5] ^= 0x01 // inside gzip's CRC-32 of the content
	flippedMiddle := bytes.Clone(good.Tarball)
	flippedMiddle[len(flippedMiddle)/2] ^= 0x01

	evil := []byte(strings.Replace(fixturePolicy, "default allow := false", "default allow := true", 1))
	changed := repack(t, good.Tarball, func(name string, b []byte) []byte {
		if name == "/pat/pat.rego" {
			return evil
		}
		return b
	})
	unsigned := repack(t, good.Tarball, func(name string, b []byte) []byte {
		if name == "/.signatures.json" {
			return nil
		}
		return b
	})
	extra := repack(t, good.Tarball, func(name string, b []byte) []byte {
		if name == "/pat/sub/sub.rego" {
			return []byte("package pat.sub\n\nx := 2\n")
		}
		return b
	})
	for _, tc := range []struct {
		note     string
		tarball  []byte
		sigstore []byte
		err      string
		prefix   bool // err is a prefix of the message
	}{
		{note: "as built", tarball: good.Tarball, sigstore: good.Sigstore},
		{
			note: "a changed byte in the tarball", tarball: flipped, sigstore: good.Sigstore,
			// gzip's trailer: OPA reads the same files, cosign refuses.
			err: fmt.Sprintf("cosign signature: the tarball is not the one that was signed: its sha256 is %s, the signed sha256 is %s",
				sha(flipped), sha(good.Tarball)),
		},
		{
			note: "a changed byte in the compressed data", tarball: flippedMiddle, sigstore: good.Sigstore,
			// What OPA then says depends on the byte: a corrupt stream, a
			// broken tar header or a file whose digest does not match.
			err: fmt.Sprintf("cosign signature: the tarball is not the one that was signed: its sha256 is %s, the signed sha256 is %s; opa signature: ",
				sha(flippedMiddle), sha(good.Tarball)),
			prefix: true,
		},
		{
			note: "a changed file inside", tarball: changed, sigstore: good.Sigstore,
			err: fmt.Sprintf("cosign signature: the tarball is not the one that was signed: its sha256 is %s, the signed sha256 is %s; opa signature: pat/pat.rego: digest mismatch (want: %s, got: %s)",
				sha(changed), sha(good.Tarball), sha([]byte(fixturePolicy)), sha(evil)),
		},
		{
			note: "another changed file inside", tarball: extra, sigstore: good.Sigstore,
			err: fmt.Sprintf("cosign signature: the tarball is not the one that was signed: its sha256 is %s, the signed sha256 is %s; opa signature: pat/sub/sub.rego: digest mismatch (want: %s, got: %s)",
				sha(extra), sha(good.Tarball), sha([]byte("package pat.sub\n\nx := 1\n")), sha([]byte("package pat.sub\n\nx := 2\n"))),
		},
		{
			note: "no .signatures.json", tarball: unsigned, sigstore: good.Sigstore,
			err: fmt.Sprintf("cosign signature: the tarball is not the one that was signed: its sha256 is %s, the signed sha256 is %s; opa signature: bundle missing .signatures.json file",
				sha(unsigned), sha(good.Tarball)),
		},
		{
			note: "signed by another key", tarball: byB.Tarball, sigstore: byB.Sigstore,
			err: fmt.Sprintf("cosign signature: signed by another key (key hint %s, want %s); opa signature: failed to verify JWT signature: invalid ECDSA signature", ShortHint(hintB), ShortHint(hintA)),
		},
		{
			note: "a file larger than MaxFileBytes", tarball: huge, sigstore: good.Sigstore,
			err: fmt.Sprintf("cosign signature: the tarball is not the one that was signed: its sha256 is %s, the signed sha256 is %s; size: file /pat/sub/sub.rego is %d bytes unpacked, over the limit of %d bytes (32 MiB) a file",
				sha(huge), sha(good.Tarball), MaxFileBytes+1, MaxFileBytes),
		},
		{
			note: "an OPA signature whose header says HS256", tarball: hs256, sigstore: good.Sigstore,
			err: fmt.Sprintf("cosign signature: the tarball is not the one that was signed: its sha256 is %s, the signed sha256 is %s; opa signature: signed HS256, want ES256: failed to verify JWT signature: invalid ECDSA signature",
				sha(hs256), sha(good.Tarball)),
		},
		{note: "another key's hint in the envelope of a good signature", tarball: good.Tarball, sigstore: withHint(t, good.Sigstore, hintB)},
		{
			note: "another key's signature with this key's hint", tarball: good.Tarball, sigstore: withHint(t, bOverGood, hintA),
			err:    "cosign signature: the signature does not verify with the key: ",
			prefix: true,
		},
		{
			note: "another key's signature over this tarball", tarball: good.Tarball, sigstore: bOverGood,
			err: fmt.Sprintf("cosign signature: signed by another key (key hint %s, want %s)", ShortHint(hintB), ShortHint(hintA)),
		},
		{
			note: "no sigstore bundle", tarball: good.Tarball, sigstore: nil,
			err: "cosign signature: the sigstore bundle is missing",
		},
		{
			note: "the sigstore bundle of another tarball", tarball: good.Tarball, sigstore: byB.Sigstore,
			err: fmt.Sprintf("cosign signature: the tarball is not the one that was signed: its sha256 is %s, the signed sha256 is %s", sha(good.Tarball), sha(byB.Tarball)),
		},
		{
			note: "a sigstore bundle that is not one", tarball: good.Tarball, sigstore: []byte(`{"mediaType": "nope"}`),
			err: "cosign signature: invalid sigstore bundle: error getting bundle version: validation error: unsupported media type: nope",
		},
		{
			note: "a changed signature in the sigstore bundle", tarball: good.Tarball, sigstore: corruptSignature(t, good.Sigstore),
			err: "cosign signature: the signature does not verify with the key: failed to verify signature: could not verify message: invalid signature when validating ASN.1 encoded signature",
		},
	} {
		t.Run(tc.note, func(t *testing.T) {
			v, err := Verify(tc.tarball, tc.sigstore, keyA.Public)
			if tc.err == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if v.Manifest.Revision != good.Manifest.Revision || !slices.Equal(v.Modules, []string{"pat/pat.rego", "pat/sub/sub.rego"}) {
					t.Fatalf("verified %+v", v)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrRefused) {
				t.Errorf("%v does not wrap ErrRefused", err)
			}
			if err.Error() != tc.err && !(tc.prefix && strings.HasPrefix(err.Error(), tc.err)) {
				t.Fatalf("error:\n got %s\nwant %s", err, tc.err)
			}
		})
	}
}

// corruptSignature changes the signature's last byte in a sigstore bundle.
// withHint is a sigstore bundle with its (unsigned) key hint replaced.
func withHint(t *testing.T, sigstore []byte, hint string) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(sigstore, &doc); err != nil {
		t.Fatal(err)
	}
	doc["verificationMaterial"].(map[string]any)["publicKey"].(map[string]any)["hint"] = hint
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func corruptSignature(t *testing.T, sigstore []byte) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(sigstore, &doc); err != nil {
		t.Fatal(err)
	}
	ms := doc["messageSignature"].(map[string]any)
	sig := ms["signature"].(string)
	// Change the last but one base64 character (all six of its bits are
	// signature bits; the last one's may be padding) to another character:
	// the check used to look at the last character instead, and left the
	// signature as it was whenever the one replaced already held the
	// replacement (1 run in 64).
	trimmed := strings.TrimRight(sig, "=")
	i := len(trimmed) - 2
	c := "A"
	if trimmed[i] == 'A' {
		c = "B"
	}
	ms["signature"] = trimmed[:i] + c + trimmed[i+1:] + sig[len(trimmed):]
	if ms["signature"] == sig {
		t.Fatal("the signature was not changed")
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Every file of the bundle is covered: one flipped byte in any of them, or
// a file added, and OPA's signature check refuses the bundle.
func TestVerifyEveryFileIsSigned(t *testing.T) {
	keyA, _ := testKeys(t)
	good := build(t, BuildOptions{Key: keyA})
	files := untar(t, good.Tarball)
	for name, content := range files {
		for _, at := range []int{0, len(content) / 2, len(content) - 2} {
			t.Run(fmt.Sprintf("%s byte %d", name, at), func(t *testing.T) {
				tampered := repack(t, good.Tarball, func(n string, b []byte) []byte {
					if n == name {
						b = bytes.Clone(b)
						b[at] ^= 0x20
					}
					return b
				})
				_, err := Verify(tampered, good.Sigstore, keyA.Public)
				if err == nil || !strings.Contains(err.Error(), "; opa signature: ") {
					t.Fatalf("got %v, want both signatures refused", err)
				}
			})
		}
	}
	t.Run("an added file", func(t *testing.T) {
		tampered := repack(t, good.Tarball, func(n string, b []byte) []byte { return b })
		tampered = appendFile(t, tampered, "/pat/extra.rego", []byte("package pat\n\nextra := true\n"))
		_, err := Verify(tampered, good.Sigstore, keyA.Public)
		if err == nil || !strings.HasSuffix(err.Error(), "; opa signature: file pat/extra.rego not included in bundle signature") {
			t.Fatalf("got %v", err)
		}
	})
}

// appendFile repacks a tarball with one more file.
func appendFile(t *testing.T, tarball []byte, name string, content []byte) []byte {
	t.Helper()
	files := untar(t, tarball)
	files[name] = content
	var out bytes.Buffer
	if err := bundletest.WriteWithZeroFiles(&out, files); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// The repository's own mask passes the check; masks that leave a credential
// are refused, naming the event and where the token is.
func TestBuildChecksTheMask(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	repo := filepath.Join(filepath.Dir(file), "..")
	b := build(t, BuildOptions{RegoDir: filepath.Join(repo, "rego"), Manifest: filepath.Join(repo, ManifestSource)})
	if !slices.Contains(b.Modules, "system/log/log.rego") {
		t.Fatalf("the repository's bundle has no mask: %v", b.Modules)
	}

	keyA, _ := testKeys(t)
	const drop = "\ndrop if contains(input.query, \"_\")\n"
	const headers = "\nmask contains \"/input/attributes/request/http/headers/authorization\"\n"
	const cache = "\nmask contains \"/nd_builtin_cache/pat.token\"\n"
	const note = "\nmask contains \"/input/attributes/request/http/headers/x-note\"\n"
	const dropCall = "\ndrop if contains(input.query, \"pat.token(\")\n"
	const adHocInput = "\nmask contains \"/input/a\"\n"
	const adHocResult = "\nmask contains \"/result\"\n"
	const query = "\nmask contains \"/input/parsed_query/access_token\"\n" +
		"mask contains {\"op\": \"upsert\", \"path\": \"/input/attributes/request/http/path\", \"value\": \"x\"}\n" +
		"mask contains {\"op\": \"upsert\", \"path\": \"/input/attributes/request/http/headers/:path\", \"value\": \"x\"}\n"
	for _, tc := range []struct {
		note, mask, err string
	}{
		{
			note: "a mask of another field",
			mask: "mask contains \"/input/password\"\n",
			err: "policy: the bundle's decision-log mask (package system.log) leaves the raw token of a direct decision (input.credential.token) " +
				"at /input/credential/token; erase it there, or leave system/log out of the bundle to keep the sidecar's own mask",
		},
		{
			note: "the credential but no header",
			mask: "mask contains \"/input/credential/token\"\n",
			err:  "the raw token of an ext_authz Check with a Bearer token at /input/attributes/request/http/headers/authorization",
		},
		{
			note: "the credential replaced by an upsert, but no query",
			mask: "mask contains {\"op\": \"upsert\", \"path\": \"/input/credential/token\", \"value\": \"x\"}\n" + headers,
			err:  "the raw token of an ext_authz Check with the token in the query (access_token) at /input/attributes/request/http/headers/:path",
		},
		{
			note: "everything but the text of a query",
			mask: "mask contains \"/input/credential\"\n" + headers + query,
			err: "policy: the bundle's decision-log mask (package system.log) leaves the raw token of an ad-hoc query (/v1/query) naming a token " +
				"in the query's text, which no mask reaches: add a drop rule (data.system.log.drop) for such events, " +
				"or leave system/log out of the bundle to keep the sidecar's own mask",
		},
		{
			note: "everything but the built-in cache",
			mask: "mask contains \"/input/credential\"\n" + headers + query + drop,
			err:  "the raw token of a direct decision with decision_logs.nd_builtin_cache on (pat.token's call) at /nd_builtin_cache/pat.token (in a key)",
		},
		{
			note: `everything but another token, of a prefix without "_"`,
			mask: "mask contains \"/input/credential\"\n" + headers + query + drop + cache,
			err: `the raw token of an ext_authz Check with another token, of a prefix without "_", in a header of its own ` +
				"at /input/attributes/request/http/headers/x-note",
		},
		{
			note: `everything but a query naming a token of a prefix without "_"`,
			mask: "mask contains \"/input/credential\"\n" + headers + query + drop + cache + note,
			err:  `the raw token of an ad-hoc query (/v1/query) naming a token of a prefix without "_" in the query's text, which no mask reaches`,
		},
		{
			note: "everything but an ad-hoc query's result, pointed into (which OPA's mask skips)",
			mask: "mask contains \"/input/credential\"\n" + headers + query + drop + cache + note + dropCall + adHocInput +
				"\nmask contains {\"op\": \"upsert\", \"path\": \"/result/0/x\", \"value\": \"x\"}\n",
			err: "the raw token of an ad-hoc query (/v1/query) whose result holds a token at /result/0/x",
		},
		{
			note: "a rule without op, which OPA refuses (and then logs nothing)",
			mask: "mask contains {\"path\": \"/input/credential/token\"}\n",
			err:  `policy: the decision-log mask fails on a direct decision (input.credential.token): mask rule map[path:/input/credential/token]: op must be "remove" or "upsert"`,
		},
		{
			note: "a mask that fails",
			mask: "_path := \"/input/credential\" if input.path\n\n_path := \"/input\" if input.path\n\nmask contains _path\n",
			err: "policy: the decision-log mask fails on a direct decision (input.credential.token): system/log/log.rego:5: eval_conflict_error: " +
				`rule data.system.log._path produced conflicting values:; "/input/credential" at system/log/log.rego:3; "/input" at system/log/log.rego:5`,
		},
		{
			note: "a path OPA refuses",
			mask: "mask contains \"/inputs/credential/token\"\n",
			err:  "policy: the decision-log mask fails on a direct decision (input.credential.token): mask rule \"/inputs/credential/token\": OPA masks only /input, /result and /nd_builtin_cache",
		},
	} {
		t.Run(tc.note, func(t *testing.T) {
			dir := fixture(t)
			root := filepath.Dir(dir)
			for name, content := range map[string]string{
				".opa-manifest":            `{"roots": ["pat", "system/log"]}`,
				"rego/system/log/log.rego": "package system.log\n\n" + tc.mask,
			} {
				p := filepath.Join(root, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Build(BuildOptions{RegoDir: dir, Key: keyA, Capabilities: patCapabilities(t), Settings: []byte(fullSettings)})
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error:\n got %v\nwant one with %s", err, tc.err)

			}
		})
	}

	// The same masks with drop rules for both queries and every field erased build.
	dir := fixture(t)
	root := filepath.Dir(dir)
	for name, content := range map[string]string{
		".opa-manifest":            `{"roots": ["pat", "system/log"]}`,
		"rego/system/log/log.rego": "package system.log\n\nmask contains \"/input/credential\"\n" + headers + query + drop + cache + note + dropCall + adHocInput + adHocResult,
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Build(BuildOptions{RegoDir: dir, Key: keyA, Capabilities: patCapabilities(t), Settings: []byte(fullSettings)}); err != nil {
		t.Fatalf("a mask that erases every probe's token: %v", err)
	}
}

// Signed and SignatureKeyID read .signatures.json without verifying it: the
// sidecar uses them to say what to do about a bundle it cannot verify.
func TestSignedAndKeyID(t *testing.T) {
	built := build(t, BuildOptions{KeyID: "pat-2026-11"})
	sigs := untar(t, built.Tarball)["/.signatures.json"]
	unsigned := repack(t, built.Tarball, func(name string, b []byte) []byte {
		if name == "/.signatures.json" {
			return nil
		}
		return b
	})
	otherKid := untar(t, build(t, BuildOptions{KeyID: "pat-2027-05"}).Tarball)["/.signatures.json"]
	emptyList := repack(t, built.Tarball, func(name string, b []byte) []byte {
		if name == "/.signatures.json" {
			return []byte(`{"signatures": []}`)
		}
		return b
	})
	for _, tc := range []struct {
		note    string
		tarball []byte
		signed  bool
		kid     string
		err     string
	}{
		{note: "signed", tarball: built.Tarball, signed: true, kid: "pat-2026-11"},
		{note: "no .signatures.json", tarball: repack(t, built.Tarball, func(name string, b []byte) []byte {
			if name == "/.signatures.json" {
				return nil
			}
			return b
		})},
		{note: "no signature listed", tarball: emptyList},
		{note: "not gzip", tarball: []byte("package pat\n"), err: "reading the bundle: gzip: invalid header"},
		// OPA reads regular files only, and takes a .signatures.json in
		// any directory for the bundle's signatures.
		{note: "only an entry of type Z named .signatures.json", tarball: withEntries(t, unsigned, &tar.Header{Name: "/.signatures.json", Typeflag: 'Z'}, []byte("garbage"))},
		{note: "an entry of type Z with another kid first", tarball: withEntries(t, built.Tarball, &tar.Header{Name: "/.signatures.json", Typeflag: 'Z'}, otherKid), signed: true, kid: "pat-2026-11"},
		{note: "a symbolic link named .signatures.json", tarball: withEntries(t, unsigned, &tar.Header{Name: "/.signatures.json", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}, nil)},
		{note: "in a directory", tarball: withEntries(t, unsigned, &tar.Header{Name: "/pat/.signatures.json", Typeflag: tar.TypeReg}, sigs), signed: true, kid: "pat-2026-11"},
	} {
		t.Run(tc.note, func(t *testing.T) {
			signed, err := Signed(tc.tarball)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("Signed: %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || signed != tc.signed {
				t.Fatalf("Signed = %v, %v; want %v", signed, err, tc.signed)
			}
			if kid, err := SignatureKeyID(tc.tarball); err != nil || kid != tc.kid {
				t.Fatalf("SignatureKeyID = %q, %v; want %q", kid, err, tc.kid)
			}
		})
	}
}

// withEntries returns tarball with an entry put first: hdr (its size and
// mode filled in) and content.
func withEntries(t *testing.T, tarball []byte, hdr *tar.Header, content []byte) []byte {
	t.Helper()
	gr, err := gzip.NewReader(bytes.NewReader(tarball))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gr)
	var out bytes.Buffer
	gz := gzip.NewWriter(&out)
	tw := tar.NewWriter(gz)
	hdr.Mode, hdr.Size = 0o644, int64(len(content))
	if err := tw.WriteHeader(hdr); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(content); err != nil {
		t.Fatal(err)
	}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
