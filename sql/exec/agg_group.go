package exec

import (
	"fmt"
	"math"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/stream"
)

// aggKeyed is a Change with its group key, computed once before the
// exchange (KeyBy calls its key function on both sides).
type aggKeyed struct {
	key string
	c   Change
}

// aggKeyBy keys the input by the columns key. The keying step inherits
// the input's parallelism (and so its order). A configuration error
// cfgErr fails the job at the first row.
func aggKeyBy(in stream.Stream[Change], key []int, name string, cfgErr error) stream.KeyedStream[string, aggKeyed] {
	keyed := stream.Map(in, func(c Change) aggKeyed {
		if cfgErr != nil {
			panic(cfgErr)
		}
		return aggKeyed{key: keyOf(c.Vals, key), c: c}
	}, stream.Name(name+"-key"))
	return stream.KeyBy(keyed, func(k aggKeyed) string { return k.key })
}

// GroupAggregate is a non-windowed GROUP BY over key (input columns)
// computing aggs, with an updating result: output Vals are the key
// columns (in key order) then one column per AggCall.
//
// Input rows +I and +U accumulate, -U and -D retract. A key's first
// result is emitted as +I; a changed result as -U (the previous row) and
// +U (the new one); an unchanged result emits nothing; when a key's row
// count drops to zero its result is withdrawn with -D and its state
// cleared. With no aggs the operator is SELECT DISTINCT: +I once per key,
// -D when its rows are all retracted. With no key it is a global
// aggregate, run at parallelism 1.
//
// Errors in the configuration (an unknown kind, a user function without
// Retract on updating input) fail the job when the first row arrives,
// with a message saying what to change; ValidateAggs reports them at
// planning time.
func GroupAggregate(in stream.Stream[Change], key []int, aggs []AggCall, cfg AggConfig) stream.Stream[Change] {
	name := cfg.Name
	if name == "" {
		name = "group-aggregate"
	}
	par := cfg.Parallelism
	if len(key) == 0 {
		par = 1
	}
	p, err := compileAggs(aggs, !cfg.AppendOnly, false)
	if p != nil {
		p.onError = cfg.OnError
	}
	if err != nil {
		err = fmt.Errorf("%s: %w", name, err)
	}
	key = append([]int(nil), key...)
	ks := aggKeyBy(in, key, name, err)
	opts := []stream.OpOption{stream.Name(name)}
	if par > 0 {
		opts = append(opts, stream.Parallelism(par))
	}
	ttl := cfg.StateTTL.Milliseconds()
	if cfg.StateTTL > 0 && ttl == 0 {
		ttl = 1
	}
	mb := cfg.MiniBatch.Milliseconds()
	if cfg.MiniBatch > 0 && mb == 0 {
		mb = 1
	}
	return stream.KeyedProcess(ks, func(ctx *stream.KeyedContext[string, Change]) (stream.KeyedProcessFunc[string, aggKeyed, Change], error) {
		st, err := state.NewValue[string, *accRow](ctx.State(), "acc")
		if err != nil {
			return nil, err
		}
		return &groupFunc{p: p, st: st, key: key, appendOnly: cfg.AppendOnly, ttl: ttl, miniBatch: mb, res: make([]row.Value, len(aggs)), name: name}, nil
	}, opts...)
}

// ValidateAggs checks aggs as GroupAggregate (merge false) or a session
// WindowAggregate (merge true) would, so that a planner reports errors
// before the job starts.
func ValidateAggs(aggs []AggCall, appendOnly, merge bool) error {
	_, err := compileAggs(aggs, !appendOnly, merge)
	return err
}

type groupFunc struct {
	p          *aggPlan
	st         *state.Value[string, *accRow]
	key        []int
	appendOnly bool
	ttl        int64
	miniBatch  int64
	res        []row.Value
	name       string
}

func (f *groupFunc) ProcessElement(ctx *stream.KeyedContext[string, Change], kc aggKeyed) {
	c := kc.c
	sign := int64(1)
	if c.Op.IsRetract() {
		if f.appendOnly {
			panic(fmt.Errorf("%s: a %s row arrived but the aggregate was planned for append-only input (AggConfig.AppendOnly)", f.name, c.Op))
		}
		sign = -1
	}
	a, ok := f.st.Get()
	var now int64
	if f.ttl > 0 || f.miniBatch > 0 {
		now = ctx.ProcessingTime()
	}
	if f.ttl > 0 && ok && now-a.touched >= f.ttl {
		// Expired, its timer not yet fired: never read expired state.
		f.st.Clear()
		ok = false
	}
	if !ok {
		if sign < 0 {
			return // retraction of a row whose state expired (or never was)
		}
		a = f.p.newAcc()
	}
	f.p.fixup(a)
	if sign < 0 && !f.p.holds(a, c.Vals) {
		return // a row the group never held (aggPlan.holds)
	}
	if f.ttl > 0 {
		a.touched = now
		if a.timer == 0 {
			a.timer = now + f.ttl
			ctx.RegisterProcessingTimer(a.timer)
		}
	}
	a.rows += sign
	f.p.accumulate(a, c.Vals, sign)
	if f.miniBatch > 0 {
		if a.out == nil && a.keyVals == nil {
			a.keyVals = make([]row.Value, len(f.key))
			for i, col := range f.key {
				a.keyVals[i] = aggOwn(c.Vals[col])
			}
		}
		if !a.dirty {
			a.dirty = true
			if wm := ctx.Watermark(); wm < math.MaxInt64 {
				ctx.RegisterEventTimer(wm + 1)
			}
			a.flushAt = now + f.miniBatch
			ctx.RegisterProcessingTimer(a.flushAt)
		}
		f.st.Set(a)
		return
	}
	if f.emit(ctx, a, c.Vals) {
		f.st.Set(a)
	}
}

// emit sends the change of a's result since the row emitted last and
// reports whether a is still live (else its state is cleared). The key
// columns of a first result come from vals (the current row) or, when
// vals is nil, from a.keyVals.
func (f *groupFunc) emit(ctx *stream.KeyedContext[string, Change], a *accRow, vals []row.Value) bool {
	if a.rows <= 0 {
		if a.out != nil {
			ctx.Emit(Change{Op: Delete, Vals: a.out})
		}
		if a.timer != 0 {
			ctx.DeleteProcessingTimer(a.timer)
		}
		if a.dirty {
			ctx.DeleteProcessingTimer(a.flushAt)
		}
		f.st.Clear()
		return false
	}
	f.p.results(a, f.res)
	nk := len(f.key)
	switch {
	case a.out == nil:
		out := make([]row.Value, nk+len(f.res))
		if vals != nil {
			for i, col := range f.key {
				out[i] = aggOwn(vals[col])
			}
		} else {
			copy(out, a.keyVals)
			a.keyVals = nil
		}
		copy(out[nk:], f.res)
		a.out = out
		ctx.Emit(Change{Op: Insert, Vals: out})
	case !aggEqualVals(a.out[nk:], f.res):
		out := make([]row.Value, nk+len(f.res))
		copy(out, a.out[:nk])
		copy(out[nk:], f.res)
		ctx.Emit(Change{Op: UpdateBefore, Vals: a.out})
		ctx.Emit(Change{Op: UpdateAfter, Vals: out})
		a.out = out
	}
	return true
}

// OnTimer flushes a mini-batch (an event timer, or the key's flush
// timer) and expires a key idle for the TTL.
func (f *groupFunc) OnTimer(ctx *stream.KeyedContext[string, Change], t stream.Timer) {
	a, ok := f.st.Get()
	if !ok {
		return
	}
	f.p.fixup(a)
	if a.dirty && (t.Domain == stream.EventTime || t.Time == a.flushAt) {
		a.dirty = false
		if t.Domain == stream.EventTime {
			ctx.DeleteProcessingTimer(a.flushAt)
		}
		if !f.emit(ctx, a, nil) {
			return
		}
		f.st.Set(a)
	}
	if t.Domain != stream.ProcessingTime || a.timer != t.Time {
		return
	}
	if due := a.touched + f.ttl; due > t.Time {
		a.timer = due
		ctx.RegisterProcessingTimer(due)
		f.st.Set(a)
		return
	}
	f.st.Clear()
}
