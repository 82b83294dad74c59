package token_test

import (
	"testing"

	"github.com/opa-pat/opa-pat/plugin/token"
	"github.com/opa-pat/opa-pat/plugin/token/tokentest"
)

// Whatever text stands around a token, Contains finds it and Redact leaves
// nothing of its secret (tokentest.Leak).
func FuzzRedact(f *testing.F) {
	tokentest.AddSeeds(f)
	f.Fuzz(func(t *testing.T, before, after string, random []byte, fine bool) {
		raw, prefix := tokentest.FromBytes(random, fine)
		if _, ok := token.Parse(raw, token.DefaultPrefixes); !ok {
			t.Fatalf("tokentest made %q, which Parse refuses", raw)
		}
		text := before + raw + after
		if !token.Contains(text) {
			t.Fatalf("Contains(%q) = false", text)
		}
		got := token.Redact(text)
		if leaked := tokentest.Leak(got, raw[len(prefix):], before, after); leaked != "" {
			t.Fatalf("Redact(%q) = %q: %q is left of the token's secret", text, got, leaked)
		}
	})
}
