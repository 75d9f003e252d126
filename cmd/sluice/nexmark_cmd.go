package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/sluicehq/sluice/nexmark"
)

// nexmarkGenerate runs `sluice nexmark generate`: it writes Nexmark events
// as JSON lines (see nexmark.AppendJSON) to stdout or --output.
func nexmarkGenerate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const usage = `Usage: sluice nexmark generate --events N [flags]

Writes N Nexmark events (people, auctions and bids, mixed 1:3:46 like the
Flink nexmark generator), one JSON object per line:
  {"event_type":0|1|2,"person":{...}|null,"auction":{...}|null,"bid":{...}|null}
Times are epoch milliseconds. The same flags always give the same events.

Flags:
`
	def := nexmark.DefaultConfig()
	fs := flag.NewFlagSet("sluice nexmark generate", flag.ContinueOnError)
	out := &usageOut{dst: stdout}
	fs.SetOutput(out)
	events := fs.Int64("events", 0, "number of events to write (required)")
	seed := fs.Uint64("seed", def.Seed, "random seed")
	rate := fs.Int64("rate", def.EventRate, "events per second of event time: sets the timestamps, not the output speed")
	baseTime := fs.Int64("base-time", def.BaseTime, "event time of the first event, epoch milliseconds")
	output := fs.String("output", "", "write to this file instead of stdout")
	fs.Usage = func() {
		fmt.Fprint(out, usage)
		fs.PrintDefaults()
		printExamples(out, "sluice nexmark generate")
	}
	if err := fs.Parse(args); err != nil {
		return parseError(fs, err)
	}
	switch {
	case fs.NArg() > 0:
		return usagef("unexpected argument %q", fs.Arg(0))
	case *events <= 0:
		return usagef("--events must be a positive number of events")
	}
	cfg := def
	cfg.Seed, cfg.EventRate, cfg.BaseTime = *seed, *rate, *baseTime
	if err := cfg.Validate(); err != nil {
		return usagef("%v", err)
	}

	w := stdout
	var f *os.File
	if *output != "" {
		var err error
		if f, err = os.Create(*output); err != nil {
			return fmt.Errorf("nexmark generate: %w", err)
		}
		defer f.Close()
		w = f
	}
	if err := nexmark.GenerateJSON(ctx, w, cfg, *events); err != nil {
		return err
	}
	if f != nil {
		if err := f.Close(); err != nil {
			return fmt.Errorf("nexmark generate: close %s: %w", *output, err)
		}
		fmt.Fprintf(stderr, "wrote %d events to %s\n", *events, *output)
	}
	return nil
}
