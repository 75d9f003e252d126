package memlimit

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// DefaultHeapFloor is the heap goal below which a command's collector is
// not started (see HeapFloor): 64 MiB. A streaming job holds little live
// heap (a pass-through pipeline about 11 MB) but allocates for every
// record (about 100 MB/s at 100,000 JSON records/s), so with Go's default
// GOGC of 100 it collected about nine times a second, each mark phase
// taking a P for 5-7 ms of the two on the benchmark machine; with the goal
// at 64 MiB it collects about twice a second with the same work per cycle.
const DefaultHeapFloor = 64 << 20

// maxFloorPercent bounds the GOGC HeapFloor sets (a nearly empty heap
// would otherwise ask for millions of percent).
const maxFloorPercent = 100_000

// HeapFloor keeps the collector's heap goal at floor bytes or more while
// the live heap is small: after every collection it sets GOGC to the
// larger of the process's own GOGC (the GOGC variable, default 100) and
// the percentage that puts the next goal at floor. A live heap above half
// the floor is collected as GOGC alone says, and a memory limit
// (GOMEMLIMIT, --memory) still bounds the heap: the runtime collects at
// whichever goal is lower. Stop ends it and restores the process's GOGC.
// With GOGC=off nothing is changed.
type HeapFloor struct {
	floor    uint64
	base     int
	set      func(int) int           // debug.SetGCPercent
	heap     func() (uint64, uint64) // live heap, and the other roots the goal counts (stacks, globals)
	onAdjust func(int)               // tests: the percentage set after a collection
	stopped  atomic.Bool
	mu       sync.Mutex // serializes adjust with Stop
}

// StartHeapFloor starts keeping the heap goal at floor bytes or more; a
// floor of 0 or less, or GOGC=off, starts nothing (Stop is still safe).
func StartHeapFloor(floor int64) *HeapFloor {
	h := &HeapFloor{set: debug.SetGCPercent, heap: readHeap}
	h.base = baseGCPercent(os.Getenv("GOGC"))
	if floor <= 0 || h.base < 0 {
		h.stopped.Store(true)
		return h
	}
	h.floor = uint64(floor)
	h.start()
	return h
}

// start sets the first percentage and arms the per-collection callback.
func (h *HeapFloor) start() {
	h.adjust()
	h.arm()
}

// Stop ends the floor and restores the process's GOGC.
func (h *HeapFloor) Stop() {
	if h == nil || h.stopped.Swap(true) {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.set(h.base)
}

// arm registers a callback that runs once the collector has found a fresh
// object unreachable, that is after the next collection; the callback
// adjusts GOGC and arms itself again.
func (h *HeapFloor) arm() {
	sentinel := new([32]byte) // not a tiny allocation: cleanups of tiny objects may not run
	runtime.AddCleanup(sentinel, func(h *HeapFloor) {
		if h.stopped.Load() {
			return
		}
		h.adjust()
		h.arm()
	}, h)
}

// adjust sets GOGC from the heap the last collection left.
func (h *HeapFloor) adjust() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped.Load() {
		return
	}
	live, roots := h.heap()
	pct := floorPercent(h.floor, live, roots, h.base)
	h.set(pct)
	if h.onAdjust != nil {
		h.onAdjust(pct)
	}
}

// floorPercent is the GOGC that makes the heap goal at least floor, given
// the live heap and the other roots the goal is computed from (Go's goal
// is live + (live + roots) × GOGC/100), and never below base.
func floorPercent(floor, live, roots uint64, base int) int {
	if live >= floor {
		return base
	}
	scan := live + roots
	if scan == 0 {
		return maxFloorPercent
	}
	pct := math.Ceil(float64(floor-live) * 100 / float64(scan))
	if pct > maxFloorPercent {
		return maxFloorPercent
	}
	return max(base, int(pct))
}

// baseGCPercent reads the process's own GOGC: its value, 100 when unset
// or invalid (as the runtime treats it), -1 for off.
func baseGCPercent(env string) int {
	switch env {
	case "":
		return 100
	case "off":
		return -1
	}
	n := 0
	for _, c := range env {
		if c < '0' || c > '9' || n > maxFloorPercent {
			return 100
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// heapSamples are the runtime metrics readHeap reads.
var heapSamples = []string{"/gc/heap/live:bytes", "/gc/scan/stack:bytes", "/gc/scan/globals:bytes"}

// readHeap returns the live heap marked by the last collection, and the
// stacks and globals the collector scans.
func readHeap() (live, roots uint64) {
	s := make([]metrics.Sample, len(heapSamples))
	for i, name := range heapSamples {
		s[i].Name = name
	}
	metrics.Read(s)
	v := func(i int) uint64 {
		if s[i].Value.Kind() == metrics.KindUint64 {
			return s[i].Value.Uint64()
		}
		return 0
	}
	return v(0), v(1) + v(2)
}
