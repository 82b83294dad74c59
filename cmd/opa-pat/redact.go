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
// line quotes it); a classic token's, a run of exactly 36 base62
// characters (30 random and a 6-digit checksum after the prefix), 36
// after a known prefix, or the last 36 of a longer run when their
// checksum is right (a prefix ending in base62 characters that this
// process did not note); and Basic credentials. Other runs are left
// alone. An escaped "_" ends a run.
func redactLine(line []byte) []byte {
	line = redactSecrets(line, func(x token.Secret, _ string) bool { return x.Kind == token.KindFineGrained })
	line = basicCredentials.ReplaceAll(line, []byte("${1}"+redacted))
	line = prefixedPattern().ReplaceAll(line, []byte("${1}"+redacted))
	return redactSecrets(line, func(x token.Secret, s string) bool { return x.Alone() || x.Valid(s) })
}

// redactSecrets replaces the secrets of line that hide selects.
func redactSecrets(line []byte, hide func(x token.Secret, s string) bool) []byte {
	s := string(line)
	var out []byte
	last := 0
	for x := range token.Secrets(s) {
		if !hide(x, s) {
			continue
		}
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
