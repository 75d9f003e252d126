package pipeline

import (
	"context"
	"fmt"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/sql/types"
	"github.com/sluicehq/sluice/stream"
)

// A window step over a changelog's rows runs on the SQL engine's window
// aggregation over updating input (exec.WindowAggregate without
// AppendOnly): +I and +U rows add to, -U and -D rows retract from, the
// windows of their event time, with the retractable accumulators of SQL
// aggregates, and each window emits its result once, when the watermark
// passes its end (nothing when all its rows were retracted). The rows
// come through the changelog's normalisation (buildNormalize), so that a
// retraction is the whole old row at that row's event time.
//
// The step's aggregates map onto SQL calls over columns computed from each
// row: the key fields, then per aggregate its argument. sum and avg keep
// the step's typing (an integer sum until a float value is in the window)
// with two columns, the argument when it is an integer and when it is a
// float, each summed and counted.

// clAgg is how one aggregate of the step maps onto calls: its calls start
// at call, its argument columns (cols of them) at col.
type clAgg struct {
	fn              string
	call, col, cols int
}

// changelogWindowCalls lays the step's aggregates out as SQL calls over
// the columns after the key columns, and returns the number of columns.
func changelogWindowCalls(w *windowPlan) ([]clAgg, []exec.AggCall, int) {
	var calls []exec.AggCall
	var aggs []clAgg
	col := len(w.keyIdx)
	call := func(k exec.AggKind, arg int, t types.Type) exec.AggCall {
		return exec.AggCall{Kind: k, Arg: arg, Filter: -1, ArgType: t, ResultType: t}
	}
	for _, a := range w.aggs {
		ca := clAgg{fn: a.fn, call: len(calls), col: col, cols: 1}
		switch a.fn {
		case "count":
			if a.arg == nil {
				calls = append(calls, call(exec.AggCountStar, -1, types.TBigInt))
				ca.cols = 0
			} else {
				calls = append(calls, call(exec.AggCount, col, types.TBigInt))
			}
		case "count_distinct":
			c := call(exec.AggCount, col, types.TBigInt)
			c.Distinct = true
			calls = append(calls, c)
		case "min":
			calls = append(calls, call(exec.AggMin, col, types.TBigInt))
		case "max":
			calls = append(calls, call(exec.AggMax, col, types.TBigInt))
		case "sum", "avg":
			// col: the integer values, col+1: the float values; each
			// summed and counted.
			ca.cols = 2
			calls = append(calls, call(exec.AggSum, col, types.TBigInt), call(exec.AggSum, col+1, types.TDouble),
				call(exec.AggCount, col, types.TBigInt), call(exec.AggCount, col+1, types.TBigInt))
		}
		col += ca.cols
		aggs = append(aggs, ca)
	}
	return aggs, calls, col
}

// changeVals lays a prepared row out as the aggregation's columns.
func changeVals(x winIn, aggs []clAgg, width int) []row.Value {
	vals := make([]row.Value, width)
	copy(vals, x.keyVals)
	for i, a := range aggs {
		v := x.args[i]
		switch {
		case a.cols == 1:
			vals[a.col] = v
		case a.cols == 2 && v.Kind() == row.KindFloat:
			vals[a.col+1] = v
		case a.cols == 2 && !v.IsNull():
			vals[a.col] = row.Int(v.AsInt())
		}
	}
	return vals
}

// changelogResult is the step's value of aggregate a from the calls'
// results res.
func changelogResult(a clAgg, res []row.Value) row.Value {
	switch a.fn {
	case "sum", "avg":
		si, sf := res[a.call], res[a.call+1]
		ni, nf := res[a.call+2].AsInt(), res[a.call+3].AsInt()
		if ni+nf == 0 {
			return row.Null()
		}
		var total float64
		if ni > 0 {
			total = float64(si.AsInt())
		}
		if nf > 0 {
			total += sf.AsFloat()
		}
		if a.fn == "avg" {
			return row.Float(total / float64(ni+nf))
		}
		if nf > 0 {
			return row.Float(total)
		}
		return si
	}
	return res[a.call]
}

// buildChangelogWindow adds a window step over a changelog's rows.
func buildChangelogWindow(ctx context.Context, rows stream.Stream[row.Row], w *windowPlan, in schemaRef, dl *deadLetters) stream.Stream[row.Row] {
	aggs, calls, width := changelogWindowCalls(w)
	nk := len(w.keyIdx)
	changes := stream.FlatMap(rows, func(r row.Row, em *stream.Emitter[exec.Change]) {
		op, ok := opByName[r.Get(w.opIdx).AsString()]
		if !ok {
			w.reject(ctx, dl, in, r, w.stage, fmt.Errorf("field %s: %q is not a change (+I, -U, +U, -D)", changelogField, r.Get(w.opIdx).String()))
			return
		}
		x, stage, err := w.prepare(r, em.Timestamp())
		if err != nil {
			// A retraction is the normalisation's copy of a row it kept,
			// whose insertion failed the same way and went to the dead
			// letters then; the windows never held it: drop it, once.
			if !op.IsRetract() {
				w.reject(ctx, dl, in, r, stage, err)
			}
			return
		}
		em.Emit(exec.Change{Op: op, Vals: changeVals(x, aggs, width)})
	}, stream.Name(w.stage+".prepare"))
	key := make([]int, nk)
	for i := range key {
		key[i] = i
	}
	spec := exec.WindowSpec{Kind: exec.Tumble, Size: w.spec.Size}
	if w.spec.Type == "sliding" {
		spec = exec.WindowSpec{Kind: exec.Hop, Size: w.spec.Size, Slide: w.spec.Slide}
	}
	res := exec.WindowAggregate(changes, key, spec, calls, exec.AggConfig{Name: w.stage})
	outLen := w.out.Len()
	return stream.Map(res, func(c exec.Change) row.Row {
		vals := make([]row.Value, outLen)
		copy(vals, c.Vals[:nk])
		vals[nk] = row.Int(c.Vals[nk].AsInt())
		vals[nk+1] = row.Int(c.Vals[nk+1].AsInt())
		for i, a := range aggs {
			vals[nk+2+i] = changelogResult(a, c.Vals[nk+3:])
		}
		return row.Row{Vals: vals}
	}, stream.Name(w.stage+".emit"))
}
