package logsrc

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/stream"
)

func txnSink(t *testing.T, l *logstore.Log, ids *logstore.ProducerIDs, pending int) *Sink {
	t.Helper()
	s, err := NewSink(l, SinkConfig{Topic: "out", CreatePartitions: 3, Transactional: true, ProducerIDs: ids, MaxPendingCheckpoints: pending})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func openTxnW(t *testing.T, s *Sink) tpcW {
	t.Helper()
	w, err := s.Open(context.Background(), stream.SubtaskInfo{})
	if err != nil {
		t.Fatal(err)
	}
	return w.(tpcW)
}

func mustPreCommit(t *testing.T, w tpcW, id checkpoint.ID) checkpoint.Transaction {
	t.Helper()
	h, err := w.PreCommit(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func msgs(vals ...string) []connector.Message {
	out := make([]connector.Message, len(vals))
	for i, v := range vals {
		out[i] = connector.Message{Key: []byte(v), Value: []byte(v)}
	}
	return out
}

// committedValues reads the topic read_committed up to its current end.
func committedValues(t *testing.T, l *logstore.Log, topic string) []string {
	t.Helper()
	src := mustSource(t, l, topic)
	var out []string
	for _, sp := range splits(t, src) {
		out = append(out, values(readAll(t, sp, rand.New(rand.NewPCG(1, 2))))...)
	}
	sort.Strings(out)
	return out
}

func producerIDs(t *testing.T, l *logstore.Log) *logstore.ProducerIDs {
	t.Helper()
	ids, err := logstore.OpenProducerIDs(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestTransactionalSinkCommitsAtCheckpoint(t *testing.T) {
	ctx := context.Background()
	l := openLog(t)
	ids := producerIDs(t, l)
	s := txnSink(t, l, ids, 1)
	w := openTxnW(t, s)
	if err := w.Recover(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(ctx, msgs("a", "b", "c")); err != nil {
		t.Fatal(err)
	}
	h1 := mustPreCommit(t, w, 1)
	if err := w.Write(ctx, msgs("d")); err != nil { // the next transaction
		t.Fatal(err)
	}
	if got := committedValues(t, l, "out"); len(got) != 0 {
		t.Fatalf("visible before the checkpoint completed: %v", got)
	}
	pre, err := DecodeTxn(h1)
	if err != nil || len(pre.Partitions) == 0 || pre.TransactionalID != "sluice-out-0-0" && pre.TransactionalID != "sluice-out-0-1" {
		t.Fatalf("pre-committed %+v, %v", pre, err)
	}
	if err := w.Commit(ctx, h1); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx, h1); err != nil { // again: nothing
		t.Fatal(err)
	}
	if got := committedValues(t, l, "out"); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("after checkpoint 1: %v", got)
	}
	h2 := mustPreCommit(t, w, 2)
	if err := w.Write(ctx, msgs("e")); err != nil {
		t.Fatal(err)
	}
	h3 := mustPreCommit(t, w, 3)
	// Checkpoint 2 did not complete (its transaction waits for the next
	// checkpoint that does): both slots are pending. The next write takes
	// a third slot and commits nothing before its checkpoint completes:
	// a restore from checkpoint 1 would replay "d".
	if err := w.Write(ctx, msgs("f")); err != nil {
		t.Fatal(err)
	}
	if got := committedValues(t, l, "out"); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("committed before their checkpoint completed: %v", got)
	}
	if n := s.AddedSlots(); n != 1 {
		t.Fatalf("added slots %d", n)
	}
	for _, h := range []checkpoint.Transaction{h2, h3} { // checkpoint 3 completes: it holds both
		if err := w.Commit(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	h4 := mustPreCommit(t, w, 0) // the final checkpoint, at the end of the input
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, h := range []checkpoint.Transaction{h4} { // after Close, as the runtime may
		if err := w.Commit(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	if got := committedValues(t, l, "out"); !slices.Equal(got, []string{"a", "b", "c", "d", "e", "f"}) {
		t.Fatalf("after close: %v", got)
	}
	allStable(t, l, "out")
}

// Without checkpoints (no two-phase commit) a writer's records are one
// transaction, committed at the end of the input.
func TestTransactionalSinkWithoutCheckpoints(t *testing.T) {
	ctx := context.Background()
	l := openLog(t)
	w := openTxnW(t, txnSink(t, l, producerIDs(t, l), 2))
	if err := w.Write(ctx, msgs("a", "b")); err != nil {
		t.Fatal(err)
	}
	if got := committedValues(t, l, "out"); len(got) != 0 {
		t.Fatalf("visible before the end: %v", got)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := committedValues(t, l, "out"); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("after close: %v", got)
	}
}

// A writer that dies with transactions open (one pre-committed, one not):
// a new incarnation fences it and aborts both, so read_committed readers
// move on; or, when Recover gets the pre-committed one (its checkpoint
// completed), exactly that one becomes visible.
func TestTransactionalSinkRecovery(t *testing.T) {
	for _, recoverPre := range []bool{false, true} {
		t.Run(fmt.Sprintf("commit recovered %v", recoverPre), func(t *testing.T) {
			ctx := context.Background()
			l := openLog(t)
			ids := producerIDs(t, l)
			old := openTxnW(t, txnSink(t, l, ids, 2))
			if err := old.Write(ctx, msgs("a", "b")); err != nil {
				t.Fatal(err)
			}
			saved := mustPreCommit(t, old, 1)
			if err := old.Write(ctx, msgs("c")); err != nil {
				t.Fatal(err)
			}
			// The old writer "crashes" here: no commit, no close.

			// A new sink (its registry replayed from the log) as after a restart.
			s2 := txnSink(t, l, ids, 2)
			var restored []checkpoint.Transaction
			if recoverPre {
				restored = append(restored, saved)
			}
			w2 := openTxnW(t, s2)
			if err := w2.Recover(ctx, restored); err != nil { // commits, then fences and aborts the rest
				t.Fatal(err)
			}
			want := []string{}
			if recoverPre {
				want = []string{"a", "b"}
			}
			if got := committedValues(t, l, "out"); !slices.Equal(got, want) {
				t.Fatalf("after restart: %v, want %v", got, want)
			}
			// Nothing is left open: the last stable offsets caught up.
			tp, _ := l.Topic("out")
			for p := range tp.NumPartitions() {
				_, hw, lso := part(t, tp, p).Offsets()
				if lso != hw {
					t.Fatalf("partition %d: last stable %d, high watermark %d", p, lso, hw)
				}
			}
			// The zombie is fenced.
			if err := old.Write(ctx, msgs("zombie")); !errors.Is(err, logstore.ErrProducerFenced) {
				t.Fatalf("zombie write: %v", err)
			}
			if err := w2.Write(ctx, msgs("d")); err != nil {
				t.Fatal(err)
			}
			tpc := checkpoint.TwoPhaseCommitter(w2)
			h, err := tpc.PreCommit(ctx, 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := w2.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if err := tpc.Commit(ctx, h); err != nil { // after Close, as the runtime may
				t.Fatal(err)
			}
			if got := committedValues(t, l, "out"); !slices.Equal(got, append(want, "d")) {
				t.Fatalf("after the new run: %v", got)
			}
		})
	}
}

func TestTransactionalSinkAbortOnCancel(t *testing.T) {
	ctx := context.Background()
	l := openLog(t)
	w := openTxnW(t, txnSink(t, l, producerIDs(t, l), 2))
	if err := w.Recover(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(ctx, msgs("a")); err != nil {
		t.Fatal(err)
	}
	h := mustPreCommit(t, w, 1)
	if err := w.Write(ctx, msgs("b")); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := w.Close(cancelled); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(ctx, h); err != nil { // checkpoint 1 failed
		t.Fatal(err)
	}
	if got := committedValues(t, l, "out"); len(got) != 0 {
		t.Fatalf("visible after abort: %v", got)
	}
	allStable(t, l, "out")
	if _, err := NewSink(l, SinkConfig{Topic: "out", Transactional: true}); err == nil {
		t.Fatal("transactional sink without producer ids accepted")
	}
}

// Through the stream runtime with parallel subtasks: at the end of the
// input every transaction is committed and read_committed readers see
// each record once.
func TestTransactionalSinkPipeline(t *testing.T) {
	l := openLog(t)
	s := txnSink(t, l, producerIDs(t, l), 2)
	var in []connector.Message
	var want []string
	for i := range 500 {
		v := fmt.Sprintf("v%03d", i)
		in = append(in, connector.Message{Key: []byte(v), Value: []byte(v)})
		want = append(want, v)
	}
	env := stream.New(stream.WithParallelism(2))
	stream.To(stream.FromSource(env, "in", stream.FromSlice(in, 2), stream.WatermarkStrategy[connector.Message]{}), stream.Sink[connector.Message](s))
	if err := env.Execute(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := committedValues(t, l, "out"); !slices.Equal(got, want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
}
