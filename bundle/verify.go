package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	opabundle "github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/keys"

	"github.com/opa-pat/opa-pat/bundle/rollback"
)

// ErrRefused is wrapped by every error of Verify.
var ErrRefused = errors.New("bundle refused")

// VerifyError lists every check that failed, each prefixed with the check's
// name: "cosign signature: ...", "opa signature: ...", "manifest: ...".
type VerifyError struct {
	Problems []string
}

func (e *VerifyError) Error() string { return strings.Join(e.Problems, "; ") }

// Unwrap lets callers test errors.Is(err, ErrRefused).
func (e *VerifyError) Unwrap() error { return ErrRefused }

// Verified describes a bundle that passed every check.
type Verified struct {
	Manifest opabundle.Manifest
	Modules  []string
	// SettingsDigest is the digest of data.pat.settings, equal to the one in
	// the manifest.
	SettingsDigest string
	// Serial is the manifest's metadata.serial, 0 when it has none.
	Serial int64
}

// Verify checks a bundle tarball with the public key: the cosign signature
// in the sigstore bundle over the tarball's bytes (sigstore nil means the
// sigstore bundle is missing), OPA's .signatures.json with OPA's own bundle
// reader, and the manifest (revision, roots, the settings digest, the
// settings schema). Every check runs, so that the error says which of them
// failed: a changed byte fails the cosign check and usually the archive, a
// changed file inside fails both signatures, a missing .signatures.json
// fails OPA's, another key fails both.
//
// The files' sizes are checked first, from the tar headers
// (CheckTarballSize): a bundle over the limits is refused without reading
// its files, and its OPA signature and manifest are not checked.
func Verify(tarball, sigstore []byte, pub *ecdsa.PublicKey) (*Verified, error) {
	sizeErr := CheckTarballSize(bytes.NewReader(tarball))
	if !errors.Is(sizeErr, ErrTooLarge) {
		sizeErr = nil // unreadable: OPA's reader below says where
	}
	var problems []string
	if sigstore == nil {
		problems = append(problems, "cosign signature: the sigstore bundle is missing")
	} else if err := VerifyBlob(pub, sigstore, tarball); err != nil {
		problems = append(problems, "cosign signature: "+err.Error())
	}
	if sizeErr != nil {
		problems = append(problems, "size: "+sizeErr.Error())
		return nil, &VerifyError{Problems: problems}
	}

	b, err := readVerified(tarball, pub)
	if err != nil {
		problems = append(problems, "opa signature: "+signedWith(tarball)+oneLine(err))
		return nil, &VerifyError{Problems: problems}
	}
	v, err := checkManifest(b)
	if err != nil {
		problems = append(problems, "manifest: "+oneLine(err))
	}
	if len(problems) > 0 {
		return nil, &VerifyError{Problems: problems}
	}
	return v, nil
}

// signedWith says, before OPA's error, that the OPA signature names another
// algorithm than ES256 in its header ("signed HS256, want ES256: "), which
// OPA's error ("failed to unpack ECDSA signature") does not; "" otherwise.
func signedWith(tarball []byte) string {
	sc, err := readSignatures(tarball)
	if err != nil || sc == nil {
		return ""
	}
	if _, alg, err := jwtHeader(*sc); err == nil && alg != "" && alg != SigningAlg {
		return fmt.Sprintf("signed %s, want %s: ", alg, SigningAlg)
	}
	return ""
}

// VerificationConfig is what OPA's --verification-key P.pub --signing-alg
// ES256 builds: the key under the id "default", used whatever the
// signature's kid.
func VerificationConfig(pub *ecdsa.PublicKey) (*opabundle.VerificationConfig, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encoding the public key: %w", err)
	}
	kc := &keys.Config{Key: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), Algorithm: SigningAlg}
	return opabundle.NewVerificationConfig(map[string]*keys.Config{DefaultKeyID: kc}, DefaultKeyID, "", nil), nil
}

// MaxFileBytes is the largest file Verify reads out of a bundle: opa-pat's
// bundles hold a policy and settings of a few hundred kilobytes. OPA's own
// limit (1 GiB a file) let a tampered bundle of one megabyte, a file of
// zeros compressed, take a gigabyte to verify; a sidecar's bundles: source
// has the same limit in size_limit_bytes (docs/bundles.md).
const MaxFileBytes = 32 << 20

// MaxBundleBytes is the most that the files of a bundle may sum to,
// unpacked, for Verify and for a sidecar's local bundles (opa-pat run).
// A limit a file is not enough: a tarball of 792 KB holding 25 files of
// 31 MiB of zeros, each under MaxFileBytes, took bundle verify 847 MB.
const MaxBundleBytes = 64 << 20

// ErrTooLarge is wrapped by the errors of CheckTarballSize and CheckDirSize
// for a bundle with a file over MaxFileBytes or files over MaxBundleBytes
// in all.
var ErrTooLarge = errors.New("bundle too large")

type tooLargeError struct{ msg string }

func (e *tooLargeError) Error() string { return e.msg }
func (e *tooLargeError) Unwrap() error { return ErrTooLarge }

// CheckTarballSize reads the tar headers of a gzipped bundle tarball and
// refuses it, before anything reads its files into memory, when a file
// is over MaxFileBytes or the files sum to more than MaxBundleBytes,
// unpacked: the error names the file, or the file at which the sum passed
// the limit, and wraps ErrTooLarge. It keeps no file content (tar.Reader
// skips it) and stops at the first file over a limit, so it decompresses
// at most MaxBundleBytes of content. It counts the files OPA's tarball
// loader reads (regular files). Another error means the tarball cannot be
// read that far; OPA's reader stops at the same place.
func CheckTarballSize(r io.Reader) error {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("reading the bundle: %w", err)
	}
	tr := tar.NewReader(gz)
	var total int64
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the bundle: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		if err := addFileSize(&total, path.Clean("/"+hdr.Name), hdr.Size); err != nil {
			return err
		}
	}
}

// CheckDirSize is CheckTarballSize for a bundle directory: it sums the
// sizes of the regular files under root (OPA's directory loader reads
// those, and follows no symbolic link unless told), from their metadata.
// Entries it cannot read are left to OPA, which names them.
func CheckDirSize(root string) error {
	var total int64
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		return addFileSize(&total, p, fi.Size())
	})
}

// addFileSize adds a file's size to the running total of a bundle, or says
// which limit the file passes.
func addFileSize(total *int64, name string, size int64) error {
	if size > MaxFileBytes {
		return &tooLargeError{fmt.Sprintf("file %s is %d bytes unpacked, over the limit of %d bytes (%d MiB) a file",
			name, size, MaxFileBytes, MaxFileBytes>>20)}
	}
	*total += size
	if *total > MaxBundleBytes {
		return &tooLargeError{fmt.Sprintf("the files up to %s sum to %d bytes unpacked, over the limit of %d bytes (%d MiB) a bundle",
			name, *total, MaxBundleBytes, MaxBundleBytes>>20)}
	}
	return nil
}

// readVerified reads the tarball with OPA's bundle reader, which verifies
// .signatures.json against every file.
func readVerified(tarball []byte, pub *ecdsa.PublicKey) (opabundle.Bundle, error) {
	vc, err := VerificationConfig(pub)
	if err != nil {
		return opabundle.Bundle{}, err
	}
	// The loader refuses a file by its tar header's size before reading
	// it; the reader's own limit only checks what the loader read.
	loader := opabundle.NewTarballLoaderWithBaseURL(bytes.NewReader(tarball), "").WithSizeLimitBytes(MaxFileBytes)
	// Not lazily, whatever bundle.HasExtension says in this process (a
	// sidecar's rollback.Install): checkManifest reads the settings.
	return opabundle.NewCustomReader(loader).
		WithLazyLoadingMode(false).
		WithSizeLimitBytes(MaxFileBytes).
		WithBundleVerificationConfig(vc).
		WithRegoVersion(ast.RegoV1).
		Read()
}

// checkManifest checks what the signatures cannot: that the bundle is one
// opa-pat built (a revision, roots owning the settings) and that the settings
// are the ones the manifest names and still pass the schema.
func checkManifest(b opabundle.Bundle) (*Verified, error) {
	m := b.Manifest
	if m.Revision == "" {
		return nil, errors.New("no revision")
	}
	settingsRef := strings.Join(SettingsPath, "/")
	if m.Roots == nil || !slices.ContainsFunc(*m.Roots, func(r string) bool { return covers(r, settingsRef) }) {
		return nil, fmt.Errorf("roots do not cover %s", settingsRef)
	}
	serial, err := rollback.Serial(m)
	if err != nil {
		return nil, err
	}
	want, _ := m.Metadata[MetaSettingsDigest].(string)
	if want == "" {
		return nil, fmt.Errorf("metadata.%s is missing", MetaSettingsDigest)
	}
	pat, _ := b.Data[SettingsPath[0]].(map[string]any)
	settings, ok := pat[SettingsPath[1]]
	if !ok {
		return nil, errors.New("the bundle has no data.pat.settings")
	}
	got, err := SettingsDigest(settings)
	if err != nil {
		return nil, err
	}
	if got != want {
		return nil, fmt.Errorf("data.pat.settings has sha256 %s, the manifest says %s", got, want)
	}
	raw, err := json.Marshal(settings)
	if err != nil {
		return nil, fmt.Errorf("encoding the settings: %w", err)
	}
	if _, err := ParseSettings(raw); err != nil {
		return nil, err
	}
	v := &Verified{Manifest: m, SettingsDigest: got, Serial: serial}
	for _, mod := range b.Modules {
		v.Modules = append(v.Modules, strings.TrimPrefix(mod.Path, "/"))
	}
	return v, nil
}

// SignatureKeyID returns the key id ("kid") of the OPA signature in a bundle
// tarball, or "" when the bundle has no .signatures.json (or a signature
// without a kid). Nothing is verified: it tells which key to verify with.
func SignatureKeyID(tarball []byte) (string, error) {
	sc, err := readSignatures(tarball)
	if err != nil || sc == nil || len(sc.Signatures) == 0 {
		return "", err
	}
	kid, _, err := jwtHeader(*sc)
	return kid, err
}

// Signed reports whether a bundle tarball carries OPA's signature: a
// .signatures.json with at least one signature (OPA takes a bundle whose
// .signatures.json lists none for an unsigned one). Nothing is verified.
func Signed(tarball []byte) (bool, error) {
	sc, err := readSignatures(tarball)
	return err == nil && sc != nil && len(sc.Signatures) > 0, err
}

// jwtHeader returns the key id ("kid") and algorithm ("alg") in the header
// of the first signature of a .signatures.json; "" for what it lacks.
func jwtHeader(sc opabundle.SignaturesConfig) (kid, alg string, err error) {
	if len(sc.Signatures) == 0 {
		return "", "", nil
	}
	header, _, _ := strings.Cut(sc.Signatures[0], ".")
	raw, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		return "", "", fmt.Errorf(".signatures.json: the JWT header: %w", err)
	}
	var h struct {
		KeyID     string `json:"kid"`
		Algorithm string `json:"alg"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		return "", "", fmt.Errorf(".signatures.json: the JWT header: %w", err)
	}
	return h.KeyID, h.Algorithm, nil
}

// readSignatures returns the .signatures.json of a bundle tarball, nil when
// it has none. It finds the file OPA's tarball loader and reader take for
// it: the first regular file named .signatures.json in any directory (OPA
// refuses a bundle with two). Other entries of that name (a symbolic link,
// or a type OPA skips, such as 'Z', whose content tar still carries) are
// not OPA's signatures: taking one, opa-pat called a bundle signed whose
// files OPA read unsigned, or the other way round.
func readSignatures(tarball []byte) (*opabundle.SignaturesConfig, error) {
	gz, err := gzip.NewReader(bytes.NewReader(tarball))
	if err != nil {
		return nil, fmt.Errorf("reading the bundle: %w", err)
	}
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading the bundle: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg || !opabundle.IsSignaturesFile(hdr.Name) {
			continue
		}
		var sc opabundle.SignaturesConfig
		if err := json.NewDecoder(tr).Decode(&sc); err != nil {
			return nil, fmt.Errorf(".signatures.json: %w", err)
		}
		return &sc, nil
	}
}
