package index

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestTokenTableModel runs random puts, renames and deletions against the
// table and a Go map side by side, with few shards' worth of keys so that
// probe chains collide, wrap around and shift back on deletion, and enough
// renames that the name arenas are compacted; after every step batch each
// key must read back exactly as the model says.
func TestTokenTableModel(t *testing.T) {
	var tt tokenTable
	tt.init(0)
	type want struct {
		rec  tokenRec
		name string
	}
	model := map[[32]byte]want{}
	rng := rand.New(rand.NewPCG(1, 2))
	key := func(i int) [32]byte {
		var h [32]byte
		h[0] = byte(i % 3) // three shards only
		// Few distinct probe homes: the last slots of any table size, so
		// that chains wrap around, and the first ones, where they land.
		if i%2 == 0 {
			h[8] = byte(255 - i%7)
			for j := 9; j < 16; j++ {
				h[j] = 0xff
			}
		} else {
			h[8] = byte(i % 5)
		}
		h[20], h[21], h[22] = byte(i), byte(i>>8), byte(i>>16)
		return h
	}
	keys := make([][32]byte, 3000)
	for i := range keys {
		keys[i] = key(i)
	}
	check := func(step int) {
		t.Helper()
		if got := tt.len(); got != len(model) {
			t.Fatalf("step %d: len %d; want %d", step, got, len(model))
		}
		for _, h := range keys {
			r, name, ok := tt.get(h)
			w, wok := model[h]
			if ok != wok || (ok && (r.id != w.rec.id || r.createdNs != w.rec.createdNs || name != w.name)) {
				t.Fatalf("step %d: get(%x) = %+v %q %v; want %+v %q %v", step, h[20:23], r, name, ok, w.rec, w.name, wok)
			}
		}
	}
	for step := range 60000 {
		h := keys[rng.IntN(len(keys))]
		switch op := rng.IntN(12); {
		case op >= 10: // an id comes to name this hash: its old record goes
			id := int64(rng.IntN(len(keys)/2)) | 1<<40
			w := want{rec: tokenRec{id: id, createdNs: int64(step)}, name: fmt.Sprintf("moved-%d", id)}
			for k, o := range model {
				if o.rec.id == id && k != h {
					delete(model, k)
				}
			}
			tt.put(h, w.rec, w.name)
			model[h] = w
		case op < 6:
			w := want{rec: tokenRec{id: int64(h[20]) | int64(h[21])<<8 | int64(h[22])<<16, createdNs: int64(step)},
				name: fmt.Sprintf("name-%d-%s", rng.IntN(4), string(make([]byte, rng.IntN(40))))}
			for k, o := range model {
				if o.rec.id == w.rec.id && k != h {
					delete(model, k)
				}
			}
			tt.put(h, w.rec, w.name)
			model[h] = w
		case op < 9:
			if w, ok := model[h]; ok {
				tt.deleteID(w.rec.id)
				delete(model, h)
			}
		default: // same name, other values: the name stays in place
			if w, ok := model[h]; ok {
				w.rec.createdNs = -int64(step)
				tt.put(h, w.rec, w.name)
				model[h] = w
			}
		}
		if step%2000 == 0 {
			check(step)
		}
	}
	check(-1)
	if tt.byID.n != len(model) {
		t.Errorf("byID holds %d ids; want %d", tt.byID.n, len(model))
	}
	for h, w := range model {
		if sh, _, i := tt.locate(w.rec.id); sh == nil || sh.recs[i].hash != h {
			t.Fatalf("id %d is not located at its hash %x", w.rec.id, h[20:23])
		}
	}
	for i := range tt.shards {
		sh := &tt.shards[i]
		if sh.dead*2 >= len(sh.names) && len(sh.names) >= minCompact {
			t.Errorf("shard %d: %d of %d name bytes dead and not compacted", i, sh.dead, len(sh.names))
		}
		live := 0
		for _, r := range sh.recs {
			live += int(r.nameLen)
		}
		if live+sh.dead != len(sh.names) {
			t.Errorf("shard %d: %d live + %d dead name bytes; arena holds %d", i, live, sh.dead, len(sh.names))
		}
	}
}

// TestTokenTableIDNamesAnotherToken: the change log names a token by its
// id, and an id may come to name another token (another hash): putting the
// new one drops the old, which must no longer be found; a hash that moves
// to another id leaves its old id nothing.
func TestTokenTableIDNamesAnotherToken(t *testing.T) {
	var tt tokenTable
	tt.init(0)
	h := func(i byte) (k [32]byte) { k[0], k[8], k[31] = i, i*7, i; return k }
	tt.put(h(1), tokenRec{id: 14}, "v")
	tt.put(h(2), tokenRec{id: 15}, "x")
	tt.put(h(3), tokenRec{id: 14}, "w")
	if _, _, ok := tt.get(h(1)); ok {
		t.Fatal("the old token of id 14 is still found after id 14 came to name another")
	}
	if r, name, ok := tt.get(h(3)); !ok || r.id != 14 || name != "w" {
		t.Fatalf("id 14's new token: %+v %q %v", r, name, ok)
	}
	// Hash 2 moves from id 15 to id 16: deleting id 15 must not remove it.
	tt.put(h(2), tokenRec{id: 16}, "x")
	tt.deleteID(15)
	if r, _, ok := tt.get(h(2)); !ok || r.id != 16 {
		t.Fatalf("the token moved to id 16: %+v %v", r, ok)
	}
	if got := tt.len(); got != 2 {
		t.Fatalf("len %d; want 2", got)
	}
	tt.deleteID(14)
	tt.deleteID(16)
	if got := tt.len(); got != 0 || tt.byID.n != 0 {
		t.Fatalf("len %d, %d ids; want none", got, tt.byID.n)
	}
}

// TestTokenTableNamesStay checks that a name handed out stays the same
// after its record is renamed, deleted and its arena compacted.
func TestTokenTableNamesStay(t *testing.T) {
	var tt tokenTable
	tt.init(0)
	var h [32]byte
	tt.put(h, tokenRec{id: 1}, "first")
	_, name, _ := tt.get(h)
	for i := range 20000 {
		tt.put(h, tokenRec{id: 1}, fmt.Sprintf("renamed-%d", i))
	}
	tt.deleteID(1)
	if name != "first" {
		t.Fatalf("a name handed out changed to %q", name)
	}
	if n := len(tt.shards[0].names); n >= minCompact {
		t.Fatalf("arena holds %d bytes after every record was deleted", n)
	}
}

// A store's sizes are estimates from its largest ids: an absurd one must
// neither panic nor allocate for it.
func TestReserveBoundsHints(t *testing.T) {
	for _, tc := range []struct {
		note string
		n    int
		want int
	}{
		{note: "none", n: 0, want: 0},
		{note: "negative", n: -5, want: 0},
		{note: "a million", n: 1_000_000, want: 1_000_000/shardCount + 1_000_000/shardCount/8 + 8},
		{note: "sparse ids", n: 1 << 40, want: maxReserve/shardCount + maxReserve/shardCount/8 + 8},
	} {
		t.Run(tc.note, func(t *testing.T) {
			if got := perShard(tc.n); got != tc.want {
				t.Fatalf("perShard(%d) = %d; want %d", tc.n, got, tc.want)
			}
		})
	}
	if s := slotsFor(perShard(1 << 62)); s <= 0 || s > 1<<20 {
		t.Fatalf("slotsFor an absurd hint = %d", s)
	}
}

// TestIDIndexModel runs random sets and deletions of dense, far and
// negative ids against a Go map: ids first kept in the map may later fall
// inside the slice as it grows, and must still be found once.
func TestIDIndexModel(t *testing.T) {
	var ix idIndex
	ix.init(100)
	model := map[int64]uint64{}
	rng := rand.New(rand.NewPCG(3, 4))
	for step := range 200000 {
		var id int64
		switch rng.IntN(4) {
		case 0:
			id = int64(rng.IntN(300))
		case 1:
			id = int64(rng.IntN(400_000)) // past the slice's end: the map first
		case 2:
			id = 1<<40 + int64(rng.IntN(50))
		default:
			id = -int64(rng.IntN(50))
		}
		if rng.IntN(3) == 0 {
			ix.del(id)
			delete(model, id)
		} else {
			loc := rng.Uint64() &^ idPresent
			ix.set(id, loc)
			model[id] = loc
		}
		if step%10000 == 0 || step == 199999 {
			if ix.n != len(model) {
				t.Fatalf("step %d: %d ids; want %d", step, ix.n, len(model))
			}
			for id, want := range model {
				if got, ok := ix.get(id); !ok || got != want {
					t.Fatalf("step %d: get(%d) = %x, %v; want %x", step, id, got, ok, want)
				}
			}
		}
	}
	if len(ix.dense) > 2*ix.n+minDense+1 {
		t.Errorf("the slice holds %d slots for %d ids", len(ix.dense), ix.n)
	}
	if _, ok := ix.get(12345678); ok {
		t.Error("an id never set is found")
	}
}
