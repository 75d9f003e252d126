package sql

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/sql/types"
	"github.com/sluicehq/sluice/stream"
)

// runBound builds bq over the rows of table input (record timestamps from
// column tsCol, watermarks bound behind) and returns its output.
func runBound(t *testing.T, bq *BoundQuery, in []exec.Change, tsCol int, bound time.Duration, par int) []exec.Change {
	t.Helper()
	env := stream.New(stream.WithParallelism(par), stream.WithBatchSize(3))
	src := stream.FromSource(env, "in", stream.FromSlice(in, 1), stream.WatermarkStrategy[exec.Change]{
		Timestamp: func(c exec.Change) int64 { return c.Vals[tsCol].AsInt() }, MaxOutOfOrderness: bound})
	out, err := bq.Build(context.Background(), map[string]stream.Stream[exec.Change]{"input": src})
	if err != nil {
		t.Fatal(err)
	}
	col := stream.Collect(out)
	if err := env.Execute(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, c := range col.Values() {
		if c.Op != exec.Insert {
			t.Fatalf("a %s row from a window aggregation", c.Op)
		}
	}
	return col.Values()
}

// TestBoundChangelogWindowAggregate: TUMBLE, HOP and CUMULATE window
// aggregations and a legacy GROUP BY TUMBLE over a changelog table (a
// pipeline's CDC rows) plan as append-only window aggregations and emit,
// per window, COUNT, SUM, MIN, MAX and AVG of the rows the window holds
// once inserts, updates and deletes are netted.
func TestBoundChangelogWindowAggregate(t *testing.T) {
	rt := types.TTimestamp
	rt.Time = types.RowTime
	const sec = int64(1000)
	queries := []struct {
		q    string
		wins func(ts int64) [][2]int64
	}{
		{"SELECT grp, window_start, window_end, COUNT(*), SUM(amount), MIN(amount), MAX(amount), AVG(amount) FROM TABLE(TUMBLE(TABLE input, DESCRIPTOR(rowtime), INTERVAL '10' SECOND)) GROUP BY grp, window_start, window_end",
			func(ts int64) [][2]int64 { s := ts - ts%(10*sec); return [][2]int64{{s, s + 10*sec}} }},
		{"SELECT grp, window_start, window_end, COUNT(*), SUM(amount), MIN(amount), MAX(amount), AVG(amount) FROM TABLE(HOP(TABLE input, DESCRIPTOR(rowtime), INTERVAL '5' SECOND, INTERVAL '10' SECOND)) GROUP BY grp, window_start, window_end",
			func(ts int64) [][2]int64 {
				s := ts - ts%(5*sec)
				return [][2]int64{{s, s + 10*sec}, {s - 5*sec, s + 5*sec}}
			}},
		{"SELECT grp, window_start, window_end, COUNT(*), SUM(amount), MIN(amount), MAX(amount), AVG(amount) FROM TABLE(CUMULATE(TABLE input, DESCRIPTOR(rowtime), INTERVAL '5' SECOND, INTERVAL '10' SECOND)) GROUP BY grp, window_start, window_end",
			func(ts int64) [][2]int64 {
				s := ts - ts%(10*sec)
				if ts-s < 5*sec {
					return [][2]int64{{s, s + 5*sec}, {s, s + 10*sec}}
				}
				return [][2]int64{{s, s + 10*sec}}
			}},
		{"SELECT grp, TUMBLE_START(rowtime, INTERVAL '10' SECOND), TUMBLE_END(rowtime, INTERVAL '10' SECOND), COUNT(*), SUM(amount), MIN(amount), MAX(amount), AVG(amount) FROM input GROUP BY grp, TUMBLE(rowtime, INTERVAL '10' SECOND)",
			func(ts int64) [][2]int64 { s := ts - ts%(10*sec); return [][2]int64{{s, s + 10*sec}} }},
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	for qi, qc := range queries {
		for _, par := range []int{1, 3} {
			t.Run(fmt.Sprintf("q%d/p%d", qi, par), func(t *testing.T) {
				s := NewSession(Options{})
				if err := s.BindChangelogTable("input", []BoundColumn{{Name: "id", Type: types.TBigInt}, {Name: "grp", Type: types.TVarchar},
					{Name: "amount", Type: types.TBigInt}, {Name: "rowtime", Type: rt, Hidden: true}}); err != nil {
					t.Fatal(err)
				}
				bq, err := s.PlanBound(qc.q)
				if err != nil {
					t.Fatal(err)
				}
				if bq.Updating() || !strings.Contains(bq.Explain(), "WindowAggregate") {
					t.Fatalf("not an append-only window aggregation:\n%s", bq.Explain())
				}
				// A changelog whose changes are all on time: a row changes
				// only while the watermark (maxTs - bound - 1 at most) is
				// before every window of its time.
				bound := 3 * sec
				var in []exec.Change
				live := map[int64][]row.Value{}
				maxTs := int64(100 * sec)
				onTime := func(ts int64) bool {
					for _, w := range qc.wins(ts) {
						if w[1]-1 <= maxTs-bound-1 {
							return false
						}
					}
					return true
				}
				newRow := func(id int64) []row.Value {
					for {
						ts := maxTs + 300 - rng.Int64N(bound)
						if onTime(ts) {
							return []row.Value{row.Int(id), row.String(fmt.Sprint("g", rng.IntN(3))), row.Int(rng.Int64N(100)), row.Timestamp(ts)}
						}
					}
				}
				add := func(op exec.Op, v []row.Value) {
					in = append(in, exec.Change{Op: op, Vals: v})
					maxTs = max(maxTs, v[3].AsInt())
				}
				for id := int64(0); len(in) < 600; {
					var open []int64
					for k, v := range live {
						if onTime(v[3].AsInt()) {
							open = append(open, k)
						}
					}
					slices.Sort(open)
					switch op := rng.IntN(5); {
					case len(open) == 0 || op < 2:
						v := newRow(id)
						live[id] = v
						add(exec.Insert, v)
						id++
					case op < 4:
						k := open[rng.IntN(len(open))]
						v := newRow(k)
						add(exec.UpdateBefore, live[k])
						add(exec.UpdateAfter, v)
						live[k] = v
					default:
						k := open[rng.IntN(len(open))]
						add(exec.Delete, live[k])
						delete(live, k)
					}
				}
				type acc struct{ n, sum, lo, hi int64 }
				want := map[string]*acc{}
				for _, v := range live {
					for _, w := range qc.wins(v[3].AsInt()) {
						k := fmt.Sprintf("%s %d %d", v[1].AsString(), w[0], w[1])
						a := want[k]
						x := v[2].AsInt()
						if a == nil {
							a = &acc{lo: x, hi: x}
							want[k] = a
						}
						a.n++
						a.sum += x
						a.lo, a.hi = min(a.lo, x), max(a.hi, x)
					}
				}
				var wantRows, gotRows []string
				for k, a := range want {
					wantRows = append(wantRows, fmt.Sprintf("%s n=%d sum=%d min=%d max=%d avg=%d", k, a.n, a.sum, a.lo, a.hi, a.sum/a.n))
				}
				for _, c := range runBound(t, bq, in, 3, time.Duration(bound)*time.Millisecond, par) {
					v := c.Vals
					gotRows = append(gotRows, fmt.Sprintf("%s %d %d n=%d sum=%d min=%d max=%d avg=%d", v[0].AsString(), v[1].AsInt(), v[2].AsInt(),
						v[3].AsInt(), v[4].AsInt(), v[5].AsInt(), v[6].AsInt(), v[7].AsInt()))
				}
				slices.Sort(wantRows)
				slices.Sort(gotRows)
				if !slices.Equal(gotRows, wantRows) {
					t.Fatalf("%d changes, %d live rows:\ngot  %d rows %q\nwant %d rows %q", len(in), len(live), len(gotRows), gotRows, len(wantRows), wantRows)
				}
			})
		}
	}
}

// TestWindowOverDeduplicateLastRow: a window aggregation over a
// deduplication keeping each id's last row (updating: it retracts the
// previous row when a newer one arrives). The retraction reaches the
// window of the row it withdraws, by its time attribute, not the window
// of the record that caused it.
func TestWindowOverDeduplicateLastRow(t *testing.T) {
	rt := types.TTimestamp
	rt.Time = types.RowTime
	s := NewSession(Options{})
	if err := s.BindTable("input", []BoundColumn{{Name: "id", Type: types.TBigInt}, {Name: "v", Type: types.TBigInt}, {Name: "ts", Type: rt}}); err != nil {
		t.Fatal(err)
	}
	if err := s.ExecuteScript(context.Background(), "CREATE VIEW lastrow AS SELECT id, v, ts FROM (SELECT id, v, ts, ROW_NUMBER() OVER (PARTITION BY id ORDER BY ts DESC) AS rn FROM input) WHERE rn = 1"); err != nil {
		t.Fatal(err)
	}
	bq, err := s.PlanBound(`SELECT window_start, COUNT(*) AS n, SUM(v) AS total
		FROM TABLE(TUMBLE(TABLE lastrow, DESCRIPTOR(ts), INTERVAL '10' SECOND))
		GROUP BY window_start, window_end`)
	if err != nil {
		t.Fatal(err)
	}
	r := func(id, v, ts int64) exec.Change {
		return exec.Change{Op: exec.Insert, Vals: []row.Value{row.Int(id), row.Int(v), row.Timestamp(ts * 1000)}}
	}
	in := []exec.Change{
		r(1, 1, 1), r(2, 2, 2), r(3, 4, 3),
		r(1, 5, 15), // id 1 moves from [0,10) to [10,20)
		r(3, 8, 16), // id 3 too
		r(3, 9, 17), // and changes again within [10,20)
	}
	var got []string
	for _, c := range runBound(t, bq, in, 2, time.Minute, 2) {
		got = append(got, fmt.Sprintf("%d n=%d total=%d", c.Vals[0].AsInt()/1000, c.Vals[1].AsInt(), c.Vals[2].AsInt()))
	}
	slices.Sort(got)
	want := []string{"0 n=1 total=2", "10 n=2 total=14"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q\n%s", got, want, bq.Explain())
	}
}
