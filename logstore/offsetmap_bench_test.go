//go:build linux

package logstore

import (
	"encoding/binary"
	"math/rand/v2"
	"runtime"
	"testing"
)

// BenchmarkOffsetMap is the offset map as the 100-byte-record compaction
// benchmark uses it: the default 32 MiB map holding 1 M distinct 16-byte
// keys, probed with random keys in batches of 100 records. One op is one
// put and one get of different random keys: the map is far larger than the
// CPU caches, so on real data each probe is a cache miss. cpu-ns/op is the
// thread's CPU time, the figure to compare on a loaded machine.
func BenchmarkOffsetMap(b *testing.B) {
	const keys = 1 << 20
	m := newOffsetMap(defaultDedupeBuffer)
	rng := rand.New(rand.NewPCG(1, 2))
	var k [16]byte
	for off := int64(0); off < 2*keys; off++ { // fill the map as a pass would
		binary.BigEndian.PutUint64(k[:], rng.Uint64N(keys))
		if !m.put(k[:], off) {
			b.Fatal("map full")
		}
	}
	const batch = 100
	ks := make([][]byte, batch)
	for i := range ks {
		ks[i] = make([]byte, 16)
	}
	fill := func() {
		for _, k := range ks {
			binary.BigEndian.PutUint64(k, rng.Uint64N(keys))
		}
	}
	b.Run("probe", func(b *testing.B) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		b.ReportAllocs()
		cpu := threadCPU()
		defer func() { b.ReportMetric(float64(threadCPU()-cpu)/float64(b.N), "cpu-ns/op") }()
		for i := 0; i < b.N; i += batch {
			fill()
			for j := range ks {
				m.put(ks[j], int64(2*keys+i+j))
			}
			fill()
			for j := range ks {
				m.get(ks[j])
			}
		}
	})
}
