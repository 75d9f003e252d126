package connect

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/sluicehq/sluice/nexmark"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/stream"
)

// A job on the stream runtime: the nexmark table into a JSON file table
// with checkpoints and exactly-once part files, read back: every event
// exactly once.
func TestRuntimeNexmarkToFile(t *testing.T) {
	const events = 5000
	src, _, err := OpenSource(nexmarkTable(Options{"events.num": "5000"}), Env{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	opts := Options{"connector": "filesystem", "path": dir, "format": "json"}
	env := Env{ExactlyOnce: true}
	sink, err := OpenSink(SinkTable{Name: "out", Columns: datagenColumns(), Options: opts}, env)
	if err != nil {
		t.Fatal(err)
	}
	job := stream.New(stream.WithParallelism(2), stream.WithBatchSize(64), stream.WithCheckpointing(t.TempDir(), 5*time.Millisecond))
	rows := stream.FromSource(job, "datagen", src, stream.BoundedOutOfOrderness(func(c exec.Change) int64 {
		for _, i := range []int{7, 14, 24} { // the three dateTime columns
			if !c.Vals[i].IsNull() {
				return c.Vals[i].AsInt()
			}
		}
		return 0
	}, 4*time.Second))
	stream.To(rows, sink)
	if err := job.Execute(context.Background()); err != nil {
		t.Fatal(err)
	}
	back, _, err := OpenSource(SourceTable{Name: "in", Columns: datagenColumns(), Options: opts}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	got := flatten(readAll(t, back, 3))
	if len(got) != events {
		t.Fatalf("%d rows, want %d", len(got), events)
	}
	key := func(c exec.Change) string { return string(AppendJSON(nil, datagenColumns(), c.Vals, JSONOptions{})) }
	gotKeys := make([]string, len(got))
	for i, c := range got {
		gotKeys[i] = key(c)
	}
	g, _ := nexmark.NewGenerator(nexmark.DefaultConfig(), 0, events)
	var want []string
	var e nexmark.Event
	for g.Next(&e) {
		want = append(want, string(nexmark.AppendJSON(nil, &e)))
	}
	sort.Strings(gotKeys)
	sort.Strings(want)
	for i := range want {
		if gotKeys[i] != want[i] {
			t.Fatalf("row %d:\n got %s\nwant %s", i, gotKeys[i], want[i])
		}
	}
}
