package cluster

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Local state snapshots: a stateful task's committed state is written to
// the instance's state directory (Config.StateDir) with the changelog
// offset it corresponds to, at most every SnapshotInterval after a
// commit, and when the task leaves or the instance stops. A task that
// comes back to this instance — after a restart under the same instance
// id, typically — loads its snapshot and restores only the changelog
// records written since, instead of the whole changelog.
//
// File <state dir>/<sub-topology>_<partition>.state:
//
//	magic "SLST" | version 1 | changelog end offset (int64 BE) |
//	records: key length (uvarint) key value length (uvarint) value ... |
//	end: 0xFFFFFFFF-like sentinel is not used; the record count (uint64 BE)
//	and CRC-32C (uint32 BE) of everything before close the file.
//
// It is written to a temporary file of its own (<name>.state.<random>.tmp),
// synced and renamed into place, so a crash leaves the old snapshot or the
// new one, and two writers in flight cannot mix their bytes. A snapshot
// that fails its CRC, or whose offset is beyond the changelog's end (the
// topic was recreated), is ignored: the task restores from the changelog.

// DefaultSnapshotInterval is how often a changed task's state is written
// to the state directory.
const DefaultSnapshotInterval = 30 * time.Second

var (
	snapMagic   = []byte("SLST")
	castagnoli  = crc32.MakeTable(crc32.Castagnoli)
	errSnapshot = errors.New("cluster: bad state snapshot")
)

const snapVersion = 1

// Snapshotter is implemented by tasks whose state can be written whole:
// Snapshot calls write for every key with the value a changelog record
// would carry.
type Snapshotter interface {
	Snapshot(write func(key, value []byte))
}

func (in *Instance) snapshotPath(id taskID) string {
	return filepath.Join(in.cfg.StateDir, in.cfg.ApplicationID, in.cfg.InstanceID, fmt.Sprintf("%d_%d.state", id.sub, id.part))
}

// encodeSnapshot encodes a task's committed state (call right after a
// commit or a restore, before any new record).
func encodeSnapshot(ts *taskState) ([]byte, bool) {
	sn, ok := ts.task.(Snapshotter)
	if !ok {
		return nil, false
	}
	b := append([]byte(nil), snapMagic...)
	b = append(b, snapVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(ts.changelogEnd))
	var n uint64
	write := func(k, v []byte) {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
		n++
	}
	sn.Snapshot(write)
	if ts.comb != nil {
		ts.comb.snapshot(write)
	}
	b = binary.BigEndian.AppendUint64(b, n)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli)), true
}

// writeSnapshot writes data as path atomically. Each call writes its own
// temporary file: two writers of one task's snapshot (the task's old and
// new owner within this instance, say) must not share one, or one's
// rename could publish a file the other is still writing.
func writeSnapshot(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if err := writeSyncClose(f, data); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("snapshot %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}

// removeSnapshotLeftovers removes the temporary files of snapshot writes
// that a crash interrupted (call before any task runs: no write is in
// flight then).
func (in *Instance) removeSnapshotLeftovers() {
	if in.cfg.StateDir == "" {
		return
	}
	left, _ := filepath.Glob(filepath.Join(in.cfg.StateDir, in.cfg.ApplicationID, in.cfg.InstanceID, "*.state.*.tmp"))
	for _, f := range left {
		if err := os.Remove(f); err != nil {
			in.log.Warn("cluster: removing an interrupted snapshot write", "file", f, "error", err)
		}
	}
}

// writeSyncClose writes data to f, syncs and closes it.
func writeSyncClose(f *os.File, data []byte) error {
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// readSnapshot decodes a snapshot file, calling apply for every record,
// and returns its changelog offset. A missing file is (-1, nil).
func readSnapshot(path string, apply func(k, v []byte) error) (int64, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return -1, nil
	}
	if err != nil {
		return -1, err
	}
	defer f.Close()
	data, err := io.ReadAll(bufio.NewReader(f))
	if err != nil {
		return -1, err
	}
	if len(data) < len(snapMagic)+1+8+8+4 || string(data[:4]) != string(snapMagic) || data[4] != snapVersion {
		return -1, fmt.Errorf("%w: %s: header", errSnapshot, path)
	}
	body, sum := data[:len(data)-4], binary.BigEndian.Uint32(data[len(data)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return -1, fmt.Errorf("%w: %s: checksum", errSnapshot, path)
	}
	end := int64(binary.BigEndian.Uint64(data[5:]))
	want := binary.BigEndian.Uint64(body[len(body)-8:])
	recs := body[13 : len(body)-8]
	var n uint64
	for len(recs) > 0 {
		kl, m := binary.Uvarint(recs)
		if m <= 0 || kl > uint64(len(recs)-m) {
			return -1, fmt.Errorf("%w: %s: key", errSnapshot, path)
		}
		k := recs[m : m+int(kl)]
		recs = recs[m+int(kl):]
		vl, m := binary.Uvarint(recs)
		if m <= 0 || vl > uint64(len(recs)-m) {
			return -1, fmt.Errorf("%w: %s: value", errSnapshot, path)
		}
		v := recs[m : m+int(vl)]
		recs = recs[m+int(vl):]
		if err := apply(k, v); err != nil {
			return -1, fmt.Errorf("%s: %w", path, err)
		}
		n++
	}
	if n != want {
		return -1, fmt.Errorf("%w: %s: %d records, want %d", errSnapshot, path, n, want)
	}
	return end, nil
}

// loadSnapshot fills a new task from its snapshot, if there is one; it
// reports whether it did. A bad snapshot is logged and removed.
func (in *Instance) loadSnapshot(ts *taskState) bool {
	if in.cfg.StateDir == "" {
		return false
	}
	path := in.snapshotPath(ts.id)
	start := time.Now()
	if fi, err := os.Stat(path); err == nil {
		// Compaction removes a tombstone (with the value it deleted)
		// delete.retention.ms after writing it at the earliest: past
		// that, a key deleted since the snapshot could be missing from
		// the changelog and come back from the snapshot. Half of it
		// leaves a margin for clocks.
		if age, keep := start.Sub(fi.ModTime()), in.tombstoneKeeping(ts.id.sub); age > keep/2 {
			in.log.Info("cluster: the local state snapshot is older than half the changelog's delete.retention.ms (deletions since may be compacted away); the task restores from its changelog", "task", ts.id.String(), "age", age.Round(time.Second), "delete_retention", keep)
			return false
		}
	}
	var n int
	end, err := readSnapshot(path, func(k, v []byte) error {
		n++
		if isWatermarkKey(k) {
			if ts.comb != nil {
				return ts.comb.restore(k, v)
			}
			return nil
		}
		return ts.task.Restore(k, v)
	})
	if err != nil || end < 0 {
		if err != nil {
			in.log.Warn("cluster: ignoring the local state snapshot; the task restores from its changelog", "task", ts.id.String(), "error", err)
			_ = os.Remove(path)
		}
		// Start clean: a partly applied snapshot must not stay.
		in.freshState(ts)
		return false
	}
	ts.changelogEnd = end
	ts.fromSnapshot = true
	in.log.Info("cluster: local state snapshot loaded", "task", ts.id.String(), "records", n, "changelog_offset", end, "elapsed", time.Since(start).Round(time.Millisecond))
	return true
}

// maybeSnapshot writes a task's snapshot when its state changed since the
// last one and the interval passed (or force). Call with the task
// committed. The encoding happens here; the file is written in the
// background, one at a time per task.
func (in *Instance) maybeSnapshot(ts *taskState, force bool) {
	if in.cfg.StateDir == "" || !ts.restored {
		return
	}
	if !force && time.Since(ts.snapshotTime) < in.cfg.SnapshotInterval {
		return
	}
	if ts.snapshotAt == ts.changelogEnd {
		// Unchanged: the snapshot on disk is the state, and nothing
		// follows its offset in the changelog. Its time moves on, so
		// that loadSnapshot does not take it for one whose later
		// deletions compaction may have removed.
		ts.snapshotTime = time.Now()
		in.chainSnapshotWrite(ts, func(path string) error {
			now := time.Now()
			return os.Chtimes(path, now, now)
		})
		return
	}
	data, ok := encodeSnapshot(ts)
	if !ok {
		return
	}
	ts.snapshotAt, ts.snapshotTime = ts.changelogEnd, time.Now()
	in.chainSnapshotWrite(ts, func(path string) error { return writeSnapshot(path, data) })
}

// chainSnapshotWrite runs write on the task's snapshot file in the
// background, after the task's previous one.
func (in *Instance) chainSnapshotWrite(ts *taskState, write func(path string) error) {
	path := in.snapshotPath(ts.id)
	in.snapWG.Add(1)
	prev := ts.snapshotDone
	done := make(chan struct{})
	ts.snapshotDone = done
	go func() {
		defer in.snapWG.Done()
		defer close(done)
		if prev != nil {
			<-prev
		}
		if err := write(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			in.log.Warn("cluster: writing the local state snapshot", "task", ts.id.String(), "error", err)
		}
	}()
}

// snapshot writes every upstream watermark (for a state snapshot).
func (c *combiner) snapshot(write func(k, v []byte)) {
	saved := c.dirty
	c.dirty = map[int32]struct{}{}
	for i := range c.wm {
		c.dirty[int32(i)] = struct{}{}
	}
	wm, idle, emitted := c.wm, c.idle, c.emitted
	c.wm, c.idle, c.emitted = c.committedWM, c.committedIdle, c.committedEmitted
	c.write(write, c.committedEmitted != NoWatermark)
	c.wm, c.idle, c.emitted = wm, idle, emitted
	c.dirty = saved
}
