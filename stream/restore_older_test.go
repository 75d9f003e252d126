package stream

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluicehq/sluice/checkpoint"
)

// TestRestoreFromOlderCheckpointNumbersAfterNewest: a job restored from an
// older checkpoint of its own checkpoint dir (a roll-back, WithRestoreFrom)
// numbers its checkpoints after the newest one stored: it overwrites none
// of the stored checkpoints, and its own are the latest, so that a
// restart (or the next run) resumes from them, not from a checkpoint of
// the abandoned run.
func TestRestoreFromOlderCheckpointNumbersAfterNewest(t *testing.T) {
	dir := t.TempDir()
	data := genEvents(5, 2, 1500, 40)
	run := func(from string) *Job {
		opts := []Option{WithParallelism(2), WithBatchSize(16), WithMaxParallelism(16),
			WithCheckpointing(dir, 2*time.Millisecond), WithCheckpointRetention(100),
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
	chkDir := func(id checkpoint.ID) string { return filepath.Join(dir, fmt.Sprintf("chk-%020d", uint64(id))) }
	// Three runs: the later two resume from the end and only add their
	// final checkpoint.
	run("")
	run("")
	run("")
	store, err := checkpoint.NewDir(dir, checkpoint.WithLogger(quietLog()))
	if err != nil {
		t.Fatal(err)
	}
	before, err := store.Complete()
	if err != nil || len(before) < 3 {
		t.Fatalf("complete checkpoints %v, %v", before, err)
	}
	manifests := map[checkpoint.ID][]byte{}
	for _, id := range before {
		b, err := os.ReadFile(filepath.Join(chkDir(id), "MANIFEST"))
		if err != nil {
			t.Fatal(err)
		}
		manifests[id] = b
	}
	// Roll back to the first run's final checkpoint.
	job := run(chkDir(before[len(before)-3]))
	last := checkpoint.ID(job.CheckpointStats().LastID)
	for _, id := range before {
		b, err := os.ReadFile(filepath.Join(chkDir(id), "MANIFEST"))
		if err != nil || !bytes.Equal(b, manifests[id]) {
			t.Fatalf("checkpoint %d stored before the roll-back was overwritten or removed by it (%v); the rolled-back run's last is %d", id, err, last)
		}
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
