package pipeline

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/stream"
)

// deadLetters receives records that could not be processed. Under
// tolerance none the first one fails the job; under all each is written to
// the dead-letter sink (if any) as a JSON line and the job goes on. Every
// one is counted. It is safe for concurrent use by all subtasks.
type deadLetters struct {
	tolerance string
	logger    *slog.Logger
	count     atomic.Int64

	mu     sync.Mutex
	sink   stream.Sink[connector.Message]
	w      stream.SinkWriter[connector.Message]
	fatal  error
	warned bool
	buf    []byte
	// flushTimer publishes what was written (a barrier to the writer:
	// the file sink commits its part) shortly after the first dead letter
	// not yet published, so that a long-running job's dead letters do not
	// stay invisible until the end.
	flushTimer *time.Timer
}

// deadLetterFlushDelay is how long a dead letter may wait to be published.
const deadLetterFlushDelay = time.Second

// failure describes one bad record.
type failure struct {
	Stage  string // decode, event_time, steps[2].filter, ...
	Origin string
	Offset int64
	Err    error
	Raw    []byte // the input bytes, when known
	Row    *row.Row
	Schema *row.Schema
	// Binary: Raw is binary (avro), written base64-encoded as
	// record_base64.
	Binary bool
	// Fatal: the failure is not the record's (a schema registry that
	// cannot be reached); it fails the job under any tolerance.
	Fatal bool
}

// report handles one bad record. It returns a non-nil error when the job
// must fail (tolerance none, or the dead-letter sink failed).
func (d *deadLetters) report(ctx context.Context, f failure) error {
	if f.Fatal {
		err := fmt.Errorf("%s: %s offset %d: %w", f.Stage, f.Origin, f.Offset, f.Err)
		d.mu.Lock()
		if d.fatal == nil {
			d.fatal = err
		}
		d.mu.Unlock()
		return err
	}
	d.count.Add(1)
	if d.tolerance != ToleranceAll {
		err := fmt.Errorf("%w: %s: %s offset %d: %w", ErrTolerance, f.Stage, f.Origin, f.Offset, f.Err)
		d.mu.Lock()
		if d.fatal == nil {
			d.fatal = err
		}
		d.mu.Unlock()
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fatal != nil {
		return d.fatal
	}
	if d.sink == nil {
		if !d.warned {
			d.warned = true
			d.logger.Warn("pipeline: dropping a record that failed (no dead_letter sink configured; further ones are only counted)",
				"stage", f.Stage, "origin", f.Origin, "offset", f.Offset, "error", f.Err)
		}
		return nil
	}
	if d.w == nil {
		w, err := d.sink.Open(ctx, stream.SubtaskInfo{Operator: "dead-letter", Index: 0, Parallelism: 1})
		if err != nil {
			d.fatal = fmt.Errorf("dead-letter sink: %w", err)
			return d.fatal
		}
		d.w = w
	}
	b := d.buf[:0]
	b = append(b, `{"error":`...)
	b = row.AppendQuoted(b, f.Err.Error())
	b = append(b, `,"stage":`...)
	b = row.AppendQuoted(b, f.Stage)
	b = append(b, `,"origin":`...)
	b = row.AppendQuoted(b, f.Origin)
	b = append(b, `,"offset":`...)
	b = fmt.Appendf(b, "%d", f.Offset)
	b = append(b, `,"time":`...)
	b = row.AppendQuoted(b, time.Now().UTC().Format(time.RFC3339Nano))
	switch {
	case f.Raw != nil && f.Binary:
		b = append(b, `,"record_base64":"`...)
		b = base64.StdEncoding.AppendEncode(b, f.Raw)
		b = append(b, '"')
	case f.Raw != nil:
		b = append(b, `,"record":`...)
		b = row.AppendQuoted(b, string(f.Raw))
	case f.Row != nil && f.Schema != nil:
		b = append(b, `,"record":`...)
		b = row.AppendQuoted(b, string(row.NewJSONEncoder(f.Schema).Append(nil, *f.Row)))
	}
	b = append(b, '}')
	d.buf = b
	msg := connector.Message{Value: append([]byte(nil), b...), Origin: f.Origin, Offset: f.Offset}
	if err := d.w.Write(ctx, []connector.Message{msg}); err != nil {
		d.fatal = fmt.Errorf("dead-letter sink: %w", err)
		return d.fatal
	}
	if d.flushTimer == nil {
		d.flushTimer = time.AfterFunc(deadLetterFlushDelay, d.flush)
	}
	return nil
}

// flush publishes the dead letters written so far.
func (d *deadLetters) flush() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.flushTimer = nil
	if d.w == nil || d.fatal != nil {
		return
	}
	if bw, ok := d.w.(stream.BarrierWriter); ok {
		if err := bw.OnBarrier(context.Background(), 0); err != nil {
			d.fatal = fmt.Errorf("dead-letter sink: %w", err)
		}
	}
}

// close closes the dead-letter sink's writer.
func (d *deadLetters) close(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.flushTimer != nil {
		d.flushTimer.Stop()
		d.flushTimer = nil
	}
	if d.w == nil {
		return nil
	}
	err := d.w.Close(ctx)
	d.w = nil
	return err
}

func (d *deadLetters) fatalErr() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.fatal
}
