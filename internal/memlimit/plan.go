package memlimit

import (
	"fmt"
	"runtime/debug"
)

// The split of a limit, in percent (see the package documentation for why).
const (
	headroomPct    = 10
	pebbleCachePct = 20
	memTablePct    = 5
	queuesPct      = 10
)

// DefaultStateBudget is the budget Pebble state backends are sized from
// when no --memory is given: as for --memory 1GiB (a shared block cache
// of a fifth, memtables of a twentieth, caches of hot entries out of the
// heap part), without a Go memory limit. The caches fill only as state
// grows, so a job with little state does not use it; Flink likewise gives
// RocksDB a share of the task manager's memory by default rather than
// RocksDB's own few megabytes.
const DefaultStateBudget = 1 << 30

// Floors are the smallest size of each part of a Plan: below them a
// component would not work well (a block cache of a few blocks, queues
// that cannot hold one batch per channel).
var Floors = Plan{
	Headroom:        8 << 20,
	PebbleCache:     4 << 20,
	PebbleMemTables: 2 << 20,
	Queues:          2 << 20,
	Heap:            16 << 20,
}

// MinLimit is the smallest limit Split accepts: twice the sum of the
// floors, so that the percentages rather than the floors decide.
var MinLimit = 2 * (Floors.Headroom + Floors.PebbleCache + Floors.PebbleMemTables + Floors.Queues + Floors.Heap)

// Plan is a memory limit divided between the components of a process.
// The five parts sum to Limit.
type Plan struct {
	// Limit is the whole budget, the --memory value.
	Limit int64
	// Headroom is left outside the Go runtime's limit.
	Headroom int64
	// PebbleCache is the size of the block cache shared by every Pebble
	// state backend of the process.
	PebbleCache int64
	// PebbleMemTables is the memory of all Pebble memtables together.
	PebbleMemTables int64
	// Queues is the memory of the batches in flight between subtasks.
	Queues int64
	// Heap is the rest: in-memory state and records being processed.
	Heap int64
}

// Split divides limit bytes as the package documentation describes. Every
// part is at least its floor; a limit below MinLimit is an error.
func Split(limit int64) (Plan, error) {
	if limit < MinLimit {
		return Plan{}, fmt.Errorf("memory limit %s is below the minimum of %s: give at least --memory %s", FormatSize(limit), FormatSize(MinLimit), FormatSize(MinLimit))
	}
	part := func(pct int64, floor int64) int64 {
		// limit/100*pct cannot overflow; the remainder is lost to Heap.
		return max(limit/100*pct, floor)
	}
	p := Plan{
		Limit:           limit,
		Headroom:        part(headroomPct, Floors.Headroom),
		PebbleCache:     part(pebbleCachePct, Floors.PebbleCache),
		PebbleMemTables: part(memTablePct, Floors.PebbleMemTables),
		Queues:          part(queuesPct, Floors.Queues),
	}
	p.Heap = limit - p.Headroom - p.PebbleCache - p.PebbleMemTables - p.Queues
	return p, nil
}

// GoLimit is the Go runtime's soft memory limit (GOMEMLIMIT) of the plan:
// everything but the headroom. Pebble's block cache and memtables count
// against it when Sluice is built without cgo (the release build); with
// cgo they live in C memory and the limit is lowered by their size.
func (p Plan) GoLimit() int64 {
	l := p.Limit - p.Headroom
	if cgoCache {
		l -= p.PebbleCache + p.PebbleMemTables
	}
	return l
}

// PebbleInCMemory reports whether this build allocates Pebble's block
// cache and memtables with C malloc (a build with cgo), outside the Go
// runtime's limit: glibc keeps freed blocks in its arenas, so the
// process's resident memory may exceed the plan's limit.
const PebbleInCMemory = cgoCache

// MemTableSize is the memtable size of each of instances Pebble backends
// sharing the plan's memtable budget. Pebble keeps up to two memtables per
// backend (one being written, one being flushed), so the budget is divided
// by twice the instances; the result is at least 256 KiB and at most
// 64 MiB (larger memtables only delay flushes). While flushes lag, a
// backend may hold a third (its stall is one memtable above the state
// backend's own wait, see state/pebble's BackgroundErrorTimeout): that
// memtable comes out of the headroom.
func (p Plan) MemTableSize(instances int) uint64 {
	n := int64(max(instances, 1))
	return uint64(min(max(p.PebbleMemTables/(2*n), 256<<10), 64<<20))
}

// RecordBytes is the size assumed of one record in flight when sizing
// queues: a Go value of a few fields with a string or two. Jobs whose
// records are much larger should give a larger limit.
const RecordBytes = 128

// Stream returns the batch size and queue capacity for a job of the given
// parallelism. A job is assumed to have four exchanges, each with
// parallelism² channels holding up to capacity batches of batchSize
// records of RecordBytes bytes. The defaults of the stream engine (1024
// records, 4 batches per channel) are kept when the budget allows; a
// smaller budget lowers the capacity first (to 1), then the batch size
// (to 64).
func (p Plan) Stream(parallelism int) (batchSize, capacity int) {
	const exchanges, defBatch, defCap, minBatch = 4, 1024, 4, 64
	par := int64(max(parallelism, 1))
	channels := exchanges * par * par
	perBatchSlot := p.Queues / channels // bytes one channel may hold
	batchBytes := int64(defBatch * RecordBytes)
	if c := perBatchSlot / batchBytes; c >= 1 {
		return defBatch, int(min(c, defCap))
	}
	return int(max(perBatchSlot/RecordBytes, minBatch)), 1
}

// Apply sets the Go runtime's memory limit to p.GoLimit() and returns the
// previous limit (restore it with debug.SetMemoryLimit).
func Apply(p Plan) int64 {
	return debug.SetMemoryLimit(p.GoLimit())
}

// Current returns the Go runtime's memory limit (math.MaxInt64 when none
// is set).
func Current() int64 { return debug.SetMemoryLimit(-1) }
