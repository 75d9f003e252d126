package stream_test

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/sluicehq/sluice/stream"
	"github.com/sluicehq/sluice/window"
)

// TestRandomGraphsMatchOracle builds the same event-time pipeline with
// random per-operator parallelism, batch sizes and queue capacities (so
// with different chaining and exchanges each time) and checks the window
// counts against a direct computation.
func TestRandomGraphsMatchOracle(t *testing.T) {
	r := newRand(t)
	for trial := range 12 {
		bound := int64(r.IntN(20))
		a := genEvents(r, 1+r.IntN(3), 200, 9, bound)
		b := genEvents(r, 1+r.IntN(3), 200, 9, bound)
		par := func() stream.OpOption { return stream.Parallelism(1 + r.IntN(4)) }
		env := stream.New(stream.WithParallelism(1+r.IntN(4)), stream.WithBatchSize(1+r.IntN(100)), stream.WithQueueCapacity(1+r.IntN(3)))
		wm := stream.BoundedOutOfOrderness(func(e event) int64 { return e.TS }, time.Duration(bound)*time.Millisecond)
		sa := stream.FromSource(env, "a", &stream.SliceSource[event]{Parts: a}, wm)
		sb := stream.FromSource(env, "b", &stream.SliceSource[event]{Parts: b}, wm)
		u := stream.Union(stream.Map(sa, func(e event) event { e.Value = 1; return e }, par()), sb)
		if r.IntN(2) == 0 {
			u = stream.Rebalance(u)
		}
		f := stream.Filter(u, func(e event) bool { return e.Key != 0 }, par())
		counts := stream.Aggregate(stream.Window(stream.KeyBy(f, func(e event) int { return e.Key }), window.Tumbling(30*time.Millisecond)),
			stream.Count[event](), par())
		out := stream.Collect(stream.Filter(stream.Rebalance(counts), func(stream.Windowed[int, int64]) bool { return true }, par()), par())
		if err := env.Execute(context.Background()); err != nil {
			t.Fatal(err)
		}
		type wk struct {
			key   int
			start int64
		}
		want := map[wk]int64{}
		for _, parts := range [][][]event{a, b} {
			for _, p := range parts {
				for _, e := range p {
					if e.Key != 0 {
						want[wk{e.Key, e.TS - e.TS%30}]++
					}
				}
			}
		}
		got := map[wk]int64{}
		for _, w := range out.Values() {
			k := wk{w.Key, w.Window.Start}
			if _, dup := got[k]; dup {
				t.Fatalf("trial %d: window %v emitted twice", trial, k)
			}
			got[k] = w.Value
		}
		if !maps.Equal(got, want) {
			t.Fatalf("trial %d: %d windows, want %d", trial, len(got), len(want))
		}
	}
}
