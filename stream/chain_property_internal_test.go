package stream

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/objstore"
	"github.com/sluicehq/sluice/state"
)

// chainHarness drives one subtask's chainSnap against a checkpoint
// directory, as the checkpointing of a job does, without a job: the
// state is one table of a tracked memory backend.
type chainHarness struct {
	t      *testing.T
	dir    string
	store  *checkpoint.Dir
	chk    *chkRun
	c      *chainSnap
	mem    *state.Memory
	tab    state.TypedTable[string, int64]
	task   checkpoint.TaskID
	wg     sync.WaitGroup
	id     checkpoint.ID
	maxPar int
}

func newChainHarness(t *testing.T, retain int) *chainHarness {
	const maxPar = 8
	dir := t.TempDir()
	store, err := checkpoint.NewDir(dir, checkpoint.WithRetain(retain), checkpoint.WithLogger(quietLog()))
	if err != nil {
		t.Fatal(err)
	}
	mem := state.NewMemory(maxPar, state.RangeFor(maxPar, 1, 0))
	mem.EnableChangeTracking()
	tab, err := state.OpenTable[string, int64](mem, "t")
	if err != nil {
		t.Fatal(err)
	}
	chk := &chkRun{store: store, maxPar: maxPar, log: quietLog(), events: make(chan chkEvent, 16), stopped: make(chan struct{})}
	return &chainHarness{t: t, dir: dir, store: store, chk: chk, c: newChainSnap(), mem: mem, tab: tab,
		task: checkpoint.TaskID{Operator: "1", Subtask: 0}, maxPar: maxPar}
}

func (h *chainHarness) kg(k string) int { return state.KeyGroup(state.Hasher[string]()(k), h.maxPar) }

// snapshot takes checkpoint h.id+1 as an operator's barrier does. With
// abortFirst the checkpoint is aborted before the writer runs; otherwise
// it is committed when the writer acknowledges it. It reports whether
// the checkpoint completed.
func (h *chainHarness) snapshot(abortFirst, abortAfter, failWrite bool) bool {
	t := h.t
	h.id++
	id := h.id
	dp, err := h.store.Begin(id)
	if err != nil {
		t.Fatal(err)
	}
	var p checkpoint.Pending = dp
	if failWrite {
		p = failingShared{dp}
	}
	h.chk.mu.Lock()
	h.chk.pending, h.chk.pendID = p, id
	if abortFirst {
		h.chk.pending = nil
	}
	h.chk.mu.Unlock()
	full := h.c.needFull(h.mem.Changed(), h.mem.Len())
	groups := map[int][]byte{}
	a := h.c.takeArena()
	r := h.mem.KeyGroups()
	for kg := r.Start; kg < r.End; kg++ {
		at := a.begin(r.End - kg - 1)
		if a.buf, err = h.mem.AppendChanges(a.buf, kg, full); err != nil {
			t.Fatal(err)
		}
		if sec := a.end(at); sec != nil {
			groups[kg] = sec
		}
	}
	h.mem.ClearChanges()
	h.c.submit(h.chk, uint64(id), h.task, full, groups, a, &h.wg)
	if abortFirst {
		h.wg.Wait()
		_ = p.Abort()
		return false
	}
	ev := <-h.chk.events
	if ev.decline != nil || abortAfter {
		_ = p.Abort()
		return false
	}
	m := &checkpoint.Manifest{Version: checkpoint.FormatVersion, ID: id, Tasks: []checkpoint.TaskState{{Task: h.task, Files: ev.ack.Files}}}
	if err := p.Commit(m); err != nil {
		t.Fatal(err)
	}
	return true
}

// failingShared is a pending checkpoint whose shared files fail as they
// are written.
type failingShared struct{ checkpoint.Pending }

func (f failingShared) CreateShared(name string) (checkpoint.FileWriter, error) {
	w, err := f.Pending.(checkpoint.SharedCreator).CreateShared(name)
	if err != nil {
		return nil, err
	}
	return failingWriter{w}, nil
}

type failingWriter struct{ checkpoint.FileWriter }

func (failingWriter) Write([]byte) (int, error) { return 0, fmt.Errorf("injected: disk full") }

// restoreLatest reads the latest complete checkpoint's chain into a new
// memory backend and returns its table's entries.
func (h *chainHarness) restoreLatest() (checkpoint.ID, map[string]int64) {
	t := h.t
	c, err := h.store.Latest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mem := state.NewMemory(h.maxPar, h.mem.KeyGroups())
	rchk := &chkRun{restored: c}
	for _, path := range c.Manifest.TaskFiles(h.task.Operator) {
		err := readChainFile(rchk, path, mem.KeyGroups(), func(kg int, tables []byte) error { return mem.ApplyChanges(kg, tables) })
		if err != nil {
			t.Fatalf("restore of checkpoint %d: %v", c.Manifest.ID, err)
		}
	}
	tab, err := state.OpenTable[string, int64](mem, "t")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	r := mem.KeyGroups()
	for kg := r.Start; kg < r.End; kg++ {
		tab.Range(kg, func(k string, v int64) bool {
			got[k] = v
			return true
		})
	}
	return c.Manifest.ID, got
}

// TestChainCheckpointsRestoreOracle: random puts, deletions, re-puts and
// key-group clears with checkpoints between them, some aborted before
// their writer ran, some aborted after it, some whose file failed, chains compacted often and a retention of two: the
// latest complete checkpoint always restores the state at its barrier.
func TestChainCheckpointsRestoreOracle(t *testing.T) {
	defer func(n int) { maxChain = n }(maxChain)
	maxChain = 4
	for seed := range uint64(12) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 18))
			h := newChainHarness(t, 2)
			model := map[string]int64{}
			at := map[checkpoint.ID]map[string]int64{}
			nkeys := 5 + rng.IntN(40)
			for step := range 600 {
				k := fmt.Sprintf("k%d", rng.IntN(nkeys))
				switch x := rng.IntN(20); {
				case x < 12:
					v := int64(step)
					h.tab.Put(h.kg(k), k, v)
					model[k] = v
				case x < 19:
					h.tab.Delete(h.kg(k), k)
					delete(model, k)
				default:
					kg := h.kg(k)
					h.tab.ClearKeyGroup(kg)
					for mk := range model {
						if h.kg(mk) == kg {
							delete(model, mk)
						}
					}
				}
				if rng.IntN(15) != 0 {
					continue
				}
				if h.snapshot(rng.IntN(8) == 0, rng.IntN(8) == 0, rng.IntN(8) == 0) {
					at[h.id] = maps.Clone(model)
				}
				if len(at) == 0 {
					continue
				}
				id, got := h.restoreLatest()
				if want := at[id]; !maps.Equal(got, want) {
					t.Fatalf("step %d: checkpoint %d restores %v, want %v", step, id, got, want)
				}
			}
			if h.c.compacted == 0 {
				t.Fatal("no compaction")
			}
			h.wg.Wait()
		})
	}
}

// TestChainCompactionRefusesDamagedFile: a file of the chain damaged on
// disk in a way that still parses (a byte of a key changed) is not
// folded by a compaction into a new base, whose fresh checksum would
// hide the damage: the compaction fails, the checkpoint is declined, and
// the next one is a base from the live state.
func TestChainCompactionRefusesDamagedFile(t *testing.T) {
	defer func(n int) { maxChain = n }(maxChain)
	maxChain = 100
	h := newChainHarness(t, 3)
	model := map[string]int64{}
	put := func(k string, v int64) {
		h.tab.Put(h.kg(k), k, v)
		model[k] = v
	}
	for i := range 20 {
		put(fmt.Sprintf("k%02d", i), int64(i))
	}
	if !h.snapshot(false, false, false) {
		t.Fatal("base not written")
	}
	put("k03", 300)
	if !h.snapshot(false, false, false) || len(h.c.chain) != 2 {
		t.Fatalf("increment not written: chain %v", h.c.chain)
	}
	// Damage the increment: its key k03 becomes j03.
	p := filepath.Join(h.dir, filepath.FromSlash(h.c.chain[1].path))
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte("k03"))
	if i < 0 {
		t.Fatal("key not found in the increment")
	}
	b[i] = 'j'
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	// The next increment makes the writer compact the chain.
	maxChain = 3
	put("k05", 500)
	h.snapshot(false, false, false)
	put("k06", 600)
	h.snapshot(false, false, false)
	id, got := h.restoreLatest()
	if id != h.id {
		t.Fatalf("latest checkpoint %d, want %d", id, h.id)
	}
	if !maps.Equal(got, model) {
		t.Fatalf("checkpoint %d restores %v, want %v", id, got, model)
	}
}

// TestChainFailedWriteLeavesNoFile: a chain file whose writing fails part
// way (a section that cannot be produced, a write the disk refuses) is
// neither in the shared area under its name nor offered to later
// checkpoints, and the name can be written again.
func TestChainFailedWriteLeavesNoFile(t *testing.T) {
	for _, s := range []struct {
		name  string
		store func(t *testing.T) checkpoint.Store
	}{
		{"dir", func(t *testing.T) checkpoint.Store {
			d, err := checkpoint.NewDir(t.TempDir(), checkpoint.WithLogger(quietLog()))
			if err != nil {
				t.Fatal(err)
			}
			return d
		}},
		{"object", func(t *testing.T) checkpoint.Store {
			return checkpoint.NewObjectStorage(objstore.NewMem(), "mem://job", checkpoint.WithLocalDir(t.TempDir()), checkpoint.WithLogger(quietLog()))
		}},
	} {
		t.Run(s.name, func(t *testing.T) {
			store := s.store(t)
			p, err := store.Begin(1)
			if err != nil {
				t.Fatal(err)
			}
			sc := p.(checkpoint.SharedCreator)
			const name = "op-0.kbase"
			sections := func(kg int) ([]byte, error) {
				if kg == 3 {
					return nil, fmt.Errorf("injected: section of key group %d", kg)
				}
				return appendTestSection(kg), nil
			}
			if _, err := writeChainFile(sc, name, 8, []int{1, 2, 3, 4}, sections); err == nil {
				t.Fatal("a chain file whose section failed was written")
			}
			if _, err := writeChainFile(failingShared{p}, name, 8, []int{1, 2}, sections); err == nil {
				t.Fatal("a chain file whose writes failed was written")
			}
			if fi, ok := p.Shared(name); ok {
				t.Fatalf("the failed chain file is offered for reuse: %+v", fi)
			}
			if f, err := store.Open("shared/" + name); err == nil {
				f.Close()
				t.Fatalf("the failed chain file is in the shared area under its name (%d bytes)", f.Size())
			}
			f, err := writeChainFile(sc, name, 8, []int{1, 2}, sections)
			if err != nil {
				t.Fatalf("writing the name again after a failure: %v", err)
			}
			if err := p.Commit(&checkpoint.Manifest{ID: 1, Tasks: []checkpoint.TaskState{{Task: checkpoint.TaskID{Operator: "1"}, Files: []string{f.path}}}}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// appendTestSection is a chain section of key group kg: one table's
// bytes, then the reserved zero byte.
func appendTestSection(kg int) []byte {
	return []byte{1, byte(kg), 0}
}
