package logstore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluicehq/sluice/record"
)

func TestAppendRead(t *testing.T) {
	for _, mode := range []FsyncMode{FsyncAlways, FsyncInterval, FsyncNever} {
		t.Run(FsyncPolicy{Mode: mode}.String(), func(t *testing.T) {
			opts, _ := testOptions(t.TempDir())
			l := mustOpen(t, opts)
			defer l.Close()
			p := mustPartition(t, l, "events", TopicConfig{Partitions: 1, Fsync: FsyncPolicy{Mode: mode}})
			var want []record.Record
			for i := 0; i < 20; i++ {
				b, recs := makeBatch(t, uint64(i), 1+i%4, 10+i*3, 1000+int64(i)*10)
				res, err := p.Append(bg, b)
				if err != nil {
					t.Fatal(err)
				}
				if res.BaseOffset != int64(len(want)) || res.LastOffset != int64(len(want)+len(recs)-1) {
					t.Fatalf("append %d: got offsets %d..%d, want %d..%d", i, res.BaseOffset, res.LastOffset, len(want), len(want)+len(recs)-1)
				}
				want = append(want, recs...)
			}
			got := readAllRecords(t, p, 0)
			checkRecords(t, got, want, 0)
			// Reads from the middle of a batch start with that batch.
			res, err := p.Read(5, 1)
			if err != nil {
				t.Fatal(err)
			}
			var first record.Header
			first, _ = record.ParseHeader(res.Batches)
			if first.BaseOffset > 5 || first.LastOffset() < 5 {
				t.Fatalf("Read(5) starts with batch %d..%d", first.BaseOffset, first.LastOffset())
			}
			if n := countBatches(t, res.Batches); n != 1 {
				t.Fatalf("Read with maxBytes 1 returned %d batches, want exactly 1", n)
			}
			hw := int64(len(want))
			if res, err := p.Read(hw, 100); err != nil || len(res.Batches) != 0 || res.HighWatermark != hw {
				t.Fatalf("Read(hw) = %d bytes, hw %d, %v", len(res.Batches), res.HighWatermark, err)
			}
			if _, err := p.Read(hw+1, 100); !errors.Is(err, ErrOffsetOutOfRange) {
				t.Fatalf("Read(hw+1): %v, want ErrOffsetOutOfRange", err)
			}
			if _, err := p.Read(-1, 100); !errors.Is(err, ErrOffsetOutOfRange) {
				t.Fatalf("Read(-1): %v, want ErrOffsetOutOfRange", err)
			}
			// The caller's batch is not modified.
			b, _ := makeBatch(t, 99, 2, 5, 1)
			orig := bytes.Clone(b)
			if _, err := p.Append(bg, b); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, orig) {
				t.Fatal("Append modified the caller's batch")
			}
		})
	}
}

func checkRecords(t *testing.T, got, want []record.Record, from int64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Offset != from+int64(i) || !bytes.Equal(got[i].Value, want[i].Value) || got[i].Timestamp != want[i].Timestamp {
			t.Fatalf("record %d: got offset %d ts %d value %x, want offset %d ts %d value %x",
				i, got[i].Offset, got[i].Timestamp, got[i].Value, from+int64(i), want[i].Timestamp, want[i].Value)
		}
	}
}

func countBatches(t *testing.T, b []byte) int {
	t.Helper()
	n := 0
	if err := record.Batches(b, func(record.Header, []byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestAppendRejectsCorruptBatch(t *testing.T) {
	opts, _ := testOptions(t.TempDir())
	l := mustOpen(t, opts)
	defer l.Close()
	p := mustPartition(t, l, "t", TopicConfig{Partitions: 1})
	b, _ := makeBatch(t, 1, 3, 20, 5)
	b[len(b)-1] ^= 1
	if _, err := p.Append(bg, b); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Append(corrupt) = %v, want ErrCorrupt", err)
	}
	if _, err := p.Append(bg, b[:30]); !errors.Is(err, record.ErrShort) && !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Append(short) = %v", err)
	}
	if _, hw, _ := p.Offsets(); hw != 0 {
		t.Fatalf("high watermark %d after rejected appends", hw)
	}
}

func TestReopenAndRoll(t *testing.T) {
	dir := t.TempDir()
	opts, lb := testOptions(dir)
	cfg := TopicConfig{Partitions: 2, SegmentBytes: 2048}
	l := mustOpen(t, opts)
	if err := l.CreateTopic("rolls", cfg); err != nil {
		t.Fatal(err)
	}
	tp, _ := l.Topic("rolls")
	p, _ := tp.Partition(1)
	var want []record.Record
	for i := 0; i < 60; i++ {
		b, recs := makeBatch(t, uint64(i), 2, 40, int64(i)*100)
		if _, err := p.Append(bg, b); err != nil {
			t.Fatal(err)
		}
		want = append(want, recs...)
	}
	if st := p.Stats(); st.Segments < 4 {
		t.Fatalf("%d segments, want several (segment size 2048)", st.Segments)
	}
	checkRecords(t, readAllRecords(t, p, 0), want, 0)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Append(bg, mustBatch(t)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v, want ErrClosed", err)
	}
	l = mustOpen(t, opts)
	defer l.Close()
	tp, err := l.Topic("rolls")
	if err != nil {
		t.Fatal(err)
	}
	if got := tp.Config(); got.ID.IsZero() {
		t.Fatalf("config after reopen %+v: no topic id", got)
	} else if cfg.ID = got.ID; got != cfg {
		t.Fatalf("config after reopen %+v, want %+v", got, cfg)
	}
	p, _ = tp.Partition(1)
	checkRecords(t, readAllRecords(t, p, 0), want, 0)
	if !regexp.MustCompile(`partition=rolls/1 segments=\d+ log_start=0 next_offset=120 verified_bytes=0`).MatchString(lb.String()) ||
		strings.Contains(lb.String(), "rebuilding") || strings.Contains(lb.String(), "truncated") {
		t.Fatalf("clean reopen rebuilt or truncated something:\n%s", lb.String())
	}
	b, recs := makeBatch(t, 1000, 3, 10, 99999)
	res, err := p.Append(bg, b)
	if err != nil || res.BaseOffset != int64(len(want)) {
		t.Fatalf("append after reopen: %+v %v, want base %d", res, err, len(want))
	}
	want = append(want, recs...)
	checkRecords(t, readAllRecords(t, p, 0), want, 0)
	p0, _ := tp.Partition(0)
	if _, hw, _ := p0.Offsets(); hw != 0 {
		t.Fatalf("untouched partition has high watermark %d", hw)
	}
}

func mustBatch(t *testing.T) []byte {
	b, _ := makeBatch(t, 7, 1, 8, 1)
	return b
}

func TestConcurrentAppendsAndReaders(t *testing.T) {
	opts, _ := testOptions(t.TempDir())
	l := mustOpen(t, opts)
	defer l.Close()
	p := mustPartition(t, l, "c", TopicConfig{Partitions: 1, SegmentBytes: 16 << 10})
	const writers, perWriter = 8, 40
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	var rwg sync.WaitGroup
	readErr := make(chan error, 4)
	for r := 0; r < 4; r++ {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			off := int64(0)
			for off < writers*perWriter*2 {
				if err := p.Wait(ctx, off); err != nil {
					readErr <- err
					return
				}
				res, err := p.Read(off, 1024)
				if err != nil {
					readErr <- err
					return
				}
				err = record.Decode(res.Batches, func(h record.Header, r record.Record) error {
					if r.Offset >= off {
						off = r.Offset + 1
					}
					return nil
				})
				if err != nil {
					readErr <- err
					return
				}
			}
		}()
	}
	var wg sync.WaitGroup
	results := make(chan AppendResult, writers*perWriter)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				b, _ := makeBatch(t, uint64(w*1000+i), 2, 30, 1)
				res, err := p.Append(bg, b)
				if err != nil {
					t.Error(err)
					return
				}
				results <- res
			}
		}()
	}
	wg.Wait()
	close(results)
	seen := make(map[int64]bool)
	for r := range results {
		if r.LastOffset != r.BaseOffset+1 || seen[r.BaseOffset] {
			t.Fatalf("bad or duplicate result %+v", r)
		}
		seen[r.BaseOffset] = true
	}
	for off := int64(0); off < writers*perWriter*2; off += 2 {
		if !seen[off] {
			t.Fatalf("offset %d never acknowledged: offsets are not contiguous", off)
		}
	}
	rwg.Wait()
	select {
	case err := <-readErr:
		t.Fatal(err)
	default:
	}
	st := p.Stats()
	if st.AppendedBatches != writers*perWriter || st.Syncs == 0 || st.Syncs > st.AppendedBatches+int64(st.Segments) {
		t.Fatalf("stats %+v", st)
	}
}

func TestWait(t *testing.T) {
	opts, _ := testOptions(t.TempDir())
	l := mustOpen(t, opts)
	p := mustPartition(t, l, "w", TopicConfig{Partitions: 1})
	ctx, cancel := context.WithCancel(bg)
	cancel()
	if err := p.Wait(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait with cancelled ctx: %v", err)
	}
	done := make(chan error, 3)
	for i := 0; i < 3; i++ {
		go func() { done <- p.Wait(bg, 0) }()
	}
	if _, err := p.Append(bg, mustBatch(t)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	go func() { done <- p.Wait(bg, 5) }()
	l.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("Wait across Close: %v, want ErrClosed", err)
	}
}

// appendLateBatches appends n batches of three records whose timestamps
// mostly increase, with a late (out-of-order) record in each, and returns
// the records in offset order.
func appendLateBatches(t *testing.T, p *Partition, n int) []record.Record {
	t.Helper()
	var all []record.Record
	for i := range n {
		base := int64(1000 + i*50)
		recs := []record.Record{
			{Timestamp: base + 10, Value: []byte("a")},
			{Timestamp: base - 30, Value: []byte("b")}, // late
			{Timestamp: base + 40, Value: []byte("c")},
		}
		b, err := record.AppendBatch(nil, recs, record.BatchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Append(bg, b); err != nil {
			t.Fatal(err)
		}
		all = append(all, recs...)
	}
	return all
}

// TestOffsetForTime checks lookups by time against an oracle: Kafka's
// answer is the first record, in offset order, of the first batch whose
// max timestamp >= ts, with timestamp >= ts; which is the first record in
// the log with timestamp >= ts. After DeleteRecords moves the log start
// into a segment (even into a batch), only offsets at or past the log
// start count, as Kafka searches from the log start offset: the records
// below it are gone for readers, and a consumer reset to an offset below
// the start would be answered OFFSET_OUT_OF_RANGE.
func TestOffsetForTime(t *testing.T) {
	opts, _ := testOptions(t.TempDir())
	l := mustOpen(t, opts)
	defer l.Close()
	p := mustPartition(t, l, "ts", TopicConfig{Partitions: 1, SegmentBytes: 4096})
	all := appendLateBatches(t, p, 80)
	oracle := func(start, ts int64) (int64, int64, bool) {
		for i := start; i < int64(len(all)); i++ {
			if all[i].Timestamp >= ts {
				return i, all[i].Timestamp, true
			}
		}
		return 0, 0, false
	}
	for _, start := range []int64{0, 1, 4, 31, 95, 170, 239} {
		if _, err := p.DeleteRecords(start); err != nil {
			t.Fatal(err)
		}
		for ts := int64(0); ts < 5200; ts += 7 {
			wo, wts, wok := oracle(start, ts)
			o, gts, ok, err := p.OffsetForTime(ts)
			if err != nil {
				t.Fatal(err)
			}
			if ok != wok || ok && (o != wo || gts != wts) {
				t.Fatalf("log start %d: OffsetForTime(%d) = %d, %d, %v; want %d, %d, %v", start, ts, o, gts, ok, wo, wts, wok)
			}
		}
	}
}

func TestLogAppendTime(t *testing.T) {
	opts, _ := testOptions(t.TempDir())
	l := mustOpen(t, opts)
	defer l.Close()
	p := mustPartition(t, l, "lat", TopicConfig{Partitions: 1, LogAppendTime: true})
	b, _ := makeBatch(t, 1, 3, 10, 5)
	before := time.Now().UnixMilli()
	res, err := p.Append(bg, b)
	if err != nil {
		t.Fatal(err)
	}
	if res.LogAppendTime < before {
		t.Fatalf("LogAppendTime %d before the append started (%d)", res.LogAppendTime, before)
	}
	for _, r := range readAllRecords(t, p, 0) {
		if r.Timestamp != res.LogAppendTime {
			t.Fatalf("record timestamp %d, want the append time %d", r.Timestamp, res.LogAppendTime)
		}
	}
}

func TestRetention(t *testing.T) {
	opts, _ := testOptions(t.TempDir())
	l := mustOpen(t, opts)
	defer l.Close()
	if err := l.CreateTopic("size", TopicConfig{Partitions: 1, SegmentBytes: 1024, RetentionBytes: 3000}); err != nil {
		t.Fatal(err)
	}
	if err := l.CreateTopic("age", TopicConfig{Partitions: 1, SegmentBytes: 1024, Retention: time.Hour}); err != nil {
		t.Fatal(err)
	}
	ts, _ := l.Topic("size")
	ps, _ := ts.Partition(0)
	ta, _ := l.Topic("age")
	pa, _ := ta.Partition(0)
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for i := 0; i < 40; i++ {
		// The first half is two hours old, the second half fresh.
		stamp := now.Add(-2 * time.Hour).UnixMilli()
		if i >= 20 {
			stamp = now.UnixMilli()
		}
		b, _ := makeBatch(t, uint64(i), 2, 60, stamp)
		for _, p := range []*Partition{ps, pa} {
			if _, err := p.Append(bg, b); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.EnforceRetention(now); err != nil {
		t.Fatal(err)
	}
	st := ps.Stats()
	if st.Bytes < 3000 || st.Bytes > 3000+1024 || st.LogStartOffset == 0 {
		t.Fatalf("size retention left %d bytes, log start %d", st.Bytes, st.LogStartOffset)
	}
	if _, err := ps.Read(0, 100); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below log start: %v", err)
	}
	checkContiguous(t, ps, st.LogStartOffset)

	sa := pa.Stats()
	// Every segment holding only old records is gone; the first fresh
	// record (offset 40) is still there.
	if sa.LogStartOffset == 0 || sa.LogStartOffset > 40 {
		t.Fatalf("age retention moved log start to %d, want in (0, 40]", sa.LogStartOffset)
	}
	checkContiguous(t, pa, sa.LogStartOffset)
	// Everything expires later; the active segment is rolled away too.
	if err := l.EnforceRetention(now.Add(3 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	ls, hw, _ := pa.Offsets()
	if ls != hw || hw != 80 {
		t.Fatalf("after full expiry log start %d, high watermark %d; want both 80", ls, hw)
	}
	res, err := pa.Append(bg, mustBatch(t))
	if err != nil || res.BaseOffset != 80 {
		t.Fatalf("append after expiry: %+v %v", res, err)
	}
	// Reopen keeps the moved log start.
	l.Close()
	l2 := mustOpen(t, opts)
	defer l2.Close()
	ta, _ = l2.Topic("age")
	pa, _ = ta.Partition(0)
	if ls, hw, _ := pa.Offsets(); ls != 80 || hw != 81 {
		t.Fatalf("after reopen log start %d, high watermark %d; want 80, 81", ls, hw)
	}
}

func checkContiguous(t *testing.T, p *Partition, from int64) {
	t.Helper()
	recs := readAllRecords(t, p, from)
	_, hw, _ := p.Offsets()
	if int64(len(recs)) != hw-from {
		t.Fatalf("read %d records from %d, high watermark %d", len(recs), from, hw)
	}
}

func TestDirectoryLock(t *testing.T) {
	dir := t.TempDir()
	opts, _ := testOptions(dir)
	l := mustOpen(t, opts)
	_, err := Open(opts)
	var le *LockedError
	if !errors.As(err, &le) {
		t.Fatalf("second Open: %v, want *LockedError", err)
	}
	if le.Dir != dir || !strings.Contains(le.Owner, "pid "+itoa(os.Getpid())) {
		t.Fatalf("LockedError %+v does not name this process", le)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, opts)
	l.Close()
}

func itoa(n int) string { return formatInt(n) }

func formatInt(n int) string {
	var b []byte
	if n == 0 {
		return "0"
	}
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

func TestFormatVersion(t *testing.T) {
	dir := t.TempDir()
	opts, _ := testOptions(dir)
	l := mustOpen(t, opts)
	l.Close()
	if err := os.WriteFile(filepath.Join(dir, formatFile), []byte("sluice-log-format 99\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(opts); !errors.Is(err, ErrIncompatibleFormat) {
		t.Fatalf("Open of a version-99 directory: %v, want ErrIncompatibleFormat", err)
	}
	// The failed Open released the lock.
	os.WriteFile(filepath.Join(dir, formatFile), []byte("sluice-log-format 1\n"), 0o644)
	mustOpen(t, opts).Close()
}

func TestTopics(t *testing.T) {
	opts, _ := testOptions(t.TempDir())
	l := mustOpen(t, opts)
	defer l.Close()
	for _, tc := range []struct {
		name string
		cfg  TopicConfig
		err  error
	}{
		{"ok.name_1-x", TopicConfig{Partitions: 3}, nil},
		{"ok.name_1-x", TopicConfig{Partitions: 3}, ErrTopicExists},
		{"", TopicConfig{Partitions: 1}, ErrInvalidTopic},
		{".", TopicConfig{Partitions: 1}, ErrInvalidTopic},
		{"..", TopicConfig{Partitions: 1}, ErrInvalidTopic},
		{"a/b", TopicConfig{Partitions: 1}, ErrInvalidTopic},
		{"spaces no", TopicConfig{Partitions: 1}, ErrInvalidTopic},
		{strings.Repeat("x", 250), TopicConfig{Partitions: 1}, ErrInvalidTopic},
		{strings.Repeat("x", 249), TopicConfig{Partitions: 1}, nil},
		{"zero", TopicConfig{Partitions: 0}, ErrInvalidTopic},
		{"__internal", TopicConfig{Partitions: 1}, nil},
	} {
		err := l.CreateTopic(tc.name, tc.cfg)
		if (tc.err == nil) != (err == nil) || (tc.err != nil && !errors.Is(err, tc.err)) {
			t.Errorf("CreateTopic(%q) = %v, want %v", tc.name, err, tc.err)
		}
	}
	names := l.Topics()
	if len(names) != 3 || names[0] != "__internal" {
		t.Fatalf("Topics() = %v", names)
	}
	tp, _ := l.Topic("ok.name_1-x")
	if _, err := tp.Partition(3); !errors.Is(err, ErrPartitionOutOfRange) {
		t.Fatalf("Partition(3) of 3: %v", err)
	}
	if got, want := tp.PartitionForKey([]byte("hello")), record.KafkaPartition([]byte("hello"), 3); got != want {
		t.Fatalf("PartitionForKey = %d, want %d", got, want)
	}
	if _, err := l.Topic("nope"); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("Topic(nope): %v", err)
	}
	// Delete: waiters are released, the name can be reused, data is gone.
	p, _ := tp.Partition(0)
	if _, err := p.Append(bg, mustBatch(t)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Wait(bg, 10) }()
	if err := l.DeleteTopic("ok.name_1-x"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("Wait on a deleted topic: %v", err)
	}
	if err := l.DeleteTopic("ok.name_1-x"); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("second DeleteTopic: %v", err)
	}
	if err := l.CreateTopic("ok.name_1-x", TopicConfig{Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	tp, _ = l.Topic("ok.name_1-x")
	p, _ = tp.Partition(0)
	if _, hw, _ := p.Offsets(); hw != 0 {
		t.Fatalf("recreated topic has high watermark %d", hw)
	}
}

func TestParseFsyncPolicy(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want FsyncPolicy
		bad  bool
	}{
		{"always", FsyncPolicy{Mode: FsyncAlways}, false},
		{"never", FsyncPolicy{Mode: FsyncNever}, false},
		{"interval", FsyncPolicy{Mode: FsyncInterval, Interval: DefaultFsyncInterval}, false},
		{"interval:5ms", FsyncPolicy{Mode: FsyncInterval, Interval: 5 * time.Millisecond}, false},
		{"interval:-5ms", FsyncPolicy{}, true},
		{"sometimes", FsyncPolicy{}, true},
	} {
		got, err := ParseFsyncPolicy(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParseFsyncPolicy(%q) = %+v, %v", tc.in, got, err)
		}
		if !tc.bad {
			back, err := ParseFsyncPolicy(got.String())
			if err != nil || back.Mode != got.Mode {
				t.Errorf("round trip of %q: %+v %v", tc.in, back, err)
			}
		}
	}
}

// TestReadEveryOffset checks the sparse index against an oracle: a read at
// any offset starts with the batch that contains it, whatever the index
// interval and batch sizes.
func TestReadEveryOffset(t *testing.T) {
	for _, interval := range []int{1, 100, 4096} {
		opts, _ := testOptions(t.TempDir())
		opts.IndexIntervalBytes = interval
		l := mustOpen(t, opts)
		p := mustPartition(t, l, "every", TopicConfig{Partitions: 1, SegmentBytes: 3000})
		type span struct{ base, last int64 }
		var spans []span
		for i := 0; i < 50; i++ {
			b, _ := makeBatch(t, uint64(i), 1+i%7, (i*37)%200, int64(i))
			res, err := p.Append(bg, b)
			if err != nil {
				t.Fatal(err)
			}
			spans = append(spans, span{res.BaseOffset, res.LastOffset})
		}
		for round := 0; round < 2; round++ {
			for _, s := range spans {
				for off := s.base; off <= s.last; off++ {
					res, err := p.Read(off, 1)
					if err != nil {
						t.Fatalf("interval %d: Read(%d): %v", interval, off, err)
					}
					h, err := record.ParseHeader(res.Batches)
					if err != nil || h.BaseOffset != s.base || h.LastOffset() != s.last {
						t.Fatalf("interval %d: Read(%d) starts with batch %d..%d, want %d..%d (%v)", interval, off, h.BaseOffset, h.LastOffset(), s.base, s.last, err)
					}
				}
			}
			// Again from the index files after a reopen.
			l.Close()
			l = mustOpen(t, opts)
			tp, _ := l.Topic("every")
			p, _ = tp.Partition(0)
		}
		l.Close()
	}
}

func TestFsyncIntervalSyncs(t *testing.T) {
	opts, _ := testOptions(t.TempDir())
	l := mustOpen(t, opts)
	defer l.Close()
	p := mustPartition(t, l, "iv", TopicConfig{Partitions: 1, Fsync: FsyncPolicy{Mode: FsyncInterval, Interval: time.Millisecond}})
	if _, err := p.Append(bg, mustBatch(t)); err != nil {
		t.Fatal(err)
	}
	// The append is acknowledged before any fsync; the ticker syncs soon.
	deadline := time.Now().Add(20 * time.Second)
	for p.Stats().Syncs == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no background fsync within 20s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestMetrics(t *testing.T) {
	opts, _ := testOptions(t.TempDir())
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	// No pre-written tail: its fdatasync after the commit would count too.
	opts.SegmentPrefill = -1
	l := mustOpen(t, opts)
	defer l.Close()
	p := mustPartition(t, l, "m", TopicConfig{Partitions: 1})
	b, _ := makeBatch(t, 1, 3, 10, 1)
	if _, err := p.Append(bg, b); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch {
			case m.GetCounter() != nil:
				got[mf.GetName()] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				got[mf.GetName()] = m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				got[mf.GetName()] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	for name, want := range map[string]float64{
		"sluice_log_high_watermark":          3,
		"sluice_log_appended_records_total":  3,
		"sluice_log_appended_batches_total":  1,
		"sluice_log_commit_duration_seconds": 1,
		"sluice_log_fsyncs_total":            1,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
	// A second log cannot register the same metrics: Open fails cleanly.
	opts2, _ := testOptions(t.TempDir())
	opts2.Registerer = reg
	if _, err := Open(opts2); err == nil {
		t.Fatal("second Open with the same registry succeeded")
	}
}

// TestPartitionSegments: Segments lists the segments oldest first, with
// their bytes adding up to the partition's, their newest timestamps, and
// the active one last; DeleteRecords at a segment's base removes those
// before it.
func TestPartitionSegments(t *testing.T) {
	opts, _ := testOptions(t.TempDir())
	l := mustOpen(t, opts)
	defer l.Close()
	if err := l.CreateTopic("segs", TopicConfig{Partitions: 1, SegmentBytes: 1024}); err != nil {
		t.Fatal(err)
	}
	tp, _ := l.Topic("segs")
	p, _ := tp.Partition(0)
	if segs := p.Segments(); len(segs) != 1 || segs[0].Bytes != 0 {
		t.Fatalf("empty partition: %+v", segs)
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	for i := 0; i < 30; i++ {
		b, _ := makeBatch(t, uint64(i), 2, 60, base+int64(i)*1000)
		if _, err := p.Append(bg, b); err != nil {
			t.Fatal(err)
		}
	}
	segs := p.Segments()
	if len(segs) < 3 {
		t.Fatalf("want several segments, got %+v", segs)
	}
	var total int64
	for i, s := range segs {
		total += s.Bytes
		if i > 0 && (s.Base <= segs[i-1].Base || s.MaxTimestamp < segs[i-1].MaxTimestamp) {
			t.Fatalf("segments out of order: %+v", segs)
		}
	}
	if st := p.Stats(); total != st.Bytes || len(segs) != st.Segments {
		t.Fatalf("segments hold %d bytes in %d, stats say %d in %d", total, len(segs), st.Bytes, st.Segments)
	}
	if last := segs[len(segs)-1]; last.MaxTimestamp < base+29*1000 || last.MaxTimestamp > base+29*1000+10 {
		t.Fatalf("active segment's newest timestamp %d, want the last batch's (%d and its records' deltas)", last.MaxTimestamp, base+29*1000)
	}
	if _, err := p.DeleteRecords(segs[2].Base); err != nil {
		t.Fatal(err)
	}
	if after := p.Segments(); len(after) != len(segs)-2 || after[0] != segs[2] {
		t.Fatalf("after deleting below segment 2: %+v (was %+v)", after, segs)
	}
}

// TestUnlinkedTopicCrashSafe: a topic unlinked but whose files were not
// removed yet (UnlinkTopic without Remove, as a crash leaves it) is gone:
// its name is free at once, a topic created again under it starts empty,
// and the next Open removes the old files and does not bring it back.
func TestUnlinkedTopicCrashSafe(t *testing.T) {
	dir := t.TempDir()
	opts, _ := testOptions(dir)
	l := mustOpen(t, opts)
	p := mustPartition(t, l, "t", TopicConfig{Partitions: 1})
	b, _ := makeBatch(t, 1, 10, 100, 1000)
	if _, err := p.Append(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if _, err := l.UnlinkTopic("t"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Topic("t"); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("topic after UnlinkTopic: %v", err)
	}
	trash, _ := os.ReadDir(filepath.Join(dir, "trash"))
	if len(trash) == 0 {
		t.Fatal("the unlinked topic's files are not in the trash")
	}
	p = mustPartition(t, l, "t", TopicConfig{Partitions: 1})
	if _, hw, _ := p.Offsets(); hw != 0 {
		t.Fatalf("topic created again over unremoved files: high watermark %d, want 0", hw)
	}
	if err := l.DeleteTopic("t"); err != nil {
		t.Fatal(err)
	}
	l.Close() // a crash: the first topic's files were never removed
	l = mustOpen(t, opts)
	defer l.Close()
	if _, err := l.Topic("t"); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("deleted topic back after a restart: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "trash")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the trash is still there after Open: %v", err)
	}
}

// TestTopicIDs: a topic gets a random id when created, kept after a
// restart and through config changes; a topic created again under a
// deleted one's name gets a new id; a topic written by an earlier version
// (no id in its topic.json) keeps the id derived from its name, which is
// then recorded in its topic.json.
func TestTopicIDs(t *testing.T) {
	dir := t.TempDir()
	opts, _ := testOptions(dir)
	l := mustOpen(t, opts)
	for _, n := range []string{"a", "old"} {
		if err := l.CreateTopic(n, TopicConfig{Partitions: 1}); err != nil {
			t.Fatal(err)
		}
	}
	id := func(name string) TopicID {
		t.Helper()
		tp, err := l.Topic(name)
		if err != nil {
			t.Fatal(err)
		}
		return tp.ID()
	}
	first := id("a")
	if first.IsZero() || first == LegacyTopicID("a") || first == id("old") {
		t.Fatalf("new topic's id %v: want a random one", first)
	}
	if _, err := l.AlterTopicConfig("a", false, func(c *TopicConfig) error {
		c.Retention = time.Hour
		c.ID = TopicID{1}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if id("a") != first {
		t.Fatalf("id changed by a config change: %v, was %v", id("a"), first)
	}
	// "old" as an earlier version wrote it: no id.
	cfgPath := filepath.Join(dir, "topics", "old", "topic.json")
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	b = regexp.MustCompile(`(?m)^\s*"ID": "[^"]*",?\n`).ReplaceAll(b, nil)
	b = regexp.MustCompile(`,(\s*})\s*$`).ReplaceAll(b, []byte("$1\n"))
	if bytes.Contains(b, []byte(`"ID"`)) {
		t.Fatalf("test setup: id still in %s", b)
	}
	l.Close()
	if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		l = mustOpen(t, opts)
		if id("a") != first {
			t.Fatalf("id after a restart %v, was %v", id("a"), first)
		}
		if id("old") != LegacyTopicID("old") {
			t.Fatalf("topic without an id in topic.json: id %v, want the one derived from its name %v", id("old"), LegacyTopicID("old"))
		}
		l.Close()
	}
	if b, _ := os.ReadFile(cfgPath); !bytes.Contains(b, []byte(LegacyTopicID("old").String())) {
		t.Fatalf("derived id not recorded in topic.json: %s", b)
	}
	l = mustOpen(t, opts)
	defer l.Close()
	if err := l.DeleteTopic("a"); err != nil {
		t.Fatal(err)
	}
	cfg := TopicConfig{Partitions: 1, ID: first}
	if err := l.CreateTopic("a", cfg); err != nil {
		t.Fatal(err)
	}
	if id("a") == first || id("a").IsZero() {
		t.Fatalf("topic created again under its name has id %v, the deleted one had %v", id("a"), first)
	}
}
