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

// TestSnapshotWritersDoNotShareTheirTemporaryFile: a writer still in
// flight (here: one that opened its temporary file and wrote half of its
// snapshot) and one that writes a whole snapshot meanwhile must not
// write into one file, or the in-flight writer's bytes land in the
// published snapshot and tear it.
func TestSnapshotWritersDoNotShareTheirTemporaryFile(t *testing.T) {
	encode := func(value string) []byte {
		task := newMapTask()
		task.tab.Put("k", value)
		task.tab.Commit()
		data, ok := encodeSnapshot(&taskState{id: taskID{0, 1}, task: task, changelogEnd: 7})
		if !ok {
			t.Fatal("not encoded")
		}
		return data
	}
	path := filepath.Join(t.TempDir(), "0_1.state")
	// The in-flight writer, as the old code named its temporary file.
	slow, err := os.Create(path + ".tmp")
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	slowData := encode("the old owner's much longer value")
	if _, err := slow.Write(slowData[:len(slowData)/2]); err != nil {
		t.Fatal(err)
	}
	if err := writeSnapshot(path, encode("new")); err != nil {
		t.Fatal(err)
	}
	// The in-flight writer goes on.
	if _, err := slow.Write(slowData[len(slowData)/2:]); err != nil {
		t.Fatal(err)
	}
	var got string
	end, err := readSnapshot(path, func(k, v []byte) error { got = string(v); return nil })
	if err != nil || end != 7 || got != "new" {
		t.Fatalf("published snapshot: end %d value %q err %v; want 7 \"new\"", end, got, err)
	}
	leftovers, _ := filepath.Glob(path + ".*.tmp")
	if len(leftovers) != 0 {
		t.Fatalf("temporary files left: %v", leftovers)
	}
}

// TestInterruptedSnapshotWritesAreRemoved: the temporary file of a write
// that a crash interrupted is removed when an instance starts, the
// snapshots themselves are kept.
func TestInterruptedSnapshotWritesAreRemoved(t *testing.T) {
	in := &Instance{cfg: Config{StateDir: t.TempDir(), ApplicationID: "app", InstanceID: "i1"}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	path := in.snapshotPath(taskID{0, 1})
	if err := writeSnapshot(path, []byte("whole")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".123.tmp", []byte("torn"), 0o644); err != nil {
		t.Fatal(err)
	}
	in.removeSnapshotLeftovers()
	if left, _ := filepath.Glob(path + ".*.tmp"); len(left) != 0 {
		t.Fatalf("left: %v", left)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "whole" {
		t.Fatalf("snapshot: %q %v", b, err)
	}
}
