package stdout

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/stream"
)

// Sink writes message values as lines to W.
type Sink struct {
	mu sync.Mutex
	w  io.Writer
}

// New returns a sink writing to w; nil means os.Stdout.
func New(w io.Writer) *Sink {
	if w == nil {
		w = os.Stdout
	}
	return &Sink{w: w}
}

// Open implements stream.Sink.
func (s *Sink) Open(context.Context, stream.SubtaskInfo) (stream.SinkWriter[connector.Message], error) {
	return &writer{s: s}, nil
}

type writer struct {
	s   *Sink
	buf []byte
}

// Write implements stream.SinkWriter.
func (w *writer) Write(_ context.Context, msgs []connector.Message) error {
	w.buf = w.buf[:0]
	for i := range msgs {
		w.buf = append(w.buf, msgs[i].Value...)
		w.buf = append(w.buf, '\n')
	}
	w.s.mu.Lock()
	_, err := w.s.w.Write(w.buf)
	w.s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("stdout sink: %w", err)
	}
	return nil
}

// Close implements stream.SinkWriter.
func (w *writer) Close(context.Context) error { return nil }
