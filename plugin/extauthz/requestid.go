package extauthz

import (
	"encoding/base64"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/opa-pat/opa-pat/plugin/token"
)

// redactedRequestID stands in the decision log for a request id that may
// hold a credential.
const redactedRequestID = "[REDACTED]"

// loggedRequestID is the request id as a decision-log event's
// custom.request_id carries it. The request id is the client's x-request-id
// when Envoy keeps it (preserve_external_request_id), and OPA's mask
// (rego/system/log) reaches an event's input and result, not its custom
// fields: an id that may hold a credential is replaced here, as the mask
// replaces it in the input (attributes.request.http.id), by the same tests:
// a token's shape (GitHub's, or after a prefix this process knows that has
// no "_"), also written with escapes, or the request's own credential.
func loggedRequestID(id string, headers headerList) string {
	if id == "" || !mayHoldCredential(id, headers) {
		return id
	}
	return redactedRequestID
}

var (
	// A token's shape (log.rego, _token_shaped): a prefix, "_", and 30 or
	// more letters, digits and "_" with an upper-case letter or digit after
	// the "_".
	tokenRun  = regexp.MustCompile(`[A-Za-z0-9]+_[A-Za-z0-9_]{30,}`)
	tokenTail = regexp.MustCompile(`_[A-Za-z0-9_]*[A-Z0-9]`)
	// "_" written as %5F or JSON's \u005f.
	escapedUnderscore = regexp.MustCompile(`%5[Ff]|\\+u005[Ff]`)
)

func tokenShaped(s string) bool {
	if !strings.Contains(s, "_") {
		return false
	}
	for _, run := range tokenRun.FindAllString(s, -1) {
		if tokenTail.MatchString(run) {
			return true
		}
	}
	return false
}

// shaped reports whether s holds a token's shape: GitHub's, whatever the
// prefix before its "_", or after a prefix of this deployment's that has
// none (log.rego, _has_token_shape).
func shaped(s string) bool { return tokenShaped(s) || prefixShaped(s) }

// prefixShaped reports whether s holds a token of a prefix that tokenShaped
// may not see (log.rego, _prefix_shaped): the prefix, in any case, then 30
// or more letters, digits and "_" with an upper-case letter or digit among
// them. The prefixes are those pat.token_prefixes answers with
// (token.KnownPrefixes).
func prefixShaped(s string) bool {
	re := prefixPattern()
	if re == nil {
		return false
	}
	for _, m := range re.FindAllStringSubmatch(s, -1) {
		if upperOrDigit.MatchString(m[1]) {
			return true
		}
	}
	return false
}

var (
	upperOrDigit = regexp.MustCompile(`[A-Z0-9]`)
	// A prefix after which tokenShaped sees a token: a "_" after a letter
	// or digit, and nothing but letters, digits and "_" after it
	// (log.rego, _bare_prefixes).
	underscored = regexp.MustCompile(`[A-Za-z0-9]_[A-Za-z0-9_]*$`)
)

type prefixes struct {
	noted []string
	re    *regexp.Regexp // nil: none that tokenShaped may not see
}

var prefixCache atomic.Pointer[prefixes]

// prefixPattern is the pattern of the known prefixes whose tokens
// tokenShaped may not see (log.rego, _prefix_pattern), made again only when
// the noted prefixes change; nil when there are none.
func prefixPattern() *regexp.Regexp {
	noted := token.NotedPrefixes()
	if c := prefixCache.Load(); c != nil && slices.Equal(c.noted, noted) {
		return c.re
	}
	c := &prefixes{noted: noted}
	var quoted []string
	for _, p := range token.KnownPrefixes() {
		if !underscored.MatchString(p) {
			quoted = append(quoted, regexp.QuoteMeta(p))
		}
	}
	if len(quoted) > 0 {
		c.re = regexp.MustCompile(`(?i)(?:` + strings.Join(quoted, "|") + `)([A-Za-z0-9_]{30,})`)
	}
	prefixCache.Store(c)
	return c.re
}

// basicCredentials finds Basic credentials inside a string (log.rego,
// _basic_secret): what they decode to is searched too.
var basicCredentials = regexp.MustCompile(`(?i)\bbasic\s+([A-Za-z0-9+/]{8,}={0,2})`)

func mayHoldCredential(s string, headers headerList) bool {
	if holdsSecret(s, headers) {
		return true
	}
	if !strings.Contains(strings.ToLower(s), "basic") {
		return false
	}
	for _, m := range basicCredentials.FindAllStringSubmatch(s, -1) {
		if decoded, err := base64.StdEncoding.DecodeString(m[1]); err == nil && holdsSecret(string(decoded), headers) {
			return true
		}
	}
	return false
}

// holdsSecret reports whether s holds a token's shape, also written with
// escapes, or one of the request's own credentials.
func holdsSecret(s string, headers headerList) bool {
	if shaped(s) {
		return true
	}
	if strings.Contains(s, "%") || strings.Contains(s, `\u`) {
		if shaped(escapedUnderscore.ReplaceAllString(s, "_")) {
			return true
		}
		if u, err := url.QueryUnescape(s); err == nil && shaped(u) {
			return true
		}
	}
	for _, c := range headerCredentials(headers) {
		if strings.Contains(s, c) {
			return true
		}
	}
	return false
}

// headerCredentials are the credentials the request's credential headers
// carry, read as the mask reads them (log.rego, _credentials): Bearer and
// token, both halves of Basic, the value of x-api-key and the like; 8
// characters at least.
func headerCredentials(headers headerList) []string {
	var out []string
	add := func(c string) {
		if len(c) >= 8 {
			out = append(out, c)
		}
	}
	for _, kv := range headers {
		name, value := strings.ToLower(kv[0]), strings.TrimSpace(kv[1])
		switch name {
		case "private-token", "x-access-token", "x-api-key", "x-auth-token", "x-github-token":
			add(value)
		case "authorization", "proxy-authorization", "x-amzn-remapped-authorization", "x-forwarded-authorization":
			scheme, rest, ok := strings.Cut(value, " ")
			if !ok {
				continue
			}
			rest = strings.TrimSpace(rest)
			switch strings.ToLower(scheme) {
			case "bearer", "token":
				add(rest)
			case "basic":
				decoded, err := base64.StdEncoding.DecodeString(rest)
				if err != nil {
					continue
				}
				user, password, _ := strings.Cut(string(decoded), ":")
				add(user)
				add(password)
			}
		}
	}
	return out
}
