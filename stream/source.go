package stream

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sluicehq/sluice/checkpoint"
	rt "github.com/sluicehq/sluice/internal/runtime"
)

// Source is a parallel source of records: it is split into partitions
// (splits) that are read in parallel, one subtask per split.
// Implementations: the embedded log, Kafka, files, HTTP, generators.
type Source[T any] interface {
	// Splits returns the source's splits. parallelism is the job's default
	// parallelism, a hint for sources that can divide their input freely.
	// It is called once, when the job starts.
	Splits(ctx context.Context, parallelism int) ([]Split[T], error)
}

// Split is one partition of a source, read by one goroutine.
//
// A bounded split returns io.EOF once it has returned all its records. An
// unbounded split runs until ctx is cancelled; when it has no data it
// should return (0, nil) every 100 ms or so rather than block for long, so
// that the runtime can mark it idle and service timers.
type Split[T any] interface {
	// ID names the split in errors and metrics (for example "topic/3").
	ID() string
	// Read fills dst (up to len(dst) records) and returns how many it
	// filled. It returns io.EOF, with n == 0, at the end of a bounded
	// split.
	Read(ctx context.Context, dst []T) (n int, err error)
	// Position returns an opaque position after the last record returned
	// by Read (for example an offset), saved in checkpoints.
	Position() []byte
	// Seek restores a position returned by Position, before the first Read.
	Seek(pos []byte) error
}

// Lagger is an optional capability of a Split: how far it is behind the
// end of its partition, for metrics (per source partition lag).
//
// Lag returns the number of records between the split's position and the
// end of its input as last known to the split (a Kafka partition's high
// watermark or last stable offset, a log partition's end offset), or -1
// when it does not know. It is called from metrics goroutines
// concurrently with Read and must be cheap and safe for that: no I/O, an
// atomic read or two.
type Lagger interface {
	Lag() int64
}

// WatermarkStrategy says how a source assigns event time and generates
// watermarks. The zero value means no event time: records are stamped with
// the time they were read (ingestion time) and the only watermark is the
// final one at the end of a bounded source.
type WatermarkStrategy[T any] struct {
	// Timestamp returns a record's event time in ms since the Unix epoch.
	Timestamp func(T) int64
	// MaxOutOfOrderness bounds how far behind the highest timestamp seen
	// on a split a record may arrive and still be on time. The split's
	// watermark is maxTimestamp - MaxOutOfOrderness - 1ms.
	MaxOutOfOrderness time.Duration
	// IdleTimeout marks a split idle when it returned no records for this
	// long, so that it does not hold back the watermark of the operators
	// downstream. Zero means never idle.
	IdleTimeout time.Duration
}

// BoundedOutOfOrderness returns the usual event-time strategy: timestamps
// from ts, watermarks trailing the highest timestamp by maxDelay.
func BoundedOutOfOrderness[T any](ts func(T) int64, maxDelay time.Duration) WatermarkStrategy[T] {
	return WatermarkStrategy[T]{Timestamp: ts, MaxOutOfOrderness: maxDelay}
}

// WithIdleTimeout returns a copy of w with IdleTimeout d.
func (w WatermarkStrategy[T]) WithIdleTimeout(d time.Duration) WatermarkStrategy[T] {
	w.IdleTimeout = d
	return w
}

// FromSource adds a source to the dataflow. It runs one subtask per split.
func FromSource[T any](env *Env, name string, src Source[T], wm WatermarkStrategy[T]) Stream[T] {
	n := env.newNode("source", []OpOption{Name(name)})
	n.source = true
	var splits []Split[T]
	n.resolve = func(ctx context.Context, p int) (int, error) {
		var err error
		splits, err = src.Splits(ctx, p)
		if err != nil {
			return 0, err
		}
		if len(splits) == 0 {
			return 0, errors.New("no splits")
		}
		return len(splits), nil
	}
	n.build = func(bc *buildCtx) any {
		r := &sourceRunner[T]{opBase: bc.base(), split: splits[bc.sub], wm: wm, out: outputOf[T](bc.outs[0]), size: env.cfg.batchSize}
		bc.setSplit(r.split.ID(), r.split)
		return r
	}
	return Stream[T]{env: env, n: n}
}

type sourceRunner[T any] struct {
	opBase
	split Split[T]
	wm    WatermarkStrategy[T]
	out   collector[T]
	size  int
}

func (s *sourceRunner[T]) position() string {
	return fmt.Sprintf("split %s position %x", s.split.ID(), s.split.Position())
}

func (s *sourceRunner[T]) run(t *task) {
	defer func() {
		if p := recover(); p != nil {
			if _, ok := p.(abortSignal); ok {
				panic(p)
			}
			if _, ok := p.(*OperatorError); ok {
				panic(p)
			}
			panic(&OperatorError{Operator: s.name, Subtask: s.sub, Position: s.position(), Err: fmt.Errorf("%w: %v", ErrUserPanic, p)})
		}
	}()
	vals := make([]T, s.size)
	ts := make([]int64, s.size)
	bound := s.wm.MaxOutOfOrderness.Milliseconds()
	idleAfter := s.wm.IdleTimeout
	maxTs := rt.MinWatermark
	lastWm := rt.MinWatermark
	lastData := time.Now()
	idle := false
	var lastBarrier uint64
	buffered, _ := s.split.(Buffered)
	lastMarker := t.tick()
	chk := t.job.chk
	var task checkpoint.TaskID
	if chk != nil {
		task = checkpoint.TaskID{Operator: opKey(s.node), Subtask: s.sub}
		if pos, ok := chk.srcPos[posKey(task.Operator, s.split.ID())]; ok {
			if err := s.split.Seek(pos); err != nil {
				if c, ok := s.split.(io.Closer); ok {
					_ = c.Close()
				}
				panic(&OperatorError{Operator: s.name, Subtask: s.sub, Err: fmt.Errorf("restore split %s: %w", s.split.ID(), err)})
			}
		}
	}
	// Registered after Seek: no position is committed before it.
	defer chk.registerSplit(opKey(s.node), s.name, s.sub, s.split)()
	for {
		if t.ctx.Err() != nil {
			panic(errAborted)
		}
		began := t.stats.Now()
		n, err := s.split.Read(t.ctx, vals)
		// A read that brought nothing was waiting for data: idle time,
		// not busy (a source blocked in Read with nothing to give is
		// not working). A read that brought records counts as busy.
		switch {
		case n > 0:
			t.stats.Busy()
		case err == nil:
			t.stats.Waited(rt.StatusIdle, began)
		}
		// The records' ingestion time, and the clock of the batches
		// they open.
		t.ingest = t.tick()
		if n > 0 {
			if s.wm.Timestamp != nil {
				for i, v := range vals[:n] {
					x := s.wm.Timestamp(v)
					ts[i] = x
					if x > maxTs {
						maxTs = x
					}
				}
			} else {
				now := rt.NowMillis()
				for i := range ts[:n] {
					ts[i] = now
				}
			}
			s.cnt.Out.Add(int64(n))
			s.cnt.In.Add(int64(n))
			idle = false
			lastData = time.Now()
			s.out.push(vals[:n], ts[:n])
			clear(vals[:n])
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				if chk != nil {
					chk.finish(checkpoint.Ack{Task: task, Sources: []checkpoint.SourcePosition{{Operator: task.Operator, Split: s.split.ID(), Position: s.split.Position()}}})
				}
				s.out.watermark(rt.MaxWatermark)
				t.stats.SetWatermark(rt.MaxWatermark)
				s.out.end()
				t.flushAll()
				return
			}
			if t.ctx.Err() != nil {
				panic(errAborted)
			}
			panic(&OperatorError{Operator: s.name, Subtask: s.sub, Position: s.position(), Err: err})
		}
		if id := t.job.barrier.Load(); id > lastBarrier {
			lastBarrier = id
			if hook := t.job.env.sourceBarrier; hook != nil {
				hook(s.name, s.split.ID(), id, s.split.Position())
			}
			if chk != nil {
				chk.ack(id, checkpoint.Ack{Task: task, Sources: []checkpoint.SourcePosition{{Operator: task.Operator, Split: s.split.ID(), Position: s.split.Position()}}})
			}
			s.out.barrier(id)
		}
		if s.wm.Timestamp != nil && maxTs > rt.MinWatermark+bound+1 { // no underflow
			if wm := maxTs - bound - 1; wm > lastWm {
				lastWm = wm
				s.out.watermark(wm)
				t.stats.SetWatermark(wm)
			}
		}
		if n == 0 && idleAfter > 0 && !idle && time.Since(lastData) >= idleAfter {
			idle = true
			s.out.idle()
		}
		if m := t.job.markers; m > 0 && t.now-lastMarker >= m {
			lastMarker = t.now
			t.marker(t.now)
		}
		t.fireProc()
		// Batches leave when the split has nothing more to give right now
		// (a short read, or it says so) and, while it keeps giving, once
		// they have waited the buffer timeout. This includes what the
		// timers emitted.
		if n < len(vals) || buffered == nil || !buffered.Buffered() {
			t.flushAll()
		} else {
			t.flushDue()
		}
	}
}

// SliceSource is a bounded source over in-memory slices, one split per
// slice, for tests and examples.
type SliceSource[T any] struct {
	Parts [][]T
}

// FromSlice returns a source of vals divided into parts contiguous splits
// (at most len(vals), at least one).
func FromSlice[T any](vals []T, parts int) *SliceSource[T] {
	if parts < 1 {
		parts = 1
	}
	if parts > len(vals) && len(vals) > 0 {
		parts = len(vals)
	}
	s := &SliceSource[T]{}
	for i := range parts {
		s.Parts = append(s.Parts, vals[i*len(vals)/parts:(i+1)*len(vals)/parts])
	}
	return s
}

// Splits implements Source.
func (s *SliceSource[T]) Splits(context.Context, int) ([]Split[T], error) {
	out := make([]Split[T], len(s.Parts))
	for i, p := range s.Parts {
		out[i] = &sliceSplit[T]{id: fmt.Sprintf("slice-%d", i), vals: p}
	}
	return out, nil
}

type sliceSplit[T any] struct {
	id   string
	vals []T
	off  int
}

func (s *sliceSplit[T]) ID() string { return s.id }

func (s *sliceSplit[T]) Read(_ context.Context, dst []T) (int, error) {
	if s.off >= len(s.vals) {
		return 0, io.EOF
	}
	n := copy(dst, s.vals[s.off:])
	s.off += n
	return n, nil
}

// Buffered implements Buffered: records remain.
func (s *sliceSplit[T]) Buffered() bool { return s.off < len(s.vals) }

func (s *sliceSplit[T]) Position() []byte { return binary.BigEndian.AppendUint64(nil, uint64(s.off)) }

func (s *sliceSplit[T]) Seek(pos []byte) error {
	off, err := decodeOffset(pos)
	if err != nil {
		return fmt.Errorf("split %s: %w", s.id, err)
	}
	s.off = int(off)
	return nil
}

// ErrBadPosition is returned by Seek for a position it cannot decode.
var ErrBadPosition = errors.New("bad split position")

func decodeOffset(pos []byte) (int64, error) {
	if len(pos) != 8 {
		return 0, fmt.Errorf("%w: %d bytes, want 8", ErrBadPosition, len(pos))
	}
	v := int64(binary.BigEndian.Uint64(pos))
	if v < 0 {
		return 0, fmt.Errorf("%w: negative offset %d", ErrBadPosition, v)
	}
	return v, nil
}

// Generator is a source that computes its records: split s of n produces
// f(i) for the indexes i = s, s+n, s+2n, ... below Count, or forever if
// Count is negative. Its position is the next index.
type Generator[T any] struct {
	// Count is the number of records over all splits; negative means
	// unbounded.
	Count int64
	// NumSplits is the number of splits; 0 means the job's parallelism.
	NumSplits int
	// Fn computes record i.
	Fn func(i int64) T
}

// Generate returns a generator source of count records (negative:
// unbounded) computed by f.
func Generate[T any](count int64, splits int, f func(i int64) T) *Generator[T] {
	return &Generator[T]{Count: count, NumSplits: splits, Fn: f}
}

// Splits implements Source.
func (g *Generator[T]) Splits(_ context.Context, parallelism int) ([]Split[T], error) {
	n := g.NumSplits
	if n <= 0 {
		n = parallelism
	}
	out := make([]Split[T], n)
	for i := range n {
		out[i] = &genSplit[T]{g: g, id: fmt.Sprintf("gen-%d", i), next: int64(i), step: int64(n)}
	}
	return out, nil
}

type genSplit[T any] struct {
	g    *Generator[T]
	id   string
	next int64
	step int64
}

func (s *genSplit[T]) ID() string { return s.id }

func (s *genSplit[T]) Read(_ context.Context, dst []T) (int, error) {
	n := 0
	for n < len(dst) && (s.g.Count < 0 || s.next < s.g.Count) {
		dst[n] = s.g.Fn(s.next)
		s.next += s.step
		n++
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// Buffered implements Buffered: records remain.
func (s *genSplit[T]) Buffered() bool { return s.g.Count < 0 || s.next < s.g.Count }

func (s *genSplit[T]) Position() []byte { return binary.BigEndian.AppendUint64(nil, uint64(s.next)) }

func (s *genSplit[T]) Seek(pos []byte) error {
	v, err := decodeOffset(pos)
	if err != nil {
		return fmt.Errorf("split %s: %w", s.id, err)
	}
	s.next = v
	return nil
}
