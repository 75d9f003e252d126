// Command logbench runs the log benchmark of package logbench from the
// command line until `sluice bench log` wires it into the CLI:
//
//	go run ./logstore/logbench/cmd/logbench -size 100 -batch 100 -producers 16 -fsync always
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/logstore/logbench"
)

func main() {
	var (
		cfg       logbench.Config
		fsync     string
		disk      bool
		diskBlock int
	)
	flag.StringVar(&cfg.Dir, "dir", "", "data directory (default: a temporary directory)")
	flag.IntVar(&cfg.RecordSize, "size", 100, "record value size in bytes")
	flag.IntVar(&cfg.RecordsPerBatch, "batch", 100, "records per appended batch")
	flag.IntVar(&cfg.Partitions, "partitions", 1, "partitions")
	flag.IntVar(&cfg.Producers, "producers", 16, "concurrent appenders")
	flag.StringVar(&fsync, "fsync", "always", "fsync policy: always, interval[:DUR], never")
	flag.DurationVar(&cfg.Duration, "duration", 5*time.Second, "length of the append phase")
	flag.BoolVar(&cfg.Read, "read", true, "read everything back afterwards")
	flag.BoolVar(&disk, "disk", true, "also measure the disk's own limits")
	flag.IntVar(&diskBlock, "disk-block", 1<<20, "bytes written per fdatasync in the disk bandwidth test")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: logbench [flags]\n\nAppends to and reads from an in-process log and prints throughput and latency.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	p, err := logstore.ParseFsyncPolicy(fsync)
	if err != nil {
		fmt.Fprintln(os.Stderr, "logbench:", err)
		os.Exit(2)
	}
	cfg.Fsync = p
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if disk {
		dir := cfg.Dir
		if dir == "" {
			dir = os.TempDir()
		}
		d, err := logbench.MeasureDisk(ctx, logbench.DiskConfig{Dir: dir, MaxTime: cfg.Duration, BlockSize: diskBlock})
		if err != nil {
			fmt.Fprintln(os.Stderr, "logbench:", err)
			os.Exit(1)
		}
		fmt.Print(d)
	}
	res, err := logbench.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "logbench:", err)
		os.Exit(1)
	}
	fmt.Print(res)
}
