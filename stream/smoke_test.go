package stream_test

import (
	"context"
	"slices"
	"testing"

	"github.com/sluicehq/sluice/stream"
)

func TestSmokeChain(t *testing.T) {
	for _, p := range []int{1, 2, 3} {
		env := stream.New(stream.WithParallelism(p), stream.WithBatchSize(7))
		var in []int
		for i := range 1000 {
			in = append(in, i)
		}
		src := stream.FromSource(env, "nums", stream.FromSlice(in, p), stream.WatermarkStrategy[int]{})
		sq := stream.Map(src, func(v int) int { return v * 2 })
		ev := stream.Filter(sq, func(v int) bool { return v%3 == 0 })
		out := stream.Collect(stream.Rebalance(ev), stream.Parallelism(2))
		if err := env.Execute(context.Background()); err != nil {
			t.Fatal(err)
		}
		got := out.Values()
		slices.Sort(got)
		var want []int
		for _, v := range in {
			if v*2%3 == 0 {
				want = append(want, v*2)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("p=%d: got %d values, want %d", p, len(got), len(want))
		}
	}
}
