package logstore

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sealedLog writes a partition of several segments, closes it (so the
// recovery point is at its end) and returns its first segment file.
func sealedLog(t *testing.T, dir, topic string) (Options, *logBuffer, *ackOracle, string) {
	t.Helper()
	opts, lb := testOptions(dir)
	l := mustOpen(t, opts)
	p := mustPartition(t, l, topic, TopicConfig{Partitions: 1, SegmentBytes: 4096})
	o := fillRandom(t, rand.New(rand.NewPCG(7, 8)), p, 80)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	segs := segmentFiles(t, filepath.Join(dir, topicsDir, topic, "0"))
	if len(segs) < 3 {
		t.Fatalf("want several segments, got %d", len(segs))
	}
	return opts, lb, o, segs[0]
}

// appendBytes appends b to the file at path.
func appendBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestSealedSegmentTrailingGarbage: bytes after the last batch of a sealed
// segment below the recovery point (a torn write by another tool, a disk
// error) are found at Open and cut, with a warning naming the segment and
// byte, since every offset up to the next segment is there before them.
// Open used to trust the segment, and compaction failed on it at every
// pass.
func TestSealedSegmentTrailingGarbage(t *testing.T) {
	for _, tc := range []struct {
		name    string
		garbage []byte
		warn    bool
	}{
		{"garbage", []byte("not a batch: written by something else, or a disk error"), true},
		{"zeros", make([]byte, 300), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts, lb, o, seg := sealedLog(t, dir, "tail")
			st, err := os.Stat(seg)
			if err != nil {
				t.Fatal(err)
			}
			appendBytes(t, seg, tc.garbage)
			l := mustOpen(t, opts)
			defer l.Close()
			tp, _ := l.Topic("tail")
			p, _ := tp.Partition(0)
			if after, err := os.Stat(seg); err != nil || after.Size() != st.Size() {
				t.Fatalf("sealed segment not cut back to %d bytes: %v %v", st.Size(), after.Size(), err)
			}
			if n := checkServed(t, p, o); n != int64(len(o.recs)) {
				t.Fatalf("served %d records, want %d", n, len(o.recs))
			}
			if tc.warn && (!strings.Contains(lb.String(), "sealed segment") || !strings.Contains(lb.String(), filepath.Base(seg))) {
				t.Fatalf("cut not logged with the segment:\n%s", lb.String())
			}
		})
	}
}

// TestSealedSegmentDamagedEnd: a sealed segment whose last batch is cut
// short and followed by other bytes has lost acknowledged offsets; Open
// refuses the partition with a CorruptionError naming the segment and
// byte instead of trusting it.
func TestSealedSegmentDamagedEnd(t *testing.T) {
	dir := t.TempDir()
	opts, _, _, seg := sealedLog(t, dir, "dmg")
	st, err := os.Stat(seg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(seg, st.Size()-10); err != nil {
		t.Fatal(err)
	}
	appendBytes(t, seg, []byte("0123456789abcdef"))
	_, err = Open(opts)
	var ce *CorruptionError
	if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) || ce.Segment != seg {
		t.Fatalf("Open: %v, want a CorruptionError in %s", err, seg)
	}
}
