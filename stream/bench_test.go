package stream_test

// Benchmarks of the engine next to a plain hand-written Go loop doing the
// same computation on the same input (the "loop" sub-benchmarks), which is
// the limit the engine approaches. One op is one input record; the
// rec/s/core metric divides the record rate by the subtasks' parallelism.
//
//	go test -run '^$' -bench . -benchmem -count 5 ./stream/

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/stream"
	"github.com/sluicehq/sluice/window"
)

func report(b *testing.B, cores int) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/float64(cores), "rec/s/core")
}

func countingSink[T any](n *atomic.Int64) stream.SinkFunc[T] {
	return func(_ context.Context, recs []T) error {
		n.Add(int64(len(recs)))
		return nil
	}
}

func run(b *testing.B, env *stream.Env) {
	b.Helper()
	if err := env.Execute(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// sink keeps a loop's result alive so the compiler cannot drop the work.
var sink int64

// BenchmarkStatelessChain: generator -> map -> filter -> map -> sink, all
// chained in one goroutine.
func BenchmarkStatelessChain(b *testing.B) {
	gen := func(i int64) int64 { return i }
	b.Run("engine", func(b *testing.B) {
		b.ReportAllocs()
		var n atomic.Int64
		env := stream.New(stream.WithParallelism(1))
		src := stream.FromSource(env, "gen", stream.Generate(int64(b.N), 1, gen), stream.WatermarkStrategy[int64]{})
		m := stream.Map(src, func(v int64) int64 { return v * 3 })
		f := stream.Filter(m, func(v int64) bool { return v&1 == 0 })
		m2 := stream.Map(f, func(v int64) int64 { return v + 1 })
		stream.To(m2, countingSink[int64](&n))
		b.ResetTimer()
		run(b, env)
		report(b, 1)
	})
	b.Run("loop", func(b *testing.B) {
		b.ReportAllocs()
		mapF := func(v int64) int64 { return v * 3 }
		filterF := func(v int64) bool { return v&1 == 0 }
		mapG := func(v int64) int64 { return v + 1 }
		var n, acc int64
		for i := range int64(b.N) {
			v := mapF(gen(i))
			if filterF(v) {
				acc += mapG(v)
				n++
			}
		}
		sink = n + acc
		report(b, 1)
	})
}

// BenchmarkHashExchange: two source subtasks hash-partition records by key
// to two map subtasks (every record crosses a goroutine through a queue).
func BenchmarkHashExchange(b *testing.B) {
	gen := func(i int64) int64 { return i * 7919 }
	b.Run("engine", func(b *testing.B) {
		b.ReportAllocs()
		var n atomic.Int64
		env := stream.New(stream.WithParallelism(2))
		src := stream.FromSource(env, "gen", stream.Generate(int64(b.N), 2, gen), stream.WatermarkStrategy[int64]{})
		ks := stream.KeyBy(src, func(v int64) int64 { return v % 10_000 })
		m := stream.Map(ks.Stream(), func(v int64) int64 { return v + 1 })
		stream.To(m, countingSink[int64](&n))
		b.ResetTimer()
		run(b, env)
		report(b, 2)
	})
	b.Run("loop", func(b *testing.B) {
		b.ReportAllocs()
		h := state.Hasher[int64]()
		var bufs [2][]int64
		var acc int64
		for i := range int64(b.N) {
			v := gen(i)
			t := state.SubtaskFor(128, 2, state.KeyGroup(h(v%10_000), 128))
			bufs[t] = append(bufs[t], v)
			if len(bufs[t]) == 1024 {
				for _, x := range bufs[t] {
					acc += x + 1
				}
				bufs[t] = bufs[t][:0]
			}
		}
		sink = acc
		report(b, 1)
	})
}

type click struct {
	User int64
	TS   int64
}

const benchKeys = 10_000

// clicks are in event-time order, 10 per ms, spread over benchKeys users.
func clickGen(i int64) click { return click{User: (i * 7919) % benchKeys, TS: i / 10} }

func windowBench(b *testing.B, a window.Assigner) {
	b.ReportAllocs()
	var n atomic.Int64
	env := stream.New(stream.WithParallelism(1))
	src := stream.FromSource(env, "clicks", stream.Generate(int64(b.N), 1, clickGen),
		stream.BoundedOutOfOrderness(func(c click) int64 { return c.TS }, 0))
	w := stream.Window(stream.KeyBy(src, func(c click) int64 { return c.User }), a)
	stream.To(stream.Aggregate(w, stream.Count[click]()), countingSink[stream.Windowed[int64, int64]](&n))
	b.ResetTimer()
	run(b, env)
	report(b, 1)
}

type wk struct {
	user, start int64
}

// loopWindows is the hand-written equivalent of a keyed count over fixed
// windows of size/slide for in-order input: a map of counts per (key,
// window start), emitted and deleted when time passes a window's end.
func loopWindows(b *testing.B, size, slide int64) {
	b.ReportAllocs()
	counts := map[wk]int64{}
	var ends []int64 // window ends in order of first appearance
	byEnd := map[int64][]wk{}
	var emitted int64
	for i := range int64(b.N) {
		c := clickGen(i)
		for len(ends) > 0 && ends[0] <= c.TS {
			for _, k := range byEnd[ends[0]] {
				emitted += counts[k]
				delete(counts, k)
			}
			delete(byEnd, ends[0])
			ends = ends[1:]
		}
		last := c.TS - c.TS%slide
		for start := last; start > c.TS-size; start -= slide {
			k := wk{c.User, start}
			if _, ok := counts[k]; !ok {
				end := start + size
				if _, ok := byEnd[end]; !ok {
					ends = insertSorted(ends, end)
				}
				byEnd[end] = append(byEnd[end], k)
			}
			counts[k]++
		}
	}
	sink = emitted + int64(len(counts))
	report(b, 1)
}

func insertSorted(s []int64, v int64) []int64 {
	i := len(s)
	for i > 0 && s[i-1] > v {
		i--
	}
	s = append(s, 0)
	copy(s[i+1:], s[i:])
	s[i] = v
	return s
}

// BenchmarkTumblingCount: keyed count per 10 s tumbling window.
func BenchmarkTumblingCount(b *testing.B) {
	b.Run("engine", func(b *testing.B) { windowBench(b, window.Tumbling(10*time.Second)) })
	b.Run("loop", func(b *testing.B) { loopWindows(b, 10_000, 10_000) })
}

// BenchmarkSlidingCount: keyed count per 10 s window sliding by 2 s (each
// record updates 5 windows).
func BenchmarkSlidingCount(b *testing.B) {
	b.Run("engine", func(b *testing.B) { windowBench(b, window.Sliding(10*time.Second, 2*time.Second)) })
	b.Run("loop", func(b *testing.B) { loopWindows(b, 10_000, 2_000) })
}

// BenchmarkSessionCount: keyed count per session with a 2 s gap (each user
// clicks every 1 s of event time, with a 3 s pause every 10 s).
func BenchmarkSessionCount(b *testing.B) {
	gen := func(i int64) click {
		c := clickGen(i)
		if c.TS%13_000 >= 10_000 { // pause: shift users to the next key space
			c.User += benchKeys
		}
		return c
	}
	b.Run("engine", func(b *testing.B) {
		b.ReportAllocs()
		var n atomic.Int64
		env := stream.New(stream.WithParallelism(1))
		src := stream.FromSource(env, "clicks", stream.Generate(int64(b.N), 1, gen),
			stream.BoundedOutOfOrderness(func(c click) int64 { return c.TS }, 0))
		w := stream.Window(stream.KeyBy(src, func(c click) int64 { return c.User }), window.Session(2*time.Second))
		stream.To(stream.Aggregate(w, stream.Count[click]()), countingSink[stream.Windowed[int64, int64]](&n))
		b.ResetTimer()
		run(b, env)
		report(b, 1)
	})
	b.Run("loop", func(b *testing.B) {
		b.ReportAllocs()
		type sess struct{ start, last, n int64 }
		open := map[int64]*sess{}
		var emitted int64
		var lastSweep int64
		for i := range int64(b.N) {
			c := gen(i)
			s := open[c.User]
			if s != nil && c.TS-s.last >= 2000 {
				emitted += s.n
				s.start, s.n = c.TS, 0
			}
			if s == nil {
				s = &sess{start: c.TS}
				open[c.User] = s
			}
			s.last = c.TS
			s.n++
			if c.TS-lastSweep >= 1000 { // close sessions whose gap passed
				lastSweep = c.TS
				for k, s := range open {
					if c.TS-s.last >= 2000 {
						emitted += s.n
						delete(open, k)
					}
				}
			}
		}
		sink = emitted
		report(b, 1)
	})
}
