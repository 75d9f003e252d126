package tier

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
)

// The chunk cache, and why its buffers are reference-counted.
//
// Chunks of remote segments are kept in files of a directory, up to a byte
// bound (the cache proper, least recently used evicted), and the most
// recently used of them also in memory, up to memBytes: a chunk that the
// read-ahead fetched is handed to the read that wants it without a round
// trip through its file, and two reads that share a chunk (a read ends in
// it, the next starts there) read the file once.
//
// A chunk in memory is a chunkBuf: a buffer that the cache takes from its
// free list (or allocates) and fills, by a ranged GET or from its file,
// without zeroing it first. Buffers are reused, so a chunkBuf is reference
// counted: get returns it with one reference that the caller releases; the
// memory tier holds one while the chunk is in it; a fetch in flight holds
// one for each reader waiting for it. Only when the last reference goes
// does the buffer return to the free list, to be filled with another chunk.
// A reader therefore never sees its chunk change under it, even when the
// memory tier evicts the chunk while it reads. Nothing outside the tier
// holds a chunk: Read copies the batches it returns out of the chunks.
//
// Admission to the files: a chunk fetched from the store goes to its file
// only when it is fetched a second time while the cache still remembers
// the first fetch (the keys of the last limit bytes of chunks fetched once,
// without their data). A sequential read of old data, the common remote
// read (a consumer catching up, a reprocessing job), reads each chunk once:
// writing each to a file cost more server CPU than its ranged GET (up to
// half of a cold read's CPU on a busy disk, 2026-12-07) and would only
// evict chunks that are read again. Chunks that are read again, by a
// second consumer or after a restart of the read, are fetched once more
// and then kept in their files. The memory tier keeps every chunk fetched,
// so a read-ahead chunk and a chunk two reads share never need a file.
//
// Tests set poison: a released buffer is then overwritten before reuse, so
// that a read of a chunk after its release shows as corrupt data.

// chunkBuf is a chunk of a remote segment in memory. b is valid from get
// until release.
type chunkBuf struct {
	b    []byte
	refs atomic.Int32
	c    *chunkCache
}

// retain adds a reference; the caller must already hold one (or the
// cache's mutex while the chunk is in the memory tier).
func (b *chunkBuf) retain() {
	if b.refs.Add(1) <= 1 {
		panic("tier: retain of a released chunk buffer")
	}
}

// release drops a reference; the last one returns the buffer for reuse.
func (b *chunkBuf) release() {
	switch n := b.refs.Add(-1); {
	case n == 0:
		b.c.free(b)
	case n < 0:
		panic("tier: chunk buffer released twice")
	}
}

// maxFreeBufs bounds the free list: buffers beyond it go to the garbage
// collector.
const maxFreeBufs = 8

// defaultMemBytes bounds the chunks kept in memory (at most CacheBytes):
// a read's range and the read-ahead after it, for a few readers.
const defaultMemBytes = 32 << 20

// chunkCache keeps chunks of remote segments in files of a directory, up to
// a byte bound, evicting the least recently used, and the most recently
// used of them in memory too. Concurrent misses of one chunk share one
// fetch.
type chunkCache struct {
	dir      string
	limit    int64
	memLimit int64
	poison   bool // tests: overwrite released buffers

	mu       sync.Mutex
	size     int64
	lru      *list.List // of *cacheEntry, most recent at the front
	entries  map[string]*list.Element
	inflight map[string]*fetch
	memSize  int64
	memLRU   *list.List // of *memEntry, most recent at the front
	mem      map[string]*list.Element
	seenSize int64
	seenLRU  *list.List // of *cacheEntry: chunks fetched once, not in files
	seen     map[string]*list.Element

	freeMu   sync.Mutex
	freeList []*chunkBuf
	live     atomic.Int64 // buffers handed out and not yet back (tests)
}

type cacheEntry struct {
	key  string
	size int64
}

type memEntry struct {
	key string
	buf *chunkBuf
}

type fetch struct {
	done    chan struct{}
	waiters int32 // readers waiting (mu held to change it)
	buf     *chunkBuf
	err     error
}

func newChunkCache(dir string, limit int64) (*chunkCache, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("tier cache %s: %w", dir, err)
	}
	if err := removeChunkFiles(dir); err != nil { // chunks of a previous run are not tracked
		return nil, fmt.Errorf("tier cache %s: empty it: %w", dir, err)
	}
	return &chunkCache{dir: dir, limit: limit, memLimit: min(limit, defaultMemBytes),
		lru: list.New(), entries: map[string]*list.Element{}, inflight: map[string]*fetch{},
		memLRU: list.New(), mem: map[string]*list.Element{},
		seenLRU: list.New(), seen: map[string]*list.Element{}}, nil
}

func (c *chunkCache) path(key string) string {
	h := sha256.Sum256([]byte(key))
	return filepath.Join(c.dir, hex.EncodeToString(h[:16]))
}

// removeChunkFiles removes from dir the files a chunk cache writes (path's
// names, and their .tmp while written) and nothing else, in case the
// directory is shared with other data by mistake.
func removeChunkFiles(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || !isChunkFileName(strings.TrimSuffix(e.Name(), ".tmp")) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// isChunkFileName reports whether name is one path gives: 32 lower-case
// hex digits.
func isChunkFileName(name string) bool {
	if len(name) != 32 {
		return false
	}
	for _, c := range name {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// alloc returns a buffer of n bytes with one reference, reused when one is
// free. Its contents are whatever it held before.
func (c *chunkCache) alloc(n int) *chunkBuf {
	c.live.Add(1)
	c.freeMu.Lock()
	for len(c.freeList) > 0 {
		b := c.freeList[len(c.freeList)-1]
		c.freeList = c.freeList[:len(c.freeList)-1]
		if cap(b.b) >= n {
			c.freeMu.Unlock()
			b.b = b.b[:n]
			b.refs.Store(1)
			return b
		}
	}
	c.freeMu.Unlock()
	b := &chunkBuf{b: make([]byte, n), c: c}
	b.refs.Store(1)
	return b
}

func (c *chunkCache) free(b *chunkBuf) {
	c.live.Add(-1)
	if c.poison {
		b.b = b.b[:cap(b.b)]
		for i := range b.b {
			b.b[i] = 0xdb
		}
	}
	c.freeMu.Lock()
	if len(c.freeList) < maxFreeBufs {
		c.freeList = append(c.freeList, b)
	}
	c.freeMu.Unlock()
}

// get returns the chunk named key, of size bytes and CRC-32C want, with a
// reference the caller releases: from the cache (hit true) or filled by
// load, whose result it caches. load checks what it fetched; a chunk read
// back from its file is checked against want here.
func (c *chunkCache) get(key string, size int, want uint32, load func(b []byte) error) (buf *chunkBuf, hit bool, err error) {
	c.mu.Lock()
	if el, ok := c.mem[key]; ok {
		c.memLRU.MoveToFront(el)
		buf := el.Value.(*memEntry).buf
		buf.retain()
		if del, ok := c.entries[key]; ok {
			c.lru.MoveToFront(del)
		}
		c.mu.Unlock()
		return buf, true, nil
	}
	if el, ok := c.entries[key]; ok {
		c.lru.MoveToFront(el)
		c.mu.Unlock()
		buf := c.alloc(size)
		err := c.readFile(key, buf.b)
		if err == nil && crc(buf.b) != want {
			// Damaged on the disk, or the file was evicted and reused
			// for another chunk while we read it.
			err = fmt.Errorf("tier cache: %s: CRC-32C mismatch", c.path(key))
		}
		if err == nil {
			c.remember(key, buf)
			return buf, true, nil
		}
		buf.release()
		c.mu.Lock()
		if cur, ok := c.entries[key]; ok && cur == el {
			c.removeLocked(el, "") // gone from the disk, or damaged: fetch again
		}
		c.noteFetchLocked(key, int64(size)) // it was admitted: admit it again
	}
	if f, ok := c.inflight[key]; ok {
		f.waiters++
		c.mu.Unlock()
		<-f.done
		return f.buf, false, f.err // the loader took a reference for us
	}
	f := &fetch{done: make(chan struct{})}
	c.inflight[key] = f
	c.mu.Unlock()

	buf = c.alloc(size)
	if err = load(buf.b); err != nil {
		buf.release()
		buf = nil
	} else {
		c.remember(key, buf)
	}
	c.mu.Lock()
	delete(c.inflight, key)
	admit := false
	if buf != nil {
		buf.refs.Add(f.waiters) // one for each waiter, which it releases
		admit = c.noteFetchLocked(key, int64(size))
	}
	f.buf, f.err = buf, err
	c.mu.Unlock()
	close(f.done)
	// The readers waiting have the chunk; now its file, if it is fetched
	// for the second time. (A read of the chunk meanwhile finds it in
	// memory, or, evicted from there already, fetches it again.)
	if admit {
		c.put(key, buf.b)
	}
	return buf, false, err
}

// noteFetchLocked records a fetch of key (size bytes) from the store (mu
// held) and reports whether the chunk is to be written to its file: when
// its previous fetch is still remembered. The keys of the last limit bytes
// of chunks fetched once are remembered.
func (c *chunkCache) noteFetchLocked(key string, size int64) bool {
	if el, ok := c.seen[key]; ok {
		c.seenLRU.Remove(el)
		delete(c.seen, key)
		c.seenSize -= el.Value.(*cacheEntry).size
		return true
	}
	c.seen[key] = c.seenLRU.PushFront(&cacheEntry{key: key, size: size})
	c.seenSize += size
	for c.seenSize > c.limit {
		el := c.seenLRU.Back()
		c.seenLRU.Remove(el)
		e := el.Value.(*cacheEntry)
		delete(c.seen, e.key)
		c.seenSize -= e.size
	}
	return false
}

// readFile fills b from the file of key, which must hold exactly len(b)
// bytes.
func (c *chunkCache) readFile(key string, b []byte) error {
	f, err := os.Open(c.path(key))
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.ReadFull(f, b); err != nil {
		return err
	}
	var one [1]byte
	if n, _ := f.Read(one[:]); n != 0 {
		return fmt.Errorf("tier cache: %s longer than its chunk", c.path(key))
	}
	return nil
}

// remember keeps buf in the memory tier (with a reference of its own),
// evicting the least recently used chunks past memLimit.
func (c *chunkCache) remember(key string, buf *chunkBuf) {
	n := int64(len(buf.b))
	if n > c.memLimit {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.mem[key]; ok {
		return // read from the file by two readers at once: keep the first
	}
	buf.retain()
	c.mem[key] = c.memLRU.PushFront(&memEntry{key: key, buf: buf})
	c.memSize += n
	for c.memSize > c.memLimit {
		c.forgetLocked(c.memLRU.Back())
	}
}

// forgetLocked drops a chunk from the memory tier (mu held); readers that
// hold it keep it until they release it.
func (c *chunkCache) forgetLocked(el *list.Element) {
	e := el.Value.(*memEntry)
	c.memLRU.Remove(el)
	delete(c.mem, e.key)
	c.memSize -= int64(len(e.buf.b))
	e.buf.release()
}

// has reports whether key is cached or being fetched.
func (c *chunkCache) has(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.entries[key]
	_, inMem := c.mem[key]
	_, busy := c.inflight[key]
	return ok || inMem || busy
}

func (c *chunkCache) put(key string, data []byte) {
	n := int64(len(data))
	if n > c.limit {
		return
	}
	p := c.path(key)
	tmp := p + ".tmp"
	// Make room first. The file of the first chunk evicted becomes this
	// chunk's, overwritten in place: writing over a file's pages costs
	// less than a new file's, and the unlink of the old one is saved. A
	// reader still reading the evicted chunk from that file sees its CRC
	// fail and fetches it again.
	c.mu.Lock()
	if el, ok := c.entries[key]; ok { // fetched twice: replace the file
		c.removeLocked(el, "")
	}
	reused := false
	for c.size+n > c.limit && c.lru.Len() > 0 {
		if !reused {
			reused = c.removeLocked(c.lru.Back(), tmp)
		} else {
			c.removeLocked(c.lru.Back(), "")
		}
	}
	c.mu.Unlock()
	if err := writeChunkFile(tmp, data, reused); err != nil {
		os.Remove(tmp)
		return // a cache that cannot write serves from the store
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok { // fetched twice at once: the file was just replaced
		e := el.Value.(*cacheEntry)
		c.lru.Remove(el)
		c.size -= e.size
	}
	c.entries[key] = c.lru.PushFront(&cacheEntry{key: key, size: n})
	c.size += n
	for c.size > c.limit {
		c.removeLocked(c.lru.Back(), "")
	}
}

// writeChunkFile writes data to the file at path, over what it holds when
// reused.
func writeChunkFile(path string, data []byte, reused bool) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(data, 0)
	if err == nil && reused {
		err = f.Truncate(int64(len(data)))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// removeLocked drops an entry (mu held), and the chunk from the memory
// tier. Its file is removed, or renamed to reuseAs when that is not "";
// it reports whether the rename was done.
func (c *chunkCache) removeLocked(el *list.Element, reuseAs string) bool {
	e := el.Value.(*cacheEntry)
	c.lru.Remove(el)
	delete(c.entries, e.key)
	c.size -= e.size
	if m, ok := c.mem[e.key]; ok {
		c.forgetLocked(m)
	}
	if reuseAs != "" && os.Rename(c.path(e.key), reuseAs) == nil {
		return true
	}
	os.Remove(c.path(e.key))
	return false
}

// bytes is the cache's current size (of its files).
func (c *chunkCache) bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}

// forgetAll empties the memory tier (tests: every buffer is then back once
// its readers release it).
func (c *chunkCache) forgetAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.memLRU.Len() > 0 {
		c.forgetLocked(c.memLRU.Back())
	}
}
