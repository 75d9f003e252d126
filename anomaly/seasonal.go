package anomaly

import (
	"fmt"
	"math"
	"time"
)

// maxSeasonBuckets bounds a season's buckets (a week of minutes).
const maxSeasonBuckets = 7 * 24 * 60

// Seasonal is an additive Holt-Winters baseline over event-time buckets.
// Observations are grouped into buckets of width Bucket; a season is m =
// Season/Bucket buckets. When a bucket closes (the first observation of a
// later bucket arrives), its mean y updates the model (Hyndman and
// Athanasopoulos, FPP §8.3, component form):
//
//	ℓ ← α(y - s[b mod m]) + (1-α)(ℓ' + τ')
//	τ ← β(ℓ - ℓ') + (1-β)τ'
//	s[b mod m] ← γ(y - ℓ' - τ') + (1-γ)s[b mod m]
//
// where ℓ', τ' are level and trend before the update, advanced by h-1
// steps of the trend when h-1 buckets in between were empty. The first
// season initialises the model: ℓ = the mean of its bucket means, τ = 0,
// s = each bucket's mean minus ℓ (0 for an empty one).
//
// An observation x in bucket b is scored against the forecast
// ŷ = ℓ + hτ + s[b mod m] (h buckets after the last closed one): its
// residual r = x - ŷ is compared, as a z-score, with the event-time
// weighted mean and variance of the earlier residuals (half-life: the
// season by default). Before it enters the model an observation that is
// anomalous is clipped to ŷ ± threshold·σ (a Huber-type cleaning, after
// Gelper, Fried and Croux 2010), so one spike does not bend the season
// it will be compared with a season later; a lasting change still moves
// the model, by up to threshold·σ per observation.
//
// An observation of a bucket before the current one (late) counts in
// the current bucket.
type Seasonal struct {
	bucket, season     int64 // milliseconds
	m                  int
	alpha, beta, gamma float64
	threshold          float64
	minSamples         int64

	n      int64 // observations
	start  int64 // first bucket
	cur    int64 // open bucket
	sum    float64
	cnt    int64
	ready  bool      // the first season is learnt
	init   []float64 // first season's bucket means (NaN: empty), until ready
	level  float64
	trend  float64
	last   int64     // last closed bucket in the model
	s      []float64 // seasonal components by bucket mod m
	scored int64     // residuals seen
	resid  moments
}

// NewSeasonal returns a Holt-Winters detector.
func NewSeasonal(season, bucket time.Duration, alpha, beta, gamma float64, halfLife time.Duration, threshold float64, minSamples int) *Seasonal {
	m := int(season / bucket)
	return &Seasonal{
		bucket: bucket.Milliseconds(), season: season.Milliseconds(), m: m,
		alpha: alpha, beta: beta, gamma: gamma, threshold: threshold, minSamples: int64(minSamples),
		resid: moments{halfLife: float64(halfLife.Milliseconds())},
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func (h *Seasonal) slot(b int64) int {
	i := int(b % int64(h.m))
	if i < 0 {
		i += h.m
	}
	return i
}

// Update implements Detector.
func (h *Seasonal) Update(t int64, x float64) (float64, bool) {
	b := floorDiv(t, h.bucket)
	learn := learnable(x)
	if h.n == 0 {
		if !learn {
			return math.NaN(), false
		}
		h.start, h.cur = b, b
		h.init = make([]float64, h.m)
		for i := range h.init {
			h.init[i] = math.NaN()
		}
	}
	if b > h.cur {
		h.close()
		h.cur = b
		if !h.ready && h.cur-h.start >= int64(h.m) {
			h.initialise()
		}
	}
	score := math.NaN()
	ok := false
	if !h.ready {
		if learn {
			h.n++
			h.sum += x
			h.cnt++
		}
		return score, ok
	}
	f := h.forecast(h.cur)
	r := x - f
	if h.scored >= h.minSamples {
		score = zscore(r, h.resid.mean, h.resid.variance())
		ok = verdict(score, h.threshold)
	}
	if !learn {
		return score, ok
	}
	h.n++
	if ok {
		// Clip before learning from it (see the type's comment).
		sd := math.Sqrt(h.resid.variance())
		lim := h.threshold * sd
		r = math.Max(math.Min(r, h.resid.mean+lim), h.resid.mean-lim)
		x = f + r
	}
	h.resid.add(t, r)
	h.scored++
	h.sum += x
	h.cnt++
	return score, ok
}

func (h *Seasonal) forecast(b int64) float64 {
	return h.level + float64(b-h.last)*h.trend + h.s[h.slot(b)]
}

// close folds the open bucket into the model.
func (h *Seasonal) close() {
	if h.cnt == 0 {
		return
	}
	y := h.sum / float64(h.cnt)
	h.sum, h.cnt = 0, 0
	if !h.ready {
		if i := h.cur - h.start; i < int64(h.m) {
			h.init[i] = y
		}
		return
	}
	steps := h.cur - h.last
	l0 := h.level + float64(steps-1)*h.trend
	t0 := h.trend
	i := h.slot(h.cur)
	s0 := h.s[i]
	h.level = h.alpha*(y-s0) + (1-h.alpha)*(l0+t0)
	h.trend = h.beta*(h.level-l0) + (1-h.beta)*t0
	h.s[i] = h.gamma*(y-l0-t0) + (1-h.gamma)*s0
	h.last = h.cur
}

// initialise builds the model from the first season's bucket means.
func (h *Seasonal) initialise() {
	sum, n := 0.0, 0
	for _, v := range h.init {
		if !math.IsNaN(v) {
			sum += v
			n++
		}
	}
	if n == 0 {
		return
	}
	h.level = sum / float64(n)
	h.s = make([]float64, h.m)
	lastIdx := int64(0)
	for i, v := range h.init {
		if !math.IsNaN(v) {
			h.s[h.slot(h.start+int64(i))] = v - h.level
			lastIdx = int64(i)
		}
	}
	h.last = h.start + lastIdx
	h.trend = 0
	h.ready = true
	h.init = nil
}

// Samples implements Detector.
func (h *Seasonal) Samples() int64 { return h.n }

// Forecast returns the model's forecast for event time t, and false
// while the first season is still being learnt.
func (h *Seasonal) Forecast(t int64) (float64, bool) {
	if !h.ready {
		return 0, false
	}
	return h.forecast(max(floorDiv(t, h.bucket), h.last+1)), true
}

// AppendBinary implements Detector.
func (h *Seasonal) AppendBinary(dst []byte) []byte {
	dst = append(dst, tagSeasonal)
	dst = appendVarint(dst, int64(h.m))
	dst = appendVarint(dst, h.n)
	dst = appendVarint(dst, h.start)
	dst = appendVarint(dst, h.cur)
	dst = appendF64(dst, h.sum)
	dst = appendVarint(dst, h.cnt)
	if !h.ready {
		dst = append(dst, 0)
		if h.n > 0 {
			for _, v := range h.init {
				dst = appendF64(dst, v)
			}
		}
		return dst
	}
	dst = append(dst, 1)
	dst = appendF64(dst, h.level)
	dst = appendF64(dst, h.trend)
	dst = appendVarint(dst, h.last)
	for _, v := range h.s {
		dst = appendF64(dst, v)
	}
	dst = appendVarint(dst, h.scored)
	return h.resid.append(dst)
}

// UnmarshalBinary implements Detector.
func (h *Seasonal) UnmarshalBinary(src []byte) error {
	d := dec{b: src}
	d.tag(tagSeasonal, "seasonal")
	m := d.i64()
	if d.err == nil && m != int64(h.m) {
		return fmt.Errorf("%w: the state has a season of %d buckets, this detector %d", ErrState, m, h.m)
	}
	n := *h
	n.n = d.i64()
	n.start = d.i64()
	n.cur = d.i64()
	n.sum = d.f64()
	n.cnt = d.i64()
	if d.err != nil {
		return d.err
	}
	if len(d.b) == 0 {
		return fmt.Errorf("%w: truncated", ErrState)
	}
	ready := d.b[0]
	d.b = d.b[1:]
	n.init, n.s, n.resid = nil, nil, moments{halfLife: h.resid.halfLife}
	n.level, n.trend, n.last, n.scored = 0, 0, 0, 0
	switch ready {
	case 0:
		n.ready = false
		if n.n > 0 {
			n.init = make([]float64, h.m)
			for i := range n.init {
				n.init[i] = d.f64()
				if v := n.init[i]; d.err == nil && math.IsInf(v, 0) {
					d.err = errNonFinite
				}
			}
		}
	case 1:
		n.ready = true
		n.level = d.f64()
		n.trend = d.f64()
		n.last = d.i64()
		n.s = make([]float64, h.m)
		for i := range n.s {
			n.s[i] = d.f64()
		}
		n.scored = d.i64()
		n.resid.decode(&d)
		if d.err == nil && (!finite(n.level) || !finite(n.trend) || n.scored < 0) {
			d.err = errNonFinite
		}
		for _, v := range n.s {
			if d.err == nil && !finite(v) {
				d.err = errNonFinite
			}
		}
	default:
		return fmt.Errorf("%w: bad readiness byte %d", ErrState, ready)
	}
	if err := d.end(); err != nil {
		return err
	}
	if n.n < 0 || n.cnt < 0 || n.cnt > n.n || !finite(n.sum) || n.cur < n.start {
		return fmt.Errorf("%w: inconsistent counters", ErrState)
	}
	*h = n
	return nil
}
