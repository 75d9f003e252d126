package logsrc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/stream"
)

type tpcW interface {
	stream.SinkWriter[connector.Message]
	checkpoint.TwoPhaseCommitter
}

func openTPC(t *testing.T, s *Sink, index, par int) tpcW {
	t.Helper()
	w, err := s.Open(context.Background(), stream.SubtaskInfo{Index: index, Parallelism: par})
	if err != nil {
		t.Fatal(err)
	}
	return w.(tpcW)
}

func openLogAt(t *testing.T, dir string) *logstore.Log {
	t.Helper()
	l, err := logstore.Open(logstore.Options{
		Dir:                    dir,
		DefaultFsync:           logstore.FsyncPolicy{Mode: logstore.FsyncNever},
		RetentionCheckInterval: -1,
		Logger:                 slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func allStable(t *testing.T, l *logstore.Log, topic string) {
	t.Helper()
	tp, err := l.Topic(topic)
	if err != nil {
		t.Fatal(err)
	}
	for p := range tp.NumPartitions() {
		if _, hw, lso := part(t, tp, p).Offsets(); lso != hw {
			t.Fatalf("partition %d: last stable %d, high watermark %d: a transaction is left open", p, lso, hw)
		}
	}
}

// Pre-committed output is invisible to read_committed readers until
// Commit; Commit is idempotent, also after Close; Abort discards.
func TestTwoPhasePreCommitInvisibleUntilCommit(t *testing.T) {
	ctx := context.Background()
	l := openLog(t)
	w := openTPC(t, txnSink(t, l, producerIDs(t, l), 2), 0, 1)
	if err := w.Recover(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if h, err := w.PreCommit(ctx, 1); err != nil || h != nil {
		t.Fatalf("pre-commit with nothing written: %v, %v", h, err)
	}
	if err := w.Write(ctx, msgs("a", "b", "c")); err != nil {
		t.Fatal(err)
	}
	h2, err := w.PreCommit(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(ctx, msgs("d")); err != nil {
		t.Fatal(err)
	}
	h3, err := w.PreCommit(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if got := committedValues(t, l, "out"); len(got) != 0 {
		t.Fatalf("visible before commit: %v", got)
	}
	if err := w.Commit(ctx, h2); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx, h2); err != nil {
		t.Fatal(err)
	}
	if got := committedValues(t, l, "out"); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("after commit of 2: %v", got)
	}
	if err := w.Abort(ctx, h3); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(ctx, msgs("e")); err != nil {
		t.Fatal(err)
	}
	h4, err := w.PreCommit(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := committedValues(t, l, "out"); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("close committed pre-committed output: %v", got)
	}
	if err := w.Commit(ctx, h4); err != nil {
		t.Fatal(err)
	}
	if got := committedValues(t, l, "out"); !slices.Equal(got, []string{"a", "b", "c", "e"}) {
		t.Fatalf("after the final commit: %v", got)
	}
	allStable(t, l, "out")
	if err := w.Commit(ctx, checkpoint.Transaction{9}); !errors.Is(err, ErrBadTxn) {
		t.Fatalf("bad handle: %v", err)
	}
}

// A run dies with a transaction pre-committed for a completed checkpoint,
// one pre-committed for a checkpoint that never completed and one open.
// After the log itself is closed and reopened, Recover commits exactly the
// first, aborts the rest and fences the zombie; recovering again (a second
// crash before the next checkpoint) changes nothing.
func TestTwoPhaseRecoverAcrossReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l := openLogAt(t, dir)
	old := openTPC(t, txnSink(t, l, producerIDs(t, l), 2), 0, 1)
	if err := old.Recover(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := old.Write(ctx, msgs("a", "b", "c", "d")); err != nil {
		t.Fatal(err)
	}
	done, err := old.PreCommit(ctx, 1) // its checkpoint completes
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Write(ctx, msgs("e")); err != nil {
		t.Fatal(err)
	}
	if _, err := old.PreCommit(ctx, 2); err != nil { // its checkpoint never completes
		t.Fatal(err)
	}
	if err := old.Write(ctx, msgs("f", "g")); err != nil { // open
		t.Fatal(err)
	}
	// Crash: no Commit, no Close; the log goes down and comes back.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	want := []string{"a", "b", "c", "d"}
	for run := range 2 {
		l = openLogAt(t, dir)
		w := openTPC(t, txnSink(t, l, producerIDs(t, l), 2), 0, 1)
		if got := committedValues(t, l, "out"); len(got) != 0 && run == 0 {
			t.Fatalf("visible before recovery: %v", got)
		}
		if err := w.Recover(ctx, []checkpoint.Transaction{done}); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		if got := committedValues(t, l, "out"); !slices.Equal(got, want) {
			t.Fatalf("run %d after recovery: %v, want %v", run, got, want)
		}
		allStable(t, l, "out")
		if run == 1 {
			if err := w.Write(ctx, msgs("h")); err != nil {
				t.Fatal(err)
			}
			h, err := w.PreCommit(ctx, 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Commit(ctx, h); err != nil {
				t.Fatal(err)
			}
			if got := committedValues(t, l, "out"); !slices.Equal(got, append(want, "h")) {
				t.Fatalf("after the new run: %v", got)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// A job checkpointed at parallelism 2 and restored at 1: the one subtask
// fences both earlier subtasks' transactional ids, so nothing stays open.
func TestTwoPhaseRecoverRescaled(t *testing.T) {
	ctx := context.Background()
	l := openLog(t)
	ids := producerIDs(t, l)
	s := txnSink(t, l, ids, 1)
	var keep []checkpoint.Transaction
	for i := range 2 {
		w := openTPC(t, s, i, 2)
		if err := w.Recover(ctx, nil); err != nil {
			t.Fatal(err)
		}
		v := fmt.Sprint(i)
		if err := w.Write(ctx, msgs("a"+v)); err != nil {
			t.Fatal(err)
		}
		h, err := w.PreCommit(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		keep = append(keep, h)
		if err := w.Write(ctx, msgs("b"+v)); err != nil {
			t.Fatal(err)
		}
	}
	w := openTPC(t, txnSink(t, l, ids, 1), 0, 1)
	if err := w.Recover(ctx, keep); err != nil {
		t.Fatal(err)
	}
	if got := committedValues(t, l, "out"); !slices.Equal(got, []string{"a0", "a1"}) {
		t.Fatalf("after rescaled recovery: %v", got)
	}
	allStable(t, l, "out")
}

func TestTxnHandleRoundTrip(t *testing.T) {
	for _, x := range []Txn{
		{TransactionalID: "sluice-out-0-1", ProducerID: 7, Epoch: 3, Partitions: []int32{0, 2}},
		{TransactionalID: "", ProducerID: 0, Epoch: 32767},
	} {
		got, err := DecodeTxn(EncodeTxn(x))
		if err != nil {
			t.Fatal(err)
		}
		if got.TransactionalID != x.TransactionalID || got.ProducerID != x.ProducerID || got.Epoch != x.Epoch || !slices.Equal(got.Partitions, x.Partitions) {
			t.Fatalf("round trip %+v -> %+v", x, got)
		}
	}
	for _, b := range [][]byte{nil, {2}, {1, 5, 'a'}, append(EncodeTxn(Txn{TransactionalID: "x", ProducerID: 1}), 0)} {
		if _, err := DecodeTxn(b); !errors.Is(err, ErrBadTxn) {
			t.Fatalf("%x: %v", b, err)
		}
	}
}

func FuzzDecodeTxn(f *testing.F) {
	f.Add([]byte(EncodeTxn(Txn{TransactionalID: "sluice-out-0-1", ProducerID: 7, Epoch: 3, Partitions: []int32{0, 2}})))
	f.Add([]byte{1, 0, 0, 0, 0})
	f.Add([]byte{1, 200, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := DecodeTxn(b)
		if err != nil {
			return
		}
		if y, err := DecodeTxn(EncodeTxn(x)); err != nil || y.TransactionalID != x.TransactionalID || y.ProducerID != x.ProducerID || y.Epoch != x.Epoch || !slices.Equal(y.Partitions, x.Partitions) {
			t.Fatalf("re-encoding %+v: %+v, %v", x, y, err)
		}
	})
}

// heldSource is a bounded source of strings over a few splits; each split
// holds at index holdAt until release reports true (so that a checkpoint
// completes before the failure).
type heldSource struct {
	parts   [][]string
	holdAt  int
	release func() bool
}

func (s *heldSource) Splits(context.Context, int) ([]stream.Split[string], error) {
	out := make([]stream.Split[string], len(s.parts))
	for i, p := range s.parts {
		out[i] = &heldSplit{s: s, id: fmt.Sprintf("held-%d", i), vals: p}
	}
	return out, nil
}

type heldSplit struct {
	s    *heldSource
	id   string
	vals []string
	off  int
}

func (h *heldSplit) ID() string { return h.id }

func (h *heldSplit) Read(_ context.Context, dst []string) (int, error) {
	if h.off >= len(h.vals) {
		return 0, io.EOF
	}
	if h.off >= h.s.holdAt && !h.s.release() {
		time.Sleep(200 * time.Microsecond) // pacing, not synchronisation
		return 0, nil
	}
	n := copy(dst[:min(len(dst), 7)], h.vals[h.off:])
	h.off += n
	return n, nil
}

func (h *heldSplit) Position() []byte { return binary.BigEndian.AppendUint64(nil, uint64(h.off)) }

func (h *heldSplit) Seek(pos []byte) error {
	if len(pos) != 8 {
		return fmt.Errorf("split %s: position of %d bytes", h.id, len(pos))
	}
	h.off = int(binary.BigEndian.Uint64(pos))
	return nil
}

// commitFailSink wraps the transactional sink so that the first Commit
// fails without committing: the checkpoint is complete but its output is
// not visible when the job fails, the window that recovery must close.
type commitFailSink struct {
	s      *Sink
	failed *atomic.Bool
}

func (c *commitFailSink) Open(ctx context.Context, info stream.SubtaskInfo) (stream.SinkWriter[connector.Message], error) {
	w, err := c.s.Open(ctx, info)
	if err != nil {
		return nil, err
	}
	return &commitFailWriter{tpcW: w.(tpcW), failed: c.failed}, nil
}

type commitFailWriter struct {
	tpcW
	failed *atomic.Bool
}

var errInjectedCommit = errors.New("injected commit failure")

func (w *commitFailWriter) Commit(ctx context.Context, tx checkpoint.Transaction) error {
	if w.failed.CompareAndSwap(false, true) {
		return errInjectedCommit
	}
	return w.tpcW.Commit(ctx, tx)
}

// The exactly-once test through the stream runtime: a bounded source into
// the transactional log sink at parallelism 2, checkpointing every few
// milliseconds; a map panics once, after a checkpoint has committed output,
// and the restart policy restores that checkpoint. In the second variant
// the first commit of a completed checkpoint fails as well, so the
// restarted run's Recover must commit it. The committed output, read
// read_committed, is the input exactly: nothing twice, nothing lost.
func TestTwoPhaseLogSinkExactlyOnceAfterFailure(t *testing.T) {
	for seed := range 4 {
		failCommit := seed >= 2
		t.Run(fmt.Sprintf("seed %d fail commit %v", seed, failCommit), func(t *testing.T) {
			l := openLog(t)
			var sink stream.Sink[connector.Message] = txnSink(t, l, producerIDs(t, l), 2)
			var commitFailed atomic.Bool
			if failCommit {
				sink = &commitFailSink{s: sink.(*Sink), failed: &commitFailed}
			}
			const n, splits = 600, 2
			var want []string
			parts := make([][]string, splits)
			for i := range n {
				v := fmt.Sprintf("v%04d", i)
				want = append(want, v)
				parts[i%splits] = append(parts[i%splits], v)
			}
			slices.Sort(want)
			var committed atomic.Bool
			holdUntil := time.Now().Add(30 * time.Second) // a regression fails below rather than hangs here
			release := func() bool {
				if committed.Load() || time.Now().After(holdUntil) {
					return true
				}
				if len(committedValues(t, l, "out")) > 0 {
					committed.Store(true)
				}
				return committed.Load()
			}
			panicAt := fmt.Sprintf("v%04d", 400+seed*37)
			var fired atomic.Bool
			env := stream.New(stream.WithParallelism(2), stream.WithBatchSize(8),
				stream.WithCheckpointing(t.TempDir(), 5*time.Millisecond), stream.WithRestartPolicy(3, time.Millisecond),
				stream.WithLogger(slog.New(slog.DiscardHandler)))
			in := stream.FromSource(env, "in", stream.Source[string](&heldSource{parts: parts, holdAt: 150, release: release}), stream.WatermarkStrategy[string]{})
			out := stream.Map(in, func(v string) connector.Message {
				if v == panicAt && fired.CompareAndSwap(false, true) {
					panic("injected failure")
				}
				return connector.Message{Key: []byte(v), Value: []byte(v)}
			})
			stream.To(out, sink)
			if err := env.Execute(context.Background()); err != nil {
				t.Fatal(err)
			}
			if !fired.Load() || failCommit && !commitFailed.Load() {
				t.Fatal("the failure was not injected")
			}
			got := committedValues(t, l, "out")
			if !slices.Equal(got, want) {
				dups, missing := 0, 0
				seen := map[string]int{}
				for _, v := range got {
					seen[v]++
				}
				for _, v := range want {
					switch seen[v] {
					case 0:
						missing++
					case 1:
					default:
						dups++
					}
				}
				t.Fatalf("committed %d records, want %d: %d duplicated, %d missing", len(got), len(want), dups, missing)
			}
			allStable(t, l, "out")
		})
	}
}
