// Package token is opa-pat's personal access token format: parsing (prefix,
// length, alphabet and CRC32 checksum, with no store lookup), generation from
// a CSPRNG, and the SHA-256 the store keeps instead of the raw token.
//
// Layouts (base62 alphabet 0-9A-Za-z; the checksum is the CRC32 (IEEE) of the
// covered characters, written in base62 and zero-padded to 6 characters):
//
//	classic:      <Classic prefix> + 30 random + checksum(the 30)              "ghp_" + 36 = 40 chars
//	fine-grained: <FineGrained prefix> + 22 random + "_" + 53 random + checksum(22 + "_" + 53)
//	                                                                             "github_pat_" + 82 = 93 chars
//
// For a fine-grained token the checksum covers the 76 characters between the
// prefix and the checksum, the inner underscore included.
package token

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"strings"
	"sync/atomic"
)

// Kinds, the same strings as the store's.
const (
	KindClassic     = "classic"
	KindFineGrained = "fine_grained"
)

// Lengths of the parts of a token.
const (
	ClassicRandomLen = 30
	FineGrainedHead  = 22
	FineGrainedTail  = 53
	ChecksumLen      = 6
)

// Prefixes are the token prefixes of a deployment.
type Prefixes struct {
	Classic     string
	FineGrained string
}

// DefaultPrefixes are GitHub's.
var DefaultPrefixes = Prefixes{Classic: "ghp_", FineGrained: "github_pat_"}

// MaxPrefixLen bounds a prefix. GitHub's longest is "github_pat_" (11
// bytes); a raw token is longer than this, so a token pasted where a
// prefix belongs is refused rather than kept in the store in plain text.
const MaxPrefixLen = 20

// Validate reports a prefix configuration that cannot be parsed
// unambiguously, or a prefix longer than MaxPrefixLen.
func (p Prefixes) Validate() error {
	if p.Classic == "" {
		return errors.New("classic prefix must not be empty")
	}
	if p.FineGrained == "" {
		return errors.New("fine_grained prefix must not be empty")
	}
	for _, e := range []struct{ name, prefix string }{{"classic", p.Classic}, {"fine_grained", p.FineGrained}} {
		if len(e.prefix) > MaxPrefixLen {
			// Not quoted: so long a prefix may be a token pasted in the wrong place.
			return fmt.Errorf("%s prefix is %d bytes long, more than %d; a prefix is what comes before a token's random part, such as \"acme_\"",
				e.name, len(e.prefix), MaxPrefixLen)
		}
	}
	if p.Classic == p.FineGrained {
		return fmt.Errorf("classic and fine_grained prefixes must differ, both are %q", p.Classic)
	}
	return nil
}

const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// value maps a byte to its base62 digit, or 0xff when it is not one.
var value = func() (v [256]byte) {
	for i := range v {
		v[i] = 0xff
	}
	for i := 0; i < len(alphabet); i++ {
		v[alphabet[i]] = byte(i)
	}
	return v
}()

// Parse checks a raw token's prefix, length, alphabet and checksum and
// returns its kind. It does not allocate. Lengths are fixed, so a prefix
// may even be a prefix of the other one.
func Parse(raw string, p Prefixes) (kind string, ok bool) {
	if p.Classic != "" && len(raw) == len(p.Classic)+ClassicRandomLen+ChecksumLen && strings.HasPrefix(raw, p.Classic) {
		body := raw[len(p.Classic):]
		if base62(body) && checksumOK(body[:ClassicRandomLen], body[ClassicRandomLen:]) {
			return KindClassic, true
		}
		return "", false
	}
	const covered = FineGrainedHead + 1 + FineGrainedTail
	if p.FineGrained != "" && len(raw) == len(p.FineGrained)+covered+ChecksumLen && strings.HasPrefix(raw, p.FineGrained) {
		body := raw[len(p.FineGrained):]
		if body[FineGrainedHead] == '_' && base62(body[:FineGrainedHead]) && base62(body[FineGrainedHead+1:]) &&
			checksumOK(body[:covered], body[covered:]) {
			return KindFineGrained, true
		}
	}
	return "", false
}

func base62(s string) bool {
	for i := 0; i < len(s); i++ {
		if value[s[i]] == 0xff {
			return false
		}
	}
	return true
}

// checksumOK compares the CRC32 of covered with the base62 digits in sum.
func checksumOK(covered, sum string) bool {
	return checksumIs(sum, crcString(covered))
}

// checksumIs compares the base62 digits in sum with crc.
func checksumIs(sum string, crc uint32) bool {
	var n uint64
	for i := 0; i < len(sum); i++ {
		n = n*62 + uint64(value[sum[i]])
	}
	return n == uint64(crc)
}

// crcString is crc32.ChecksumIEEE over a string without copying it into a
// byte slice (a copy would allocate on the reject path).
func crcString(s string) uint32 {
	return crc32.ChecksumIEEE(bytesOf(s))
}

// Checksum returns the 6-character base62 checksum of s.
func Checksum(s string) string {
	return string(appendChecksum(nil, crcString(s)))
}

func appendChecksum(dst []byte, sum uint32) []byte {
	var b [ChecksumLen]byte
	n := uint64(sum)
	for i := ChecksumLen - 1; i >= 0; i-- {
		b[i] = alphabet[n%62]
		n /= 62
	}
	return append(dst, b[:]...)
}

// Generate returns a new raw token of kind with random parts from crypto/rand.
func Generate(kind string, p Prefixes) (string, error) {
	var prefix string
	var n int
	switch kind {
	case KindClassic:
		prefix, n = p.Classic, ClassicRandomLen
	case KindFineGrained:
		prefix, n = p.FineGrained, FineGrainedHead+1+FineGrainedTail
	default:
		return "", fmt.Errorf("kind: unknown kind %q", kind)
	}
	if prefix == "" {
		return "", fmt.Errorf("kind: no prefix configured for %q", kind)
	}
	body := make([]byte, n, n+ChecksumLen)
	if err := randomBase62(body); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	if kind == KindFineGrained {
		body[FineGrainedHead] = '_'
	}
	body = appendChecksum(body, crc32.ChecksumIEEE(body))
	return prefix + string(body), nil
}

// randomBase62 fills b with uniformly random base62 digits (rejection
// sampling: bytes >= 248 are drawn again, so no digit is favoured).
func randomBase62(b []byte) error {
	var buf [128]byte
	filled := 0
	for filled < len(b) {
		if _, err := rand.Read(buf[:]); err != nil {
			return err
		}
		for _, c := range buf {
			if c >= 62*4 {
				continue
			}
			b[filled] = alphabet[c%62]
			filled++
			if filled == len(b) {
				break
			}
		}
	}
	return nil
}

// Hash is the SHA-256 of a raw token: what the store keeps.
func Hash(raw string) [32]byte {
	return sha256.Sum256([]byte(raw))
}

// noted holds the prefixes in use in this process (NotePrefixes).
var noted atomic.Pointer[[]string]

// NotePrefixes records the prefixes a sidecar's plugin issues and accepts,
// so that its log filter (cmd/opa-pat) can recognise tokens whose prefix
// does not end in "_".
func NotePrefixes(p Prefixes) {
	for {
		old := noted.Load()
		var list []string
		if old != nil {
			list = append(list, *old...)
		}
		for _, v := range []string{p.Classic, p.FineGrained} {
			if v != "" && !slices.Contains(list, v) {
				list = append(list, v)
			}
		}
		if noted.CompareAndSwap(old, &list) {
			return
		}
	}
}

// KnownPrefixes returns GitHub's prefixes followed by those NotePrefixes
// recorded, each once: the prefixes whose tokens this process may meet.
func KnownPrefixes() []string {
	list := []string{DefaultPrefixes.Classic, DefaultPrefixes.FineGrained}
	for _, p := range NotedPrefixes() {
		if !slices.Contains(list, p) {
			list = append(list, p)
		}
	}
	return list
}

// NotedPrefixes returns the prefixes NotePrefixes recorded, nil when none.
func NotedPrefixes() []string {
	if p := noted.Load(); p != nil {
		return *p
	}
	return nil
}
