package runtime

import (
	"sync/atomic"
	"time"
)

// Status is what a subtask is doing right now.
type Status int32

const (
	// StatusBusy means the subtask is processing.
	StatusBusy Status = iota
	// StatusIdle means the subtask waits for input.
	StatusIdle
	// StatusBackpressured means the subtask waits for room in an output queue.
	StatusBackpressured
	// StatusFinished means the subtask has ended.
	StatusFinished
)

// String returns the status name.
func (s Status) String() string {
	switch s {
	case StatusBusy:
		return "busy"
	case StatusIdle:
		return "idle"
	case StatusBackpressured:
		return "backpressured"
	case StatusFinished:
		return "finished"
	}
	return "unknown"
}

// TaskStats measures one subtask goroutine: how long it waited for input
// (idle), waited for room downstream (backpressured), and its current
// watermark. Busy time is the rest of its lifetime. A source subtask is
// idle while it polls a split that has nothing to give (Waited). Times are
// read from a Clock (the job's), so that tests can drive them. The owner
// goroutine writes; any goroutine may read while the job runs.
type TaskStats struct {
	clock     Clock
	start     int64
	end       atomic.Int64 // clock reading when finished, 0 while running
	idle      atomic.Int64
	bp        atomic.Int64
	status    atomic.Int32
	watermark atomic.Int64
}

// NewTaskStats returns stats for a subtask starting now, on the system
// clock.
func NewTaskStats() *TaskStats { return NewTaskStatsClock(SystemClock{}) }

// NewTaskStatsClock returns stats for a subtask starting now, timed by c.
func NewTaskStatsClock(c Clock) *TaskStats {
	s := &TaskStats{clock: c, start: c.Nanos()}
	s.watermark.Store(MinWatermark)
	return s
}

// Now reads the stats' clock, for intervals passed to Waited.
func (s *TaskStats) Now() int64 { return s.clock.Nanos() }

// Wait marks the start of a wait with the given status (idle or
// backpressured) and returns the clock reading when it began.
func (s *TaskStats) Wait(st Status) int64 {
	s.status.Store(int32(st))
	return s.clock.Nanos()
}

// Resume ends a wait begun with Wait.
func (s *TaskStats) Resume(st Status, began int64) {
	s.add(st, began)
	s.status.Store(int32(StatusBusy))
}

// Waited counts the time since began (a Now reading) as spent in status
// st, found out after the fact: a source's Read that returned no records
// was waiting for data, not working. The status stays st until the next
// Busy, Resume or Wait: a source polling an empty split shows idle between
// its reads too.
func (s *TaskStats) Waited(st Status, began int64) {
	s.add(st, began)
	s.status.Store(int32(st))
}

// Busy sets the status back to busy after Waited.
func (s *TaskStats) Busy() { s.status.Store(int32(StatusBusy)) }

func (s *TaskStats) add(st Status, began int64) {
	d := s.clock.Nanos() - began
	if d < 0 {
		d = 0
	}
	if st == StatusIdle {
		s.idle.Add(d)
	} else {
		s.bp.Add(d)
	}
}

// SetWatermark records the subtask's current watermark.
func (s *TaskStats) SetWatermark(wm int64) { s.watermark.Store(wm) }

// Finish marks the subtask finished.
func (s *TaskStats) Finish() {
	s.end.Store(s.clock.Nanos())
	s.status.Store(int32(StatusFinished))
}

// Snapshot is a point-in-time copy of TaskStats.
type Snapshot struct {
	Status        Status
	Busy          time.Duration
	Idle          time.Duration
	Backpressured time.Duration
	Watermark     int64
}

// Snapshot reads the current values.
func (s *TaskStats) Snapshot() Snapshot {
	now := s.end.Load()
	if now == 0 {
		now = s.clock.Nanos()
	}
	total := time.Duration(now - s.start)
	idle := time.Duration(s.idle.Load())
	bp := time.Duration(s.bp.Load())
	busy := total - idle - bp
	if busy < 0 {
		busy = 0
	}
	return Snapshot{
		Status:        Status(s.status.Load()),
		Busy:          busy,
		Idle:          idle,
		Backpressured: bp,
		Watermark:     s.watermark.Load(),
	}
}

// Counters counts the records an operator instance received and emitted.
// The operator adds once per batch; readers may load at any time.
type Counters struct {
	In      atomic.Int64
	Out     atomic.Int64
	Dropped atomic.Int64
}
