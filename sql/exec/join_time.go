package exec

import (
	"fmt"
	"slices"
	"time"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/stream"
)

// IntervalJoin joins two append-only streams on the key columns and
// cond where right.ts - left.ts lies in [lower, upper] (bounds included;
// ts are the records' timestamps, the rowtime columns). kind is JoinInner,
// JoinLeft, JoinRight or JoinFull. The output is append-only (+I): a pair
// is emitted when its second row arrives, timestamped with the later of
// the two; rows are buffered per key until the watermark guarantees they
// can match nothing more (left: wm ≥ ts+upper; right: wm ≥ ts-lower), and
// then dropped — for the preserved side of an outer join a row that
// matched nothing is emitted null-padded at that moment, with its own
// timestamp (behind the watermark by up to upper (left) or -lower
// (right)). A pair's earlier row is behind the watermark by as much. So
// that neither is late for a downstream event-time operator (a window
// aggregation on either side's rowtime), the join forwards watermarks
// max(upper, -lower) behind its own, as Flink's does.
// A row that arrives behind the watermark is handled as Flink's
// TimeIntervalJoin handles it: it is joined with the other side's rows
// still buffered; it is buffered itself while rows of the other side
// could still match it (left: wm < ts+upper; right: wm < ts-lower); when
// none can, a row of a preserved side that matched nothing is emitted
// null-padded at once, and a row of another side is dropped. Such output
// is timestamped behind the watermark and may be late downstream. Rows
// with a null key column are dropped unless their side is preserved
// (then they are emitted padded at once). Input operations are not
// looked at: retractions are the planner's to reject.
func IntervalJoin(left, right stream.Stream[Change], leftKey, rightKey []int, kind JoinKind, lower, upper time.Duration, cond func(l, r []row.Value) bool, leftWidth, rightWidth int, cfg JoinConfig) stream.Stream[Change] {
	if len(leftKey) != len(rightKey) {
		panic(fmt.Sprintf("exec.IntervalJoin %s: %d left key columns but %d right key columns; the planner must pair them", cfg.Name, len(leftKey), len(rightKey)))
	}
	if kind > JoinFull {
		panic(fmt.Sprintf("exec.IntervalJoin %s: kind %s; an interval join is inner, left, right or full", cfg.Name, kind))
	}
	if lower > upper {
		panic(fmt.Sprintf("exec.IntervalJoin %s: lower bound %s above upper bound %s", cfg.Name, lower, upper))
	}
	op := &timedJoin{kind: kind, keys: [2][]int{leftKey, rightKey}, widths: [2]int{leftWidth, rightWidth}, cond: cond, cfg: cfg, lo: lower.Milliseconds(), hi: upper.Milliseconds()}
	opts := append(cfg.opts("interval-join-"+kind.String(), len(leftKey) > 0), stream.WatermarkDelay(max(upper, -lower)))
	return coKeyed(left, right, func(c Change) string { return keyOf(c.Vals, leftKey) }, func(c Change) string { return keyOf(c.Vals, rightKey) }, op.openInterval, opts)
}

// timedJoin is the configuration shared by interval and window joins.
type timedJoin struct {
	kind   JoinKind
	keys   [2][]int
	widths [2]int
	cond   func(l, r []row.Value) bool
	cfg    JoinConfig
	lo, hi int64
	// win are the window_start, window_end columns of each side (window
	// join only).
	win [2][2]int
}

func (op *timedJoin) pair(l, r []row.Value) []row.Value {
	out := make([]row.Value, op.widths[0]+op.widths[1])
	copy(out[:op.widths[0]], l)
	copy(out[op.widths[0]:], r)
	return out
}

// matchEnd is the watermark from which a row of side s at ts can match
// no row of the other side that has not arrived (their rows behind the
// watermark aside): ts+upper for a left row, ts-lower for a right one.
func (op *timedJoin) matchEnd(s int, ts int64) int64 {
	if s == 0 {
		return ts + op.hi
	}
	return ts - op.lo
}

// padded returns the null-padded output row of side s's values v.
func (op *timedJoin) padded(s int, v []row.Value) []row.Value {
	if s == 0 {
		return op.pair(v, nil)
	}
	return op.pair(nil, v)
}

func (op *timedJoin) openInterval(ctx *stream.KeyedContext[string, Change]) (sidedFunc, error) {
	f := &intervalFunc{timedJoin: op, cnd: newJoinCond(op.cond, op.cfg, op.widths)}
	var err error
	if f.rows[0], err = state.NewList[string, timedRow](ctx.State(), "left"); err != nil {
		return nil, fmt.Errorf("interval join left state: %w", err)
	}
	if f.rows[1], err = state.NewList[string, timedRow](ctx.State(), "right"); err != nil {
		return nil, fmt.Errorf("interval join right state: %w", err)
	}
	return f, nil
}

type intervalFunc struct {
	*timedJoin
	rows [2]*state.List[string, timedRow]
	cnd  joinCond
}

func (f *intervalFunc) process(ctx *stream.KeyedContext[string, Change], s int, c Change) {
	ts := ctx.Timestamp()
	if hasNull(c.Vals, f.keys[s]) {
		if f.kind.preserves(s) {
			ctx.EmitAt(Change{Op: Insert, Vals: f.padded(s, c.Vals)}, ts)
		}
		return
	}
	o := 1 - s
	me := timedRow{Vals: c.Vals, Ts: ts}
	others := f.rows[o].Values()
	changed := false
	for i := range others {
		r := &others[i]
		l, lts, rv, rts := c.Vals, ts, r.Vals, r.Ts
		if s == 1 {
			l, lts, rv, rts = r.Vals, r.Ts, c.Vals, ts
		}
		if d := rts - lts; d < f.lo || d > f.hi || !f.cnd.ok(l, rv) {
			continue
		}
		ctx.EmitAt(Change{Op: Insert, Vals: f.pair(l, rv)}, max(lts, rts))
		me.Matched = true
		if !r.Matched && f.kind.preserves(o) {
			if !changed {
				// The state owns the slice: change a copy, then
				// write it back.
				others = slices.Clone(others)
				r = &others[i]
				changed = true
			}
			r.Matched = true
		}
	}
	if changed {
		f.rows[o].Update(others)
	}
	if end := f.matchEnd(s, ts); end > ctx.Watermark() {
		f.rows[s].Add(me)
		ctx.RegisterEventTimer(end)
		return
	}
	// Late: no row of the other side to come can match it any more.
	if !me.Matched && f.kind.preserves(s) {
		ctx.EmitAt(Change{Op: Insert, Vals: f.padded(s, c.Vals)}, ts)
	}
}

// OnTimer drops the rows that can match nothing more, emitting the
// unmatched ones of a preserved side.
func (f *intervalFunc) OnTimer(ctx *stream.KeyedContext[string, Change], t stream.Timer) {
	for s := range 2 {
		rows := f.rows[s].Values()
		var keep []timedRow
		dropped := false
		for i, r := range rows {
			if f.matchEnd(s, r.Ts) > t.Time {
				if dropped {
					keep = append(keep, r)
				}
				continue
			}
			if !dropped {
				// The state owns rows: collect the kept ones apart.
				dropped = true
				keep = append(make([]timedRow, 0, len(rows)-1), rows[:i]...)
			}
			if !r.Matched && f.kind.preserves(s) {
				ctx.EmitAt(Change{Op: Insert, Vals: f.padded(s, r.Vals)}, r.Ts)
			}
		}
		if dropped {
			f.rows[s].Update(keep)
		}
	}
}

// WindowJoin is Flink's window join: both inputs are windowed (each has
// window_start and window_end columns, leftWin and rightWin, such as the
// output of a window aggregation or a window table function), and rows
// join when their keys, their window_start and their window_end are equal
// and cond holds. The rows of a window are buffered per key and window;
// when the watermark reaches window_end - 1 the window's pairs are emitted
// (+I, timestamped window_end - 1), with null-padded rows for the
// unmatched rows of a preserved side (kind may be any but JoinSemi and
// JoinAnti), and the window's state is dropped. Rows whose window has
// already fired (window_end - 1 ≤ watermark) are dropped as late. The
// output is append-only; input operations are not looked at. The window
// columns must hold TIMESTAMP values (row.KindTimestamp, epoch ms).
func WindowJoin(left, right stream.Stream[Change], leftKey, rightKey []int, leftWin, rightWin [2]int, kind JoinKind, cond func(l, r []row.Value) bool, leftWidth, rightWidth int, cfg JoinConfig) stream.Stream[Change] {
	if len(leftKey) != len(rightKey) {
		panic(fmt.Sprintf("exec.WindowJoin %s: %d left key columns but %d right key columns; the planner must pair them", cfg.Name, len(leftKey), len(rightKey)))
	}
	if kind > JoinFull {
		panic(fmt.Sprintf("exec.WindowJoin %s: kind %s; a window join is inner, left, right or full", cfg.Name, kind))
	}
	// The stream key is the equi-key plus the window: one key holds the
	// rows of one window, and its timer fires them.
	lcols := append(append([]int(nil), leftKey...), leftWin[0], leftWin[1])
	rcols := append(append([]int(nil), rightKey...), rightWin[0], rightWin[1])
	op := &timedJoin{kind: kind, keys: [2][]int{leftKey, rightKey}, widths: [2]int{leftWidth, rightWidth}, cond: cond, cfg: cfg, win: [2][2]int{leftWin, rightWin}}
	return coKeyed(left, right, func(c Change) string { return keyOf(c.Vals, lcols) }, func(c Change) string { return keyOf(c.Vals, rcols) }, op.openWindow, cfg.opts("window-join-"+kind.String(), true))
}

func (op *timedJoin) openWindow(ctx *stream.KeyedContext[string, Change]) (sidedFunc, error) {
	f := &windowJoinFunc{timedJoin: op, cnd: newJoinCond(op.cond, op.cfg, op.widths)}
	var err error
	if f.rows[0], err = state.NewList[string, timedRow](ctx.State(), "left"); err != nil {
		return nil, fmt.Errorf("window join left state: %w", err)
	}
	if f.rows[1], err = state.NewList[string, timedRow](ctx.State(), "right"); err != nil {
		return nil, fmt.Errorf("window join right state: %w", err)
	}
	return f, nil
}

type windowJoinFunc struct {
	*timedJoin
	rows [2]*state.List[string, timedRow]
	cnd  joinCond
}

func (f *windowJoinFunc) process(ctx *stream.KeyedContext[string, Change], s int, c Change) {
	endCol := f.win[s][1]
	if endCol >= len(c.Vals) || c.Vals[endCol].Kind() != row.KindTimestamp {
		panic(fmt.Sprintf("exec.WindowJoin: window_end column %d of the %s input is not a TIMESTAMP in row %v; the planner must pass the window columns", endCol, [2]string{"left", "right"}[s], c.Vals))
	}
	fire := c.Vals[endCol].AsInt() - 1
	if fire <= ctx.Watermark() {
		return // late: the window has fired
	}
	f.rows[s].Add(timedRow{Vals: c.Vals, Ts: ctx.Timestamp()})
	ctx.RegisterEventTimer(fire)
}

// OnTimer fires the window of the current key.
func (f *windowJoinFunc) OnTimer(ctx *stream.KeyedContext[string, Change], t stream.Timer) {
	ls, rs := f.rows[0].Values(), f.rows[1].Values()
	rMatched := make([]bool, len(rs))
	for _, l := range ls {
		matched := false
		if !hasNull(l.Vals, f.keys[0]) {
			for j, r := range rs {
				if hasNull(r.Vals, f.keys[1]) || !f.cnd.ok(l.Vals, r.Vals) {
					continue
				}
				ctx.EmitAt(Change{Op: Insert, Vals: f.pair(l.Vals, r.Vals)}, t.Time)
				matched = true
				rMatched[j] = true
			}
		}
		if !matched && f.kind.preserves(0) {
			ctx.EmitAt(Change{Op: Insert, Vals: f.padded(0, l.Vals)}, t.Time)
		}
	}
	if f.kind.preserves(1) {
		for j, r := range rs {
			if !rMatched[j] {
				ctx.EmitAt(Change{Op: Insert, Vals: f.padded(1, r.Vals)}, t.Time)
			}
		}
	}
	f.rows[0].Clear()
	f.rows[1].Clear()
}
