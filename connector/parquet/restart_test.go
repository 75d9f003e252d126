package parquet

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/stream"
)

// TestInProcessRestartLeavesNoTemporaryFiles runs the sink in each mode
// through a failure that the restart policy recovers in-process (which
// needs checkpointing, so the runtime calls every writer's Recover): the
// restarted writers must publish or delete what the failed attempt left,
// so that no temporary file stays in the directory.
func TestInProcessRestartLeavesNoTemporaryFiles(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"default", Config{MaxRowsPerFile: 7}},
		{"commit on barrier", Config{MaxRowsPerFile: 7, CommitOnBarrier: true}},
		{"two-phase", Config{MaxRowsPerFile: 7, TwoPhase: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.cfg.Path = dir
			var in []row.Row
			for i := range 400 {
				in = append(in, testRow(i))
			}
			s := newSink(t, tc.cfg)
			var fired atomic.Bool
			env := stream.New(stream.WithParallelism(2), stream.WithBatchSize(4),
				stream.WithCheckpointing(t.TempDir(), 5*time.Millisecond), stream.WithRestartPolicy(3, time.Millisecond),
				stream.WithLogger(slog.New(slog.DiscardHandler)))
			rows := stream.FromSource(env, "rows", stream.FromSlice(in, 2), stream.WatermarkStrategy[row.Row]{})
			out := stream.Map(rows, func(r row.Row) row.Row {
				if r.Vals[1].AsInt() == 300 && fired.CompareAndSwap(false, true) {
					panic("injected failure")
				}
				return r
			})
			stream.To(out, stream.Sink[row.Row](s))
			if err := env.Execute(context.Background()); err != nil {
				t.Fatal(err)
			}
			if !fired.Load() {
				t.Fatal("the failure was not injected")
			}
			noTemporaryFiles(t, dir)
		})
	}
}

// TestRestartWithoutRecoveryCleansFailedAttempt restarts writers of the
// same Sink without Recover (a driver without the runtime's two-phase
// commit: barriers, CommitCheckpoint, CommitRecovered): the failed
// attempt left files closed at a barrier and never committed. The
// restarted writer must delete them (they were left for a recovery that
// did not name them), but not the files of a writer of the same Sink that
// is still open.
func TestRestartWithoutRecoveryCleansFailedAttempt(t *testing.T) {
	dir := t.TempDir()
	s := newSink(t, Config{Path: dir, MaxRowsPerFile: 2})
	w1 := openWriter(t, s, stream.SubtaskInfo{Index: 0, Parallelism: 2})
	writeRows(t, w1, 1, 2, 3)
	barrier(t, w1, 1)
	live := openWriter(t, s, stream.SubtaskInfo{Index: 1, Parallelism: 2})
	writeRows(t, live, 10, 11, 12) // a closed file and one in progress
	abandon(w1)                    // the attempt fails; checkpoint 1 never completes

	w2 := openWriter(t, s, stream.SubtaskInfo{Index: 0, Parallelism: 2}) // the restart
	if err := s.CommitRecovered(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	writeRows(t, w2, 1, 2, 3) // replayed
	closeWriter(t, w2)
	closeWriter(t, live)
	wantRows(t, dir, 1, 2, 3, 10, 11, 12)
	noTemporaryFiles(t, dir)
}
