package anomaly

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func configs() []Config {
	return []Config{
		{Method: MethodEWMA, HalfLife: 10 * time.Minute, MinSamples: 5},
		{Method: MethodZScore, Window: 30 * time.Minute, MaxSamples: 50, MinSamples: 5},
		{Method: MethodMAD, Window: 30 * time.Minute, MaxSamples: 50, MinSamples: 5},
		{Method: MethodSeasonal, Season: 2 * time.Hour, Bucket: 10 * time.Minute, MinSamples: 5},
	}
}

// randomSeries has irregular steps, repeated and out-of-order times,
// runs of equal values, outliers and values too large to learn (whose
// squares overflow): the cases state must carry.
func randomSeries(r *rand.Rand, n int) ([]int64, []float64) {
	ts := make([]int64, n)
	xs := make([]float64, n)
	t := int64(r.IntN(1 << 30))
	for i := range n {
		switch r.IntN(10) {
		case 0: // same time
		case 1:
			t -= int64(r.IntN(120_000)) // late
		case 2:
			t += int64(r.IntN(3 * 3_600_000)) // gap
		default:
			t += int64(r.IntN(120_000))
		}
		ts[i] = t
		switch r.IntN(8) {
		case 0:
			xs[i] = 3 // runs of one value
		case 1:
			xs[i] = r.NormFloat64() * 100
		case 2:
			if r.IntN(10) == 0 {
				xs[i] = hugeValues[r.IntN(len(hugeValues))]
				break
			}
			xs[i] = 10 + r.NormFloat64()
		default:
			xs[i] = 10 + r.NormFloat64()
		}
	}
	return ts, xs
}

// hugeValues are finite observations beyond MaxValue.
var hugeValues = []float64{1e300, -1e300, math.MaxFloat64, -math.MaxFloat64, 2e154, -1e200}

func same(a, b float64) bool { return a == b || (math.IsNaN(a) && math.IsNaN(b)) }

// TestRestoreEqualsUninterrupted: a detector checkpointed at any point
// (AppendBinary) and restored into a fresh one (UnmarshalBinary) gives
// bit for bit the scores and verdicts of one that ran through.
func TestRestoreEqualsUninterrupted(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for _, c := range configs() {
		t.Run(c.Method, func(t *testing.T) {
			for iter := range 200 {
				ts, xs := randomSeries(r, 1+r.IntN(400))
				cut := r.IntN(len(ts) + 1)
				a, _ := New(c)
				b, _ := New(c)
				for i := range cut {
					a.Update(ts[i], xs[i])
					b.Update(ts[i], xs[i])
				}
				enc := b.AppendBinary(nil)
				fresh, _ := New(c)
				if err := fresh.UnmarshalBinary(enc); err != nil {
					t.Fatalf("iter %d: restore: %v", iter, err)
				}
				if again := fresh.AppendBinary(nil); !slices.Equal(again, enc) {
					t.Fatalf("iter %d: re-encoding differs", iter)
				}
				for i := cut; i < len(ts); i++ {
					s1, a1 := a.Update(ts[i], xs[i])
					s2, a2 := fresh.Update(ts[i], xs[i])
					if !same(s1, s2) || a1 != a2 {
						t.Fatalf("iter %d, obs %d (cut %d): uninterrupted %v %v, restored %v %v", iter, i, cut, s1, a1, s2, a2)
					}
				}
				learnt := int64(0)
				for _, x := range xs {
					if math.Abs(x) <= MaxValue {
						learnt++
					}
				}
				if a.Samples() != fresh.Samples() || a.Samples() != learnt {
					t.Fatalf("samples %d %d, want %d", a.Samples(), fresh.Samples(), learnt)
				}
			}
		})
	}
}

// TestUnlearnableValuesLeaveModel: values that are NaN, infinite or
// beyond MaxValue are scored but do not enter the model: every other
// observation scores bit for bit as in the series without them (times
// non-decreasing, so that they move no window), the huge ones are
// flagged once the model judges, and the state restores. Before, a value
// of 1e300 overflowed the EWMA's variance to +Inf (every later score 0,
// for ever) and the z-score's sums to NaN, and UnmarshalBinary refused
// the state of both.
func TestUnlearnableValuesLeaveModel(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	odd := append([]float64{math.NaN(), math.Inf(1), math.Inf(-1)}, hugeValues...)
	for _, c := range configs() {
		t.Run(c.Method, func(t *testing.T) {
			for iter := range 100 {
				with, _ := New(c)
				without, _ := New(c)
				now := int64(r.IntN(1 << 30))
				for i := range 1 + r.IntN(600) {
					now += int64(r.IntN(300_000))
					if r.IntN(20) == 0 {
						x := odd[r.IntN(len(odd))]
						s, a := with.Update(now, x)
						if math.IsNaN(x) && (!math.IsNaN(s) || a) {
							t.Fatalf("iter %d obs %d: NaN scored %v %v", iter, i, s, a)
						}
						if !math.IsNaN(x) && !math.IsNaN(s) && !a {
							t.Fatalf("iter %d obs %d: %v scored %v, not flagged", iter, i, x, s)
						}
						continue
					}
					x := 10 + r.NormFloat64()
					s1, a1 := with.Update(now, x)
					s2, a2 := without.Update(now, x)
					if !same(s1, s2) || a1 != a2 {
						t.Fatalf("iter %d obs %d: with odd values %v %v, without %v %v", iter, i, s1, a1, s2, a2)
					}
				}
				if with.Samples() != without.Samples() {
					t.Fatalf("iter %d: samples %d, want %d", iter, with.Samples(), without.Samples())
				}
				fresh, _ := New(c)
				if err := fresh.UnmarshalBinary(with.AppendBinary(nil)); err != nil {
					t.Fatalf("iter %d: restore: %v", iter, err)
				}
			}
		})
	}
}

// TestUnmarshalRefuses: another method's state, another season and
// truncated state are refused and leave the detector unchanged.
func TestUnmarshalRefuses(t *testing.T) {
	cs := configs()
	states := make([][]byte, len(cs))
	for i, c := range cs {
		d, _ := New(c)
		for k := range 100 {
			d.Update(int64(k)*60_000, float64(k%7))
		}
		states[i] = d.AppendBinary(nil)
	}
	for i, c := range cs {
		for j := range cs {
			d, _ := New(c)
			d.Update(0, 1)
			before := d.AppendBinary(nil)
			err := d.UnmarshalBinary(states[j])
			if (err == nil) != (i == j) {
				t.Errorf("%s from %s state: err %v", c.Method, cs[j].Method, err)
			}
			if err != nil && !slices.Equal(d.AppendBinary(nil), before) {
				t.Errorf("%s: a refused state changed the detector", c.Method)
			}
		}
		d, _ := New(c)
		for n := range len(states[i]) {
			if err := d.UnmarshalBinary(states[i][:n]); err == nil {
				t.Errorf("%s: %d of %d bytes accepted", c.Method, n, len(states[i]))
			}
		}
	}
	other := configs()[3]
	other.Season = 3 * time.Hour
	d, _ := New(other)
	if err := d.UnmarshalBinary(states[3]); err == nil {
		t.Error("seasonal state of 12 buckets restored into 18")
	}
}

// TestMADMatchesBruteForce checks median, MAD and the fall-back scale
// against sorting and scanning.
func TestMADMatchesBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 3000 {
		n := 1 + r.IntN(60)
		a := make([]float64, n)
		for i := range a {
			a[i] = float64(r.IntN(12)) // ties are common
			if r.IntN(3) == 0 {
				a[i] = r.NormFloat64()
			}
		}
		slices.Sort(a)
		med := median(a)
		dev := make([]float64, n)
		for i, v := range a {
			dev[i] = math.Abs(v - med)
		}
		slices.Sort(dev)
		if got, want := mad(a, med), median(dev); got != want {
			t.Fatalf("mad(%v) = %v, want %v", a, got, want)
		}
	}
}

// TestMADWindow: the window keeps exactly the observations of the last
// window of event time (at most max_samples), in sorted order.
func TestMADWindow(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const win = 10 * 60_000
	m := NewMAD(10*time.Minute, 40, 3.5, 1)
	var ts []int64
	var xs []float64
	now := int64(0)
	for i := range 5000 {
		now += int64(r.IntN(60_000))
		x := float64(r.IntN(100))
		// Expected window before this observation.
		var want []float64
		for k := range ts {
			if ts[k] > now-win {
				want = append(want, xs[k])
			}
		}
		if len(want) > 40 {
			want = want[len(want)-40:]
		}
		slices.Sort(want)
		if !slices.Equal(m.w.sorted, append([]float64{}, want...)) && !(len(want) == 0 && len(m.w.sorted) == 0) {
			// The window expires before scoring: compare after expiry.
			m.w.expire(now)
			if !slices.Equal(m.w.sorted, want) {
				t.Fatalf("obs %d: window %v, want %v", i, m.w.sorted, want)
			}
		}
		score, _ := m.Update(now, x)
		if len(want) > 0 {
			if w := robustZ(want, x); !same(score, w) {
				t.Fatalf("obs %d: score %v, want %v", i, score, w)
			}
		}
		ts = append(ts, now)
		xs = append(xs, x)
	}
}

// TestEWMAHalfLife: with one observation per half-life an old value's
// weight halves at each step, whatever the sampling rate.
func TestEWMAHalfLife(t *testing.T) {
	for _, step := range []int64{1, 10, 1000} {
		e := NewEWMA(time.Duration(step)*time.Millisecond*10, 3, 1)
		e.Update(0, 100)
		// After 10 steps of step ms (one half-life) of zeros the first
		// value's weight is 1/2 against the zeros' total weight.
		for i := int64(1); i <= 10; i++ {
			e.Update(i*step, 0)
		}
		d := math.Exp2(-0.1)
		var wz float64
		for i := 0; i < 10; i++ {
			wz += math.Pow(d, float64(i))
		}
		want := 100 * 0.5 / (0.5 + wz)
		if math.Abs(e.Mean()-want) > 1e-9 {
			t.Errorf("step %d: mean %v, want %v", step, e.Mean(), want)
		}
	}
}

// TestConfigValidate covers the settings New refuses.
func TestConfigValidate(t *testing.T) {
	bad := []Config{
		{Method: "median"},
		{Method: MethodSeasonal},
		{Method: MethodSeasonal, Season: 24 * time.Hour, Bucket: 7 * time.Hour},
		{Method: MethodSeasonal, Season: time.Hour, Bucket: time.Hour},
		{Method: MethodSeasonal, Season: 24 * time.Hour, Alpha: 1.5},
		{Method: MethodEWMA, Threshold: -1},
		{Method: MethodMAD, MaxSamples: 2},
		{Method: MethodEWMA, MinSamples: -1},
		// The window never holds 2000 (1024 by default): no verdict, ever.
		{Method: MethodMAD, MinSamples: 2000},
		{Method: MethodZScore, MinSamples: 50, MaxSamples: 40},
	}
	for _, c := range bad {
		if _, err := New(c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	for _, c := range configs() {
		if _, err := New(c); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

// FuzzUnmarshal: no input panics a detector's UnmarshalBinary; what it
// accepts re-encodes to a state it accepts again, and the restored
// detector can go on updating.
func FuzzUnmarshal(f *testing.F) {
	for _, c := range configs() {
		d, _ := New(c)
		for k := range 60 {
			d.Update(int64(k)*600_000, float64(k%5))
		}
		f.Add(d.AppendBinary(nil))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, c := range configs() {
			d, _ := New(c)
			if err := d.UnmarshalBinary(b); err != nil {
				continue
			}
			enc := d.AppendBinary(nil)
			d2, _ := New(c)
			if err := d2.UnmarshalBinary(enc); err != nil {
				t.Fatalf("%s: re-encoding refused: %v", c.Method, err)
			}
			d.Update(1<<40, 1)
		}
	})
}

// TestSeasonalLearnsPattern: on a noiseless series of a daily pattern
// plus a linear trend, sampled irregularly inside hourly buckets, the
// Holt-Winters forecast converges to the series and nothing is flagged;
// an hour of the opposite pattern is then flagged.
func TestSeasonalLearnsPattern(t *testing.T) {
	const hour = int64(3_600_000)
	pattern := func(t int64) float64 {
		h := (t / hour) % 24
		return 100 + 0.01*float64(t/hour) + 10*math.Sin(2*math.Pi*float64(h)/24)
	}
	d := NewSeasonal(24*time.Hour, time.Hour, 0.3, 0.05, 0.3, 24*time.Hour, 4, 10)
	r := rand.New(rand.NewPCG(11, 12))
	var ts int64
	for ts < 30*24*hour {
		// Every observation of a bucket has the bucket's value.
		if _, a := d.Update(ts, pattern(ts)); a && ts > 3*24*hour {
			t.Fatalf("flagged a normal value at hour %d", ts/hour)
		}
		ts += int64(1 + r.IntN(int(hour/4)))
	}
	for h := ts / hour; h < ts/hour+24; h++ {
		f, ok := d.Forecast(h * hour)
		if !ok {
			t.Fatal("not ready after 30 days")
		}
		if want := pattern(h * hour); math.Abs(f-want) > 0.5 {
			t.Errorf("hour %d: forecast %.3f, want %.3f", h%24, f, want)
		}
	}
	// 06:00, the daily peak, gets the value of 18:00.
	start := (ts/(24*hour) + 1) * 24 * hour
	_, a := d.Update(start+6*hour, pattern(start+18*hour))
	if !a {
		t.Error("the value of 18:00 at 06:00 was not flagged")
	}
}
