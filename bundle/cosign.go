package bundle

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	cbundle "github.com/sigstore/cosign/v2/pkg/cosign/bundle"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"
	"google.golang.org/protobuf/encoding/protojson"
)

// SigstoreSuffix is appended to the tarball's path to name its sigstore
// bundle: bundle.tar.gz -> bundle.tar.gz.sigstore.json.
const SigstoreSuffix = ".sigstore.json"

// SignBlob signs blob with key as `cosign sign-blob --key --new-bundle-format
// --tlog-upload=false` does and returns the sigstore bundle (protobuf bundle
// v0.3, JSON): the public key's hint and a message signature over the blob's
// SHA-256. There is no transparency log entry and no timestamp: verifiers
// trust the key, offline.
func SignBlob(key *SigningKey, blob []byte) ([]byte, error) {
	sig, err := key.Signer.SignMessage(bytes.NewReader(blob))
	if err != nil {
		return nil, fmt.Errorf("cosign signing the tarball: %w", err)
	}
	hint, err := KeyHint(key.Public)
	if err != nil {
		return nil, err
	}
	pb, err := cbundle.MakeProtobufBundle(hint, nil, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("making the sigstore bundle: %w", err)
	}
	digest := sha256.Sum256(blob)
	pb.Content = &protobundle.Bundle_MessageSignature{
		MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: digest[:]},
			Signature:     sig,
		},
	}
	out, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(pb)
	if err != nil {
		return nil, fmt.Errorf("encoding the sigstore bundle: %w", err)
	}
	return append(out, '\n'), nil
}

// Errors of the cosign check, for callers that test which part failed.
var (
	ErrSigstoreBundle = errors.New("invalid sigstore bundle")
	ErrBlobDigest     = errors.New("the tarball is not the one that was signed")
	ErrOtherKey       = errors.New("signed by another key")
	ErrBadSignature   = errors.New("the signature does not verify with the key")
)

// VerifyBlob checks a sigstore bundle over blob with pub, offline, as
// `cosign verify-blob --key --bundle --insecure-ignore-tlog` does (through
// sigstore-go's verifier, with the key as the only trusted material and no
// timestamps). It tells apart the usual failures: a tarball whose digest is
// not the signed one (checked first, without the key), and, when the
// signature fails, one whose envelope names another key.
func VerifyBlob(pub *ecdsa.PublicKey, sigstoreJSON, blob []byte) error {
	var b sgbundle.Bundle
	if err := b.UnmarshalJSON(sigstoreJSON); err != nil {
		return fmt.Errorf("%w: %w", ErrSigstoreBundle, err)
	}
	ms := b.GetMessageSignature()
	if ms == nil || ms.GetMessageDigest() == nil {
		return fmt.Errorf("%w: no message signature (is it a DSSE attestation?)", ErrSigstoreBundle)
	}
	if ms.GetMessageDigest().GetAlgorithm() != protocommon.HashAlgorithm_SHA2_256 {
		return fmt.Errorf("%w: digest algorithm %s, want SHA2_256", ErrSigstoreBundle, ms.GetMessageDigest().GetAlgorithm())
	}
	digest := sha256.Sum256(blob)
	if signed := ms.GetMessageDigest().GetDigest(); !bytes.Equal(signed, digest[:]) {
		return fmt.Errorf("%w: its sha256 is %s, the signed sha256 is %s", ErrBlobDigest, hex.EncodeToString(digest[:]), hex.EncodeToString(signed))
	}
	verifier, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return fmt.Errorf("loading the public key: %w", err)
	}
	key := root.NewExpiringKey(verifier, time.Time{}, time.Time{})
	trusted := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) { return key, nil })
	v, err := verify.NewVerifier(trusted, verify.WithNoObserverTimestamps())
	if err != nil {
		return fmt.Errorf("making the sigstore verifier: %w", err)
	}
	if _, err := v.Verify(&b, verify.NewPolicy(verify.WithArtifact(bytes.NewReader(blob)), verify.WithKey())); err != nil {
		// The key hint is not signed: it only helps to say why the
		// signature failed, and never decides.
		wantHint, herr := KeyHint(pub)
		if hint := b.GetVerificationMaterial().GetPublicKey().GetHint(); herr == nil && hint != "" && hint != wantHint {
			return fmt.Errorf("%w (key hint %s, want %s)", ErrOtherKey, ShortHint(hint), ShortHint(wantHint))
		}
		return fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
	return nil
}
