package stream_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/stream"
	"github.com/sluicehq/sluice/window"
)

// A stateless pipeline: parse, filter, collect.
func Example() {
	env := stream.New(stream.WithParallelism(2))
	lines := stream.FromSource(env, "lines", stream.FromSlice([]string{"3", "10", "x", "7"}, 2), stream.WatermarkStrategy[string]{})
	nums := stream.FlatMap(lines, func(s string, out *stream.Emitter[int]) {
		var n int
		if _, err := fmt.Sscan(s, &n); err == nil {
			out.Emit(n)
		}
	}, stream.Name("parse"))
	big := stream.Filter(nums, func(n int) bool { return n > 5 })
	sink := stream.Collect(big)
	if err := env.Execute(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	got := sink.Values()
	slices.Sort(got)
	fmt.Println(got)
	// Output: [7 10]
}

type pageView struct {
	User string
	At   int64 // ms
}

// Counting page views per user in one-minute event-time windows.
func ExampleAggregate() {
	minute := int64(time.Minute / time.Millisecond)
	views := []pageView{{"ann", 1000}, {"bob", 2000}, {"ann", 30_000}, {"ann", minute + 5}, {"bob", 5000}}
	env := stream.New(stream.WithParallelism(2))
	src := stream.FromSource(env, "views", stream.FromSlice(views, 1),
		stream.BoundedOutOfOrderness(func(v pageView) int64 { return v.At }, 5*time.Second))
	perUser := stream.KeyBy(src, func(v pageView) string { return v.User })
	counts := stream.Aggregate(stream.Window(perUser, window.Tumbling(time.Minute)), stream.Count[pageView]())
	sink := stream.Collect(counts)
	if err := env.Execute(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	var lines []string
	for _, c := range sink.Values() {
		lines = append(lines, fmt.Sprintf("%s %v %d", c.Key, c.Window, c.Value))
	}
	slices.Sort(lines)
	fmt.Println(strings.Join(lines, "\n"))
	// Output:
	// ann [00:00:00.000,00:01:00.000) 2
	// ann [00:01:00.000,00:02:00.000) 1
	// bob [00:00:00.000,00:01:00.000) 2
}

// Deduplication with keyed state: the first record of each id passes, and
// an event-time timer forgets the id after ten seconds.
func ExampleKeyedProcess() {
	type msg struct {
		ID string
		At int64
	}
	msgs := []msg{{"a", 0}, {"b", 1}, {"a", 2}, {"c", 20_000}, {"a", 25_000}}
	// Batches of one record, so that a watermark follows every record.
	env := stream.New(stream.WithParallelism(1), stream.WithBatchSize(1))
	src := stream.FromSource(env, "msgs", stream.FromSlice(msgs, 1),
		stream.BoundedOutOfOrderness(func(m msg) int64 { return m.At }, 0))
	dedup := stream.KeyedProcess(stream.KeyBy(src, func(m msg) string { return m.ID }),
		func(ctx *stream.KeyedContext[string, msg]) (stream.KeyedProcessFunc[string, msg, msg], error) {
			seen, err := state.NewValue[string, bool](ctx.State(), "seen")
			if err != nil {
				return nil, err
			}
			return stream.KeyedProcessFuncs[string, msg, msg]{
				Element: func(ctx *stream.KeyedContext[string, msg], m msg) {
					if _, ok := seen.Get(); ok {
						return
					}
					seen.Set(true)
					ctx.Emit(m)
					ctx.RegisterEventTimer(m.At + 10_000)
				},
				Timer: func(ctx *stream.KeyedContext[string, msg], t stream.Timer) { seen.Clear() },
			}, nil
		})
	sink := stream.Collect(dedup)
	if err := env.Execute(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(sink.Values())
	// Output: [{a 0} {b 1} {c 20000} {a 25000}]
}

// Joining orders with the shipments that follow them within an hour.
func ExampleIntervalJoin() {
	type order struct {
		ID int
		At int64
	}
	type shipment struct {
		Order int
		At    int64
	}
	hour := int64(time.Hour / time.Millisecond)
	env := stream.New(stream.WithParallelism(2))
	orders := stream.FromSource(env, "orders", stream.FromSlice([]order{{1, 0}, {2, 10}}, 1),
		stream.BoundedOutOfOrderness(func(o order) int64 { return o.At }, 0))
	ships := stream.FromSource(env, "shipments", stream.FromSlice([]shipment{{1, hour / 2}, {2, 2 * hour}}, 1),
		stream.BoundedOutOfOrderness(func(s shipment) int64 { return s.At }, 0))
	joined := stream.IntervalJoin(
		stream.KeyBy(orders, func(o order) int { return o.ID }),
		stream.KeyBy(ships, func(s shipment) int { return s.Order }),
		0, time.Hour,
		func(o order, s shipment) string {
			return fmt.Sprintf("order %d shipped after %v", o.ID, time.Duration(s.At-o.At)*time.Millisecond)
		})
	sink := stream.Collect(joined)
	if err := env.Execute(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(sink.Values())
	// Output: [order 1 shipped after 30m0s]
}

// Late records go to a side output instead of being dropped.
func ExampleWindowedStream_SideOutputLate() {
	env := stream.New(stream.WithParallelism(1), stream.WithBatchSize(1))
	src := stream.FromSource(env, "t", stream.FromSlice([]int64{1, 2, 15, 3}, 1),
		stream.BoundedOutOfOrderness(func(v int64) int64 { return v }, 0))
	late := stream.NewOutputTag[int64]("late")
	sums := stream.Reduce(stream.Window(stream.KeyBy(src, func(int64) int { return 0 }), window.Tumbling(10*time.Millisecond)).
		SideOutputLate(late), func(a, b int64) int64 { return a + b })
	onTime := stream.Collect(sums)
	tooLate := stream.Collect(stream.SideOutput(sums, late))
	if err := env.Execute(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	for _, w := range onTime.Values() {
		fmt.Println("window", w.Window.Start, "sum", w.Value)
	}
	fmt.Println("late", tooLate.Values())
	// Output:
	// window 0 sum 3
	// window 10 sum 15
	// late [3]
}

// Pairing clicks and impressions of the same ad within one-second windows.
func ExampleWindowJoin() {
	type ev struct {
		Ad string
		At int64
	}
	env := stream.New(stream.WithParallelism(2))
	ts := func(e ev) int64 { return e.At }
	clicks := stream.FromSource(env, "clicks", stream.FromSlice([]ev{{"x", 100}, {"y", 1500}}, 1), stream.BoundedOutOfOrderness(ts, 0))
	shows := stream.FromSource(env, "impressions", stream.FromSlice([]ev{{"x", 50}, {"y", 900}, {"x", 1200}}, 1), stream.BoundedOutOfOrderness(ts, 0))
	ad := func(e ev) string { return e.Ad }
	pairs := stream.WindowJoin(stream.KeyBy(clicks, ad), stream.KeyBy(shows, ad), window.Tumbling(time.Second),
		func(c, s ev) string { return fmt.Sprintf("%s clicked at %d, shown at %d", c.Ad, c.At, s.At) })
	sink := stream.Collect(pairs)
	if err := env.Execute(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(sink.Values())
	// Output: [x clicked at 100, shown at 50]
}
