package kbench

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestLatHistQuantiles checks the histogram against the exact percentiles
// of the same random latencies: never below the exact value, and above it
// by at most one bucket's width (1/32).
func TestLatHistQuantiles(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 50; round++ {
		n := 1 + r.IntN(5000)
		var h latHist
		lat := make([]int64, n)
		for i := range lat {
			// from nanoseconds to minutes, log-uniform
			v := int64(1) << r.IntN(36)
			v += r.Int64N(v)
			if r.IntN(10) == 0 {
				v = r.Int64N(100)
			}
			lat[i] = v
			h.add(time.Duration(v))
		}
		slices.Sort(lat)
		for _, q := range []float64{0, 0.5, 0.99, 0.999, 1} {
			exact := lat[min(int(float64(n)*q), n-1)]
			got := int64(h.quantile(q))
			if got < exact || float64(got-exact) > float64(exact)/32+1 {
				t.Fatalf("round %d, n %d, q %v: histogram %d, exact %d", round, n, q, got, exact)
			}
		}
		if int64(h.quantile(1)) != lat[n-1] {
			t.Fatalf("max %d, want %d", h.quantile(1), lat[n-1])
		}
	}
	for i := 0; i < latBuckets-2; i++ { // the last bucket ends at the largest int64
		if latBucket(latBucketHigh(i)) != i || latBucket(latBucketHigh(i)+1) != i+1 {
			t.Fatalf("bucket %d: high %d maps to %d, high+1 to %d", i, latBucketHigh(i), latBucket(latBucketHigh(i)), latBucket(latBucketHigh(i)+1))
		}
	}
}
