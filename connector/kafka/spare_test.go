package kafka

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/sluicehq/sluice/checkpoint"
)

// initGate holds the background preparation of chosen transaction
// numbers until released, and records every number prepared.
type initGate struct {
	mu      sync.Mutex
	started []uint64
	hold    map[uint64]chan struct{}
	entered chan uint64
}

func (g *initGate) before(ctx context.Context, _ int, n uint64) {
	g.mu.Lock()
	g.started = append(g.started, n)
	hold := g.hold[n]
	g.mu.Unlock()
	if hold == nil {
		return
	}
	g.entered <- n
	select {
	case <-hold:
	case <-ctx.Done():
	}
}

func (g *initGate) prepared() []uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.started)
}

func decodeT(t *testing.T, tx checkpoint.Transaction) Txn {
	t.Helper()
	h, err := DecodeTxn(tx)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestSpareTransactionPreparedAhead: the writer initialises the next
// transaction's id in the background, before it is needed: the first one
// right after Recover, the one after as soon as a transaction begins.
// While the next one's preparation is held, the current transaction is
// written, pre-committed and committed (none of them waits for it); a
// pre-commit's handle names the spare's number as the next one, so
// recovery fences the spare; and the next transaction, once released,
// takes that number. Nothing is written twice or lost.
func TestSpareTransactionPreparedAhead(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			brokers := b.start(t, 1, "out")
			ctx := ctxT(t)
			sink, err := NewSink(SinkConfig{Brokers: brokers, Topic: "out", Transactional: true})
			if err != nil {
				t.Fatal(err)
			}
			gate := &initGate{hold: map[uint64]chan struct{}{}, entered: make(chan uint64, 1)}
			sink.beforeInit = gate.before
			w, c := twoPhase(t, sink, 0)
			if err := c.Recover(ctx, nil); err != nil {
				t.Fatal(err)
			}
			tw := w.(*txnWriter)
			first := tw.used
			// The first transaction's spare is under way before any
			// record.
			if tw.spare == nil {
				t.Fatal("no spare after Recover")
			}
			<-tw.spare.done
			if got := gate.prepared(); !slices.Equal(got, []uint64{first}) {
				t.Fatalf("prepared after Recover: %v, want [%d]", got, first)
			}
			release := make(chan struct{})
			gate.mu.Lock()
			gate.hold[first+1] = release
			gate.mu.Unlock()

			writeVals(t, w, "a", "b")
			if <-gate.entered != first+1 {
				t.Fatal("the next spare was not started when the transaction began")
			}
			// The preparation of first+1 is held: this transaction
			// goes on without it.
			writeVals(t, w, "c")
			h1 := decodeT(t, preCommit(t, c, 1))
			if h1.Seq != first || h1.Next != first+1 {
				t.Fatalf("handle seq %d next %d, want %d and %d", h1.Seq, h1.Next, first, first+1)
			}
			if err := c.Commit(ctx, EncodeTxn(h1)); err != nil {
				t.Fatal(err)
			}
			if got := consumeAll(t, brokers, "out"); !slices.Equal(got, []string{"a", "b", "c"}) {
				t.Fatalf("committed: %v", got)
			}
			// A checkpoint with nothing written names the spare's
			// number, still being prepared, as the next one.
			if h := decodeT(t, preCommit(t, c, 2)); h.TransactionalID != "" || h.Next != first+1 {
				t.Fatalf("empty handle %+v, want next %d", h, first+1)
			}
			close(release)
			writeVals(t, w, "d")
			h3 := decodeT(t, preCommit(t, c, 3))
			if h3.Seq != first+1 || h3.Next != first+2 {
				t.Fatalf("handle seq %d next %d, want %d and %d", h3.Seq, h3.Next, first+1, first+2)
			}
			if err := c.Commit(ctx, EncodeTxn(h3)); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if got := consumeAll(t, brokers, "out"); !slices.Equal(got, []string{"a", "b", "c", "d"}) {
				t.Fatalf("committed: %v", got)
			}
			if got, want := gate.prepared(), []uint64{first, first + 1, first + 2}; !slices.Equal(got, want) {
				t.Fatalf("prepared %v, want %v (one spare at a time, contiguous)", got, want)
			}
		})
	}
}

// TestRecoverFencesSpare: a crash leaves an open transaction and an
// initialised spare after it; recovery from the last checkpoint aborts
// the open one (the last stable offset moves on, so what the next run
// commits is readable) and fences the spare, and the next run's numbers
// go on after the spare.
func TestRecoverFencesSpare(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			brokers := b.start(t, 1, "out")
			ctx := ctxT(t)
			sink, err := NewSink(SinkConfig{Brokers: brokers, Topic: "out", Transactional: true})
			if err != nil {
				t.Fatal(err)
			}
			w1, c1 := twoPhase(t, sink, 0)
			if err := c1.Recover(ctx, nil); err != nil {
				t.Fatal(err)
			}
			writeVals(t, w1, "a")
			tx1 := preCommit(t, c1, 1)
			writeVals(t, w1, "lost") // after checkpoint 1: aborted by recovery
			tw := w1.(*txnWriter)
			<-tw.spare.done // the spare after the open transaction is initialised
			spareSeq := tw.spare.t.h.Seq
			tw.crash()

			w2, c2 := twoPhase(t, sink, 0)
			if err := c2.Recover(ctx, []checkpoint.Transaction{tx1}); err != nil {
				t.Fatal(err)
			}
			if got := w2.(*txnWriter).used; got <= spareSeq {
				t.Fatalf("next run starts at %d, not after the crashed run's spare %d", got, spareSeq)
			}
			writeVals(t, w2, "b")
			if err := c2.Commit(ctx, preCommit(t, c2, 2)); err != nil {
				t.Fatal(err)
			}
			if err := w2.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if got := consumeAll(t, brokers, "out"); !slices.Equal(got, []string{"a", "b"}) {
				t.Fatalf("committed: %v, want [a b]", got)
			}
		})
	}
}
