package state

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/sluicehq/sluice/state/codec"
)

// canonicalSection lists the content of a full change section (every body
// reset), one line per value-table entry or map entry, sorted, so that two
// sections holding the same state compare equal whatever their order.
func canonicalSection(t *testing.T, sec []byte) []string {
	t.Helper()
	var out []string
	err := walkChanges(sec, func(name string, body []byte) error {
		reset := false
		return walkBody(body, true, func() { reset = true }, func(e changeEntry) error {
			if !reset {
				return fmt.Errorf("table %q: body without reset", name)
			}
			switch e.op {
			case opPut:
				out = append(out, fmt.Sprintf("%q %x = %x", name, e.key, e.value))
			case opDelete:
				return fmt.Errorf("table %q: deletion in a full section", name)
			case opEntries:
				return walkGroup(e.value, func(del bool, uk, v []byte) error {
					if del {
						return fmt.Errorf("table %q: entry deletion in a full section", name)
					}
					out = append(out, fmt.Sprintf("%q %x [%x] = %x", name, e.key, uk, v))
					return nil
				})
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	for i := 1; i < len(out); i++ {
		if out[i] == out[i-1] {
			t.Fatalf("entry twice in a full section: %s", out[i])
		}
	}
	return out
}

// mapModel is the oracle of TestMapEntryChanges: the maps by key and the
// values by key.
type mapModel struct {
	maps map[string]map[int64]string
	vals map[string]int64
}

func (m mapModel) clone() mapModel {
	c := mapModel{maps: map[string]map[int64]string{}, vals: maps.Clone(m.vals)}
	for k, v := range m.maps {
		c.maps[k] = maps.Clone(v)
	}
	return c
}

func (m mapModel) equal(o mapModel) error {
	if !maps.Equal(m.vals, o.vals) {
		return fmt.Errorf("values %v, want %v", m.vals, o.vals)
	}
	if len(m.maps) != len(o.maps) {
		return fmt.Errorf("%d maps %v, want %d %v", len(m.maps), m.maps, len(o.maps), o.maps)
	}
	for k, v := range o.maps {
		if !maps.Equal(m.maps[k], v) {
			return fmt.Errorf("map %s = %v, want %v", k, m.maps[k], v)
		}
	}
	return nil
}

// readMapModel reads a backend through the state handles (opened before
// or after the restore, so both the applied and the stashed paths run).
func readMapModel(t *testing.T, b *Memory) mapModel {
	t.Helper()
	c := NewKeyed[string](b)
	m, err := NewMap[string, int64, string](c, "m")
	if err != nil {
		t.Fatal(err)
	}
	if m.mem == nil {
		t.Fatal("map state in memory is not a table with entry tracking")
	}
	vt, err := OpenTable[string, int64](b, "v")
	if err != nil {
		t.Fatal(err)
	}
	out := mapModel{maps: map[string]map[int64]string{}, vals: map[string]int64{}}
	n := 0
	for kg := b.KeyGroups().Start; kg < b.KeyGroups().End; kg++ {
		m.mem.Range(kg, func(k string, _ map[int64]string) bool {
			c.SetCurrentKey(k, kg)
			mm := map[int64]string{}
			for uk, v := range m.All() {
				mm[uk] = v
			}
			if len(mm) == 0 || m.Len() != len(mm) {
				t.Fatalf("key %s: %d entries, Len %d", k, len(mm), m.Len())
			}
			n += len(mm)
			out.maps[k] = mm
			return true
		})
		vt.Range(kg, func(k string, v int64) bool { out.vals[k] = v; return true })
	}
	if m.mem.Len() != n {
		t.Fatalf("table Len %d, %d entries", m.mem.Len(), n)
	}
	return out
}

// TestMapEntryChanges drives map state (and a value table beside it) with
// random entry puts and deletions, whole-key replacements and removals
// and key group clears, with change tracking on; at random checkpoints
// every key group writes a full section or an increment, and chains are
// sometimes folded with MergeChanges. At every checkpoint the chain
// merged must hold exactly what a full section of the same state holds,
// and restores from the chain (applied in order) and from a full
// snapshot (AppendKeyGroup) must both equal the oracle.
func TestMapEntryChanges(t *testing.T) {
	forSeeds(t, 60, mapEntryRun)
}

func mapEntryRun(t *testing.T, seed uint64) {
	const maxPar = 8
	rng := rand.New(rand.NewPCG(seed, 11))
	r := RangeFor(maxPar, 1, 0)
	b, c := trackedKeyed(maxPar, r)
	m, err := NewMap[string, int64, string](c, "m")
	if err != nil {
		t.Fatal(err)
	}
	mt, err := OpenTable[string, map[int64]string](b, "m")
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewValue[string, int64](c, "v")
	if err != nil {
		t.Fatal(err)
	}
	h := Hasher[string]()
	model := mapModel{maps: map[string]map[int64]string{}, vals: map[string]int64{}}
	chains := map[int][][]byte{}
	nkeys := 2 + rng.IntN(20)
	nuks := int64(2 + rng.IntN(30))
	checkpoints := 0
	for step := range 1500 {
		k := fmt.Sprintf("k%d", rng.IntN(nkeys))
		kg := KeyGroup(h(k), maxPar)
		c.SetCurrentKey(k, kg)
		val := fmt.Sprint(step)
		switch op := rng.IntN(100); {
		case op < 55:
			uk := rng.Int64N(nuks)
			m.Put(uk, val)
			if model.maps[k] == nil {
				model.maps[k] = map[int64]string{}
			}
			model.maps[k][uk] = val
			if got, ok := m.Get(uk); !ok || got != val {
				t.Fatalf("Get(%d) = %q %v after Put %q", uk, got, ok, val)
			}
		case op < 80:
			uk := rng.Int64N(nuks)
			m.Delete(uk)
			if mm := model.maps[k]; mm != nil {
				delete(mm, uk)
				if len(mm) == 0 {
					delete(model.maps, k)
				}
			}
		case op < 84:
			m.Clear()
			delete(model.maps, k)
		case op < 88:
			// A whole map replaced through the table.
			mm := map[int64]string{}
			for range rng.IntN(4) {
				mm[rng.Int64N(nuks)] = val
			}
			mt.Put(kg, k, mm)
			if len(mm) == 0 {
				delete(model.maps, k)
			} else {
				model.maps[k] = maps.Clone(mm)
			}
		case op < 89:
			mt.ClearKeyGroup(kg)
			for mk := range model.maps {
				if KeyGroup(h(mk), maxPar) == kg {
					delete(model.maps, mk)
				}
			}
		case op < 97:
			x := rng.Int64N(100)
			v.Set(x)
			model.vals[k] = x
		default:
			v.Clear()
			delete(model.vals, k)
		}
		if rng.IntN(40) != 0 {
			continue
		}
		checkpoints++
		full := rng.IntN(5) == 0
		for kg := r.Start; kg < r.End; kg++ {
			fullSec, err := b.AppendChanges(nil, kg, true)
			if err != nil {
				t.Fatal(err)
			}
			snap, err := b.AppendKeyGroup(nil, kg)
			if err != nil {
				t.Fatal(err)
			}
			sec := fullSec
			if !full {
				if sec, err = b.AppendChanges(nil, kg, false); err != nil {
					t.Fatal(err)
				}
			} else {
				chains[kg] = nil
			}
			if len(sec) > 0 || full {
				chains[kg] = append(chains[kg], sec)
			}
			merged, err := MergeChanges(nil, chains[kg]...)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := canonicalSection(t, merged), canonicalSection(t, fullSec); !slices.Equal(got, want) {
				t.Fatalf("step %d key group %d: merged chain of %d sections\n%v\nfull section\n%v", step, kg, len(chains[kg]), got, want)
			}
			if rng.IntN(4) == 0 {
				chains[kg] = [][]byte{merged}
			}
			// Restores: from the chain and from the full snapshot, with the
			// tables opened before or after.
			want := model.clone()
			for mk := range want.maps {
				if KeyGroup(h(mk), maxPar) != kg {
					delete(want.maps, mk)
				}
			}
			for vk := range want.vals {
				if KeyGroup(h(vk), maxPar) != kg {
					delete(want.vals, vk)
				}
			}
			bc, bf := NewMemory(maxPar, r), NewMemory(maxPar, r)
			if rng.IntN(2) == 0 {
				readMapModel(t, bc)
			}
			for _, s := range chains[kg] {
				if err := bc.ApplyChanges(kg, s); err != nil {
					t.Fatal(err)
				}
			}
			if err := bf.RestoreKeyGroup(kg, snap); err != nil {
				t.Fatal(err)
			}
			if err := readMapModel(t, bc).equal(want); err != nil {
				t.Fatalf("step %d key group %d, restore from a chain of %d: %v", step, kg, len(chains[kg]), err)
			}
			if err := readMapModel(t, bf).equal(want); err != nil {
				t.Fatalf("step %d key group %d, restore from a full snapshot: %v", step, kg, err)
			}
		}
		b.ClearChanges()
		if b.Changed() != 0 {
			t.Fatalf("%d changes after ClearChanges", b.Changed())
		}
	}
	if checkpoints == 0 {
		t.Fatal("no checkpoint taken")
	}
}

// TestMapEntryChangesIncrementIsSmall: after a checkpoint, one entry put
// into a large map costs an increment of that entry, not the map.
func TestMapEntryChangesIncrementIsSmall(t *testing.T) {
	b := NewMemory(1, RangeFor(1, 1, 0))
	b.EnableChangeTracking()
	c := NewKeyed[string](b)
	m, _ := NewMap[string, int64, string](c, "m")
	c.SetCurrentKey("k", 0)
	for i := range int64(1000) {
		m.Put(i, "some value")
	}
	full, _ := b.AppendChanges(nil, 0, true)
	b.ClearChanges()
	m.Put(5000, "x")
	m.Delete(7)
	if b.Changed() != 2 || b.Len() != 1000 {
		t.Fatalf("Changed %d Len %d, want 2 and 1000", b.Changed(), b.Len())
	}
	inc, _ := b.AppendChanges(nil, 0, false)
	if len(inc) > 40 || len(full) < 10000 {
		t.Fatalf("increment of 2 entries is %d bytes (full %d)", len(inc), len(full))
	}
	// The large group (a length of several bytes) restores.
	r := NewMemory(1, RangeFor(1, 1, 0))
	for _, s := range [][]byte{full, inc} {
		if err := r.ApplyChanges(0, s); err != nil {
			t.Fatal(err)
		}
	}
	got := readMapModel(t, r)
	if len(got.maps["k"]) != 1000 || got.maps["k"][5000] != "x" || got.maps["k"][999] != "some value" {
		t.Fatalf("restored %d entries", len(got.maps["k"]))
	}
	if _, ok := got.maps["k"][7]; ok {
		t.Fatal("deleted entry restored")
	}
}

// TestMapEntryChangesRejectCorruption: damaged increments of map state
// are ErrCorruptSnapshot when applied or merged, never a panic or a
// silently different state: cut anywhere, an unknown op or flag, an entry
// group in a body that does not announce entries.
func TestMapEntryChangesRejectCorruption(t *testing.T) {
	b := NewMemory(1, RangeFor(1, 1, 0))
	b.EnableChangeTracking()
	c := NewKeyed[string](b)
	m, _ := NewMap[string, int64, string](c, "m")
	for i := range int64(6) {
		c.SetCurrentKey(fmt.Sprint("k", i%2), 0)
		m.Put(i, fmt.Sprint("v", i))
	}
	base, _ := b.AppendChanges(nil, 0, true)
	b.ClearChanges()
	c.SetCurrentKey("k0", 0)
	m.Put(100, "new")
	m.Delete(2)
	inc, _ := b.AppendChanges(nil, 0, false)
	if !bytes.Contains(inc, []byte{opEntries}) {
		t.Fatal("increment holds no entry group")
	}
	check := func(what string, sec []byte) {
		t.Helper()
		r := NewMemory(1, RangeFor(1, 1, 0))
		if _, err := NewMap[string, int64, string](NewKeyed[string](r), "m"); err != nil {
			t.Fatal(err)
		}
		if err := r.ApplyChanges(0, base); err != nil {
			t.Fatal(err)
		}
		if err := r.ApplyChanges(0, sec); !errors.Is(err, ErrCorruptSnapshot) {
			t.Fatalf("%s: applied with error %v", what, err)
		}
		if _, err := MergeChanges(nil, base, sec); !errors.Is(err, ErrCorruptSnapshot) {
			t.Fatalf("%s: merged with error %v", what, err)
		}
	}
	for cut := 1; cut < len(inc); cut++ {
		check(fmt.Sprintf("cut at %d of %d", cut, len(inc)), inc[:cut])
	}
	// The section: name "m" (2 bytes), the body's length, then the body:
	// flags, count (one byte here), the first op.
	body, n, err := splitBytes(inc[2:])
	if err != nil || n != len(inc)-2 {
		t.Fatalf("section layout: %v", err)
	}
	bodyAt := 2 + n - len(body)
	if inc[bodyAt]&changeEntries == 0 {
		t.Fatalf("flags %#x without changeEntries", inc[bodyAt])
	}
	for _, c := range []struct {
		what string
		at   int
		b    byte
	}{
		{"unknown flag", bodyAt, inc[bodyAt] | 4},
		{"entries flag cleared", bodyAt, inc[bodyAt] &^ changeEntries},
		{"unknown op", bodyAt + 2, 3},
	} {
		bad := bytes.Clone(inc)
		bad[c.at] = c.b
		check(c.what, bad)
	}
	// A value table's body with an entry group is corruption too.
	v := NewMemory(1, RangeFor(1, 1, 0))
	if _, err := OpenTable[string, int64](v, "m"); err != nil {
		t.Fatal(err)
	}
	if err := v.ApplyChanges(0, inc); !errors.Is(err, ErrCorruptSnapshot) {
		t.Fatalf("entry group applied to a value table: %v", err)
	}
}

// TestMapRestoresOldWholeSections: change sections written before map
// state tracked entries (a key's whole map as one put) still restore, and
// merge with each other.
func TestMapRestoresOldWholeSections(t *testing.T) {
	// A plain table of maps writes what map state used to write.
	old := NewMemory(1, RangeFor(1, 1, 0))
	old.EnableChangeTracking()
	ot, err := OpenTable[string, map[int64]string](old, "m")
	if err != nil {
		t.Fatal(err)
	}
	ot.Put(0, "a", map[int64]string{1: "x", 2: "y"})
	ot.Put(0, "b", map[int64]string{3: "z"})
	base, _ := old.AppendChanges(nil, 0, true)
	old.ClearChanges()
	ot.Put(0, "a", map[int64]string{1: "x2"})
	ot.Delete(0, "b")
	inc, _ := old.AppendChanges(nil, 0, false)
	merged, err := MergeChanges(nil, base, inc)
	if err != nil {
		t.Fatal(err)
	}
	want := mapModel{maps: map[string]map[int64]string{"a": {1: "x2"}}, vals: map[string]int64{}}
	for _, chain := range [][][]byte{{base, inc}, {merged}} {
		r := NewMemory(1, RangeFor(1, 1, 0))
		for _, s := range chain {
			if err := r.ApplyChanges(0, s); err != nil {
				t.Fatal(err)
			}
		}
		if err := readMapModel(t, r).equal(want); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMapWholePutOfSameMapKeepsLen: a map read through OpenTable, changed
// in place and Put back keeps the table's entry count exact.
func TestMapWholePutOfSameMapKeepsLen(t *testing.T) {
	b := NewMemory(1, RangeFor(1, 1, 0))
	b.EnableChangeTracking()
	c := NewKeyed[string](b)
	m, _ := NewMap[string, int64, string](c, "m")
	c.SetCurrentKey("k", 0)
	m.Put(1, "a")
	m.Put(2, "b")
	tt, err := OpenTable[string, map[int64]string](b, "m")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := tt.Get(0, "k")
	got[3] = "c"
	got[4] = "d"
	tt.Put(0, "k", got)
	if b.Len() != 4 {
		t.Fatalf("Len %d after a Put of the same map with 4 entries, want 4", b.Len())
	}
}

// TestMapMostlyChangedKeyIsWhole: a key most of whose entries change
// between two snapshots is recorded whole (its deletion, then every
// entry), not entry by entry, and restores the same; a key with a few
// changed entries among many stays an increment of those entries; a key
// made since the last snapshot is its entries (no deletion).
func TestMapMostlyChangedKeyIsWhole(t *testing.T) {
	b := NewMemory(1, RangeFor(1, 1, 0))
	b.EnableChangeTracking()
	c := NewKeyed[string](b)
	m, _ := NewMap[string, int64, string](c, "m")
	for _, k := range []string{"most", "few"} {
		c.SetCurrentKey(k, 0)
		for i := range int64(100) {
			m.Put(i, "old")
		}
	}
	full, _ := b.AppendChanges(nil, 0, true)
	b.ClearChanges()
	c.SetCurrentKey("most", 0)
	for i := range int64(80) {
		m.Put(i, "new")
	}
	m.Delete(99)
	c.SetCurrentKey("few", 0)
	for i := range int64(20) {
		m.Put(i, "new")
	}
	c.SetCurrentKey("new", 0)
	for i := range int64(30) {
		m.Put(i, "new")
	}
	m.Delete(3)
	// "most": its deletion and its 99 entries; "few": 20 entries; "new":
	// 29 entries.
	if got := b.Changed(); got != 1+99+20+29 {
		t.Fatalf("Changed %d, want %d", got, 1+99+20+29)
	}
	inc, err := b.AppendChanges(nil, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string][]byte{}
	groups := map[string][]byte{}
	err = walkChanges(inc, func(name string, body []byte) error {
		return walkBody(body, true, func() { t.Fatal("increment resets") }, func(e changeEntry) error {
			ops[string(e.key)] = append(ops[string(e.key)], e.op)
			if e.op == opEntries {
				groups[string(e.key)] = e.value
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	kc := func(s string) string { return string(codec.AppendString(nil, s)) }
	if got := ops[kc("most")]; !bytes.Equal(got, []byte{opDelete, opEntries}) {
		t.Fatalf("ops of the mostly changed key %v, want a deletion and its entries", got)
	}
	for _, k := range []string{"few", "new"} {
		if got := ops[kc(k)]; !bytes.Equal(got, []byte{opEntries}) {
			t.Fatalf("ops of key %q %v, want its entries", k, got)
		}
	}
	// The new key's group is its 29 entries, not a deletion of one.
	puts := 0
	if err := walkGroup(groups[kc("new")], func(del bool, _, _ []byte) error {
		if del {
			return errors.New("an entry deletion in the group of a new key")
		}
		puts++
		return nil
	}); err != nil || puts != 29 {
		t.Fatalf("group of the new key: %d puts, %v", puts, err)
	}
	r := NewMemory(1, RangeFor(1, 1, 0))
	for _, s := range [][]byte{full, inc} {
		if err := r.ApplyChanges(0, s); err != nil {
			t.Fatal(err)
		}
	}
	got := readMapModel(t, r)
	if len(got.maps["most"]) != 99 || got.maps["most"][0] != "new" || got.maps["most"][85] != "old" ||
		len(got.maps["few"]) != 100 || got.maps["few"][5] != "new" || got.maps["few"][50] != "old" ||
		len(got.maps["new"]) != 29 || got.maps["new"][3] != "" {
		t.Fatalf("restored %d and %d entries", len(got.maps["most"]), len(got.maps["few"]))
	}
}
