package stream_test

// Benchmarks of the engine next to a plain hand-written Go loop doing the
// same computation on the same input (the "loop" sub-benchmarks), which is
// the limit the engine approaches. One op is one input record; the
// rec/s/core metric divides the record rate by the subtasks' parallelism.
//
//	go test -run '^$' -bench . -benchmem -count 5 ./stream/

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/stream"
	"github.com/sluicehq/sluice/window"
)

// cpuTime returns the CPU time (user + system) the process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// report adds records per wall-clock second and records per CPU second
// (per core: the CPU time of every goroutine of the process, GC included,
// since cpu0 was taken).
func report(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rec/s")
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "rec/cpu-s")
	}
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
		cpu0 := cpuTime()
		var n atomic.Int64
		env := stream.New(stream.WithParallelism(1))
		src := stream.FromSource(env, "gen", stream.Generate(int64(b.N), 1, gen), stream.WatermarkStrategy[int64]{})
		m := stream.Map(src, func(v int64) int64 { return v * 3 })
		f := stream.Filter(m, func(v int64) bool { return v&1 == 0 })
		m2 := stream.Map(f, func(v int64) int64 { return v + 1 })
		stream.To(m2, countingSink[int64](&n))
		b.ResetTimer()
		cpu0 = cpuTime()
		run(b, env)
		report(b, cpu0)
	})
	// loop-calls is the same loop calling the functions through function
	// values that the compiler cannot inline, as any engine calls user
	// code.
	b.Run("loop-calls", func(b *testing.B) {
		b.ReportAllocs()
		cpu0 := cpuTime()
		var n, acc int64
		for i := range int64(b.N) {
			v := noinlineMap(noinlineGen(i))
			if noinlineFilter(v) {
				acc += noinlineMap2(v)
				n++
			}
		}
		sink = n + acc
		report(b, cpu0)
	})
	b.Run("loop", func(b *testing.B) {
		b.ReportAllocs()
		cpu0 := cpuTime()
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
		report(b, cpu0)
	})
}

//go:noinline
func noinlineGen(i int64) int64 { return i }

//go:noinline
func noinlineMap(v int64) int64 { return v * 3 }

//go:noinline
func noinlineFilter(v int64) bool { return v&1 == 0 }

//go:noinline
func noinlineMap2(v int64) int64 { return v + 1 }

// BenchmarkHashExchange: two source subtasks hash-partition records by key
// to two map subtasks (every record crosses a goroutine through a queue).
func BenchmarkHashExchange(b *testing.B) {
	gen := func(i int64) int64 { return i * 7919 }
	b.Run("engine", func(b *testing.B) {
		b.ReportAllocs()
		cpu0 := cpuTime()
		var n atomic.Int64
		env := stream.New(stream.WithParallelism(2))
		src := stream.FromSource(env, "gen", stream.Generate(int64(b.N), 2, gen), stream.WatermarkStrategy[int64]{})
		ks := stream.KeyBy(src, func(v int64) int64 { return v % 10_000 })
		m := stream.Map(ks.Stream(), func(v int64) int64 { return v + 1 })
		stream.To(m, countingSink[int64](&n))
		b.ResetTimer()
		cpu0 = cpuTime()
		run(b, env)
		report(b, cpu0)
	})
	// loop-goroutines is the same exchange written by hand: two producer
	// goroutines partition their halves of the input by key into batches
	// of 1024 and hand them over buffered channels to two consumer
	// goroutines, which return the buffers for reuse (4 per pair, as the
	// engine's credits). It moves every record between goroutines, as
	// the engine does; "loop" below does it all on one goroutine.
	b.Run("loop-goroutines", func(b *testing.B) { handExchange(b, nil, nil, nil) })
	// loop-goroutines-calls is the same hand-written exchange calling the
	// generator, the key function and the map through function values.
	b.Run("loop-goroutines-calls", func(b *testing.B) {
		handExchange(b, gen, func(v int64) int64 { return v % 10_000 }, func(v int64) int64 { return v + 1 })
	})
	b.Run("loop", func(b *testing.B) {
		b.ReportAllocs()
		cpu0 := cpuTime()
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
		report(b, cpu0)
	})
}

// handExchange is the hash exchange written by hand: two producer
// goroutines partition their halves of the input by key into batches of
// 1024 and hand them over buffered channels to two consumer goroutines,
// which return the buffers for reuse (4 per pair, as the engine's
// credits). With gen, key and mapf given, it calls them through function
// values, as an engine calls user code; with nil ones, the same
// computation is written inline (i*7919, v%10_000, x+1).
//
//go:noinline
func handExchange(b *testing.B, gen, key, mapf func(int64) int64) {
	inline := gen == nil
	b.ReportAllocs()
	cpu0 := cpuTime()
	h := state.Hasher[int64]()
	const par, size, credits = 2, 1024, 4
	type msg struct {
		from int
		buf  []int64
	}
	var full [par]chan msg          // per consumer, from every producer
	var free [par][par]chan []int64 // [producer][consumer]: the pair's buffers
	for c := range par {
		full[c] = make(chan msg, par*credits)
		for p := range par {
			free[p][c] = make(chan []int64, credits)
			for range credits {
				free[p][c] <- make([]int64, 0, size)
			}
		}
	}
	var consumers, producers sync.WaitGroup
	var total atomic.Int64
	for c := range par {
		consumers.Add(1)
		go func() {
			defer consumers.Done()
			var acc int64
			for m := range full[c] {
				if inline {
					for _, x := range m.buf {
						acc += x + 1
					}
				} else {
					for _, x := range m.buf {
						acc += mapf(x)
					}
				}
				free[m.from][c] <- m.buf[:0]
			}
			total.Add(acc)
		}()
	}
	for p := range par {
		producers.Add(1)
		go func() {
			defer producers.Done()
			var cur [par][]int64
			for c := range par {
				cur[c] = <-free[p][c]
			}
			add := func(c int, v int64) {
				cur[c] = append(cur[c], v)
				if len(cur[c]) == size {
					full[c] <- msg{p, cur[c]}
					cur[c] = <-free[p][c]
				}
			}
			if inline {
				for i := int64(p); i < int64(b.N); i += par {
					v := i * 7919
					add(state.SubtaskFor(128, par, state.KeyGroup(h(v%10_000), 128)), v)
				}
			} else {
				for i := int64(p); i < int64(b.N); i += par {
					v := gen(i)
					add(state.SubtaskFor(128, par, state.KeyGroup(h(key(v)), 128)), v)
				}
			}
			for c := range par {
				full[c] <- msg{p, cur[c]}
			}
		}()
	}
	producers.Wait()
	for c := range par {
		close(full[c])
	}
	consumers.Wait()
	sink = total.Load()
	report(b, cpu0)
}

type click struct {
	User int64
	TS   int64
}

const benchKeys = 10_000

// clicks are in event-time order, 10 per ms, spread over benchKeys users.
func clickGen(i int64) click { return click{User: (i * 7919) % benchKeys, TS: i / 10} }

// windowBench runs the keyed count at parallelism p: at 1 the keyed
// operator is chained to the source (a hash exchange to one subtask is a
// forward one); at 2 every record crosses the hash exchange.
func windowBench(b *testing.B, a window.Assigner, p int) {
	b.ReportAllocs()
	cpu0 := cpuTime()
	var n atomic.Int64
	env := stream.New(stream.WithParallelism(p))
	src := stream.FromSource(env, "clicks", stream.Generate(int64(b.N), p, clickGen),
		stream.BoundedOutOfOrderness(func(c click) int64 { return c.TS }, 0))
	w := stream.Window(stream.KeyBy(src, func(c click) int64 { return c.User }), a)
	stream.To(stream.Aggregate(w, stream.Count[click]()), countingSink[stream.Windowed[int64, int64]](&n))
	b.ResetTimer()
	cpu0 = cpuTime()
	run(b, env)
	report(b, cpu0)
}

// loopWindows is the hand-written equivalent of a keyed count over fixed
// windows of size/slide for in-order input: per user a short list of open
// windows (one map lookup per record); whenever time passes a window end,
// a sweep over all users emits and drops the windows that ended.
func loopWindows(b *testing.B, size, slide int64) {
	b.ReportAllocs()
	cpu0 := cpuTime()
	type uw struct{ start, n int64 }
	users := map[int64]int32{}
	var lists [][]uw
	var emitted int64
	nextEnd := int64(-1)
	for i := range int64(b.N) {
		c := clickGen(i)
		if nextEnd < 0 {
			nextEnd = c.TS - c.TS%slide + slide
		}
		for c.TS >= nextEnd {
			for li, l := range lists {
				keep := l[:0]
				for _, w := range l {
					if w.start+size <= c.TS {
						emitted += w.n
					} else {
						keep = append(keep, w)
					}
				}
				lists[li] = keep
			}
			nextEnd += slide
		}
		li, ok := users[c.User]
		if !ok {
			lists = append(lists, nil)
			li = int32(len(lists) - 1)
			users[c.User] = li
		}
		last := c.TS - c.TS%slide
		for start := last; start > c.TS-size; start -= slide {
			found := false
			for j := range lists[li] {
				if lists[li][j].start == start {
					lists[li][j].n++
					found = true
					break
				}
			}
			if !found {
				lists[li] = append(lists[li], uw{start: start, n: 1})
			}
		}
	}
	sink = emitted
	report(b, cpu0)
}

// BenchmarkTumblingCount: keyed count per 10 s tumbling window.
func BenchmarkTumblingCount(b *testing.B) {
	b.Run("engine", func(b *testing.B) { windowBench(b, window.Tumbling(10*time.Second), 1) })
	b.Run("engine-p2", func(b *testing.B) { windowBench(b, window.Tumbling(10*time.Second), 2) })
	b.Run("loop", func(b *testing.B) { loopWindows(b, 10_000, 10_000) })
}

// BenchmarkSlidingCount: keyed count per 10 s window sliding by 2 s (each
// record updates 5 windows).
func BenchmarkSlidingCount(b *testing.B) {
	b.Run("engine", func(b *testing.B) { windowBench(b, window.Sliding(10*time.Second, 2*time.Second), 1) })
	b.Run("engine-p2", func(b *testing.B) { windowBench(b, window.Sliding(10*time.Second, 2*time.Second), 2) })
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
		cpu0 := cpuTime()
		var n atomic.Int64
		env := stream.New(stream.WithParallelism(1))
		src := stream.FromSource(env, "clicks", stream.Generate(int64(b.N), 1, gen),
			stream.BoundedOutOfOrderness(func(c click) int64 { return c.TS }, 0))
		w := stream.Window(stream.KeyBy(src, func(c click) int64 { return c.User }), window.Session(2*time.Second))
		stream.To(stream.Aggregate(w, stream.Count[click]()), countingSink[stream.Windowed[int64, int64]](&n))
		b.ResetTimer()
		cpu0 = cpuTime()
		run(b, env)
		report(b, cpu0)
	})
	b.Run("loop", func(b *testing.B) {
		b.ReportAllocs()
		cpu0 := cpuTime()
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
		report(b, cpu0)
	})
}
