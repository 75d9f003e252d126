package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/sluicehq/sluice/nexmark/queries"
	"github.com/sluicehq/sluice/sql/nexmarksql"
)

func nexmarkCommand() *command {
	return &command{
		name:    "nexmark",
		summary: "the Nexmark streaming benchmark: generate events, run queries",
		sub: []*command{
			{name: "generate", summary: "print Nexmark events as JSON lines", run: func(ctx context.Context, c *cli, args []string) error {
				return nexmarkGenerate(ctx, args, c.stdout, c.stderr)
			}},
			{name: "run", summary: "run a query (or all) over generated events and report throughput and a result checksum", run: nexmarkRun},
		},
	}
}

func nexmarkRun(ctx context.Context, c *cli, args []string) error {
	fs := flagSet(c, "sluice nexmark run", "--query q5|all [--sql] [--events 10000000] [--parallelism P] [--source FILE] [--output FILE] [--json] [--memory LIMIT] [--cpuprofile FILE]")
	useSQL := fs.Bool("sql", false, "run the reference's SQL text of the query (q0-q22) on Sluice SQL instead of the hand-written Go query; the checksums of the two agree")
	query := fs.String("query", "", "query to run: "+strings.Join(queries.Queries(), ", ")+", or all (required)")
	events := fs.Int64("events", 10_000_000, "events to generate")
	parallelism := fs.Int("parallelism", 0, "parallel subtasks per operator (default: the number of cores)")
	interval := durationFlag(fs, "checkpoint-interval", 0, "take a checkpoint this often (0: none)")
	stateBackend := fs.String("state", "memory", "keyed state backend: memory or pebble")
	source := fs.String("source", "", "read events from `FILE`, written by sluice nexmark generate, instead of generating them")
	output := fs.String("output", "", "write every result row as a JSON line to this file")
	asJSON := fs.Bool("json", false, "print exactly one JSON object (or one per query with --query all)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
	var mf memoryFlag
	mf.register(c, fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("takes no arguments, got %q", pos)
	}
	if *query == "" {
		return usagef("--query is required (one of %s, or all)", strings.Join(queries.Queries(), ", "))
	}
	if *events < 1 || *parallelism < 0 {
		return usagef("--events must be positive and --parallelism not negative")
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
	defer stopProfile()
	names := []string{*query}
	if *query == "all" {
		names = queries.Queries()
		if *useSQL {
			names = nexmarksql.Queries()
		}
		if *output != "" {
			return usagef("--output takes one query, not all")
		}
	}
	var out *os.File
	if *output != "" {
		if out, err = os.Create(*output); err != nil {
			return fmt.Errorf("nexmark run: %w", err)
		}
		defer out.Close()
	}
	var results []queries.Result
	for _, q := range names {
		cfg := queries.RunConfig{Query: q, Events: *events, SourceFile: *source, Parallelism: *parallelism,
			CheckpointInterval: *interval, StateBackend: *stateBackend, Pebble: mem.pebbleOptions(*parallelism)}
		if mem.plan != nil {
			cfg.BatchSize, cfg.QueueCapacity = mem.streamSizes(*parallelism)
		}
		if out != nil {
			cfg.Output = out
		}
		if !*asJSON {
			fmt.Fprintf(c.stderr, "nexmark %s: %d events...\n", q, *events)
		}
		stop := progress(c, "nexmark "+q)
		var res queries.Result
		if *useSQL {
			if *output != "" {
				stop()
				return usagef("--output is not supported with --sql")
			}
			scfg := nexmarksql.Config{Query: q, Events: *events, SourceFile: *source, Parallelism: *parallelism,
				CheckpointInterval: *interval, StateBackend: *stateBackend,
				StreamOptions: mem.streamOptions(*parallelism), Pebble: mem.pebbleOptions(*parallelism)}
			if *interval > 0 || *stateBackend == "pebble" {
				dir, derr := os.MkdirTemp("", "sluice-nexmark-sql-")
				if derr != nil {
					stop()
					return derr
				}
				defer os.RemoveAll(dir)
				scfg.CheckpointDir = dir
			}
			res, err = nexmarksql.Run(ctx, scfg)
		} else {
			res, err = queries.Run(ctx, cfg)
		}
		stop()
		if err != nil {
			if errors.Is(err, queries.ErrUnknownQuery) || errors.Is(err, queries.ErrUnsupported) {
				return usagef("%v", err)
			}
			return fmt.Errorf("%s: %w", q, err)
		}
		results = append(results, res)
		if *asJSON {
			b, _ := marshalJSON(res, false)
			fmt.Fprintln(c.stdout, string(b))
		}
	}
	if out != nil {
		if err := out.Close(); err != nil {
			return fmt.Errorf("nexmark run: close %s: %w", *output, err)
		}
	}
	if *asJSON {
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "query\tevents\twall s\tcpu s\tevents/s\tevents/core-s\tgc cpu\tmax rss MiB\tresults\tchecksum\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.2f\t%.0f\t%.0f\t%.1f%%\t%d\t%d\t%s\t\n", r.Query, r.Events, r.WallSeconds, r.CPUSeconds,
			r.EventsPerSecond, r.EventsPerCoreSecond, 100*r.GCCPUShare, r.MaxRSSBytes>>20, r.Results, r.Checksum)
	}
	return tw.Flush()
}
