package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/record"
)

// Instance is one process's member of a clustered pipeline.
type Instance struct {
	cfg Config
	// markerSlack is how long after the transaction timeout a restore
	// still waits for an open transaction on its changelog to resolve
	// (restoreMarkerSlack; tests shorten it).
	markerSlack time.Duration
	// flushLogEvery is how often a commit waiting for the brokers to
	// acknowledge its writes logs a warning (flushLogInterval; tests
	// shorten it).
	flushLogEvery time.Duration
	topo          *Topology
	log           *slog.Logger
	inputs        []string // input topic of each sub-topology
	parts         []int32  // partition count of each sub-topology's input
	outPar        []int32  // partition count of each output topic
	// tombstoneKeep is, per stateful sub-topology, how long its
	// changelog keeps tombstones (delete.retention.ms): a local snapshot
	// older than half of it is not loaded (snapshot.go).
	tombstoneKeep map[int]time.Duration

	sess  *kgo.GroupTransactSession // exactly-once
	cl    *kgo.Client               // the group client (sess.Client() under exactly-once)
	adm   *kadm.Client
	rest  *kgo.Client // restores changelogs
	owned bool        // rest/adm are ours to close

	mu    sync.Mutex // tasks, cache, events: the loop and the group callbacks
	tasks map[taskID]*taskState
	cache map[taskID]*taskState // revoked tasks kept for a quick return
	// restoring: the tasks whose restore is under way (restore.go)
	restoring map[taskID]*taskState
	inTxn     bool
	// uncommitted: the tasks changed since the last commit (or rollback);
	// their state must then not be snapshotted.
	uncommitted bool

	opts []kgo.Opt
	clMu sync.Mutex // cl and sess change when a fenced instance rejoins

	snapWG sync.WaitGroup // snapshot writes in flight

	// repartition purges (purge.go), under mu
	purgeWG  sync.WaitGroup
	purging  bool
	purgedAt time.Time
	purged   map[taskID]int64 // offset purged up to, per repartition partition

	// standby replicas (standby.go)
	stby     *kgo.Client
	stbyMu   sync.Mutex
	standbys map[taskID]*taskState

	revMu   sync.Mutex
	revoked bool // partitions revoked or lost since the last check

	prodMu  sync.Mutex // producer promises run on franz-go's goroutines
	prodErr error
	// prodCtx is the context records are produced with through the
	// current client (a new one per connect, under prodMu). franz-go
	// finishes promises on its own goroutines, also after Close has
	// returned, so the writes of a client closed by rejoin can still fail
	// ("client closed") or land while the next client's transaction is
	// open; their records carry an older prodCtx and their promises are
	// ignored (stale).
	prodCtx context.Context
	metrics *metrics
}

type taskID struct {
	sub  int
	part int32
}

func (t taskID) String() string { return fmt.Sprintf("%d_%d", t.sub, t.part) }

// taskState is a task with what the instance keeps about it.
type taskState struct {
	id       taskID
	task     Task
	restored bool
	// changelogEnd is the next changelog offset this instance has
	// applied or written (a returning task restores from there).
	changelogEnd int64
	pendingEnd   int64 // changelog offsets produced in the open transaction
	comb         *combiner
	gen          *generator
	processed    int64
	cachedAt     time.Time // when it was revoked (in the cache)
	// local state snapshots (snapshot.go)
	snapshotAt   int64 // changelog offset of the last snapshot
	snapshotTime time.Time
	snapshotDone chan struct{}
	fromSnapshot bool
	promoted     bool // was a standby replica here
	logPromise   func(*kgo.Record, error)
	lastMarker   marker // the watermark last published
	published    bool
	lastOffset   int64 // last input offset processed
	lag          int64
	rst          *restoreJob // the restore under way (restore.go)
}

// New prepares an instance: it checks the source topic, creates the
// internal and output topics that are missing, and opens its clients.
// Run joins the group.
func New(ctx context.Context, cfg Config, topo *Topology) (_ *Instance, err error) {
	cfg, err = cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := topo.validate(); err != nil {
		return nil, err
	}
	in := &Instance{cfg: cfg, markerSlack: restoreMarkerSlack, flushLogEvery: flushLogInterval, topo: topo, log: cfg.Logger.With("application", cfg.ApplicationID, "instance", cfg.InstanceID),
		tasks: map[taskID]*taskState{}, cache: map[taskID]*taskState{}, restoring: map[taskID]*taskState{}, purged: map[taskID]int64{}, metrics: newMetrics(cfg.ApplicationID)}
	base := append([]kgo.Opt{kgo.SeedBrokers(cfg.Brokers...)}, cfg.ClientOptions...)
	// The clients opened so far are closed if a later step fails.
	var opened []*kgo.Client
	defer func() {
		if err != nil {
			for _, cl := range opened {
				cl.Close()
			}
		}
	}()
	newClient := func(opts ...kgo.Opt) (*kgo.Client, error) {
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
		opened = append(opened, cl)
		return cl, nil
	}
	// The admin client creates topics and then lists their offsets: its
	// metadata must not stay cached as "no such topic" for long.
	admCl, err := newClient(append(base, kgo.MetadataMinAge(100*time.Millisecond))...)
	if err != nil {
		return nil, err
	}
	in.adm = kadm.NewClient(admCl)
	if err := in.prepareTopics(ctx); err != nil {
		return nil, err
	}
	in.rest, err = newClient(append(base, kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords(), kgo.FetchMaxWait(100*time.Millisecond))...)
	if err != nil {
		return nil, err
	}
	if cfg.StandbyReplicas > 0 {
		in.standbys = map[taskID]*taskState{}
		in.stby, err = newClient(append(base, kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords(), kgo.FetchMaxWait(200*time.Millisecond))...)
		if err != nil {
			return nil, err
		}
	}
	opts := append(base,
		kgo.ConsumerGroup(cfg.ApplicationID),
		kgo.ConsumeTopics(in.inputs...),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.InstanceID(cfg.InstanceID),
		kgo.SessionTimeout(cfg.SessionTimeout),
		kgo.HeartbeatInterval(heartbeatInterval(cfg.SessionTimeout)),
		kgo.BlockRebalanceOnPoll(),
		kgo.DisableAutoCommit(),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0),
		kgo.FetchMaxWait(50*time.Millisecond),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsAssigned(in.onAssigned),
		kgo.OnPartitionsRevoked(in.onRevoked),
		kgo.OnPartitionsLost(in.onLost),
	)
	if debugCluster {
		opts = append(opts, kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelDebug, nil)))
	}
	if cfg.ExactlyOnce {
		opts = append(opts, kgo.TransactionalID(cfg.ApplicationID+"-"+cfg.InstanceID), kgo.TransactionTimeout(cfg.TransactionTimeout))
	}
	in.opts = opts
	in.removeSnapshotLeftovers()
	if err := in.connect(); err != nil {
		return nil, err
	}
	return in, nil
}

// connect opens the group client (a transact session under exactly-once).
func (in *Instance) connect() error {
	var (
		sess *kgo.GroupTransactSession
		cl   *kgo.Client
		err  error
	)
	if in.cfg.ExactlyOnce {
		sess, err = kgo.NewGroupTransactSession(in.opts...)
		if err == nil {
			cl = sess.Client()
		}
	} else {
		cl, err = kgo.NewClient(in.opts...)
	}
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	in.clMu.Lock()
	in.sess, in.cl = sess, cl
	in.clMu.Unlock()
	in.prodMu.Lock()
	in.prodCtx = context.WithValue(context.Background(), prodCtxKey{}, cl)
	in.prodMu.Unlock()
	return nil
}

// prodCtxKey keys the client a produce context belongs to.
type prodCtxKey struct{}

// stale reports whether r was produced through an earlier client than
// the current one; prodMu is held. A record that never reached Produce
// (its transaction could not begin) has no context and is current.
func (in *Instance) stale(r *kgo.Record) bool {
	return r.Context != nil && r.Context != in.prodCtx
}

// rejoin drops every task (rolled back to its last commit; stateful ones
// stay in the cache), closes the fenced client and joins the group again.
func (in *Instance) rejoin(cause error) error {
	in.log.Warn("cluster: this instance was fenced (its transaction can no longer commit); dropping its tasks and joining the group again", "error", cause)
	in.mu.Lock()
	// The fenced transaction's writes may still be completing: their
	// promises write pendingEnd under prodMu.
	for id, ts := range in.restoring {
		in.stopRestore(id, ts)
	}
	in.prodMu.Lock()
	for id, ts := range in.tasks {
		in.abortTask(ts)
		ts.pendingEnd = 0
		delete(in.tasks, id)
		if in.topo.SubTopologies[id.sub].Stateful && ts.restored {
			ts.cachedAt = time.Now()
			in.cache[id] = ts
		}
	}
	in.prodMu.Unlock()
	in.uncommitted = false
	in.mu.Unlock()
	in.inTxn = false
	if in.sess != nil {
		in.sess.CloseAllowingRebalance()
	} else {
		in.cl.CloseAllowingRebalance()
	}
	_ = in.takeProdErr()
	in.metrics.commit(false, 0)
	return in.connect()
}

// prepareTopics learns the partition counts and creates the missing
// topics: repartition topics (delete policy) and changelogs (compacted)
// with the source's partition count unless configured, outputs likewise.
func (in *Instance) prepareTopics(ctx context.Context) error {
	app := in.cfg.ApplicationID
	var srcParts int32
	var err error
	if in.topo.SourcePartitions > 0 {
		srcParts, err = in.ensureTopic(ctx, in.topo.Source, in.topo.SourcePartitions, nil)
	} else {
		srcParts, err = in.partitions(ctx, in.topo.Source)
	}
	if err != nil {
		return err
	}
	if srcParts == 0 {
		return fmt.Errorf("cluster: source topic %q does not exist: create it first (sluice topic create %s --partitions N)", in.topo.Source, in.topo.Source)
	}
	n := in.topo.Partitions
	if n <= 0 {
		n = srcParts
	}
	in.inputs = []string{in.topo.Source}
	in.parts = []int32{srcParts}
	for i, st := range in.topo.SubTopologies {
		if i > 0 {
			t := RepartitionTopic(app, st.Name)
			// No time retention: records carry their event time (see
			// purge.go).
			got, err := in.ensureTopic(ctx, t, n, map[string]*string{"cleanup.policy": ptr("delete"), "retention.ms": ptr("-1")})
			if err != nil {
				return err
			}
			in.inputs = append(in.inputs, t)
			in.parts = append(in.parts, got)
		}
		if st.Stateful {
			got, err := in.ensureTopic(ctx, ChangelogTopic(app, st.Name), in.parts[i], map[string]*string{"cleanup.policy": ptr("compact")})
			if err != nil {
				return err
			}
			if got != in.parts[i] {
				return fmt.Errorf("cluster: changelog %s has %d partitions, its input %s has %d: delete it or the application's internal topics and start again", ChangelogTopic(app, st.Name), got, in.inputs[i], in.parts[i])
			}
			if in.tombstoneKeep == nil {
				in.tombstoneKeep = map[int]time.Duration{}
			}
			in.tombstoneKeep[i] = in.deleteRetention(ctx, ChangelogTopic(app, st.Name))
		}
	}
	for _, t := range in.topo.Outputs {
		got, err := in.ensureTopic(ctx, t, srcParts, nil)
		if err != nil {
			return err
		}
		in.outPar = append(in.outPar, got)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

// defaultDeleteRetention is Kafka's delete.retention.ms default.
const defaultDeleteRetention = 24 * time.Hour

// deleteRetention is how long compaction keeps topic's tombstones
// (delete.retention.ms); Kafka's default when it cannot be read.
func (in *Instance) deleteRetention(ctx context.Context, topic string) time.Duration {
	rcs, err := in.adm.DescribeTopicConfigs(ctx, topic)
	var rc kadm.ResourceConfig
	if err == nil {
		rc, err = rcs.On(topic, nil)
	}
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		in.log.Warn("cluster: reading the changelog's delete.retention.ms; taking Kafka's default (24h)", "topic", topic, "error", err)
		return defaultDeleteRetention
	}
	for _, c := range rc.Configs {
		if c.Key != "delete.retention.ms" || c.Value == nil {
			continue
		}
		if ms, err := strconv.ParseInt(*c.Value, 10, 64); err == nil && ms >= 0 {
			return time.Duration(ms) * time.Millisecond
		}
	}
	return defaultDeleteRetention
}

// partitions is t's partition count, 0 if it does not exist.
func (in *Instance) partitions(ctx context.Context, t string) (int32, error) {
	td, err := in.adm.ListTopics(ctx, t)
	if err != nil {
		return 0, fmt.Errorf("cluster: listing topic %s on %v: %w", t, in.cfg.Brokers, err)
	}
	d, ok := td[t]
	if !ok || d.Err != nil {
		return 0, nil
	}
	return int32(len(d.Partitions)), nil
}

func (in *Instance) ensureTopic(ctx context.Context, t string, n int32, cfg map[string]*string) (int32, error) {
	got, err := in.partitions(ctx, t)
	if err != nil || got > 0 {
		return got, err
	}
	resp, err := in.adm.CreateTopic(ctx, n, -1, cfg, t)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		// Another instance may have created it meanwhile.
		if got, lerr := in.partitions(ctx, t); lerr == nil && got > 0 {
			return got, nil
		}
		if !errors.Is(err, kerr.TopicAlreadyExists) {
			return 0, fmt.Errorf("cluster: creating topic %s: %w", t, err)
		}
	}
	in.log.Info("cluster: created topic", "topic", t, "partitions", n)
	return n, nil
}

// Run joins the group and processes tasks until ctx ends (then it commits,
// leaves the group if configured, and returns nil) or a fatal error.
func (in *Instance) Run(ctx context.Context) (err error) {
	defer func() {
		cerr := in.close(err == nil)
		if err == nil {
			err = cerr
		}
	}()
	if in.stby != nil {
		sctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			in.runStandbys(sctx)
		}()
		defer func() {
			stop()
			<-done
		}()
	}
	next := time.Now().Add(in.cfg.CommitInterval)
	rejoins := 0
	for {
		deadline := next
		in.mu.Lock()
		if len(in.restoring) > 0 || in.unrestored() {
			// Restores go on between polls: a poll waits for the
			// running tasks' records only briefly.
			if soon := time.Now().Add(restoreWait); soon.Before(deadline) {
				deadline = soon
			}
		}
		in.mu.Unlock()
		pctx, cancel := context.WithDeadline(ctx, deadline)
		var fs kgo.Fetches
		if in.sess != nil {
			fs = in.sess.PollFetches(pctx)
		} else {
			fs = in.cl.PollFetches(pctx)
		}
		cancel()
		busyStart := time.Now()
		if fs.IsClientClosed() {
			return errors.New("cluster: the Kafka client closed")
		}
		for _, fe := range fs.Errors() {
			if errors.Is(fe.Err, context.Canceled) || errors.Is(fe.Err, context.DeadlineExceeded) {
				continue
			}
			if errors.Is(fe.Err, kerr.FencedInstanceID) {
				return in.instanceTaken(fe.Err)
			}
			in.log.Warn("cluster: fetch error", "topic", fe.Topic, "partition", fe.Partition, "error", fe.Err)
		}
		if in.sess != nil && !in.inTxn && in.takeRevoked() {
			// Partitions were revoked since the last transaction ended
			// (rebalances run only then): franz-go's session would abort
			// the next transaction. End this empty one now instead; that
			// rewinds fetching to the committed offsets, so what this poll
			// returned is fetched again.
			ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), in.cfg.TransactionTimeout)
			_, err := in.sess.End(ectx, kgo.TryAbort)
			cancel()
			if err != nil {
				return fmt.Errorf("cluster: resetting the session after a rebalance: %w", err)
			}
			if ctx.Err() != nil {
				return nil
			}
			continue
		}
		in.mu.Lock()
		perr := in.process(ctx, fs)
		if perr == nil && (len(in.restoring) > 0 || in.unrestored()) {
			// Every fetched record is processed: a restore stopped
			// here leaves the transaction free to commit.
			if rerr := in.restoreStep(ctx, nil, restoreWait); rerr != nil && (ctx.Err() == nil || !errors.Is(rerr, context.Canceled)) {
				perr = rerr
			}
		}
		in.mu.Unlock()
		if perr != nil {
			if ctx.Err() != nil && errors.Is(perr, context.Canceled) {
				// Stopped in the middle of a restore: some fetched
				// records were not processed, so nothing may commit
				// (the group would skip them). close aborts the open
				// transaction; the next owner starts from the last
				// commit.
				in.log.Info("cluster: stopped while restoring a task; the open transaction is aborted")
				return nil
			}
			return perr
		}
		now := time.Now()
		stopping := ctx.Err() != nil
		if !now.Before(next) || stopping {
			if err := in.commit(ctx); err != nil {
				var f errFenced
				if !errors.As(err, &f) || stopping {
					return err
				}
				if errors.Is(err, kerr.FencedInstanceID) {
					return in.instanceTaken(err)
				}
				if rejoins++; rejoins > maxRejoins {
					return fmt.Errorf("cluster: %d transactions in a row failed, last: %w", rejoins, f.err)
				}
				if err := in.rejoin(f.err); err != nil {
					return err
				}
			} else {
				rejoins = 0
			}
			next = time.Now().Add(in.cfg.CommitInterval)
			if stopping {
				return nil
			}
			in.metrics.busy(time.Since(busyStart))
			in.cl.AllowRebalance()
			continue
		}
		in.metrics.busy(time.Since(busyStart))
	}
}

// begin opens the transaction when the first record of a commit interval
// is processed or produced (not earlier: a rebalance between two
// transactions must find none open).
func (in *Instance) begin() error {
	if in.sess == nil || in.inTxn {
		return nil
	}
	if err := in.sess.Begin(); err != nil {
		return fmt.Errorf("cluster: beginning a transaction: %w", err)
	}
	in.inTxn = true
	return nil
}

// abortTask rolls a task back to its last commit: through the task's
// own undo, or, for a task that keeps none (UndoFree), by starting it
// afresh from its local snapshot and changelog, as Kafka Streams wipes
// and restores a task's store when a transaction aborts. Such a restore
// runs between polls with the task's input paused, as a restore after an
// assignment does (finishRestore resumes it): unpaused, the next fetch of
// the input made the poll loop restore the task inline, every other task
// waiting.
func (in *Instance) abortTask(ts *taskState) {
	if _, ok := ts.task.(UndoFree); ok && in.topo.SubTopologies[ts.id.sub].Stateful {
		in.freshState(ts)
		ts.changelogEnd, ts.restored, ts.snapshotAt = 0, false, -1
		in.loadSnapshot(ts)
		in.cl.PauseFetchPartitions(map[string][]int32{in.inputs[ts.id.sub]: {ts.id.part}})
		return
	}
	ts.task.Abort()
	if ts.comb != nil {
		ts.comb.abort()
	}
}

// freshState gives a task empty state: a new Task value (without undo
// when it can do without) and, downstream of a repartition topic, a new
// watermark combiner.
func (in *Instance) freshState(ts *taskState) {
	ts.task = in.newTaskValue(ts.id)
	if ts.id.sub > 0 {
		ts.comb = newCombiner(in.parts[ts.id.sub-1])
	}
}

// newTaskValue creates the Task of id, without undo bookkeeping when it
// can do without.
func (in *Instance) newTaskValue(id taskID) Task {
	t := in.topo.SubTopologies[id.sub].NewTask(id.part)
	if u, ok := t.(UndoFree); ok {
		u.DisableUndo()
	}
	return t
}

// takeRevoked reports (once) whether partitions were revoked or lost
// since it was last asked.
func (in *Instance) takeRevoked() bool {
	in.revMu.Lock()
	defer in.revMu.Unlock()
	r := in.revoked
	in.revoked = false
	return r
}

// process hands the fetched records to their tasks.
func (in *Instance) process(ctx context.Context, fs kgo.Fetches) error {
	if !fs.Empty() {
		// Consumed offsets commit in the transaction even when nothing
		// is produced.
		if err := in.begin(); err != nil {
			return err
		}
	}
	if !fs.Empty() {
		in.uncommitted = true
	}
	var err error
	now := time.Now()
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		if err != nil || len(p.Records) == 0 {
			return
		}
		sub := in.subOf(p.Topic)
		if sub < 0 {
			return
		}
		id := taskID{sub, p.Partition}
		ts := in.tasks[id]
		if ts == nil {
			// Assigned before fetching begins; a record of a task we do
			// not own is from a revoked partition's last fetch.
			return
		}
		if !ts.restored {
			// Its input is paused until its restore ends between polls
			// (restoreStep); records fetched before the pause wait for
			// the restore here.
			if err = in.restore(ctx, ts); err != nil {
				return
			}
		}
		out := &output{in: in, ts: ts}
		for _, r := range p.Records {
			if ts.comb != nil {
				m, isMarker, merr := parseMarker(r)
				if merr != nil {
					err = fmt.Errorf("cluster: %s partition %d offset %d: %w", r.Topic, r.Partition, r.Offset, merr)
					return
				}
				if isMarker {
					ts.comb.observe(m)
					in.log.Debug("cluster: watermark received", "task", id.String(), "from", m.from, "watermark", m.wm, "idle", m.idle, "offset", r.Offset)
					if wm, ok := ts.comb.advance(); ok {
						if err = ts.task.Watermark(out, wm); err != nil {
							err = fmt.Errorf("cluster: task %s: %w", id, err)
							return
						}
					}
					ts.lastOffset = r.Offset
					continue
				}
			}
			if ts.comb != nil && debugCluster {
				in.log.Info("debug process", "task", id.String(), "offset", r.Offset)
			}
			if err = ts.task.Process(out, r); err != nil {
				err = fmt.Errorf("cluster: task %s: %s partition %d offset %d: %w", id, r.Topic, r.Partition, r.Offset, err)
				return
			}
			ts.processed++
			ts.lastOffset = r.Offset
		}
		ts.lag = max(0, p.HighWatermark-ts.lastOffset-1)
		in.metrics.records(id, len(p.Records))
		if ts.gen != nil && out.forwarded {
			ts.gen.lastSeen = now
		}
	})
	return err
}

// unrestored reports whether a task waits for its restore (in.mu held).
func (in *Instance) unrestored() bool {
	for _, ts := range in.tasks {
		if !ts.restored {
			return true
		}
	}
	return false
}

// restoreWait bounds how long a restore step between two polls waits for
// changelog records.
const restoreWait = 50 * time.Millisecond

func (in *Instance) subOf(topic string) int {
	for i, t := range in.inputs {
		if t == topic {
			return i
		}
	}
	return -1
}

// output is a task's Output for one batch.
type output struct {
	in        *Instance
	ts        *taskState
	forwarded bool
}

func (o *output) produce(r *kgo.Record, changelog bool) {
	in := o.in
	if in.sess != nil && !in.inTxn {
		if err := in.begin(); err != nil {
			in.dataPromise(r, err)
			return
		}
	}
	promise := in.dataPromise
	if changelog {
		promise = o.ts.changelogPromise(in)
	}
	if in.sess != nil {
		in.sess.Produce(in.prodCtx, r, promise)
	} else {
		in.cl.Produce(in.prodCtx, r, promise)
	}
}

// dataPromise records the first failed write (one function for every
// record: no closure per record).
func (in *Instance) dataPromise(r *kgo.Record, err error) {
	if err == nil {
		return
	}
	in.prodMu.Lock()
	if in.prodErr == nil && !in.stale(r) {
		in.prodErr = fmt.Errorf("cluster: writing to %s partition %d: %w", r.Topic, r.Partition, err)
	}
	in.prodMu.Unlock()
}

// changelogPromise is the task's promise for its changelog writes: it
// also records the changelog's end.
func (ts *taskState) changelogPromise(in *Instance) func(*kgo.Record, error) {
	if ts.logPromise == nil {
		ts.logPromise = func(r *kgo.Record, err error) {
			if err != nil {
				in.dataPromise(r, err)
				return
			}
			in.prodMu.Lock()
			if !in.stale(r) {
				ts.pendingEnd = max(ts.pendingEnd, r.Offset+1)
			}
			in.prodMu.Unlock()
		}
	}
	return ts.logPromise
}

func (o *output) Forward(key, value []byte, ts int64) {
	next := o.ts.id.sub + 1
	n := o.in.parts[next]
	p := record.KafkaPartition(key, n)
	if o.ts.gen != nil {
		o.ts.gen.see(ts)
		o.forwarded = true
	}
	o.produce(&kgo.Record{Topic: o.in.inputs[next], Partition: p, Key: key, Value: value, Timestamp: time.UnixMilli(ts)}, false)
}

func (o *output) Emit(sink int, key, value []byte, ts int64) {
	n := o.in.outPar[sink]
	var p int32
	if key != nil {
		p = record.KafkaPartition(key, n)
	} else {
		p = o.ts.id.part % n
	}
	o.produce(&kgo.Record{Topic: o.in.topo.Outputs[sink], Partition: p, Key: key, Value: value, Timestamp: time.UnixMilli(ts)}, false)
}

func (o *output) Changelog(key, value []byte) {
	t := ChangelogTopic(o.in.cfg.ApplicationID, o.in.topo.SubTopologies[o.ts.id.sub].Name)
	o.produce(&kgo.Record{Topic: t, Partition: o.ts.id.part, Key: key, Value: value}, true)
}

// commit closes the current transaction (or, at-least-once, flushes and
// commits offsets): tasks flush their state, tasks with a next
// sub-topology publish their watermarks, and every task commits or rolls
// back with the outcome.
func (in *Instance) commit(ctx context.Context) error {
	start := time.Now()
	in.mu.Lock()
	defer in.mu.Unlock()
	now := time.Now()
	ids := in.sortedTasks()
	for _, id := range ids {
		ts := in.tasks[id]
		out := &output{in: in, ts: ts}
		if !ts.restored {
			continue
		}
		if err := ts.task.Flush(out); err != nil {
			return fmt.Errorf("cluster: task %s: flushing state: %w", id, err)
		}
		if ts.comb != nil {
			ts.comb.flush(out.Changelog)
		}
		if in.publishes(id) {
			m := in.marker(ts, now)
			if ts.published && m == ts.lastMarker {
				continue // unchanged: downstream tasks keep it in their state
			}
			ts.lastMarker, ts.published = m, true
			in.log.Debug("cluster: publishing a watermark", "task", id.String(), "watermark", m.wm, "idle", m.idle)
			next := id.sub + 1
			for p := range in.parts[next] {
				out.produce(&kgo.Record{Topic: in.inputs[next], Partition: p, Headers: []kgo.RecordHeader{m.header()}}, false)
			}
		}
	}
	committed := true
	if in.sess != nil && !in.inTxn {
		// Nothing consumed or written since the last commit: the
		// tasks hold their committed state.
		in.uncommitted = false
		return nil
	}
	if in.sess != nil {
		// End with a context that outlives a stopping ctx: the last
		// transaction must still close.
		ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), in.cfg.TransactionTimeout)
		// The writes land before the membership check (checkMember), so
		// that a "still a member" answer puts them below any changelog
		// end a next owner lists for its restore.
		merr := in.flush(ectx, in.cfg.TransactionTimeout, "cluster.session_timeout (the transaction timeout)")
		if merr == nil {
			merr = in.checkMember(ectx)
		}
		if merr != nil {
			_, _ = in.sess.End(ectx, kgo.TryAbort)
			cancel()
			in.inTxn = false
			return errFenced{merr}
		}
		ok, err := in.sess.End(ectx, kgo.TryCommit)
		cancel()
		in.inTxn = false
		if err != nil {
			// Fenced, or the client gave up (its state is then unknown):
			// either way a fresh session fences what this one left.
			return errFenced{fmt.Errorf("ending the transaction: %w", err)}
		}
		if perr := in.takeProdErr(); perr != nil && ok {
			// franz-go does not commit a transaction with a failed
			// write; if it ever did, the state could not follow.
			return fmt.Errorf("cluster: a transaction committed although a write failed: %w", perr)
		}
		committed = ok
	} else {
		// The offsets commit only once every record written since the
		// last commit is acknowledged; a broker that does not answer
		// fails the instance after cluster.delivery_timeout rather than
		// holding it forever, and nothing it did not write is committed.
		if err := in.flush(context.WithoutCancel(ctx), in.cfg.DeliveryTimeout, "cluster.delivery_timeout"); err != nil {
			return fmt.Errorf("cluster: %w; the offsets of the records since the last commit are not committed: they are processed again when the instance restarts", err)
		}
		if err := in.takeProdErr(); err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), in.cfg.DeliveryTimeout)
		err := in.cl.CommitUncommittedOffsets(cctx)
		cancel()
		if err != nil {
			// A rebalance under way refuses commits; the records since
			// the last commit are processed again by whoever gets them
			// (at-least-once). The next commit tries again.
			in.log.Warn("cluster: committing offsets failed; the records since the last commit may be processed again", "error", err)
		}
	}
	in.prodMu.Lock()
	for _, id := range ids {
		ts := in.tasks[id]
		if !ts.restored {
			continue // restoring between polls: its state is the changelog's
		}
		if committed {
			ts.task.Commit()
			if ts.comb != nil {
				ts.comb.commit()
			}
			ts.changelogEnd = max(ts.changelogEnd, ts.pendingEnd)
			if ts.gen != nil {
				ts.gen.commit()
			}
			in.maybeSnapshot(ts, false)
		} else {
			in.abortTask(ts)
			ts.published = false // its watermark records were aborted too
			if ts.gen != nil {
				ts.gen.abort()
			}
		}
		ts.pendingEnd = 0
	}
	in.prodMu.Unlock()
	in.uncommitted = false
	if committed {
		in.maybePurge()
	}
	in.metrics.commit(committed, time.Since(start))
	if !committed {
		in.log.Warn("cluster: transaction aborted (a rebalance or a fenced member); tasks rolled back to the last commit")
		// The rolled-back windows fire again once the watermark passes
		// them (under the next transaction).
		for _, id := range ids {
			ts := in.tasks[id]
			if ts.comb == nil || !ts.restored {
				continue
			}
			if wm, ok := ts.comb.resumed(); ok {
				in.uncommitted = true // windows fire again, in the next transaction
				if err := ts.task.Watermark(&output{in: in, ts: ts}, wm); err != nil {
					return fmt.Errorf("cluster: task %s: %w", id, err)
				}
			}
		}
	}
	return nil
}

// flushLogInterval is how often a commit waiting for the brokers logs
// a warning.
const flushLogInterval = 10 * time.Second

// flush waits until the brokers have acknowledged every record written
// so far, for at most timeout (named by setting in the error), logging a
// warning every in.flushLogEvery while it waits. Records it gave up on
// stay buffered: the caller must not commit past them.
func (in *Instance) flush(ctx context.Context, timeout time.Duration, setting string) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		sctx, scancel := context.WithTimeout(ctx, in.flushLogEvery)
		err := in.cl.Flush(sctx)
		scancel()
		if err == nil {
			return nil
		}
		n := in.cl.BufferedProduceRecords()
		if ctx.Err() != nil {
			return fmt.Errorf("the Kafka brokers did not acknowledge %d records written since the last commit within %s: check that the brokers are up and reachable from this instance, or raise %s", n, timeout, setting)
		}
		in.log.Warn("cluster: the commit is waiting for the Kafka brokers to acknowledge the records written since the last commit (outputs, repartition records, changelog writes); is a broker down?",
			"records", n, "waited", time.Since(start).Round(time.Millisecond), "timeout", timeout, "setting", setting)
	}
}

// checkMember fails when the group no longer has this member and the
// open transaction commits no offsets. A transaction's consumed offsets
// commit with the member's generation, and the coordinator refuses them
// (and so the transaction) from a member it dropped; a transaction that
// holds only writes — a watermark published, state flushed — carries no
// generation, so an instance the group has dropped (its session timed
// out, and it has not noticed yet) would commit them for tasks another
// member now owns. Such a transaction asks the coordinator first: this
// member must still be in the group. The caller flushes the writes first:
// a next owner is assigned only after the group dropped this member, so
// after the answer, and lists the changelog's end for its restore after
// that: the writes are below it, and its restore waits for this
// transaction to commit or abort. Asked before the flush, an instance
// paused in between until its tasks moved landed its writes above that
// end and committed them, and the next owner restored without them.
func (in *Instance) checkMember(ctx context.Context) error {
	if len(in.cl.UncommittedOffsets()) > 0 {
		return nil // the offset commit checks the generation
	}
	memberID, gen := in.cl.GroupMetadata()
	gs, err := in.adm.DescribeGroups(ctx, in.cfg.ApplicationID)
	if err == nil {
		if g, ok := gs[in.cfg.ApplicationID]; !ok {
			err = errors.New("the group was not described")
		} else {
			err = g.Err
		}
	}
	if err != nil {
		return fmt.Errorf("checking that the group still has this member before committing a transaction without offsets: %w", err)
	}
	for _, m := range gs[in.cfg.ApplicationID].Members {
		if memberID != "" && m.MemberID == memberID {
			return nil
		}
	}
	return fmt.Errorf("the group no longer has this member (member id %q, generation %d): its transaction holds writes for tasks another member may own", memberID, gen)
}

func (in *Instance) takeProdErr() error {
	in.prodMu.Lock()
	defer in.prodMu.Unlock()
	err := in.prodErr
	in.prodErr = nil
	return err
}

func (in *Instance) sortedTasks() []taskID {
	ids := make([]taskID, 0, len(in.tasks))
	for id := range in.tasks {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		if ids[i].sub != ids[j].sub {
			return ids[i].sub < ids[j].sub
		}
		return ids[i].part < ids[j].part
	})
	return ids
}

// onAssigned creates the tasks of newly assigned partitions (a task that
// was here before comes back from the cache with its state). A stateful
// task's input partition is paused until its changelog is restored,
// between polls, up to an end that includes every write the previous
// owner committed (restore.go).
func (in *Instance) onAssigned(_ context.Context, cl *kgo.Client, assigned map[string][]int32) {
	in.mu.Lock()
	defer in.mu.Unlock()
	pause := map[string][]int32{}
	for topic, parts := range assigned {
		sub := in.subOf(topic)
		if sub < 0 {
			continue
		}
		for _, p := range parts {
			id := taskID{sub, p}
			if in.tasks[id] != nil {
				continue
			}
			ts := in.promoteStandby(id)
			if ts == nil {
				ts = in.cache[id]
				if ts != nil && !in.cacheFresh(ts) {
					ts = nil // too old to catch up
				}
			}
			delete(in.cache, id)
			if ts == nil {
				ts = in.newTask(id)
			} else {
				ts.restored = false // catch up from changelogEnd
			}
			in.tasks[id] = ts
			if !ts.restored {
				// Restored between polls before it processes a record.
				pause[topic] = append(pause[topic], p)
			}
		}
	}
	if len(pause) > 0 {
		cl.PauseFetchPartitions(pause)
	}
	for id, ts := range in.cache {
		if !in.cacheFresh(ts) {
			delete(in.cache, id)
		}
	}
	in.metrics.rebalance(in.cfg.InstanceID, assigned, nil)
	in.log.Info("cluster: tasks assigned", "assigned", fmtParts(assigned), "tasks", len(in.tasks))
}

func (in *Instance) newTask(id taskID) *taskState {
	st := in.topo.SubTopologies[id.sub]
	ts := &taskState{id: id, task: in.newTaskValue(id), lastOffset: -1}
	if id.sub > 0 {
		ts.comb = newCombiner(in.parts[id.sub-1])
	}
	if !st.Stateful {
		ts.restored = true
	} else {
		ts.snapshotAt = -1
		in.loadSnapshot(ts)
	}
	if id.sub == 0 && in.publishes(id) {
		ts.gen = &generator{maxTS: NoWatermark, committedTS: NoWatermark, ooo: in.topo.MaxOutOfOrderness.Milliseconds(), idleTO: in.topo.IdleTimeout, lastSeen: time.Now()}
	}
	return ts
}

// publishes reports whether task id passes watermarks on to the next
// sub-topology (there is one, and the pipeline has event time).
func (in *Instance) publishes(id taskID) bool {
	return id.sub+1 < len(in.topo.SubTopologies) && in.topo.MaxOutOfOrderness >= 0
}

// marker is the watermark a publishing task passes on: a first
// sub-topology task's is derived from the event times it forwarded; a
// keyed task's is its input watermark (the one it last acted on, after
// firing what it completed), as a window operator forwards its input's
// in one process — not one derived from the times of the results it
// fired, which lag behind by the window and the out-of-orderness bound.
func (in *Instance) marker(ts *taskState, now time.Time) marker {
	if ts.gen != nil {
		return ts.gen.marker(ts.id.part, now)
	}
	return ts.comb.marker(ts.id.part)
}

// onRevoked drops revoked tasks. Rebalances happen only between a
// commit and the next poll that returns records (BlockRebalanceOnPoll),
// so the tasks usually hold exactly their committed state and stay in
// the cache; see drop for those revoked with a transaction open.
func (in *Instance) onRevoked(_ context.Context, cl *kgo.Client, revoked map[string][]int32) {
	cl.ResumeFetchPartitions(revoked) // paused if it was restoring
	in.drop(revoked, "revoked")
}

// onLost drops tasks the group took away without a revocation (this
// member was fenced or timed out).
func (in *Instance) onLost(_ context.Context, cl *kgo.Client, lost map[string][]int32) {
	cl.ResumeFetchPartitions(lost)
	in.drop(lost, "lost")
}

func (in *Instance) drop(parts map[string][]int32, why string) {
	n := 0
	for _, ps := range parts {
		n += len(ps)
	}
	if n > 0 {
		in.revMu.Lock()
		in.revoked = true
		in.revMu.Unlock()
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	for topic, ps := range parts {
		sub := in.subOf(topic)
		if sub < 0 {
			continue
		}
		for _, p := range ps {
			id := taskID{sub, p}
			if ts := in.tasks[id]; ts != nil {
				delete(in.tasks, id)
				// A task revoked while the transaction is open (after
				// a poll without records, a restore or a rollback may
				// have fired windows in a new one) holds changes that
				// transaction will not commit: franz-go aborts it, and
				// at-least-once its changelog writes were never
				// flushed. Neither cached nor snapshotted, it comes
				// back from its last snapshot and its changelog.
				if in.topo.SubTopologies[sub].Stateful && ts.restored && !in.uncommitted {
					ts.cachedAt = time.Now()
					in.cache[id] = ts
					if why == "revoked" {
						in.maybeSnapshot(ts, true)
					}
				}
			}
		}
	}
	in.metrics.rebalance(in.cfg.InstanceID, nil, parts)
	in.log.Info("cluster: tasks "+why, why, fmtParts(parts), "tasks", len(in.tasks))
}

func fmtParts(m map[string][]int32) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := ""
	for _, k := range keys {
		if s != "" {
			s += " "
		}
		s += fmt.Sprintf("%s%v", k, m[k])
	}
	return s
}

// close commits nothing more (Run's last commit did), leaves the group
// if configured and closes the clients.
func (in *Instance) close(clean bool) error {
	var err error
	in.mu.Lock()
	if in.uncommitted {
		// The run failed or stopped in the middle of a transaction: the
		// tasks hold changes no commit made durable. Neither the loop
		// below nor the revocation that closing the group client brings
		// may snapshot them; the snapshots on disk stay the last
		// committed ones.
		clear(in.tasks)
	}
	in.mu.Unlock()
	if in.sess != nil {
		if in.inTxn {
			ctx, cancel := context.WithTimeout(context.Background(), in.cfg.TransactionTimeout)
			_, _ = in.sess.End(ctx, kgo.TryAbort)
			cancel()
		}
		in.sess.CloseAllowingRebalance()
	} else {
		in.cl.CloseAllowingRebalance()
	}
	if clean && in.cfg.LeaveOnClose {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, lerr := in.adm.LeaveGroup(ctx, kadm.LeaveGroup(in.cfg.ApplicationID).InstanceIDs(in.cfg.InstanceID))
		cancel()
		if lerr == nil {
			lerr = resp.Error()
		}
		if lerr != nil {
			in.log.Warn("cluster: leaving the group", "error", lerr)
		}
	}
	if clean {
		in.mu.Lock()
		for _, ts := range in.tasks {
			in.maybeSnapshot(ts, true)
		}
		in.mu.Unlock()
	}
	in.snapWG.Wait()
	in.purgeWG.Wait()
	if in.stby != nil {
		in.stby.Close()
	}
	in.rest.Close()
	in.adm.Close()
	return err
}

// cacheTTL is how long the state of a task that left stays in memory
// for a quick return.
const cacheTTL = 10 * time.Minute

// cacheFresh reports whether a departed task's state may still catch up
// from its changelog offset: for at most cacheTTL, and for less than
// half the time its changelog keeps tombstones (a key deleted since
// could otherwise be compacted away, deletion and all, and come back).
func (in *Instance) cacheFresh(ts *taskState) bool {
	return time.Since(ts.cachedAt) <= min(cacheTTL, in.tombstoneKeeping(ts.id.sub)/2)
}

// tombstoneKeeping is how long sub-topology sub's changelog keeps
// tombstones (Kafka's default when the instance did not read it).
func (in *Instance) tombstoneKeeping(sub int) time.Duration {
	if keep, ok := in.tombstoneKeep[sub]; ok {
		return keep
	}
	return defaultDeleteRetention
}

// maxRejoins bounds how many failed transactions in a row an instance
// survives by joining the group again.
const maxRejoins = 5

// instanceTaken is the error of an instance fenced by another that
// joined the group with its instance id (FENCED_INSTANCE_ID): joining
// again would fence that one in turn, and the two would take the group
// slot from each other for ever, aborting each other's transactions.
func (in *Instance) instanceTaken(err error) error {
	return fmt.Errorf("cluster: another process joined the group %s with this instance id (%s) and took its place: give every instance its own --instance-id (a restart under the same id is fine once this one has stopped): %w",
		in.cfg.ApplicationID, in.cfg.InstanceID, err)
}

// errFenced is a commit that failed because the instance was fenced.
type errFenced struct{ err error }

func (e errFenced) Error() string { return "cluster: fenced: " + e.err.Error() }
func (e errFenced) Unwrap() error { return e.err }

// groupMetadata is the group client's member id and generation.
func (in *Instance) groupMetadata() (string, int32) {
	in.clMu.Lock()
	cl := in.cl
	in.clMu.Unlock()
	return cl.GroupMetadata()
}
