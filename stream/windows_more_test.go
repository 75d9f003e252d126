package stream_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sluicehq/sluice/stream"
	"github.com/sluicehq/sluice/window"
)

// TestSessionMergesOutOfOrder: 10 and 30 start two sessions (gap 15); 20,
// arriving last but within the out-of-orderness bound, bridges them.
func TestSessionMergesOutOfOrder(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) { testSessionMergesOutOfOrder(t, backend) })
	}
}

func testSessionMergesOutOfOrder(t *testing.T, backend string) {
	for _, batch := range []int{1, 2, 10} {
		env := stream.New(append(backendOpts(t, backend), stream.WithParallelism(1), stream.WithBatchSize(batch))...)
		src := stream.FromSource(env, "e", stream.FromSlice([]int64{10, 30, 20, 100}, 1),
			stream.BoundedOutOfOrderness(func(v int64) int64 { return v }, 20*time.Millisecond))
		res := stream.Reduce(stream.Window(stream.KeyBy(src, func(int64) int { return 0 }), window.Session(15*time.Millisecond)),
			func(a, b int64) int64 { return a + b })
		out := stream.Collect(stream.Map(res, func(w stream.Windowed[int, int64]) string {
			return fmt.Sprintf("[%d,%d)=%d", w.Window.Start, w.Window.End, w.Value)
		}))
		if err := env.Execute(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got, want := out.Values(), []string{"[10,45)=60", "[100,115)=100"}; !slices.Equal(got, want) {
			t.Fatalf("batch %d: got %v, want %v", batch, got, want)
		}
	}
}

func TestProcessWindowSeesAllElements(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) { testProcessWindowSeesAllElements(t, backend) })
	}
}

func testProcessWindowSeesAllElements(t *testing.T, backend string) {
	env := stream.New(append(backendOpts(t, backend), stream.WithParallelism(2))...)
	var in []int64
	for i := range int64(100) {
		in = append(in, i)
	}
	src := stream.FromSource(env, "e", stream.FromSlice(in, 3),
		stream.BoundedOutOfOrderness(func(v int64) int64 { return v }, 0))
	out := stream.Collect(stream.ProcessWindow(stream.Window(stream.KeyBy(src, func(v int64) int64 { return v % 2 }), window.Tumbling(25*time.Millisecond)),
		func(key int64, w window.Window, elems []int64, out *stream.Emitter[string]) {
			s := slices.Clone(elems)
			slices.Sort(s)
			out.Emit(fmt.Sprintf("%d@%d:%v", key, w.Start, s[:2]))
		}))
	if err := env.Execute(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := out.Values()
	slices.Sort(got)
	want := []string{"0@0:[0 2]", "0@25:[26 28]", "0@50:[50 52]", "0@75:[76 78]", "1@0:[1 3]", "1@25:[25 27]", "1@50:[51 53]", "1@75:[75 77]"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v", got)
	}
}

// TestProcessingTimeWindowsCountEverything cannot predict window
// boundaries (they depend on the wall clock) but every record is counted
// exactly once, and windows still open when the input ends are fired.
func TestProcessingTimeWindowsCountEverything(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) { testProcessingTimeWindowsCountEverything(t, backend) })
	}
}

func testProcessingTimeWindowsCountEverything(t *testing.T, backend string) {
	for _, a := range []window.Assigner{
		window.TumblingProcessingTime(5 * time.Millisecond),
		window.SessionProcessingTime(time.Millisecond),
	} {
		env := stream.New(append(backendOpts(t, backend), stream.WithParallelism(2), stream.WithBatchSize(10))...)
		src := stream.FromSource(env, "e", stream.Generate(5000, 2, func(i int64) int64 { return i }), stream.WatermarkStrategy[int64]{})
		out := stream.Collect(stream.Aggregate(stream.Window(stream.KeyBy(src, func(v int64) int64 { return v % 7 }), a), stream.Count[int64]()))
		if err := env.Execute(context.Background()); err != nil {
			t.Fatal(err)
		}
		var total int64
		for _, w := range out.Values() {
			total += w.Value
		}
		if total != 5000 {
			t.Fatalf("%T: counted %d records, want 5000", a, total)
		}
	}
}
