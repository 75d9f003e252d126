package stream

import (
	"fmt"
	"io"
	"math"
	"sync"

	"github.com/sluicehq/sluice/checkpoint"
	rt "github.com/sluicehq/sluice/internal/runtime"
	"github.com/sluicehq/sluice/state"
)

// TimeDomain says whether a timer is in event time or processing time.
type TimeDomain uint8

const (
	// EventTime timers fire when the watermark reaches them.
	EventTime TimeDomain = iota
	// ProcessingTime timers fire when the wall clock reaches them.
	ProcessingTime
)

// Timer is a timer that fired: its time (ms) and domain.
type Timer struct {
	Time   int64
	Domain TimeDomain
}

// KeyedProcessFunc is the user logic of KeyedProcess: it sees every
// record of its keys and the timers it registered, with per-key state.
// Each parallel subtask has its own instance, made by the constructor
// passed to KeyedProcess.
type KeyedProcessFunc[K comparable, T, R any] interface {
	// ProcessElement is called for every record; ctx.Key() is its key.
	ProcessElement(ctx *KeyedContext[K, R], v T)
	// OnTimer is called when a timer registered for ctx.Key() fires.
	OnTimer(ctx *KeyedContext[K, R], t Timer)
}

// KeyedProcessFuncs adapts two functions to KeyedProcessFunc; OnTimer may
// be nil.
type KeyedProcessFuncs[K comparable, T, R any] struct {
	Element func(ctx *KeyedContext[K, R], v T)
	Timer   func(ctx *KeyedContext[K, R], t Timer)
}

// ProcessElement implements KeyedProcessFunc.
func (f KeyedProcessFuncs[K, T, R]) ProcessElement(ctx *KeyedContext[K, R], v T) { f.Element(ctx, v) }

// OnTimer implements KeyedProcessFunc.
func (f KeyedProcessFuncs[K, T, R]) OnTimer(ctx *KeyedContext[K, R], t Timer) {
	if f.Timer != nil {
		f.Timer(ctx, t)
	}
}

// KeyedContext is what a KeyedProcessFunc sees: the current key and time,
// its state, its timers and its output. It is owned by one subtask.
type KeyedContext[K comparable, R any] struct {
	keyed *state.Keyed[K]
	em    *Emitter[R]
	ts    int64
	wm    int64
	info  SubtaskInfo
	event timerService[K]
	proc  timerService[K]
}

// Key returns the key of the current record or timer.
func (c *KeyedContext[K, R]) Key() K { return c.keyed.CurrentKey() }

// Timestamp returns the event time of the current record, or the time of
// the firing timer.
func (c *KeyedContext[K, R]) Timestamp() int64 { return c.ts }

// Watermark returns the operator's current event-time watermark.
func (c *KeyedContext[K, R]) Watermark() int64 { return c.wm }

// ProcessingTime returns the wall clock in ms.
func (c *KeyedContext[K, R]) ProcessingTime() int64 { return rt.NowMillis() }

// State returns the keyed state context: open handles on it with
// state.NewValue, state.NewMap and state.NewList (once, in the constructor
// given to KeyedProcess); they act on the current key.
func (c *KeyedContext[K, R]) State() *state.Keyed[K] { return c.keyed }

// Subtask identifies the parallel instance.
func (c *KeyedContext[K, R]) Subtask() SubtaskInfo { return c.info }

// Emit outputs v with the current timestamp.
func (c *KeyedContext[K, R]) Emit(v R) { c.em.EmitAt(v, c.ts) }

// EmitAt outputs v with event time ts.
func (c *KeyedContext[K, R]) EmitAt(v R, ts int64) { c.em.EmitAt(v, ts) }

// RegisterEventTimer sets an event-time timer for the current key at ts;
// it fires once the watermark reaches ts. Registering the same time twice
// gives one timer.
func (c *KeyedContext[K, R]) RegisterEventTimer(ts int64) {
	c.event.register(c.keyed.CurrentKey(), c.keyed.KeyGroup(), ts)
}

// DeleteEventTimer removes the current key's event-time timer at ts.
func (c *KeyedContext[K, R]) DeleteEventTimer(ts int64) {
	c.event.delete(c.keyed.CurrentKey(), c.keyed.KeyGroup(), ts)
}

// RegisterProcessingTimer sets a processing-time timer for the current key
// at wall-clock time ts (ms). Processing-time timers still pending when
// the input ends are dropped.
func (c *KeyedContext[K, R]) RegisterProcessingTimer(ts int64) {
	c.proc.register(c.keyed.CurrentKey(), c.keyed.KeyGroup(), ts)
}

// DeleteProcessingTimer removes the current key's processing-time timer.
func (c *KeyedContext[K, R]) DeleteProcessingTimer(ts int64) {
	c.proc.delete(c.keyed.CurrentKey(), c.keyed.KeyGroup(), ts)
}

type timerKey[K comparable] struct {
	key K
	t   int64
}

type keyTimer[K comparable] struct {
	t   int64
	key K
	kg  int32
}

// timerService holds one domain's timers of a keyed subtask: a set for
// deduplication and deletion, and a min-heap by time whose entries are
// checked against the set when they come up.
//
// With incremental snapshots (track), changes are found through
// generations (snapshot intervals) rather than recorded in a set of their
// own. The set maps each timer to the generation of its registration
// and, for the current generation, its index in added, the list of the
// timers registered since the last snapshot; a removal either marks the
// timer dead in added (registered since the last snapshot, which does
// not hold it) or appends it to removed (the last snapshot holds it). A
// timer registered and fired between two snapshots (most of them, at a
// 1 s interval) thus costs an append and no map operation of its own,
// and the snapshot reads the two lists (timerChanges,
// process_incremental.go).
type timerService[K comparable] struct {
	set  map[timerKey[K]]uint64 // timer -> generation<<32 | index in added
	heap []keyTimer[K]
	// With incremental snapshots: the current generation (from 1), the
	// timers registered in it (kg -1: removed since) and the timers of
	// earlier generations removed in it.
	track   bool
	gen     uint32
	added   []keyTimer[K]
	removed []keyTimer[K]
}

// enableTracking turns on change tracking for incremental snapshots.
func (s *timerService[K]) enableTracking() {
	s.track = true
	if s.gen == 0 {
		s.gen = 1
	}
}

// noteRemoval records the removal of timer tk, whose set value was v,
// for the next incremental snapshot.
func (s *timerService[K]) noteRemoval(tk timerKey[K], kg int32, v uint64) {
	if uint32(v>>32) == s.gen {
		s.added[uint32(v)].kg = -1
		return
	}
	s.removed = append(s.removed, keyTimer[K]{t: tk.t, key: tk.key, kg: kg})
}

func (s *timerService[K]) register(k K, kg int, t int64) {
	tk := timerKey[K]{key: k, t: t}
	if _, ok := s.set[tk]; ok {
		return
	}
	if s.set == nil {
		s.set = make(map[timerKey[K]]uint64)
	}
	kt := keyTimer[K]{t: t, key: k, kg: int32(kg)}
	var v uint64
	if s.track {
		v = uint64(s.gen)<<32 | uint64(len(s.added))
		s.added = append(s.added, kt)
	}
	s.set[tk] = v
	s.heap = append(s.heap, kt)
	h := s.heap
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if h[p].t <= h[i].t {
			break
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
}

func (s *timerService[K]) delete(k K, kg int, t int64) {
	tk := timerKey[K]{key: k, t: t}
	v, ok := s.set[tk]
	if !ok {
		return
	}
	delete(s.set, tk)
	if s.track {
		s.noteRemoval(tk, int32(kg), v)
	}
}

func (s *timerService[K]) next() int64 {
	if len(s.heap) == 0 {
		return math.MaxInt64
	}
	return s.heap[0].t
}

// pop removes and returns the earliest live timer at or before t.
func (s *timerService[K]) pop(t int64) (keyTimer[K], bool) {
	for len(s.heap) > 0 && s.heap[0].t <= t {
		h := s.heap
		top := h[0]
		last := len(h) - 1
		h[0] = h[last]
		h = h[:last]
		i := 0
		for {
			l := 2*i + 1
			if l >= len(h) {
				break
			}
			m := l
			if r := l + 1; r < len(h) && h[r].t < h[l].t {
				m = r
			}
			if h[i].t <= h[m].t {
				break
			}
			h[i], h[m] = h[m], h[i]
			i = m
		}
		s.heap = h
		tk := timerKey[K]{key: top.key, t: top.t}
		if v, ok := s.set[tk]; ok {
			delete(s.set, tk)
			if s.track {
				s.noteRemoval(tk, top.kg, v)
			}
			return top, true
		}
	}
	return keyTimer[K]{}, false
}

// KeyedProcess runs f on a keyed stream. newFunc is called once per
// parallel subtask, with the subtask's context, to make its function
// instance and open its state handles.
func KeyedProcess[K comparable, T, R any](ks KeyedStream[K, T], newFunc func(ctx *KeyedContext[K, R]) (KeyedProcessFunc[K, T, R], error), opts ...OpOption) Stream[R] {
	s := keyedOne[K, T, R](ks, "keyed-process", opts, func(bc *buildCtx, n *node) collector[T] {
		mp := bc.maxPar()
		kgr := state.RangeFor(mp, n.par, bc.sub)
		var backend state.Backend = state.NewMemory(mp, kgr)
		b, backendErr := openStateBackend(bc, n, kgr)
		if b != nil {
			backend = b
		}
		o := &keyedProcessOp[K, T, R]{opBase: bc.base(), key: ks.key, hash: ks.hash, maxPar: uint64(mp), backend: backend, restoreErr: backendErr, wmDelay: n.wmDelay}
		if mem, ok := backend.(*state.Memory); ok && bc.job.chk != nil {
			// Incremental snapshots (process_incremental.go).
			mem.EnableChangeTracking()
			o.inc = newChainSnap()
		}
		o.ctx = &KeyedContext[K, R]{
			keyed: state.NewKeyed[K](backend),
			em:    newEmitter(bc, outputOf[R](bc.outs[0])),
			wm:    rt.MinWatermark,
			info:  SubtaskInfo{Operator: n.name, Index: bc.sub, Parallelism: n.par},
		}
		if o.inc != nil {
			o.ctx.event.enableTracking()
			o.ctx.proc.enableTracking()
		}
		o.newFunc = newFunc
		bc.t.proc = append(bc.t.proc, o)
		if chk := bc.job.chk; chk != nil && chk.restored != nil && o.restoreErr == nil {
			if err := o.restore(chk, chk.stateFiles(n)); err != nil {
				o.restoreErr = fmt.Errorf("restore: %w", err)
			}
		}
		return o
	})
	s.n.snapshots = true
	return s
}

type keyedProcessOp[K comparable, T, R any] struct {
	opBase
	key     func(T) K
	hash    func(K) uint64
	maxPar  uint64
	ctx     *KeyedContext[K, R]
	newFunc func(ctx *KeyedContext[K, R]) (KeyedProcessFunc[K, T, R], error)
	f       KeyedProcessFunc[K, T, R]

	backend    state.Backend
	restoreErr error
	// wmDelay: watermarks are forwarded this far behind (WatermarkDelay).
	wmDelay int64
	snapWG  sync.WaitGroup // see winOp.snapWG
	inc     *chainSnap     // incremental snapshots of the memory backend; nil without checkpoints
}

func (o *keyedProcessOp[K, T, R]) open() {
	if o.f != nil {
		return
	}
	if o.restoreErr != nil {
		o.fail(o.restoreErr)
	}
	f, err := o.newFunc(o.ctx)
	if err != nil {
		o.fail(fmt.Errorf("open: %w", err))
	}
	if f == nil {
		o.fail(fmt.Errorf("open: constructor returned a nil function"))
	}
	o.f = f
}

func (o *keyedProcessOp[K, T, R]) push(vals []T, ts []int64) {
	defer o.recoverUser()
	o.open()
	o.curT = ts
	for i, v := range vals {
		o.pos = i
		k := o.key(v)
		o.ctx.keyed.SetCurrentKey(k, int(o.hash(k)%o.maxPar))
		o.ctx.ts = ts[i]
		o.f.ProcessElement(o.ctx, v)
	}
	o.pos = -1
	o.cnt.In.Add(int64(len(vals)))
	flushBackend(o.backend)
	o.flush()
}

func (o *keyedProcessOp[K, T, R]) flush() {
	o.ctx.em.flush()
	o.cnt.Out.Add(o.ctx.em.count())
}

func (o *keyedProcessOp[K, T, R]) fireTimers(s *timerService[K], d TimeDomain, upTo int64) {
	for {
		kt, ok := s.pop(upTo)
		if !ok {
			return
		}
		o.ctx.keyed.SetCurrentKey(kt.key, int(kt.kg))
		o.ctx.ts = kt.t
		o.f.OnTimer(o.ctx, Timer{Time: kt.t, Domain: d})
	}
}

func (o *keyedProcessOp[K, T, R]) watermark(wm int64) {
	defer o.recoverUser()
	o.open()
	// A restored operator starts at its checkpointed watermark, which the
	// restarted sources may not have reached yet.
	o.ctx.wm = max(o.ctx.wm, wm)
	o.fireTimers(&o.ctx.event, EventTime, o.ctx.wm)
	flushBackend(o.backend)
	o.flush()
	if o.wmDelay > 0 && wm != rt.MaxWatermark {
		if wm < rt.MinWatermark+o.wmDelay {
			return // not past the delay yet (and no underflow)
		}
		wm -= o.wmDelay
	}
	o.ctx.em.out.watermark(wm)
}

func (o *keyedProcessOp[K, T, R]) nextProcTimer() int64 { return o.ctx.proc.next() }

func (o *keyedProcessOp[K, T, R]) fireProcTimers(now int64) {
	defer o.recoverUser()
	o.open()
	o.fireTimers(&o.ctx.proc, ProcessingTime, now)
	flushBackend(o.backend)
	o.flush()
}

func (o *keyedProcessOp[K, T, R]) idle() { o.ctx.em.out.idle() }
func (o *keyedProcessOp[K, T, R]) barrier(id uint64) {
	if chk := o.t.job.chk; chk != nil {
		// The tables open (and take their restored state) before the
		// first snapshot, even one that comes before any record.
		func() {
			defer o.recoverUser()
			o.open()
		}()
		o.snapshot(chk, id)
	}
	o.ctx.em.out.barrier(id)
}

func (o *keyedProcessOp[K, T, R]) end() {
	o.flush()
	if chk := o.t.job.chk; chk != nil {
		o.snapWG.Wait()
		chk.finish(checkpoint.Ack{Task: checkpoint.TaskID{Operator: opKey(o.node), Subtask: o.sub}})
	}
	o.ctx.em.out.end()
}

// openStateBackend makes the configured state backend of subtask bc.sub
// of keyed operator n (restored from the checkpoint being restored, if
// any) and closes it with the task. It returns nil, nil when no backend
// factory is configured.
func openStateBackend(bc *buildCtx, n *node, kgr state.KeyGroupRange) (state.Backend, error) {
	f := bc.env.cfg.stateFactory
	if f == nil {
		return nil, nil
	}
	var restored *checkpoint.Checkpoint
	var files []string
	if chk := bc.job.chk; chk != nil && chk.restored != nil {
		restored, files = chk.restored, chk.stateFiles(n)
	}
	b, err := f(opKey(n), bc.sub, bc.maxPar(), kgr, restored, files)
	if err != nil {
		return nil, fmt.Errorf("state backend: %w", err)
	}
	if c, ok := b.(io.Closer); ok {
		var once sync.Once
		closeFn := func() { once.Do(func() { _ = c.Close() }) }
		bc.t.closers = append(bc.t.closers, closeFn)
		bc.t.onEnd = append(bc.t.onEnd, closeFn)
	}
	return b, nil
}

// flushBackend applies the writes that backend b buffered during a record
// batch (state.Flusher); a failure fails the task like any state I/O
// error.
func flushBackend(b state.Backend) {
	f, ok := b.(state.Flusher)
	if !ok {
		return
	}
	if err := f.Flush(); err != nil {
		panic(&state.KVError{Table: "(write batch)", Op: "flush", Err: err})
	}
}
