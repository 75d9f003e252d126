package pebble

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/state"
)

// collOracle is the brute-force model of map and list state: per key, a Go
// map and a Go slice.
type collOracle struct {
	maps   map[string]map[int64]string
	lists  map[string][]int64
	values map[string]string
	// span is the number of user keys (from -10): larger spans make
	// larger maps, whose membership filters grow and are rebuilt.
	span int64
}

func newCollOracle() *collOracle {
	return &collOracle{maps: map[string]map[int64]string{}, lists: map[string][]int64{}, values: map[string]string{}, span: 30}
}

// collHandles are the map and list handles of one backend.
type collHandles struct {
	b  state.Backend
	kc *state.Keyed[string]
	m  *state.Map[string, int64, string]
	l  *state.List[string, int64]
	v  *state.Value[string, string]
}

func openColl(t *testing.T, b state.Backend) collHandles {
	t.Helper()
	kc := state.NewKeyed[string](b)
	m, err := state.NewMap[string, int64, string](kc, "coll-map")
	if err != nil {
		t.Fatal(err)
	}
	l, err := state.NewList[string, int64](kc, "coll-list")
	if err != nil {
		t.Fatal(err)
	}
	v, err := state.NewValue[string, string](kc, "coll-value")
	if err != nil {
		t.Fatal(err)
	}
	return collHandles{b, kc, m, l, v}
}

// step applies one random operation on key k to h and the oracle; keys
// are drawn from few values so that maps and lists grow, shrink and clear.
func (o *collOracle) step(t *testing.T, rng *rand.Rand, k string, h collHandles) {
	t.Helper()
	h.kc.SetCurrentKey(k, kgOf(k))
	uk := rng.Int64N(o.span) - 10
	if rng.IntN(4) == 0 {
		// Value state: written back from the cache of hot entries.
		switch op := rng.IntN(10); {
		case op < 6:
			v := fmt.Sprint("x", rng.IntN(1000))
			h.v.Set(v)
			o.values[k] = v
		case op < 7:
			h.v.Clear()
			delete(o.values, k)
		default:
			got, ok := h.v.Get()
			want, wok := o.values[k]
			if ok != wok || got != want {
				t.Fatalf("value %s: %q %v, want %q %v", k, got, ok, want, wok)
			}
		}
		if rng.IntN(50) == 0 { // as an operator at the end of a batch
			if f, ok := h.b.(state.Flusher); ok {
				if err := f.Flush(); err != nil {
					t.Fatal(err)
				}
			}
		}
		return
	}
	if rng.IntN(500) == 0 {
		// Drop the map entries of k's key group (as rescaling does).
		kg := kgOf(k)
		for _, tb := range h.b.Tables() {
			if tb.Name() == "coll-map" || tb.Name() == "coll-value" {
				tb.ClearKeyGroup(kg)
			}
		}
		for ok := range o.maps {
			if kgOf(ok) == kg {
				delete(o.maps, ok)
			}
		}
		for ok := range o.values {
			if kgOf(ok) == kg {
				delete(o.values, ok)
			}
		}
		return
	}
	switch op := rng.IntN(100); {
	case op < 35:
		v := fmt.Sprint("v", rng.IntN(1000))
		h.m.Put(uk, v)
		if o.maps[k] == nil {
			o.maps[k] = map[int64]string{}
		}
		o.maps[k][uk] = v
	case op < 50:
		h.m.Delete(uk)
		delete(o.maps[k], uk)
	case op < 52:
		h.m.Clear()
		delete(o.maps, k)
	case op < 60:
		got, ok := h.m.Get(uk)
		want, wok := o.maps[k][uk]
		if ok != wok || got != want {
			t.Fatalf("map %s get %d: %q %v, want %q %v", k, uk, got, ok, want, wok)
		}
	case op < 85:
		v := rng.Int64()
		h.l.Add(v)
		o.lists[k] = append(o.lists[k], v)
	case op < 88:
		h.l.Clear()
		delete(o.lists, k)
	case op < 92:
		vs := []int64{rng.Int64N(5), rng.Int64N(5)}[:rng.IntN(3)]
		h.l.Update(slices.Clone(vs))
		o.lists[k] = vs
	default:
		// Delete while iterating: every negative user key.
		for uk := range h.m.All() {
			if uk < 0 {
				h.m.Delete(uk)
				delete(o.maps[k], uk)
			}
		}
	}
}

// check compares every key of the oracle in b's key groups with the
// handles: Get, Len and All for maps, Values for lists.
func (o *collOracle) check(t *testing.T, b state.Backend, h collHandles, when string) {
	t.Helper()
	r := b.KeyGroups()
	for i := range 40 {
		k := fmt.Sprintf("k%d", i)
		if !r.Contains(kgOf(k)) {
			continue
		}
		h.kc.SetCurrentKey(k, kgOf(k))
		want := o.maps[k]
		got := maps.Collect(h.m.All())
		if len(got) != len(want) || h.m.Len() != len(want) {
			t.Fatalf("%s: map %s: All %v (Len %d), want %v", when, k, got, h.m.Len(), want)
		}
		for uk, v := range want {
			if got[uk] != v {
				t.Fatalf("%s: map %s[%d] = %q, want %q", when, k, uk, got[uk], v)
			}
		}
		// Every user key, present or absent (absent ones are answered
		// by the membership filters when they rule the key out).
		for uk := int64(-10); uk < o.span-10; uk++ {
			v, wok := want[uk]
			if g, ok := h.m.Get(uk); ok != wok || g != v {
				t.Fatalf("%s: map %s get %d = %q %v, want %q %v", when, k, uk, g, ok, v, wok)
			}
		}
		if g, ok := h.v.Get(); ok != (o.values[k] != "") || g != o.values[k] {
			t.Fatalf("%s: value %s = %q %v, want %q", when, k, g, ok, o.values[k])
		}
		if gl, wl := h.l.Values(), o.lists[k]; !slices.Equal(gl, wl) {
			t.Fatalf("%s: list %s = %v, want %v", when, k, gl, wl)
		}
	}
}

// checkValueRange compares a scan of the value table (which must see the
// values held in the cache) with the oracle.
func (o *collOracle) checkValueRange(t *testing.T, b state.Backend, when string) {
	t.Helper()
	got := map[string]string{}
	for _, tb := range b.Tables() {
		if tb.Name() != "coll-value" {
			continue
		}
		tt := tb.(state.TypedTable[string, string])
		for kg := b.KeyGroups().Start; kg < b.KeyGroups().End; kg++ {
			tt.Range(kg, func(k, v string) bool { got[k] = v; return true })
		}
	}
	for k, v := range o.values {
		if b.KeyGroups().Contains(kgOf(k)) && got[k] != v {
			t.Fatalf("%s: value table scan: %s = %q, want %q", when, k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := o.values[k]; !ok {
			t.Fatalf("%s: value table scan: %s present, want absent", when, k)
		}
	}
}

// TestMapListAgainstOracle drives map and list state on Pebble with random
// operations against Go maps and slices, through checkpoints, restores at
// the same parallelism and rescaling to other parallelisms, and compares
// them after every phase. It runs without the read cache of hot entries,
// with one so small that it evicts all the time, and with the default.
func TestMapListAgainstOracle(t *testing.T) {
	for _, hot := range []int64{-1, 2 << 10, 0} {
		for seed := range uint64(3) {
			t.Run(fmt.Sprint("hot", hot, "/seed", seed), func(t *testing.T) { testMapListAgainstOracle(t, seed, hot) })
		}
	}
}

func testMapListAgainstOracle(t *testing.T, seed uint64, hot int64) {
	small := func(dir string) Options {
		o := small(dir)
		o.HotCacheSize = hot
		return o
	}
	{
		{
			rng := rand.New(rand.NewPCG(seed, 7))
			root := t.TempDir()
			store, err := checkpoint.NewDir(filepath.Join(root, "chk"), checkpoint.WithRetain(10),
				checkpoint.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
			if err != nil {
				t.Fatal(err)
			}
			o := newCollOracle()
			// Each phase runs at a parallelism; its subtasks see only the
			// operations of keys in their key groups.
			var c *checkpoint.Checkpoint
			var metas []string
			for phase, par := range []int{2, 2, 1, 3, 4} {
				backends := make([]*Backend, par)
				handles := make([]collHandles, par)
				for sub := range par {
					r := state.RangeFor(testMaxPar, par, sub)
					dir := filepath.Join(root, fmt.Sprintf("p%d-%d", phase, sub))
					var b *Backend
					if c == nil {
						b, err = Open(small(dir), testMaxPar, r)
					} else {
						b, err = Restore(small(dir), testMaxPar, r, c, metas)
					}
					if err != nil {
						t.Fatalf("phase %d subtask %d: %v", phase, sub, err)
					}
					backends[sub], handles[sub] = b, openColl(t, b)
					o.check(t, b, handles[sub], fmt.Sprintf("phase %d restored", phase))
				}
				for range 1500 {
					k := fmt.Sprintf("k%d", rng.IntN(40))
					sub := 0
					for sub < par && !backends[sub].KeyGroups().Contains(kgOf(k)) {
						sub++
					}
					o.step(t, rng, k, handles[sub])
				}
				p, err := store.Begin(checkpoint.ID(phase + 1))
				if err != nil {
					t.Fatal(err)
				}
				m := &checkpoint.Manifest{ID: checkpoint.ID(phase + 1), Pipeline: checkpoint.Pipeline{MaxParallelism: testMaxPar}}
				metas = metas[:0]
				for sub, b := range backends {
					o.check(t, b, handles[sub], fmt.Sprintf("phase %d before checkpoint", phase))
					if phase%2 == 1 { // a scan writes the cached values back first
						o.checkValueRange(t, b, fmt.Sprintf("phase %d", phase))
					}
					files, _, err := b.Checkpoint(p, fmt.Sprintf("op.%d", sub))
					if err != nil {
						t.Fatal(err)
					}
					metas = append(metas, files[0])
					m.Tasks = append(m.Tasks, checkpoint.TaskState{Task: checkpoint.TaskID{Operator: "op", Subtask: sub}, Files: files})
					// Changes after the checkpoint are lost on restore.
					if b.KeyGroups().Contains(kgOf("k1")) {
						handles[sub].kc.SetCurrentKey("k1", kgOf("k1"))
						handles[sub].m.Put(999, "after")
						handles[sub].l.Add(999)
						handles[sub].v.Set("after")
					}
					b.Close()
				}
				if err := p.Commit(m); err != nil {
					t.Fatal(err)
				}
				if c, err = store.Latest(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// TestMapListMemoryAgainstOracle runs the same random operations on the
// memory backend.
func TestMapListMemoryAgainstOracle(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	o := newCollOracle()
	b := state.NewMemory(testMaxPar, state.KeyGroupRange{End: testMaxPar})
	h := openColl(t, b)
	for i := range 5000 {
		o.step(t, rng, fmt.Sprintf("k%d", rng.IntN(40)), h)
		if i%1000 == 999 {
			o.check(t, b, h, fmt.Sprint("step ", i))
		}
	}
}
