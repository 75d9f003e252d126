package exec

import (
	"fmt"
	"time"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/stream"
	"github.com/sluicehq/sluice/window"
)

// WindowKind is the windowing table function of a window aggregate.
type WindowKind uint8

// The window kinds.
const (
	Tumble   WindowKind = iota // TUMBLE(size, offset)
	Hop                        // HOP(slide, size, offset)
	Cumulate                   // CUMULATE(step, size, offset)
	Session                    // SESSION(gap), partitioned by the key
)

var windowNames = [...]string{"TUMBLE", "HOP", "CUMULATE", "SESSION"}

// String returns the table function's name.
func (k WindowKind) String() string {
	if int(k) < len(windowNames) {
		return windowNames[k]
	}
	return fmt.Sprintf("WindowKind(%d)", k)
}

// WindowSpec describes the windows of a window aggregate. Durations are
// whole milliseconds.
type WindowSpec struct {
	Kind WindowKind
	// Size: TUMBLE, HOP and CUMULATE (the largest window). Slide: HOP.
	// Step: CUMULATE (Size must be a multiple). Gap: SESSION. Offset
	// shifts the window grid from the epoch (not SESSION).
	Size, Slide, Step, Gap, Offset time.Duration
	// ProcTime windows on processing time (PROCTIME()); otherwise on the
	// stream record's timestamp (the rowtime), firing on watermarks.
	ProcTime bool
}

// Validate reports a spec the window operator cannot run, saying which
// parameter to change.
func (w WindowSpec) Validate() error {
	ms := func(d time.Duration, what string) error {
		if d < time.Millisecond || d%time.Millisecond != 0 {
			return fmt.Errorf("%s window: %s %v must be a positive whole number of milliseconds", w.Kind, what, d)
		}
		return nil
	}
	switch w.Kind {
	case Tumble:
		return ms(w.Size, "size")
	case Hop:
		if err := ms(w.Size, "size"); err != nil {
			return err
		}
		return ms(w.Slide, "slide")
	case Cumulate:
		if err := ms(w.Size, "size"); err != nil {
			return err
		}
		if err := ms(w.Step, "step"); err != nil {
			return err
		}
		if w.Size%w.Step != 0 {
			return fmt.Errorf("CUMULATE window: size %v must be a multiple of step %v", w.Size, w.Step)
		}
		return nil
	case Session:
		return ms(w.Gap, "gap")
	}
	return fmt.Errorf("unknown window kind %d", w.Kind)
}

// gridAssigner assigns the fixed-size windows of TUMBLE and HOP with an
// offset; it implements window.Fixed, so the window operator computes
// windows inline.
type gridAssigner struct {
	size, slide, offset int64
	domain              window.Domain
}

func winFloorMod(x, m int64) int64 {
	r := x % m
	if r < 0 {
		r += m
	}
	return r
}

func (g gridAssigner) Assign(ts int64, dst []window.Window) []window.Window {
	last := ts - winFloorMod(ts-g.offset, g.slide)
	for start := last; start > ts-g.size; start -= g.slide {
		dst = append(dst, window.Window{Start: start, End: start + g.size})
	}
	return dst
}
func (g gridAssigner) Domain() window.Domain             { return g.domain }
func (g gridAssigner) Gap() int64                        { return 0 }
func (g gridAssigner) Span() (size, slide, offset int64) { return g.size, g.slide, g.offset }

// cumulateAssigner assigns CUMULATE windows [start, start+k×step). The
// window operator tells windows of a key apart by their start, and the
// cumulate windows of one period share it; so each is handed to the
// operator as [end-size, end), which has the same end (and so fires at
// the same time) and a start unique to it. realStart recovers the start.
type cumulateAssigner struct {
	size, step, offset int64
	domain             window.Domain
}

func (c cumulateAssigner) Assign(ts int64, dst []window.Window) []window.Window {
	start := ts - winFloorMod(ts-c.offset, c.size)
	first := ts - winFloorMod(ts-start, c.step) + c.step // the first end after ts
	for end := first; end <= start+c.size; end += c.step {
		dst = append(dst, window.Window{Start: end - c.size, End: end})
	}
	return dst
}
func (c cumulateAssigner) Domain() window.Domain { return c.domain }
func (c cumulateAssigner) Gap() int64            { return 0 }

func (c cumulateAssigner) realStart(end int64) int64 {
	return end - 1 - winFloorMod(end-1-c.offset, c.size)
}

// WindowAggregate aggregates input per key and window (Flink's window
// TVF aggregation). It emits one row per key and window when the window
// fires (the watermark passes its end, or for ProcTime windows the wall
// clock does): Vals are the key columns, window_start, window_end,
// window_time (TIMESTAMP ms; window_time = window_end - 1), then one
// column per AggCall; the record's timestamp is window_time. The output
// is append-only: a window's result is emitted once.
//
// With cfg.AppendOnly the input must hold only inserts (a -U or -D row
// fails the job), and MIN, MAX, FIRST_VALUE and LAST_VALUE keep one value.
// Without it the input is a changelog (Flink 1.19's window aggregation
// over CDC input): +I and +U rows add to, -U and -D rows retract from, the
// windows their record's timestamp assigns them to, so a retraction must
// carry the time of the row it withdraws (the planner stamps each row with
// its time attribute). Accumulators retract as GroupAggregate's do (COUNT,
// SUM and AVG subtract, MIN and MAX keep their values' multiset, user
// functions must implement Retractor); a retraction of a row the window
// cannot hold is ignored whole (aggPlan.holds: the window is empty, a
// count would go below zero, or a MIN, MAX or DISTINCT value is missing),
// and a window whose rows were all retracted emits nothing. SESSION and processing-time windows take append-only
// input only (a retraction cannot split a merged session, and the wall
// clock would put it in the current window rather than its row's).
//
// Records whose windows all fired already are late, retractions as well as
// insertions: they are dropped and counted in the operator's Dropped
// metric (stream.Job.Metrics); a window already emitted is never
// corrected. FIRST_VALUE and LAST_VALUE follow arrival order. State is
// checkpointed by the window operator (memory or a state backend).
func WindowAggregate(in stream.Stream[Change], key []int, w WindowSpec, aggs []AggCall, cfg AggConfig) stream.Stream[Change] {
	name := cfg.Name
	if name == "" {
		name = "window-aggregate"
	}
	par := cfg.Parallelism
	if len(key) == 0 {
		par = 1
	}
	retract := !cfg.AppendOnly
	err := w.Validate()
	if err == nil && retract {
		err = WindowUpdatingErr(w)
	}
	var p *aggPlan
	if err == nil {
		p, err = compileAggs(aggs, retract, w.Kind == Session)
		if p != nil {
			p.onError = cfg.OnError
		}
	}
	if err != nil {
		err = fmt.Errorf("%s: %w", name, err)
		p = &aggPlan{}
		w = WindowSpec{Kind: Tumble, Size: time.Millisecond}
	}
	key = append([]int(nil), key...)
	nk, na := len(key), len(aggs)
	domain := window.EventTime
	if w.ProcTime {
		domain = window.ProcessingTime
	}
	var a window.Assigner
	var cum cumulateAssigner
	switch w.Kind {
	case Tumble:
		a = gridAssigner{size: w.Size.Milliseconds(), slide: w.Size.Milliseconds(), offset: w.Offset.Milliseconds(), domain: domain}
	case Hop:
		a = gridAssigner{size: w.Size.Milliseconds(), slide: w.Slide.Milliseconds(), offset: w.Offset.Milliseconds(), domain: domain}
	case Cumulate:
		cum = cumulateAssigner{size: w.Size.Milliseconds(), step: w.Step.Milliseconds(), offset: w.Offset.Milliseconds(), domain: domain}
		a = cum
	case Session:
		if w.ProcTime {
			a = window.SessionProcessingTime(w.Gap)
		} else {
			a = window.Session(w.Gap)
		}
	}
	ks := aggKeyBy(in, key, name, err)
	opts := []stream.OpOption{stream.Name(name)}
	if par > 0 {
		opts = append(opts, stream.Parallelism(par))
	}
	agg := stream.Aggregator[aggKeyed, *accRow, []row.Value]{
		Init: p.newAcc,
		Add: func(acc *accRow, kc aggKeyed) *accRow {
			sign := int64(1)
			if kc.c.Op.IsRetract() {
				if !retract {
					panic(fmt.Errorf("%s: a %s row arrived but the window aggregate was planned for append-only input (AggConfig.AppendOnly)", name, kc.c.Op))
				}
				p.fixup(acc)
				if !p.holds(acc, kc.c.Vals) {
					return acc // a row this window never held: nothing to retract
				}
				sign = -1
			}
			p.fixup(acc)
			if acc.keyVals == nil && nk > 0 {
				acc.keyVals = make([]row.Value, nk)
				for i, col := range key {
					acc.keyVals[i] = aggOwn(kc.c.Vals[col])
				}
			}
			acc.rows += sign
			p.accumulate(acc, kc.c.Vals, sign)
			return acc
		},
		Merge: p.merge,
		Result: func(acc *accRow) []row.Value {
			if acc.rows <= 0 {
				return nil // every row retracted: the window emits nothing
			}
			p.fixup(acc)
			out := make([]row.Value, nk+3+na)
			copy(out, acc.keyVals)
			p.results(acc, out[nk+3:])
			return out
		},
	}
	res := stream.Aggregate(stream.Window(ks, a), agg, opts...)
	// The rows step inherits the window operator's parallelism.
	mopts := []stream.OpOption{stream.Name(name + "-rows")}
	kind := w.Kind
	return stream.FlatMap(res, func(r stream.Windowed[string, []row.Value], em *stream.Emitter[Change]) {
		out := r.Value
		if out == nil {
			return
		}
		start := r.Window.Start
		if kind == Cumulate {
			start = cum.realStart(r.Window.End)
		}
		out[nk] = row.Timestamp(start)
		out[nk+1] = row.Timestamp(r.Window.End)
		out[nk+2] = row.Timestamp(r.Window.End - 1)
		em.Emit(Change{Op: Insert, Vals: out})
	}, mopts...)
}

// WindowUpdatingErr reports, at planning time, why windows w cannot
// aggregate an updating input (a changelog), or nil when they can: TUMBLE,
// HOP and CUMULATE on event time can.
func WindowUpdatingErr(w WindowSpec) error {
	switch {
	case w.Kind == Session:
		return fmt.Errorf("SESSION windows need an append-only input: a retraction cannot split a session that its row's insertion merged")
	case w.ProcTime:
		return fmt.Errorf("processing-time windows need an append-only input: a retraction would land in the window of the wall clock, not in its row's")
	}
	return nil
}
