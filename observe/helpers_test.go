package observe

import (
	"math"
	"sync"
	"time"

	"github.com/sluicehq/sluice/stream"
)

// fakeJob is a Job whose metrics the test sets.
type fakeJob struct {
	mu   sync.Mutex
	ms   []stream.SubtaskMetrics
	done chan struct{}
	err  error
}

func newFakeJob(ms ...stream.SubtaskMetrics) *fakeJob {
	return &fakeJob{ms: ms, done: make(chan struct{})}
}

func (f *fakeJob) Metrics() []stream.SubtaskMetrics {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]stream.SubtaskMetrics(nil), f.ms...)
}

func (f *fakeJob) set(ms ...stream.SubtaskMetrics) {
	f.mu.Lock()
	f.ms = ms
	f.mu.Unlock()
}

func (f *fakeJob) Done() <-chan struct{} { return f.done }

func (f *fakeJob) Wait() error {
	<-f.done
	return f.err
}

func (f *fakeJob) end(err error) {
	f.err = err
	close(f.done)
}

// clock is a settable clock for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var t0 = time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)

// sm builds the metrics of one subtask.
func sm(op string, sub, par int, task string, in, out int64, busy, idle, bp time.Duration, wm int64) stream.SubtaskMetrics {
	return stream.SubtaskMetrics{Operator: op, Subtask: sub, Parallelism: par, Task: task, RecordsIn: in, RecordsOut: out,
		Status: "busy", Busy: busy, Idle: idle, Backpressured: bp, Watermark: wm}
}

const noWM = math.MinInt64
