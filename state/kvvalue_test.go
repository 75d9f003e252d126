package state

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

type valueAcc struct {
	N    int64
	Tags []string
}

// openCountingValue opens value table "v" over kv, as a store does after
// a restore: the directory is built from what kv holds.
func openCountingValue(t *testing.T, kv *countingKV) *kvTable[string, *valueAcc] {
	t.Helper()
	tb, err := descriptor[string, *valueAcc]{name: "v"}.NewKVTable(kv, KeyGroupRange{End: 8})
	if err != nil {
		t.Fatal(err)
	}
	return tb.(*kvTable[string, *valueAcc])
}

func kgOfKey(k string) int { return int(Hasher[string]()(k) % 8) }

// TestValueCacheAgainstOracle drives a value table with random Get, Put
// (read-modify-write, as an aggregation does), Delete, Range, Len and
// key-group clears against a Go map, with budgets from none to ample; at
// random points the store is "snapshotted" (WriteBack) and a new table is
// opened over a copy of it, which must hold exactly the oracle's values.
func TestValueCacheAgainstOracle(t *testing.T) {
	for _, budget := range []int64{-1, 512, 4 << 10, 64 << 10, 1 << 20} {
		for seed := range uint64(3) {
			t.Run(fmt.Sprint("budget", budget, "/seed", seed), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 11))
				kv := newCountingKV(budget)
				tb := openCountingValue(t, kv)
				want := map[string]int64{}
				for step := range 20000 {
					k := fmt.Sprintf("k%d", rng.IntN(300))
					kg := kgOfKey(k)
					switch op := rng.IntN(100); {
					case op < 60:
						p, ok := tb.Get(kg, k)
						if w, has := want[k]; ok != has || (ok && p.N != w) {
							t.Fatalf("step %d: Get %s = %v %v, want %d %v", step, k, p, ok, w, has)
						}
						if !ok {
							p = &valueAcc{}
						}
						p.N++
						p.Tags = append(p.Tags, "x") // a growing value
						if len(p.Tags) > 40 {
							p.Tags = p.Tags[:0]
						}
						tb.Put(kg, k, p)
						want[k] = p.N
					case op < 75:
						tb.Put(kg, k, &valueAcc{N: int64(step)})
						want[k] = int64(step)
					case op < 85:
						tb.Delete(kg, k)
						delete(want, k)
					case op < 86:
						n := 0
						for g := range 8 {
							tb.Range(g, func(k string, v *valueAcc) bool {
								if want[k] != v.N {
									t.Fatalf("step %d: Range %s = %d, want %d", step, k, v.N, want[k])
								}
								n++
								return true
							})
						}
						if n != len(want) || tb.Len() != n {
							t.Fatalf("step %d: Range saw %d, Len %d, want %d", step, n, tb.Len(), len(want))
						}
					case op < 87:
						g := rng.IntN(8)
						tb.ClearKeyGroup(g)
						for k := range want {
							if kgOfKey(k) == g {
								delete(want, k)
							}
						}
					case op < 89:
						// A snapshot: what the store holds after WriteBack
						// is the whole state, and a table restored from it
						// (a new directory) reads it back.
						tb.WriteBack()
						copied := newCountingKV(budget)
						for k, v := range kv.m {
							copied.m[k] = append([]byte(nil), v...)
						}
						r := openCountingValue(t, copied)
						for k, w := range want {
							if p, ok := r.Get(kgOfKey(k), k); !ok || p.N != w {
								t.Fatalf("step %d: restored %s = %v %v, want %d", step, k, p, ok, w)
							}
						}
						for i := range 300 {
							k := fmt.Sprintf("k%d", i)
							if _, has := want[k]; !has {
								if _, ok := r.Get(kgOfKey(k), k); ok {
									t.Fatalf("step %d: restored %s present, want absent", step, k)
								}
							}
						}
					default:
						_, _ = tb.Get(kg, k)
					}
					if budget > 0 && kv.budget.Used() > budget+budget/4 {
						t.Fatalf("step %d: cache holds %d bytes, budget %d", step, kv.budget.Used(), budget)
					}
				}
			})
		}
	}
}

// Hot values are written to the store only by WriteBack (a snapshot) or
// eviction, and keys never written cost no point read (the directory).
func TestValueCacheWritesBack(t *testing.T) {
	kv := newCountingKV(1 << 20)
	tb := openCountingValue(t, kv)
	for i := range 1000 {
		k := fmt.Sprintf("k%d", i%10)
		p, ok := tb.Get(kgOfKey(k), k)
		if !ok {
			p = &valueAcc{}
		}
		p.N++
		tb.Put(kgOfKey(k), k, p)
	}
	if len(kv.m) != 0 || kv.gets != 0 {
		t.Fatalf("store has %d keys and served %d reads before write-back, want none", len(kv.m), kv.gets)
	}
	tb.WriteBack()
	if len(kv.m) != 10 {
		t.Fatalf("store has %d keys after write-back, want 10", len(kv.m))
	}
	for i := range 1000 {
		k := fmt.Sprintf("new%d", i)
		if _, ok := tb.Get(kgOfKey(k), k); ok {
			t.Fatalf("%s present", k)
		}
	}
	if kv.gets > 20 { // the directory's false positives
		t.Fatalf("%d point reads for 1000 absent keys", kv.gets)
	}
}
