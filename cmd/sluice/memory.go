package main

import (
	"flag"
	"fmt"
	"io"
	"runtime"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/internal/memlimit"
	"github.com/sluicehq/sluice/state/pebble"
	"github.com/sluicehq/sluice/stream"
)

// memoryFlag is --memory (env SLUICE_MEMORY) of the commands that run
// jobs or serve: one limit that sets GOMEMLIMIT and sizes the components
// (internal/memlimit has the split).
type memoryFlag struct {
	value  *string
	floor  *string
	stderr io.Writer
}

func (m *memoryFlag) register(c *cli, fs *flag.FlagSet) {
	m.stderr = c.stderr
	m.value = fs.String("memory", envOr(c, "SLUICE_MEMORY", ""),
		"memory limit of the process, like 256MiB, 1GiB or 512MB: sets GOMEMLIMIT and sizes queues, batches and Pebble's cache from it (docs/observability.md#memory); empty: no limit (env SLUICE_MEMORY)")
	m.floor = fs.String("heap-floor", envOr(c, "SLUICE_HEAP_FLOOR", fmt.Sprintf("%dMiB", memlimit.DefaultHeapFloor>>20)),
		"the Go collector is not started before the heap reaches this size (a small live heap is otherwise collected many times a second; docs/observability.md#memory); never above --memory's heap share; 0: off, GOGC alone (env SLUICE_HEAP_FLOOR)")
}

// memory is what --memory set up for one command.
type memory struct {
	plan  *memlimit.Plan      // nil without --memory
	state memlimit.Plan       // what Pebble state is sized from: plan, or memlimit.DefaultStateBudget's
	cache *pebble.Cache       // the shared Pebble block cache
	floor *memlimit.HeapFloor // the --heap-floor
}

// setup parses the flags, applies the Go memory limit and the heap floor
// and makes the shared Pebble block cache. Call release when the command
// ends.
func (m *memoryFlag) setup() (*memory, error) {
	mem, err := m.limit()
	if err != nil {
		return nil, err
	}
	floor, err := m.heapFloor(mem.plan)
	if err != nil {
		mem.release()
		return nil, err
	}
	mem.floor = memlimit.StartHeapFloor(floor)
	return mem, nil
}

// heapFloor parses --heap-floor: at most the heap share of plan, when
// there is one.
func (m *memoryFlag) heapFloor(plan *memlimit.Plan) (int64, error) {
	if m.floor == nil || *m.floor == "" || *m.floor == "0" {
		return 0, nil
	}
	n, err := memlimit.ParseSize(*m.floor)
	if err != nil {
		return 0, usagef("--heap-floor: %v", err)
	}
	if plan != nil {
		n = min(n, plan.Heap)
	}
	return n, nil
}

// limit parses --memory and applies it.
func (m *memoryFlag) limit() (*memory, error) {
	if m.value == nil || *m.value == "" {
		// No limit: Pebble state is still sized from a default budget (its
		// caches fill only as state grows); GOMEMLIMIT stays unset.
		p, err := memlimit.Split(memlimit.DefaultStateBudget)
		if err != nil {
			return nil, err
		}
		return &memory{state: p, cache: pebble.NewCache(p.PebbleCache)}, nil
	}
	n, err := memlimit.ParseSize(*m.value)
	if err != nil {
		return nil, usagef("--memory: %v", err)
	}
	p, err := memlimit.Split(n)
	if err != nil {
		return nil, usagef("--memory: %v", err)
	}
	memlimit.Apply(p)
	if memlimit.PebbleInCMemory && m.stderr != nil {
		fmt.Fprintln(m.stderr, "sluice: warning: this binary was built with cgo: Pebble's block cache and memtables are C memory, which GOMEMLIMIT does not govern and glibc does not return promptly, so the process may exceed --memory; build with CGO_ENABLED=0 (as the release image is) to hold it (docs/observability.md#memory)")
	}
	return &memory{plan: &p, state: p, cache: pebble.NewCache(p.PebbleCache)}, nil
}

// release drops the command's reference to the shared cache (backends
// still open keep theirs).
func (m *memory) release() {
	m.floor.Stop()
	if m.cache != nil {
		m.cache.Release()
		m.cache = nil
	}
}

// collector exports the memory metrics (internal/memlimit.Collector).
func (m *memory) collector() prometheus.Collector {
	if m.cache == nil {
		return memlimit.Collector(m.plan, nil)
	}
	return memlimit.Collector(m.plan, m.cache)
}

// streamOptions are the batch size and queue capacity for jobs of the
// given parallelism (0: the number of cores); none without a limit.
func (m *memory) streamOptions(parallelism int) []stream.Option {
	if m.plan == nil {
		return nil
	}
	batch, capacity := m.streamSizes(parallelism)
	return []stream.Option{stream.WithBatchSize(batch), stream.WithQueueCapacity(capacity)}
}

func (m *memory) streamSizes(parallelism int) (batch, capacity int) {
	if parallelism <= 0 {
		parallelism = runtime.GOMAXPROCS(0)
	}
	return m.plan.Stream(parallelism)
}

// pebbleOptions are the Pebble backends' shared cache, memtable size and
// hot-entry caches for jobs of the given parallelism (0: the number of
// cores), from --memory or, without it, from memlimit.DefaultStateBudget.
func (m *memory) pebbleOptions(parallelism int) pebble.Options {
	if parallelism <= 0 {
		parallelism = runtime.GOMAXPROCS(0)
	}
	return pebble.PlanOptions(m.state, m.cache, parallelism)
}

// flagGiven reports whether the command line set the flag name.
func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}
