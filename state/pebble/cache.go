package pebble

import "github.com/cockroachdb/pebble"

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
