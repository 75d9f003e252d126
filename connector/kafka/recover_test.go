package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/stream"
)

// backends are the clusters the recovery tests run against: franz-go's
// kfake (whose EndTxn checks only the producer id and epoch, so another
// client can end a transaction) and Sluice's own listener over a log.
var backends = []struct {
	name  string
	start func(t *testing.T, partitions int32, topics ...string) []string
}{
	{"kfake", cluster},
	{"sluice", sluiceServe},
}

func twoPhase(t *testing.T, sink *Sink, index int) (stream.SinkWriter[connector.Message], checkpoint.TwoPhaseCommitter) {
	t.Helper()
	w, err := sink.Open(ctxT(t), stream.SubtaskInfo{Index: index, Parallelism: 1})
	if err != nil {
		t.Fatal(err)
	}
	return w, w.(checkpoint.TwoPhaseCommitter)
}

func writeVals(t *testing.T, w stream.SinkWriter[connector.Message], vals ...string) {
	t.Helper()
	ms := make([]connector.Message, len(vals))
	for i, v := range vals {
		ms[i] = connector.Message{Key: []byte(v), Value: []byte(v)}
	}
	if err := w.Write(ctxT(t), ms); err != nil {
		t.Fatal(err)
	}
}

func preCommit(t *testing.T, c checkpoint.TwoPhaseCommitter, id checkpoint.ID) checkpoint.Transaction {
	t.Helper()
	tx, err := c.PreCommit(ctxT(t), id)
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

// A crash between pre-commit and commit: the next incarnation's Recover
// commits the restored checkpoint's transactions with EndTxn under their
// own producer ids and epochs (one of them committed already: nothing
// twice), and aborts what the crashed writer began after that checkpoint,
// so that the last stable offsets move on. Recovering the same checkpoint
// once more changes nothing.
func TestRecoverCommitsPreCommitted(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			brokers := b.start(t, 2, "out")
			ctx := ctxT(t)
			sink, err := NewSink(SinkConfig{Brokers: brokers, Topic: "out", Transactional: true})
			if err != nil {
				t.Fatal(err)
			}
			w1, c1 := twoPhase(t, sink, 0)
			if err := c1.Recover(ctx, nil); err != nil {
				t.Fatal(err)
			}
			writeVals(t, w1, "a", "b", "c")
			tx1 := preCommit(t, c1, 1)
			writeVals(t, w1, "d", "e")
			tx2 := preCommit(t, c1, 2)
			if err := c1.Commit(ctx, tx1); err != nil {
				t.Fatal(err)
			}
			// After checkpoint 2: pre-committed at 3 (which never
			// completes), and an open transaction.
			writeVals(t, w1, "x")
			preCommit(t, c1, 3)
			writeVals(t, w1, "y")
			// Checkpoint 2 completes, and the process dies before
			// committing it.
			w1.(*txnWriter).crash()
			if got := consumeAll(t, brokers, "out"); !slices.Equal(got, []string{"a", "b", "c"}) {
				t.Fatalf("before recovery: %v", got)
			}

			// The restored checkpoint 2 holds both transactions (the
			// commit of 1 was not known when 2 was pre-committed).
			restored := []checkpoint.Transaction{tx1, tx2}
			w2, c2 := twoPhase(t, sink, 0)
			if err := c2.Recover(ctx, restored); err != nil {
				t.Fatal(err)
			}
			writeVals(t, w2, "f")
			tx := preCommit(t, c2, 3)
			if err := c2.Commit(ctx, tx); err != nil {
				t.Fatal(err)
			}
			// f is visible only if x and y were aborted.
			want := []string{"a", "b", "c", "d", "e", "f"}
			if got := consumeAll(t, brokers, "out"); !slices.Equal(got, want) {
				t.Fatalf("after recovery: %v, want %v", got, want)
			}
			w2.(*txnWriter).crash()

			w3, c3 := twoPhase(t, sink, 0)
			if err := c3.Recover(ctx, restored); err != nil {
				t.Fatal(err)
			}
			if err := w3.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if got := consumeAll(t, brokers, "out"); !slices.Equal(got, want) {
				t.Fatalf("after a second recovery: %v, want %v", got, want)
			}
			if n := sink.LostTransactions(); n != 0 {
				t.Fatalf("lost transactions: %d", n)
			}
		})
	}
}

// A pre-committed transaction whose timeout expires before recovery is
// aborted by the coordinator, which bumps its epoch: recovery logs it as
// lost, with its checkpoint id, and goes on.
func TestRecoverTimedOutTransactionIsLost(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			brokers := b.start(t, 1, "out")
			ctx := ctxT(t)
			// Recover logs on this goroutine.
			var logged bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&logged, nil))
			sink, err := NewSink(SinkConfig{Brokers: brokers, Topic: "out", Transactional: true, TransactionTimeout: 200 * time.Millisecond, Logger: logger})
			if err != nil {
				t.Fatal(err)
			}
			w1, c1 := twoPhase(t, sink, 0)
			if err := c1.Recover(ctx, nil); err != nil {
				t.Fatal(err)
			}
			writeVals(t, w1, "a")
			// The barrier in time (a slow machine may take longer
			// than the timeout between the write and here, and
			// PreCommit would refuse the transaction: not this test).
			w1.(*txnWriter).cur.began = time.Now().Add(time.Hour)
			tx := preCommit(t, c1, 7)
			w1.(*txnWriter).crash()
			h, err := DecodeTxn(tx)
			if err != nil {
				t.Fatal(err)
			}
			waitTimedOut(t, brokers, h)
			_, c2 := twoPhase(t, sink, 0)
			if err := c2.Recover(ctx, []checkpoint.Transaction{tx}); err != nil {
				t.Fatal(err)
			}
			if n := sink.LostTransactions(); n != 1 {
				t.Fatalf("lost transactions: %d", n)
			}
			if got := consumeAll(t, brokers, "out"); len(got) != 0 {
				t.Fatalf("visible: %v", got)
			}
			if l := logged.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "checkpoint=7") || !strings.Contains(l, h.TransactionalID) {
				t.Fatalf("log: %s", l)
			}
			// Commit through the runtime's path says so too.
			if err := c2.Commit(ctx, tx); !errors.Is(err, ErrTransactionLost) {
				t.Fatalf("commit of a lost transaction: %v", err)
			}
		})
	}
}

// waitTimedOut waits until the coordinator has aborted transaction h on
// its timeout and fenced its producer (a later epoch).
func waitTimedOut(t *testing.T, brokers []string, h Txn) {
	t.Helper()
	ctx := ctxT(t)
	adm := kadm.NewClient(client(t, brokers))
	for {
		d, err := adm.DescribeTransactions(ctx, h.TransactionalID)
		if err != nil {
			t.Fatal(err)
		}
		if s, ok := d[h.TransactionalID]; ok && s.Err == nil && s.ProducerEpoch > h.Epoch {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("the coordinator never aborted the timed-out transaction")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// copyJob is the pipeline of the crash tests: topic "in" to topic "out"
// through the transactional sink, checkpointing into dir.
func copyJob(brokers []string, dir string, sink *Sink) (*stream.Env, error) {
	src, err := NewSource(SourceConfig{Brokers: brokers, Topic: "in", Bounded: true})
	if err != nil {
		return nil, err
	}
	env := stream.New(stream.WithParallelism(2), stream.WithBatchSize(8), stream.WithDelivery(stream.ExactlyOnce),
		stream.WithCheckpointing(dir, 5*time.Millisecond), stream.WithLogger(slog.New(slog.DiscardHandler)))
	in := stream.FromSource(env, "in", stream.Source[connector.Message](src), stream.WatermarkStrategy[connector.Message]{})
	stream.To(stream.Map(in, func(m connector.Message) connector.Message {
		return connector.Message{Key: m.Key, Value: m.Value}
	}), stream.Sink[connector.Message](sink))
	return env, nil
}

func copySink(brokers []string) (*Sink, error) {
	return NewSink(SinkConfig{Brokers: brokers, Topic: "out", Transactional: true, TransactionalID: "copy", Logger: slog.New(slog.DiscardHandler)})
}

// fillInput writes n values to "in" and returns them sorted.
func fillInput(t *testing.T, brokers []string, n int) []string {
	t.Helper()
	cl := client(t, brokers)
	rs := make([]*kgo.Record, n)
	want := make([]string, n)
	for i := range rs {
		want[i] = fmt.Sprintf("v%04d", i)
		rs[i] = &kgo.Record{Topic: "in", Key: []byte(want[i]), Value: []byte(want[i])}
	}
	if err := cl.ProduceSync(ctxT(t), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	return want
}

// The fault injected by the runtime's path: a checkpoint completes (its
// manifest is durable) and the first Commit of a transaction fails before
// EndTxn, as a crash there would. The job fails; run again from the same
// checkpoint directory, it commits the transaction in Recover, and the
// committed output equals the input: nothing lost, nothing twice.
func TestCrashBetweenPreCommitAndCommit(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			brokers := b.start(t, 2, "in", "out")
			want := fillInput(t, brokers, 300)
			dir := t.TempDir()
			sink, err := copySink(brokers)
			if err != nil {
				t.Fatal(err)
			}
			var injected atomic.Int32
			sink.beforeCommit = func(Txn) error {
				if injected.Add(1) == 1 {
					return errors.New("injected crash before commit")
				}
				return nil
			}
			env, err := copyJob(brokers, dir, sink)
			if err != nil {
				t.Fatal(err)
			}
			if err := env.Execute(ctxT(t)); err == nil || !strings.Contains(err.Error(), "injected crash") {
				t.Fatalf("first run: %v", err)
			}
			sink2, err := copySink(brokers)
			if err != nil {
				t.Fatal(err)
			}
			env2, err := copyJob(brokers, dir, sink2)
			if err != nil {
				t.Fatal(err)
			}
			if err := env2.Execute(ctxT(t)); err != nil {
				t.Fatalf("second run: %v", err)
			}
			if got := consumeAll(t, brokers, "out"); !slices.Equal(got, want) {
				t.Fatalf("committed output: %d records, want %d (%s)", len(got), len(want), diff(got, want))
			}
			if n := sink2.LostTransactions(); n != 0 {
				t.Fatalf("lost transactions: %d", n)
			}
		})
	}
}

// diff names the first few values missing from or repeated in got.
func diff(got, want []string) string {
	n := map[string]int{}
	for _, v := range got {
		n[v]++
	}
	var out []string
	for _, v := range want {
		if c := n[v]; c != 1 && len(out) < 5 {
			out = append(out, fmt.Sprintf("%s×%d", v, c))
		}
	}
	return strings.Join(out, " ")
}

// TestKillChildKafkaSink is the job run by TestKillBetweenPreCommitAndCommit
// in a child process.
func TestKillChildKafkaSink(t *testing.T) {
	dir := os.Getenv("SLUICE_KAFKA_KILL_DIR")
	if dir == "" {
		t.Skip("run by TestKillBetweenPreCommitAndCommit")
	}
	brokers := strings.Split(os.Getenv("SLUICE_KAFKA_KILL_BROKERS"), ",")
	sink, err := copySink(brokers)
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("SLUICE_KAFKA_KILL") != "" {
		// The checkpoint is complete: die before its transaction is
		// committed.
		sink.beforeCommit = func(Txn) error {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
	}
	env, err := copyJob(brokers, dir, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Execute(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestKillBetweenPreCommitAndCommit kills the job's process with SIGKILL
// exactly between a completed checkpoint's pre-commit and its commit,
// then runs it again from the checkpoint directory: the committed output
// (read_committed) equals the input.
func TestKillBetweenPreCommitAndCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			brokers := b.start(t, 2, "in", "out")
			want := fillInput(t, brokers, 300)
			dir := filepath.Join(t.TempDir(), "chk")
			run := func(kill bool) error {
				cmd := exec.Command(os.Args[0], "-test.run=^TestKillChildKafkaSink$", "-test.count=1")
				cmd.Env = append(os.Environ(), "SLUICE_KAFKA_KILL_DIR="+dir, "SLUICE_KAFKA_KILL_BROKERS="+strings.Join(brokers, ","))
				if kill {
					cmd.Env = append(cmd.Env, "SLUICE_KAFKA_KILL=1")
				}
				out := &strings.Builder{}
				cmd.Stdout, cmd.Stderr = out, out
				err := cmd.Run()
				if err != nil && !kill {
					t.Logf("child output:\n%s", out)
				}
				return err
			}
			err := run(true)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("the first run was not killed: %v", err)
			}
			if err := run(false); err != nil {
				t.Fatalf("second run: %v", err)
			}
			if got := consumeAll(t, brokers, "out"); !slices.Equal(got, want) {
				t.Fatalf("committed output: %d records, want %d (%s)", len(got), len(want), diff(got, want))
			}
		})
	}
}

func TestTxnHandleRoundTrip(t *testing.T) {
	for _, x := range []Txn{
		{Checkpoint: 3, Subtask: 2, Next: 5, Seq: 4, TransactionalID: "p-2-4", ProducerID: 9, Epoch: 1},
		{Checkpoint: 0, Subtask: 0, Next: 0, ProducerID: -1, Epoch: -1},
	} {
		got, err := DecodeTxn(EncodeTxn(x))
		if err != nil || got != x {
			t.Fatalf("%+v: got %+v, %v", x, got, err)
		}
	}
	for _, bad := range [][]byte{nil, {2}, {1, 0, 0, 0, 0, 0, 2, 1}, append(EncodeTxn(Txn{ProducerID: -1, Epoch: -1}), 0)} {
		if _, err := DecodeTxn(bad); !errors.Is(err, ErrBadTransaction) {
			t.Fatalf("%x: %v", bad, err)
		}
	}
}

// FuzzDecodeTxn: handles come from checkpoint files; a decoded handle
// survives encoding and decoding again.
func FuzzDecodeTxn(f *testing.F) {
	f.Add([]byte(EncodeTxn(Txn{Checkpoint: 3, Subtask: 2, Next: 5, Seq: 4, TransactionalID: "p-2-4", ProducerID: 9, Epoch: 1})))
	f.Add([]byte(EncodeTxn(Txn{ProducerID: -1, Epoch: -1})))
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := DecodeTxn(b)
		if err != nil {
			if !errors.Is(err, ErrBadTransaction) {
				t.Fatalf("error %v is not ErrBadTransaction", err)
			}
			return
		}
		if again, err := DecodeTxn(EncodeTxn(x)); err != nil || again != x {
			t.Fatalf("%x decodes to %+v, which round-trips to %+v, %v", b, x, again, err)
		}
	})
}

// TestPreCommitRefusesTimedOutTransaction: a transaction open longer than
// the transaction timeout when its barrier comes (a checkpoint interval
// above the timeout, or a slow checkpoint) has been aborted by the broker.
// Its records were acknowledged, so the flush at the barrier succeeded and
// PreCommit returned its handle: the checkpoint completed with a
// transaction that could only fail to commit, and recovery from it lost
// the records. PreCommit now refuses it (ErrTransactionTimedOut), which
// fails the job before the checkpoint, so that it restores from the
// previous checkpoint and replays them.
func TestPreCommitRefusesTimedOutTransaction(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			brokers := b.start(t, 1, "out")
			ctx := ctxT(t)
			sink, err := NewSink(SinkConfig{Brokers: brokers, Topic: "out", Transactional: true, TransactionTimeout: 200 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			w, c := twoPhase(t, sink, 0)
			defer w.Close(ctx)
			if err := c.Recover(ctx, nil); err != nil {
				t.Fatal(err)
			}
			writeVals(t, w, "a")
			if err := w.(*txnWriter).cur.p.flush(ctx); err != nil {
				t.Fatal(err)
			}
			waitTimedOut(t, brokers, w.(*txnWriter).cur.h)
			tx, err := c.PreCommit(ctx, 3)
			if !errors.Is(err, ErrTransactionTimedOut) || !strings.Contains(fmt.Sprint(err), "transaction_timeout") {
				t.Fatalf("pre-commit of a transaction the broker aborted: handle %v, error %v; want ErrTransactionTimedOut naming transaction_timeout", tx, err)
			}
		})
	}
}
