package logstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/sluicehq/sluice/record"
)

// logBuffer collects log lines for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func testOptions(dir string) (Options, *logBuffer) {
	lb := &logBuffer{}
	return Options{
		Dir:                    dir,
		Logger:                 slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})),
		RetentionCheckInterval: -1,
		IndexIntervalBytes:     256,
	}, lb
}

func mustOpen(t testing.TB, opts Options) *Log {
	t.Helper()
	l, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

func mustPartition(t testing.TB, l *Log, topic string, cfg TopicConfig) *Partition {
	t.Helper()
	if _, err := l.Topic(topic); err != nil {
		if err := l.CreateTopic(topic, cfg); err != nil {
			t.Fatalf("CreateTopic: %v", err)
		}
	}
	tp, err := l.Topic(topic)
	if err != nil {
		t.Fatal(err)
	}
	p, err := tp.Partition(0)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// makeBatch builds a batch of n records whose values are derived from seed.
func makeBatch(t testing.TB, seed uint64, n, valueSize int, ts int64) ([]byte, []record.Record) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	recs := make([]record.Record, n)
	for i := range recs {
		v := make([]byte, valueSize)
		for j := range v {
			v[j] = byte(rng.Uint32())
		}
		recs[i] = record.Record{Timestamp: ts + int64(i), Key: fmt.Appendf(nil, "k%d", seed), Value: v}
	}
	b, err := record.AppendBatch(nil, recs, record.BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return b, recs
}

// readAllRecords reads every record from offset from to the high watermark,
// checking offset contiguity and CRCs.
func readAllRecords(t testing.TB, p *Partition, from int64) []record.Record {
	t.Helper()
	var out []record.Record
	off := from
	for {
		res, err := p.Read(off, 4096)
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		if len(res.Batches) == 0 {
			if off != res.HighWatermark {
				t.Fatalf("empty read at %d below high watermark %d", off, res.HighWatermark)
			}
			return out
		}
		err = record.Decode(res.Batches, func(h record.Header, r record.Record) error {
			if r.Offset < off {
				return nil // earlier records of the first batch
			}
			if r.Offset != off {
				return fmt.Errorf("offset %d, expected %d", r.Offset, off)
			}
			r.Key = bytes.Clone(r.Key)
			r.Value = bytes.Clone(r.Value)
			out = append(out, r)
			off++
			return nil
		})
		if err != nil {
			t.Fatalf("decode at %d: %v", off, err)
		}
	}
}

// faultFS wraps an FS and fails writes with ENOSPC once a byte budget is
// spent (a full disk), writing the part of the buffer that still fits.
type faultFS struct {
	FS
	mu     sync.Mutex
	budget int64 // bytes that may still be written; < 0 = unlimited
	fails  int
}

func (f *faultFS) setBudget(n int64) {
	f.mu.Lock()
	f.budget = n
	f.mu.Unlock()
}

func (f *faultFS) take(n int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.budget < 0 {
		return n, nil
	}
	if int64(n) <= f.budget {
		f.budget -= int64(n)
		return n, nil
	}
	m := int(f.budget)
	f.budget = 0
	f.fails++
	return m, errENOSPC
}

func (f *faultFS) OpenFile(name string, flag int, perm fsFileMode) (File, error) {
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f}, nil
}

type faultFile struct {
	File
	fs *faultFS
}

func (f *faultFile) Write(p []byte) (int, error) {
	n, ferr := f.fs.take(len(p))
	if n == 0 && ferr != nil {
		return 0, ferr
	}
	m, err := f.File.Write(p[:n])
	if err != nil {
		return m, err
	}
	return m, ferr
}

var _ io.Writer = (*faultFile)(nil)

func isCorruption(err error) bool {
	var ce *CorruptionError
	return errors.As(err, &ce)
}

var bg = context.Background()
