package logstore

import (
	"bytes"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sluicehq/sluice/record"
)

// orderFS records, for the segment files of a partition, every fdatasync:
// how many bytes the file held when it started and the event number at
// which it returned, and counts writes made while an fdatasync was
// running. Writes go through writev when the inner file has it. Its first
// Sync after arm() blocks until release is closed.
type orderFS struct {
	FS
	seq atomic.Int64 // event counter shared with the test

	mu          sync.Mutex
	syncs       []syncEvent
	inSync      int
	aheadWrites int // writes while an fdatasync ran
	armed       bool
	entered     chan struct{}
	release     chan struct{}
	files       []*orderFile
}

type syncEvent struct {
	sizeAtStart int64
	endSeq      int64
}

func (o *orderFS) arm() {
	o.mu.Lock()
	o.armed = true
	o.entered = make(chan struct{})
	o.release = make(chan struct{})
	o.mu.Unlock()
}

func (o *orderFS) OpenFile(name string, flag int, perm fsFileMode) (File, error) {
	f, err := o.FS.OpenFile(name, flag, perm)
	if err != nil || !strings.HasSuffix(name, logSuffix) {
		return f, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	of := &orderFile{File: f, o: o, size: st.Size(), synced: st.Size()}
	o.mu.Lock()
	o.files = append(o.files, of)
	o.mu.Unlock()
	return of, nil
}

type orderFile struct {
	File
	o      *orderFS
	mu     sync.Mutex
	size   int64 // bytes written (appends only: the log writes at the end)
	synced int64 // size at the start of the last fdatasync that returned
}

func (f *orderFile) wrote(n int) {
	f.mu.Lock()
	f.size += int64(n)
	f.mu.Unlock()
	f.o.mu.Lock()
	if f.o.inSync > 0 {
		f.o.aheadWrites++
	}
	f.o.mu.Unlock()
}

func (f *orderFile) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	f.wrote(n)
	return n, err
}

func (f *orderFile) WriteVectors(bufs [][]byte) (int, error) {
	n, err := writeVectors(f.File, bufs)
	f.wrote(n)
	return n, err
}

func (f *orderFile) Truncate(size int64) error {
	err := f.File.Truncate(size)
	f.mu.Lock()
	f.size = size
	f.mu.Unlock()
	return err
}

func (f *orderFile) Sync() error {
	f.mu.Lock()
	size := f.size
	f.mu.Unlock()
	f.o.mu.Lock()
	f.o.inSync++
	armed := f.o.armed
	f.o.armed = false
	entered, release := f.o.entered, f.o.release
	f.o.mu.Unlock()
	if armed {
		close(entered)
		<-release
	}
	err := f.File.Sync()
	if err == nil {
		f.mu.Lock()
		f.synced = max(f.synced, min(size, f.size))
		f.mu.Unlock()
	}
	f.o.mu.Lock()
	f.o.inSync--
	if err == nil {
		f.o.syncs = append(f.o.syncs, syncEvent{sizeAtStart: size, endSeq: f.o.seq.Add(1)})
	}
	f.o.mu.Unlock()
	return err
}

// fixedBatch is a batch of recs records of 100-byte values, always the same
// size (so a batch's byte end follows from its offsets).
func fixedBatch(t testing.TB, recs int) []byte {
	t.Helper()
	rs := make([]record.Record, recs)
	for i := range rs {
		rs[i] = record.Record{Timestamp: int64(i + 1), Key: []byte("key"), Value: bytes.Repeat([]byte{'v'}, 100)}
	}
	b, err := record.AppendBatch(nil, rs, record.BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestWriteAheadAcknowledgedOnlyAfterCoveringSync: batches assigned while a
// commit's fdatasync runs are written to the segment at once (write-ahead),
// but none is acknowledged before an fdatasync that started after it was
// written has returned. Concurrent appenders, in place and copied; every
// acknowledgement is checked against the recorded fdatasyncs.
func TestWriteAheadAcknowledgedOnlyAfterCoveringSync(t *testing.T) {
	opts, _ := testOptions(t.TempDir())
	o := &orderFS{FS: OSFS{}}
	opts.FS = o
	l := mustOpen(t, opts)
	defer l.Close()
	p := mustPartition(t, l, "wa", TopicConfig{Partitions: 1, Fsync: FsyncPolicy{Mode: FsyncAlways}})
	const recsPerBatch = 4
	proto := fixedBatch(t, recsPerBatch)
	size := int64(len(proto))

	type ack struct {
		base int64
		seq  int64
	}
	var mu sync.Mutex
	var acks []ack
	commit := func(a Assigned) error {
		res, err := a.Commit()
		if err != nil {
			return err
		}
		seq := o.seq.Add(1)
		mu.Lock()
		acks = append(acks, ack{res.BaseOffset, seq})
		mu.Unlock()
		return nil
	}

	// Deterministic part: hold the first fdatasync, assign two batches
	// behind it and see them written while it is held, not acknowledged.
	o.arm()
	first := make(chan error, 1)
	go func() {
		a, err := p.Assign(bg, proto)
		if err == nil {
			err = commit(a)
		}
		first <- err
	}()
	<-o.entered
	behind := make(chan error, 2)
	for i := 0; i < 2; i++ {
		a, err := p.AssignInPlace(bg, bytes.Clone(proto))
		if err != nil {
			t.Fatal(err)
		}
		go func() { behind <- commit(a) }()
	}
	o.mu.Lock()
	ahead := o.aheadWrites
	o.mu.Unlock()
	if ahead == 0 {
		t.Fatal("batches assigned during an fdatasync were not written ahead")
	}
	select {
	case err := <-behind:
		t.Fatalf("a batch written ahead was acknowledged while the only fdatasync was held (%v)", err)
	case err := <-first:
		t.Fatalf("acknowledged before its fdatasync returned (%v)", err)
	default:
	}
	close(o.release)
	for _, ch := range []chan error{first, behind, behind} {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}

	// Concurrent part: appenders in place and copied, checked afterwards.
	const writers, perWriter = 6, 60
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				var a Assigned
				var err error
				buf := bytes.Clone(proto)
				if (w+i)%2 == 0 {
					a, err = p.AssignInPlace(bg, buf)
				} else {
					a, err = p.Assign(bg, buf)
				}
				if err == nil {
					err = commit(a)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	o.mu.Lock()
	syncs := append([]syncEvent(nil), o.syncs...)
	o.mu.Unlock()
	total := 3 + writers*perWriter
	if len(acks) != total {
		t.Fatalf("%d acknowledgements, want %d", len(acks), total)
	}
	for _, a := range acks {
		end := (a.base/recsPerBatch + 1) * size
		covered := false
		for _, s := range syncs {
			if s.sizeAtStart >= end && s.endSeq < a.seq {
				covered = true
				break
			}
		}
		if !covered {
			t.Fatalf("batch at offset %d (bytes up to %d) acknowledged at event %d before any fdatasync that started with it written returned (fdatasyncs: %v)", a.base, end, a.seq, syncs)
		}
	}
	if got := len(readAllRecords(t, p, 0)); got != total*recsPerBatch {
		t.Fatalf("read %d records, want %d", got, total*recsPerBatch)
	}
}

// TestWriteAheadFailureRollsBack: a write-ahead that fails (a full disk,
// after part of the batch reached the file) acknowledges nothing it wrote:
// the batch's appender gets the error, the segment is cut back to the
// committed size, the offsets are given again, and the batches committed
// before survive a reopen.
func TestWriteAheadFailureRollsBack(t *testing.T) {
	dir := t.TempDir()
	opts, _ := testOptions(dir)
	o := &orderFS{FS: OSFS{}}
	ffs := &faultFS{FS: o, budget: -1}
	opts.FS = ffs
	l := mustOpen(t, opts)
	p := mustPartition(t, l, "waf", TopicConfig{Partitions: 1, Fsync: FsyncPolicy{Mode: FsyncAlways}})
	a, _ := makeBatch(t, 1, 3, 50, 1)
	if _, err := p.Append(bg, a); err != nil {
		t.Fatal(err)
	}
	// B's commit holds its fdatasync; C is assigned meanwhile and its
	// write-ahead runs out of space halfway.
	o.arm()
	b, _ := makeBatch(t, 2, 3, 50, 1)
	bDone := make(chan error, 1)
	go func() {
		_, err := p.Append(bg, b)
		bDone <- err
	}()
	<-o.entered
	c, _ := makeBatch(t, 3, 3, 50, 1)
	ffs.setBudget(int64(len(c) / 2))
	ac, err := p.AssignInPlace(bg, bytes.Clone(c))
	if err != nil {
		t.Fatal(err)
	}
	if ffs.fails == 0 {
		t.Fatal("setup: the write-ahead did not run into the full disk")
	}
	ffs.setBudget(-1)
	cDone := make(chan error, 1)
	go func() {
		_, err := ac.Commit()
		cDone <- err
	}()
	close(o.release)
	if err := <-bDone; err != nil {
		t.Fatalf("the batch synced before the failed write-ahead: %v", err)
	}
	if err := <-cDone; err == nil {
		t.Fatal("the batch whose write-ahead failed was acknowledged")
	}
	d, _ := makeBatch(t, 4, 3, 50, 1)
	res, err := p.Append(bg, d)
	if err != nil {
		t.Fatalf("append after the failed write-ahead: %v", err)
	}
	if res.BaseOffset != 6 {
		t.Fatalf("the append after the failure got offset %d, want 6 (the discarded batch's)", res.BaseOffset)
	}
	want := 9
	if got := len(readAllRecords(t, p, 0)); got != want {
		t.Fatalf("read %d records, want %d", got, want)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	opts2, logs := testOptions(dir)
	l2 := mustOpen(t, opts2)
	defer l2.Close()
	p2 := mustPartition(t, l2, "waf", TopicConfig{})
	recs := readAllRecords(t, p2, 0)
	if len(recs) != want {
		t.Fatalf("after reopen: %d records, want %d", len(recs), want)
	}
	if strings.Contains(logs.String(), "torn") {
		t.Fatalf("reopen found a torn tail: the failed write-ahead was not cut back:\n%s", logs)
	}
}

// TestRollKeepsWriteAheadsOut: an append that arrives while a roll's
// fdatasync runs must not be written ahead into the segment being sealed
// (the roll would seal it unsynced, behind the published tip, or cut it
// with the pre-written tail): it is either synced by the roll or goes to
// the next segment, and it is readable and durable when acknowledged.
func TestRollKeepsWriteAheadsOut(t *testing.T) {
	for _, prefill := range []int64{-1, 1 << 20} {
		opts, _ := testOptions(t.TempDir())
		o := &orderFS{FS: OSFS{}}
		opts.FS = o
		opts.SegmentPrefill = prefill
		l := mustOpen(t, opts)
		p := mustPartition(t, l, "roll", TopicConfig{Partitions: 1, Fsync: FsyncPolicy{Mode: FsyncAlways}})
		proto := fixedBatch(t, 4)
		if _, err := p.Append(bg, bytes.Clone(proto)); err != nil {
			t.Fatal(err)
		}
		o.arm()
		rolled := make(chan error, 1)
		go func() { rolled <- p.roll(false, 0) }()
		<-o.entered // the roll's fdatasync is held
		a, err := p.AssignInPlace(bg, bytes.Clone(proto))
		if err != nil {
			t.Fatal(err)
		}
		close(o.release)
		if err := <-rolled; err != nil {
			t.Fatal(err)
		}
		if _, err := a.Commit(); err != nil {
			t.Fatal(err)
		}
		o.mu.Lock()
		for _, f := range o.files {
			f.mu.Lock()
			if f.synced < f.size {
				t.Errorf("prefill %d: an acknowledged batch is not synced: a segment holds %d bytes, %d of them synced", prefill, f.size, f.synced)
			}
			f.mu.Unlock()
		}
		o.mu.Unlock()
		if got := len(readAllRecords(t, p, 0)); got != 8 {
			t.Errorf("prefill %d: read %d records after the roll, want 8", prefill, got)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
