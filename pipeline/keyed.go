package pipeline

import (
	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/stream"
)

// keyedRow is a row with its encoded key, computed once before an
// exchange.
type keyedRow struct {
	key rowKey
	r   row.Row
}

func withKey(rows stream.Stream[row.Row], idx []int, dropNullKeys bool, name string) stream.KeyedStream[rowKey, keyedRow] {
	kr := stream.FlatMap(rows, func(r row.Row, em *stream.Emitter[keyedRow]) {
		if dropNullKeys {
			for _, p := range idx {
				if r.Get(p).IsNull() {
					return
				}
			}
		}
		em.Emit(keyedRow{key: makeKey(r, idx), r: r})
	}, stream.Name(name))
	return stream.KeyBy(kr, func(k keyedRow) rowKey { return k.key })
}

// buildDedup keeps the first record of each key and drops records with
// the same key whose event time is before that record's time + within.
// The key's state expires when the watermark passes that time; a record
// of the key after that is kept again and starts a new interval.
func buildDedup(rows stream.Stream[row.Row], d *dedupPlan, name string) stream.Stream[row.Row] {
	ks := withKey(rows, d.keyIdx, false, name+".key")
	within := d.within.Milliseconds()
	return stream.KeyedProcess(ks, func(ctx *stream.KeyedContext[rowKey, row.Row]) (stream.KeyedProcessFunc[rowKey, keyedRow, row.Row], error) {
		until, err := state.NewValue[rowKey, int64](ctx.State(), "until")
		if err != nil {
			return nil, err
		}
		return stream.KeyedProcessFuncs[rowKey, keyedRow, row.Row]{
			Element: func(ctx *stream.KeyedContext[rowKey, row.Row], k keyedRow) {
				ts := ctx.Timestamp()
				if u, ok := until.Get(); ok && ts < u {
					return
				}
				ctx.Emit(k.r)
				until.Set(ts + within)
				ctx.RegisterEventTimer(ts + within)
			},
			Timer: func(ctx *stream.KeyedContext[rowKey, row.Row], t stream.Timer) {
				if u, ok := until.Get(); ok && u <= t.Time {
					until.Clear()
				}
			},
		}, nil
	}, stream.Name(name))
}

// buildJoin is an inner interval join: a left and a right record with
// equal, non-null keys are joined when the right record's event time is
// within [left - within, left + within]. The output is the left row with
// the right's chosen fields set, timestamped with the later of the two.
func buildJoin(left, right stream.Stream[row.Row], j *joinPlan, name string) stream.Stream[row.Row] {
	lk := withKey(left, j.leftKey, true, name+".left-key")
	rk := withKey(right, j.rightKey, true, name+".right-key")
	w := j.spec.Within
	return stream.IntervalJoin(lk, rk, -w, w, func(l, r keyedRow) row.Row {
		n := max(j.outLen(), len(l.r.Vals))
		vals := make([]row.Value, n)
		copy(vals, l.r.Vals)
		for i, from := range j.fieldsFrom {
			vals[j.fieldsTo[i]] = r.r.Get(from)
		}
		return row.Row{Vals: vals, Rest: l.r.Rest}
	}, stream.Name(name))
}
