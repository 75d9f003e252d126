// Package memlimit turns one memory limit (the --memory flag of `sluice
// run`, `sluice serve`, `sluice sql` and `sluice nexmark run`, or
// SLUICE_MEMORY) into the settings of the components that hold memory, and
// exports what they use as Prometheus metrics.
//
// ParseSize reads sizes like 256MiB, 1GiB, 512MB or 1073741824. Split
// divides a limit into a Plan:
//
//	headroom      10%  memory the Go runtime does not govern: thread stacks
//	                   of the OS, cgo allocations, pages the scavenger has
//	                   not returned yet; GOMEMLIMIT = limit - headroom
//	pebble cache  20%  one block cache shared by every Pebble state backend
//	                   of the process (reads of state larger than memory)
//	memtables      5%  Pebble's write buffers, divided between backends
//	queues        10%  batches in flight between subtasks (queue capacity)
//	heap          55%  everything else: in-memory keyed and window state,
//	                   records being processed, the log and the protocol
//
// Why this split: the Go heap is where a job's state and working records
// live unless state is on Pebble, so it keeps the majority. Pebble's block
// cache only speeds up reads of state that is on disk; below its size the
// engine still works (reads go to the OS page cache), so it gets a fifth.
// Memtables are written whole to level 0 when full; small ones only mean
// more, smaller flushes, so 5% is enough. Queues bound how much is in flight
// between operators: beyond a few batches per channel more capacity adds
// latency, not throughput, so a tenth caps them and small limits shrink
// them. Each part has a floor (Floors) so that a small limit still leaves
// every component room to work; a limit below MinLimit is refused.
//
// Apply sets GOMEMLIMIT (runtime/debug.SetMemoryLimit) from a Plan; GOGC is
// left at its default of 100: with a limit set the collector runs more
// often only when the heap approaches the limit, which is the behaviour
// wanted from a bounded job (docs/observability.md#memory has the
// measured GC CPU share).
package memlimit
