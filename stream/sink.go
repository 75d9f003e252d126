package stream

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/checkpoint"
	rt "github.com/sluicehq/sluice/internal/runtime"
)

// Sink is where a stream's records leave the dataflow. Open is called once
// per parallel sink subtask, before its first record.
type Sink[T any] interface {
	Open(ctx context.Context, info SubtaskInfo) (SinkWriter[T], error)
}

// SubtaskInfo identifies a parallel instance of an operator.
type SubtaskInfo struct {
	Operator    string
	Index       int
	Parallelism int
}

// SinkWriter writes the records of one sink subtask. Write gets records in
// order, in batches whose slice it must neither modify nor keep after
// returning (other operators may read the same slice). Close is
// called once: after the last Write when the input ended, or when the job
// stops early (then ctx is already cancelled).
//
// A writer may implement optional capabilities, checked when it is opened:
// WatermarkWriter to see event-time progress, BarrierWriter to act on
// checkpoint barriers (an at-least-once sink flushes there), and
// checkpoint.TwoPhaseCommitter for exactly-once output.
type SinkWriter[T any] interface {
	Write(ctx context.Context, records []T) error
	Close(ctx context.Context) error
}

// WatermarkWriter is an optional SinkWriter capability: OnWatermark is
// called when the sink subtask's watermark advances.
type WatermarkWriter interface {
	OnWatermark(ctx context.Context, watermark int64) error
}

// BarrierWriter is an optional SinkWriter capability: OnBarrier is called
// when checkpoint barrier id reaches the sink subtask, after every record
// before the barrier was written.
//
// A writer that implements checkpoint.TwoPhaseCommitter is exactly-once
// under checkpointing: it pre-commits at each barrier and its output
// becomes visible when the checkpoint completes (see docs/checkpoints.md).
// Commit and Abort are called by the job's checkpoint coordinator, maybe
// while Write runs and after Close, and the Commits of a checkpoint's
// sink subtasks run concurrently (on goroutines of the coordinator): they
// must act only on the transaction handle they get, and what the
// subtasks' writers share must be safe for concurrent use.
type BarrierWriter interface {
	OnBarrier(ctx context.Context, id uint64) error
}

// AsyncBarrierWriter is an optional SinkWriter capability of an
// at-least-once writer whose writes are acknowledged in the background (a
// Kafka producer). At checkpoint barrier id, OnBarrierAsync returns at
// once and the writer calls done once everything written before the
// barrier is durable, or with the error that prevents it (the checkpoint
// is then declined). done must be called exactly once, from any
// goroutine (OnBarrierAsync itself included). The sink subtask goes on writing meanwhile, so a barrier does
// not hold up the records behind it for a round trip; the checkpoint
// completes only after done(nil). A writer that implements it is not
// asked OnBarrier under checkpointing; a checkpoint.TwoPhaseCommitter's
// is not used.
type AsyncBarrierWriter interface {
	OnBarrierAsync(ctx context.Context, id uint64, done func(error))
}

// To sends s to sink. The sink runs with the parallelism of its input
// (and chained to it) unless Parallelism is given.
func To[T any](s Stream[T], sink Sink[T], opts ...OpOption) {
	n := s.env.newNode("sink", opts)
	n.sink = true
	n.ports = nil
	n.inherit = !n.setPar
	n.build = func(bc *buildCtx) any {
		op := &sinkOp[T]{opBase: bc.base(), sink: sink, written: bc.job.lat.get(LatencySink, bc.n.name, StageWrite)}
		info := SubtaskInfo{Operator: bc.n.name, Index: bc.sub, Parallelism: bc.n.par}
		bc.t.closers = append(bc.t.closers, op.abort)
		op.open = func() {
			w, err := sink.Open(bc.t.ctx, info)
			if err != nil {
				op.fail(fmt.Errorf("open: %w", err))
			}
			op.w = w
			op.wmw, _ = w.(WatermarkWriter)
			op.bw, _ = w.(BarrierWriter)
			op.abw, _ = w.(AsyncBarrierWriter)
			if chk := bc.job.chk; chk != nil {
				if c, ok := w.(checkpoint.TwoPhaseCommitter); ok {
					op.txns = &sinkTxns{name: bc.n.name, c: c, hist: bc.job.lat.get(LatencySink, bc.n.name, StageCommit)}
					txs, err := chk.restoredTxns(bc.n, bc.sub, bc.n.par)
					if err == nil {
						err = c.Recover(bc.t.ctx, txs)
					}
					if err != nil {
						op.fail(fmt.Errorf("recover: %w", err))
					}
					chk.mu.Lock()
					chk.sinks[op.task()] = op.txns
					chk.mu.Unlock()
					op.abw = nil
				}
			}
		}
		return collector[T](op)
	}
	n.newGate = oneGate[T]
	connect(s, n, 0)
}

func oneGate[T any](nch, credits int, done <-chan struct{}) gateHandle {
	return newGate[T, T](nch, credits, done, true)
}

type sinkOp[T any] struct {
	opBase
	sink Sink[T]
	open func()
	w    SinkWriter[T]
	wmw  WatermarkWriter
	bw   BarrierWriter
	abw  AsyncBarrierWriter
	// acking counts the barriers an AsyncBarrierWriter has not answered
	// yet; end waits for them before the final ack. ackErr is the first
	// error such an answer carried: the subtask fails with it at its next
	// call (push, barrier, watermark, idle or end), as a synchronous
	// OnBarrier error would have failed it.
	acking sync.WaitGroup
	ackErr atomic.Pointer[error]
	closed bool
	txns   *sinkTxns
	// written records the latency of every batch written; epoch the
	// batches written since the last barrier, for the commit latency of
	// a two-phase-commit sink.
	written *rt.Histogram
	epoch   []epochEntry
}

func (o *sinkOp[T]) task() checkpoint.TaskID {
	return checkpoint.TaskID{Operator: opKey(o.node), Subtask: o.sub}
}

// preCommit pre-commits the sink's transaction for checkpoint id (0: the
// final one at the end of the input) and returns the handle of every
// transaction not yet known to be committed.
func (o *sinkOp[T]) preCommit(id uint64) checkpoint.Transaction {
	if o.txns == nil {
		return nil
	}
	tx, err := o.txns.c.PreCommit(o.t.ctx, checkpoint.ID(id))
	if err != nil {
		o.fail(fmt.Errorf("pre-commit of checkpoint %d: %w", id, err))
	}
	done := o.txns.committed.Load()
	keep := o.txns.pending[:0]
	for _, t := range o.txns.pending {
		if t.id > done {
			keep = append(keep, t)
		}
	}
	o.txns.pending = keep
	if id == 0 {
		id = ^uint64(0)
	}
	o.txns.seal(id, o.epoch)
	o.epoch = o.epoch[:0]
	if tx != nil {
		o.txns.pending = append(o.txns.pending, txn{id: id, tx: tx})
	}
	return encodeTxns(o.txns.pending)
}

func (o *sinkOp[T]) ensure() {
	if o.w == nil {
		o.open()
	}
}

// checkAck fails the subtask with the error an asynchronous barrier
// answer carried, if any.
func (o *sinkOp[T]) checkAck() {
	if p := o.ackErr.Load(); p != nil {
		o.fail(*p)
	}
}

func (o *sinkOp[T]) push(vals []T, _ []int64) {
	defer o.recoverUser()
	o.ensure()
	o.checkAck()
	o.cnt.In.Add(int64(len(vals)))
	if err := o.w.Write(o.t.ctx, vals); err != nil {
		if o.t.ctx.Err() != nil {
			panic(errAborted)
		}
		o.fail(fmt.Errorf("write: %w", err))
	}
	if in := o.t.ingest; in != 0 && len(vals) > 0 {
		now := o.t.job.clock.Nanos()
		o.written.Observe(time.Duration(now-in), uint64(len(vals)))
		if o.txns != nil {
			o.epoch = appendEpoch(o.epoch, epochEntry{ingest: in, n: uint64(len(vals))})
		}
	}
}

func (o *sinkOp[T]) watermark(wm int64) {
	defer o.recoverUser()
	o.checkAck()
	if o.wmw == nil {
		return
	}
	if err := o.wmw.OnWatermark(o.t.ctx, wm); err != nil {
		o.fail(fmt.Errorf("watermark: %w", err))
	}
}

func (o *sinkOp[T]) idle() {
	defer o.recoverUser()
	o.checkAck()
}

func (o *sinkOp[T]) barrier(id uint64) {
	defer o.recoverUser()
	o.ensure()
	o.checkAck()
	if chk := o.t.job.chk; chk != nil && o.abw != nil {
		task, name := o.task(), o.name
		o.acking.Add(1)
		var once sync.Once
		o.abw.OnBarrierAsync(o.t.ctx, id, func(err error) {
			once.Do(func() {
				// On a goroutine of its own: the writer may call done
				// from its client's callbacks, which must not wait for
				// the coordinator.
				go func() {
					defer o.acking.Done()
					if err != nil {
						err = fmt.Errorf("barrier %d: %w", id, err)
						chk.decline(id, task, fmt.Errorf("sink %s subtask %d: %w", name, task.Subtask, err))
						o.ackErr.CompareAndSwap(nil, &err)
						return
					}
					chk.ack(id, checkpoint.Ack{Task: task})
				}()
			})
		})
		return
	}
	if o.bw != nil {
		if err := o.bw.OnBarrier(o.t.ctx, id); err != nil {
			o.fail(fmt.Errorf("barrier %d: %w", id, err))
		}
	}
	if chk := o.t.job.chk; chk != nil {
		chk.ack(id, checkpoint.Ack{Task: o.task(), Transaction: o.preCommit(id)})
	}
}

func (o *sinkOp[T]) end() {
	defer o.recoverUser()
	o.ensure()
	if o.abw != nil {
		// The barriers before the end are answered before the final ack.
		answered := make(chan struct{})
		go func() { o.acking.Wait(); close(answered) }()
		select {
		case <-answered:
		case <-o.t.ctx.Done():
			panic(errAborted)
		}
		o.checkAck()
	}
	if chk := o.t.job.chk; chk != nil {
		chk.finish(checkpoint.Ack{Task: o.task(), Transaction: o.preCommit(0)})
	}
	o.closed = true
	if err := o.w.Close(o.t.ctx); err != nil {
		o.fail(fmt.Errorf("close: %w", err))
	}
}

// abort closes the writer of a job that stops early.
func (o *sinkOp[T]) abort() {
	if o.w != nil && !o.closed {
		o.closed = true
		_ = o.w.Close(o.t.ctx)
	}
}

// SinkFunc adapts a function to a Sink; the function is called by every
// subtask concurrently, so it must be safe for concurrent use.
type SinkFunc[T any] func(ctx context.Context, records []T) error

// Open implements Sink.
func (f SinkFunc[T]) Open(context.Context, SubtaskInfo) (SinkWriter[T], error) { return f, nil }

// Write implements SinkWriter.
func (f SinkFunc[T]) Write(ctx context.Context, records []T) error { return f(ctx, records) }

// Close implements SinkWriter.
func (f SinkFunc[T]) Close(context.Context) error { return nil }

// CollectSink keeps every record it receives in memory, for tests and
// examples. It is safe to read while the job runs.
type CollectSink[T any] struct {
	mu   sync.Mutex
	vals []T
}

// Open implements Sink.
func (c *CollectSink[T]) Open(context.Context, SubtaskInfo) (SinkWriter[T], error) {
	return collectWriter[T]{c}, nil
}

// Values returns a copy of the records received so far, in arrival order
// per subtask.
func (c *CollectSink[T]) Values() []T {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]T(nil), c.vals...)
}

// Len returns the number of records received so far.
func (c *CollectSink[T]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.vals)
}

type collectWriter[T any] struct{ c *CollectSink[T] }

func (w collectWriter[T]) Write(_ context.Context, records []T) error {
	w.c.mu.Lock()
	w.c.vals = append(w.c.vals, records...)
	w.c.mu.Unlock()
	return nil
}

func (w collectWriter[T]) Close(context.Context) error { return nil }

// Collect sends s to a new CollectSink and returns it.
func Collect[T any](s Stream[T], opts ...OpOption) *CollectSink[T] {
	c := &CollectSink[T]{}
	To[T](s, c, opts...)
	return c
}
