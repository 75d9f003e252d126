package state

import (
	"testing"
)

// benchEntry is a value of the size and shape of Nexmark q18's entries.
type benchEntry struct {
	Last       benchBid
	Emitted    *benchBid
	Has, Dirty bool
}

type benchBid struct {
	A, B, C      int64
	Channel, URL string
	DateTime     int64
	Extra        string
}

// BenchmarkMapTrackedPuts: keys that gain new entries (most of them
// within one snapshot interval, as Nexmark's hot bidders do), with an
// incremental snapshot every interval: the per-entry cost of tracking
// and encoding.
func BenchmarkMapTrackedPuts(b *testing.B) {
	const keys, perKey, interval = 64, 4000, 100_000
	mem := NewMemory(128, RangeFor(128, 1, 0))
	mem.EnableChangeTracking()
	c := NewKeyed[int64](mem)
	m, err := NewMap[int64, int64, benchEntry](c, "m")
	if err != nil {
		b.Fatal(err)
	}
	extra := "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmn"
	var buf []byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		k := int64(i / perKey % keys)
		c.SetCurrentKey(k, int(k%128))
		v := benchEntry{Last: benchBid{A: int64(i), B: k, C: 1234, Channel: "Google", URL: "https://www.google.com/search?q=nexmark", DateTime: int64(i), Extra: extra}, Dirty: true}
		m.Put(int64(i%perKey), v)
		if i%interval == interval-1 {
			buf = buf[:0]
			for kg := range 128 {
				buf, err = mem.AppendChanges(buf, kg, false)
				if err != nil {
					b.Fatal(err)
				}
			}
			mem.ClearChanges()
		}
	}
}
