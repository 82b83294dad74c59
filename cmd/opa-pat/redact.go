package main

import (
	"bufio"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/logging"

	"github.com/opa-pat/opa-pat/plugin/token"
)

// OPA's server logs request and response bodies at --log-level debug
// ("req_body", "resp_body"), and a query's input carries the raw token. The
// sidecar commands (run, up) therefore write stderr, where every log line
// goes, through redactLine: whatever is shaped like a personal access
// token's secret part, whatever its prefix, and Basic credentials become
// "[redacted]". Stdout is left alone: `token create` prints its token there,
// once, on purpose.

// basicCredentials are Basic credentials (a token as the password or the
// user name).
var basicCredentials = regexp.MustCompile(`(?i)(basic\s+)[A-Za-z0-9+/]{8,}={0,2}`)

const redacted = "[redacted]"

// prefixed is a pattern for classic tokens after the prefixes the plugin
// noted (token.NotePrefixes): a prefix that ends in a base62 character
// makes one run with the secret, which the 36-character rule below misses.
var prefixed struct {
	sync.Mutex
	prefixes []string
	re       *regexp.Regexp
}

func prefixedPattern() *regexp.Regexp {
	noted := token.NotedPrefixes()
	prefixed.Lock()
	defer prefixed.Unlock()
	if prefixed.re == nil || !slices.Equal(prefixed.prefixes, noted) {
		quoted := []string{regexp.QuoteMeta(token.DefaultPrefixes.Classic)}
		for _, p := range noted {
			quoted = append(quoted, regexp.QuoteMeta(p))
		}
		prefixed.prefixes = noted
		prefixed.re = regexp.MustCompile(`(` + strings.Join(quoted, "|") + `)[0-9A-Za-z]{` + strconv.Itoa(token.ClassicSecretLen) + `}`)
	}
	return prefixed.re
}

// redactLine removes token secrets from one log line, by their shapes
// (token.Secrets): a fine-grained token's secret, 22 and 59 base62
// characters around "_" (also written %5F, as a path is logged as sent,
// or \u005f, as a JSON body is, after any number of backslashes as a log
// line quotes it), with the whole run before the "_" when that run is as
// long as a classic secret (token.Secret.Widened); a classic token's, a
// run of exactly 36 base62 characters (30 random and a 6-digit checksum
// after the prefix), 36 after a known prefix, or the last 36 of a longer
// run when their checksum is right (a prefix ending in base62 characters
// that this process did not note); and Basic credentials. Other runs are left
// alone. An escaped "_" ends a run. Then what is left of a token cut short
// after a known prefix (redactCutShort).
func redactLine(line []byte) []byte {
	line = redactSecrets(line, func(x token.Secret, _ string) bool { return x.Kind == token.KindFineGrained })
	line = basicCredentials.ReplaceAll(line, []byte("${1}"+redacted))
	line = prefixedPattern().ReplaceAll(line, []byte("${1}"+redacted))
	line = redactSecrets(line, func(x token.Secret, s string) bool { return x.Alone() || x.Valid(s) })
	line = jsonEscapedRun.ReplaceAll(line, []byte(redacted))
	return redactCutShort(line)
}

// jsonEscapedRun is 30 or more letters, digits and "_" in a row, each
// written as a JSON escape (\u0067\u0068\u0070\u005f..., after any number
// of backslashes, as a log line quotes a body): JSON encoders escape no
// such character, and a body logged as the client sent it may hold a token
// so written.
var jsonEscapedRun = regexp.MustCompile(`(?:\\+u00(?:3[0-9]|[46][1-9A-Fa-f]|[57][0-9Aa]|5[Ff])){30,}`)

// cutShort is a pattern for what follows a known prefix (GitHub's and
// those the plugin noted, in any case, each "_" also escaped): a run of
// token characters, escaped underscores among them.
var cutShort struct {
	sync.Mutex
	prefixes []string
	re       *regexp.Regexp
}

// escapedUnderscore is "_" as a log line may hold it: itself, %5F, or a
// JSON escape after any number of backslashes.
const escapedUnderscore = `(?:_|%5[Ff]|\\+u005[Ff])`

func cutShortPattern() *regexp.Regexp {
	noted := token.NotedPrefixes()
	cutShort.Lock()
	defer cutShort.Unlock()
	if cutShort.re == nil || !slices.Equal(cutShort.prefixes, noted) {
		var alts []string
		for _, p := range append([]string{token.DefaultPrefixes.Classic, token.DefaultPrefixes.FineGrained}, noted...) {
			alts = append(alts, strings.ReplaceAll(regexp.QuoteMeta(p), "_", escapedUnderscore))
		}
		cutShort.prefixes = noted
		cutShort.re = regexp.MustCompile(`(?i)(?:` + strings.Join(alts, "|") + `)((?:[0-9A-Za-z]|` + escapedUnderscore + `)+)`)
	}
	return cutShort.re
}

// escapedUnderscores matches the escapes of "_" that escapedUnderscore
// allows.
var escapedUnderscores = regexp.MustCompile(`(?i)%5F|\\+u005F`)

// redactCutShort hides what is left of a token cut short or mistyped after
// a known prefix: 30 or more token characters (a classic token's random
// part, from which its checksum follows) with a capital or a digit among
// them, as the decision-log mask and token.Hidden read a token. The shapes
// above want a whole secret, 36 characters: a token without its last one,
// in a query's input at --log-level debug, was logged as sent.
func redactCutShort(line []byte) []byte {
	matches := cutShortPattern().FindAllSubmatchIndex(line, -1)
	if matches == nil {
		return line
	}
	var out []byte
	last := 0
	for _, m := range matches {
		run := escapedUnderscores.ReplaceAll(line[m[2]:m[3]], []byte("_"))
		if len(run) < token.ClassicRandomLen || !strongRun.Match(run) {
			continue
		}
		out = append(out, line[last:m[2]]...)
		out = append(out, redacted...)
		last = m[3]
	}
	if out == nil {
		return line
	}
	return append(out, line[last:]...)
}

// strongRun holds a capital or a digit: permission and rule names, lower
// case, are not tokens.
var strongRun = regexp.MustCompile(`[A-Z0-9]`)

// redactSecrets replaces the secrets of line that hide selects.
func redactSecrets(line []byte, hide func(x token.Secret, s string) bool) []byte {
	s := string(line)
	var out []byte
	last := 0
	for x := range token.Secrets(s) {
		if !hide(x, s) {
			continue
		}
		x = x.Widened()
		out = append(out, s[last:x.Start]...)
		out = append(out, redacted...)
		last = x.End
	}
	if out == nil {
		return line
	}
	return append(out, s[last:]...)
}

// redactStderr sends what the process writes to os.Stderr through
// redactLine, line by line, to the real stderr. The returned function
// flushes what is pending; call it before the process exits.
func redactStderr() (flush func()) {
	r, w, err := os.Pipe()
	if err != nil {
		return func() {}
	}
	real := os.Stderr
	os.Stderr = w
	logging.Get().SetOutput(w) // OPA's global logger took os.Stderr at init
	done := make(chan struct{})
	go func() {
		defer close(done)
		br := bufio.NewReaderSize(r, 64<<10)
		for {
			line, err := br.ReadBytes('\n')
			if len(line) > 0 {
				_, _ = real.Write(redactLine(line))
			}
			if err != nil {
				return
			}
		}
	}()
	return func() {
		os.Stderr = real
		logging.Get().SetOutput(real)
		_ = w.Close()
		<-done
	}
}
