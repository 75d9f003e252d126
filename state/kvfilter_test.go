package state

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
)

// countingKV is an in-memory KVStore with a cache budget that counts the
// point reads and scans reaching it.
type countingKV struct {
	m             map[string][]byte
	budget        *CacheBudget
	gets, scans   int
	scanned       int
	absentGetsHit int // point reads of absent keys
}

func newCountingKV(budget int64) *countingKV {
	return &countingKV{m: map[string][]byte{}, budget: NewCacheBudget(budget)}
}

func (s *countingKV) CacheBudget() *CacheBudget { return s.budget }

func (s *countingKV) Get(key, dst []byte) ([]byte, bool, error) {
	s.gets++
	v, ok := s.m[string(key)]
	if !ok {
		s.absentGetsHit++
		return dst, false, nil
	}
	return append(dst, v...), true, nil
}

func (s *countingKV) Set(key, val []byte) error {
	s.m[string(key)] = append([]byte(nil), val...)
	return nil
}

func (s *countingKV) Delete(key []byte) error {
	delete(s.m, string(key))
	return nil
}

func (s *countingKV) DeleteRange(start, end []byte) error {
	for k := range s.m {
		if k >= string(start) && (end == nil || k < string(end)) {
			delete(s.m, k)
		}
	}
	return nil
}

func (s *countingKV) Scan(start, end []byte, fn func(key, val []byte) bool) error {
	s.scans++
	var keys []string
	for k := range s.m {
		if k >= string(start) && (end == nil || k < string(end)) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		s.scanned++
		if !fn([]byte(k), bytes.Clone(s.m[k])) {
			break
		}
	}
	return nil
}

func openCountingMap(t *testing.T, kv *countingKV) (*Keyed[string], *Map[string, int64, int64], Table) {
	t.Helper()
	r := KeyGroupRange{End: 8}
	tb, err := mapDescriptor[string, int64, int64]{name: "m"}.NewKVTable(kv, r)
	if err != nil {
		t.Fatal(err)
	}
	kc := &Keyed[string]{}
	return kc, &Map[string, int64, int64]{c: kc, kv: tb.(*kvMapTable[string, int64, int64])}, tb
}

// A key's absent entries cost no point read once its filter is built:
// distinct-set inserts (Get, then Put when absent) read the store only for
// the filter's false positives, and the filter is rebuilt as the set grows.
func TestMapFilterSparesAbsentReads(t *testing.T) {
	kv := newCountingKV(1 << 20)
	kc, m, _ := openCountingMap(t, kv)
	kc.SetCurrentKey("day", 3)
	const n = 20000
	for i := range int64(n) {
		if _, ok := m.Get(i); ok {
			t.Fatalf("entry %d present before its Put", i)
		}
		m.Put(i, i)
	}
	// Less than 1 % of the absent Gets may be false positives.
	if kv.absentGetsHit > n/100 {
		t.Fatalf("%d of %d absent Gets read the store, want at most 1 %%", kv.absentGetsHit, n)
	}
	// Doubling: about log2(n/16) rebuilds, each a scan.
	if kv.scans > 16 {
		t.Fatalf("%d scans to build the filter of a %d-entry set, want at most 16", kv.scans, n)
	}
	for i := range int64(n) {
		if v, ok := m.Get(i); !ok || v != i {
			t.Fatalf("entry %d = %d %v after its Put", i, v, ok)
		}
	}
	// A cleared map needs no scan and no read to know it is empty.
	scans, gets := kv.scans, kv.gets
	m.Clear()
	for i := range int64(100) {
		if _, ok := m.Get(i); ok {
			t.Fatalf("entry %d present after Clear", i)
		}
	}
	if kv.scans != scans || kv.gets-gets > 2 {
		t.Fatalf("Gets after Clear: %d scans and %d point reads, want none", kv.scans-scans, kv.gets-gets)
	}
}

// With no cache budget (HotCacheSize < 0) there is no filter: every Get
// reads the store.
func TestMapFilterOffWithoutBudget(t *testing.T) {
	kv := newCountingKV(0)
	kc, m, _ := openCountingMap(t, kv)
	kc.SetCurrentKey("k", 0)
	for i := range int64(10) {
		m.Get(i)
	}
	if kv.gets != 10 || kv.scans != 0 {
		t.Fatalf("%d point reads and %d scans, want 10 and 0", kv.gets, kv.scans)
	}
}

// Random operations on several keys' maps under budgets from tiny (every
// filter evicted or refused, keys marked too large) to ample, against Go
// maps: a Get must never miss an entry that the store holds, whatever the
// filters' state; and the budget's bytes must stay within its bound.
func TestMapFilterAgainstOracle(t *testing.T) {
	for _, budget := range []int64{256, 2 << 10, 16 << 10, 1 << 20} {
		for seed := range uint64(3) {
			t.Run(fmt.Sprint(budget, "/", seed), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, uint64(budget)))
				kv := newCountingKV(budget)
				kc, m, tb := openCountingMap(t, kv)
				want := map[string]map[int64]int64{}
				kgs := map[string]int{}
				for i := range 6 {
					kgs[fmt.Sprint("k", i)] = i % 3
				}
				for step := range 30000 {
					k := fmt.Sprint("k", rng.IntN(6))
					kc.SetCurrentKey(k, kgs[k])
					// Keys 0-1 have large maps, the others small ones.
					span := int64(40)
					if kgs[k] == 0 {
						span = 3000
					}
					uk := rng.Int64N(span)
					switch op := rng.IntN(1000); {
					case op < 400:
						v := rng.Int64()
						m.Put(uk, v)
						if want[k] == nil {
							want[k] = map[int64]int64{}
						}
						want[k][uk] = v
					case op < 500:
						m.Delete(uk)
						delete(want[k], uk)
					case op < 502:
						m.Clear()
						delete(want[k], uk)
						want[k] = nil
					case op < 503:
						tb.ClearKeyGroup(kgs[k])
						for o, kg := range kgs {
							if kg == kgs[k] {
								want[o] = nil
							}
						}
					default:
						w, wok := want[k][uk]
						if g, ok := m.Get(uk); ok != wok || g != w {
							t.Fatalf("step %d: %s get %d = %d %v, want %d %v", step, k, uk, g, ok, w, wok)
						}
					}
					if used := kv.budget.Used(); used < 0 || used > budget+2*budget/16+512 {
						t.Fatalf("step %d: budget holds %d bytes of %d", step, used, budget)
					}
				}
				for k, w := range want {
					kc.SetCurrentKey(k, kgs[k])
					for uk := range int64(3000) {
						wv, wok := w[uk]
						if g, ok := m.Get(uk); ok != wok || g != wv {
							t.Fatalf("end: %s get %d = %d %v, want %d %v", k, uk, g, ok, wv, wok)
						}
					}
				}
			})
		}
	}
}
