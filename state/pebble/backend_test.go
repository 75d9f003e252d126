package pebble

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/objstore"
	"github.com/sluicehq/sluice/state"
)

const testMaxPar = 16

// small is a configuration with far less memory than the test data: a
// 64 KiB memtable, a 64 KiB block cache and 64 KiB of hot entries.
func small(dir string) Options {
	return Options{Dir: dir, CacheSize: 64 << 10, MemTableSize: 64 << 10, HotCacheSize: 64 << 10}
}

type entry struct {
	Count int64
	Last  string
	Tags  []string
}

func key(i int) string { return fmt.Sprintf("user-%07d", i) }

var hash = state.Hasher[string]()

func kgOf(k string) int { return state.KeyGroup(hash(k), testMaxPar) }

// fill writes n keys to table name through the typed handles and returns
// the oracle.
func fill(t *testing.T, b state.Backend, n int, version int64) map[string]entry {
	t.Helper()
	kc := state.NewKeyed[string](b)
	v, err := state.NewValue[string, entry](kc, "counts")
	if err != nil {
		t.Fatal(err)
	}
	want := make(map[string]entry, n)
	for i := range n {
		k := key(i)
		kc.SetCurrentKey(k, kgOf(k))
		e := entry{Count: int64(i) * version, Last: k, Tags: []string{"a", k[:6]}}
		v.Set(e)
		want[k] = e
	}
	if f, ok := b.(state.Flusher); ok {
		if err := f.Flush(); err != nil { // as an operator at the end of a batch
			t.Fatal(err)
		}
	}
	return want
}

// check compares table "counts" of b with want (restricted to b's key
// groups) through Get, Range and Len.
func check(t *testing.T, b state.Backend, want map[string]entry) {
	t.Helper()
	tt, err := state.OpenTable[string, entry](b, "counts")
	if err != nil {
		t.Fatal(err)
	}
	r := b.KeyGroups()
	owned := 0
	for k, e := range want {
		kg := kgOf(k)
		if !r.Contains(kg) {
			continue
		}
		owned++
		got, ok := tt.Get(kg, k)
		if !ok || got.Count != e.Count || got.Last != e.Last || len(got.Tags) != 2 {
			t.Fatalf("key %s: got %+v %v, want %+v", k, got, ok, e)
		}
	}
	seen := 0
	for kg := r.Start; kg < r.End; kg++ {
		tt.Range(kg, func(k string, e entry) bool {
			if kgOf(k) != kg {
				t.Fatalf("key %s in key group %d, hashes to %d", k, kg, kgOf(k))
			}
			if want[k].Count != e.Count {
				t.Fatalf("range %s: %+v, want %+v", k, e, want[k])
			}
			seen++
			return true
		})
	}
	if seen != owned || tt.Len() != owned {
		t.Fatalf("range saw %d, Len %d, want %d", seen, tt.Len(), owned)
	}
}

func TestLargerThanMemory(t *testing.T) {
	n := 25000
	if testing.Short() {
		n = 10000
	}
	all := state.KeyGroupRange{Start: 0, End: testMaxPar}
	b, err := Open(small(filepath.Join(t.TempDir(), "s")), testMaxPar, all)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	want := fill(t, b, n, 1)
	if du := b.DiskUsage(); du < 2*(64<<10+64<<10) {
		t.Fatalf("disk usage %d: the state should not fit the configured memory", du)
	}
	check(t, b, want)

	// Map and list state round-trip through codecs too.
	kc := state.NewKeyed[string](b)
	m, _ := state.NewMap[string, string, int](kc, "m")
	l, _ := state.NewList[string, int64](kc, "l")
	kc.SetCurrentKey("k", kgOf("k"))
	m.Put("x", 1)
	m.Put("y", 2)
	m.Delete("x")
	l.Add(5)
	l.Add(6)
	if v, ok := m.Get("y"); !ok || v != 2 || m.Len() != 1 {
		t.Fatalf("map state: %v %v len %d", v, ok, m.Len())
	}
	if vs := l.Values(); len(vs) != 2 || vs[1] != 6 {
		t.Fatalf("list state: %v", vs)
	}

	// Clearing a key group removes exactly its keys.
	tt, _ := state.OpenTable[string, entry](b, "counts")
	tt.ClearKeyGroup(3)
	for k := range want {
		if kgOf(k) == 3 {
			delete(want, k)
		}
	}
	check(t, b, want)
}

// TestCheckpointRestoreAndRescale: snapshots of two subtasks restored at
// parallelism 2, 1 and 4, from a checkpoint directory and from an object
// store (read back by a new storage with its own local directory, as on
// another machine: the sstables are downloaded, checked and linked).
func TestCheckpointRestoreAndRescale(t *testing.T) {
	quiet := checkpoint.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Run("dir", func(t *testing.T) {
		root := t.TempDir()
		store, err := checkpoint.NewDir(filepath.Join(root, "chk"), quiet)
		if err != nil {
			t.Fatal(err)
		}
		testCheckpointRestoreAndRescale(t, root, store, store)
	})
	t.Run("object", func(t *testing.T) {
		mem := objstore.NewMem()
		a := checkpoint.NewObjectStorage(mem, "mem://chk", checkpoint.WithLocalDir(t.TempDir()), quiet)
		b := checkpoint.NewObjectStorage(mem, "mem://chk", checkpoint.WithLocalDir(t.TempDir()), quiet)
		testCheckpointRestoreAndRescale(t, t.TempDir(), a, b)
	})
}

func testCheckpointRestoreAndRescale(t *testing.T, root string, store, reader checkpoint.Storage) {
	// Two subtasks at parallelism 2.
	want := map[string]entry{}
	p, _ := store.Begin(1)
	m := &checkpoint.Manifest{ID: 1, Pipeline: checkpoint.Pipeline{MaxParallelism: testMaxPar}}
	var metas []string
	for sub := range 2 {
		r := state.RangeFor(testMaxPar, 2, sub)
		b, err := Open(small(filepath.Join(root, fmt.Sprint("w", sub))), testMaxPar, r)
		if err != nil {
			t.Fatal(err)
		}
		for k, e := range fill(t, b, 5000, 3) {
			if r.Contains(kgOf(k)) {
				want[k] = e
			}
		}
		files, _, err := b.Checkpoint(p, fmt.Sprintf("op.%d", sub))
		if err != nil {
			t.Fatal(err)
		}
		metas = append(metas, files[0])
		m.Tasks = append(m.Tasks, checkpoint.TaskState{Task: checkpoint.TaskID{Operator: "op", Subtask: sub}, Files: files})
		b.Close()
	}
	if err := p.Commit(m); err != nil {
		t.Fatal(err)
	}
	c, err := reader.Latest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, par := range []int{2, 1, 4} {
		for sub := range par {
			r := state.RangeFor(testMaxPar, par, sub)
			b, err := Restore(small(filepath.Join(root, fmt.Sprintf("r%d-%d", par, sub))), testMaxPar, r, c, metas)
			if err != nil {
				t.Fatalf("parallelism %d subtask %d: %v", par, sub, err)
			}
			check(t, b, want)
			b.Close()
		}
	}
	if _, err := Restore(small(filepath.Join(root, "bad")), 32, state.KeyGroupRange{End: 32}, c, metas); err == nil {
		t.Fatal("restore with another max parallelism succeeded")
	}
}

// TestIncrementalCheckpoints checks that a checkpoint stores what changed
// since the previous one, not the whole state.
func TestIncrementalCheckpoints(t *testing.T) {
	root := t.TempDir()
	store, _ := checkpoint.NewDir(filepath.Join(root, "chk"), checkpoint.WithRetain(10))
	all := state.KeyGroupRange{Start: 0, End: testMaxPar}
	b, err := Open(small(filepath.Join(root, "w")), testMaxPar, all)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const n = 20000
	fill(t, b, n, 1)
	// One compaction to a stable shape, so that the small updates below
	// stay in level 0 (no compaction rewrites the bulk between
	// checkpoints). The values held in memory are written first.
	if err := b.writeBack(); err != nil {
		t.Fatal(err)
	}
	if err := b.db.Compact([]byte{0}, []byte{0xff, 0xff, 0xff}, false); err != nil {
		t.Fatal(err)
	}
	take := func(id checkpoint.ID) SnapshotStats {
		p, err := store.Begin(id)
		if err != nil {
			t.Fatal(err)
		}
		files, st, err := b.Checkpoint(p, "op.0")
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Commit(&checkpoint.Manifest{ID: id, Tasks: []checkpoint.TaskState{{Task: checkpoint.TaskID{Operator: "op"}, Files: files}}}); err != nil {
			t.Fatal(err)
		}
		return st
	}
	full := take(1)
	if full.NewBytes < 200<<10 {
		t.Fatalf("first checkpoint stored only %d bytes", full.NewBytes)
	}
	kc := state.NewKeyed[string](b)
	v, _ := state.NewValue[string, entry](kc, "counts")
	update := func(from, count int) {
		for i := from; i < from+count; i++ {
			k := key(i)
			kc.SetCurrentKey(k, kgOf(k))
			v.Set(entry{Count: -1, Last: "changed"})
		}
	}
	update(0, 200)
	small1 := take(2)
	update(1000, 2000)
	small2 := take(3)
	t.Logf("full %+v; 200 changed %+v; 2000 changed %+v", full, small1, small2)
	if small1.NewBytes*10 > full.NewBytes {
		t.Fatalf("changing 0.5%% of the keys stored %d bytes, the full state is %d", small1.NewBytes, full.NewBytes)
	}
	if small2.NewBytes <= small1.NewBytes {
		t.Fatalf("ten times more changes stored %d bytes, not more than %d", small2.NewBytes, small1.NewBytes)
	}
	if small1.Bytes < full.Bytes || small2.Bytes < small1.Bytes {
		t.Fatalf("total sizes %d %d %d should not shrink", full.Bytes, small1.Bytes, small2.Bytes)
	}
	// The latest checkpoint restores to the current state.
	tt := restoreLatest(t, store, filepath.Join(root, "r"), all)
	if e, _ := tt.Get(kgOf(key(1500)), key(1500)); e.Last != "changed" {
		t.Fatalf("restored %+v", e)
	}
	if e, _ := tt.Get(kgOf(key(5000)), key(5000)); e.Count != 5000 {
		t.Fatalf("restored %+v", e)
	}
}

// restoreLatest restores operator "op"'s backend of key groups r from the
// latest checkpoint of store into dir (closed when the test ends) and
// returns its "counts" table.
func restoreLatest(t *testing.T, store *checkpoint.Dir, dir string, r state.KeyGroupRange) state.TypedTable[string, entry] {
	t.Helper()
	c, err := store.Latest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b, err := Restore(small(dir), testMaxPar, r, c, c.Manifest.TaskFiles("op")[:1])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	tt, err := state.OpenTable[string, entry](b, "counts")
	if err != nil {
		t.Fatal(err)
	}
	return tt
}
