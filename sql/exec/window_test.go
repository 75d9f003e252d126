package exec

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/types"
	"github.com/sluicehq/sluice/stream"
)

// The input columns of the window tests.
const (
	awK = iota // INT key 0..2
	awX        // INT, nullable
	awS        // VARCHAR, nullable
	awF        // BOOLEAN
	awCols
)

func windowCalls() []AggCall {
	c := func(k AggKind, arg int, at, rt types.Type) AggCall {
		return AggCall{Kind: k, Arg: arg, Filter: -1, ArgType: at, ResultType: rt}
	}
	calls := []AggCall{
		c(AggCountStar, -1, types.TNull, types.TBigInt),
		c(AggSum, awX, types.TBigInt, types.TBigInt),
		c(AggMin, awX, types.TBigInt, types.TBigInt),
		c(AggMax, awS, types.TVarchar, types.TVarchar),
		c(AggAvg, awX, types.TBigInt, types.TBigInt),
		c(AggCount, awX, types.TBigInt, types.TBigInt),
		c(AggFirstValue, awX, types.TBigInt, types.TBigInt),
		c(AggLastValue, awS, types.TVarchar, types.TVarchar),
		{Kind: AggCount, Arg: awX, Distinct: true, Filter: -1, ResultType: types.TBigInt},
		{Kind: AggCount, Arg: awX, Distinct: true, Filter: awF, ResultType: types.TBigInt},
		{Kind: AggSum, Arg: awX, Distinct: true, Filter: -1, ArgType: types.TBigInt, ResultType: types.TBigInt},
		{Kind: AggCountStar, Arg: -1, Filter: awF, ResultType: types.TBigInt},
		{Kind: AggUser, Arg: awX, Filter: -1, User: aggSumSq{}},
		{Kind: AggUser, Arg: awX, Distinct: true, Filter: awF, User: aggSumSq{}},
	}
	return calls
}

func randWindowRows(r *rand.Rand, n int, bound int64) []aggEv {
	evs := make([]aggEv, n)
	for i := range evs {
		evs[i] = aggEv{C: Change{Op: Insert, Vals: randAggVals(r)}, TS: int64(i)*3 + r.Int64N(4*bound+25)}
	}
	return evs
}

// randAggVals is a random row of the aggregation tests: a key 0-2, x 0-5
// and s a-e (each null one time in 6), and a flag.
func randAggVals(r *rand.Rand) []row.Value {
	v := make([]row.Value, awCols)
	v[awK] = row.Int(r.Int64N(3))
	if r.IntN(6) > 0 {
		v[awX] = row.Int(r.Int64N(6))
	}
	if r.IntN(6) > 0 {
		v[awS] = row.String(string(rune('a' + r.IntN(5))))
	}
	v[awF] = row.Bool(r.IntN(2) == 0)
	return v
}

type aggWin struct{ start, end int64 }

// oracleWindows lists the windows containing ts, by enumerating the grid
// (independently of the operator's arithmetic).
func oracleWindows(w WindowSpec, ts int64) []aggWin {
	size, off := w.Size.Milliseconds(), w.Offset.Milliseconds()
	var out []aggWin
	switch w.Kind {
	case Tumble, Hop:
		slide := size
		if w.Kind == Hop {
			slide = w.Slide.Milliseconds()
		}
		for k := (ts-off-size)/slide - 2; k <= (ts-off)/slide+2; k++ {
			s := k*slide + off
			if s <= ts && ts < s+size {
				out = append(out, aggWin{s, s + size})
			}
		}
	case Cumulate:
		step := w.Step.Milliseconds()
		for k := (ts-off)/size - 2; k <= (ts-off)/size+2; k++ {
			s := k*size + off
			if s <= ts && ts < s+size {
				for e := s + step; e <= s+size; e += step {
					if ts < e {
						out = append(out, aggWin{s, e})
					}
				}
			}
		}
	}
	return out
}

type aggOracleGroup struct {
	key  int64
	win  aggWin
	rows [][]row.Value
}

// aggWindowOracle replays the input one record at a time, a watermark of
// maxTs-bound-1 after each, and returns the windows with their on-time
// rows and the number of late records.
func aggWindowOracle(evs []aggEv, w WindowSpec, bound int64) ([]*aggOracleGroup, int) {
	var done []*aggOracleGroup
	open := map[string]*aggOracleGroup{}
	late := 0
	wm, maxTs := int64(math.MinInt64), int64(math.MinInt64)
	gap := w.Gap.Milliseconds()
	for _, e := range evs {
		k := e.C.Vals[awK].AsInt()
		if w.Kind == Session {
			nw := aggWin{e.TS, e.TS + gap}
			var hits []string
			for id, g := range open {
				if g.key == k && g.win.start < nw.end && nw.start < g.win.end {
					hits = append(hits, id)
				}
			}
			if len(hits) == 0 && nw.end-1 <= wm {
				late++
			} else {
				m := &aggOracleGroup{key: k, win: nw}
				for _, id := range hits {
					g := open[id]
					m.win.start = min(m.win.start, g.win.start)
					m.win.end = max(m.win.end, g.win.end)
					m.rows = append(m.rows, g.rows...)
					delete(open, id)
				}
				m.rows = append(m.rows, e.C.Vals)
				open[fmt.Sprint(k, m.win)] = m
			}
		} else {
			accepted := false
			for _, ow := range oracleWindows(w, e.TS) {
				if ow.end-1 <= wm {
					continue
				}
				accepted = true
				id := fmt.Sprint(k, ow)
				g := open[id]
				if g == nil {
					g = &aggOracleGroup{key: k, win: ow}
					open[id] = g
				}
				g.rows = append(g.rows, e.C.Vals)
			}
			if !accepted {
				late++
			}
		}
		maxTs = max(maxTs, e.TS)
		if nw := maxTs - bound - 1; nw > wm {
			wm = nw
			for id, g := range open {
				if g.win.end-1 <= wm {
					done = append(done, g)
					delete(open, id)
				}
			}
		}
	}
	for _, g := range open {
		done = append(done, g)
	}
	return done, late
}

// arrivalOrder sorts rows (slices of the input's Vals) into input order:
// merged sessions concatenate their rows out of order.
func arrivalOrder(evs []aggEv, rows [][]row.Value) [][]row.Value {
	pos := map[*row.Value]int{}
	for i := range evs {
		pos[&evs[i].C.Vals[0]] = i
	}
	out := slices.Clone(rows)
	slices.SortFunc(out, func(a, b []row.Value) int { return pos[&a[0]] - pos[&b[0]] })
	return out
}

func oracleWindowRows(evs []aggEv, groups []*aggOracleGroup, calls []AggCall) []string {
	var out []string
	for _, g := range groups {
		rows := arrivalOrder(evs, g.rows)
		vals := []row.Value{row.Int(g.key), row.Timestamp(g.win.start), row.Timestamp(g.win.end), row.Timestamp(g.win.end - 1)}
		for _, a := range calls {
			var seq []row.Value
			for _, r := range rows {
				if a.Arg >= 0 && !r[a.Arg].IsNull() && aggFilterOK(r, a.Filter) {
					seq = append(seq, r[a.Arg])
				}
			}
			vals = append(vals, oracleAgg(a, rows, seq))
		}
		// The record's timestamp, appended by the test: window_time.
		vals = append(vals, row.Timestamp(g.win.end-1))
		out = append(out, aggFmt(vals))
	}
	slices.Sort(out)
	return out
}

// aggRunWindow runs WindowAggregate over evs and returns its rows (each with
// the record's timestamp appended) and the late records it dropped.
func aggRunWindow(t *testing.T, evs []aggEv, par int, bound int64, w WindowSpec, calls []AggCall) ([]string, int64) {
	t.Helper()
	env := stream.New(stream.WithParallelism(par), stream.WithBatchSize(1))
	src := stream.FromSource(env, "rows", stream.FromSlice(evs, 1),
		stream.BoundedOutOfOrderness(func(e aggEv) int64 { return e.TS }, time.Duration(bound)*time.Millisecond))
	in := stream.Map(src, func(e aggEv) Change { return e.C })
	out := WindowAggregate(in, []int{awK}, w, calls, AggConfig{Name: "wagg", AppendOnly: true})
	withTS := stream.FlatMap(out, func(c Change, em *stream.Emitter[Change]) {
		if c.Op != Insert {
			panic(fmt.Sprintf("window aggregate emitted %s", c.Op))
		}
		em.Emit(Change{Op: c.Op, Vals: append(slices.Clone(c.Vals), row.Timestamp(em.Timestamp()))})
	})
	got := stream.Collect(withTS)
	job := runToEnd(t, env)
	var rows []string
	for _, c := range got.Values() {
		rows = append(rows, aggFmt(c.Vals))
	}
	slices.Sort(rows)
	return rows, droppedBy(job, "wagg")
}

// runToEnd starts env's job and waits for its end; the job is returned
// for its metrics.
func runToEnd(t *testing.T, env *stream.Env) *stream.Job {
	t.Helper()
	job, err := env.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := job.Wait(); err != nil {
		t.Fatal(err)
	}
	return job
}

// droppedBy is the count of late records the subtasks of operator
// dropped in job.
func droppedBy(job *stream.Job, operator string) int64 {
	var dropped int64
	for _, m := range job.Metrics() {
		if m.Operator == operator {
			dropped += m.Dropped
		}
	}
	return dropped
}

// TestWindowAggregateOracle: random out-of-order rows with watermarks
// through every window kind, at parallelism 1 and 2; the rows emitted
// equal a batch GROUP BY key, window over the on-time records, and the
// late records are counted.
func TestWindowAggregateOracle(t *testing.T) {
	r := aggRand(t)
	calls := windowCalls()
	specs := []WindowSpec{
		{Kind: Tumble, Size: 20 * time.Millisecond},
		{Kind: Tumble, Size: 30 * time.Millisecond, Offset: 7 * time.Millisecond},
		{Kind: Hop, Size: 30 * time.Millisecond, Slide: 10 * time.Millisecond},
		{Kind: Hop, Size: 25 * time.Millisecond, Slide: 10 * time.Millisecond, Offset: 3 * time.Millisecond},
		{Kind: Cumulate, Size: 40 * time.Millisecond, Step: 10 * time.Millisecond},
		{Kind: Cumulate, Size: 30 * time.Millisecond, Step: 10 * time.Millisecond, Offset: -4 * time.Millisecond},
		{Kind: Session, Gap: 6 * time.Millisecond},
		{Kind: Session, Gap: 15 * time.Millisecond},
	}
	for _, w := range specs {
		for _, par := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s-%v-%v-%v/p%d", w.Kind, w.Size+w.Gap, w.Slide+w.Step, w.Offset, par), func(t *testing.T) {
				for round := range 3 {
					bound := r.Int64N(12)
					evs := randWindowRows(r, 200+r.IntN(200), bound)
					groups, late := aggWindowOracle(evs, w, bound)
					want := oracleWindowRows(evs, groups, calls)
					got, dropped := aggRunWindow(t, evs, par, bound, w, calls)
					diffRows(t, fmt.Sprintf("round %d bound %d", round, bound), got, want)
					if dropped != int64(late) {
						t.Fatalf("round %d: %d late records dropped, want %d", round, dropped, late)
					}
					if round == 0 {
						t.Logf("%d rows, %d windows, %d late", len(evs), len(want), late)
					}
				}
			})
		}
	}
}

// TestWindowAggregateProcTime: processing-time windows put every record
// in some window and fire them all by the end of the input.
func TestWindowAggregateProcTime(t *testing.T) {
	r := aggRand(t)
	evs := randWindowRows(r, 300, 0)
	calls := []AggCall{{Kind: AggCountStar, Arg: -1, Filter: -1}}
	for _, w := range []WindowSpec{
		{Kind: Tumble, Size: 1000 * time.Hour, ProcTime: true},
		{Kind: Session, Gap: time.Hour, ProcTime: true},
		{Kind: Cumulate, Size: 1000 * time.Hour, Step: 100 * time.Hour, ProcTime: true},
	} {
		env := stream.New(stream.WithParallelism(2))
		src := stream.FromSource(env, "rows", stream.FromSlice(evs, 1), stream.WatermarkStrategy[aggEv]{})
		got := stream.Collect(WindowAggregate(stream.Map(src, func(e aggEv) Change { return e.C }), []int{awK}, w, calls, AggConfig{AppendOnly: true}))
		if err := env.Execute(context.Background()); err != nil {
			t.Fatal(err)
		}
		// Cumulate counts a record once per step window it is in; the
		// largest windows (end - start = size) hold each record once.
		var n int64
		for _, c := range got.Values() {
			start, end := c.Vals[1].AsInt(), c.Vals[2].AsInt()
			if w.Kind == Cumulate && end-start != w.Size.Milliseconds() {
				continue
			}
			n += c.Vals[4].AsInt()
		}
		if n != int64(len(evs)) {
			t.Fatalf("%s: windows counted %d records, want %d", w.Kind, n, len(evs))
		}
	}
}

// TestWindowSpecValidate: bad specs are refused with what to change, and
// the job of an invalid aggregate fails on its first row.
func TestWindowSpecValidate(t *testing.T) {
	for _, w := range []WindowSpec{
		{Kind: Tumble},
		{Kind: Hop, Size: time.Second},
		{Kind: Cumulate, Size: 25 * time.Millisecond, Step: 10 * time.Millisecond},
		{Kind: Session, Gap: time.Microsecond},
		{Kind: 9},
	} {
		if err := w.Validate(); err == nil {
			t.Errorf("%+v: accepted", w)
		}
	}
	if err := ValidateAggs([]AggCall{{Kind: AggUser, Arg: 1, Filter: -1, User: aggNoRetract{}}}, true, true); err == nil {
		t.Error("a user function without Merge accepted for session windows")
	}
	evs := []aggEv{{C: Change{Op: Insert, Vals: []row.Value{row.Int(1)}}, TS: 5}}
	env := stream.New(stream.WithParallelism(1))
	src := stream.FromSource(env, "rows", stream.FromSlice(evs, 1), stream.WatermarkStrategy[aggEv]{Timestamp: func(e aggEv) int64 { return e.TS }})
	stream.Collect(WindowAggregate(stream.Map(src, func(e aggEv) Change { return e.C }), []int{0},
		WindowSpec{Kind: Hop, Size: time.Second}, nil, AggConfig{}))
	if err := env.Execute(context.Background()); err == nil {
		t.Fatal("job with an invalid window ran")
	} else {
		t.Logf("error: %v", err)
	}
}
