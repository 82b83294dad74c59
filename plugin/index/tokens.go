package index

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/open-policy-agent/opa/v1/ast"
)

// tokenTable holds the tokens by the SHA-256 of their raw form. A token is a
// record without pointers (its user and shape are numbers into refTables,
// its name an offset into its shard's name arena), so the garbage collector
// never scans the table, and loading a million tokens fills a few large
// arrays instead of allocating a million objects for the collector to mark
// again and again while the sidecar serves.
//
// Each shard keeps its records dense, in one slice, and finds them through
// an open-addressing table of record numbers (linear probing on bytes of the
// hash that do not choose the shard): 72 bytes per token, 4-11 bytes of
// slots and 8 of byID, where a Go map of the same records took about 165.
//
// The change log names a token by its id, not its hash, and an id may come
// to name another token (a store replaced by `store migrate --replace`, a
// backup restored): byID finds the record an id has, so that the record of
// another hash is dropped when the id's new one is put (put), and a
// deletion by id needs no scan (deleteID). Only the writer touches it.
type tokenTable struct {
	shards [shardCount]tokenShard
	// byID is each id's locator: where its record's hash puts it (locate).
	// Numbers only: nothing for the collector to scan.
	byID idIndex
}

type tokenShard struct {
	mu    sync.RWMutex
	recs  []tokenEntry
	slots []uint32 // 0: free; otherwise 1 + the record's index in recs
	// names holds the records' names back to back. Bytes once written are
	// never changed: a reader's string points into the array it saw, and
	// compaction copies the live names to a new array.
	names []byte
	dead  int // bytes of names that no record refers to any more
}

type tokenEntry struct {
	hash [32]byte
	tokenRec
}

type tokenRec struct {
	id, createdNs, expiresNs int64
	user, shape              uint32 // Index.symRefs and Index.shapeRefs
	nameOff, nameLen         uint32
}

const (
	minSlots   = 16
	minCompact = 64 << 10 // the arena size below which dead names stay
)

// init empties every shard and sizes it for n tokens in all.
func (t *tokenTable) init(n int) {
	per := perShard(n)
	t.byID.init(n)
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		sh.recs = make([]tokenEntry, 0, per)
		sh.slots = make([]uint32, slotsFor(per))
		sh.names, sh.dead = nil, 0
		sh.mu.Unlock()
	}
}

// slotsFor is the table size that keeps n records at most 3/4 full.
func slotsFor(n int) int {
	s := minSlots
	for s*3 < n*4 {
		s *= 2
	}
	return s
}

func (t *tokenTable) shard(h [32]byte) *tokenShard {
	return &t.shards[hashTokenKey(h)&(shardCount-1)]
}

// home is a hash's first slot: bytes 8-15 of the SHA-256 (hashTokenKey
// chose the shard with bytes 0 and 1).
func home(h *[32]byte, mask int) int { return int(binary.LittleEndian.Uint64(h[8:16])) & mask }

// find returns the slot that holds h, or the free slot where it would go,
// and the record's index, or -1. The caller holds the shard's lock.
func (sh *tokenShard) find(h *[32]byte) (slot, rec int) {
	mask := len(sh.slots) - 1
	for s := home(h, mask); ; s = (s + 1) & mask {
		v := sh.slots[s]
		if v == 0 {
			return s, -1
		}
		if sh.recs[v-1].hash == *h {
			return s, int(v - 1)
		}
	}
}

// locator is what finds a record of hash h: its shard in the low 6 bits,
// above them bytes 8-15 of the hash, from which home takes the first slot
// (the top 6 bits are dropped, and the next one is idIndex's: no table has
// 2^57 slots).
func locator(h *[32]byte) uint64 {
	return (binary.LittleEndian.Uint64(h[8:16])<<6 | hashTokenKey(*h)&(shardCount-1)) &^ idPresent
}

// locate finds the record of token id by its locator, probing from its
// hash's home slot as find does (ids are unique in the table, so the first
// record of that id is the one): its shard, slot and record index, or a nil
// shard. The caller (the writer) takes no lock: records move only under the
// writer's own hand.
func (t *tokenTable) locate(id int64) (sh *tokenShard, slot, rec int) {
	loc, ok := t.byID.get(id)
	if !ok {
		return nil, 0, -1
	}
	sh = &t.shards[loc&(shardCount-1)]
	mask := len(sh.slots) - 1
	for s := int(loc>>6) & mask; sh.slots[s] != 0; s = (s + 1) & mask {
		if i := int(sh.slots[s] - 1); sh.recs[i].id == id {
			return sh, s, i
		}
	}
	return nil, 0, -1 // not reached while byID and the shards agree
}

func (t *tokenTable) get(h [32]byte) (tokenRec, string, bool) {
	sh := t.shard(h)
	sh.mu.RLock()
	_, i := sh.find(&h)
	if i < 0 {
		sh.mu.RUnlock()
		return tokenRec{}, "", false
	}
	r, names := sh.recs[i].tokenRec, sh.names
	sh.mu.RUnlock()
	if r.nameLen == 0 {
		return r, "", true
	}
	return r, unsafe.String(&names[r.nameOff], r.nameLen), true
}

// put adds or replaces the token with hash h. The record's name offset is
// filled in here. A record that r's id had under another hash is removed
// first: the id now names this token, and the old one is no longer in the
// store under it (nor, if it is in the store at all, under this id: its own
// change puts it back). A record of h under another id gives up that id.
func (t *tokenTable) put(h [32]byte, r tokenRec, name string) {
	if osh, os, oi := t.locate(r.id); osh != nil && osh.recs[oi].hash != h {
		osh.mu.Lock()
		osh.remove(os, oi)
		osh.compact()
		osh.mu.Unlock()
	}
	sh := t.shard(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	t.byID.set(r.id, locator(&h))
	s, i := sh.find(&h)
	if i >= 0 {
		old := sh.recs[i].tokenRec
		if old.id != r.id {
			t.byID.del(old.id)
		}
		if sh.name(old) == name { // a revocation, say: the name stays where it is
			r.nameOff, r.nameLen = old.nameOff, old.nameLen
		} else {
			sh.dead += int(old.nameLen)
			r.nameOff, r.nameLen = sh.addName(name)
		}
		sh.recs[i].tokenRec = r
		sh.compact()
		return
	}
	if (len(sh.recs)+1)*4 > len(sh.slots)*3 {
		sh.rehash(len(sh.slots) * 2)
		s, _ = sh.find(&h)
	}
	r.nameOff, r.nameLen = sh.addName(name)
	sh.recs = append(sh.recs, tokenEntry{hash: h, tokenRec: r})
	sh.slots[s] = uint32(len(sh.recs))
}

func (sh *tokenShard) addName(name string) (off, n uint32) {
	off = uint32(len(sh.names))
	sh.names = append(sh.names, name...)
	return off, uint32(len(name))
}

// rehash rebuilds the slots at size n (a power of two).
func (sh *tokenShard) rehash(n int) {
	sh.slots = make([]uint32, n)
	for i := range sh.recs {
		s, _ := sh.find(&sh.recs[i].hash)
		sh.slots[s] = uint32(i + 1)
	}
}

// remove deletes the record in slot s, record index i: the slots after it
// shift back (no tombstones), and the last record moves into its place.
func (sh *tokenShard) remove(s, i int) {
	sh.dead += int(sh.recs[i].nameLen)
	mask := len(sh.slots) - 1
	sh.slots[s] = 0
	for j := (s + 1) & mask; sh.slots[j] != 0; j = (j + 1) & mask {
		k := home(&sh.recs[sh.slots[j]-1].hash, mask)
		// The entry at j may move back to s unless its home lies
		// cyclically in (s, j].
		if (s < j && (k <= s || k > j)) || (s > j && k <= s && k > j) {
			sh.slots[s], sh.slots[j] = sh.slots[j], 0
			s = j
		}
	}
	last := len(sh.recs) - 1
	if i != last {
		sh.recs[i] = sh.recs[last]
		ms, _ := sh.find(&sh.recs[i].hash)
		sh.slots[ms] = uint32(i + 1)
	}
	sh.recs = sh.recs[:last]
}

// deleteID removes the record of the given token id, found through byID.
func (t *tokenTable) deleteID(id int64) {
	sh, s, i := t.locate(id)
	if sh == nil {
		return
	}
	sh.mu.Lock()
	sh.remove(s, i)
	sh.compact()
	sh.mu.Unlock()
	t.byID.del(id)
}

func (t *tokenTable) len() int {
	n := 0
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.RLock()
		n += len(sh.recs)
		sh.mu.RUnlock()
	}
	return n
}

// name is the name of r. The caller holds the shard's lock.
func (sh *tokenShard) name(r tokenRec) string {
	return string(sh.names[r.nameOff : r.nameOff+r.nameLen])
}

// compact copies the live names to a new arena once more than half of it is
// dead. Strings handed out before keep the old array alive; it is never
// written again. The caller holds the shard's write lock.
func (sh *tokenShard) compact() {
	if len(sh.names) < minCompact || sh.dead*2 < len(sh.names) {
		return
	}
	names := make([]byte, 0, len(sh.names)-sh.dead)
	for i := range sh.recs {
		r := &sh.recs[i]
		off := uint32(len(names))
		names = append(names, sh.names[r.nameOff:r.nameOff+r.nameLen]...)
		r.nameOff = off
	}
	sh.names, sh.dead = names, 0
}

// refTable numbers values so that pointer-free records can refer to them:
// the writer appends (under Index.writeMu), readers look a number up
// without a lock. Values sit in fixed chunks that never move; a reader only
// looks up numbers it read from a record published after the value was
// added (under a shard lock), so it always finds the value in place.
type refTable[T any] struct {
	chunks atomic.Pointer[[]*[refChunk]T]
	n      uint32 // writer only
}

const refChunk = 1024

func (t *refTable[T]) add(v T) uint32 {
	i, slot := t.next()
	*slot = v
	return i
}

// next numbers a new value and returns its place, for the writer to fill
// before it publishes the number.
func (t *refTable[T]) next() (uint32, *T) {
	i := t.n
	var chunks []*[refChunk]T
	if p := t.chunks.Load(); p != nil {
		chunks = *p
	}
	if int(i/refChunk) == len(chunks) {
		grown := append(chunks[:len(chunks):len(chunks)], new([refChunk]T))
		t.chunks.Store(&grown)
		chunks = grown
	}
	t.n++
	return i, &chunks[i/refChunk][i%refChunk]
}

func (t *refTable[T]) at(i uint32) T { return *t.ptr(i) }

func (t *refTable[T]) ptr(i uint32) *T { return &(*t.chunks.Load())[i/refChunk][i%refChunk] }

// symTable holds the symbols, each with its term, in a refTable's chunks: a
// symbol is no object of its own for the collector (one per user and
// organization), and its number finds it.
type symTable struct{ cells refTable[symCell] }

type symCell struct {
	sym  Sym
	term ast.Term
}

// add makes the symbol for s, whose text the caller keeps.
func (t *symTable) add(s string) *Sym {
	i, c := t.cells.next()
	c.term = ast.Term{Value: ast.String(s)}
	c.sym = Sym{S: s, Term: &c.term, ref: i}
	return &c.sym
}

func (t *symTable) at(i uint32) *Sym { return &t.cells.ptr(i).sym }
