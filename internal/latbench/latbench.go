package latbench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/kafka/kbench"
	"github.com/sluicehq/sluice/logstore"
)

// Mode is one measured path.
type Mode string

// The modes, in the order a run measures them.
const (
	// Direct: the consumer reads the topic the producer writes.
	Direct Mode = "direct"
	// Relay: through a bare client relay process (RunRelay, `sluice bench
	// relay`) copying the input topic to the output topic with nothing
	// between its consumer and producer: the floor of any pipeline's
	// second trip through the broker, measured in the same run.
	Relay Mode = "relay"
	// AtLeastOnce: through the pipeline with delivery at_least_once.
	AtLeastOnce Mode = "at_least_once"
	// ExactlyOnce: through the pipeline with delivery exactly_once (Kafka
	// transactions committed at checkpoints), read with read_committed.
	ExactlyOnce Mode = "exactly_once"
)

// Config describes a run. Zero fields take the defaults named on each.
type Config struct {
	// Broker is an existing Kafka-compatible server. Empty (the default)
	// starts Sluice's Kafka listener in-process (as `sluice serve` runs
	// it) on a log in DataDir with fsync policy Fsync.
	Broker  string
	DataDir string
	Fsync   logstore.FsyncPolicy
	// Rate is the records/s the producer sends. Default 20,000.
	Rate int
	// Duration of the measured part of each mode. Default 10s.
	Duration time.Duration
	// Warmup is sent before the measured part of each mode and excluded.
	// Default 2s; negative means none.
	Warmup time.Duration
	// RecordSize is the value size in bytes (a JSON object; at least about
	// 50 bytes). Default 100.
	RecordSize int
	// Partitions of the topics. Default 4.
	Partitions int32
	// Modes to measure, in order. Default Direct, AtLeastOnce, ExactlyOnce.
	Modes []Mode
	// Pipeline is a spec file to measure instead of BuiltinSpec. Its
	// source must be a kafka source and it must have one kafka sink; the
	// benchmark fills in their brokers and topics, the source's group and
	// start, delivery and the checkpoint section. Its output records must
	// carry the input's seq and sent_ns fields.
	Pipeline string
	// CheckpointInterval of the pipeline modes. Default 200ms.
	CheckpointInterval time.Duration
	// Binary is the sluice executable run as `Binary run SPEC` for the
	// pipeline modes and as `Binary bench relay` for Relay; required when
	// Modes has one of them.
	Binary string
	// ChildEnv is added to the pipeline process's environment.
	ChildEnv []string
	// PipelineCPUProfile, when set, makes each pipeline process write a
	// CPU profile to this path with "." and the mode appended.
	PipelineCPUProfile string
	// PipelineTrace, when set, makes each pipeline process write an
	// execution trace (go tool trace) to this path with "." and the mode
	// appended.
	PipelineTrace string
	// StartTimeout bounds the wait for the first record through a mode's
	// path (pipeline start, first checkpoint). Default 60s.
	StartTimeout time.Duration
	// Drain bounds the wait for the last measured records after the
	// producer's last send; records still missing then are reported as
	// missing. Default 10s plus three checkpoint intervals.
	Drain time.Duration
	// Live, when set, is updated as the run goes, for a progress display.
	Live *Live
}

func (c Config) withDefaults() Config {
	if c.Rate <= 0 {
		c.Rate = 20_000
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Warmup == 0 {
		c.Warmup = 2 * time.Second
	}
	c.Warmup = max(c.Warmup, 0)
	if c.RecordSize <= 0 {
		c.RecordSize = 100
	}
	if c.Partitions <= 0 {
		c.Partitions = 4
	}
	if len(c.Modes) == 0 {
		c.Modes = []Mode{Direct, AtLeastOnce, ExactlyOnce}
	}
	if c.CheckpointInterval <= 0 {
		c.CheckpointInterval = 200 * time.Millisecond
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = time.Minute
	}
	if c.Drain <= 0 {
		c.Drain = 10*time.Second + 3*c.CheckpointInterval
	}
	if c.Live == nil {
		c.Live = &Live{}
	}
	return c
}

// ParseMode returns the mode named s.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case Direct, Relay, AtLeastOnce, ExactlyOnce:
		return m, nil
	}
	return "", fmt.Errorf("unknown mode %q (direct, relay, at_least_once, exactly_once)", s)
}

// ModeResult is the outcome of one mode. Latencies are in milliseconds.
type ModeResult struct {
	Mode Mode `json:"mode"`
	// Sent and Received count the measured records (warm-up excluded);
	// Received counts first arrivals, Duplicates later ones, Missing the
	// measured records not received by the end of the drain.
	Sent       int64 `json:"sent"`
	Received   int64 `json:"received"`
	Missing    int64 `json:"missing"`
	Duplicates int64 `json:"duplicates"`
	// Rate is the achieved send rate over the measured part, records/s:
	// the measured records over the time from their first scheduled send
	// to one interval after the last actual send.
	Rate   float64 `json:"achieved_rate"`
	P50    float64 `json:"p50_ms"`
	P99    float64 `json:"p99_ms"`
	P999   float64 `json:"p99_9_ms"`
	Max    float64 `json:"max_ms"`
	Mean   float64 `json:"mean_ms"`
	MinLat float64 `json:"min_ms"`
	// SendLagP99 and SendLagMax describe how late the producer sent
	// measured records against their schedule (included in the
	// latencies: a record is stamped with its scheduled time).
	SendLagP99 float64 `json:"send_lag_p99_ms"`
	SendLagMax float64 `json:"send_lag_max_ms"`
}

// Machine describes where a run was measured.
type Machine struct {
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPUModel   string `json:"cpu_model,omitempty"`
	GoVersion  string `json:"go_version"`
}

// Result is the outcome of a run.
type Result struct {
	Started            time.Time    `json:"started"`
	Machine            Machine      `json:"machine"`
	Broker             string       `json:"broker"`
	Pipeline           string       `json:"pipeline"`
	Rate               int          `json:"rate"`
	RecordSize         int          `json:"record_size"`
	Partitions         int32        `json:"partitions"`
	DurationSec        float64      `json:"duration_s"`
	WarmupSec          float64      `json:"warmup_s"`
	CheckpointInterval string       `json:"checkpoint_interval"`
	Modes              []ModeResult `json:"modes"`
}

// String renders the result as a small table.
func (r Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "latency bench: %d records/s of %d B for %gs per mode (after %gs warm-up), %d partitions, broker %s\n",
		r.Rate, r.RecordSize, r.DurationSec, r.WarmupSec, r.Partitions, r.Broker)
	fmt.Fprintf(&b, "  pipeline %s, checkpoint interval %s; latency = receive − scheduled send time, in ms\n", r.Pipeline, r.CheckpointInterval)
	fmt.Fprintf(&b, "  %-14s %9s %8s %8s %8s %8s %9s %8s %5s %9s\n", "mode", "rate/s", "p50", "p99", "p99.9", "max", "received", "missing", "dups", "lag p99")
	for _, m := range r.Modes {
		fmt.Fprintf(&b, "  %-14s %9.0f %8.2f %8.2f %8.2f %8.2f %9d %8d %5d %9.2f\n",
			m.Mode, m.Rate, m.P50, m.P99, m.P999, m.Max, m.Received, m.Missing, m.Duplicates, m.SendLagP99)
	}
	return b.String()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Run measures every mode of cfg in turn against one broker.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg = cfg.withDefaults()
	res := Result{
		Started:            time.Now().UTC().Truncate(time.Second),
		Machine:            machine(),
		Broker:             cfg.Broker,
		Pipeline:           cfg.Pipeline,
		Rate:               cfg.Rate,
		RecordSize:         cfg.RecordSize,
		Partitions:         cfg.Partitions,
		DurationSec:        cfg.Duration.Seconds(),
		WarmupSec:          cfg.Warmup.Seconds(),
		CheckpointInterval: cfg.CheckpointInterval.String(),
	}
	if res.Pipeline == "" {
		res.Pipeline = "built-in kafka → map → kafka"
	}
	base := []byte(BuiltinSpec)
	if cfg.Pipeline != "" {
		b, err := os.ReadFile(cfg.Pipeline)
		if err != nil {
			return res, fmt.Errorf("pipeline spec: %w", err)
		}
		base = b
	}
	for _, m := range cfg.Modes {
		if m != Direct && cfg.Binary == "" {
			return res, errors.New("the pipeline and relay modes need the sluice binary (Config.Binary)")
		}
	}
	broker := cfg.Broker
	if broker == "" {
		srv, err := kbench.StartServer(kbench.ServerConfig{DataDir: cfg.DataDir, Fsync: cfg.Fsync})
		if err != nil {
			return res, fmt.Errorf("start the in-process server: %w", err)
		}
		defer srv.Close()
		broker = srv.Addr
		res.Broker = "in-process (" + srv.Addr + ")"
	}
	clk := clock{base: time.Now()}
	for _, m := range cfg.Modes {
		mr, err := runMode(ctx, cfg, m, broker, base, clk)
		if err != nil {
			return res, fmt.Errorf("%s: %w", m, err)
		}
		res.Modes = append(res.Modes, mr)
	}
	cfg.Live.set("all modes", "done")
	return res, nil
}

// runMode measures one mode: topics, the pipeline process when the mode
// has one, the consumer, the first record through, then the load.
func runMode(ctx context.Context, cfg Config, mode Mode, broker string, base []byte, clk clock) (ModeResult, error) {
	mr := ModeResult{Mode: mode}
	id := fmt.Sprintf("latbench-%d-%s", time.Now().UnixNano(), strings.ReplaceAll(string(mode), "_", "-"))
	in, out := id, id
	if mode != Direct {
		in, out = id+"-in", id+"-out"
	}
	topics := []string{in}
	if out != in {
		topics = append(topics, out)
	}
	for _, t := range topics {
		if err := kbench.CreateTopic(ctx, broker, kbench.Config{Topic: t, Partitions: cfg.Partitions}); err != nil {
			return mr, err
		}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	if mode != Direct {
		ch, err := startPath(cfg, mode, broker, base, in, out, id)
		if err != nil {
			return mr, err
		}
		defer ch.stop(30 * time.Second)
		go func() {
			select {
			case <-ch.exited:
				cancel(ch.exitError())
			case <-ctx.Done():
			}
		}()
	}

	recv, err := newReceiver(broker, out, mode == ExactlyOnce, clk)
	if err != nil {
		return mr, err
	}
	defer recv.cl.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	wg.Go(func() { recv.run(rctx) })

	snd, err := newSender(broker, in, cfg.RecordSize, clk)
	if err != nil {
		return mr, err
	}
	defer snd.cl.Close()

	cfg.Live.set(mode, "waiting for the first record through")
	pctx, pcancel := context.WithTimeoutCause(ctx, cfg.StartTimeout, fmt.Errorf("no record came through within %v (the path must pass the probe records, {\"seq\":-1,\"sent_ns\":...}, through)", cfg.StartTimeout))
	err = snd.probe(ctx, pctx, recv)
	pcancel()
	if err != nil {
		return mr, err
	}

	sched := schedule{rate: cfg.Rate}
	sched.first = int64(cfg.Warmup) * int64(cfg.Rate) / int64(time.Second)
	sched.count = int64(cfg.Duration) * int64(cfg.Rate) / int64(time.Second)
	sched.total = sched.first + sched.count
	recv.expect(sched)
	sched.start = clk.now()
	cfg.Live.start(mode, cfg.Warmup, cfg.Duration, &snd.sent, &recv.received)
	if err := snd.load(ctx, sched); err != nil {
		return mr, err
	}

	cfg.Live.set(mode, "draining")
	timer := time.NewTimer(cfg.Drain)
	defer timer.Stop()
	select {
	case <-recv.all:
	case <-timer.C:
	case <-ctx.Done():
		return mr, context.Cause(ctx)
	}
	rcancel()
	wg.Wait()

	recv.mu.Lock()
	defer recv.mu.Unlock()
	if recv.err != nil {
		return mr, recv.err
	}
	if recv.unparsed > 0 && recv.hist.Count() == 0 {
		return mr, fmt.Errorf("%d records read without numeric seq and sent_ns fields: the pipeline must pass them through", recv.unparsed)
	}
	h := &recv.hist
	mr.Sent = snd.sent.Load()
	mr.Received = int64(h.Count())
	mr.Missing = sched.count - mr.Received
	mr.Duplicates = recv.dups
	// From the scheduled start of the measured part to one interval after
	// the last send: the target rate when the producer kept its schedule,
	// less when it fell behind.
	if span := snd.lastSend - sched.due(sched.first) + int64(time.Second)/int64(cfg.Rate); mr.Sent > 0 && span > 0 {
		mr.Rate = float64(mr.Sent) / time.Duration(span).Seconds()
	}
	mr.P50, mr.P99, mr.P999 = ms(h.Quantile(0.5)), ms(h.Quantile(0.99)), ms(h.Quantile(0.999))
	mr.Max, mr.Mean, mr.MinLat = ms(h.Max()), ms(h.Mean()), ms(h.Min())
	mr.SendLagP99, mr.SendLagMax = ms(snd.lag.Quantile(0.99)), ms(snd.lag.Max())
	return mr, nil
}

// startPath starts the process between the topics of a mode: the relay,
// or the pipeline with the spec filled in for the mode. Its working
// directory is removed when it is stopped.
func startPath(cfg Config, mode Mode, broker string, base []byte, in, out, group string) (*child, error) {
	dir, err := os.MkdirTemp("", "sluice-latbench-")
	if err != nil {
		return nil, err
	}
	var args []string
	if mode == Relay {
		cfg.Live.set(mode, "starting the relay")
		args = []string{"bench", "relay", "--broker", broker, "--from", in, "--to", out}
	} else {
		cfg.Live.set(mode, "starting the pipeline")
		spec, err := writeSpec(dir, base, runSpec{broker: broker, inTopic: in, outTopic: out, group: group,
			delivery: mode, interval: cfg.CheckpointInterval, checkpointDir: dir + "/checkpoints"})
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		args = []string{"run", "--quiet", "--data-dir", dir + "/data"}
		if cfg.PipelineCPUProfile != "" {
			args = append(args, "--cpuprofile", cfg.PipelineCPUProfile+"."+string(mode))
		}
		if cfg.PipelineTrace != "" {
			args = append(args, "--trace", cfg.PipelineTrace+"."+string(mode))
		}
		args = append(args, spec)
	}
	ch, err := startChild(cfg.Binary, dir, cfg.ChildEnv, args...)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	ch.dir = dir
	return ch, nil
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
	return m
}
