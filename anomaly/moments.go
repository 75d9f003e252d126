package anomaly

import "math"

// moments is a weighted mean and variance whose weights decay with event
// time: an observation made dt before the newest one weighs 2^(-dt/h).
// It is West's (1979) incremental weighted update, with all weights
// multiplied by the decay factor when time moves forward:
//
//	decay to time t:  W ← W·d, M2 ← M2·d   with d = 2^(-(t - last)/h)
//	add x, weight w:  W ← W + w; δ = x - μ; μ ← μ + w·δ/W; M2 ← M2 + w·δ·(x - μ)
//	variance:         M2 / W
//
// An observation older than the newest (out of order) is added with the
// weight it would have had: w = 2^(-(last - t)/h). With samples every dt
// the mean follows μ ← μ + λ(x - μ) with λ = 1 - 2^(-dt/h) once W has
// reached its steady state 1/λ: the EWMA of NIST/SEMATECH with λ set by
// the half-life.
type moments struct {
	halfLife float64 // milliseconds
	last     int64
	w        float64
	mean     float64
	m2       float64
}

func (m *moments) add(t int64, x float64) {
	wt := 1.0
	switch {
	case m.w == 0:
		m.last = t
	case t > m.last:
		d := math.Exp2(-float64(t-m.last) / m.halfLife)
		m.w *= d
		m.m2 *= d
		m.last = t
	case t < m.last:
		wt = math.Exp2(-float64(m.last-t) / m.halfLife)
	}
	m.w += wt
	delta := x - m.mean
	m.mean += wt * delta / m.w
	m.m2 += wt * delta * (x - m.mean)
	if m.m2 < 0 {
		m.m2 = 0 // rounding
	}
}

func (m *moments) variance() float64 {
	if m.w == 0 {
		return 0
	}
	return m.m2 / m.w
}

func (m *moments) append(dst []byte) []byte {
	dst = appendVarint(dst, m.last)
	dst = appendF64(dst, m.w)
	dst = appendF64(dst, m.mean)
	return appendF64(dst, m.m2)
}

func (m *moments) decode(d *dec) {
	m.last = d.i64()
	m.w = d.f64()
	m.mean = d.f64()
	m.m2 = d.f64()
	if d.err == nil && (!finite(m.w) || !finite(m.mean) || !finite(m.m2) || m.w < 0 || m.m2 < 0) {
		d.err = errNonFinite
	}
}
