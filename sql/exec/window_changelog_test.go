package exec

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/types"
	"github.com/sluicehq/sluice/stream"
)

// changelogWindowCalls are the calls of the changelog window tests:
// windowCalls without FIRST_VALUE and LAST_VALUE, whose retraction
// withdraws the oldest row holding the value rather than the row itself
// (as in GroupAggregate), so that a net multiset does not determine them.
func changelogWindowCalls() []AggCall {
	var out []AggCall
	for _, c := range windowCalls() {
		if c.Kind != AggFirstValue && c.Kind != AggLastValue {
			out = append(out, c)
		}
	}
	return out
}

// clRow is a live row of a generated changelog: its values and event time.
type clRow struct {
	vals []row.Value
	ts   int64
}

// randChangelog generates n changes of a table of rows with event times:
// inserts (out of order by up to bound), updates (-U of the old row at
// its time, +U of a new row at a new time, possibly in another group)
// and deletes (-D of the old row at its time). The watermark after each
// record is maxTs-bound-1 at the most (what BoundedOutOfOrderness gives
// when every record is its own batch; larger batches only hold it back),
// and every change is on time for all its windows, so that each window's
// result is the aggregate of its final net rows. It returns the changes
// and the live rows at the end.
func randChangelog(r *rand.Rand, n int, bound int64, w WindowSpec) ([]aggEv, []clRow) {
	var evs []aggEv
	var live []clRow
	maxTs := int64(0)
	wm := int64(math.MinInt64)
	onTime := func(ts int64) bool {
		for _, ow := range oracleWindows(w, ts) {
			if ow.end-1 <= wm {
				return false
			}
		}
		return true
	}
	newTs := func() int64 {
		for {
			ts := maxTs + 1 + r.Int64N(4) - r.Int64N(bound+1)
			if onTime(ts) {
				return ts
			}
		}
	}
	emit := func(op Op, vals []row.Value, ts int64) {
		evs = append(evs, aggEv{C: Change{Op: op, Vals: vals}, TS: ts})
		maxTs = max(maxTs, ts)
		wm = max(wm, maxTs-bound-1)
	}
	for len(evs) < n {
		// Rows that can still change: all their windows are open.
		var open []int
		for i, lr := range live {
			if onTime(lr.ts) {
				open = append(open, i)
			}
		}
		op := r.IntN(5)
		if len(open) == 0 || op < 2 {
			v, ts := randAggVals(r), newTs()
			live = append(live, clRow{v, ts})
			emit(Insert, v, ts)
			continue
		}
		i := open[r.IntN(len(open))]
		old := live[i]
		if op < 4 {
			v, ts := randAggVals(r), newTs()
			if r.IntN(3) == 0 {
				ts = old.ts // the same time, other values
			}
			emit(UpdateBefore, slices.Clone(old.vals), old.ts)
			emit(UpdateAfter, v, ts)
			live[i] = clRow{v, ts}
			continue
		}
		emit(Delete, slices.Clone(old.vals), old.ts)
		live = slices.Delete(live, i, i+1)
	}
	return evs, live
}

// netWindowGroups puts each live row into every window of its time: the
// windows' final net rows.
func netWindowGroups(live []clRow, w WindowSpec) []*aggOracleGroup {
	byID := map[string]*aggOracleGroup{}
	var out []*aggOracleGroup
	for _, lr := range live {
		k := lr.vals[awK].AsInt()
		for _, ow := range oracleWindows(w, lr.ts) {
			id := fmt.Sprint(k, ow)
			g := byID[id]
			if g == nil {
				g = &aggOracleGroup{key: k, win: ow}
				byID[id] = g
				out = append(out, g)
			}
			g.rows = append(g.rows, lr.vals)
		}
	}
	return out
}

func changelogWindowSpecs() []WindowSpec {
	return []WindowSpec{
		{Kind: Tumble, Size: 20 * time.Millisecond},
		{Kind: Hop, Size: 30 * time.Millisecond, Slide: 10 * time.Millisecond},
		{Kind: Cumulate, Size: 40 * time.Millisecond, Step: 10 * time.Millisecond, Offset: 3 * time.Millisecond},
	}
}

func windowRowsOf(out []Change) []string {
	var got []string
	for _, c := range out {
		if c.Op != Insert {
			panic(fmt.Sprintf("window aggregate emitted %s", c.Op))
		}
		// The oracle appends the record timestamp: window_time.
		got = append(got, aggFmt(append(slices.Clone(c.Vals), c.Vals[3])))
	}
	slices.Sort(got)
	return got
}

func diffRows(t *testing.T, what string, got, want []string) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	for i := range max(len(got), len(want)) {
		var g, x string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			x = want[i]
		}
		if g != x {
			t.Fatalf("%s: row %d of %d/%d:\n got  %s\n want %s", what, i, len(got), len(want), g, x)
		}
	}
}

// TestWindowAggregateChangelogOracle: random inserts, updates and deletes
// with out-of-order event times through TUMBLE, HOP and CUMULATE windows
// at parallelism 1 and 3: every window emits once, the aggregates of its
// final net rows (COUNT, SUM, MIN, MAX, AVG, DISTINCT, FILTER, a user
// function), and a window whose rows were all retracted emits nothing.
func TestWindowAggregateChangelogOracle(t *testing.T) {
	r := aggRand(t)
	calls := changelogWindowCalls()
	for _, w := range changelogWindowSpecs() {
		for _, par := range []int{1, 3} {
			t.Run(fmt.Sprintf("%s/p%d", w.Kind, par), func(t *testing.T) {
				for round := range 3 {
					bound := r.Int64N(15)
					evs, live := randChangelog(r, 300+r.IntN(300), bound, w)
					want := oracleWindowRows(evs, netWindowGroups(live, w), calls)
					out := aggRunChanges(t, evs, par, time.Duration(bound)*time.Millisecond, func(in stream.Stream[Change]) stream.Stream[Change] {
						return WindowAggregate(in, []int{awK}, w, calls, AggConfig{Parallelism: par})
					})
					diffRows(t, fmt.Sprintf("round %d bound %d", round, bound), windowRowsOf(out), want)
					if round == 0 {
						t.Logf("%d changes, %d live rows, %d windows", len(evs), len(live), len(want))
					}
				}
			})
		}
	}
}

// TestWindowAggregateChangelogSavepoint: the same changelogs stopped with
// a savepoint halfway and restored, at another parallelism and on both
// state backends: retractions after the restore withdraw what the first
// job accumulated, and the two jobs together emit the oracle's windows.
func TestWindowAggregateChangelogSavepoint(t *testing.T) {
	r := aggRand(t)
	calls := changelogWindowCalls()
	specs := changelogWindowSpecs()
	for i, c := range []struct {
		backend    string
		par1, par2 int
	}{
		{"memory", 1, 3},
		{"memory", 3, 2},
		{"pebble", 2, 1},
		{"pebble", 1, 2},
		{"memory", 2, 2},
		{"pebble", 3, 3},
	} {
		w := specs[i%len(specs)]
		t.Run(fmt.Sprintf("%s-%s-%d-%d", w.Kind, c.backend, c.par1, c.par2), func(t *testing.T) {
			bound := 5 + r.Int64N(10)
			evs, live := randChangelog(r, 800, bound, w)
			want := oracleWindowRows(evs, netWindowGroups(live, w), calls)
			out := aggSavepointRunBound(t, evs, time.Duration(bound)*time.Millisecond, c.par1, c.par2, c.backend, func(in stream.Stream[Change]) stream.Stream[Change] {
				return WindowAggregate(in, []int{awK}, w, calls, AggConfig{})
			})
			diffRows(t, "restored", windowRowsOf(out), want)
		})
	}
}

// TestWindowAggregateLateRetraction: a retraction whose window already
// fired is late data, as a late insert is: it is dropped and counted in
// the Dropped metric, and the fired window is not emitted again. A window
// whose only row is deleted before it fires emits nothing; a retraction
// of a row the window never held is ignored.
func TestWindowAggregateLateRetraction(t *testing.T) {
	row3 := func(k, x int64) []row.Value { return []row.Value{row.Int(k), row.Int(x), row.Value{}, row.Bool(true)} }
	ev := func(op Op, k, x, ts int64) aggEv { return aggEv{C: Change{Op: op, Vals: row3(k, x)}, TS: ts} }
	evs := []aggEv{
		ev(Insert, 1, 10, 1),
		ev(Insert, 1, 20, 2),
		ev(Insert, 2, 5, 3),
		ev(Insert, 1, 7, 25),  // watermark 24: [0,10) fires with 1 → count 2, 2 → count 1
		ev(Delete, 1, 10, 1),  // late: [0,10) fired
		ev(Insert, 2, 6, 4),   // late insert
		ev(Delete, 1, 7, 25),  // [20,30) of key 1 is now empty
		ev(Delete, 2, 99, 26), // nothing in [20,30) of key 2 to retract
		ev(Insert, 2, 1, 27),  // [20,30) of key 2: count 1
		ev(UpdateBefore, 2, 1, 27),
		ev(UpdateAfter, 2, 3, 28),
	}
	env := stream.New(stream.WithParallelism(2), stream.WithBatchSize(1))
	src := stream.FromSource(env, "rows", stream.FromSlice(evs, 1),
		stream.BoundedOutOfOrderness(func(e aggEv) int64 { return e.TS }, 0))
	calls := []AggCall{
		{Kind: AggCountStar, Arg: -1, Filter: -1},
		{Kind: AggSum, Arg: 1, Filter: -1},
		{Kind: AggMin, Arg: 1, Filter: -1},
	}
	got := stream.Collect(WindowAggregate(stream.Map(src, func(e aggEv) Change { return e.C }), []int{0},
		WindowSpec{Kind: Tumble, Size: 10 * time.Millisecond}, calls, AggConfig{Name: "wagg"}))
	job := runToEnd(t, env)
	var rows []string
	for _, c := range got.Values() {
		rows = append(rows, fmt.Sprintf("%s [%d,%d) n=%s sum=%s min=%s", c.Vals[0], c.Vals[1].AsInt(), c.Vals[2].AsInt(), c.Vals[4], c.Vals[5], c.Vals[6]))
	}
	slices.Sort(rows)
	want := []string{
		"1 [0,10) n=2 sum=30 min=10",
		"2 [0,10) n=1 sum=5 min=5",
		"2 [20,30) n=1 sum=3 min=3",
	}
	if !slices.Equal(rows, want) {
		t.Fatalf("got\n%s\nwant\n%s", rows, want)
	}
	if dropped := droppedBy(job, "wagg"); dropped != 2 {
		t.Fatalf("%d late records dropped, want 2 (the late delete and the late insert)", dropped)
	}
}

// TestWindowAggregateChangelogRefused: SESSION and processing-time
// windows refuse an updating input; append-only windows refuse a
// retraction.
func TestWindowAggregateChangelogRefused(t *testing.T) {
	for _, w := range []WindowSpec{{Kind: Session, Gap: time.Second}, {Kind: Tumble, Size: time.Second, ProcTime: true}} {
		if err := WindowUpdatingErr(w); err == nil {
			t.Errorf("%s (proctime %v) accepted for updating input", w.Kind, w.ProcTime)
		}
	}
	if err := WindowUpdatingErr(WindowSpec{Kind: Hop, Size: time.Second, Slide: time.Millisecond}); err != nil {
		t.Errorf("HOP refused: %v", err)
	}
	evs := []aggEv{{C: Change{Op: Insert, Vals: []row.Value{row.Int(1)}}, TS: 5}, {C: Change{Op: Delete, Vals: []row.Value{row.Int(1)}}, TS: 5}}
	env := stream.New(stream.WithParallelism(1))
	src := stream.FromSource(env, "rows", stream.FromSlice(evs, 1), stream.WatermarkStrategy[aggEv]{Timestamp: func(e aggEv) int64 { return e.TS }})
	stream.Collect(WindowAggregate(stream.Map(src, func(e aggEv) Change { return e.C }), []int{0},
		WindowSpec{Kind: Tumble, Size: time.Second}, []AggCall{{Kind: AggCountStar, Arg: -1, Filter: -1}}, AggConfig{AppendOnly: true}))
	if err := env.Execute(context.Background()); err == nil {
		t.Fatal("an append-only window aggregate took a retraction")
	} else {
		t.Logf("error: %v", err)
	}
}

// TestWindowAggregateChangelogRefill: a window whose float values were
// all retracted (a NULL row keeps it open) and which is then refilled
// before it fires sums and averages only the new values: the retracted
// ones leave no rounding residue behind (0.1 + 0.2 - 0.1 - 0.2 is not 0
// in floating point). SUM over no value is NULL, SUM0 is 0.
func TestWindowAggregateChangelogRefill(t *testing.T) {
	ev := func(op Op, x row.Value, ts int64) aggEv {
		return aggEv{C: Change{Op: op, Vals: []row.Value{row.Int(1), x}}, TS: ts}
	}
	f := row.Float
	calls := []AggCall{
		{Kind: AggSum, Arg: 1, Filter: -1, ArgType: types.TDouble, ResultType: types.TDouble},
		{Kind: AggSum0, Arg: 1, Filter: -1, ArgType: types.TDouble, ResultType: types.TDouble},
		{Kind: AggAvg, Arg: 1, Filter: -1, ArgType: types.TDouble, ResultType: types.TDouble},
	}
	run := func(evs []aggEv) string {
		out := aggRunChanges(t, evs, 1, 0, func(in stream.Stream[Change]) stream.Stream[Change] {
			return WindowAggregate(in, []int{0}, WindowSpec{Kind: Tumble, Size: 10 * time.Millisecond}, calls, AggConfig{})
		})
		var rows []string
		for _, c := range out {
			rows = append(rows, fmt.Sprintf("sum=%s sum0=%s avg=%s", c.Vals[4], c.Vals[5], c.Vals[6]))
		}
		return fmt.Sprint(rows)
	}
	emptied := []aggEv{
		ev(Insert, row.Value{}, 1),
		ev(Insert, f(0.1), 2),
		ev(Insert, f(0.2), 3),
		ev(Delete, f(0.1), 2),
		ev(Delete, f(0.2), 3),
	}
	if got, want := run(emptied), "[sum=null sum0=0.0 avg=null]"; got != want {
		t.Errorf("emptied: got %s, want %s", got, want)
	}
	refilled := append(slices.Clone(emptied), ev(Insert, f(0.3), 4))
	if got, want := run(refilled), "[sum=0.3 sum0=0.3 avg=0.3]"; got != want {
		t.Errorf("refilled: got %s, want %s", got, want)
	}
}

// TestWindowAggregateRetractionNeverHeld: a retraction of a row a
// non-empty window never held (a changelog that starts mid-stream deletes
// a row inserted before it) is dropped whole when an accumulator shows it
// (a count that would go below zero, a MIN value not in the multiset):
// no count goes negative, no sum takes what was never added. A window
// whose counts are all above zero cannot tell, and applies it.
func TestWindowAggregateRetractionNeverHeld(t *testing.T) {
	vals := func(k int64, x row.Value) []row.Value { return []row.Value{row.Int(k), x} }
	ev := func(op Op, k int64, x row.Value, ts int64) aggEv {
		return aggEv{C: Change{Op: op, Vals: vals(k, x)}, TS: ts}
	}
	null := row.Value{}
	evs := []aggEv{
		// Key 1: two rows without x; the retraction of x=5 would make
		// COUNT(x) -1 and SUM(x) -5.
		ev(Insert, 1, null, 1),
		ev(Insert, 1, null, 2),
		ev(Delete, 1, row.Int(5), 3),
		// Key 2: x=10 held; x=99 is not in MIN's multiset.
		ev(Insert, 2, row.Int(10), 1),
		ev(Insert, 2, row.Int(20), 2),
		ev(Delete, 2, row.Int(99), 3),
		// Key 3: x=10 and x=20 held, x=15 retracted: the counts cannot
		// tell, but MIN's multiset can.
		ev(Insert, 3, row.Int(10), 1),
		ev(Insert, 3, row.Int(20), 2),
		ev(UpdateBefore, 3, row.Int(15), 3),
		ev(UpdateAfter, 3, row.Int(16), 3),
		// Key 4: an empty window.
		ev(Delete, 4, row.Int(1), 1),
		ev(Insert, 4, row.Int(1), 11),
	}
	for _, full := range []bool{true, false} {
		env := stream.New(stream.WithParallelism(2), stream.WithBatchSize(1))
		src := stream.FromSource(env, "rows", stream.FromSlice(evs, 1),
			stream.BoundedOutOfOrderness(func(e aggEv) int64 { return e.TS }, 0))
		calls := []AggCall{
			{Kind: AggCountStar, Arg: -1, Filter: -1},
			{Kind: AggCount, Arg: 1, Filter: -1},
			{Kind: AggSum, Arg: 1, Filter: -1, ArgType: types.TBigInt, ResultType: types.TBigInt},
		}
		if full {
			calls = append(calls, AggCall{Kind: AggCount, Arg: 1, Filter: -1, Distinct: true},
				AggCall{Kind: AggMin, Arg: 1, Filter: -1, ArgType: types.TBigInt, ResultType: types.TBigInt})
		}
		got := stream.Collect(WindowAggregate(stream.Map(src, func(e aggEv) Change { return e.C }), []int{0},
			WindowSpec{Kind: Tumble, Size: 10 * time.Millisecond}, calls, AggConfig{Name: "wagg"}))
		runToEnd(t, env)
		var rows []string
		for _, c := range got.Values() {
			s := fmt.Sprintf("%s [%d,%d) n=%s count=%s sum=%s", c.Vals[0], c.Vals[1].AsInt(), c.Vals[2].AsInt(), c.Vals[4], c.Vals[5], c.Vals[6])
			if full {
				s += fmt.Sprintf(" distinct=%s min=%s", c.Vals[7], c.Vals[8])
			}
			rows = append(rows, s)
		}
		slices.Sort(rows)
		want := []string{
			"1 [0,10) n=2 count=0 sum=null distinct=0 min=null",
			"2 [0,10) n=2 count=2 sum=30 distinct=2 min=10",
			"3 [0,10) n=3 count=3 sum=46 distinct=3 min=10",
			"4 [10,20) n=1 count=1 sum=1 distinct=1 min=1",
		}
		if !full {
			// Counts above zero cannot tell a row never held: key 2's
			// and key 3's retractions are applied.
			want = []string{
				"1 [0,10) n=2 count=0 sum=null",
				"2 [0,10) n=1 count=1 sum=-69",
				"3 [0,10) n=2 count=2 sum=31",
				"4 [10,20) n=1 count=1 sum=1",
			}
		}
		if !slices.Equal(rows, want) {
			t.Errorf("full %v: got\n%s\nwant\n%s", full, strings.Join(rows, "\n"), strings.Join(want, "\n"))
		}
	}
}

// TestGroupAggregateRetractionNeverHeld: GroupAggregate drops a retraction
// its group shows it never held, as WindowAggregate does: a changelog
// starting mid-stream deletes a row (x=5) the group never counted.
func TestGroupAggregateRetractionNeverHeld(t *testing.T) {
	ev := func(op Op, x row.Value) aggEv { return aggEv{C: Change{Op: op, Vals: []row.Value{row.Int(1), x}}} }
	evs := []aggEv{ev(Insert, row.Value{}), ev(Insert, row.Value{}), ev(Delete, row.Int(5)), ev(Insert, row.Int(7))}
	out := aggRunChanges(t, evs, 1, 0, func(in stream.Stream[Change]) stream.Stream[Change] {
		return GroupAggregate(in, []int{0}, []AggCall{
			{Kind: AggCountStar, Arg: -1, Filter: -1},
			{Kind: AggCount, Arg: 1, Filter: -1},
			{Kind: AggSum, Arg: 1, Filter: -1, ArgType: types.TBigInt, ResultType: types.TBigInt},
		}, AggConfig{})
	})
	last := out[len(out)-1]
	if got := fmt.Sprintf("%s n=%s count=%s sum=%s", last.Op, last.Vals[1], last.Vals[2], last.Vals[3]); got != "+U n=3 count=1 sum=7" {
		t.Fatalf("last change %s, want +U n=3 count=1 sum=7 (all changes: %v)", got, out)
	}
}
