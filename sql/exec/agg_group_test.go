package exec

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/types"
	"github.com/sluicehq/sluice/stream"
)

// The input columns of the property tests.
const (
	agK   = iota // INT, 0..3
	agX          // INT, nullable
	agD          // DOUBLE, nullable, multiples of 0.5 (sums are exact)
	agS          // VARCHAR, nullable
	agDec        // DECIMAL(10, 2), nullable
	agF1         // BOOLEAN
	agF2         // BOOLEAN, nullable
	agY          // INT, nullable
	agCols
)

var aggDec102 = types.DecimalOf(10, 2)

func aggRandRow(r *rand.Rand) []row.Value {
	v := make([]row.Value, agCols)
	v[agK] = row.Int(r.Int64N(4))
	maybe := func(x row.Value) row.Value {
		if r.IntN(7) == 0 {
			return row.Value{}
		}
		return x
	}
	v[agX] = maybe(row.Int(r.Int64N(8) - 2))
	v[agD] = maybe(row.Float(float64(r.IntN(21)-10) / 2))
	v[agS] = maybe(row.String(string(rune('a' + r.IntN(6)))))
	v[agDec] = maybe(row.Int(r.Int64N(2000) - 999))
	v[agF1] = row.Bool(r.IntN(2) == 0)
	v[agF2] = maybe(row.Bool(r.IntN(2) == 0))
	v[agY] = maybe(row.Int(r.Int64N(5)))
	return v
}

// groupCalls covers every AggKind, DISTINCT and FILTER.
func groupCalls(withFirstLast bool) []AggCall {
	c := func(k AggKind, arg int, at, rt types.Type) AggCall {
		return AggCall{Kind: k, Arg: arg, Filter: -1, ArgType: at, ResultType: rt}
	}
	f := func(a AggCall, col int) AggCall { a.Filter = col; return a }
	d := func(a AggCall) AggCall { a.Distinct = true; return a }
	calls := []AggCall{
		c(AggCountStar, -1, types.TNull, types.TBigInt),
		c(AggCount, agX, types.TInt, types.TBigInt),
		f(c(AggCountStar, -1, types.TNull, types.TBigInt), agF1),
		c(AggSum, agX, types.TInt, types.TBigInt),
		c(AggSum0, agX, types.TInt, types.TBigInt),
		c(AggSum, agD, types.TDouble, types.TDouble),
		c(AggSum, agDec, aggDec102, types.DecimalOf(18, 2)),
		c(AggAvg, agX, types.TBigInt, types.TBigInt),
		c(AggAvg, agD, types.TDouble, types.TDouble),
		c(AggAvg, agDec, aggDec102, types.DecimalOf(18, 6)),
		c(AggMin, agX, types.TInt, types.TInt),
		c(AggMax, agS, types.TVarchar, types.TVarchar),
		f(c(AggMin, agD, types.TDouble, types.TDouble), agF2),
		f(c(AggMax, agX, types.TInt, types.TInt), agF1),
		d(c(AggCount, agX, types.TInt, types.TBigInt)),
		f(d(c(AggCount, agX, types.TInt, types.TBigInt)), agF1),
		f(d(c(AggCount, agX, types.TInt, types.TBigInt)), agF2),
		f(d(c(AggSum, agX, types.TInt, types.TBigInt)), agF2),
		d(c(AggCount, agS, types.TVarchar, types.TBigInt)),
		f(d(c(AggMax, agS, types.TVarchar, types.TVarchar)), agF1),
		d(c(AggAvg, agD, types.TDouble, types.TDouble)),
		{Kind: AggUser, Arg: agX, Filter: -1, User: aggSumSq{}, ResultType: types.TBigInt},
		{Kind: AggUser, Args: []int{agX, agY}, Filter: agF1, User: aggSumSq{}, ResultType: types.TBigInt},
		{Kind: AggUser, Arg: agY, Distinct: true, Filter: -1, User: aggSumSq{}, ResultType: types.TBigInt},
	}
	if withFirstLast {
		calls = append(calls,
			c(AggFirstValue, agS, types.TVarchar, types.TVarchar),
			f(c(AggLastValue, agX, types.TInt, types.TInt), agF2),
		)
	}
	return calls
}

// oracleAgg computes call a over rows (in arrival order) by brute force.
// FIRST_VALUE and LAST_VALUE are taken from seqVals, the reference list
// of the call's values.
func oracleAgg(a AggCall, rows [][]row.Value, seqVals []row.Value) row.Value {
	var vals []row.Value
	nrows := 0
	for _, r := range rows {
		if a.Filter >= 0 && !r[a.Filter].AsBool() {
			continue
		}
		nrows++
		if a.Kind == AggUser && len(a.Args) > 0 {
			for _, col := range a.Args {
				if !r[col].IsNull() {
					vals = append(vals, r[col])
				}
			}
			continue
		}
		if a.Arg >= 0 && !r[a.Arg].IsNull() {
			vals = append(vals, r[a.Arg])
		}
	}
	if a.Distinct {
		slices.SortFunc(vals, row.Compare)
		vals = slices.CompactFunc(vals, row.Equal)
	}
	isFloat := a.ArgType.Storage() == row.KindFloat
	sum := func() (int64, float64) {
		var i int64
		var f float64
		for _, v := range vals {
			i += v.AsInt()
			f += v.AsFloat()
		}
		return i, f
	}
	switch a.Kind {
	case AggCountStar:
		return row.Int(int64(nrows))
	case AggCount:
		return row.Int(int64(len(vals)))
	case AggSum, AggSum0:
		if len(vals) == 0 {
			if a.Kind == AggSum {
				return row.Value{}
			}
			if isFloat {
				return row.Float(0)
			}
			return row.Int(0)
		}
		i, f := sum()
		if isFloat {
			return row.Float(f)
		}
		return row.Int(i)
	case AggAvg:
		if len(vals) == 0 {
			return row.Value{}
		}
		i, f := sum()
		n := int64(len(vals))
		switch {
		case isFloat:
			return row.Float(f / float64(n))
		case a.ResultType.Kind == types.Decimal:
			// sum / 10^as / n, to scale rs, half up.
			q := new(big.Rat).SetFrac(big.NewInt(i), big.NewInt(n))
			scale := a.ResultType.Scale - a.ArgType.Scale
			q.Mul(q, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)))
			neg := q.Sign() < 0
			q.Abs(q)
			q.Add(q, big.NewRat(1, 2))
			z := new(big.Int).Quo(q.Num(), q.Denom())
			if neg {
				z.Neg(z)
			}
			return row.Int(z.Int64())
		}
		return row.Int(i / n)
	case AggMin, AggMax:
		if len(vals) == 0 {
			return row.Value{}
		}
		m := vals[0]
		for _, v := range vals[1:] {
			if c := row.Compare(v, m); (a.Kind == AggMin) == (c < 0) && c != 0 {
				m = v
			}
		}
		return m
	case AggFirstValue:
		if len(seqVals) == 0 {
			return row.Value{}
		}
		return seqVals[0]
	case AggLastValue:
		if len(seqVals) == 0 {
			return row.Value{}
		}
		return seqVals[len(seqVals)-1]
	case AggUser:
		if len(vals) == 0 {
			return row.Value{}
		}
		var s int64
		for _, v := range vals {
			s += v.AsInt() * v.AsInt()
		}
		return row.Int(s)
	}
	panic("kind")
}

// genChangelog makes n input changes: inserts, and (unless appendOnly)
// deletions and updates of rows inserted before and still present. It
// returns the changes and the rows present at the end, in arrival order.
func genChangelog(r *rand.Rand, n int, appendOnly bool) ([]aggEv, [][]row.Value) {
	type live struct {
		id   int
		vals []row.Value
	}
	var evs []aggEv
	var present []live
	id := 0
	for len(evs) < n {
		p := r.IntN(100)
		switch {
		case appendOnly || p < 55 || len(present) == 0:
			v := aggRandRow(r)
			present = append(present, live{id, v})
			id++
			evs = append(evs, aggEv{C: Change{Op: Insert, Vals: v}})
		case p < 80:
			j := r.IntN(len(present))
			evs = append(evs, aggEv{C: Change{Op: Delete, Vals: present[j].vals}})
			present = slices.Delete(present, j, j+1)
		default:
			j := r.IntN(len(present))
			evs = append(evs, aggEv{C: Change{Op: UpdateBefore, Vals: present[j].vals}})
			present = slices.Delete(present, j, j+1)
			v := aggRandRow(r)
			present = append(present, live{id, v})
			id++
			evs = append(evs, aggEv{C: Change{Op: UpdateAfter, Vals: v}})
		}
	}
	out := make([][]row.Value, len(present))
	for i, l := range present {
		out[i] = l.vals
	}
	return evs, out
}

// seqOracle replays the changelog for the FIRST/LAST_VALUE calls: per key
// and call, the values in arrival order, a retraction removing the oldest
// equal value (the operator's documented rule).
func seqOracle(evs []aggEv, key []int, calls []AggCall) map[string][][]row.Value {
	out := map[string][][]row.Value{}
	for _, e := range evs {
		k := Key(e.C.Vals, key)
		l := out[k]
		if l == nil {
			l = make([][]row.Value, len(calls))
			out[k] = l
		}
		for i, a := range calls {
			if a.Kind != AggFirstValue && a.Kind != AggLastValue {
				continue
			}
			x := e.C.Vals[a.Arg]
			if x.IsNull() || !aggFilterOK(e.C.Vals, a.Filter) {
				continue
			}
			if !e.C.Op.IsRetract() {
				l[i] = append(l[i], x)
				continue
			}
			if j := slices.IndexFunc(l[i], func(v row.Value) bool { return row.Equal(v, x) }); j >= 0 {
				l[i] = slices.Delete(l[i], j, j+1)
			}
		}
	}
	return out
}

func groupOracle(evs []aggEv, present [][]row.Value, key []int, calls []AggCall) map[string]string {
	seqs := seqOracle(evs, key, calls)
	groups := map[string][][]row.Value{}
	var order []string
	for _, r := range present {
		k := Key(r, key)
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	want := map[string]string{}
	for _, k := range order {
		rows := groups[k]
		out := make([]row.Value, 0, len(key)+len(calls))
		for _, col := range key {
			out = append(out, rows[0][col])
		}
		for i, a := range calls {
			out = append(out, oracleAgg(a, rows, seqs[k][i]))
		}
		want[aggFmt(out[:len(key)])] = aggFmt(out)
	}
	return want
}

// TestGroupAggregateOracle: random changelogs of inserts, deletions and
// updates through GroupAggregate, at parallelism 1 and 2, for keys of one
// and two columns, the global aggregate and SELECT DISTINCT (no calls);
// the table materialised from the output changelog equals the oracle's
// GROUP BY over the rows present at the end.
func TestGroupAggregateOracle(t *testing.T) {
	r := aggRand(t)
	cases := []struct {
		name       string
		key        []int
		calls      []AggCall
		appendOnly bool
		miniBatch  time.Duration
	}{
		{"key", []int{agK}, groupCalls(true), false, 0},
		{"two-column-key", []int{agK, agS}, groupCalls(true), false, 0},
		{"global", nil, groupCalls(true), false, 0},
		{"distinct-rows", []int{agK, agX}, nil, false, 0},
		{"append-only", []int{agK}, groupCalls(true), true, 0},
		{"append-only-global", nil, groupCalls(true), true, 0},
		{"mini-batch", []int{agK}, groupCalls(true), false, time.Hour},
		{"mini-batch-short", []int{agK, agS}, groupCalls(true), false, time.Millisecond},
		{"mini-batch-distinct-rows", []int{agK, agX}, nil, false, time.Hour},
	}
	for _, tc := range cases {
		for _, par := range []int{1, 2} {
			name := fmt.Sprintf("%s/p%d", tc.name, par)
			t.Run(name, func(t *testing.T) {
				for round := range 3 {
					evs, present := genChangelog(r, 150+r.IntN(250), tc.appendOnly)
					if tc.miniBatch > 0 {
						for i := range evs {
							evs[i].TS = int64(i / 8) // a watermark every 8 rows or so
						}
					}
					want := groupOracle(evs, present, tc.key, tc.calls)
					out := aggRunChanges(t, evs, par, 0, func(in stream.Stream[Change]) stream.Stream[Change] {
						return GroupAggregate(in, tc.key, tc.calls, AggConfig{AppendOnly: tc.appendOnly, MiniBatch: tc.miniBatch})
					})
					got := aggMaterialize(t, out, len(tc.key))
					aggDiffTables(t, fmt.Sprintf("round %d", round), got, want)
					if t.Failed() {
						return
					}
					if tc.appendOnly {
						for _, c := range out {
							if c.Op == Delete {
								t.Fatalf("append-only input emitted %s", c.Op)
							}
						}
					}
				}
			})
		}
	}
}

// TestGroupAggregateEmission checks the changelog itself on a small case:
// +I first, -U/+U on change, nothing when unchanged, -D at zero rows.
func TestGroupAggregateEmission(t *testing.T) {
	ins := func(k, x int64) aggEv { return aggEv{C: Change{Op: Insert, Vals: []row.Value{row.Int(k), row.Int(x)}}} }
	del := func(k, x int64) aggEv { return aggEv{C: Change{Op: Delete, Vals: []row.Value{row.Int(k), row.Int(x)}}} }
	evs := []aggEv{ins(1, 5), ins(1, 3), ins(1, 4), del(1, 3), del(1, 5), del(1, 4)}
	calls := []AggCall{{Kind: AggMax, Arg: 1, Filter: -1, ArgType: types.TBigInt}}
	out := aggRunChanges(t, evs, 1, 0, func(in stream.Stream[Change]) stream.Stream[Change] {
		return GroupAggregate(in, []int{0}, calls, AggConfig{})
	})
	var got []string
	for _, c := range out {
		got = append(got, c.Op.String()+" "+aggFmt(c.Vals))
	}
	want := []string{
		"+I int:1|int:5",
		// ins(1,3), ins(1,4): MAX stays 5, nothing emitted.
		// del(1,3): unchanged.
		"-U int:1|int:5", "+U int:1|int:4",
		"-D int:1|int:4",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("changelog\n%q\nwant\n%q", got, want)
	}
}

// TestGroupAggregateConfigErrors: a user function without Retract on
// updating input and an AppendOnly aggregate fed a retraction fail the
// job with a message saying what to change.
func TestGroupAggregateConfigErrors(t *testing.T) {
	calls := []AggCall{{Kind: AggUser, Arg: 1, Filter: -1, User: aggNoRetract{}}}
	if err := ValidateAggs(calls, false, false); err == nil {
		t.Fatal("ValidateAggs accepted a user function without Retract on updating input")
	}
	if err := ValidateAggs(calls, true, false); err != nil {
		t.Fatalf("append-only: %v", err)
	}
	evs := []aggEv{{C: Change{Op: Insert, Vals: []row.Value{row.Int(1), row.Int(2)}}}}
	env := stream.New(stream.WithParallelism(1))
	src := stream.FromSource(env, "rows", stream.FromSlice(evs, 1), stream.WatermarkStrategy[aggEv]{})
	stream.Collect(GroupAggregate(stream.Map(src, func(e aggEv) Change { return e.C }), []int{0}, calls, AggConfig{}))
	if err := env.Execute(t.Context()); err == nil {
		t.Fatal("job ran with an invalid aggregate")
	} else {
		t.Logf("error: %v", err)
	}
	evs = append(evs, aggEv{C: Change{Op: Delete, Vals: []row.Value{row.Int(1), row.Int(2)}}})
	env = stream.New(stream.WithParallelism(1))
	src = stream.FromSource(env, "rows", stream.FromSlice(evs, 1), stream.WatermarkStrategy[aggEv]{})
	stream.Collect(GroupAggregate(stream.Map(src, func(e aggEv) Change { return e.C }), []int{0},
		[]AggCall{{Kind: AggCountStar, Arg: -1, Filter: -1}}, AggConfig{AppendOnly: true}))
	if err := env.Execute(t.Context()); err == nil {
		t.Fatal("append-only aggregate accepted a retraction")
	} else {
		t.Logf("error: %v", err)
	}
}

type aggNoRetract struct{}

func (aggNoRetract) Name() string                   { return "NORETRACT" }
func (aggNoRetract) CreateAccumulator() Accumulator { return &aggNrAcc{} }
func (aggNoRetract) DecodeAccumulator([]byte) (Accumulator, error) {
	return &aggNrAcc{}, nil
}

type aggNrAcc struct{ n int64 }

func (a *aggNrAcc) Accumulate([]row.Value)         { a.n++ }
func (a *aggNrAcc) Value() row.Value               { return row.Int(a.n) }
func (a *aggNrAcc) AppendBinary(dst []byte) []byte { return dst }

// TestGroupAggregateMiniBatch: with mini-batches, a key's rows between
// two watermarks produce one change, not one per row.
func TestGroupAggregateMiniBatch(t *testing.T) {
	var evs []aggEv
	for i := range 100 {
		evs = append(evs, aggEv{C: Change{Op: Insert, Vals: []row.Value{row.Int(1), row.Int(int64(i))}}})
	}
	// All at event time 0: the watermark is -1 after the first row and
	// stays there, so the key flushes after the first row's watermark and
	// at the end of the input.
	out := aggRunChanges(t, evs, 1, 0, func(in stream.Stream[Change]) stream.Stream[Change] {
		return GroupAggregate(in, []int{0}, []AggCall{{Kind: AggCountStar, Arg: -1, Filter: -1}, {Kind: AggSum, Arg: 1, Filter: -1, ArgType: types.TBigInt}},
			AggConfig{MiniBatch: time.Hour})
	})
	var got []string
	for _, c := range out {
		got = append(got, c.Op.String()+" "+aggFmt(c.Vals))
	}
	want := []string{"+I int:1|int:1|int:0", "-U int:1|int:1|int:0", "+U int:1|int:100|int:4950"}
	if !slices.Equal(got, want) {
		t.Fatalf("changelog %q, want %q", got, want)
	}
}
