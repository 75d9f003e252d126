package anomaly

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

var errNonFinite = fmt.Errorf("%w: non-finite or negative statistic", ErrState)

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func appendVarint(dst []byte, v int64) []byte { return binary.AppendVarint(dst, v) }

// EWMA scores an observation by its distance from an exponentially
// weighted mean in exponentially weighted standard deviations, the
// weights halving every half-life of event time (see moments).
type EWMA struct {
	threshold  float64
	minSamples int64
	n          int64
	m          moments
}

// NewEWMA returns an EWMA detector.
func NewEWMA(halfLife time.Duration, threshold float64, minSamples int) *EWMA {
	return &EWMA{threshold: threshold, minSamples: int64(minSamples), m: moments{halfLife: float64(halfLife.Milliseconds())}}
}

// Update implements Detector.
func (e *EWMA) Update(t int64, x float64) (float64, bool) {
	score := math.NaN()
	ok := false
	if e.n >= e.minSamples {
		score = zscore(x, e.m.mean, e.m.variance())
		ok = verdict(score, e.threshold)
	}
	if !learnable(x) {
		return score, ok
	}
	e.m.add(t, x)
	e.n++
	return score, ok
}

// Mean returns the weighted mean.
func (e *EWMA) Mean() float64 { return e.m.mean }

// Samples implements Detector.
func (e *EWMA) Samples() int64 { return e.n }

// AppendBinary implements Detector.
func (e *EWMA) AppendBinary(dst []byte) []byte {
	dst = append(dst, tagEWMA)
	dst = appendVarint(dst, e.n)
	return e.m.append(dst)
}

// UnmarshalBinary implements Detector.
func (e *EWMA) UnmarshalBinary(src []byte) error {
	d := dec{b: src}
	d.tag(tagEWMA, "ewma")
	n := d.i64()
	m := moments{halfLife: e.m.halfLife}
	m.decode(&d)
	if err := d.end(); err != nil {
		return err
	}
	if n < 0 {
		return fmt.Errorf("%w: negative sample count", ErrState)
	}
	e.n, e.m = n, m
	return nil
}
