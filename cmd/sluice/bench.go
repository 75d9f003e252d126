package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/sluicehq/sluice/kafka/kbench"
	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/logstore/logbench"
)

func benchCommand() *command {
	return &command{
		name:    "bench",
		summary: "measure the log and the Kafka listener on this machine",
		sub: []*command{
			{name: "log", summary: "append to and read from the embedded log in-process; prints records/s, MB/s, p50/p99 ack latency and the disk's own limits", run: benchLog},
			{name: "kafka", summary: "produce and consume through the Kafka protocol over loopback with franz-go", run: benchKafka},
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
	diskBlock := fs.Int("disk-block", 1<<20, "bytes written per fdatasync in the disk bandwidth test")
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
		d, err := logbench.MeasureDisk(ctx, logbench.DiskConfig{Dir: cfg.Dir, BlockSize: *diskBlock, MaxTime: cfg.Duration})
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
	batch := fs.Int("batch-bytes", 1<<20, "producer maximum batch bytes")
	fs.IntVar(&cfg.BufferedRecords, "buffered-records", 10_000, "records the producer may hold unacknowledged before it blocks (franz-go's default)")
	fs.IntVar(&cfg.Rate, "rate", 0, "limit production to this many records/s (0: as fast as possible); latency percentiles mean most below the maximum rate")
	fs.StringVar(&cfg.Compression, "compression", "none", "none, gzip, snappy, lz4 or zstd")
	fsync := fs.String("fsync", "always", "fsync policy of the in-process server's log")
	fs.BoolVar(&cfg.SkipConsume, "skip-consume", false, "only produce")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("takes no arguments")
	}
	if cfg.Records < 1 || cfg.RecordSize < 0 || *partitions < 1 || *batch < 1 || cfg.BufferedRecords < 1 {
		return usagef("--records, --partitions, --batch-bytes and --buffered-records must be positive")
	}
	cfg.Partitions, cfg.BatchBytes = int32(*partitions), int32(*batch)
	if cfg.Fsync, err = logstore.ParseFsyncPolicy(*fsync); err != nil {
		return usagef("--fsync: %v", err)
	}
	stop := progress(c, "bench kafka")
	res, err := kbench.Run(ctx, cfg)
	stop()
	if err != nil {
		return err
	}
	fmt.Fprint(c.stdout, res.String())
	return nil
}
