package stream

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// TestCheckpointHistory checks that a checkpointing job records each
// completed checkpoint with its id, start and the size of its files, and
// that the history agrees with the counters.
func TestCheckpointHistory(t *testing.T) {
	data := genEvents(5, 2, 400, 10)
	st := newTxStore()
	env := New(WithParallelism(2), WithBatchSize(16), WithMaxParallelism(16),
		WithCheckpointing(t.TempDir(), 5*time.Millisecond), WithCheckpointTimeout(time.Minute), WithLogger(quietLog()))
	// The sources hold their second half until a checkpoint completed
	// while windows were open (so that one has state and an alignment),
	// however slow the machine.
	var running atomic.Pointer[Job]
	midRunDone := func() bool {
		j := running.Load()
		return j != nil && j.CheckpointStats().Completed >= 1
	}
	buildAgg(env, &pacedSource{data: data, chunk: 10, pace: time.Millisecond, holdAt: len(data[0]) / 2, release: midRunDone}, func(e cev) cev { return e }, st)
	job, err := env.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	running.Store(job)
	if err := job.Wait(); err != nil {
		t.Fatal(err)
	}
	h := job.CheckpointHistory()
	if len(h) == 0 {
		t.Fatal("no checkpoint in the history of a finished checkpointing job")
	}
	completed, sized, aligned := 0, 0, 0
	for _, c := range h {
		if c.Completed {
			completed++
			if c.ID == 0 || c.Started.IsZero() || c.SizeBytes < 0 || c.Alignment < 0 {
				t.Fatalf("completed checkpoint %+v: want an id and a start", c)
			}
			if c.SizeBytes > 0 {
				sized++
			}
			if c.Alignment > 0 {
				aligned++
			}
		}
	}
	// Checkpoints taken while windows are open hold their state; the final
	// one, after every window fired, may name no file.
	if aligned == 0 {
		t.Fatalf("no checkpoint in %+v reports an alignment time (the window operators have two inputs)", h)
	}
	if sized == 0 {
		t.Fatalf("no checkpoint in %+v has a size", h)
	}
	stats := job.CheckpointStats()
	if uint64(completed) != stats.Completed || h[len(h)-1].ID != stats.LastID {
		t.Fatalf("history %+v disagrees with stats %+v", h, stats)
	}
}
