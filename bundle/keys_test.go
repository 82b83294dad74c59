package bundle

import (
	"crypto"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"testing"

	"github.com/opa-pat/opa-pat/bundle/bundletest"
)

// TestLoadPublicKeyRefusesOtherKeys: a key that cannot check an ES256
// signature is refused at once, named by its algorithm and size rather than
// by a Go type.
func TestLoadPublicKeyRefusesOtherKeys(t *testing.T) {
	for _, tc := range []struct {
		note string
		key  crypto.PublicKey
		err  string
	}{
		{"ECDSA P-256", &bundletest.ECDSAKey(t, elliptic.P256()).PublicKey, ""},
		{"ECDSA P-384", &bundletest.ECDSAKey(t, elliptic.P384()).PublicKey, "the public key is ECDSA P-384, want ECDSA P-256 (ES256)"},
		{"RSA", &bundletest.RSAKey(t).PublicKey, "the public key is RSA 2048 bits, want ECDSA P-256 (ES256)"},
		{"Ed25519", bundletest.Ed25519Public(t), "the public key is Ed25519, want ECDSA P-256 (ES256)"},
	} {
		t.Run(tc.note, func(t *testing.T) {
			_, err := LoadPublicKey([]byte(bundletest.PublicKeyPEM(t, tc.key)))
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.err != "" && (err == nil || err.Error() != tc.err):
				t.Fatalf("error %v, want %q", err, tc.err)
			}
		})
	}
}

// A key hint is named by the start of the key's SHA-256 in hex: never a
// run of 36 letters and digits, which a sidecar's log redaction hides.
func TestShortHint(t *testing.T) {
	sum := sha256.Sum256([]byte("key"))
	hint := base64.StdEncoding.EncodeToString(sum[:])
	if got, want := ShortHint(hint), "sha256:"+hex.EncodeToString(sum[:8])+"…"; got != want {
		t.Fatalf("ShortHint = %q, want %q", got, want)
	}
	for _, bad := range []string{"", "not base64!", base64.StdEncoding.EncodeToString([]byte("short"))} {
		if got := ShortHint(bad); got != "(unreadable)" {
			t.Fatalf("ShortHint(%q) = %q", bad, got)
		}
	}
}
