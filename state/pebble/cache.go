package pebble

import (
	"github.com/cockroachdb/pebble"

	"github.com/sluicehq/sluice/internal/memlimit"
)

// Cache is a block cache that several backends share (Options.Cache), so
// that the state of all the subtasks of a process fits in one budget
// instead of one cache per subtask. Its memory is freed when Release was
// called and every backend using it closed.
type Cache struct {
	c *pebble.Cache
}

// NewCache returns a block cache of size bytes.
func NewCache(size int64) *Cache { return &Cache{c: pebble.NewCache(size)} }

// Capacity is the cache's size in bytes.
func (c *Cache) Capacity() int64 { return c.c.MaxSize() }

// Used is the number of bytes the cache holds.
func (c *Cache) Used() int64 { return c.c.Size() }

// Release drops the creator's reference.
func (c *Cache) Release() { c.c.Unref() }

// PlanOptions are the options of the Pebble backends of a job of the
// given parallelism (at least 1) under the memory plan p, sharing cache
// (made with NewCache(p.PebbleCache)): each keyed operator subtask has a
// backend, and a job is assumed to have two keyed operators. What the
// backends keep in Go memory in front of Pebble (read caches of hot
// entries, membership filters of maps and windows) is in-memory state, so
// it comes out of the heap part: together at most a quarter of it (an
// eighth per backend of each keyed operator per core).
func PlanOptions(p memlimit.Plan, cache *Cache, parallelism int) Options {
	parallelism = max(parallelism, 1)
	return Options{Cache: cache, MemTableSize: p.MemTableSize(2 * parallelism),
		HotCacheSize: max(p.Heap/int64(8*parallelism), 256<<10)}
}
