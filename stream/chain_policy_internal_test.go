package stream

import (
	"math/rand/v2"
	"testing"
)

// TestNeedFullGrowingState: while the state grows, an increment of the
// new entries is written, not a base of all of them nor a compaction,
// even when more than half of the entries are new; the writer compacts
// when the chain would hold more than twice the live entries, and a
// base comes after a lost increment.
func TestNeedFullGrowingState(t *testing.T) {
	c := newChainSnap()
	steps := []struct {
		changed, total int
		full, compact  bool
	}{
		{100, 100, true, false},    // no base yet
		{150, 250, false, false},   // 150 new of 250: chain 250
		{250, 500, false, false},   // half new again: chain 500
		{600, 1100, false, false},  // chain 1100
		{1100, 1100, false, false}, // every entry rewritten: chain 2200, twice the state
		{1, 1100, false, true},     // a restore would read more than twice the state
		{0, 1100, false, false},
	}
	for i, s := range steps {
		if got := c.needFull(s.changed, s.total); got != s.full || c.compactNext != s.compact {
			t.Fatalf("step %d (%d changed of %d): full %v, compact %v; want %v, %v", i, s.changed, s.total, got, c.compactNext, s.full, s.compact)
		}
		c.hasBase = true // submit's part
	}
	c.broken.Store(true)
	if !c.needFull(1, 1100) {
		t.Fatal("after a lost increment: not a base")
	}
}

// TestNeedFullBoundsChain: for random changes of a model state (puts of
// new and existing keys, deletions), the chain that needFull plans never
// holds more than twice the live entries, nor more than maxChain files,
// and its count of files follows the writer's compactions.
func TestNeedFullBoundsChain(t *testing.T) {
	rng := rand.New(rand.NewPCG(18, 19))
	c := newChainSnap()
	live := map[int]bool{}
	next := 0
	files := 0 // as the writer keeps them (chainSnap.write)
	for step := range 2000 {
		touched := map[int]bool{}
		for range rng.IntN(50) {
			switch x := rng.IntN(10); {
			case x < 4 || len(live) == 0:
				live[next] = true
				touched[next] = true
				next++
			case x < 8:
				for k := range live {
					touched[k] = true
					break
				}
			default:
				for k := range live {
					delete(live, k)
					touched[k] = true
					break
				}
			}
		}
		full := c.needFull(len(touched), len(live))
		c.hasBase = true
		switch {
		case full || c.compactNext || files+1 >= maxChain:
			files = 1 // a base, or the chain compacted
		default:
			files++
		}
		if c.files != files {
			t.Fatalf("step %d: needFull counts %d files, the writer has %d", step, c.files, files)
		}
		if files > maxChain {
			t.Fatalf("step %d: %d files", step, files)
		}
		if c.chainEntries > 2*len(live) {
			t.Fatalf("step %d: the chain holds %d entries for %d live ones", step, c.chainEntries, len(live))
		}
	}
}
