package pipeline

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func TestSmokeFileToStdout(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	os.WriteFile(in, []byte(`{"ts":1000,"user_id":"a","status":"paid","price":2.5,"qty":2,"x":{"y":1}}
{"ts":2000,"user_id":"b","status":"new","price":1,"qty":1}
{"ts":61000,"user_id":"a","status":"paid","price":1,"qty":3}
not json
`), 0o644)
	spec := `
name: t
source:
  file: {path: ` + in + `}
  event_time: {field: ts}
steps:
  - filter: status == "paid"
  - map: {user: user_id, amount: price * qty}
  - window:
      key: [user]
      tumbling: 1m
      aggregate: {orders: count(), revenue: sum(amount)}
sink:
  stdout: {}
errors: {tolerance: all}
parallelism: 2
`
	s, err := Parse("t.yaml", []byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	j, err := p.Start(context.Background(), &Host{Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSpace(out.String()), "\n")
	sort.Strings(got)
	want := []string{
		`{"user":"a","window_start":0,"window_end":60000,"orders":1,"revenue":5.0}`,
		`{"user":"a","window_start":60000,"window_end":120000,"orders":1,"revenue":3}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("output\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := j.DeadLetters(); n != 1 {
		t.Errorf("%d failed records; want 1 (the line that is not JSON)", n)
	}
}
