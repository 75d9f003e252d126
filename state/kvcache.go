package state

// A read cache of hot entries in front of a KVStore.
//
// A point read of Pebble costs a walk of the memtables and of every
// sstable level that may hold the key (an iterator per file, a block from
// the block cache or the disk): microseconds, where a Go map costs tens of
// nanoseconds. Aggregations touch a few hot keys (the accumulator of the
// current day, the distinct values seen most often) on most records, so
// the typed tables over a KVStore keep the encoded values of the entries
// they read or wrote last in a Go map.
//
// This file is the cache of map tables' entries, which write through:
// every write goes to the store (in the same write batch as without the
// cache) and updates the cache. It holds encoded bytes, not decoded
// values: a read decodes a fresh value as without the cache. Absent
// entries are not cached (the membership filters of kvfilter.go answer
// for them). Value tables keep decoded values instead, written back
// (kvvalue.go); both share the store's budget. Checkpoints and restores
// never see the caches: a snapshot writes back and commits first, and a
// restore builds new tables.
//
// The cache of all the tables of one store is bounded by the store's
// budget (KVCacheBudget), plus a floor of a sixteenth of it per table; a
// table over budget evicts entries of its own in the map's iteration
// order, which is random: cheap, and hot entries come back at their next
// read.

// KVCacheBudget is implemented by KVStores whose tables may keep a read
// cache: it returns the budget shared by the tables of the store (nil: no
// cache).
type KVCacheBudget interface {
	CacheBudget() *CacheBudget
}

// CacheBudget bounds the read caches of the tables of one store. It is
// used by the store's goroutine only.
type CacheBudget struct {
	limit int64
	used  int64
}

// NewCacheBudget returns a budget of limit bytes (0 or less: no cache).
func NewCacheBudget(limit int64) *CacheBudget { return &CacheBudget{limit: limit} }

// Used returns the bytes the caches hold.
func (b *CacheBudget) Used() int64 { return b.used }

// Limit returns the budget's bound in bytes.
func (b *CacheBudget) Limit() int64 { return b.limit }

// Reserve charges n bytes of memory held outside the tables' caches (the
// membership filters of the window operators, stream/window_kvfilter.go)
// if they fit in what the budget has left, and reports whether it did.
// The tables' caches still get their floor of a sixteenth each.
func (b *CacheBudget) Reserve(n int64) bool {
	if b == nil || b.used+n > b.limit {
		return false
	}
	b.used += n
	return true
}

// Release returns n bytes charged by Reserve.
func (b *CacheBudget) Release(n int64) { b.used -= n }

// entryOverhead approximates a cached entry's bytes beyond its key and
// value (map slot, string and slice headers).
const entryOverhead = 64

// kvCache is one table's read cache: encoded store key -> encoded value.
type kvCache struct {
	budget *CacheBudget
	m      map[string]cacheEntry
	bytes  int64
	// For write-back (value tables): the store dirty entries are written
	// to, the number of dirty entries, the table name for errors.
	kv    KVStore
	dirty int
	table string
}

// cacheEntry is a cached value; dirty: not yet written to the store.
type cacheEntry struct {
	val   []byte
	dirty bool
}

func newKVCache(kv KVStore, table string) kvCache {
	c := kvCache{kv: kv, table: table}
	if b, ok := kv.(KVCacheBudget); ok {
		if bu := b.CacheBudget(); bu != nil && bu.limit > 0 {
			c.budget, c.m = bu, make(map[string]cacheEntry)
		}
	}
	return c
}

func (c *kvCache) get(key []byte) ([]byte, bool) {
	if c.m == nil {
		return nil, false
	}
	e, ok := c.m[string(key)]
	return e.val, ok
}

// put caches val as the value of key, which the store holds.
func (c *kvCache) put(key, val []byte) { c.store(key, val, false) }

func (c *kvCache) store(key, val []byte, dirty bool) bool {
	if c.m == nil {
		return false
	}
	size := int64(len(key)+len(val)) + entryOverhead
	if size > c.budget.limit/16 {
		c.del(key) // too large to be worth its room
		return false
	}
	if old, ok := c.m[string(key)]; ok && cap(old.val) >= len(val) {
		c.grow(int64(len(val) - len(old.val)))
		if dirty && !old.dirty {
			c.dirty++
		}
		c.m[string(key)] = cacheEntry{val: append(old.val[:0], val...), dirty: dirty || old.dirty}
		return true
	}
	c.del(key)
	// Each table may hold a sixteenth of the budget whatever the others
	// hold, so that a large map cannot starve the few hot accumulators of
	// a value table (the bound is the budget plus a sixteenth per table).
	floor := c.budget.limit / 16
	for c.budget.used+size > c.budget.limit && c.bytes+size > floor && len(c.m) > 0 {
		c.evict()
	}
	if c.budget.used+size > c.budget.limit && c.bytes+size > floor {
		return false // the other tables hold the budget
	}
	c.m[string(key)] = cacheEntry{val: append([]byte(nil), val...), dirty: dirty}
	if dirty {
		c.dirty++
	}
	c.grow(size)
	return true
}

func (c *kvCache) grow(n int64) {
	c.bytes += n
	c.budget.used += n
}

// evict drops about a quarter of the table's entries, writing the dirty
// ones to the store first.
func (c *kvCache) evict() {
	n := len(c.m)/4 + 1
	for k, e := range c.m {
		if n == 0 {
			break
		}
		if e.dirty {
			c.writeOne(k, e)
		}
		delete(c.m, k)
		c.grow(-int64(len(k)+len(e.val)) - entryOverhead)
		n--
	}
}

// writeOne writes dirty entry k to the store and marks it clean.
func (c *kvCache) writeOne(k string, e cacheEntry) {
	c.dirty--
	c.m[k] = cacheEntry{val: e.val}
	if err := c.kv.Set([]byte(k), e.val); err != nil {
		panic(&KVError{Table: c.table, Op: "write back", Err: err})
	}
}

// del drops key's entry; a dirty entry is dropped unwritten, for the
// caller deletes key from the store.
func (c *kvCache) del(key []byte) {
	if c.m == nil {
		return
	}
	if e, ok := c.m[string(key)]; ok {
		if e.dirty {
			c.dirty--
		}
		delete(c.m, string(key))
		c.grow(-int64(len(key)+len(e.val)) - entryOverhead)
	}
}

// clear drops every entry (range deletions: a key's map or list cleared,
// a key group dropped). Callers write dirty entries back first.
func (c *kvCache) clear() {
	if c.m == nil || len(c.m) == 0 {
		return
	}
	if c.dirty != 0 {
		panic("state: kvCache.clear with dirty entries")
	}
	clear(c.m)
	c.grow(-c.bytes)
}
