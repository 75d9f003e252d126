package state

// A cache of decoded hot values in front of the value tables of a
// KVStore, written back.
//
// An aggregation reads and writes its key's accumulator on every record.
// Over a KVStore each of those costs a decode and an encode of the value
// (the codecs of package codec, reflective for structs), and the written
// value a store write; in memory they cost nothing (the Go value is kept).
// So a value table keeps the decoded values of the keys it read or wrote
// last in a Go map by key, as the memory backend does:
//
//   - Get of a cached key returns the cached value without touching the
//     store or the codecs; a miss reads and decodes as before and caches
//     the value.
//   - Put of a cached key replaces the value and marks it dirty: no
//     encoding, no store write. Put of a key not cached encodes it once to
//     learn its size and caches it dirty.
//   - Dirty values are encoded and written to the store when the store
//     takes a snapshot (KVWriteBack: Pebble writes them back before every
//     checkpoint), when they are evicted, and before the table's own scans
//     (Range, Len, ClearKeyGroup). Between snapshots nothing else reads the
//     store (a restore builds new tables over the snapshot), so what a
//     checkpoint captures is complete, and a value updated by every record
//     of a checkpoint interval costs one store write per interval (or per
//     eviction) instead of one per record.
//
// As in memory, Get returns the cached value itself: a caller that
// changes a value (through a pointer, a map or a slice it holds) changes
// what later Gets return while the key stays cached, and what is stored
// only if it Puts it. Programs that Put what they change, as they must
// with the memory backend's change tracking, see the same results either
// way.
//
// Memory: an entry is charged the size of its encoded key and value plus
// an overhead, measured when it is decoded or encoded; a value put again
// and again is re-encoded to measure it every remeasureEvery Puts, so that
// a growing value (a list in the accumulator) is charged what it grew to.
// Entries share the store's CacheBudget with the map tables' caches and
// filters; a table may hold a sixteenth of the budget whatever the others
// hold, and evicts a quarter of its entries (random order, dirty ones
// written first) when over.

// remeasureEvery is how often (in Puts of one cached entry) the value is
// encoded to measure its size.
const remeasureEvery = 16

// hotValues is the cache of a value table.
type hotValues[K comparable, V any] struct {
	budget *CacheBudget // nil: no cache
	m      map[K]*hotValue[V]
	bytes  int64
	dirty  int
	// The entry looked up last: a record's Get and Put of its key look it
	// up once.
	lastK K
	last  *hotValue[V]
	// Buffers of write-back, apart from the table's, which a Put that
	// evicts still uses.
	kbuf, vbuf []byte
}

// hotValue is a cached value of key group kg; size is what it is charged.
type hotValue[V any] struct {
	v     V
	size  int64
	kg    int32
	puts  uint8
	dirty bool
}

func hotSize(key, val int) int64 { return int64(key+val) + entryOverhead }

func (h *hotValues[K, V]) init(kv KVStore) {
	if b, ok := kv.(KVCacheBudget); ok {
		if bu := b.CacheBudget(); bu != nil && bu.limit > 0 {
			h.budget, h.m = bu, make(map[K]*hotValue[V])
		}
	}
}

// lookup returns the entry of k, or nil.
func (h *hotValues[K, V]) lookup(k K) *hotValue[V] {
	if h.last != nil && h.lastK == k {
		return h.last
	}
	if h.m == nil {
		return nil
	}
	e := h.m[k]
	if e != nil {
		h.last, h.lastK = e, k
	}
	return e
}

func (h *hotValues[K, V]) grow(n int64) {
	h.bytes += n
	h.budget.used += n
}

// drop removes k's entry, unwritten (the caller deletes k from the store).
func (h *hotValues[K, V]) drop(k K) {
	e := h.lookup(k)
	if e == nil {
		return
	}
	h.remove(k, e)
}

func (h *hotValues[K, V]) remove(k K, e *hotValue[V]) {
	if e.dirty {
		h.dirty--
	}
	delete(h.m, k)
	h.grow(-e.size)
	if h.last == e {
		var zero K
		h.last, h.lastK = nil, zero
	}
}

// clear drops every entry; callers write dirty entries back first.
func (h *hotValues[K, V]) clear() {
	if len(h.m) == 0 {
		return
	}
	if h.dirty != 0 {
		panic("state: hotValues.clear with dirty entries")
	}
	clear(h.m)
	h.grow(-h.bytes)
	var zero K
	h.last, h.lastK = nil, zero
}

// cacheValue caches v as the value of k (in key group kg) of the given
// size, dirty or not, and reports whether it did; when it did not (no
// cache, a value too large to be worth its room, a budget held by other
// tables), a dirty value is the caller's to write.
func (t *kvTable[K, V]) cacheValue(kg int, k K, v V, size int64, dirty bool) bool {
	h := &t.hot
	if h.m == nil || size > h.budget.limit/16 {
		return false
	}
	floor := h.budget.limit / 16
	for h.budget.used+size > h.budget.limit && h.bytes+size > floor && len(h.m) > 0 {
		t.evict()
	}
	if h.budget.used+size > h.budget.limit && h.bytes+size > floor {
		return false
	}
	e := &hotValue[V]{v: v, size: size, kg: int32(kg), dirty: dirty}
	h.m[k] = e
	h.grow(size)
	if dirty {
		h.dirty++
	}
	h.last, h.lastK = e, k
	return true
}

// update replaces the value of cached entry e of key k in key group kg
// with v.
func (t *kvTable[K, V]) update(kg int, k K, e *hotValue[V], v V) {
	h := &t.hot
	e.v = v
	if !e.dirty {
		e.dirty = true
		h.dirty++
	}
	if e.puts++; e.puts < remeasureEvery {
		return
	}
	e.puts = 0
	key := t.key(kg, k)
	t.vbuf = t.vc.Append(t.vbuf[:0], v)
	size := hotSize(len(key), len(t.vbuf))
	if size > h.budget.limit/16 {
		// Grown too large to be worth its room: stored, no longer cached.
		t.check("put", t.kv.Set(key, t.vbuf))
		e.dirty = false
		h.dirty--
		h.remove(k, e)
		return
	}
	h.grow(size - e.size)
	e.size = size
}

// writeOne encodes dirty entry e of k and writes it to the store.
func (t *kvTable[K, V]) writeOne(k K, e *hotValue[V]) {
	h := &t.hot
	h.kbuf = KVPrefix(h.kbuf[:0], int(e.kg), t.name)
	h.kbuf = t.kc.Append(h.kbuf, k)
	h.vbuf = t.vc.Append(h.vbuf[:0], e.v)
	if err := t.kv.Set(h.kbuf, h.vbuf); err != nil {
		panic(&KVError{Table: t.name, Op: "write back", Err: err})
	}
	e.dirty = false
	h.dirty--
	size := hotSize(len(h.kbuf), len(h.vbuf))
	h.grow(size - e.size)
	e.size, e.puts = size, 0
}

// writeBack writes every dirty entry to the store.
func (t *kvTable[K, V]) writeBack() {
	h := &t.hot
	if h.dirty == 0 {
		return
	}
	for k, e := range h.m {
		if e.dirty {
			t.writeOne(k, e)
			if h.dirty == 0 {
				break
			}
		}
	}
	if cap(h.vbuf) > 1<<16 {
		h.vbuf = nil // a large value's buffer is not worth keeping
	}
}

// evict drops about a quarter of the entries, writing the dirty ones to
// the store first.
func (t *kvTable[K, V]) evict() {
	h := &t.hot
	n := len(h.m)/4 + 1
	for k, e := range h.m {
		if n == 0 {
			break
		}
		if e.dirty {
			t.writeOne(k, e)
		}
		h.remove(k, e)
		n--
	}
}
