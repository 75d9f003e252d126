package sql

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/ast"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/sql/expr"
	"github.com/sluicehq/sluice/sql/types"
)

// planner turns queries into plan nodes: names resolved, types checked,
// aggregations, windows, joins and rankings recognised.
type planner struct {
	s    *Session
	comp *expr.Compiler
	// ctes are the WITH definitions in force, innermost last.
	ctes []map[string]*ast.CTE
	// depth guards against views that refer to themselves.
	depth int
	// pendingRanks are ROW_NUMBER rankings whose limit the enclosing
	// query has not given yet.
	pendingRanks map[*rank]bool
	// usage collects the columns of each table that names resolve to
	// (nil: not collecting); pruned are the cut-down tables the second
	// planning pass scans instead (see pushdown.go).
	usage  map[*table][]bool
	pruned map[*table]*table
	// itemUse (first pass) records which output columns of each
	// prunable select are read; itemNeed (later passes) is that record,
	// by which prunedItems leaves the rest out. derived is the select
	// planRef is about to plan as a FROM item.
	itemUse  map[*ast.Select]map[string]*bool
	itemNeed map[*ast.Select]map[string]bool
	derived  *ast.Select
}

func (s *Session) newPlanner() *planner {
	return &planner{s: s, comp: s.compiler(), pendingRanks: map[*rank]bool{}}
}

// finish checks what can only be checked once the whole query is
// planned.
func (p *planner) finish(pos ast.Pos) error {
	for r := range p.pendingRanks {
		return fmt.Errorf("%s: ROW_NUMBER() OVER (%s) needs a filter on its result in the enclosing query, e.g. WHERE rownum <= 10 (top-N), = 1 (deduplication) or BETWEEN 2 AND 5 (a rank range); an unfiltered ROW_NUMBER is not supported on streams", pos, r.text)
	}
	return nil
}

func (p *planner) planQuery(q ast.Query) (node, error) {
	switch q := q.(type) {
	case *ast.Select:
		return p.planSelect(q)
	case *ast.With:
		m := map[string]*ast.CTE{}
		for i := range q.CTEs {
			c := &q.CTEs[i]
			m[lookupKey(c.Name.Name)] = c
		}
		p.ctes = append(p.ctes, m)
		defer func() { p.ctes = p.ctes[:len(p.ctes)-1] }()
		return p.planQuery(q.Query)
	case *ast.SetOp:
		return p.planSetOp(q)
	case *ast.Values:
		return p.planValues(q)
	}
	return nil, fmt.Errorf("%s: unsupported query %T", q.Start(), q)
}

func (p *planner) planSetOp(q *ast.SetOp) (node, error) {
	if q.Op != "UNION" {
		return nil, fmt.Errorf("%s: %s is not supported on streams; UNION ALL and UNION are", q.Pos, q.Op)
	}
	l, err := p.planQuery(q.Left)
	if err != nil {
		return nil, err
	}
	r, err := p.planQuery(q.Right)
	if err != nil {
		return nil, err
	}
	lc, rc := l.cols(), r.cols()
	if len(lc) != len(rc) {
		return nil, fmt.Errorf("%s: the inputs of UNION have %d and %d columns; they must have the same number", q.Pos, len(lc), len(rc))
	}
	out := make([]column, len(lc))
	for i := range lc {
		t, err := expr.CommonType(lc[i].typ, rc[i].typ)
		if err != nil {
			return nil, fmt.Errorf("%s: UNION column %d (%s): %v", q.Pos, i+1, lc[i].name, err)
		}
		out[i] = column{name: lc[i].name, typ: t.Plain()}
		if lc[i].typ.Time == rc[i].typ.Time {
			out[i].typ.Time = lc[i].typ.Time
		}
	}
	if l, err = p.coerceTo(l, out); err != nil {
		return nil, err
	}
	if r, err = p.coerceTo(r, out); err != nil {
		return nil, err
	}
	// UNION ALL of unions flattens into one.
	var ins []node
	for _, n := range []node{l, r} {
		if u, ok := n.(*union); ok {
			ins = append(ins, u.ins...)
		} else {
			ins = append(ins, n)
		}
	}
	var n node = &union{ins: ins, out: out}
	if !q.All {
		n = p.distinct(n)
	}
	if len(q.OrderBy) > 0 || q.Limit != nil {
		return p.planOrderLimit(n, q.OrderBy, q.Limit, q.Pos)
	}
	return n, nil
}

// coerceTo casts n's columns to the types of out where they differ.
func (p *planner) coerceTo(n node, out []column) (node, error) {
	return p.coerceWith(n, out, expr.Coerce)
}

// coerceWith is coerceTo with the conversion to use (expr.Coerce, or
// the compiler's AssignAt for INSERT).
func (p *planner) coerceWith(n node, out []column, conv func(expr.Compiled, types.Type) (expr.Compiled, error)) (node, error) {
	in := n.cols()
	same := true
	for i := range in {
		if !types.Equal(in[i].typ, out[i].typ) {
			same = false
		}
	}
	if same {
		return n, nil
	}
	c := &calc{in: n, out: make([]column, len(out)), exprs: make([]expr.Compiled, len(out)), pass: make([]int, len(out)), exprText: make([]string, len(out))}
	for i := range in {
		c.out[i] = out[i]
		c.exprText[i] = in[i].name
		if types.Equal(in[i].typ, out[i].typ) {
			c.pass[i] = i
			continue
		}
		c.pass[i] = -1
		ref := expr.Compiled{Type: in[i].typ, Eval: fieldEval(i)}
		cc, err := conv(ref, out[i].typ)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", out[i].name, err)
		}
		c.exprs[i] = cc
		c.exprText[i] = fmt.Sprintf("CAST(%s AS %s)", in[i].name, out[i].typ.Plain())
	}
	return c, nil
}

func fieldEval(i int) func([]row.Value) row.Value {
	return func(v []row.Value) row.Value { return v[i] }
}

func (p *planner) planValues(q *ast.Values) (node, error) {
	if len(q.Rows) == 0 {
		return nil, fmt.Errorf("%s: VALUES needs at least one row", q.Pos)
	}
	n := len(q.Rows[0])
	out := make([]column, n)
	compiled := make([][]expr.Compiled, len(q.Rows))
	for r, rw := range q.Rows {
		if len(rw) != n {
			return nil, fmt.Errorf("%s: VALUES row %d has %d values; the first has %d", q.Pos, r+1, len(rw), n)
		}
		compiled[r] = make([]expr.Compiled, n)
		for i, e := range rw {
			c, err := p.comp.Compile(e, &scope{})
			if err != nil {
				return nil, err
			}
			if !c.Const {
				return nil, fmt.Errorf("%s: VALUES takes constant expressions", e.Start())
			}
			compiled[r][i] = c
			if r == 0 {
				out[i] = column{name: "EXPR$" + strconv.Itoa(i), typ: c.Type}
			} else if t, err := expr.CommonType(out[i].typ, c.Type); err == nil {
				out[i].typ = t
			} else {
				return nil, fmt.Errorf("%s: VALUES column %d: %v", e.Start(), i+1, err)
			}
		}
	}
	v := &values{out: out}
	for _, rw := range compiled {
		vals := make([]row.Value, n)
		for i, c := range rw {
			cc, err := expr.Coerce(c, out[i].typ)
			if err != nil {
				return nil, err
			}
			vals[i] = cc.Eval(nil)
		}
		v.rows = append(v.rows, vals)
	}
	return v, nil
}

// splitAnd returns the conjuncts of e.
func splitAnd(e ast.Expr) []ast.Expr {
	if e == nil {
		return nil
	}
	if b, ok := e.(*ast.Binary); ok && strings.EqualFold(b.Op, "AND") {
		return append(splitAnd(b.L), splitAnd(b.R)...)
	}
	return []ast.Expr{e}
}

func andAll(es []ast.Expr) ast.Expr {
	if len(es) == 0 {
		return nil
	}
	e := es[0]
	for _, x := range es[1:] {
		e = &ast.Binary{Op: "AND", L: e, R: x, Pos: e.Start()}
	}
	return e
}

// resolves reports whether every column reference in e resolves in sc.
func resolves(e ast.Expr, sc *scope) bool {
	ok := true
	walk(e, func(x ast.Expr) bool {
		if r, isRef := x.(*ast.ColumnRef); isRef {
			if _, err := sc.find(r.Parts, r.Pos); err != nil {
				ok = false
			}
		}
		switch x.(type) {
		case *ast.Subquery, *ast.Exists:
			ok = false
		}
		return ok
	})
	return ok
}

// filter puts a filter over n.
func (p *planner) filter(n node, conds []ast.Expr) (node, error) {
	if len(conds) == 0 {
		return n, nil
	}
	e := andAll(conds)
	if f, err := p.filterFused(n, e); f != nil || err != nil {
		return f, err
	}
	pred, err := p.comp.Predicate(e, &scope{cols: n.cols()})
	if err != nil {
		return nil, err
	}
	text := exprText(e)
	// Merge into a filter-only calc below when there is one.
	if c, ok := n.(*calc); ok && c.isIdentity() {
		if c.filter != nil {
			prev := c.filter
			c2 := *c
			c2.filter = func(v []row.Value) bool { return prev(v) && pred(v) }
			c2.filterText = c.filterText + " AND " + text
			return &c2, nil
		}
	}
	cs := n.cols()
	c := &calc{in: n, out: cs, pass: make([]int, len(cs)), exprs: make([]expr.Compiled, len(cs)), exprText: make([]string, len(cs)), filter: pred, filterText: text}
	for i := range cs {
		c.pass[i] = i
		c.exprText[i] = cs[i].name
	}
	return c, nil
}

// isIdentity reports a calc that passes every input column through in
// order (a filter only).
func (c *calc) isIdentity() bool {
	if len(c.pass) != len(c.in.cols()) {
		return false
	}
	for i, p := range c.pass {
		if p != i {
			return false
		}
	}
	return true
}

// distinct is SELECT DISTINCT: a GROUP BY every column.
func (p *planner) distinct(n node) node {
	cs := n.cols()
	key := make([]int, len(cs))
	out := make([]column, len(cs))
	for i := range cs {
		key[i] = i
		out[i] = column{name: cs[i].name, typ: cs[i].typ.Plain()}
	}
	return &groupAgg{in: n, out: out, key: key}
}

// exprText renders an expression for EXPLAIN.
func exprText(e ast.Expr) string { return formatExpr(e) }

// outputName is the name of a select item's column: its alias, the last
// part of a column reference, or EXPR$i.
func outputName(it ast.SelectItem, i int) string {
	if it.Alias != nil {
		return it.Alias.Name
	}
	if r, ok := it.Expr.(*ast.ColumnRef); ok {
		return r.Parts[len(r.Parts)-1].Name
	}
	return "EXPR$" + strconv.Itoa(i)
}

// asOrderKeys resolves ORDER BY items to columns of n.
func (p *planner) asOrderKeys(n node, items []ast.OrderItem) ([]exec.SortKey, error) {
	sc := &scope{cols: n.cols()}
	var keys []exec.SortKey
	for _, it := range items {
		var col int
		switch e := it.Expr.(type) {
		case *ast.ColumnRef:
			i, err := sc.find(e.Parts, e.Pos)
			if err != nil {
				return nil, err
			}
			col = i
		case *ast.NumberLit:
			k, err := strconv.Atoi(e.Text)
			if err != nil || k < 1 || k > len(sc.cols) {
				return nil, fmt.Errorf("%s: ORDER BY %s: there is no column %s", e.Pos, e.Text, e.Text)
			}
			col = k - 1
		default:
			return nil, fmt.Errorf("%s: ORDER BY takes column names; compute %s in the select list and order by its alias", it.Expr.Start(), exprText(it.Expr))
		}
		// Flink's default (its planner's NullCollation.LOW): NULL is the
		// smallest value, so NULLS FIRST ascending, NULLS LAST descending.
		nf := !it.Desc
		if it.NullsFirst != nil {
			nf = *it.NullsFirst
		}
		keys = append(keys, exec.SortKey{Col: col, Desc: it.Desc, NullsFirst: nf})
	}
	return keys, nil
}

// planOrderLimit handles ORDER BY and LIMIT of a streaming query: with a
// LIMIT it is a top-N over the whole result (updating); without, only an
// ORDER BY on the rowtime ascending is allowed, as in Flink, and it is
// refused here because rows are printed as they come.
func (p *planner) planOrderLimit(n node, order []ast.OrderItem, limit ast.Expr, pos ast.Pos) (node, error) {
	if limit == nil {
		return nil, fmt.Errorf("%s: ORDER BY without LIMIT is not supported on streams (a stream never ends, so it cannot be sorted); add LIMIT n for a top-n, or order the result where you read it", pos)
	}
	lc, err := p.comp.Compile(limit, &scope{})
	if err != nil {
		return nil, err
	}
	lv := lc.Eval(nil)
	if !lc.Const || lv.Kind() != row.KindInt || lv.AsInt() < 0 {
		return nil, fmt.Errorf("%s: LIMIT takes a non-negative integer constant", limit.Start())
	}
	keys, err := p.asOrderKeys(n, order)
	if err != nil {
		return nil, err
	}
	if lv.AsInt() == 0 {
		// No rows: the input is not read at all (as Flink prunes it).
		out := make([]column, len(n.cols()))
		for i, c := range n.cols() {
			out[i] = column{name: c.name, qual: c.qual, path: c.path, typ: c.typ.Plain(), hidden: c.hidden}
		}
		return &values{out: out}, nil
	}
	return &rank{in: n, out: n.cols(), order: keys, limit: lv.AsInt(), text: "partitionBy=[], orderBy=[" + orderText(n, keys) + "]"}, nil
}

func orderText(n node, keys []exec.SortKey) string {
	var parts []string
	for _, k := range keys {
		s := n.cols()[k.Col].name
		if k.Desc {
			s += " DESC"
		} else {
			s += " ASC"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}
