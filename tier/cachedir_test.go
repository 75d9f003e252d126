package tier

import (
	"os"
	"path/filepath"
	"testing"
)

// TestCacheDirKeepsForeignFiles: opening the chunk cache empties its
// directory of the chunk files a previous run left (their names are the
// cache's: 32 hex digits, with .tmp while written), and of nothing else:
// --remote-cache-dir pointed by mistake at a directory that holds other
// data (the data directory itself, a home directory) deleted all of it.
func TestCacheDirKeepsForeignFiles(t *testing.T) {
	dir := t.TempDir()
	c, err := newChunkCache(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	chunk := c.path("t-0123456789abcdef/0/00000000000000000000-abcdef012345.log#0")
	leftovers := []string{chunk, chunk + ".tmp"}
	for _, p := range leftovers {
		if err := os.WriteFile(p, []byte("old chunk"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	foreign := []string{filepath.Join(dir, "topics", "t", "0", "00000000000000000000.log"), filepath.Join(dir, "notes.txt"), filepath.Join(dir, "0123456789abcdef0123456789ABCDEF")}
	for _, p := range foreign {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("not the cache's"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := newChunkCache(dir, 1<<20); err != nil {
		t.Fatal(err)
	}
	for _, p := range leftovers {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("chunk file %s of a previous run kept (%v)", p, err)
		}
	}
	for _, p := range foreign {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("a file the cache did not write was removed from its directory: %s (%v)", p, err)
		}
	}
}
