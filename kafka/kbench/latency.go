package kbench

import (
	"math/bits"
	"time"
)

// latHist counts latencies in log-linear buckets: exact below 64 ns, then
// 32 buckets per power of two, so a percentile read from it is within
// 1/32 (about 3 %) of the exact one. Recording is an increment, with no
// memory per record and no sort at the end, so that a long run's
// bookkeeping does not load the machine it measures; the maximum is kept
// exactly.
type latHist struct {
	counts [latBuckets]uint64
	n      uint64
	max    int64
}

// latBuckets covers latencies up to 2^63 ns.
const latBuckets = 59 * 32 // the largest int64 falls in bucket 57*32 + 63

// latBucket is the bucket of a latency of v ns (negative counts as 0).
func latBucket(v int64) int {
	if v < 64 {
		return int(max(v, 0))
	}
	e := bits.Len64(uint64(v)) - 6 // v>>e is in [32, 64)
	return e*32 + int(v>>e)
}

// latBucketHigh is the largest latency that falls in bucket i.
func latBucketHigh(i int) int64 {
	if i < 64 {
		return int64(i)
	}
	e := i/32 - 1
	sub := int64(i%32 + 32)
	return (sub+1)<<e - 1
}

func (h *latHist) add(d time.Duration) {
	v := int64(d)
	h.counts[latBucket(v)]++
	h.n++
	h.max = max(h.max, v)
}

// quantile returns the latency below which a fraction q of the records
// fall (the top of its bucket, at most the maximum); 0 when empty. It
// picks the same rank as indexing a sorted slice at n*q.
func (h *latHist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := min(uint64(float64(h.n)*q), h.n-1) // 0-based, as lat[len(lat)*q] was
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen > rank {
			return time.Duration(min(latBucketHigh(i), h.max))
		}
	}
	return time.Duration(h.max)
}
