package stream

import (
	"context"
	"errors"
	"strings"
	"sync"
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
	env := New(WithParallelism(1), WithBatchSize(4), WithCheckpointing(t.TempDir(), 5*time.Millisecond), WithLogger(quietLog()))
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
