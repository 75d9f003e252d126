package pebble

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/state"
)

// TestIDSetAgainstOracle: ID set state on Pebble (without a cache, with a
// small one that evicts, with the default) gives the oracle's tags, across
// checkpoints restored at other parallelisms; adds after a checkpoint are
// lost on restore.
func TestIDSetAgainstOracle(t *testing.T) {
	for _, hot := range []int64{-1, 16 << 10, 0} {
		for seed := range uint64(2) {
			t.Run(fmt.Sprint("hot", hot, "/seed", seed), func(t *testing.T) { testIDSetAgainstOracle(t, seed, hot) })
		}
	}
}

type idKey struct {
	k   string
	set int
	id  int64
}

func testIDSetAgainstOracle(t *testing.T, seed uint64, hot int64) {
	opts := func(dir string) Options {
		o := small(dir)
		o.HotCacheSize = hot
		return o
	}
	rng := rand.New(rand.NewPCG(seed, 9))
	root := t.TempDir()
	store, err := checkpoint.NewDir(filepath.Join(root, "chk"), checkpoint.WithRetain(10),
		checkpoint.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	model := map[idKey]uint8{}
	var probes []idKey
	type handles struct {
		kc *state.Keyed[string]
		s  *state.IDSet[string]
	}
	check := func(b *Backend, h handles, when string) {
		t.Helper()
		for _, p := range probes {
			if !b.KeyGroups().Contains(kgOf(p.k)) {
				continue
			}
			h.kc.SetCurrentKey(p.k, kgOf(p.k))
			if got := h.s.Tags(p.set, p.id); got != model[p] {
				t.Fatalf("%s: %+v: tags %08b, want %08b", when, p, got, model[p])
			}
		}
	}
	var c *checkpoint.Checkpoint
	var metas []string
	step := 0
	for phase, par := range []int{2, 1, 3} {
		backends := make([]*Backend, par)
		hs := make([]handles, par)
		for sub := range par {
			r := state.RangeFor(testMaxPar, par, sub)
			dir := filepath.Join(root, fmt.Sprintf("p%d-%d", phase, sub))
			var b *Backend
			if c == nil {
				b, err = Open(opts(dir), testMaxPar, r)
			} else {
				b, err = Restore(opts(dir), testMaxPar, r, c, metas)
			}
			if err != nil {
				t.Fatalf("phase %d subtask %d: %v", phase, sub, err)
			}
			kc := state.NewKeyed[string](b)
			s, err := state.NewIDSet[string](kc, "ids")
			if err != nil {
				t.Fatal(err)
			}
			backends[sub], hs[sub] = b, handles{kc, s}
			check(b, hs[sub], fmt.Sprintf("phase %d restored", phase))
		}
		for i := range 4000 {
			step++
			k := fmt.Sprintf("k%d", rng.IntN(12))
			sub := 0
			for !backends[sub].KeyGroups().Contains(kgOf(k)) {
				sub++
			}
			h := hs[sub]
			h.kc.SetCurrentKey(k, kgOf(k))
			if rng.IntN(1500) == 0 {
				h.s.Clear()
				for p := range model {
					if p.k == k {
						delete(model, p)
					}
				}
				continue
			}
			var id int64
			switch rng.IntN(10) {
			case 0:
				id = rng.Int64() - 1<<62
			case 1, 2:
				id = rng.Int64N(1 << 20)
			default:
				id = int64(step*5) + rng.Int64N(2000)
			}
			p := idKey{k, rng.IntN(2), id}
			mask := uint8(1) << rng.IntN(3)
			if got := h.s.Add(p.set, p.id, mask); got != model[p] {
				t.Fatalf("phase %d op %d: Add(%+v, %08b) = %08b, want %08b", phase, i, p, mask, got, model[p])
			}
			model[p] |= mask
			probes = append(probes, p, idKey{k, p.set, id + 1})
			if i%512 == 511 {
				if err := backends[sub].Flush(); err != nil {
					t.Fatal(err)
				}
			}
		}
		p, err := store.Begin(checkpoint.ID(phase + 1))
		if err != nil {
			t.Fatal(err)
		}
		m := &checkpoint.Manifest{ID: checkpoint.ID(phase + 1), Pipeline: checkpoint.Pipeline{MaxParallelism: testMaxPar}}
		metas = metas[:0]
		for sub, b := range backends {
			check(b, hs[sub], fmt.Sprintf("phase %d before checkpoint", phase))
			files, _, err := b.Checkpoint(p, fmt.Sprintf("op.%d", sub))
			if err != nil {
				t.Fatal(err)
			}
			metas = append(metas, files[0])
			m.Tasks = append(m.Tasks, checkpoint.TaskState{Task: checkpoint.TaskID{Operator: "op", Subtask: sub}, Files: files})
			// Adds after the checkpoint are lost on restore.
			if b.KeyGroups().Contains(kgOf("k1")) {
				hs[sub].kc.SetCurrentKey("k1", kgOf("k1"))
				hs[sub].s.Add(0, 1<<40, 1)
			}
			// Into Pebble (write-back of the cached chunk, then the batch),
			// so that a checkpoint sharing files with the live database
			// would show the add on restore.
			if err := b.writeBack(); err != nil {
				t.Fatal(err)
			}
			if err := b.Flush(); err != nil {
				t.Fatal(err)
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
	probes = append(probes, idKey{"k1", 0, 1 << 40})
	b, err := Restore(opts(filepath.Join(root, "last")), testMaxPar, state.RangeFor(testMaxPar, 1, 0), c, metas)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	kc := state.NewKeyed[string](b)
	s, err := state.NewIDSet[string](kc, "ids")
	if err != nil {
		t.Fatal(err)
	}
	check(b, handles{kc, s}, "last restore")
}
