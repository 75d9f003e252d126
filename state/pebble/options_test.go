package pebble

import "testing"

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
