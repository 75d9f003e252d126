package connect

import (
	"context"
	"fmt"
	"io"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/stream"
)

// msgDecoder turns one message into a row; ok false skips the message.
// Each split has its own.
type msgDecoder interface {
	decodeMsg(m *connector.Message) (c exec.Change, ok bool, err error)
}

// msgSource reads the messages of a byte-oriented connector and decodes
// them into rows.
type msgSource struct {
	inner        stream.Source[connector.Message]
	newDecoder   func() msgDecoder
	ignoreErrors bool
}

func (s *msgSource) Splits(ctx context.Context, parallelism int) ([]stream.Split[exec.Change], error) {
	in, err := s.inner.Splits(ctx, parallelism)
	if err != nil {
		return nil, err
	}
	out := make([]stream.Split[exec.Change], len(in))
	for i, sp := range in {
		out[i] = &msgSplit{inner: sp, dec: s.newDecoder(), ignoreErrors: s.ignoreErrors}
	}
	return out, nil
}

type msgSplit struct {
	inner        stream.Split[connector.Message]
	dec          msgDecoder
	ignoreErrors bool
	msgs         []connector.Message
}

func (s *msgSplit) ID() string { return s.inner.ID() }

func (s *msgSplit) Read(ctx context.Context, dst []exec.Change) (int, error) {
	if cap(s.msgs) < len(dst) {
		s.msgs = make([]connector.Message, len(dst))
	}
	msgs := s.msgs[:len(dst)]
	m, err := s.inner.Read(ctx, msgs)
	n := 0
	for i := range msgs[:m] {
		c, ok, derr := s.dec.decodeMsg(&msgs[i])
		if derr != nil {
			if s.ignoreErrors {
				continue
			}
			return n, fmt.Errorf("%s offset %d: %w (set 'json.ignore-parse-errors' or 'csv.ignore-parse-errors' = 'true' to skip bad records)", msgs[i].Origin, msgs[i].Offset, derr)
		}
		if ok {
			dst[n] = c
			n++
		}
	}
	clear(msgs[:m])
	if err == io.EOF && n > 0 {
		// Hand over what was decoded; the next Read reports the end.
		return n, nil
	}
	return n, err
}

func (s *msgSplit) Position() []byte      { return s.inner.Position() }
func (s *msgSplit) Seek(pos []byte) error { return s.inner.Seek(pos) }

// Buffered implements stream.Buffered when the inner split does.
func (s *msgSplit) Buffered() bool {
	b, ok := s.inner.(stream.Buffered)
	return ok && b.Buffered()
}

// Wake implements stream.Waker when the inner split does.
func (s *msgSplit) Wake() {
	if w, ok := s.inner.(stream.Waker); ok {
		w.Wake()
	}
}

// Lag implements stream.Lagger: -1 when unknown.
func (s *msgSplit) Lag() int64 {
	if l, ok := s.inner.(stream.Lagger); ok {
		return l.Lag()
	}
	return -1
}

// CommitPosition implements stream.PositionCommitter when the inner split
// does.
func (s *msgSplit) CommitPosition(ctx context.Context, pos []byte) error {
	if c, ok := s.inner.(stream.PositionCommitter); ok {
		return c.CommitPosition(ctx, pos)
	}
	return nil
}

// Close implements io.Closer.
func (s *msgSplit) Close() error {
	if c, ok := s.inner.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// msgEncoder turns rows into messages: encodeMsg appends the message's
// key (keyLen bytes, when hasKey) and then its value (the rest, when
// hasValue; a tombstone otherwise) to buf; ok false drops the row. Each
// writer has its own.
type msgEncoder interface {
	encodeMsg(buf []byte, c exec.Change) (out []byte, keyLen int, hasKey, hasValue, ok bool)
}

// msgSink encodes rows into the messages of a byte-oriented sink.
type msgSink struct {
	inner      stream.Sink[connector.Message]
	newEncoder func() msgEncoder
}

func (s *msgSink) Open(ctx context.Context, info stream.SubtaskInfo) (stream.SinkWriter[exec.Change], error) {
	w, err := s.inner.Open(ctx, info)
	if err != nil {
		return nil, err
	}
	mw := &msgWriter{inner: w, enc: s.newEncoder()}
	if tp, ok := w.(checkpoint.TwoPhaseCommitter); ok {
		return &msgTxWriter{msgWriter: mw, tp: tp}, nil
	}
	return mw, nil
}

type msgWriter struct {
	inner stream.SinkWriter[connector.Message]
	enc   msgEncoder
	msgs  []connector.Message
	spans []msgSpan
	size  int // bytes of the last batch, to size the next buffer
}

type msgSpan struct {
	start, keyEnd, end int
	hasKey, hasValue   bool
}

func (w *msgWriter) Write(ctx context.Context, recs []exec.Change) error {
	// A fresh buffer per batch: asynchronous sinks (Kafka) keep the
	// values after Write returns.
	buf := make([]byte, 0, max(w.size+w.size/8, 4096))
	w.spans = w.spans[:0]
	for _, c := range recs {
		start := len(buf)
		out, keyLen, hasKey, hasValue, ok := w.enc.encodeMsg(buf, c)
		if !ok {
			continue
		}
		buf = out
		w.spans = append(w.spans, msgSpan{start: start, keyEnd: start + keyLen, end: len(buf), hasKey: hasKey, hasValue: hasValue})
	}
	w.size = len(buf)
	w.msgs = w.msgs[:0]
	for _, sp := range w.spans {
		var m connector.Message
		if sp.hasKey {
			m.Key = buf[sp.start:sp.keyEnd:sp.keyEnd]
		}
		if sp.hasValue {
			m.Value = buf[sp.keyEnd:sp.end:sp.end]
		}
		w.msgs = append(w.msgs, m)
	}
	if len(w.msgs) == 0 {
		return nil
	}
	err := w.inner.Write(ctx, w.msgs)
	clear(w.msgs)
	return err
}

func (w *msgWriter) Close(ctx context.Context) error { return w.inner.Close(ctx) }

// OnBarrier implements stream.BarrierWriter when the inner writer does.
func (w *msgWriter) OnBarrier(ctx context.Context, id uint64) error {
	if b, ok := w.inner.(stream.BarrierWriter); ok {
		return b.OnBarrier(ctx, id)
	}
	return nil
}

// OnWatermark implements stream.WatermarkWriter when the inner writer
// does.
func (w *msgWriter) OnWatermark(ctx context.Context, wm int64) error {
	if b, ok := w.inner.(stream.WatermarkWriter); ok {
		return b.OnWatermark(ctx, wm)
	}
	return nil
}

// msgTxWriter is a msgWriter over a two-phase-commit writer.
type msgTxWriter struct {
	*msgWriter
	tp checkpoint.TwoPhaseCommitter
}

func (w *msgTxWriter) PreCommit(ctx context.Context, id checkpoint.ID) (checkpoint.Transaction, error) {
	return w.tp.PreCommit(ctx, id)
}
func (w *msgTxWriter) Commit(ctx context.Context, tx checkpoint.Transaction) error {
	return w.tp.Commit(ctx, tx)
}
func (w *msgTxWriter) Abort(ctx context.Context, tx checkpoint.Transaction) error {
	return w.tp.Abort(ctx, tx)
}
func (w *msgTxWriter) Recover(ctx context.Context, txs []checkpoint.Transaction) error {
	return w.tp.Recover(ctx, txs)
}
