package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/observe"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/web"
)

// runPipeline is `sluice run FILE`: it validates the pipeline spec, runs
// it on the embedded defaults (the embedded log in --data-dir, and its
// schema registry for avro log connectors, are opened only if a connector
// needs them) and waits until its bounded inputs
// are done or it is interrupted (SIGINT/SIGTERM: a pipeline with
// checkpoints stops with a savepoint, which the next run restores).
// --from-checkpoint restores an explicit checkpoint or savepoint instead
// of the latest one.
func runPipeline(ctx context.Context, c *cli, args []string) error {
	fs := flagSet(c, "sluice run", "[--data-dir DIR] [--http-addr ADDR] [--from-checkpoint PATH] [--quiet] [--memory LIMIT] [--cpuprofile FILE] [--trace FILE] [--state memory|pebble [--state-dir DIR]] [--principal NAME [--password-file F] [--sasl-mechanism M] [--security-protocol P] [--tls-ca F]] FILE")
	dataDir := new(string)
	dataDirVar(c, fs, dataDir, "local data directory: the embedded log used by log sources and sinks, and its schema registry (the default of format avro on log)")
	httpAddr := fs.String("http-addr", envOr(c, "SLUICE_HTTP_ADDR", ""), "serve the dashboard, /api/v1, /healthz, /readyz and /metrics on this address, like 127.0.0.1:8080; empty: no HTTP server (env SLUICE_HTTP_ADDR)")
	httpToken := fs.String("http-token", envOr(c, "SLUICE_HTTP_TOKEN", ""), "bearer token required by the HTTP endpoints; mandatory for a non-loopback --http-addr (env SLUICE_HTTP_TOKEN)")
	quiet := fs.Bool("quiet", false, "print only errors: no live status line, no start and end summary")
	var lf logFlags
	lf.register(c, fs)
	var af runAuthFlags
	af.register(fs)
	clusterBrokers := fs.String("cluster", envOr(c, "SLUICE_CLUSTER", ""), "cluster mode: the Kafka brokers HOST:PORT[,HOST:PORT] the instances share (sets or overrides the spec's cluster.brokers; env SLUICE_CLUSTER)")
	instanceID := fs.String("instance-id", envOr(c, "SLUICE_INSTANCE_ID", ""), "cluster mode: this instance's stable name (static group membership and transactional id; a restart with the same name takes its tasks back at once); default host name plus pid (env SLUICE_INSTANCE_ID)")
	var mf memoryFlag
	mf.register(c, fs)
	stateBackend := fs.String("state", envOr(c, "SLUICE_STATE", ""), "keyed state backend: memory or pebble (state larger than memory, incremental checkpoints); overrides the spec's state.backend; empty: the spec's (env SLUICE_STATE)")
	stateDir := fs.String("state-dir", envOr(c, "SLUICE_STATE_DIR", ""), "Pebble's local working directory (disposable: state survives through checkpoints); overrides the spec's state.dir; empty: the spec's, or DATA_DIR/state/NAME (env SLUICE_STATE_DIR)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the job to this file until it stops (go tool pprof)")
	traceFile := fs.String("trace", "", "write an execution trace of the job to this file until it stops (go tool trace: scheduling latency, GC, syscalls)")
	fromCheckpoint := fs.String("from-checkpoint", "", "restore from this checkpoint or savepoint (a chk-NNN directory or s3://BUCKET/PREFIX/chk-NNN URL, as logged when a run stops with a savepoint) instead of the latest one in the spec's checkpoint dir; the spec needs a checkpoint section")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("takes one pipeline spec file, got %d arguments", len(pos))
	}
	mem, err := mf.setup()
	if err != nil {
		return err
	}
	defer mem.release()
	stopProfile, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer func() {
		if err := stopProfile(); err != nil {
			fmt.Fprintln(c.stderr, err)
		}
	}()
	stopTrace, err := startTrace(*traceFile)
	if err != nil {
		return err
	}
	defer func() {
		if err := stopTrace(); err != nil {
			fmt.Fprintln(c.stderr, err)
		}
	}()
	if *quiet {
		lf.level = "error"
	}
	logger, err := lf.logger(c.stderr)
	if err != nil {
		return err
	}
	plan, err := pipeline.Load(pos[0])
	if err != nil {
		return err
	}
	if plan.Spec.Cluster != nil {
		// Given on the command line they would be ignored; from the
		// environment (a default for every run of a host) they are.
		var ignored error
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "state" || f.Name == "state-dir" {
				ignored = usagef("--%s does not apply in cluster mode: state lives in changelog topics, cached under --data-dir", f.Name)
			}
		})
		if ignored != nil {
			return ignored
		}
	}
	if err := overrideState(plan, *stateBackend, *stateDir); err != nil {
		return err
	}
	kafkaDefaults, err := af.defaults(c)
	if err != nil {
		return err
	}
	if *clusterBrokers != "" && plan.Spec.Cluster == nil {
		return usagef("--cluster needs a cluster section in %s (cluster: {application_id: NAME}): see docs/cluster.md", pos[0])
	}
	if plan.Spec.Cluster != nil {
		if *fromCheckpoint != "" {
			return usagef("--from-checkpoint does not apply in cluster mode: state lives in changelog topics")
		}
		return runCluster(ctx, c, plan, pos[0], clusterRun{brokers: splitList(*clusterBrokers), instanceID: *instanceID,
			httpAddr: *httpAddr, httpToken: *httpToken, dataDir: *dataDir, kafka: kafkaDefaults, auth: &af}, logger)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), mem.collector())
	obs, err := newObserver(reg, logger)
	if err != nil {
		return err
	}
	var (
		mu  sync.Mutex
		log *logstore.Log
	)
	host := &pipeline.Host{
		DataDir:       *dataDir,
		Stdout:        c.stdout,
		Logger:        logger,
		KafkaDefaults: kafkaDefaults,
		OpenLog: func() (*logstore.Log, error) {
			mu.Lock()
			defer mu.Unlock()
			if log == nil {
				l, err := logstore.Open(logstore.Options{Dir: *dataDir, Logger: logger, Registerer: reg})
				if err != nil {
					return nil, fmt.Errorf("open data directory %s: %w", *dataDir, err)
				}
				log = l
				obs.SetLog(l)
			}
			return log, nil
		},
	}
	// Avro log sources and sinks that name no registry use the embedded
	// log's, opened with the log when one asks.
	er := &embeddedRegistry{openLog: host.OpenLog, logger: logger}
	if host.Registry, err = er.client(); err != nil {
		return err
	}
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		if log != nil {
			if err := log.Close(); err != nil {
				logger.Error("closing the embedded log", "err", err)
			}
		}
	}()
	// The job runs on its own context: an interrupt stops it with a
	// savepoint when it checkpoints (so that the next run resumes
	// exactly there), and cancels it otherwise.
	interrupted := ctx
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	start := time.Now()
	if kafkaDefaults != nil {
		attrs := []any{"security_protocol", kafkaDefaults.EffectiveProtocol()}
		if s := kafkaDefaults.SASL; s != nil {
			attrs = append(attrs, "principal", "User:"+s.Username, "sasl_mechanism", s.Mechanism)
		}
		logger.Info("kafka connectors without security settings of their own use the run's", attrs...)
	}
	job, err := plan.Start(ctx, host, pipeline.RestoreFrom(*fromCheckpoint), pipeline.WithStreamOptions(mem.streamOptions(plan.Spec.Parallelism)...),
		pipeline.WithPebbleOptions(mem.pebbleOptions(plan.Spec.Parallelism)))
	if err != nil {
		return af.authHint(err)
	}
	go func() {
		select {
		case <-job.Done():
			return
		case <-interrupted.Done():
		}
		if plan.Spec.Checkpoint != nil {
			sctx, scancel := context.WithTimeout(ctx, time.Minute)
			path, err := job.StopWithSavepoint(sctx)
			scancel()
			if err == nil {
				logger.Info("stopped with a savepoint", "checkpoint", path)
				return
			}
			logger.Error("savepoint failed; stopping without one", "err", err)
		}
		job.Cancel()
	}()
	if err := reg.Register(job.Collector()); err != nil {
		job.Cancel()
		_ = job.Wait()
		return fmt.Errorf("register pipeline metrics: %w", err)
	}
	id := observe.JobID(plan.Spec.Name)
	// The job reports its plan (observe.Planner): the dashboard draws the
	// dataflow the spec was planned into.
	unregister, err := obs.Register(id, job)
	if err != nil {
		job.Cancel()
		_ = job.Wait()
		return err
	}
	defer unregister()
	go obs.Run(ctx)
	if *httpAddr != "" {
		cfg := web.Config{Addr: *httpAddr, Token: *httpToken, Gatherer: reg, Observer: obs}
		if err := serveHTTP(ctx, cfg, logger, "dashboard and metrics", "/"); err != nil {
			job.Cancel()
			_ = job.Wait()
			return err
		}
	}
	par := plan.Spec.Parallelism
	if par == 0 {
		par = runtime.GOMAXPROCS(0)
	}
	logger.Info("pipeline running", "name", plan.Spec.Name, "file", pos[0], "parallelism", par, "delivery", plan.Spec.Delivery)
	waitProgress := startProgress(ctx, c.stderr, obs, id, *quiet, logger)
	err = job.Wait()
	waitProgress()
	sum := job.Summary()
	logger.Info("pipeline finished", "name", plan.Spec.Name, "records_in", sum.RecordsIn, "records_out", sum.RecordsOut,
		"failed_records", sum.Failed, "late_dropped", sum.LateDrops, "checkpoints", job.CheckpointStats().Completed,
		"elapsed", time.Since(start).Round(time.Millisecond))
	if err != nil && errors.Is(err, context.Canceled) && interrupted.Err() != nil {
		return nil // interrupted: a normal way to stop an unbounded pipeline
	}
	err = af.authHint(err)
	if errors.Is(err, pipeline.ErrTolerance) {
		return fmt.Errorf("%w\n(to route bad records to a dead-letter sink and go on, set errors: {tolerance: all, dead_letter: {file: {path: DIR}}} in %s)", err, pos[0])
	}
	return err
}

// validatePipeline is `sluice validate FILE...`: it parses and plans each
// spec without running it and reports every problem with its file, line
// and field.
func validatePipeline(_ context.Context, c *cli, args []string) error {
	fs := flagSet(c, "sluice validate", "FILE...")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("takes one or more pipeline spec files")
	}
	invalid := 0
	for _, f := range pos {
		plan, err := pipeline.Load(f)
		if err != nil {
			fmt.Fprintln(c.stderr, err)
			invalid++
			continue
		}
		fmt.Fprintf(c.stdout, "%s: ok (pipeline %s: %d steps, %d sinks; output fields: %s)\n", f, plan.Spec.Name, len(plan.Spec.Steps), len(plan.Spec.Sinks), plan.OutputSchema())
	}
	if invalid > 0 {
		return fmt.Errorf("%d of %d pipeline specs are invalid", invalid, len(pos))
	}
	return nil
}

// A pipeline job tells the observer its physical plan.
var _ observe.Planner = (*pipeline.Job)(nil)

// overrideState applies --state and --state-dir to the spec's state
// block.
func overrideState(plan *pipeline.Plan, backend, dir string) error {
	st := pipeline.StateSpec{Backend: pipeline.StateMemory}
	if plan.Spec.State != nil {
		st = *plan.Spec.State
	}
	switch backend {
	case "":
	case pipeline.StateMemory, pipeline.StatePebble:
		if backend != st.Backend {
			st.Dir = "" // the spec's directory belongs to its own backend choice
		}
		st.Backend = backend
	default:
		return usagef("--state %q: use memory or pebble", backend)
	}
	if dir != "" {
		st.Dir = dir
	}
	if st.Dir != "" && st.Backend == pipeline.StateMemory {
		return usagef("--state-dir is only used with the pebble state backend (--state pebble or state: {backend: pebble} in the spec)")
	}
	if backend != "" || dir != "" {
		plan.Spec.State = &st
	}
	return nil
}
