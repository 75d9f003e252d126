package cluster

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// mapTask is a Task over a Table of strings, for snapshot tests.
type mapTask struct{ tab *Table[string] }

func newMapTask() *mapTask {
	return &mapTask{tab: NewTable(func(v string) []byte { return []byte(v) }, func(b []byte) (string, error) { return string(b), nil })}
}

func (m *mapTask) Process(Output, *kgo.Record) error { return nil }
func (m *mapTask) Watermark(Output, int64) error     { return nil }
func (m *mapTask) Flush(Output) error                { return nil }
func (m *mapTask) Commit()                           { m.tab.Commit() }
func (m *mapTask) Abort()                            { _ = m.tab.Abort() }
func (m *mapTask) Restore(k, v []byte) error         { return m.tab.Restore(string(k), v) }
func (m *mapTask) Snapshot(write func(k, v []byte)) {
	m.tab.Snapshot(func(k string, v []byte) { write([]byte(k), v) })
}

func TestSnapshotRoundTripAndCorruption(t *testing.T) {
	task := newMapTask()
	for _, k := range []string{"a", "b", "", "long-key"} {
		task.tab.Put(k, "value of "+k)
	}
	task.tab.Commit()
	comb := newCombiner(2)
	comb.observe(marker{from: 1, wm: 42, idle: true})
	comb.commit()
	ts := &taskState{id: taskID{1, 3}, task: task, changelogEnd: 1234, comb: comb}
	data, ok := encodeSnapshot(ts)
	if !ok {
		t.Fatal("a Snapshotter task was not encoded")
	}
	path := filepath.Join(t.TempDir(), "1_3.state")
	if err := writeSnapshot(path, data); err != nil {
		t.Fatal(err)
	}
	back := newMapTask()
	wms := newCombiner(2)
	end, err := readSnapshot(path, func(k, v []byte) error {
		if isWatermarkKey(k) {
			return wms.restore(k, v)
		}
		return back.Restore(k, v)
	})
	if err != nil || end != 1234 {
		t.Fatalf("read: end %d, err %v", end, err)
	}
	if back.tab.Len() != 4 {
		t.Fatalf("restored %d keys, want 4", back.tab.Len())
	}
	for _, k := range []string{"a", "b", "", "long-key"} {
		if v, _ := back.tab.Get(k); v != "value of "+k {
			t.Fatalf("%q = %q", k, v)
		}
	}
	if wms.wm[1] != 42 || !wms.idle[1] || wms.wm[0] != NoWatermark {
		t.Fatalf("watermarks restored as %v %v", wms.wm, wms.idle)
	}
	// Every single flipped byte is detected.
	for i := range data {
		bad := append([]byte(nil), data...)
		bad[i] ^= 0x40
		if err := os.WriteFile(path, bad, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := readSnapshot(path, func(k, v []byte) error { return nil }); err == nil {
			t.Fatalf("byte %d flipped: no error", i)
		}
	}
	// A missing file is no snapshot, not an error.
	if end, err := readSnapshot(filepath.Join(t.TempDir(), "none"), nil); end != -1 || err != nil {
		t.Fatalf("missing: %d %v", end, err)
	}
}

// FuzzReadSnapshot: any file content is a snapshot or an error, never a
// panic or a record outside the file.
func FuzzReadSnapshot(f *testing.F) {
	task := newMapTask()
	task.tab.Put("k", "v")
	task.tab.Commit()
	data, _ := encodeSnapshot(&taskState{task: task, changelogEnd: 7})
	f.Add(data)
	f.Add([]byte("SLST"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "f.state")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		end, err := readSnapshot(path, func(k, v []byte) error {
			if len(k)+len(v) > len(b) {
				t.Fatalf("a record of %d bytes from a %d-byte file", len(k)+len(v), len(b))
			}
			return nil
		})
		if err == nil && end < 0 && len(b) > 0 {
			t.Fatalf("no error and no offset for %d bytes", len(b))
		}
		if err != nil && !errors.Is(err, errSnapshot) {
			t.Fatalf("unexpected error kind: %v", err)
		}
	})
}

// undoFreeTask is a mapTask that can run without undo (UndoFree).
type undoFreeTask struct{ *mapTask }

func (u undoFreeTask) DisableUndo() { u.tab.DisableUndo() }

// TestBadSnapshotKeepsUndoDisabled: a task whose snapshot is ignored
// starts afresh without undo, as every task that can do without does
// (the undo copy costs on every commit interval for nothing: an abort
// restores such a task from its snapshot and changelog).
func TestBadSnapshotKeepsUndoDisabled(t *testing.T) {
	dir := t.TempDir()
	var made []undoFreeTask
	topo := &Topology{Source: "in", SubTopologies: []SubTopology{
		{Name: "source", NewTask: func(int32) Task { return nopTask{} }},
		{Name: "w", Stateful: true, NewTask: func(int32) Task {
			u := undoFreeTask{newMapTask()}
			made = append(made, u)
			return u
		}},
	}}
	in := &Instance{cfg: Config{StateDir: dir, ApplicationID: "app", InstanceID: "a"}, topo: topo, parts: []int32{2, 2},
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	id := taskID{1, 0}
	path := in.snapshotPath(id)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("SLST not a snapshot at all, bad checksum"), 0o644); err != nil {
		t.Fatal(err)
	}
	ts := in.newTask(id)
	if ts.fromSnapshot {
		t.Fatal("a corrupt snapshot was loaded")
	}
	ts.task.(undoFreeTask).tab.Put("k", "v")
	if err := ts.task.(undoFreeTask).tab.Abort(); !errors.Is(err, ErrNoUndo) {
		t.Fatalf("the task that replaced the ignored snapshot keeps undo (Abort: %v); %d tasks made", err, len(made))
	}
}

// TestUnchangedSnapshotStaysLoadable: the snapshot of a task whose state
// has not changed since it was written is its state, with nothing after
// its offset in the changelog; its time moves on with every interval (and
// when the task leaves), so that a restart does not take it for one older
// than the changelog's tombstones and restore the whole changelog.
func TestUnchangedSnapshotStaysLoadable(t *testing.T) {
	dir := t.TempDir()
	topo := &Topology{Source: "in", SubTopologies: []SubTopology{
		{Name: "source", NewTask: func(int32) Task { return nopTask{} }},
		{Name: "w", Stateful: true, NewTask: func(int32) Task { return newMapTask() }},
	}}
	in := &Instance{cfg: Config{StateDir: dir, ApplicationID: "app", InstanceID: "a"}, topo: topo, parts: []int32{1, 1},
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	task := newMapTask()
	task.tab.Put("k", "v")
	task.tab.Commit()
	ts := &taskState{id: taskID{1, 0}, task: task, restored: true, changelogEnd: 7, snapshotAt: -1}
	in.maybeSnapshot(ts, true)
	in.snapWG.Wait()
	path := in.snapshotPath(ts.id)
	then := time.Now().Add(-30 * time.Hour)
	if err := os.Chtimes(path, then, then); err != nil {
		t.Fatal(err)
	}
	in.maybeSnapshot(ts, true) // the task leaves, its state unchanged
	in.snapWG.Wait()
	back := in.newTask(ts.id)
	if !back.fromSnapshot || back.changelogEnd != 7 {
		t.Fatalf("the unchanged task's snapshot was not loaded (from snapshot %v, changelog offset %d)", back.fromSnapshot, back.changelogEnd)
	}
}
