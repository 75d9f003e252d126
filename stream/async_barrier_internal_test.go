package stream

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// asyncBarrierWriter answers barriers only when the test says so.
type asyncBarrierWriter struct {
	mu       sync.Mutex
	written  int
	barriers chan func(error)
}

func (w *asyncBarrierWriter) Write(_ context.Context, recs []int64) error {
	w.mu.Lock()
	w.written += len(recs)
	w.mu.Unlock()
	return nil
}

func (w *asyncBarrierWriter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.written
}

func (w *asyncBarrierWriter) OnBarrier(context.Context, uint64) error {
	return errors.New("OnBarrier called on an AsyncBarrierWriter under checkpointing")
}

func (w *asyncBarrierWriter) OnBarrierAsync(_ context.Context, _ uint64, done func(error)) {
	select {
	case w.barriers <- done:
	default: // the test has seen enough barriers
		done(nil)
	}
}

func (w *asyncBarrierWriter) Close(context.Context) error { return nil }

type asyncBarrierSink struct{ w *asyncBarrierWriter }

func (s asyncBarrierSink) Open(context.Context, SubtaskInfo) (SinkWriter[int64], error) {
	return s.w, nil
}

// TestAsyncBarrierWriter checks that a sink with AsyncBarrierWriter keeps
// writing after a barrier, that the checkpoint completes only once the
// writer answered it, and that an error declines it and fails the job (as
// a synchronous OnBarrier error does), even though the answer comes from
// another goroutine.
func TestAsyncBarrierWriter(t *testing.T) {
	w := &asyncBarrierWriter{barriers: make(chan func(error), 16)}
	// No checkpoint may time out while the test holds its answer: with
	// the default (ten intervals, 50 ms) a loaded machine aborted the held
	// one, later barriers queued up, and the test's error answer went to a
	// checkpoint already aborted while a later one completed.
	env := New(WithParallelism(1), WithBatchSize(4), WithCheckpointing(t.TempDir(), 5*time.Millisecond),
		WithCheckpointTimeout(time.Hour), WithLogger(quietLog()))
	To(FromSource(env, "gen", Generate(-1, 1, func(i int64) int64 { return i }), WatermarkStrategy[int64]{}), Sink[int64](asyncBarrierSink{w}))
	job, err := env.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		job.Cancel()
		_ = job.Wait()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			select {
			case <-ctx.Done():
				t.Fatalf("gave up waiting: %s", what)
			case <-job.Done():
				t.Fatalf("job ended (%v) while waiting: %s", job.Wait(), what)
			case <-time.After(time.Millisecond):
			}
		}
	}
	nextBarrier := func() func(error) {
		t.Helper()
		select {
		case done := <-w.barriers:
			return done
		case <-ctx.Done():
			t.Fatal("no barrier reached the sink")
		case <-job.Done():
			t.Fatalf("job ended: %v", job.Wait())
		}
		return nil
	}

	done := nextBarrier()
	at := w.count()
	waitFor("a write after the unanswered barrier", func() bool { return w.count() > at+100 })
	if s := job.CheckpointStats(); s.Completed != 0 {
		t.Fatalf("checkpoint completed before the sink answered its barrier: %+v", s)
	}
	done(nil)
	waitFor("the checkpoint to complete once answered", func() bool { return job.CheckpointStats().Completed == 1 })

	done = nextBarrier()
	done(errors.New("produce failed"))
	select {
	case <-job.Done():
	case <-ctx.Done():
		t.Fatal("the job did not fail after its sink answered a barrier with an error")
	}
	if err := job.Wait(); err == nil || !strings.Contains(err.Error(), "produce failed") {
		t.Fatalf("job ended with %v, want the sink's produce error", err)
	}
	if s := job.CheckpointStats(); s.Completed != 1 {
		t.Fatalf("a declined barrier completed a checkpoint: %+v", s)
	}
}

// heldBarrierWriter holds the answer to the first barrier it sees and
// records whether Close came while an answer was still outstanding.
type heldBarrierWriter struct {
	mu          sync.Mutex
	written     int
	outstanding int
	held        chan func(error)
	holding     bool // the first barrier's answer was handed to held
	closedEarly bool
	closed      bool
}

func (w *heldBarrierWriter) Write(_ context.Context, recs []int64) error {
	w.mu.Lock()
	w.written += len(recs)
	w.mu.Unlock()
	return nil
}

func (w *heldBarrierWriter) OnBarrierAsync(_ context.Context, _ uint64, done func(error)) {
	w.mu.Lock()
	w.outstanding++
	first := !w.holding
	w.holding = true
	w.mu.Unlock()
	answer := func(err error) {
		w.mu.Lock()
		w.outstanding--
		w.mu.Unlock()
		done(err)
	}
	if first {
		w.held <- answer // buffered: never blocks
		return
	}
	// Later barriers (the held checkpoint may time out and the next
	// one start) are answered at once: only the first is held.
	answer(nil)
}

func (w *heldBarrierWriter) Close(context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closedEarly = w.outstanding > 0
	w.closed = true
	return nil
}

func (w *heldBarrierWriter) state() (written int, closed, early bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.written, w.closed, w.closedEarly
}

type heldBarrierSink struct{ w *heldBarrierWriter }

func (s heldBarrierSink) Open(context.Context, SubtaskInfo) (SinkWriter[int64], error) {
	return s.w, nil
}

// stopSplit counts up until stop is set, then ends its input.
type stopSplit struct {
	stop *atomic.Bool
	next atomic.Int64
}

func (s *stopSplit) ID() string { return "stop" }

func (s *stopSplit) Read(_ context.Context, dst []int64) (int, error) {
	if s.stop.Load() {
		return 0, io.EOF
	}
	for i := range dst {
		dst[i] = s.next.Add(1)
	}
	return len(dst), nil
}

func (s *stopSplit) Position() []byte  { return nil }
func (s *stopSplit) Seek([]byte) error { return nil }

type stopSource struct{ split *stopSplit }

func (s stopSource) Splits(context.Context, int) ([]Split[int64], error) {
	return []Split[int64]{s.split}, nil
}

// TestAsyncBarrierWriterEndWaits: at the end of a bounded input, the sink
// subtask waits for the answer to a barrier its AsyncBarrierWriter has not
// given yet before it finishes and closes the writer (records written
// before the barrier may still be unacknowledged by the external system).
func TestAsyncBarrierWriterEndWaits(t *testing.T) {
	w := &heldBarrierWriter{held: make(chan func(error), 1)}
	src := &stopSplit{stop: new(atomic.Bool)}
	env := New(WithParallelism(1), WithBatchSize(16), WithCheckpointing(t.TempDir(), time.Millisecond), WithLogger(quietLog()))
	To(FromSource(env, "src", Source[int64](stopSource{src}), WatermarkStrategy[int64]{}), Sink[int64](heldBarrierSink{w}))
	job, err := env.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		job.Cancel()
		_ = job.Wait()
	}()
	var answer func(error)
	select {
	case answer = <-w.held:
	case <-job.Done():
		t.Fatalf("the job ended (%v) before any barrier reached the sink", job.Wait())
	case <-time.After(30 * time.Second):
		t.Fatal("no barrier reached the sink")
	}
	// The input ends while the answer is held: every record is written,
	// but the job must not end, nor the writer be closed, until the answer
	// is given. (Waiting here can only let a broken end() slip through,
	// never fail a correct one.)
	src.stop.Store(true)
	deadline := time.After(30 * time.Second)
	for {
		written, closed, _ := w.state()
		if closed {
			t.Fatal("the writer was closed while a barrier's answer was outstanding")
		}
		if int64(written) == src.next.Load() {
			break
		}
		select {
		case <-job.Done():
			t.Fatalf("the job ended (%v) with a barrier unanswered", job.Wait())
		case <-deadline:
			t.Fatalf("only %d of %d records written", written, src.next.Load())
		case <-time.After(time.Millisecond):
		}
	}
	select {
	case <-job.Done():
		t.Fatalf("the job ended (%v) with a barrier unanswered", job.Wait())
	case <-time.After(200 * time.Millisecond):
	}
	if _, closed, _ := w.state(); closed {
		t.Fatal("the writer was closed while a barrier's answer was outstanding")
	}
	answer(nil)
	select {
	case <-job.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the job did not end once the barrier was answered")
	}
	if err := job.Wait(); err != nil {
		t.Fatal(err)
	}
	if _, closed, early := w.state(); !closed || early {
		t.Fatalf("writer closed=%v, closed with an answer outstanding=%v", closed, early)
	}
}
