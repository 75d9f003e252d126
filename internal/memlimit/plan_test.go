package memlimit

import (
	"math"
	"math/rand/v2"
	"runtime/debug"
	"testing"
)

// limits returns MinLimit, some round limits and random ones up to 1 TiB.
func limits() []int64 {
	ls := []int64{MinLimit, MinLimit + 1, 256 << 20, 1 << 30, 16 << 30, 1 << 40}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		ls = append(ls, MinLimit+r.Int64N(1<<40))
	}
	return ls
}

func TestSplitProperties(t *testing.T) {
	for _, l := range limits() {
		p, err := Split(l)
		if err != nil {
			t.Fatalf("Split(%d): %v", l, err)
		}
		sum := p.Headroom + p.PebbleCache + p.PebbleMemTables + p.Queues + p.Heap
		if sum > l || p.Limit != l {
			t.Fatalf("Split(%d) = %+v: parts sum to %d > limit", l, p, sum)
		}
		for _, c := range []struct {
			name       string
			got, floor int64
		}{{"headroom", p.Headroom, Floors.Headroom}, {"pebble cache", p.PebbleCache, Floors.PebbleCache},
			{"memtables", p.PebbleMemTables, Floors.PebbleMemTables}, {"queues", p.Queues, Floors.Queues}, {"heap", p.Heap, Floors.Heap}} {
			if c.got < c.floor {
				t.Fatalf("Split(%d): %s %d below its floor %d", l, c.name, c.got, c.floor)
			}
		}
		if g := p.GoLimit(); g <= 0 || g > l {
			t.Fatalf("Split(%d): Go limit %d outside (0, limit]", l, g)
		}
		// Memtables: at most two per instance within budget unless at
		// the 256 KiB floor.
		for _, n := range []int{1, 2, 8, 64} {
			m := p.MemTableSize(n)
			if m < 256<<10 || m > 64<<20 || (m > 256<<10 && int64(m)*2*int64(n) > p.PebbleMemTables) {
				t.Fatalf("Split(%d).MemTableSize(%d) = %d, budget %d", l, n, m, p.PebbleMemTables)
			}
		}
		for _, par := range []int{1, 2, 4, 16} {
			b, c := p.Stream(par)
			if b < 64 || b > 1024 || c < 1 || c > 4 {
				t.Fatalf("Split(%d).Stream(%d) = %d, %d out of range", l, par, b, c)
			}
			if b > 64 && int64(4*par*par*c*b*RecordBytes) > p.Queues {
				t.Fatalf("Split(%d).Stream(%d) = %d, %d: queues exceed budget %d", l, par, b, c, p.Queues)
			}
		}
	}
}

func TestSplitMonotone(t *testing.T) {
	prev, _ := Split(MinLimit)
	for l := MinLimit; l < 64<<30; l = l*3/2 + 1 {
		p, err := Split(l)
		if err != nil {
			t.Fatal(err)
		}
		if p.PebbleCache < prev.PebbleCache || p.Queues < prev.Queues || p.Heap < prev.Heap {
			t.Fatalf("Split(%d) = %+v shrank a part from %+v", l, p, prev)
		}
		prev = p
	}
}

func TestSplitTooSmall(t *testing.T) {
	for _, l := range []int64{0, 1, 1 << 20, MinLimit - 1} {
		if _, err := Split(l); err == nil {
			t.Errorf("Split(%d) accepted a limit below %d", l, MinLimit)
		}
	}
}

func TestApply(t *testing.T) {
	p, err := Split(512 << 20)
	if err != nil {
		t.Fatal(err)
	}
	prev := Apply(p)
	defer debug.SetMemoryLimit(prev)
	if got := Current(); got != p.GoLimit() {
		t.Fatalf("Go memory limit %d after Apply, want %d", got, p.GoLimit())
	}
	if p.GoLimit() == math.MaxInt64 {
		t.Fatal("Go limit unset")
	}
}
