package stream

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"time"

	rt "github.com/sluicehq/sluice/internal/runtime"
)

// abortSignal unwinds a subtask whose job was cancelled or failed
// elsewhere; it is not an error of its own.
type abortSignal struct{}

var errAborted = abortSignal{}

// ErrUserPanic is wrapped by the OperatorError of a job that failed because
// user code panicked.
var ErrUserPanic = errors.New("panic in user code")

// OperatorError is the error of a job that failed in an operator: it names
// the operator, the subtask and the position of the record being processed.
type OperatorError struct {
	Operator string
	Subtask  int
	// Position describes the record or split position being processed, if
	// known.
	Position string
	Err      error
	// Stack is the goroutine stack of a panic, for debugging.
	Stack []byte
}

// Error implements error.
func (e *OperatorError) Error() string {
	if e.Position != "" {
		return fmt.Sprintf("operator %q (subtask %d) at %s: %v", e.Operator, e.Subtask, e.Position, e.Err)
	}
	return fmt.Sprintf("operator %q (subtask %d): %v", e.Operator, e.Subtask, e.Err)
}

// Unwrap returns the cause.
func (e *OperatorError) Unwrap() error { return e.Err }

// opBase is embedded by every operator: its identity, counters and the
// position of the record it is processing (for error messages).
type opBase struct {
	name string
	sub  int
	t    *task
	cnt  *rt.Counters
	pos  int
	curT []int64
	node *node
}

func (bc *buildCtx) base() opBase {
	return opBase{name: bc.n.name, sub: bc.sub, t: bc.t, cnt: bc.counters(), node: bc.n}
}

// recoverUser turns a panic in user code into an OperatorError naming this
// operator; it must be deferred directly by an operator method that calls
// user code. Errors already attributed to an operator pass through.
func (o *opBase) recoverUser() {
	if p := recover(); p != nil {
		panic(o.wrap(p))
	}
}

func (o *opBase) wrap(p any) any {
	switch p := p.(type) {
	case abortSignal, *OperatorError:
		return p
	case error:
		return &OperatorError{Operator: o.name, Subtask: o.sub, Position: o.position(), Err: fmt.Errorf("%w: %w", ErrUserPanic, p), Stack: debug.Stack()}
	}
	return &OperatorError{Operator: o.name, Subtask: o.sub, Position: o.position(), Err: fmt.Errorf("%w: %v", ErrUserPanic, p), Stack: debug.Stack()}
}

func (o *opBase) position() string {
	if o.pos >= 0 && o.pos < len(o.curT) {
		return fmt.Sprintf("record %d of its batch (event time %s)", o.pos, fmtTime(o.curT[o.pos]))
	}
	return ""
}

// fail stops the job with err attributed to this operator.
func (o *opBase) fail(err error) {
	panic(&OperatorError{Operator: o.name, Subtask: o.sub, Err: err})
}

func fmtTime(ms int64) string {
	switch ms {
	case math.MinInt64:
		return "-inf"
	case math.MaxInt64:
		return "+inf"
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)
}

// flusher is an exchange at the end of a task's chain: the task sends its
// partial batches when it is about to wait or when they have waited the
// buffer timeout, and forwards latency markers through it.
type flusher interface {
	// flush sends every partial batch.
	flush()
	// flushDue sends the partial batches whose first record went in at
	// least timeout before now (clock units).
	flushDue(now, timeout int64)
	// marker forwards a latency marker made at ts to one downstream
	// subtask.
	marker(ts int64)
}

// procTimers is implemented by operators with processing-time timers.
type procTimers interface {
	// nextProcTimer returns the earliest pending processing time, or
	// math.MaxInt64.
	nextProcTimer() int64
	// fireProcTimers fires the timers due at now (ms).
	fireProcTimers(now int64)
}

// task is one goroutine: a source split or a gated operator subtask, plus
// the operators chained behind it.
type task struct {
	name    string
	sub     int
	ctx     context.Context
	done    <-chan struct{}
	stats   *rt.TaskStats
	flush   []flusher
	proc    []procTimers
	closers []func()
	// onEnd runs when the task returns normally.
	onEnd []func()
	job   *Job
	// now is the job clock's reading at the start of the current unit of
	// work (a source read, an input batch); partial batches opened during
	// it are stamped with it.
	now int64
	// ingest is the ingestion time (job clock) of the records being
	// processed: when the source read them. Batches carry it downstream
	// (the oldest of the records they hold); 0 when unknown.
	ingest int64
	// markerHists record the arrival of latency markers at the operators
	// of the chain (WithLatencyMarkers).
	markerHists []*rt.Histogram
	// async is the head of a task that waits for answers from outside
	// (AsyncMap); nil for the others.
	async asyncPoller
}

// asyncPoller is an operator whose results arrive from other goroutines
// (AsyncMap): the task loop polls it when it signals, between input
// batches, so that the task never blocks while calls are in flight.
type asyncPoller interface {
	// wake is signalled (capacity 1) when results arrived.
	wake() <-chan struct{}
	// start runs first in the task: it issues the calls restored from a
	// checkpoint.
	start()
	// poll emits the results that arrived, without waiting.
	poll()
}

func (t *task) flushAll() {
	for _, f := range t.flush {
		f.flush()
	}
}

// tick reads the job's clock at the start of a unit of work.
func (t *task) tick() int64 {
	t.now = t.job.clock.Nanos()
	return t.now
}

// flushDue sends the partial batches that have waited the buffer timeout
// at t.now; with a zero timeout, every partial batch.
func (t *task) flushDue() {
	timeout := t.job.bufferTimeout
	if timeout <= 0 {
		t.flushAll()
		return
	}
	for _, f := range t.flush {
		f.flushDue(t.now, timeout)
	}
}

// marker records the arrival, at t.now, of a latency marker made at ts at
// every operator of the chain, and forwards it downstream.
func (t *task) marker(ts int64) {
	d := time.Duration(t.now - ts)
	for _, h := range t.markerHists {
		h.Observe(d, 1)
	}
	for _, f := range t.flush {
		f.marker(ts)
	}
}

// nextProc returns the earliest processing-time timer of the chain.
func (t *task) nextProc() int64 {
	next := int64(math.MaxInt64)
	for _, p := range t.proc {
		if n := p.nextProcTimer(); n < next {
			next = n
		}
	}
	return next
}

func (t *task) fireProc() {
	if len(t.proc) == 0 {
		return
	}
	now := rt.NowMillis()
	saved := t.ingest
	for _, p := range t.proc {
		if p.nextProcTimer() <= now {
			// What a timer emits is new: it was "ingested" when it
			// fired.
			t.ingest = t.now
			p.fireProcTimers(now)
		}
	}
	t.ingest = saved
}

// runner is the body of a task.
type runner interface{ run(t *task) }

// exec runs r, turning panics into the job's error.
func (t *task) exec(r runner) {
	defer t.job.wg.Done()
	defer func() {
		p := recover()
		t.stats.Finish()
		if p == nil {
			return
		}
		for _, c := range t.closers {
			func() {
				defer func() { _ = recover() }()
				c()
			}()
		}
		switch p := p.(type) {
		case abortSignal:
			return
		case *OperatorError:
			t.job.errs.Set(p)
		default:
			t.job.errs.Set(&OperatorError{Operator: t.name, Subtask: t.sub, Err: fmt.Errorf("%w: %v", ErrUserPanic, p), Stack: debug.Stack()})
		}
	}()
	r.run(t)
	for _, f := range t.onEnd {
		f()
	}
}

// gateMsg is one entry of a subtask's input queue: a batch from the first
// or the second input.
type gateMsg[A, B any] struct {
	a *batch[A]
	b *batch[B]
}

// twoInput is the head of a gated subtask. One-input heads are adapted.
type twoInput[A, B any] interface {
	pushA(vals []A, ts []int64)
	pushB(vals []B, ts []int64)
	watermark(wm int64)
	idle()
	barrier(id uint64)
	end()
}

type oneInputHead[A, B any] struct{ c collector[A] }

func (h oneInputHead[A, B]) pushA(v []A, ts []int64) { h.c.push(v, ts) }
func (h oneInputHead[A, B]) pushB([]B, []int64) {
	panic("stream: second input on a one-input operator")
}
func (h oneInputHead[A, B]) watermark(wm int64) { h.c.watermark(wm) }
func (h oneInputHead[A, B]) idle()              { h.c.idle() }
func (h oneInputHead[A, B]) barrier(id uint64)  { h.c.barrier(id) }
func (h oneInputHead[A, B]) end()               { h.c.end() }

// gateHandle is the type-erased view of a gate used by the planner.
type gateHandle interface {
	// sender returns the func(*batch[T]) that enqueues batches of input i.
	sender(input int) any
	// bind returns the task body that feeds head (a collector[A] or a
	// twoInput[A, B]).
	bind(head any) runner
}

// gate is the input queue of a gated subtask: one bounded queue shared by
// all its input channels. Its capacity is the sum of the channels' credits,
// so enqueueing never blocks; the bound comes from the credits.
type gate[A, B any] struct {
	in   chan gateMsg[A, B]
	done <-chan struct{}
	nch  int
	one  bool
	head twoInput[A, B]
	t    *task

	wms     *rt.WatermarkTracker
	aligner *rt.Aligner
	held    [][]gateMsg[A, B]
	// noAlign lets records of channels that delivered the barrier through
	// (at-least-once delivery).
	noAlign bool
	// alignStart is when the first barrier of the alignment in progress
	// arrived, for the checkpoint's alignment time.
	alignStart time.Time
	// maxBarrier is the highest barrier seen; lower ones are dropped.
	maxBarrier uint64
	// ended: the head got its end. The last input's end can complete an
	// alignment whose replay handles the held end of another input,
	// which is then the last; the head must get one end all the same.
	ended bool
}

func newGate[A, B any](nch, credits int, done <-chan struct{}, one bool) *gate[A, B] {
	return &gate[A, B]{in: make(chan gateMsg[A, B], nch*credits), done: done, nch: nch, one: one}
}

func (g *gate[A, B]) sender(input int) any {
	if input == 0 {
		return func(b *batch[A]) {
			select {
			case g.in <- gateMsg[A, B]{a: b}:
			case <-g.done:
				panic(errAborted)
			}
		}
	}
	return func(b *batch[B]) {
		select {
		case g.in <- gateMsg[A, B]{b: b}:
		case <-g.done:
			panic(errAborted)
		}
	}
}

func (g *gate[A, B]) bind(head any) runner {
	if g.one {
		g.head = oneInputHead[A, B]{c: head.(collector[A])}
	} else {
		g.head = head.(twoInput[A, B])
	}
	return g
}

func (g *gate[A, B]) run(t *task) {
	g.t = t
	g.wms = rt.NewWatermarkTracker(g.nch)
	g.aligner = rt.NewAligner(g.nch)
	g.held = make([][]gateMsg[A, B], g.nch)
	g.noAlign = t.job.chk != nil && t.job.chk.cfg.delivery == AtLeastOnce
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	var wakeC <-chan struct{}
	if t.async != nil {
		wakeC = t.async.wake()
		t.tick()
		t.async.start()
	}
	for !g.wms.AllEnded() {
		var m gateMsg[A, B]
		select {
		case m = <-g.in:
			t.tick()
			if len(t.proc) > 0 {
				t.fireProc()
			}
		default:
			// About to wait: send partial batches downstream first, so
			// that records never sit in a buffer while the task is idle.
			t.flushAll()
			var timerC <-chan time.Time
			if next := t.nextProc(); next != math.MaxInt64 {
				d := time.Duration(next-rt.NowMillis()) * time.Millisecond
				if timer == nil {
					timer = time.NewTimer(d)
				} else {
					timer.Reset(d)
				}
				timerC = timer.C
			}
			began := t.stats.Wait(rt.StatusIdle)
			select {
			case m = <-g.in:
				t.stats.Resume(rt.StatusIdle, began)
				t.tick()
			case <-timerC:
				t.stats.Resume(rt.StatusIdle, began)
				t.tick()
				t.fireProc()
				continue
			case <-wakeC:
				t.stats.Resume(rt.StatusIdle, began)
				t.tick()
				t.async.poll()
				continue
			case <-g.done:
				panic(errAborted)
			}
		}
		g.handle(m)
		if t.async != nil {
			t.async.poll()
		}
		// A task that never runs out of input still sends its partial
		// batches once they have waited the buffer timeout.
		t.flushDue()
	}
	t.flushAll()
}

func (g *gate[A, B]) handle(m gateMsg[A, B]) {
	var (
		ch   int
		kind rt.Kind
		arg  int64
	)
	if m.a != nil {
		ch, kind, arg = int(m.a.ch), m.a.kind, m.a.arg
	} else {
		ch, kind, arg = int(m.b.ch), m.b.kind, m.b.arg
	}
	if !g.noAlign && g.aligner.Blocked(ch) {
		g.held[ch] = append(g.held[ch], m)
		return
	}
	if kind == rt.KindData {
		g.wms.Active(ch)
		if m.a != nil {
			g.t.ingest = m.a.ingest
			g.head.pushA(m.a.vals, m.a.ts)
			m.a.recycle()
		} else {
			g.t.ingest = m.b.ingest
			g.head.pushB(m.b.vals, m.b.ts)
			m.b.recycle()
		}
		return
	}
	if m.a != nil {
		g.t.ingest = m.a.ingest
	} else {
		g.t.ingest = m.b.ingest
	}
	if m.a != nil {
		m.a.recycle()
	} else {
		m.b.recycle()
	}
	switch kind {
	case rt.KindWatermark:
		if wm, adv := g.wms.Watermark(ch, arg); adv {
			g.head.watermark(wm)
			g.t.stats.SetWatermark(wm)
		}
	case rt.KindIdle:
		if wm, adv := g.wms.Idle(ch); adv {
			g.head.watermark(wm)
			g.t.stats.SetWatermark(wm)
		}
		if g.wms.AllIdle() {
			g.head.idle()
		}
	case rt.KindBarrier:
		id := uint64(arg)
		if id < g.maxBarrier {
			// Overtaken by a later barrier (its checkpoint was aborted
			// before every source emitted it): nothing to align.
			return
		}
		g.maxBarrier = id
		if g.aligner.Aligning() && id > g.aligner.ID() {
			g.aligner.Abandon()
			g.replayHeld()
			if id < g.maxBarrier {
				// The replay delivered a later barrier still (several
				// checkpoints were aborted in a row): it overtook this
				// one too.
				return
			}
		}
		if !g.aligner.Aligning() {
			g.alignStart = time.Now()
		}
		done, err := g.aligner.Barrier(ch, id)
		if err != nil {
			panic(&OperatorError{Operator: g.t.name, Subtask: g.t.sub, Err: err})
		}
		if done {
			g.completeBarrier()
		}
	case rt.KindMarker:
		g.t.marker(arg)
	case rt.KindEnd:
		wm, adv := g.wms.End(ch)
		if adv {
			g.head.watermark(wm)
			g.t.stats.SetWatermark(wm)
		}
		if g.aligner.End(ch) {
			g.completeBarrier()
		}
		if g.wms.AllEnded() && !g.ended {
			g.ended = true
			g.head.end()
		}
	}
}

// completeBarrier forwards an aligned barrier (operators snapshot on the
// way) and replays the events held back during alignment.
func (g *gate[A, B]) completeBarrier() {
	if g.t != nil && g.t.job != nil && g.t.job.chk != nil && !g.alignStart.IsZero() {
		c := g.t.job.chk
		c.noteAlignment(g.aligner.ID(), time.Since(g.alignStart))
	}
	g.head.barrier(g.aligner.ID())
	g.replayHeld()
}

// replayHeld handles the events held back during an alignment.
func (g *gate[A, B]) replayHeld() {
	for ch := range g.held {
		msgs := g.held[ch]
		g.held[ch] = nil
		for _, m := range msgs {
			g.handle(m)
		}
	}
}
