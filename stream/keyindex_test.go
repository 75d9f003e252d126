package stream

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestKeyIndexAgainstMap drives the key index and a Go map with the same
// random puts, gets and bulk removals, for an integer key (open
// addressing) and a key with a pointer (the map fallback).
func TestKeyIndexAgainstMap(t *testing.T) {
	t.Run("int64", func(t *testing.T) { keyIndexModel(t, func(r *rand.Rand) int64 { return r.Int64N(3000) - 1500 }) })
	t.Run("string", func(t *testing.T) {
		keyIndexModel(t, func(r *rand.Rand) string { return string(rune('a'+r.IntN(26))) + string(rune('a'+r.IntN(40))) })
	})
	type withPtr struct {
		p *int
		n int
	}
	ptrs := []*int{new(int), new(int), nil}
	t.Run("fallback", func(t *testing.T) {
		x := newKeyIndex[withPtr]()
		if x.slow == nil {
			t.Fatal("a key with a pointer should use the map fallback")
		}
		keyIndexModel(t, func(r *rand.Rand) withPtr { return withPtr{ptrs[r.IntN(3)], r.IntN(300)} })
	})
}

func keyIndexModel[K comparable](t *testing.T, gen func(*rand.Rand) K) {
	r := rand.New(rand.NewPCG(1, 2))
	x := newKeyIndex[K]()
	model := map[K]int32{}
	for step := range 200_000 {
		k := gen(r)
		switch op := r.IntN(100); {
		case op < 45:
			v := int32(r.IntN(1 << 20))
			x.put(k, v)
			model[k] = v
		case op < 99:
			got, ok := x.get(k)
			want, wok := model[k]
			if ok != wok || got != want {
				t.Fatalf("step %d: get(%v) = %d,%v; want %d,%v", step, k, got, ok, want, wok)
			}
		default:
			mod := int32(2 + r.IntN(5))
			x.removeIf(func(_ K, v int32) bool { return v%mod == 0 })
			for k, v := range model {
				if v%mod == 0 {
					delete(model, k)
				}
			}
		}
		if x.len() != len(model) {
			t.Fatalf("step %d: len %d, want %d", step, x.len(), len(model))
		}
	}
	for k, want := range model {
		if got, ok := x.get(k); !ok || got != want {
			t.Fatalf("final get(%v) = %d,%v; want %d", k, got, ok, want)
		}
	}
}

// TestTimerQueueOrder checks the timer queue against a plain list: take
// returns exactly the entries pending for the earliest time, with pushes
// interleaved with takes (as firing windows arm their cleanup, sometimes
// for the same time).
func TestTimerQueueOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	q := timerQueue{chunk: 4} // buckets of many chunks
	var pending []timerEntry
	slot := int32(0)
	push := func(tm int64) {
		e := timerEntry{t: tm, slot: slot}
		slot++
		q.push(e)
		pending = append(pending, e)
	}
	byTimeSlot := func(a, b timerEntry) int {
		if a.t != b.t {
			return int(a.t - b.t)
		}
		return int(a.slot - b.slot)
	}
	for range 20_000 {
		if r.IntN(3) > 0 || len(pending) == 0 {
			push(r.Int64N(500))
			continue
		}
		slices.SortFunc(pending, byTimeSlot)
		due := pending[0].t
		n := 0
		for n < len(pending) && pending[n].t == due {
			n++
		}
		want := slices.Clone(pending[:n])
		pending = slices.Delete(pending, 0, n)
		if got, ok := q.min(); !ok || got != due {
			t.Fatalf("min = %d,%v; want %d", got, ok, due)
		}
		// Re-arm while iterating the taken chunks, as winOp.advance does:
		// pushes must not reuse or grow into the chunks being read.
		chunks, b := q.take()
		var got []timerEntry
		for _, entries := range chunks {
			for _, te := range entries {
				got = append(got, te)
				if r.IntN(4) == 0 { // re-arm, possibly for the same time
					push(due + r.Int64N(3))
				}
			}
		}
		q.done(b)
		slices.SortFunc(got, byTimeSlot)
		if !slices.Equal(got, want) {
			t.Fatalf("take at %d: got %v, want %v", due, got, want)
		}
	}
	if q.len() != len(slices.CompactFunc(slices.SortedFunc(slices.Values(pending), byTimeSlot), func(a, b timerEntry) bool { return a.t == b.t })) {
		t.Fatalf("distinct times %d, pending %v", q.len(), pending)
	}
}
