package anomaly

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// Detector scores the observations of one series.
type Detector interface {
	// Update scores observation x at event time t (milliseconds) against
	// the model of the observations before it, then folds x into the
	// model. score is NaN while the detector cannot judge yet (fewer
	// than min_samples observations, or a seasonal model still learning
	// its first season); anomalous is |score| > threshold. An x that is
	// NaN, infinite or beyond ±MaxValue is scored (NaN scores NaN) but
	// not folded in, and does not count in Samples.
	Update(t int64, x float64) (score float64, anomalous bool)
	// AppendBinary appends the detector's state (not its configuration)
	// to dst.
	AppendBinary(dst []byte) []byte
	// UnmarshalBinary replaces the detector's state by an encoding of
	// AppendBinary. It fails, leaving the detector unchanged, on
	// corrupt input and on the state of another kind of detector or of
	// another shape (season length, window bound).
	UnmarshalBinary(src []byte) error
	// Samples returns how many observations the detector has seen.
	Samples() int64
}

// Methods of Config.Method.
const (
	MethodEWMA     = "ewma"
	MethodZScore   = "zscore"
	MethodMAD      = "mad"
	MethodSeasonal = "seasonal"
)

// Methods lists the methods New accepts.
var Methods = []string{MethodEWMA, MethodZScore, MethodMAD, MethodSeasonal}

// Config configures a detector. Zero fields take the defaults New
// documents.
type Config struct {
	Method string
	// HalfLife is EWMA's half-life in event time (default 1h), and the
	// seasonal method's half-life of its residual statistics (default:
	// the season).
	HalfLife time.Duration
	// Window is the event-time window of zscore and mad (default 1h).
	Window time.Duration
	// MaxSamples bounds the observations a window keeps (default 1024):
	// beyond it the oldest leave early.
	MaxSamples int
	// Season and Bucket define the seasonal method's season: Season /
	// Bucket buckets (default bucket: Season / 24).
	Season, Bucket time.Duration
	// Alpha, Beta and Gamma are Holt-Winters' smoothing factors of
	// level, trend and season (defaults 0.3, 0.01, 0.3).
	Alpha, Beta, Gamma float64
	// Threshold is the |score| above which an observation is anomalous
	// (default 3.5 for mad, 3 for the others).
	Threshold float64
	// MinSamples is how many observations a detector sees before its
	// first verdict (default 30; for seasonal, counted after its first
	// season).
	MinSamples int
}

// WithDefaults returns c with its zero fields set to the defaults.
func (c Config) WithDefaults() Config {
	if c.HalfLife == 0 {
		c.HalfLife = time.Hour
		if c.Method == MethodSeasonal && c.Season > 0 {
			c.HalfLife = c.Season
		}
	}
	if c.Window == 0 {
		c.Window = time.Hour
	}
	if c.MaxSamples == 0 {
		c.MaxSamples = 1024
	}
	if c.Bucket == 0 && c.Season > 0 {
		c.Bucket = c.Season / 24
	}
	if c.Alpha == 0 {
		c.Alpha = 0.3
	}
	if c.Beta == 0 {
		c.Beta = 0.01
	}
	if c.Gamma == 0 {
		c.Gamma = 0.3
	}
	if c.Threshold == 0 {
		c.Threshold = 3
		if c.Method == MethodMAD {
			c.Threshold = 3.5
		}
	}
	if c.MinSamples == 0 {
		c.MinSamples = 30
	}
	return c
}

// Validate reports the first setting of c (after WithDefaults) that no
// detector accepts, as a sentence naming it.
func (c Config) Validate() error {
	switch c.Method {
	case MethodEWMA, MethodZScore, MethodMAD, MethodSeasonal:
	default:
		return fmt.Errorf("method %q is unknown; allowed: ewma, zscore, mad, seasonal", c.Method)
	}
	if c.HalfLife < time.Millisecond {
		return fmt.Errorf("half_life %s must be at least 1ms", c.HalfLife)
	}
	if c.Window < time.Millisecond {
		return fmt.Errorf("window %s must be at least 1ms", c.Window)
	}
	if c.MaxSamples < 3 || c.MaxSamples > 1<<20 {
		return fmt.Errorf("max_samples %d must be between 3 and %d", c.MaxSamples, 1<<20)
	}
	if c.Threshold <= 0 || math.IsNaN(c.Threshold) || math.IsInf(c.Threshold, 0) {
		return fmt.Errorf("threshold %v must be a positive number", c.Threshold)
	}
	if c.MinSamples < 1 {
		return fmt.Errorf("min_samples %d must be at least 1", c.MinSamples)
	}
	if (c.Method == MethodZScore || c.Method == MethodMAD) && c.MinSamples > c.MaxSamples {
		// The window never holds min_samples: no verdict, ever.
		return fmt.Errorf("min_samples %d can never be reached: the window keeps at most max_samples %d observations; lower min_samples or raise max_samples", c.MinSamples, c.MaxSamples)
	}
	if c.Method != MethodSeasonal {
		return nil
	}
	if c.Season <= 0 {
		return errors.New("season is required for method seasonal: the length of the pattern, like 24h or 168h")
	}
	if c.Bucket < time.Millisecond || c.Season%c.Bucket != 0 {
		return fmt.Errorf("bucket %s must divide season %s (like season: 24h, bucket: 1h)", c.Bucket, c.Season)
	}
	if m := c.Season / c.Bucket; m < 2 || m > maxSeasonBuckets {
		return fmt.Errorf("season %s / bucket %s gives %d buckets; allowed 2 to %d", c.Season, c.Bucket, m, maxSeasonBuckets)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"alpha", c.Alpha}, {"beta", c.Beta}, {"gamma", c.Gamma}} {
		if !(f.v > 0 && f.v < 1) {
			return fmt.Errorf("%s %v must be between 0 and 1 (exclusive)", f.name, f.v)
		}
	}
	return nil
}

// New returns a fresh detector for c (defaults applied).
func New(c Config) (Detector, error) {
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	switch c.Method {
	case MethodEWMA:
		return NewEWMA(c.HalfLife, c.Threshold, c.MinSamples), nil
	case MethodZScore:
		return NewZScore(c.Window, c.MaxSamples, c.Threshold, c.MinSamples), nil
	case MethodMAD:
		return NewMAD(c.Window, c.MaxSamples, c.Threshold, c.MinSamples), nil
	default:
		return NewSeasonal(c.Season, c.Bucket, c.Alpha, c.Beta, c.Gamma, c.HalfLife, c.Threshold, c.MinSamples), nil
	}
}

// MaxValue is the largest magnitude of an observation that enters a
// model. The statistics hold squares of deviations, and sums of many: an
// observation beyond ±1e150 would overflow them to +Inf (and Inf - Inf to
// NaN), leaving the key's detector blind from then on and its state one
// that UnmarshalBinary refuses. Such an observation is still scored, so
// that a reading of 1e300 in a series of tens is flagged.
const MaxValue = 1e150

// learnable reports whether x may enter a model: finite and within
// ±MaxValue (false for NaN).
func learnable(x float64) bool { return math.Abs(x) <= MaxValue }

// Encoding tags: the first byte of each detector's state.
const (
	tagEWMA     = 0x41
	tagZScore   = 0x42
	tagMAD      = 0x43
	tagSeasonal = 0x44
)

// ErrState is wrapped by UnmarshalBinary's errors.
var ErrState = errors.New("anomaly: bad detector state")

// dec reads the fixed-width and varint fields of an encoded state.
type dec struct {
	b   []byte
	err error
}

func (d *dec) f64() float64 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 8 {
		d.err = fmt.Errorf("%w: truncated", ErrState)
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
	d.b = d.b[8:]
	return v
}

func (d *dec) i64() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = fmt.Errorf("%w: truncated varint", ErrState)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a non-negative length of at most limit.
func (d *dec) count(limit int) int {
	v := d.i64()
	if d.err == nil && (v < 0 || v > int64(limit)) {
		d.err = fmt.Errorf("%w: count %d out of range [0, %d]", ErrState, v, limit)
		return 0
	}
	return int(v)
}

func (d *dec) tag(want byte, what string) {
	if len(d.b) == 0 {
		d.err = fmt.Errorf("%w: empty", ErrState)
		return
	}
	if d.b[0] != want {
		d.err = fmt.Errorf("%w: not the state of a %s detector (tag 0x%02x)", ErrState, what, d.b[0])
		return
	}
	d.b = d.b[1:]
}

func (d *dec) end() error {
	if d.err == nil && len(d.b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrState, len(d.b))
	}
	return d.err
}

func appendF64(dst []byte, v float64) []byte {
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
}

func verdict(score, threshold float64) bool { return math.Abs(score) > threshold }

// zscore is (x - mean) / sd with sd floored at a tiny fraction of the
// scale, so that a constant series gives 0 for its own value and a large
// finite score for any other.
func zscore(x, mean, variance float64) float64 {
	d := x - mean
	if d == 0 {
		return 0
	}
	sd := math.Sqrt(max(variance, 0))
	floor := 1e-9 * max(1, math.Abs(mean))
	return d / max(sd, floor)
}
