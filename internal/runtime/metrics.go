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
// watermark. Busy time is the rest of its lifetime. The owner goroutine
// writes; any goroutine may read while the job runs.
type TaskStats struct {
	start     time.Time
	end       atomic.Int64 // unix nanos when finished, 0 while running
	idle      atomic.Int64
	bp        atomic.Int64
	status    atomic.Int32
	watermark atomic.Int64
}

// NewTaskStats returns stats for a subtask starting now.
func NewTaskStats() *TaskStats {
	s := &TaskStats{start: time.Now()}
	s.watermark.Store(MinWatermark)
	return s
}

// Wait marks the start of a wait with the given status (idle or
// backpressured) and returns the time it began.
func (s *TaskStats) Wait(st Status) time.Time {
	s.status.Store(int32(st))
	return time.Now()
}

// Resume ends a wait begun with Wait.
func (s *TaskStats) Resume(st Status, began time.Time) {
	d := int64(time.Since(began))
	if st == StatusIdle {
		s.idle.Add(d)
	} else {
		s.bp.Add(d)
	}
	s.status.Store(int32(StatusBusy))
}

// SetWatermark records the subtask's current watermark.
func (s *TaskStats) SetWatermark(wm int64) { s.watermark.Store(wm) }

// Finish marks the subtask finished.
func (s *TaskStats) Finish() {
	s.end.Store(time.Now().UnixNano())
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
	now := time.Now()
	if e := s.end.Load(); e != 0 {
		now = time.Unix(0, e)
	}
	total := now.Sub(s.start)
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
