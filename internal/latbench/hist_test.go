package latbench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// oracle returns the ceil(q*n)-th smallest value (at least the first) of
// sorted, the order statistic Quantile approximates.
func oracle(sorted []int64, q float64) int64 {
	rank := int(math.Ceil(q * float64(len(sorted))))
	rank = max(rank, 1)
	return sorted[rank-1]
}

func TestBucketsAreContiguous(t *testing.T) {
	prevHi := int64(-1)
	for i := range numBuckets {
		lo, hi := bucketRange(i)
		if int64(lo) != prevHi+1 && !(i == numBuckets-1 && lo == uint64(prevHi)+1) {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, prevHi)
		}
		if bucketOf(lo) != i || bucketOf(hi) != i {
			t.Fatalf("bucket %d = [%d, %d] but bucketOf gives %d and %d", i, lo, hi, bucketOf(lo), bucketOf(hi))
		}
		if i >= 2*subCount && float64(hi-lo+1) > float64(lo)/subCount {
			t.Fatalf("bucket %d = [%d, %d] wider than 1/%d of its start", i, lo, hi, subCount)
		}
		prevHi = int64(hi)
		if hi == math.MaxUint64 {
			break
		}
	}
	if bucketOf(math.MaxInt64) >= numBuckets {
		t.Fatalf("MaxInt64 maps past the last bucket")
	}
}

// TestQuantilesAgainstSortedSlice records several distributions and checks
// every reported quantile against the exact order statistic of the sorted
// values: never below it, above it by at most 1/128 of it; min, max, count
// and mean exact.
func TestQuantilesAgainstSortedSlice(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	dists := map[string]func() int64{
		"small exact": func() int64 { return r.Int64N(300) },
		"uniform ms":  func() int64 { return r.Int64N(int64(50 * time.Millisecond)) },
		"exponential": func() int64 { return int64(r.ExpFloat64() * float64(2*time.Millisecond)) },
		"lognormal":   func() int64 { return int64(math.Exp(r.NormFloat64()*2 + 14)) },
		"bimodal tail": func() int64 {
			return map[bool]int64{true: 1_400_000, false: 300_000_000}[r.IntN(1000) != 0] + r.Int64N(1000)
		},
		"huge": func() int64 { return math.MaxInt64 - r.Int64N(1<<40) },
	}
	qs := []float64{0, 0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 1}
	for name, gen := range dists {
		for _, n := range []int{1, 2, 7, 1000, 100_000} {
			var h Histogram
			vals := make([]int64, n)
			sum := 0.0
			for i := range vals {
				vals[i] = gen()
				h.Record(time.Duration(vals[i]))
				sum += float64(vals[i])
			}
			slices.Sort(vals)
			if h.Count() != uint64(n) || int64(h.Min()) != vals[0] || int64(h.Max()) != vals[n-1] {
				t.Fatalf("%s n=%d: count %d min %d max %d, want %d %d %d", name, n, h.Count(), h.Min(), h.Max(), n, vals[0], vals[n-1])
			}
			if want := sum / float64(n); math.Abs(float64(h.Mean())-want) > want*1e-9+1 {
				t.Fatalf("%s n=%d: mean %d, want %.0f", name, n, h.Mean(), want)
			}
			for _, q := range qs {
				got, want := int64(h.Quantile(q)), oracle(vals, q)
				if got < want || float64(got-want) > float64(want)/subCount {
					t.Fatalf("%s n=%d q=%v: got %d, exact %d", name, n, q, got, want)
				}
			}
		}
	}
}

func TestHistogramEdgeCases(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Max() != 0 || h.Mean() != 0 {
		t.Fatal("empty histogram reports values")
	}
	h.Record(-5)
	if h.Count() != 1 || h.Max() != 0 || h.Quantile(1) != 0 {
		t.Fatalf("negative value not counted as 0: %+v", h.Quantile(1))
	}
	var a, b Histogram
	var all []int64
	for i := range 5000 {
		v := int64(i*i) * 37
		all = append(all, v)
		if i%3 == 0 {
			a.Record(time.Duration(v))
		} else {
			b.Record(time.Duration(v))
		}
	}
	a.Merge(&b)
	a.Merge(&Histogram{})
	slices.Sort(all)
	if a.Count() != 5000 || int64(a.Min()) != all[0] || int64(a.Max()) != all[4999] {
		t.Fatalf("merged: count %d min %d max %d", a.Count(), a.Min(), a.Max())
	}
	for _, q := range []float64{0.5, 0.99, 0.999} {
		got, want := int64(a.Quantile(q)), oracle(all, q)
		if got < want || float64(got-want) > float64(want)/subCount {
			t.Fatalf("merged q=%v: got %d, exact %d", q, got, want)
		}
	}
}
