package nexmark

import "math/bits"

// rng is the per-event random source: SplitMix64, seeded from the run seed
// and the event id (see newEventRNG). It is a value type so that the
// generator can keep it on the stack.
type rng struct {
	state uint64
}

const golden = 0x9e3779b97f4a7c15

// mix64 is the SplitMix64 finaliser, a bijective 64-bit mixer.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Domains keep the random streams of events, hot URLs and channel URLs
// apart even when their keys coincide.
const (
	domainEvent   = 0x4e45584d41524b31 // "NEXMARK1"
	domainHotURL  = 0x484f5455524c5331 // "HOTURLS1"
	domainChannel = 0x4348414e4e454c31 // "CHANNEL1"
)

// newRNG returns the random source for key in domain under seed. The key is
// hashed before use so that consecutive keys do not yield overlapping
// SplitMix64 sequences.
func newRNG(seed uint64, domain uint64, key int64) rng {
	return rng{state: mix64(seed^domain) ^ mix64(uint64(key)+golden)}
}

func (r *rng) next() uint64 {
	r.state += golden
	return mix64(r.state)
}

// intn returns a uniform int in [0, n); n must be > 0. Lemire's
// multiply-shift with rejection, so there is no modulo bias.
func (r *rng) intn(n int) int {
	return int(r.uint64n(uint64(n)))
}

// int64n returns a uniform int64 in [0, n); n must be > 0.
func (r *rng) int64n(n int64) int64 {
	return int64(r.uint64n(uint64(n)))
}

func (r *rng) uint64n(n uint64) uint64 {
	hi, lo := bits.Mul64(r.next(), n)
	if lo < n {
		thresh := -n % n
		for lo < thresh {
			hi, lo = bits.Mul64(r.next(), n)
		}
	}
	return hi
}

// int32 returns a uniformly distributed signed 32-bit value, like Java's
// Random.nextInt() without a bound (the reference relies on its sign).
func (r *rng) int32() int32 {
	return int32(r.next() >> 32)
}

// float64 returns a uniform float64 in [0, 1) with 53 random bits.
func (r *rng) float64() float64 {
	return float64(r.next()>>11) * (1.0 / (1 << 53))
}
