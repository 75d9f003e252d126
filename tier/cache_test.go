package tier

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"
)

// fill returns a load that writes a pattern of key into its buffer,
// counting the loads.
func fill(key string, loads *int) func([]byte) error {
	return func(b []byte) error {
		*loads++
		copy(b, pattern(key, len(b)))
		return nil
	}
}

func pattern(key string, n int) []byte {
	return bytes.Repeat([]byte(key), n/len(key)+1)[:n]
}

func newTestCache(t *testing.T, limit int64) *chunkCache {
	t.Helper()
	c, err := newChunkCache(t.TempDir(), limit)
	if err != nil {
		t.Fatal(err)
	}
	c.poison = true
	return c
}

// checkBuffersReturned fails the test if a chunk buffer of c is still out
// (not released by every holder).
func checkBuffersReturned(t *testing.T, c *chunkCache) {
	t.Helper()
	if n := c.live.Load(); n != 0 {
		t.Fatalf("%d chunk buffers not returned", n)
	}
}

// forget drops key from the memory tier: its next get reads its file, or
// fetches it.
func forget(c *chunkCache, key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.mem[key]; ok {
		c.forgetLocked(el)
	}
}

// fetchToFile gets chunk key of n bytes twice, dropping it from the memory
// tier after each, so that the second fetch writes it to its file
// (admission on the second fetch).
func fetchToFile(t *testing.T, c *chunkCache, key string, n int, loads *int) {
	t.Helper()
	for i := 0; i < 2; i++ {
		b, _, err := c.get(key, n, crc(pattern(key, n)), fill(key, loads))
		if err != nil {
			t.Fatal(err)
		}
		b.release()
		forget(c, key)
	}
	c.mu.Lock()
	_, ok := c.entries[key]
	c.mu.Unlock()
	if !ok {
		t.Fatalf("chunk %s fetched twice is not in a file", key)
	}
}

func TestCacheBound(t *testing.T) {
	c := newTestCache(t, 10_000)
	loads := 0
	for i := 0; i < 10; i++ {
		k := string(rune('a' + i))
		fetchToFile(t, c, k, 3000, &loads)
		if c.bytes() > 10_000 {
			t.Fatalf("cache holds %d bytes, bound 10000", c.bytes())
		}
		if c.memSize > c.memLimit {
			t.Fatalf("memory tier holds %d bytes, bound %d", c.memSize, c.memLimit)
		}
	}
	// The most recent three are cached, the oldest evicted (LRU).
	b, hit, _ := c.get("j", 3000, crc(pattern("j", 3000)), fill("j", &loads))
	if !hit || !bytes.Equal(b.b, pattern("j", 3000)) {
		t.Fatal("most recent chunk not cached, or not its bytes")
	}
	b.release()
	b, hit, _ = c.get("a", 3000, crc(pattern("a", 3000)), fill("a", &loads))
	if hit {
		t.Fatal("oldest chunk still cached past the bound")
	}
	b.release()
	c.forgetAll()
	checkBuffersReturned(t, c)
}

// TestHeldChunkNotReused: a chunk that a reader holds keeps its bytes
// while the memory tier evicts it and its freed buffers are refilled with
// other chunks (released buffers are poisoned, so a buffer reused or freed
// under the reader shows); from the files, an evicted chunk reads back
// intact.
func TestHeldChunkNotReused(t *testing.T) {
	c := newTestCache(t, 1<<20)
	c.memLimit = 2 * 4096
	loads := 0
	fetchToFile(t, c, "held", 4096, &loads)
	held, _, err := c.get("held", 4096, crc(pattern("held", 4096)), fill("held", &loads))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		k := fmt.Sprintf("other-%d", i)
		b, _, err := c.get(k, 4096, crc(pattern(k, 4096)), fill(k, &loads))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b.b, pattern(k, 4096)) {
			t.Fatalf("chunk %s has another chunk's bytes", k)
		}
		b.release()
		if !bytes.Equal(held.b, pattern("held", 4096)) {
			t.Fatalf("a held chunk changed after %d other reads", i+1)
		}
	}
	if _, ok := c.mem["held"]; ok {
		t.Fatal("the held chunk was not evicted from memory: the test tests nothing")
	}
	held.release()
	// Read back from its file, into a reused buffer.
	again, hit, err := c.get("held", 4096, crc(pattern("held", 4096)), fill("held", &loads))
	if err != nil || !hit || !bytes.Equal(again.b, pattern("held", 4096)) {
		t.Fatalf("read back from the cache file: hit %v, err %v, bytes right %v", hit, err, err == nil && bytes.Equal(again.b, pattern("held", 4096)))
	}
	again.release()
	c.forgetAll()
	checkBuffersReturned(t, c)
}

// TestConcurrentMissesShareOneFetch: readers that miss on a chunk being
// fetched wait for that fetch and each get the chunk with a reference of
// its own.
func TestConcurrentMissesShareOneFetch(t *testing.T) {
	c := newTestCache(t, 1<<20)
	const readers = 8
	release := make(chan struct{})
	loads := 0
	load := func(b []byte) error {
		<-release
		loads++
		copy(b, pattern("k", len(b)))
		return nil
	}
	var wg sync.WaitGroup
	got := make([]*chunkBuf, readers)
	for i := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, _, err := c.get("k", 4096, crc(pattern("k", 4096)), load)
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = b
		}()
	}
	// Wait until one reader fetches and the others wait for it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		f := c.inflight["k"]
		waiting := f != nil && f.waiters == readers-1
		c.mu.Unlock()
		if waiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("readers did not gather on one fetch")
		}
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	if loads != 1 {
		t.Fatalf("%d fetches for one chunk", loads)
	}
	c.forgetAll() // the memory tier's reference goes: the readers' remain
	for i, b := range got {
		if b == nil {
			t.Fatalf("reader %d got nothing", i)
		}
		if !bytes.Equal(b.b, pattern("k", 4096)) {
			t.Fatalf("reader %d: wrong bytes", i)
		}
		b.release()
	}
	checkBuffersReturned(t, c)
}

// TestCacheFileReusedAndChecked: an evicted chunk's file is reused for the
// next chunk (a shorter one here: the file must be cut to it), and a chunk
// file whose bytes do not match the chunk's CRC (damaged, or reused under a
// reader) is not served: the chunk is fetched again.
func TestCacheFileReusedAndChecked(t *testing.T) {
	c := newTestCache(t, 2*4096)
	loads := 0
	for _, k := range []string{"a", "b"} {
		fetchToFile(t, c, k, 4096, &loads)
	}
	fetchToFile(t, c, "c", 1000, &loads) // evicts a
	c.forgetAll()                        // read from the files from now on
	b, hit, err := c.get("c", 1000, crc(pattern("c", 1000)), fill("c", &loads))
	if err != nil || !hit || !bytes.Equal(b.b, pattern("c", 1000)) {
		t.Fatalf("chunk c from its (reused) file: hit %v, err %v", hit, err)
	}
	b.release()
	c.forgetAll()
	// Damage b's file.
	if err := os.WriteFile(c.path("b"), pattern("x", 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	before := loads
	b, hit, err = c.get("b", 4096, crc(pattern("b", 4096)), fill("b", &loads))
	if err != nil || hit || loads != before+1 || !bytes.Equal(b.b, pattern("b", 4096)) {
		t.Fatalf("damaged chunk file: hit %v, err %v, fetched %d times", hit, err, loads-before)
	}
	b.release()
	c.forgetAll()
	// Fetched again, it was written to its file again (it had been admitted).
	b, hit, err = c.get("b", 4096, crc(pattern("b", 4096)), fill("b", &loads))
	if err != nil || !hit || loads != before+1 || !bytes.Equal(b.b, pattern("b", 4096)) {
		t.Fatalf("chunk b after its damaged file: hit %v, err %v, fetched %d times", hit, err, loads-before)
	}
	b.release()
	c.forgetAll()
	checkBuffersReturned(t, c)
}

// TestChunkFileOnSecondFetch: a chunk fetched once is served from memory
// but not written to a file; fetched a second time while its first fetch
// is remembered, it is; a first fetch is remembered for the cache's bound
// of chunks fetched after it, no longer.
func TestChunkFileOnSecondFetch(t *testing.T) {
	c := newTestCache(t, 4*4096)
	loads := 0
	get := func(k string) (hit bool) {
		t.Helper()
		b, hit, err := c.get(k, 4096, crc(pattern(k, 4096)), fill(k, &loads))
		if err != nil || !bytes.Equal(b.b, pattern(k, 4096)) {
			t.Fatalf("chunk %s: err %v or wrong bytes", k, err)
		}
		b.release()
		return hit
	}
	get("a")
	if !get("a") || loads != 1 {
		t.Fatalf("chunk a not served from memory after its fetch (%d fetches)", loads)
	}
	if n := c.bytes(); n != 0 {
		t.Fatalf("a chunk fetched once is in the files (%d bytes)", n)
	}
	forget(c, "a")
	if get("a") || loads != 2 {
		t.Fatalf("chunk a hit without a file or memory (%d fetches)", loads)
	}
	if n := c.bytes(); n != 4096 {
		t.Fatalf("a chunk fetched twice: files hold %d bytes, want 4096", n)
	}
	forget(c, "a")
	if !get("a") || loads != 2 {
		t.Fatalf("chunk a not read from its file (%d fetches)", loads)
	}
	// b fetched once, then the cache's bound (4 chunks) of others: b's
	// first fetch is forgotten, its second is a first again.
	get("b")
	for i := range 4 {
		get(fmt.Sprintf("other-%d", i))
	}
	c.forgetAll()
	get("b")
	c.mu.Lock()
	_, inFile := c.entries["b"]
	c.mu.Unlock()
	if inFile {
		t.Fatal("chunk b written to a file on a fetch whose first was past the bound")
	}
	c.forgetAll()
	checkBuffersReturned(t, c)
}
