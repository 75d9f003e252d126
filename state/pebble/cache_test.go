package pebble

import (
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/state"
)

// Two backends share one block cache: both work, the cache outlives the
// creator's reference until they close, and its capacity is the one given.
func TestSharedCache(t *testing.T) {
	c := NewCache(1 << 20)
	if c.Capacity() != 1<<20 {
		t.Fatalf("capacity %d, want %d", c.Capacity(), 1<<20)
	}
	root := t.TempDir()
	var bs []*Backend
	var wants []map[string]entry
	for i, r := range []state.KeyGroupRange{{Start: 0, End: testMaxPar / 2}, {Start: testMaxPar / 2, End: testMaxPar}} {
		b, err := Open(Options{Dir: filepath.Join(root, string(rune('a'+i))), MemTableSize: 64 << 10, Cache: c}, testMaxPar, r)
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, b)
	}
	c.Release() // the backends hold their own references
	for _, b := range bs {
		wants = append(wants, fill(t, b, 2000, 1))
	}
	for i, b := range bs {
		if err := b.Flush(); err != nil { // the write batch
			t.Fatal(err)
		}
		if err := b.db.Flush(); err != nil { // the memtable
			t.Fatal(err)
		}
		check(t, b, wants[i])
	}
	// Read the flushed tables straight through Pebble while an iterator
	// pins them: the backends' own caches may answer check without a
	// block read, and a compaction finishing meanwhile evicts the blocks
	// of the tables it replaced (the test was flaky on that).
	for _, b := range bs {
		it, err := b.db.NewIter(nil)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for valid := it.First(); valid; valid = it.Next() {
			n++
		}
		used := c.Used()
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatal("no keys in a backend after the flush")
		}
		if used <= 0 || used > c.Capacity() {
			t.Errorf("shared cache holds %d bytes of %d after reading %d keys", used, c.Capacity(), n)
		}
	}
	for _, b := range bs {
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
