package logstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/recordbomb"
	"github.com/sluicehq/sluice/record"
)

// TestCleanerKeepsBatchBeyondDecompressionBound: a batch whose records
// decompress beyond record.MaxDecompressed, written while the topic was
// under the delete policy, is kept whole by the cleaner once the topic is
// compacted (its keys cannot be read within the bound), while the records
// around it are compacted as usual: the pass neither fails nor drops it.
// Appending such a batch to the compacted topic is refused with
// ErrBatchTooLarge, and a lookup by time answers the batch's base offset.
func TestCleanerKeepsBatchBeyondDecompressionBound(t *testing.T) {
	opts, _ := testOptions(t.TempDir())
	opts.Cleaner = CleanerOptions{Interval: -1}
	l := mustOpen(t, opts)
	defer l.Close()
	p := mustPartition(t, l, "bomb", TopicConfig{Partitions: 1, SegmentBytes: 64 << 10})
	ctx := context.Background()
	appendKeyRounds(t, p, 30, 1)
	bomb := recordbomb.Batch(0, record.MaxDecompressed+1<<20)
	res, err := p.Append(ctx, bomb)
	if err != nil {
		t.Fatalf("append under the delete policy: %v", err)
	}
	want := appendKeyRounds(t, p, 30, 2)
	if _, err := l.AlterTopicConfig("bomb", false, func(c *TopicConfig) error {
		c.Cleanup = CleanupCompact
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Append(ctx, bomb); !errors.Is(err, ErrBatchTooLarge) {
		t.Fatalf("append to the compacted topic: %v, want ErrBatchTooLarge", err)
	}
	if err := p.roll(false, 0); err != nil {
		t.Fatal(err)
	}
	if ran, err := p.Compact(time.Now(), true); err != nil || !ran {
		t.Fatalf("compact: ran %v, %v", ran, err)
	}
	got := map[string]string{}
	bombKept := false
	for off := int64(0); ; {
		r, err := p.Read(off, 1<<20)
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		if len(r.Batches) == 0 {
			break
		}
		err = record.Batches(r.Batches, func(h record.Header, raw []byte) error {
			off = h.LastOffset() + 1
			if h.BaseOffset == res.BaseOffset {
				bombKept = true
				return nil
			}
			return record.Decode(raw, func(_ record.Header, rec record.Record) error {
				if _, dup := got[string(rec.Key)]; dup {
					t.Errorf("key %s twice after compaction", rec.Key)
				}
				got[string(rec.Key)] = string(rec.Value)
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bombKept {
		t.Fatalf("the batch at %d beyond the bound was dropped", res.BaseOffset)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("key %s: %q, want %q", k, got[k], v)
		}
	}
	if off, _, found, err := p.OffsetForTime(10); err != nil || !found || off != res.BaseOffset {
		t.Fatalf("OffsetForTime(10): %d, %v, %v, want %d", off, found, err, res.BaseOffset)
	}
}
