// Package enforce makes a sidecar refuse configurations that would load
// unsigned bundles: a bundle source when no verification keys are configured
// at all, and, when keys are configured, a source without a signing block
// (stock OPA loads an unsigned bundle in both cases). It is light (OPA and
// the standard library only) so the pat plugin can call it.
package enforce

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/config"
	"github.com/open-policy-agent/opa/v1/util"
)

// ErrUnsignedSource is wrapped by RequireSigning's error for a source without
// a signing block while keys are configured.
var ErrUnsignedSource = errors.New("a bundle source would load unsigned bundles")

// ErrNoKeys is wrapped by RequireSigning's error for bundle sources in a
// configuration without keys.
var ErrNoKeys = errors.New("no keys are configured")

// KeylessSources returns the config paths of the bundle sources (bundles.NAME,
// discovery, the deprecated bundle) of an OPA configuration that configures
// no keys. OPA loads whatever such a source downloads, signed or not: with no
// key, a signature cannot be checked, and a bundle without one is not asked
// for. Sorted; empty when keys are configured.
func KeylessSources(cfg map[string]any) []string {
	if len(VerificationKeys(cfg)) > 0 {
		return nil
	}
	return sources(cfg, func(map[string]any) bool { return true })
}

// VerificationKeys returns the names of the verification keys under keys:,
// sorted: the entries with a key field, the only ones OPA verifies a
// bundle with. An entry with only a private_key is a service's credentials
// and verifies nothing, so keys: holding only those configures no key for
// bundles. A key field set by an override counts (LoadRunConfig records
// it).
func VerificationKeys(cfg map[string]any) []string {
	keys, _ := cfg["keys"].(map[string]any)
	var names []string
	for name, v := range keys {
		if k, _ := v.(map[string]any); k != nil {
			if _, ok := k["key"]; ok {
				names = append(names, name)
			}
		}
	}
	slices.Sort(names)
	return names
}

// UnsignedSources returns the config paths of the bundle sources in an OPA
// configuration that would accept an unsigned bundle: keys are configured,
// but the source (bundles.NAME, discovery, the deprecated bundle) has no
// signing block. Stock OPA verifies a signature such a source finds but loads
// a bundle without .signatures.json; opa-pat does not. Sorted; empty when no
// keys are configured.
func UnsignedSources(cfg map[string]any) []string {
	if len(VerificationKeys(cfg)) == 0 {
		return nil
	}
	return sources(cfg, func(src map[string]any) bool { return src["signing"] == nil })
}

// UnlimitedSources returns the config paths of the bundles: sources without
// a size_limit_bytes, or with one of 0 or less, which OPA takes for its
// default: OPA reads each file of what they download, up to 1 GiB, before
// it checks a signature. (OPA's discovery has no such limit.) A value set
// by an override (--set, --set-file) is not read (LoadRunConfig): it is
// taken as given. Sorted.
func UnlimitedSources(cfg map[string]any) []string {
	out := sources(cfg, func(src map[string]any) bool { return defaultLimit(src["size_limit_bytes"]) })
	return slices.DeleteFunc(out, func(s string) bool { return !strings.HasPrefix(s, "bundles.") })
}

// defaultLimit reports whether OPA gives a bundle source its default size
// limit for the size_limit_bytes value v: absent, or a number of 0 or less.
func defaultLimit(v any) bool {
	switch n := v.(type) {
	case nil:
		return true
	case json.Number:
		f, err := n.Float64()
		return err == nil && f <= 0
	case float64:
		return n <= 0
	case int:
		return n <= 0
	}
	return false
}

// sources returns the config paths of the bundle sources of cfg for which
// keep holds, sorted.
func sources(cfg map[string]any, keep func(src map[string]any) bool) []string {
	var out []string
	if bundles, ok := cfg["bundles"].(map[string]any); ok {
		for name, v := range bundles {
			if src, _ := v.(map[string]any); keep(src) {
				out = append(out, "bundles."+name)
			}
		}
	}
	for _, single := range []string{"bundle", "discovery"} {
		if src, ok := cfg[single].(map[string]any); ok && keep(src) {
			out = append(out, single)
		}
	}
	slices.Sort(out)
	return out
}

// RequireSigning checks a sidecar's OPA configuration (YAML or JSON) and
// refuses one that would let a bundle source load an unsigned bundle: a
// source in a configuration without keys (KeylessSources), or a source without
// a signing block beside keys (UnsignedSources). A plugin's Validate can call
// it with the manager's configuration.
func RequireSigning(raw []byte) error {
	var doc map[string]any
	if err := util.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("parsing the configuration: %w", err)
	}
	return Check(doc)
}

// Check is RequireSigning for a configuration already parsed (as
// LoadRunConfig returns it).
func Check(cfg map[string]any) error {
	if err := RequireKeys(cfg); err != nil {
		return err
	}
	if err := RequireES256(cfg); err != nil {
		return err
	}
	if err := RequireSignedDeltas(cfg); err != nil {
		return err
	}
	if unsigned := UnsignedSources(cfg); len(unsigned) > 0 {
		return unsignedError(unsigned)
	}
	return nil
}

// RequireSigningConfig is RequireSigning for the configuration a plugin
// manager holds (m.GetConfig()); nil passes.
func RequireSigningConfig(c *config.Config) error {
	if c == nil {
		return nil
	}
	doc := map[string]any{}
	for key, raw := range map[string]json.RawMessage{"keys": c.Keys, "bundles": c.Bundles, "bundle": c.Bundle, "discovery": c.Discovery} {
		if len(raw) == 0 {
			continue
		}
		var v any
		if err := util.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("parsing the configuration's %s: %w", key, err)
		}
		doc[key] = v
	}
	return Check(doc)
}

// ErrUnsignedDelta is wrapped by RequireSignedDeltas's error.
var ErrUnsignedDelta = errors.New("a bundle source would activate unsigned delta bundles")

// UnsignedDeltaSources returns the config paths of the bundle sources whose
// signing block sets allow_unsigned_delta_bundles: OPA then activates a
// delta bundle (a manifest of type delta and a patch.json), which carries
// no signature, from a source that otherwise requires one. A value set by
// --set (Overridden) counts when it is "true", as OPA parses it. Sorted.
func UnsignedDeltaSources(cfg map[string]any) []string {
	return sources(cfg, func(src map[string]any) bool {
		signing, _ := src["signing"].(map[string]any)
		switch v := signing["allow_unsigned_delta_bundles"].(type) {
		case bool:
			return v
		case Overridden:
			return strings.EqualFold(string(v), "true")
		}
		return false
	})
}

// RequireSignedDeltas refuses a sidecar configuration whose bundle source
// lets unsigned delta bundles through (UnsignedDeltaSources): whoever
// serves bundles, or changes one in transit, could then patch the
// policy's data, data.pat.settings (say, turn an organization's approval
// requirement off), without the signing key, and the sidecar would
// activate it. opa-pat builds snapshot bundles only, which are signed.
func RequireSignedDeltas(cfg map[string]any) error {
	delta := UnsignedDeltaSources(cfg)
	if len(delta) == 0 {
		return nil
	}
	paths := make([]string, len(delta))
	for i, src := range delta {
		paths[i] = src + ".signing.allow_unsigned_delta_bundles"
	}
	return fmt.Errorf("%w: %s is true, and a delta bundle carries no signature, so whoever serves bundles could change the policy's data (data.pat.settings) without the signing key; remove it: opa-pat bundle build makes signed snapshot bundles only",
		ErrUnsignedDelta, strings.Join(paths, ", "))
}

// RequireKeys refuses a configuration with bundle sources and no keys
// (KeylessSources), saying what to add. opa-pat run calls it for a sidecar
// before OPA reads the configuration; for sources beside keys it adds the
// signing blocks itself.
func RequireKeys(cfg map[string]any) error {
	if keyless := KeylessSources(cfg); len(keyless) > 0 {
		return keylessError(keyless, credentialsOnly(cfg))
	}
	return nil
}

// credentialsOnly returns the config paths of the entries under keys:, all
// of them without a key field (KeylessSources has found no verification
// key), sorted.
func credentialsOnly(cfg map[string]any) []string {
	keys, _ := cfg["keys"].(map[string]any)
	var out []string
	for _, name := range slices.Sorted(maps.Keys(keys)) {
		out = append(out, "keys."+name)
	}
	return out
}

// RequireES256 refuses a verification key (a key under keys: with a key
// field) whose algorithm is not ES256, the algorithm of opa-pat's bundle
// signatures, or whose key is not the PEM of an ECDSA P-256 public key.
// OPA would verify with whatever algorithm a key names: with HS256 the
// "public key" is an HMAC secret, and anyone who has the public PEM could
// sign a bundle with it; a signing: {} block picks the key by the
// signature's kid, which the signer writes. Another key OPA finds out
// about only when a bundle comes, with an error that does not name the
// key (a P-384 key: "failed to unpack ECDSA signature: invalid signature
// length for curve P-384"), or never, for a bundles: source that logs it
// on every poll. The error never shows the key's value. Keys with only a
// private_key (a service's credentials) are not verification keys and are
// left alone.
func RequireES256(cfg map[string]any) error {
	keys, _ := cfg["keys"].(map[string]any)
	for _, name := range slices.Sorted(maps.Keys(keys)) {
		k, _ := keys[name].(map[string]any)
		key, ok := k["key"]
		if !ok {
			continue
		}
		var alg string
		switch a := k["algorithm"].(type) {
		case string:
			alg = a
		case Overridden:
			alg = string(a)
		}
		if alg != "ES256" {
			if alg == "" {
				alg = "absent, which OPA takes for RS256"
			}
			return fmt.Errorf("keys.%s.algorithm: %s: opa-pat bundles are signed ES256 (ECDSA P-256, the cosign key), and a sidecar verifies with ES256 keys only; set algorithm: ES256 with the PEM of cosign.pub", name, alg)
		}
		if _, overridden := key.(Overridden); overridden {
			// Set by --set, whose escapes LoadRunConfig does not
			// parse: the pat plugin's check of the configuration OPA
			// built sees the key.
			continue
		}
		if err := requireP256(key); err != nil {
			return fmt.Errorf("keys.%s.key: %w", name, err)
		}
	}
	return nil
}

// requireP256 refuses a key value that is not the PEM of an ECDSA P-256
// public key, in one of the forms OPA reads for ES256 (PUBLIC KEY, or a
// CERTIFICATE's key). A private key is refused: a sidecar needs only the
// public one, and OPA would verify with it. The key's value is never put
// in the error.
func requireP256(key any) error {
	s, _ := key.(string)
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return errors.New("not a PEM public key; give the PEM of cosign.pub")
	}
	var pub any
	var err error
	switch {
	case block.Type == "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case block.Type == "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case block.Type == "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			pub = cert.PublicKey
		}
	case strings.Contains(block.Type, "PRIVATE KEY"):
		return fmt.Errorf("a private key (PEM %q); give the public key, the PEM of cosign.pub, and keep the private key off sidecars", block.Type)
	default:
		return fmt.Errorf("not a PEM public key (PEM %q); give the PEM of cosign.pub", block.Type)
	}
	if err != nil {
		return fmt.Errorf("not a PEM public key (PEM %q that does not parse); give the PEM of cosign.pub", block.Type)
	}
	if ec, ok := pub.(*ecdsa.PublicKey); ok && ec.Curve == elliptic.P256() {
		return nil
	}
	return fmt.Errorf("the public key is %s, want ECDSA P-256 (ES256)", keyKind(pub))
}

// keyKind names a public key's algorithm and size: "ECDSA P-384", "RSA 2048
// bits", "Ed25519".
func keyKind(pub any) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d bits", k.N.BitLen())
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", pub)
}

// keylessError says what to add: a key, and a signing block naming it in
// every source (a signing block is what makes OPA refuse a bundle without
// .signatures.json). The deprecated bundle section cannot be made to
// require a signature (bundle/enforce's callers refuse it beside keys).
// entries are the keys: entries there are, none with a key field: the
// error says why they do not count.
func keylessError(keyless, entries []string) error {
	why := ""
	switch len(entries) {
	case 0:
	case 1:
		why = fmt.Sprintf(" (%s has no key field: an entry with only a private_key is a service's credentials and verifies no bundle)", entries[0])
	default:
		why = fmt.Sprintf(" (%s have no key field: an entry with only a private_key is a service's credentials and verifies no bundle)", strings.Join(entries, ", "))
	}
	if slices.Contains(keyless, "bundle") {
		return fmt.Errorf("the deprecated bundle: section would load unsigned bundles: %w%s; use bundles: with keys: and a signing block instead (docs/bundles.md)", ErrNoKeys, why)
	}
	signing := make([]string, len(keyless))
	for i, src := range keyless {
		signing[i] = src + ".signing: {keyid: NAME}"
	}
	return fmt.Errorf("%s would load unsigned bundles: %w%s; add keys: {NAME: {algorithm: ES256, key: <the PEM of cosign.pub>}} and %s",
		strings.Join(keyless, ", "), ErrNoKeys, why, strings.Join(signing, ", "))
}

func unsignedError(unsigned []string) error {
	return fmt.Errorf("%w: keys are configured but %s has no signing block; add %s.signing (e.g. {keyid: NAME}) so that unsigned bundles are refused",
		ErrUnsignedSource, strings.Join(unsigned, ", "), unsigned[0])
}

// envReference is ${NAME} in a configuration file or a --set value, as OPA
// finds it (internal/config's envRegex): from "${" to the first "}" on the
// line.
var envReference = regexp.MustCompile(`(?U:\$\{.*\})`)

// SubstituteEnv replaces ${NAME} with the variable's value, as OPA does
// when it reads a configuration file and --set values: an unset variable is
// left as written (plugins.pat then refuses the value, naming it), and ${}
// is removed. opa-pat up and LoadRunConfig read the file OPA will read with
// it, so that they see what OPA sees.
func SubstituteEnv(s string) string {
	return envReference.ReplaceAllStringFunc(s, func(ref string) string {
		name := ref[2 : len(ref)-1]
		if name == "" {
			return ""
		}
		if v, ok := os.LookupEnv(name); ok {
			return v
		}
		return ref
	})
}

// Overridden is what LoadRunConfig records at a path a --set override sets:
// the text after its "=", as given (OPA's escapes, lists and types are not
// parsed).
type Overridden string

// LoadRunConfig approximates the configuration `opa run` will use, for the
// questions this package asks before OPA reads it: the file (with ${VAR}
// substituted, as OPA does) and the paths --set and --set-file overrides
// set. A --set value is recorded as Overridden; a --set-file value is the
// file's content, a string, as OPA reads it.
func LoadRunConfig(file string, overrides, overrideFiles []string) (map[string]any, error) {
	cfg := map[string]any{}
	if file != "" {
		raw, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("reading the configuration: %w", err)
		}
		if err := util.Unmarshal([]byte(SubstituteEnv(string(raw))), &cfg); err != nil {
			return nil, fmt.Errorf("parsing %s: %w", file, err)
		}
		if cfg == nil {
			cfg = map[string]any{}
		}
	}
	for i, o := range slices.Concat(overrides, overrideFiles) {
		for assignment := range strings.SplitSeq(o, ",") {
			p, v, ok := strings.Cut(assignment, "=")
			if !ok || p == "" {
				continue
			}
			var value any = Overridden(v)
			if i >= len(overrides) {
				content, err := os.ReadFile(v)
				if err != nil {
					return nil, fmt.Errorf("--set-file %s: %w", p, err)
				}
				value = string(content)
			}
			setPath(cfg, strings.Split(p, "."), value)
		}
	}
	return cfg, nil
}

// setPath sets a path to value, creating objects on the way, without
// replacing an object already there.
func setPath(m map[string]any, p []string, value any) {
	for i, k := range p {
		if i == len(p)-1 {
			if _, ok := m[k].(map[string]any); !ok {
				m[k] = value
			}
			return
		}
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
}
