package enforce

import (
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/config"

	"github.com/opa-pat/opa-pat/bundle/bundletest"
)

func TestRequireSigning(t *testing.T) {
	for _, tc := range []struct {
		note     string
		config   string
		unsigned []string
		err      string
	}{
		{note: "no keys, no sources", config: "plugins:\n  pat: {}\n"},
		{
			note:   "no keys, a bundle source",
			config: "bundles:\n  pat:\n    resource: file:///b.tar.gz\n",
			err:    "bundles.pat would load unsigned bundles: no keys are configured; add keys: {NAME: {algorithm: ES256, key: <the PEM of cosign.pub>}} and bundles.pat.signing: {keyid: NAME}",
		},
		{
			note:   "no keys, a signing block, discovery",
			config: `{"keys": {}, "bundles": {"pat": {"signing": {"keyid": "k"}}}, "discovery": {"resource": "d"}}`,
			err:    "bundles.pat, discovery would load unsigned bundles: no keys are configured; add keys: {NAME: {algorithm: ES256, key: <the PEM of cosign.pub>}} and bundles.pat.signing: {keyid: NAME}, discovery.signing: {keyid: NAME}",
		},
		{
			note:   "no keys, the deprecated bundle section",
			config: "bundle:\n  name: pat\n  service: s\n",
			err:    "the deprecated bundle: section would load unsigned bundles: no keys are configured; use bundles: with keys: and a signing block instead (docs/bundles.md)",
		},
		{note: "keys, signed source", config: "keys:\n  k: {key: PEM, algorithm: ES256}\nbundles:\n  authz:\n    signing: {keyid: k}\n"},
		{note: "keys, no bundles", config: `{"keys": {"k": {"key": "PEM", "algorithm": "ES256"}}}`},
		{
			note:   "an HMAC key",
			config: "keys:\n  k: {key: PEM, algorithm: ES256}\n  hmac: {key: secret, algorithm: HS256}\nbundles:\n  authz:\n    signing: {}\n",
			err:    "keys.hmac.algorithm: HS256: opa-pat bundles are signed ES256 (ECDSA P-256, the cosign key), and a sidecar verifies with ES256 keys only; set algorithm: ES256 with the PEM of cosign.pub",
		},
		{
			note:   "a key without an algorithm",
			config: "keys:\n  k: {key: PEM}\nbundles:\n  authz:\n    signing: {keyid: k}\n",
			err:    "keys.k.algorithm: absent, which OPA takes for RS256: opa-pat bundles are signed ES256 (ECDSA P-256, the cosign key), and a sidecar verifies with ES256 keys only; set algorithm: ES256 with the PEM of cosign.pub",
		},
		// A service's credentials sign with a private key of their own
		// algorithm; such a key verifies no bundle.
		{note: "a private key for a service's credentials", config: "keys:\n  k: {key: PEM, algorithm: ES256}\n  client: {private_key: PEM, algorithm: RS256}\nbundles:\n  authz:\n    signing: {keyid: k}\n"},
		// Keys with only a private_key verify nothing: as no keys at all,
		// which stock OPA would start with and then refuse every bundle
		// ("verification key corresponding to ID default not found").
		{
			note:   "only a private key for a service's credentials",
			config: "keys:\n  client: {private_key: PEM, algorithm: RS256}\nbundles:\n  pat:\n    signing: {keyid: default}\n",
			err:    "bundles.pat would load unsigned bundles: no keys are configured (keys.client has no key field: an entry with only a private_key is a service's credentials and verifies no bundle); add keys: {NAME: {algorithm: ES256, key: <the PEM of cosign.pub>}} and bundles.pat.signing: {keyid: NAME}",
		},
		{
			note:   "only private keys, no signing block",
			config: "keys:\n  b: {private_key: PEM}\n  a: {private_key: PEM}\nbundles:\n  pat: {resource: x}\n",
			err:    "bundles.pat would load unsigned bundles: no keys are configured (keys.a, keys.b have no key field: an entry with only a private_key is a service's credentials and verifies no bundle); add keys: {NAME: {algorithm: ES256, key: <the PEM of cosign.pub>}} and bundles.pat.signing: {keyid: NAME}",
		},
		{
			note:     "keys, a source without signing",
			config:   "keys:\n  k: {key: PEM, algorithm: ES256}\nbundles:\n  b: {signing: {}}\n  authz:\n    resource: file:///b.tar.gz\n",
			unsigned: []string{"bundles.authz"},
			err:      "a bundle source would load unsigned bundles: keys are configured but bundles.authz has no signing block; add bundles.authz.signing (e.g. {keyid: NAME}) so that unsigned bundles are refused",
		},
		{
			note:     "keys, signing null, discovery",
			config:   `{"keys": {"k": {"key": "PEM", "algorithm": "ES256"}}, "bundles": {"a": {"signing": null}}, "discovery": {"resource": "d"}}`,
			unsigned: []string{"bundles.a", "discovery"},
			err:      "a bundle source would load unsigned bundles: keys are configured but bundles.a, discovery has no signing block; add bundles.a.signing (e.g. {keyid: NAME}) so that unsigned bundles are refused",
		},
		// OPA activates a delta bundle, which carries no signature, from
		// a source with allow_unsigned_delta_bundles: the bundle server
		// could patch data.pat.settings without the key.
		{
			note:   "unsigned delta bundles allowed",
			config: "keys:\n  k: {key: PEM, algorithm: ES256}\nbundles:\n  pat:\n    signing: {keyid: k, allow_unsigned_delta_bundles: true}\n",
			err:    "a bundle source would activate unsigned delta bundles: bundles.pat.signing.allow_unsigned_delta_bundles is true, and a delta bundle carries no signature, so whoever serves bundles could change the policy's data (data.pat.settings) without the signing key; remove it: opa-pat bundle build makes signed snapshot bundles only",
		},
		{
			note:   "unsigned delta bundles allowed, two sources",
			config: `{"keys": {"k": {"key": "PEM", "algorithm": "ES256"}}, "bundles": {"b": {"signing": {"allow_unsigned_delta_bundles": true}}, "a": {"signing": {"allow_unsigned_delta_bundles": true}}, "c": {"signing": {"allow_unsigned_delta_bundles": false}}}}`,
			err:    "a bundle source would activate unsigned delta bundles: bundles.a.signing.allow_unsigned_delta_bundles, bundles.b.signing.allow_unsigned_delta_bundles is true, and a delta bundle carries no signature, so whoever serves bundles could change the policy's data (data.pat.settings) without the signing key; remove it: opa-pat bundle build makes signed snapshot bundles only",
		},
		{note: "unsigned delta bundles refused", config: "keys:\n  k: {key: PEM, algorithm: ES256}\nbundles:\n  pat:\n    signing: {keyid: k, allow_unsigned_delta_bundles: false}\n"},
		{
			note:   "not a configuration",
			config: "[1",
			err:    "parsing the configuration: yaml: line 1: did not find expected ',' or ']'",
		},
	} {
		t.Run(tc.note, func(t *testing.T) {
			err := RequireSigning([]byte(withKey(t, tc.config)))
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || err.Error() != tc.err {
				t.Fatalf("error:\n got %v\nwant %s", err, tc.err)
			}
			if tc.unsigned != nil && !errors.Is(err, ErrUnsignedSource) {
				t.Fatalf("%v does not wrap ErrUnsignedSource", err)
			}
			if strings.Contains(tc.err, "no keys are configured") && !errors.Is(err, ErrNoKeys) {
				t.Fatalf("%v does not wrap ErrNoKeys", err)
			}
			if strings.Contains(tc.err, "delta") && !errors.Is(err, ErrUnsignedDelta) {
				t.Fatalf("%v does not wrap ErrUnsignedDelta", err)
			}
		})
	}
}

func TestLoadRunConfig(t *testing.T) {
	file := filepath.Join(t.TempDir(), "config.yaml")
	pub := filepath.Join(t.TempDir(), "k.pub")
	if err := os.WriteFile(pub, []byte("PEM"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PAT_TEST_BUNDLE", "authz")
	if err := os.WriteFile(file, []byte("keys:\n  k: {key: PEM}\nbundles:\n  ${PAT_TEST_BUNDLE}:\n    resource: x\n  signed:\n    signing: {keyid: k}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		note      string
		file      string
		sets      []string
		setFiles  []string
		unsigned  []string
		keyless   []string
		keysFound bool
	}{
		{note: "file", file: file, unsigned: []string{"bundles.authz"}, keysFound: true},
		{note: "a --set signing block", file: file, sets: []string{"bundles.authz.signing.keyid=k"}, keysFound: true},
		{note: "a --set bundle", file: file, sets: []string{"bundles.more.resource=y,labels.x=1"}, unsigned: []string{"bundles.authz", "bundles.more"}, keysFound: true},
		{note: "keys from --set-file only", setFiles: []string{"keys.k.key=" + pub}, sets: []string{"bundles.b.resource=r"}, unsigned: []string{"bundles.b"}, keysFound: true},
		{note: "no file, no keys", sets: []string{"bundles.b.resource=r"}, keyless: []string{"bundles.b"}},
		{note: "only a private key from --set", sets: []string{"keys.c.private_key=x,bundles.b.resource=r"}, keyless: []string{"bundles.b"}, keysFound: true},
	} {
		t.Run(tc.note, func(t *testing.T) {
			c, err := LoadRunConfig(tc.file, tc.sets, tc.setFiles)
			if err != nil {
				t.Fatal(err)
			}
			if got := UnsignedSources(c); !slices.Equal(got, tc.unsigned) {
				t.Fatalf("unsigned %v, want %v", got, tc.unsigned)
			}
			if got := KeylessSources(c); !slices.Equal(got, tc.keyless) {
				t.Fatalf("keyless %v, want %v", got, tc.keyless)
			}
			if _, ok := c["keys"]; ok != tc.keysFound {
				t.Fatalf("keys found %v", ok)
			}
		})
	}
}

// ${NAME} reads as OPA reads it: the variable's value, "" when it is set
// empty, as written when it is unset (where the approximation used to read
// "": a bundle named ${UNSET} became one named ""), and ${} is removed.
func TestSubstituteEnv(t *testing.T) {
	t.Setenv("PAT_TEST_SET", "authz")
	t.Setenv("PAT_TEST_EMPTY", "")
	for in, want := range map[string]string{
		"bundles: {${PAT_TEST_SET}: {}}":       "bundles: {authz: {}}",
		"a: ${PAT_TEST_EMPTY}b":                "a: b",
		"a: ${PAT_TEST_UNSET_VARIABLE}":        "a: ${PAT_TEST_UNSET_VARIABLE}",
		"a: x${}y":                             "a: xy",
		"a: ${PAT_TEST_SET}-${PAT_TEST_SET}\n": "a: authz-authz\n",
	} {
		if got := SubstituteEnv(in); got != want {
			t.Errorf("SubstituteEnv(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRequireSigningConfig(t *testing.T) {
	for _, tc := range []struct {
		note   string
		config string
		err    string
	}{
		{note: "no keys, no sources", config: `{"plugins": {"pat": {}}}`},
		{
			note:   "no keys",
			config: `{"bundles": {"authz": {"resource": "x"}}}`,
			err:    "bundles.authz would load unsigned bundles: no keys are configured; add keys: {NAME: {algorithm: ES256, key: <the PEM of cosign.pub>}} and bundles.authz.signing: {keyid: NAME}",
		},
		{
			note:   "no keys, discovery",
			config: `{"discovery": {"resource": "/bundles/discovery.tar.gz"}, "services": {"s": {"url": "http://127.0.0.1:1"}}}`,
			err:    "discovery would load unsigned bundles: no keys are configured; add keys: {NAME: {algorithm: ES256, key: <the PEM of cosign.pub>}} and discovery.signing: {keyid: NAME}",
		},
		{note: "signed", config: `{"keys": {"k": {"key": "PEM", "algorithm": "ES256"}}, "bundles": {"authz": {"resource": "x", "signing": {"keyid": "k"}}}}`},
		{
			note:   "unsigned delta bundles allowed",
			config: `{"keys": {"k": {"key": "PEM", "algorithm": "ES256"}}, "bundles": {"pat": {"resource": "x", "signing": {"keyid": "k", "allow_unsigned_delta_bundles": true}}}}`,
			err:    "a bundle source would activate unsigned delta bundles: bundles.pat.signing.allow_unsigned_delta_bundles is true, and a delta bundle carries no signature, so whoever serves bundles could change the policy's data (data.pat.settings) without the signing key; remove it: opa-pat bundle build makes signed snapshot bundles only",
		},
		{
			note:   "unsigned",
			config: `{"keys": {"k": {"key": "PEM", "algorithm": "ES256"}}, "bundles": {"authz": {"resource": "x"}}}`,
			err:    "a bundle source would load unsigned bundles: keys are configured but bundles.authz has no signing block; add bundles.authz.signing (e.g. {keyid: NAME}) so that unsigned bundles are refused",
		},
	} {
		t.Run(tc.note, func(t *testing.T) {
			c, err := config.ParseConfig([]byte(withKey(t, tc.config)), "test")
			if err != nil {
				t.Fatal(err)
			}
			err = RequireSigningConfig(c)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || err.Error() != tc.err) {
				t.Fatalf("error:\n got %v\nwant %q", err, tc.err)
			}
		})
	}
	if err := RequireSigningConfig(nil); err != nil {
		t.Fatal(err)
	}
}

// OPA gives a bundles: source whose size_limit_bytes is absent, 0 or
// negative its default of 1 GiB a file; opa-pat run gives those 32 MiB.
// An override's value is not read: it is taken as given.
func TestUnlimitedSources(t *testing.T) {
	file := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(file, []byte(`bundles:
  absent: {resource: a}
  zero: {resource: z, size_limit_bytes: 0}
  negative: {resource: n, size_limit_bytes: -1}
  set: {resource: s, size_limit_bytes: 1048576}
  overridden: {resource: o, size_limit_bytes: 0}
discovery: {resource: d}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := LoadRunConfig(file, []string{"bundles.overridden.size_limit_bytes=0"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"bundles.absent", "bundles.negative", "bundles.zero"}
	if got := UnlimitedSources(c); !slices.Equal(got, want) {
		t.Fatalf("unlimited %v, want %v", got, want)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(`{"bundles": {"a": {"size_limit_bytes": 0}, "b": {"size_limit_bytes": 5}}}`), &doc); err != nil {
		t.Fatal(err)
	}
	if got := UnlimitedSources(doc); !slices.Equal(got, []string{"bundles.a"}) {
		t.Fatalf("unlimited %v, want [bundles.a]", got)
	}
}

// quoted is s as a JSON string, which YAML reads too.
func quoted(t *testing.T, s string) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// withKey puts the PEM of a new ECDSA P-256 public key where a
// configuration says PEM.
func withKey(t *testing.T, config string) string {
	t.Helper()
	key := quoted(t, bundletest.PublicKeyPEM(t, &bundletest.ECDSAKey(t, elliptic.P256()).PublicKey))
	return strings.NewReplacer(`"PEM"`, key, "PEM", key).Replace(config)
}

// A verification key must be the PEM of an ECDSA P-256 public key: OPA
// reports another only when a bundle comes, with an error that names
// neither the key nor what to do ("failed to unpack ECDSA signature:
// invalid signature length for curve P-384"), and for a bundles: source on
// every poll. The error never shows the key's value.
func TestRequireES256Keys(t *testing.T) {
	p256 := bundletest.ECDSAKey(t, elliptic.P256())
	rsaKey := bundletest.RSAKey(t)
	edPub := bundletest.Ed25519Public(t)
	certificate := func(pub, priv any) string {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
		if err != nil {
			t.Fatal(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	}
	p384 := bundletest.ECDSAKey(t, elliptic.P384())
	ecPrivate, err := x509.MarshalECPrivateKey(p256)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)}))
	for _, tc := range []struct {
		note, key, err string
	}{
		{note: "ECDSA P-256", key: bundletest.PublicKeyPEM(t, &p256.PublicKey)},
		{note: "a certificate of an ECDSA P-256 key", key: certificate(&p256.PublicKey, p256)},
		{note: "ECDSA P-384", key: bundletest.PublicKeyPEM(t, &p384.PublicKey), err: "keys.k.key: the public key is ECDSA P-384, want ECDSA P-256 (ES256)"},
		{note: "ECDSA P-521", key: bundletest.PublicKeyPEM(t, &bundletest.ECDSAKey(t, elliptic.P521()).PublicKey), err: "keys.k.key: the public key is ECDSA P-521, want ECDSA P-256 (ES256)"},
		{note: "RSA", key: bundletest.PublicKeyPEM(t, &rsaKey.PublicKey), err: "keys.k.key: the public key is RSA 2048 bits, want ECDSA P-256 (ES256)"},
		{note: "RSA, PKCS #1", key: pkcs1, err: "keys.k.key: the public key is RSA 2048 bits, want ECDSA P-256 (ES256)"},
		{note: "Ed25519", key: bundletest.PublicKeyPEM(t, edPub), err: "keys.k.key: the public key is Ed25519, want ECDSA P-256 (ES256)"},
		{note: "a certificate of an ECDSA P-384 key", key: certificate(&p384.PublicKey, p384), err: "keys.k.key: the public key is ECDSA P-384, want ECDSA P-256 (ES256)"},
		{note: "not a PEM", key: "hunter2", err: "keys.k.key: not a PEM public key; give the PEM of cosign.pub"},
		{note: "empty", key: "", err: "keys.k.key: not a PEM public key; give the PEM of cosign.pub"},
		{
			note: "a private key",
			key:  string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecPrivate})),
			err:  `keys.k.key: a private key (PEM "EC PRIVATE KEY"); give the public key, the PEM of cosign.pub, and keep the private key off sidecars`,
		},
		{
			note: "another PEM block",
			key:  string(pem.EncodeToMemory(&pem.Block{Type: "MESSAGE", Bytes: []byte("hunter2")})),
			err:  `keys.k.key: not a PEM public key (PEM "MESSAGE"); give the PEM of cosign.pub`,
		},
		{
			note: "a damaged PUBLIC KEY",
			key:  string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("hunter2")})),
			err:  `keys.k.key: not a PEM public key (PEM "PUBLIC KEY" that does not parse); give the PEM of cosign.pub`,
		},
	} {
		t.Run(tc.note, func(t *testing.T) {
			config := "keys:\n  k: {algorithm: ES256, key: " + quoted(t, tc.key) + "}\n  client: {private_key: hunter2, algorithm: RS256}\n" +
				"bundles:\n  pat: {resource: b.tar.gz, signing: {keyid: k}}\n"
			err := RequireSigning([]byte(config))
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || err.Error() != tc.err) {
				t.Fatalf("error:\n got %v\nwant %s", err, tc.err)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("the error shows the key's value: %v", err)
			}
		})
	}

}

// Overrides: a --set-file value is the file's content, checked before OPA
// starts; a --set algorithm is read as given, and a --set key (whose
// escapes are not parsed here) is left to the pat plugin's check of the
// configuration OPA builds.
func TestRequireES256Overrides(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p256 := write("p256.pub", bundletest.PublicKeyPEM(t, &bundletest.ECDSAKey(t, elliptic.P256()).PublicKey))
	p384 := write("p384.pub", bundletest.PublicKeyPEM(t, &bundletest.ECDSAKey(t, elliptic.P384()).PublicKey))
	withAlg := write("with.yaml", "keys:\n  k: {algorithm: ES256}\nbundles:\n  pat: {resource: b, signing: {keyid: k}}\n")
	withoutAlg := write("without.yaml", "keys:\n  k: {key: "+quoted(t, bundletest.PublicKeyPEM(t, &bundletest.ECDSAKey(t, elliptic.P256()).PublicKey))+"}\nbundles:\n  pat: {resource: b, signing: {keyid: k}}\n")
	const es256Only = ": opa-pat bundles are signed ES256 (ECDSA P-256, the cosign key), and a sidecar verifies with ES256 keys only; set algorithm: ES256 with the PEM of cosign.pub"
	for _, tc := range []struct {
		note           string
		file           string
		sets, setFiles []string
		err            string
	}{
		{note: "a P-256 key from --set-file", file: withAlg, setFiles: []string{"keys.k.key=" + p256}},
		{note: "a P-384 key from --set-file", file: withAlg, setFiles: []string{"keys.k.key=" + p384}, err: "keys.k.key: the public key is ECDSA P-384, want ECDSA P-256 (ES256)"},
		{note: "a key from --set", file: withAlg, sets: []string{"keys.k.key=anything"}},
		{note: "--set algorithm ES256", file: withoutAlg, sets: []string{"keys.k.algorithm=ES256"}},
		{note: "--set algorithm HS256", file: withoutAlg, sets: []string{"keys.k.algorithm=HS256"}, err: "keys.k.algorithm: HS256" + es256Only},
		{note: "--set algorithm over the file's", file: withAlg, sets: []string{"keys.k.algorithm=RS256,keys.k.key=x"}, err: "keys.k.algorithm: RS256" + es256Only},
		{note: "no algorithm", file: withoutAlg, err: "keys.k.algorithm: absent, which OPA takes for RS256" + es256Only},
	} {
		t.Run(tc.note, func(t *testing.T) {
			c, err := LoadRunConfig(tc.file, tc.sets, tc.setFiles)
			if err != nil {
				t.Fatal(err)
			}
			err = Check(c)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || err.Error() != tc.err) {
				t.Fatalf("error:\n got %v\nwant %s", err, tc.err)
			}
		})
	}
	if _, err := LoadRunConfig(withAlg, nil, []string{"keys.k.key=" + filepath.Join(dir, "absent.pub")}); err == nil || !strings.HasPrefix(err.Error(), "--set-file keys.k.key: open ") {
		t.Fatalf("an unreadable --set-file: %v", err)
	}
}

func TestVerificationKeys(t *testing.T) {
	var cfg map[string]any
	if err := json.Unmarshal([]byte(`{"keys": {"v2": {"key": "PEM"}, "client": {"private_key": "PEM"}, "v1": {"key": "", "private_key": "PEM"}, "empty": {}, "odd": 1}}`), &cfg); err != nil {
		t.Fatal(err)
	}
	if got, want := VerificationKeys(cfg), []string{"v1", "v2"}; !slices.Equal(got, want) {
		t.Fatalf("verification keys %v, want %v", got, want)
	}
	if got := VerificationKeys(map[string]any{}); got != nil {
		t.Fatalf("verification keys %v of a configuration without keys", got)
	}
}

// A --set override of allow_unsigned_delta_bundles counts when OPA would
// parse it as true.
func TestUnsignedDeltaSourcesOverridden(t *testing.T) {
	file := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(file, []byte("keys:\n  k: {key: PEM, algorithm: ES256}\nbundles:\n  pat:\n    signing: {keyid: k}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		set  string
		want []string
	}{
		{set: "bundles.pat.signing.allow_unsigned_delta_bundles=true", want: []string{"bundles.pat"}},
		{set: "bundles.pat.signing.allow_unsigned_delta_bundles=TRUE", want: []string{"bundles.pat"}},
		{set: "discovery.signing.allow_unsigned_delta_bundles=true", want: []string{"discovery"}},
		{set: "bundles.pat.signing.allow_unsigned_delta_bundles=false"},
		{set: "bundles.pat.resource=x"},
	} {
		t.Run(tc.set, func(t *testing.T) {
			c, err := LoadRunConfig(file, []string{tc.set}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := UnsignedDeltaSources(c); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}
