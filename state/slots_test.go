package state

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"
)

// kvTestBackend is a Backend over a KVStore, as the Pebble backend is:
// every table is made by its descriptor's NewKVTable.
type kvTestBackend struct {
	kv     KVStore
	groups KeyGroupRange
	maxPar int
	tables map[string]Table
}

func (b *kvTestBackend) MaxParallelism() int      { return b.maxPar }
func (b *kvTestBackend) KeyGroups() KeyGroupRange { return b.groups }
func (b *kvTestBackend) Tables() []Table          { return nil }
func (b *kvTestBackend) Open(d TableDescriptor) (Table, error) {
	if t, ok := b.tables[d.Name()]; ok {
		return t, nil
	}
	t, err := d.(KVTableDescriptor).NewKVTable(b.kv, b.groups)
	if err != nil {
		return nil, err
	}
	b.tables[d.Name()] = t
	return t, nil
}

// slotsModel is the oracle of slots state: per key, slot -> value, the
// head under slot -1.
type slotsModel map[string]map[int]string

func (m slotsModel) clone() slotsModel {
	out := slotsModel{}
	for k, s := range m {
		out[k] = maps.Clone(s)
	}
	return out
}

// checkSlots compares the slots of every key of want (and of the keys
// in keys) with the state.
func checkSlots(c *Keyed[string], s *Slots[string, string, string], maxPar int, want slotsModel, keys []string) error {
	h := Hasher[string]()
	for _, k := range keys {
		c.SetCurrentKey(k, KeyGroup(h(k), maxPar))
		vals, mask := s.Values()
		got := map[int]string{}
		if h, ok := s.Head(); ok {
			got[-1] = h
		}
		for i := range MaxSlots {
			if mask&(1<<i) != 0 {
				got[i] = vals[i]
			}
		}
		if len(vals) != slotsLen(mask) {
			return fmt.Errorf("key %s: %d values for mask %#x", k, len(vals), mask)
		}
		if !maps.Equal(got, want[k]) && len(got)+len(want[k]) > 0 {
			return fmt.Errorf("key %s: got %v, want %v", k, got, want[k])
		}
		for i := range 3 {
			v, ok := s.Get(i)
			if w, wok := want[k][i]; ok != wok || v != w {
				return fmt.Errorf("key %s slot %d: got %q %v, want %q %v", k, i, v, ok, w, wok)
			}
		}
	}
	return nil
}

// slotsOp applies a random op to the current key k of s and of the model:
// sets of the head, mostly sets of the first few slots, some of any
// slot, deletions and clears; now and then a burst of sets, which sends
// a key whole.
func slotsOp(rng *rand.Rand, s *Slots[string, string, string], model slotsModel, k string, step int) {
	set := func(i int, v string) {
		s.Set(i, v)
		if model[k] == nil {
			model[k] = map[int]string{}
		}
		model[k][i] = v
	}
	switch op := rng.IntN(100); {
	case op < 20:
		v := fmt.Sprint("h", step)
		s.SetHead(v)
		if model[k] == nil {
			model[k] = map[int]string{}
		}
		model[k][-1] = v
	case op < 55:
		set(rng.IntN(6), fmt.Sprint("v", step))
	case op < 62:
		set(rng.IntN(MaxSlots), fmt.Sprint("w", step))
	case op < 64:
		for j := range 20 {
			set(rng.IntN(3), fmt.Sprint("b", step, ".", j))
		}
	case op < 90:
		i := rng.IntN(8)
		s.Delete(i)
		delete(model[k], i)
		if len(model[k]) == 0 {
			delete(model, k)
		}
	default:
		s.Clear()
		delete(model, k)
	}
}

// TestSlotsAgainstOracle drives slots state with random sets, deletions
// and clears against a map, in memory with change tracking and on a
// KVStore; in memory, at random checkpoints the sections (a base, then
// increments) are taken, and at the end every checkpoint's chain applied
// in order, and folded by MergeChanges, restores that checkpoint's
// state; a full snapshot (AppendKeyGroup) restores the final one.
func TestSlotsAgainstOracle(t *testing.T) {
	forSeeds(t, 30, slotsRun)
}

func slotsRun(t *testing.T, seed uint64) {
	const maxPar = 4
	rng := rand.New(rand.NewPCG(seed, 41))
	r := RangeFor(maxPar, 1, 0)
	b, c := trackedKeyed(maxPar, r)
	s, err := NewSlots[string, string, string](c, "s", 4)
	if err != nil {
		t.Fatal(err)
	}
	kvb := &kvTestBackend{kv: newCountingKV(-1), groups: r, maxPar: maxPar, tables: map[string]Table{}}
	kc := NewKeyed[string](kvb)
	ks, err := NewSlots[string, string, string](kc, "s", 4)
	if err != nil {
		t.Fatal(err)
	}
	h := Hasher[string]()
	model, kvModel := slotsModel{}, slotsModel{}
	type checkpoint struct {
		chains map[int][][]byte
		want   slotsModel
	}
	var taken []checkpoint
	chains := map[int][][]byte{}
	nkeys := 2 + rng.IntN(15)
	var keys []string
	for i := range nkeys {
		keys = append(keys, fmt.Sprint("k", i))
	}
	for step := range 1500 {
		k := keys[rng.IntN(nkeys)]
		kg := KeyGroup(h(k), maxPar)
		c.SetCurrentKey(k, kg)
		kc.SetCurrentKey(k, kg)
		opSeed := rng.Uint64()
		slotsOp(rand.New(rand.NewPCG(opSeed, 1)), s, model, k, step)
		slotsOp(rand.New(rand.NewPCG(opSeed, 1)), ks, kvModel, k, step)
		if rng.IntN(200) == 0 {
			s.mem.ClearKeyGroup(kg)
			for _, x := range keys {
				if KeyGroup(h(x), maxPar) == kg {
					delete(model, x)
				}
			}
		}
		if rng.IntN(40) != 0 {
			continue
		}
		if err := checkSlots(c, s, maxPar, model, keys); err != nil {
			t.Fatalf("step %d, memory: %v", step, err)
		}
		if err := checkSlots(kc, ks, maxPar, kvModel, keys); err != nil {
			t.Fatalf("step %d, KVStore: %v", step, err)
		}
		full := len(taken) == 0 || rng.IntN(8) == 0
		cp := checkpoint{chains: map[int][][]byte{}, want: model.clone()}
		for kg := r.Start; kg < r.End; kg++ {
			sec, err := b.AppendChanges(nil, kg, full)
			if err != nil {
				t.Fatal(err)
			}
			if full {
				chains[kg] = nil
			}
			chains[kg] = append(chains[kg], sec)
			cp.chains[kg] = append([][]byte(nil), chains[kg]...)
		}
		b.ClearChanges()
		taken = append(taken, cp)
	}
	restore := func(apply func(b2 *Memory, kg int, chain [][]byte) error, want slotsModel, what string) {
		b2, c2 := trackedKeyed(maxPar, r)
		s2, err := NewSlots[string, string, string](c2, "s", 4)
		if err != nil {
			t.Fatal(err)
		}
		for kg := r.Start; kg < r.End; kg++ {
			if err := apply(b2, kg, nil); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		}
		if err := checkSlots(c2, s2, maxPar, want, keys); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		n := 0
		for _, m := range want {
			n += len(m)
		}
		if b2.Len() != n {
			t.Fatalf("%s: Len %d, want %d", what, b2.Len(), n)
		}
	}
	for i, cp := range taken {
		restore(func(b2 *Memory, kg int, _ [][]byte) error {
			for _, sec := range cp.chains[kg] {
				if err := b2.ApplyChanges(kg, sec); err != nil {
					return err
				}
			}
			return nil
		}, cp.want, fmt.Sprintf("checkpoint %d, chain", i))
		restore(func(b2 *Memory, kg int, _ [][]byte) error {
			merged, err := MergeChanges(nil, cp.chains[kg]...)
			if err != nil {
				return err
			}
			return b2.ApplyChanges(kg, merged)
		}, cp.want, fmt.Sprintf("checkpoint %d, merged", i))
	}
	restore(func(b2 *Memory, kg int, _ [][]byte) error {
		sec, err := b.AppendKeyGroup(nil, kg)
		if err != nil {
			return err
		}
		return b2.RestoreKeyGroup(kg, sec)
	}, model, "full snapshot")
}

// TestSlotsIncrementHoldsChangedSlots: an increment holds the slots set
// since the previous snapshot, not the key's other slots, and a key
// written many times in an interval is written whole, once.
func TestSlotsIncrementHoldsChangedSlots(t *testing.T) {
	b, c := trackedKeyed(1, KeyGroupRange{End: 1})
	s, err := NewSlots[string, string, string](c, "s", 4)
	if err != nil {
		t.Fatal(err)
	}
	c.SetCurrentKey("a", 0)
	for i := range 10 {
		s.Set(i, fmt.Sprint("first-", i))
	}
	s.SetHead("head-1")
	if _, err := b.AppendChanges(nil, 0, true); err != nil {
		t.Fatal(err)
	}
	b.ClearChanges()
	s.Set(3, "second")
	s.SetHead("head-2")
	s.SetHead("head-3")
	if got := b.Changed(); got != 2 {
		t.Fatalf("Changed after one set and two heads: %d", got)
	}
	sec, err := b.AppendChanges(nil, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if i != 3 && bytesContain(sec, fmt.Sprint("first-", i)) {
			t.Fatalf("increment holds unchanged slot %d", i)
		}
	}
	if !bytesContain(sec, "second") || !bytesContain(sec, "head-3") || bytesContain(sec, "head-2") {
		t.Fatal("increment lacks the changed slot or the last head, or holds an earlier head")
	}
	b.ClearChanges()
	for i := range 100 {
		s.Set(0, fmt.Sprint("burst-", i))
	}
	if got, limit := b.Changed(), 1+slotsWholeAfter*11+12; got > limit {
		t.Fatalf("Changed after a burst: %d ops, want at most %d", got, limit)
	}
	sec, err = b.AppendChanges(nil, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	if bytesContain(sec, "burst-50") || !bytesContain(sec, "burst-99") {
		t.Fatal("a burst's increment holds more than the logged ops and the key whole")
	}
}

func bytesContain(b []byte, s string) bool {
	for i := 0; i+len(s) <= len(b); i++ {
		if string(b[i:i+len(s)]) == s {
			return true
		}
	}
	return false
}

// TestSlotsRejectCorruption: a truncated or altered increment of slots
// state fails with ErrCorruptSnapshot (the restore then falls back to an
// earlier chain), and so does a slot outside the range.
func TestSlotsRejectCorruption(t *testing.T) {
	b, c := trackedKeyed(1, KeyGroupRange{End: 1})
	s, err := NewSlots[string, string, string](c, "s", 4)
	if err != nil {
		t.Fatal(err)
	}
	c.SetCurrentKey("a", 0)
	s.Set(1, "x")
	if _, err := b.AppendChanges(nil, 0, true); err != nil {
		t.Fatal(err)
	}
	b.ClearChanges()
	s.Set(2, "y")
	s.Delete(1)
	sec, err := b.AppendChanges(nil, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	apply := func(sec []byte) error {
		b2, _ := trackedKeyed(1, KeyGroupRange{End: 1})
		if _, err := NewSlots[string, string, string](NewKeyed[string](b2), "s", 4); err != nil {
			t.Fatal(err)
		}
		return b2.ApplyChanges(0, sec)
	}
	if err := apply(sec); err != nil {
		t.Fatalf("intact increment: %v", err)
	}
	for cut := 1; cut < len(sec); cut++ {
		if err := apply(sec[:cut]); err == nil {
			t.Fatalf("increment cut at %d of %d applied", cut, len(sec))
		}
	}
	// The slot of the put of "y" (a one-byte uvarint, after op 0 and
	// its length 1): 65 is out of range (64 is the head's).
	bad := append([]byte(nil), sec...)
	at := -1
	for i := 0; i+2 < len(bad); i++ {
		if bad[i] == opPut && bad[i+1] == 1 && bad[i+2] == 2 {
			at = i + 2
		}
	}
	if at < 0 {
		t.Fatal("slot 2's put not found")
	}
	bad[at] = MaxSlots + 1
	if err := apply(bad); !errors.Is(err, ErrCorruptSnapshot) {
		t.Fatalf("slot %d: %v, want ErrCorruptSnapshot", MaxSlots+1, err)
	}
}
