package file

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/stream"
)

// stagedParts returns the parts named by a sink subtask's state in a
// checkpoint: the runtime's list of transactions not known to be
// committed (count, then id, length and handle of each), each handle a
// list of parts.
func stagedParts(t *testing.T, state checkpoint.Transaction) []part {
	t.Helper()
	b := []byte(state)
	n, k := binary.Uvarint(b)
	if k <= 0 {
		t.Fatalf("sink state %x does not decode", state)
	}
	b = b[k:]
	var out []part
	for range n {
		_, k1 := binary.Uvarint(b)
		l, k2 := binary.Uvarint(b[max(k1, 0):])
		if k1 <= 0 || k2 <= 0 || uint64(len(b)-k1-k2) < l {
			t.Fatalf("sink state %x does not decode", state)
		}
		ps, err := decodeParts(b[k1+k2 : k1+k2+int(l)])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ps...)
		b = b[k1+k2+int(l):]
	}
	return out
}

// TestCheckpointStateStaysBounded: over a run of many checkpoints, each
// committing parts, a checkpoint's state for the sink names only the
// parts not yet committed (what Recover must commit), not every part the
// run ever committed: the runtime keeps a transaction only until a
// completed checkpoint committed it, and Commit needs nothing else (a
// part already renamed is skipped).
func TestCheckpointStateStaysBounded(t *testing.T) {
	dir := t.TempDir()
	sink, err := NewSink(SinkConfig{Path: dir, TwoPhase: true, RollBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	const n = 12
	var vals []string
	for i := range n {
		vals = append(vals, fmt.Sprintf("v%02d", i))
	}
	committed := func() int {
		m, _ := filepath.Glob(filepath.Join(dir, "part-*"))
		return len(m)
	}
	// One record per checkpoint: the next only once the previous one's
	// part is committed.
	split := &heldSplit{vals: vals}
	split.release = func() bool { return committed() >= split.off }
	env := stream.New(stream.WithParallelism(1), stream.WithBatchSize(1),
		stream.WithCheckpointing(t.TempDir(), 2*time.Millisecond), stream.WithLogger(slog.New(slog.DiscardHandler)))
	in := stream.FromSource(env, "in", stream.Source[string](split), stream.WatermarkStrategy[string]{})
	out := stream.Map(in, func(v string) connector.Message { return connector.Message{Value: []byte(v)} })
	stream.To(out, stream.Sink[connector.Message](sink))
	job, err := env.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := job.Wait(); err != nil {
		t.Fatal(err)
	}
	if got := committed(); got != n {
		t.Fatalf("%d parts committed, want %d", got, n)
	}
	c, err := checkpoint.LoadDir(job.CheckpointStats().LastPath)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, ts := range c.Manifest.Tasks {
		if ts.Transaction == nil {
			continue
		}
		// The split releases a record only once every earlier part is
		// renamed, so at most one part is uncommitted; the part renamed
		// last may still be listed if the snapshot ran between its rename
		// and the runtime dropping its transaction. Two, not twelve.
		if ps := stagedParts(t, ts.Transaction); len(ps) > 2 {
			t.Errorf("the last checkpoint's sink state names %d parts of the %d committed, want at most the last two", len(ps), n)
		}
	}
}
