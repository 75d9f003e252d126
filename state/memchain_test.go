package state

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestSnapshotAtBarrierSurvivesLaterWrites: the sections taken at a
// checkpoint (a base, then increments) restore exactly the state at that
// checkpoint even though the tables keep changing afterwards (the
// sections must not alias live state: values, dirty sets, map entries).
// At the end of a random run, for every checkpoint i, the chain of
// sections up to i applied in order, and that chain folded by
// MergeChanges, both restore the oracle's copy taken at checkpoint i.
func TestSnapshotAtBarrierSurvivesLaterWrites(t *testing.T) {
	forSeeds(t, 40, barrierRun)
}

func barrierRun(t *testing.T, seed uint64) {
	const maxPar = 4
	rng := rand.New(rand.NewPCG(seed, 29))
	r := RangeFor(maxPar, 1, 0)
	b, c := trackedKeyed(maxPar, r)
	m, err := NewMap[string, int64, string](c, "m")
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewValue[string, int64](c, "v")
	if err != nil {
		t.Fatal(err)
	}
	h := Hasher[string]()
	model := mapModel{maps: map[string]map[int64]string{}, vals: map[string]int64{}}
	type checkpoint struct {
		chains map[int][][]byte // per key group: the chain up to here
		want   mapModel
	}
	var taken []checkpoint
	chains := map[int][][]byte{}
	nkeys := 2 + rng.IntN(15)
	for step := range 1200 {
		k := fmt.Sprintf("k%d", rng.IntN(nkeys))
		c.SetCurrentKey(k, KeyGroup(h(k), maxPar))
		val := fmt.Sprint("s", step)
		switch op := rng.IntN(100); {
		case op < 50:
			uk := rng.Int64N(12)
			m.Put(uk, val)
			if model.maps[k] == nil {
				model.maps[k] = map[int64]string{}
			}
			model.maps[k][uk] = val
		case op < 70:
			uk := rng.Int64N(12)
			m.Delete(uk)
			if mm := model.maps[k]; mm != nil {
				delete(mm, uk)
				if len(mm) == 0 {
					delete(model.maps, k)
				}
			}
		case op < 73:
			m.Clear()
			delete(model.maps, k)
		case op < 95:
			x := rng.Int64N(1000)
			v.Set(x)
			model.vals[k] = x
		default:
			v.Clear()
			delete(model.vals, k)
		}
		if rng.IntN(30) != 0 {
			continue
		}
		full := len(taken) == 0 || rng.IntN(6) == 0
		cp := checkpoint{chains: map[int][][]byte{}, want: model.clone()}
		for kg := r.Start; kg < r.End; kg++ {
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
			cp.chains[kg] = append([][]byte(nil), chains[kg]...)
		}
		b.ClearChanges()
		taken = append(taken, cp)
	}
	if len(taken) < 2 {
		t.Skip("fewer than two checkpoints")
	}
	for i, cp := range taken {
		chain, merged := NewMemory(maxPar, r), NewMemory(maxPar, r)
		for kg, secs := range cp.chains {
			for _, s := range secs {
				if err := chain.ApplyChanges(kg, s); err != nil {
					t.Fatal(err)
				}
			}
			mg, err := MergeChanges(nil, secs...)
			if err != nil {
				t.Fatal(err)
			}
			if err := merged.ApplyChanges(kg, mg); err != nil {
				t.Fatal(err)
			}
		}
		if err := readMapModel(t, chain).equal(cp.want); err != nil {
			t.Fatalf("checkpoint %d of %d, chain restore: %v", i, len(taken), err)
		}
		if err := readMapModel(t, merged).equal(cp.want); err != nil {
			t.Fatalf("checkpoint %d of %d, merged chain restore: %v", i, len(taken), err)
		}
	}
}
