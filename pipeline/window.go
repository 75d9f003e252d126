package pipeline

import (
	"context"
	"fmt"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/stream"
	"github.com/sluicehq/sluice/window"
)

// winIn is a record entering a window step: its key (encoded, and the
// values for the output), its evaluated aggregate arguments and its event
// time.
type winIn struct {
	key     rowKey
	keyVals []row.Value
	args    []row.Value
	ts      int64
}

// winAcc is a window's accumulator: the key values and one state per
// aggregate.
type winAcc struct {
	keyVals []row.Value
	aggs    []aggState
}

type aggState struct {
	n        int64 // rows (count()) or non-null values
	isFloat  bool
	i        int64
	f        float64
	v        row.Value
	ts       int64
	set      bool
	distinct map[string]struct{}
}

// prepare computes what a row brings to its windows: the key, the key
// values for the output and the aggregates' arguments. A failing
// argument returns the aggregate's stage name with the error.
func (w *windowPlan) prepare(r row.Row, ts int64) (winIn, string, error) {
	x := winIn{ts: ts}
	x.keyVals = make([]row.Value, len(w.keyIdx), len(w.keyIdx)+len(w.aggs))
	for i, p := range w.keyIdx {
		x.keyVals[i] = r.Get(p)
	}
	x.key = makeKey(r, w.keyIdx)
	x.args = x.keyVals[len(w.keyIdx):len(w.keyIdx)]
	for _, a := range w.aggs {
		var v row.Value
		if a.arg != nil {
			var err error
			v, err = a.arg.eval(r.Vals)
			if err == nil && (a.fn == "sum" || a.fn == "avg") && !v.IsNull() && !v.IsNumber() {
				err = fmt.Errorf("%w: %s(%s): %s is a %s, not a number", ErrEval, a.fn, a.arg.src, v, v.Kind())
			}
			if err != nil {
				return winIn{}, w.stage + ".aggregate." + a.name, err
			}
		}
		x.args = append(x.args, v)
	}
	return x, "", nil
}

// add folds a prepared row into a window's accumulator.
func (w *windowPlan) add(acc *winAcc, x winIn) {
	if acc.keyVals == nil {
		acc.keyVals = x.keyVals[:len(w.keyIdx):len(w.keyIdx)]
	}
	for i := range w.aggs {
		acc.aggs[i].add(w.aggs[i].fn, w.aggs[i].arg == nil, x.args[i], x.ts)
	}
}

// merge folds accumulator b into a (merging session windows) and
// returns a.
func (w *windowPlan) merge(a, b *winAcc) *winAcc {
	if a.keyVals == nil {
		a.keyVals = b.keyVals
	}
	for i := range w.aggs {
		a.aggs[i].merge(w.aggs[i].fn, &b.aggs[i])
	}
	return a
}

// newAcc is an empty accumulator.
func (w *windowPlan) newAcc() *winAcc { return &winAcc{aggs: make([]aggState, len(w.aggs))} }

// result is a window's output row values: the key, then (left for the
// caller) start and end, then the aggregates.
func (w *windowPlan) result(acc *winAcc) []row.Value {
	nKey := len(w.keyIdx)
	out := make([]row.Value, w.out.Len())
	copy(out, acc.keyVals)
	for i := range w.aggs {
		out[nKey+2+i] = acc.aggs[i].result(w.aggs[i].fn)
	}
	return out
}

// reject sends r, which failed at stage of the window step, to the dead
// letters; when they cannot take it the job fails (the panic of a step's
// function).
func (w *windowPlan) reject(ctx context.Context, dl *deadLetters, in schemaRef, r row.Row, stage string, err error) {
	if ferr := dl.report(ctx, failure{Stage: stage, Origin: w.stage, Offset: -1, Err: err, Row: &r, Schema: in()}); ferr != nil {
		panic(ferr)
	}
}

func buildWindow(ctx context.Context, rows stream.Stream[row.Row], w *windowPlan, in schemaRef, dl *deadLetters) stream.Stream[row.Row] {
	pre := stream.FlatMap(rows, func(r row.Row, em *stream.Emitter[winIn]) {
		x, stage, err := w.prepare(r, em.Timestamp())
		if err != nil {
			w.reject(ctx, dl, in, r, stage, err)
			return
		}
		em.Emit(x)
	}, stream.Name(w.stage+".prepare"))
	ks := stream.KeyBy(pre, func(x winIn) rowKey { return x.key })
	var a window.Assigner
	switch w.spec.Type {
	case "tumbling":
		a = window.Tumbling(w.spec.Size)
	case "sliding":
		a = window.Sliding(w.spec.Size, w.spec.Slide)
	default:
		a = window.Session(w.spec.Gap)
	}
	ws := stream.Window(ks, a).AllowedLateness(w.spec.AllowedLateness)
	nKey := len(w.keyIdx)
	agg := stream.Aggregate(ws, stream.Aggregator[winIn, *winAcc, []row.Value]{
		Init: w.newAcc,
		Add: func(acc *winAcc, x winIn) *winAcc {
			w.add(acc, x)
			return acc
		},
		Merge:  w.merge,
		Result: w.result,
	}, stream.Name(w.stage))
	return stream.Map(agg, func(x stream.Windowed[rowKey, []row.Value]) row.Row {
		x.Value[nKey] = row.Int(x.Window.Start)
		x.Value[nKey+1] = row.Int(x.Window.End)
		return row.Row{Vals: x.Value}
	}, stream.Name(w.stage+".emit"))
}

// add folds one value into the state. star marks count().
func (s *aggState) add(fn string, star bool, v row.Value, ts int64) {
	if star {
		s.n++
		return
	}
	if v.IsNull() {
		return
	}
	s.n++
	switch fn {
	case "sum", "avg":
		if v.Kind() == row.KindFloat && !s.isFloat {
			s.isFloat = true
			s.f = float64(s.i)
		}
		if s.isFloat {
			s.f += v.AsFloat()
		} else {
			s.i += v.AsInt()
		}
	case "min", "max":
		if !s.set || beats(fn, v, s.v) {
			s.v, s.set = v, true
		}
	case "first":
		if !s.set || ts < s.ts {
			s.v, s.ts, s.set = v, ts, true
		}
	case "last":
		if !s.set || ts >= s.ts {
			s.v, s.ts, s.set = v, ts, true
		}
	case "count_distinct":
		if s.distinct == nil {
			s.distinct = map[string]struct{}{}
		}
		k := row.Row{Vals: []row.Value{v}}.AppendKey(nil, []int{0})
		s.distinct[string(k)] = struct{}{}
	}
}

// beats reports whether v replaces the current min or max (fn) cur: it
// is smaller (min) or larger (max), or equal to an integer cur as a
// float. A tie between an integer and a float gives the float whatever
// their order, as min and max over a changelog do (exec's multisets keep
// the two apart), so that the result's kind does not depend on arrival.
func beats(fn string, v, cur row.Value) bool {
	c := row.Compare(v, cur)
	if c == 0 {
		return v.Kind() == row.KindFloat && cur.Kind() == row.KindInt
	}
	return (c < 0) == (fn == "min")
}

// merge folds o into s (session windows merging).
func (s *aggState) merge(fn string, o *aggState) {
	switch fn {
	case "count":
		s.n += o.n
	case "sum", "avg":
		s.n += o.n
		switch {
		case s.isFloat || o.isFloat:
			a, b := s.f, o.f
			if !s.isFloat {
				a = float64(s.i)
			}
			if !o.isFloat {
				b = float64(o.i)
			}
			s.f, s.isFloat = a+b, true
		default:
			s.i += o.i
		}
	case "min", "max", "first", "last":
		if !o.set {
			return
		}
		var take bool
		switch fn {
		case "min", "max":
			take = !s.set || beats(fn, o.v, s.v)
		case "first":
			take = !s.set || o.ts < s.ts
		default:
			take = !s.set || o.ts >= s.ts
		}
		if take {
			s.v, s.ts, s.set = o.v, o.ts, true
		}
	case "count_distinct":
		if s.distinct == nil {
			s.distinct = map[string]struct{}{}
		}
		for k := range o.distinct {
			s.distinct[k] = struct{}{}
		}
	}
}

func (s *aggState) result(fn string) row.Value {
	switch fn {
	case "count":
		return row.Int(s.n)
	case "count_distinct":
		return row.Int(int64(len(s.distinct)))
	case "sum":
		if s.n == 0 {
			return row.Null()
		}
		if s.isFloat {
			return row.Float(s.f)
		}
		return row.Int(s.i)
	case "avg":
		if s.n == 0 {
			return row.Null()
		}
		if s.isFloat {
			return row.Float(s.f / float64(s.n))
		}
		return row.Float(float64(s.i) / float64(s.n))
	}
	if !s.set {
		return row.Null()
	}
	return s.v
}
