package anomaly

import (
	"math"
	"math/rand/v2"
)

// A labelled series: observations at event times, and the injected
// anomalies, each the index of its first observation and how many
// observations after it still belong to it (flags there are attributed
// to the anomaly, not counted as false).
type series struct {
	t      []int64
	x      []float64
	events []event
}

type event struct{ at, span int }

const minute = int64(60_000)

// genSpikes is noise N(20, 1) every minute with spikes of 6-10 σ at
// random, well separated positions.
func genSpikes(seed uint64, n, spikes int) series {
	r := rand.New(rand.NewPCG(seed, 1))
	s := series{}
	for i := range n {
		s.t = append(s.t, int64(i)*minute)
		s.x = append(s.x, 20+r.NormFloat64())
	}
	for _, p := range positions(r, n, spikes, 200) {
		sign := 1.0
		if r.IntN(2) == 0 {
			sign = -1
		}
		s.x[p] += sign * (6 + 4*r.Float64())
		s.events = append(s.events, event{at: p})
	}
	return s
}

// genShifts is noise N(20, 1) every minute whose level moves by 8-12 σ
// at a few positions; the 30 observations after a shift belong to it.
func genShifts(seed uint64, n, shifts int) series {
	r := rand.New(rand.NewPCG(seed, 2))
	s := series{}
	level := 20.0
	ps := positions(r, n, shifts, 600)
	k := 0
	for i := range n {
		if k < len(ps) && i == ps[k] {
			sign := 1.0
			if r.IntN(2) == 0 {
				sign = -1
			}
			level += sign * (8 + 4*r.Float64())
			s.events = append(s.events, event{at: i, span: 30})
			k++
		}
		s.t = append(s.t, int64(i)*minute)
		s.x = append(s.x, level+r.NormFloat64())
	}
	return s
}

// genSeasonalBreaks is a daily pattern (amplitude 10 σ around 50, one
// observation every 5 minutes, noise σ = 1) where, on a few days after
// the second, one hour holds the value of the opposite time of day: a
// value normal for the series but not for that hour.
func genSeasonalBreaks(seed uint64, days, breaks int) series {
	r := rand.New(rand.NewPCG(seed, 3))
	const perDay = 288
	day := func(i int) float64 { return 50 + 10*math.Sin(2*math.Pi*float64(i%perDay)/perDay) }
	s := series{}
	n := days * perDay
	for i := range n {
		s.t = append(s.t, int64(i)*5*minute)
		s.x = append(s.x, day(i)+r.NormFloat64())
	}
	for _, p := range positions(r, n-3*perDay, breaks, perDay) {
		p += 3 * perDay
		// The break sits where the pattern is far from its opposite.
		phase := p % perDay
		if q := phase % (perDay / 2); q < perDay/8 || q > perDay*3/8-12 {
			p += perDay/4 - q
		}
		for j := range 12 {
			i := p + j
			s.x[i] = day(i+perDay/2) + r.NormFloat64()
		}
		s.events = append(s.events, event{at: p, span: 12})
	}
	return s
}

// positions returns k sorted positions in [gap, n-gap) at least gap
// apart.
func positions(r *rand.Rand, n, k, gap int) []int {
	var out []int
	slot := (n - 2*gap) / k
	for i := range k {
		out = append(out, gap+i*slot+r.IntN(max(slot-gap, 1)))
	}
	return out
}

// evaluate runs d over s and returns event precision and recall: an
// event is detected if some observation in [at, at+span] is flagged; a
// flag outside every event is a false positive; precision is detected
// events / (detected events + false positives).
func evaluate(d Detector, s series) (precision, recall float64, fp int) {
	owner := make([]int, len(s.x))
	for i := range owner {
		owner[i] = -1
	}
	for k, e := range s.events {
		for i := e.at; i <= e.at+e.span && i < len(owner); i++ {
			owner[i] = k
		}
	}
	hit := make([]bool, len(s.events))
	for i := range s.x {
		_, a := d.Update(s.t[i], s.x[i])
		if !a {
			continue
		}
		if owner[i] >= 0 {
			hit[owner[i]] = true
		} else {
			fp++
		}
	}
	tp := 0
	for _, h := range hit {
		if h {
			tp++
		}
	}
	if tp+fp > 0 {
		precision = float64(tp) / float64(tp+fp)
	}
	return precision, float64(tp) / float64(len(s.events)), fp
}
