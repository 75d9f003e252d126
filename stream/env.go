package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	rt "github.com/sluicehq/sluice/internal/runtime"
	"github.com/sluicehq/sluice/state"
)

// Env is a dataflow under construction and, once started, the job that runs
// it. Build the graph with the top-level functions of this package
// (FromSource, Map, KeyBy, Window, To, ...), then call Execute or Start.
// An Env runs once. Building is not safe for concurrent use.
type Env struct {
	cfg     config
	nodes   []*node
	err     error
	started bool
	// sourceBarrier, if set, is called by every source split when it
	// emits a checkpoint barrier, with the split's position at that point:
	// the source part of a checkpoint (the coordinator of issue 5 sets it).
	sourceBarrier func(operator, split string, id uint64, pos []byte)
}

type config struct {
	jobHook        func(*Job)
	parallelism    int
	maxParallelism int
	batchSize      int
	credits        int
	chk            chkConfig
	stateFactory   state.BackendFactory
	bufferTimeout  time.Duration
	markers        time.Duration
	clock          rt.Clock
}

// Option configures an Env.
type Option func(*config)

// WithParallelism sets the default number of parallel subtasks of every
// operator. This overrides the default of runtime.GOMAXPROCS(0).
func WithParallelism(n int) Option { return func(c *config) { c.parallelism = n } }

// WithMaxParallelism sets the number of key groups of keyed state, the
// upper bound of any keyed operator's parallelism. It must stay the same
// for the whole life of a job's state. This overrides the default of 128.
func WithMaxParallelism(n int) Option { return func(c *config) { c.maxParallelism = n } }

// WithBatchSize sets the number of records per batch between operators and
// per source read. This overrides the default of 1024.
func WithBatchSize(n int) Option { return func(c *config) { c.batchSize = n } }

// WithStateBackend sets where the keyed state of KeyedProcess operators
// (and the joins built on it) lives, for example pebble.Factory for state
// larger than memory. This overrides the default of in-memory state.
func WithStateBackend(f state.BackendFactory) Option { return func(c *config) { c.stateFactory = f } }

// WithQueueCapacity sets how many batches each channel between two subtasks
// may have in flight before its sender blocks (backpressure). Memory used by
// queues is bounded by channels x capacity x batch size records. This
// overrides the default of 4.
func WithQueueCapacity(n int) Option { return func(c *config) { c.credits = n } }

// New returns an empty dataflow.
func New(opts ...Option) *Env {
	c := config{parallelism: runtime.GOMAXPROCS(0), maxParallelism: state.DefaultMaxParallelism, batchSize: 1024, credits: 4, bufferTimeout: DefaultBufferTimeout, clock: rt.SystemClock{}}
	for _, o := range opts {
		o(&c)
	}
	e := &Env{cfg: c}
	switch {
	case c.parallelism < 1:
		e.setErr(fmt.Errorf("stream: parallelism %d must be at least 1", c.parallelism))
	case c.maxParallelism < 1:
		e.setErr(fmt.Errorf("stream: max parallelism %d must be at least 1", c.maxParallelism))
	case c.batchSize < 1:
		e.setErr(fmt.Errorf("stream: batch size %d must be at least 1", c.batchSize))
	case c.credits < 1:
		e.setErr(fmt.Errorf("stream: queue capacity %d must be at least 1", c.credits))
	case c.bufferTimeout < 0:
		e.setErr(fmt.Errorf("stream: buffer timeout %v must not be negative", c.bufferTimeout))
	case c.markers < 0:
		e.setErr(fmt.Errorf("stream: latency marker interval %v must not be negative", c.markers))
	}
	return e
}

func (e *Env) setErr(err error) {
	if e.err == nil {
		e.err = err
	}
}

// OpOption configures one operator.
type OpOption func(*opConfig)

type opConfig struct {
	name        string
	parallelism int
	// async configures AsyncMap and AsyncMapBatch (async.go).
	async asyncConfig
	// wmDelay: WatermarkDelay, in ms.
	wmDelay int64
}

// Name names the operator in metrics and errors. Names default to the
// operator kind and its position in the graph, like "map-3".
func Name(name string) OpOption { return func(c *opConfig) { c.name = name } }

// Parallelism sets the operator's number of parallel subtasks, overriding
// the Env's default.
func Parallelism(n int) OpOption { return func(c *opConfig) { c.parallelism = n } }

// WatermarkDelay makes a KeyedProcess forward each watermark d behind the
// one it fires its timers at (Flink's KeyedCoProcessOperatorWithWatermarkDelay):
// what it emits with a timestamp up to d behind its watermark, from a
// record or a timer, is not late for the operators after it. An interval
// join over event time needs it: a pair is timestamped with its earlier
// row's time too, and an outer join emits a row that matched nothing once
// the watermark passed it. The final watermark (end of input) is
// forwarded as it is. Other operators ignore it.
func WatermarkDelay(d time.Duration) OpOption {
	return func(c *opConfig) { c.wmDelay = max(0, d.Milliseconds()) }
}

// node is one operator of the graph, type-erased; the typed closures that
// build its subtasks are made by the generic constructors.
type node struct {
	id     int
	name   string
	kind   string
	par    int
	setPar bool
	source bool
	sink   bool
	keyed  bool
	// inherit takes the parallelism of the (first) input unless set.
	inherit bool
	inputs  []*edge
	ports   []*port

	// resolve (sources only) lists the splits and returns their number.
	resolve func(ctx context.Context, parallelism int) (int, error)
	// build makes subtask bc.sub: a runner for sources, else the head
	// collector (collector[In] or twoInput[A, B]).
	build func(bc *buildCtx) any
	// newGate makes the input queue of a gated subtask.
	newGate func(nch, credits int, done <-chan struct{}) gateHandle
	// twoInputs marks operators that take two inputs of different types.
	twoInputs bool
	// snapshots marks operators that own state and acknowledge
	// checkpoints.
	snapshots bool

	chained bool
	// ownTask: the operator heads a task (goroutine) of its own, never
	// chained to its input (AsyncMap, whose task loop waits for answers).
	ownTask bool
	// fuseKeyed marks keyed operators that may join their input's chain
	// when both run as one subtask (event-time windows).
	fuseKeyed bool
	// wmDelay: how far a KeyedProcess forwards its watermarks behind
	// (WatermarkDelay), in ms.
	wmDelay int64
}

type port struct {
	edges []*edge
	tag   any // the OutputTag of a side-output port; nil for the main port
}

type edge struct {
	from     *node
	port     int
	to       *node
	input    int
	part     partitioning
	chanBase int
	// newExchange makes the exchange from upstream subtask sub to the
	// gates of the downstream subtasks.
	newExchange func(t *task, sub int, senders []any, chanBase int, cfg *config, downPar int) any
}

func (e *Env) newNode(kind string, opts []OpOption) *node {
	c := opConfig{}
	for _, o := range opts {
		o(&c)
	}
	n := &node{id: len(e.nodes), kind: kind, par: e.cfg.parallelism, ports: []*port{{}}, wmDelay: c.wmDelay}
	n.name = c.name
	if n.name == "" {
		n.name = fmt.Sprintf("%s-%d", kind, n.id)
	}
	if c.parallelism != 0 {
		n.par = c.parallelism
		n.setPar = true
		if c.parallelism < 1 {
			e.setErr(fmt.Errorf("stream: operator %q: parallelism %d must be at least 1", n.name, c.parallelism))
		}
	}
	e.nodes = append(e.nodes, n)
	return n
}

// Stream is a typed stream of records of type T: the output of a source or
// operator. It is a value; pass it to operator functions to extend the
// graph. Consuming a stream twice sends every record to both consumers.
type Stream[T any] struct {
	env  *Env
	n    *node
	port int
	part partitioning
	hash func(T) uint64
}

// Env returns the dataflow the stream belongs to.
func (s Stream[T]) Env() *Env { return s.env }

// Rebalance returns s distributed round-robin (by batch) over the
// subtasks of the next operator.
func Rebalance[T any](s Stream[T]) Stream[T] {
	s.part = partRebalance
	s.hash = nil
	return s
}

// Broadcast returns s sent in full to every subtask of the next operator.
func Broadcast[T any](s Stream[T]) Stream[T] {
	s.part = partBroadcast
	s.hash = nil
	return s
}

// connect adds the edge from s to input of node to.
func connect[T any](s Stream[T], to *node, input int) {
	if s.env == nil || s.n == nil {
		panic("stream: use of a zero Stream")
	}
	if s.port < 0 { // a missing side output; the Env already holds the error
		return
	}
	e := &edge{from: s.n, port: s.port, to: to, input: input, part: s.part}
	hash := s.hash
	e.newExchange = func(t *task, sub int, senders []any, chanBase int, cfg *config, downPar int) any {
		x := &exchange[T]{mode: e.part, hash: hash, self: sub, maxPar: uint64(cfg.maxParallelism)}
		for _, snd := range senders {
			x.w = append(x.w, newChanWriter(t, snd.(func(*batch[T])), chanBase+sub, cfg.credits, cfg.batchSize))
		}
		if e.part == partHash {
			x.kgTarget = make([]int32, cfg.maxParallelism)
			for kg := range x.kgTarget {
				x.kgTarget[kg] = int32(state.SubtaskFor(cfg.maxParallelism, downPar, kg))
			}
		}
		t.flush = append(t.flush, x)
		return collector[T](x)
	}
	s.n.ports[s.port].edges = append(s.n.ports[s.port].edges, e)
	to.inputs = append(to.inputs, e)
}

// buildCtx is what a node's build closure gets for one subtask.
type buildCtx struct {
	env  *Env
	job  *Job
	n    *node
	sub  int
	t    *task
	outs [][]any
	cnt  *rt.Counters
	// opIdx is the index of this subtask's entry in job.ops, once
	// counters made it.
	opIdx int
}

func (bc *buildCtx) counters() *rt.Counters {
	if bc.cnt == nil {
		bc.cnt = &rt.Counters{}
		bc.opIdx = len(bc.job.ops)
		bc.job.ops = append(bc.job.ops, opMetrics{name: bc.n.name, sub: bc.sub, par: bc.n.par, cnt: bc.cnt, t: bc.t})
	}
	return bc.cnt
}

// setSplit records which split a source subtask reads, for Metrics.
func (bc *buildCtx) setSplit(id string, split any) {
	bc.counters()
	op := &bc.job.ops[bc.opIdx]
	op.split = id
	op.lag, _ = split.(Lagger)
	if w, ok := split.(Waker); ok {
		bc.job.wakersMu.Lock()
		bc.job.wakers = append(bc.job.wakers, w)
		bc.job.wakersMu.Unlock()
	}
}

// maxPar returns the job's number of key groups.
func (bc *buildCtx) maxPar() int { return bc.env.cfg.maxParallelism }

// Job is a running dataflow.
type Job struct {
	env   *Env
	errs  *rt.FirstError
	wg    sync.WaitGroup
	tasks []*task
	ops   []opMetrics
	done  chan struct{}
	err   error
	// barrier is the latest checkpoint barrier requested; every source
	// split emits it between two reads.
	barrier atomic.Uint64
	// chk is the job's checkpointing, nil without.
	chk *chkRun
	// tasksDone is closed when every task has returned (before done).
	tasksDone chan struct{}
	// clock stamps batches; bufferTimeout and markers are in its units.
	clock         rt.Clock
	bufferTimeout int64
	markers       int64
	lat           latencies
	// wakers are the source splits that can cut a waiting Read short,
	// woken when a barrier is triggered.
	wakersMu sync.Mutex
	wakers   []Waker
	// plan is the physical plan this run executes.
	plan Plan
	// asyncs are the counters of the AsyncMap subtasks (AsyncMetrics).
	asyncs []*asyncStats
}

// triggerBarrier asks every source split to emit checkpoint barrier id
// (ids increase) before its next batch. It is the entry point of the
// checkpoint coordinator (issue 5).
func (j *Job) triggerBarrier(id uint64) {
	for {
		cur := j.barrier.Load()
		if id <= cur {
			return
		}
		if j.barrier.CompareAndSwap(cur, id) {
			break
		}
	}
	j.wakersMu.Lock()
	ws := j.wakers
	j.wakersMu.Unlock()
	for _, w := range ws {
		w.Wake()
	}
}

type opMetrics struct {
	name string
	sub  int
	par  int
	cnt  *rt.Counters
	t    *task
	// split and lag describe the split of a source subtask.
	split string
	lag   Lagger
}

// ErrAlreadyStarted is returned when an Env is executed a second time.
var ErrAlreadyStarted = errors.New("stream: dataflow already started")

// Execute runs the dataflow and waits for it: until every bounded source
// has ended and everything is written, until ctx is cancelled (it then
// returns ctx's error), or until the first error of any operator (which
// stops the job and is returned, as an *OperatorError for operator
// failures).
//
// With checkpointing and a restart policy (WithRestartPolicy), a failed
// run is restarted from the last complete checkpoint, with a growing wait
// between attempts; once the policy is exhausted Execute returns the last
// error wrapped with ErrRestartsExhausted.
func (e *Env) Execute(ctx context.Context) error {
	if e.err != nil {
		return e.err
	}
	if e.started {
		return ErrAlreadyStarted
	}
	e.started = true
	wait := e.cfg.chk.backoff
	for attempt := 0; ; attempt++ {
		j, err := e.start(ctx)
		if err == nil {
			if e.cfg.jobHook != nil {
				e.cfg.jobHook(j)
			}
			err = j.Wait()
		}
		if err == nil || ctx.Err() != nil || !e.cfg.chk.on() || e.cfg.chk.maxRestarts == 0 {
			return err
		}
		if attempt >= e.cfg.chk.maxRestarts {
			return fmt.Errorf("%w after %d restarts: %w", ErrRestartsExhausted, attempt, err)
		}
		if j != nil && j.CheckpointStats().Completed > 0 {
			// A run restored from an explicit checkpoint (WithRestoreFrom)
			// restarts from its own latest one, not from the first again
			// (which retention may have deleted meanwhile).
			e.cfg.chk.from = ""
		}
		log := e.cfg.chk.log
		if log == nil {
			log = slog.Default()
		}
		log.Warn("job failed, restarting from the last checkpoint", "attempt", attempt+1, "wait", wait, "err", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
		wait = min(2*wait, e.cfg.chk.maxBackoff)
	}
}

// Start plans the dataflow into parallel subtasks and starts them.
func (e *Env) Start(ctx context.Context) (*Job, error) {
	if e.err != nil {
		return nil, e.err
	}
	if e.started {
		return nil, ErrAlreadyStarted
	}
	e.started = true
	return e.start(ctx)
}

// start plans and starts one run of the dataflow; Execute calls it again
// to restart a failed job.
func (e *Env) start(ctx context.Context) (*Job, error) {
	cfg := &e.cfg
	for _, n := range e.nodes {
		if n.source {
			k, err := n.resolve(ctx, cfg.parallelism)
			if err != nil {
				return nil, fmt.Errorf("source %q: %w", n.name, err)
			}
			n.par = k
		}
		if n.keyed && n.par > cfg.maxParallelism {
			return nil, fmt.Errorf("stream: keyed operator %q: parallelism %d exceeds max parallelism %d", n.name, n.par, cfg.maxParallelism)
		}
	}
	// Plan: decide exchanges and chaining.
	lay := e.layout()
	for _, n := range e.nodes {
		n.par = lay.par[n.id]
		for i, in := range n.inputs {
			in.part = lay.part[n.id][i]
		}
		n.chained = lay.chained[n.id]
	}
	jctx, cancel := context.WithCancel(ctx)
	j := &Job{env: e, done: make(chan struct{}), tasksDone: make(chan struct{}),
		clock: cfg.clock, bufferTimeout: int64(cfg.bufferTimeout), markers: int64(cfg.markers)}
	j.errs = rt.NewFirstError(cancel)
	j.plan = e.plan(lay, true)
	if cfg.chk.on() {
		r, err := newChkRun(ctx, e)
		if err != nil {
			cancel()
			return nil, err
		}
		r.participants(e)
		j.chk = r
	}
	// Tasks: one per source split and per gated subtask; chained operators
	// join the task of their input.
	tasks := make([][]*task, len(e.nodes))
	for _, n := range e.nodes {
		tasks[n.id] = make([]*task, n.par)
		for sub := range n.par {
			if n.chained {
				tasks[n.id][sub] = tasks[n.inputs[0].from.id][sub]
				continue
			}
			t := &task{name: n.name, sub: sub, ctx: jctx, done: jctx.Done(), stats: rt.NewTaskStatsClock(cfg.clock), job: j}
			tasks[n.id][sub] = t
			j.tasks = append(j.tasks, t)
		}
	}
	// Gates of gated subtasks.
	gates := make([][]gateHandle, len(e.nodes))
	for _, n := range e.nodes {
		if n.source || n.chained {
			continue
		}
		nch := 0
		for _, in := range n.inputs {
			in.chanBase = nch
			nch += in.from.par
		}
		gates[n.id] = make([]gateHandle, n.par)
		for sub := range n.par {
			gates[n.id][sub] = n.newGate(nch, cfg.credits, jctx.Done())
		}
	}
	// Build subtasks from the sinks back to the sources, so that every
	// operator's downstream collectors exist when it is made.
	heads := make([][]any, len(e.nodes))
	for i := len(e.nodes) - 1; i >= 0; i-- {
		n := e.nodes[i]
		heads[n.id] = make([]any, n.par)
		for sub := range n.par {
			t := tasks[n.id][sub]
			bc := &buildCtx{env: e, job: j, n: n, sub: sub, t: t, outs: make([][]any, len(n.ports))}
			for p, pt := range n.ports {
				for _, ed := range pt.edges {
					if ed.to.chained {
						bc.outs[p] = append(bc.outs[p], heads[ed.to.id][sub])
						continue
					}
					senders := make([]any, ed.to.par)
					for ds := range ed.to.par {
						senders[ds] = gates[ed.to.id][ds].sender(ed.input)
					}
					bc.outs[p] = append(bc.outs[p], ed.newExchange(t, sub, senders, ed.chanBase, cfg, ed.to.par))
				}
			}
			heads[n.id][sub] = n.build(bc)
		}
	}
	if j.markers > 0 {
		// Every operator a marker reaches records its arrival; a source
		// records nothing (the marker is made there).
		for _, o := range j.ops {
			if o.split == "" {
				o.t.markerHists = append(o.t.markerHists, j.lat.get(LatencyMarker, o.name, ""))
			}
		}
	}
	// Launch.
	var runners []func()
	for _, n := range e.nodes {
		for sub := range n.par {
			t := tasks[n.id][sub]
			switch {
			case n.source:
				r := heads[n.id][sub].(runner)
				runners = append(runners, func() { t.exec(r) })
			case !n.chained:
				r := gates[n.id][sub].bind(heads[n.id][sub])
				runners = append(runners, func() { t.exec(r) })
			}
		}
	}
	j.wg.Add(len(runners))
	driven := make(chan struct{})
	if j.chk != nil {
		go func() {
			defer close(driven)
			j.chk.drive(j)
		}()
	} else {
		close(driven)
	}
	for _, r := range runners {
		go r()
	}
	go func() {
		j.wg.Wait()
		close(j.tasksDone)
		<-driven
		err := j.errs.Err()
		if errors.Is(err, errSavepointStop) {
			err = nil
		}
		if err == nil && ctx.Err() != nil {
			err = ctx.Err()
		}
		j.err = err
		cancel()
		close(j.done)
	}()
	return j, nil
}

// Wait blocks until the job ends and returns its error (nil when every
// bounded input was processed completely).
func (j *Job) Wait() error {
	<-j.done
	return j.err
}

// Done is closed when the job has ended.
func (j *Job) Done() <-chan struct{} { return j.done }

// Cancel stops the job; Wait then returns context.Canceled.
func (j *Job) Cancel() {
	j.errs.Set(context.Canceled)
}

// SubtaskMetrics describes one parallel instance of an operator.
type SubtaskMetrics struct {
	Operator    string
	Subtask     int
	Parallelism int
	// Task names the goroutine the operator runs in (the head of its chain).
	Task       string
	RecordsIn  int64
	RecordsOut int64
	// Dropped counts late records dropped by window operators.
	Dropped int64
	// Status of the task: busy, idle, backpressured or finished.
	Status        string
	Busy          time.Duration
	Idle          time.Duration
	Backpressured time.Duration
	// Watermark is the task's current input watermark in ms (math.MinInt64
	// before the first one).
	Watermark int64
	// Split is the ID of the split a source subtask reads; empty for other
	// operators.
	Split string
	// Lag is how many records the source subtask's split is behind the end
	// of its partition (Lagger); -1 when unknown or not a source.
	Lag int64
}

// Metrics returns the counters of every operator subtask. It may be called
// while the job runs (the values are read atomically, each a little apart
// in time) and after it ended.
func (j *Job) Metrics() []SubtaskMetrics {
	out := make([]SubtaskMetrics, 0, len(j.ops))
	for _, o := range j.ops {
		s := o.t.stats.Snapshot()
		out = append(out, SubtaskMetrics{
			Operator: o.name, Subtask: o.sub, Parallelism: o.par, Task: o.t.name,
			RecordsIn: o.cnt.In.Load(), RecordsOut: o.cnt.Out.Load(), Dropped: o.cnt.Dropped.Load(),
			Status: s.Status.String(), Busy: s.Busy, Idle: s.Idle, Backpressured: s.Backpressured,
			Watermark: s.Watermark, Split: o.split, Lag: o.lagNow(),
		})
	}
	return out
}

// lagNow is the split's lag, -1 when it cannot tell.
func (o *opMetrics) lagNow() int64 {
	if o.lag == nil {
		return -1
	}
	if l := o.lag.Lag(); l >= 0 {
		return l
	}
	return -1
}

var errDifferentEnv = errors.New("stream: streams of different dataflows cannot be combined")
