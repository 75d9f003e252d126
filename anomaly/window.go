package anomaly

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"time"
)

// sliding holds the observations of the last window of event time, at
// most max of them: a ring in arrival order (to expire the oldest) and,
// for MAD, the same values in a sorted slice (for order statistics).
//
// The sorted slice is kept by binary search and copy: insertion and
// removal cost O(log n) comparisons and an O(n) memmove of float64s,
// which for the bounded n (max_samples, 1024 by default) is a few
// hundred nanoseconds and beats two heaps with lazy deletion, which also
// cannot give the MAD (an order statistic of the deviations) without a
// second pass. With the values sorted, the median is O(1) and the MAD is
// the k-th smallest of two sorted sequences (the deviations below and
// above the median), found by binary search in O(log n): see mad.
//
// Expiry follows arrival order: an observation leaves when the oldest
// arrival is older than the newest event time minus the window. For a
// key whose events arrive in event-time order (the usual case, and what
// a per-key stream after a keyed exchange from one partition gives) this
// is exactly the event-time window.
type sliding struct {
	window int64 // milliseconds
	max    int
	now    int64 // newest event time seen
	ts     []int64
	xs     []float64
	head   int
	size   int
	sorted []float64 // nil unless order statistics are kept
	// sums of x - ref and (x - ref)² over the window (zscore), rebuilt
	// from the ring every max removals to bound rounding drift, and when
	// the window has moved far from ref (meanVar).
	ref         float64
	sum, sumSq  float64
	removals    int
	keepSorted  bool
	keepMoments bool
	hasRef      bool
	sampleCount int64
}

func newSliding(window time.Duration, max int, sorted, moments bool) sliding {
	return sliding{window: window.Milliseconds(), max: max, keepSorted: sorted, keepMoments: moments}
}

// grow doubles the ring (up to max), keeping the arrival order: a key
// with few observations in its window keeps small arrays.
func (s *sliding) grow() {
	n := min(max(8, 2*len(s.ts)), s.max)
	ts := make([]int64, n)
	xs := make([]float64, n)
	for k := 0; k < s.size; k++ {
		i := (s.head + k) % len(s.ts)
		ts[k], xs[k] = s.ts[i], s.xs[i]
	}
	s.ts, s.xs, s.head = ts, xs, 0
}

func (s *sliding) expire(t int64) {
	if s.sampleCount == 0 || t > s.now {
		s.now = t
	}
	limit := s.now - s.window
	for s.size > 0 && s.ts[s.head] <= limit {
		s.removeOldest()
	}
}

func (s *sliding) removeOldest() {
	x := s.xs[s.head]
	s.head = (s.head + 1) % len(s.ts)
	s.size--
	if s.keepSorted {
		i, _ := slices.BinarySearch(s.sorted, x)
		s.sorted = slices.Delete(s.sorted, i, i+1)
	}
	if s.keepMoments {
		d := x - s.ref
		s.sum -= d
		s.sumSq -= d * d
		s.removals++
		if s.removals >= s.max {
			s.rebuildSums()
		}
	}
}

func (s *sliding) insert(t int64, x float64) {
	if s.size == s.max {
		s.removeOldest()
	}
	if s.size == len(s.ts) {
		s.grow()
	}
	i := (s.head + s.size) % len(s.ts)
	s.ts[i], s.xs[i] = t, x
	s.size++
	s.sampleCount++
	if s.keepSorted {
		j, _ := slices.BinarySearch(s.sorted, x)
		s.sorted = slices.Insert(s.sorted, j, x)
	}
	if s.keepMoments {
		if !s.hasRef {
			s.ref, s.hasRef = x, true
		}
		d := x - s.ref
		s.sum += d
		s.sumSq += d * d
	}
}

func (s *sliding) rebuildSums() {
	s.removals = 0
	s.sum, s.sumSq = 0, 0
	if s.size > 0 {
		s.ref = s.xs[s.head]
	}
	for k := 0; k < s.size; k++ {
		d := s.xs[(s.head+k)%len(s.ts)] - s.ref
		s.sum += d
		s.sumSq += d * d
	}
}

// meanVar returns the window's mean and sample variance. When the
// window's mean has moved so far from ref that the sums would cancel
// (more than 10⁴ standard deviations: half of float64's digits gone),
// it rebuilds them around a value of the window first. That cannot
// happen again while that value is in the window (it alone keeps the
// variance above (mean - ref)²/n), so the rebuilds cost O(1) amortised
// per observation.
func (s *sliding) meanVar() (float64, float64) {
	n := float64(s.size)
	m := s.sum / n
	if s.size < 2 {
		return s.ref + m, 0
	}
	v := max(s.sumSq-n*m*m, 0) / (n - 1)
	if m*m > 1e8*v && m != 0 {
		s.rebuildSums()
		m = s.sum / n
		v = max(s.sumSq-n*m*m, 0) / (n - 1)
	}
	return s.ref + m, v
}

func (s *sliding) append(dst []byte) []byte {
	dst = appendVarint(dst, s.sampleCount)
	dst = appendVarint(dst, s.now)
	dst = appendVarint(dst, int64(s.size))
	for k := 0; k < s.size; k++ {
		i := (s.head + k) % len(s.ts)
		dst = appendVarint(dst, s.ts[i])
		dst = appendF64(dst, s.xs[i])
	}
	if s.keepMoments {
		// The running sums, not rebuilt: a restored window must score
		// bit for bit as the uninterrupted one.
		b := byte(0)
		if s.hasRef {
			b = 1
		}
		dst = append(dst, b)
		dst = appendF64(dst, s.ref)
		dst = appendF64(dst, s.sum)
		dst = appendF64(dst, s.sumSq)
		dst = appendVarint(dst, int64(s.removals))
	}
	return dst
}

// decode reads an encoding of append into a fresh window shaped like s.
func (s *sliding) decode(d *dec) sliding {
	n := newSliding(time.Duration(s.window)*time.Millisecond, s.max, s.keepSorted, s.keepMoments)
	count := d.i64()
	now := d.i64()
	size := d.count(s.max)
	if d.err != nil {
		return n
	}
	if count < int64(size) {
		d.err = fmt.Errorf("%w: %d samples seen but %d in the window", ErrState, count, size)
		return n
	}
	for range size {
		t := d.i64()
		x := d.f64()
		if d.err != nil {
			return n
		}
		if !finite(x) {
			d.err = errNonFinite
			return n
		}
		n.insert(t, x)
	}
	if n.keepMoments {
		if len(d.b) == 0 || d.b[0] > 1 {
			d.err = fmt.Errorf("%w: window sums", ErrState)
			return n
		}
		n.hasRef = d.b[0] == 1
		d.b = d.b[1:]
		n.ref, n.sum, n.sumSq = d.f64(), d.f64(), d.f64()
		n.removals = d.count(s.max)
		if d.err == nil && (!finite(n.ref) || !finite(n.sum) || !finite(n.sumSq) || n.sumSq < 0) {
			d.err = errNonFinite
		}
	}
	n.sampleCount, n.now = count, now
	return n
}

// ZScore scores an observation by its distance from the mean of the
// observations in the last window of event time, in their sample
// standard deviations.
type ZScore struct {
	threshold  float64
	minSamples int
	w          sliding
}

// NewZScore returns a sliding-window z-score detector keeping at most
// maxSamples observations.
func NewZScore(window time.Duration, maxSamples int, threshold float64, minSamples int) *ZScore {
	return &ZScore{threshold: threshold, minSamples: minSamples, w: newSliding(window, maxSamples, false, true)}
}

// Update implements Detector. The verdict needs min_samples observations
// in the window.
func (z *ZScore) Update(t int64, x float64) (float64, bool) {
	z.w.expire(t)
	score := math.NaN()
	ok := false
	if z.w.size >= z.minSamples {
		m, v := z.w.meanVar()
		score = zscore(x, m, v)
		ok = verdict(score, z.threshold)
	}
	if learnable(x) {
		z.w.insert(t, x)
	}
	return score, ok
}

// Samples implements Detector.
func (z *ZScore) Samples() int64 { return z.w.sampleCount }

// AppendBinary implements Detector.
func (z *ZScore) AppendBinary(dst []byte) []byte {
	return z.w.append(append(dst, tagZScore))
}

// UnmarshalBinary implements Detector.
func (z *ZScore) UnmarshalBinary(src []byte) error {
	d := dec{b: src}
	d.tag(tagZScore, "zscore")
	w := z.w.decode(&d)
	if err := d.end(); err != nil {
		return err
	}
	z.w = w
	return nil
}

// MAD scores an observation with the modified z-score of Iglewicz and
// Hoaglin over the observations in the last window of event time:
// 0.6745 (x - median) / MAD, MAD being the median of the absolute
// deviations from the median. When more than half the values are equal
// (MAD = 0) the scale falls back to 1.253314 × the mean absolute
// deviation, as IBM's and Iglewicz and Hoaglin's later practice does.
type MAD struct {
	threshold  float64
	minSamples int
	w          sliding
}

// NewMAD returns a sliding-window robust z-score detector keeping at most
// maxSamples observations.
func NewMAD(window time.Duration, maxSamples int, threshold float64, minSamples int) *MAD {
	return &MAD{threshold: threshold, minSamples: minSamples, w: newSliding(window, maxSamples, true, false)}
}

// madConst is Φ⁻¹(0.75): MAD/0.6745 estimates σ for normal data.
const madConst = 0.6745

// Update implements Detector. The verdict needs min_samples observations
// in the window.
func (m *MAD) Update(t int64, x float64) (float64, bool) {
	m.w.expire(t)
	score := math.NaN()
	ok := false
	if m.w.size >= m.minSamples {
		score = robustZ(m.w.sorted, x)
		ok = verdict(score, m.threshold)
	}
	if learnable(x) {
		m.w.insert(t, x)
	}
	return score, ok
}

// robustZ is the modified z-score of x against the sorted values a.
func robustZ(a []float64, x float64) float64 {
	med := median(a)
	d := x - med
	if d == 0 {
		return 0
	}
	if s := mad(a, med); s > 0 {
		return madConst * d / s
	}
	mean := 0.0
	for _, v := range a {
		mean += math.Abs(v - med)
	}
	mean /= float64(len(a))
	scale := 1.253314 * mean
	return d / max(scale, 1e-9*max(1, math.Abs(med)))
}

// Samples implements Detector.
func (m *MAD) Samples() int64 { return m.w.sampleCount }

// AppendBinary implements Detector.
func (m *MAD) AppendBinary(dst []byte) []byte {
	return m.w.append(append(dst, tagMAD))
}

// UnmarshalBinary implements Detector.
func (m *MAD) UnmarshalBinary(src []byte) error {
	d := dec{b: src}
	d.tag(tagMAD, "mad")
	w := m.w.decode(&d)
	if err := d.end(); err != nil {
		return err
	}
	m.w = w
	return nil
}

func median(a []float64) float64 {
	n := len(a)
	if n%2 == 1 {
		return a[n/2]
	}
	return (a[n/2-1] + a[n/2]) / 2
}

// mad returns the median of |a[i] - med| for sorted a. The deviations
// of the values below p (the first index with a[p] ≥ med) read backwards,
// med - a[p-1-i], and those from p on, a[p+i] - med, are two ascending
// sequences; the median of their union is found by order statistics on
// two sorted sequences (kth) without building either.
func mad(a []float64, med float64) float64 {
	p := sort.SearchFloat64s(a, med)
	lo := func(i int) float64 { return med - a[p-1-i] }
	hi := func(i int) float64 { return a[p+i] - med }
	n := len(a)
	if n%2 == 1 {
		return kth(lo, p, hi, n-p, n/2)
	}
	return (kth(lo, p, hi, n-p, n/2-1) + kth(lo, p, hi, n-p, n/2)) / 2
}

// kth returns the k-th smallest (0-based) element of the union of the
// ascending sequences x (length nx) and y (length ny), by binary search
// on how many of the k+1 smallest come from x.
func kth(x func(int) float64, nx int, y func(int) float64, ny int, k int) float64 {
	lo, hi := max(0, k+1-ny), min(k+1, nx)
	for lo < hi {
		i := (lo + hi) / 2 // take i from x, k+1-i from y
		j := k + 1 - i
		if j > 0 && i < nx && y(j-1) > x(i) {
			lo = i + 1 // x(i) belongs to the k+1 smallest
		} else {
			hi = i
		}
	}
	i := lo
	j := k + 1 - i
	switch {
	case i == 0:
		return y(j - 1)
	case j == 0:
		return x(i - 1)
	default:
		return max(x(i-1), y(j-1))
	}
}
