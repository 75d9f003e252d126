package sql

import (
	"context"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/connect"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/stream"
)

// builder turns plan nodes into a stream dataflow in one Env.
type builder struct {
	ctx   context.Context
	s     *Session
	env   *stream.Env
	built map[node]stream.Stream[exec.Change]
	// scans shares one source per table among all its uses in a job
	// (Flink's source reuse).
	scans map[*table]stream.Stream[exec.Change]
	ttl   time.Duration
	seq   int
	// explain: the dataflow is built only to print its plan (lookup
	// tables are not read).
	explain bool
	// digests and reused: sub-plan reuse (reuse.go).
	digests map[node]string
	reused  map[string]stream.Stream[exec.Change]
	// closers release what the dataflow holds outside it (live lookup
	// tables' connections) once the job has ended.
	closers []func() error
}

// closeAll releases what the built dataflow held.
func (b *builder) closeAll() {
	for _, c := range b.closers {
		_ = c() // connections of a finished job: nothing to report
	}
	b.closers = nil
}

func (s *Session) newBuilder(ctx context.Context, env *stream.Env) *builder {
	return &builder{ctx: ctx, s: s, env: env, built: map[node]stream.Stream[exec.Change]{},
		scans: map[*table]stream.Stream[exec.Change]{}, ttl: s.stateTTL(),
		digests: map[node]string{}, reused: map[string]stream.Stream[exec.Change]{}}
}

func (b *builder) name(kind string) string {
	b.seq++
	return fmt.Sprintf("%s-%d", kind, b.seq)
}

func (b *builder) build(n node) (stream.Stream[exec.Change], error) {
	if s, ok := b.built[n]; ok {
		return s, nil
	}
	d := b.digest(n)
	if s, ok := b.reused[d]; ok && d != "" {
		b.built[n] = s
		return s, nil
	}
	s, err := b.build1(n)
	if err != nil {
		return s, err
	}
	b.built[n] = s
	if d != "" {
		b.reused[d] = s
	}
	return s, nil
}

func (b *builder) build1(n node) (stream.Stream[exec.Change], error) {
	switch n := n.(type) {
	case *renamed:
		return b.build(n.node)
	case *scan:
		return b.buildScan(n.table)
	case *calc:
		n = composeCalcs(n)
		in, err := b.build(n.in)
		if err != nil {
			return in, err
		}
		return b.buildCalc(in, n), nil
	case *windowTVF:
		in, err := b.build(n.in)
		if err != nil {
			return in, err
		}
		return b.buildTVF(in, n)
	case *windowAgg:
		in, err := b.build(n.in)
		if err != nil {
			return in, err
		}
		if n.stamp >= 0 {
			in = stampRows(in, n.stamp, b.name("window-rowtime"))
		}
		return exec.WindowAggregate(in, n.key, n.spec, n.aggs, exec.AggConfig{Name: b.name("window-aggregate"), AppendOnly: !n.in.updating(), OnError: b.s.evalError}), nil
	case *groupAgg:
		in, err := b.build(n.in)
		if err != nil {
			return in, err
		}
		return exec.GroupAggregate(in, n.key, n.aggs, exec.AggConfig{Name: b.name("group-aggregate"), StateTTL: b.ttl,
			AppendOnly: !n.in.updating(), MiniBatch: b.s.miniBatch(), OnError: b.s.evalError}), nil
	case *join:
		l, err := b.build(n.left)
		if err != nil {
			return l, err
		}
		r, err := b.build(n.right)
		if err != nil {
			return r, err
		}
		cfg := exec.JoinConfig{Name: b.name("join"), StateTTL: b.ttl, JoinedCond: n.pred,
			AppendOnly: [2]bool{!n.left.updating(), !n.right.updating()}}
		switch n.strategy {
		case joinWindow:
			cfg.Name = b.name("window-join")
			return exec.WindowJoin(l, r, n.leftKey, n.rightKey, n.leftWin, n.rightWin, n.kind, n.cond, n.leftWidth, n.rightWid, cfg), nil
		case joinInterval:
			cfg.Name = b.name("interval-join")
			return exec.IntervalJoin(l, r, n.leftKey, n.rightKey, n.kind, n.lower, n.upper, n.cond, n.leftWidth, n.rightWid, cfg), nil
		}
		return exec.Join(l, r, n.leftKey, n.rightKey, n.kind, n.cond, n.leftWidth, n.rightWid, cfg), nil
	case *lookupJoin:
		return b.buildLookup(n)
	case *rank:
		if n.limit < 0 {
			return stream.Stream[exec.Change]{}, fmt.Errorf("ROW_NUMBER() OVER (%s) needs a filter on its result (WHERE rownum <= N)", n.text)
		}
		in, err := b.build(n.in)
		if err != nil {
			return in, err
		}
		cfg := exec.RankConfig{Name: b.name("rank"), StateTTL: b.ttl, InputAppendOnly: !n.in.updating()}
		switch n.mode() {
		case rankDedup, rankKeepFirstRowtime:
			cfg.Name = b.name("deduplicate")
			cfg.WaitForWatermark = n.mode() == rankKeepFirstRowtime
			return exec.Deduplicate(in, n.partition, n.order[0].Col, n.order[0].Desc, n.rowNumber, cfg), nil
		case rankWindow:
			wc, _ := n.windowCols()
			cfg.Name = b.name("window-rank")
			return exec.WindowRank(in, wc[0], [2]int{wc[1][0], wc[2][0]}, n.order, n.limit, n.rowNumber, cfg), nil
		}
		return exec.Rank(in, n.partition, n.order, n.limit, n.rowNumber, cfg), nil
	case *union:
		var ins []stream.Stream[exec.Change]
		for _, x := range n.ins {
			s, err := b.build(x)
			if err != nil {
				return s, err
			}
			ins = append(ins, s)
		}
		return stream.Union(ins[0], ins[1:]...), nil
	case *values:
		cs := make([]exec.Change, len(n.rows))
		for i, r := range n.rows {
			cs[i] = exec.Change{Op: exec.Insert, Vals: r}
		}
		return stream.FromSource(b.env, b.name("values"), stream.FromSlice(cs, 1), stream.WatermarkStrategy[exec.Change]{}), nil
	}
	return stream.Stream[exec.Change]{}, fmt.Errorf("internal: cannot build %T", n)
}

// idleTimeout is how long a split of t may go without records before it
// is idle: the table's 'scan.watermark.idle-timeout', else the session's
// table.exec.source.idle-timeout as it is now (a SET after the CREATE
// TABLE counts, as in Flink).
func (b *builder) idleTimeout(t *table) time.Duration {
	if t.idleTimeoutSet {
		return t.idleTimeout
	}
	d, _ := parseDuration(b.s.settings["table.exec.source.idle-timeout"])
	return d
}

// buildScan opens the table's source once per job: the watermark from
// its WATERMARK clause and its computed columns appended to every row.
func (b *builder) buildScan(t *table) (stream.Stream[exec.Change], error) {
	if s, ok := b.scans[t]; ok {
		return s, nil
	}
	src, _, err := connect.OpenSource(connect.SourceTable{Name: t.name, Columns: t.physical, Options: t.options, Reserve: len(t.computed)}, b.s.connectEnv())
	if err != nil {
		// connect.OpenSource names the table already.
		return stream.Stream[exec.Change]{}, err
	}
	np := len(t.physical)
	var wm stream.WatermarkStrategy[exec.Change]
	if t.rowtime >= 0 {
		wm.MaxOutOfOrderness = t.delay
		if t.rowtime < np {
			i := t.rowtime
			wm.Timestamp = func(c exec.Change) int64 { return c.Vals[i].AsInt() }
		} else {
			k := t.rowtime - np
			comp := t.computed
			if k == 0 {
				ev := comp[0].c.Eval
				wm.Timestamp = func(c exec.Change) int64 { return ev(c.Vals).AsInt() }
			} else {
				wm.Timestamp = func(c exec.Change) int64 {
					ext := make([]row.Value, np, np+k+1)
					copy(ext, c.Vals)
					for j := 0; j <= k; j++ {
						ext = append(ext, comp[j].c.Eval(ext))
					}
					return ext[np+k].AsInt()
				}
			}
		}
		if d := b.idleTimeout(t); d > 0 {
			wm.IdleTimeout = d
		}
	}
	s := stream.FromSource(b.env, t.name, src, wm)
	if len(t.computed) > 0 {
		comp := t.computed
		total := np + len(comp)
		s = stream.Map(s, func(c exec.Change) exec.Change {
			v := c.Vals
			if cap(v) >= total {
				v = v[:np]
			} else {
				nv := make([]row.Value, np, total)
				copy(nv, v)
				v = nv
			}
			for _, cc := range comp {
				v = append(v, cc.c.Eval(v))
			}
			return exec.Change{Op: c.Op, Vals: v}
		}, stream.Name(t.name+"-computed"))
	}
	b.scans[t] = s
	return s, nil
}

// composeCalcs merges a calc that only selects columns (no filter, no
// expressions) into the calc below it: each of its columns is the lower
// calc's column (a pass-through or an expression over the lower calc's
// input), so one operator and one row copy do both.
func composeCalcs(n *calc) *calc {
	for n.filter == nil {
		inner, ok := unwrapRenamed(n.in).(*calc)
		if !ok || len(inner.out) != len(n.in.cols()) {
			return n
		}
		for _, pj := range n.pass {
			if pj < 0 {
				return n
			}
		}
		c := &calc{in: inner.in, out: n.out, filter: inner.filter, filterText: inner.filterText}
		for _, pj := range n.pass {
			c.pass = append(c.pass, inner.pass[pj])
			c.exprs = append(c.exprs, inner.exprs[pj])
			c.exprText = append(c.exprText, inner.exprText[pj])
		}
		n = c
	}
	return n
}

// buildCalc runs a projection and filter as one flat-map.
func (b *builder) buildCalc(in stream.Stream[exec.Change], n *calc) stream.Stream[exec.Change] {
	filter := n.filter
	pass := n.pass
	exprs := n.exprs
	width := len(n.out)
	identity := n.isIdentity()
	return stream.FlatMap(in, func(c exec.Change, out *stream.Emitter[exec.Change]) {
		if filter != nil && !filter(c.Vals) {
			return
		}
		if identity {
			out.Emit(c)
			return
		}
		v := make([]row.Value, width)
		for i, pj := range pass {
			if pj >= 0 {
				if pj < len(c.Vals) {
					v[i] = c.Vals[pj]
				}
				continue
			}
			v[i] = exprs[i].Eval(c.Vals)
		}
		out.Emit(exec.Change{Op: c.Op, Vals: v})
	}, stream.Name(b.name("calc")))
}

// buildTVF emits each row once per window it belongs to, with
// window_start, window_end and window_time appended (a window TVF whose
// rows are selected as they are).
func (b *builder) buildTVF(in stream.Stream[exec.Change], n *windowTVF) (stream.Stream[exec.Change], error) {
	spec := n.spec
	if spec.Kind == exec.Session {
		return in, fmt.Errorf("SESSION windows can only be aggregated (GROUP BY window_start, window_end); their rows cannot be selected as they are")
	}
	size, slide := spec.Size.Milliseconds(), spec.Size.Milliseconds()
	switch spec.Kind {
	case exec.Hop:
		slide = spec.Slide.Milliseconds()
	case exec.Cumulate:
		slide = spec.Step.Milliseconds()
	}
	off := spec.Offset.Milliseconds()
	tc := n.timeCol
	width := len(n.in.cols())
	return stream.FlatMap(in, func(c exec.Change, out *stream.Emitter[exec.Change]) {
		if c.Vals[tc].IsNull() {
			return // a row without a time is in no window (Flink drops it)
		}
		ts := c.Vals[tc].AsInt()
		emit := func(start, end int64) {
			v := make([]row.Value, width+3)
			copy(v, c.Vals)
			v[width] = row.Timestamp(start)
			v[width+1] = row.Timestamp(end)
			v[width+2] = row.Timestamp(end - 1)
			out.Emit(exec.Change{Op: c.Op, Vals: v})
		}
		last := floorDiv(ts-off, slide)*slide + off
		switch spec.Kind {
		case exec.Tumble, exec.Hop:
			for start := last; start > ts-size; start -= slide {
				emit(start, start+size)
			}
		case exec.Cumulate:
			wstart := floorDiv(ts-off, size)*size + off
			for end := last + slide; end <= wstart+size; end += slide {
				emit(wstart, end)
			}
		}
	}, stream.Name(b.name("window-tvf"))), nil
}

// stampRows gives each row's record the timestamp in its column col (a
// TIMESTAMP, never null here): the window aggregation of a changelog puts
// a retraction into the windows of the row it withdraws, whatever record
// carried it.
func stampRows(in stream.Stream[exec.Change], col int, name string) stream.Stream[exec.Change] {
	return stream.FlatMap(in, func(c exec.Change, out *stream.Emitter[exec.Change]) {
		out.EmitAt(c, c.Vals[col].AsInt())
	}, stream.Name(name))
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
