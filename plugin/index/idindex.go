package index

// idIndex maps token ids to locators (tokenTable.locate), for the writer
// only. Store ids come from a sequence, so most are small and dense: those
// sit in a slice indexed by id, 8 bytes a token, filled in id order while a
// load runs (a Go map of the same took 38 MB at 1M tokens and a sixth more
// time to load). An id far past the slice's end (ids set by hand, a
// sequence that started high) goes to a map instead, so that no id makes
// the slice grow beyond twice the table's tokens.
type idIndex struct {
	dense  []uint64 // by id; 0: none, else the locator with idPresent set
	sparse map[int64]uint64
	n      int // ids held
}

// idPresent marks a dense slot in use; locators leave the top bit to it.
const idPresent = 1 << 63

// minDense is how far past the slice's end an id may be and still extend it.
const minDense = 1 << 16

// init empties the index and sizes it for ids up to n.
func (ix *idIndex) init(n int) {
	*ix = idIndex{dense: make([]uint64, 0, min(max(n, 0), maxReserve)+1)}
}

func (ix *idIndex) get(id int64) (uint64, bool) {
	if id >= 0 && id < int64(len(ix.dense)) {
		if v := ix.dense[id]; v != 0 {
			return v &^ idPresent, true
		}
	}
	v, ok := ix.sparse[id]
	return v, ok
}

// set records id's locator.
func (ix *idIndex) set(id int64, loc uint64) {
	if id >= 0 && id < int64(len(ix.dense)) {
		if ix.dense[id] == 0 {
			if _, ok := ix.sparse[id]; ok {
				delete(ix.sparse, id)
			} else {
				ix.n++
			}
		}
		ix.dense[id] = loc | idPresent
		return
	}
	if id >= 0 && id < int64(2*ix.n+minDense) {
		if _, ok := ix.sparse[id]; ok {
			delete(ix.sparse, id)
			ix.n--
		}
		need := int(id) + 1
		if need > cap(ix.dense) {
			grown := make([]uint64, need, max(need, 2*cap(ix.dense)))
			copy(grown, ix.dense)
			ix.dense = grown
		}
		ix.dense = ix.dense[:need] // zero past the old end: the slice never shrinks
		ix.dense[id] = loc | idPresent
		ix.n++
		return
	}
	if ix.sparse == nil {
		ix.sparse = map[int64]uint64{}
	}
	if _, ok := ix.sparse[id]; !ok {
		ix.n++
	}
	ix.sparse[id] = loc
}

// del forgets id.
func (ix *idIndex) del(id int64) {
	if id >= 0 && id < int64(len(ix.dense)) && ix.dense[id] != 0 {
		ix.dense[id] = 0
		ix.n--
		return
	}
	if _, ok := ix.sparse[id]; ok {
		delete(ix.sparse, id)
		ix.n--
	}
}
