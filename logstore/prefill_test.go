package logstore

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sluicehq/sluice/record"
)

// fileSize is the size of the file name on disk.
func fileSize(t *testing.T, name string) int64 {
	t.Helper()
	st, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// logicalBytes sums the oracle's batch sizes at offsets in [from, to).
func (o *ackOracle) logicalBytes(from, to int64) int64 {
	var n int64
	for _, b := range o.batches {
		if b.base >= from && b.base < to {
			n += int64(b.size)
		}
	}
	return n
}

// TestPrefillLogicalSizes appends to an FsyncAlways partition with a
// pre-written tail and checks that every size the log reports, and every
// sealed or closed segment file, is the logical length (the bytes of the
// acknowledged batches), while the active file is longer than its data.
func TestPrefillLogicalSizes(t *testing.T) {
	dir := t.TempDir()
	opts, lb := testOptions(dir)
	opts.SegmentPrefill = 64 << 10
	l := mustOpen(t, opts)
	const segBytes = 256 << 10
	p := mustPartition(t, l, "pf", TopicConfig{Partitions: 1, SegmentBytes: segBytes})
	rng := rand.New(rand.NewPCG(7, 8))
	o := fillRandom(t, rng, p, 40)
	p.fillWG.Wait()
	pdir := filepath.Join(dir, topicsDir, "pf", "0")
	segs := segmentFiles(t, pdir)
	if len(segs) != 1 {
		t.Fatalf("%d segments, want 1", len(segs))
	}
	_, hw, _ := p.Offsets()
	logical := o.logicalBytes(0, hw)
	if size := fileSize(t, segs[0]); size <= logical {
		t.Fatalf("active segment file is %d bytes for %d bytes of batches: no pre-written tail", size, logical)
	}
	if got := p.Stats().Bytes; got != logical {
		t.Fatalf("Stats().Bytes = %d, want the logical %d", got, logical)
	}
	// Fill past a roll: the sealed segment is cut back to its batches.
	o2 := fillRandom(t, rng, p, 1200)
	o.batches = append(o.batches, o2.batches...)
	for k, r := range o2.recs {
		o.recs[k] = r
	}
	segs = segmentFiles(t, pdir)
	if len(segs) < 2 {
		t.Fatalf("%d segments after %d more batches, want a roll", len(segs), len(o2.batches))
	}
	_, hw, _ = p.Offsets()
	var total int64
	for i, name := range segs {
		base, _ := parseSegmentName(filepath.Base(name))
		end := hw
		if i+1 < len(segs) {
			end, _ = parseSegmentName(filepath.Base(segs[i+1]))
			if got, want := fileSize(t, name), o.logicalBytes(base, end); got != want {
				t.Fatalf("sealed segment %d is %d bytes, its batches %d", base, got, want)
			}
		}
		total += o.logicalBytes(base, end)
	}
	if got := p.Stats().Bytes; got != total {
		t.Fatalf("Stats().Bytes = %d, want the logical %d", got, total)
	}
	if n := checkServed(t, p, o); n != hw {
		t.Fatalf("served %d records, want %d", n, hw)
	}
	// Close cuts the active segment back too, and a reopen trusts it.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	last := segs[len(segs)-1]
	lastBase, _ := parseSegmentName(filepath.Base(last))
	if got, want := fileSize(t, last), o.logicalBytes(lastBase, hw); got != want {
		t.Fatalf("closed active segment is %d bytes, its batches %d", got, want)
	}
	l = mustOpen(t, opts)
	defer l.Close()
	tp, _ := l.Topic("pf")
	p, _ = tp.Partition(0)
	if _, got, _ := p.Offsets(); got != hw {
		t.Fatalf("reopened at high watermark %d, want %d", got, hw)
	}
	checkServed(t, p, o)
	if s := lb.String(); strings.Contains(s, "torn tail") || strings.Contains(s, "rebuilding segment index") {
		t.Fatalf("clean reopen repaired something:\n%s", s)
	}
}

// crashWithPrefill appends to a fresh FsyncAlways partition with a
// pre-written tail and abandons the log as a killed process would, so the
// last segment ends in zeros. It returns the oracle and that segment.
func crashWithPrefill(t *testing.T, dir string, seed uint64) (*ackOracle, string, Options, *logBuffer) {
	t.Helper()
	opts, lb := testOptions(dir)
	opts.SegmentPrefill = 64 << 10
	l := mustOpen(t, opts)
	p := mustPartition(t, l, "pf", TopicConfig{Partitions: 1})
	o := fillRandom(t, rand.New(rand.NewPCG(seed, 9)), p, 30)
	p.fillWG.Wait()
	l.crash()
	segs := segmentFiles(t, filepath.Join(dir, topicsDir, "pf", "0"))
	seg := segs[len(segs)-1]
	if size, logical := fileSize(t, seg), o.logicalBytes(0, 1<<62); size <= logical {
		t.Fatalf("segment file %d bytes for %d bytes of batches: no pre-written tail to recover", size, logical)
	}
	return o, seg, opts, lb
}

// TestPrefillCrashRecovery: after a crash, the zeros after the last batch
// are cut without a warning, every acknowledged batch is served, and the
// log goes on from the logical end.
func TestPrefillCrashRecovery(t *testing.T) {
	dir := t.TempDir()
	o, _, opts, lb := crashWithPrefill(t, dir, 1)
	want := o.batches[len(o.batches)-1].last + 1
	l := mustOpen(t, opts)
	defer l.Close()
	tp, _ := l.Topic("pf")
	p, _ := tp.Partition(0)
	if _, hw, _ := p.Offsets(); hw != want {
		t.Fatalf("high watermark %d, want %d\n%s", hw, want, lb.String())
	}
	if n := checkServed(t, p, o); n != want {
		t.Fatalf("served %d records, want %d", n, want)
	}
	s := lb.String()
	if strings.Contains(s, "torn tail") || !strings.Contains(s, "cut pre-written tail") {
		t.Fatalf("a pre-written tail was not cut quietly:\n%s", s)
	}
	appendAfterRecovery(t, p, o, want, 3)
}

// TestPrefillCorruptionBeforeZeros: damage before the zeros is still
// found. A corrupt last batch is a torn tail (cut, with a warning); a
// corrupt batch followed by valid ones is corruption (Open fails); bytes
// that are neither a batch nor zeros in the tail are a torn tail, not a
// pre-written one.
func TestPrefillCorruptionBeforeZeros(t *testing.T) {
	cases := []struct {
		name    string
		damage  func(data []byte, o *ackOracle) // data is the whole segment file
		corrupt bool                            // Open must fail with a CorruptionError
		keep    func(o *ackOracle) int64        // the high watermark after recovery
	}{
		{"last batch", func(data []byte, o *ackOracle) {
			pos := o.logicalBytes(0, o.batches[len(o.batches)-1].base)
			data[pos+int64(o.batches[len(o.batches)-1].size)-1] ^= 0x40
		}, false, func(o *ackOracle) int64 { return o.batches[len(o.batches)-1].base }},
		{"middle batch", func(data []byte, o *ackOracle) {
			pos := o.logicalBytes(0, o.batches[10].base)
			data[pos+70] ^= 0x40
		}, true, nil},
		{"garbage in the zeros", func(data []byte, o *ackOracle) {
			data[o.logicalBytes(0, 1<<62)+5000] = 0x7f
		}, false, func(o *ackOracle) int64 { return o.batches[len(o.batches)-1].last + 1 }},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			o, seg, opts, lb := crashWithPrefill(t, dir, uint64(10+i))
			data, err := os.ReadFile(seg)
			if err != nil {
				t.Fatal(err)
			}
			c.damage(data, o)
			if err := os.WriteFile(seg, data, 0o644); err != nil {
				t.Fatal(err)
			}
			l, err := Open(opts)
			if c.corrupt {
				var ce *CorruptionError
				if !errors.As(err, &ce) {
					t.Fatalf("Open: %v, want a CorruptionError", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer l.Close()
			tp, _ := l.Topic("pf")
			p, _ := tp.Partition(0)
			want := c.keep(o)
			if _, hw, _ := p.Offsets(); hw != want {
				t.Fatalf("high watermark %d, want %d\n%s", hw, want, lb.String())
			}
			checkServed(t, p, o)
			if !strings.Contains(lb.String(), "truncated torn tail") {
				t.Fatalf("damage cut without a warning:\n%s", lb.String())
			}
		})
	}
}

// TestPrefillOff: a negative SegmentPrefill writes no zeros.
func TestPrefillOff(t *testing.T) {
	dir := t.TempDir()
	opts, _ := testOptions(dir)
	opts.SegmentPrefill = -1
	l := mustOpen(t, opts)
	defer l.Close()
	p := mustPartition(t, l, "pf", TopicConfig{Partitions: 1})
	o := fillRandom(t, rand.New(rand.NewPCG(3, 3)), p, 20)
	seg := segmentFiles(t, filepath.Join(dir, topicsDir, "pf", "0"))[0]
	if got, want := fileSize(t, seg), o.logicalBytes(0, 1<<62); got != want {
		t.Fatalf("segment file %d bytes, its batches %d", got, want)
	}
}

// shortZerosFS opens files whose WriteZerosAt writes all but the last byte
// of the zeros asked for and then fails (a disk that fills up meanwhile).
type shortZerosFS struct{ FS }

func (f shortZerosFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return shortZerosFile{file}, nil
}

type shortZerosFile struct{ File }

func (f shortZerosFile) WriteZerosAt(off, n int64) error {
	if err := f.File.(zeroWriter).WriteZerosAt(off, n-1); err != nil {
		return err
	}
	return errENOSPC
}

// TestPrefillFailedZerosCut: zeros that a failed pre-write left in the
// file are cut like a complete tail's, so sealed and closed segments are
// their batches (before, a failed write left filled behind, and the zeros
// stayed after the data of a sealed segment).
func TestPrefillFailedZerosCut(t *testing.T) {
	dir := t.TempDir()
	opts, lb := testOptions(dir)
	opts.FS = shortZerosFS{OSFS{}}
	opts.SegmentPrefill = 64 << 10
	l := mustOpen(t, opts)
	p := mustPartition(t, l, "pf", TopicConfig{Partitions: 1, SegmentBytes: 256 << 10})
	o := fillRandom(t, rand.New(rand.NewPCG(5, 6)), p, 400)
	p.fillWG.Wait()
	if !strings.Contains(lb.String(), "pre-writing the segment tail failed") {
		t.Fatal("no pre-write failed: the test does not test what it says")
	}
	_, hw, _ := p.Offsets()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	segs := segmentFiles(t, filepath.Join(dir, topicsDir, "pf", "0"))
	if len(segs) < 2 {
		t.Fatalf("%d segments, want a roll", len(segs))
	}
	for i, name := range segs {
		base, _ := parseSegmentName(filepath.Base(name))
		end := hw
		if i+1 < len(segs) {
			end, _ = parseSegmentName(filepath.Base(segs[i+1]))
		}
		if got, want := fileSize(t, name), o.logicalBytes(base, end); got != want {
			t.Fatalf("segment %d (%d of %d) is %d bytes, its batches %d", base, i+1, len(segs), got, want)
		}
	}
	l = mustOpen(t, opts)
	defer l.Close()
	tp, _ := l.Topic("pf")
	p, _ = tp.Partition(0)
	if n := checkServed(t, p, o); n != hw {
		t.Fatalf("served %d records, want %d", n, hw)
	}
}

// TestPrefillCommitDoesNotWaitForTopUp: the filler syncs its zeros
// holding none of the committer's locks, so commits complete while a
// top-up's fdatasync is held back (before, the top-up ran in the
// committer under syncMu, and every later commit waited for it). The
// zeros still end up ahead of the data once the filler is let go.
func TestPrefillCommitDoesNotWaitForTopUp(t *testing.T) {
	dir := t.TempDir()
	opts, _ := testOptions(dir)
	opts.SegmentPrefill = 64 << 10
	entered, release := make(chan struct{}), make(chan struct{})
	var held sync.Once
	testHookPrefillSync = func() { held.Do(func() { close(entered); <-release }) }
	t.Cleanup(func() { testHookPrefillSync = nil })
	l := mustOpen(t, opts)
	defer l.Close()
	letGo := sync.OnceFunc(func() { close(release) })
	defer letGo() // before the Close above, which waits for the filler
	p := mustPartition(t, l, "pf", TopicConfig{Partitions: 1})
	rng := rand.New(rand.NewPCG(11, 12))
	// The first commit tops the new segment's tail up itself; appends
	// then use it up until a commit starts the filler (no append waits
	// while a commit runs: one appender), which writes a piece of zeros
	// and waits to sync it.
	o := &ackOracle{recs: map[int64]record.Record{}}
	for started := false; !started; {
		o1 := fillRandom(t, rng, p, 1)
		o.batches = append(o.batches, o1.batches...)
		for k, r := range o1.recs {
			o.recs[k] = r
		}
		select {
		case <-entered:
			started = true
		default:
			if len(o.batches) > 1000 {
				t.Fatal("no commit started the filler")
			}
		}
	}
	o2 := fillRandom(t, rng, p, 20)
	o.batches = append(o.batches, o2.batches...)
	for k, r := range o2.recs {
		o.recs[k] = r
	}
	letGo()
	p.fillWG.Wait()
	_, hw, _ := p.Offsets()
	if n := checkServed(t, p, o); n != hw {
		t.Fatalf("served %d records, want %d", n, hw)
	}
	seg := segmentFiles(t, filepath.Join(dir, topicsDir, "pf", "0"))[0]
	if size, logical := fileSize(t, seg), o.logicalBytes(0, hw); size <= logical {
		t.Fatalf("segment file %d bytes for %d bytes of batches: no pre-written tail", size, logical)
	}
}

// failFillSyncFS opens files whose Sync fails when opened write-only: the
// filler's own descriptor (every other file the log writes it creates or
// opens read-write).
type failFillSyncFS struct{ FS }

func (f failFillSyncFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil || flag != os.O_WRONLY {
		return file, err
	}
	return failSyncFile{file}, nil
}

type failSyncFile struct{ File }

func (failSyncFile) Sync() error { return errors.New("injected fdatasync failure") }

// TestPrefillFillerSyncFailureFailsNextCommit: a failed fdatasync of the
// filler may have covered batches written ahead, so the next commit fails
// (its batches are not acknowledged) and the partition refuses appends,
// as when the committer's own fdatasync fails.
func TestPrefillFillerSyncFailureFailsNextCommit(t *testing.T) {
	dir := t.TempDir()
	opts, lb := testOptions(dir)
	opts.FS = failFillSyncFS{OSFS{}}
	opts.SegmentPrefill = 64 << 10
	l := mustOpen(t, opts)
	defer l.Close()
	p := mustPartition(t, l, "pf", TopicConfig{Partitions: 1})
	rng := rand.New(rand.NewPCG(13, 14))
	// The first commit tops the new segment's tail up itself; appends
	// then use it up until a commit starts the filler, whose sync fails.
	var err error
	for i := 0; err == nil; i++ {
		if i == 1000 {
			t.Fatal("no append failed")
		}
		b, _ := makeBatch(t, rng.Uint64(), 4, 200, 5000)
		_, err = p.Append(bg, b)
		p.fillWG.Wait()
	}
	if !strings.Contains(lb.String(), "fsync of the pre-written segment tail failed") {
		t.Fatalf("an append failed (%v), but not after the filler's sync did: the test does not test what it says\n%s", err, lb.String())
	}
	b, _ := makeBatch(t, rng.Uint64(), 1, 10, 5000)
	if _, err := p.Append(bg, b); err == nil {
		t.Fatal("the partition took an append after a failed fdatasync")
	}
}
