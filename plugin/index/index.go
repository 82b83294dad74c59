// Package index is a sidecar's in-memory view of the token store: every token
// by the SHA-256 of its raw form, the current grant of each (token,
// organization), memberships, users and repositories. It is loaded from one
// store snapshot and then kept current from the store's change log (Follow),
// so the decision path never waits on the database.
//
// Concurrency: the maps are split into shards, each behind its own
// sync.RWMutex. Only the one goroutine that loads and follows the store
// writes, one record at a time, so a reader waits at most for one map
// assignment on one shard. Published records are immutable: a change
// replaces the record, it never edits it.
//
// Memory: strings that repeat across tokens (users, resource owners,
// repository names) are interned, and the parts that tokens share (kind,
// scopes, selection, repositories, permissions, revoked) are one shared
// Shape with its ast terms built once. A token costs its map slot, a record
// without pointers that numbers its user and shape, and its name's bytes
// (tokens.go): the collector has nothing to scan in the token table.
package index

import (
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/ast"
)

const shardCount = 64 // a power of two

// Sym is an interned string with its ast term, built once.
type Sym struct {
	S    string
	Term *ast.Term
	ref  uint32 // its number in Index.symRefs
}

// StrSet is an interned, sorted set of strings with its ast set term.
type StrSet struct {
	Items []string
	Term  *ast.Term
}

// Shape is what tokens share: everything but their id, user, name and times.
// One Shape serves every token with the same values.
type Shape struct {
	Kind                string // store.KindClassic or store.KindFineGrained
	Revoked             bool
	ResourceOwner       *Sym // "" for classic tokens
	RepositorySelection *Sym // all, selected, public, or "" for classic tokens
	Scopes              *StrSet
	Repositories        *StrSet
	Permissions         map[string]string // shared, read-only
	PermissionsTerm     *ast.Term         // object term of Permissions
	KindTerm            *ast.Term
	ref                 uint32 // its number in Index.shapeRefs
}

// Token is one token as the index answers it. Two Tokens are == exactly
// when they come from the same record, or from records with equal values.
type Token struct {
	ID        int64
	CreatedNs int64
	ExpiresNs int64 // 0: no expiry
	User      *Sym
	Name      string
	Shape     *Shape
}

// Grant is the current grant of a token for an organization, as the index
// answers it (it keeps each as a grantRec of numbers). Two Grants are ==
// exactly when every value of theirs is.
type Grant struct {
	ID    int64
	State *Sym
	// Reason is the reviewer's reason (store.Grant.ReviewReason): "" while
	// pending and when the review gave none. A decision quotes it; the
	// requester's justification is not kept here.
	Reason      string
	Reviewer    *Sym // nil while pending
	UpdatedAtNs int64
}

// User is a user record as the index answers it (it keeps each as a
// userRec of symbol numbers, nothing for the collector to scan: 250,000 of
// them in the 1M-token world). Two Users are == exactly when every value
// of theirs is, so pat.user's answer cache compares them whole.
type User struct {
	Login     string
	ManagedBy string // "" for users that no enterprise manages

	login, managedBy *Sym
}

// Term builds the user's ast object: {"login": ..., "managed_by": ... | null}.
func (u User) Term() *ast.Term {
	managedBy := ast.InternedNullTerm
	if u.managedBy != nil {
		managedBy = u.managedBy.Term
	}
	return ast.ObjectTerm(
		[2]*ast.Term{ast.InternedTerm("login"), u.login.Term},
		[2]*ast.Term{ast.InternedTerm("managed_by"), managedBy},
	)
}

// Repository is a repository record. Its ast term is built on first use
// and kept: at 20 repositories per organization they are many (20,000 in
// the 1M-token world, about 1.3 KB of ast each) and few are asked for.
type Repository struct {
	Owner, Name, Visibility string

	owner, name, visibility *Sym
	term                    atomic.Pointer[ast.Term]
}

// Term is the repository's ast object: {"owner", "name", "visibility"}.
func (r *Repository) Term() *ast.Term {
	if t := r.term.Load(); t != nil {
		return t
	}
	t := ast.ObjectTerm(
		[2]*ast.Term{ast.InternedTerm("owner"), r.owner.Term},
		[2]*ast.Term{ast.InternedTerm("name"), r.name.Term},
		[2]*ast.Term{ast.InternedTerm("visibility"), r.visibility.Term},
	)
	r.term.Store(t) // a race stores an equal term: harmless
	return t
}

// grantKey finds a grant: its token and a hash of the organization's
// folded name. Neither keys nor records (grantRec) hold a pointer, so the
// collector never scans the grants' maps, the index's largest table after
// the tokens' (about 10 MB at 100k tokens, scanned on every cycle when a
// grant held its names as strings and symbols).
type grantKey struct {
	tokenID int64
	org     uint64 // nameHash of the folded name
}

// grantRec is a grant as the index keeps it: names by their number in
// symRefs. org is checked on every lookup, so that two names whose hashes
// meet cannot answer for each other. The reason, free text that interning
// would keep forever, is kept apart, for the grants that have one.
type grantRec struct {
	id, updatedNs          int64
	org, state, reviewer   uint32
	hasReviewer, hasReason bool
}

// nameHash hashes a folded name for the tables whose keys hold no strings
// (grants, users, memberships); every lookup checks the name it finds.
func nameHash(name string) uint64 { return maphash.String(seed, name) }

// userRec is a user as the index keeps it, by symbol numbers: folded is
// the folded login, checked on every lookup.
type userRec struct {
	login, folded, managedBy uint32
	hasManagedBy             bool
}

// memberKey finds a membership by the hashes of the folded user and
// organization; memberRec holds their symbols, checked on every lookup,
// and the role's.
type memberKey struct{ user, org uint64 }

type memberRec struct{ user, org, role uint32 }

func hashMemberKey(k memberKey) uint64 { return k.user ^ k.org*31 }

func hashUint64(k uint64) uint64 { return k }

type pairKey struct{ a, b string }

// shard is one lock and one map.
type shard[K comparable, V any] struct {
	mu sync.RWMutex
	m  map[K]V
	_  [40]byte // keeps neighbouring locks off one cache line
}

// shardedMap is a map split into shardCount shards by a key hash.
type shardedMap[K comparable, V any] struct {
	shards [shardCount]shard[K, V]
	hash   func(K) uint64
}

func newShardedMap[K comparable, V any](hash func(K) uint64) *shardedMap[K, V] {
	s := &shardedMap[K, V]{hash: hash}
	for i := range s.shards {
		s.shards[i].m = map[K]V{}
	}
	return s
}

// reserve sizes an empty map's shards for n entries in all.
func (s *shardedMap[K, V]) reserve(n int) {
	if s.len() > 0 || n <= 0 {
		return
	}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		sh.m = make(map[K]V, perShard(n))
		sh.mu.Unlock()
	}
}

// perShard is the size hint of one shard's map for n entries in all, with
// room for the shards' uneven shares. Hints come from the store's largest
// ids, which a store with sparse ids (set by hand, or a sequence that
// started high) can make arbitrarily large: past maxReserve entries the
// tables are not sized up front but grow as records come.
func perShard(n int) int {
	n = min(n, maxReserve)
	if n <= 0 {
		return 0
	}
	return n/shardCount + n/shardCount/8 + 8
}

// maxReserve is the most entries a table is sized for before a load.
const maxReserve = 1 << 22

func (s *shardedMap[K, V]) shard(k K) *shard[K, V] {
	return &s.shards[s.hash(k)&(shardCount-1)]
}

func (s *shardedMap[K, V]) get(k K) (V, bool) {
	sh := s.shard(k)
	sh.mu.RLock()
	v, ok := sh.m[k]
	sh.mu.RUnlock()
	return v, ok
}

func (s *shardedMap[K, V]) put(k K, v V) {
	sh := s.shard(k)
	sh.mu.Lock()
	sh.m[k] = v
	sh.mu.Unlock()
}

func (s *shardedMap[K, V]) delete(k K) {
	sh := s.shard(k)
	sh.mu.Lock()
	delete(sh.m, k)
	sh.mu.Unlock()
}

func (s *shardedMap[K, V]) len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}

var seed = maphash.MakeSeed()

func hashPair(k pairKey) uint64 { return maphash.String(seed, k.a) ^ maphash.String(seed, k.b)*31 }

// hashTokenKey uses the first bytes of the SHA-256, which are uniform.
func hashTokenKey(k [32]byte) uint64 { return uint64(k[0]) | uint64(k[1])<<8 }

func hashGrantKey(k grantKey) uint64 { return uint64(k.tokenID)*0x9e3779b97f4a7c15 ^ k.org }
