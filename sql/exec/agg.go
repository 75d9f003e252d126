package exec

import (
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/types"
)

// AggKind is the aggregate function of an AggCall.
type AggKind uint8

// The aggregate functions.
const (
	AggCount      AggKind = iota // COUNT(x): rows where x is not null
	AggCountStar                 // COUNT(*)
	AggSum                       // SUM(x): NULL over no non-null value
	AggSum0                      // SUM0(x): 0 over no non-null value (Flink's $SUM0)
	AggMin                       // MIN(x)
	AggMax                       // MAX(x)
	AggAvg                       // AVG(x)
	AggFirstValue                // FIRST_VALUE(x): the first non-null x in arrival order
	AggLastValue                 // LAST_VALUE(x): the last non-null x in arrival order
	AggUser                      // a user-defined AggregateFunction
)

var aggNames = [...]string{"COUNT", "COUNT(*)", "SUM", "SUM0", "MIN", "MAX", "AVG", "FIRST_VALUE", "LAST_VALUE", "USER"}

// String returns the function's SQL name.
func (k AggKind) String() string {
	if int(k) < len(aggNames) {
		return aggNames[k]
	}
	return fmt.Sprintf("AggKind(%d)", k)
}

// AggCall is one aggregate of a GROUP BY or window aggregation, with its
// argument and filter given as input column positions.
type AggCall struct {
	Kind AggKind
	// Arg is the input column of the argument; -1 for COUNT(*).
	Arg int
	// Args are the input columns of a user-defined function's arguments;
	// when empty, Arg (if >= 0) is its only argument.
	Args []int
	// Distinct aggregates each distinct non-null value of Arg once.
	// Calls with the same Arg and Distinct share one value→count map per
	// key (and per FILTER column).
	Distinct bool
	// Filter is the input column of a BOOLEAN: the row counts for this
	// call only when it is TRUE. -1 for none.
	Filter int
	// ArgType is the argument's type; ResultType the result's. SUM keeps
	// a float sum when ArgType is stored as a float, an int64 sum (also
	// for DECIMAL: unscaled) otherwise. AVG's ResultType decides integer
	// division (integer types), decimal rounding half up (DECIMAL, scaled
	// from ArgType's scale to ResultType's) or float division.
	ArgType, ResultType types.Type
	// User is the function of an AggUser call.
	User AggregateFunction
}

// AggregateFunction is a user-defined aggregate function (Flink's
// AggregateFunction): it makes accumulators, one per group (and window),
// which see the argument values of the group's rows. An accumulator that
// also implements Retractor can be used on updating input (GroupAggregate
// without AggConfig.AppendOnly); one that implements Merger can be used in
// session windows. Accumulators are encoded with AppendBinary when a
// checkpoint is taken and decoded with DecodeAccumulator on restore.
//
// Accumulate and Retract must not keep or modify the args slice (it may
// alias the input row); they may keep the values. A panic in any method
// fails the job with the panic's message.
type AggregateFunction interface {
	// Name names the function in errors.
	Name() string
	// CreateAccumulator returns an empty accumulator.
	CreateAccumulator() Accumulator
	// DecodeAccumulator decodes the bytes an accumulator's AppendBinary
	// wrote (all of b).
	DecodeAccumulator(b []byte) (Accumulator, error)
}

// Accumulator is the state of a user-defined aggregate for one group.
type Accumulator interface {
	// Accumulate adds one row's arguments.
	Accumulate(args []row.Value)
	// Value returns the aggregate's current result.
	Value() row.Value
	// AppendBinary appends the accumulator's encoding to dst.
	AppendBinary(dst []byte) []byte
}

// Retractor is implemented by accumulators that can withdraw a row.
type Retractor interface {
	// Retract withdraws one row's arguments, accumulated before.
	Retract(args []row.Value)
}

// Merger is implemented by accumulators that can absorb another one of
// the same function (session windows merge).
type Merger interface {
	// Merge adds other's rows to the accumulator; other is not used after.
	Merge(other Accumulator)
}

// AggConfig configures an aggregation operator.
type AggConfig struct {
	// Name names the operator (metrics, errors); default "group-aggregate"
	// or "window-aggregate".
	Name string
	// Parallelism of the operator; 0 means the Env's default. A global
	// aggregate (no key) always runs at parallelism 1.
	Parallelism int
	// StateTTL expires a key's state after it has not been accessed for
	// this long (processing time), as Flink's table.exec.state.ttl: the
	// key's next row starts from an empty accumulator and retractions of
	// rows from before the expiry are ignored. 0 keeps state forever.
	// GroupAggregate only.
	StateTTL time.Duration
	// AppendOnly promises that the input holds only inserts: MIN, MAX,
	// FIRST_VALUE and LAST_VALUE then keep one value instead of every
	// value, and a retraction fails the job. Without it GroupAggregate and
	// WindowAggregate retract -U and -D rows.
	AppendOnly bool
	// MiniBatch (GroupAggregate), when positive, buffers a key's changes
	// and emits its result once per flush instead of once per row (Flink's
	// table.exec.mini-batch): a dirty key flushes when the next watermark
	// passes, at the end of the input, or MiniBatch of processing time
	// after it became dirty, whichever comes first. Rows that cancel out
	// between flushes emit nothing.
	MiniBatch time.Duration
	// OnError receives the run-time errors of results that become NULL:
	// a SUM or AVG of DECIMAL whose value does not fit the 18 digits a
	// DECIMAL is held in. Nil drops them.
	OnError func(error)
}

// plan is the compiled form of a list of AggCalls: the per-call kinds
// and the DISTINCT groups. It is shared by the subtasks of an operator
// and never written after compile.
type aggPlan struct {
	calls []aggCallPlan
	dist  []distinctGroup
	// retract keeps multisets for MIN/MAX and lists for FIRST/LAST_VALUE.
	retract bool
	// seq stamps FIRST/LAST_VALUE values with their arrival order, for
	// merging (session windows).
	seq bool
	// onError receives the errors of results that became NULL.
	onError func(error)
}

type aggCallPlan struct {
	AggCall
	float bool // the sum is kept as a float
	// wide: the sum is a DECIMAL's, kept exact in 128 bits (callAcc.hi)
	// so that it neither wraps nor loses a value that is retracted back
	// into range; integer sums wrap at 64 bits, as Flink's do.
	wide bool
	// decimal AVG: scale the sum by 10^scaleUp (negative: divide).
	avgMode  avgMode
	scaleUp  int
	argsFrom int // Args are the contiguous columns [argsFrom, argsFrom+len(Args)); -1 otherwise
	dg, df   int // DISTINCT group and its filter slot; -1 when not distinct
}

type avgMode uint8

const (
	avgInt avgMode = iota
	avgFloat
	avgDecimal
)

// distinctGroup is the DISTINCT calls over one argument column: one map
// from value to one count per distinct FILTER column (filters[i]; -1 for
// none), and the calls fed by each of those counts.
type distinctGroup struct {
	arg     int
	filters []int
	calls   [][]int
}

func compileAggs(aggs []AggCall, retract, merge bool) (*aggPlan, error) {
	p := &aggPlan{retract: retract}
	for i, a := range aggs {
		c := aggCallPlan{AggCall: a, dg: -1, df: -1, argsFrom: -1}
		if a.Kind > AggUser {
			return nil, fmt.Errorf("aggregate %d: unknown kind %d", i, a.Kind)
		}
		if a.Kind != AggCountStar && a.Kind != AggUser && a.Arg < 0 {
			return nil, fmt.Errorf("aggregate %d (%s): argument column %d; only COUNT(*) has none", i, a.Kind, a.Arg)
		}
		if a.Kind == AggCountStar {
			c.Arg = -1
			c.Distinct = false
		}
		c.float = a.ArgType.Storage() == row.KindFloat
		c.wide = !c.float && a.ArgType.Kind == types.Decimal && (a.Kind == AggSum || a.Kind == AggSum0 || a.Kind == AggAvg)
		if a.Kind == AggAvg {
			switch {
			case c.float || a.ResultType.Storage() == row.KindFloat:
				c.avgMode = avgFloat
			case a.ResultType.Kind == types.Decimal:
				c.avgMode = avgDecimal
				as := 0
				if a.ArgType.Kind == types.Decimal {
					as = a.ArgType.Scale
				}
				c.scaleUp = a.ResultType.Scale - as
			default:
				c.avgMode = avgInt
			}
		}
		if a.Kind == AggFirstValue || a.Kind == AggLastValue {
			p.seq = p.seq || merge
		}
		if a.Kind == AggUser {
			if a.User == nil {
				return nil, fmt.Errorf("aggregate %d: AggUser without a User function", i)
			}
			if a.Distinct && len(a.Args) > 1 {
				return nil, fmt.Errorf("aggregate %d (%s): DISTINCT takes one argument, not %d", i, a.User.Name(), len(a.Args))
			}
			if len(c.Args) == 0 && a.Arg >= 0 {
				c.Args = []int{a.Arg}
			}
			if len(c.Args) > 0 {
				c.Arg = c.Args[0]
				c.argsFrom = c.Args[0]
				for j, col := range c.Args {
					if col != c.Args[0]+j {
						c.argsFrom = -1
					}
				}
			} else if a.Distinct {
				return nil, fmt.Errorf("aggregate %d (%s): DISTINCT needs an argument", i, a.User.Name())
			}
			probe := a.User.CreateAccumulator()
			if retract {
				if _, ok := probe.(Retractor); !ok {
					return nil, fmt.Errorf("aggregate %d (%s): the input is updating but the accumulator has no Retract method (implement exec.Retractor, or the planner must keep the input append-only)", i, a.User.Name())
				}
			}
			if merge {
				if _, ok := probe.(Merger); !ok {
					return nil, fmt.Errorf("aggregate %d (%s): session windows merge accumulators but it has no Merge method (implement exec.Merger)", i, a.User.Name())
				}
			}
		}
		if c.Distinct {
			g := -1
			for j := range p.dist {
				if p.dist[j].arg == c.Arg {
					g = j
				}
			}
			if g < 0 {
				p.dist = append(p.dist, distinctGroup{arg: c.Arg})
				g = len(p.dist) - 1
			}
			dg := &p.dist[g]
			f := slices.Index(dg.filters, a.Filter)
			if f < 0 {
				dg.filters = append(dg.filters, a.Filter)
				dg.calls = append(dg.calls, nil)
				f = len(dg.filters) - 1
			}
			dg.calls[f] = append(dg.calls[f], i)
			c.dg, c.df = g, f
		}
		p.calls = append(p.calls, c)
	}
	return p, nil
}

// callAcc is the accumulator of one call for one group.
type callAcc struct {
	n   int64     // values counted (COUNT's result; SUM's and AVG's non-null count)
	i   int64     // integer (or unscaled decimal) sum; a DECIMAL's low 64 bits
	hi  int64     // a DECIMAL sum's high 64 bits: the sum is hi·2^64 + uint64(i)
	f   float64   // float sum
	v   row.Value // MIN/MAX/FIRST/LAST value without retraction
	seq uint64    // arrival order of v (FIRST/LAST_VALUE, merging)
	bag []bagEntry
	u   Accumulator
}

// bagEntry is a value with its multiplicity: MIN/MAX with retraction
// keep them sorted by value, FIRST/LAST_VALUE with retraction keep one
// entry per row in arrival order (n = arrival sequence).
type bagEntry struct {
	v row.Value
	n int64
}

// accRow is the accumulator of one group (and window): its row count,
// one accumulator per call and one value→counts set per DISTINCT group.
// The memory backend keeps it as a Go value; it is encoded only when a
// checkpoint is taken (MarshalBinary).
type accRow struct {
	rows  int64
	calls []callAcc
	dist  []distinctSet
	// keyVals: the key columns (window aggregates). out: the row emitted
	// last (group aggregates), retracted by the next change.
	keyVals []row.Value
	out     []row.Value
	// touched and timer: the last access and the pending expiry timer
	// (processing time ms; StateTTL).
	touched, timer int64
	// dirty: changed since the last flush (MiniBatch), whose processing
	// timer is at flushAt.
	dirty   bool
	flushAt int64
	// userRaw holds user accumulators decoded from a checkpoint before
	// their function was at hand; fixup decodes them.
	userRaw [][]byte
}

// distinctSet maps each distinct value to a slot of counts: counts[slot*nf
// + f] is the number of rows holding the value that pass filter f.
type distinctSet struct {
	// ints holds the BIGINT/INT values (most DISTINCT arguments: ids),
	// idx the others: an int64 key hashes much faster than a Value.
	ints   map[int64]int32
	idx    map[row.Value]int32
	counts []int64
	free   []int32
}

func (d *distinctSet) get(x row.Value) (int32, bool) {
	if x.Kind() == row.KindInt {
		s, ok := d.ints[x.AsInt()]
		return s, ok
	}
	s, ok := d.idx[x]
	return s, ok
}

func (d *distinctSet) put(x row.Value, slot int32) {
	if x.Kind() == row.KindInt {
		if d.ints == nil {
			d.ints = make(map[int64]int32)
		}
		d.ints[x.AsInt()] = slot
		return
	}
	if d.idx == nil {
		d.idx = make(map[row.Value]int32)
	}
	d.idx[x] = slot
}

func (d *distinctSet) del(x row.Value) {
	if x.Kind() == row.KindInt {
		delete(d.ints, x.AsInt())
		return
	}
	delete(d.idx, x)
}

// size is the number of distinct values held.
func (d *distinctSet) size() int { return len(d.ints) + len(d.idx) }

// all iterates the values and their slots.
func (d *distinctSet) all(yield func(row.Value, int32) bool) {
	for v, s := range d.ints {
		if !yield(row.Int(v), s) {
			return
		}
	}
	for v, s := range d.idx {
		if !yield(v, s) {
			return
		}
	}
}

// aggSeqCounter orders FIRST/LAST_VALUE values of window accumulators across
// merges. It is raised past every decoded sequence on restore.
var aggSeqCounter atomic.Uint64

func (p *aggPlan) newAcc() *accRow {
	a := &accRow{calls: make([]callAcc, len(p.calls))}
	for i := range p.calls {
		if p.calls[i].Kind == AggUser {
			a.calls[i].u = p.calls[i].User.CreateAccumulator()
		}
	}
	if len(p.dist) > 0 {
		a.dist = make([]distinctSet, len(p.dist))
	}
	return a
}

// fixup decodes the user accumulators of an accRow read from a checkpoint.
func (p *aggPlan) fixup(a *accRow) {
	if a.userRaw == nil && len(a.calls) == len(p.calls) && len(a.dist) == len(p.dist) {
		return
	}
	if len(a.calls) != len(p.calls) || len(a.dist) != len(p.dist) {
		panic(fmt.Errorf("aggregate state has %d calls and %d DISTINCT sets, the plan %d and %d: the checkpoint is of another query", len(a.calls), len(a.dist), len(p.calls), len(p.dist)))
	}
	for i, raw := range a.userRaw {
		if raw == nil {
			continue
		}
		c := &p.calls[i]
		if c.Kind != AggUser {
			panic(fmt.Errorf("aggregate state: call %d holds a user accumulator but the plan's call is %s: the checkpoint is of another query", i, c.Kind))
		}
		u, err := c.User.DecodeAccumulator(raw)
		if err != nil {
			panic(fmt.Errorf("aggregate %s: decode accumulator: %w", c.User.Name(), err))
		}
		a.calls[i].u = u
	}
	a.userRaw = nil
}

// aggOwn returns v with its text copied, so that state does not pin
// the memory of the input row (decoders cut strings from large blocks).
func aggOwn(v row.Value) row.Value {
	switch v.Kind() {
	case row.KindString:
		return row.String(strings.Clone(v.AsString()))
	case row.KindJSON:
		return row.JSON(strings.Clone(v.AsString()))
	case row.KindFloat:
		if v.AsFloat() == 0 {
			return row.Float(0) // -0 and +0 are one distinct value
		}
	}
	return v
}

func aggFilterOK(vals []row.Value, col int) bool {
	return col < 0 || vals[col].AsBool()
}

// accumulate adds (sign +1) or retracts (sign -1) one input row.
func (p *aggPlan) accumulate(a *accRow, vals []row.Value, sign int64) {
	for i := range p.calls {
		c := &p.calls[i]
		if c.dg >= 0 || !aggFilterOK(vals, c.Filter) {
			continue
		}
		switch c.Kind {
		case AggCountStar:
			a.calls[i].n += sign
		case AggUser:
			p.userApply(c, &a.calls[i], vals, sign)
		default:
			if x := vals[c.Arg]; !x.IsNull() {
				p.apply(c, &a.calls[i], x, sign)
			}
		}
	}
	for g := range p.dist {
		dg := &p.dist[g]
		x := vals[dg.arg]
		if x.IsNull() {
			continue
		}
		p.distinct(a, g, dg, x, vals, sign)
	}
}

// bagCompare orders the values of a MIN/MAX multiset: by row.Compare,
// then an integer before a float of equal value, so that the two are
// kept (and retracted) apart: a column that is an integer in some rows and
// a float in others (a pipeline's window step over untyped JSON) keeps
// the kind of the values the window still holds.
func bagCompare(a, b row.Value) int {
	if c := row.Compare(a, b); c != 0 {
		return c
	}
	switch ak, bk := a.Kind(), b.Kind(); {
	case ak == bk:
		return 0
	case ak == row.KindInt && bk == row.KindFloat:
		return -1
	case ak == row.KindFloat && bk == row.KindInt:
		return 1
	}
	return 0
}

// holds reports whether a could hold the row vals, which a retraction
// is about to withdraw: false when an accumulator shows the row was never
// added (a changelog that starts mid-stream deletes a row inserted before
// it, or the row's state expired), so that the retraction is dropped
// whole rather than subtracted from what it never added. The evidence is
// a count that would go below zero (the rows, COUNT(*), or the non-null
// values of a COUNT, SUM or AVG) or a value missing from a MIN, MAX,
// FIRST_VALUE or LAST_VALUE multiset or a DISTINCT set. A window or group
// holding other rows with every count above zero cannot tell a row it
// never held from one it did: such a retraction is applied (Flink's
// retractable aggregates do the same).
func (p *aggPlan) holds(a *accRow, vals []row.Value) bool {
	if a.rows <= 0 {
		return false
	}
	for i := range p.calls {
		c, ca := &p.calls[i], &a.calls[i]
		if c.dg >= 0 || !aggFilterOK(vals, c.Filter) {
			continue
		}
		switch c.Kind {
		case AggCountStar:
			if ca.n <= 0 {
				return false
			}
		case AggCount, AggSum, AggSum0, AggAvg:
			if !vals[c.Arg].IsNull() && ca.n <= 0 {
				return false
			}
		case AggMin, AggMax:
			// The multiset is sorted by bagCompare.
			if x := vals[c.Arg]; p.retract && !x.IsNull() {
				if _, found := slices.BinarySearchFunc(ca.bag, x, func(e bagEntry, x row.Value) int { return bagCompare(e.v, x) }); !found {
					return false
				}
			}
		case AggFirstValue, AggLastValue:
			// One entry per row, in arrival order.
			if x := vals[c.Arg]; p.retract && !x.IsNull() && !slices.ContainsFunc(ca.bag, func(e bagEntry) bool { return bagCompare(e.v, x) == 0 }) {
				return false
			}
		}
	}
	for g := range p.dist {
		dg := &p.dist[g]
		x := vals[dg.arg]
		if x.IsNull() {
			continue
		}
		if x.Kind() == row.KindFloat && x.AsFloat() == 0 {
			x = row.Float(0)
		}
		slot, ok := a.dist[g].get(x)
		if !ok {
			return false
		}
		nf := len(dg.filters)
		for f, col := range dg.filters {
			if aggFilterOK(vals, col) && a.dist[g].counts[int(slot)*nf+f] <= 0 {
				return false
			}
		}
	}
	return true
}

func (p *aggPlan) distinct(a *accRow, g int, dg *distinctGroup, x row.Value, vals []row.Value, sign int64) {
	ds := &a.dist[g]
	nf := len(dg.filters)
	if x.Kind() == row.KindFloat && x.AsFloat() == 0 {
		x = row.Float(0)
	}
	slot, ok := ds.get(x)
	if !ok {
		if sign < 0 {
			return // a retraction of a value never added (state expired)
		}
		pass := false
		for _, f := range dg.filters {
			pass = pass || aggFilterOK(vals, f)
		}
		if !pass {
			return
		}
		if n := len(ds.free); n > 0 {
			slot = ds.free[n-1]
			ds.free = ds.free[:n-1]
		} else {
			slot = int32(len(ds.counts) / nf)
			ds.counts = append(ds.counts, make([]int64, nf)...)
		}
		x = aggOwn(x)
		ds.put(x, slot)
	}
	cs := ds.counts[int(slot)*nf : int(slot+1)*nf]
	for f, col := range dg.filters {
		if !aggFilterOK(vals, col) {
			continue
		}
		if sign < 0 && cs[f] == 0 {
			continue
		}
		cs[f] += sign
		if (sign > 0 && cs[f] == 1) || (sign < 0 && cs[f] == 0) {
			for _, ci := range dg.calls[f] {
				c := &p.calls[ci]
				if c.Kind == AggUser {
					p.userApply(c, &a.calls[ci], vals, sign)
				} else {
					p.apply(c, &a.calls[ci], x, sign)
				}
			}
		}
	}
	if sign < 0 {
		for _, n := range cs {
			if n != 0 {
				return
			}
		}
		ds.del(x)
		ds.free = append(ds.free, slot)
	}
}

// apply adds or retracts one non-null value x for a call that takes a
// value.
func (p *aggPlan) apply(c *aggCallPlan, ca *callAcc, x row.Value, sign int64) {
	switch c.Kind {
	case AggCount:
		ca.n += sign
	case AggSum, AggSum0, AggAvg:
		ca.n += sign
		if sign < 0 && ca.n == 0 {
			// Every value retracted: the sum is exactly 0, without the
			// rounding residue of adding and subtracting floats.
			ca.i, ca.hi, ca.f = 0, 0, 0
			return
		}
		switch {
		case c.float:
			ca.f += float64(sign) * x.AsFloat()
		case c.wide:
			v := x.AsInt()
			switch {
			case sign > 0:
				ca.hi, ca.i = add128(ca.hi, ca.i, v>>63, v)
			case v == math.MinInt64: // -v is 2^63: high word 0
				ca.hi, ca.i = add128(ca.hi, ca.i, 0, v)
			default:
				ca.hi, ca.i = add128(ca.hi, ca.i, (-v)>>63, -v)
			}
		default:
			ca.i += sign * x.AsInt()
		}
	case AggMin, AggMax:
		if !p.retract {
			if ca.n == 0 {
				ca.v = aggOwn(x)
			} else if cmp := row.Compare(x, ca.v); cmp != 0 && (c.Kind == AggMin) == (cmp < 0) {
				ca.v = aggOwn(x)
			}
			ca.n = 1
			return
		}
		j, found := slices.BinarySearchFunc(ca.bag, x, func(e bagEntry, x row.Value) int { return bagCompare(e.v, x) })
		switch {
		case found:
			ca.bag[j].n += sign
			if ca.bag[j].n <= 0 {
				ca.bag = slices.Delete(ca.bag, j, j+1)
			}
		case sign > 0:
			ca.bag = slices.Insert(ca.bag, j, bagEntry{v: aggOwn(x), n: 1})
		}
	case AggFirstValue, AggLastValue:
		if !p.retract {
			var s uint64
			if p.seq {
				s = aggSeqCounter.Add(1)
			}
			if c.Kind == AggLastValue || ca.n == 0 {
				ca.v, ca.seq = aggOwn(x), s
			}
			ca.n = 1
			return
		}
		if sign > 0 {
			ca.bag = append(ca.bag, bagEntry{v: aggOwn(x)})
			return
		}
		// A retraction withdraws the oldest row holding the value.
		for j := range ca.bag {
			if bagCompare(ca.bag[j].v, x) == 0 {
				ca.bag = slices.Delete(ca.bag, j, j+1)
				return
			}
		}
	case AggUser:
		p.userArgs(c, ca, []row.Value{x}, sign)
	}
}

func (p *aggPlan) userApply(c *aggCallPlan, ca *callAcc, vals []row.Value, sign int64) {
	var args []row.Value
	switch {
	case len(c.Args) == 0:
	case c.argsFrom >= 0:
		args = vals[c.argsFrom : c.argsFrom+len(c.Args) : c.argsFrom+len(c.Args)]
	default:
		args = make([]row.Value, len(c.Args))
		for j, col := range c.Args {
			args[j] = vals[col]
		}
	}
	p.userArgs(c, ca, args, sign)
}

func (p *aggPlan) userArgs(c *aggCallPlan, ca *callAcc, args []row.Value, sign int64) {
	if sign > 0 {
		ca.u.Accumulate(args)
		return
	}
	r, ok := ca.u.(Retractor)
	if !ok {
		panic(fmt.Errorf("aggregate %s: a retraction arrived but its accumulator has no Retract method", c.User.Name()))
	}
	r.Retract(args)
}

// merge adds b's rows to a (session windows). Both are window
// accumulators: no retraction state.
func (p *aggPlan) merge(a, b *accRow) *accRow {
	p.fixup(a)
	p.fixup(b)
	a.rows += b.rows
	if a.keyVals == nil {
		a.keyVals = b.keyVals
	}
	for i := range p.calls {
		c, x, y := &p.calls[i], &a.calls[i], &b.calls[i]
		if c.dg >= 0 {
			continue
		}
		mergeCall(c, x, y)
	}
	for g := range p.dist {
		dg := &p.dist[g]
		nf := len(dg.filters)
		bs := &b.dist[g]
		for v, slot := range bs.all {
			for f := range nf {
				n := bs.counts[int(slot)*nf+f]
				if n == 0 {
					continue
				}
				p.addDistinctCount(a, g, dg, v, f, n)
			}
		}
	}
	return a
}

// addDistinctCount adds n rows holding v that pass filter f of group g.
func (p *aggPlan) addDistinctCount(a *accRow, g int, dg *distinctGroup, v row.Value, f int, n int64) {
	ds := &a.dist[g]
	nf := len(dg.filters)
	slot, ok := ds.get(v)
	if !ok {
		if k := len(ds.free); k > 0 {
			slot = ds.free[k-1]
			ds.free = ds.free[:k-1]
		} else {
			slot = int32(len(ds.counts) / nf)
			ds.counts = append(ds.counts, make([]int64, nf)...)
		}
		ds.put(v, slot)
	}
	cs := ds.counts[int(slot)*nf : int(slot+1)*nf]
	first := cs[f] == 0
	cs[f] += n
	if first {
		for _, ci := range dg.calls[f] {
			c := &p.calls[ci]
			if c.Kind == AggUser {
				p.userArgs(c, &a.calls[ci], []row.Value{v}, 1)
			} else {
				p.apply(c, &a.calls[ci], v, 1)
			}
		}
	}
}

func mergeCall(c *aggCallPlan, x, y *callAcc) {
	switch c.Kind {
	case AggCount, AggCountStar, AggSum, AggSum0, AggAvg:
		x.n += y.n
		if c.wide {
			x.hi, x.i = add128(x.hi, x.i, y.hi, y.i)
		} else {
			x.i += y.i
		}
		x.f += y.f
	case AggMin, AggMax:
		if y.n == 0 {
			return
		}
		if x.n == 0 || (c.Kind == AggMin) == (row.Compare(y.v, x.v) < 0) && row.Compare(y.v, x.v) != 0 {
			x.v = y.v
		}
		x.n = 1
	case AggFirstValue, AggLastValue:
		if y.n == 0 {
			return
		}
		if x.n == 0 || (c.Kind == AggFirstValue) == (y.seq < x.seq) {
			x.v, x.seq = y.v, y.seq
		}
		x.n = 1
	case AggUser:
		x.u.(Merger).Merge(y.u)
	}
}

// results writes the value of every call into dst (len(p.calls)).
func (p *aggPlan) results(a *accRow, dst []row.Value) {
	for i := range p.calls {
		dst[i] = p.result(&p.calls[i], &a.calls[i])
	}
}

func (p *aggPlan) result(c *aggCallPlan, ca *callAcc) row.Value {
	switch c.Kind {
	case AggCount, AggCountStar:
		return row.Int(ca.n)
	case AggSum, AggSum0:
		if ca.n == 0 && c.Kind == AggSum {
			return row.Value{}
		}
		if c.ResultType.Storage() == row.KindFloat {
			if c.float {
				return row.Float(ca.f)
			}
			return row.Float(float64(ca.i))
		}
		if c.float {
			return row.Float(ca.f)
		}
		if c.wide && ca.hi != ca.i>>63 {
			return p.fail(fmt.Errorf("%s of %s: the sum %s does not fit the 18 digits a DECIMAL is held in; the value is NULL", c.Kind, c.ArgType, scaled(wideInt(ca.hi, ca.i), c.ArgType.Scale)))
		}
		return row.Int(ca.i)
	case AggAvg:
		if ca.n == 0 {
			return row.Value{}
		}
		switch c.avgMode {
		case avgFloat:
			if c.float {
				return row.Float(ca.f / float64(ca.n))
			}
			return row.Float(float64(ca.i) / float64(ca.n))
		case avgDecimal:
			q, ok := decimalAvg(ca.hi, ca.i, ca.n, c.scaleUp)
			if !ok {
				big := decimalAvgBig(wideInt(ca.hi, ca.i), ca.n, c.scaleUp)
				return p.fail(fmt.Errorf("AVG of %s: the average %s does not fit the 18 digits a DECIMAL is held in; the value is NULL", c.ArgType, scaled(big, c.ResultType.Scale)))
			}
			return row.Int(q)
		}
		return row.Int(ca.i / ca.n)
	case AggMin, AggMax:
		if !p.retract {
			if ca.n == 0 {
				return row.Value{}
			}
			return ca.v
		}
		if len(ca.bag) == 0 {
			return row.Value{}
		}
		if c.Kind == AggMin {
			// A tie between an integer and a float gives the float, as
			// the window step's append-only MIN does (the bag holds the
			// integer first).
			if len(ca.bag) > 1 && row.Compare(ca.bag[0].v, ca.bag[1].v) == 0 {
				return ca.bag[1].v
			}
			return ca.bag[0].v
		}
		return ca.bag[len(ca.bag)-1].v
	case AggFirstValue, AggLastValue:
		if !p.retract {
			if ca.n == 0 {
				return row.Value{}
			}
			return ca.v
		}
		if len(ca.bag) == 0 {
			return row.Value{}
		}
		if c.Kind == AggFirstValue {
			return ca.bag[0].v
		}
		return ca.bag[len(ca.bag)-1].v
	case AggUser:
		return ca.u.Value()
	}
	return row.Value{}
}

// decimalAvg returns sum×10^up / n rounded half away from zero (Java's
// HALF_UP), unscaled, for the 128-bit sum hi·2^64 + uint64(lo); false
// when it does not fit an int64.
func decimalAvg(hi, lo, n int64, up int) (int64, bool) {
	if hi == lo>>63 && up >= 0 && up <= 18 && lo != math.MinInt64 {
		m := int64(math.Pow10(up))
		if max(lo, -lo) <= math.MaxInt64/m {
			return aggRoundDiv(lo*m, n), true
		}
	}
	q := decimalAvgBig(wideInt(hi, lo), n, up)
	return q.Int64(), q.IsInt64()
}

// decimalAvgBig is decimalAvg over any sum.
func decimalAvgBig(sum *big.Int, n int64, up int) *big.Int {
	s := new(big.Int).Set(sum)
	d := new(big.Int).SetInt64(n)
	if up >= 0 {
		s.Mul(s, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(up)), nil))
	} else {
		d.Mul(d, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(-up)), nil))
	}
	neg := s.Sign() < 0
	s.Abs(s)
	q, r := new(big.Int).QuoRem(s, d, new(big.Int))
	if r.Lsh(r, 1).Cmp(d) >= 0 {
		q.Add(q, big.NewInt(1))
	}
	if neg {
		q.Neg(q)
	}
	return q
}

// add128 adds two 128-bit integers given as high and low words.
func add128(ahi, alo, bhi, blo int64) (hi, lo int64) {
	s, carry := bits.Add64(uint64(alo), uint64(blo), 0)
	return ahi + bhi + int64(carry), int64(s)
}

// wideInt is the 128-bit integer hi·2^64 + uint64(lo).
func wideInt(hi, lo int64) *big.Int {
	v := new(big.Int).SetInt64(hi)
	v.Lsh(v, 64)
	return v.Add(v, new(big.Int).SetUint64(uint64(lo)))
}

// scaled formats an unscaled value with its scale, for errors.
func scaled(v *big.Int, scale int) string {
	if scale <= 0 {
		return v.String()
	}
	r := new(big.Rat).SetFrac(v, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil))
	return r.FloatString(scale)
}

// fail reports err and gives NULL.
func (p *aggPlan) fail(err error) row.Value {
	if p.onError != nil {
		p.onError(err)
	}
	return row.Value{}
}

// aggRoundDiv returns a/n (n > 0) rounded half away from zero.
func aggRoundDiv(a, n int64) int64 {
	q, r := a/n, a%n
	if r < 0 {
		r = -r
	}
	if r >= n-r {
		if a < 0 {
			q--
		} else {
			q++
		}
	}
	return q
}

// aggEqualVals reports whether two result rows are the same values (and
// kinds: an int 1 and a float 1.0 differ).
func aggEqualVals(a, b []row.Value) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Kind() != b[i].Kind() || row.Compare(a[i], b[i]) != 0 {
			return false
		}
	}
	return true
}
