package logstore

import (
	"strings"
	"sync"
	"testing"
)

// dropFS records, for each segment file, the size at every completed
// fdatasync and every range dropped from the page cache.
type dropFS struct {
	FS
	mu    sync.Mutex
	files []*dropFile
}

func (d *dropFS) OpenFile(name string, flag int, perm fsFileMode) (File, error) {
	f, err := d.FS.OpenFile(name, flag, perm)
	if err != nil || !strings.HasSuffix(name, logSuffix) {
		return f, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	df := &dropFile{File: f, size: st.Size()}
	d.mu.Lock()
	d.files = append(d.files, df)
	d.mu.Unlock()
	return df, nil
}

type dropFile struct {
	File
	mu     sync.Mutex
	size   int64 // bytes written
	synced int64 // size when the last fdatasync started, once it returned
	drops  [][2]int64
	bad    []string
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
