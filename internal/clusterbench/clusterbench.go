package clusterbench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/cluster"
)

// Config describes a run. Zero fields take the defaults named on each.
type Config struct {
	// Binary is the sluice executable run as `Binary serve` and `Binary
	// run`; required.
	Binary string
	// ChildEnv is added to the children's environment.
	ChildEnv []string
	// Broker is an existing Kafka-compatible server (HOST:PORT[,...]).
	// Empty (the default) starts `Binary serve` on a directory in
	// DataDir with fsync policy Fsync.
	Broker string
	// Fsync is the started server's --fsync. Default "always" (its own
	// default: group commit).
	Fsync string
	// DataDir holds the server's log and the instances' directories, in a
	// fresh subdirectory removed at the end. Default: the temp directory.
	DataDir string

	// Records is the number of orders of the throughput section. Default
	// 2,000,000.
	Records int
	// Keys is the number of distinct users. Default 100,000.
	Keys int
	// Partitions of the input topics. Default 4.
	Partitions int32
	// EventSpan is the event time the orders cover (their times grow
	// evenly over it); it sets how many 10 s windows each user has.
	// Default 1m.
	EventSpan time.Duration
	// Instances are the instance counts measured (`sluice bench
	// cluster` measures 1, 2, 3); none: no throughput section.
	Instances []int
	// Embedded measures the same pipeline in one `sluice run` process
	// without a cluster section, the baseline of the CPU ratio.
	Embedded bool
	// Delivery is exactly_once (default) or at_least_once.
	Delivery string
	// CommitInterval of cluster mode and checkpoint interval of the
	// embedded run. Default 1s.
	CommitInterval time.Duration
	// Runs repeats every measurement; results are medians. Default 1.
	Runs int

	// Failover measures failover of a dedup step over FailoverKeys keys.
	Failover bool
	// FailoverKeys is the state size of the failover pipeline. Default
	// 1,000,000.
	FailoverKeys int
	// SessionTimeouts are the session timeouts of the failover variant
	// without a restart, one measurement each; the variant with a restart
	// uses the first. Default 10s (cluster mode's default), 3s.
	SessionTimeouts []time.Duration

	// LogDir, when set, receives every child's output, one file per
	// process (NAME.log; a restarted instance appends to its file).
	LogDir string

	// Timeout bounds each wait for output. Default 5m.
	Timeout time.Duration
	// Progress, when set, receives a line about long steps every few
	// seconds.
	Progress func(msg string)
}

func (c Config) withDefaults() (Config, error) {
	if c.Binary == "" {
		return c, errors.New("clusterbench: Config.Binary (the sluice executable) is required")
	}
	if c.Fsync == "" {
		c.Fsync = "always"
	}
	if c.Records <= 0 {
		c.Records = 2_000_000
	}
	if c.Keys <= 0 {
		c.Keys = 100_000
	}
	if c.Partitions <= 0 {
		c.Partitions = 4
	}
	if c.EventSpan <= 0 {
		c.EventSpan = time.Minute
	}
	if c.EventSpan < time.Millisecond*time.Duration(c.Partitions) {
		return c, fmt.Errorf("clusterbench: event span %v is too short", c.EventSpan)
	}
	for _, n := range c.Instances {
		if n < 1 {
			return c, fmt.Errorf("clusterbench: instance count %d: must be at least 1", n)
		}
	}
	switch c.Delivery {
	case "":
		c.Delivery = "exactly_once"
	case "exactly_once", "at_least_once":
	default:
		return c, fmt.Errorf("clusterbench: delivery %q: want exactly_once or at_least_once", c.Delivery)
	}
	if c.CommitInterval <= 0 {
		c.CommitInterval = time.Second
	}
	if c.Runs <= 0 {
		c.Runs = 1
	}
	if c.FailoverKeys <= 0 {
		c.FailoverKeys = 1_000_000
	}
	if len(c.SessionTimeouts) == 0 {
		c.SessionTimeouts = []time.Duration{10 * time.Second, 3 * time.Second}
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Minute
	}
	if c.Progress == nil {
		c.Progress = func(string) {}
	}
	return c, nil
}

// Machine describes where a run was measured.
type Machine struct {
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPUModel   string `json:"cpu_model,omitempty"`
	GoVersion  string `json:"go_version"`
	// LoadAverage is /proc/loadavg's 1, 5 and 15 minute figures when the
	// run started (the machine may be shared).
	LoadAverage []float64 `json:"load_average_before,omitempty"`
}

// ThroughputRun is one measurement of the window pipeline.
type ThroughputRun struct {
	// Instances is the number of cluster instances; 0 for the embedded
	// run.
	Instances int `json:"instances"`
	// WallSec is from starting the processes until the committed output
	// held every expected window (embedded: until the process exited).
	WallSec float64 `json:"wall_s"`
	// FirstOutputSec is from the start until the first output record was
	// committed (0 when not observed).
	FirstOutputSec float64 `json:"first_output_s"`
	// SettledSec is from the start until the group was first seen stable
	// with every instance owning tasks (polled every 0.5 s; 0 when not
	// seen before the output was complete).
	SettledSec    float64 `json:"group_settled_s"`
	RecordsPerSec float64 `json:"records_per_s"`
	// CPUSec is the user+system CPU time of the instances (embedded: of
	// the process), from start to exit.
	CPUSec           float64 `json:"cpu_s"`
	RecordsPerCPUSec float64 `json:"records_per_cpu_s"`
	CPUMicrosPerRec  float64 `json:"cpu_us_per_record"`
	// BrokerCPUSec is the server's CPU time over WallSec (0 when the
	// server is not a child of the benchmark).
	BrokerCPUSec float64 `json:"broker_cpu_s"`
	// RecordsPerTotalCPUSec counts the broker's CPU time too.
	RecordsPerTotalCPUSec float64 `json:"records_per_total_cpu_s"`
	// CoresUsed is the processes' and the broker's CPU over the wall
	// time.
	CoresUsed float64 `json:"cores_used"`
	// RepartitionOffsets and ChangelogOffsets are the end offsets of the
	// internal topics after the run, summed over partitions: the records
	// written to them, watermark records and transaction markers
	// included.
	RepartitionOffsets int64 `json:"repartition_offsets,omitempty"`
	ChangelogOffsets   int64 `json:"changelog_offsets,omitempty"`
	// Windows is the number of distinct windows read; Exact says they are
	// exactly the expected ones (each once, with the right counts and
	// sums).
	Windows    int64 `json:"windows"`
	Duplicates int64 `json:"duplicates"`
	Exact      bool  `json:"exact"`
}

// ThroughputResult is one instance count (or the embedded run): the
// median of its runs, field by field, and the runs.
type ThroughputResult struct {
	Instances int             `json:"instances"`
	Median    ThroughputRun   `json:"median"`
	Runs      []ThroughputRun `json:"runs"`
}

// FailoverRun is one failover measurement.
type FailoverRun struct {
	Restart           bool    `json:"restart"`
	SessionTimeoutSec float64 `json:"session_timeout_s"`
	Keys              int     `json:"keys"`
	// KilledTasks and KilledStatefulTasks are the source and dedup tasks
	// i1 owned when it was killed.
	KilledTasks         int `json:"killed_source_tasks"`
	KilledStatefulTasks int `json:"killed_dedup_tasks"`
	// BuildSec is from starting i1 (i2 starts once i1 owns every task)
	// until the output of every key was committed.
	BuildSec        float64 `json:"build_s"`
	BuildKeysPerSec float64 `json:"build_keys_per_s"`
	// BaselineProbeSec is how long probes took through the pipeline
	// before the kill (from producing them until the last one's output
	// was committed): the latency a failover adds to.
	BaselineProbeSec float64 `json:"baseline_probe_s"`
	// FailoverSec is from the SIGKILL until the output of the last probe
	// was committed; FirstProbeSec until the first.
	FailoverSec   float64 `json:"failover_s"`
	FirstProbeSec float64 `json:"first_probe_s"`
	// TakeoverSec is from the SIGKILL until the instance taking over
	// (the restarted one, or the survivor) logged its new tasks (0 when
	// not seen).
	TakeoverSec float64 `json:"takeover_s"`
	// Restore is what the instances logged as restored after the kill:
	// tasks, changelog records and bytes, the longest task restore.
	RestoredTasks   int     `json:"restored_tasks"`
	RestoredRecords int64   `json:"restored_records"`
	RestoredBytes   int64   `json:"restored_bytes"`
	RestoreMaxSec   float64 `json:"restore_max_s"`
	Probes          int     `json:"probes"`
	Duplicates      int64   `json:"duplicates"`
	Exact           bool    `json:"exact"`
}

// FailoverResult is one failover variant: medians and runs.
type FailoverResult struct {
	Restart           bool          `json:"restart"`
	SessionTimeoutSec float64       `json:"session_timeout_s"`
	Median            FailoverRun   `json:"median"`
	Runs              []FailoverRun `json:"runs"`
}

// Result is the outcome of a run.
type Result struct {
	Started        time.Time `json:"started"`
	Machine        Machine   `json:"machine"`
	Broker         string    `json:"broker"`
	Fsync          string    `json:"fsync,omitempty"`
	Delivery       string    `json:"delivery"`
	CommitInterval string    `json:"commit_interval"`
	Records        int       `json:"records"`
	Keys           int       `json:"keys"`
	Partitions     int32     `json:"partitions"`
	EventSpan      string    `json:"event_span"`
	// ExpectedWindows is the number of (user, window) results.
	ExpectedWindows int64 `json:"expected_windows"`
	Runs            int   `json:"runs"`
	// ProduceSec is how long writing the orders took (before any
	// pipeline ran).
	ProduceSec    float64            `json:"produce_s"`
	ProducePerSec float64            `json:"produce_records_per_s"`
	Throughput    []ThroughputResult `json:"throughput"`
	Embedded      *ThroughputResult  `json:"embedded,omitempty"`
	// CPURatio is cluster mode with one instance's CPU per record over
	// the embedded run's (medians); CPURatioWithBroker adds the broker's
	// CPU to both.
	CPURatio           float64          `json:"cluster1_over_embedded_cpu_per_record,omitempty"`
	CPURatioWithBroker float64          `json:"cluster1_over_embedded_cpu_per_record_with_broker,omitempty"`
	Failover           []FailoverResult `json:"failover,omitempty"`
	FailoverKeys       int              `json:"failover_keys,omitempty"`
}

// bench is a run in progress.
type bench struct {
	cfg    Config
	dir    string
	broker *broker
	stamp  string
	prod   *producer
	adm    *kadm.Client
	o      orders
	want   expected
	in     string
	procs  []*proc
	start  time.Time
}

// Run measures what cfg asks for against one broker.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Result{}, err
	}
	b := &bench{cfg: cfg, stamp: fmt.Sprintf("cb%d", time.Now().Unix()%1_000_000), start: time.Now()}
	b.o = orders{n: cfg.Records, keys: cfg.Keys, parts: cfg.Partitions, span: cfg.EventSpan.Milliseconds()}
	res := Result{
		Started: time.Now().UTC().Truncate(time.Second), Machine: machine(),
		Fsync: cfg.Fsync, Delivery: cfg.Delivery, CommitInterval: cfg.CommitInterval.String(),
		Records: cfg.Records, Keys: cfg.Keys, Partitions: cfg.Partitions, EventSpan: cfg.EventSpan.String(), Runs: cfg.Runs,
	}
	parent := cfg.DataDir
	if parent == "" {
		parent = os.TempDir()
	}
	if b.dir, err = os.MkdirTemp(parent, "sluice-clusterbench-"); err != nil {
		return res, fmt.Errorf("bench directory: %w", err)
	}
	defer os.RemoveAll(b.dir)
	if cfg.LogDir != "" {
		if err := os.MkdirAll(cfg.LogDir, 0o755); err != nil {
			return res, fmt.Errorf("log directory: %w", err)
		}
	}
	defer b.stopChildren()

	if cfg.Broker != "" {
		b.broker = &broker{addr: cfg.Broker}
		res.Broker, res.Fsync = cfg.Broker, ""
	} else {
		b.progress("starting sluice serve (fsync %s)", cfg.Fsync)
		if b.broker, err = startBroker(cfg.Binary, b.dir, cfg.Fsync, cfg.ChildEnv, b.logFile("serve"), time.Minute); err != nil {
			return res, err
		}
		b.procs = append(b.procs, b.broker.p)
		res.Broker = "sluice serve child (" + b.broker.addr + ")"
	}
	if b.prod, err = newProducer(b.broker.addr); err != nil {
		return res, err
	}
	defer b.prod.close()
	b.adm = kadm.NewClient(b.prod.cl)

	if len(cfg.Instances) > 0 || cfg.Embedded {
		b.want = b.o.expected()
		res.ExpectedWindows = b.want.windows
		b.in = b.stamp + "-orders"
		if err := createTopics(ctx, b.broker.addr, cfg.Partitions, b.in); err != nil {
			return res, err
		}
		b.progress("producing %d orders into %s", cfg.Records, b.in)
		t := time.Now()
		if err := b.prod.produceOrders(ctx, b.in, b.o); err != nil {
			return res, err
		}
		res.ProduceSec = time.Since(t).Seconds()
		res.ProducePerSec = float64(cfg.Records) / res.ProduceSec
		runs := map[int][]ThroughputRun{}
		var emb []ThroughputRun
		for r := range cfg.Runs {
			for _, n := range cfg.Instances {
				tr, err := b.throughput(ctx, n, r)
				if err != nil {
					return res, fmt.Errorf("throughput with %d instances: %w", n, err)
				}
				runs[n] = append(runs[n], tr)
			}
			if cfg.Embedded {
				tr, err := b.embedded(ctx, r)
				if err != nil {
					return res, fmt.Errorf("embedded run: %w", err)
				}
				emb = append(emb, tr)
			}
		}
		for _, n := range cfg.Instances {
			res.Throughput = append(res.Throughput, ThroughputResult{Instances: n, Median: medianThroughput(runs[n]), Runs: runs[n]})
		}
		if cfg.Embedded {
			res.Embedded = &ThroughputResult{Median: medianThroughput(emb), Runs: emb}
			for _, t := range res.Throughput {
				if t.Instances == 1 && res.Embedded.Median.CPUMicrosPerRec > 0 {
					e := res.Embedded.Median
					res.CPURatio = t.Median.CPUMicrosPerRec / e.CPUMicrosPerRec
					if t.Median.RecordsPerTotalCPUSec > 0 && e.RecordsPerTotalCPUSec > 0 {
						res.CPURatioWithBroker = e.RecordsPerTotalCPUSec / t.Median.RecordsPerTotalCPUSec
					}
				}
			}
		}
	}
	if cfg.Failover {
		res.FailoverKeys = cfg.FailoverKeys
		type variant struct {
			restart bool
			session time.Duration
		}
		vs := []variant{{true, cfg.SessionTimeouts[0]}}
		for _, s := range cfg.SessionTimeouts {
			vs = append(vs, variant{false, s})
		}
		runs := make([][]FailoverRun, len(vs))
		for r := range cfg.Runs {
			for i, v := range vs {
				fr, err := b.failover(ctx, v.restart, v.session, r)
				if err != nil {
					return res, fmt.Errorf("failover (restart %v, session timeout %v): %w", v.restart, v.session, err)
				}
				runs[i] = append(runs[i], fr)
			}
		}
		for i, v := range vs {
			res.Failover = append(res.Failover, FailoverResult{Restart: v.restart, SessionTimeoutSec: v.session.Seconds(), Median: medianFailover(runs[i]), Runs: runs[i]})
		}
	}
	if err := b.broker.close(); err != nil {
		return res, err
	}
	return res, nil
}

// logFile is the log file of the child named name, or "" without a
// LogDir.
func (b *bench) logFile(name string) string {
	if b.cfg.LogDir == "" {
		return ""
	}
	return filepath.Join(b.cfg.LogDir, name+".log")
}

func (b *bench) progress(format string, args ...any) {
	b.cfg.Progress(fmt.Sprintf("[%6.1fs] ", time.Since(b.start).Seconds()) + fmt.Sprintf(format, args...))
}

// stopChildren stops every child still running (on an error path):
// the instances, then the broker.
func (b *bench) stopChildren() {
	var ps []*proc
	for _, p := range b.procs {
		if b.broker == nil || p != b.broker.p {
			ps = append(ps, p)
		}
	}
	_ = stopAll(10*time.Second, ps...)
	if b.broker != nil {
		_ = b.broker.close()
	}
}

// instance starts `sluice run --cluster` as id on spec; watch, when not
// nil, sees its output lines.
func (b *bench) instance(app, id, spec string, watch func(string, time.Time)) (*proc, error) {
	dir := filepath.Join(b.dir, app, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	p, err := startProc("instance "+id+" of "+app, b.cfg.Binary, dir, b.cfg.ChildEnv, b.logFile(app+"-"+id), watch,
		"run", "--cluster", b.broker.addr, "--instance-id", id, "--log-format", "json", "--data-dir", dir, spec)
	if err != nil {
		return nil, err
	}
	b.procs = append(b.procs, p)
	return p, nil
}

// waitFor polls rd, passing each record to each, until done says so, a
// child exits unasked, ctx ends or the timeout passes; every few seconds
// it reports status() as progress.
func (b *bench) waitFor(ctx context.Context, rd *reader, what string, each func(*kgo.Record, time.Time), done func() bool, status func() string, tick func(), ps ...*proc) error {
	end := time.Now().Add(b.cfg.Timeout)
	nextReport := time.Now().Add(3 * time.Second)
	for !done() {
		if err := unexpectedExit(ps...); err != nil {
			return err
		}
		if b.broker.p != nil {
			if err := unexpectedExit(b.broker.p); err != nil {
				return err
			}
		}
		if time.Now().After(end) {
			return fmt.Errorf("%s: not done within %v: %s", what, b.cfg.Timeout, status())
		}
		var at time.Time
		err := rd.poll(ctx, 250*time.Millisecond, func(r *kgo.Record) {
			if at.IsZero() {
				at = time.Now()
			}
			each(r, at)
		})
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if tick != nil {
			tick()
		}
		if now := time.Now(); now.After(nextReport) {
			b.progress("%s: %s", what, status())
			nextReport = now.Add(3 * time.Second)
		}
	}
	return nil
}

// throughput measures the window pipeline with n instances.
func (b *bench) throughput(ctx context.Context, n, run int) (ThroughputRun, error) {
	tr := ThroughputRun{Instances: n}
	app := fmt.Sprintf("%s-x%d-r%d", b.stamp, n, run+1)
	out := app + "-out"
	if err := createTopics(ctx, b.broker.addr, b.cfg.Partitions, out); err != nil {
		return tr, err
	}
	if err := os.MkdirAll(filepath.Join(b.dir, app), 0o755); err != nil {
		return tr, err
	}
	spec, err := writeSpec(filepath.Join(b.dir, app), "pipeline.yaml", clusterSpec(app, b.in, out, b.cfg.Delivery, b.cfg.CommitInterval, 0))
	if err != nil {
		return tr, err
	}
	rd, err := newReader(b.broker.addr, out)
	if err != nil {
		return tr, err
	}
	defer rd.close()
	what := fmt.Sprintf("throughput, %d instance(s), run %d/%d", n, run+1, b.cfg.Runs)
	b.progress("%s: starting", what)
	brokerBefore, brokerOK := b.broker.cpu()
	start := time.Now()
	ps := make([]*proc, 0, n)
	for i := range n {
		p, err := b.instance(app, fmt.Sprintf("i%d", i+1), spec, nil)
		if err != nil {
			return tr, err
		}
		ps = append(ps, p)
	}
	tally := newWindowTally(b.o)
	var first, last, settled, checked time.Time
	settle := func() {
		if !settled.IsZero() || time.Since(checked) < 500*time.Millisecond {
			return
		}
		checked = time.Now()
		if g, err := b.describe(ctx, app); err == nil && g.settled(n) {
			settled = checked
		}
	}
	err = b.waitFor(ctx, rd, what, func(r *kgo.Record, at time.Time) {
		if first.IsZero() {
			first = at
		}
		last = at
		tally.add(r.Value)
	}, func() bool { return tally.windows >= b.want.windows }, func() string {
		return fmt.Sprintf("%d of %d windows after %.0fs", tally.windows, b.want.windows, time.Since(start).Seconds())
	}, settle, ps...)
	if err != nil {
		return tr, err
	}
	brokerAfter, _ := b.broker.cpu()
	if err := stopAll(30*time.Second, ps...); err != nil {
		return tr, err
	}
	// Whatever arrived during the stop (duplicates, if any) counts too.
	_ = rd.poll(ctx, 200*time.Millisecond, func(r *kgo.Record) { tally.add(r.Value) })
	var cpu time.Duration
	for _, p := range ps {
		cpu += p.cpu()
	}
	tr.RepartitionOffsets = b.endOffsets(ctx, cluster.RepartitionTopic(app, windowStep))
	tr.ChangelogOffsets = b.endOffsets(ctx, cluster.ChangelogTopic(app, windowStep))
	tr.WallSec = last.Sub(start).Seconds()
	tr.FirstOutputSec = first.Sub(start).Seconds()
	if !settled.IsZero() {
		tr.SettledSec = settled.Sub(start).Seconds()
	}
	tr.CPUSec = cpu.Seconds()
	if brokerOK {
		tr.BrokerCPUSec = (brokerAfter - brokerBefore).Seconds()
	}
	b.fill(&tr, tally)
	b.progress("%s: %.1f s, %.0f records/s, %.0f records per CPU-second", what, tr.WallSec, tr.RecordsPerSec, tr.RecordsPerCPUSec)
	return tr, nil
}

// fill computes the rates of tr from its times and the tally.
func (b *bench) fill(tr *ThroughputRun, tally *windowTally) {
	recs := float64(b.cfg.Records)
	if tr.WallSec > 0 {
		tr.RecordsPerSec = recs / tr.WallSec
		tr.CoresUsed = (tr.CPUSec + tr.BrokerCPUSec) / tr.WallSec
	}
	if tr.CPUSec > 0 {
		tr.RecordsPerCPUSec = recs / tr.CPUSec
		tr.CPUMicrosPerRec = tr.CPUSec * 1e6 / recs
	}
	if tr.BrokerCPUSec > 0 {
		tr.RecordsPerTotalCPUSec = recs / (tr.CPUSec + tr.BrokerCPUSec)
	}
	tr.Windows, tr.Duplicates = tally.windows, tally.duplicates
	tr.Exact = tally.exact(b.want)
}

// embedded measures the same pipeline without a cluster section, in one
// process reading the orders as a bounded source.
func (b *bench) embedded(ctx context.Context, run int) (ThroughputRun, error) {
	tr := ThroughputRun{}
	app := fmt.Sprintf("%s-embedded-r%d", b.stamp, run+1)
	out := app + "-out"
	if err := createTopics(ctx, b.broker.addr, b.cfg.Partitions, out); err != nil {
		return tr, err
	}
	dir := filepath.Join(b.dir, app)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return tr, err
	}
	spec, err := writeSpec(dir, "pipeline.yaml", embeddedSpec(b.broker.addr, app, b.in, out, b.cfg.Delivery, b.cfg.CommitInterval, filepath.Join(dir, "checkpoints")))
	if err != nil {
		return tr, err
	}
	what := fmt.Sprintf("embedded, run %d/%d", run+1, b.cfg.Runs)
	b.progress("%s: starting", what)
	brokerBefore, brokerOK := b.broker.cpu()
	start := time.Now()
	p, err := startProc("sluice run (embedded)", b.cfg.Binary, dir, b.cfg.ChildEnv, b.logFile(app), nil, "run", "--quiet", "--data-dir", filepath.Join(dir, "data"), spec)
	if err != nil {
		return tr, err
	}
	b.procs = append(b.procs, p)
	timer := time.NewTimer(b.cfg.Timeout)
	defer timer.Stop()
	tick := time.NewTicker(3 * time.Second)
	defer tick.Stop()
wait:
	for {
		select {
		case <-p.exited:
			break wait
		case <-tick.C:
			b.progress("%s: running for %.0fs", what, time.Since(start).Seconds())
		case <-timer.C:
			_ = p.stop(10 * time.Second)
			return tr, fmt.Errorf("%s: not done within %v", what, b.cfg.Timeout)
		case <-ctx.Done():
			_ = p.stop(10 * time.Second)
			return tr, ctx.Err()
		}
	}
	tr.WallSec = time.Since(start).Seconds()
	brokerAfter, _ := b.broker.cpu()
	if p.err != nil {
		return tr, p.exitError()
	}
	tr.CPUSec = p.cpu().Seconds()
	if brokerOK {
		tr.BrokerCPUSec = (brokerAfter - brokerBefore).Seconds()
	}
	rd, err := newReader(b.broker.addr, out)
	if err != nil {
		return tr, err
	}
	defer rd.close()
	tally := newWindowTally(b.o)
	err = b.waitFor(ctx, rd, what+" (reading its output)", func(r *kgo.Record, _ time.Time) { tally.add(r.Value) },
		func() bool { return tally.windows >= b.want.windows },
		func() string { return fmt.Sprintf("%d of %d windows", tally.windows, b.want.windows) }, nil)
	if err != nil {
		return tr, err
	}
	// The bounded run flushes the end records' window too: not counted.
	_ = rd.poll(ctx, 200*time.Millisecond, func(r *kgo.Record) { tally.add(r.Value) })
	b.fill(&tr, tally)
	b.progress("%s: %.1f s, %.0f records per CPU-second", what, tr.WallSec, tr.RecordsPerCPUSec)
	return tr, nil
}

func machine() Machine {
	m := Machine{OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(b))
		for _, s := range f[:min(3, len(f))] {
			if x, err := strconv.ParseFloat(s, 64); err == nil {
				m.LoadAverage = append(m.LoadAverage, x)
			}
		}
	}
	return m
}

// windowStep names the window step's internal topics (the planner names
// them after the step's path, steps[0].window).
const windowStep = "step0-window"

// endOffsets is the sum of topic's end offsets (0 when they cannot be
// listed).
func (b *bench) endOffsets(ctx context.Context, topic string) int64 {
	offs, err := b.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0
	}
	var n int64
	offs.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			n += o.Offset
		}
	})
	return n
}

// group is a consumer group as DescribeGroups shows it.
type group struct {
	state string
	// owned is each member's (instance id's) partition count per topic.
	owned map[string]map[string]int
}

// describe describes the consumer group of application app.
func (b *bench) describe(ctx context.Context, app string) (group, error) {
	g := group{owned: map[string]map[string]int{}}
	gs, err := b.adm.DescribeGroups(ctx, app)
	if err != nil {
		return g, err
	}
	d, ok := gs[app]
	if !ok {
		return g, fmt.Errorf("group %s not described", app)
	}
	if d.Err != nil {
		return g, d.Err
	}
	g.state = d.State
	for _, m := range d.Members {
		id := m.MemberID
		if m.InstanceID != nil {
			id = *m.InstanceID
		}
		own := map[string]int{}
		if ca, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range ca.Topics {
				own[t.Topic] += len(t.Partitions)
			}
		}
		g.owned[id] = own
	}
	return g, nil
}

// settled reports whether the group is stable with n members that all
// own partitions (a cooperative rebalance that still has to hand
// partitions to a new member is not settled).
func (g group) settled(n int) bool {
	if g.state != "Stable" || len(g.owned) != n {
		return false
	}
	for _, own := range g.owned {
		total := 0
		for _, c := range own {
			total += c
		}
		if total == 0 {
			return false
		}
	}
	return true
}
