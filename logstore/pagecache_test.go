package logstore

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/record"
)

// dropFS records, for each segment file, the size at every completed
// fdatasync and every range dropped from the page cache.
type dropFS struct {
	FS
	// anyOrder: a file's ranges need not be dropped contiguously from its
	// start (the cleaner drops again what the window dropped).
	anyOrder bool
	mu       sync.Mutex
	files    []*dropFile
}

func (d *dropFS) OpenFile(name string, flag int, perm fsFileMode) (File, error) {
	f, err := d.FS.OpenFile(name, flag, perm)
	if err != nil || !(strings.HasSuffix(name, logSuffix) || strings.HasSuffix(name, logSuffix+cleanedSuffix)) {
		return f, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	df := &dropFile{File: f, name: name, size: st.Size(), anyOrder: d.anyOrder}
	d.mu.Lock()
	d.files = append(d.files, df)
	d.mu.Unlock()
	return df, nil
}

type dropFile struct {
	File
	name     string // as opened (a cleaner's output: its .cleaned name)
	anyOrder bool
	mu       sync.Mutex
	size     int64 // bytes written
	synced   int64 // size when the last fdatasync started, once it returned
	drops    [][2]int64
	bad      []string
}

func (f *dropFile) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	f.mu.Lock()
	f.size += int64(n)
	f.mu.Unlock()
	return n, err
}

func (f *dropFile) WriteVectors(bufs [][]byte) (int, error) {
	n, err := writeVectors(f.File, bufs)
	f.mu.Lock()
	f.size += int64(n)
	f.mu.Unlock()
	return n, err
}

func (f *dropFile) Sync() error {
	f.mu.Lock()
	size := f.size
	f.mu.Unlock()
	err := f.File.Sync()
	if err == nil {
		f.mu.Lock()
		f.synced = max(f.synced, size)
		f.mu.Unlock()
	}
	return err
}

func (f *dropFile) DropCache(off, n int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case off%pageSize != 0 || n%pageSize != 0:
		f.bad = append(f.bad, "range not page-aligned")
	case off+n > f.synced:
		f.bad = append(f.bad, "range beyond the synced size")
	case f.anyOrder:
	case len(f.drops) > 0 && f.drops[len(f.drops)-1][0]+f.drops[len(f.drops)-1][1] != off:
		f.bad = append(f.bad, "ranges not contiguous")
	case len(f.drops) == 0 && off != 0:
		f.bad = append(f.bad, "first range not at the start")
	}
	f.drops = append(f.drops, [2]int64{off, n})
	return nil
}

// TestPageCacheWindowDropsOnlySyncedBytes: with fsync always, the log drops
// a segment's bytes from the page cache only once an fdatasync covered
// them, page-aligned, in order, keeping the most recent window; everything
// still reads back. With a negative window nothing is dropped.
func TestPageCacheWindowDropsOnlySyncedBytes(t *testing.T) {
	for _, window := range []int64{1 << 20, -1} {
		opts, _ := testOptions(t.TempDir())
		d := &dropFS{FS: OSFS{}}
		opts.FS = d
		opts.PageCacheWindow = window
		l := mustOpen(t, opts)
		p := mustPartition(t, l, "pc", TopicConfig{Partitions: 1, Fsync: FsyncPolicy{Mode: FsyncAlways}})
		const batches, recs = 40, 300
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < batches/4; i++ {
					b, _ := makeBatch(t, uint64(w*1000+i), recs, 1000, 1)
					if _, err := p.Append(bg, b); err != nil {
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
		if got := len(readAllRecords(t, p, 0)); got != batches*recs {
			t.Fatalf("window %d: read %d records, want %d", window, got, batches*recs)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		d.mu.Lock()
		var dropped int64
		for _, f := range d.files {
			f.mu.Lock()
			if len(f.bad) > 0 {
				t.Errorf("window %d: %v (drops %v, synced %d)", window, f.bad, f.drops, f.synced)
			}
			for _, r := range f.drops {
				dropped += r[1]
			}
			if n := len(f.drops); n > 0 && f.drops[n-1][0]+f.drops[n-1][1] > f.synced-window {
				t.Errorf("window %d: dropped up to %d of %d synced bytes", window, f.drops[n-1][0]+f.drops[n-1][1], f.synced)
			}
			f.mu.Unlock()
		}
		d.mu.Unlock()
		switch {
		case window > 0 && dropped == 0:
			t.Errorf("window %d: nothing dropped from the page cache after %d bytes", window, batches*recs*1000)
		case window < 0 && dropped != 0:
			t.Errorf("window %d: %d bytes dropped", window, dropped)
		}
	}
}

// fileOf is the dropFile seg writes through.
func (d *dropFS) fileOf(t *testing.T, seg *segment) *dropFile {
	t.Helper()
	df, ok := seg.f.(*dropFile)
	if !ok {
		t.Fatalf("segment %s is not a dropFile", seg.path)
	}
	return df
}

// dropped reports whether f's drops cover [0, n&^(pageSize-1)), and
// whether any were made.
func (f *dropFile) dropped(n int64) (whole, any bool) {
	return f.droppedSince(0, n)
}

// droppedSince is dropped for the drops after the first from.
func (f *dropFile) droppedSince(from int, n int64) (whole, any bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	drops := slices.Clone(f.drops[min(from, len(f.drops)):])
	slices.SortFunc(drops, func(a, b [2]int64) int { return cmp.Compare(a[0], b[0]) })
	var to int64
	for _, r := range drops {
		if r[0] <= to {
			to = max(to, r[0]+r[1])
		}
	}
	return to >= n&^(pageSize-1), len(drops) > 0
}

// dropCount is how many ranges f dropped so far.
func (f *dropFile) dropCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.drops)
}

// checkWindow checks p's segments against the page-cache window: the
// active segment and the newest sealed ones that hold the window's bytes
// are not dropped (the active one only behind the window), every older one
// is dropped whole. It returns how many sealed segments were dropped.
func checkWindow(t *testing.T, d *dropFS, p *Partition, window int64) (dropped int) {
	t.Helper()
	p.segMu.RLock()
	segs := slices.Clone(p.segments)
	p.segMu.RUnlock()
	var newer int64 // bytes of the segments after the one looked at
	for i := len(segs) - 1; i >= 0; i-- {
		s := segs[i]
		size := s.visible.Load()
		f := d.fileOf(t, s)
		f.mu.Lock()
		if len(f.bad) > 0 {
			t.Errorf("segment %s: %v (drops %v, synced %d)", s.path, f.bad, f.drops, f.synced)
		}
		f.mu.Unlock()
		whole, any := f.dropped(size)
		switch {
		case i == len(segs)-1:
		case newer >= window && !whole:
			t.Errorf("segment %s (%d bytes) lies behind the window (%d newer bytes, window %d) and was not dropped whole", s.path, size, newer, window)
		case newer < window && any:
			t.Errorf("segment %s (%d bytes) is within the window (%d newer bytes, window %d) but was dropped", s.path, size, newer, window)
		case whole && size >= pageSize:
			dropped++
		}
		newer += size
	}
	return dropped
}

// TestPageCacheWindowDropsSealedSegments: with segments smaller than the
// page-cache window, the window spans segments: after a commit, the sealed
// segments behind the window's newest bytes are dropped whole (once), and
// the ones within it are not. Before, only the active segment's bytes were
// looked at, so with small segments nothing was ever dropped.
func TestPageCacheWindowDropsSealedSegments(t *testing.T) {
	const window, segBytes = 32 << 10, 16 << 10
	opts, _ := testOptions(t.TempDir())
	d := &dropFS{FS: OSFS{}}
	opts.FS = d
	opts.PageCacheWindow = window
	l := mustOpen(t, opts)
	defer l.Close()
	p := mustPartition(t, l, "pcs", TopicConfig{Partitions: 1, SegmentBytes: segBytes, Fsync: FsyncPolicy{Mode: FsyncAlways}})
	const batches, recs = 120, 10
	for i := range batches {
		b, _ := makeBatch(t, uint64(i), recs, 100, 1)
		if _, err := p.Append(bg, b); err != nil {
			t.Fatal(err)
		}
	}
	if n := checkWindow(t, d, p, window); n == 0 {
		t.Errorf("no sealed segment dropped after %d batches in segments of %d bytes", batches, segBytes)
	}
	if got := len(readAllRecords(t, p, 0)); got != batches*recs {
		t.Fatalf("read %d records, want %d", got, batches*recs)
	}
}

// TestCleanerDropsBehindWindow: what a pass reads of segments behind the
// page-cache window it drops from the page cache (the committer had), and
// a cleaned segment that replaces segments behind the window is dropped
// once synced (it would otherwise stay cached where its inputs were not);
// segments within the window and their output stay; the latest value of
// every key survives.
func TestCleanerDropsBehindWindow(t *testing.T) {
	const window, segBytes = 32 << 10, 16 << 10
	opts, _ := testOptions(t.TempDir())
	d := &dropFS{FS: OSFS{}, anyOrder: true}
	opts.FS = d
	opts.PageCacheWindow = window
	opts.Cleaner = CleanerOptions{Interval: -1}
	l := mustOpen(t, opts)
	defer l.Close()
	p := mustPartition(t, l, "pcc", TopicConfig{Partitions: 1, SegmentBytes: segBytes, Cleanup: CleanupCompact, Fsync: FsyncPolicy{Mode: FsyncAlways}})
	// 300 keys of 200-byte values, 6 rounds: cleaned segments of several
	// pages.
	want := map[string]string{}
	for round := range 6 {
		for k := 0; k < 300; k += 10 {
			var recs []record.Record
			for i := k; i < k+10; i++ {
				key, val := fmt.Sprintf("k%05d", i), fmt.Sprintf("%0200d", round*1000+i)
				recs = append(recs, record.Record{Key: []byte(key), Value: []byte(val), Timestamp: 1})
				want[key] = val
			}
			if _, err := p.AppendRecords(bg, recs); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := p.roll(false, 0); err != nil { // everything cleanable
		t.Fatal(err)
	}
	type input struct {
		s      *segment
		f      *dropFile
		before int
	}
	var inputs []input
	p.segMu.RLock()
	for _, s := range p.segments[:len(p.segments)-1] {
		f := d.fileOf(t, s)
		inputs = append(inputs, input{s, f, f.dropCount()})
	}
	p.segMu.RUnlock()
	doneTo := p.cacheDroppedTo.Load()
	if ran, err := p.Compact(time.Now(), true); err != nil || !ran {
		t.Fatalf("compact: ran %v, %v", ran, err)
	}
	expectLatest(t, p, want)
	// A first pass reads every segment: those behind the window are
	// dropped whole again, the others not at all.
	var read int
	for _, in := range inputs {
		whole, any := in.f.droppedSince(in.before, in.s.visible.Load())
		switch {
		case in.s.end.Load() <= doneTo && !whole:
			t.Errorf("input segment %s ends at %d, behind the window (dropped to %d): the pass's read of it was not dropped whole", in.s.path, in.s.end.Load(), doneTo)
		case in.s.end.Load() <= doneTo:
			read++
		case any:
			t.Errorf("input segment %s ends at %d, within the window (dropped to %d), but the pass dropped it", in.s.path, in.s.end.Load(), doneTo)
		}
	}
	if read == 0 {
		t.Errorf("no input segment behind the window (dropped to offset %d)", doneTo)
	}
	p.segMu.RLock()
	segs := slices.Clone(p.segments)
	p.segMu.RUnlock()
	if p.cacheDroppedTo.Load() != doneTo {
		t.Fatal("the window moved without appends")
	}
	var behind, within int
	for _, s := range segs[:len(segs)-1] {
		f := d.fileOf(t, s)
		if !strings.HasSuffix(f.name, cleanedSuffix) {
			continue
		}
		whole, any := f.dropped(s.visible.Load())
		switch {
		case s.end.Load() <= doneTo:
			if s.visible.Load() >= pageSize {
				behind++
			}
			if !whole {
				t.Errorf("cleaned segment %s ends at %d, behind the window (dropped to %d), and was not dropped whole (drops %v)", s.path, s.end.Load(), doneTo, f.drops)
			}
		default:
			within++
			if any {
				t.Errorf("cleaned segment %s ends at %d, within the window (dropped to %d), but was dropped", s.path, s.end.Load(), doneTo)
			}
		}
	}
	if behind == 0 {
		t.Errorf("no cleaned segment behind the window (dropped to offset %d, %d segments)", doneTo, len(segs))
	}
	t.Logf("%d input segments read behind the window; %d cleaned segments behind it, %d within it", read, behind, within)
}
