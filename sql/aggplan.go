package sql

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/ast"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/sql/expr"
	"github.com/sluicehq/sluice/sql/types"
)

var builtinAggs = map[string]exec.AggKind{
	"COUNT": exec.AggCount, "SUM": exec.AggSum, "SUM0": exec.AggSum0, "MIN": exec.AggMin, "MAX": exec.AggMax,
	"AVG": exec.AggAvg, "FIRST_VALUE": exec.AggFirstValue, "LAST_VALUE": exec.AggLastValue,
}

// isAggregate reports an aggregate call (not a window function call).
func (p *planner) isAggregate(c *ast.Call) bool {
	if c.Over != nil {
		return false
	}
	n := strings.ToUpper(c.Name.Name)
	if _, ok := builtinAggs[n]; ok {
		return true
	}
	_, ok := p.s.aggregates[n]
	return ok
}

// findAggregates lists the aggregate calls of the select list, HAVING
// and ORDER BY, each once (by structure).
func (p *planner) findAggregates(sel *ast.Select) []*ast.Call {
	var out []*ast.Call
	add := func(e ast.Expr) {
		walk(e, func(x ast.Expr) bool {
			c, ok := x.(*ast.Call)
			if !ok || !p.isAggregate(c) {
				return true
			}
			for _, o := range out {
				if sameExpr(o, c) {
					return false
				}
			}
			out = append(out, c)
			return false
		})
	}
	for _, it := range sel.Items {
		add(it.Expr)
	}
	add(sel.Having)
	for _, o := range sel.OrderBy {
		add(o.Expr)
	}
	return out
}

// legacyWindow is GROUP BY TUMBLE(t, size) / HOP(t, slide, size) /
// SESSION(t, gap) / CUMULATE(t, step, size).
var legacyWindows = map[string]bool{"TUMBLE": true, "HOP": true, "SESSION": true, "CUMULATE": true}

// legacyAux maps TUMBLE_START and friends to the window column they
// read.
func legacyAux(name string) (winRole, bool) {
	for w := range legacyWindows {
		switch name {
		case w + "_START":
			return winStart, true
		case w + "_END":
			return winEnd, true
		case w + "_ROWTIME", w + "_PROCTIME":
			return winTime, true
		}
	}
	return winNone, false
}

// windowSpec builds a window from a TVF's or legacy group window's size
// arguments.
func (p *planner) windowSpec(fn string, sizes []ast.Expr, pos ast.Pos) (exec.WindowSpec, error) {
	// The sizes must be positive; the optional last argument, the offset,
	// may be zero or negative (Flink: an offset of -8 s on 10 s windows
	// aligns them as +2 s does).
	need := map[string]int{"TUMBLE": 1, "HOP": 2, "CUMULATE": 2, "SESSION": 1}[fn]
	ds := make([]time.Duration, len(sizes))
	for i, s := range sizes {
		iv, ok := s.(*ast.IntervalLit)
		if !ok {
			return exec.WindowSpec{}, fmt.Errorf("%s: %s takes interval literals (INTERVAL '10' SECOND) for its sizes", s.Start(), fn)
		}
		d, err := intervalDuration(iv)
		if err != nil {
			return exec.WindowSpec{}, err
		}
		if d <= 0 && i < need {
			return exec.WindowSpec{}, fmt.Errorf("%s: %s sizes must be positive", s.Start(), fn)
		}
		ds[i] = d
	}
	if len(ds) < need || len(ds) > need+1 || fn == "SESSION" && len(ds) != 1 {
		return exec.WindowSpec{}, fmt.Errorf("%s: %s takes %d interval arguments", pos, fn, need)
	}
	var w exec.WindowSpec
	switch fn {
	case "TUMBLE":
		w = exec.WindowSpec{Kind: exec.Tumble, Size: ds[0]}
	case "HOP":
		w = exec.WindowSpec{Kind: exec.Hop, Slide: ds[0], Size: ds[1]}
		if w.Size%w.Slide != 0 {
			return exec.WindowSpec{}, fmt.Errorf("%s: HOP size %s must be a multiple of its slide %s", pos, w.Size, w.Slide)
		}
	case "CUMULATE":
		w = exec.WindowSpec{Kind: exec.Cumulate, Step: ds[0], Size: ds[1]}
		if w.Size%w.Step != 0 {
			return exec.WindowSpec{}, fmt.Errorf("%s: CUMULATE max size %s must be a multiple of its step %s", pos, w.Size, w.Step)
		}
	case "SESSION":
		w = exec.WindowSpec{Kind: exec.Session, Gap: ds[0]}
	}
	if len(ds) == need+1 {
		w.Offset = ds[need]
	}
	return w, nil
}

// aggregation is what planAggregate decides before building nodes.
type aggregation struct {
	// window: how rows are windowed, nil for an unbounded GROUP BY.
	window *exec.WindowSpec
	// base is the node whose rows are aggregated (below a window TVF).
	base node
	// keys are the group expressions other than the window's.
	keys []ast.Expr
	// winGroup marks group expressions that are the window's columns:
	// index in sel.GroupBy → role.
	winGroup map[int]winRole
	// cascade: the window comes from a window aggregation below
	// (grouping on its window_start and window_end).
	cascade bool
	// timeCol is the time attribute's column in base when its rows are
	// windowed on it, -1 otherwise: rows whose time is NULL belong to no
	// window and are dropped, as Flink does.
	timeCol int
	// timeType is the type of the time attribute the window is on (its
	// kind decides window_time's: TIMESTAMP or TIMESTAMP_LTZ).
	timeType types.Type
}

// planAggregate plans GROUP BY and aggregates: a pre-projection of the
// keys and arguments, the aggregation, and a projection of the select
// list (with HAVING) over its result.
func (p *planner) planAggregate(sel *ast.Select, in node, aggCalls []*ast.Call) (node, error) {
	ag := aggregation{base: in, winGroup: map[int]winRole{}, timeCol: -1}
	insc := &scope{cols: in.cols()}
	tvf, _ := unwrapRenamed(in).(*windowTVF)
	for gi, g := range sel.GroupBy {
		// Legacy group window.
		if c, ok := g.(*ast.Call); ok && legacyWindows[strings.ToUpper(c.Name.Name)] && !p.isAggregate(c) {
			if ag.window != nil {
				return nil, fmt.Errorf("%s: only one group window per GROUP BY", c.Pos)
			}
			fn := strings.ToUpper(c.Name.Name)
			if len(c.Args) < 2 {
				return nil, fmt.Errorf("%s: %s(time_attr, interval...) needs a time attribute and its sizes", c.Pos, fn)
			}
			ref, ok := c.Args[0].(*ast.ColumnRef)
			if !ok {
				return nil, fmt.Errorf("%s: the first argument of %s must be a time attribute column", c.Pos, fn)
			}
			i, err := insc.find(ref.Parts, ref.Pos)
			if err != nil {
				return nil, err
			}
			if insc.cols[i].typ.Time == types.NoTimeAttr {
				return nil, fmt.Errorf("%s: %s is not a time attribute; declare a WATERMARK on it or use PROCTIME()", ref.Pos, insc.cols[i].name)
			}
			// Legacy HOP/CUMULATE take (t, slide, size) like the TVFs.
			spec, err := p.windowSpec(fn, c.Args[1:], c.Pos)
			if err != nil {
				return nil, err
			}
			spec.ProcTime = insc.cols[i].typ.Time == types.ProcTime
			ag.window = &spec
			ag.timeCol = i
			ag.timeType = insc.cols[i].typ
			ag.winGroup[gi] = winTime // the whole window
			continue
		}
		if r, ok := g.(*ast.ColumnRef); ok {
			i, err := insc.find(r.Parts, r.Pos)
			if err != nil {
				return nil, err
			}
			c := insc.cols[i]
			if c.tvf != nil && tvf != nil && c.tvf == tvf && (c.win == winStart || c.win == winEnd) {
				ag.winGroup[gi] = c.win
				continue
			}
			if c.tvf == nil && (c.win == winStart || c.win == winEnd) && !in.updating() {
				ag.winGroup[gi] = c.win
				ag.cascade = true
				ag.keys = append(ag.keys, g) // stays a key: its value is the window's
				continue
			}
			if c.tvf != nil && c.win == winTime {
				return nil, fmt.Errorf("%s: GROUP BY window_time is not allowed; group by window_start and window_end and select window_time", r.Pos)
			}
		}
		ag.keys = append(ag.keys, g)
	}
	var hasStart, hasEnd bool
	for _, r := range ag.winGroup {
		hasStart = hasStart || r == winStart
		hasEnd = hasEnd || r == winEnd
	}
	switch {
	case ag.window != nil:
	case ag.cascade && hasStart && hasEnd:
		// Rows of a window aggregation carry window_time as their
		// timestamp: a 1 ms tumbling window over it groups exactly the
		// rows of one window, and fires when the watermark passes its
		// end, like the window below.
		ag.window = &exec.WindowSpec{Kind: exec.Tumble, Size: time.Millisecond}
		for _, c := range in.cols() {
			if c.win == winTime && c.tvf == nil {
				ag.timeType = c.typ
			}
		}
	case tvf != nil && hasStart && hasEnd:
		spec := tvf.spec
		ag.window = &spec
		ag.base = tvf.in
		ag.timeCol = tvf.timeCol
		ag.timeType = tvf.in.cols()[tvf.timeCol].typ
		if len(tvf.partition) > 0 {
			return nil, fmt.Errorf("%s: SESSION with PARTITION BY is not supported; group by the partition columns instead", sel.Pos)
		}
	case tvf != nil && (hasStart || hasEnd):
		return nil, fmt.Errorf("%s: a window aggregation must GROUP BY both window_start and window_end", sel.Pos)
	default:
		if ag.cascade {
			// window_start alone: an ordinary grouping on its value.
			ag.cascade = false
		}
		for gi := range ag.winGroup {
			if !hasStart || !hasEnd {
				delete(ag.winGroup, gi)
			}
		}
	}
	if ag.window != nil && ag.base.updating() {
		// A changelog (Flink 1.19's window aggregation over CDC input):
		// each row adds to or retracts from the windows of its time
		// attribute, so TUMBLE, HOP and CUMULATE on event time only.
		if err := exec.WindowUpdatingErr(*ag.window); err != nil {
			return nil, fmt.Errorf("%s: the input of this window aggregation produces updates (%s), and %v; use TUMBLE, HOP or CUMULATE on an event-time attribute, or aggregate without a window", sel.Pos, whyUpdating(ag.base), err)
		}
		if ag.timeCol < 0 {
			return nil, fmt.Errorf("%s: a window aggregation over an input that produces updates (%s) must window on a time attribute of that input", sel.Pos, whyUpdating(ag.base))
		}
	}
	return p.buildAggregate(sel, ag, aggCalls)
}

// fusePre plans the pre-projection pre of an aggregation (exprs: the
// expression of each computed column, nil for a passed column) over the
// input of a calc below it that only passes columns through (a view's
// projection), so that rows are copied once; nil when not possible.
func (p *planner) fusePre(pre *calc, exprs []ast.Expr) *calc {
	below, ok := fusable(pre.in)
	if !ok {
		return nil
	}
	fs := &fuseScope{cols: pre.in.cols(), c: below}
	c := &calc{in: below.in, filter: below.filter, filterText: below.filterText, out: pre.out, exprText: pre.exprText}
	for k, j := range pre.pass {
		if j >= 0 {
			if below.pass[j] < 0 {
				return nil
			}
			c.pass = append(c.pass, below.pass[j])
			c.exprs = append(c.exprs, expr.Compiled{})
			continue
		}
		cc, err := p.comp.Compile(exprs[k], fs)
		if err != nil {
			return nil // a computed column of below (or kept as planned)
		}
		c.pass = append(c.pass, -1)
		c.exprs = append(c.exprs, cc)
	}
	return c
}

// fusedPass returns the column of the fusable calc's input that column
// col of in passes through, or -1.
func fusedPass(in node, col int) int {
	below, ok := fusable(in)
	if !ok {
		return -1
	}
	return below.pass[col]
}

func (p *planner) buildAggregate(sel *ast.Select, ag aggregation, aggCalls []*ast.Call) (node, error) {
	bsc := &scope{cols: ag.base.cols()}
	// Pre-projection: keys, then each distinct argument and filter.
	pre := &calc{in: ag.base}
	var preASTs []ast.Expr // the expression of each computed pre column
	// addPass passes column j of the base through the pre-projection.
	addPass := func(j int) int {
		for k, pj := range pre.pass {
			if pj == j {
				return k
			}
		}
		src := bsc.cols[j]
		pre.out = append(pre.out, column{name: src.name, qual: src.qual, path: src.path, typ: src.typ, win: src.win})
		preASTs = append(preASTs, nil)
		pre.pass = append(pre.pass, j)
		pre.exprs = append(pre.exprs, expr.Compiled{})
		pre.exprText = append(pre.exprText, src.name)
		return len(pre.out) - 1
	}
	addPre := func(e ast.Expr, name string) (int, error) {
		if r, ok := e.(*ast.ColumnRef); ok {
			j, err := bsc.find(r.Parts, r.Pos)
			if err != nil {
				return 0, err
			}
			return addPass(j), nil
		}
		for k, t := range pre.exprText {
			if pre.pass[k] < 0 && t == exprText(e) {
				return k, nil
			}
		}
		if err := p.noAggregates(e); err != nil {
			return 0, err
		}
		c, err := p.comp.Compile(e, bsc)
		if err != nil {
			return 0, err
		}
		pre.out = append(pre.out, column{name: name, typ: c.Type})
		preASTs = append(preASTs, e)
		pre.pass = append(pre.pass, -1)
		pre.exprs = append(pre.exprs, c)
		pre.exprText = append(pre.exprText, exprText(e))
		return len(pre.out) - 1, nil
	}
	var keyIdx []int
	for i, k := range ag.keys {
		j, err := addPre(k, "$k"+strconv.Itoa(i))
		if err != nil {
			return nil, err
		}
		keyIdx = append(keyIdx, j)
	}
	calls := make([]exec.AggCall, len(aggCalls))
	texts := make([]string, len(aggCalls))
	for i, c := range aggCalls {
		name := strings.ToUpper(c.Name.Name)
		ac := exec.AggCall{Arg: -1, Filter: -1, Distinct: c.Distinct}
		var userResult func([]types.Type) (types.Type, error)
		if k, ok := builtinAggs[name]; ok {
			ac.Kind = k
		} else {
			ac.Kind = exec.AggUser
			ua := p.s.aggregates[name]
			ac.User = ua.fn
			userResult = ua.result
		}
		switch {
		case c.Star:
			if ac.Kind != exec.AggCount {
				return nil, fmt.Errorf("%s: %s(*) is not valid; only COUNT(*)", c.Pos, name)
			}
			ac.Kind = exec.AggCountStar
		case len(c.Args) != 1:
			return nil, fmt.Errorf("%s: %s takes one argument", c.Pos, name)
		default:
			j, err := addPre(c.Args[0], "$arg"+strconv.Itoa(i))
			if err != nil {
				return nil, err
			}
			ac.Arg = j
			ac.ArgType = pre.out[j].typ.Plain()
		}
		if c.Filter != nil {
			j, err := addPre(c.Filter, "$filter"+strconv.Itoa(i))
			if err != nil {
				return nil, err
			}
			if pre.out[j].typ.Kind != types.Boolean {
				return nil, fmt.Errorf("%s: FILTER (WHERE ...) needs a BOOLEAN condition, not %s", c.Filter.Start(), pre.out[j].typ)
			}
			ac.Filter = j
		}
		rt, err := aggResultType(ac, c, userResult)
		if err != nil {
			return nil, err
		}
		ac.ResultType = rt
		calls[i] = ac
		texts[i] = exprText(c)
	}
	// Over a changelog, each row (a retraction too) goes to the windows of
	// its own time attribute: the aggregation stamps it with that column.
	stamp := -1
	if ag.window != nil && ag.base.updating() {
		stamp = addPass(ag.timeCol)
		if err := exec.ValidateAggs(calls, false, false); err != nil {
			return nil, fmt.Errorf("%s: %w", sel.Pos, err)
		}
	} else if ag.window != nil && !ag.window.ProcTime && ag.timeCol >= 0 && notRecordTime(ag.base, ag.timeCol) {
		// A side's rowtime after an interval or window join: the
		// records carry another time (a pair's later one, a window's
		// end), so the rows are stamped with the column windowed on.
		stamp = addPass(ag.timeCol)
	}
	// Rows whose time attribute is NULL belong to no window (Flink drops
	// them): the pre-projection filters them out, on the column of
	// whichever input it reads.
	nullTime := -1
	if tc := ag.timeCol; tc >= 0 && ag.window != nil && !ag.window.ProcTime && !bsc.cols[tc].typ.NotNull {
		nullTime = tc
	}
	dropNullTime := func(c *calc, col int) {
		name := bsc.cols[nullTime].name
		prev := c.filter
		if prev == nil {
			c.filter = func(v []row.Value) bool { return !v[col].IsNull() }
			c.filterText = name + " IS NOT NULL"
			return
		}
		c.filter = func(v []row.Value) bool { return !v[col].IsNull() && prev(v) }
		c.filterText += " AND " + name + " IS NOT NULL"
	}
	var preNode node = pre
	if f := p.fusePre(pre, preASTs); f != nil && (nullTime < 0 || f.in == pre.in || fusedPass(pre.in, nullTime) >= 0) {
		if nullTime >= 0 {
			dropNullTime(f, fusedPass(pre.in, nullTime))
		}
		preNode = f
	} else if nullTime >= 0 {
		dropNullTime(pre, nullTime)
	} else if pre.isIdentity() {
		preNode = ag.base
	}
	// The aggregation and the scope of the select list over it.
	var aggNode node
	var post []column
	keyCols := func() {
		for i, k := range ag.keys {
			c := pre.out[keyIdx[i]]
			col := column{name: c.name, typ: c.typ.Plain(), qual: c.qual, path: c.path, win: c.win}
			if _, isRef := k.(*ast.ColumnRef); !isRef {
				col.name, col.path, col.qual = "\x00g"+strconv.Itoa(i), nil, ""
			}
			if ag.window == nil || !ag.cascade {
				col.win = winNone
			}
			post = append(post, col)
		}
	}
	keyCols()
	if ag.window != nil {
		wt := types.TTimestamp
		wt.NotNull = true
		attr := types.RowTime
		if ag.window.ProcTime {
			attr = types.ProcTime
		}
		post = append(post,
			column{name: "\x00ws", typ: wt, win: winStart},
			column{name: "\x00we", typ: wt, win: winEnd},
			column{name: "\x00wt", typ: windowTimeType(withTime(ag.timeType, attr)), win: winTime})
	}
	for i, ac := range calls {
		post = append(post, column{name: "\x00a" + strconv.Itoa(i), typ: ac.ResultType})
	}
	if ag.window != nil {
		aggNode = &windowAgg{in: preNode, out: post, key: keyIdx, spec: *ag.window, aggs: calls, text: texts, stamp: stamp}
	} else {
		aggNode = &groupAgg{in: preNode, out: post, key: keyIdx, aggs: calls, text: texts}
	}
	// Rewrite the select list and HAVING onto the aggregation's columns.
	rewriteAgg := func(e ast.Expr) ast.Expr {
		return rewrite(e, func(x ast.Expr) (ast.Expr, bool) {
			ref := func(name string) (ast.Expr, bool) {
				return &ast.ColumnRef{Parts: []ast.Ident{{Name: name, Pos: x.Start()}}, Pos: x.Start()}, true
			}
			if c, ok := x.(*ast.Call); ok {
				for i, a := range aggCalls {
					if sameExpr(a, c) {
						return ref("\x00a" + strconv.Itoa(i))
					}
				}
				if role, ok := legacyAux(strings.ToUpper(c.Name.Name)); ok && ag.window != nil {
					return ref(map[winRole]string{winStart: "\x00ws", winEnd: "\x00we", winTime: "\x00wt"}[role])
				}
			}
			for i, k := range ag.keys {
				if _, isRef := k.(*ast.ColumnRef); !isRef && sameExpr(k, x) {
					return ref("\x00g" + strconv.Itoa(i))
				}
			}
			if r, ok := x.(*ast.ColumnRef); ok && ag.window != nil && !ag.cascade {
				// window_start / window_end / window_time of the TVF.
				if name, ok := tvfRole(r); ok {
					return ref(name)
				}
			}
			return nil, false
		})
	}
	items, err := expandItems(sel.Items, aggNode)
	if err != nil {
		return nil, err
	}
	for i := range items {
		if items[i].Alias == nil {
			a := ast.Ident{Name: outputName(items[i], i), Pos: items[i].Pos}
			items[i].Alias = &a
		}
		items[i].Expr = rewriteAgg(items[i].Expr)
		if err := p.noAggregates(items[i].Expr); err != nil {
			return nil, err
		}
	}
	n, err := p.projectGrouped(aggNode, items, bsc)
	if err != nil {
		return nil, err
	}
	if sel.Having != nil {
		h := rewriteAgg(sel.Having)
		pred, err := p.comp.Predicate(h, &scope{cols: post})
		if err != nil {
			return nil, groupedErr(err, []ast.Expr{h}, &scope{cols: post}, bsc)
		}
		c, ok := n.(*calc)
		if !ok {
			c = identityCalc(n)
		}
		if c.filter != nil {
			return nil, fmt.Errorf("%s: internal: HAVING over a filtered projection", sel.Having.Start())
		}
		// HAVING filters the aggregation's rows: evaluate it on them.
		c.filter = nil
		f := &calc{in: aggNode, out: post, pass: identityPass(len(post)), exprs: make([]expr.Compiled, len(post)), exprText: names(post), filter: pred, filterText: exprText(sel.Having)}
		c.in = f
		n = c
	}
	return n, nil
}

// tvfRole maps a reference to the TVF's window_start/window_end/
// window_time in a window aggregation's select list to its column.
func tvfRole(r *ast.ColumnRef) (string, bool) {
	last := strings.ToLower(r.Parts[len(r.Parts)-1].Name)
	switch last {
	case "window_start":
		return "\x00ws", true
	case "window_end":
		return "\x00we", true
	case "window_time":
		return "\x00wt", true
	}
	return "", false
}

func identityPass(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	return p
}

func names(cs []column) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.name
	}
	return out
}

func identityCalc(n node) *calc {
	cs := n.cols()
	return &calc{in: n, out: cs, pass: identityPass(len(cs)), exprs: make([]expr.Compiled, len(cs)), exprText: names(cs)}
}

// projectGrouped is project over an aggregation, with the error for a
// column that is neither grouped nor aggregated.
func (p *planner) projectGrouped(agg node, items []ast.SelectItem, base *scope) (node, error) {
	n, err := p.project(agg, items)
	if err != nil {
		exprs := make([]ast.Expr, len(items))
		for i, it := range items {
			exprs[i] = it.Expr
		}
		return nil, groupedErr(err, exprs, &scope{cols: agg.cols()}, base)
	}
	// Window columns of the output keep their roles for cascades and
	// window joins.
	return n, nil
}

// groupedErr explains a column of a grouped select list (or HAVING) that
// did not resolve against the aggregation's output (post): when the
// aggregation's input (base) has it, it is neither grouped nor
// aggregated; otherwise it does not exist, and the error is the input's
// (with suggestions from all its columns, not only the grouped ones).
func groupedErr(err error, exprs []ast.Expr, post, base *scope) error {
	if !strings.Contains(err.Error(), "not found") {
		return err
	}
	var missing []*ast.ColumnRef
	for _, e := range exprs {
		walk(e, func(x ast.Expr) bool {
			if r, ok := x.(*ast.ColumnRef); ok && !strings.HasPrefix(r.Parts[0].Name, "\x00") {
				if _, err := post.find(r.Parts, r.Pos); err != nil {
					missing = append(missing, r)
				}
			}
			return true
		})
	}
	if len(missing) == 0 {
		return fmt.Errorf("%w; a column in the select list of a GROUP BY query must be grouped or used in an aggregate function", err)
	}
	// The reference the error is about: the one at its position.
	r := missing[0]
	for _, m := range missing {
		if strings.HasPrefix(err.Error(), m.Pos.String()+":") {
			r = m
			break
		}
	}
	i, berr := base.find(r.Parts, r.Pos)
	if berr != nil {
		return berr
	}
	name := partsString(r.Parts)
	agg := "MAX"
	if base.cols[i].typ.IsNumeric() {
		agg = "SUM"
	}
	return fmt.Errorf("%s: column '%s' is neither grouped nor aggregated; add it to GROUP BY or use it in an aggregate function (e.g. %s(%s))", r.Pos, name, agg, name)
}

// noAggregates refuses aggregates nested where they cannot be.
func (p *planner) noAggregates(e ast.Expr) error {
	var err error
	walk(e, func(x ast.Expr) bool {
		if c, ok := x.(*ast.Call); ok && p.isAggregate(c) && err == nil {
			err = fmt.Errorf("%s: aggregate %s is not allowed here (aggregates cannot be nested, or used in WHERE or GROUP BY)", c.Pos, strings.ToUpper(c.Name.Name))
		}
		return err == nil
	})
	return err
}

// aggResultType is the type of an aggregate's result, as Flink types it,
// except SUM over integers: BIGINT, where Flink keeps the argument's type
// (and wraps a SUM of INT past 2^31).
func aggResultType(ac exec.AggCall, c *ast.Call, user func([]types.Type) (types.Type, error)) (types.Type, error) {
	at := ac.ArgType
	switch ac.Kind {
	case exec.AggCount, exec.AggCountStar:
		return types.TBigInt.WithNull(true), nil
	case exec.AggSum, exec.AggSum0:
		switch {
		case at.IsInteger():
			return types.TBigInt.WithNull(ac.Kind == exec.AggSum0), nil
		case at.Kind == types.Decimal:
			return types.DecimalOf(38, at.Scale), nil
		case at.Kind == types.Float || at.Kind == types.Double:
			return types.TDouble, nil
		}
	case exec.AggAvg:
		switch {
		case at.IsInteger():
			return types.Type{Kind: at.Kind}, nil
		case at.Kind == types.Decimal:
			return types.DecimalOf(38, max(at.Scale, 6)), nil
		case at.Kind == types.Float || at.Kind == types.Double:
			return types.TDouble, nil
		}
	case exec.AggMin, exec.AggMax, exec.AggFirstValue, exec.AggLastValue:
		return at.WithNull(false), nil
	case exec.AggUser:
		if ac.User == nil || user == nil {
			return types.Type{}, fmt.Errorf("%s: unknown aggregate %s", c.Pos, c.Name.Name)
		}
		t, err := user([]types.Type{at})
		if err != nil {
			return types.Type{}, fmt.Errorf("%s: %s: %w", c.Pos, c.Name.Name, err)
		}
		return t, nil
	}
	return types.Type{}, fmt.Errorf("%s: %s does not take %s", c.Pos, strings.ToUpper(c.Name.Name), at)
}

// notRecordTime reports whether time attribute col of n may hold another
// time than its rows' records carry: a column of either side of an
// interval join (a pair is timestamped with the later of its rows) or of
// a window join (timestamped with the window's end), passed through
// projections, renamings, window TVFs and unions.
func notRecordTime(n node, col int) bool {
	switch x := n.(type) {
	case *renamed:
		return notRecordTime(x.node, col)
	case *calc:
		return col < len(x.pass) && x.pass[col] >= 0 && notRecordTime(x.in, x.pass[col])
	case *windowTVF:
		return col < len(x.in.cols()) && notRecordTime(x.in, col)
	case *union:
		for _, in := range x.ins {
			if notRecordTime(in, col) {
				return true
			}
		}
		return false
	case *join:
		return x.strategy == joinInterval || x.strategy == joinWindow
	}
	return false
}
