package anomaly

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// closeTo reports whether got is within a relative tolerance of want.
func closeTo(got, want, tol float64) bool {
	if math.IsNaN(want) {
		return math.IsNaN(got)
	}
	return math.Abs(got-want) <= tol*math.Max(1, math.Abs(want))
}

// TestEWMAMatchesWeightedSums checks the EWMA's score against the
// definition, recomputed from scratch for every observation: the mean and
// (population) variance of the earlier values weighted 2^(-(T - tᵢ)/h),
// T the newest event time, with irregular and out-of-order times.
func TestEWMAMatchesWeightedSums(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	const h = 60_000.0
	e := NewEWMA(time.Minute, 3, 2)
	var ts []int64
	var xs []float64
	now := int64(1_000_000)
	for i := range 2000 {
		ti := now + int64(r.IntN(90_000)) - 20_000 // sometimes behind the newest
		now = max(now, ti)
		x := 50 + 10*r.NormFloat64()
		want := math.NaN()
		if len(xs) >= 2 {
			newest := ts[0]
			for _, t := range ts {
				newest = max(newest, t)
			}
			var sw, swx float64
			for k := range xs {
				w := math.Exp2(-float64(newest-ts[k]) / h)
				sw += w
				swx += w * xs[k]
			}
			mean := swx / sw
			var swd float64
			for k := range xs {
				w := math.Exp2(-float64(newest-ts[k]) / h)
				swd += w * (xs[k] - mean) * (xs[k] - mean)
			}
			want = (x - mean) / math.Sqrt(swd/sw)
		}
		got, _ := e.Update(ti, x)
		if !closeTo(got, want, 1e-9) {
			t.Fatalf("observation %d at %d: score %v, want %v", i, ti, got, want)
		}
		ts = append(ts, ti)
		xs = append(xs, x)
	}
}

// TestZScoreMatchesWindow checks the sliding z-score against the mean and
// sample standard deviation of the values in (T - window, T], T the newest
// event time, recomputed for every observation. The level shifts far from
// where it started (the running sums' reference value): before the sums
// were rebuilt on such a move, the scores after a shift of 1e9 were off by
// 20 % until max_samples expiries later.
func TestZScoreMatchesWindow(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	const win = 10 * 60_000
	z := NewZScore(10*time.Minute, 1<<20, 3, 2)
	var ts []int64
	var xs []float64
	now := int64(0)
	for i := range 3000 {
		now += int64(r.IntN(40_000))
		// A large offset, and shifts of it: cancellation would show.
		level := 1e6
		switch {
		case i >= 2000:
			level = -3e8
		case i >= 1000:
			level = 1e9
		}
		x := level + 10*r.NormFloat64()
		var in []float64
		for k := range ts {
			if ts[k] > now-win {
				in = append(in, xs[k])
			}
		}
		want := math.NaN()
		if len(in) >= 2 {
			var s float64
			for _, v := range in {
				s += v
			}
			mean := s / float64(len(in))
			var ss float64
			for _, v := range in {
				ss += (v - mean) * (v - mean)
			}
			want = (x - mean) / math.Sqrt(ss/float64(len(in)-1))
		}
		got, _ := z.Update(now, x)
		if !closeTo(got, want, 1e-6) {
			t.Fatalf("observation %d: score %v, want %v (%d in window)", i, got, want, len(in))
		}
		ts = append(ts, now)
		xs = append(xs, x)
	}
}

// TestSeasonalMatchesTextbook checks the Holt-Winters forecasts against
// the additive recursion of Hyndman and Athanasopoulos (FPP §8.3) with one
// observation per bucket: ℓ₀ the mean of the first season, sᵢ its values
// minus ℓ₀, τ₀ = 0, and ŷ = ℓ + τ + s[t mod m] for each later bucket. The
// threshold is high enough that no observation is clipped.
func TestSeasonalMatchesTextbook(t *testing.T) {
	const m, bucket = 6, 60_000
	const alpha, beta, gamma = 0.4, 0.1, 0.2
	h := NewSeasonal(m*time.Minute, time.Minute, alpha, beta, gamma, time.Hour, 1e9, 1)
	r := rand.New(rand.NewPCG(11, 12))
	y := make([]float64, 8*m)
	for i := range y {
		y[i] = 20 + 0.05*float64(i) + 5*math.Sin(2*math.Pi*float64(i)/m) + r.NormFloat64()
	}
	var level, trend float64
	s := make([]float64, m)
	for i := range m {
		level += y[i] / m
	}
	for i := range m {
		s[i] = y[i] - level
	}
	for i, v := range y {
		ts := int64(i)*bucket + 1234
		if i > m {
			// Fold bucket i-1 in, as the detector does when bucket i opens.
			p := y[i-1]
			l0, t0, k := level, trend, (i-1)%m
			level = alpha*(p-s[k]) + (1-alpha)*(l0+t0)
			trend = beta*(level-l0) + (1-beta)*t0
			s[k] = gamma*(p-l0-t0) + (1-gamma)*s[k]
		}
		if i >= m {
			want := level + trend + s[i%m]
			h.Update(ts, v) // closes bucket i-1 first, then scores v
			if got, ok := h.Forecast(ts); !ok || !closeTo(got, want, 1e-9) {
				t.Fatalf("bucket %d: forecast %v (ready %v), want %v", i, got, ok, want)
			}
			continue
		}
		h.Update(ts, v)
	}
}
