package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/latbench"
	"github.com/sluicehq/sluice/observe"

	"github.com/sluicehq/sluice/kafka/kbench"
	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/logstore/compactbench"
	"github.com/sluicehq/sluice/logstore/logbench"
)

func benchCommand() *command {
	return &command{
		name:    "bench",
		summary: "measure the log and the Kafka listener on this machine",
		sub: []*command{
			{name: "log", summary: "append to and read from the embedded log in-process; prints records/s, MB/s, p50/p99 ack latency and the disk's own limits", run: benchLog},
			{name: "kafka", summary: "produce and consume through the Kafka protocol over loopback with franz-go", run: benchKafka},
			{name: "auth", summary: "SASL login latency (SCRAM-SHA-512, SCRAM-SHA-256, PLAIN) on fresh connections to an in-process SASL_SSL listener; prints p50/p99 per mechanism and the TLS handshake", run: benchAuth},
			{name: "latency", summary: "end-to-end latency at a fixed rate: straight through the broker, through a bare client relay (--relay), and through a `sluice run` pipeline at-least-once and exactly-once; prints p50/p99/p99.9/max per mode", run: benchLatency},
			{name: "relay", summary: "copy a topic's records to the same partitions of another with a bare franz-go consumer and producer (no engine): the floor the latency benchmark's --relay mode measures", run: benchRelay},
			{name: "cluster", summary: "cluster mode with separate processes: throughput of a keyed window with 1, 2, 3 `sluice run --cluster` instances against a `sluice serve` child, CPU per record against the same pipeline embedded, and failover time after a SIGKILL", run: benchCluster},
			{name: "tier", summary: "tiered storage through the Kafka protocol against a `sluice serve --remote-storage` child: produce with tiering on and off, upload throughput, consume of a remote-only range (cold and warm cache) against a local one", run: benchTier},
			{name: "s3-server", summary: "serve an in-memory S3-compatible store (gofakes3) for benchmarks and trials of --remote-storage; objects are lost at exit", run: benchS3Server},
			{name: "compaction", summary: "time a log cleaner pass against the disk's bandwidth, and produce throughput with and without the cleaner", run: benchCompaction},
		},
	}
}

// progress prints an elapsed-time line to stderr every few seconds until
// the returned function is called.
func progress(c *cli, what string) func() {
	start := time.Now()
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintf(c.stderr, "%s: %s elapsed\n", what, time.Since(start).Round(time.Second))
			}
		}
	}()
	return func() { close(done) }
}

func benchLog(ctx context.Context, c *cli, args []string) error {
	fs := flagSet(c, "sluice bench log", "[--record-size 100] [--batch 100] [--partitions 1] [--producers 16] [--fsync always] [--duration 5s] [--read] [--disk]")
	var cfg logbench.Config
	fs.StringVar(&cfg.Dir, "dir", "", "directory for the benchmark's log (default: a temporary directory on the temp file system; point it at the disk you care about)")
	fs.IntVar(&cfg.RecordSize, "record-size", 100, "value bytes per record")
	fs.IntVar(&cfg.RecordsPerBatch, "batch", 100, "records per appended batch (as a Kafka client batches them)")
	fs.IntVar(&cfg.Partitions, "partitions", 1, "partitions appended to")
	fs.IntVar(&cfg.Producers, "producers", 16, "concurrent appenders")
	fsync := fs.String("fsync", "always", "fsync policy: always (group commit), interval[:DURATION], never")
	fs.DurationVar(&cfg.Duration, "duration", 5*time.Second, "length of the append phase")
	fs.Int64Var(&cfg.Records, "records", 0, "stop after this many records instead (0: use --duration)")
	fs.BoolVar(&cfg.Read, "read", true, "read everything back afterwards and report read throughput")
	disk := fs.Bool("disk", true, "also measure the disk's sequential write bandwidth with fdatasync and its fsync latency")
	diskBlock := byteSize(1 << 20)
	sizeVar(fs, &diskBlock, "disk-block", "bytes written per fdatasync in the disk bandwidth test, like 1MiB")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("takes no arguments")
	}
	if cfg.RecordSize < 0 || cfg.RecordsPerBatch < 1 || cfg.Partitions < 1 || cfg.Producers < 1 {
		return usagef("--record-size must be >= 0 and --batch, --partitions, --producers >= 1")
	}
	if cfg.Fsync, err = logstore.ParseFsyncPolicy(*fsync); err != nil {
		return usagef("--fsync: %v", err)
	}
	if cfg.Dir != "" {
		if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
			return fmt.Errorf("bench directory: %w", err)
		}
	}
	if *disk {
		stop := progress(c, "measuring the disk")
		d, err := logbench.MeasureDisk(ctx, logbench.DiskConfig{Dir: cfg.Dir, BlockSize: int(diskBlock), MaxTime: cfg.Duration})
		stop()
		if err != nil {
			return fmt.Errorf("measure disk: %w", err)
		}
		fmt.Fprint(c.stdout, d.String())
	}
	stop := progress(c, "bench log")
	res, err := logbench.Run(ctx, cfg)
	stop()
	if err != nil {
		return err
	}
	fmt.Fprint(c.stdout, res.String())
	return nil
}

func benchKafka(ctx context.Context, c *cli, args []string) error {
	fs := flagSet(c, "sluice bench kafka", "[--broker HOST:PORT] [--records 1000000] [--record-size 100] [--partitions 4] [--linger 0] [--batch-bytes 1048576] [--buffered-records 10000] [--rate 0] [--compression none]")
	var cfg kbench.Config
	fs.StringVar(&cfg.Broker, "broker", "", "measure this Kafka-compatible server instead of an in-process Sluice listener")
	fs.StringVar(&cfg.DataDir, "dir", "", "data directory of the in-process server (default: a temporary directory)")
	fs.IntVar(&cfg.Records, "records", 1_000_000, "records to produce")
	fs.IntVar(&cfg.RecordSize, "record-size", 100, "value bytes per record")
	partitions := fs.Int("partitions", 4, "partitions of the benchmark topic")
	fs.DurationVar(&cfg.Linger, "linger", 0, "producer linger (0: send a batch as soon as a request may go out)")
	batch := byteSize(1 << 20)
	sizeVar(fs, &batch, "batch-bytes", "producer maximum batch bytes, like 1MiB (at most 1GiB)")
	fs.IntVar(&cfg.BufferedRecords, "buffered-records", 10_000, "records the producer may hold unacknowledged before it blocks (franz-go's default)")
	fs.IntVar(&cfg.Rate, "rate", 0, "limit production to this many records/s (0: as fast as possible); latency percentiles mean most below the maximum rate")
	fs.StringVar(&cfg.Compression, "compression", "none", "none, gzip, snappy, lz4 or zstd")
	fsync := fs.String("fsync", "always", "fsync policy of the in-process server's log")
	fs.BoolVar(&cfg.SkipConsume, "skip-consume", false, "only produce")
	protocols := fs.String("security-protocol", "PLAINTEXT", "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL; a comma-separated list compares their produce throughput in interleaved --rounds (the first is the baseline)")
	fs.StringVar(&cfg.Security.Mechanism, "sasl-mechanism", "SCRAM-SHA-512", "SASL mechanism on SASL protocols: SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN")
	fs.StringVar(&cfg.Security.User, "sasl-user", "", "SASL user for --broker (the in-process server makes its own)")
	fs.StringVar(&cfg.Security.Password, "sasl-password", "", "SASL password for --broker")
	caFile := fs.String("tls-ca", "", "PEM CA the clients trust on SSL and SASL_SSL with --broker (default: the system's roots)")
	rounds := fs.Int("rounds", 3, "rounds of a --security-protocol comparison")
	fs.DurationVar(&cfg.Duration, "duration", 0, "produce for this long instead of a number of records (0: use --records)")
	fs.StringVar(&cfg.Topic, "topic", "", "topic to create and write (default: kbench-<unix nanos>)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this process (the client, and the server unless --broker) to this file (go tool pprof)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("takes no arguments")
	}
	if cfg.Duration < 0 {
		return usagef("--duration must not be negative")
	}
	if cfg.Duration > 0 && !flagGiven(fs, "records") {
		cfg.Records = 0 // bounded by time only
	}
	if (cfg.Records < 1 && cfg.Duration == 0) || cfg.RecordSize < 0 || *partitions < 1 || batch < 1 || batch > 1<<30 || cfg.BufferedRecords < 1 {
		return usagef("--records, --partitions, --batch-bytes and --buffered-records must be positive, --batch-bytes at most 1GiB")
	}
	cfg.Partitions, cfg.BatchBytes = int32(*partitions), int32(batch)
	if cfg.Fsync, err = logstore.ParseFsyncPolicy(*fsync); err != nil {
		return usagef("--fsync: %v", err)
	}
	if *caFile != "" {
		if cfg.Security.TLS, err = kbench.LoadCA(*caFile); err != nil {
			return usagef("--tls-ca: %v", err)
		}
	}
	if list := strings.Split(*protocols, ","); len(list) > 1 {
		if *rounds < 1 {
			return usagef("--rounds must be positive")
		}
		stop := progress(c, "bench kafka (security comparison)")
		cmp, err := kbench.Compare(ctx, cfg, list, *rounds)
		stop()
		if err != nil {
			return err
		}
		fmt.Fprint(c.stdout, cmp.String())
		return nil
	}
	cfg.Security.Protocol = *protocols
	stopProfile, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	stop := progress(c, "bench kafka")
	res, err := kbench.Run(ctx, cfg)
	stop()
	if perr := stopProfile(); err == nil {
		err = perr
	}
	if err != nil {
		return err
	}
	fmt.Fprint(c.stdout, res.String())
	return nil
}

func benchAuth(ctx context.Context, c *cli, args []string) error {
	fs := flagSet(c, "sluice bench auth", "[--logins 200] [--mechanisms SCRAM-SHA-512,SCRAM-SHA-256,PLAIN] [--security-protocol SASL_SSL]")
	logins := fs.Int("logins", 200, "logins per mechanism, one fresh connection each, one after another")
	mechs := fs.String("mechanisms", "SCRAM-SHA-512,SCRAM-SHA-256,PLAIN", "SASL mechanisms to measure")
	proto := fs.String("security-protocol", "SASL_SSL", "SASL_SSL or SASL_PLAINTEXT")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("takes no arguments")
	}
	if *logins < 1 {
		return usagef("--logins must be positive")
	}
	srv, err := kbench.StartServer(kbench.ServerConfig{Security: kbench.Security{Protocol: *proto}})
	if err != nil {
		return usagef("%v", err)
	}
	defer srv.Close()
	sec := srv.Security
	for _, m := range strings.Split(*mechs, ",") {
		sec.Mechanism = strings.ToUpper(strings.TrimSpace(m))
		stop := progress(c, "bench auth "+sec.Mechanism)
		res, err := kbench.MeasureAuth(ctx, srv.Addr, sec, *logins)
		stop()
		if err != nil {
			return err
		}
		fmt.Fprint(c.stdout, res.String())
	}
	return nil
}

func benchLatency(ctx context.Context, c *cli, args []string) error {
	fs := flagSet(c, "sluice bench latency", "[--rate 20000] [--duration 10s] [--warmup 2s] [--record-size 100] [--partitions 4] [--pipeline FILE] [--delivery both|at_least_once|exactly_once] [--relay] [--checkpoint-interval 200ms] [--broker HOST:PORT] [--json]")
	var cfg latbench.Config
	fs.IntVar(&cfg.Rate, "rate", 20_000, "records/s the producer sends, on schedule (open loop)")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured time per mode")
	fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "time sent before the measured part of each mode and left out of the figures (0: none)")
	fs.IntVar(&cfg.RecordSize, "record-size", 100, "value bytes per record (a JSON object {seq, sent_ns, pad}; at least about 50)")
	partitions := fs.Int("partitions", 4, "partitions of the input and output topics")
	fs.StringVar(&cfg.Pipeline, "pipeline", "", "pipeline spec to measure instead of the built-in kafka → map → kafka pass-through; its kafka source and its one kafka sink get the benchmark's broker and topics, and its output must keep the fields seq and sent_ns")
	delivery := fs.String("delivery", "both", "pipeline delivery to measure: at_least_once, exactly_once or both")
	direct := fs.Bool("direct", true, "also measure the direct broker path (the baseline)")
	relay := fs.Bool("relay", false, "also measure a bare franz-go relay process between the topics (sluice bench relay): the floor of any pipeline's second trip through the broker")
	fs.DurationVar(&cfg.CheckpointInterval, "checkpoint-interval", 200*time.Millisecond, "checkpoint interval of the pipeline (exactly-once output is committed at checkpoints)")
	fs.StringVar(&cfg.Broker, "broker", "", "measure against this Kafka-compatible server instead of an in-process Sluice listener")
	fs.StringVar(&cfg.DataDir, "dir", "", "data directory of the in-process server (default: a temporary directory)")
	fsync := fs.String("fsync", "always", "fsync policy of the in-process server's log")
	fs.StringVar(&cfg.Binary, "sluice", "", "`PATH` of the sluice binary run as sluice run for the pipeline (default: this executable)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this process (load generator, consumer, and the server unless --broker) to this file (go tool pprof)")
	fs.StringVar(&cfg.PipelineCPUProfile, "pipeline-cpuprofile", "", "write a CPU profile of each pipeline process to this path with the mode appended (FILE.at_least_once, FILE.exactly_once)")
	traceFile := fs.String("trace", "", "write an execution trace of this process (load generator, consumer, and the server unless --broker) to this file (go tool trace)")
	fs.StringVar(&cfg.PipelineTrace, "pipeline-trace", "", "write an execution trace of each pipeline process to this path with the mode appended (FILE.at_least_once, FILE.exactly_once)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("takes no arguments")
	}
	if cfg.PipelineCPUProfile != "" {
		if cfg.PipelineCPUProfile, err = filepath.Abs(cfg.PipelineCPUProfile); err != nil {
			return usagef("--pipeline-cpuprofile: %v", err)
		}
	}
	if cfg.PipelineTrace != "" {
		if cfg.PipelineTrace, err = filepath.Abs(cfg.PipelineTrace); err != nil {
			return usagef("--pipeline-trace: %v", err)
		}
	}
	if cfg.Rate < 1 || cfg.Duration <= 0 || cfg.Warmup < 0 || cfg.RecordSize < 1 || *partitions < 1 || cfg.CheckpointInterval <= 0 {
		return usagef("--rate, --duration, --record-size, --partitions and --checkpoint-interval must be positive, --warmup not negative")
	}
	cfg.Partitions = int32(*partitions)
	if cfg.Warmup == 0 {
		cfg.Warmup = -1 // none
	}
	if *direct {
		cfg.Modes = append(cfg.Modes, latbench.Direct)
	}
	if *relay {
		cfg.Modes = append(cfg.Modes, latbench.Relay)
	}
	switch *delivery {
	case "both":
		cfg.Modes = append(cfg.Modes, latbench.AtLeastOnce, latbench.ExactlyOnce)
	case "none":
	default:
		m, err := latbench.ParseMode(*delivery)
		if err != nil || m == latbench.Direct || m == latbench.Relay {
			return usagef("--delivery: want at_least_once, exactly_once, both or none, got %q", *delivery)
		}
		cfg.Modes = append(cfg.Modes, m)
	}
	if len(cfg.Modes) == 0 {
		return usagef("nothing to measure (--direct=false --delivery none without --relay)")
	}
	if cfg.Fsync, err = logstore.ParseFsyncPolicy(*fsync); err != nil {
		return usagef("--fsync: %v", err)
	}
	if cfg.Binary == "" {
		if cfg.Binary, err = os.Executable(); err != nil {
			return fmt.Errorf("locate the sluice binary (set --sluice): %w", err)
		}
	}
	stopProfile, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	stopTrace, err := startTrace(*traceFile)
	if err != nil {
		return err
	}
	defer stopTrace()
	cfg.Live = &latbench.Live{}
	done := make(chan struct{})
	shown := make(chan struct{})
	go func() {
		defer close(shown)
		observe.Progress(ctx, c.stderr, done, func(bool) string { return cfg.Live.Line() }, observe.StatusOptions{})
	}()
	res, err := latbench.Run(ctx, cfg)
	close(done)
	<-shown
	if err != nil {
		return err
	}
	if *asJSON {
		b, err := marshalJSON(res, true)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(c.stdout, "%s\n", b)
		return err
	}
	fmt.Fprint(c.stdout, res.String())
	return nil
}

func benchRelay(ctx context.Context, c *cli, args []string) error {
	fs := flagSet(c, "sluice bench relay", "--from TOPIC --to TOPIC [--broker 127.0.0.1:9092]")
	var cfg latbench.RelayConfig
	fs.StringVar(&cfg.Broker, "broker", "127.0.0.1:9092", "Kafka-compatible server of both topics")
	fs.StringVar(&cfg.From, "from", "", "topic to read, from its start")
	fs.StringVar(&cfg.To, "to", "", "topic to write, record for record into the same partition (it must have at least as many partitions)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("takes no arguments")
	}
	if cfg.From == "" || cfg.To == "" {
		return usagef("--from and --to are required")
	}
	return latbench.RunRelay(ctx, cfg)
}

func benchCompaction(ctx context.Context, c *cli, args []string) error {
	fs := flagSet(c, "sluice bench compaction", "[--keys 100000] [--record-size 1024] [--bytes 1GiB] [--segment-bytes 32MiB] [--dedupe-buffer 0] [--duration 10s] [--partitions 4] [--data-dir DIR] [--warm] [--json]")
	var cfg compactbench.Config
	fs.StringVar(&cfg.Dir, "data-dir", "", "directory on the disk to measure; the run works in a fresh subdirectory of it and removes it (default: the temp directory)")
	fs.IntVar(&cfg.Keys, "keys", 100_000, "distinct keys; every record takes one of them, so most records are superseded")
	fs.IntVar(&cfg.RecordSize, "record-size", 1024, "value bytes per record (keys are 16 bytes)")
	fs.IntVar(&cfg.RecordsPerBatch, "batch", 100, "records per batch when filling the topic of the timed pass")
	total := byteSize(1 << 30)
	sizeVar(fs, &total, "bytes", "batch bytes the timed pass's topic is filled with")
	seg := byteSize(32 << 20)
	sizeVar(fs, &seg, "segment-bytes", "segment.bytes of both topics")
	var dedupe byteSize
	sizeVar(fs, &dedupe, "dedupe-buffer", "the cleaner's offset map memory, 25 B per key (0: the log's default, 32 MiB)")
	var ioLimit byteSize
	sizeVar(fs, &ioLimit, "io-limit", "bound the cleaner's read+write bytes per second (0: unlimited)")
	fs.Float64Var(&cfg.MaxDutyCycle, "cleaner-duty", 0, "the cleaner's max duty cycle while the log takes appends (CleanerOptions.MaxDutyCycle; 0: the log's default, 1: none)")
	fs.BoolVar(&cfg.Warm, "warm", false, "leave the filled topic in the page cache (default: drop it, so the pass reads from the disk)")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "length of each produce phase (without, then with the cleaner)")
	partitions := fs.Int("partitions", 4, "partitions of the produce topic")
	fs.StringVar(&cfg.CleanerMode, "cleaner", compactbench.CleanerForced, "how the cleaner runs in the second produce phase: forced (passes back to back, never resting) or background (what the background cleaner runs, every --cleaner-interval, at --dirty-ratio)")
	fs.DurationVar(&cfg.CleanerInterval, "cleaner-interval", time.Second, "with --cleaner background: how often it looks for dirty partitions")
	fs.Float64Var(&cfg.DirtyRatio, "dirty-ratio", logstore.DefaultMinCleanableDirtyRatio, "with --cleaner background: the topic's min.cleanable.dirty.ratio (default the topic default, Kafka's)")
	fs.DurationVar(&cfg.Settle, "settle", 0, "pause between the produce phases, with nothing running, so that the disk finishes the previous phase's write-back before the next is timed")
	fs.BoolVar(&cfg.CatchUp, "catch-up", false, "compact what the first produce phase left before the second starts (untimed), so that the second measures a cleaner keeping up with what is produced, not one working off a backlog")
	fs.DurationVar(&cfg.DiskMaxTime, "disk-time", 10*time.Second, "bound on the disk test (1 GiB in 1 MiB blocks, fdatasync after each)")
	disk := fs.Bool("disk", true, "measure the disk's sequential write bandwidth with fdatasync")
	pass := fs.Bool("pass", true, "time a cleaner pass")
	produce := fs.Bool("produce", true, "measure produce throughput without and with the cleaner")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	profile := fs.String("pass-cpuprofile", "", "write a CPU profile of the timed pass to this file (go tool pprof)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("takes no arguments")
	}
	if cfg.Keys < 1 || cfg.RecordSize < 1 || cfg.RecordsPerBatch < 1 || *partitions < 1 || *partitions > 1<<16 || total < 1 || seg < 1 || cfg.Duration <= 0 {
		return usagef("--keys, --record-size, --batch, --partitions, --bytes, --segment-bytes and --duration must be positive")
	}
	if cfg.CleanerMode != compactbench.CleanerForced && cfg.CleanerMode != compactbench.CleanerBackground {
		return usagef("--cleaner must be forced or background")
	}
	if cfg.MaxDutyCycle < 0 || cfg.MaxDutyCycle > 1 {
		return usagef("--cleaner-duty must be in [0, 1]")
	}
	if cfg.DirtyRatio <= 0 || cfg.DirtyRatio > 1 || cfg.CleanerInterval <= 0 {
		return usagef("--dirty-ratio must be in (0, 1] and --cleaner-interval positive")
	}
	if !*disk && !*pass && !*produce {
		return usagef("--disk, --pass and --produce are all off: nothing to measure")
	}
	cfg.Bytes, cfg.SegmentBytes, cfg.DedupeBufferBytes, cfg.IOBytesPerSecond = int64(total), int64(seg), int(dedupe), float64(ioLimit)
	cfg.Partitions = int32(*partitions)
	cfg.SkipDisk, cfg.SkipPass, cfg.SkipProduce = !*disk, !*pass, !*produce
	if cfg.Dir != "" {
		if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
			return fmt.Errorf("bench directory: %w", err)
		}
	}
	if isTerminal(c.stderr) {
		start := time.Now()
		cfg.Progress = func(msg string) {
			fmt.Fprintf(c.stderr, "[%5.1fs] %s\n", time.Since(start).Seconds(), msg)
		}
	}
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		cfg.PassCPUProfile = f
	}
	res, err := compactbench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		b, err := marshalJSON(res, true)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(c.stdout, "%s\n", b)
		return err
	}
	_, err = fmt.Fprint(c.stdout, res.String())
	return err
}

// isTerminal reports whether w is a terminal (progress lines go there only).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
