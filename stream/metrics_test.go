package stream_test

import (
	"context"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/sluicehq/sluice/stream"
	"github.com/sluicehq/sluice/window"
)

func TestSideOutputAndMetrics(t *testing.T) {
	env := stream.New(stream.WithParallelism(2), stream.WithBatchSize(16))
	in := []string{"1", "x", "2", "3", "y"}
	for i := range 200 {
		in = append(in, strconv.Itoa(i))
	}
	src := stream.FromSource(env, "lines", stream.FromSlice(in, 2), stream.WatermarkStrategy[string]{})
	bad := stream.NewOutputTag[string]("malformed")
	nums := stream.FlatMapSide(src, bad, func(s string, out *stream.Emitter[int], side *stream.Emitter[string]) {
		n, err := strconv.Atoi(s)
		if err != nil {
			side.Emit(s)
			return
		}
		out.Emit(n)
	}, stream.Name("parse"))
	good := stream.Collect(stream.Rebalance(nums), stream.Name("good"), stream.Parallelism(1))
	malformed := stream.Collect(stream.SideOutput(nums, bad), stream.Name("bad"))
	job, err := env.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := job.Wait(); err != nil {
		t.Fatal(err)
	}
	if good.Len() != 203 || malformed.Len() != 2 {
		t.Fatalf("good %d malformed %d", good.Len(), malformed.Len())
	}
	sum := map[string][2]int64{}
	for _, m := range job.Metrics() {
		s := sum[m.Operator]
		s[0] += m.RecordsIn
		s[1] += m.RecordsOut
		sum[m.Operator] = s
		if m.Status != "finished" {
			t.Errorf("%s/%d status %s after the job ended", m.Operator, m.Subtask, m.Status)
		}
		if m.Watermark != math.MaxInt64 {
			t.Errorf("%s/%d watermark %d after the end of input", m.Operator, m.Subtask, m.Watermark)
		}
	}
	want := map[string][2]int64{"lines": {205, 205}, "parse": {205, 205}, "good": {203, 0}, "bad": {2, 0}}
	for op, w := range want {
		if sum[op] != w {
			t.Errorf("%s: in/out %v, want %v", op, sum[op], w)
		}
	}
}

// TestChaining checks the planner's decisions through the task each
// operator subtask runs in: operators connected one-to-one with the same
// parallelism share their input's goroutine; exchanges start new ones.
func TestChaining(t *testing.T) {
	env := stream.New(stream.WithParallelism(2))
	src := stream.FromSource(env, "src", stream.FromSlice([]int{1, 2, 3, 4}, 2), stream.WatermarkStrategy[int]{})
	m := stream.Map(src, func(v int) int { return v }, stream.Name("m"))
	f := stream.Filter(m, func(int) bool { return true }, stream.Name("f"))
	stream.Collect(f, stream.Name("direct"))
	stream.Collect(stream.Rebalance(f), stream.Name("rebalanced"))
	stream.Collect(f, stream.Name("narrow"), stream.Parallelism(1))
	ks := stream.KeyBy(f, func(v int) int { return v })
	red := stream.Reduce(stream.Window(ks, window.Tumbling(time.Second)), func(a, b int) int { return a + b }, stream.Name("w"))
	stream.Collect(red, stream.Name("after-window"))
	job, err := env.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := job.Wait(); err != nil {
		t.Fatal(err)
	}
	task := map[string]string{}
	par := map[string]int{}
	for _, m := range job.Metrics() {
		task[m.Operator] = m.Task
		par[m.Operator] = m.Parallelism
	}
	want := map[string]string{"src": "src", "m": "src", "f": "src", "direct": "src", "rebalanced": "rebalanced",
		"narrow": "narrow", "w": "w", "after-window": "w"}
	for op, tk := range want {
		if task[op] != tk {
			t.Errorf("%s runs in task %q, want %q", op, task[op], tk)
		}
	}
	if par["narrow"] != 1 || par["after-window"] != 2 || par["src"] != 2 {
		t.Errorf("parallelism %v", par)
	}
}
