package kafka

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/stream"
)

// TestGroupOffsetsCommittedAtCheckpoint: an unbounded source with a group
// run by the stream runtime with checkpointing gets its offsets committed
// to the group when checkpoints complete (stream.PositionCommitter), with
// no CommitFinished; a second run with the group starts after them.
func TestGroupOffsetsCommittedAtCheckpoint(t *testing.T) {
	brokers := cluster(t, 2, "t")
	cl := client(t, brokers, manual())
	adm := kadm.NewClient(cl)
	produce(t, cl, "t", 0, "a", "b")
	produce(t, cl, "t", 1, "c")
	cfg := SourceConfig{Brokers: brokers, Topic: "t", Group: "g", PollInterval: 10 * time.Millisecond}
	ctx := ctxT(t)

	// committed reports whether the group's offsets are at want.
	committed := func(want map[int32]int64) bool {
		t.Helper()
		res, err := adm.FetchOffsets(ctx, "g")
		if errors.Is(err, kerr.GroupIDNotFound) {
			return false // nothing committed yet
		}
		if err != nil {
			t.Fatal(err)
		}
		for p, at := range want {
			o, ok := res.Lookup("t", p)
			if !ok || o.Err != nil || o.At != at {
				return false
			}
		}
		return true
	}
	run := func(want map[int32]int64) []string {
		t.Helper()
		src, err := NewSource(cfg)
		if err != nil {
			t.Fatal(err)
		}
		env := stream.New(stream.WithParallelism(2), stream.WithCheckpointing(t.TempDir(), 10*time.Millisecond))
		out := stream.Collect(stream.FromSource(env, "kafka", stream.Source[connector.Message](src), stream.WatermarkStrategy[connector.Message]{}))
		job, err := env.Start(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for !committed(want) {
			select {
			case <-job.Done():
				t.Fatalf("job ended: %v", job.Wait())
			case <-ctx.Done():
				t.Fatalf("offsets %v not committed before the deadline", want)
			case <-time.After(5 * time.Millisecond):
			}
		}
		job.Cancel()
		if err := job.Wait(); err != nil && !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
		return values(out.Values())
	}
	if got := run(map[int32]int64{0: 2, 1: 1}); len(got) != 3 {
		t.Fatalf("first run: %v", got)
	}
	produce(t, cl, "t", 1, "d")
	if got := run(map[int32]int64{0: 2, 1: 2}); len(got) != 1 || got[0] != "d" {
		t.Fatalf("second run: %v", got)
	}
}
