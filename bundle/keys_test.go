package bundle

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"testing"
)

// TestLoadPublicKeyRefusesOtherKeys: a key that cannot check an ES256
// signature is refused at once, named by its algorithm and size rather than
// by a Go type.
func TestLoadPublicKeyRefusesOtherKeys(t *testing.T) {
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		note string
		key  crypto.PublicKey
		err  string
	}{
		{"ECDSA P-256", &p256.PublicKey, ""},
		{"ECDSA P-384", &p384.PublicKey, "the public key is ECDSA P-384, want ECDSA P-256 (ES256)"},
		{"RSA", &rsaKey.PublicKey, "the public key is RSA 2048 bits, want ECDSA P-256 (ES256)"},
		{"Ed25519", edPub, "the public key is Ed25519, want ECDSA P-256 (ES256)"},
	} {
		t.Run(tc.note, func(t *testing.T) {
			der, err := x509.MarshalPKIXPublicKey(tc.key)
			if err != nil {
				t.Fatal(err)
			}
			_, err = LoadPublicKey(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.err != "" && (err == nil || err.Error() != tc.err):
				t.Fatalf("error %v, want %q", err, tc.err)
			}
		})
	}
}
