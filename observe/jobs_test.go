package observe

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/stream"
)

const ms = time.Millisecond

// The job: source "src" (2 subtasks) chained into "map", then a sink "out"
// in its own task. Metrics list sinks first, as the runtime does.
func TestJobRatesLevelsAndInferredGraph(t *testing.T) {
	clk := &clock{t: t0}
	o := New(Options{Now: clk.Now})
	wm := t0.Add(-3 * time.Second).UnixMilli()
	j := newFakeJob(
		sm("out", 0, 1, "out", 0, 0, 0, 0, 0, noWM),
		sm("map", 0, 2, "src", 0, 0, 0, 0, 0, noWM),
		sm("map", 1, 2, "src", 0, 0, 0, 0, 0, noWM),
		sm("src", 0, 2, "src", 0, 0, 0, 0, 0, noWM),
		sm("src", 1, 2, "src", 0, 0, 0, 0, 0, noWM),
	)
	if _, err := o.Register("etl", j); err != nil {
		t.Fatal(err)
	}
	first := o.Sample()
	js, err := first.Job("etl")
	if err != nil {
		t.Fatal(err)
	}
	if js.Status != JobRunning || js.WatermarkMs != nil || js.RecordsInPerSec != 0 {
		t.Fatalf("first sample: %+v", js)
	}
	clk.Advance(2 * time.Second)
	// Over 2 s: each source subtask read 1000, map passed 1000 in / 500
	// out each, the sink got 1000. The source task was backpressured
	// 1.5 s of 2 (subtask 0) and 0.2 s (subtask 1); the sink idle 1 s.
	j.set(
		sm("out", 0, 1, "out", 1000, 0, 1000*ms, 1000*ms, 0, wm),
		sm("map", 0, 2, "src", 1000, 500, 500*ms, 0, 1500*ms, wm+10),
		sm("map", 1, 2, "src", 1000, 500, 1800*ms, 0, 200*ms, wm+20),
		sm("src", 0, 2, "src", 1000, 1000, 500*ms, 0, 1500*ms, wm+10),
		sm("src", 1, 2, "src", 1000, 1000, 1800*ms, 0, 200*ms, wm+20),
	)
	js, err = o.Sample().Job("etl")
	if err != nil {
		t.Fatal(err)
	}
	order := []string{}
	for _, v := range js.Vertices {
		order = append(order, v.ID)
	}
	if len(order) != 3 || order[0] != "src" || order[1] != "map" || order[2] != "out" {
		t.Fatalf("vertex order %v, want source to sink", order)
	}
	src, mp, out := js.Vertices[0], js.Vertices[1], js.Vertices[2]
	checks := []struct {
		name      string
		got, want float64
	}{
		{"src out/s", src.OutPerSec, 1000},
		{"map in/s", mp.InPerSec, 1000},
		{"map out/s", mp.OutPerSec, 500},
		{"out in/s", out.InPerSec, 500},
		{"src bp ms/s (mean of 750 and 100)", src.BackpressMsPS, 425},
		{"out idle ms/s", out.IdleMsPerSec, 500},
		{"job in/s", js.RecordsInPerSec, 1000},
		{"job out/s", js.RecordsOutPerSec, 500},
		{"job wm lag ms (3 s behind t0, sampled 2 s later)", *js.WatermarkLag, 5000},
	}
	for _, c := range checks {
		if math.Abs(c.got-c.want) > 1e-9 {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if src.Backpressure != BackpressureLow || out.Backpressure != BackpressureOK || js.Backpressure != BackpressureLow {
		t.Errorf("levels src=%s out=%s job=%s, want low ok low", src.Backpressure, out.Backpressure, js.Backpressure)
	}
	if *src.WatermarkMs != wm+10 {
		t.Errorf("src watermark %d, want the subtasks' minimum %d", *src.WatermarkMs, wm+10)
	}
	g := js.Graph
	if !g.Inferred || len(g.Edges) != 2 || g.Edges[0] != (Edge{From: "src", To: "map", Exchange: "chained"}) || g.Edges[1] != (Edge{From: "map", To: "out", Exchange: "unknown"}) {
		t.Fatalf("inferred graph %+v", g)
	}
	h, err := o.History("etl")
	if err != nil || len(h) != 1 || h[0].RecordsInPerSec != 1000 || *h[0].WatermarkLagMs != 5000 {
		t.Fatalf("history %+v %v", h, err)
	}
}

func TestExplicitGraphDecidesSourcesAndSinks(t *testing.T) {
	clk := &clock{t: t0}
	o := New(Options{Now: clk.Now})
	// Two sources feeding a join that feeds a sink.
	j := newFakeJob(
		sm("sink", 0, 1, "sink", 0, 0, 0, 0, 0, noWM),
		sm("join", 0, 1, "join", 0, 0, 0, 0, 0, noWM),
		sm("b", 0, 1, "b", 0, 0, 0, 0, 0, noWM),
		sm("a", 0, 1, "a", 0, 0, 0, 0, 0, noWM),
	)
	g := Graph{Vertices: []GraphVertex{{ID: "a"}, {ID: "b"}, {ID: "join"}, {ID: "sink"}},
		Edges: []Edge{{From: "a", To: "join", Exchange: "hash"}, {From: "b", To: "join", Exchange: "hash"}, {From: "join", To: "sink", Exchange: "forward"}}}
	if _, err := o.Register("j", j, WithGraph(g)); err != nil {
		t.Fatal(err)
	}
	o.Sample()
	clk.Advance(time.Second)
	j.set(
		sm("sink", 0, 1, "sink", 7, 0, 0, 0, 0, noWM),
		sm("join", 0, 1, "join", 30, 7, 0, 0, 0, noWM),
		sm("b", 0, 1, "b", 20, 20, 0, 0, 0, noWM),
		sm("a", 0, 1, "a", 10, 10, 0, 0, 0, noWM),
	)
	js, _ := o.Sample().Job("j")
	if js.RecordsInPerSec != 30 || js.RecordsOutPerSec != 7 || js.Graph.Inferred {
		t.Fatalf("in %v out %v inferred %v; want 30, 7, false", js.RecordsInPerSec, js.RecordsOutPerSec, js.Graph.Inferred)
	}
	if js.WatermarkMs != nil || js.Final {
		t.Fatalf("no watermark yet, got %+v", js.Watermark)
	}
}

func TestJobEndStatus(t *testing.T) {
	cases := []struct {
		err    error
		status string
	}{
		{nil, JobFinished},
		{context.Canceled, JobCancelled},
		{errors.New("sink: disk full"), JobFailed},
	}
	for _, c := range cases {
		t.Run(c.status, func(t *testing.T) {
			clk := &clock{t: t0}
			o := New(Options{Now: clk.Now})
			j := newFakeJob(sm("s", 0, 1, "s", 0, 0, 0, 0, 0, noWM))
			if _, err := o.Register("x", j); err != nil {
				t.Fatal(err)
			}
			o.Sample()
			clk.Advance(time.Second)
			j.set(sm("s", 0, 1, "s", 100, 100, time.Second, 0, 0, math.MaxInt64))
			j.end(c.err)
			js, _ := o.Sample().Job("x")
			if js.Status != c.status || js.RecordsInPerSec != 0 || js.RecordsIn != 100 || !js.Final {
				t.Fatalf("ended job: %+v", js)
			}
			if c.err != nil && c.status == JobFailed && js.Error != c.err.Error() {
				t.Fatalf("error %q", js.Error)
			}
			clk.Advance(time.Second)
			if again, _ := o.Sample().Job("x"); again.Status != c.status {
				t.Fatalf("status changed after the end: %s", again.Status)
			}
		})
	}
}

func TestRegister(t *testing.T) {
	o := New(Options{})
	j := newFakeJob()
	for _, bad := range []string{"", "a b", "x/y", "ü"} {
		if _, err := o.Register(bad, j); !errors.Is(err, ErrInvalidJobID) {
			t.Errorf("id %q: err %v, want ErrInvalidJobID", bad, err)
		}
	}
	un, err := o.Register("a.b-c_1", j)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Register("a.b-c_1", j); !errors.Is(err, ErrDuplicateJob) {
		t.Fatalf("duplicate: %v", err)
	}
	un()
	un() // idempotent
	if _, err := o.Sample().Job("a.b-c_1"); !errors.Is(err, ErrUnknownJob) {
		t.Fatalf("after unregister: %v", err)
	}
	if _, err := o.History("a.b-c_1"); !errors.Is(err, ErrUnknownJob) {
		t.Fatalf("history after unregister: %v", err)
	}
}

func TestBackpressureLevel(t *testing.T) {
	for _, c := range []struct {
		f    float64
		want string
	}{{0, "ok"}, {0.1, "ok"}, {0.1001, "low"}, {0.5, "low"}, {0.51, "high"}, {1, "high"}} {
		if got := BackpressureLevel(c.f); got != c.want {
			t.Errorf("BackpressureLevel(%v) = %s, want %s", c.f, got, c.want)
		}
	}
}

// Property: whatever the counters do (grow, stall, restart at zero), rates
// are never negative and time figures stay within [0, 1000] ms per second.
func TestRatesStayInRange(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	clk := &clock{t: t0}
	o := New(Options{Now: clk.Now})
	j := newFakeJob()
	if _, err := o.Register("p", j); err != nil {
		t.Fatal(err)
	}
	var in, busy, bp int64
	for range 500 {
		switch r.IntN(5) {
		case 0:
			in, busy, bp = 0, 0, 0 // a restart
		default:
			in += r.Int64N(1e6)
			busy += r.Int64N(int64(3 * time.Second))
			bp += r.Int64N(int64(3 * time.Second))
		}
		j.set(sm("op", 0, 1, "op", in, in, time.Duration(busy), 0, time.Duration(bp), noWM))
		clk.Advance(time.Duration(r.Int64N(int64(2*time.Second))) + time.Millisecond)
		js, _ := o.Sample().Job("p")
		v := js.Vertices[0]
		if v.InPerSec < 0 || v.BusyMsPerSec < 0 || v.BusyMsPerSec > 1000 || v.BackpressMsPS < 0 || v.BackpressMsPS > 1000 {
			t.Fatalf("out of range: %+v", v)
		}
	}
	if h, _ := o.History("p"); len(h) == 0 {
		t.Fatal("no history")
	}
}

func TestHistoryIsBounded(t *testing.T) {
	clk := &clock{t: t0}
	o := New(Options{Now: clk.Now, History: time.Minute})
	j := newFakeJob(sm("op", 0, 1, "op", 0, 0, 0, 0, 0, noWM))
	if _, err := o.Register("h", j); err != nil {
		t.Fatal(err)
	}
	for range 300 {
		o.Sample()
		clk.Advance(time.Second)
	}
	h, _ := o.History("h")
	if len(h) < 59 || len(h) > 61 {
		t.Fatalf("history of %d points for a minute at 1/s", len(h))
	}
}

func TestJobID(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"wordcount", "wordcount"},
		{"click stream/v2", "click-stream-v2"},
		{"ünï", "-n-"},
		{"", "job"},
		{"   ", "job"},
		{strings.Repeat("a", 200), strings.Repeat("a", 128)},
	} {
		got := JobID(c.in)
		if got != c.want {
			t.Errorf("JobID(%q) = %q, want %q", c.in, got, c.want)
		}
		if _, err := New(Options{}).Register(got, newFakeJob()); err != nil {
			t.Errorf("JobID(%q) = %q is not accepted: %v", c.in, got, err)
		}
	}
}

type deadLetterJob struct{ *fakeJob }

func (deadLetterJob) DeadLetters() int64 { return 42 }

func TestDeadLetters(t *testing.T) {
	o := New(Options{})
	if _, err := o.Register("d", deadLetterJob{newFakeJob(sm("op", 0, 1, "op", 0, 0, 0, 0, 0, noWM))}); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Register("plain", newFakeJob()); err != nil {
		t.Fatal(err)
	}
	snap := o.Sample()
	d, _ := snap.Job("d")
	p, _ := snap.Job("plain")
	if d.DeadLettered == nil || *d.DeadLettered != 42 || p.DeadLettered != nil {
		t.Fatalf("dead letters: %v %v", d.DeadLettered, p.DeadLettered)
	}
}

type countingJob struct {
	*fakeJob
	cs stream.CheckpointStats
}

func (c *countingJob) CheckpointStats() stream.CheckpointStats { return c.cs }

func TestCheckpointHistoryFromCounters(t *testing.T) {
	clk := &clock{t: t0}
	o := New(Options{Now: clk.Now})
	j := &countingJob{fakeJob: newFakeJob(sm("op", 0, 1, "op", 0, 0, 0, 0, 0, noWM))}
	if _, err := o.Register("c", j); err != nil {
		t.Fatal(err)
	}
	if js, _ := o.Sample().Job("c"); js.CheckpointsAvailable {
		t.Fatal("zero counters (checkpointing off or none yet) reported as available")
	}
	steps := []struct {
		cs       stream.CheckpointStats
		wantHist []string // status:id
	}{
		{stream.CheckpointStats{Completed: 1, LastID: 1, LastDuration: 30 * ms}, []string{"completed:1"}},
		{stream.CheckpointStats{Completed: 1, LastID: 1, LastDuration: 30 * ms}, []string{"completed:1"}},
		{stream.CheckpointStats{Completed: 1, Aborted: 2, LastID: 1, LastDuration: 30 * ms}, []string{"completed:1", "failed:0"}},
		{stream.CheckpointStats{Completed: 3, Aborted: 2, LastID: 4, LastDuration: 50 * ms}, []string{"completed:1", "failed:0", "completed:4"}},
	}
	for i, s := range steps {
		j.cs = s.cs
		clk.Advance(time.Second)
		js, _ := o.Sample().Job("c")
		var got []string
		for _, c := range js.Checkpoints {
			got = append(got, c.Status+":"+strconv.FormatUint(c.ID, 10))
		}
		if strings.Join(got, " ") != strings.Join(s.wantHist, " ") {
			t.Fatalf("step %d: history %v, want %v", i, got, s.wantHist)
		}
		if !js.CheckpointsAvailable || js.CheckpointCounts.Completed != s.cs.Completed || js.LastCheckpoint == nil {
			t.Fatalf("step %d: %+v", i, js)
		}
	}
}
