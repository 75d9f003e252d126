package state

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"

	"github.com/sluicehq/sluice/state/codec"
)

// decodeMerged returns the state a merged section restores: per table,
// key to value.
func decodeMerged(t *testing.T, sec []byte) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	err := walkChanges(sec, func(name string, body []byte) error {
		m := out[name]
		if m == nil {
			m = map[string]string{}
			out[name] = m
		}
		return walkBody(body, false, func() { clear(m) }, func(e changeEntry) error {
			if e.op == opDelete {
				delete(m, string(e.key))
			} else {
				m[string(e.key)] = string(e.value)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, m := range out {
		if len(m) == 0 {
			delete(out, name)
		}
	}
	return out
}

// The fast merge (a base, then increments) restores what the general
// merge restores, on random chains: keys overwritten and deleted, several
// times in one increment, resets in the middle, tables appearing late.
func TestMergeFastMatchesGeneral(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 9))
	taken := 0
	for iter := range 400 {
		tables := []string{"a", "b", "\x00timers/event", "zz"}[:1+rng.IntN(4)]
		var secs [][]byte
		nsec := 1 + rng.IntN(6)
		for s := range nsec {
			var sec []byte
			for _, name := range tables {
				if s > 0 && rng.IntN(3) == 0 {
					continue
				}
				reset := s == 0 || rng.IntN(8) == 0
				var puts, vals, dels [][]byte
				seen := map[int]bool{}
				for range rng.IntN(30) {
					k := rng.IntN(40)
					if reset && seen[k] {
						continue // a base holds each key once
					}
					seen[k] = true
					key := codec.AppendString(nil, fmt.Sprint("key", k))
					if !reset && rng.IntN(4) == 0 {
						dels = append(dels, key)
						continue
					}
					puts = append(puts, key)
					vals = append(vals, []byte(fmt.Sprint("v", iter, s, rng.IntN(1000))))
				}
				body := AppendChangeBody(nil, reset, puts, vals, dels)
				sec = codec.AppendString(sec, name)
				sec = codec.AppendBytes(sec, body)
			}
			secs = append(secs, sec)
		}
		if _, ok := mergeChangesFast(nil, secs); ok {
			taken++
		}
		fast, err := MergeChanges([]byte("prefix"), secs...)
		if err != nil {
			t.Fatal(err)
		}
		mergeFast = false
		general, err := MergeChanges([]byte("prefix"), secs...)
		mergeFast = true
		if err != nil {
			t.Fatal(err)
		}
		if string(fast[:6]) != "prefix" {
			t.Fatal("dst not kept")
		}
		if a, b := decodeMerged(t, fast[6:]), decodeMerged(t, general[6:]); !maps.EqualFunc(a, b, maps.Equal) {
			t.Fatalf("iteration %d: fast merge %v, general %v", iter, a, b)
		}
		// Merging the merge with nothing more is the same state again.
		again, err := MergeChanges(nil, fast[6:])
		if err != nil {
			t.Fatal(err)
		}
		if a, b := decodeMerged(t, again), decodeMerged(t, general[6:]); !maps.EqualFunc(a, b, maps.Equal) {
			t.Fatalf("iteration %d: re-merge differs", iter)
		}
	}
	if taken < 300 {
		t.Fatalf("fast merge taken %d times of 400", taken)
	}
}
