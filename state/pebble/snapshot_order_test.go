package pebble

import (
	"log/slog"
	"path/filepath"
	"sync"
	"testing"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/state"
)

// gatedPending holds its first PutShared until release is closed, after
// closing entered.
type gatedPending struct {
	checkpoint.Pending
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (g *gatedPending) PutShared(name, local string) (checkpoint.FileInfo, error) {
	g.once.Do(func() {
		close(g.entered)
		<-g.release
	})
	return g.Pending.PutShared(name, local)
}

// touchedPending closes touched at its first use.
type touchedPending struct {
	checkpoint.Pending
	once    sync.Once
	touched chan struct{}
}

func (p *touchedPending) touch() { p.once.Do(func() { close(p.touched) }) }

func (p *touchedPending) Shared(name string) (checkpoint.FileInfo, bool) {
	p.touch()
	return p.Pending.Shared(name)
}

func (p *touchedPending) PutShared(name, local string) (checkpoint.FileInfo, error) {
	p.touch()
	return p.Pending.PutShared(name, local)
}

func (p *touchedPending) Create(name string) (checkpoint.FileWriter, error) {
	p.touch()
	return p.Pending.Create(name)
}

// TestSnapshotUploadsOfOneBackendRunInOrder: checkpoint 5's upload is
// slow (held in its first PutShared) and the checkpoint aborts; the
// snapshot of checkpoint 6, taken meanwhile, holds the same sstables under
// the same shared names. Its upload must not touch the storage before
// checkpoint 5's has ended (run together, both put the same shared files;
// see Snapshot), and checkpoint 6 must then complete and restore.
func TestSnapshotUploadsOfOneBackendRunInOrder(t *testing.T) {
	root := t.TempDir()
	store, err := checkpoint.NewDir(filepath.Join(root, "chk"), checkpoint.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	all := state.KeyGroupRange{Start: 0, End: testMaxPar}
	b, err := Open(small(filepath.Join(root, "w")), testMaxPar, all)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const n = 5000
	fill(t, b, n, 1)
	s5, err := b.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	s6, err := b.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	p5, err := store.Begin(5)
	if err != nil {
		t.Fatal(err)
	}
	g5 := &gatedPending{Pending: p5, entered: make(chan struct{}), release: make(chan struct{})}
	done5 := make(chan error, 1)
	go func() {
		_, _, err := s5.Upload(g5, "op.0")
		done5 <- err
	}()
	<-g5.entered
	if err := p5.Abort(); err != nil { // checkpoint 5 times out
		t.Fatal(err)
	}
	p6, err := store.Begin(6)
	if err != nil {
		t.Fatal(err)
	}
	t6 := &touchedPending{Pending: p6, touched: make(chan struct{})}
	waiting := make(chan struct{})
	b.beforeWait = func() { close(waiting) }
	type result struct {
		files []string
		err   error
	}
	done6 := make(chan result, 1)
	go func() {
		files, _, err := s6.Upload(t6, "op.0")
		done6 <- result{files, err}
	}()
	select {
	case <-t6.touched:
		t.Fatal("checkpoint 6's upload used the storage while checkpoint 5's was still running")
	case <-waiting:
	}
	close(g5.release)
	<-done5 // its error (the aborted checkpoint's directory is gone) is not the concern
	r6 := <-done6
	if r6.err != nil {
		t.Fatalf("checkpoint 6: %v", r6.err)
	}
	if err := p6.Commit(&checkpoint.Manifest{ID: 6, Tasks: []checkpoint.TaskState{{Task: checkpoint.TaskID{Operator: "op"}, Files: r6.files}}}); err != nil {
		t.Fatal(err)
	}
	tt := restoreLatest(t, store, filepath.Join(root, "r"), all)
	if e, _ := tt.Get(kgOf(key(n-1)), key(n-1)); e.Count != n-1 {
		t.Fatalf("restored %+v", e)
	}
}
