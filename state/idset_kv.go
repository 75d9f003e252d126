package state

import (
	"encoding/binary"

	"github.com/sluicehq/sluice/state/codec"
)

// kvIDSetTable is IDSet state over a KVStore: one store key per chunk
// (idset.go), with a write-back cache of decoded chunks.
//
// The cache works as the one of value tables (kvvalue.go): a chunk read
// or created is kept decoded; adds change it in place and mark it dirty;
// dirty chunks are encoded and written when the store takes a snapshot
// (WriteBack), when they are evicted and before the table's own scans.
// A chunk absent from the store (the key directory, kvfilter.go, tells
// without a read for most) is cached empty, so that the next ids of a
// new chunk cost no store read either. Entries share the store's
// CacheBudget: a table may hold a sixteenth of it whatever the others
// hold, and evicts a quarter of its chunks (dirty ones written first)
// when over. Without a budget every add reads, and writes when it
// changes, its chunk.
type kvIDSetTable[K comparable] struct {
	name   string
	groups KeyGroupRange
	kv     KVStore
	kc     codec.Codec[K]
	kbuf   []byte
	vbuf   []byte

	budget *CacheBudget // nil: no cache
	m      map[idRef[K]]*kvIDChunk
	bytes  int64
	dirty  int
	// The chunk looked up last.
	lastRef idRef[K]
	last    *kvIDChunk
	// dir is the directory of the table's store keys (nil: none).
	dir *keyDir
	// scratch is the chunk of an add without a cache.
	scratch idChunk
}

// idRef names a chunk: a key and a chunk index.
type idRef[K comparable] struct {
	k K
	c int64
}

// kvIDChunk is a cached chunk of key group kg and what it is charged.
type kvIDChunk struct {
	c     idChunk
	size  int64
	kg    int32
	dirty bool
}

func (t *kvIDSetTable[K]) check(op string, err error) {
	if err != nil {
		panic(&KVError{Table: t.name, Op: op, Err: err})
	}
}

func (t *kvIDSetTable[K]) Name() string             { return t.name }
func (t *kvIDSetTable[K]) KeyGroups() KeyGroupRange { return t.groups }

// WriteBack implements KVWriteBack.
func (t *kvIDSetTable[K]) WriteBack() {
	if t.dirty == 0 {
		return
	}
	for r, e := range t.m {
		if e.dirty {
			t.writeOne(r, e)
			if t.dirty == 0 {
				break
			}
		}
	}
}

// Len returns the number of chunks stored (a scan of the table).
func (t *kvIDSetTable[K]) Len() int {
	t.WriteBack()
	n := 0
	for kg := t.groups.Start; kg < t.groups.End; kg++ {
		p := KVPrefix(nil, kg, t.name)
		t.check("len", t.kv.Scan(p, prefixEnd(p), func(_, _ []byte) bool { n++; return true }))
	}
	return n
}

// ClearKeyGroup deletes the chunks of key group kg.
func (t *kvIDSetTable[K]) ClearKeyGroup(kg int) {
	t.WriteBack()
	p := KVPrefix(nil, kg, t.name)
	t.check("clear", t.kv.DeleteRange(p, prefixEnd(p)))
	t.dropIf(func(_ idRef[K], e *kvIDChunk) bool { return int(e.kg) == kg })
}

// dropIf removes the cached chunks for which drop is true, unwritten.
func (t *kvIDSetTable[K]) dropIf(drop func(idRef[K], *kvIDChunk) bool) {
	for r, e := range t.m {
		if drop(r, e) {
			t.remove(r, e)
		}
	}
}

// keyPrefix returns, in t.kbuf, the prefix of the chunks of key k.
func (t *kvIDSetTable[K]) keyPrefix(kg int, k K) []byte {
	t.kbuf = KVPrefix(t.kbuf[:0], kg, t.name)
	t.kbuf = t.kc.Append(t.kbuf, k)
	return t.kbuf
}

// chunkKey returns, in t.kbuf, the store key of chunk ci of key k.
func (t *kvIDSetTable[K]) chunkKey(kg int, k K, ci int64) []byte {
	t.kbuf = binary.AppendUvarint(t.keyPrefix(kg, k), uint64(ci))
	return t.kbuf
}

// load reads chunk ci of key k into c (empty when absent).
func (t *kvIDSetTable[K]) load(kg int, k K, ci int64, c *idChunk) {
	c.ids, c.dense = c.ids[:0], nil
	key := t.chunkKey(kg, k, ci)
	if !t.dir.mayHave(key) {
		return
	}
	val, ok, err := t.kv.Get(key, t.vbuf[:0])
	t.check("get", err)
	if !ok {
		return
	}
	t.vbuf = val
	n, err := c.decode(val)
	if err == nil && n != len(val) {
		err = ErrCorruptSnapshot
	}
	t.check("decode", err)
}

// lookup returns the cached chunk r, or nil.
func (t *kvIDSetTable[K]) lookup(r idRef[K]) *kvIDChunk {
	if t.last != nil && t.lastRef == r {
		return t.last
	}
	e := t.m[r]
	if e != nil {
		t.last, t.lastRef = e, r
	}
	return e
}

// chunk returns chunk r of key group kg from the cache, loaded into it
// if needed; nil when it cannot be cached.
func (t *kvIDSetTable[K]) chunk(kg int, r idRef[K]) *kvIDChunk {
	if t.m == nil {
		return nil
	}
	if e := t.lookup(r); e != nil {
		return e
	}
	e := &kvIDChunk{kg: int32(kg)}
	t.load(kg, r.k, r.c, &e.c)
	size := e.c.memSize() + entryOverhead
	floor := t.budget.limit / 16
	for t.budget.used+size > t.budget.limit && t.bytes+size > floor && len(t.m) > 0 {
		t.evict()
	}
	if t.budget.used+size > t.budget.limit && t.bytes+size > floor {
		return nil
	}
	e.size = size
	t.m[r] = e
	t.grow(size)
	t.last, t.lastRef = e, r
	return e
}

func (t *kvIDSetTable[K]) grow(n int64) {
	t.bytes += n
	t.budget.used += n
}

func (t *kvIDSetTable[K]) remove(r idRef[K], e *kvIDChunk) {
	if e.dirty {
		t.dirty--
	}
	delete(t.m, r)
	t.grow(-e.size)
	if t.last == e {
		var zero idRef[K]
		t.last, t.lastRef = nil, zero
	}
}

// writeOne encodes dirty chunk e and writes it to the store.
func (t *kvIDSetTable[K]) writeOne(r idRef[K], e *kvIDChunk) {
	key := t.chunkKey(int(e.kg), r.k, r.c)
	t.vbuf = appendIDChunk(t.vbuf[:0], &e.c)
	t.check("write back", t.kv.Set(key, t.vbuf))
	t.dir.add(key)
	e.dirty = false
	t.dirty--
}

// evict drops about a quarter of the cached chunks, writing the dirty
// ones first.
func (t *kvIDSetTable[K]) evict() {
	n := len(t.m)/4 + 1
	for r, e := range t.m {
		if n == 0 {
			break
		}
		if e.dirty {
			t.writeOne(r, e)
		}
		t.remove(r, e)
		n--
	}
}

func (t *kvIDSetTable[K]) add(kg int, k K, ci int64, off uint16, mask uint8) uint8 {
	r := idRef[K]{k, ci}
	if e := t.chunk(kg, r); e != nil {
		before := e.c.get(off)
		if before|mask == before {
			return before
		}
		e.c.add(off, mask)
		if !e.dirty {
			e.dirty = true
			t.dirty++
		}
		size := e.c.memSize() + entryOverhead
		t.grow(size - e.size)
		e.size = size
		return before
	}
	c := &t.scratch
	t.load(kg, k, ci, c)
	before := c.get(off)
	if before|mask == before {
		return before
	}
	c.add(off, mask)
	key := t.chunkKey(kg, k, ci)
	t.vbuf = appendIDChunk(t.vbuf[:0], c)
	t.check("put", t.kv.Set(key, t.vbuf))
	t.dir.add(key)
	return before
}

func (t *kvIDSetTable[K]) tags(kg int, k K, ci int64, off uint16) uint8 {
	if e := t.chunk(kg, idRef[K]{k, ci}); e != nil {
		return e.c.get(off)
	}
	t.load(kg, k, ci, &t.scratch)
	return t.scratch.get(off)
}

// clearKey deletes every chunk of key k.
func (t *kvIDSetTable[K]) clearKey(kg int, k K) {
	t.dropIf(func(r idRef[K], _ *kvIDChunk) bool { return r.k == k })
	p := t.keyPrefix(kg, k)
	t.check("clear", t.kv.DeleteRange(p, prefixEnd(p)))
}
