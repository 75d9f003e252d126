package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"
)

// idModel is the oracle of the ID set tests: per key, set and id, the
// tag mask.
type idModel map[string]map[[2]int64]uint8

func (m idModel) clone() idModel {
	o := idModel{}
	for k, v := range m {
		o[k] = maps.Clone(v)
	}
	return o
}

// idOp draws an id: mostly from a dense band that moves (chunks that
// turn dense), sometimes anywhere (sparse chunks, negative ids).
func idOp(rng *rand.Rand, step int) int64 {
	switch rng.IntN(10) {
	case 0:
		return rng.Int64() - 1<<62
	case 1, 2:
		return rng.Int64N(1 << 20)
	}
	return int64(step*7) + rng.Int64N(3000)
}

// checkIDSets compares every key's sets in s (over backend b) with want.
func checkIDSets(t *testing.T, c *Keyed[string], s *IDSet[string], want idModel, keys []string, probes map[string][][2]int64, what string) {
	t.Helper()
	h := Hasher[string]()
	for _, k := range keys {
		kg := KeyGroup(h(k), c.Backend().MaxParallelism())
		if !c.Backend().KeyGroups().Contains(kg) {
			continue
		}
		c.SetCurrentKey(k, kg)
		for _, p := range probes[k] {
			if got := s.Tags(int(p[0]), p[1]); got != want[k][p] {
				t.Fatalf("%s: key %s set %d id %d: tags %08b, want %08b", what, k, p[0], p[1], got, want[k][p])
			}
		}
	}
}

// TestIDSetAgainstOracle: adds to ID sets in memory (change tracking
// on, incremental and full snapshots, merged chains) give the oracle's
// tags, and every restore (from the chain, the merged chain and a full
// snapshot) gives the oracle's tags at the time of the snapshot.
func TestIDSetAgainstOracle(t *testing.T) {
	forSeeds(t, 6, idSetRun)
}

func idSetRun(t *testing.T, seed uint64) {
	const maxPar = 4
	rng := rand.New(rand.NewPCG(seed, 17))
	r := RangeFor(maxPar, 1, 0)
	b, c := trackedKeyed(maxPar, r)
	s, err := NewIDSet[string](c, "ids")
	if err != nil {
		t.Fatal(err)
	}
	h := Hasher[string]()
	keys := make([]string, 1+rng.IntN(6))
	for i := range keys {
		keys[i] = fmt.Sprint("k", i)
	}
	model := idModel{}
	probes := map[string][][2]int64{}
	chains := map[int][][]byte{}
	// Per key a cursor (AddAt), as a key's value state would keep it;
	// half the adds go through it.
	cursors := map[string]*IDCursor{}
	for _, k := range keys {
		cursors[k] = &IDCursor{}
	}
	checkpoints := 0
	for step := range 6000 {
		k := keys[rng.IntN(len(keys))]
		kg := KeyGroup(h(k), maxPar)
		c.SetCurrentKey(k, kg)
		if rng.IntN(2000) == 0 {
			s.Clear()
			delete(model, k)
			continue
		}
		if rng.IntN(500) == 0 {
			// The live tables restored from their own snapshot, between
			// checkpoints: the chunks are new objects, the cursors' old
			// ones must not be used.
			for kg := r.Start; kg < r.End; kg++ {
				snap, err := b.AppendKeyGroup(nil, kg)
				if err != nil {
					t.Fatal(err)
				}
				if err := b.RestoreKeyGroup(kg, snap); err != nil {
					t.Fatal(err)
				}
			}
			c.SetCurrentKey(k, kg)
		}
		set := rng.IntN(3)
		id := idOp(rng, step)
		mask := uint8(1) << rng.IntN(4)
		if rng.IntN(20) == 0 {
			mask = uint8(rng.IntN(256))
		}
		p := [2]int64{int64(set), id}
		var before uint8
		if rng.IntN(2) == 0 {
			before = s.AddAt(cursors[k], set, id, mask)
		} else {
			before = s.Add(set, id, mask)
		}
		if want := model[k][p]; before != want {
			t.Fatalf("step %d: Add(%d, %d, %08b) = %08b, want %08b", step, set, id, mask, before, want)
		}
		if mask != 0 {
			if model[k] == nil {
				model[k] = map[[2]int64]uint8{}
			}
			model[k][p] |= mask
		}
		probes[k] = append(probes[k], p, [2]int64{int64(set), id + 1})
		if rng.IntN(300) != 0 {
			continue
		}
		checkpoints++
		checkIDSets(t, c, s, model, keys, probes, "live")
		full := rng.IntN(4) == 0
		for kg := r.Start; kg < r.End; kg++ {
			snap, err := b.AppendKeyGroup(nil, kg)
			if err != nil {
				t.Fatal(err)
			}
			sec, err := b.AppendChanges(nil, kg, full)
			if err != nil {
				t.Fatal(err)
			}
			if full {
				chains[kg] = nil
			}
			if len(sec) > 0 || full {
				chains[kg] = append(chains[kg], sec)
			}
			merged, err := MergeChanges(nil, chains[kg]...)
			if err != nil {
				t.Fatal(err)
			}
			for i, restore := range []func(*Memory) error{
				func(m *Memory) error {
					for _, sec := range chains[kg] {
						if err := m.ApplyChanges(kg, sec); err != nil {
							return err
						}
					}
					return nil
				},
				func(m *Memory) error { return m.ApplyChanges(kg, merged) },
				func(m *Memory) error { return m.RestoreKeyGroup(kg, snap) },
			} {
				m := NewMemory(maxPar, r)
				var mc *Keyed[string]
				var ms *IDSet[string]
				open := func() {
					mc = NewKeyed[string](m)
					if ms, err = NewIDSet[string](mc, "ids"); err != nil {
						t.Fatal(err)
					}
				}
				if i == 0 {
					open() // opened before the restore; the others after
				}
				if err := restore(m); err != nil {
					t.Fatal(err)
				}
				if ms == nil {
					open()
				}
				want := model.clone()
				for mk := range want {
					if KeyGroup(h(mk), maxPar) != kg {
						delete(want, mk)
					}
				}
				var kgKeys []string
				for _, k := range keys {
					if KeyGroup(h(k), maxPar) == kg {
						kgKeys = append(kgKeys, k)
					}
				}
				checkIDSets(t, mc, ms, want, kgKeys, probes, fmt.Sprintf("step %d key group %d restore %d", step, kg, i))
			}
			if rng.IntN(3) == 0 {
				chains[kg] = [][]byte{merged}
			}
		}
		b.ClearChanges()
	}
	if checkpoints == 0 {
		t.Fatal("no checkpoint taken")
	}
}

// TestIDChunkEncoding: chunks round-trip through their encoding, sparse
// and dense, and truncated or malformed encodings are errors.
func TestIDChunkEncoding(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 7, 300, idSparseMax, idSparseMax + 1, 5000} {
		var c idChunk
		want := map[uint16]uint8{}
		for range n {
			off := uint16(rng.IntN(idChunkSize))
			m := uint8(1) << rng.IntN(8)
			c.add(off, m)
			want[off] |= m
		}
		if (c.dense != nil) != (len(want) > idSparseMax) {
			t.Fatalf("%d ids: dense %v", len(want), c.dense != nil)
		}
		enc := appendIDChunk([]byte{9}, &c)[1:]
		if c.dense == nil {
			// The sparse form, as the format describes it.
			ref := binary.AppendUvarint([]byte{0}, uint64(len(c.ids)))
			prev := uint32(0)
			for _, x := range c.ids {
				ref = append(binary.AppendUvarint(ref, uint64(x>>8-prev)), uint8(x))
				prev = x >> 8
			}
			if !bytes.Equal(enc, ref) {
				t.Fatalf("%d ids: sparse encoding\n%x\nwant\n%x", n, enc, ref)
			}
		}
		d, used, err := decodeIDChunk(enc)
		if err != nil || used != len(enc) {
			t.Fatalf("%d ids: decode: %v (%d of %d bytes)", n, err, used, len(enc))
		}
		for off := range idChunkSize {
			if got := d.get(uint16(off)); got != want[uint16(off)] {
				t.Fatalf("%d ids: offset %d: %08b after decoding, want %08b", n, off, got, want[uint16(off)])
			}
		}
		for cut := range len(enc) {
			if _, _, err := decodeIDChunk(enc[:cut]); err == nil {
				t.Fatalf("%d ids: %d of %d bytes decode", n, cut, len(enc))
			}
		}
	}
	for _, bad := range [][]byte{{2}, {0, 2, 5, 1, 0, 1}, {0, 1, 0xff, 0xff, 0x7f, 1}} {
		if _, _, err := decodeIDChunk(bad); !errors.Is(err, ErrCorruptSnapshot) {
			t.Fatalf("decode %x: %v, want ErrCorruptSnapshot", bad, err)
		}
	}
}

// go test -run '^$' -bench 'DistinctAdd' ./state/
//
// BenchmarkDistinctAdd is a distinct set's insert on the memory backend
// with change tracking: 4 busy keys and 1,000 others (as q16's hot and
// other channels), ids drawn near a moving frontier, as an ID set
// (chunks) and as map state with one entry per id (the layout q15/q16
// had before).
func BenchmarkDistinctAdd(b *testing.B) {
	keys := make([]string, 1004)
	for i := range keys {
		keys[i] = fmt.Sprint("channel-", i)
	}
	h := Hasher[string]()
	kgs := make([]int, len(keys))
	for i, k := range keys {
		kgs[i] = KeyGroup(h(k), 128)
	}
	for _, layout := range []string{"idset", "map"} {
		b.Run(layout, func(b *testing.B) {
			be := NewMemory(128, KeyGroupRange{End: 128})
			be.EnableChangeTracking()
			c := NewKeyed[string](be)
			s, err := NewIDSet[string](c, "s")
			if err != nil {
				b.Fatal(err)
			}
			m, err := NewMap[string, int64, uint8](c, "m")
			if err != nil {
				b.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				ki := rng.IntN(len(keys))
				if i%2 == 0 {
					ki = rng.IntN(4)
				}
				c.SetCurrentKey(keys[ki], kgs[ki])
				id := int64(i/50) + rng.Int64N(1000)
				bit := uint8(1) << rng.IntN(3)
				if layout == "idset" {
					s.Add(0, id, bit)
				} else if v, _ := m.Get(id); v&bit == 0 {
					m.Put(id, v|bit)
				}
				if i%(1<<20) == 1<<20-1 {
					be.ClearChanges()
				}
			}
		})
	}
}
