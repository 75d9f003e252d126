package exec

import (
	"fmt"
	"slices"
	"time"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/stream"
)

// JoinKind is the kind of a join.
type JoinKind uint8

// The join kinds. Semi and anti joins (EXISTS / NOT EXISTS, IN / NOT IN
// rewritten by the planner) output the left row only.
const (
	JoinInner JoinKind = iota
	JoinLeft
	JoinRight
	JoinFull
	JoinSemi
	JoinAnti
)

var joinKindNames = [...]string{"INNER", "LEFT", "RIGHT", "FULL", "SEMI", "ANTI"}

// String returns the kind as SQL names it.
func (k JoinKind) String() string {
	if int(k) < len(joinKindNames) {
		return joinKindNames[k]
	}
	return fmt.Sprintf("JoinKind(%d)", uint8(k))
}

// preserves reports whether side s (0 left, 1 right) of an outer join
// keeps its rows that match nothing (null-padded).
func (k JoinKind) preserves(s int) bool {
	if s == 0 {
		return k == JoinLeft || k == JoinFull
	}
	return k == JoinRight || k == JoinFull
}

// JoinConfig configures a join operator.
type JoinConfig struct {
	// Name is the operator's name (metrics, errors, checkpoints).
	Name string
	// Parallelism of the operator; 0 uses the Env's. A join without an
	// equi-key runs at parallelism 1 whatever this says.
	Parallelism int
	// StateTTL, when positive, drops the rows of a regular join's state
	// that were not written for that long (processing time), like Flink's
	// table.exec.state.ttl. An expired row is never read again, even
	// before its processing-time timer removes it. Expiry emits nothing:
	// a later retraction of an expired row is ignored, and a row of the
	// other side no longer matches it (nor retracts a padded row of it).
	// 0 keeps state forever. IntervalJoin and WindowJoin ignore it: the
	// watermark cleans their state.
	StateTTL time.Duration
	// AppendOnly promises that an input (0 left, 1 right) of a regular
	// join holds only inserts: its rows are then kept per key in a list
	// (list state named "left-rows" or "right-rows") rather than in a
	// map from their encoding, equal rows apart rather than counted, and
	// a retraction fails the job.
	AppendOnly [2]bool
	// JoinedCond, when set, replaces the cond argument: the condition as
	// a predicate on the joined row (the left values then the right
	// values). Each subtask evaluates it on a scratch row it reuses, so
	// the predicate must not keep the slice.
	JoinedCond func(joined []row.Value) bool
}

// joinCond evaluates a join's condition for one subtask.
type joinCond struct {
	cond    func(l, r []row.Value) bool
	joined  func([]row.Value) bool
	lw      int
	scratch []row.Value
}

func newJoinCond(cond func(l, r []row.Value) bool, cfg JoinConfig, widths [2]int) joinCond {
	if cfg.JoinedCond != nil {
		return joinCond{joined: cfg.JoinedCond, lw: widths[0], scratch: make([]row.Value, widths[0]+widths[1])}
	}
	return joinCond{cond: cond}
}

// ok reports whether left values l and right values r satisfy the
// condition (true without one).
func (c *joinCond) ok(l, r []row.Value) bool {
	switch {
	case c.joined != nil:
		clear(c.scratch)
		copy(c.scratch[:c.lw], l)
		copy(c.scratch[c.lw:], r)
		return c.joined(c.scratch)
	case c.cond != nil:
		return c.cond(l, r)
	}
	return true
}

func (c JoinConfig) opts(def string, keyed bool) []stream.OpOption {
	name := c.Name
	if name == "" {
		name = def
	}
	o := []stream.OpOption{stream.Name(name)}
	switch {
	case !keyed:
		o = append(o, stream.Parallelism(1))
	case c.Parallelism > 0:
		o = append(o, stream.Parallelism(c.Parallelism))
	}
	return o
}

// Join is the regular (unbounded) join of two changelogs on
// left[leftKey[i]] = right[rightKey[i]] and cond, with Flink's semantics.
//
// Both inputs may be updating: +I and +U add one occurrence of a row, -U
// and -D remove one. The state keeps each side's rows per key with their
// multiplicities, and, for the preserved side of outer joins and the left
// side of semi and anti joins, per row the number of matching rows of the
// other side, so that a null-padded row (or a semi/anti result) is emitted
// or retracted when that number goes 0↔1. Rows whose key has a null never
// match (SQL equality); outer and anti joins pass them through padded.
//
// Output values are left ++ right (nulls for a missing side); semi and anti
// joins output the left values only. Output operations:
//   - a joined pair caused by an input row carries the input row's
//     operation (+I, +U, -U or -D), so an inner join of append-only inputs
//     emits only +I;
//   - a null-padded row of an outer join, and the row of a semi/anti join,
//     is emitted with +I and withdrawn with -D, except that a row of the
//     current input that matches nothing is passed on with its own
//     operation;
//   - when a row of the other side gives a padded row its first match the
//     operator emits -D (padded) then the pair; when the last match goes,
//     the pair's retraction then +I (padded).
//
// A retraction of a row the state does not hold (never inserted, or
// expired by StateTTL) is ignored. The output record's timestamp is the
// later of the two rows' timestamps. Without a key (a cross join with a
// condition) the operator runs at parallelism 1.
func Join(left, right stream.Stream[Change], leftKey, rightKey []int, kind JoinKind, cond func(l, r []row.Value) bool, leftWidth, rightWidth int, cfg JoinConfig) stream.Stream[Change] {
	if len(leftKey) != len(rightKey) {
		panic(fmt.Sprintf("exec.Join %s: %d left key columns but %d right key columns; the planner must pair them", cfg.Name, len(leftKey), len(rightKey)))
	}
	op := &joinOp{kind: kind, keys: [2][]int{leftKey, rightKey}, widths: [2]int{leftWidth, rightWidth}, cond: cond, cfg: cfg, ttl: cfg.StateTTL.Milliseconds()}
	if cfg.StateTTL > 0 && op.ttl == 0 {
		op.ttl = 1
	}
	return coKeyed(left, right, func(c Change) string { return keyOf(c.Vals, leftKey) }, func(c Change) string { return keyOf(c.Vals, rightKey) }, op.open, cfg.opts("join-"+kind.String(), len(leftKey) > 0))
}

// joinOp is the configuration of a regular join; open makes one instance
// per subtask.
type joinOp struct {
	kind   JoinKind
	keys   [2][]int
	widths [2]int
	cond   func(l, r []row.Value) bool
	cfg    JoinConfig
	ttl    int64
}

func (op *joinOp) open(ctx *stream.KeyedContext[string, Change]) (sidedFunc, error) {
	f := &joinFunc{joinOp: op, cnd: newJoinCond(op.cond, op.cfg, op.widths)}
	var err error
	for s, name := range [2]string{"left", "right"} {
		if op.cfg.AppendOnly[s] {
			f.rows[s].l, err = state.NewList[string, joinRec](ctx.State(), name+"-rows")
		} else {
			f.rows[s].m, err = state.NewMap[string, string, joinRec](ctx.State(), name)
		}
		if err != nil {
			return nil, fmt.Errorf("join %s state: %w", name, err)
		}
	}
	if op.ttl > 0 {
		if f.timer, err = state.NewValue[string, int64](ctx.State(), "ttl-timer"); err != nil {
			return nil, fmt.Errorf("join ttl state: %w", err)
		}
	}
	return f, nil
}

type joinFunc struct {
	*joinOp
	rows  [2]joinSide
	timer *state.Value[string, int64]
	upd   []joinUpdate
	cnd   joinCond
}

// joinSide is the state of one input's rows: a map from the row's
// encoding for an updating input, a list for an append-only one.
type joinSide struct {
	m *state.Map[string, string, joinRec]
	l *state.List[string, joinRec]
}

// joinRef locates a row of a side: its map key, or its list index.
type joinRef struct {
	k string
	i int
}

func (d *joinSide) all(yield func(joinRef, joinRec) bool) {
	if d.l != nil {
		for i, r := range d.l.Values() {
			if !yield(joinRef{i: i}, r) {
				return
			}
		}
		return
	}
	for k, r := range d.m.All() {
		if !yield(joinRef{k: k}, r) {
			return
		}
	}
}

// update writes changed rows back.
func (d *joinSide) update(upd []joinUpdate) {
	if len(upd) == 0 {
		return
	}
	if d.l != nil {
		rows := slices.Clone(d.l.Values()) // the state owns the slice
		for _, u := range upd {
			rows[u.ref.i] = u.rec
		}
		d.l.Update(rows)
		return
	}
	for _, u := range upd {
		d.m.Put(u.ref.k, u.rec)
	}
}

// expire drops the rows not written since StateTTL before now and
// returns the earliest expiry of those left (-1: none left).
func (d *joinSide) expire(f *joinFunc, now int64) int64 {
	next := int64(-1)
	keep := func(rec joinRec) bool {
		if f.expired(rec, now) {
			return false
		}
		if at := rec.Touched + f.ttl; next < 0 || at < next {
			next = at
		}
		return true
	}
	if d.l != nil {
		rows := d.l.Values()
		var kept []joinRec
		for _, r := range rows {
			if keep(r) {
				kept = append(kept, r)
			}
		}
		if len(kept) != len(rows) {
			d.l.Update(kept)
		}
		return next
	}
	var drop []string
	for k, rec := range d.m.All() {
		if !keep(rec) {
			drop = append(drop, k)
		}
	}
	for _, k := range drop {
		d.m.Delete(k)
	}
	return next
}

type joinUpdate struct {
	ref joinRef
	rec joinRec
}

// pair returns the output row of this-side values v (side s) and
// other-side values o; nil stands for the null side.
func (f *joinFunc) pair(s int, v, o []row.Value) []row.Value {
	if f.kind == JoinSemi || f.kind == JoinAnti {
		return v
	}
	out := make([]row.Value, f.widths[0]+f.widths[1])
	l, r := v, o
	if s == 1 {
		l, r = o, v
	}
	copy(out[:f.widths[0]], l)
	copy(out[f.widths[0]:], r)
	return out
}

func (f *joinFunc) matches(s int, v, o []row.Value) bool {
	if s == 0 {
		return f.cnd.ok(v, o)
	}
	return f.cnd.ok(o, v)
}

func emitN(ctx *stream.KeyedContext[string, Change], n int64, c Change, ts int64) {
	for range n {
		ctx.EmitAt(c, ts)
	}
}

func addOp(add bool) Op {
	if add {
		return Insert
	}
	return Delete
}

func (f *joinFunc) process(ctx *stream.KeyedContext[string, Change], s int, c Change) {
	o := 1 - s
	ts := ctx.Timestamp()
	add := !c.Op.IsRetract()
	semi := f.kind == JoinSemi || f.kind == JoinAnti
	if hasNull(c.Vals, f.keys[s]) {
		switch {
		case s == 0 && f.kind == JoinAnti:
			ctx.EmitAt(Change{Op: c.Op, Vals: c.Vals}, ts)
		case f.kind.preserves(s):
			ctx.EmitAt(Change{Op: c.Op, Vals: f.pair(s, c.Vals, nil)}, ts)
		}
		return
	}
	var k string
	var rec joinRec
	exists := false
	if f.rows[s].l != nil {
		if !add {
			panic(fmt.Errorf("%s: a %s row arrived on the %s input, planned as append-only (JoinConfig.AppendOnly)", f.cfg.Name, c.Op, [2]string{"left", "right"}[s]))
		}
	} else {
		k = rowKey(c.Vals)
		rec, exists = f.rows[s].m.Get(k)
	}
	now := int64(0)
	if f.ttl > 0 {
		now = ctx.ProcessingTime()
		if exists && f.expired(rec, now) {
			exists = false // as if the timer had dropped it already
		}
	}
	if !add && !exists {
		return
	}
	var n int64
	f.upd = f.upd[:0]
	for ok, orec := range f.rows[o].all {
		if f.expired(orec, now) || !f.matches(s, c.Vals, orec.Vals) {
			continue
		}
		n += orec.Count
		switch {
		case semi && s == 1:
			// A right row changes the match count of left rows.
			before := orec.Matches
			after := before - 1
			if add {
				after = before + 1
			}
			if (before == 0) != (after == 0) {
				// semi: 0→1 inserts, 1→0 deletes; anti the opposite.
				ins := after != 0
				if f.kind == JoinAnti {
					ins = !ins
				}
				emitN(ctx, orec.Count, Change{Op: addOp(ins), Vals: orec.Vals}, max(ts, orec.Ts))
			}
			orec.Matches = after
			f.upd = append(f.upd, joinUpdate{ok, orec})
		case semi:
			// Left row of a semi/anti join: decided after the loop.
		default:
			pts := max(ts, orec.Ts)
			p := Change{Op: c.Op, Vals: f.pair(s, c.Vals, orec.Vals)}
			if f.kind.preserves(o) {
				before := orec.Matches
				if add {
					if before == 0 {
						emitN(ctx, orec.Count, Change{Op: Delete, Vals: f.pair(o, orec.Vals, nil)}, pts)
					}
					emitN(ctx, orec.Count, p, pts)
					orec.Matches = before + 1
				} else {
					emitN(ctx, orec.Count, p, pts)
					orec.Matches = before - 1
					if orec.Matches == 0 {
						emitN(ctx, orec.Count, Change{Op: Insert, Vals: f.pair(o, orec.Vals, nil)}, pts)
					}
				}
				f.upd = append(f.upd, joinUpdate{ok, orec})
			} else {
				emitN(ctx, orec.Count, p, pts)
			}
		}
	}
	f.rows[o].update(f.upd)
	switch {
	case semi && s == 0:
		if (n > 0) == (f.kind == JoinSemi) {
			ctx.EmitAt(Change{Op: c.Op, Vals: c.Vals}, ts)
		}
	case f.kind.preserves(s) && n == 0:
		ctx.EmitAt(Change{Op: c.Op, Vals: f.pair(s, c.Vals, nil)}, ts)
	}
	if add {
		if !exists {
			rec = joinRec{Vals: c.Vals}
		}
		rec.Count++
		rec.Matches = n
		rec.Ts = max(rec.Ts, ts)
		rec.Touched = now
		if f.rows[s].l != nil {
			f.rows[s].l.Add(rec)
		} else {
			f.rows[s].m.Put(k, rec)
		}
	} else if rec.Count--; rec.Count <= 0 {
		f.rows[s].m.Delete(k)
	} else {
		rec.Matches = n
		rec.Touched = now
		f.rows[s].m.Put(k, rec)
	}
	if f.ttl > 0 {
		if _, set := f.timer.Get(); !set {
			at := now + f.ttl
			ctx.RegisterProcessingTimer(at)
			f.timer.Set(at)
		}
	}
}

// expired reports a row not written for StateTTL: it is never read,
// whether or not its timer has fired yet.
func (f *joinFunc) expired(rec joinRec, now int64) bool {
	return f.ttl > 0 && rec.Touched+f.ttl <= now
}

// OnTimer expires the rows of the current key not written for StateTTL.
func (f *joinFunc) OnTimer(ctx *stream.KeyedContext[string, Change], t stream.Timer) {
	if f.ttl <= 0 || t.Domain != stream.ProcessingTime {
		return
	}
	next := int64(-1)
	for s := range 2 {
		if at := f.rows[s].expire(f, t.Time); at >= 0 && (next < 0 || at < next) {
			next = at
		}
	}
	if next < 0 {
		f.timer.Clear()
		return
	}
	ctx.RegisterProcessingTimer(next)
	f.timer.Set(next)
}
