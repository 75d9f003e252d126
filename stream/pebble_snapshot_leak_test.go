package stream

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/checkpoint"
	statepebble "github.com/sluicehq/sluice/state/pebble"
)

// failingKeyedStore is a checkpoint directory whose checkpoints cannot
// create a KeyedProcess subtask's .keyed file nor a window subtask's
// .winkv file: the subtask declines after its backend took its snapshot.
type failingKeyedStore struct {
	*checkpoint.Dir
	failed atomic.Int64
}

func (s *failingKeyedStore) Begin(id checkpoint.ID) (checkpoint.Pending, error) {
	p, err := s.Dir.Begin(id)
	if err != nil {
		return nil, err
	}
	return failingKeyedPending{Pending: p, s: s}, nil
}

type failingKeyedPending struct {
	checkpoint.Pending
	s *failingKeyedStore
}

func (p failingKeyedPending) Create(name string) (checkpoint.FileWriter, error) {
	if strings.HasSuffix(name, ".keyed") || strings.HasSuffix(name, ".winkv") {
		p.s.failed.Add(1)
		return nil, errors.New("injected: no room for the .keyed file")
	}
	return p.Pending.Create(name)
}

// TestPebbleSnapshotOfFailedCheckpointRemoved: a KeyedProcess subtask on
// Pebble whose checkpoint fails before the backend's files are uploaded
// removes the backend's local snapshot (hard links to its sstables, which
// would otherwise keep every sstable of that moment on disk for the run).
func TestPebbleSnapshotOfFailedCheckpointRemoved(t *testing.T) {
	t.Run("keyed-process", func(t *testing.T) { testPebbleSnapshotOfFailedCheckpointRemoved(t, buildKeyedAggTo) })
	t.Run("window", func(t *testing.T) { testPebbleSnapshotOfFailedCheckpointRemoved(t, buildAggTo) })
}

func testPebbleSnapshotOfFailedCheckpointRemoved(t *testing.T, build func(Stream[cev], Sink[Windowed[string, int64]])) {
	dir, pdir := t.TempDir(), t.TempDir()
	d, err := checkpoint.NewDir(dir, checkpoint.WithLogger(quietLog()))
	if err != nil {
		t.Fatal(err)
	}
	store := &failingKeyedStore{Dir: d}
	data := genEvents(9, 2, 1500, 40)
	env := New(WithParallelism(2), WithBatchSize(16), WithMaxParallelism(16),
		WithStateBackend(statepebble.Factory(statepebble.Options{Dir: pdir, CacheSize: 1 << 20, MemTableSize: 256 << 10})),
		WithCheckpointStore(store, 2*time.Millisecond), WithCheckpointTimeout(time.Minute), WithLogger(quietLog()))
	src := FromSource(env, "events", &pacedSource{data: data, chunk: 10, pace: 200 * time.Microsecond},
		WatermarkStrategy[cev]{Timestamp: func(e cev) int64 { return e.Ts }})
	build(src, SinkFunc[Windowed[string, int64]](func(context.Context, []Windowed[string, int64]) error { return nil }))
	if err := env.Execute(context.Background()); err != nil {
		t.Fatal(err)
	}
	if store.failed.Load() == 0 {
		t.Fatal("no checkpoint reached the operator's file")
	}
	var left []string
	_ = filepath.WalkDir(pdir, func(p string, e fs.DirEntry, _ error) error {
		if e != nil && e.IsDir() && strings.HasPrefix(e.Name(), "snap-") {
			left = append(left, p)
		}
		return nil
	})
	if len(left) > 0 {
		t.Fatalf("%d failed checkpoints' Pebble snapshots left on disk, e.g. %s", len(left), left[0])
	}
}
