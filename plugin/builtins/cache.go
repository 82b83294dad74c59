package builtins

import (
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/ast"
)

// answerCache keeps the ast answers built for recently used index records,
// so that a record in use is not turned into an ast object on every
// decision. It is bounded (answerCacheSize answers) and two-way: a record
// may sit in one of two slots, so that two busy records rarely evict each
// other. An entry answers only for a key equal to the one it was built
// from, and keys hold every value an answer is made of (or are the very
// record, which the index replaces and never edits when it changes): a
// revocation or a review is never answered from the cache.
type answerCache[K comparable] [answerCacheSize]atomic.Pointer[answerEntry[K]]

const answerCacheSize = 8192 // a power of two

type answerEntry[K comparable] struct {
	key   K
	owner uint64 // what the record is of (a token, a token in an organization): its newer records replace it first
	term  *ast.Term
}

// get returns the answer for key from slot a or b, or builds it with build
// and keeps it. build is a plain function so that a hit allocates nothing.
func (c *answerCache[K]) get(a, b uint32, key K, owner uint64, build func(K) *ast.Term) *ast.Term {
	sa, sb := &c[a&(answerCacheSize-1)], &c[b&(answerCacheSize-1)]
	ea, eb := sa.Load(), sb.Load()
	switch {
	case ea != nil && ea.key == key:
		return ea.term
	case eb != nil && eb.key == key:
		return eb.term
	}
	e := &answerEntry[K]{key: key, owner: owner, term: build(key)}
	switch {
	case ea == nil || ea.owner == owner: // empty, or this record's older version
		sa.Store(e)
	case eb == nil || eb.owner == owner:
		sb.Store(e)
	case (a^b)&1 == 0:
		sa.Store(e)
	default:
		sb.Store(e)
	}
	return e.term
}
