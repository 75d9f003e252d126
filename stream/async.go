package stream

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	rt "github.com/sluicehq/sluice/internal/runtime"
	"github.com/sluicehq/sluice/state/codec"
)

// Asynchronous I/O: AsyncMap calls an outside service for each record
// with a bounded number of calls in flight per subtask, and its task keeps
// taking input, passing watermarks and barriers while the calls run.
//
// The operator heads a task of its own (it is never chained to its input).
// Each subtask holds a queue of the records it took and has not emitted
// yet: records waiting to be sent (a batch filling up), in flight, or
// answered and waiting for their turn. Calls run on worker goroutines of
// the subtask (at most concurrency, started as the calls in flight grow,
// living as long as the job); each answer comes back through a channel that wakes the task loop,
// which emits what may go out and sends what waits. Nothing else in the
// operator is shared between goroutines.
//
// Order. The queue is a list of segments, each a run of records followed
// by the watermark (or idleness marker) that closed it. Only the first
// segment emits: in ordered mode its records in input order (a record
// waits for the ones before it), in unordered mode as their answers come.
// A segment whose records are all out forwards its watermark and goes, so
// a watermark never overtakes a record that came before it and no record
// is reordered across one (Flink's AsyncWaitOperator semantics). Watermarks
// that arrive while the last segment is already closed are merged into it
// (the latest watermark, then idleness if the last marker was idleness).
//
// Backpressure. The queue holds at most capacity records. When it is full
// the task stops taking input and waits for an answer: its input queue
// fills, the senders block, and the sources stop reading. Memory is
// therefore bounded by the capacity (plus the exchange credits, as for any
// operator); calls in flight by the concurrency.
//
// Checkpoints. A barrier does not wait for the calls: the operator writes
// the inputs of every record still in its queue (answered or not) into
// its snapshot and forwards the barrier at once. What it emits after the
// barrier belongs to the next checkpoint. After a restore, the snapshot's
// records are queued first and called again, so each input's output
// reaches an exactly-once sink once (the service may see a call twice).
// With another parallelism, subtask i takes the records of the old
// subtasks s with s % parallelism == i.

// AsyncFailure is a record whose call failed for good (every retry
// failed, a permanent error, or the circuit breaker stayed open). It goes
// to the side output named by AsyncFailuresTo.
type AsyncFailure[In any] struct {
	In  In
	Err error
	// Time is the record's event time (ms).
	Time int64
	// Attempts is how many calls were made for it.
	Attempts int
}

// Permanent marks err as not worth retrying (a malformed request, a 404):
// AsyncMap gives up on the record at once. The circuit breaker counts it
// as an answer, not as a failure of the service.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// ErrAsyncBatchSize is returned (wrapped) when an AsyncMapBatch function
// returns a different number of outputs than it was given inputs.
var ErrAsyncBatchSize = errors.New("stream: async batch function returned the wrong number of results")

type asyncConfig struct {
	set         bool
	concurrency int
	capacity    int
	unordered   bool
	timeout     time.Duration
	retries     int
	backoff     time.Duration
	maxBackoff  time.Duration
	// breakerFailures > 0 turns the circuit breaker on.
	breakerFailures uint32
	breakerOpen     time.Duration
	batchSize       int
	linger          time.Duration
	// failTag is an OutputTag[AsyncFailure[In]]; stateCodec a
	// codec.Codec[In]. Both are checked against In when the operator is
	// added.
	failTag    any
	stateCodec any
}

// AsyncConcurrency sets how many calls each subtask of an AsyncMap keeps
// in flight at most. This overrides the default of 16.
func AsyncConcurrency(n int) OpOption {
	return func(c *opConfig) { c.async.concurrency = n; c.async.set = true }
}

// AsyncCapacity sets how many records each subtask of an AsyncMap holds
// at most: in flight, waiting to be sent, or answered and waiting for
// their turn. When it is full the operator stops taking input. This
// overrides the default of twice the concurrency times the batch size.
func AsyncCapacity(n int) OpOption {
	return func(c *opConfig) { c.async.capacity = n; c.async.set = true }
}

// AsyncUnordered lets an AsyncMap emit records as their answers arrive
// instead of in input order; records never cross a watermark either way.
// The default is ordered.
func AsyncUnordered() OpOption {
	return func(c *opConfig) { c.async.unordered = true; c.async.set = true }
}

// AsyncTimeout bounds each attempt of a call: its context is cancelled
// after d (the function must honour its context). This overrides the
// default of no timeout.
func AsyncTimeout(d time.Duration) OpOption {
	return func(c *opConfig) { c.async.timeout = d; c.async.set = true }
}

// AsyncRetries retries a failed call up to n more times, waiting backoff
// before the first retry and doubling the wait each time up to
// maxBackoff (each wait drawn between half and all of it). This overrides
// the default of no retries, 100 ms and 10 s.
func AsyncRetries(n int, backoff, maxBackoff time.Duration) OpOption {
	return func(c *opConfig) {
		c.async.retries, c.async.backoff, c.async.maxBackoff = n, backoff, maxBackoff
		c.async.set = true
	}
}

// AsyncCircuitBreaker puts a circuit breaker (github.com/sony/gobreaker)
// in front of the calls of each subtask: after failures consecutive
// failed attempts it opens and fails attempts at once for openFor, then
// lets one through to probe the service. The default is no breaker.
func AsyncCircuitBreaker(failures int, openFor time.Duration) OpOption {
	return func(c *opConfig) {
		c.async.breakerFailures, c.async.breakerOpen = uint32(max(failures, 0)), openFor
		c.async.set = true
	}
}

// AsyncBatch groups the records of an AsyncMapBatch into calls of up to
// size records; a call with fewer goes once its oldest record has waited
// linger. This overrides the default of 100 records and 5 ms.
func AsyncBatch(size int, linger time.Duration) OpOption {
	return func(c *opConfig) { c.async.batchSize, c.async.linger = size, linger; c.async.set = true }
}

// AsyncFailuresTo sends the records whose call failed for good to the
// side output tag (read it with SideOutput) instead of failing the job,
// which is the default. In must be the operator's input type.
func AsyncFailuresTo[In any](tag OutputTag[AsyncFailure[In]]) OpOption {
	return func(c *opConfig) { c.async.failTag = tag; c.async.set = true }
}

// AsyncStateCodec sets how the records in flight are written into
// checkpoints. This overrides the default of codec.For[In]. In must be the
// operator's input type.
func AsyncStateCodec[In any](cd codec.Codec[In]) OpOption {
	return func(c *opConfig) { c.async.stateCodec = cd; c.async.set = true }
}

// AsyncMap calls fn for every record, with up to AsyncConcurrency calls in
// flight per subtask, and emits each answer with its record's timestamp.
// The task never blocks on a call: it keeps taking input until the queue
// is full (AsyncCapacity), and barriers and watermarks pass while calls
// run (see AsyncUnordered for the order). A failed call is retried
// (AsyncRetries, AsyncTimeout, AsyncCircuitBreaker); a record that fails
// for good fails the job, or goes to AsyncFailuresTo. Records in flight
// are part of checkpoints and called again after a restore.
//
// fn is called from many goroutines at once.
func AsyncMap[In, Out any](s Stream[In], fn func(ctx context.Context, in In) (Out, error), opts ...OpOption) Stream[Out] {
	call := func(ctx context.Context, ins []In) ([]Out, error) {
		out, err := fn(ctx, ins[0])
		if err != nil {
			return nil, err
		}
		return []Out{out}, nil
	}
	return asyncMap(s, "async-map", call, false, opts)
}

// AsyncMapBatch is AsyncMap for services that take arrays (model servers,
// bulk lookups): fn gets up to AsyncBatch size records at once and returns
// one output per input, in the same order. A failed call fails all its
// records.
func AsyncMapBatch[In, Out any](s Stream[In], fn func(ctx context.Context, ins []In) ([]Out, error), opts ...OpOption) Stream[Out] {
	return asyncMap(s, "async-batch", fn, true, opts)
}

func asyncMap[In, Out any](s Stream[In], kind string, call func(context.Context, []In) ([]Out, error), batched bool, opts []OpOption) Stream[Out] {
	var oc opConfig
	for _, o := range opts {
		o(&oc)
	}
	cfg := oc.async
	if cfg.concurrency == 0 {
		cfg.concurrency = 16
	}
	if !batched {
		cfg.batchSize, cfg.linger = 1, 0
	} else if cfg.batchSize == 0 && cfg.linger == 0 {
		cfg.batchSize, cfg.linger = 100, 5*time.Millisecond
	}
	if cfg.capacity == 0 {
		cfg.capacity = 2 * cfg.concurrency * max(cfg.batchSize, 1)
	}
	if cfg.backoff == 0 {
		cfg.backoff = 100 * time.Millisecond
	}
	if cfg.maxBackoff == 0 {
		cfg.maxBackoff = 10 * time.Second
	}
	var failTag OutputTag[AsyncFailure[In]]
	var stateCodec codec.Codec[In]
	var cfgErr error
	switch {
	case cfg.concurrency < 1:
		cfgErr = fmt.Errorf("AsyncConcurrency %d must be at least 1", cfg.concurrency)
	case cfg.batchSize < 1:
		cfgErr = fmt.Errorf("AsyncBatch size %d must be at least 1", cfg.batchSize)
	case cfg.capacity < cfg.batchSize:
		cfgErr = fmt.Errorf("AsyncCapacity %d must hold at least one batch (%d)", cfg.capacity, cfg.batchSize)
	case cfg.retries < 0 || cfg.timeout < 0 || cfg.linger < 0 || cfg.backoff < 0 || cfg.maxBackoff < 0:
		cfgErr = errors.New("retries, backoffs, timeout and linger must not be negative")
	}
	if cfg.failTag != nil {
		t, ok := cfg.failTag.(OutputTag[AsyncFailure[In]])
		if !ok {
			cfgErr = fmt.Errorf("AsyncFailuresTo: the tag's type %T does not match the input (want OutputTag[AsyncFailure[%T]])", cfg.failTag, *new(In))
		}
		failTag = t
	}
	if cfg.stateCodec != nil {
		c, ok := cfg.stateCodec.(codec.Codec[In])
		if !ok {
			cfgErr = fmt.Errorf("AsyncStateCodec: the codec's type %T does not match the input %T", cfg.stateCodec, *new(In))
		}
		stateCodec = c
	}
	failPort := -1
	res := oneInput(s, kind, opts, func(bc *buildCtx, out collector[Out]) collector[In] {
		o := &asyncOp[In, Out]{opBase: bc.base(), cfg: cfg, call: call, em: newEmitter(bc, out)}
		o.init(bc, failPort, stateCodec)
		return o
	})
	if cfgErr != nil {
		s.env.setErr(fmt.Errorf("stream: operator %q: %w", res.n.name, cfgErr))
	}
	if failTag.t != nil {
		failPort = addSidePort(res.n, failTag.t)
	}
	res.n.ownTask = true
	res.n.snapshots = true
	return res
}

// asyncStats are the counters of one AsyncMap subtask; the task goroutine
// and the call goroutines write them, Metrics reads them.
type asyncStats struct {
	name        string
	sub         int
	inFlight    atomic.Int64
	queued      atomic.Int64
	maxInFlight atomic.Int64
	maxQueued   atomic.Int64
	calls       atomic.Int64
	retries     atomic.Int64
	errs        atomic.Int64
	timeouts    atomic.Int64
	failed      atomic.Int64
	full        atomic.Int64
	breaker     atomic.Int32 // -1 without breaker, else gobreaker.State
	opened      atomic.Int64
}

func storeMax(a *atomic.Int64, v int64) {
	for {
		cur := a.Load()
		if v <= cur || a.CompareAndSwap(cur, v) {
			return
		}
	}
}

// AsyncMetrics describes one subtask of an AsyncMap or AsyncMapBatch
// operator.
type AsyncMetrics struct {
	Operator string
	Subtask  int
	// InFlight is the number of calls in flight now; MaxInFlight the
	// most there ever were (at most the concurrency).
	InFlight, MaxInFlight int64
	// Queued is the number of records held now (waiting to be sent, in
	// flight, or answered and waiting for their turn); MaxQueued the most
	// there ever were (at most the capacity, unless a restore brought
	// more).
	Queued, MaxQueued int64
	// Calls counts the attempts made, Retries those that were retries,
	// Errors those that failed (Timeouts among them those that timed
	// out).
	Calls, Retries, Errors, Timeouts int64
	// Failed counts the records that failed for good.
	Failed int64
	// Full counts the times the queue was full and the subtask stopped
	// taking input until an answer came (backpressure from the service).
	Full int64
	// Breaker is the circuit breaker's state: closed, half-open or open;
	// empty without a breaker. BreakerOpened counts its openings.
	Breaker       string
	BreakerOpened int64
}

// AsyncMetrics returns the counters of every AsyncMap subtask. It may be
// called while the job runs. Call latencies are in Latency, kind
// LatencyAsync.
func (j *Job) AsyncMetrics() []AsyncMetrics {
	out := make([]AsyncMetrics, 0, len(j.asyncs))
	for _, s := range j.asyncs {
		m := AsyncMetrics{Operator: s.name, Subtask: s.sub,
			InFlight: s.inFlight.Load(), MaxInFlight: s.maxInFlight.Load(),
			Queued: s.queued.Load(), MaxQueued: s.maxQueued.Load(),
			Calls: s.calls.Load(), Retries: s.retries.Load(), Errors: s.errs.Load(), Timeouts: s.timeouts.Load(),
			Failed: s.failed.Load(), Full: s.full.Load(), BreakerOpened: s.opened.Load()}
		if b := s.breaker.Load(); b >= 0 {
			m.Breaker = gobreaker.State(b).String()
		}
		out = append(out, m)
	}
	return out
}

// asyncEntry is one record in an AsyncMap queue.
type asyncEntry[In, Out any] struct {
	in       In
	ts       int64
	ingest   int64
	at       int64 // when it was queued (ms), for the batch linger
	out      Out
	err      error
	attempts int
	done     bool
	emitted  bool
	seg      *asyncSeg[In, Out]
}

// asyncSeg is a run of records closed by a watermark or idleness marker
// (the last segment is open until one comes).
type asyncSeg[In, Out any] struct {
	recs   []*asyncEntry[In, Out] // input order; emitted ones compacted away
	next   int                    // ordered: index of the first record not emitted
	ready  []*asyncEntry[In, Out] // unordered: answered, not emitted
	left   int                    // records not emitted
	gone   int                    // records emitted still in recs
	closed bool
	hasWm  bool
	wm     int64
	idle   bool
}

type asyncResult[In, Out any] struct {
	batch    []*asyncEntry[In, Out]
	outs     []Out
	err      error
	attempts int
}

// asyncCall is one call handed to a worker: its records and their inputs.
type asyncCall[In, Out any] struct {
	batch []*asyncEntry[In, Out]
	ins   []In
}

type asyncOp[In, Out any] struct {
	opBase
	cfg   asyncConfig
	call  func(context.Context, []In) ([]Out, error)
	em    *Emitter[Out]
	fails *Emitter[AsyncFailure[In]] // nil: failures fail the job
	codec codec.Codec[In]

	ctx      context.Context
	work     chan asyncCall[In, Out]
	workers  int
	results  chan asyncResult[In, Out]
	wakeCh   chan struct{}
	segs     []*asyncSeg[In, Out]
	waiting  []*asyncEntry[In, Out]
	queued   int
	inflight int
	breaker  *gobreaker.CircuitBreaker[[]Out]
	stats    *asyncStats
	hist     *rt.Histogram

	restored   []asyncEntry[In, Out]
	restoreErr error
	snapWG     sync.WaitGroup
}

func (o *asyncOp[In, Out]) init(bc *buildCtx, failPort int, stateCodec codec.Codec[In]) {
	o.ctx = bc.t.ctx
	o.work = make(chan asyncCall[In, Out], o.cfg.concurrency)
	o.results = make(chan asyncResult[In, Out], o.cfg.concurrency)
	o.wakeCh = make(chan struct{}, 1)
	if failPort >= 0 {
		o.fails = newEmitter(bc, outputOf[AsyncFailure[In]](bc.outs[failPort]))
	}
	o.stats = &asyncStats{name: bc.n.name, sub: bc.sub}
	o.stats.breaker.Store(-1)
	bc.job.asyncs = append(bc.job.asyncs, o.stats)
	o.hist = bc.job.lat.get(LatencyAsync, bc.n.name, "call")
	if o.cfg.breakerFailures > 0 {
		o.stats.breaker.Store(int32(gobreaker.StateClosed))
		n := o.cfg.breakerFailures
		o.breaker = gobreaker.NewCircuitBreaker[[]Out](gobreaker.Settings{
			Name:        fmt.Sprintf("%s/%d", bc.n.name, bc.sub),
			Timeout:     o.cfg.breakerOpen,
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= n },
			OnStateChange: func(_ string, _, to gobreaker.State) {
				o.stats.breaker.Store(int32(to))
				if to == gobreaker.StateOpen {
					o.stats.opened.Add(1)
				}
			},
			// An answer that says "no" is an answer: the service works.
			IsSuccessful: func(err error) bool { return err == nil || IsPermanent(err) },
			// The job ending is not the service's fault.
			IsExcluded: func(error) bool { return o.ctx.Err() != nil },
		})
	}
	bc.t.async = o
	bc.t.proc = append(bc.t.proc, o)
	if chk := bc.job.chk; chk != nil {
		o.codec = stateCodec
		if o.codec == nil {
			c, err := codec.For[In]()
			if err != nil {
				o.restoreErr = fmt.Errorf("records in flight cannot be checkpointed (give a codec with AsyncStateCodec): %w", err)
				return
			}
			o.codec = c
		}
		if chk.restored != nil {
			o.restored, o.restoreErr = o.restore(chk, bc.n, bc.sub)
		}
	}
}

func (o *asyncOp[In, Out]) wake() <-chan struct{} { return o.wakeCh }

// start queues and sends the records restored from a checkpoint, before
// any input.
func (o *asyncOp[In, Out]) start() {
	if o.restoreErr != nil {
		o.fail(o.restoreErr)
	}
	for i := range o.restored {
		e := o.restored[i]
		o.add(e.in, e.ts, o.t.now)
	}
	o.restored = nil
	o.issue(false)
}

// add queues a record in the open segment.
func (o *asyncOp[In, Out]) add(v In, ts, ingest int64) {
	var s *asyncSeg[In, Out]
	if n := len(o.segs); n > 0 && !o.segs[n-1].closed {
		s = o.segs[n-1]
	} else {
		s = &asyncSeg[In, Out]{}
		o.segs = append(o.segs, s)
	}
	e := &asyncEntry[In, Out]{in: v, ts: ts, ingest: ingest, seg: s}
	if o.cfg.linger > 0 {
		e.at = rt.NowMillis()
	}
	s.recs = append(s.recs, e)
	s.left++
	o.waiting = append(o.waiting, e)
	o.queued++
	o.stats.queued.Store(int64(o.queued))
	storeMax(&o.stats.maxQueued, int64(o.queued))
}

func (o *asyncOp[In, Out]) push(vals []In, ts []int64) {
	o.cnt.In.Add(int64(len(vals)))
	for i, v := range vals {
		for o.queued >= o.cfg.capacity {
			o.stats.full.Add(1)
			o.await()
		}
		o.add(v, ts[i], o.t.ingest)
		o.issue(false)
	}
	o.poll()
}

// await waits for one answer (the queue is full, or the input ended).
func (o *asyncOp[In, Out]) await() {
	// No more input comes until an answer does: send what waits even if
	// its batch is not full.
	o.issue(true)
	if o.inflight == 0 {
		panic(&OperatorError{Operator: o.name, Subtask: o.sub, Err: fmt.Errorf("async queue of %d records stuck with no call in flight", o.queued)})
	}
	began := o.t.stats.Wait(rt.StatusBackpressured)
	select {
	case r := <-o.results:
		o.t.stats.Resume(rt.StatusBackpressured, began)
		o.complete(r)
	case <-o.t.done:
		panic(errAborted)
	}
	o.emit()
}

// poll takes the answers that arrived, sends what waits and emits what
// may go out, without waiting.
func (o *asyncOp[In, Out]) poll() {
	for {
		select {
		case r := <-o.results:
			o.complete(r)
			continue
		default:
		}
		break
	}
	o.issue(false)
	o.emit()
}

// issue sends the waiting records, in batches, while calls may start: a
// batch goes when full, when its oldest record has waited the linger, or
// when force says so.
func (o *asyncOp[In, Out]) issue(force bool) {
	for len(o.waiting) > 0 && o.inflight < o.cfg.concurrency {
		n := min(len(o.waiting), o.cfg.batchSize)
		if n < o.cfg.batchSize && !force && o.cfg.linger > 0 && rt.NowMillis() < o.waiting[0].at+o.cfg.linger.Milliseconds() {
			return
		}
		batch := make([]*asyncEntry[In, Out], n)
		copy(batch, o.waiting)
		clear(o.waiting[:n])
		o.waiting = o.waiting[n:]
		if len(o.waiting) == 0 {
			o.waiting = o.waiting[:0:0]
		}
		ins := make([]In, n)
		for i, e := range batch {
			ins[i] = e.in
		}
		o.inflight++
		o.stats.inFlight.Store(int64(o.inflight))
		storeMax(&o.stats.maxInFlight, int64(o.inflight))
		if o.workers < o.inflight {
			o.workers++
			go o.worker()
		}
		// Never blocks: the channel holds concurrency calls, and the calls
		// in it or running are at most the calls in flight.
		o.work <- asyncCall[In, Out]{batch: batch, ins: ins}
	}
}

// worker makes the calls handed to it until the job ends. The subtask
// starts a worker each time its calls in flight exceed its workers, so
// it has at most concurrency of them; they live as long as the job, so a
// call does not pay for a goroutine and the growth of its stack.
func (o *asyncOp[In, Out]) worker() {
	for {
		select {
		case c := <-o.work:
			o.run(c.batch, c.ins)
		case <-o.ctx.Done():
			return
		}
	}
}

// nextProcTimer is when the oldest waiting record's batch must go.
func (o *asyncOp[In, Out]) nextProcTimer() int64 {
	if o.cfg.linger <= 0 || len(o.waiting) == 0 || o.inflight >= o.cfg.concurrency {
		return math.MaxInt64
	}
	return o.waiting[0].at + o.cfg.linger.Milliseconds()
}

func (o *asyncOp[In, Out]) fireProcTimers(int64) {
	o.issue(false)
	o.emit()
}

// run makes one call (with its retries) on a worker goroutine and hands
// the result to the task.
func (o *asyncOp[In, Out]) run(batch []*asyncEntry[In, Out], ins []In) {
	outs, attempts, err := o.callRetrying(ins)
	o.results <- asyncResult[In, Out]{batch: batch, outs: outs, err: err, attempts: attempts}
	select {
	case o.wakeCh <- struct{}{}:
	default:
	}
}

func (o *asyncOp[In, Out]) callRetrying(ins []In) ([]Out, int, error) {
	wait := o.cfg.backoff
	for attempt := 1; ; attempt++ {
		outs, err := o.attempt(ins)
		if err == nil {
			return outs, attempt, nil
		}
		if IsPermanent(err) || errors.Is(err, ErrUserPanic) || attempt > o.cfg.retries || o.ctx.Err() != nil {
			return nil, attempt, err
		}
		// Full jitter in [wait/2, wait], so that the calls of many
		// records that failed together do not come back together.
		d := wait/2 + rand.N(wait/2+1)
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-o.ctx.Done():
			t.Stop()
			return nil, attempt, err
		}
		wait = min(2*wait, o.cfg.maxBackoff)
		o.stats.retries.Add(1)
	}
}

func (o *asyncOp[In, Out]) attempt(ins []In) ([]Out, error) {
	ctx, cancel := o.ctx, context.CancelFunc(func() {})
	if o.cfg.timeout > 0 {
		ctx, cancel = context.WithTimeout(o.ctx, o.cfg.timeout)
	}
	defer cancel()
	start := time.Now()
	var outs []Out
	var err error
	if o.breaker != nil {
		outs, err = o.breaker.Execute(func() ([]Out, error) { return o.safeCall(ctx, ins) })
	} else {
		outs, err = o.safeCall(ctx, ins)
	}
	o.hist.Observe(time.Since(start), 1)
	o.stats.calls.Add(1)
	if err != nil {
		o.stats.errs.Add(1)
		if ctx.Err() != nil && o.ctx.Err() == nil {
			o.stats.timeouts.Add(1)
			err = fmt.Errorf("timed out after %s: %w", o.cfg.timeout, err)
		}
	}
	return outs, err
}

// safeCall calls the user's function, turning a panic into an error and
// checking the number of results.
func (o *asyncOp[In, Out]) safeCall(ctx context.Context, ins []In) (outs []Out, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = Permanent(fmt.Errorf("%w: %v\n%s", ErrUserPanic, p, debug.Stack()))
		}
	}()
	outs, err = o.call(ctx, ins)
	if err == nil && len(outs) != len(ins) {
		return nil, Permanent(fmt.Errorf("%w: %d results for %d records", ErrAsyncBatchSize, len(outs), len(ins)))
	}
	return outs, err
}

// complete files an answer with its records.
func (o *asyncOp[In, Out]) complete(r asyncResult[In, Out]) {
	o.inflight--
	o.stats.inFlight.Store(int64(o.inflight))
	for i, e := range r.batch {
		e.done, e.attempts = true, r.attempts
		if r.err != nil {
			if o.ctx.Err() != nil {
				// The job is stopping: the call was cut short, not failed.
				panic(errAborted)
			}
			e.err = r.err
			if o.fails == nil {
				o.curT = []int64{e.ts}
				o.pos = 0
				panic(&OperatorError{Operator: o.name, Subtask: o.sub, Position: o.position(),
					Err: fmt.Errorf("async call failed after %d attempt(s): %w", r.attempts, r.err)})
			}
		} else {
			e.out = r.outs[i]
		}
		if o.cfg.unordered {
			e.seg.ready = append(e.seg.ready, e)
		}
	}
}

// emit sends out what may go: the first segment's answered records (in
// order, or as they came), then its marker once it is empty, and so on.
func (o *asyncOp[In, Out]) emit() {
	saved := o.t.ingest
	defer func() { o.t.ingest = saved }()
	for len(o.segs) > 0 {
		s := o.segs[0]
		if o.cfg.unordered {
			for i, e := range s.ready {
				o.emitOne(e)
				s.ready[i] = nil
			}
			s.ready = s.ready[:0]
		} else {
			for s.next < len(s.recs) && s.recs[s.next].done {
				o.emitOne(s.recs[s.next])
				s.next++
			}
		}
		s.compact(o.cfg.unordered)
		if s.left > 0 || !s.closed {
			break
		}
		o.segs[0] = nil
		o.segs = o.segs[1:]
		o.flushOut()
		if s.hasWm {
			o.em.out.watermark(s.wm)
			if o.fails != nil {
				o.fails.out.watermark(s.wm)
			}
		}
		if s.idle {
			o.em.out.idle()
			if o.fails != nil {
				o.fails.out.idle()
			}
		}
	}
	if len(o.segs) == 0 {
		o.segs = nil
	}
	o.flushOut()
}

func (o *asyncOp[In, Out]) emitOne(e *asyncEntry[In, Out]) {
	e.emitted = true
	e.seg.left--
	e.seg.gone++
	o.queued--
	o.stats.queued.Store(int64(o.queued))
	if e.ingest != 0 {
		o.t.ingest = e.ingest
	}
	if e.err != nil {
		o.stats.failed.Add(1)
		o.fails.EmitAt(AsyncFailure[In]{In: e.in, Err: e.err, Time: e.ts, Attempts: e.attempts}, e.ts)
	} else {
		o.em.EmitAt(e.out, e.ts)
	}
	var zi In
	var zo Out
	e.in, e.out, e.err = zi, zo, nil
}

func (o *asyncOp[In, Out]) flushOut() {
	o.em.flush()
	o.cnt.Out.Add(o.em.count())
	if o.fails != nil {
		o.fails.flush()
		o.cnt.Out.Add(o.fails.count())
	}
}

// compact drops emitted records from recs once they are half of it.
func (s *asyncSeg[In, Out]) compact(unordered bool) {
	if s.gone < 32 || 2*s.gone < len(s.recs) {
		return
	}
	if !unordered {
		n := copy(s.recs, s.recs[s.next:])
		clear(s.recs[n:])
		s.recs = s.recs[:n]
		s.next, s.gone = 0, 0
		return
	}
	keep := s.recs[:0]
	for _, e := range s.recs {
		if !e.emitted {
			keep = append(keep, e)
		}
	}
	clear(s.recs[len(keep):])
	s.recs = keep
	s.gone = 0
}

// mark closes the open segment with a watermark or idleness, or merges
// into the closed last segment, then emits what that allows.
func (o *asyncOp[In, Out]) mark(wm int64, isWm bool) {
	n := len(o.segs)
	if n == 0 {
		if isWm {
			o.em.out.watermark(wm)
			if o.fails != nil {
				o.fails.out.watermark(wm)
			}
		} else {
			o.em.out.idle()
			if o.fails != nil {
				o.fails.out.idle()
			}
		}
		return
	}
	s := o.segs[n-1]
	if !s.closed {
		s.closed = true
	}
	if isWm {
		// A watermark after idleness makes the input active again: what
		// remains to say is the latest watermark.
		if !s.hasWm || wm > s.wm {
			s.wm = wm
		}
		s.hasWm, s.idle = true, false
	} else {
		s.idle = true
	}
	o.emit()
}

func (o *asyncOp[In, Out]) watermark(wm int64) {
	o.poll()
	o.mark(wm, true)
}

func (o *asyncOp[In, Out]) idle() {
	o.poll()
	o.mark(0, false)
}

func (o *asyncOp[In, Out]) barrier(id uint64) {
	o.poll()
	if chk := o.t.job.chk; chk != nil {
		o.snapshot(chk, id)
	}
	o.em.out.barrier(id)
	if o.fails != nil {
		o.fails.out.barrier(id)
	}
}

func (o *asyncOp[In, Out]) end() {
	o.poll()
	for o.queued > 0 {
		o.await()
	}
	o.flushOut()
	if chk := o.t.job.chk; chk != nil {
		o.snapWG.Wait()
		chk.finish(checkpointAck(o.node, o.sub))
	}
	o.em.out.end()
	if o.fails != nil {
		o.fails.out.end()
	}
}
