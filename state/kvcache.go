package state

// A read cache of hot entries in front of a KVStore.
//
// A point read of Pebble costs a walk of the memtables and of every
// sstable level that may hold the key (an iterator per file, a block from
// the block cache or the disk): microseconds, where a Go map costs tens of
// nanoseconds. Aggregations touch a few hot keys (the accumulator of the
// current day, the distinct values seen most often) on most records, so
// the typed tables over a KVStore keep the encoded values of the entries
// they read or wrote last in a Go map, write-through: every write goes to
// the store (in the same write batch as without the cache) and updates
// the cache, so the store is always complete and checkpoints, scans and
// restores never see the cache.
//
// The cache holds encoded bytes, not decoded values: a read decodes a
// fresh value as without the cache, so a caller that changes a value it
// read without writing it back changes nothing stored (the behaviour of a
// byte-level backend is unchanged). Absent entries are not cached.
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

// entryOverhead approximates a cached entry's bytes beyond its key and
// value (map slot, string and slice headers).
const entryOverhead = 64

// kvCache is one table's read cache: encoded store key -> encoded value.
type kvCache struct {
	budget *CacheBudget
	m      map[string][]byte
	bytes  int64
}

func newKVCache(kv KVStore) kvCache {
	c := kvCache{}
	if b, ok := kv.(KVCacheBudget); ok {
		if bu := b.CacheBudget(); bu != nil && bu.limit > 0 {
			c.budget, c.m = bu, make(map[string][]byte)
		}
	}
	return c
}

func (c *kvCache) get(key []byte) ([]byte, bool) {
	if c.m == nil {
		return nil, false
	}
	v, ok := c.m[string(key)]
	return v, ok
}

func (c *kvCache) put(key, val []byte) {
	if c.m == nil {
		return
	}
	size := int64(len(key)+len(val)) + entryOverhead
	if size > c.budget.limit/16 {
		c.del(key) // too large to be worth its room
		return
	}
	if old, ok := c.m[string(key)]; ok && cap(old) >= len(val) {
		c.grow(int64(len(val) - len(old)))
		c.m[string(key)] = append(old[:0], val...)
		return
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
		return // the other tables hold the budget
	}
	c.m[string(key)] = append([]byte(nil), val...)
	c.grow(size)
}

func (c *kvCache) grow(n int64) {
	c.bytes += n
	c.budget.used += n
}

// evict drops about a quarter of the table's entries.
func (c *kvCache) evict() {
	n := len(c.m)/4 + 1
	for k, v := range c.m {
		if n == 0 {
			break
		}
		delete(c.m, k)
		c.grow(-int64(len(k)+len(v)) - entryOverhead)
		n--
	}
}

func (c *kvCache) del(key []byte) {
	if c.m == nil {
		return
	}
	if v, ok := c.m[string(key)]; ok {
		delete(c.m, string(key))
		c.grow(-int64(len(key)+len(v)) - entryOverhead)
	}
}

// clear drops every entry (range deletions: a key's map or list cleared,
// a key group dropped).
func (c *kvCache) clear() {
	if c.m == nil || len(c.m) == 0 {
		return
	}
	clear(c.m)
	c.grow(-c.bytes)
}
