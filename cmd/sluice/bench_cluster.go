package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/sluicehq/sluice/internal/clusterbench"
)

func benchCluster(ctx context.Context, c *cli, args []string) error {
	fs := flagSet(c, "sluice bench cluster", "[--records 2000000] [--keys 100000] [--partitions 4] [--instances 1,2,3] [--embedded] [--delivery exactly_once] [--commit-interval 1s] [--failover] [--failover-keys 1000000] [--failover-session-timeouts 10s,3s] [--runs 1] [--broker HOST:PORT] [--json]\n\n"+
		"Measures cluster mode with separate processes: a `sluice serve` broker (unless --broker),\n"+
		"and `sluice run --cluster` instances of a keyed tumbling window (10 s, count and sum of amount\n"+
		"per user, the key crossing a repartition topic) over orders produced beforehand; the same\n"+
		"pipeline embedded (one `sluice run`, bounded kafka source, checkpoints) as the CPU baseline;\n"+
		"and failover of a dedup step over --failover-keys keys when an instance is SIGKILLed.\n"+
		"Progress goes to stderr, the tables (or --json) to stdout.")
	var cfg clusterbench.Config
	fs.StringVar(&cfg.Broker, "broker", "", "measure against this Kafka-compatible server HOST:PORT instead of a sluice serve child (the broker's CPU is then not reported)")
	fs.StringVar(&cfg.Fsync, "fsync", "always", "--fsync of the sluice serve child: always (its default, group commit), interval[:DURATION] or never")
	fs.StringVar(&cfg.DataDir, "dir", "", "directory for the broker's log and the instances (a fresh subdirectory, removed at the end; default: the temp directory)")
	fs.IntVar(&cfg.Records, "records", 2_000_000, "orders {\"user\",\"amount\",\"ts\"} of the throughput section, produced before the pipelines start")
	fs.IntVar(&cfg.Keys, "keys", 100_000, "distinct users among the orders")
	partitions := fs.Int("partitions", 4, "partitions of the input topics (and so of the repartition and changelog topics)")
	fs.DurationVar(&cfg.EventSpan, "event-span", time.Minute, "event time the orders cover, evenly; sets how many 10 s windows each user has")
	instances := fs.String("instances", "1,2,3", "instance counts to measure, comma-separated; empty: none")
	fs.BoolVar(&cfg.Embedded, "embedded", true, "also run the pipeline embedded (no cluster section) as the CPU-per-record baseline")
	fs.StringVar(&cfg.Delivery, "delivery", "exactly_once", "delivery of the pipelines: exactly_once (Kafka transactions) or at_least_once")
	fs.DurationVar(&cfg.CommitInterval, "commit-interval", time.Second, "cluster.commit_interval, and the embedded run's checkpoint interval")
	fs.BoolVar(&cfg.Failover, "failover", true, "measure failover of a dedup step (2 instances, i1 SIGKILLed; restarted with the same --instance-id, then not restarted)")
	fs.IntVar(&cfg.FailoverKeys, "failover-keys", 1_000_000, "keys of the failover pipeline's state (one record each)")
	sessions := fs.String("failover-session-timeouts", "10s,3s", "cluster.session_timeout of the failover variant without a restart, one measurement each; the restart variant uses the first (Apache Kafka refuses less than its group.min.session.timeout.ms, 6s by default)")
	fs.IntVar(&cfg.Runs, "runs", 1, "repeat every measurement; the tables show medians, --json every run")
	fs.StringVar(&cfg.LogDir, "log-dir", "", "write every child's output (JSON logs of sluice serve and the instances) to DIR/NAME.log, to look into a result")
	fs.DurationVar(&cfg.Timeout, "timeout", 5*time.Minute, "bound on each wait for a pipeline's output")
	fs.StringVar(&cfg.Binary, "sluice", "", "sluice binary run as sluice serve and sluice run (default: this executable)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	jsonOut := fs.String("json-out", "", "also write the JSON result to this file")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("takes no arguments")
	}
	if cfg.Records < 1 || cfg.Keys < 1 || *partitions < 1 || *partitions > 10000 || cfg.FailoverKeys < 1 || cfg.Runs < 1 || cfg.CommitInterval <= 0 || cfg.Timeout <= 0 {
		return usagef("--records, --keys, --partitions, --failover-keys, --runs, --commit-interval and --timeout must be positive")
	}
	if cfg.EventSpan < time.Second {
		return usagef("--event-span must be at least 1s")
	}
	cfg.Partitions = int32(*partitions)
	for _, s := range splitList(*instances) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 64 {
			return usagef("--instances: want counts from 1 to 64 such as 1,2,3, got %q", s)
		}
		cfg.Instances = append(cfg.Instances, n)
	}
	if *instances != "" && len(cfg.Instances) == 0 {
		return usagef("--instances: want counts such as 1,2,3")
	}
	for _, s := range splitList(*sessions) {
		d, err := time.ParseDuration(s)
		if err != nil || d < 100*time.Millisecond {
			return usagef("--failover-session-timeouts: want durations of at least 100ms such as 10s,3s, got %q", s)
		}
		cfg.SessionTimeouts = append(cfg.SessionTimeouts, d)
	}
	if cfg.Failover && len(cfg.SessionTimeouts) == 0 {
		return usagef("--failover-session-timeouts: want at least one duration")
	}
	if cfg.Delivery != "exactly_once" && cfg.Delivery != "at_least_once" {
		return usagef("--delivery: want exactly_once or at_least_once, got %q", cfg.Delivery)
	}
	if len(cfg.Instances) == 0 && !cfg.Embedded && !cfg.Failover {
		return usagef("nothing to measure (--instances '' --embedded=false --failover=false)")
	}
	if cfg.Binary == "" {
		if cfg.Binary, err = os.Executable(); err != nil {
			return fmt.Errorf("locate the sluice binary (set --sluice): %w", err)
		}
	}
	cfg.Progress = func(msg string) { fmt.Fprintln(c.stderr, msg) }
	res, err := clusterbench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	b, err := marshalJSON(res, true)
	if err != nil {
		return err
	}
	if *jsonOut != "" {
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("--json-out: %w", err)
		}
	}
	if *asJSON {
		_, err := fmt.Fprintf(c.stdout, "%s\n", b)
		return err
	}
	fmt.Fprint(c.stdout, res.String())
	return nil
}
