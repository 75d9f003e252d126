package checkpoint

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// ID numbers checkpoints of a job; IDs increase and are never reused, even
// across restarts (a restored job continues after the restored ID).
type ID uint64

// TaskID names one parallel subtask of an operator (a source, an operator
// or a sink) that acknowledges checkpoints.
type TaskID struct {
	Operator string `json:"operator"`
	Subtask  int    `json:"subtask"`
}

func (t TaskID) String() string { return fmt.Sprintf("%s#%d", t.Operator, t.Subtask) }

// Ack is what a task reports once it has snapshotted its part of a
// checkpoint: the files it wrote into the pending checkpoint, the
// positions of its source splits and the transaction its sink
// pre-committed. Every field is optional.
type Ack struct {
	Task TaskID `json:"task"`
	// Files are the storage paths of the state files the task wrote.
	Files []string `json:"files,omitempty"`
	// Sources are the positions of the source splits the task reads.
	Sources []SourcePosition `json:"sources,omitempty"`
	// Transaction is the handle of a pre-committed sink transaction.
	Transaction Transaction `json:"transaction,omitempty"`
}

// SourcePosition is where a source split was when it emitted the barrier;
// recovery seeks the split back there.
type SourcePosition struct {
	Operator string `json:"operator"`
	Split    string `json:"split"`
	Position []byte `json:"position"`
}

// ActionKind says what the caller must do for an Action.
type ActionKind uint8

const (
	// ActionTrigger: inject barrier ID at every source.
	ActionTrigger ActionKind = iota + 1
	// ActionComplete: every task acknowledged ID; persist its manifest
	// (Pending.Commit) and, once that succeeded, let the sinks commit the
	// transactions in Acks.
	ActionComplete
	// ActionAbort: discard checkpoint ID (Pending.Abort) and tell the
	// tasks, which drop what they prepared for it; Err says why.
	ActionAbort
)

func (k ActionKind) String() string {
	switch k {
	case ActionTrigger:
		return "trigger"
	case ActionComplete:
		return "complete"
	case ActionAbort:
		return "abort"
	}
	return fmt.Sprintf("ActionKind(%d)", uint8(k))
}

// Action is one step the caller of a Coordinator must carry out.
type Action struct {
	Kind ActionKind
	ID   ID
	// Savepoint marks a checkpoint triggered on demand (TriggerNow).
	Savepoint bool
	// Acks are the acknowledgements of a completed checkpoint, sorted by
	// task.
	Acks []Ack
	// Err is the reason of an abort.
	Err error
}

// Errors that abort a checkpoint; Action.Err wraps one of them.
var (
	// ErrTimeout: not every task acknowledged within the timeout.
	ErrTimeout = errors.New("checkpoint timed out")
	// ErrDeclined: a task could not take its snapshot.
	ErrDeclined = errors.New("checkpoint declined")
	// ErrInFlight is returned by TriggerNow while a checkpoint is pending.
	ErrInFlight = errors.New("a checkpoint is already in flight")
)

// CoordinatorConfig configures a Coordinator.
type CoordinatorConfig struct {
	// Interval between the start of one checkpoint and the next. Zero
	// disables periodic checkpoints (TriggerNow still works).
	Interval time.Duration
	// Timeout after which a pending checkpoint is aborted; the default is
	// ten times the interval, or one minute without an interval.
	Timeout time.Duration
	// MinPause is the least time between the end of one checkpoint and the
	// start of the next, so that slow checkpoints do not run back to back.
	// The default is zero.
	MinPause time.Duration
	// Tasks are the tasks that must acknowledge every checkpoint.
	Tasks []TaskID
	// LastID is the ID of the restored checkpoint (0 without one); the
	// first checkpoint gets LastID+1.
	LastID ID
}

// Coordinator decides when checkpoints start, complete and fail. It is a
// deterministic state machine driven by its caller, safe for use by one
// goroutine: it does no I/O, starts no goroutine and reads no clock.
type Coordinator struct {
	cfg      CoordinatorConfig
	expected map[TaskID]bool
	finished map[TaskID]bool
	next     ID
	due      time.Time
	started  bool

	inflight *pending
	stats    Stats
}

type pending struct {
	id        ID
	savepoint bool
	deadline  time.Time
	acks      map[TaskID]Ack
}

// Stats counts what the coordinator decided.
type Stats struct {
	Triggered, Completed, Aborted, TimedOut uint64
	// LastCompleted is the ID of the last completed checkpoint (or
	// CoordinatorConfig.LastID).
	LastCompleted ID
}

// NewCoordinator returns a coordinator; the first checkpoint is due one
// interval after the first Tick.
func NewCoordinator(cfg CoordinatorConfig) *Coordinator {
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Minute
		if cfg.Interval > 0 {
			cfg.Timeout = 10 * cfg.Interval
		}
	}
	c := &Coordinator{cfg: cfg, expected: make(map[TaskID]bool), finished: make(map[TaskID]bool), next: cfg.LastID + 1}
	for _, t := range cfg.Tasks {
		c.expected[t] = true
	}
	c.stats.LastCompleted = cfg.LastID
	return c
}

// Stats returns the coordinator's counters.
func (c *Coordinator) Stats() Stats { return c.stats }

// InFlight returns the pending checkpoint's ID, if any.
func (c *Coordinator) InFlight() (ID, bool) {
	if c.inflight == nil {
		return 0, false
	}
	return c.inflight.id, true
}

// Tick advances the coordinator's time to now: it starts a checkpoint when
// one is due and aborts the pending one when its timeout has passed.
func (c *Coordinator) Tick(now time.Time) []Action {
	if !c.started {
		c.started = true
		c.due = now.Add(c.cfg.Interval)
	}
	var out []Action
	if p := c.inflight; p != nil && !now.Before(p.deadline) {
		missing := c.missing(p)
		out = append(out, c.abort(now, fmt.Errorf("checkpoint %d: %w after %s, waiting for %v", p.id, ErrTimeout, c.cfg.Timeout, missing)))
		c.stats.TimedOut++
	}
	if c.inflight == nil && c.cfg.Interval > 0 && !now.Before(c.due) {
		out = append(out, c.start(now, false))
	}
	return out
}

// TriggerNow starts a checkpoint at once (a savepoint, for a graceful
// stop). It returns ErrInFlight while another checkpoint is pending: wait
// for its completion, or abort, and call again.
func (c *Coordinator) TriggerNow(now time.Time) (Action, error) {
	if c.inflight != nil {
		return Action{}, fmt.Errorf("savepoint: %w (checkpoint %d)", ErrInFlight, c.inflight.id)
	}
	c.started = true
	return c.start(now, true), nil
}

func (c *Coordinator) start(now time.Time, savepoint bool) Action {
	p := &pending{id: c.next, savepoint: savepoint, deadline: now.Add(c.cfg.Timeout), acks: make(map[TaskID]Ack)}
	c.next++
	c.inflight = p
	c.due = now.Add(c.cfg.Interval)
	c.stats.Triggered++
	return Action{Kind: ActionTrigger, ID: p.id, Savepoint: savepoint}
}

// Ack records that a task snapshotted its part of checkpoint id. Acks of a
// checkpoint that is no longer pending (aborted, or from before a restart)
// are ignored. When the last expected task has acknowledged, the returned
// ActionComplete carries every Ack.
func (c *Coordinator) Ack(now time.Time, id ID, a Ack) ([]Action, error) {
	if !c.expected[a.Task] {
		return nil, fmt.Errorf("checkpoint %d: ack from unknown task %s", id, a.Task)
	}
	p := c.inflight
	if p == nil || p.id != id {
		return nil, nil
	}
	if _, dup := p.acks[a.Task]; dup {
		return nil, fmt.Errorf("checkpoint %d: task %s acknowledged twice", id, a.Task)
	}
	p.acks[a.Task] = a
	return c.maybeComplete(now), nil
}

// Decline records that a task could not snapshot checkpoint id; the
// checkpoint is aborted and the next one goes ahead at the next interval.
func (c *Coordinator) Decline(now time.Time, id ID, task TaskID, reason error) []Action {
	p := c.inflight
	if p == nil || p.id != id {
		return nil
	}
	return []Action{c.abort(now, fmt.Errorf("checkpoint %d: %w by %s: %w", id, ErrDeclined, task, reason))}
}

// Finished records that a task ended (its input was exhausted). A
// finished task takes part in no later checkpoint, and counts as having
// acknowledged the pending one with an empty Ack unless it already did.
// A task that passed the pending checkpoint's barrier must report its Ack
// before Finished, or its snapshot would be replaced by the empty one.
func (c *Coordinator) Finished(now time.Time, task TaskID) []Action {
	if !c.expected[task] || c.finished[task] {
		return nil
	}
	c.finished[task] = true
	return c.maybeComplete(now)
}

func (c *Coordinator) maybeComplete(now time.Time) []Action {
	p := c.inflight
	if p == nil {
		return nil
	}
	if len(c.missing(p)) > 0 {
		return nil
	}
	acks := make([]Ack, 0, len(p.acks))
	for _, a := range p.acks {
		acks = append(acks, a)
	}
	slices.SortFunc(acks, func(a, b Ack) int { return compareTask(a.Task, b.Task) })
	c.inflight = nil
	c.stats.Completed++
	c.stats.LastCompleted = p.id
	c.pause(now)
	return []Action{{Kind: ActionComplete, ID: p.id, Savepoint: p.savepoint, Acks: acks}}
}

// Failed reports that the caller could not persist completed checkpoint
// id (the manifest write failed). The checkpoint does not count as
// completed; its sinks must not commit.
func (c *Coordinator) Failed(id ID) {
	if c.stats.LastCompleted == id {
		c.stats.Completed--
		c.stats.Aborted++
	}
}

func (c *Coordinator) abort(now time.Time, err error) Action {
	p := c.inflight
	c.inflight = nil
	c.stats.Aborted++
	c.pause(now)
	return Action{Kind: ActionAbort, ID: p.id, Savepoint: p.savepoint, Err: err}
}

// pause pushes the next periodic checkpoint to at least MinPause after now.
func (c *Coordinator) pause(now time.Time) {
	if earliest := now.Add(c.cfg.MinPause); c.due.Before(earliest) {
		c.due = earliest
	}
}

func (c *Coordinator) missing(p *pending) []TaskID {
	var out []TaskID
	for t := range c.expected {
		if _, ok := p.acks[t]; !ok && !c.finished[t] {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, compareTask)
	return out
}

func compareTask(a, b TaskID) int {
	if a.Operator != b.Operator {
		if a.Operator < b.Operator {
			return -1
		}
		return 1
	}
	return a.Subtask - b.Subtask
}
