package tier

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// chunkCache keeps chunks of remote segments in files of a directory, up to
// a byte bound, evicting the least recently used. Concurrent misses of one
// chunk share one fetch.
type chunkCache struct {
	dir   string
	limit int64

	mu       sync.Mutex
	size     int64
	lru      *list.List // of *cacheEntry, most recent at the front
	entries  map[string]*list.Element
	inflight map[string]*fetch
}

type cacheEntry struct {
	key  string
	size int64
}

type fetch struct {
	done chan struct{}
	data []byte
	err  error
}

func newChunkCache(dir string, limit int64) (*chunkCache, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("tier cache %s: %w", dir, err)
	}
	if err := removeAllIn(dir); err != nil { // chunks of a previous run are not tracked
		return nil, fmt.Errorf("tier cache %s: empty it: %w", dir, err)
	}
	return &chunkCache{dir: dir, limit: limit, lru: list.New(), entries: map[string]*list.Element{}, inflight: map[string]*fetch{}}, nil
}

func (c *chunkCache) path(key string) string {
	h := sha256.Sum256([]byte(key))
	return filepath.Join(c.dir, hex.EncodeToString(h[:16]))
}

// get returns the chunk named key, from the cache (hit true) or from load,
// whose result it caches.
func (c *chunkCache) get(key string, load func() ([]byte, error)) (data []byte, hit bool, err error) {
	c.mu.Lock()
	if el, ok := c.entries[key]; ok {
		c.lru.MoveToFront(el)
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
	}
	c.entries[key] = c.lru.PushFront(&cacheEntry{key: key, size: int64(len(data))})
	c.size += int64(len(data))
	for c.size > c.limit {
		c.removeLocked(c.lru.Back())
	}
}

// removeLocked drops an entry and its file (mu held).
func (c *chunkCache) removeLocked(el *list.Element) {
	e := el.Value.(*cacheEntry)
	c.lru.Remove(el)
	delete(c.entries, e.key)
	c.size -= e.size
	os.Remove(c.path(e.key))
}

// bytes is the cache's current size.
func (c *chunkCache) bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}
