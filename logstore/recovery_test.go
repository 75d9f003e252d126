package logstore

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sluicehq/sluice/record"
)

// crash abandons the log as a killed process would: files are closed
// without flushing indexes, snapshots or recovery points, and the lock is
// released. Data already written stays (as in the page cache).
func (l *Log) crash() {
	l.mu.Lock()
	l.closed = true
	topics := l.topics
	l.mu.Unlock()
	close(l.stop)
	for _, t := range topics {
		if t.stopSync != nil {
			close(t.stopSync)
		}
		for _, p := range t.partitions() {
			p.syncMu.Lock()
			p.mu.Lock()
			p.closed = true
			p.closedSync = true
			close(p.closing)
			for _, s := range p.segments {
				s.release()
			}
			p.mu.Unlock()
			p.syncMu.Unlock()
			p.fillWG.Wait() // a filler sees closed and stops
			p.closeFillSyncer()
		}
	}
	l.wg.Wait()
	l.lock.Close()
}

// ackOracle remembers what was acknowledged: records by offset and the byte
// layout of batches.
type ackOracle struct {
	recs    map[int64]record.Record
	batches []ackBatch
}

type ackBatch struct {
	base, last int64
	size       int
}

func (o *ackOracle) add(res AppendResult, b []byte, recs []record.Record) {
	for i, r := range recs {
		r.Offset = res.BaseOffset + int64(i)
		o.recs[r.Offset] = r
	}
	o.batches = append(o.batches, ackBatch{base: res.BaseOffset, last: res.LastOffset, size: len(b)})
}

// fillRandom appends random batches and returns what was acknowledged.
func fillRandom(t *testing.T, rng *rand.Rand, p *Partition, n int) *ackOracle {
	t.Helper()
	o := &ackOracle{recs: make(map[int64]record.Record)}
	for i := 0; i < n; i++ {
		b, recs := makeBatch(t, rng.Uint64(), 1+rng.IntN(8), rng.IntN(300), int64(1000+i))
		res, err := p.Append(bg, b)
		if err != nil {
			t.Fatal(err)
		}
		o.add(res, b, recs)
	}
	return o
}

// segmentFiles returns the partition's .log files in order.
func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(m)
	return m
}

// reopenAndCheckAcknowledged opens the log again (closed at the test's
// end) and checks that partition 0 of topic holds exactly the acknowledged
// records: its high watermark is their count and every one is served.
func reopenAndCheckAcknowledged(t *testing.T, opts Options, topic string, o *ackOracle) *Partition {
	t.Helper()
	l := mustOpen(t, opts)
	t.Cleanup(func() { l.Close() })
	tp, err := l.Topic(topic)
	if err != nil {
		t.Fatalf("after reopen: %v", err)
	}
	p, err := tp.Partition(0)
	if err != nil {
		t.Fatalf("after reopen: %v", err)
	}
	if _, hw, _ := p.Offsets(); hw != int64(len(o.recs)) {
		t.Fatalf("after reopen high watermark %d, acknowledged %d records", hw, len(o.recs))
	}
	if n := checkServed(t, p, o); n != int64(len(o.recs)) {
		t.Fatalf("served %d of %d acknowledged records", n, len(o.recs))
	}
	return p
}

// checkServed reads the whole partition and checks that every record served
// is exactly the acknowledged one at that offset. It returns how many were
// read before the end or a corruption error.
func checkServed(t *testing.T, p *Partition, o *ackOracle) int64 {
	t.Helper()
	ls, hw, _ := p.Offsets()
	off := ls
	for off < hw {
		res, err := p.Read(off, 2048)
		if err != nil {
			if errors.Is(err, ErrCorrupt) {
				return off - ls
			}
			t.Fatalf("Read(%d): %v", off, err)
		}
		err = record.Decode(res.Batches, func(h record.Header, r record.Record) error {
			if r.Offset < off {
				return nil
			}
			want, ok := o.recs[r.Offset]
			if !ok || r.Offset != off || !bytes.Equal(r.Value, want.Value) || r.Timestamp != want.Timestamp || !bytes.Equal(r.Key, want.Key) {
				return fmt.Errorf("served a wrong record at offset %d (expected %d)", r.Offset, off)
			}
			off++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return off - ls
}

func TestRecoveryTornTail(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 100; iter++ {
		clean := iter%3 == 0
		t.Run(fmt.Sprintf("%d/clean=%v", iter, clean), func(t *testing.T) {
			dir := t.TempDir()
			opts, lb := testOptions(dir)
			opts.FS = noSyncFS{} // recovery logic, not durability, is under test here
			l := mustOpen(t, opts)
			p := mustPartition(t, l, "torn", TopicConfig{Partitions: 1, SegmentBytes: 4096})
			o := fillRandom(t, rng, p, 5+rng.IntN(40))
			if clean {
				l.Close()
			} else {
				l.crash()
			}
			pdir := filepath.Join(dir, topicsDir, "torn", "0")
			segs := segmentFiles(t, pdir)
			lastSeg := segs[len(segs)-1]
			lastBase, _ := parseSegmentName(filepath.Base(lastSeg))
			st, _ := os.Stat(lastSeg)
			cut := rng.Int64N(st.Size() + 1)
			if err := os.Truncate(lastSeg, cut); err != nil {
				t.Fatal(err)
			}
			// Oracle: the batches of the last segment that end at or before the cut survive.
			want := lastBase
			pos := int64(0)
			for _, b := range o.batches {
				if b.base < lastBase {
					continue
				}
				if pos+int64(b.size) > cut {
					break
				}
				pos += int64(b.size)
				want = b.last + 1
			}
			l = mustOpen(t, opts)
			defer l.Close()
			tp, _ := l.Topic("torn")
			p, _ = tp.Partition(0)
			if _, hw, _ := p.Offsets(); hw != want {
				t.Fatalf("cut at %d of %d: high watermark %d, want %d\n%s", cut, st.Size(), hw, want, lb.String())
			}
			if n := checkServed(t, p, o); n != want {
				t.Fatalf("read %d records, want %d", n, want)
			}
			if cut != pos && !strings.Contains(lb.String(), "truncated torn tail") {
				t.Fatalf("no warning for a cut inside a batch:\n%s", lb.String())
			}
			appendAfterRecovery(t, p, o, want, 2)
		})
	}
}

// appendAfterRecovery checks that a recovered log goes on from want: a
// batch of n records lands there and everything acknowledged is served.
func appendAfterRecovery(t *testing.T, p *Partition, o *ackOracle, want int64, n int) {
	t.Helper()
	b, recs := makeBatch(t, 5, n, 10, 1)
	res, err := p.Append(bg, b)
	if err != nil || res.BaseOffset != want {
		t.Fatalf("append after recovery: %+v %v (want base %d)", res, err, want)
	}
	o.add(res, b, recs)
	if got := checkServed(t, p, o); got != want+int64(n) {
		t.Fatalf("read %d records after the append, want %d", got, want+int64(n))
	}
}

// TestRecoveryBitFlips flips random bits in segment and index files and
// checks that whatever Open and Read do, no reader is ever served a record
// that differs from the acknowledged one.
func TestRecoveryBitFlips(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for iter := 0; iter < 150; iter++ {
		clean := iter%2 == 0
		t.Run(fmt.Sprintf("%d/clean=%v", iter, clean), func(t *testing.T) {
			dir := t.TempDir()
			opts, _ := testOptions(dir)
			opts.FS = noSyncFS{} // recovery logic, not durability, is under test here
			l := mustOpen(t, opts)
			p := mustPartition(t, l, "flip", TopicConfig{Partitions: 1, SegmentBytes: 4096})
			o := fillRandom(t, rng, p, 10+rng.IntN(30))
			if clean {
				l.Close()
			} else {
				l.crash()
			}
			pdir := filepath.Join(dir, topicsDir, "flip", "0")
			files, _ := filepath.Glob(filepath.Join(pdir, "*index"))
			files = append(files, segmentFiles(t, pdir)...)
			files = append(files, segmentFiles(t, pdir)...) // weigh logs more
			for flips := 1 + rng.IntN(3); flips > 0; flips-- {
				name := files[rng.IntN(len(files))]
				data, err := os.ReadFile(name)
				if err != nil || len(data) == 0 {
					continue
				}
				i := rng.IntN(len(data))
				data[i] ^= 1 << rng.IntN(8)
				os.WriteFile(name, data, 0o644)
			}
			l, err := Open(opts)
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("Open failed with a non-corruption error: %v", err)
				}
				// Repair mode opens and serves only good data.
				ropts := opts
				ropts.RepairCorruption = true
				if l, err = Open(ropts); err != nil {
					t.Fatalf("Open with RepairCorruption: %v", err)
				}
			}
			defer l.Close()
			tp, _ := l.Topic("flip")
			p, _ = tp.Partition(0)
			checkServed(t, p, o)
		})
	}
}

func TestRecoveryMiddleCorruption(t *testing.T) {
	dir := t.TempDir()
	opts, lb := testOptions(dir)
	l := mustOpen(t, opts)
	p := mustPartition(t, l, "mid", TopicConfig{Partitions: 1})
	rng := rand.New(rand.NewPCG(5, 6))
	o := fillRandom(t, rng, p, 10)
	l.crash()
	seg := segmentFiles(t, filepath.Join(dir, topicsDir, "mid", "0"))[0]
	data, _ := os.ReadFile(seg)
	// Damage the value bytes of the fourth batch.
	pos := 0
	for _, b := range o.batches[:3] {
		pos += b.size
	}
	data[pos+record.HeaderSize+2] ^= 0xff
	os.WriteFile(seg, data, 0o644)
	_, err := Open(opts)
	var ce *CorruptionError
	if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open: %v, want a CorruptionError", err)
	}
	if ce.Offset != o.batches[3].base || ce.Position != int64(pos) {
		t.Fatalf("corruption reported at offset %d byte %d, want offset %d byte %d", ce.Offset, ce.Position, o.batches[3].base, pos)
	}
	ropts := opts
	ropts.RepairCorruption = true
	l = mustOpen(t, ropts)
	defer l.Close()
	tp, _ := l.Topic("mid")
	p, _ = tp.Partition(0)
	if _, hw, _ := p.Offsets(); hw != o.batches[3].base {
		t.Fatalf("repaired log ends at %d, want %d", hw, o.batches[3].base)
	}
	if !strings.Contains(lb.String(), "RepairCorruption") {
		t.Fatalf("repair not logged:\n%s", lb.String())
	}
	checkServed(t, p, o)
}

func TestIndexRebuild(t *testing.T) {
	for _, damage := range []string{"remove", "garbage", "truncate"} {
		t.Run(damage, func(t *testing.T) {
			dir := t.TempDir()
			opts, lb := testOptions(dir)
			l := mustOpen(t, opts)
			p := mustPartition(t, l, "idx", TopicConfig{Partitions: 1, SegmentBytes: 4096})
			rng := rand.New(rand.NewPCG(7, 8))
			o := fillRandom(t, rng, p, 60)
			l.Close()
			idx, _ := filepath.Glob(filepath.Join(dir, topicsDir, "idx", "0", "*index"))
			for _, f := range idx {
				switch damage {
				case "remove":
					os.Remove(f)
				case "garbage":
					os.WriteFile(f, bytes.Repeat([]byte{0xab}, 24), 0o644)
				case "truncate":
					if st, _ := os.Stat(f); st.Size() > 0 {
						os.Truncate(f, st.Size()-1)
					}
				}
			}
			l = mustOpen(t, opts)
			defer l.Close()
			tp, _ := l.Topic("idx")
			p, _ = tp.Partition(0)
			if n := checkServed(t, p, o); n != int64(len(o.recs)) {
				t.Fatalf("read %d of %d records", n, len(o.recs))
			}
			if damage != "remove" && !strings.Contains(lb.String(), "rebuilding segment index") {
				t.Fatalf("no rebuild logged:\n%s", lb.String())
			}
			for ts := int64(990); ts < 1070; ts += 3 {
				if _, _, _, err := p.OffsetForTime(ts); err != nil {
					t.Fatal(err)
				}
			}
			// The rebuilt indexes were persisted: the next open trusts them.
			l.Close()
			opts2, lb2 := testOptions(dir)
			l2 := mustOpen(t, opts2)
			defer l2.Close()
			if strings.Contains(lb2.String(), "rebuilding") || !strings.Contains(lb2.String(), "verified_bytes=0") {
				t.Fatalf("second reopen after an index rebuild:\n%s", lb2.String())
			}
		})
	}
}

func TestDiskFull(t *testing.T) {
	dir := t.TempDir()
	opts, _ := testOptions(dir)
	ffs := &faultFS{FS: OSFS{}, budget: -1}
	opts.FS = ffs
	l := mustOpen(t, opts)
	p := mustPartition(t, l, "full", TopicConfig{Partitions: 1, SegmentBytes: 64 << 10})
	rng := rand.New(rand.NewPCG(9, 10))
	o := fillRandom(t, rng, p, 20)
	ffs.setBudget(700)
	var mu sync.Mutex
	var wg sync.WaitGroup
	failed := 0
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				b, recs := makeBatch(t, uint64(w*100+i), 3, 100, 5000)
				res, err := p.Append(bg, b)
				mu.Lock()
				if err != nil {
					if !errors.Is(err, ErrDiskFull) {
						t.Errorf("append on a full disk: %v, want ErrDiskFull", err)
					}
					failed++
				} else {
					o.add(res, b, recs)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if failed == 0 {
		t.Fatal("no append failed on a full disk")
	}
	// Everything acknowledged is readable, nothing else is visible.
	_, hw, _ := p.Offsets()
	if n := checkServed(t, p, o); n != hw || int64(len(o.recs)) != hw {
		t.Fatalf("served %d, acknowledged %d, high watermark %d", n, len(o.recs), hw)
	}
	// Space comes back: appends go on at the next offset.
	ffs.setBudget(-1)
	b, recs := makeBatch(t, 777, 2, 10, 6000)
	res, err := p.Append(bg, b)
	if err != nil || res.BaseOffset != hw {
		t.Fatalf("append after space returned: %+v %v, want base %d", res, err, hw)
	}
	o.add(res, b, recs)
	l.crash()
	// Recovery sees exactly the acknowledged records.
	opts.FS = nil
	reopenAndCheckAcknowledged(t, opts, "full", o)
}

// TestDiskFullAnywhere runs out of space at every point of a run that rolls
// segments (data, index files, snapshots, recovery points): whatever fails,
// every acknowledged batch survives a restart, offsets stay contiguous, and
// the log takes appends again once space is back.
func TestDiskFullAnywhere(t *testing.T) {
	for budget := int64(0); budget < 9000; budget += 173 {
		t.Run(fmt.Sprint(budget), func(t *testing.T) {
			dir := t.TempDir()
			opts, _ := testOptions(dir)
			ffs := &faultFS{FS: noSyncFS{}, budget: -1}
			opts.FS = ffs
			l := mustOpen(t, opts)
			p := mustPartition(t, l, "df", TopicConfig{Partitions: 1, SegmentBytes: 1500})
			ffs.setBudget(budget)
			o := &ackOracle{recs: make(map[int64]record.Record)}
			failures := 0
			for i := 0; i < 40 && failures < 3; i++ {
				b, recs := makeBatch(t, uint64(i), 2, 90, int64(i))
				res, err := p.Append(bg, b)
				if err != nil {
					if !errors.Is(err, ErrDiskFull) {
						t.Fatalf("append %d: %v, want ErrDiskFull", i, err)
					}
					failures++
					continue
				}
				o.add(res, b, recs)
			}
			if _, hw, _ := p.Offsets(); hw != int64(len(o.recs)) {
				t.Fatalf("high watermark %d, acknowledged %d records", hw, len(o.recs))
			}
			checkServed(t, p, o)
			ffs.setBudget(-1)
			b, recs := makeBatch(t, 999, 2, 90, 999)
			res, err := p.Append(bg, b)
			if err != nil {
				t.Fatalf("append after space came back: %v", err)
			}
			o.add(res, b, recs)
			l.crash()
			opts.FS = noSyncFS{}
			reopenAndCheckAcknowledged(t, opts, "df", o)
		})
	}
}

// TestOpenFailsCleanly: one corrupt partition among several makes Open fail
// with its CorruptionError, releases everything, and leaves the healthy
// partitions intact.
func TestOpenFailsCleanly(t *testing.T) {
	dir := t.TempDir()
	opts, _ := testOptions(dir)
	opts.FS = noSyncFS{}
	l := mustOpen(t, opts)
	if err := l.CreateTopic("multi", TopicConfig{Partitions: 12}); err != nil {
		t.Fatal(err)
	}
	tp, _ := l.Topic("multi")
	rng := rand.New(rand.NewPCG(13, 14))
	oracles := make([]*ackOracle, 12)
	for i := range oracles {
		p, _ := tp.Partition(int32(i))
		oracles[i] = fillRandom(t, rng, p, 6)
	}
	l.crash()
	seg := segmentFiles(t, filepath.Join(dir, topicsDir, "multi", "5"))[0]
	data, _ := os.ReadFile(seg)
	data[oracles[5].batches[0].size+record.HeaderSize+1] ^= 0x40 // second batch
	os.WriteFile(seg, data, 0o644)
	_, err := Open(opts)
	var ce *CorruptionError
	if !errors.As(err, &ce) || !strings.Contains(ce.Segment, filepath.Join("multi", "5")) {
		t.Fatalf("Open: %v, want a CorruptionError in partition 5", err)
	}
	opts.RepairCorruption = true
	l = mustOpen(t, opts)
	defer l.Close()
	tp, _ = l.Topic("multi")
	for i, o := range oracles {
		p, _ := tp.Partition(int32(i))
		want := int64(len(o.recs))
		if i == 5 {
			want = o.batches[1].base
		}
		if n := checkServed(t, p, o); n != want {
			t.Fatalf("partition %d: %d records, want %d", i, n, want)
		}
	}
}

// syncFailFS fails the fsync of segment files while fail is set.
type syncFailFS struct {
	FS
	fail *atomic.Bool
	err  error
}

func (f syncFailFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil || !strings.HasSuffix(name, logSuffix) {
		return file, err
	}
	return syncFailFile{File: file, fs: f}, nil
}

type syncFailFile struct {
	File
	fs syncFailFS
}

func (f syncFailFile) Sync() error {
	if f.fs.fail.Load() {
		return f.fs.err
	}
	return f.File.Sync()
}

// TestFailedFsyncLeavesOnlyAcknowledged: a batch whose fdatasync failed
// (EIO, or ENOSPC as file systems that allocate at writeback report it)
// was not acknowledged, and the partition refuses appends until reopened;
// the reopened log must then hold exactly the acknowledged batches, not
// the refused one too (which a client retrying after the restart would
// write twice), and take appends at the next offset.
func TestFailedFsyncLeavesOnlyAcknowledged(t *testing.T) {
	for _, cause := range []error{errEIO, errENOSPC} {
		t.Run(cause.Error(), func(t *testing.T) {
			dir := t.TempDir()
			opts, _ := testOptions(dir)
			var fail atomic.Bool
			opts.FS = syncFailFS{FS: OSFS{}, fail: &fail, err: cause}
			l := mustOpen(t, opts)
			p := mustPartition(t, l, "s", TopicConfig{Partitions: 1})
			o := fillRandom(t, rand.New(rand.NewPCG(3, 4)), p, 5)
			fail.Store(true)
			b, _ := makeBatch(t, 42, 3, 100, 7000)
			if _, err := p.Append(bg, b); !errors.Is(err, ErrIO) {
				t.Fatalf("append whose fsync failed: %v, want ErrIO", err)
			}
			fail.Store(false)
			if _, err := p.Append(bg, b); !errors.Is(err, ErrIO) {
				t.Fatalf("append after a failed fsync: %v, want the partition's error", err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			opts.FS = nil
			p = reopenAndCheckAcknowledged(t, opts, "s", o)
			res, err := p.Append(bg, b)
			if err != nil || res.BaseOffset != int64(len(o.recs)) {
				t.Fatalf("append after reopen: %+v, %v, want base offset %d", res, err, len(o.recs))
			}
		})
	}
}

// readFailFS fails reads (opens without O_CREATE) of files named name.
type readFailFS struct {
	FS
	name string
}

func (f readFailFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	if flag&(os.O_CREATE|os.O_WRONLY|os.O_RDWR) == 0 && filepath.Base(name) == f.name {
		return nil, &os.PathError{Op: "open", Path: name, Err: errEIO.Err}
	}
	return f.FS.OpenFile(name, flag, perm)
}

// TestLogStartReadErrorFailsOpen: the log start offset that
// DeleteRecords moved is kept in a file; when reading it fails (an I/O
// error, not its absence), Open must fail with ErrIO rather than fall back
// to the first segment's base, which serves the deleted records again.
func TestLogStartReadErrorFailsOpen(t *testing.T) {
	dir := t.TempDir()
	opts, _ := testOptions(dir)
	l := mustOpen(t, opts)
	p := mustPartition(t, l, "d", TopicConfig{Partitions: 1})
	o := fillRandom(t, rand.New(rand.NewPCG(5, 6)), p, 6)
	start := o.batches[2].base
	if _, err := p.DeleteRecords(start); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	opts.FS = readFailFS{FS: OSFS{}, name: logStartFile}
	if l, err := Open(opts); !errors.Is(err, ErrIO) {
		if err == nil {
			tp, _ := l.Topic("d")
			p, _ := tp.Partition(0)
			ls, _, _ := p.Offsets()
			l.Close()
			t.Fatalf("Open succeeded with log start %d (deleted below %d)", ls, start)
		}
		t.Fatalf("Open: %v, want ErrIO", err)
	}
	opts.FS = nil
	l = mustOpen(t, opts)
	defer l.Close()
	tp, _ := l.Topic("d")
	p, _ = tp.Partition(0)
	if ls, _, _ := p.Offsets(); ls != start {
		t.Fatalf("log start %d, want %d", ls, start)
	}
}

// syncDirFailFS, while fail is set, fails the directory sync that
// follows the creation of a segment file.
type syncDirFailFS struct {
	FS
	fail    *atomic.Bool
	created *atomic.Bool
}

func (f syncDirFailFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	if flag&os.O_CREATE != 0 && strings.HasSuffix(name, logSuffix) {
		f.created.Store(true)
	}
	return f.FS.OpenFile(name, flag, perm)
}

func (f syncDirFailFS) SyncDir(dir string) error {
	if f.created.Swap(false) && f.fail.Load() {
		return &os.PathError{Op: "fsync", Path: dir, Err: errEIO.Err}
	}
	return f.FS.SyncDir(dir)
}

// TestFailedRollLeavesNoSegmentFile: a roll whose new segment file was
// created but whose directory sync failed fails the append, and the
// partition goes on in the old segment (a smaller batch that still fits
// is taken). The file it created must not stay: at the next open it
// would start at an offset the old segment has since passed, and Open
// refused the partition as corrupt.
func TestFailedRollLeavesNoSegmentFile(t *testing.T) {
	dir := t.TempDir()
	opts, _ := testOptions(dir)
	var fail, created atomic.Bool
	opts.FS = syncDirFailFS{FS: OSFS{}, fail: &fail, created: &created}
	l := mustOpen(t, opts)
	p := mustPartition(t, l, "r", TopicConfig{Partitions: 1, SegmentBytes: 4096})
	o := &ackOracle{recs: make(map[int64]record.Record)}
	add := func(seed uint64, size int) error {
		b, recs := makeBatch(t, seed, 1, size, int64(seed))
		res, err := p.Append(bg, b)
		if err == nil {
			o.add(res, b, recs)
		}
		return err
	}
	for i := range 10 {
		if err := add(uint64(i), 300); err != nil {
			t.Fatal(err)
		}
	}
	fail.Store(true)
	if err := add(100, 1500); !errors.Is(err, ErrIO) {
		t.Fatalf("append that needed a roll whose directory sync failed: %v, want ErrIO", err)
	}
	fail.Store(false)
	if err := add(101, 10); err != nil { // fits in the old segment
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	opts.FS = nil
	l, err := Open(opts)
	if err != nil {
		t.Fatalf("reopen after a failed roll: %v", err)
	}
	defer l.Close()
	tp, _ := l.Topic("r")
	p, _ = tp.Partition(0)
	if n := checkServed(t, p, o); n != int64(len(o.recs)) {
		t.Fatalf("served %d of %d records", n, len(o.recs))
	}
}
