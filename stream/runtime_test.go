package stream_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/stream"
	"github.com/sluicehq/sluice/window"
)

// TestLatenessAndLateSideOutput walks one split record by record (batch
// size 1, so a watermark follows every record) through a 10 ms tumbling
// window with 5 ms allowed lateness.
func TestLatenessAndLateSideOutput(t *testing.T) {
	type rec struct {
		TS int64
		ID string
	}
	in := []rec{
		{1, "a"}, {5, "b"}, // window [0,10)
		{12, "c"}, // watermark 11: [0,10) fires with 2
		{3, "d"},  // late, within lateness (cleanup at 14): re-fires with 3
		{15, "e"}, // watermark 14: [0,10) is cleaned up
		{4, "f"},  // too late: side output
		{25, "g"}, // watermark 24: [10,20) fires with 2
		{9, "h"},  // too late: side output
	}
	for _, sideOut := range []bool{true, false} {
		env := stream.New(stream.WithParallelism(1), stream.WithBatchSize(1))
		src := stream.FromSource(env, "recs", stream.FromSlice(in, 1),
			stream.BoundedOutOfOrderness(func(r rec) int64 { return r.TS }, 0))
		ws := stream.Window(stream.KeyBy(src, func(rec) string { return "k" }), window.Tumbling(10*time.Millisecond)).
			AllowedLateness(5 * time.Millisecond)
		tag := stream.NewOutputTag[rec]("late")
		if sideOut {
			ws = ws.SideOutputLate(tag)
		}
		counts := stream.Aggregate(ws, stream.Count[rec](), stream.Name("count"))
		got := stream.Collect(stream.Map(counts, func(w stream.Windowed[string, int64]) string {
			return fmt.Sprintf("[%d,%d)=%d", w.Window.Start, w.Window.End, w.Value)
		}))
		var late *stream.CollectSink[rec]
		if sideOut {
			late = stream.Collect(stream.SideOutput(counts, tag))
		}
		job, err := env.Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := job.Wait(); err != nil {
			t.Fatal(err)
		}
		want := []string{"[0,10)=2", "[0,10)=3", "[10,20)=2", "[20,30)=1"}
		if g := got.Values(); !slices.Equal(g, want) {
			t.Fatalf("side output %v: got %v, want %v", sideOut, g, want)
		}
		var dropped int64
		for _, m := range job.Metrics() {
			if m.Operator == "count" {
				dropped += m.Dropped
			}
		}
		if sideOut {
			if g := late.Values(); !slices.Equal(g, []rec{{4, "f"}, {9, "h"}}) {
				t.Fatalf("late side output: %v", g)
			}
			if dropped != 0 {
				t.Fatalf("dropped %d with a side output", dropped)
			}
		} else if dropped != 2 {
			t.Fatalf("dropped %d late records, want 2", dropped)
		}
	}
}

// TestIdlePartitionDoesNotStallWindows has two live splits: one keeps
// producing, the other produced one record and went silent. With an idle
// timeout the silent split is marked idle and the windows of the other fire
// although neither split ends.
func TestIdlePartitionDoesNotStallWindows(t *testing.T) {
	var busy []event
	for i := range 200 {
		busy = append(busy, event{Key: 1, TS: int64(i), Value: 1})
	}
	env := stream.New(stream.WithParallelism(2), stream.WithBatchSize(16))
	src := stream.FromSource(env, "live", pollSource[event]{parts: [][]event{busy, {{Key: 2, TS: 0, Value: 1}}}},
		stream.BoundedOutOfOrderness(func(e event) int64 { return e.TS }, 0).WithIdleTimeout(20*time.Millisecond))
	out := stream.Collect(stream.Aggregate(stream.Window(stream.KeyBy(src, func(e event) int { return e.Key }),
		window.Tumbling(50*time.Millisecond)), stream.Count[event]()))
	job, err := env.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Key 1's windows [0,50) .. [100,150) need watermark 149, which only
	// the busy split can reach; key 2's window [0,50) fires with them.
	waitFor(t, "windows to fire", func() bool { return out.Len() >= 4 })
	job.Cancel()
	_ = job.Wait()
	got := map[string]int64{}
	for _, w := range out.Values() {
		got[fmt.Sprintf("%d%v", w.Key, w.Window.Start)] = w.Value
	}
	for _, k := range []string{"10", "150", "1100", "20"} {
		if got[k] == 0 {
			t.Fatalf("window %s missing from %v", k, got)
		}
	}
}

// TestBackpressureBoundsMemory runs an unbounded generator into a sink
// that only writes when the test lets it: the records the source produced
// but the sink has not taken stay below the queues' capacity.
func TestBackpressureBoundsMemory(t *testing.T) {
	const batch, credits = 64, 2
	env := stream.New(stream.WithParallelism(1), stream.WithBatchSize(batch), stream.WithQueueCapacity(credits))
	src := stream.FromSource(env, "fast", stream.Generate(-1, 1, func(i int64) int64 { return i }), stream.WatermarkStrategy[int64]{})
	doubled := stream.Map(src, func(v int64) int64 { return 2 * v }, stream.Name("double"))
	tokens := make(chan struct{})
	var written atomic.Int64
	stream.To(stream.Rebalance(doubled), stream.SinkFunc[int64](func(ctx context.Context, recs []int64) error {
		select {
		case <-tokens:
		case <-ctx.Done():
			return ctx.Err()
		}
		written.Add(int64(len(recs)))
		return nil
	}), stream.Name("slow"), stream.Parallelism(1))
	job, err := env.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sourceState := func() (string, int64) {
		for _, m := range job.Metrics() {
			if m.Operator == "fast" {
				return m.Status, m.RecordsOut
			}
		}
		return "", 0
	}
	// In flight at most: the exchange's batches (credits), the one the
	// sink holds, and the source's own batch being pushed.
	bound := int64((credits + 2) * batch)
	for round := range 5 {
		waitFor(t, "source to be backpressured", func() bool { s, _ := sourceState(); return s == "backpressured" })
		_, produced := sourceState()
		if inFlight := produced - written.Load(); inFlight > bound {
			t.Fatalf("round %d: %d records in flight, bound %d", round, inFlight, bound)
		}
		for range 3 {
			tokens <- struct{}{}
		}
	}
	job.Cancel()
	if err := job.Wait(); !errors.Is(err, context.Canceled) {
		t.Fatalf("job ended with %v", err)
	}
}

func TestUserPanicFailsJobWithOperatorName(t *testing.T) {
	for _, p := range []int{1, 3} {
		env := stream.New(stream.WithParallelism(p))
		src := stream.FromSource(env, "nums", stream.Generate(-1, p, func(i int64) int64 { return i }), stream.WatermarkStrategy[int64]{})
		m := stream.Map(src, func(v int64) int64 {
			if v == 5000 {
				panic("bad record")
			}
			return v
		}, stream.Name("explode"))
		stream.Collect(stream.Rebalance(m))
		err := env.Execute(context.Background())
		var oe *stream.OperatorError
		if !errors.As(err, &oe) || oe.Operator != "explode" || !errors.Is(err, stream.ErrUserPanic) {
			t.Fatalf("p=%d: got %v", p, err)
		}
		if !strings.Contains(err.Error(), "bad record") || !strings.Contains(err.Error(), "record") {
			t.Fatalf("p=%d: message %q", p, err)
		}
	}
}

func TestSinkErrorFailsJob(t *testing.T) {
	env := stream.New(stream.WithParallelism(2))
	src := stream.FromSource(env, "nums", stream.Generate(10_000, 2, func(i int64) int64 { return i }), stream.WatermarkStrategy[int64]{})
	boom := errors.New("disk full")
	stream.To(src, stream.SinkFunc[int64](func(context.Context, []int64) error { return boom }), stream.Name("out"))
	err := env.Execute(context.Background())
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), `"out"`) {
		t.Fatalf("got %v", err)
	}
}

func TestExecuteTwiceAndBuildErrors(t *testing.T) {
	env := stream.New()
	stream.Collect(stream.FromSource(env, "x", stream.FromSlice([]int{1}, 1), stream.WatermarkStrategy[int]{}))
	if err := env.Execute(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := env.Execute(context.Background()); !errors.Is(err, stream.ErrAlreadyStarted) {
		t.Fatalf("second Execute: %v", err)
	}
	if err := stream.New(stream.WithParallelism(0)).Execute(context.Background()); err == nil {
		t.Fatal("parallelism 0 accepted")
	}
	env = stream.New()
	s := stream.FromSource(env, "x", stream.FromSlice([]int{1}, 1), stream.WatermarkStrategy[int]{})
	stream.Collect(stream.SideOutput(s, stream.NewOutputTag[int]("nope")))
	if err := env.Execute(context.Background()); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("missing side output: %v", err)
	}
}

// TestPanicInGatedOperatorDoesNotHang: a window aggregator panics in a
// subtask fed through a hash exchange by unbounded sources; the job must
// fail with the operator's name instead of blocking its upstream forever.
func TestPanicInGatedOperatorDoesNotHang(t *testing.T) {
	env := stream.New(stream.WithParallelism(2), stream.WithBatchSize(8), stream.WithQueueCapacity(1))
	src := stream.FromSource(env, "events", stream.Generate(-1, 2, func(i int64) event { return event{Key: int(i % 3), TS: i} }),
		stream.BoundedOutOfOrderness(func(e event) int64 { return e.TS }, 0))
	agg := stream.Aggregator[event, int64, int64]{
		Init: func() int64 { return 0 },
		Add: func(a int64, e event) int64 {
			if e.TS == 20_000 {
				panic(fmt.Sprintf("cannot add %d", e.TS))
			}
			return a + 1
		},
		Merge:  func(a, b int64) int64 { return a + b },
		Result: func(a int64) int64 { return a },
	}
	stream.Collect(stream.Aggregate(stream.Window(stream.KeyBy(src, func(e event) int { return e.Key }), window.Tumbling(time.Second)), agg, stream.Name("fragile")))
	err := env.Execute(context.Background())
	var oe *stream.OperatorError
	if !errors.As(err, &oe) || oe.Operator != "fragile" || !strings.Contains(err.Error(), "cannot add 20000") {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(oe.Position, "1970-01-01T00:00:20Z") {
		t.Fatalf("position %q does not give the record's event time", oe.Position)
	}
}

func TestPanicInChainedSinkNamesTheSink(t *testing.T) {
	env := stream.New(stream.WithParallelism(1))
	src := stream.FromSource(env, "nums", stream.FromSlice([]int{1, 2, 3}, 1), stream.WatermarkStrategy[int]{})
	stream.To(src, stream.SinkFunc[int](func(context.Context, []int) error { panic("sink bug") }), stream.Name("mysink"))
	err := env.Execute(context.Background())
	var oe *stream.OperatorError
	if !errors.As(err, &oe) || oe.Operator != "mysink" || !errors.Is(err, stream.ErrUserPanic) {
		t.Fatalf("got %v", err)
	}
}
