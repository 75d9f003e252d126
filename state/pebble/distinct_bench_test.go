package pebble

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/state"
)

// go test -run '^$' -bench 'DistinctInsert|AccumulatorUpdate' -benchtime 200000x ./state/pebble/
//
// BenchmarkDistinctInsert is a distinct set's insert (Get, then Put when
// absent) on 64 keys, each seeing each of its values about four times (a
// quarter of the Gets are of absent entries), with the
// membership filters and the cache of hot entries (default budget) and
// without either (HotCacheSize -1): the reads of absent entries are what
// the filters remove. One Flush per 1024 inserts, as an operator per
// record batch.
func BenchmarkDistinctInsert(b *testing.B) {
	for _, c := range []struct {
		name string
		hot  int64
	}{{"filters", 0}, {"none", -1}} {
		b.Run(c.name, func(b *testing.B) {
			be, err := Open(Options{Dir: filepath.Join(b.TempDir(), "s"), HotCacheSize: c.hot}, testMaxPar, state.KeyGroupRange{End: testMaxPar})
			if err != nil {
				b.Fatal(err)
			}
			defer be.Close()
			kc := state.NewKeyed[string](be)
			m, err := state.NewMap[string, int64, uint8](kc, "members")
			if err != nil {
				b.Fatal(err)
			}
			keys := make([]string, 64)
			for i := range keys {
				keys[i] = fmt.Sprint("channel-", i)
			}
			var added int
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				k := keys[i%len(keys)]
				kc.SetCurrentKey(k, kgOf(k))
				// Each key sees each of its values about four times.
				j := i / len(keys)
				v := int64(j*7919) % int64(b.N/len(keys)/4+1)
				if _, ok := m.Get(v); !ok {
					m.Put(v, 1)
					added++
				}
				if i%1024 == 1023 {
					if err := be.Flush(); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(added)/float64(b.N), "new/op")
		})
	}
}

// BenchmarkAccumulatorUpdate is an aggregation's read-modify-write of the
// value of one of 16 hot keys per record, with the cache of hot entries
// (write-back: one store write per key and Flush) and without it (a
// store write per record).
func BenchmarkAccumulatorUpdate(b *testing.B) {
	for _, c := range []struct {
		name string
		hot  int64
	}{{"write-back", 0}, {"none", -1}} {
		b.Run(c.name, func(b *testing.B) {
			be, err := Open(Options{Dir: filepath.Join(b.TempDir(), "s"), HotCacheSize: c.hot}, testMaxPar, state.KeyGroupRange{End: testMaxPar})
			if err != nil {
				b.Fatal(err)
			}
			defer be.Close()
			kc := state.NewKeyed[string](be)
			v, err := state.NewValue[string, entry](kc, "acc")
			if err != nil {
				b.Fatal(err)
			}
			keys := make([]string, 16)
			for i := range keys {
				keys[i] = key(i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				k := keys[i%len(keys)]
				kc.SetCurrentKey(k, kgOf(k))
				e, _ := v.Get()
				e.Count++
				e.Last = k
				v.Set(e)
				if i%1024 == 1023 {
					if err := be.Flush(); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
