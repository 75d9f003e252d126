package logstore

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/record"
)

// swapFailFS fails the nth rename of a compaction's swap file over its
// segment (counting from 1; 0: none) with EIO.
type swapFailFS struct {
	FS
	mu    sync.Mutex
	nth   int
	count int
}

func (f *swapFailFS) Rename(from, to string) error {
	if strings.HasSuffix(from, swapSuffix) {
		f.mu.Lock()
		f.count++
		fail := f.count == f.nth
		f.mu.Unlock()
		if fail {
			return &os.LinkError{Op: "rename", Old: from, New: to, Err: errEIO.Err}
		}
	}
	return f.FS.Rename(from, to)
}

// latestValues reads the whole partition and returns each key's last
// value, checking that offsets increase.
func latestValues(t *testing.T, p *Partition) map[string]string {
	t.Helper()
	ls, hw, _ := p.Offsets()
	out := map[string]string{}
	prev := int64(-1)
	for off := ls; off < hw; {
		res, err := p.Read(off, 1<<20)
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		for rest := res.Batches; len(rest) > 0; {
			h, err := record.ParseHeader(rest)
			if err != nil {
				t.Fatal(err)
			}
			off = h.BaseOffset + int64(h.LastOffsetDelta) + 1
			rest = rest[h.Size():]
		}
		err = record.Decode(res.Batches, func(_ record.Header, r record.Record) error {
			if r.Offset <= prev {
				return fmt.Errorf("offset %d after %d", r.Offset, prev)
			}
			prev = r.Offset
			out[string(r.Key)] = string(r.Value)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestCompactionSwapFailureFinishedBeforeNextChange: a compaction pass
// whose swap fails after the new segment took the old ones' place in
// memory (the rename of the .swap file over the first old segment
// failed) leaves the .swap file for the next open to finish. A later
// pass (or retention) in the same process must finish that swap first:
// otherwise it rewrote segments around it, and the next open "finished"
// the stale swap over the newer layout and refused to open ("segment
// starts at offset 90 but the previous one ends at 108"). Every key keeps
// its latest value across the failure, the next passes and a reopen.
func TestCompactionSwapFailureFinishedBeforeNextChange(t *testing.T) {
	for nth := 1; nth <= 2; nth++ { // the first pass swaps two groups
		t.Run(fmt.Sprint(nth), func(t *testing.T) {
			dir := t.TempDir()
			opts, logs := testOptions(dir)
			opts.Cleaner = CleanerOptions{Interval: -1, DedupeBufferBytes: 1 << 16}
			ffs := &swapFailFS{FS: OSFS{}}
			opts.FS = ffs
			l := mustOpen(t, opts)
			p := mustPartition(t, l, "c", TopicConfig{Partitions: 1, SegmentBytes: 2048, Cleanup: CleanupCompact, MinCleanableDirtyRatio: 0.01})
			model := map[string]string{}
			put := func(p *Partition, i int) {
				k, v := fmt.Sprintf("k%02d", i%15), fmt.Sprintf("v%04d-%s", i, strings.Repeat("x", 35))
				b, err := record.AppendBatch(nil, []record.Record{{Key: []byte(k), Value: []byte(v), Timestamp: int64(1000 + i)}}, record.BatchOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := p.Append(bg, b); err != nil {
					t.Fatal(err)
				}
				model[k] = v
			}
			check := func(what string, p *Partition) {
				t.Helper()
				got := latestValues(t, p)
				if len(got) != len(model) {
					t.Fatalf("%s: %d keys, want %d", what, len(got), len(model))
				}
				for k, v := range model {
					if got[k] != v {
						t.Fatalf("%s: key %s = %q, want %q", what, k, got[k], v)
					}
				}
			}
			for i := range 120 {
				put(p, i)
			}
			now := time.Now()
			ffs.mu.Lock()
			ffs.nth = ffs.count + nth
			ffs.mu.Unlock()
			_, err := p.Compact(now, true)
			ffs.mu.Lock()
			failed := ffs.count >= ffs.nth
			ffs.nth = 0
			ffs.mu.Unlock()
			if !failed || err == nil {
				t.Fatalf("the pass did not fail its swap %d: %v", nth, err)
			}
			check("after the failed swap", p)
			for i := 120; i < 150; i++ {
				put(p, i)
			}
			if _, err := p.Compact(now.Add(time.Hour), true); err != nil {
				t.Fatalf("next compaction: %v", err)
			}
			check("after the next compaction", p)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			opts.FS = nil
			l, err = Open(opts)
			if err != nil {
				t.Fatalf("reopen: %v\n%s", err, logs)
			}
			defer l.Close()
			tp, _ := l.Topic("c")
			p, _ = tp.Partition(0)
			check("after reopen", p)
			ents, _ := os.ReadDir(filepath.Join(dir, topicsDir, "c", "0"))
			for _, e := range ents {
				if strings.HasSuffix(e.Name(), swapSuffix) || strings.HasSuffix(e.Name(), cleanedSuffix) {
					t.Errorf("%s left in the partition directory", e.Name())
				}
			}
		})
	}
}
