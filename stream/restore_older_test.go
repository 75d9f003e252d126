package stream

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/sluicehq/sluice/checkpoint"
)

// TestRestoreFromOlderCheckpointNumbersAfterNewest: a job restored from an
// older checkpoint of its own checkpoint dir (a roll-back, WithRestoreFrom)
// numbers its checkpoints after the newest one stored, so that its own
// checkpoints are the latest: a restart (or the next run) resumes from
// them, not from a checkpoint of the abandoned run, and retention does not
// delete the checkpoint it just completed.
func TestRestoreFromOlderCheckpointNumbersAfterNewest(t *testing.T) {
	dir := t.TempDir()
	data := genEvents(5, 2, 1500, 40)
	run := func(from string) *Job {
		opts := []Option{WithParallelism(2), WithBatchSize(16), WithMaxParallelism(16),
			WithCheckpointing(dir, 2*time.Millisecond), WithCheckpointRetention(3),
			WithCheckpointTimeout(time.Minute), WithLogger(quietLog())}
		if from != "" {
			opts = append(opts, WithRestoreFrom(from))
		}
		env := New(opts...)
		src := FromSource(env, "events", &pacedSource{data: data, chunk: 10, pace: 200 * time.Microsecond},
			WatermarkStrategy[cev]{Timestamp: func(e cev) int64 { return e.Ts }})
		buildKeyedAggTo(src, SinkFunc[Windowed[string, int64]](func(context.Context, []Windowed[string, int64]) error { return nil }))
		job, err := env.Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := job.Wait(); err != nil {
			t.Fatal(err)
		}
		return job
	}
	run("")
	store, err := checkpoint.NewDir(dir, checkpoint.WithLogger(quietLog()))
	if err != nil {
		t.Fatal(err)
	}
	before, err := store.Complete()
	if err != nil || len(before) < 3 {
		t.Fatalf("complete checkpoints of the first run %v, %v", before, err)
	}
	// Roll back to the oldest checkpoint retained.
	from := filepath.Join(dir, fmt.Sprintf("chk-%020d", uint64(before[0])))
	job := run(from)
	last := checkpoint.ID(job.CheckpointStats().LastID)
	if last <= slices.Max(before) {
		t.Errorf("the rolled-back run's last checkpoint is %d, not after the newest stored before it (%v)", last, before)
	}
	c, err := store.Latest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Manifest.ID != last {
		t.Fatalf("latest checkpoint %d, want the rolled-back run's last, %d: a restart would resume the abandoned run", c.Manifest.ID, last)
	}
}
