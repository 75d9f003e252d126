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

// chunkCache keeps chunks of remote segments in files of a directory, up to
// a byte bound, evicting the least recently used. Concurrent misses of one
// chunk share one fetch.
//
// The chunks put most recently are also kept in memory, up to memLimit
// bytes: a sequential reader's read-ahead puts chunks that the reader asks
// for moments later, and a read walks each chunk more than once (batch
// headers, then the data), so these are served without reading their file
// back.
type chunkCache struct {
	dir      string
	limit    int64
	memLimit int64

	mu       sync.Mutex
	size     int64
	lru      *list.List // of *cacheEntry, most recent at the front
	entries  map[string]*list.Element
	inflight map[string]*fetch
	memSize  int64
	memQ     []*cacheEntry // entries holding data, oldest put first
}

type cacheEntry struct {
	key  string
	size int64
	data []byte // the chunk while it is in memory too; nil once dropped
}

type fetch struct {
	done chan struct{}
	data []byte
	err  error
}

// memChunksMax bounds the bytes of chunks a cache keeps in memory besides
// their files (a quarter of the cache when that is less).
const memChunksMax = 64 << 20

func newChunkCache(dir string, limit int64) (*chunkCache, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("tier cache %s: %w", dir, err)
	}
	if err := removeAllIn(dir); err != nil { // chunks of a previous run are not tracked
		return nil, fmt.Errorf("tier cache %s: empty it: %w", dir, err)
	}
	return &chunkCache{dir: dir, limit: limit, memLimit: min(memChunksMax, limit/4), lru: list.New(), entries: map[string]*list.Element{}, inflight: map[string]*fetch{}}, nil
}

func (c *chunkCache) path(key string) string {
	h := sha256.Sum256([]byte(key))
	return filepath.Join(c.dir, hex.EncodeToString(h[:16]))
}

// get returns the chunk named key, from the cache (hit true) or from load,
// whose result it caches. The returned bytes must not be modified.
func (c *chunkCache) get(key string, load func() ([]byte, error)) (data []byte, hit bool, err error) {
	c.mu.Lock()
	if el, ok := c.entries[key]; ok {
		c.lru.MoveToFront(el)
		if d := el.Value.(*cacheEntry).data; d != nil {
			c.mu.Unlock()
			return d, true, nil
		}
		c.mu.Unlock()
		b, err := os.ReadFile(c.path(key))
		if err == nil {
			return b, true, nil
		}
		c.mu.Lock()
		if cur, ok := c.entries[key]; ok && cur == el {
			c.removeLocked(el) // gone from the disk: fetch again
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

func (c *chunkCache) put(key string, data []byte) {
	if int64(len(data)) > c.limit {
		return
	}
	p := c.path(key)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return // a cache that cannot write serves from the store
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok { // fetched twice: the file was just replaced
		e := el.Value.(*cacheEntry)
		c.lru.Remove(el)
		c.size -= e.size
		c.dropDataLocked(e)
	}
	e := &cacheEntry{key: key, size: int64(len(data))}
	c.entries[key] = c.lru.PushFront(e)
	c.size += e.size
	if e.size <= c.memLimit {
		e.data = data
		c.memSize += e.size
		c.memQ = append(c.memQ, e)
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
	}
	for c.size > c.limit {
		c.removeLocked(c.lru.Back())
	}
}

// dropDataLocked forgets the in-memory copy of an entry (mu held); its file
// stays.
func (c *chunkCache) dropDataLocked(e *cacheEntry) {
	if e.data != nil {
		c.memSize -= e.size
		e.data = nil
	}
}

// removeLocked drops an entry and its file (mu held).
func (c *chunkCache) removeLocked(el *list.Element) {
	e := el.Value.(*cacheEntry)
	c.lru.Remove(el)
	delete(c.entries, e.key)
	c.size -= e.size
	c.dropDataLocked(e)
	os.Remove(c.path(e.key))
}

// memBytes is the size of the chunks held in memory.
func (c *chunkCache) memBytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.memSize
}

// bytes is the cache's current size.
func (c *chunkCache) bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}
