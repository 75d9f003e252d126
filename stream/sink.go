package stream

import (
	"context"
	"fmt"
	"sync"
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
// WatermarkWriter to see event-time progress and BarrierWriter to act on
// checkpoint barriers (two-phase-commit sinks pre-commit there).
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
type BarrierWriter interface {
	OnBarrier(ctx context.Context, id uint64) error
}

// To sends s to sink. The sink runs with the parallelism of its input
// (and chained to it) unless Parallelism is given.
func To[T any](s Stream[T], sink Sink[T], opts ...OpOption) {
	n := s.env.newNode("sink", opts)
	n.sink = true
	n.ports = nil
	n.inherit = !n.setPar
	n.build = func(bc *buildCtx) any {
		op := &sinkOp[T]{opBase: bc.base(), sink: sink}
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
	sink   Sink[T]
	open   func()
	w      SinkWriter[T]
	wmw    WatermarkWriter
	bw     BarrierWriter
	closed bool
}

func (o *sinkOp[T]) ensure() {
	if o.w == nil {
		o.open()
	}
}

func (o *sinkOp[T]) push(vals []T, _ []int64) {
	defer o.recoverUser()
	o.ensure()
	o.cnt.In.Add(int64(len(vals)))
	if err := o.w.Write(o.t.ctx, vals); err != nil {
		if o.t.ctx.Err() != nil {
			panic(errAborted)
		}
		o.fail(fmt.Errorf("write: %w", err))
	}
}

func (o *sinkOp[T]) watermark(wm int64) {
	defer o.recoverUser()
	if o.wmw == nil {
		return
	}
	if err := o.wmw.OnWatermark(o.t.ctx, wm); err != nil {
		o.fail(fmt.Errorf("watermark: %w", err))
	}
}

func (o *sinkOp[T]) idle() {}

func (o *sinkOp[T]) barrier(id uint64) {
	defer o.recoverUser()
	o.ensure()
	if o.bw == nil {
		return
	}
	if err := o.bw.OnBarrier(o.t.ctx, id); err != nil {
		o.fail(fmt.Errorf("barrier %d: %w", id, err))
	}
}

func (o *sinkOp[T]) end() {
	defer o.recoverUser()
	o.ensure()
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
