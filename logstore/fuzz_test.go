package logstore

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/record"
)

// FuzzSegment writes arbitrary bytes as the only segment of a partition and
// opens the log, either as a crash leftover (every batch is verified by
// recovery) or as a cleanly closed segment (trusted at open, so the read path
// alone must catch bad bytes). Whatever the bytes, Open must not panic,
// and every batch Read returns must be whole, CRC-valid and contiguous.
func FuzzSegment(f *testing.F) {
	var valid []byte
	for i := 0; i < 4; i++ {
		recs := []record.Record{{Timestamp: int64(100 + i), Key: []byte("k"), Value: []byte("value")}, {Timestamp: int64(90 + i), Value: make([]byte, i*10)}}
		b, err := record.AppendBatch(nil, recs, record.BatchOptions{BaseOffset: int64(2 * i)})
		if err != nil {
			f.Fatal(err)
		}
		valid = append(valid, b...)
	}
	for _, trusted := range []bool{false, true} {
		f.Add(valid, trusted)
		f.Add(valid[:len(valid)-7], trusted)
		f.Add(valid[:40], trusted)
		f.Add([]byte{}, trusted)
		flipped := append([]byte(nil), valid...)
		flipped[len(valid)/2] ^= 0x10
		f.Add(flipped, trusted)
		// Pre-written tails (prefill.go): zeros after whole batches, after
		// a torn one, and after a damaged one.
		zeros := make([]byte, 5000)
		f.Add(append(append([]byte(nil), valid...), zeros...), trusted)
		f.Add(append(append([]byte(nil), valid[:len(valid)-7]...), zeros...), trusted)
		f.Add(append(append([]byte(nil), flipped...), zeros...), trusted)
		// A tail longer than zeroTail's read buffer; a byte that is not
		// zero deep in it makes it a torn tail, not a pre-written one.
		long := make([]byte, 70000)
		f.Add(append(append([]byte(nil), valid...), long...), trusted)
		long[68000] = 1
		f.Add(append(append([]byte(nil), valid...), long...), trusted)
	}
	f.Fuzz(func(t *testing.T, data []byte, trusted bool) {
		dir := t.TempDir()
		opts := Options{Dir: dir, FS: noSyncFS{OSFS{}}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), RetentionCheckInterval: -1, IndexIntervalBytes: 64}
		// The directory CreateTopic would make, written directly (cheaper).
		pdir := filepath.Join(dir, topicsDir, "f", "0")
		if err := os.MkdirAll(pdir, 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, formatFile), []byte("sluice-log-format 1\n"), 0o644)
		os.WriteFile(filepath.Join(dir, topicsDir, "f", topicConfig), []byte(`{"Partitions":1}`), 0o644)
		stem := filepath.Join(pdir, segmentName(0))
		if err := os.WriteFile(stem+logSuffix, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if trusted {
			// Claim a clean shutdown at the end of the bytes, with an index
			// that has only the closing entry.
			rp := []byte(`{"offset":` + itoa(8) + `,"segment":0,"position":` + itoa(len(data)) + `}`)
			os.WriteFile(filepath.Join(pdir, recoveryPointFile), rp, 0o644)
			os.WriteFile(stem+indexSuffix, nil, 0o644)
			closing := make([]byte, timeEntrySize)
			closing[11] = 8
			os.WriteFile(stem+timeIndexSuffix, closing, 0o644)
		}
		l, err := Open(opts)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open failed with a non-corruption error: %v", err)
			}
			return
		}
		defer l.Close()
		tp, _ := l.Topic("f")
		p, _ := tp.Partition(0)
		ls, hw, _ := p.Offsets()
		off := ls
		for off < hw {
			res, err := p.Read(off, 100)
			if err != nil {
				if !trusted || !errors.Is(err, ErrCorrupt) {
					t.Fatalf("Read(%d) of recovered data: %v", off, err)
				}
				break
			}
			if len(res.Batches) == 0 {
				t.Fatalf("empty read at %d below high watermark %d", off, hw)
			}
			err = record.Batches(res.Batches, func(h record.Header, raw []byte) error {
				if _, err := record.Verify(raw); err != nil {
					t.Fatalf("Read served a bad batch: %v", err)
				}
				if h.BaseOffset > off || h.LastOffset() < off {
					t.Fatalf("batch %d..%d served for offset %d", h.BaseOffset, h.LastOffset(), off)
				}
				off = h.LastOffset() + 1
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		// Appends continue after whatever was recovered.
		if !trusted {
			res, err := p.AppendRecords(bg, []record.Record{{Value: []byte("x")}})
			if err != nil || res.BaseOffset != hw {
				t.Fatalf("append after recovery: %+v %v, want base %d", res, err, hw)
			}
		}
	})
}

// noSyncFS skips fsyncs: fuzzing checks logic, not durability.
type noSyncFS struct{ OSFS }

func (f noSyncFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	file, err := f.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return noSyncFile{file}, nil
}

func (noSyncFS) SyncDir(string) error { return nil }

type noSyncFile struct{ File }

func (noSyncFile) Sync() error { return nil }
