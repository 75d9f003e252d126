package stream_test

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/stream"
	"github.com/sluicehq/sluice/window"
)

var rewritePlans = flag.Bool("rewrite-plans", false, "rewrite the golden plans in testdata/plan")

type planEvent struct {
	Key int
	TS  int64
}

func planEvents(n int) []planEvent {
	out := make([]planEvent, n)
	for i := range out {
		out[i] = planEvent{Key: i % 5, TS: int64(i)}
	}
	return out
}

var planWM = stream.BoundedOutOfOrderness(func(e planEvent) int64 { return e.TS }, 0)

func planKey(e planEvent) int { return e.Key }

// planCases build small jobs; each returns its Env. The sources' splits
// differ from the default parallelism where that shows what resolving
// them changes.
var planCases = map[string]func() *stream.Env{
	// source -> map -> filter -> sink: one chain.
	"chain": func() *stream.Env {
		env := stream.New(stream.WithParallelism(2))
		s := stream.FromSource(env, "src", stream.FromSlice(planEvents(20), 2), planWM)
		m := stream.Map(s, func(e planEvent) planEvent { return e }, stream.Name("m"))
		f := stream.Filter(m, func(planEvent) bool { return true }, stream.Name("f"))
		stream.Collect(f, stream.Name("out"))
		return env
	},
	// A keyed window at parallelism 1 behind a source of one split: the
	// hash exchange becomes forward and the window runs in the source's
	// goroutine with the sink.
	"window-fused": func() *stream.Env {
		env := stream.New(stream.WithParallelism(1))
		s := stream.FromSource(env, "src", stream.FromSlice(planEvents(20), 1), planWM)
		w := stream.Aggregate(stream.Window(stream.KeyBy(s, planKey), window.Tumbling(5*time.Millisecond)), stream.Count[planEvent](), stream.Name("count"))
		stream.Collect(w, stream.Name("out"))
		return env
	},
	// The same at parallelism 2 over 3 splits: a hash exchange, and a
	// sink at the window's parallelism chained to it.
	"window-hash": func() *stream.Env {
		env := stream.New(stream.WithParallelism(2))
		s := stream.FromSource(env, "src", stream.FromSlice(planEvents(30), 3), planWM)
		w := stream.Aggregate(stream.Window(stream.KeyBy(s, planKey), window.Tumbling(5*time.Millisecond)), stream.Count[planEvent](), stream.Name("count"))
		stream.Collect(w, stream.Name("out"), stream.Parallelism(1))
		return env
	},
	// Two sources joined in windows: fan-in at the union of the sides.
	"join": func() *stream.Env {
		env := stream.New(stream.WithParallelism(2))
		a := stream.FromSource(env, "left", stream.FromSlice(planEvents(20), 2), planWM)
		b := stream.FromSource(env, "right", stream.FromSlice(planEvents(20), 1), planWM)
		j := stream.WindowJoin(stream.KeyBy(a, planKey), stream.KeyBy(b, planKey), window.Tumbling(5*time.Millisecond),
			func(l, r planEvent) int { return l.Key }, stream.Name("j"))
		stream.Collect(j, stream.Name("out"))
		return env
	},
	// Union of two sources and a rebalance, a broadcast into a
	// two-input operator.
	"union-connect": func() *stream.Env {
		env := stream.New(stream.WithParallelism(2))
		a := stream.FromSource(env, "a", stream.FromSlice(planEvents(20), 2), planWM)
		b := stream.FromSource(env, "b", stream.FromSlice(planEvents(20), 2), planWM)
		u := stream.Union(a, b)
		c := stream.FromSource(env, "rules", stream.FromSlice([]int{1, 2}, 1), stream.WatermarkStrategy[int]{})
		co := stream.CoMap(stream.Connect(stream.Rebalance(u), stream.Broadcast(c)),
			func(e planEvent) int { return e.Key }, func(v int) int { return v }, stream.Name("co"))
		stream.Collect(co, stream.Name("out"))
		return env
	},
	// One stream into two sinks (fan-out), one of them behind a
	// filter on its own goroutine.
	"two-sinks": func() *stream.Env {
		env := stream.New(stream.WithParallelism(2))
		s := stream.FromSource(env, "src", stream.FromSlice(planEvents(20), 2), planWM)
		m := stream.Map(s, func(e planEvent) planEvent { return e }, stream.Name("m"))
		stream.Collect(m, stream.Name("all"))
		stream.Collect(stream.Filter(stream.Rebalance(m), func(planEvent) bool { return true }, stream.Name("some"), stream.Parallelism(1)), stream.Name("few"))
		return env
	},
	// A window's late records to a side output and a sink of their own.
	"side-output": func() *stream.Env {
		env := stream.New(stream.WithParallelism(1))
		late := stream.NewOutputTag[planEvent]("late")
		s := stream.FromSource(env, "src", stream.FromSlice(planEvents(20), 1), planWM)
		w := stream.Aggregate(stream.Window(stream.KeyBy(s, planKey), window.Tumbling(5*time.Millisecond)).SideOutputLate(late), stream.Count[planEvent](), stream.Name("count"))
		stream.Collect(w, stream.Name("out"))
		stream.Collect(stream.SideOutput(w, late), stream.Name("late-out"))
		return env
	},
}

// TestPlanGolden compares the plans of small jobs, before start and as
// run, with testdata/plan: text, and JSON that decodes to the same plan.
func TestPlanGolden(t *testing.T) {
	for name, build := range planCases {
		t.Run(name, func(t *testing.T) {
			env := build()
			before := env.Plan()
			if before.Resolved {
				t.Error("plan before start says resolved")
			}
			j, err := env.Start(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if err := j.Wait(); err != nil {
				t.Fatal(err)
			}
			run := j.Plan()
			if !run.Resolved {
				t.Error("job's plan not resolved")
			}
			checkPlanMetrics(t, run, j.Metrics())
			js, err := json.MarshalIndent(run, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			var back stream.Plan
			if err := json.Unmarshal(js, &back); err != nil {
				t.Fatal(err)
			}
			if back.Text() != run.Text() {
				t.Error("plan changed through JSON")
			}
			got := "-- before start\n" + before.Text() + "-- as run\n" + run.Text() + "-- dot\n" + run.Dot() + "-- json\n" + string(js) + "\n"
			golden(t, filepath.Join("testdata", "plan", name+".txt"), got)
		})
	}
}

// checkPlanMetrics checks the plan against what the job measured: every
// operator's subtasks and the task they ran in.
func checkPlanMetrics(t *testing.T, p stream.Plan, ms []stream.SubtaskMetrics) {
	t.Helper()
	subs := map[string]int{}
	for _, m := range ms {
		subs[m.Operator]++
		for _, n := range p.Nodes {
			if n.Name == m.Operator && (n.Task != m.Task || n.Parallelism != m.Parallelism) {
				t.Errorf("operator %s: plan says task %s parallelism %d, metrics task %s parallelism %d", n.Name, n.Task, n.Parallelism, m.Task, m.Parallelism)
			}
		}
	}
	for _, n := range p.Nodes {
		if subs[n.Name] != n.Parallelism {
			t.Errorf("operator %s: %d subtasks measured, plan says %d", n.Name, subs[n.Name], n.Parallelism)
		}
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *rewritePlans {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestPlanGolden -rewrite-plans to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs (go test -rewrite-plans rewrites it); got:\n%s\nwant:\n%s", path, got, want)
	}
}

// TestPlanDeterministic builds each job twice and expects the same plan.
func TestPlanDeterministic(t *testing.T) {
	for name, build := range planCases {
		a, b := build().Plan(), build().Plan()
		if a.Text() != b.Text() || !strings.EqualFold(a.Dot(), b.Dot()) {
			t.Errorf("%s: plans of the same job differ", name)
		}
	}
}
