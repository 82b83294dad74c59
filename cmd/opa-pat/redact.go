package main

import (
	"bufio"
	"os"
	"regexp"
	"slices"
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

var (
	// A fine-grained token's secret: 22 and 59 base62 characters around "_",
	// also written %5F (a path is logged as sent) or \u005f (a JSON body,
	// as a log line quotes it: \\u005f).
	fineGrainedSecret = regexp.MustCompile(`[0-9A-Za-z]{22}(?:_|%5[Ff]|\\+u005[Ff])[0-9A-Za-z]{59}`)
	// Basic credentials (a token as the password or the user name).
	basicCredentials = regexp.MustCompile(`(?i)(basic\s+)[A-Za-z0-9+/]{8,}={0,2}`)
)

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
		prefixed.re = regexp.MustCompile(`(` + strings.Join(quoted, "|") + `)[0-9A-Za-z]{36}`)
	}
	return prefixed.re
}

// redactLine removes token secrets from one log line. A classic token's
// secret is a run of exactly 36 base62 characters (30 random and a 6-digit
// checksum after the prefix), or 36 after a known prefix; other runs are
// left alone. An escaped "_" ends a run: "%5F", or JSON's "\u005f" (after
// any number of backslashes, as a log line quotes a JSON body).
func redactLine(line []byte) []byte {
	line = fineGrainedSecret.ReplaceAll(line, []byte(redacted))
	line = basicCredentials.ReplaceAll(line, []byte("${1}"+redacted))
	line = prefixedPattern().ReplaceAll(line, []byte("${1}"+redacted))
	out := line[:0:0]
	start := -1
	flush := func(end int) {
		if start >= 0 && end-start == 36 {
			out = append(out, redacted...)
		} else if start >= 0 {
			out = append(out, line[start:end]...)
		}
		start = -1
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		if c == '%' && i+2 < len(line) && line[i+1] == '5' && (line[i+2] == 'F' || line[i+2] == 'f') {
			flush(i)
			out = append(out, line[i:i+3]...)
			i += 2
			continue
		}
		if c == '\\' {
			j := i
			for j < len(line) && line[j] == '\\' {
				j++
			}
			if n := escapedUnderscore(line[j:]); n > 0 {
				flush(i)
				out = append(out, line[i:j+n]...)
				i = j + n - 1
				continue
			}
		}
		if isBase62(c) {
			if start < 0 {
				start = i
			}
			continue
		}
		flush(i)
		out = append(out, c)
	}
	flush(len(line))
	return out
}

// escapedUnderscore is the length of "u005f" (or "u005F") at the start of b,
// 0 when it does not start so.
func escapedUnderscore(b []byte) int {
	if len(b) >= 5 && string(b[:4]) == "u005" && (b[4] == 'f' || b[4] == 'F') {
		return 5
	}
	return 0
}

func isBase62(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
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
