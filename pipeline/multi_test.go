package pipeline

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/stream"
)

// TestParallelMultipleSinks reads a directory of files at parallelism 3
// into two sinks: both receive exactly the records a sequential filter
// would keep, and the file sink leaves only committed part files.
func TestParallelMultipleSinks(t *testing.T) {
	files := map[string]string{}
	var want []string
	for f := range 5 {
		var b strings.Builder
		for i := range 200 {
			n := f*1000 + i
			fmt.Fprintf(&b, `{"n":%d,"k":"x%d","pad":[%d]}`+"\n", n, n%7, n)
			if n%3 == 0 {
				want = append(want, fmt.Sprint(n))
			}
		}
		files[fmt.Sprintf("in/%d.jsonl", f)] = b.String()
	}
	rows, j, err := runSpec(t, `
source: {file: {path: $DIR/in}}
steps:
  - filter: n % 3 == 0
  - set: {k2: k + "!"}
sinks:
  - stdout: {}
  - file: {path: $DIR/out, roll_bytes: 4096}
parallelism: 3
`, files)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(want)
	var got []string
	for _, r := range rows {
		got = append(got, fmt.Sprint(r["n"]))
		if r["k2"] != fmt.Sprint(r["k"])+"!" || r["pad"] == nil {
			t.Fatalf("row %v", r)
		}
	}
	sort.Strings(got)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("stdout: %d records, want %d", len(got), len(want))
	}
	out := filepath.Join(filepath.Dir(j.plan.Spec.Sinks[1].cfg.(*fileSinkConfig).cfg.Path), "out")
	ents, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	var fromFiles []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") || !strings.HasSuffix(e.Name(), ".jsonl") {
			t.Fatalf("uncommitted or stray file %s", e.Name())
		}
		f, _ := os.Open(filepath.Join(out, e.Name()))
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("%s: %q: %v", e.Name(), sc.Text(), err)
			}
			fromFiles = append(fromFiles, fmt.Sprint(m["n"]))
		}
		f.Close()
	}
	sort.Strings(fromFiles)
	if strings.Join(fromFiles, ",") != strings.Join(want, ",") {
		t.Fatalf("file sink: %d records, want %d", len(fromFiles), len(want))
	}
	if len(ents) < 2 {
		t.Fatalf("expected rolled parts, got %d files", len(ents))
	}
}

// TestAllowedLateness: a record within the allowed lateness updates its
// window, which is emitted again; a later one is dropped and counted.
// ts 2000 arrives at watermark 11999 (window [0,10s) fired, cleanup at
// 14999): it updates the window; ts 3000 arrives at watermark 29999: late.
func TestAllowedLateness(t *testing.T) {
	rows, j, err := runSpec(t, `
source:
  file: {path: $DIR/in.jsonl}
  event_time: {field: ts}
steps:
  - window:
      key: [k]
      tumbling: 10s
      allowed_lateness: 5s
      aggregate: {n: count()}
sink: {stdout: {}}
parallelism: 1
`, map[string]string{"in.jsonl": `{"ts":1000,"k":"a"}
{"ts":12000,"k":"a"}
{"ts":2000,"k":"a"}
{"ts":30000,"k":"a"}
{"ts":3000,"k":"a"}
`}, WithStreamOptions(stream.WithBatchSize(1))) // a watermark after every record
	if err != nil {
		t.Fatal(err)
	}
	got := canon(rows)
	want := []string{
		`{"k":"a","n":1,"window_end":10000,"window_start":0}`,
		`{"k":"a","n":1,"window_end":20000,"window_start":10000}`,
		`{"k":"a","n":1,"window_end":40000,"window_start":30000}`,
		`{"k":"a","n":2,"window_end":10000,"window_start":0}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if s := j.Summary(); s.LateDrops != 1 {
		t.Fatalf("late drops %d, want 1", s.LateDrops)
	}
}
