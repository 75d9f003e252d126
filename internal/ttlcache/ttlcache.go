// Package ttlcache is the bounded LRU cache with a time to live that the
// enrichment steps share (the lookup joins of connector/lookup and the
// HTTP calls of the pipeline's enrich step): at most Size entries, the
// least recently used evicted first, an entry older than TTL treated as
// absent. It is github.com/hashicorp/golang-lru/v2's LRU with entries
// stamped by a clock the caller gives (tests drive it): golang-lru's own
// expiry is not used, because in v2.0.7 a positive TTL starts a goroutine
// per cache that never exits.
package ttlcache

import (
	"fmt"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
)

type entry[V any] struct {
	v  V
	at time.Time
}

// Cache maps string keys to values of type V. It is safe for concurrent
// use.
type Cache[V any] struct {
	lru *expirable.LRU[string, entry[V]]
	ttl time.Duration
	now func() time.Time
}

// New returns a cache of at most size entries that live ttl each,
// measured by now (nil: time.Now).
func New[V any](size int, ttl time.Duration, now func() time.Time) (*Cache[V], error) {
	if size <= 0 {
		return nil, fmt.Errorf("cache size %d: must be positive", size)
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("cache ttl %v: must be positive (the longest a value may be stale), like 1m", ttl)
	}
	if now == nil {
		now = time.Now
	}
	return &Cache[V]{lru: expirable.NewLRU[string, entry[V]](size, nil, 0), ttl: ttl, now: now}, nil
}

// Get returns the value of key when the cache holds it and it has not
// expired; an expired entry is removed.
func (c *Cache[V]) Get(key string) (V, bool) {
	e, ok := c.lru.Get(key)
	if ok && c.now().Sub(e.at) < c.ttl {
		return e.v, true
	}
	if ok {
		c.lru.Remove(key)
	}
	var zero V
	return zero, false
}

// Add stores v under key, stamped now.
func (c *Cache[V]) Add(key string, v V) { c.lru.Add(key, entry[V]{v: v, at: c.now()}) }

// AddAt stores v under key, stamped at: the time v was read from its
// source, when that was before now (a slow query), so that v is never
// served more than TTL after it was read.
func (c *Cache[V]) AddAt(key string, v V, at time.Time) { c.lru.Add(key, entry[V]{v: v, at: at}) }

// Len returns the number of entries, expired ones not yet removed
// included.
func (c *Cache[V]) Len() int { return c.lru.Len() }

// Purge removes every entry.
func (c *Cache[V]) Purge() { c.lru.Purge() }
