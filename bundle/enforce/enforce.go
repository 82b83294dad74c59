// Package enforce makes a sidecar refuse unsigned bundles when verification
// keys are configured, which stock OPA does not do for a bundle source without
// a signing block. It is light (OPA only) so the pat plugin can call it.
package enforce

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/config"
	"github.com/open-policy-agent/opa/v1/util"
)

// ErrUnsignedSource is wrapped by RequireSigning's error.
var ErrUnsignedSource = errors.New("a bundle source would load unsigned bundles")

// UnsignedSources returns the config paths of the bundle sources in an OPA
// configuration that would accept an unsigned bundle: keys are configured,
// but the source (bundles.NAME, discovery, the deprecated bundle) has no
// signing block. Stock OPA verifies a signature such a source finds but loads
// a bundle without .signatures.json; opa-pat does not. Sorted; empty when no
// keys are configured.
func UnsignedSources(cfg map[string]any) []string {
	if keys, _ := cfg["keys"].(map[string]any); len(keys) == 0 {
		return nil
	}
	var unsigned []string
	if bundles, ok := cfg["bundles"].(map[string]any); ok {
		names := make([]string, 0, len(bundles))
		for name := range bundles {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			src, _ := bundles[name].(map[string]any)
			if src["signing"] == nil {
				unsigned = append(unsigned, "bundles."+name)
			}
		}
	}
	for _, single := range []string{"bundle", "discovery"} {
		if src, ok := cfg[single].(map[string]any); ok && src["signing"] == nil {
			unsigned = append(unsigned, single)
		}
	}
	slices.Sort(unsigned)
	return unsigned
}

// RequireSigning checks an OPA configuration (YAML or JSON) and refuses one
// that configures keys but leaves a bundle source without a signing block,
// which stock OPA would let load an unsigned bundle. A plugin's Validate can
// call it with the manager's configuration.
func RequireSigning(raw []byte) error {
	var doc map[string]any
	if err := util.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("parsing the configuration: %w", err)
	}
	if unsigned := UnsignedSources(doc); len(unsigned) > 0 {
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
	if unsigned := UnsignedSources(doc); len(unsigned) > 0 {
		return unsignedError(unsigned)
	}
	return nil
}

func unsignedError(unsigned []string) error {
	return fmt.Errorf("%w: keys are configured but %s has no signing block; add %s.signing (e.g. {keyid: NAME}) so that unsigned bundles are refused",
		ErrUnsignedSource, strings.Join(unsigned, ", "), unsigned[0])
}

// envVar is OPA's ${VAR} syntax in configuration files.
var envVar = regexp.MustCompile(`\$\{([^}]*)\}`)

// LoadRunConfig approximates the configuration `opa run` will use, for the
// one question UnsignedSources asks: the file (with ${VAR} substituted, as
// OPA does) and, from --set and --set-file overrides, the paths they set.
// Values set by overrides are not parsed; a path they set counts as present.
func LoadRunConfig(file string, overrides, overrideFiles []string) (map[string]any, error) {
	cfg := map[string]any{}
	if file != "" {
		raw, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("reading the configuration: %w", err)
		}
		expanded := envVar.ReplaceAllStringFunc(string(raw), func(m string) string {
			return os.Getenv(envVar.FindStringSubmatch(m)[1])
		})
		if err := util.Unmarshal([]byte(expanded), &cfg); err != nil {
			return nil, fmt.Errorf("parsing %s: %w", file, err)
		}
		if cfg == nil {
			cfg = map[string]any{}
		}
	}
	for _, o := range slices.Concat(overrides, overrideFiles) {
		for assignment := range strings.SplitSeq(o, ",") {
			p, _, ok := strings.Cut(assignment, "=")
			if !ok || p == "" {
				continue
			}
			setPath(cfg, strings.Split(p, "."))
		}
	}
	return cfg, nil
}

// setPath marks a path as present, creating objects on the way, without
// replacing an object already there.
func setPath(m map[string]any, p []string) {
	for i, k := range p {
		if i == len(p)-1 {
			if _, ok := m[k].(map[string]any); !ok {
				m[k] = true
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
