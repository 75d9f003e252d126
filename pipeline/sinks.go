package pipeline

import (
	"context"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/stream"
)

// encodingSink adapts a byte sink to rows: each subtask encodes its
// batches as JSON (one fresh buffer per batch, so the byte sink may keep
// the messages' bytes) and passes the byte sink's optional capabilities
// (barriers, watermarks) through.
type encodingSink struct {
	inner  stream.Sink[connector.Message]
	enc    *row.JSONEncoder
	keyIdx int // field used as the message key, or -1
}

func (s *encodingSink) Open(ctx context.Context, info stream.SubtaskInfo) (stream.SinkWriter[row.Row], error) {
	w, err := s.inner.Open(ctx, info)
	if err != nil {
		return nil, err
	}
	return &encodingWriter{s: s, w: w, est: 128}, nil
}

type encodingWriter struct {
	s    *encodingSink
	w    stream.SinkWriter[connector.Message]
	msgs []connector.Message
	ends []int
	est  int // bytes per record, running estimate
}

func (e *encodingWriter) Write(ctx context.Context, rows []row.Row) error {
	buf := make([]byte, 0, len(rows)*e.est+64)
	e.ends = e.ends[:0]
	for i := range rows {
		buf = e.s.enc.Append(buf, rows[i])
		e.ends = append(e.ends, len(buf))
	}
	if len(rows) > 0 {
		e.est = len(buf)/len(rows) + 8
	}
	if cap(e.msgs) < len(rows) {
		e.msgs = make([]connector.Message, len(rows))
	}
	msgs := e.msgs[:len(rows)]
	start := 0
	for i, end := range e.ends {
		msgs[i] = connector.Message{Value: buf[start:end:end], Offset: -1}
		if e.s.keyIdx >= 0 {
			if k := rows[i].Get(e.s.keyIdx); !k.IsNull() {
				msgs[i].Key = []byte(k.String())
			}
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
