package exec

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/types"
	"github.com/sluicehq/sluice/stream"
)

// q15Calls are the aggregates of Nexmark q15 over (price, bidder,
// auction, and three price-rank filters): 4 COUNT(*) with FILTER and 9
// COUNT(DISTINCT) with FILTER over bidder and auction (columns 1 and 2;
// filters in 3, 4, 5).
func q15Calls() []AggCall {
	var calls []AggCall
	star := func(f int) AggCall {
		return AggCall{Kind: AggCountStar, Arg: -1, Filter: f, ResultType: types.TBigInt}
	}
	dist := func(arg, f int) AggCall {
		return AggCall{Kind: AggCount, Arg: arg, Distinct: true, Filter: f, ArgType: types.TBigInt, ResultType: types.TBigInt}
	}
	calls = append(calls, star(-1), star(3), star(4), star(5))
	calls = append(calls, dist(1, -1), dist(1, 3), dist(1, 4), dist(1, 5))
	calls = append(calls, dist(2, -1), dist(2, 3), dist(2, 4), dist(2, 5), dist(2, 3))
	return calls
}

// BenchmarkAccumulateQ15 measures the per-record work of the q15
// aggregates on one key (no runtime): accumulate and compute the results.
func BenchmarkAccumulateQ15(b *testing.B) {
	p, err := compileAggs(q15Calls(), false, false)
	if err != nil {
		b.Fatal(err)
	}
	a := p.newAcc()
	rows := make([][]row.Value, 4096)
	for i := range rows {
		price := int64(i*7919) % 2_000_000
		rows[i] = []row.Value{row.Int(price), row.Int(int64(i*31) % 1000), row.Int(int64(i*17) % 500),
			row.Bool(price < 10_000), row.Bool(price >= 10_000 && price < 1_000_000), row.Bool(price >= 1_000_000)}
	}
	res := make([]row.Value, len(p.calls))
	for _, r := range rows { // warm the maps
		p.accumulate(a, r, 1)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		p.accumulate(a, rows[i%len(rows)], 1)
		p.results(a, res)
	}
}

// BenchmarkGroupAggregateQ15 runs the q15 aggregates through the stream
// runtime at parallelism 1: b.N bids over 4 days (keys), 10k bidders and
// 5k auctions. Run it with -benchtime=Nx.
func BenchmarkGroupAggregateQ15(b *testing.B) {
	calls := q15Calls()
	b.ReportAllocs()
	env := stream.New(stream.WithParallelism(1))
	n := int64(b.N)
	src := stream.FromSource(env, "bids", stream.Generate(n, 1, func(i int64) Change {
		price := (i * 7919) % 2_000_000
		return Change{Op: Insert, Vals: []row.Value{row.Int(price), row.Int((i * 31) % 10_000), row.Int((i * 17) % 5_000),
			row.Bool(price < 10_000), row.Bool(price >= 10_000 && price < 1_000_000), row.Bool(price >= 1_000_000), row.Int(i * 4 / n)}}
	}), stream.WatermarkStrategy[Change]{})
	out := GroupAggregate(src, []int{6}, calls, AggConfig{AppendOnly: true})
	var count atomic.Int64
	stream.To[Change](out, stream.SinkFunc[Change](func(_ context.Context, cs []Change) error { count.Add(int64(len(cs))); return nil }))
	b.ResetTimer()
	if err := env.Execute(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(count.Load())/float64(b.N), "changes/op")
}
