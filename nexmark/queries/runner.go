package queries

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/sluicehq/sluice/internal/memlimit"
	"github.com/sluicehq/sluice/nexmark"
	"github.com/sluicehq/sluice/state/pebble"
	"github.com/sluicehq/sluice/stream"
)

// ErrUnknownQuery is returned by Run for a query name that is not
// implemented.
var ErrUnknownQuery = errors.New("unknown nexmark query")

// ErrUnsupported is returned by Run for an option the stream engine does not
// offer yet. (Every option of RunConfig is supported at present.)
var ErrUnsupported = errors.New("not supported yet")

// RunConfig describes one benchmark run.
type RunConfig struct {
	// Query names the query: "q0", "q1", ... (see Queries).
	Query string
	// Events is the number of events to generate. Ignored with SourceFile.
	Events int64
	// Generator holds the generator parameters; nil means
	// nexmark.DefaultConfig().
	Generator *nexmark.Config
	// SourceFile, when set, reads the events from a file written by
	// `sluice nexmark generate` instead of generating them.
	SourceFile string
	// Parallelism is the number of parallel subtasks of every operator and
	// source splits; 0 means the stream engine's default (GOMAXPROCS).
	Parallelism int
	// BatchSize overrides the stream engine's batch size when positive.
	BatchSize int
	// Output, when set, receives every result row as one JSON line (for
	// queries whose results update, the final row per key).
	Output io.Writer
	// CheckpointInterval enables exactly-once checkpoints at this interval
	// when positive, into CheckpointDir.
	CheckpointInterval time.Duration
	// CheckpointDir is where checkpoints go; empty means a temporary
	// directory removed when the run ends. A directory holding checkpoints
	// of an earlier run of the same query resumes it.
	CheckpointDir string
	// StateBackend names the keyed state backend of KeyedProcess
	// operators: "" or "memory" (the default), or "pebble" (on disk, in
	// StateDir).
	StateBackend string
	// StateDir is the Pebble backend's working directory; empty means a
	// temporary directory removed when the run ends.
	StateDir string
	// StateMemory, when positive, is the memory limit in bytes of each
	// Pebble backend (one per keyed operator subtask), from which its block
	// cache and memtables are sized (pebble.Options.MemoryLimit); with 0
	// and no Pebble sizes, the backends are sized as `sluice nexmark run`
	// sizes them without --memory (memlimit.DefaultStateBudget, one shared
	// block cache).
	StateMemory int64
	// QueueCapacity overrides the stream engine's queue capacity (batches
	// per channel) when positive.
	QueueCapacity int
	// Pebble holds the Pebble backends' cache and memtable settings
	// (its Dir is replaced by StateDir); zero values keep the defaults.
	Pebble pebble.Options
}

// Result is what a run measured. Its JSON keys are those `sluice nexmark run
// --json` prints.
type Result struct {
	Query               string  `json:"query"`
	Events              int64   `json:"events"`
	WallSeconds         float64 `json:"wall_seconds"`
	CPUSeconds          float64 `json:"cpu_seconds"`
	EventsPerSecond     float64 `json:"events_per_second"`
	EventsPerCoreSecond float64 `json:"events_per_core_second"`
	Results             int64   `json:"results"`
	Checksum            string  `json:"checksum"`
	// GCCPUShare is the share of the CPU time of the run that the
	// garbage collector took (runtime/metrics estimates, see Usage).
	GCCPUShare float64 `json:"gc_cpu_share"`
	// MaxRSSBytes is the process's peak resident set size at the end of
	// the run (getrusage; 0 where not measured). With several runs in
	// one process it is the peak of all so far.
	MaxRSSBytes int64 `json:"max_rss_bytes"`
}

// Run builds the dataflow of cfg.Query over the generator (or the source
// file), runs it to the end of its input and reports the throughput and
// the fingerprint of the result rows. CPU seconds are the whole process's
// (user + system, from getrusage), so run one benchmark per process for
// clean figures.
func Run(ctx context.Context, cfg RunConfig) (Result, error) {
	q, err := lookup(cfg.Query)
	if err != nil {
		return Result{}, err
	}
	switch cfg.StateBackend {
	case "", "memory", "pebble":
	default:
		return Result{}, fmt.Errorf("nexmark %s: unknown state backend %q (want memory or pebble)", q.name, cfg.StateBackend)
	}
	if cfg.SourceFile == "" && cfg.Events < 0 {
		return Result{}, fmt.Errorf("nexmark %s: negative event count %d", q.name, cfg.Events)
	}
	gen := nexmark.DefaultConfig()
	if cfg.Generator != nil {
		gen = *cfg.Generator
	}
	if err := gen.Validate(); err != nil {
		return Result{}, fmt.Errorf("nexmark %s: %w", q.name, err)
	}

	var opts []stream.Option
	if cfg.Parallelism > 0 {
		opts = append(opts, stream.WithParallelism(cfg.Parallelism))
	}
	if cfg.BatchSize > 0 {
		opts = append(opts, stream.WithBatchSize(cfg.BatchSize))
	}
	if cfg.QueueCapacity > 0 {
		opts = append(opts, stream.WithQueueCapacity(cfg.QueueCapacity))
	}
	if cfg.CheckpointInterval > 0 {
		dir := cfg.CheckpointDir
		if dir == "" {
			tmp, err := os.MkdirTemp("", "sluice-nexmark-"+q.name+"-")
			if err != nil {
				return Result{}, fmt.Errorf("nexmark %s: checkpoint directory: %w", q.name, err)
			}
			defer os.RemoveAll(tmp)
			dir = tmp
		}
		opts = append(opts, stream.WithCheckpointing(dir, cfg.CheckpointInterval))
	}
	if cfg.StateBackend == "pebble" {
		dir := cfg.StateDir
		if dir == "" {
			tmp, err := os.MkdirTemp("", "sluice-nexmark-state-"+q.name+"-")
			if err != nil {
				return Result{}, fmt.Errorf("nexmark %s: state directory: %w", q.name, err)
			}
			defer os.RemoveAll(tmp)
			dir = tmp
		}
		po := cfg.Pebble
		po.Dir = dir
		if po.MemoryLimit == 0 {
			po.MemoryLimit = cfg.StateMemory
		}
		if po == (pebble.Options{Dir: dir}) {
			// Nothing sized: as `sluice nexmark run` without --memory,
			// from the default state budget with one shared cache.
			p, err := memlimit.Split(memlimit.DefaultStateBudget)
			if err != nil {
				return Result{}, fmt.Errorf("nexmark %s: %w", q.name, err)
			}
			cache := pebble.NewCache(p.PebbleCache)
			defer cache.Release()
			par := cfg.Parallelism
			if par <= 0 {
				par = runtime.GOMAXPROCS(0)
			}
			po = pebble.PlanOptions(p, cache, par)
			po.Dir = dir
		}
		opts = append(opts, stream.WithStateBackend(pebble.Factory(po)))
	}
	env := stream.New(opts...)
	var src stream.Source[nexmark.Event]
	var file *FileSource
	if cfg.SourceFile != "" {
		file = &FileSource{Path: cfg.SourceFile}
		src = file
	} else {
		src = &GeneratorSource{Config: gen, Events: cfg.Events}
	}
	events := stream.FromSource(env, "nexmark", src, Watermarks())
	res := &results{out: cfg.Output}
	if err := q.build(events, res); err != nil {
		return Result{}, fmt.Errorf("nexmark %s: %w", q.name, err)
	}

	cpu0, use0 := cpuSeconds(), MeasureUsage()
	start := time.Now()
	err = env.Execute(ctx)
	wall := time.Since(start).Seconds()
	cpu, use1 := cpuSeconds()-cpu0, MeasureUsage()
	if err != nil {
		return Result{}, fmt.Errorf("nexmark %s: %w", q.name, err)
	}
	if err := res.flushLive(); err != nil {
		return Result{}, fmt.Errorf("nexmark %s: writing results: %w", q.name, err)
	}
	if err := res.writeErr(); err != nil {
		return Result{}, fmt.Errorf("nexmark %s: writing results: %w", q.name, err)
	}
	n := cfg.Events
	if file != nil {
		n = file.Events()
	}
	fp := res.fingerprint()
	r := Result{
		Query:       q.name,
		Events:      n,
		WallSeconds: wall,
		CPUSeconds:  cpu,
		Results:     fp.Rows,
		Checksum:    fp.String(),
	}
	r.SetUsage(use0, use1)
	if wall > 0 {
		r.EventsPerSecond = float64(n) / wall
	}
	if cpu > 0 {
		r.EventsPerCoreSecond = float64(n) / cpu
	}
	return r, nil
}
