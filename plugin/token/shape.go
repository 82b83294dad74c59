package token

import (
	"fmt"
	"hash/crc32"
	"iter"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// A token's shape in text, whatever its prefix: where the stderr filter of
// the sidecar commands (cmd/opa-pat) hides a token, and what the store
// refuses to keep in a name or a reason (Contains) and errors do not quote
// (Quote).

// Lengths of a token's secret part, after its prefix.
const (
	// ClassicSecretLen is a classic token's: 30 random characters and the
	// checksum.
	ClassicSecretLen = ClassicRandomLen + ChecksumLen
	// FineGrainedTailLen is what follows a fine-grained token's inner "_":
	// 53 random characters and the checksum.
	FineGrainedTailLen = FineGrainedTail + ChecksumLen
)

// IsBase62 reports whether c is a character of a token's alphabet.
func IsBase62(c byte) bool { return value[c] != 0xff }

// Underscore is the length of the "_" s starts with: 1 for "_", 3 for a
// URL's "%5F", or the backslashes and "u005f" of a JSON escape (however
// many backslashes quoting added); 0 when s starts with none.
func Underscore(s string) int {
	switch {
	case s == "":
		return 0
	case s[0] == '_':
		return 1
	case s[0] == '%':
		if len(s) >= 3 && s[1] == '5' && (s[2] == 'F' || s[2] == 'f') {
			return 3
		}
	case s[0] == '\\':
		i := 1
		for i < len(s) && s[i] == '\\' {
			i++
		}
		if len(s) >= i+5 && s[i:i+4] == "u005" && (s[i+4] == 'f' || s[i+4] == 'F') {
			return i + 5
		}
	}
	return 0
}

// Secret is a span of a text shaped like a token's secret part: text[Start:End].
type Secret struct {
	// Kind is KindClassic or KindFineGrained.
	Kind string
	// Run is where the run of base62 characters that holds the secret's
	// first character starts: a prefix ending in base62 characters (or
	// other text written against the secret) is text[Run:Start].
	Run, Start, End int
}

// Secrets yields, in order and without overlap, the spans of text shaped
// like a token's secret part:
//
//   - fine-grained: the last 22 characters of a base62 run, an underscore
//     (Underscore: also escaped), and the first 59 of the next run;
//   - classic: the last 36 characters of any other base62 run of 36 or
//     more.
//
// An escaped underscore ends a run wherever it stands, and so does the end
// of a fine-grained secret. The checksum is not
// checked (Valid does): the shape alone is what a log filter hides.
func Secrets(text string) iter.Seq[Secret] {
	return func(yield func(Secret) bool) {
		for i := 0; i < len(text); {
			if !IsBase62(text[i]) {
				i += max(1, Underscore(text[i:]))
				continue
			}
			run := i
			for i < len(text) && IsBase62(text[i]) {
				i++
			}
			if i-run >= FineGrainedHead {
				if u := Underscore(text[i:]); u > 0 {
					tail := i + u
					j := tail
					for j < len(text) && IsBase62(text[j]) {
						j++
					}
					if j-tail >= FineGrainedTailLen {
						if !yield(Secret{Kind: KindFineGrained, Run: run, Start: i - FineGrainedHead, End: tail + FineGrainedTailLen}) {
							return
						}
						i = tail + FineGrainedTailLen // what follows in the run is a run of its own
						continue
					}
				}
			}
			if i-run >= ClassicSecretLen {
				if !yield(Secret{Kind: KindClassic, Run: run, Start: i - ClassicSecretLen, End: i}) {
					return
				}
			}
		}
	}
}

// Alone reports whether the secret stands alone as a token's would: a
// fine-grained shape, or a classic run of exactly 36 characters (a longer
// run is a token only after a prefix that ends in base62 characters, or
// when its checksum says so).
func (x Secret) Alone() bool { return x.Kind == KindFineGrained || x.Run == x.Start }

// Valid reports whether the secret's checksum is right: it is a token's
// secret (or, with probability 62^-6, a coincidence), whatever its prefix.
func (x Secret) Valid(text string) bool {
	s := text[x.Start:x.End]
	if x.Kind == KindClassic {
		return checksumOK(s[:ClassicRandomLen], s[ClassicRandomLen:])
	}
	head, tail := s[:FineGrainedHead], s[len(s)-FineGrainedTailLen:]
	crc := crc32.Update(0, crc32.IEEETable, bytesOf(head))
	crc = crc32.Update(crc, crc32.IEEETable, underscore)
	crc = crc32.Update(crc, crc32.IEEETable, bytesOf(tail[:FineGrainedTail]))
	return checksumIs(tail[FineGrainedTail:], crc)
}

// After reports whether prefix, in any case, stands right before the
// secret.
func (x Secret) After(text, prefix string) bool {
	return prefix != "" && x.Start >= len(prefix) && strings.EqualFold(text[x.Start-len(prefix):x.Start], prefix)
}

var underscore = []byte{'_'}

// bytesOf is s's bytes without a copy; they are only read.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// Contains reports whether text holds a token or what is left of one: a
// secret whose checksum is right, whatever its prefix, or one of a token's
// shapes right after a known prefix in any case (a token written in lower
// case, or mistyped). Known prefixes are GitHub's, those given and those
// this process noted (NotePrefixes). It reads text once and does not
// allocate; a text shorter than a classic secret is answered at once.
func Contains(text string, prefixes ...Prefixes) bool {
	if len(text) < ClassicSecretLen {
		return false
	}
	for x := range Secrets(text) {
		if _, ok := x.token(text, prefixes); ok {
			return true
		}
	}
	return false
}

// token is the span Contains finds a token in, and Redact hides, when x is
// a token's: x itself (isToken); the whole run, when the run's first 36
// characters are a classic secret (head); or, for a fine-grained shape that
// is no token's, a classic reading of the runs around its "_" (around).
func (x Secret) token(text string, prefixes []Prefixes) (Secret, bool) {
	if h, ok := x.head(); ok && h.Valid(text) {
		// The whole run: the token and what is written against it.
		x.Start = h.Start
		return x, true
	}
	if x.isToken(text, prefixes) {
		return x, true
	}
	readings, n := x.around(text)
	for _, c := range readings[:n] {
		if s, ok := c.token(text, prefixes); ok {
			return s, true
		}
	}
	return Secret{}, false
}

// around is, for a fine-grained shape, the classic readings of the two runs
// its "_" joins, each read as Secrets reads a run of 36 or more (its last
// 36): the run that ends at the "_", when it is that long, and the run that
// starts after it (59 or more). Secrets reads such text as fine-grained
// first, and a classic token stands there when "_" and 59 base62
// characters follow it (ghp_…_ and a SHA-256 in hex, say) or when it starts
// the run after the "_".
func (x Secret) around(text string) (readings [2]Secret, n int) {
	if x.Kind != KindFineGrained {
		return readings, 0
	}
	if end := x.Start + FineGrainedHead; end-x.Run >= ClassicSecretLen {
		readings[n] = Secret{Kind: KindClassic, Run: x.Run, Start: end - ClassicSecretLen, End: end}
		n++
	}
	tail, end := x.End-FineGrainedTailLen, x.End
	for end < len(text) && IsBase62(text[end]) {
		end++
	}
	readings[n] = Secret{Kind: KindClassic, Run: tail, Start: end - ClassicSecretLen, End: end}
	return readings, n + 1
}

// Widened is the span a log filter hides for a secret's shape: x, or, for
// a fine-grained shape whose run before the "_" is as long as a classic
// secret or longer, from that run's start, which may be a classic token's
// secret (around).
func (x Secret) Widened() Secret {
	if x.Kind == KindFineGrained && x.Start+FineGrainedHead-x.Run >= ClassicSecretLen {
		x.Start = x.Run
	}
	return x
}

// head is, for a classic secret at the end of a longer run, the run's first
// 36 characters: a token written against what follows it ("ghp_…s", two
// tokens pasted together) has its secret there, not at the run's end. Only
// a right checksum makes it a token's (a known prefix before a longer run
// is not enough).
func (x Secret) head() (Secret, bool) {
	if x.Kind != KindClassic || x.Run == x.Start {
		return Secret{}, false
	}
	return Secret{Kind: KindClassic, Run: x.Run, Start: x.Run, End: x.Run + ClassicSecretLen}, true
}

// Redact replaces the secret part of every token Contains finds in text
// with "[redacted]", the prefix staying: unlike the log filter's shapes
// alone, it leaves other runs of 36 characters (a temporary directory's
// name in a path) as they are.
func Redact(text string, prefixes ...Prefixes) string {
	if len(text) < ClassicSecretLen {
		return text
	}
	var out strings.Builder
	last := 0
	for x := range Secrets(text) {
		s, ok := x.token(text, prefixes)
		if !ok || s.End <= last {
			continue
		}
		// A classic reading after a fine-grained shape's "_" may reach into
		// the next span Secrets yields.
		s.Start = max(s.Start, last)
		out.WriteString(text[last:s.Start])
		out.WriteString("[redacted]")
		last = s.End
	}
	if last == 0 {
		return text
	}
	out.WriteString(text[last:])
	return out.String()
}

// isToken reports whether the secret is a token's by Contains's rules.
func (x Secret) isToken(text string, prefixes []Prefixes) bool {
	if x.Valid(text) || x.After(text, DefaultPrefixes.Classic) || x.After(text, DefaultPrefixes.FineGrained) {
		return true
	}
	for _, p := range prefixes {
		if x.After(text, p.Classic) || x.After(text, p.FineGrained) {
			return true
		}
	}
	for _, p := range NotedPrefixes() {
		if x.After(text, p) {
			return true
		}
	}
	return false
}

// Quote quotes s as strconv.Quote does for an error message, unless s may
// hold a token (Contains, or a secret's shape standing alone): it is then
// described, not shown, since errors end up in terminals, CI logs and
// proxies' logs.
func Quote(s string) string {
	if Hidden(s) {
		return fmt.Sprintf("(%d characters, not shown: it looks like a personal access token)", utf8.RuneCountInString(s))
	}
	return strconv.Quote(s)
}

// Hidden reports whether Quote would describe s rather than show it: s
// holds a token by Contains's rules, a secret's shape that stands alone
// (Secret.Alone), or what the decision-log mask takes for a token
// (maskShaped), such as a token that lost a few characters at its end.
// Prefixes given count as GitHub's do. It does not allocate.
func Hidden(s string, prefixes ...Prefixes) bool {
	if maskShaped(s, prefixes...) {
		return true
	}
	if len(s) < ClassicSecretLen {
		return false
	}
	for x := range Secrets(s) {
		if x.Alone() {
			return true
		}
	}
	return Contains(s, prefixes...)
}

// maskRunLen is the least number of token characters after a prefix that
// the decision-log mask takes for a token's: a classic token's random part.
const maskRunLen = ClassicRandomLen

// maskShaped reports whether s holds a known prefix (GitHub's, those
// given, those this process noted), in any case, followed by maskRunLen or
// more letters, digits and "_" with an upper-case letter or digit among
// them: the rule by which the decision-log mask (rego/system/log/log.rego,
// _prefix_shaped) hides a token of any length. A token cut short is such a
// value, while a word that starts with a prefix ("acmecorp", "acme-corp"),
// a prefix alone and a lower-case run as long as a token's are not. It
// reads s once per prefix and does not allocate.
func maskShaped(s string, prefixes ...Prefixes) bool {
	if len(s) <= maskRunLen {
		return false
	}
	if prefixShaped(s, DefaultPrefixes.Classic) || prefixShaped(s, DefaultPrefixes.FineGrained) {
		return true
	}
	for _, p := range prefixes {
		if prefixShaped(s, p.Classic) || prefixShaped(s, p.FineGrained) {
			return true
		}
	}
	for _, p := range NotedPrefixes() {
		if prefixShaped(s, p) {
			return true
		}
	}
	return false
}

// prefixShaped is maskShaped for one prefix.
func prefixShaped(s, prefix string) bool {
	n := len(prefix)
	if n == 0 {
		return false
	}
	first := lowerASCII(prefix[0])
	for i := 0; i+n+maskRunLen <= len(s); {
		if lowerASCII(s[i]) != first || !strings.EqualFold(s[i:i+n], prefix) {
			i++
			continue
		}
		j, strong := i+n, false
		for ; j < len(s) && (IsBase62(s[j]) || s[j] == '_'); j++ {
			strong = strong || s[j] <= '9' || s[j] <= 'Z' && s[j] >= 'A'
		}
		if strong && j-(i+n) >= maskRunLen {
			return true
		}
		// The prefix again before j-n+1 is followed by the end of this
		// run, which holds no more than this run did.
		i = max(i+1, j-n+1)
	}
	return false
}

func lowerASCII(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
