package stream

// ConnectedStreams are two streams of different types processed together
// by one operator (CoMap, CoFlatMap), which sees both inputs and one
// combined watermark (the minimum of the two).
type ConnectedStreams[A, B any] struct {
	a Stream[A]
	b Stream[B]
}

// Connect pairs two streams for a two-input operator.
func Connect[A, B any](a Stream[A], b Stream[B]) ConnectedStreams[A, B] {
	if a.env != b.env {
		a.env.setErr(errDifferentEnv)
	}
	return ConnectedStreams[A, B]{a: a, b: b}
}

// CoMap maps records of the first input with fa and of the second with fb
// into one output stream.
func CoMap[A, B, R any](c ConnectedStreams[A, B], fa func(A) R, fb func(B) R, opts ...OpOption) Stream[R] {
	return CoFlatMap(c,
		func(v A, out *Emitter[R]) { out.Emit(fa(v)) },
		func(v B, out *Emitter[R]) { out.Emit(fb(v)) }, opts...)
}

// CoFlatMap calls fa for records of the first input and fb for records of
// the second; both emit into one output stream. Within one subtask they are
// never called concurrently, but the operator's parallel subtasks call them
// concurrently: state they share must be safe for concurrent use, or the
// operator must run with Parallelism(1). Per-key state belongs in
// KeyedCoProcess.
func CoFlatMap[A, B, R any](c ConnectedStreams[A, B], fa func(A, *Emitter[R]), fb func(B, *Emitter[R]), opts ...OpOption) Stream[R] {
	n := c.a.env.newNode("coflatmap", opts)
	n.twoInputs = true
	n.newGate = func(nch, credits int, done <-chan struct{}) gateHandle {
		return newGate[A, B](nch, credits, done, false)
	}
	n.build = func(bc *buildCtx) any {
		return twoInput[A, B](&coFlatMapOp[A, B, R]{opBase: bc.base(), fa: fa, fb: fb, em: newEmitter(bc, outputOf[R](bc.outs[0]))})
	}
	connect(c.a, n, 0)
	connect(c.b, n, 1)
	return Stream[R]{env: c.a.env, n: n}
}

type coFlatMapOp[A, B, R any] struct {
	opBase
	fa func(A, *Emitter[R])
	fb func(B, *Emitter[R])
	em *Emitter[R]
}

func (o *coFlatMapOp[A, B, R]) pushA(vals []A, ts []int64) {
	defer o.recoverUser()
	o.curT = ts
	for i, v := range vals {
		o.pos = i
		o.em.cur = ts[i]
		o.fa(v, o.em)
	}
	o.done(len(vals))
}

func (o *coFlatMapOp[A, B, R]) pushB(vals []B, ts []int64) {
	defer o.recoverUser()
	o.curT = ts
	for i, v := range vals {
		o.pos = i
		o.em.cur = ts[i]
		o.fb(v, o.em)
	}
	o.done(len(vals))
}

func (o *coFlatMapOp[A, B, R]) done(n int) {
	o.pos = -1
	o.em.flush()
	o.cnt.In.Add(int64(n))
	o.cnt.Out.Add(o.em.count())
}

func (o *coFlatMapOp[A, B, R]) watermark(wm int64) { o.em.out.watermark(wm) }
func (o *coFlatMapOp[A, B, R]) idle()              { o.em.out.idle() }
func (o *coFlatMapOp[A, B, R]) barrier(id uint64)  { o.em.out.barrier(id) }
func (o *coFlatMapOp[A, B, R]) end()               { o.em.out.end() }
