package logstore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/sluicehq/sluice/record"
)

// appendN appends one batch of n records to p.
func appendN(t *testing.T, p *Partition, n int) AppendResult {
	t.Helper()
	recs := make([]record.Record, n)
	for i := range recs {
		recs[i] = record.Record{Value: []byte("v")}
	}
	res, err := p.AppendRecords(context.Background(), recs)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return res
}

// batchEpochs returns the PartitionLeaderEpoch of every stored batch.
func batchEpochs(t *testing.T, p *Partition) map[int64]int32 {
	t.Helper()
	out := map[int64]int32{}
	off := p.logStart.Load()
	for {
		res, err := p.Read(off, 1<<20)
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		if len(res.Batches) == 0 {
			return out
		}
		for b := res.Batches; len(b) > 0; {
			h, err := record.ParseHeader(b)
			if err != nil {
				t.Fatal(err)
			}
			out[h.BaseOffset] = h.PartitionLeaderEpoch
			off = h.LastOffset() + 1
			b = b[h.Size():]
		}
	}
}

func TestLeaderEpochBumpsOnEveryOpen(t *testing.T) {
	dir := t.TempDir()
	opts, _ := testOptions(dir)
	l := mustOpen(t, opts)
	p := mustPartition(t, l, "t", TopicConfig{Partitions: 1})
	if got := p.LeaderEpoch(); got != 0 {
		t.Fatalf("new partition epoch = %d, want 0", got)
	}
	appendN(t, p, 3) // offsets 0..2 in epoch 0
	l.Close()

	l = mustOpen(t, opts)
	p = mustPartition(t, l, "t", TopicConfig{})
	if got := p.LeaderEpoch(); got != 1 {
		t.Fatalf("epoch after reopen = %d, want 1", got)
	}
	appendN(t, p, 2) // offsets 3..4 in epoch 1
	l.Close()

	// An open that writes nothing: its epoch starts where the next one does
	// and is replaced by it.
	l = mustOpen(t, opts)
	l.Close()
	l = mustOpen(t, opts)
	defer l.Close()
	p = mustPartition(t, l, "t", TopicConfig{})
	if got := p.LeaderEpoch(); got != 3 {
		t.Fatalf("epoch after two more opens = %d, want 3", got)
	}
	appendN(t, p, 1) // offset 5 in epoch 3
	want := []EpochEntry{{0, 0}, {1, 3}, {3, 5}}
	if got := p.LeaderEpochs(); !reflect.DeepEqual(got, want) {
		t.Fatalf("epochs = %v, want %v", got, want)
	}
	if got, want := batchEpochs(t, p), map[int64]int32{0: 0, 3: 1, 5: 3}; !reflect.DeepEqual(got, want) {
		t.Fatalf("stamped batch epochs = %v, want %v", got, want)
	}
	for _, c := range []struct {
		req       int32
		epoch     int32
		endOffset int64
	}{
		{-1, -1, -1},
		{0, 0, 3},
		{1, 1, 5},
		{2, 1, 5}, // no epoch 2: the largest below it, ending where 3 starts
		{3, 3, 6}, // current: the log end offset
		{4, -1, -1},
	} {
		e, end := p.EndOffsetForEpoch(c.req)
		if e != c.epoch || end != c.endOffset {
			t.Errorf("EndOffsetForEpoch(%d) = %d, %d; want %d, %d", c.req, e, end, c.epoch, c.endOffset)
		}
	}
	for off, want := range map[int64]int32{0: 0, 2: 0, 3: 1, 4: 1, 5: 3, 9: 3} {
		if got := p.EpochForOffset(off); got != want {
			t.Errorf("EpochForOffset(%d) = %d, want %d", off, got, want)
		}
	}
	b, err := os.ReadFile(filepath.Join(p.dir, epochFile))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), "0\n3\n0 0\n1 3\n3 5\n"; got != want {
		t.Fatalf("checkpoint file = %q, want %q", got, want)
	}
}

func TestLeaderEpochsTruncatedAboveRecoveredEnd(t *testing.T) {
	dir := t.TempDir()
	opts, _ := testOptions(dir)
	l := mustOpen(t, opts)
	p := mustPartition(t, l, "t", TopicConfig{Partitions: 1})
	appendN(t, p, 4)
	pdir := p.dir
	l.Close()
	// Entries past the data (as after losing an unsynced tail).
	if err := os.WriteFile(filepath.Join(pdir, epochFile), []byte("0\n3\n0 0\n1 10\n2 20\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, opts)
	defer l.Close()
	p = mustPartition(t, l, "t", TopicConfig{})
	want := []EpochEntry{{0, 0}, {3, 4}}
	if got := p.LeaderEpochs(); !reflect.DeepEqual(got, want) || p.LeaderEpoch() != 3 {
		t.Fatalf("epochs = %v (current %d), want %v (current 3)", got, p.LeaderEpoch(), want)
	}
}

func TestLeaderEpochCheckpointCorrupt(t *testing.T) {
	dir := t.TempDir()
	opts, _ := testOptions(dir)
	l := mustOpen(t, opts)
	p := mustPartition(t, l, "t", TopicConfig{Partitions: 1})
	appendN(t, p, 2)
	pdir := p.dir
	l.Close()
	if err := os.WriteFile(filepath.Join(pdir, epochFile), []byte("0\n2\n0 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if l, err := Open(opts); !errors.Is(err, ErrCorrupt) {
		if err == nil {
			l.Close()
		}
		t.Fatalf("Open with a corrupt checkpoint: %v, want ErrCorrupt", err)
	}
	opts.RepairCorruption = true
	l = mustOpen(t, opts)
	defer l.Close()
	p = mustPartition(t, l, "t", TopicConfig{})
	// The batches were stamped with epoch 0: the repaired cache goes on
	// from epoch 1 rather than back to 0.
	if got, want := p.LeaderEpochs(), []EpochEntry{{1, 2}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("repaired epochs = %v, want %v", got, want)
	}
}

func TestLeaderEpochsAfterRetention(t *testing.T) {
	dir := t.TempDir()
	opts, _ := testOptions(dir)
	l := mustOpen(t, opts)
	cfg := TopicConfig{Partitions: 1, SegmentBytes: 1024, Retention: time.Hour}
	p := mustPartition(t, l, "t", cfg)
	old := time.Now().Add(-2 * time.Hour).UnixMilli()
	for range 3 {
		if _, err := p.AppendRecords(context.Background(), []record.Record{{Timestamp: old, Value: make([]byte, 700)}}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	l = mustOpen(t, opts)
	defer l.Close()
	p = mustPartition(t, l, "t", TopicConfig{})
	appendN(t, p, 1) // offset 3 in epoch 1
	if err := l.EnforceRetention(time.Now()); err != nil {
		t.Fatal(err)
	}
	start, _, _ := p.Offsets()
	if start == 0 || start > 3 {
		t.Fatalf("log start after retention = %d, want in (0, 3]", start)
	}
	got := p.LeaderEpochs()
	if got[0].StartOffset != start {
		t.Fatalf("epochs after retention = %v, first should start at the log start %d", got, start)
	}
	if e, end := p.EndOffsetForEpoch(0); e != 0 || end != 3 {
		t.Fatalf("EndOffsetForEpoch(0) = %d, %d; want 0, 3", e, end)
	}
}

func TestEpochCheckpointRoundTrip(t *testing.T) {
	for _, entries := range [][]EpochEntry{nil, {{0, 0}}, {{0, 0}, {4, 10}, {7, 1 << 40}}} {
		got, err := decodeEpochCheckpoint(encodeEpochCheckpoint(entries))
		if err != nil {
			t.Fatalf("decode(encode(%v)): %v", entries, err)
		}
		if len(got) != len(entries) || (len(got) > 0 && !reflect.DeepEqual(got, entries)) {
			t.Fatalf("round trip of %v gave %v", entries, got)
		}
	}
	for _, bad := range []string{"", "0\n", "1\n0\n", "0\n1\n", "0\n1\n0 0", "0\n2\n1 5\n0 6\n", "0\n2\n0 5\n1 5\n", "0\n1\n-1 0\n", "0\n1\n0 x\n", "0\n-1\n"} {
		if _, err := decodeEpochCheckpoint([]byte(bad)); err == nil {
			t.Errorf("decode(%q) succeeded", bad)
		}
	}
}

func TestAssignEpoch(t *testing.T) {
	got := assignEpoch([]EpochEntry{{0, 0}, {1, 5}, {2, 9}}, EpochEntry{3, 9})
	if want := []EpochEntry{{0, 0}, {1, 5}, {3, 9}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("assign = %v, want %v", got, want)
	}
}

// FuzzEpochCheckpoint: any file either fails to decode or decodes to a
// valid cache that encodes back to the same bytes.
func FuzzEpochCheckpoint(f *testing.F) {
	f.Add([]byte("0\n2\n0 0\n3 17\n"))
	f.Add([]byte("0\n0\n"))
	f.Add([]byte("0\n1\n0 -1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := decodeEpochCheckpoint(b)
		if err != nil {
			return
		}
		for i, e := range entries {
			if e.Epoch < 0 || e.StartOffset < 0 || i > 0 && (e.Epoch <= entries[i-1].Epoch || e.StartOffset <= entries[i-1].StartOffset) {
				t.Fatalf("decoded an invalid cache %v from %q", entries, b)
			}
		}
		if again := encodeEpochCheckpoint(entries); string(again) != string(b) {
			// Numbers may be spelled differently ("+1", "01"); the values
			// must still round-trip.
			back, err := decodeEpochCheckpoint(again)
			if err != nil || len(back) != len(entries) || len(back) > 0 && !reflect.DeepEqual(back, entries) {
				t.Fatalf("re-encoding %v gave %q (%v)", entries, again, err)
			}
		}
	})
}
