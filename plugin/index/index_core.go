package index

import (
	"context"
	"fmt"
	"reflect"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/opa-pat/opa-pat/plugin/store"
)

// Index is the in-memory view of a store. Lookups are safe from any number
// of goroutines; the writer is the one that calls Load and Follow.
//
// Its records live in one set of tables behind an atomic pointer, so that a
// load can build a whole new set while the old one still answers, and put
// it in place at once: Follow does that when the change log was pruned
// past the last change it applied (store.ErrChangesPruned), or the store is
// not the one it loaded (store.ErrStoreReplaced).
type Index struct {
	t       atomic.Pointer[tables]
	seq     seqCounter
	fresh   freshness // staleness.go
	reloads atomic.Int64
	// mark is where the index is in the store's change log and which store
	// it loaded (store.ChangesSince); only the writer touches it.
	mark store.Mark
	// reloadWhy is what made the last reload necessary.
	reloadWhy atomic.Pointer[error]
	// older is set while the store's schema is older than the one the
	// index loaded (store.ErrStoreOlder): the index may hold records the
	// store does not, so Current fails at once, whatever the bound.
	older atomic.Pointer[error]
	// loaded is what the last load passed, table by table, and the
	// change-log number of its snapshot; only the writer touches it.
	loaded store.RowCounts
	// settle is the window after a replaced store was loaded (settle.go),
	// settleQuiet how long its tables must keep their counts to end it.
	settle      settling
	settleQuiet time.Duration
	// inflight is the read a catch-up waits for (reading.go), nil between
	// reads.
	inflight atomic.Pointer[reading]
}

// tables hold the records of one load and the changes applied since.
type tables struct {
	tokens       tokenTable                        // tokens.go
	grants       *shardedMap[grantKey, grantRec]   // no pointers: nothing for the collector to scan
	reasons      *shardedMap[grantKey, string]     // the grants with a reason
	memberships  *shardedMap[memberKey, memberRec] // no pointers, as grants
	users        *shardedMap[uint64, userRec]      // by nameHash of the folded login; no pointers
	repositories *shardedMap[pairKey, *Repository]

	// Interning tables, touched by the writer only.
	writeMu    sync.Mutex
	syms       map[uint64]uint32 // nameHash of a symbol's text -> its number
	symClashes map[string]uint32 // the symbols whose hash another symbol had first
	slab       []byte            // keep: the text of the symbols
	sets       map[string]*StrSet
	perms      map[string]*permsEntry
	shapes     map[shapeKey]*Shape
	emptySet   *StrSet
	emptyPerms *permsEntry
	// What token records refer to by number.
	symRefs   symTable
	shapeRefs refTable[*Shape]

	// While Load runs: the store hands out one shared slice or map for
	// records with equal lists (plugin/store's packed scanner), so the
	// interning tables are first looked up by identity. Cleared after Load,
	// so that they do not grow with later changes.
	loading    bool
	fastSets   map[sliceID]*StrSet
	fastPerms  map[unsafe.Pointer]*permsEntry
	fastShapes map[fastShapeKey]*Shape
}

type permsEntry struct {
	m    map[string]string
	term *ast.Term
}

type shapeKey struct {
	kind          string
	revoked       bool
	resourceOwner *Sym
	selection     *Sym
	scopes        *StrSet
	repositories  *StrSet
	perms         *permsEntry
}

// New returns an empty index.
func New() *Index {
	x := &Index{settleQuiet: DefaultSettleQuiet}
	x.t.Store(newTables())
	return x
}

func newTables() *tables {
	x := &tables{
		grants:       newShardedMap[grantKey, grantRec](hashGrantKey),
		reasons:      newShardedMap[grantKey, string](hashGrantKey),
		memberships:  newShardedMap[memberKey, memberRec](hashMemberKey),
		users:        newShardedMap[uint64, userRec](hashUint64),
		repositories: newShardedMap[pairKey, *Repository](hashPair),
		syms:         map[uint64]uint32{},
		symClashes:   map[string]uint32{},
		sets:         map[string]*StrSet{},
		perms:        map[string]*permsEntry{},
		shapes:       map[shapeKey]*Shape{},
	}
	x.tokens.init(0)
	return x
}

// Token returns the token whose raw form hashes to h.
func (x *tables) Token(h [32]byte) (Token, bool) {
	r, name, ok := x.tokens.get(h)
	if !ok {
		return Token{}, false
	}
	return Token{
		ID:        r.id,
		CreatedNs: r.createdNs,
		ExpiresNs: r.expiresNs,
		User:      x.symRefs.at(r.user),
		Name:      name,
		Shape:     x.shapeRefs.at(r.shape),
	}, true
}

// Grant returns the current grant of a token for an organization.
func (x *tables) Grant(tokenID int64, org string) (Grant, bool) {
	org = fold(org)
	key := grantKey{tokenID, nameHash(org)}
	r, ok := x.grants.get(key)
	if !ok || x.symRefs.at(r.org).S != org {
		return Grant{}, false
	}
	g := Grant{ID: r.id, State: x.symRefs.at(r.state), UpdatedAtNs: r.updatedNs}
	if r.hasReviewer {
		g.Reviewer = x.symRefs.at(r.reviewer)
	}
	if r.hasReason {
		g.Reason, _ = x.reasons.get(key)
	}
	return g, true
}

// Role returns a user's role in an organization.
func (x *tables) Role(user, org string) (*Sym, bool) {
	user, org = fold(user), fold(org)
	r, ok := x.memberships.get(memberKey{nameHash(user), nameHash(org)})
	if !ok || x.symRefs.at(r.user).S != user || x.symRefs.at(r.org).S != org {
		return nil, false
	}
	return x.symRefs.at(r.role), true
}

// User returns a user's record.
func (x *tables) User(login string) (User, bool) {
	login = fold(login)
	r, ok := x.users.get(nameHash(login))
	if !ok || x.symRefs.at(r.folded).S != login {
		return User{}, false
	}
	sym := x.symRefs.at(r.login)
	u := User{Login: sym.S, login: sym}
	if r.hasManagedBy {
		u.managedBy = x.symRefs.at(r.managedBy)
		u.ManagedBy = u.managedBy.S
	}
	return u, true
}

// Repository returns a repository's record.
func (x *tables) Repository(owner, name string) (*Repository, bool) {
	return x.repositories.get(pairKey{fold(owner), fold(name)})
}

// Counts reports how many records of each kind the index holds.
type Counts struct {
	Tokens, Grants, Memberships, Users, Repositories int
}

// Counts counts the records of each kind.
func (x *tables) Counts() Counts {
	return Counts{
		Tokens:       x.tokens.len(),
		Grants:       x.grants.len(),
		Memberships:  x.memberships.len(),
		Users:        x.users.len(),
		Repositories: x.repositories.len(),
	}
}

// Token returns the token whose raw form hashes to h.
func (x *Index) Token(h [32]byte) (Token, bool) { return x.t.Load().Token(h) }

// Grant returns the current grant of a token for an organization.
func (x *Index) Grant(tokenID int64, org string) (Grant, bool) { return x.t.Load().Grant(tokenID, org) }

// Role returns a user's role in an organization.
func (x *Index) Role(user, org string) (*Sym, bool) { return x.t.Load().Role(user, org) }

// User returns a user's record.
func (x *Index) User(login string) (User, bool) { return x.t.Load().User(login) }

// Repository returns a repository's record.
func (x *Index) Repository(owner, name string) (*Repository, bool) {
	return x.t.Load().Repository(owner, name)
}

// Counts counts the records of each kind.
func (x *Index) Counts() Counts { return x.t.Load().Counts() }

// PutUser adds or replaces a user.
func (x *Index) PutUser(u store.User) { x.t.Load().PutUser(u) }

// DeleteUser removes a user.
func (x *Index) DeleteUser(login string) { x.t.Load().DeleteUser(login) }

// PutMembership adds or replaces a user's role in an organization.
func (x *Index) PutMembership(m store.Membership) { x.t.Load().PutMembership(m) }

// DeleteMembership removes a user's role in an organization.
func (x *Index) DeleteMembership(user, org string) { x.t.Load().DeleteMembership(user, org) }

// PutRepository adds or replaces a repository.
func (x *Index) PutRepository(r store.Repository) { x.t.Load().PutRepository(r) }

// DeleteRepository removes a repository.
func (x *Index) DeleteRepository(owner, name string) { x.t.Load().DeleteRepository(owner, name) }

// PutToken adds or replaces a token.
func (x *Index) PutToken(t store.Token) { x.t.Load().PutToken(t) }

// DeleteToken removes the token with the given id.
func (x *Index) DeleteToken(id int64) { x.t.Load().DeleteToken(id) }

// PutGrant adds or replaces the current grant of a token for an
// organization.
func (x *Index) PutGrant(g store.Grant) { x.t.Load().PutGrant(g) }

// DeleteGrant removes the grant of a token for an organization.
func (x *Index) DeleteGrant(tokenID int64, org string) { x.t.Load().DeleteGrant(tokenID, org) }

// Seq is the change-log sequence number the index reflects.
func (x *Index) Seq() int64 { return x.seq.load() }

// Load fills the index from one snapshot of r and remembers the snapshot's
// sequence number; call it before Follow. It builds new tables and puts them
// in place when they are complete, so lookups meanwhile answer from the
// records the index had (none before the first load). Only the writer (the
// caller of Follow) may call it.
//
// The store's reader and the index builder run in two goroutines joined by
// a channel of record batches, so that decoding rows and building the index
// overlap on a machine with more than one core.
func (x *Index) Load(ctx context.Context, r store.Reader) error {
	start := time.Now()
	t := newTables()
	mark, counts, err := t.load(ctx, r)
	if err != nil {
		return err
	}
	x.t.Store(t)
	x.mark = mark
	x.loaded = counts
	if x.settle.active() {
		x.settle.rebase(counts)
	}
	x.seq.store(mark.Seq)
	x.older.Store(nil)
	x.fresh.markCurrent(start)
	return nil
}

// load fills empty tables from one snapshot of r and returns the
// snapshot's Mark and how many records of each table it passed (with
// EveryRequest, every request: what store.Reader.RowCounts counts).
func (x *tables) load(ctx context.Context, r store.Reader) (store.Mark, store.RowCounts, error) {
	x.loading = true
	// Loading allocates the whole index at once, and most of a start's CPU
	// went to collections that find nothing to free. Collect less often
	// until the index is built (unless GOGC asks for even less).
	relaxGC()
	defer restoreGC()
	defer func() { x.loading, x.fastSets, x.fastPerms, x.fastShapes = false, nil, nil, nil }()

	batches := make(chan *loadBatch, 4)
	built := make(chan struct{})
	go func() {
		defer close(built)
		for b := range batches {
			x.applyBatch(b)
		}
	}()
	cur := &loadBatch{}
	flush := func() {
		if cur.n > 0 {
			batches <- cur
			cur = &loadBatch{}
		}
	}
	add := func() error {
		if cur.n++; cur.n >= loadBatchSize {
			flush()
		}
		return nil
	}
	var mark store.Mark
	// Counted as the snapshot passes them: a count read after the load
	// would take in rows committed since, which the index does not hold.
	var n store.RowCounts
	seq, err := r.Load(ctx, store.Visitor{
		Mark:  func(m store.Mark) { mark = m },
		Sizes: x.reserve,
		User: func(u store.User) error {
			n.Users++
			cur.users = append(cur.users, u)
			return add()
		},
		Membership: func(m store.Membership) error {
			n.Memberships++
			cur.memberships = append(cur.memberships, m)
			return add()
		},
		Repository: func(rp store.Repository) error {
			n.Repositories++
			cur.repositories = append(cur.repositories, rp)
			return add()
		},
		Token: func(t store.Token) error {
			n.Tokens++
			cur.tokens = append(cur.tokens, t)
			return add()
		},
		Grant: func(g store.Grant) error {
			n.Requests++
			cur.grants = append(cur.grants, g)
			return add()
		},
		// Batches are applied in order, so the last request of a (token,
		// org) is the grant the index keeps.
		EveryRequest: true,
	})
	flush()
	close(batches)
	<-built
	mark.Seq, n.Seq = seq, seq
	return mark, n, err
}

// reserve sizes the tables of an empty index for the records a load
// announces, so that they do not grow (rehashing every record) while it
// runs.
func (x *tables) reserve(n store.Sizes) {
	if x.tokens.len() == 0 {
		x.tokens.init(n.Tokens)
	}
	x.grants.reserve(n.Grants)
	x.users.reserve(n.Users)
	x.memberships.reserve(n.Memberships)
	if len(x.syms) == 0 && n.Users > 0 {
		x.writeMu.Lock()
		x.syms = make(map[uint64]uint32, perShard(n.Users)*shardCount) // users, and the far fewer other names
		x.writeMu.Unlock()
	}
}

const (
	loadBatchSize = 2048
	// 200 since the tables are sized up front: at 1M tokens it starts as
	// fast as 400 did (2.99-3.16 s against 3.23-3.45 s, interleaved) with a
	// third less memory at ready (RSS 850-880 MB against 1.21-1.28 GB); 100
	// took 3.43-3.76 s.
	loadGCPercent = 200
)

// loadGC counts the loads in progress: the first raises the GC percent,
// the last one puts back what was set before.
var loadGC struct {
	sync.Mutex
	loads int
	prev  int
}

func relaxGC() {
	loadGC.Lock()
	defer loadGC.Unlock()
	if loadGC.loads++; loadGC.loads == 1 {
		loadGC.prev = debug.SetGCPercent(loadGCPercent)
		if loadGC.prev < 0 || loadGC.prev > loadGCPercent {
			debug.SetGCPercent(loadGC.prev) // GOGC already asks for less
		}
	}
}

func restoreGC() {
	loadGC.Lock()
	defer loadGC.Unlock()
	if loadGC.loads--; loadGC.loads == 0 {
		debug.SetGCPercent(loadGC.prev)
	}
}

// loadBatch is a run of records on their way from the store to the index.
type loadBatch struct {
	n            int
	users        []store.User
	memberships  []store.Membership
	repositories []store.Repository
	tokens       []store.Token
	grants       []store.Grant
}

func (x *tables) applyBatch(b *loadBatch) {
	for _, u := range b.users {
		x.PutUser(u)
	}
	for _, m := range b.memberships {
		x.PutMembership(m)
	}
	for _, r := range b.repositories {
		x.PutRepository(r)
	}
	for _, t := range b.tokens {
		x.PutToken(t)
	}
	for _, g := range b.grants {
		x.PutGrant(g)
	}
}

// PutUser adds or replaces a user.
func (x *tables) PutUser(u store.User) {
	x.writeMu.Lock()
	defer x.writeMu.Unlock()
	login := x.sym(u.Login)
	folded := x.sym(fold(login.S)) // the same symbol unless the login has capitals
	rec := userRec{login: login.ref, folded: folded.ref}
	if u.ManagedBy != "" {
		rec.managedBy, rec.hasManagedBy = x.sym(u.ManagedBy).ref, true
	}
	x.users.put(nameHash(folded.S), rec)
}

// DeleteUser removes a user.
func (x *tables) DeleteUser(login string) { x.users.delete(nameHash(fold(login))) }

// PutMembership adds or replaces a user's role in an organization.
func (x *tables) PutMembership(m store.Membership) {
	x.writeMu.Lock()
	defer x.writeMu.Unlock()
	user, org := x.sym(fold(m.User)), x.sym(fold(m.Org))
	x.memberships.put(memberKey{nameHash(user.S), nameHash(org.S)}, memberRec{user: user.ref, org: org.ref, role: x.sym(m.Role).ref})
}

// DeleteMembership removes a user's role in an organization.
func (x *tables) DeleteMembership(user, org string) {
	x.memberships.delete(memberKey{nameHash(fold(user)), nameHash(fold(org))})
}

// PutRepository adds or replaces a repository.
func (x *tables) PutRepository(r store.Repository) {
	x.writeMu.Lock()
	defer x.writeMu.Unlock()
	owner, name, vis := x.sym(r.Owner), x.sym(r.Name), x.sym(r.Visibility)
	x.repositories.put(pairKey{fold(owner.S), fold(name.S)}, &Repository{
		Owner: owner.S, Name: name.S, Visibility: vis.S,
		owner: owner, name: name, visibility: vis,
	})
}

// DeleteRepository removes a repository.
func (x *tables) DeleteRepository(owner, name string) {
	x.repositories.delete(pairKey{fold(owner), fold(name)})
}

// PutToken adds or replaces a token. Whatever token the index held under
// t's id before, under another hash, is dropped: the change log names
// tokens by id, and an id may come to name another token (a store replaced
// under the sidecar), whose change must not leave the old one allowed.
func (x *tables) PutToken(t store.Token) {
	x.writeMu.Lock()
	defer x.writeMu.Unlock()
	var expires int64
	if !t.ExpiresAt.IsZero() {
		expires = t.ExpiresAt.UnixNano()
	}
	x.tokens.put(t.Hash, tokenRec{
		id:        t.ID,
		createdNs: t.CreatedAt.UnixNano(),
		expiresNs: expires,
		user:      x.sym(t.User).ref,
		shape:     x.shape(t).ref,
	}, t.Name)
}

// DeleteToken removes the token with the given id.
func (x *tables) DeleteToken(id int64) {
	x.writeMu.Lock()
	defer x.writeMu.Unlock()
	x.tokens.deleteID(id)
}

// PutGrant adds or replaces the current grant of a token for an
// organization.
func (x *tables) PutGrant(g store.Grant) {
	x.writeMu.Lock()
	defer x.writeMu.Unlock()
	org := x.sym(fold(g.Org))
	key := grantKey{g.TokenID, nameHash(org.S)}
	rec := grantRec{
		id:        g.ID,
		updatedNs: g.UpdatedAt.UnixNano(),
		org:       org.ref,
		state:     x.sym(g.State).ref,
		hasReason: g.ReviewReason != "",
	}
	if g.Reviewer != "" {
		rec.reviewer, rec.hasReviewer = x.sym(g.Reviewer).ref, true
	}
	// The reason before the record, so that a reader that finds a new
	// record with a reason finds that reason. While a grant changes, a
	// reader may pair the old record with the new reason (or none): the
	// reason only words a message, and the decision cache drops what was
	// decided before the change once the change is applied.
	if rec.hasReason {
		x.reasons.put(key, strings.Clone(g.ReviewReason))
	}
	x.grants.put(key, rec)
	if !rec.hasReason {
		x.reasons.delete(key)
	}
}

// DeleteGrant removes the grant of a token for an organization.
func (x *tables) DeleteGrant(tokenID int64, org string) {
	key := grantKey{tokenID, nameHash(fold(org))}
	x.grants.delete(key)
	x.reasons.delete(key)
}

// sym interns s. The caller holds writeMu. The interning table maps hashes
// to symbol numbers, so that the collector has no pointers to follow in it,
// and checks the text it finds.
func (x *tables) sym(s string) *Sym {
	h := nameHash(s)
	if ref, ok := x.syms[h]; ok {
		if y := x.symRefs.at(ref); y.S == s {
			return y
		}
		if ref, ok := x.symClashes[s]; ok {
			return x.symRefs.at(ref)
		}
	}
	y := x.symRefs.add(x.keep(s)) // a copy: do not pin a larger buffer the string came from
	if _, taken := x.syms[h]; taken {
		x.symClashes[y.S] = y.ref
	} else {
		x.syms[h] = y.ref
	}
	return y
}

// keep copies s into the current slab of symbol text, so that a name's
// bytes are no object of their own for the collector (250,000 fewer at 1M
// tokens). A slab is only ever appended to within its capacity, so the
// strings already handed out stay as they are; a full slab is left to the
// strings in it and a new one begun. Long strings get their own copy. The
// caller holds writeMu.
func (x *tables) keep(s string) string {
	if len(s) == 0 || len(s) > symSlab/16 {
		return strings.Clone(s)
	}
	if cap(x.slab)-len(x.slab) < len(s) {
		x.slab = make([]byte, 0, symSlab)
	}
	off := len(x.slab)
	x.slab = append(x.slab, s...)
	return unsafe.String(&x.slab[off], len(s))
}

const symSlab = 64 << 10

type sliceID struct {
	data unsafe.Pointer
	n    int
}

// set interns a set of strings. The caller holds writeMu.
func (x *tables) set(items []string) *StrSet {
	if len(items) == 0 {
		if x.emptySet == nil {
			x.emptySet = &StrSet{Term: ast.SetTerm()}
		}
		return x.emptySet
	}
	if !x.loading {
		return x.setSlow(items)
	}
	id := sliceIdentity(items)
	if s, ok := x.fastSets[id]; ok {
		return s
	}
	return remember(&x.fastSets, id, x.setSlow(items))
}

func (x *tables) setSlow(items []string) *StrSet {
	sorted := slices.Clone(items)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	key := strings.Join(sorted, "\x00")
	if s, ok := x.sets[key]; ok {
		return s
	}
	terms := make([]*ast.Term, len(sorted))
	for i, it := range sorted {
		y := x.sym(it)
		sorted[i] = y.S
		terms[i] = y.Term
	}
	s := &StrSet{Items: sorted, Term: ast.SetTerm(terms...)}
	x.sets[key] = s
	return s
}

// permissions interns a permission map. The caller holds writeMu.
func (x *tables) permissions(kind string, perms map[string]string) *permsEntry {
	if kind != store.KindFineGrained {
		if len(perms) == 0 {
			if x.emptyPerms == nil {
				x.emptyPerms = x.permissionsSlow(kind, nil)
			}
			return x.emptyPerms
		}
		return x.permissionsSlow(kind, perms)
	}
	if !x.loading || perms == nil {
		return x.permissionsSlow(kind, perms)
	}
	id := reflect.ValueOf(perms).UnsafePointer()
	if p, ok := x.fastPerms[id]; ok {
		return p
	}
	return remember(&x.fastPerms, id, x.permissionsSlow(kind, perms))
}

func (x *tables) permissionsSlow(kind string, perms map[string]string) *permsEntry {
	m := make(map[string]string, len(perms)+1)
	for k, v := range perms {
		m[k] = v
	}
	if kind == store.KindFineGrained {
		if _, ok := m["metadata"]; !ok {
			m["metadata"] = "read" // SEMANTICS.md rule 8: always present
		}
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, k := range names {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(m[k])
		b.WriteByte(0)
	}
	key := b.String()
	if p, ok := x.perms[key]; ok {
		return p
	}
	pairs := make([][2]*ast.Term, len(names))
	shared := make(map[string]string, len(names))
	for i, k := range names {
		name, level := x.sym(k), x.sym(m[k])
		shared[name.S] = level.S
		pairs[i] = [2]*ast.Term{name.Term, level.Term}
	}
	p := &permsEntry{m: shared, term: ast.ObjectTerm(pairs...)}
	x.perms[key] = p
	return p
}

// maxFast bounds each identity map of a load: a store that shares fewer
// values than tokens (or none) must not make them grow with every token.
const maxFast = 1 << 16

// remember keeps v under k in one of the load's identity maps, up to
// maxFast keys, and returns it. A key holds the memory it names, so no
// address is reused for another value while the load runs.
func remember[K comparable, V any](m *map[K]V, k K, v V) V {
	if *m == nil {
		*m = map[K]V{}
	}
	if len(*m) < maxFast {
		(*m)[k] = v
	}
	return v
}

// fastShapeKey names a token's shape by the identity of the values the
// store shares between the tokens it loads (interned strings, shared lists
// and maps): equal keys are equal shapes. Most tokens share a few shapes, so
// this small map spares a load the interning of every field of every token
// in the large ones. Unequal keys may still be equal shapes; shape finds
// those the slow way.
type fastShapeKey struct {
	kind, owner, selection strID
	revoked                bool
	scopes, repositories   sliceID
	perms                  unsafe.Pointer
}

type strID struct {
	data unsafe.Pointer
	n    int
}

func strIdentity(s string) strID { return strID{unsafe.Pointer(unsafe.StringData(s)), len(s)} }

func sliceIdentity(l []string) sliceID { return sliceID{unsafe.Pointer(unsafe.SliceData(l)), len(l)} }

// shape interns the shared part of a token. The caller holds writeMu.
func (x *tables) shape(t store.Token) *Shape {
	if !x.loading {
		return x.shapeSlow(t)
	}
	fk := fastShapeKey{
		kind: strIdentity(t.Kind), owner: strIdentity(t.ResourceOwner), selection: strIdentity(t.RepositorySelection),
		revoked: t.Revoked, scopes: sliceIdentity(t.Scopes), repositories: sliceIdentity(t.Repositories),
		perms: reflect.ValueOf(t.Permissions).UnsafePointer(),
	}
	if s, ok := x.fastShapes[fk]; ok {
		return s
	}
	return remember(&x.fastShapes, fk, x.shapeSlow(t))
}

func (x *tables) shapeSlow(t store.Token) *Shape {
	k := shapeKey{
		kind:          t.Kind,
		revoked:       t.Revoked,
		resourceOwner: x.sym(fold(t.ResourceOwner)),
		selection:     x.sym(t.RepositorySelection),
		scopes:        x.set(t.Scopes),
		repositories:  x.set(foldAll(t.Repositories)),
		perms:         x.permissions(t.Kind, t.Permissions),
	}
	if s, ok := x.shapes[k]; ok {
		return s
	}
	s := &Shape{
		Kind:                x.sym(t.Kind).S,
		Revoked:             t.Revoked,
		ResourceOwner:       k.resourceOwner,
		RepositorySelection: k.selection,
		Scopes:              k.scopes,
		Repositories:        k.repositories,
		Permissions:         k.perms.m,
		PermissionsTerm:     k.perms.term,
		KindTerm:            x.sym(t.Kind).Term,
	}
	s.ref = x.shapeRefs.add(s)
	x.shapes[k] = s
	return s
}

// String describes the index for log lines.
func (x *Index) String() string {
	c := x.Counts()
	return fmt.Sprintf("%d tokens, %d grants, %d memberships, %d users, %d repositories at change %d",
		c.Tokens, c.Grants, c.Memberships, c.Users, c.Repositories, x.Seq())
}

// fold is the key form of a user, organization or repository name: GitHub
// compares names without regard to case, and so does every lookup here. A
// name that is already lower case, as the policy passes them, is returned as
// it is, without allocating.
func fold(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' || c >= utf8.RuneSelf {
			return strings.ToLower(s)
		}
	}
	return s
}

// foldAll folds every name of a list; a list that is already lower case is
// returned as it is, so the loader's interning by slice identity still hits.
func foldAll(names []string) []string {
	for i, n := range names {
		if f := fold(n); f != n {
			out := slices.Clone(names)
			out[i] = f
			for j := i + 1; j < len(out); j++ {
				out[j] = fold(out[j])
			}
			return out
		}
	}
	return names
}
