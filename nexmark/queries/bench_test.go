package queries

import (
	"context"
	"flag"
	"testing"
)

var (
	benchEvents     = flag.Int64("nexmark.events", 1_000_000, "events per query run in BenchmarkQueries")
	benchPar        = flag.Int("nexmark.parallelism", 0, "parallelism of BenchmarkQueries runs (0: GOMAXPROCS)")
	benchCheckpoint = flag.Duration("nexmark.checkpoint", 0, "checkpoint interval of BenchmarkQueries runs (0: none)")
	benchState      = flag.String("nexmark.state", "memory", "keyed state backend of BenchmarkQueries runs: memory or pebble")
	benchStateMem   = flag.Int64("nexmark.state-memory", 0, "memory limit in bytes of each Pebble backend of BenchmarkQueries runs (0: Pebble defaults)")
)

// BenchmarkQueries runs every query over -nexmark.events generated events
// (default 1M, the reference's default configuration: 10M events/s of event
// time) per iteration and reports events/s and events per CPU-second. Run
// with -benchtime 1x; CPU time is the whole process's.
//
//	go test -run XXX -bench Queries -benchtime 1x ./nexmark/queries/ -args -nexmark.events 10000000
func BenchmarkQueries(b *testing.B) {
	for _, name := range Queries() {
		b.Run(name, func(b *testing.B) {
			var wall, cpu float64
			var events int64
			for i := 0; i < b.N; i++ {
				r, err := Run(context.Background(), RunConfig{Query: name, Events: *benchEvents, Parallelism: *benchPar, CheckpointInterval: *benchCheckpoint, StateBackend: *benchState, StateMemory: *benchStateMem})
				if err != nil {
					b.Fatal(err)
				}
				wall += r.WallSeconds
				cpu += r.CPUSeconds
				events += r.Events
			}
			b.ReportMetric(float64(events)/wall, "events/s")
			b.ReportMetric(float64(events)/cpu, "events/core-s")
		})
	}
}
