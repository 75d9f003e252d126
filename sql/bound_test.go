package sql

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/sql/types"
	"github.com/sluicehq/sluice/stream"
)

func boundSession(t *testing.T) *Session {
	t.Helper()
	s := NewSession(Options{})
	rt := types.TTimestamp
	rt.Time = types.RowTime
	if err := s.BindTable("input", []BoundColumn{{Name: "user", Type: types.TVarchar}, {Name: "sku", Type: types.TVarchar},
		{Name: "status", Type: types.TVarchar}, {Name: "rowtime", Type: rt, Hidden: true}}); err != nil {
		t.Fatal(err)
	}
	return s
}

// A filter on the input of a window TVF, with or without an alias on
// the TVF, keeps the aggregation a window aggregation (append-only).
func TestBoundWindowFilterStaysWindowed(t *testing.T) {
	s := boundSession(t)
	for _, q := range []string{
		"SELECT user, window_start, COUNT(sku) AS cnt FROM TABLE(TUMBLE(TABLE input, DESCRIPTOR(rowtime), INTERVAL '1' MINUTE)) GROUP BY user, window_start, window_end",
		"SELECT user, window_start, COUNT(sku) AS cnt FROM TABLE(TUMBLE(TABLE input, DESCRIPTOR(rowtime), INTERVAL '1' MINUTE)) WHERE status = 'paid' GROUP BY user, window_start, window_end",
		"SELECT t.user, window_start, COUNT(sku) AS cnt FROM TABLE(TUMBLE(TABLE input, DESCRIPTOR(rowtime), INTERVAL '1' MINUTE)) AS t WHERE t.status = 'paid' GROUP BY t.user, window_start, window_end",
	} {
		bq, err := s.PlanBound(q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if bq.Updating() || !strings.Contains(bq.Explain(), "WindowAggregate") {
			t.Errorf("%s: not a window aggregation:\n%s", q, bq.Explain())
		}
	}
	// SELECT * does not expand the hidden rowtime.
	bq, err := s.PlanBound("SELECT * FROM input")
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(bq.Columns()); strings.Contains(got, "rowtime") {
		t.Errorf("SELECT * columns %s", got)
	}
}

// A bound table's stream runs through a filtered window aggregation; the
// result equals grouping the rows by hand.
func TestBoundWindowAggregate(t *testing.T) {
	s := boundSession(t)
	bq, err := s.PlanBound("SELECT user, window_start, COUNT(*) AS n FROM TABLE(TUMBLE(TABLE input, DESCRIPTOR(rowtime), INTERVAL '10' SECOND)) AS t WHERE t.status = 'paid' GROUP BY user, window_start, window_end")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var in []exec.Change
	want := map[string]int{}
	for i := 0; i < 500; i++ {
		ts := int64(1_700_000_000_000) + int64(i)*100 - rng.Int64N(1000)
		u := fmt.Sprintf("u%d", rng.IntN(4))
		st := []string{"paid", "open"}[rng.IntN(2)]
		in = append(in, exec.Change{Op: exec.Insert, Vals: []row.Value{row.String(u), row.String("s"), row.String(st), row.Timestamp(ts)}})
		if st == "paid" {
			want[fmt.Sprintf("%s@%d", u, ts-ts%10000)]++
		}
	}
	env := stream.New(stream.WithParallelism(2), stream.WithBatchSize(7))
	src := stream.FromSource(env, "in", stream.FromSlice(in, 2), stream.WatermarkStrategy[exec.Change]{
		Timestamp: func(c exec.Change) int64 { return c.Vals[3].AsInt() }, MaxOutOfOrderness: time.Second})
	ctx := context.Background()
	out, err := bq.Build(ctx, map[string]stream.Stream[exec.Change]{"input": src})
	if err != nil {
		t.Fatal(err)
	}
	col := stream.Collect(out)
	job, err := env.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := job.Wait(); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, c := range col.Values() {
		if c.Op != exec.Insert {
			t.Fatalf("a %s change from a window aggregation", c.Op)
		}
		got[fmt.Sprintf("%s@%d", c.Vals[0].AsString(), c.Vals[1].AsInt())] += int(c.Vals[2].AsInt())
	}
	if fmt.Sprint(sorted(got)) != fmt.Sprint(sorted(want)) {
		t.Errorf("got %v\nwant %v", sorted(got), sorted(want))
	}
	if _, err := bq.Build(ctx, nil); err == nil {
		t.Error("Build without the table's stream succeeded")
	}
}

func sorted(m map[string]int) []string {
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(out)
	return out
}
