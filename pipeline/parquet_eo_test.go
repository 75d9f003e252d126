package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	pq "github.com/parquet-go/parquet-go"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/connector/parquet"
	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/stream"
)

// parquetRows reads every committed .parquet file of dir (failing on a
// staged file left behind) and renders each row as its values.
func parquetRows(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".inprogress") {
			t.Fatalf("staged file left behind: %s", e.Name())
		}
		if !strings.HasSuffix(e.Name(), ".parquet") {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		st, _ := f.Stat()
		pf, err := pq.OpenFile(f, st.Size())
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		r := pq.NewReader(pf)
		rows := make([]pq.Row, 64)
		for {
			n, err := r.ReadRows(rows)
			for _, pr := range rows[:n] {
				out = append(out, fmt.Sprint(pr))
			}
			if err != nil {
				break
			}
		}
		r.Close()
		f.Close()
	}
	sort.Strings(out)
	return out
}

// TestExactlyOnceParquetSink: under exactly_once the parquet sink runs
// two-phase (files appear when their checkpoint completes): the output
// equals a run without checkpoints, and a second run from the final
// checkpoint writes nothing twice.
func TestExactlyOnceParquetSink(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&b, `{"ts":%d,"user":"u%d","amount":%d}`+"\n", 1_000_000+i*37, i%11, i%5)
	}
	if err := os.WriteFile(filepath.Join(dir, "in.jsonl"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := func(out, extra string) string {
		return fmt.Sprintf(`
source:
  file: {path: %s/in.jsonl}
  event_time: {field: ts, max_out_of_orderness: 1s}
steps:
  - window:
      key: [user]
      tumbling: 10s
      aggregate: {n: count(), total: sum(amount)}
sink:
  parquet: {path: %s/%s, max_rows_per_file: 7}
parallelism: 2
%s`, dir, dir, out, extra)
	}
	run := func(src string) *Job {
		t.Helper()
		s, err := Parse("eo.yaml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		p, err := Compile(s)
		if err != nil {
			t.Fatal(err)
		}
		j, err := p.Start(context.Background(), &Host{DataDir: dir}, WithStreamOptions(stream.WithBatchSize(16)))
		if err != nil {
			t.Fatal(err)
		}
		if err := j.Wait(); err != nil {
			t.Fatal(err)
		}
		return j
	}
	run(spec("oracle", ""))
	want := parquetRows(t, filepath.Join(dir, "oracle"))
	eo := spec("eo", "delivery: exactly_once\ncheckpoint: {interval: 1ms, dir: "+dir+"/chk}\n")
	j := run(eo)
	t.Logf("checkpoints: %+v", j.CheckpointStats())
	got := parquetRows(t, filepath.Join(dir, "eo"))
	if len(want) == 0 || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("exactly-once output (%d rows) differs from the oracle (%d rows)", len(got), len(want))
	}
	run(eo)
	if again := parquetRows(t, filepath.Join(dir, "eo")); len(again) != len(got) {
		t.Fatalf("second run from the final checkpoint wrote %d more rows", len(again)-len(got))
	}
}

// TestParquetTwoPhaseWiring: under exactly_once the parquet sink's files
// stay hidden after the checkpoint barrier and appear when the checkpoint
// completes (through the dead-letter wrapper); otherwise the barrier
// publishes them.
func TestParquetTwoPhaseWiring(t *testing.T) {
	sc := row.MustSchema(row.Field{Name: "a", Kind: row.KindInt})
	ctx := context.Background()
	for _, eo := range []bool{false, true} {
		dir := t.TempDir()
		c := &parquetConfig{cfg: parquet.Config{Path: dir}}
		s, err := c.openRows(&buildCtx{exactlyOnce: eo, dl: &deadLetters{}}, sc)
		if err != nil {
			t.Fatal(err)
		}
		w, err := s.Open(ctx, stream.SubtaskInfo{Parallelism: 1})
		if err != nil {
			t.Fatal(err)
		}
		tpc, ok := w.(checkpoint.TwoPhaseCommitter)
		if !ok {
			t.Fatal("the runtime would not see a two-phase committer")
		}
		if err := tpc.Recover(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if err := w.Write(ctx, []row.Row{{Vals: []row.Value{row.Int(1)}}}); err != nil {
			t.Fatal(err)
		}
		if err := w.(stream.BarrierWriter).OnBarrier(ctx, 1); err != nil {
			t.Fatal(err)
		}
		tx, err := tpc.PreCommit(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		visible, _ := filepath.Glob(filepath.Join(dir, "*.parquet"))
		if (len(visible) == 0) != eo {
			t.Fatalf("exactly once %v: %d files visible before the checkpoint completed", eo, len(visible))
		}
		if err := tpc.Commit(ctx, tx); err != nil {
			t.Fatal(err)
		}
		if got := parquetRows(t, dir); len(got) != 1 {
			t.Fatalf("exactly once %v: rows %v after commit", eo, got)
		}
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSetReplacingTypedFieldToParquet: a set step that replaces a typed
// field with a value of another kind (an int times 1.5) gives the output
// field that kind, not the old one: the parquet sink made an int64
// column of it and refused every row with a fraction.
func TestSetReplacingTypedFieldToParquet(t *testing.T) {
	_, j, err := runSpec(t, `
source:
  file: {path: $DIR/in.jsonl}
  types: {a: int}
steps:
  - map: {a: a}
  - set: {a: a * 1.5}
sink: {parquet: {path: $DIR/out}}
errors: {tolerance: all}
`, map[string]string{"in.jsonl": "{\"a\": 1}\n{\"a\": 2}\n{\"a\": 3}\n"})
	if err != nil {
		t.Fatal(err)
	}
	if n := j.DeadLetters(); n != 0 {
		t.Fatalf("%d rows refused", n)
	}
	got := parquetRows(t, j.plan.Spec.Sinks[0].cfg.(*parquetConfig).cfg.Path)
	if len(got) != 3 {
		t.Fatalf("rows %v, want 3", got)
	}
}
