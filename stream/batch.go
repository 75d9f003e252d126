package stream

import (
	rt "github.com/sluicehq/sluice/internal/runtime"
)

// collector is the typed input of an operator. Chained operators call the
// next operator's collector directly; the last operator of a chain calls an
// exchange, which is also a collector. Slices passed to push belong to the
// caller and are only valid during the call.
type collector[T any] interface {
	// push hands over records and their timestamps (same length).
	push(vals []T, ts []int64)
	// watermark says no record at or before wm will follow. An operator
	// emits everything the watermark triggers before forwarding it.
	watermark(wm int64)
	// idle says the input will be silent for a while.
	idle()
	// barrier passes checkpoint barrier id: state-owning operators snapshot
	// before forwarding it.
	barrier(id uint64)
	// end says the input is complete. An operator flushes and forwards it.
	end()
}

// batch is the unit that crosses a bounded queue: records (struct of
// arrays: values and timestamps) or one control event.
type batch[T any] struct {
	kind rt.Kind
	ch   int32
	vals []T
	ts   []int64
	arg  int64 // watermark, barrier id or marker time
	// ingest is the ingestion time (job clock) of the oldest record in
	// the batch, or of the input that caused a control event; 0 unknown.
	ingest int64
	free   chan *batch[T]
}

// recycle returns the batch to its sender's free list, granting it a
// credit to send another. It never blocks: the free list has room for
// every batch of the channel.
func (b *batch[T]) recycle() {
	clear(b.vals) // drop references so the GC can reclaim records
	b.vals = b.vals[:0]
	b.ts = b.ts[:0]
	b.ingest = 0
	b.free <- b
}

// chanWriter fills batches for one channel (one upstream subtask to one
// downstream subtask). It owns a fixed number of batches (credits): when all
// are in flight, get blocks, and that is backpressure.
type chanWriter[T any] struct {
	t    *task
	send func(*batch[T])
	free chan *batch[T]
	cur  *batch[T]
	// born is the task clock when cur got its first record.
	born    int64
	made    int
	credits int
	size    int
	ch      int32
}

func newChanWriter[T any](t *task, send func(*batch[T]), ch, credits, size int) *chanWriter[T] {
	return &chanWriter[T]{t: t, send: send, free: make(chan *batch[T], credits), credits: credits, size: size, ch: int32(ch)}
}

func (w *chanWriter[T]) get() *batch[T] {
	select {
	case b := <-w.free:
		return b
	default:
	}
	if w.made < w.credits {
		w.made++
		return &batch[T]{vals: make([]T, 0, w.size), ts: make([]int64, 0, w.size), free: w.free, ch: w.ch}
	}
	began := w.t.stats.Wait(rt.StatusBackpressured)
	select {
	case b := <-w.free:
		w.t.stats.Resume(rt.StatusBackpressured, began)
		return b
	case <-w.t.done:
		panic(errAborted)
	}
}

// scanTargets is the most downstream subtasks for which the hash exchange
// copies each target's records in a scan of its own over the batch.
const scanTargets = 4

// open makes cur a batch that can take a record, stamping a new one with
// the task's clock and the batch with the oldest ingestion time.
func (w *chanWriter[T]) open() {
	if w.cur == nil {
		w.cur = w.get()
	}
	in := w.t.ingest
	if len(w.cur.vals) == 0 {
		w.born = w.t.now
		w.cur.ingest = in
	} else if in != 0 && (w.cur.ingest == 0 || in < w.cur.ingest) {
		w.cur.ingest = in
	}
}

func (w *chanWriter[T]) add(v T, ts int64) {
	w.open()
	w.cur.vals = append(w.cur.vals, v)
	w.cur.ts = append(w.cur.ts, ts)
	if len(w.cur.vals) >= w.size {
		w.flush()
	}
}

// addWhere adds the records i with tg[i] == t.
func (w *chanWriter[T]) addWhere(vals []T, ts []int64, tg []int32, t int32) {
	i := 0
	for i < len(vals) {
		// Find the next record for t before taking a batch (a credit).
		for i < len(vals) && tg[i] != t {
			i++
		}
		if i == len(vals) {
			return
		}
		w.open()
		cv, ct := w.cur.vals, w.cur.ts
		for ; i < len(vals) && len(cv) < w.size; i++ {
			if tg[i] == t {
				cv = append(cv, vals[i])
				ct = append(ct, ts[i])
			}
		}
		w.cur.vals, w.cur.ts = cv, ct
		if len(cv) >= w.size {
			w.flush()
		}
	}
}

func (w *chanWriter[T]) addAll(vals []T, ts []int64) {
	for len(vals) > 0 {
		w.open()
		n := w.size - len(w.cur.vals)
		if n > len(vals) {
			n = len(vals)
		}
		w.cur.vals = append(w.cur.vals, vals[:n]...)
		w.cur.ts = append(w.cur.ts, ts[:n]...)
		vals, ts = vals[n:], ts[n:]
		if len(w.cur.vals) >= w.size {
			w.flush()
		}
	}
}

// flush sends the partly filled batch, if any.
func (w *chanWriter[T]) flush() {
	if w.cur != nil && len(w.cur.vals) > 0 {
		b := w.cur
		w.cur = nil
		b.kind = rt.KindData
		w.send(b)
	}
}

// flushDue sends the partial batch if its first record went in at least
// timeout before now.
func (w *chanWriter[T]) flushDue(now, timeout int64) {
	if w.cur != nil && len(w.cur.vals) > 0 && now-w.born >= timeout {
		w.flush()
	}
}

// control sends a control event after the records before it.
func (w *chanWriter[T]) control(k rt.Kind, arg int64) {
	w.flush()
	b := w.get()
	b.kind = k
	b.arg = arg
	b.ingest = w.t.ingest
	w.send(b)
}

type partitioning uint8

const (
	partForward partitioning = iota
	partRebalance
	partHash
	partBroadcast
)

func (p partitioning) String() string {
	switch p {
	case partForward:
		return "forward"
	case partRebalance:
		return "rebalance"
	case partHash:
		return "hash"
	case partBroadcast:
		return "broadcast"
	}
	return "unknown"
}

// exchange is the collector at the end of a chain whose next operator runs
// in other goroutines. It partitions records into one chanWriter per
// downstream subtask and broadcasts control events to all of them.
type exchange[T any] struct {
	w        []*chanWriter[T]
	mode     partitioning
	hash     func(T) uint64
	maxPar   uint64
	kgTarget []int32
	tgt      []int32 // the batch's targets, reused
	next     int
	self     int
	// nextMarker is the channel the next latency marker takes.
	nextMarker int
}

func (x *exchange[T]) push(vals []T, ts []int64) {
	switch x.mode {
	case partHash:
		// Targets first (the user's key function and the hash), then one
		// tight copy loop per target without calls in it.
		tg := x.tgt[:0]
		if m := x.maxPar - 1; x.maxPar&m == 0 {
			// A power of two (the default 128): the key group is the
			// hash's low bits, without a division per record.
			for _, v := range vals {
				tg = append(tg, x.kgTarget[x.hash(v)&m])
			}
		} else {
			for _, v := range vals {
				tg = append(tg, x.kgTarget[x.hash(v)%x.maxPar])
			}
		}
		x.tgt = tg
		if len(x.w) > scanTargets {
			// Many targets: one pass that scatters, rather than a scan
			// of the batch per target.
			for i, t := range tg {
				x.w[t].add(vals[i], ts[i])
			}
			return
		}
		for t, w := range x.w {
			w.addWhere(vals, ts, tg, int32(t))
		}
	case partForward:
		x.w[x.self%len(x.w)].addAll(vals, ts)
	case partRebalance:
		x.w[x.next].addAll(vals, ts)
		x.next++
		if x.next == len(x.w) {
			x.next = 0
		}
	case partBroadcast:
		for _, w := range x.w {
			w.addAll(vals, ts)
		}
	}
}

func (x *exchange[T]) controlAll(k rt.Kind, arg int64) {
	for _, w := range x.w {
		w.control(k, arg)
	}
}

func (x *exchange[T]) watermark(wm int64) { x.controlAll(rt.KindWatermark, wm) }
func (x *exchange[T]) idle()              { x.controlAll(rt.KindIdle, 0) }
func (x *exchange[T]) barrier(id uint64)  { x.controlAll(rt.KindBarrier, int64(id)) }
func (x *exchange[T]) end()               { x.controlAll(rt.KindEnd, 0) }

func (x *exchange[T]) flush() {
	for _, w := range x.w {
		w.flush()
	}
}

func (x *exchange[T]) flushDue(now, timeout int64) {
	for _, w := range x.w {
		w.flushDue(now, timeout)
	}
}

// marker sends a latency marker to one downstream subtask, taking turns:
// broadcasting it would multiply markers at every exchange.
func (x *exchange[T]) marker(ts int64) {
	if x.mode == partForward {
		x.w[x.self%len(x.w)].control(rt.KindMarker, ts)
		return
	}
	x.w[x.nextMarker%len(x.w)].control(rt.KindMarker, ts)
	x.nextMarker++
}

// fanout sends everything to several collectors (a stream consumed by
// several operators). Receivers must not modify the slices.
type fanout[T any] []collector[T]

func (f fanout[T]) push(vals []T, ts []int64) {
	for _, c := range f {
		c.push(vals, ts)
	}
}
func (f fanout[T]) watermark(wm int64) {
	for _, c := range f {
		c.watermark(wm)
	}
}
func (f fanout[T]) idle() {
	for _, c := range f {
		c.idle()
	}
}
func (f fanout[T]) barrier(id uint64) {
	for _, c := range f {
		c.barrier(id)
	}
}
func (f fanout[T]) end() {
	for _, c := range f {
		c.end()
	}
}

// discard is the output of a stream nobody consumes.
type discard[T any] struct{}

func (discard[T]) push([]T, []int64) {}
func (discard[T]) watermark(int64)   {}
func (discard[T]) idle()             {}
func (discard[T]) barrier(uint64)    {}
func (discard[T]) end()              {}

// outputOf combines the typed collectors of one output port.
func outputOf[T any](outs []any) collector[T] {
	switch len(outs) {
	case 0:
		return discard[T]{}
	case 1:
		return outs[0].(collector[T])
	}
	f := make(fanout[T], len(outs))
	for i, o := range outs {
		f[i] = o.(collector[T])
	}
	return f
}
