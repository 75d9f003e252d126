package state

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"

	"github.com/sluicehq/sluice/state/codec"
)

// deltaModel is the oracle of TestIncrementalChainEqualsFull: plain maps
// of what the tables hold.
type deltaModel struct {
	vals  map[string]int64
	lists map[string][]string
	maps  map[string]map[int64]string
}

func (m deltaModel) clone() deltaModel {
	c := deltaModel{vals: maps.Clone(m.vals), lists: map[string][]string{}, maps: map[string]map[int64]string{}}
	for k, v := range m.lists {
		c.lists[k] = append([]string(nil), v...)
	}
	for k, v := range m.maps {
		c.maps[k] = maps.Clone(v)
	}
	return c
}

// readBackend collects what a backend holds, key group by key group.
func readBackend(t *testing.T, b *Memory, into deltaModel) {
	t.Helper()
	vt, err := OpenTable[string, int64](b, "v")
	if err != nil {
		t.Fatal(err)
	}
	lt, err := OpenTable[string, []string](b, "l")
	if err != nil {
		t.Fatal(err)
	}
	// Map state is opened as such first (restored entry changes need its
	// table); OpenTable then returns that table.
	if _, err := NewMap[string, int64, string](NewKeyed[string](b), "m"); err != nil {
		t.Fatal(err)
	}
	mt, err := OpenTable[string, map[int64]string](b, "m")
	if err != nil {
		t.Fatal(err)
	}
	for kg := b.KeyGroups().Start; kg < b.KeyGroups().End; kg++ {
		vt.Range(kg, func(k string, v int64) bool { into.vals[k] = v; return true })
		lt.Range(kg, func(k string, v []string) bool { into.lists[k] = v; return true })
		mt.Range(kg, func(k string, v map[int64]string) bool { into.maps[k] = v; return true })
	}
}

func equalModels(a, b deltaModel) error {
	if !maps.Equal(a.vals, b.vals) {
		return fmt.Errorf("values %v, want %v", a.vals, b.vals)
	}
	if len(a.lists) != len(b.lists) {
		return fmt.Errorf("%d lists, want %d", len(a.lists), len(b.lists))
	}
	for k, v := range b.lists {
		if fmt.Sprint(a.lists[k]) != fmt.Sprint(v) {
			return fmt.Errorf("list %s = %v, want %v", k, a.lists[k], v)
		}
	}
	if len(a.maps) != len(b.maps) {
		return fmt.Errorf("%d maps, want %d", len(a.maps), len(b.maps))
	}
	for k, v := range b.maps {
		if !maps.Equal(a.maps[k], v) {
			return fmt.Errorf("map %s = %v, want %v", k, a.maps[k], v)
		}
	}
	return nil
}

// TestIncrementalChainEqualsFull applies random operations to value, list
// and map state with change tracking, takes random checkpoints (a full
// section or an increment per key group, sometimes compacted with
// MergeChanges) and restores random checkpoints at parallelism 1-4 from
// their chain. Every restore must equal the oracle at that checkpoint and
// a restore from a full snapshot (AppendKeyGroup) taken at the same time.
func TestIncrementalChainEqualsFull(t *testing.T) {
	forSeeds(t, 40, chainRun)
}

func chainRun(t *testing.T, seed uint64) {
	const maxPar = 16
	rng := rand.New(rand.NewPCG(seed, 7))
	srcPar := 1 + rng.IntN(3)
	h := Hasher[string]()
	// The writing job runs at srcPar; every subtask has its own backend.
	type sub struct {
		b *Memory
		c *Keyed[string]
		v *Value[string, int64]
		l *List[string, string]
		m *Map[string, int64, string]
	}
	subs := make([]sub, srcPar)
	for i := range subs {
		b, c := trackedKeyed(maxPar, RangeFor(maxPar, srcPar, i))
		v, _ := NewValue[string, int64](c, "v")
		l, _ := NewList[string, string](c, "l")
		m, _ := NewMap[string, int64, string](c, "m")
		subs[i] = sub{b, c, v, l, m}
	}
	model := deltaModel{vals: map[string]int64{}, lists: map[string][]string{}, maps: map[string]map[int64]string{}}
	// chains[kg] is the list of sections of key group kg since its base.
	chains := map[int][][]byte{}
	type checkpointAt struct {
		chains map[int][][]byte
		full   map[int][]byte
		want   deltaModel
	}
	var taken []checkpointAt
	nkeys := 5 + rng.IntN(60)
	for step := range 400 {
		k := fmt.Sprintf("k%d", rng.IntN(nkeys))
		kg := KeyGroup(h(k), maxPar)
		s := subs[SubtaskFor(maxPar, srcPar, kg)]
		s.c.SetCurrentKey(k, kg)
		switch op := rng.IntN(10); {
		case op < 3:
			x := rng.Int64N(1000)
			s.v.Set(x)
			model.vals[k] = x
		case op == 3:
			s.v.Clear()
			delete(model.vals, k)
		case op < 6:
			x := fmt.Sprint(step)
			s.l.Add(x)
			model.lists[k] = append(model.lists[k], x)
		case op == 6:
			s.l.Clear()
			delete(model.lists, k)
		case op < 9:
			uk := rng.Int64N(5)
			s.m.Put(uk, fmt.Sprint(step))
			if model.maps[k] == nil {
				model.maps[k] = map[int64]string{}
			}
			model.maps[k][uk] = fmt.Sprint(step)
		default:
			uk := rng.Int64N(5)
			s.m.Delete(uk)
			if mm := model.maps[k]; mm != nil {
				delete(mm, uk)
				if len(mm) == 0 {
					delete(model.maps, k)
				}
			}
		}
		if rng.IntN(25) != 0 {
			continue
		}
		// A checkpoint: every subtask writes a full section or an
		// increment of each key group; sometimes the chains are
		// compacted.
		cp := checkpointAt{chains: map[int][][]byte{}, full: map[int][]byte{}, want: model.clone()}
		for _, s := range subs {
			full := rng.IntN(4) == 0
			for kg := s.b.KeyGroups().Start; kg < s.b.KeyGroups().End; kg++ {
				sec, err := s.b.AppendChanges(nil, kg, full)
				if err != nil {
					t.Fatal(err)
				}
				if full {
					chains[kg] = nil
				}
				if len(sec) > 0 || full {
					chains[kg] = append(chains[kg], sec)
				}
				if rng.IntN(5) == 0 && len(chains[kg]) > 1 {
					merged, err := MergeChanges(nil, chains[kg]...)
					if err != nil {
						t.Fatal(err)
					}
					chains[kg] = [][]byte{merged}
				}
				cp.chains[kg] = append([][]byte(nil), chains[kg]...)
				if cp.full[kg], err = s.b.AppendKeyGroup(nil, kg); err != nil {
					t.Fatal(err)
				}
			}
			s.b.ClearChanges()
		}
		taken = append(taken, cp)
	}
	for range 6 {
		if len(taken) == 0 {
			return
		}
		cp := taken[rng.IntN(len(taken))]
		par := 1 + rng.IntN(4)
		fromChain := deltaModel{vals: map[string]int64{}, lists: map[string][]string{}, maps: map[string]map[int64]string{}}
		fromFull := fromChain.clone()
		for i := range par {
			r := RangeFor(maxPar, par, i)
			bc, bf := NewMemory(maxPar, r), NewMemory(maxPar, r)
			for kg := r.Start; kg < r.End; kg++ {
				for _, sec := range cp.chains[kg] {
					if err := bc.ApplyChanges(kg, sec); err != nil {
						t.Fatal(err)
					}
				}
				if err := bf.RestoreKeyGroup(kg, cp.full[kg]); err != nil {
					t.Fatal(err)
				}
			}
			readBackend(t, bc, fromChain)
			readBackend(t, bf, fromFull)
		}
		if err := equalModels(fromChain, cp.want); err != nil {
			t.Fatalf("restore from the chain at parallelism %d: %v", par, err)
		}
		if err := equalModels(fromFull, fromChain); err != nil {
			t.Fatalf("full and chain restores differ at parallelism %d: %v", par, err)
		}
	}
}

// TestApplyChangesRejectsGarbage: truncated or damaged change sections are
// errors, not panics.
func TestApplyChangesRejectsGarbage(t *testing.T) {
	b, c := trackedKeyed(4, RangeFor(4, 1, 0))
	v, _ := NewValue[string, int64](c, "v")
	for i := range 20 {
		k := fmt.Sprint(i)
		kg := KeyGroup(Hasher[string]()(k), 4)
		c.SetCurrentKey(k, kg)
		v.Set(int64(i))
	}
	var sec []byte
	kg := 0
	for ; kg < 4; kg++ {
		sec, _ = b.AppendChanges(nil, kg, true)
		if len(sec) > 0 {
			break
		}
	}
	for cut := 1; cut < len(sec); cut++ {
		r := NewMemory(4, RangeFor(4, 1, 0))
		if _, err := OpenTable[string, int64](r, "v"); err != nil {
			t.Fatal(err)
		}
		if err := r.ApplyChanges(kg, sec[:cut]); err == nil {
			t.Fatalf("section cut at %d of %d applied without error", cut, len(sec))
		}
		if _, err := MergeChanges(nil, sec[:cut]); err == nil {
			t.Fatalf("section cut at %d of %d merged without error", cut, len(sec))
		}
	}
}

// FuzzApplyChanges: arbitrary bytes never panic ApplyChanges or
// MergeChanges.
func FuzzApplyChanges(f *testing.F) {
	b, c := trackedKeyed(2, RangeFor(2, 1, 0))
	v, _ := NewValue[string, int64](c, "v")
	c.SetCurrentKey("a", 0)
	v.Set(1)
	m, _ := NewMap[string, int64, string](c, "m")
	m.Put(7, "x")
	sec, _ := b.AppendChanges(nil, 0, true)
	f.Add(sec)
	b.ClearChanges()
	m.Put(8, "y")
	m.Delete(7)
	inc, _ := b.AppendChanges(nil, 0, false)
	f.Add(inc)
	f.Add([]byte{1, 'v', 3, 0, 1, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewMemory(2, RangeFor(2, 1, 0))
		if _, err := OpenTable[string, int64](r, "v"); err != nil {
			t.Fatal(err)
		}
		if _, err := NewMap[string, int64, string](NewKeyed[string](r), "m"); err != nil {
			t.Fatal(err)
		}
		_ = r.ApplyChanges(0, data)
		_, _ = MergeChanges(nil, data)
	})
}

// TestValueChangesOncePerKey: over random reads, writes (after a read of
// the same key or blind) and deletions of value state, each increment
// lists exactly the keys written or deleted since the previous one, each
// once, with its current value; Changed counts them. Keys put again
// after a deletion, and writes after a read made in an earlier snapshot
// interval, are the cases the generations must get right.
func TestValueChangesOncePerKey(t *testing.T) {
	forSeeds(t, 8, func(t *testing.T, seed uint64) {
		const maxPar = 4
		rng := rand.New(rand.NewPCG(seed, 11))
		h := Hasher[string]()
		b, c := trackedKeyed(maxPar, KeyGroupRange{Start: 0, End: maxPar})
		v, err := NewValue[string, int64](c, "v")
		if err != nil {
			t.Fatal(err)
		}
		vals := map[string]int64{}
		touched := map[string]bool{}
		for step := range 3000 {
			k := fmt.Sprintf("k%d", rng.IntN(12))
			c.SetCurrentKey(k, KeyGroup(h(k), maxPar))
			switch op := rng.IntN(8); {
			case op < 2:
				got, ok := v.Get()
				if want, has := vals[k]; ok != has || got != want {
					t.Fatalf("step %d: Get(%s) = %d,%v; want %d,%v", step, k, got, ok, want, has)
				}
			case op < 4:
				x := rng.Int64N(100)
				v.Get()
				v.Set(x)
				vals[k], touched[k] = x, true
			case op < 6:
				x := rng.Int64N(100)
				v.Set(x)
				vals[k], touched[k] = x, true
			default:
				if _, ok := vals[k]; ok {
					touched[k] = true
				}
				v.Clear()
				delete(vals, k)
			}
			if rng.IntN(20) != 0 {
				continue
			}
			if got := b.Changed(); got != len(touched) {
				t.Fatalf("step %d: Changed() = %d, want %d", step, got, len(touched))
			}
			listed := map[string]bool{}
			for kg := range maxPar {
				sec, err := b.AppendChanges(nil, kg, false)
				if err != nil {
					t.Fatal(err)
				}
				err = WalkChanges(sec, func(name string, body []byte) error {
					return WalkChangeBody(body, func() { t.Fatalf("step %d: an increment resets key group %d", step, kg) }, func(del bool, key, value []byte) error {
						k, _, err := codec.DecodeString(key)
						if err != nil {
							return err
						}
						if listed[k] {
							t.Fatalf("step %d: key %s listed twice", step, k)
						}
						listed[k] = true
						want, has := vals[k]
						if del == has {
							t.Fatalf("step %d: key %s deleted %v, present %v", step, k, del, has)
						}
						if !del {
							if x, _, err := codec.DecodeInt64(value); err != nil || x != want {
								t.Fatalf("step %d: key %s = %d (%v), want %d", step, k, x, err, want)
							}
						}
						return nil
					})
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			if !maps.Equal(listed, touched) {
				t.Fatalf("step %d: listed %v, want %v", step, listed, touched)
			}
			b.ClearChanges()
			clear(touched)
		}
	})
}
