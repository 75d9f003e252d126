package runtime

import (
	"sort"
	"sync/atomic"
	"time"
)

// Clock reads a monotonic time in nanoseconds. The runtime stamps batches
// with it (ingestion time, the age of a partly filled batch), so only
// differences between two readings of the same clock mean anything. Tests
// inject a fake one to drive buffer timeouts without sleeping.
type Clock interface {
	// Nanos returns the current monotonic time, always above zero (zero
	// means "not stamped" in a batch).
	Nanos() int64
}

// SystemClock is the Clock of a running job: the monotonic clock of the
// process.
type SystemClock struct{}

// clockBase is the origin of SystemClock readings.
var clockBase = time.Now()

// Nanos implements Clock: nanoseconds since the process started, plus one.
func (SystemClock) Nanos() int64 { return int64(time.Since(clockBase)) + 1 }

// LatencyBounds are the upper bounds of a latency Histogram's buckets: fine
// below a few milliseconds, where an idle pipeline's latency is, and
// coarser up to the seconds a checkpoint interval adds.
var LatencyBounds = []time.Duration{
	50 * time.Microsecond, 100 * time.Microsecond, 200 * time.Microsecond, 300 * time.Microsecond,
	500 * time.Microsecond, 750 * time.Microsecond, time.Millisecond, 1500 * time.Microsecond,
	2 * time.Millisecond, 3 * time.Millisecond, 5 * time.Millisecond, 7500 * time.Microsecond,
	10 * time.Millisecond, 15 * time.Millisecond, 20 * time.Millisecond, 30 * time.Millisecond,
	50 * time.Millisecond, 75 * time.Millisecond, 100 * time.Millisecond, 150 * time.Millisecond,
	200 * time.Millisecond, 300 * time.Millisecond, 500 * time.Millisecond, 750 * time.Millisecond,
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second,
}

// Histogram counts durations in the buckets of LatencyBounds. Any number of
// goroutines may observe and read it at once; it takes no lock.
type Histogram struct {
	counts [30]atomic.Uint64 // len(LatencyBounds)+1: the last is +Inf
	sum    atomic.Int64      // nanoseconds, weighted
}

// Observe adds weight observations of d (a batch of weight records that
// all waited d). Negative durations count as zero.
func (h *Histogram) Observe(d time.Duration, weight uint64) {
	if weight == 0 {
		return
	}
	d = max(d, 0)
	i := sort.Search(len(LatencyBounds), func(i int) bool { return d <= LatencyBounds[i] })
	h.counts[i].Add(weight)
	h.sum.Add(int64(d) * int64(weight))
}

// HistogramSnapshot is a copy of a Histogram: Counts[i] observations fell
// in bucket i (at most Bounds[i], above Bounds[i-1]); the last count is
// above every bound.
type HistogramSnapshot struct {
	Bounds []time.Duration
	Counts []uint64
	Count  uint64
	Sum    time.Duration
}

// Snapshot copies the histogram. The parts are read one after another, so
// a snapshot taken during observations may be off by those in flight.
func (h *Histogram) Snapshot() HistogramSnapshot {
	s := HistogramSnapshot{Bounds: LatencyBounds, Counts: make([]uint64, len(h.counts))}
	for i := range h.counts {
		c := h.counts[i].Load()
		s.Counts[i] = c
		s.Count += c
	}
	s.Sum = time.Duration(h.sum.Load())
	return s
}
