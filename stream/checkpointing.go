package stream

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/checkpoint"
	rt "github.com/sluicehq/sluice/internal/runtime"
	"github.com/sluicehq/sluice/objstore"
	"github.com/sluicehq/sluice/state"
)

// Delivery is the output guarantee of a job with checkpointing.
type Delivery uint8

const (
	// ExactlyOnce aligns barriers at operators with several inputs and
	// makes sink output visible only when the checkpoint that covers it
	// completes (two-phase-commit sinks): after a crash, no record is
	// missing or counted twice. The default with checkpointing.
	ExactlyOnce Delivery = iota
	// AtLeastOnce does not wait for barrier alignment (lower latency):
	// after a crash nothing is lost, but records processed after the last
	// checkpoint may be processed, and written, again.
	AtLeastOnce
)

func (d Delivery) String() string {
	if d == AtLeastOnce {
		return "at_least_once"
	}
	return "exactly_once"
}

type chkConfig struct {
	dir         string
	store       checkpoint.Store // given by WithCheckpointStore; nil: opened from dir
	objCfg      objstore.Config
	localDir    string
	interval    time.Duration
	timeout     time.Duration
	delivery    Delivery
	from        string
	retain      int
	maxRestarts int
	backoff     time.Duration
	maxBackoff  time.Duration
	log         *slog.Logger
}

// on reports whether checkpointing is configured.
func (c *chkConfig) on() bool { return c.dir != "" || c.store != nil }

// WithCheckpointing turns on checkpoints every interval into directory dir
// (see package checkpoint), or into an object store when dir is an
// s3://BUCKET/PREFIX URL (see WithCheckpointObjectStore). A job started
// with the same dir restores the latest complete checkpoint found there:
// sources seek back to its positions and operators get their state back.
func WithCheckpointing(dir string, interval time.Duration) Option {
	return func(c *config) {
		c.chk.dir = dir
		c.chk.interval = interval
	}
}

// WithCheckpointObjectStore sets how an s3:// checkpoint dir is reached:
// cfg's endpoint, region and credentials (its URL is ignored). This
// overrides the default of the AWS environment variables
// (AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, ...) and the AWS
// credentials file.
func WithCheckpointObjectStore(cfg objstore.Config) Option {
	return func(c *config) { c.chk.objCfg = cfg }
}

// WithCheckpointLocalDir sets the local directory where checkpoints to an
// object store buffer their uploads and download the checkpoint being
// restored. This overrides the default of os.TempDir().
func WithCheckpointLocalDir(dir string) Option {
	return func(c *config) { c.chk.localDir = dir }
}

// WithCheckpointStore turns on checkpoints every interval into store
// instead of a directory (a checkpoint.ObjectStorage on a store of one's
// own, for example).
func WithCheckpointStore(store checkpoint.Store, interval time.Duration) Option {
	return func(c *config) {
		c.chk.store = store
		c.chk.interval = interval
	}
}

// WithDelivery sets the output guarantee. This overrides the default of
// ExactlyOnce.
func WithDelivery(d Delivery) Option { return func(c *config) { c.chk.delivery = d } }

// WithRestoreFrom restores the job from the checkpoint at path (a chk-NNN
// directory, or the s3://BUCKET/PREFIX/chk-NNN URL of a checkpoint in an
// object store) instead of the latest checkpoint of the checkpoint dir.
func WithRestoreFrom(path string) Option { return func(c *config) { c.chk.from = path } }

// WithCheckpointTimeout aborts a checkpoint not complete after d. This
// overrides the default of ten times the interval.
func WithCheckpointTimeout(d time.Duration) Option { return func(c *config) { c.chk.timeout = d } }

// WithCheckpointRetention keeps the last n complete checkpoints. This
// overrides the default of 3.
func WithCheckpointRetention(n int) Option { return func(c *config) { c.chk.retain = n } }

// WithRestartPolicy lets Execute restart a failed job from its last
// checkpoint up to maxRestarts times, waiting backoff before the first
// restart and doubling the wait each time up to 30 s. The default is no
// restart. It needs checkpointing.
func WithRestartPolicy(maxRestarts int, backoff time.Duration) Option {
	return func(c *config) {
		c.chk.maxRestarts = maxRestarts
		c.chk.backoff = backoff
		c.chk.maxBackoff = 30 * time.Second
	}
}

// WithJobHook makes Execute call hook with every job it starts: the first
// run and each restart (to register the running job with metrics or a
// dashboard, for example). hook runs before Execute waits for the job.
func WithJobHook(hook func(*Job)) Option { return func(c *config) { c.jobHook = hook } }

// WithLogger sets where the job logs checkpoint warnings and restarts.
// This overrides the default of slog.Default().
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.chk.log = l } }

// ErrRestartsExhausted wraps the last error of a job that failed more
// often than its restart policy allows.
var ErrRestartsExhausted = errors.New("stream: restart policy exhausted")

// opKey is the stable id of a node in checkpoints.
func opKey(n *node) string { return strconv.Itoa(n.id) }

// chkRun is the checkpointing of one run (attempt) of a job: the
// coordinator's driver, the pending checkpoint that tasks write into and
// what was restored.
type chkRun struct {
	cfg      *chkConfig
	store    checkpoint.Store
	pipeline checkpoint.Pipeline
	log      *slog.Logger
	maxPar   int

	restored *checkpoint.Checkpoint
	// released: the restored checkpoint's local copy was released.
	released sync.Once
	srcPos   map[string][]byte // "op/split" -> position

	expected []checkpoint.TaskID
	events   chan chkEvent
	// stopped is closed when the driver returns; late acks are dropped.
	stopped chan struct{}
	// async counts the snapshot writers still running; the job ends only
	// after them.
	async sync.WaitGroup

	mu      sync.Mutex
	pending checkpoint.Pending
	pendID  checkpoint.ID
	final   map[checkpoint.TaskID]checkpoint.Ack
	sinks   map[checkpoint.TaskID]*sinkTxns
	// committers are the open source splits that implement
	// PositionCommitter, by posKey; positions commits their positions
	// (while drive runs).
	committers map[string]*splitCommitter
	// ended are the closes of the splits whose subtasks returned: they
	// run when drive returns, after the last positions were committed
	// (those of a savepoint that stopped the job, of the final
	// checkpoint).
	ended     []func()
	positions *positionQueue
	lastDone  atomic.Uint64
	savept    chan chan savepointResult
	stats     CheckpointStats
	hist      []CheckpointRecord
	align     map[uint64]time.Duration // longest barrier alignment per checkpoint id

	// storedID is the newest complete checkpoint in the storage when the
	// run began: checkpoints are numbered after it even when the run
	// restored an older one (a roll-back), so that Begin does not
	// overwrite a stored checkpoint and the run's own are the latest.
	storedID checkpoint.ID
}

type savepointResult struct {
	path string
	err  error
}

type chkEvent struct {
	id       checkpoint.ID
	ack      checkpoint.Ack
	decline  error
	finished bool
}

// CheckpointStats counts a job's checkpoints.
type CheckpointStats struct {
	Completed, Aborted uint64
	// LastID and LastPath identify the last completed checkpoint.
	LastID   uint64
	LastPath string
	// LastDuration is the time from trigger to manifest of the last one.
	LastDuration time.Duration
}

// CheckpointRecord is one checkpoint of a job's history.
type CheckpointRecord struct {
	ID        uint64
	Savepoint bool
	Completed bool // false: aborted or not persisted (see Err)
	Started   time.Time
	Duration  time.Duration // trigger to manifest, or to the abort
	SizeBytes int64         // bytes of every file the manifest names (shared files included)
	Alignment time.Duration // the longest an operator waited for this checkpoint's barriers on all its inputs
	Err       string
}

// maxCheckpointHistory bounds the history a job keeps.
const maxCheckpointHistory = 100

// CheckpointHistory returns the job's last checkpoints (at most 100),
// oldest first.
func (j *Job) CheckpointHistory() []CheckpointRecord {
	if j.chk == nil {
		return nil
	}
	j.chk.mu.Lock()
	defer j.chk.mu.Unlock()
	return append([]CheckpointRecord(nil), j.chk.hist...)
}

// noteAlignment records that an operator subtask took d to align the
// barriers of checkpoint id.
func (r *chkRun) noteAlignment(id uint64, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.align == nil {
		r.align = map[uint64]time.Duration{}
	}
	r.align[id] = max(r.align[id], d)
}

func (r *chkRun) record(c CheckpointRecord) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c.Alignment = r.align[c.ID]
	for id := range r.align {
		if id <= c.ID {
			delete(r.align, id)
		}
	}
	r.hist = append(r.hist, c)
	if len(r.hist) > maxCheckpointHistory {
		r.hist = append(r.hist[:0], r.hist[len(r.hist)-maxCheckpointHistory:]...)
	}
}

// CheckpointStats returns the job's checkpoint counters.
func (j *Job) CheckpointStats() CheckpointStats {
	if j.chk == nil {
		return CheckpointStats{}
	}
	j.chk.mu.Lock()
	defer j.chk.mu.Unlock()
	return j.chk.stats
}

func posKey(op, split string) string { return op + "/" + split }

// newChkRun prepares checkpointing for a run of e: opens the storage and
// loads the checkpoint to restore, if any.
func newChkRun(ctx context.Context, e *Env) (*chkRun, error) {
	cfg := &e.cfg.chk
	log := cfg.log
	if log == nil {
		log = slog.Default()
	}
	r := &chkRun{cfg: cfg, log: log, maxPar: e.cfg.maxParallelism, srcPos: map[string][]byte{},
		final: map[checkpoint.TaskID]checkpoint.Ack{}, sinks: map[checkpoint.TaskID]*sinkTxns{},
		committers: map[string]*splitCommitter{}, savept: make(chan chan savepointResult)}
	retain := cfg.retain
	if retain == 0 {
		retain = 3
	}
	opts := []checkpoint.DirOption{checkpoint.WithRetain(retain), checkpoint.WithLogger(log)}
	if cfg.localDir != "" {
		opts = append(opts, checkpoint.WithLocalDir(cfg.localDir))
	}
	store := cfg.store
	if store == nil {
		var err error
		if store, err = checkpoint.OpenStore(ctx, cfg.dir, cfg.objCfg, opts...); err != nil {
			return nil, err
		}
	}
	r.store = store
	r.pipeline = checkpoint.Pipeline{MaxParallelism: e.cfg.maxParallelism}
	for _, n := range e.nodes {
		r.pipeline.Operators = append(r.pipeline.Operators, checkpoint.Operator{ID: opKey(n), Name: n.name, Parallelism: n.par})
	}
	// Checkpoints are numbered after the newest stored one: without the
	// listing, the first of this run could overwrite a complete one.
	ids, err := store.Complete()
	if err != nil {
		return nil, fmt.Errorf("stream: list the stored checkpoints: %w (the run numbers its checkpoints after the newest; retry when the storage is readable)", err)
	}
	if len(ids) > 0 {
		r.storedID = slices.Max(ids)
	}
	var c *checkpoint.Checkpoint
	if cfg.from != "" {
		c, err = checkpoint.Load(ctx, cfg.from, cfg.objCfg, opts...)
		if err != nil {
			return nil, fmt.Errorf("stream: restore from %s: %w", cfg.from, err)
		}
	} else {
		c, err = store.Latest(ctx)
		if err != nil && !errors.Is(err, checkpoint.ErrNoCheckpoint) {
			return nil, err
		}
	}
	if c != nil {
		if err := c.Manifest.Pipeline.Compatible(r.pipeline); err != nil {
			c.Close()
			return nil, fmt.Errorf("stream: restore from %s: %w", c.Location, err)
		}
		r.restored = c
		for _, sp := range c.Manifest.Sources() {
			r.srcPos[posKey(sp.Operator, sp.Split)] = sp.Position
		}
		r.lastDone.Store(uint64(c.Manifest.ID))
		log.Info("restoring checkpoint", "checkpoint", c.Location, "id", c.Manifest.ID)
	}
	return r, nil
}

// participants lists the tasks that acknowledge checkpoints: every source
// split, every window operator subtask and every sink subtask. Stateless
// operators need not: a sink's ack implies they passed the barrier.
func (r *chkRun) participants(e *Env) {
	for _, n := range e.nodes {
		if n.source || n.sink || n.snapshots {
			for sub := range n.par {
				r.expected = append(r.expected, checkpoint.TaskID{Operator: opKey(n), Subtask: sub})
			}
		}
	}
	r.events = make(chan chkEvent, len(r.expected)*4+16)
	r.stopped = make(chan struct{})
}

// releaseRestored removes the local copy of the restored checkpoint (of
// an object store) once no task can read it any more: after the first
// checkpoint of the run completed (every task that restores state had
// acknowledged it) or when the run ends.
func (r *chkRun) releaseRestored() {
	if r.restored == nil {
		return
	}
	r.released.Do(func() {
		if err := r.restored.Close(); err != nil {
			r.log.Warn("restored checkpoint: local copy not removed", "err", err)
		}
	})
}

func (r *chkRun) restoredID() checkpoint.ID {
	if r.restored == nil {
		return 0
	}
	return r.restored.Manifest.ID
}

// lastID is the ID after which the run numbers its checkpoints: the
// restored one's, or the newest stored one's when it is newer.
func (r *chkRun) lastID() checkpoint.ID { return max(r.restoredID(), r.storedID) }

// pendingFor returns the pending checkpoint id, or nil when it is no
// longer pending.
func (r *chkRun) pendingFor(id uint64) checkpoint.Pending {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending == nil || uint64(r.pendID) != id {
		return nil
	}
	return r.pending
}

func (r *chkRun) send(ev chkEvent) {
	select {
	case r.events <- ev:
	case <-r.stopped:
	}
}

func (r *chkRun) ack(id uint64, a checkpoint.Ack) { r.send(chkEvent{id: checkpoint.ID(id), ack: a}) }

func (r *chkRun) decline(id uint64, task checkpoint.TaskID, err error) {
	r.send(chkEvent{id: checkpoint.ID(id), ack: checkpoint.Ack{Task: task}, decline: err})
}

// finish records that task ended with its final ack (end positions, the
// final transaction); later checkpoints include it.
func (r *chkRun) finish(a checkpoint.Ack) {
	r.mu.Lock()
	r.final[a.Task] = a
	r.mu.Unlock()
	r.send(chkEvent{ack: a, finished: true})
}

// drive runs the coordinator until the job ends. It returns once the job
// is done; on success it writes a final checkpoint of the finished tasks
// and commits the sinks' last transactions.
func (r *chkRun) drive(j *Job) {
	defer close(r.stopped)
	defer r.closeEnded()
	defer r.releaseRestored()
	coord := checkpoint.NewCoordinator(checkpoint.CoordinatorConfig{
		Interval: r.cfg.interval, Timeout: r.cfg.timeout, Tasks: r.expected, LastID: r.lastID(),
	})
	var started time.Time
	r.positions = r.startPositions()
	// The ticker aborts checkpoints that time out; dueC starts each one
	// exactly one interval after the previous start, rather than at the
	// next tick, and a checkpoint that is due when the previous one ends
	// starts at once.
	tick := time.NewTicker(max(r.cfg.interval/8, 5*time.Millisecond))
	defer tick.Stop()
	coord.Tick(time.Now())
	var dueC <-chan time.Time
	var due *time.Timer
	if r.cfg.interval > 0 {
		due = time.NewTimer(r.cfg.interval)
		defer due.Stop()
		dueC = due.C
	}
	var waiting []chan savepointResult // requests of the savepoint in flight
	var queued []chan savepointResult  // requests waiting for a checkpoint to end
	var savepointID checkpoint.ID
	stopping := false // a savepoint that stops the job completed
	var handle func(acts []checkpoint.Action)
	// startSavepoint takes the queued savepoint as soon as no checkpoint
	// is in flight.
	startSavepoint := func() {
		if len(queued) == 0 {
			return
		}
		a, err := coord.TriggerNow(time.Now())
		if err != nil {
			return // one in flight: retried when it ends
		}
		waiting, queued = queued, nil
		handle([]checkpoint.Action{a})
	}
	handle = func(acts []checkpoint.Action) {
		for _, a := range acts {
			switch a.Kind {
			case checkpoint.ActionTrigger:
				p, err := r.store.Begin(a.ID)
				if err != nil {
					r.log.Warn("checkpoint not started", "id", a.ID, "err", err)
					if a.Savepoint {
						savepointID = a.ID
					}
					handle(coord.Decline(time.Now(), a.ID, checkpoint.TaskID{Operator: "coordinator"}, err))
					continue
				}
				r.mu.Lock()
				r.pending, r.pendID = p, a.ID
				r.mu.Unlock()
				started = time.Now()
				if a.Savepoint {
					savepointID = a.ID
				}
				if due != nil {
					due.Reset(r.cfg.interval)
				}
				j.triggerBarrier(uint64(a.ID))
			case checkpoint.ActionComplete:
				path, err := r.complete(j, a, started)
				if a.ID == savepointID && len(waiting) > 0 {
					if err == nil {
						// Stop-with-savepoint: no checkpoint may follow
						// it, or its commits would publish records the
						// savepoint does not cover (and a restore from
						// the savepoint would write them again).
						stopping = true
						j.errs.Set(errSavepointStop)
					}
					for _, w := range waiting {
						w <- savepointResult{path, err}
					}
					waiting = nil
				}
				startSavepoint()
				if !stopping {
					handle(coord.Tick(time.Now()))
				}
			case checkpoint.ActionAbort:
				r.abort(a)
				errText := ""
				if a.Err != nil {
					errText = a.Err.Error()
				}
				r.record(CheckpointRecord{ID: uint64(a.ID), Savepoint: a.Savepoint, Started: started, Duration: time.Since(started), Err: errText})
				if a.ID == savepointID && len(waiting) > 0 {
					for _, w := range waiting {
						w <- savepointResult{"", a.Err}
					}
					waiting = nil
				}
				startSavepoint()
			}
		}
	}
	for {
		select {
		case <-j.tasksDone:
			// Let the asynchronous snapshot writers finish (draining their
			// acks) before the pending checkpoint's files are removed.
			flushed := make(chan struct{})
			go func() { r.async.Wait(); close(flushed) }()
		drain:
			for {
				select {
				case <-flushed:
					break drain
				case <-r.events:
				}
			}
			r.mu.Lock()
			if r.pending != nil {
				_ = r.pending.Abort()
				r.pending = nil
			}
			r.mu.Unlock()
			for _, w := range append(waiting, queued...) {
				w <- savepointResult{"", errors.New("stream: job ended before the savepoint completed")}
			}
			r.positions.close() // the final checkpoint's positions come last
			if j.errs.Err() == nil {
				r.finalCheckpoint(j)
			}
			return
		case ev := <-r.events:
			now := time.Now()
			switch {
			case ev.finished:
				handle(coord.Finished(now, ev.ack.Task))
			case ev.decline != nil:
				handle(coord.Decline(now, ev.id, ev.ack.Task, ev.decline))
			default:
				acts, err := coord.Ack(now, ev.id, ev.ack)
				if err != nil {
					r.log.Warn("checkpoint ack", "err", err)
				}
				handle(acts)
			}
		case w := <-r.savept:
			queued = append(queued, w)
			startSavepoint()
		case now := <-tick.C:
			if !stopping {
				handle(coord.Tick(now))
			}
		case now := <-dueC:
			if !stopping {
				handle(coord.Tick(now))
			}
		}
	}
}

func (r *chkRun) abort(a checkpoint.Action) {
	r.mu.Lock()
	p := r.pending
	if r.pendID == a.ID {
		r.pending = nil
	}
	r.stats.Aborted++
	r.mu.Unlock()
	if p != nil {
		_ = p.Abort()
	}
	r.log.Warn("checkpoint aborted", "id", a.ID, "err", a.Err)
}

// manifest builds the manifest of checkpoint id from the acks, adding the
// final acks of tasks that finished (their end positions, their last
// transactions).
func (r *chkRun) manifest(id checkpoint.ID, savepoint bool, acks []checkpoint.Ack) *checkpoint.Manifest {
	m := &checkpoint.Manifest{Version: checkpoint.FormatVersion, ID: id, Savepoint: savepoint, Pipeline: r.pipeline}
	seen := map[checkpoint.TaskID]bool{}
	add := func(a checkpoint.Ack) {
		seen[a.Task] = true
		m.Tasks = append(m.Tasks, checkpoint.TaskState{Task: a.Task, Files: a.Files, Sources: a.Sources, Transaction: a.Transaction})
	}
	for _, a := range acks {
		add(a)
	}
	r.mu.Lock()
	for t, a := range r.final {
		if !seen[t] {
			add(a)
		}
	}
	r.mu.Unlock()
	return m
}

func (r *chkRun) complete(j *Job, a checkpoint.Action, started time.Time) (string, error) {
	r.mu.Lock()
	p := r.pending
	r.pending = nil
	r.mu.Unlock()
	if p == nil || p.ID() != a.ID {
		return "", fmt.Errorf("checkpoint %d: no pending storage", a.ID)
	}
	acked := time.Now()
	m := r.manifest(a.ID, a.Savepoint, a.Acks)
	// The clean-up of older checkpoints waits for the sinks' commits.
	commit, retain := p.Commit, func() {}
	if rp, ok := p.(checkpoint.Retainer); ok {
		commit, retain = rp.CommitManifest, rp.Retain
	}
	if err := commit(m); err != nil {
		r.log.Warn("checkpoint not persisted", "id", a.ID, "err", err)
		_ = p.Abort()
		r.mu.Lock()
		r.stats.Aborted++
		r.mu.Unlock()
		r.record(CheckpointRecord{ID: uint64(a.ID), Savepoint: a.Savepoint, Started: started, Duration: time.Since(started), Err: err.Error()})
		return "", err
	}
	path := r.store.Location(a.ID)
	r.releaseRestored()
	r.mu.Lock()
	r.stats.Completed++
	r.stats.LastID = uint64(a.ID)
	r.stats.LastPath = path
	r.stats.LastDuration = time.Since(started)
	r.mu.Unlock()
	var size int64
	for _, f := range m.Files {
		size += f.Size
	}
	r.record(CheckpointRecord{ID: uint64(a.ID), Savepoint: a.Savepoint, Completed: true, Started: started, Duration: time.Since(started), SizeBytes: size})
	persisted := time.Now()
	if r.commitSinks(j, m) {
		r.positions.submit(m)
	}
	committed := time.Now()
	retain()
	for _, ph := range []struct {
		stage string
		d     time.Duration
	}{{"ack", acked.Sub(started)}, {"persist", persisted.Sub(acked)}, {"commit", committed.Sub(persisted)}, {"total", committed.Sub(started)}} {
		j.lat.get(LatencyCheckpoint, "", ph.stage).Observe(ph.d, 1)
	}
	return path, nil
}

// commitSinks commits the transactions that manifest m names, the sink
// subtasks' at once (each subtask's in checkpoint order): a commit is a
// round trip to the outside (a Kafka EndTxn), and the slowest of them,
// not their sum, is what the output waits for. It reports whether every
// one committed.
func (r *chkRun) commitSinks(j *Job, m *checkpoint.Manifest) bool {
	type work struct {
		s    *sinkTxns
		task checkpoint.TaskID
		txs  []txn
		upTo uint64
	}
	var todo []work
	for _, t := range m.Tasks {
		if t.Transaction == nil {
			continue
		}
		r.mu.Lock()
		s := r.sinks[t.Task]
		r.mu.Unlock()
		if s == nil {
			continue
		}
		txs, err := decodeTxns(t.Transaction)
		if err != nil {
			j.errs.Set(fmt.Errorf("stream: checkpoint %d: sink %s: %w", m.ID, t.Task, err))
			return false
		}
		w := work{s: s, task: t.Task, txs: txs}
		for _, tx := range txs {
			w.upTo = max(w.upTo, tx.id)
		}
		todo = append(todo, w)
	}
	commit := func(w work) error {
		for _, tx := range w.txs {
			if err := w.s.c.Commit(context.Background(), tx.tx); err != nil {
				// The manifest is durable: the next run's Recover
				// commits this transaction again.
				return &OperatorError{Operator: w.s.name, Subtask: w.task.Subtask, Err: fmt.Errorf("commit of checkpoint %d: %w", m.ID, err)}
			}
		}
		w.s.committed.Store(uint64(m.ID))
		w.s.committedUpTo(w.upTo, j.clock.Nanos())
		return nil
	}
	errs := make([]error, len(todo))
	var wg sync.WaitGroup
	for i, w := range todo {
		if i == len(todo)-1 {
			errs[i] = commit(w) // the last one on this goroutine
			break
		}
		wg.Go(func() { errs[i] = commit(w) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			j.errs.Set(err)
			return false
		}
	}
	r.lastDone.Store(uint64(m.ID))
	return true
}

// finalCheckpoint records the end of a job whose every task finished: a
// checkpoint of the end positions and the sinks' last transactions, which
// are then committed. Running the job again from it emits nothing twice.
func (r *chkRun) finalCheckpoint(j *Job) {
	r.mu.Lock()
	n := len(r.final)
	r.mu.Unlock()
	if n < len(r.expected) {
		return
	}
	id := checkpoint.ID(max(r.lastDone.Load(), uint64(r.lastID()), r.stats.LastID) + 1)
	if cur := uint64(r.pendID); uint64(id) <= cur {
		id = checkpoint.ID(cur + 1)
	}
	p, err := r.store.Begin(id)
	if err != nil {
		j.errs.Set(fmt.Errorf("stream: final checkpoint: %w", err))
		return
	}
	started := time.Now()
	m := r.manifest(id, true, nil)
	if err := p.Commit(m); err != nil {
		j.errs.Set(fmt.Errorf("stream: final checkpoint: %w", err))
		return
	}
	r.mu.Lock()
	r.stats.Completed++
	r.stats.LastID = uint64(id)
	r.stats.LastPath = r.store.Location(id)
	r.stats.LastDuration = time.Since(started)
	r.mu.Unlock()
	var size int64
	for _, f := range m.Files {
		size += f.Size
	}
	r.record(CheckpointRecord{ID: uint64(id), Savepoint: true, Completed: true, Started: started, Duration: time.Since(started), SizeBytes: size})
	if r.commitSinks(j, m) {
		r.commitSources(m)
	}
}

// StopWithSavepoint takes a checkpoint now, waits for it to complete and
// then stops the job (what SIGTERM does in `sluice run`). It returns the
// checkpoint's location (its directory, or its s3:// URL in an object
// store), from which the job can be restored (WithRestoreFrom).
func (j *Job) StopWithSavepoint(ctx context.Context) (string, error) {
	if j.chk == nil {
		return "", errors.New("stream: savepoint of a job without checkpointing")
	}
	w := make(chan savepointResult, 1)
	select {
	case j.chk.savept <- w:
	case <-j.tasksDone:
		return "", errors.New("stream: job already ended")
	case <-ctx.Done():
		return "", ctx.Err()
	}
	select {
	case res := <-w:
		if res.err != nil {
			return "", res.err
		}
		j.errs.Set(errSavepointStop)
		<-j.done
		return res.path, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// errSavepointStop ends a job stopped after a savepoint; Wait returns nil.
var errSavepointStop = errors.New("stream: stopped with a savepoint")

// sinkTxns are the transactions of one 2PC sink subtask.
type sinkTxns struct {
	name      string
	c         checkpoint.TwoPhaseCommitter
	pending   []txn // pre-committed, not known to be committed
	committed atomic.Uint64
	// hist is the sink's commit latency; sealed the batches written
	// before each barrier (by checkpoint id, ^0 the final one), until
	// the transaction holding them commits.
	hist     *rt.Histogram
	sealedMu sync.Mutex
	sealed   map[uint64][]epochEntry
}

// seal files the batches written before barrier id (the task goroutine).
func (s *sinkTxns) seal(id uint64, es []epochEntry) {
	if len(es) == 0 {
		return
	}
	s.sealedMu.Lock()
	defer s.sealedMu.Unlock()
	if s.sealed == nil {
		s.sealed = map[uint64][]epochEntry{}
	}
	s.sealed[id] = append(s.sealed[id], es...)
}

// committedUpTo records, at now, the commit latency of the batches sealed
// at barriers up to id: their transactions have committed (the
// coordinator's goroutine).
func (s *sinkTxns) committedUpTo(id uint64, now int64) {
	s.sealedMu.Lock()
	defer s.sealedMu.Unlock()
	for k, es := range s.sealed {
		if k > id {
			continue
		}
		for _, e := range es {
			s.hist.Observe(time.Duration(now-e.ingest), e.n)
		}
		delete(s.sealed, k)
	}
}

type txn struct {
	id uint64
	tx checkpoint.Transaction
}

// encodeTxns frames the pending transactions of a sink in one handle:
// count, then per transaction id and length-prefixed bytes.
func encodeTxns(ts []txn) checkpoint.Transaction {
	b := binary.AppendUvarint(nil, uint64(len(ts)))
	for _, t := range ts {
		b = binary.AppendUvarint(b, t.id)
		b = binary.AppendUvarint(b, uint64(len(t.tx)))
		b = append(b, t.tx...)
	}
	return b
}

func decodeTxns(b []byte) ([]txn, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, fmt.Errorf("%w: transaction list", checkpoint.ErrCorrupt)
	}
	b = b[k:]
	out := make([]txn, 0, n)
	for range n {
		id, k1 := binary.Uvarint(b)
		if k1 <= 0 {
			return nil, fmt.Errorf("%w: transaction id", checkpoint.ErrCorrupt)
		}
		l, k2 := binary.Uvarint(b[k1:])
		if k2 <= 0 || l > uint64(len(b)-k1-k2) {
			return nil, fmt.Errorf("%w: transaction length", checkpoint.ErrCorrupt)
		}
		out = append(out, txn{id: id, tx: append(checkpoint.Transaction{}, b[k1+k2:k1+k2+int(l)]...)})
		b = b[k1+k2+int(l):]
	}
	return out, nil
}

// restoredTxns returns the transactions the restored checkpoint holds for
// sink subtask sub of node n (at parallelism par: subtask sub takes those
// of the old subtasks s with s % par == sub).
func (r *chkRun) restoredTxns(n *node, sub, par int) ([]checkpoint.Transaction, error) {
	if r.restored == nil {
		return nil, nil
	}
	var out []checkpoint.Transaction
	for old, h := range r.restored.Manifest.Transactions(opKey(n)) {
		if old%par != sub {
			continue
		}
		ts, err := decodeTxns(h)
		if err != nil {
			return nil, err
		}
		for _, t := range ts {
			out = append(out, t.tx)
		}
	}
	return out, nil
}

// stateFiles returns the state files of every subtask of node n in the
// restored checkpoint.
func (r *chkRun) stateFiles(n *node) []string {
	if r.restored == nil {
		return nil
	}
	return r.restored.Manifest.TaskFiles(opKey(n))
}

// keyGroups returns the key groups of subtask sub of n.
func (r *chkRun) keyGroups(n *node, sub int) state.KeyGroupRange {
	return state.RangeFor(r.maxPar, n.par, sub)
}
