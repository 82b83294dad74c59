package bundle

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// PasswordEnv names the environment variable that holds the private key's
// password, as for the cosign CLI.
const PasswordEnv = "COSIGN_PASSWORD"

// ErrNoPassword is returned when COSIGN_PASSWORD is not set at all (an empty
// value is a valid, empty password, as for cosign).
var ErrNoPassword = errors.New(PasswordEnv + " is not set")

// Password returns the key password from COSIGN_PASSWORD.
func Password() ([]byte, error) {
	p, ok := os.LookupEnv(PasswordEnv)
	if !ok {
		return nil, ErrNoPassword
	}
	return []byte(p), nil
}

// GenerateKeys makes an ECDSA P-256 key pair with the cosign library: the
// private key in cosign's encrypted PEM format, the public key as PEM.
func GenerateKeys(password []byte) (privatePEM, publicPEM []byte, err error) {
	kb, err := cosign.GenerateKeyPair(func(bool) ([]byte, error) { return password, nil })
	if err != nil {
		return nil, nil, fmt.Errorf("generating cosign key pair: %w", err)
	}
	return kb.PrivateBytes, kb.PublicBytes, nil
}

// SigningKey is a decrypted cosign private key, ready for both signatures.
type SigningKey struct {
	// Signer signs the tarball for the sigstore bundle (cosign's signer).
	Signer signature.SignerVerifier
	// OPAPEM is the same key as a PKCS #8 PEM, for OPA's bundle signer.
	OPAPEM string
	// Public is the public key.
	Public *ecdsa.PublicKey
}

// LoadSigningKey decrypts a cosign private key (ENCRYPTED SIGSTORE/COSIGN
// PRIVATE KEY) with the cosign library and checks it is ECDSA P-256.
//
// cosign.LoadPrivateKey returns a signer that does not expose the key, and
// OPA's signer needs the key itself as PEM; so the PEM block is decrypted once
// with the package cosign itself uses (go-securesystemslib's encrypted), and
// the signer is built from the result as cosign.LoadPrivateKey builds it.
func LoadSigningKey(keyPEM, password []byte) (*SigningKey, error) {
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, errors.New("not a PEM-encoded cosign private key")
	}
	if block.Type != cosign.SigstorePrivateKeyPemType && block.Type != cosign.CosignPrivateKeyPemType {
		return nil, fmt.Errorf("PEM block %q is not a cosign private key (want %q)", block.Type, cosign.SigstorePrivateKeyPemType)
	}
	der, err := encrypted.Decrypt(block.Bytes, password)
	if err != nil {
		return nil, fmt.Errorf("decrypting the private key (wrong %s?): %w", PasswordEnv, err)
	}
	pk, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parsing the private key: %w", err)
	}
	ec, ok := pk.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("the private key is %s, want ECDSA P-256 (ES256)", keyKind(pk))
	}
	signer, err := signature.LoadDefaultSignerVerifier(ec, *cosign.GetDefaultLoadOptions(nil)...)
	if err != nil {
		return nil, fmt.Errorf("loading the cosign signer: %w", err)
	}
	return &SigningKey{
		Signer: signer,
		OPAPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		Public: &ec.PublicKey,
	}, nil
}

// LoadPublicKey parses a PEM public key (as written by keys generate or
// cosign generate-key-pair) and checks it is ECDSA P-256.
func LoadPublicKey(publicPEM []byte) (*ecdsa.PublicKey, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(publicPEM)
	if err != nil {
		return nil, fmt.Errorf("parsing the public key: %w", err)
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("the public key is %s, want ECDSA P-256 (ES256)", keyKind(pub))
	}
	return ec, nil
}

// keyKind names a key's algorithm and size for an error: "ECDSA P-384",
// "RSA 2048 bits", "Ed25519".
func keyKind(k any) string {
	switch k := k.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case *ecdsa.PrivateKey:
		return "ECDSA " + k.Curve.Params().Name
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d bits", k.N.BitLen())
	case *rsa.PrivateKey:
		return fmt.Sprintf("RSA %d bits", k.N.BitLen())
	case ed25519.PublicKey, ed25519.PrivateKey:
		return "Ed25519"
	default:
		return fmt.Sprintf("%T", k)
	}
}

// ShortHint names a key hint in messages: "sha256:" and the first 16 hex
// digits of the key's SHA-256, which `openssl pkey -pubin -in cosign.pub
// -outform DER | sha256sum` shows too. Base64 would not do: a run of 36
// letters and digits in it is a classic token's shape, which a sidecar's
// log redaction hides. A hint that is no base64 SHA-256 is "unreadable".
func ShortHint(hint string) string {
	sum, err := base64.StdEncoding.DecodeString(hint)
	if err != nil || len(sum) != sha256.Size {
		return "(unreadable)"
	}
	return fmt.Sprintf("sha256:%x…", sum[:8])
}

// KeyHint is cosign's hint for a public key: base64 of the SHA-256 of its
// PKIX encoding. It goes into the sigstore bundle's verification material.
func KeyHint(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encoding the public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return base64.StdEncoding.EncodeToString(sum[:]), nil
}
