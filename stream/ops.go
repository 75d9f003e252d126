package stream

// oneInput adds an operator with one input of type In and a main output of
// type Out; mk builds its subtasks. Stateless operators inherit their
// input's parallelism and are chained to it.
func oneInput[In, Out any](s Stream[In], kind string, opts []OpOption, mk func(bc *buildCtx, out collector[Out]) collector[In]) Stream[Out] {
	n := s.env.newNode(kind, opts)
	n.inherit = !n.setPar
	n.build = func(bc *buildCtx) any { return mk(bc, outputOf[Out](bc.outs[0])) }
	n.newGate = oneGate[In]
	connect(s, n, 0)
	return Stream[Out]{env: s.env, n: n}
}

// Map applies f to every record.
func Map[T, U any](s Stream[T], f func(T) U, opts ...OpOption) Stream[U] {
	return oneInput(s, "map", opts, func(bc *buildCtx, out collector[U]) collector[T] {
		return &mapOp[T, U]{opBase: bc.base(), f: f, out: out}
	})
}

type mapOp[T, U any] struct {
	opBase
	f   func(T) U
	out collector[U]
	buf []U
}

func (o *mapOp[T, U]) push(vals []T, ts []int64) {
	defer o.recoverUser()
	o.curT = ts
	buf := o.buf[:0]
	for i, v := range vals {
		o.pos = i
		buf = append(buf, o.f(v))
	}
	o.pos = -1
	o.buf = buf
	o.cnt.In.Add(int64(len(vals)))
	o.cnt.Out.Add(int64(len(buf)))
	o.out.push(buf, ts)
	clear(buf)
}

func (o *mapOp[T, U]) watermark(wm int64) { o.out.watermark(wm) }
func (o *mapOp[T, U]) idle()              { o.out.idle() }
func (o *mapOp[T, U]) barrier(id uint64)  { o.out.barrier(id) }
func (o *mapOp[T, U]) end()               { o.out.end() }

// Filter keeps the records for which keep returns true.
func Filter[T any](s Stream[T], keep func(T) bool, opts ...OpOption) Stream[T] {
	return oneInput(s, "filter", opts, func(bc *buildCtx, out collector[T]) collector[T] {
		return &filterOp[T]{opBase: bc.base(), f: keep, out: out}
	})
}

type filterOp[T any] struct {
	opBase
	f   func(T) bool
	out collector[T]
	buf []T
	ts  []int64
}

func (o *filterOp[T]) push(vals []T, ts []int64) {
	defer o.recoverUser()
	o.curT = ts
	buf, bts := o.buf[:0], o.ts[:0]
	for i, v := range vals {
		o.pos = i
		if o.f(v) {
			buf = append(buf, v)
			bts = append(bts, ts[i])
		}
	}
	o.pos = -1
	o.buf, o.ts = buf, bts
	o.cnt.In.Add(int64(len(vals)))
	o.cnt.Out.Add(int64(len(buf)))
	if len(buf) > 0 {
		o.out.push(buf, bts)
		clear(buf)
	}
}

func (o *filterOp[T]) watermark(wm int64) { o.out.watermark(wm) }
func (o *filterOp[T]) idle()              { o.out.idle() }
func (o *filterOp[T]) barrier(id uint64)  { o.out.barrier(id) }
func (o *filterOp[T]) end()               { o.out.end() }

// Emitter receives the output records of FlatMap and Process functions.
// Records emitted carry the timestamp of the input record unless EmitAt
// gives one. An Emitter is only valid during the call it was passed to.
type Emitter[T any] struct {
	vals []T
	ts   []int64
	cur  int64
	size int
	n    int64
	out  collector[T]
}

// count returns the records emitted since the last call.
func (e *Emitter[T]) count() int64 {
	n := e.n
	e.n = 0
	return n
}

// Emit outputs v with the current record's timestamp.
func (e *Emitter[T]) Emit(v T) { e.EmitAt(v, e.cur) }

// EmitAt outputs v with event time ts (ms).
func (e *Emitter[T]) EmitAt(v T, ts int64) {
	e.vals = append(e.vals, v)
	e.ts = append(e.ts, ts)
	e.n++
	if len(e.vals) >= e.size {
		e.flush()
	}
}

// Timestamp returns the event time of the record being processed.
func (e *Emitter[T]) Timestamp() int64 { return e.cur }

func (e *Emitter[T]) flush() int {
	n := len(e.vals)
	if n > 0 {
		e.out.push(e.vals, e.ts)
		clear(e.vals)
		e.vals, e.ts = e.vals[:0], e.ts[:0]
	}
	return n
}

func newEmitter[T any](bc *buildCtx, out collector[T]) *Emitter[T] {
	return &Emitter[T]{out: out, size: bc.env.cfg.batchSize}
}

// FlatMap calls f for every record; f emits zero or more records.
func FlatMap[T, U any](s Stream[T], f func(v T, out *Emitter[U]), opts ...OpOption) Stream[U] {
	return oneInput(s, "flatmap", opts, func(bc *buildCtx, out collector[U]) collector[T] {
		return &flatMapOp[T, U]{opBase: bc.base(), f: f, em: newEmitter(bc, out)}
	})
}

type flatMapOp[T, U any] struct {
	opBase
	f  func(T, *Emitter[U])
	em *Emitter[U]
}

func (o *flatMapOp[T, U]) push(vals []T, ts []int64) {
	defer o.recoverUser()
	o.curT = ts
	for i, v := range vals {
		o.pos = i
		o.em.cur = ts[i]
		o.f(v, o.em)
	}
	o.pos = -1
	o.em.flush()
	o.cnt.In.Add(int64(len(vals)))
	o.cnt.Out.Add(o.em.count())
}

func (o *flatMapOp[T, U]) watermark(wm int64) { o.em.out.watermark(wm) }
func (o *flatMapOp[T, U]) idle()              { o.em.out.idle() }
func (o *flatMapOp[T, U]) barrier(id uint64)  { o.em.out.barrier(id) }
func (o *flatMapOp[T, U]) end()               { o.em.out.end() }

// Union merges streams of one type. The merged stream's watermark is the
// minimum of its inputs'.
func Union[T any](first Stream[T], more ...Stream[T]) Stream[T] {
	n := first.env.newNode("union", nil)
	n.newGate = oneGate[T]
	n.build = func(bc *buildCtx) any {
		return &passOp[T]{opBase: bc.base(), out: outputOf[T](bc.outs[0])}
	}
	connect(first, n, 0)
	for _, s := range more {
		if s.env != first.env {
			first.env.setErr(errDifferentEnv)
		}
		connect(s, n, 0)
	}
	return Stream[T]{env: first.env, n: n}
}

type passOp[T any] struct {
	opBase
	out collector[T]
}

func (o *passOp[T]) push(vals []T, ts []int64) {
	o.cnt.In.Add(int64(len(vals)))
	o.cnt.Out.Add(int64(len(vals)))
	o.out.push(vals, ts)
}
func (o *passOp[T]) watermark(wm int64) { o.out.watermark(wm) }
func (o *passOp[T]) idle()              { o.out.idle() }
func (o *passOp[T]) barrier(id uint64)  { o.out.barrier(id) }
func (o *passOp[T]) end()               { o.out.end() }

// FlatMapSide is FlatMap with a side output: f emits main records to out
// and others to side, which are read with SideOutput(result, tag). Use it
// to split a stream, for example into valid and malformed records.
func FlatMapSide[T, U, S any](s Stream[T], tag OutputTag[S], f func(v T, out *Emitter[U], side *Emitter[S]), opts ...OpOption) Stream[U] {
	sidePort := -1
	res := oneInput(s, "flatmap", opts, func(bc *buildCtx, out collector[U]) collector[T] {
		return &flatMapSideOp[T, U, S]{opBase: bc.base(), f: f, em: newEmitter(bc, out), side: newEmitter(bc, outputOf[S](bc.outs[sidePort]))}
	})
	sidePort = addSidePort(res.n, tag.t)
	return res
}

type flatMapSideOp[T, U, S any] struct {
	opBase
	f    func(T, *Emitter[U], *Emitter[S])
	em   *Emitter[U]
	side *Emitter[S]
}

func (o *flatMapSideOp[T, U, S]) push(vals []T, ts []int64) {
	defer o.recoverUser()
	o.curT = ts
	for i, v := range vals {
		o.pos = i
		o.em.cur, o.side.cur = ts[i], ts[i]
		o.f(v, o.em, o.side)
	}
	o.pos = -1
	o.em.flush()
	o.side.flush()
	o.cnt.In.Add(int64(len(vals)))
	o.cnt.Out.Add(o.em.count() + o.side.count())
}

func (o *flatMapSideOp[T, U, S]) watermark(wm int64) {
	o.em.out.watermark(wm)
	o.side.out.watermark(wm)
}

func (o *flatMapSideOp[T, U, S]) idle() {
	o.em.out.idle()
	o.side.out.idle()
}

func (o *flatMapSideOp[T, U, S]) barrier(id uint64) {
	o.em.out.barrier(id)
	o.side.out.barrier(id)
}

func (o *flatMapSideOp[T, U, S]) end() {
	o.em.out.end()
	o.side.out.end()
}
