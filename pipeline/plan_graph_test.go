package pipeline

import (
	"fmt"
	"strings"
	"testing"
)

// TestJobPlanTwoSinks: a YAML pipeline into two sinks reports the stream
// plan it runs, with one source, two sinks fed by the same operator (a
// fan-out), and every operator reachable from the source.
func TestJobPlanTwoSinks(t *testing.T) {
	files := map[string]string{"in/0.jsonl": `{"n":1}` + "\n" + `{"n":3}` + "\n"}
	_, j, err := runSpec(t, `
source: {file: {path: $DIR/in}}
steps:
  - filter: n % 3 == 0
sinks:
  - stdout: {}
  - file: {path: $DIR/out}
parallelism: 2
`, files)
	if err != nil {
		t.Fatal(err)
	}
	p := j.Plan()
	t.Logf("\n%s", p.Text())
	if !p.Resolved {
		t.Error("plan of a running pipeline not resolved")
	}
	kinds := map[string]int{}
	for _, n := range p.Nodes {
		kinds[n.Kind]++
	}
	if kinds["source"] != 1 || kinds["sink"] != 2 {
		t.Fatalf("operators by kind %v, want one source and two sinks", kinds)
	}
	into := map[int][]int{}
	for _, e := range p.Edges {
		into[e.From] = append(into[e.From], e.To)
	}
	fanOut := false
	for from, tos := range into {
		sinks := 0
		for _, to := range tos {
			if p.Nodes[to].Kind == "sink" {
				sinks++
			}
		}
		if sinks == 2 {
			fanOut = true
			if !strings.Contains(p.Text(), fmt.Sprintf("#%d", from)) {
				t.Error("the fan-out operator is missing from the text")
			}
		}
	}
	if !fanOut {
		t.Errorf("no operator feeds both sinks in %+v", p.Edges)
	}
}
