package logstore

import (
	"sync"
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
