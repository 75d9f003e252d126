package connect

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/stream"
)

// Print is the 'print' (and 'stdout') sink: one JSON object per line
// (AppendJSON), starting with "op" when the result is updating, after an
// optional "identifier> " prefix ('print-identifier').
type Print struct {
	mu     sync.Mutex
	w      io.Writer
	cols   []Column
	jo     JSONOptions
	prefix string
}

func openPrint(t SinkTable, env Env) (stream.Sink[exec.Change], error) {
	if err := noMetadata(t.Columns); err != nil {
		return nil, err
	}
	ts, err := parseTimestampFormat(t.Options, "json.timestamp-format")
	if err != nil {
		return nil, err
	}
	stderr, err := optBool(t.Options, "standard-error", false)
	if err != nil {
		return nil, err
	}
	w := env.Stdout
	if w == nil {
		w = os.Stdout
	}
	if stderr {
		w = env.Stderr
		if w == nil {
			w = os.Stderr
		}
	}
	p := &Print{w: w, cols: t.Columns, jo: JSONOptions{Timestamps: ts, Op: t.Updating}}
	if id := t.Options["print-identifier"]; id != "" {
		p.prefix = id + "> "
	}
	return p, nil
}

// Open implements stream.Sink.
func (p *Print) Open(context.Context, stream.SubtaskInfo) (stream.SinkWriter[exec.Change], error) {
	return &printWriter{p: p}, nil
}

type printWriter struct {
	p   *Print
	buf []byte
}

func (w *printWriter) Write(_ context.Context, recs []exec.Change) error {
	w.buf = w.buf[:0]
	for _, c := range recs {
		w.buf = append(w.buf, w.p.prefix...)
		w.buf = AppendChangeJSON(w.buf, w.p.cols, c, w.p.jo)
		w.buf = append(w.buf, '\n')
	}
	w.p.mu.Lock()
	_, err := w.p.w.Write(w.buf)
	w.p.mu.Unlock()
	if err != nil {
		return fmt.Errorf("print sink: %w", err)
	}
	return nil
}

func (w *printWriter) Close(context.Context) error { return nil }

// Blackhole is the 'blackhole' sink: it discards rows and counts them.
type Blackhole struct {
	n atomic.Int64
}

// Rows returns the number of rows written so far.
func (b *Blackhole) Rows() int64 { return b.n.Load() }

// Open implements stream.Sink.
func (b *Blackhole) Open(context.Context, stream.SubtaskInfo) (stream.SinkWriter[exec.Change], error) {
	return blackholeWriter{b}, nil
}

type blackholeWriter struct{ b *Blackhole }

func (w blackholeWriter) Write(_ context.Context, recs []exec.Change) error {
	w.b.n.Add(int64(len(recs)))
	return nil
}

func (blackholeWriter) Close(context.Context) error { return nil }
