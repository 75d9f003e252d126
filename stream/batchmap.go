package stream

// FlatMapBatch calls f once per batch of records as it arrives (the
// records and their timestamps, parallel slices valid only during the
// call); f emits zero or more records, with EmitAt to give each the
// timestamp of the record it came from. It is for work that costs per
// call rather than per record, such as one database query for a whole
// batch of lookups. Batches never span a watermark, barrier or end of
// input, so f sees records in the order and grouping the runtime
// delivers them.
func FlatMapBatch[T, U any](s Stream[T], f func(vals []T, ts []int64, out *Emitter[U]), opts ...OpOption) Stream[U] {
	return oneInput(s, "flatmap", opts, func(bc *buildCtx, out collector[U]) collector[T] {
		return &flatMapBatchOp[T, U]{opBase: bc.base(), f: f, em: newEmitter(bc, out)}
	})
}

type flatMapBatchOp[T, U any] struct {
	opBase
	f  func([]T, []int64, *Emitter[U])
	em *Emitter[U]
}

func (o *flatMapBatchOp[T, U]) push(vals []T, ts []int64) {
	defer o.recoverUser()
	o.curT, o.pos = ts, -1
	if len(ts) > 0 {
		o.em.cur = ts[0]
	}
	o.f(vals, ts, o.em)
	o.em.flush()
	o.cnt.In.Add(int64(len(vals)))
	o.cnt.Out.Add(o.em.count())
}

func (o *flatMapBatchOp[T, U]) watermark(wm int64) { o.em.out.watermark(wm) }
func (o *flatMapBatchOp[T, U]) idle()              { o.em.out.idle() }
func (o *flatMapBatchOp[T, U]) barrier(id uint64)  { o.em.out.barrier(id) }
func (o *flatMapBatchOp[T, U]) end()               { o.em.out.end() }
