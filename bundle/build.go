// Package bundle builds, signs and verifies opa-pat's policy bundles. One
// cosign key pair (ECDSA P-256) signs a bundle twice: OPA's own
// .signatures.json (ES256, through OPA's bundle signing API) so that a sidecar
// verifies it with the public key in its config, and a cosign signature over
// the tarball's bytes, written beside it as a sigstore bundle, so that
// `cosign verify-blob` verifies it offline. docs/bundles.md is the user guide.
package bundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	opabundle "github.com/open-policy-agent/opa/v1/bundle"

	"github.com/opa-pat/opa-pat/bundle/rollback"
)

// Names and defaults.
const (
	// ManifestSource is the manifest's source file, beside the policy directory.
	ManifestSource = ".opa-manifest"
	// SigningAlg is the algorithm of OPA's bundle signature.
	SigningAlg = "ES256"
	// DefaultKeyID is the signature's key id ("kid") when none is given: the
	// id OPA gives a key passed with --verification-key.
	DefaultKeyID = "default"
)

// SettingsPath is where the settings go in the bundle's data.
var SettingsPath = []string{"pat", "settings"}

// Metadata keys the builder adds to the manifest.
const (
	MetaSettingsDigest = "settings_sha256"
	MetaContentDigest  = "content_sha256"
	MetaSourceCommit   = "source_commit"
	MetaBuiltBy        = "built_by"
	// MetaSerial is the bundle's serial, which sidecars compare to refuse
	// an older bundle (bundle/rollback).
	MetaSerial = rollback.MetaSerial
)

// BuildOptions describe one bundle.
type BuildOptions struct {
	// Settings is the settings file's content (JSON).
	Settings []byte
	// RegoDir is the policy directory; its .rego files, tests excluded, go
	// into the bundle at their paths relative to it.
	RegoDir string
	// Manifest is the manifest source's path; empty means ManifestSource in
	// RegoDir's parent, else in the working directory (FindManifest).
	Manifest string
	// Key signs both signatures.
	Key *SigningKey
	// KeyID is the OPA signature's key id; empty means DefaultKeyID.
	KeyID string
	// Revision overrides the manifest's revision (git commit or digest).
	Revision string
	// Serial is the manifest's metadata.serial, 1 to rollback.MaxSerial;
	// 0 means the committer time of RegoDir's commit (Unix seconds) when
	// the tree under RegoDir is clean, else no serial.
	Serial int64
	// Capabilities the policy is compiled against; nil means the built-ins
	// registered in this process (in opa-pat: OPA's and the pat.* ones).
	Capabilities *ast.Capabilities
}

// Built is a signed bundle.
type Built struct {
	// Tarball is the bundle (.tar.gz) with its .signatures.json.
	Tarball []byte
	// Sigstore is the cosign signature over Tarball, a sigstore bundle (JSON).
	Sigstore []byte
	// Manifest is the bundle's manifest.
	Manifest opabundle.Manifest
	// Modules are the policy files in the bundle.
	Modules []string
}

// Build validates the settings, compiles the policy with opa-pat's built-ins,
// writes the bundle with its manifest, signs it with OPA's bundle signer,
// signs the tarball with cosign, and verifies the result before returning it.
func Build(opts BuildOptions) (*Built, error) {
	if opts.Key == nil {
		return nil, errors.New("no signing key")
	}
	if opts.KeyID == "" {
		opts.KeyID = DefaultKeyID
	}
	settings, err := ParseSettings(opts.Settings)
	if err != nil {
		return nil, err
	}
	manifestPath := opts.Manifest
	if manifestPath == "" {
		if manifestPath, err = FindManifest(opts.RegoDir); err != nil {
			return nil, err
		}
	}
	manifest, err := readManifest(manifestPath)
	if err != nil {
		return nil, err
	}
	modules, err := readModules(opts.RegoDir)
	if err != nil {
		return nil, err
	}
	if opts.Capabilities == nil {
		opts.Capabilities = ast.CapabilitiesForThisVersion()
	}
	compiler, err := checkPolicy(modules, manifest, opts.Capabilities)
	if err != nil {
		return nil, err
	}
	data := map[string]any{SettingsPath[0]: map[string]any{SettingsPath[1]: settings}}
	if definesMask(compiler.Modules) {
		if err := checkMask(compiler, data); err != nil {
			return nil, err
		}
	}

	settingsDigest, err := SettingsDigest(settings)
	if err != nil {
		return nil, err
	}
	contentDigest, err := contentDigest(modules, settingsDigest, manifest)
	if err != nil {
		return nil, err
	}
	if manifest.Metadata == nil {
		manifest.Metadata = map[string]any{}
	}
	manifest.Metadata[MetaSettingsDigest] = settingsDigest
	manifest.Metadata[MetaContentDigest] = contentDigest
	manifest.Metadata[MetaBuiltBy] = "opa-pat bundle build"
	commit := gitCommit(opts.RegoDir)
	if commit != "" {
		manifest.Metadata[MetaSourceCommit] = commit
	}
	switch serial := opts.Serial; {
	case serial < 0 || serial > rollback.MaxSerial:
		return nil, fmt.Errorf("serial %d: give an integer from 1 to %d", serial, int64(rollback.MaxSerial))
	case serial > 0:
		manifest.Metadata[MetaSerial] = serial
	case commit != "" && !strings.HasSuffix(commit, "-dirty"):
		// The commit's time, not the clock's: the same commit builds the
		// same bundle, and a later commit (a revert too) a higher serial.
		if t := gitCommitTime(opts.RegoDir); t > 0 {
			manifest.Metadata[MetaSerial] = t
		}
	}
	switch {
	case opts.Revision != "":
		manifest.Revision = opts.Revision
	case commit != "" && !strings.HasSuffix(commit, "-dirty"):
		manifest.Revision = commit
	default:
		manifest.Revision = "sha256:" + contentDigest
	}

	b := opabundle.Bundle{
		Manifest: manifest,
		Data:     data,
		Modules:  modules,
	}
	sc := opabundle.NewSigningConfig(opts.Key.OPAPEM, SigningAlg, "")
	if err := b.GenerateSignature(sc, opts.KeyID, false); err != nil {
		return nil, fmt.Errorf("opa signature: %w", err)
	}
	var tarball bytes.Buffer
	if err := opabundle.NewWriter(&tarball).Write(b); err != nil {
		return nil, fmt.Errorf("writing the bundle: %w", err)
	}
	sigstore, err := SignBlob(opts.Key, tarball.Bytes())
	if err != nil {
		return nil, err
	}
	if _, err := Verify(tarball.Bytes(), sigstore, opts.Key.Public); err != nil {
		return nil, fmt.Errorf("the new bundle does not verify: %w", err)
	}
	names := make([]string, len(modules))
	for i, m := range modules {
		names[i] = m.Path
	}
	return &Built{Tarball: tarball.Bytes(), Sigstore: sigstore, Manifest: manifest, Modules: names}, nil
}

// FindManifest finds ManifestSource for a policy directory: in the
// directory's parent (the repository layout: rego/ beside .opa-manifest),
// else in the working directory.
func FindManifest(regoDir string) (string, error) {
	abs, err := filepath.Abs(regoDir)
	if err != nil {
		return "", fmt.Errorf("policy directory %s: %w", regoDir, err)
	}
	candidates := []string{filepath.Join(filepath.Dir(abs), ManifestSource)}
	if wd, err := os.Getwd(); err == nil {
		candidates = append(candidates, filepath.Join(wd, ManifestSource))
	}
	for _, c := range candidates {
		if _, err := os.Stat(c); err == nil {
			return c, nil
		}
	}
	return "", fmt.Errorf("no %s in %s or the working directory (pass --manifest)", ManifestSource, filepath.Dir(abs))
}

func readManifest(p string) (opabundle.Manifest, error) {
	var m opabundle.Manifest
	raw, err := os.ReadFile(p)
	if err != nil {
		return m, fmt.Errorf("reading the manifest: %w", err)
	}
	// A key given twice ({"roots": ["evil"], "roots": ["pat"]}) would be
	// read as its last value without a word.
	if _, err := decodeStrict(raw); err != nil {
		return m, fmt.Errorf("manifest %s: %w", p, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return m, fmt.Errorf("manifest %s: %w", p, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return m, fmt.Errorf("manifest %s: more after the JSON value: give one document", p)
	}
	if _, ok := m.Metadata[MetaSerial]; ok {
		return m, fmt.Errorf("manifest %s: metadata.%s: the builder sets the serial (--serial, or the commit's time); remove it", p, MetaSerial)
	}
	if len(m.FileRegoVersions) > 0 {
		return m, fmt.Errorf("manifest %s: file_rego_versions: the policy is Rego v1 throughout; remove the entries", p)
	}
	if m.Roots == nil || len(*m.Roots) == 0 {
		return m, fmt.Errorf("manifest %s: no roots: name the roots the bundle owns, e.g. [\"pat\"]", p)
	}
	roots := *m.Roots
	for i, a := range roots {
		for _, b := range roots[i+1:] {
			if opabundle.RootPathsOverlap(strings.Trim(a, "/"), strings.Trim(b, "/")) {
				return m, fmt.Errorf("manifest %s: roots %q and %q overlap: give each path once, and no root inside another (\"\" is every path)", p, a, b)
			}
		}
	}
	if len(m.WasmResolvers) > 0 {
		return m, fmt.Errorf("manifest %s: wasm: opa-pat bundles hold Rego only; remove the wasm entries", p)
	}
	if m.RegoVersion == nil {
		v := 1
		m.RegoVersion = &v
	}
	if *m.RegoVersion != 1 {
		return m, fmt.Errorf("manifest %s: rego_version %d: the policy is Rego v1", p, *m.RegoVersion)
	}
	settingsRef := strings.Join(SettingsPath, "/")
	if !slices.ContainsFunc(*m.Roots, func(r string) bool { return covers(r, settingsRef) }) {
		return m, fmt.Errorf("manifest %s: roots %v do not cover %s, where the settings go", p, *m.Roots, settingsRef)
	}
	return m, nil
}

// covers reports whether a manifest root owns a slash-separated data path.
func covers(root, p string) bool {
	root = strings.Trim(root, "/")
	return root == "" || p == root || strings.HasPrefix(p, root+"/")
}

// readModules reads the .rego files under dir, tests (*_test.rego) and
// hidden directories excluded, and parses them as Rego v1.
func readModules(dir string) ([]opabundle.ModuleFile, error) {
	var modules []opabundle.ModuleFile
	var parseErr error
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != dir && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".rego") || strings.HasSuffix(p, "_test.rego") {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		parsed, err := ast.ParseModuleWithOpts(rel, string(raw), ast.ParserOptions{RegoVersion: ast.RegoV1, ProcessAnnotation: true})
		if err != nil {
			parseErr = fmt.Errorf("policy: %s", oneLine(err))
			return filepath.SkipAll
		}
		modules = append(modules, opabundle.ModuleFile{URL: rel, Path: rel, Raw: raw, Parsed: parsed})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading policy directory %s: %w", dir, err)
	}
	if parseErr != nil {
		return nil, parseErr
	}
	if len(modules) == 0 {
		return nil, fmt.Errorf("policy directory %s has no .rego files", dir)
	}
	return modules, nil
}

// checkPolicy compiles the modules against the capabilities (in opa-pat,
// OPA's built-ins and the pat.* ones) and checks each package lies under a
// root.
func checkPolicy(modules []opabundle.ModuleFile, m opabundle.Manifest, caps *ast.Capabilities) (*ast.Compiler, error) {
	parsed := map[string]*ast.Module{}
	for _, mod := range modules {
		parsed[mod.Path] = mod.Parsed
		pkg := packagePath(mod.Parsed)
		if !slices.ContainsFunc(*m.Roots, func(r string) bool { return covers(r, pkg) }) {
			return nil, fmt.Errorf("policy: %s: package %s is outside the manifest's roots %v", mod.Path, mod.Parsed.Package.Path, *m.Roots)
		}
	}
	c := ast.NewCompiler().WithCapabilities(caps)
	if c.Compile(parsed); c.Failed() {
		return nil, fmt.Errorf("policy: %s", oneLine(c.Errors))
	}
	return c, nil
}

// packagePath is a module's package as a slash-separated data path.
func packagePath(mod *ast.Module) string {
	parts := make([]string, 0, len(mod.Package.Path))
	for _, t := range mod.Package.Path[1:] {
		if s, ok := t.Value.(ast.String); ok {
			parts = append(parts, string(s))
		}
	}
	return strings.Join(parts, "/")
}

// SettingsDigest is the hex SHA-256 of the settings as canonical JSON (keys
// sorted, no whitespace), as recorded in the manifest's metadata.
func SettingsDigest(settings any) (string, error) {
	b, err := json.Marshal(settings)
	if err != nil {
		return "", fmt.Errorf("encoding the settings: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// contentDigest identifies a bundle's content when no commit does: the
// modules' paths and bytes, the settings digest and the manifest source.
func contentDigest(modules []opabundle.ModuleFile, settingsDigest string, m opabundle.Manifest) (string, error) {
	files := map[string]string{}
	for _, mod := range modules {
		sum := sha256.Sum256(mod.Raw)
		files[mod.Path] = hex.EncodeToString(sum[:])
	}
	b, err := json.Marshal(map[string]any{"modules": files, "settings": settingsDigest, "manifest": m})
	if err != nil {
		return "", fmt.Errorf("computing the content digest: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// gitCommit is the commit of the repository holding dir, with "-dirty" when
// the policy directory has changes not committed; empty without git.
func gitCommit(dir string) string {
	out, err := exec.Command("git", "-C", dir, "rev-parse", "HEAD").Output()
	if err != nil {
		return ""
	}
	commit := strings.TrimSpace(string(out))
	status, err := exec.Command("git", "-C", dir, "status", "--porcelain", "--", ".").Output()
	if err != nil || len(bytes.TrimSpace(status)) > 0 {
		return commit + "-dirty"
	}
	return commit
}

// gitCommitTime is the committer time (Unix seconds) of the commit of the
// repository holding dir; 0 without git.
func gitCommitTime(dir string) int64 {
	out, err := exec.Command("git", "-C", dir, "log", "-1", "--format=%ct", "HEAD").Output()
	if err != nil {
		return 0
	}
	t, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil || t < 1 || t > rollback.MaxSerial {
		return 0
	}
	return t
}

// oneLine joins a multi-line error into one line.
func oneLine(err error) string {
	lines := strings.Split(strings.TrimSpace(err.Error()), "\n")
	kept := lines[:0]
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" {
			kept = append(kept, l)
		}
	}
	return strings.Join(kept, "; ")
}
