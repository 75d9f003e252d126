package anomaly

import (
	"math/rand/v2"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user+system CPU time: records per CPU-second
// hold still on a machine shared with other work, wall-clock rates do not.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchKeys runs one detector per key over records spread at random
// across 10,000 keys (the benchmark), one observation a second
// per key on average: the detector-level cost per record, map lookup of
// the key's detector not included (the pipeline step has its own
// benchmark).
func benchKeys(b *testing.B, c Config) {
	const keys = 10_000
	dets := make([]Detector, keys)
	for i := range dets {
		d, err := New(c)
		if err != nil {
			b.Fatal(err)
		}
		dets[i] = d
	}
	r := rand.New(rand.NewPCG(1, 2))
	const n = 1 << 16
	ks := make([]int32, n)
	xs := make([]float64, n)
	for i := range ks {
		ks[i] = int32(r.IntN(keys))
		xs[i] = 20 + r.NormFloat64()
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	t := int64(0)
	for i := 0; i < b.N; i++ {
		j := i & (n - 1)
		t += 100 // 10 records per ms overall: about one a second per key
		dets[ks[j]].Update(t, xs[j])
	}
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(b.N)/cpu.Seconds(), "records/cpu-s")
}

func BenchmarkEWMA10kKeys(b *testing.B) {
	benchKeys(b, Config{Method: MethodEWMA, HalfLife: 10 * time.Minute})
}

func BenchmarkZScore10kKeys(b *testing.B) {
	benchKeys(b, Config{Method: MethodZScore, Window: 10 * time.Minute})
}

func BenchmarkMAD10kKeys(b *testing.B) {
	benchKeys(b, Config{Method: MethodMAD, Window: 10 * time.Minute})
}

func BenchmarkSeasonal10kKeys(b *testing.B) {
	benchKeys(b, Config{Method: MethodSeasonal, Season: 24 * time.Hour, Bucket: time.Hour})
}

// BenchmarkEWMAMarshal is the checkpoint cost of one key's model.
func BenchmarkEWMAMarshal(b *testing.B) {
	d, _ := New(Config{Method: MethodEWMA})
	for i := range 100 {
		d.Update(int64(i)*1000, float64(i%7))
	}
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf = d.AppendBinary(buf[:0])
		if err := d.UnmarshalBinary(buf); err != nil {
			b.Fatal(err)
		}
	}
}
