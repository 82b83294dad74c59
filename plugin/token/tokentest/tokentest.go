// Package tokentest makes valid tokens from given bytes, for fuzz tests,
// which must make the same token again to reproduce a failure
// (token.Generate draws from crypto/rand), and says what a redaction left
// of one.
package tokentest

import (
	"strings"
	"testing"

	"github.com/opa-pat/opa-pat/plugin/token"
)

const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// FromBytes returns a valid token with GitHub's prefixes, classic or
// fine-grained, whose random characters are drawn from random (any bytes,
// none too), and its prefix.
func FromBytes(random []byte, fine bool) (raw, prefix string) {
	chars := func(n, from int) string {
		b := make([]byte, n)
		for i := range b {
			c := byte(i*37 + from)
			if len(random) > 0 {
				c += random[(i+from)%len(random)]
			}
			b[i] = alphabet[int(c)%len(alphabet)]
		}
		return string(b)
	}
	if !fine {
		r := chars(token.ClassicRandomLen, 0)
		return token.DefaultPrefixes.Classic + r + token.Checksum(r), token.DefaultPrefixes.Classic
	}
	covered := chars(token.FineGrainedHead, 0) + "_" + chars(token.FineGrainedTail, token.FineGrainedHead)
	return token.DefaultPrefixes.FineGrained + covered + token.Checksum(covered), token.DefaultPrefixes.FineGrained
}

// Leak is the first 12 characters in a row of secret that out holds and
// neither before nor after does (the text that stood around the token), or
// "": what a redaction of before+token+after left of the token's secret.
func Leak(out, secret, before, after string) string {
	const window = 12
	for i := 0; i+window <= len(secret); i++ {
		w := secret[i : i+window]
		if strings.Contains(out, w) && !strings.Contains(before, w) && !strings.Contains(after, w) {
			return w
		}
	}
	return ""
}

// AddSeeds adds a fuzz test's first inputs (before, after, random, fine):
// texts around a token where a fine-grained secret's shape is read first
// ("_" or an escape of it, and a SHA-256 in hex), runs written against it,
// and JSON.
func AddSeeds(f *testing.F) {
	const sha256Hex = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	f.Add("key ", "_"+sha256Hex, []byte("seed"), false)
	f.Add(strings.Repeat("a", 19), strings.Repeat("b", 23), []byte{1, 2, 3}, false)
	f.Add(strings.Repeat("a", 19), strings.Repeat("b", 23)+"_"+sha256Hex, []byte{7}, false)
	f.Add("x%5F", "%5F"+sha256Hex, []byte{}, true)
	f.Add(`{"t":"`, `\u005f`+sha256Hex+`"}`, []byte{9, 9}, true)
	f.Add("", "", []byte("fine"), true)
}
