package logstore

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gateFS blocks the first Sync after arm() until release() is closed.
type gateFS struct {
	FS
	mu      sync.Mutex
	armed   bool
	entered chan struct{}
	release chan struct{}
}

func (g *gateFS) arm() {
	g.mu.Lock()
	g.armed = true
	g.entered = make(chan struct{})
	g.release = make(chan struct{})
	g.mu.Unlock()
}

func (g *gateFS) OpenFile(name string, flag int, perm fsFileMode) (File, error) {
	f, err := g.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &gateFile{File: f, g: g}, nil
}

type gateFile struct {
	File
	g *gateFS
}

func (f *gateFile) Sync() error {
	f.g.mu.Lock()
	armed := f.g.armed
	f.g.armed = false
	entered, release := f.g.entered, f.g.release
	f.g.mu.Unlock()
	if armed {
		close(entered)
		<-release
	}
	return f.File.Sync()
}

// TestGroupCommit holds the first fsync and checks that every append that
// arrives meanwhile is committed by one shared fsync, and that none is
// acknowledged or visible before its fsync.
func TestGroupCommit(t *testing.T) {
	opts, _ := testOptions(t.TempDir())
	g := &gateFS{FS: OSFS{}}
	opts.FS = g
	l := mustOpen(t, opts)
	defer l.Close()
	p := mustPartition(t, l, "gc", TopicConfig{Partitions: 1, Fsync: FsyncPolicy{Mode: FsyncAlways}})
	syncs0 := p.Stats().Syncs

	g.arm()
	first := make(chan error, 1)
	go func() {
		_, err := p.Append(bg, mustBatch(t))
		first <- err
	}()
	<-g.entered // the first commit is inside its fsync

	const n = 10
	acks := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			_, err := p.Append(bg, mustBatch(t))
			acks <- err
		}()
	}
	// Wait until all n batches are queued behind the held fsync.
	deadline := time.Now().Add(20 * time.Second)
	for {
		p.mu.Lock()
		queued := p.nextOffset
		p.mu.Unlock()
		if queued == n+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d batches queued", queued)
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-first:
		t.Fatalf("first append acknowledged before its fsync returned (%v)", err)
	case err := <-acks:
		t.Fatalf("an append was acknowledged before any fsync covered it (%v)", err)
	default:
	}
	if _, hw, _ := p.Offsets(); hw != 0 {
		t.Fatalf("high watermark %d while the first fsync is pending", hw)
	}
	close(g.release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if err := <-acks; err != nil {
			t.Fatal(err)
		}
	}
	if got := p.Stats().Syncs - syncs0; got != 2 {
		t.Fatalf("%d fsyncs for 1 + %d appends, want 2 (one shared by the %d queued ones)", got, n, n)
	}
	if _, hw, _ := p.Offsets(); hw != n+1 {
		t.Fatalf("high watermark %d, want %d", hw, n+1)
	}
}

// TestDiscardedBatchNotAcknowledgedAfterOffsetReuse: an appender whose batch
// was discarded by a failed write must get the error even if, before it looks,
// a later append has reused its offsets and committed them (so the durable
// offset covers the end of the discarded batch). The hook runs that whole
// sequence between the appender's two checks.
func TestDiscardedBatchNotAcknowledgedAfterOffsetReuse(t *testing.T) {
	opts, _ := testOptions(t.TempDir())
	ffs := &faultFS{FS: OSFS{}, budget: -1}
	opts.FS = ffs
	l := mustOpen(t, opts)
	defer l.Close()
	p := mustPartition(t, l, "reuse", TopicConfig{Partitions: 1, Fsync: FsyncPolicy{Mode: FsyncAlways}})
	var fired atomic.Bool
	var failErr, reuseErr error
	var reused AppendResult
	p.testHookCommitCheck = func() {
		if !fired.CompareAndSwap(false, true) {
			return
		}
		// Another appender commits the pending buffer (ours included) and
		// the write fails: everything pending is discarded.
		ffs.setBudget(0)
		_, failErr = p.Append(bg, mustBatch(t))
		ffs.setBudget(-1)
		// A new append takes the discarded offsets and commits them.
		reused, reuseErr = p.Append(bg, mustBatch(t))
	}
	b, recs := makeBatch(t, 7, 1, 10, 1)
	_, err := p.Append(bg, b)
	if failErr == nil || reuseErr != nil {
		t.Fatalf("setup: failing append: %v, reusing append: %v", failErr, reuseErr)
	}
	if reused.BaseOffset != 0 {
		t.Fatalf("setup: the reusing append got offset %d, want 0", reused.BaseOffset)
	}
	if err == nil {
		got := readAllRecords(t, p, 0)
		t.Fatalf("discarded batch acknowledged: offset 0 holds %q, the acknowledged batch had %q", got[0].Value, recs[0].Value)
	}
}

// TestRollSyncsDespiteIntervalSyncInFlight: the interval fsync clears
// "unsynced" before its fsync returns; a roll meanwhile must still fsync the
// segment it seals (the recovery point it writes declares it durable), not
// trust the fsync that is still in flight.
func TestRollSyncsDespiteIntervalSyncInFlight(t *testing.T) {
	opts, _ := testOptions(t.TempDir())
	g := &gateFS{FS: OSFS{}}
	opts.FS = g
	l := mustOpen(t, opts)
	defer l.Close()
	p := mustPartition(t, l, "iv", TopicConfig{Partitions: 1, Fsync: FsyncPolicy{Mode: FsyncInterval, Interval: time.Hour}})
	if _, err := p.Append(bg, mustBatch(t)); err != nil {
		t.Fatal(err)
	}
	g.arm()
	synced := make(chan error, 1)
	go func() { synced <- p.syncNow() }()
	<-g.entered // the interval fsync is in flight
	syncs0 := p.Stats().Syncs
	if err := p.roll(false, 0); err != nil {
		t.Fatal(err)
	}
	if got := p.Stats().Syncs - syncs0; got != 1 {
		t.Fatalf("roll sealed the segment with %d fsyncs of its own while another was in flight, want 1", got)
	}
	close(g.release)
	if err := <-synced; err != nil {
		t.Fatal(err)
	}
}
