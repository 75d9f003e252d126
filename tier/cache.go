package tier

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// chunkCache keeps chunks of remote segments in memory and in files of a
// directory. Concurrent misses of one chunk share one fetch.
//
// Memory holds the chunks fetched last, up to memLimit bytes (oldest put
// dropped first): a sequential reader's read-ahead puts chunks that the
// reader asks for moments later, and a read walks each chunk more than once
// (batch headers, then the data), so these are served without a file.
//
// Files hold, up to limit bytes with the least recently used evicted, the
// chunks that were fetched a second time (the keys fetched before are
// remembered, not their data): a consumer reading a remote range once, as
// one catching up does, costs no disk writes and does not push out of the
// cache the chunks that are read again and again.
type chunkCache struct {
	dir      string
	limit    int64
	memLimit int64

	mu       sync.Mutex
	size     int64      // bytes of the chunks in files
	lru      *list.List // of *cacheEntry with a file, most recent at the front
	entries  map[string]*cacheEntry
	inflight map[string]*fetch
	memSize  int64
	memQ     []*cacheEntry // entries holding data, oldest put first
	// seen holds the keys fetched once and not written to a file, oldest
	// first in seenQ, at most seenMax of them.
	seen  map[string]bool
	seenQ []string
}

type cacheEntry struct {
	key  string
	size int64
	data []byte        // the chunk while it is in memory; nil once dropped
	el   *list.Element // its place in lru while it has a file; nil otherwise
}

type fetch struct {
	done chan struct{}
	data []byte
	err  error
}

const (
	// memChunksMax bounds the bytes of chunks a cache keeps in memory (a
	// quarter of the cache when that is less).
	memChunksMax = 64 << 20
	// seenMax bounds the keys remembered as fetched once.
	seenMax = 1 << 16
)

func newChunkCache(dir string, limit int64) (*chunkCache, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("tier cache %s: %w", dir, err)
	}
	if err := removeAllIn(dir); err != nil { // chunks of a previous run are not tracked
		return nil, fmt.Errorf("tier cache %s: empty it: %w", dir, err)
	}
	return &chunkCache{dir: dir, limit: limit, memLimit: min(memChunksMax, limit/4), lru: list.New(),
		entries: map[string]*cacheEntry{}, inflight: map[string]*fetch{}, seen: map[string]bool{}}, nil
}

func (c *chunkCache) path(key string) string {
	h := sha256.Sum256([]byte(key))
	return filepath.Join(c.dir, hex.EncodeToString(h[:16]))
}

// get returns the chunk named key, from the cache (hit true) or from load,
// whose result it caches. The returned bytes must not be modified.
func (c *chunkCache) get(key string, load func() ([]byte, error)) (data []byte, hit bool, err error) {
	c.mu.Lock()
	if e, ok := c.entries[key]; ok {
		if e.el != nil {
			c.lru.MoveToFront(e.el)
		}
		if d := e.data; d != nil {
			c.mu.Unlock()
			return d, true, nil
		}
		c.mu.Unlock()
		b, err := os.ReadFile(c.path(key))
		if err == nil {
			return b, true, nil
		}
		c.mu.Lock()
		if cur, ok := c.entries[key]; ok && cur == e {
			c.removeLocked(e) // gone from the disk: fetch again
		}
	}
	if f, ok := c.inflight[key]; ok {
		c.mu.Unlock()
		<-f.done
		return f.data, false, f.err
	}
	f := &fetch{done: make(chan struct{})}
	c.inflight[key] = f
	c.mu.Unlock()

	f.data, f.err = load()
	if f.err == nil {
		c.put(key, f.data)
	}
	c.mu.Lock()
	delete(c.inflight, key)
	c.mu.Unlock()
	close(f.done)
	return f.data, false, f.err
}

// has reports whether key is cached or being fetched.
func (c *chunkCache) has(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.entries[key]
	_, busy := c.inflight[key]
	return ok || busy
}

// put caches a chunk just fetched: in memory, and in a file if it was
// fetched before.
func (c *chunkCache) put(key string, data []byte) {
	size := int64(len(data))
	c.mu.Lock()
	toFile := c.seen[key] && size <= c.limit
	if !toFile && size <= c.limit {
		c.rememberLocked(key)
	}
	c.mu.Unlock()
	if toFile {
		p := c.path(key)
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, data, 0o644); err != nil {
			toFile = false // a cache that cannot write serves from memory and the store
		} else if err := os.Rename(tmp, p); err != nil {
			os.Remove(tmp)
			toFile = false
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.entries[key]; ok { // fetched twice: replace the entry
		c.forgetLocked(old, !toFile)
	}
	if toFile {
		delete(c.seen, key) // its place in seenQ is skipped when reached
	}
	e := &cacheEntry{key: key, size: size}
	if toFile {
		e.el = c.lru.PushFront(e)
		c.size += size
	}
	if size <= c.memLimit {
		e.data = data
		c.memSize += size
		c.memQ = append(c.memQ, e)
	}
	if e.el == nil && e.data == nil {
		return // neither in a file nor in memory
	}
	c.entries[key] = e
	for c.memSize > c.memLimit {
		old := c.memQ[0]
		c.memQ[0] = nil
		c.memQ = c.memQ[1:]
		c.dropDataLocked(old)
	}
	if len(c.memQ) > 64 && len(c.memQ) > 2*len(c.entries) {
		// Entries removed from the cache leave their places: drop them.
		c.memQ = slices.DeleteFunc(c.memQ, func(e *cacheEntry) bool { return e.data == nil })
	}
	for c.size > c.limit {
		c.removeLocked(c.lru.Back().Value.(*cacheEntry))
	}
}

// rememberLocked notes key as fetched once (mu held).
func (c *chunkCache) rememberLocked(key string) {
	if c.seen[key] {
		return
	}
	c.seen[key] = true
	c.seenQ = append(c.seenQ, key)
	for len(c.seen) > seenMax && len(c.seenQ) > 0 {
		delete(c.seen, c.seenQ[0])
		c.seenQ = c.seenQ[1:]
	}
	if len(c.seenQ) > 2*seenMax {
		// Keys written to files since leave their places: compact.
		c.seenQ = slices.DeleteFunc(c.seenQ, func(k string) bool { return !c.seen[k] })
	}
}

// dropDataLocked forgets the in-memory copy of an entry (mu held); an entry
// without a file then leaves the cache.
func (c *chunkCache) dropDataLocked(e *cacheEntry) {
	if e.data == nil {
		return
	}
	c.memSize -= e.size
	e.data = nil
	if e.el == nil && c.entries[e.key] == e {
		delete(c.entries, e.key)
	}
}

// forgetLocked takes an entry out of the bookkeeping (mu held), and its
// file off the disk when removeFile.
func (c *chunkCache) forgetLocked(e *cacheEntry, removeFile bool) {
	if c.entries[e.key] == e {
		delete(c.entries, e.key)
	}
	if e.el != nil {
		c.lru.Remove(e.el)
		e.el = nil
		c.size -= e.size
		if removeFile {
			os.Remove(c.path(e.key))
		}
	}
	if e.data != nil {
		c.memSize -= e.size
		e.data = nil
	}
}

// removeLocked drops an entry, its memory and its file (mu held).
func (c *chunkCache) removeLocked(e *cacheEntry) { c.forgetLocked(e, true) }

// bytes is the size of the chunks in files (bounded by limit).
func (c *chunkCache) bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}

// memBytes is the size of the chunks held in memory.
func (c *chunkCache) memBytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.memSize
}
