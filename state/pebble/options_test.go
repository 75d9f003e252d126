package pebble

import (
	"testing"

	"github.com/sluicehq/sluice/internal/memlimit"
)

func TestOptionsFromMemoryLimit(t *testing.T) {
	for _, c := range []struct {
		in          Options
		cache       int64
		memTable    uint64
		description string
	}{
		{Options{}, 8 << 20, 4 << 20, "defaults"},
		{Options{MemoryLimit: 256 << 20}, 64 << 20, 16 << 20, "256 MiB limit"},
		{Options{MemoryLimit: 4 << 30}, 1 << 30, 64 << 20, "memtable capped at 64 MiB"},
		{Options{MemoryLimit: 1 << 20}, 256 << 10, 256 << 10, "memtable at least 256 KiB"},
		{Options{MemoryLimit: 256 << 20, CacheSize: 1 << 20, MemTableSize: 1 << 20}, 1 << 20, 1 << 20, "explicit sizes win"},
	} {
		o := c.in
		o.defaults()
		if o.CacheSize != c.cache || o.MemTableSize != c.memTable {
			t.Errorf("%s: cache %d memtable %d, want %d %d", c.description, o.CacheSize, o.MemTableSize, c.cache, c.memTable)
		}
	}
}

// TestPlanOptions: a plan's memtable budget is split over two backends per
// parallel slot, and the hot-entry caches take at most a quarter of the
// heap part together (an eighth per backend of each of two keyed
// operators per slot), never less than 256 KiB each.
func TestPlanOptions(t *testing.T) {
	p, err := memlimit.Split(memlimit.DefaultStateBudget)
	if err != nil {
		t.Fatal(err)
	}
	cache := NewCache(p.PebbleCache)
	defer cache.Release()
	for _, par := range []int{0, 1, 2, 4} {
		o := PlanOptions(p, cache, par)
		n := int64(max(par, 1))
		if o.Cache != cache {
			t.Errorf("parallelism %d: the shared cache is not used", par)
		}
		if want := p.MemTableSize(2 * int(n)); o.MemTableSize != want {
			t.Errorf("parallelism %d: memtable %d, want %d", par, o.MemTableSize, want)
		}
		if total := 2 * n * o.HotCacheSize; total > p.Heap/4 || o.HotCacheSize < 256<<10 {
			t.Errorf("parallelism %d: hot caches %d each, %d in all; heap part %d", par, o.HotCacheSize, total, p.Heap)
		}
	}
	small, err := memlimit.Split(memlimit.MinLimit)
	if err != nil {
		t.Fatal(err)
	}
	if o := PlanOptions(small, cache, 64); o.HotCacheSize != 256<<10 {
		t.Errorf("small plan, parallelism 64: hot cache %d, want the 256 KiB floor", o.HotCacheSize)
	}
}
