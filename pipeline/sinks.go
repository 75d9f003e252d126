package pipeline

import (
	"context"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/stream"
)

// encodingSink adapts a byte sink to rows: each subtask encodes its
// batches in the sink's format (one fresh buffer per batch, so the byte
// sink may keep the messages' bytes) and passes the byte sink's optional
// capabilities (barriers, watermarks) through. A row that cannot be
// encoded (an avro schema with no place for a value) is a bad record.
type encodingSink struct {
	inner  stream.Sink[connector.Message]
	enc    rowEncoder
	keyIdx int // field used as the message key, or -1
	// keyTmpl, when set, renders each message's key (its destination:
	// an MQTT topic, a NATS subject) from the row's fields.
	keyTmpl *keyTemplate
	name    string
	schema  *row.Schema
	dl      *deadLetters
}

func (s *encodingSink) Open(ctx context.Context, info stream.SubtaskInfo) (stream.SinkWriter[row.Row], error) {
	w, err := s.inner.Open(ctx, info)
	if err != nil {
		return nil, err
	}
	ew := &encodingWriter{s: s, w: w, est: 128}
	if c, ok := w.(checkpoint.TwoPhaseCommitter); ok {
		return &encodingWriter2PC{encodingWriter: ew, c: c}, nil
	}
	if a, ok := w.(stream.AsyncBarrierWriter); ok {
		return &encodingWriterAsync{encodingWriter: ew, a: a}, nil
	}
	return ew, nil
}

type encodingWriter struct {
	s    *encodingSink
	w    stream.SinkWriter[connector.Message]
	msgs []connector.Message
	ends []int
	rows []int    // the row of each message
	keys [][]byte // the destination of each message (keyTmpl)
	est  int      // bytes per record, running estimate
}

func (e *encodingWriter) Write(ctx context.Context, rows []row.Row) error {
	buf := make([]byte, 0, len(rows)*e.est+64)
	e.ends = e.ends[:0]
	e.rows = e.rows[:0]
	e.keys = e.keys[:0]
	for i := range rows {
		var err error
		var key []byte
		if e.s.keyTmpl != nil {
			// The destination (topic, subject) from the fields: one
			// that the system would refuse is a failed record.
			key = e.s.keyTmpl.render(nil, rows[i])
			if err = e.s.keyTmpl.check(key); err != nil {
				r := rows[i]
				if ferr := e.s.dl.report(ctx, failure{Stage: e.s.name + ".destination", Origin: e.s.name, Offset: -1, Err: err, Row: &r, Schema: e.s.schema}); ferr != nil {
					return ferr
				}
				continue
			}
		}
		if buf, err = e.s.enc.Append(buf, rows[i]); err != nil {
			r := rows[i]
			if ferr := e.s.dl.report(ctx, failure{Stage: e.s.name + ".encode", Origin: e.s.name, Offset: -1, Err: err, Row: &r, Schema: e.s.schema}); ferr != nil {
				return ferr
			}
			continue
		}
		if e.s.keyTmpl != nil {
			e.keys = append(e.keys, key)
		}
		e.ends = append(e.ends, len(buf))
		e.rows = append(e.rows, i)
	}
	if len(rows) > 0 {
		e.est = len(buf)/len(rows) + 8
	}
	if cap(e.msgs) < len(e.ends) {
		e.msgs = make([]connector.Message, len(e.ends))
	}
	msgs := e.msgs[:len(e.ends)]
	start := 0
	for i, end := range e.ends {
		msgs[i] = connector.Message{Value: buf[start:end:end], Offset: -1}
		if e.s.keyIdx >= 0 {
			if k := rows[e.rows[i]].Get(e.s.keyIdx); !k.IsNull() {
				msgs[i].Key = []byte(k.String())
			}
		}
		if e.s.keyTmpl != nil {
			msgs[i].Key = e.keys[i]
		}
		start = end
	}
	err := e.w.Write(ctx, msgs)
	clear(msgs)
	return err
}

func (e *encodingWriter) Close(ctx context.Context) error { return e.w.Close(ctx) }

// OnBarrier passes checkpoint barriers to a byte sink that wants them
// (two-phase-commit sinks pre-commit there).
func (e *encodingWriter) OnBarrier(ctx context.Context, id uint64) error {
	if b, ok := e.w.(stream.BarrierWriter); ok {
		return b.OnBarrier(ctx, id)
	}
	return nil
}

// OnWatermark passes watermarks to a byte sink that wants them.
func (e *encodingWriter) OnWatermark(ctx context.Context, wm int64) error {
	if b, ok := e.w.(stream.WatermarkWriter); ok {
		return b.OnWatermark(ctx, wm)
	}
	return nil
}

// rejectedRow is a row a row sink refused (a constraint violation, a
// value that does not fit its column).
type rejectedRow struct {
	row   row.Row
	field string
	err   error
}

// rejectingSink routes the rows a row sink rejects to the dead letters:
// under tolerance all they are dead-lettered and the job goes on; under
// none the job fails. Other errors fail the job as usual.
type rejectingSink struct {
	inner    stream.Sink[row.Row]
	schema   *row.Schema
	name     string
	dl       *deadLetters
	rejected func(error) ([]rejectedRow, bool)
}

func (s *rejectingSink) Open(ctx context.Context, info stream.SubtaskInfo) (stream.SinkWriter[row.Row], error) {
	w, err := s.inner.Open(ctx, info)
	if err != nil {
		return nil, err
	}
	rw := &rejectingWriter{s: s, w: w}
	if c, ok := w.(checkpoint.TwoPhaseCommitter); ok {
		return &rejectingWriter2PC{rejectingWriter: rw, c: c}, nil
	}
	return rw, nil
}

type rejectingWriter struct {
	s *rejectingSink
	w stream.SinkWriter[row.Row]
}

func (r *rejectingWriter) handle(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	rows, ok := r.s.rejected(err)
	if !ok {
		return err
	}
	for _, x := range rows {
		rr := x.row
		stage := "sink " + r.s.name
		if x.field != "" {
			stage += " field " + x.field
		}
		if ferr := r.s.dl.report(ctx, failure{Stage: stage, Origin: r.s.name, Offset: -1, Err: x.err, Row: &rr, Schema: r.s.schema}); ferr != nil {
			return ferr
		}
	}
	return nil
}

func (r *rejectingWriter) Write(ctx context.Context, rows []row.Row) error {
	return r.handle(ctx, r.w.Write(ctx, rows))
}

func (r *rejectingWriter) Close(ctx context.Context) error { return r.handle(ctx, r.w.Close(ctx)) }

// OnBarrier passes barriers through (the row sinks flush there).
func (r *rejectingWriter) OnBarrier(ctx context.Context, id uint64) error {
	if b, ok := r.w.(stream.BarrierWriter); ok {
		return r.handle(ctx, b.OnBarrier(ctx, id))
	}
	return nil
}

// OnWatermark passes watermarks through.
func (r *rejectingWriter) OnWatermark(ctx context.Context, wm int64) error {
	if b, ok := r.w.(stream.WatermarkWriter); ok {
		return b.OnWatermark(ctx, wm)
	}
	return nil
}

// The adapters are two-phase-commit sinks (or answer barriers
// asynchronously) exactly when the sink they wrap is (does): the runtime
// checks for checkpoint.TwoPhaseCommitter and stream.AsyncBarrierWriter
// on the writer it gets, so a capability must not be claimed for a sink
// without it.

type encodingWriter2PC struct {
	*encodingWriter
	c checkpoint.TwoPhaseCommitter
}

func (e *encodingWriter2PC) PreCommit(ctx context.Context, id checkpoint.ID) (checkpoint.Transaction, error) {
	return e.c.PreCommit(ctx, id)
}

func (e *encodingWriter2PC) Commit(ctx context.Context, tx checkpoint.Transaction) error {
	return e.c.Commit(ctx, tx)
}

func (e *encodingWriter2PC) Abort(ctx context.Context, tx checkpoint.Transaction) error {
	return e.c.Abort(ctx, tx)
}

func (e *encodingWriter2PC) Recover(ctx context.Context, committed []checkpoint.Transaction) error {
	return e.c.Recover(ctx, committed)
}

// encodingWriterAsync is the adapter of a byte sink that answers
// checkpoint barriers asynchronously (the at-least-once Kafka sink): the
// runtime then goes on writing behind a barrier while the byte sink's
// records before it are acknowledged. Without it the runtime would call
// OnBarrier, which waits for them (a flush) and stops the subtask for a
// round trip to the broker at every checkpoint.
type encodingWriterAsync struct {
	*encodingWriter
	a stream.AsyncBarrierWriter
}

func (e *encodingWriterAsync) OnBarrierAsync(ctx context.Context, id uint64, done func(error)) {
	e.a.OnBarrierAsync(ctx, id, done)
}

type rejectingWriter2PC struct {
	*rejectingWriter
	c checkpoint.TwoPhaseCommitter
}

func (r *rejectingWriter2PC) PreCommit(ctx context.Context, id checkpoint.ID) (checkpoint.Transaction, error) {
	tx, err := r.c.PreCommit(ctx, id)
	return tx, r.handle(ctx, err)
}

func (r *rejectingWriter2PC) Commit(ctx context.Context, tx checkpoint.Transaction) error {
	return r.c.Commit(ctx, tx)
}

func (r *rejectingWriter2PC) Abort(ctx context.Context, tx checkpoint.Transaction) error {
	return r.c.Abort(ctx, tx)
}

func (r *rejectingWriter2PC) Recover(ctx context.Context, committed []checkpoint.Transaction) error {
	return r.c.Recover(ctx, committed)
}
