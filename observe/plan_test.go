package observe

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/sluicehq/sluice/stream"
)

// TestGraphFromPlan registers a real job with a fan-out (one map into
// two sinks, one behind a rebalance): the Observer reports the job's
// plan and the graph made of it, not an inferred line.
func TestGraphFromPlan(t *testing.T) {
	env := stream.New(stream.WithParallelism(2))
	s := stream.FromSource(env, "src", stream.FromSlice([]int{1, 2, 3, 4}, 2), stream.WatermarkStrategy[int]{})
	m := stream.Map(s, func(v int) int { return v }, stream.Name("m"))
	stream.Collect(m, stream.Name("all"))
	stream.Collect(stream.Rebalance(m), stream.Name("few"), stream.Parallelism(1))
	j, err := env.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}
	o := New(Options{})
	if _, err := o.Register("fan", j); err != nil {
		t.Fatal(err)
	}
	js, err := o.Sample().Job("fan")
	if err != nil {
		t.Fatal(err)
	}
	g := js.Graph
	if g.Inferred {
		t.Fatal("graph inferred although the job has a plan")
	}
	want := []Edge{
		{From: "src", To: "m", Exchange: "chained"},
		{From: "m", To: "all", Exchange: "chained"},
		{From: "m", To: "few", Exchange: "rebalance"},
	}
	if len(g.Edges) != len(want) {
		t.Fatalf("edges %+v, want %+v", g.Edges, want)
	}
	for i := range want {
		if g.Edges[i] != want[i] {
			t.Errorf("edge %d = %+v, want %+v", i, g.Edges[i], want[i])
		}
	}
	if len(g.Vertices) != 4 || g.Vertices[3] != (GraphVertex{ID: "few", Kind: "sink", Parallelism: 1, Task: "few"}) {
		t.Errorf("vertices %+v", g.Vertices)
	}
	// Two sinks: the job's output is what both received.
	if js.RecordsOut != 8 || js.RecordsIn != 4 {
		t.Errorf("records in %d out %d, want 4 and 8 (two sinks)", js.RecordsIn, js.RecordsOut)
	}
	b, err := json.Marshal(js)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Plan *stream.Plan `json:"plan"`
	}
	if err := json.Unmarshal(b, &back); err != nil || back.Plan == nil || len(back.Plan.Nodes) != 4 || len(back.Plan.Edges) != 3 {
		t.Fatalf("plan in JSON %+v (%v)", back.Plan, err)
	}
}
