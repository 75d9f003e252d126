package sql

import (
	"fmt"
	"strings"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/ast"
	"github.com/sluicehq/sluice/sql/expr"
	"github.com/sluicehq/sluice/sql/types"
)

func (p *planner) planSelect(sel *ast.Select) (node, error) {
	derived := p.derived == sel
	p.derived = nil
	var in node
	conjs := splitAnd(sel.Where)
	if sel.From == nil {
		in = &values{rows: [][]row.Value{{}}}
	} else {
		var err error
		in, conjs, err = p.planRef(sel.From, conjs)
		if err != nil {
			return nil, err
		}
	}
	// A filter on the row number of a ranking below gives its limit.
	conjs = p.takeRankLimits(in, conjs)
	in, err := p.filterTVFAware(in, conjs)
	if err != nil {
		return nil, err
	}
	aggs := p.findAggregates(sel)
	prune := p.prunable(sel, derived, len(aggs))
	var out node
	switch {
	case len(sel.GroupBy) > 0 || len(aggs) > 0:
		out, err = p.planAggregate(sel, in, aggs)
	default:
		if sel.Having != nil {
			return nil, fmt.Errorf("%s: HAVING needs GROUP BY or an aggregate", sel.Having.Start())
		}
		out, err = p.planProjection(sel, in, prune)
	}
	if err != nil {
		return nil, err
	}
	if prune {
		p.markItems(sel, out)
	}
	if sel.Distinct {
		out = p.distinct(out)
	}
	if len(sel.OrderBy) > 0 || sel.Limit != nil {
		return p.planOrderLimit(out, sel.OrderBy, sel.Limit, sel.Pos)
	}
	return out, nil
}

// filterTVFAware applies conds over in; over a window TVF, conditions on
// the input's columns go below it so that the window aggregation still
// sees the TVF.
func (p *planner) filterTVFAware(in node, conds []ast.Expr) (node, error) {
	tvf, ok := in.(*windowTVF)
	ren, isRen := in.(*renamed) // FROM TABLE(TUMBLE(...)) AS t
	if isRen {
		tvf, ok = ren.node.(*windowTVF)
	}
	if ok && len(conds) > 0 {
		base := tvf.in
		if isRen {
			// The input's columns as the alias qualifies them.
			base = &renamed{node: unwrapRenamed(tvf.in), out: ren.out[:len(tvf.in.cols())]}
		}
		below := &scope{cols: base.cols()}
		var down, up []ast.Expr
		for _, c := range conds {
			if resolves(c, below) {
				down = append(down, c)
			} else {
				up = append(up, c)
			}
		}
		if len(down) > 0 {
			f, err := p.filter(base, down)
			if err != nil {
				return nil, err
			}
			t2 := *tvf
			t2.in = f
			// The window columns name the TVF they come from, which the
			// aggregation above checks: point them at the new one.
			t2.out = retargetTVF(tvf.out, tvf, &t2)
			in = &t2
			if isRen {
				in = &renamed{node: &t2, out: retargetTVF(ren.out, tvf, &t2)}
			}
		}
		conds = up
	}
	return p.filter(in, conds)
}

func retargetTVF(cs []column, from, to *windowTVF) []column {
	out := make([]column, len(cs))
	copy(out, cs)
	for i := range out {
		if out[i].tvf == from {
			out[i].tvf = to
		}
	}
	return out
}

// expandItems expands stars into one item per column.
func expandItems(items []ast.SelectItem, in node) ([]ast.SelectItem, error) {
	var out []ast.SelectItem
	cs := in.cols()
	for _, it := range items {
		if !it.Star {
			out = append(out, it)
			continue
		}
		n := 0
		for _, c := range cs {
			if c.hidden || strings.HasPrefix(c.name, "\x00") {
				continue
			}
			if len(it.Qualifier) > 0 && !strings.EqualFold(c.qual, it.Qualifier[len(it.Qualifier)-1].Name) {
				continue
			}
			var parts []ast.Ident
			if c.qual != "" {
				parts = append(parts, ast.Ident{Name: c.qual, Pos: it.Pos})
			}
			for _, s := range c.pathOrName() {
				parts = append(parts, ast.Ident{Name: s, Pos: it.Pos})
			}
			name := ast.Ident{Name: c.name, Pos: it.Pos}
			out = append(out, ast.SelectItem{Expr: &ast.ColumnRef{Parts: parts, Pos: it.Pos}, Alias: &name, Pos: it.Pos})
			n++
		}
		if n == 0 && len(it.Qualifier) > 0 {
			return nil, fmt.Errorf("%s: %s.* names no table in FROM", it.Pos, partsString(it.Qualifier))
		}
	}
	return out, nil
}

// planProjection is the select list of a query without aggregation; a
// ROW_NUMBER() OVER item makes a ranking below the projection.
func (p *planner) planProjection(sel *ast.Select, in node, prune bool) (node, error) {
	items, err := expandItems(sel.Items, in)
	if err != nil {
		return nil, err
	}
	if prune {
		items = p.prunedItems(sel, items)
	}
	var rk *rank
	for i, it := range items {
		call, ok := it.Expr.(*ast.Call)
		if !ok || call.Over == nil {
			if err := p.noWindowCalls(it.Expr); err != nil {
				return nil, err
			}
			continue
		}
		if rk != nil {
			return nil, fmt.Errorf("%s: only one ROW_NUMBER() OVER per query is supported", call.Pos)
		}
		r, err := p.planRank(in, call)
		if err != nil {
			return nil, err
		}
		rk = r
		ref := ast.Ident{Name: "\x00rownum", Pos: call.Pos}
		items[i].Expr = &ast.ColumnRef{Parts: []ast.Ident{ref}, Pos: call.Pos}
		if items[i].Alias == nil {
			a := ast.Ident{Name: outputName(it, i), Pos: call.Pos}
			items[i].Alias = &a
		}
	}
	if rk != nil {
		in = rk
	}
	return p.project(in, items)
}

// noWindowCalls refuses window functions other than a top-level
// ROW_NUMBER() OVER.
func (p *planner) noWindowCalls(e ast.Expr) error {
	var err error
	walk(e, func(x ast.Expr) bool {
		if c, ok := x.(*ast.Call); ok && c.Over != nil && err == nil {
			err = fmt.Errorf("%s: %s() OVER (...) is supported only as ROW_NUMBER() OVER (PARTITION BY ... ORDER BY ...) alone in a select item, filtered by the enclosing query (top-N, deduplication); OVER aggregations are not supported yet", c.Pos, strings.ToUpper(c.Name.Name))
		}
		return err == nil
	})
	return err
}

// project compiles select items over in into a calc.
func (p *planner) project(in node, items []ast.SelectItem) (node, error) {
	if c, err := p.projectFused(in, items); c != nil || err != nil {
		return c, err
	}
	sc := &scope{cols: in.cols()}
	c := &calc{in: in}
	identity := len(items) == len(sc.cols)
	for i, it := range items {
		name := outputName(it, i)
		if r, ok := it.Expr.(*ast.ColumnRef); ok {
			j, err := sc.find(r.Parts, r.Pos)
			if err != nil {
				return nil, err
			}
			src := sc.cols[j]
			c.out = append(c.out, column{name: name, typ: src.typ, win: src.win})
			c.pass = append(c.pass, j)
			c.exprs = append(c.exprs, expr.Compiled{})
			c.exprText = append(c.exprText, src.name)
			if j != i || name != src.name {
				identity = identity && j == i
			}
			continue
		}
		identity = false
		cc, err := p.comp.Compile(it.Expr, sc)
		if err != nil {
			return nil, err
		}
		c.out = append(c.out, column{name: name, typ: cc.Type})
		c.pass = append(c.pass, -1)
		c.exprs = append(c.exprs, cc)
		c.exprText = append(c.exprText, exprText(it.Expr))
	}
	if identity {
		// Renaming only: keep the input, with the new names.
		return &renamed{node: in, out: c.out}, nil
	}
	return c, nil
}

// renamed is a node seen with other column names (a projection that
// selects every column in order, or an alias with a column list).
type renamed struct {
	node
	out []column
}

func (r *renamed) cols() []column { return r.out }

// planRef plans a FROM item. conjs are WHERE conjuncts that may be
// pushed into it (join conditions, filters of one side of an inner
// join); it returns those it did not use.
func (p *planner) planRef(ref ast.TableRef, conjs []ast.Expr) (node, []ast.Expr, error) {
	switch r := ref.(type) {
	case *ast.TableName:
		n, err := p.planTableName(r)
		return n, conjs, err
	case *ast.SubqueryRef:
		if r.Lateral {
			return nil, nil, fmt.Errorf("%s: LATERAL subqueries are not supported", r.Pos)
		}
		p.derived = derivedSelect(r.Query, r.Alias != nil && len(r.Alias.Columns) > 0)
		n, err := p.planQuery(r.Query)
		if err != nil {
			return nil, nil, err
		}
		n, err = aliasNode(n, r.Alias, "")
		return n, conjs, err
	case *ast.TableFunction:
		n, err := p.planTableFunction(r)
		return n, conjs, err
	case *ast.Join:
		return p.planJoin(r, conjs)
	}
	return nil, nil, fmt.Errorf("%s: unsupported FROM item %T", ref.Start(), ref)
}

// aliasNode qualifies n's columns by alias (and renames them by its
// column list); def is the qualifier when there is no alias.
func aliasNode(n node, a *ast.Alias, def string) (node, error) {
	q := def
	if a != nil {
		q = a.Name.Name
	}
	cs := n.cols()
	out := make([]column, len(cs))
	copy(out, cs)
	if a != nil && len(a.Columns) > 0 {
		if len(a.Columns) != len(cs) {
			return nil, fmt.Errorf("%s: alias %s names %d columns; the table has %d", a.Name.Pos, a.Name.Name, len(a.Columns), len(cs))
		}
		for i := range out {
			out[i].name = a.Columns[i].Name
			out[i].path = nil
		}
	}
	for i := range out {
		out[i].qual = q
		if q != "" && len(out[i].path) == 0 {
			out[i].path = nil
		}
	}
	return &renamed{node: unwrapRenamed(n), out: out}, nil
}

func unwrapRenamed(n node) node {
	for {
		r, ok := n.(*renamed)
		if !ok {
			return n
		}
		n = r.node
	}
}

func (p *planner) planTableName(r *ast.TableName) (node, error) {
	if r.ForSystemTime != nil {
		return nil, fmt.Errorf("%s: FOR SYSTEM_TIME AS OF belongs to the right side of a JOIN (a lookup join: JOIN t FOR SYSTEM_TIME AS OF o.proc_time AS s ON ...)", r.Pos)
	}
	name := nameOf(r.Name)
	// WITH definitions first, innermost first.
	for i := len(p.ctes) - 1; i >= 0; i-- {
		if c, ok := p.ctes[i][lookupKey(name)]; ok {
			if p.depth > 32 {
				return nil, fmt.Errorf("%s: %s refers to itself (recursive WITH is not supported)", r.Pos, name)
			}
			p.depth++
			saved := p.ctes
			p.ctes = p.ctes[:i] // a CTE sees the ones before it
			p.derived = derivedSelect(c.Query, len(c.Columns) > 0 || r.Alias != nil && len(r.Alias.Columns) > 0)
			n, err := p.planQuery(c.Query)
			p.ctes = saved
			p.depth--
			if err != nil {
				return nil, fmt.Errorf("in WITH %s: %w", name, err)
			}
			var cols []ast.Ident
			cols = append(cols, c.Columns...)
			a := r.Alias
			if a == nil {
				a = &ast.Alias{Name: c.Name, Columns: cols}
			}
			return aliasNode(n, a, name)
		}
	}
	if t, ok := p.s.tables[lookupKey(name)]; ok {
		t = p.tableFor(t)
		n := &scan{table: t, out: p.scanColumns(t)}
		return aliasNode(n, r.Alias, t.name)
	}
	if v, ok := p.s.views[lookupKey(name)]; ok {
		if p.depth > 32 {
			return nil, fmt.Errorf("%s: view %s refers to itself", r.Pos, name)
		}
		p.depth++
		saved := p.ctes
		p.ctes = nil
		p.derived = derivedSelect(v.query, len(v.columns) > 0)
		n, err := p.planQuery(v.query)
		p.ctes = saved
		p.depth--
		if err != nil {
			return nil, fmt.Errorf("in view %s: %w", v.name, err)
		}
		if len(v.columns) > 0 {
			cs := n.cols()
			if len(v.columns) != len(cs) {
				return nil, fmt.Errorf("view %s names %d columns; its query has %d", v.name, len(v.columns), len(cs))
			}
			out := make([]column, len(cs))
			copy(out, cs)
			for i := range out {
				out[i].name, out[i].path = v.columns[i], nil
			}
			n = &renamed{node: unwrapRenamed(n), out: out}
		}
		return aliasNode(n, r.Alias, v.name)
	}
	return nil, fmt.Errorf("%s: table or view '%s' not found%s", r.Pos, name, p.s.suggestObject(name))
}

// planTableFunction plans the windowing TVFs.
func (p *planner) planTableFunction(r *ast.TableFunction) (node, error) {
	fn := strings.ToUpper(r.Name.Name)
	switch fn {
	case "TUMBLE", "HOP", "CUMULATE", "SESSION":
	default:
		return nil, fmt.Errorf("%s: unknown table function %s; the windowing table functions are TUMBLE, HOP, CUMULATE and SESSION", r.Pos, r.Name.Name)
	}
	args, err := tvfArgs(fn, r)
	if err != nil {
		return nil, err
	}
	in, err := p.planTableName(&ast.TableName{Name: args.table.Name, Pos: args.table.Pos})
	if err != nil {
		return nil, err
	}
	sc := &scope{cols: in.cols()}
	tc, err := sc.find([]ast.Ident{args.timecol}, args.timecol.Pos)
	if err != nil {
		return nil, fmt.Errorf("%s DESCRIPTOR: %w", fn, err)
	}
	ct := sc.cols[tc].typ
	if ct.Time == types.NoTimeAttr {
		return nil, fmt.Errorf("%s: the time column %s of %s is not a time attribute; declare WATERMARK FOR %s in its table, or use PROCTIME()", args.timecol.Pos, sc.cols[tc].name, fn, sc.cols[tc].name)
	}
	spec, err := p.windowSpec(fn, args.sizes, r.Pos)
	if err != nil {
		return nil, err
	}
	spec.ProcTime = ct.Time == types.ProcTime
	tvf := &windowTVF{in: in, spec: spec, timeCol: tc}
	for _, k := range args.partition {
		i, err := sc.find(k.Parts, k.Pos)
		if err != nil {
			return nil, err
		}
		tvf.partition = append(tvf.partition, i)
	}
	tvf.out = append(tvf.out, in.cols()...)
	// The input's time attribute becomes an ordinary timestamp after a
	// window TVF (window_time carries the time from then on).
	tvf.out[tc].typ = tvf.out[tc].typ.Plain()
	wt := types.TTimestamp
	wt.NotNull = true
	tvf.out = append(tvf.out,
		column{name: "window_start", typ: wt, tvf: tvf, win: winStart},
		column{name: "window_end", typ: wt, tvf: tvf, win: winEnd},
		column{name: "window_time", typ: windowTimeType(ct), tvf: tvf, win: winTime})
	var n node = tvf
	if r.Alias != nil {
		n, err = aliasNode(n, r.Alias, "")
		if err != nil {
			return nil, err
		}
	}
	return n, nil
}

func withTime(t types.Type, a types.TimeAttr) types.Type { t.Time = a; return t }

// windowTimeType is the type of window_time (and TUMBLE_ROWTIME ...) over
// the time attribute of type t: TIMESTAMP(3), or TIMESTAMP_LTZ(3) for a
// TIMESTAMP_LTZ attribute (PROCTIME() included), as in Flink; NOT NULL
// and a time attribute of t's kind.
func windowTimeType(t types.Type) types.Type {
	wt := types.TTimestamp
	if t.Kind == types.TimestampLTZ {
		wt.Kind = types.TimestampLTZ
	}
	wt.NotNull = true
	return withTime(wt, t.Time)
}

type tvfArguments struct {
	table     *ast.TableArg
	timecol   ast.Ident
	sizes     []ast.Expr
	partition []*ast.ColumnRef
}

// tvfArgs reads TUMBLE(TABLE t, DESCRIPTOR(c), size [, offset]),
// HOP(TABLE t, DESCRIPTOR(c), slide, size [, offset]),
// CUMULATE(TABLE t, DESCRIPTOR(c), step, size [, offset]),
// SESSION(TABLE t [PARTITION BY k], DESCRIPTOR(c), gap), positionally or
// by name (DATA =>, TIMECOL =>, SIZE =>, SLIDE =>, STEP =>, GAP =>,
// OFFSET =>).
func tvfArgs(fn string, r *ast.TableFunction) (tvfArguments, error) {
	var a tvfArguments
	named := map[string]ast.Expr{}
	var pos []ast.Expr
	for _, x := range r.Args {
		if na, ok := x.(*ast.NamedArg); ok {
			named[strings.ToUpper(na.Name.Name)] = na.Value
			continue
		}
		pos = append(pos, x)
	}
	order := map[string][]string{
		"TUMBLE":   {"DATA", "TIMECOL", "SIZE", "OFFSET"},
		"HOP":      {"DATA", "TIMECOL", "SLIDE", "SIZE", "OFFSET"},
		"CUMULATE": {"DATA", "TIMECOL", "STEP", "SIZE", "OFFSET"},
		"SESSION":  {"DATA", "TIMECOL", "GAP"},
	}[fn]
	for i, x := range pos {
		if i >= len(order) {
			return a, fmt.Errorf("%s: %s takes at most %d arguments (%s)", r.Pos, fn, len(order), strings.Join(order, ", "))
		}
		named[order[i]] = x
	}
	for k := range named {
		found := false
		for _, o := range order {
			found = found || o == k
		}
		if !found {
			return a, fmt.Errorf("%s: %s has no argument %s (its arguments: %s)", r.Pos, fn, k, strings.Join(order, ", "))
		}
	}
	ta, ok := named["DATA"].(*ast.TableArg)
	if !ok {
		return a, fmt.Errorf("%s: the first argument of %s must be TABLE name", r.Pos, fn)
	}
	a.table = ta
	d, ok := named["TIMECOL"].(*ast.Descriptor)
	if !ok || len(d.Columns) != 1 {
		return a, fmt.Errorf("%s: the second argument of %s must be DESCRIPTOR(time_column)", r.Pos, fn)
	}
	a.timecol = d.Columns[0]
	for _, k := range order[2:] {
		if x, ok := named[k]; ok {
			a.sizes = append(a.sizes, x)
		} else if k != "OFFSET" {
			return a, fmt.Errorf("%s: %s needs its %s argument (%s)", r.Pos, fn, k, strings.Join(order, ", "))
		}
	}
	return a, nil
}
