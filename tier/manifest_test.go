package tier

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"testing"

	"github.com/sluicehq/sluice/objstore"
)

func sampleManifest() *manifest {
	return &manifest{Version: 7, Topic: "t", Partition: 2, RemoteEnd: 300, Segments: []remoteSegment{
		{Base: 0, End: 100, Size: 5000, ChunkBytes: 4096, ChunkCRCs: []uint32{1, 2}, UploadID: "a"},
		{Base: 100, End: 300, Size: 4096, ChunkBytes: 4096, ChunkCRCs: []uint32{3}, UploadID: "b"},
	}}
}

func TestManifestRoundTripAndDamage(t *testing.T) {
	b, err := encodeManifest(sampleManifest())
	if err != nil {
		t.Fatal(err)
	}
	m, err := decodeManifest(b)
	if err != nil || m.Version != 7 || len(m.Segments) != 2 || m.Segments[1].UploadID != "b" {
		t.Fatalf("round trip: %+v %v", m, err)
	}
	// Every truncation and every flipped byte is detected.
	for i := 0; i < len(b); i++ {
		if _, err := decodeManifest(b[:i]); err == nil {
			t.Fatalf("truncated at %d: accepted", i)
		}
		c := bytes.Clone(b)
		c[i] ^= 0x5a
		if m2, err := decodeManifest(c); err == nil && m2.Version == 7 && m2.RemoteEnd == 300 && len(m2.Segments) == 2 && m2.Segments[0].Size == 5000 {
			// A flip in the header's hex digits' case could still parse;
			// anything that decodes must not be a silently altered body.
			if !bytes.Equal(c[bytes.IndexByte(c, '\n'):], b[bytes.IndexByte(b, '\n'):]) {
				t.Fatalf("byte %d flipped: accepted an altered body", i)
			}
		}
	}
}

// TestNewestGoodManifestWins: a torn newest version is skipped for the
// previous one.
func TestNewestGoodManifestWins(t *testing.T) {
	mem := objstore.NewMem()
	ctx := context.Background()
	good := sampleManifest()
	b, _ := encodeManifest(good)
	mem.Put(ctx, manifestKey("d", 7), bytes.NewReader(b), int64(len(b)))
	torn := b[:len(b)/2]
	mem.Put(ctx, manifestKey("d", 8), bytes.NewReader(torn), int64(len(torn)))
	tr := &Tier{store: mem, logger: quietLogger(), m: newMetrics(nil), stop: make(chan struct{}), base: context.Background()}
	tr.opts.OpTimeout = 1 << 40
	tr.storeUp.Store(true)
	ps := &partState{dir: "d"}
	m, err := tr.load(ps)
	if err != nil || m.Version != 7 {
		t.Fatalf("loaded %+v, %v; want version 7", m, err)
	}
	// The next version replaces the torn object.
	next := &manifest{Version: m.Version + 1, Topic: "t", Partition: 2, RemoteEnd: 300, Segments: good.Segments}
	if err := tr.publish(ctx, ps, next); err != nil {
		t.Fatal(err)
	}
	ps2 := &partState{dir: "d"}
	if m, err := tr.load(ps2); err != nil || m.Version != 8 {
		t.Fatalf("after publishing over the torn version: %+v %v", m, err)
	}
}

func FuzzDecodeManifest(f *testing.F) {
	b, _ := encodeManifest(sampleManifest())
	f.Add(b)
	f.Add([]byte("sluice-tier-manifest 1 00000000\n{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodeManifest(data)
		if err != nil {
			return
		}
		// Whatever decodes is ordered, within remote_end, and consistent
		// with its chunk CRCs: the read path relies on it.
		for i, s := range m.Segments {
			if s.End <= s.Base || s.End > m.RemoteEnd || (i > 0 && s.Base < m.Segments[i-1].End) {
				t.Fatalf("accepted a malformed manifest: %+v", m)
			}
			if int64(len(s.ChunkCRCs)) != (s.Size+s.ChunkBytes-1)/s.ChunkBytes {
				t.Fatalf("accepted a segment with %d chunk CRCs for %d bytes", len(s.ChunkCRCs), s.Size)
			}
		}
	})
}

func TestCacheBound(t *testing.T) {
	c, err := newChunkCache(t.TempDir(), 10_000)
	if err != nil {
		t.Fatal(err)
	}
	loads := 0
	load := func(n int) func() ([]byte, error) {
		return func() ([]byte, error) { loads++; return make([]byte, n), nil }
	}
	// Chunks of 3000 bytes are too large for the memory part (2500): each
	// is fetched twice, and the second fetch puts it in a file.
	for i := 0; i < 10; i++ {
		for j := 0; j < 2; j++ {
			if _, hit, err := c.get(string(rune('a'+i)), load(3000)); err != nil || hit {
				t.Fatalf("fetch %d of %c: hit %v, %v", j+1, 'a'+i, hit, err)
			}
		}
		if c.bytes() > 10_000 {
			t.Fatalf("cache holds %d bytes, bound 10000", c.bytes())
		}
	}
	// The most recent three are cached, the oldest evicted (LRU).
	if _, hit, _ := c.get("j", load(3000)); !hit {
		t.Fatal("most recent chunk not cached")
	}
	if _, hit, _ := c.get("a", load(3000)); hit {
		t.Fatal("oldest chunk still cached past the bound")
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestCacheKeepsRecentChunksInMemory: the chunks fetched last are served
// from memory, within its bound; a chunk fetched once is not written to a
// file (a single sequential pass costs no disk writes), one fetched again
// is, and is then served from its file once out of memory.
func TestCacheKeepsRecentChunksInMemory(t *testing.T) {
	dir := t.TempDir()
	c, err := newChunkCache(dir, 40_000) // memory bound: a quarter, 10000
	if err != nil {
		t.Fatal(err)
	}
	load := func(b byte) func() ([]byte, error) {
		return func() ([]byte, error) { return bytes.Repeat([]byte{b}, 3000), nil }
	}
	get := func(k byte) bool {
		t.Helper()
		d, hit, err := c.get(string(rune(k)), load(k))
		if err != nil || len(d) != 3000 || d[0] != k {
			t.Fatalf("%c: %d bytes %v", k, len(d), err)
		}
		if m := c.memBytes(); m > 10_000 {
			t.Fatalf("%d bytes in memory, bound 10000", m)
		}
		return hit
	}
	for k := byte('a'); k <= 'f'; k++ {
		if get(k) {
			t.Fatalf("%c: hit on its first fetch", k)
		}
	}
	if files, _ := os.ReadDir(dir); len(files) != 0 || c.bytes() != 0 {
		t.Fatalf("%d files, %d bytes after fetching each chunk once: want none", len(files), c.bytes())
	}
	// The three put last are in memory; the older ones are gone.
	for _, k := range []byte("fed") {
		if !get(k) {
			t.Fatalf("%c: not served from memory", k)
		}
	}
	if get('a') { // fetched again: now in a file too
		t.Fatal("a: hit after leaving memory without a file")
	}
	if files, _ := os.ReadDir(dir); len(files) != 1 || c.bytes() != 3000 {
		t.Fatalf("%d files, %d bytes after fetching a twice: want its file", len(files), c.bytes())
	}
	for _, k := range []byte("ghi") { // push a out of memory
		get(k)
	}
	if !get('a') {
		t.Fatal("a: not served from its file")
	}
}
