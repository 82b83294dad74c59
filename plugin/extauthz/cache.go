package extauthz

import (
	"crypto/sha256"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// decisionCache keeps recent decisions of the default policy for a short
// time, keyed by what data.pat.envoy reads from a request (cacheKey): the
// method, the path (with its query), the Authorization header and the body
// when there is one. Keys are SHA-256 digests, so the cache holds no raw
// credential.
//
// An entry lives at most ttl, and never past the token's expiry (the
// decision's expires_at_ns); each shard drops its expired and invalidated
// entries once a ttl, so the cache holds about what a ttl's traffic
// decided. An entry keeps the answer, encoded, when that can be shared and
// the decision only when it cannot: a decision, like a CheckResponse
// message, is an object graph the collector scans at every cycle (with
// 12,000 entries, the decisions were 16 MB of a 55 MB heap), where encoded
// bytes are not scanned at all. Every entry is dropped at once (Invalidate)
// when a policy or bundle activates, when data in OPA's store changes, and
// when the plugin's token index applies a change, so that a revocation or
// an approval is seen by the next request.
type decisionCache struct {
	ttl        time.Duration
	maxEntries int
	version    func() int64 // the token index's version; nil: none
	gen        atomic.Uint64
	shards     [cacheShards]cacheShard
}

const cacheShards = 32

type cacheShard struct {
	mu      sync.RWMutex
	entries map[[32]byte]cacheEntry
	sweepAt int64 // unix ns; put drops stale entries from then on
}

type cacheEntry struct {
	// The answer's status; and the decision, when wire is nil.
	out outcome
	// The answer built from the decision, encoded, when it depends on the
	// decision alone (shared by the Checks it answers; never changed), or
	// nil.
	wire    *encodedAnswer
	expires int64 // unix ns
	gen     cacheGen
}

// cacheGen is what an entry is valid for: the cache's own generation
// (policy, data, Invalidate) and the token index's version.
type cacheGen struct {
	gen     uint64
	version int64
}

func newDecisionCache(ttl time.Duration, maxEntries int, version func() int64) *decisionCache {
	c := &decisionCache{ttl: ttl, maxEntries: maxEntries, version: version}
	for i := range c.shards {
		c.shards[i].entries = map[[32]byte]cacheEntry{}
	}
	return c
}

// cacheKey digests what data.pat.envoy reads of a request: the method, the
// path with its query, the Authorization header, the method override
// headers (overrides) and, when Envoy forwarded a
// body (with_request_body), the body and the three headers that decide
// whether it is parsed (Content-Type) or reported as cut short
// (Content-Length, x-envoy-auth-partial-body): a Git LFS batch request
// reads or writes by what its body says.
func cacheKey(method, path, authorization string, overrides [len(overrideHeaders)]string, body httpBody) [32]byte {
	h := sha256.New()
	h.Write([]byte(method))
	h.Write([]byte{0})
	h.Write([]byte(path))
	h.Write([]byte{0})
	h.Write([]byte(authorization))
	for _, s := range overrides {
		h.Write([]byte{0})
		h.Write([]byte(s))
	}
	if body.body != "" {
		for _, s := range []string{body.body, body.contentType, body.contentLength, body.partial} {
			h.Write([]byte{0})
			h.Write([]byte(s))
		}
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// overrideHeaders are the method override headers data.pat.envoy refuses
// a request for (its _method_override).
var overrideHeaders = [...]string{"x-http-method-override", "x-http-method", "x-method-override"}

// methodOverrides are a request's override headers, by their names with
// "-" or "_" (the policy reads both), "" for those it has not; spellings of
// one name are joined with NUL. It allocates only to join.
func methodOverrides(headers headerList) (out [len(overrideHeaders)]string) {
	for _, kv := range headers {
		for i, name := range overrideHeaders {
			if !sameHeaderName(kv[0], name) {
				continue
			}
			out[i] += kv[1] + "\x00" // an empty value counts too
		}
	}
	return out
}

// sameHeaderName reports whether name, in lower case, is want with any of
// its "-" written as "_".
func sameHeaderName(name, want string) bool {
	if len(name) != len(want) {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c != want[i] && !(c == '_' && want[i] == '-') {
			return false
		}
	}
	return true
}

// httpBody is a request's body with the headers that say how it is read.
type httpBody struct{ body, contentType, contentLength, partial string }

func requestBody(body string, headers headerList) httpBody {
	if body == "" {
		return httpBody{}
	}
	return httpBody{
		body:          body,
		contentType:   headers.get("content-type"),
		contentLength: headers.get("content-length"),
		partial:       headers.get(partialBodyHeader),
	}
}

// generation is read before an evaluation and handed to put, so that a
// decision made before an invalidation is not stored after it.
func (c *decisionCache) generation() cacheGen {
	g := cacheGen{gen: c.gen.Load()}
	if c.version != nil {
		g.version = c.version()
	}
	return g
}

// Invalidate drops every entry.
func (c *decisionCache) Invalidate() { c.gen.Add(1) }

func (c *decisionCache) get(k [32]byte, now time.Time) (cacheEntry, bool) {
	s := &c.shards[k[0]%cacheShards]
	s.mu.RLock()
	e, ok := s.entries[k]
	s.mu.RUnlock()
	if !ok || e.gen != c.generation() || now.UnixNano() >= e.expires {
		return cacheEntry{}, false
	}
	return e, true
}

// put keeps a decision (out.decision); wire is the answer built from it,
// encoded, when that answer can be shared, nil otherwise. With an answer,
// the entry keeps the answer and not the decision.
func (c *decisionCache) put(k [32]byte, out outcome, wire *encodedAnswer, gen cacheGen, now time.Time) {
	if gen != c.generation() {
		return
	}
	expires := now.Add(c.ttl).UnixNano()
	if exp, ok := tokenExpiry(out.decision); ok && exp < expires {
		expires = exp
	}
	if expires <= now.UnixNano() {
		return
	}
	if wire != nil {
		out.decision = nil
	}
	s := &c.shards[k[0]%cacheShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	limit := c.maxEntries/cacheShards + 1
	if len(s.entries) >= limit || now.UnixNano() >= s.sweepAt {
		s.sweep(gen, now.UnixNano())
		s.sweepAt = now.Add(c.ttl).UnixNano()
	}
	if len(s.entries) >= limit {
		// Still full: drop any one.
		for key := range s.entries {
			delete(s.entries, key)
			break
		}
	}
	s.entries[k] = cacheEntry{out: out, wire: wire, expires: expires, gen: gen}
}

// sweep drops the entries that expired or were invalidated (the caller
// holds the lock).
func (s *cacheShard) sweep(gen cacheGen, now int64) {
	for key, e := range s.entries {
		if e.gen != gen || e.expires <= now {
			delete(s.entries, key)
		}
	}
}

var (
	keyDecisionSummary = ast.InternedTerm("decision")
	keyExpiresAtNs     = ast.InternedTerm("expires_at_ns")
)

// tokenExpiry reads decision.decision.expires_at_ns (the summary the
// pat.envoy policy adds to its answer).
func tokenExpiry(decision ast.Value) (int64, bool) {
	obj, ok := decision.(ast.Object)
	if !ok {
		return 0, false
	}
	t := obj.Get(keyDecisionSummary)
	if t == nil {
		return 0, false
	}
	summary, ok := t.Value.(ast.Object)
	if !ok {
		return 0, false
	}
	if t = summary.Get(keyExpiresAtNs); t == nil {
		return 0, false
	}
	n, ok := t.Value.(ast.Number)
	if !ok {
		return 0, false
	}
	return n.Int64()
}
