package oracle

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/ast"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/sql/expr"
	"github.com/sluicehq/sluice/sql/parser"
	"github.com/sluicehq/sluice/sql/types"
)

// Column is a column of a relation: its path (a flattened ROW field is
// ["r", "a"], other columns [name]), the table alias qualifying it, and
// its type.
type Column struct {
	Qual string
	Path []string
	Type types.Type
}

// Name returns the column's name (the last part of its path).
func (c Column) Name() string { return c.Path[len(c.Path)-1] }

// Result is an evaluated query: its columns and rows.
type Result struct {
	Columns []Column
	Rows    [][]row.Value
}

// Aggregate is a user-defined aggregate function known to the oracle.
type Aggregate struct {
	Fn     exec.AggregateFunction
	Result func(args []types.Type) (types.Type, error)
}

// Catalog holds the oracle's tables, views and functions.
type Catalog struct {
	tables map[string]*rel
	views  map[string]ast.Query
	// Funcs are the scalar functions (built-ins and UDFs).
	Funcs *expr.Registry
	// Aggregates are user-defined aggregates by upper-case name.
	Aggregates map[string]Aggregate
}

// NewCatalog returns an empty catalog with the given scalar functions
// (nil: the built-ins).
func NewCatalog(funcs *expr.Registry) *Catalog {
	if funcs == nil {
		funcs = expr.NewRegistry()
	}
	return &Catalog{tables: map[string]*rel{}, views: map[string]ast.Query{}, Funcs: funcs, Aggregates: map[string]Aggregate{}}
}

func (c *Catalog) compiler() *expr.Compiler { return &expr.Compiler{Funcs: c.Funcs} }

const noWatermark = math.MinInt64

// rel is a relation: columns, rows, and for each row the watermark in
// effect when it arrived (noWatermark when nothing is late).
type rel struct {
	cols []Column
	rows [][]row.Value
	wm   []int64
	// session is set by a SESSION table function: its window columns
	// are filled in by the aggregation that groups it.
	session *sessionSpec
}

type sessionSpec struct {
	tcol int
	gap  int64
	// wstart is the index of window_start (window_end and window_time
	// follow).
	wstart int
}

func (r *rel) add(vals []row.Value, wm int64) {
	r.rows = append(r.rows, vals)
	r.wm = append(r.wm, wm)
}

// Resolve implements expr.Scope.
func (r *rel) Resolve(ref *ast.ColumnRef) (int, types.Type, error) {
	i, err := r.find(ref.Parts)
	if err != nil {
		return 0, types.Type{}, fmt.Errorf("%s: %w", ref.Pos, err)
	}
	return i, r.cols[i].Type, nil
}

func match(path []string, parts []ast.Ident) bool {
	if len(path) != len(parts) {
		return false
	}
	for i := range path {
		if !strings.EqualFold(path[i], parts[i].Name) {
			return false
		}
	}
	return true
}

func (r *rel) find(parts []ast.Ident) (int, error) {
	var hits []int
	for i, c := range r.cols {
		ok := match(c.Path, parts)
		if !ok && len(parts) > 1 && c.Qual != "" && strings.EqualFold(c.Qual, parts[0].Name) {
			ok = match(c.Path, parts[1:])
		}
		if ok {
			hits = append(hits, i)
		}
	}
	var names []string
	for _, p := range parts {
		names = append(names, p.Name)
	}
	switch len(hits) {
	case 1:
		return hits[0], nil
	case 0:
		return 0, fmt.Errorf("oracle: no column %s", strings.Join(names, "."))
	}
	return 0, fmt.Errorf("oracle: column %s is ambiguous", strings.Join(names, "."))
}

// ------------------------------------------------------------- tables

// AddTable declares a table from its CREATE TABLE and gives it its rows,
// JSON objects in arrival order (ROW columns as nested objects).
func (c *Catalog) AddTable(ct *ast.CreateTable, jsonRows []string) error {
	name := ct.Name[len(ct.Name)-1].Name
	r := &rel{}
	var physical int
	for _, el := range ct.Elements {
		if el.Column != nil {
			if err := flatten(&r.cols, nil, el.Column); err != nil {
				return fmt.Errorf("table %s: %w", name, err)
			}
		}
	}
	physical = len(r.cols)
	for _, line := range jsonRows {
		var obj map[string]any
		d := json.NewDecoder(strings.NewReader(line))
		d.UseNumber()
		if err := d.Decode(&obj); err != nil {
			return fmt.Errorf("table %s: row %s: %w", name, line, err)
		}
		vals := make([]row.Value, physical)
		for i, col := range r.cols {
			v, err := decode(lookup(obj, col.Path), col.Type)
			if err != nil {
				return fmt.Errorf("table %s: row %s, column %s: %w", name, line, strings.Join(col.Path, "."), err)
			}
			vals[i] = v
		}
		r.add(vals, noWatermark)
	}
	// Computed columns, in the order written, each seeing the columns
	// before it.
	comp := c.compiler()
	for _, el := range ct.Elements {
		if el.Computed == nil {
			continue
		}
		x, err := comp.Compile(el.Computed.Expr, r)
		if err != nil {
			return fmt.Errorf("table %s, computed column %s: %w", name, el.Computed.Name.Name, err)
		}
		for i, vals := range r.rows {
			r.rows[i] = append(vals, x.Eval(vals))
		}
		r.cols = append(r.cols, Column{Path: []string{el.Computed.Name.Name}, Type: x.Type})
	}
	if wm := ct.Watermark; wm != nil {
		x, err := comp.Compile(wm.Expr, r)
		if err != nil {
			return fmt.Errorf("table %s, WATERMARK: %w", name, err)
		}
		cur := int64(noWatermark)
		for i, vals := range r.rows {
			r.wm[i] = cur
			if v := x.Eval(vals); !v.IsNull() && v.AsInt()-1 > cur {
				cur = v.AsInt() - 1
			}
		}
	}
	c.tables[strings.ToLower(name)] = r
	return nil
}

// AddView declares a view.
func (c *Catalog) AddView(cv *ast.CreateView) {
	q := cv.Query
	if len(cv.Columns) > 0 {
		q = &ast.With{CTEs: []ast.CTE{{Name: ast.Ident{Name: "$view"}, Columns: cv.Columns, Query: q}},
			Query: &ast.Select{Items: []ast.SelectItem{{Star: true}}, From: &ast.TableName{Name: []ast.Ident{{Name: "$view"}}}}}
	}
	c.views[strings.ToLower(cv.Name[len(cv.Name)-1].Name)] = q
}

func flatten(dst *[]Column, prefix []string, cd *ast.ColumnDef) error {
	path := append(append([]string(nil), prefix...), cd.Name.Name)
	if cd.Type.Name == "ROW" {
		for i := range cd.Type.Fields {
			if err := flatten(dst, path, &cd.Type.Fields[i]); err != nil {
				return err
			}
		}
		return nil
	}
	t, err := types.FromAST(cd.Type)
	if err != nil {
		return err
	}
	*dst = append(*dst, Column{Path: path, Type: t})
	return nil
}

func lookup(obj map[string]any, path []string) any {
	var cur any = obj
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

func decode(x any, t types.Type) (row.Value, error) {
	if x == nil {
		return row.Null(), nil
	}
	switch t.Kind {
	case types.Boolean:
		b, ok := x.(bool)
		if !ok {
			return row.Value{}, fmt.Errorf("%v is not a boolean", x)
		}
		return row.Bool(b), nil
	case types.TinyInt, types.SmallInt, types.Int, types.BigInt:
		n, ok := x.(json.Number)
		if !ok {
			return row.Value{}, fmt.Errorf("%v is not a number", x)
		}
		i, err := n.Int64()
		return row.Int(i), err
	case types.Float, types.Double:
		n, ok := x.(json.Number)
		if !ok {
			return row.Value{}, fmt.Errorf("%v is not a number", x)
		}
		f, err := n.Float64()
		return row.Float(f), err
	case types.Char, types.Varchar:
		s, ok := x.(string)
		if !ok {
			return row.Value{}, fmt.Errorf("%v is not a string", x)
		}
		return row.String(s), nil
	case types.Timestamp, types.TimestampLTZ:
		s, ok := x.(string)
		if !ok {
			return row.Value{}, fmt.Errorf("%v is not a timestamp string", x)
		}
		for _, layout := range []string{"2006-01-02 15:04:05.000", "2006-01-02 15:04:05", time.RFC3339Nano} {
			if tm, err := time.Parse(layout, s); err == nil {
				return row.Timestamp(tm.UnixMilli()), nil
			}
		}
		return row.Value{}, fmt.Errorf("%q is not a timestamp (yyyy-MM-dd HH:mm:ss[.SSS])", s)
	}
	return row.Value{}, fmt.Errorf("the oracle does not read %s input columns", t)
}

// ------------------------------------------------------------- queries

type env struct {
	cat  *Catalog
	ctes map[string]*rel
}

// Eval evaluates a query over the catalog's tables.
func (c *Catalog) Eval(q ast.Query) (*Result, error) {
	r, err := (&env{cat: c, ctes: map[string]*rel{}}).query(q)
	if err != nil {
		return nil, err
	}
	return &Result{Columns: r.cols, Rows: r.rows}, nil
}

func (e *env) query(q ast.Query) (*rel, error) {
	switch q := q.(type) {
	case *ast.With:
		ne := &env{cat: e.cat, ctes: map[string]*rel{}}
		for k, v := range e.ctes {
			ne.ctes[k] = v
		}
		for _, cte := range q.CTEs {
			r, err := ne.query(cte.Query)
			if err != nil {
				return nil, err
			}
			r, err = rename(r, cte.Columns)
			if err != nil {
				return nil, err
			}
			ne.ctes[strings.ToLower(cte.Name.Name)] = r
		}
		return ne.query(q.Query)
	case *ast.Values:
		out := &rel{}
		comp := e.cat.compiler()
		for _, rw := range q.Rows {
			vals := make([]row.Value, len(rw))
			for i, x := range rw {
				cx, err := comp.Compile(x, out)
				if err != nil {
					return nil, err
				}
				vals[i] = cx.Eval(nil)
				if len(out.rows) == 0 {
					out.cols = append(out.cols, Column{Path: []string{fmt.Sprintf("EXPR$%d", i)}, Type: cx.Type})
				}
			}
			out.add(vals, noWatermark)
		}
		return out, nil
	case *ast.SetOp:
		if q.Op != "UNION" {
			return nil, fmt.Errorf("oracle: %s is not supported", q.Op)
		}
		l, err := e.query(q.Left)
		if err != nil {
			return nil, err
		}
		r, err := e.query(q.Right)
		if err != nil {
			return nil, err
		}
		out, err := unionOf(l, r)
		if err != nil {
			return nil, err
		}
		if !q.All {
			out = distinct(out)
		}
		return e.orderLimit(out, nil, q.OrderBy, q.Limit)
	case *ast.Select:
		return e.selectBlock(q)
	}
	return nil, fmt.Errorf("oracle: unsupported query %T", q)
}

// unionOf is l UNION ALL r, each column converted to the common type of
// its two sides, as the planner does (an INT 1 and a DOUBLE 1.0 are then
// one value).
func unionOf(l, r *rel) (*rel, error) {
	if len(l.cols) != len(r.cols) {
		return nil, fmt.Errorf("oracle: the inputs of UNION have %d and %d columns", len(l.cols), len(r.cols))
	}
	out := &rel{cols: unqualified(l.cols)}
	var convs [2][]expr.EvalFunc
	for i := range out.cols {
		t, err := expr.CommonType(l.cols[i].Type, r.cols[i].Type)
		if err != nil {
			return nil, fmt.Errorf("oracle: UNION column %d: %w", i+1, err)
		}
		out.cols[i].Type = t
		for s, in := range []*rel{l, r} {
			col := i
			c, err := expr.Coerce(expr.Compiled{Type: in.cols[i].Type, Eval: func(v []row.Value) row.Value { return v[col] }}, t)
			if err != nil {
				return nil, fmt.Errorf("oracle: UNION column %d: %w", i+1, err)
			}
			convs[s] = append(convs[s], c.Eval)
		}
	}
	for s, in := range []*rel{l, r} {
		for j, vals := range in.rows {
			cv := make([]row.Value, len(vals))
			for i, f := range convs[s] {
				cv[i] = f(vals)
			}
			out.add(cv, in.wm[j])
		}
	}
	return out, nil
}

func unqualified(cols []Column) []Column {
	out := make([]Column, len(cols))
	for i, c := range cols {
		out[i] = Column{Path: []string{c.Name()}, Type: c.Type}
	}
	return out
}

func rename(r *rel, names []ast.Ident) (*rel, error) {
	if len(names) == 0 {
		return r, nil
	}
	if len(names) != len(r.cols) {
		return nil, fmt.Errorf("oracle: %d column names for %d columns", len(names), len(r.cols))
	}
	out := *r
	out.cols = make([]Column, len(r.cols))
	for i, c := range r.cols {
		out.cols[i] = Column{Path: []string{names[i].Name}, Type: c.Type}
	}
	return &out, nil
}

func requalify(r *rel, qual string) *rel {
	out := *r
	out.cols = make([]Column, len(r.cols))
	for i, c := range r.cols {
		c.Qual = qual
		out.cols[i] = c
	}
	return &out
}

func distinct(r *rel) *rel {
	out := &rel{cols: r.cols}
	seen := map[string]bool{}
	for i, vals := range r.rows {
		k := key(vals)
		if !seen[k] {
			seen[k] = true
			out.add(vals, r.wm[i])
		}
	}
	return out
}

func key(vals []row.Value) string {
	idx := make([]int, len(vals))
	for i := range idx {
		idx[i] = i
	}
	return string(row.Row{Vals: vals}.AppendKey(nil, idx))
}

// from evaluates a FROM item.
func (e *env) from(t ast.TableRef) (*rel, error) {
	switch t := t.(type) {
	case *ast.TableName:
		name := t.Name[len(t.Name)-1].Name
		var r *rel
		if c, ok := e.ctes[strings.ToLower(name)]; ok && len(t.Name) == 1 {
			r = c
		} else if v, ok := e.cat.views[strings.ToLower(name)]; ok {
			var err error
			if r, err = (&env{cat: e.cat, ctes: map[string]*rel{}}).query(v); err != nil {
				return nil, err
			}
		} else if tb, ok := e.cat.tables[strings.ToLower(name)]; ok {
			r = tb
		} else {
			return nil, fmt.Errorf("oracle: no table %s", name)
		}
		qual := name
		if t.Alias != nil {
			qual = t.Alias.Name.Name
			var err error
			if r, err = rename(r, t.Alias.Columns); err != nil {
				return nil, err
			}
		}
		return requalify(r, qual), nil
	case *ast.SubqueryRef:
		r, err := e.query(t.Query)
		if err != nil {
			return nil, err
		}
		qual := ""
		if t.Alias != nil {
			qual = t.Alias.Name.Name
			if r, err = rename(r, t.Alias.Columns); err != nil {
				return nil, err
			}
		}
		return requalify(r, qual), nil
	case *ast.TableFunction:
		r, err := e.windowTVF(t)
		if err != nil {
			return nil, err
		}
		if t.Alias != nil {
			r = requalify(r, t.Alias.Name.Name)
		}
		return r, nil
	case *ast.Join:
		return e.join(t)
	}
	return nil, fmt.Errorf("oracle: unsupported FROM item %T", t)
}

func (e *env) join(j *ast.Join) (*rel, error) {
	l, err := e.from(j.Left)
	if err != nil {
		return nil, err
	}
	r, err := e.from(j.Right)
	if err != nil {
		return nil, err
	}
	if len(j.Using) > 0 {
		return nil, fmt.Errorf("oracle: JOIN ... USING is not supported")
	}
	out := &rel{cols: append(append([]Column(nil), l.cols...), r.cols...)}
	on := func([]row.Value) bool { return true }
	if j.On != nil {
		if on, err = e.cat.compiler().Predicate(j.On, out); err != nil {
			return nil, err
		}
	}
	nulls := func(n int) []row.Value { return make([]row.Value, n) }
	rightHit := make([]bool, len(r.rows))
	for _, lv := range l.rows {
		hit := false
		for k, rv := range r.rows {
			vals := append(append([]row.Value(nil), lv...), rv...)
			if on(vals) {
				hit = true
				rightHit[k] = true
				out.add(vals, noWatermark)
			}
		}
		if !hit && (j.Kind == ast.JoinLeft || j.Kind == ast.JoinFull) {
			out.add(append(append([]row.Value(nil), lv...), nulls(len(r.cols))...), noWatermark)
		}
	}
	if j.Kind == ast.JoinRight || j.Kind == ast.JoinFull {
		for k, rv := range r.rows {
			if !rightHit[k] {
				out.add(append(nulls(len(l.cols)), rv...), noWatermark)
			}
		}
	}
	return out, nil
}

// windowTVF evaluates TUMBLE/HOP/CUMULATE/SESSION(TABLE t, DESCRIPTOR(c), ...).
func (e *env) windowTVF(t *ast.TableFunction) (*rel, error) {
	fn := strings.ToUpper(t.Name.Name)
	order := map[string][]string{
		"TUMBLE":   {"DATA", "TIMECOL", "SIZE", "OFFSET"},
		"HOP":      {"DATA", "TIMECOL", "SLIDE", "SIZE", "OFFSET"},
		"CUMULATE": {"DATA", "TIMECOL", "STEP", "SIZE", "OFFSET"},
		"SESSION":  {"DATA", "TIMECOL", "GAP"},
	}[fn]
	if order == nil {
		return nil, fmt.Errorf("oracle: unknown table function %s", fn)
	}
	args := map[string]ast.Expr{}
	n := 0
	for _, a := range t.Args {
		if na, ok := a.(*ast.NamedArg); ok {
			args[strings.ToUpper(na.Name.Name)] = na.Value
			continue
		}
		args[order[n]] = a
		n++
	}
	ta, ok := args["DATA"].(*ast.TableArg)
	if !ok {
		return nil, fmt.Errorf("oracle: %s needs TABLE name", fn)
	}
	in, err := e.from(&ast.TableName{Name: ta.Name})
	if err != nil {
		return nil, err
	}
	d, ok := args["TIMECOL"].(*ast.Descriptor)
	if !ok {
		return nil, fmt.Errorf("oracle: %s needs DESCRIPTOR(col)", fn)
	}
	tcol, err := in.find([]ast.Ident{d.Columns[0]})
	if err != nil {
		return nil, err
	}
	ms := func(k string) (int64, error) {
		x, ok := args[k]
		if !ok {
			return 0, nil
		}
		c, err := e.cat.compiler().Compile(x, in)
		if err != nil {
			return 0, err
		}
		return c.Eval(nil).AsInt(), nil
	}
	var size, slide, offset int64
	if offset, err = ms("OFFSET"); err != nil {
		return nil, err
	}
	switch fn {
	case "TUMBLE":
		size, err = ms("SIZE")
		slide = size
	case "HOP":
		if size, err = ms("SIZE"); err == nil {
			slide, err = ms("SLIDE")
		}
	case "CUMULATE":
		if size, err = ms("SIZE"); err == nil {
			slide, err = ms("STEP") // the step
		}
	case "SESSION":
		size, err = ms("GAP")
	}
	if err != nil {
		return nil, err
	}
	ts := types.Type{Kind: types.Timestamp, Precision: 3}
	out := &rel{cols: append(append([]Column(nil), unqualifiedKeepPath(in.cols)...),
		Column{Path: []string{"window_start"}, Type: ts}, Column{Path: []string{"window_end"}, Type: ts}, Column{Path: []string{"window_time"}, Type: windowTimeType(in.cols[tcol].Type)})}
	if fn == "SESSION" {
		out.session = &sessionSpec{tcol: tcol, gap: size, wstart: len(in.cols)}
		for i, vals := range in.rows {
			out.add(append(append([]row.Value(nil), vals...), row.Null(), row.Null(), row.Null()), in.wm[i])
		}
		return out, nil
	}
	for i, vals := range in.rows {
		if vals[tcol].IsNull() {
			continue
		}
		for _, w := range assign(fn, vals[tcol].AsInt(), size, slide, offset) {
			if w[1]-1 <= in.wm[i] {
				continue // late for this window
			}
			out.add(append(append([]row.Value(nil), vals...), row.Timestamp(w[0]), row.Timestamp(w[1]), row.Timestamp(w[1]-1)), in.wm[i])
		}
	}
	return out, nil
}

func unqualifiedKeepPath(cols []Column) []Column {
	out := make([]Column, len(cols))
	for i, c := range cols {
		c.Qual = ""
		out[i] = c
	}
	return out
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// assign enumerates the windows [start, end) holding ts: every window of
// the kind whose start is a multiple of the slide (plus the offset).
func assign(fn string, ts, size, slide, offset int64) [][2]int64 {
	var out [][2]int64
	switch fn {
	case "TUMBLE", "HOP":
		first := floorDiv(ts-offset-size, slide)*slide + offset
		for s := first; s <= ts; s += slide {
			if ts >= s && ts < s+size {
				out = append(out, [2]int64{s, s + size})
			}
		}
	case "CUMULATE":
		start := floorDiv(ts-offset, size)*size + offset
		for end := start + slide; end <= start+size; end += slide {
			if ts < end {
				out = append(out, [2]int64{start, end})
			}
		}
	}
	return out
}

// ------------------------------------------------------------- SELECT

var builtinAggs = map[string]bool{"COUNT": true, "SUM": true, "AVG": true, "MIN": true, "MAX": true}

func (e *env) isAgg(c *ast.Call) bool {
	if c.Over != nil {
		return false
	}
	n := strings.ToUpper(c.Name.Name)
	_, udaf := e.cat.Aggregates[n]
	return builtinAggs[n] || udaf
}

func (e *env) hasAgg(x ast.Expr) bool {
	found := false
	walk(x, func(n ast.Expr) {
		if c, ok := n.(*ast.Call); ok && e.isAgg(c) {
			found = true
		}
	})
	return found
}

func (e *env) selectBlock(s *ast.Select) (*rel, error) {
	var in *rel
	if s.From == nil {
		in = &rel{}
		in.add(nil, noWatermark)
	} else {
		var err error
		if in, err = e.from(s.From); err != nil {
			return nil, err
		}
	}
	comp := e.cat.compiler()
	if s.Where != nil {
		pred, err := comp.Predicate(s.Where, in)
		if err != nil {
			return nil, err
		}
		f := &rel{cols: in.cols, session: in.session}
		for i, vals := range in.rows {
			if pred(vals) {
				f.add(vals, in.wm[i])
			}
		}
		in = f
	}
	agg := len(s.GroupBy) > 0 || s.Having != nil && e.hasAgg(s.Having)
	for _, it := range s.Items {
		agg = agg || it.Expr != nil && e.hasAgg(it.Expr)
	}
	items, having := s.Items, s.Having
	if agg {
		var err error
		if in, items, having, err = e.aggregate(in, s); err != nil {
			return nil, err
		}
	}
	if having != nil {
		pred, err := comp.Predicate(having, in)
		if err != nil {
			return nil, err
		}
		f := &rel{cols: in.cols}
		for i, vals := range in.rows {
			if pred(vals) {
				f.add(vals, in.wm[i])
			}
		}
		in = f
	}
	out, err := e.project(in, items)
	if err != nil {
		return nil, err
	}
	if s.Distinct {
		out = distinct(out)
	}
	return e.orderLimit(out, in, s.OrderBy, s.Limit)
}

// project evaluates a select list (with ROW_NUMBER() OVER (...)).
func (e *env) project(in *rel, items []ast.SelectItem) (*rel, error) {
	comp := e.cat.compiler()
	out := &rel{}
	var evals []func(i int, vals []row.Value) row.Value
	for n, it := range items {
		if it.Star {
			for ci, c := range in.cols {
				if len(it.Qualifier) > 0 && !strings.EqualFold(c.Qual, it.Qualifier[len(it.Qualifier)-1].Name) {
					continue
				}
				if strings.HasPrefix(c.Name(), "$") {
					continue
				}
				ci := ci
				out.cols = append(out.cols, Column{Path: []string{c.Name()}, Type: c.Type})
				evals = append(evals, func(_ int, vals []row.Value) row.Value { return vals[ci] })
			}
			continue
		}
		name := fmt.Sprintf("EXPR$%d", n)
		if it.Alias != nil {
			name = it.Alias.Name
		} else if cr, ok := it.Expr.(*ast.ColumnRef); ok {
			name = cr.Parts[len(cr.Parts)-1].Name
		}
		if c, ok := it.Expr.(*ast.Call); ok && c.Over != nil {
			rn, err := e.rowNumber(in, c)
			if err != nil {
				return nil, err
			}
			out.cols = append(out.cols, Column{Path: []string{name}, Type: types.TBigInt})
			evals = append(evals, func(i int, _ []row.Value) row.Value { return row.Int(rn[i]) })
			continue
		}
		x, err := comp.Compile(it.Expr, in)
		if err != nil {
			return nil, err
		}
		out.cols = append(out.cols, Column{Path: []string{name}, Type: x.Type})
		f := x.Eval
		evals = append(evals, func(_ int, vals []row.Value) row.Value { return f(vals) })
	}
	for i, vals := range in.rows {
		o := make([]row.Value, len(evals))
		for k, f := range evals {
			o[k] = f(i, vals)
		}
		out.add(o, in.wm[i])
	}
	return out, nil
}

// rowNumber numbers each partition's rows in the OVER clause's order;
// rows equal in that order keep their arrival order, reversed for a
// descending first key (the engine keeps the last arrival first).
func (e *env) rowNumber(in *rel, c *ast.Call) ([]int64, error) {
	if !strings.EqualFold(c.Name.Name, "ROW_NUMBER") {
		return nil, fmt.Errorf("oracle: %s() OVER is not supported", c.Name.Name)
	}
	comp := e.cat.compiler()
	var parts []expr.EvalFunc
	for _, p := range c.Over.PartitionBy {
		x, err := comp.Compile(p, in)
		if err != nil {
			return nil, err
		}
		parts = append(parts, x.Eval)
	}
	var keys []expr.EvalFunc
	for _, o := range c.Over.OrderBy {
		x, err := comp.Compile(o.Expr, in)
		if err != nil {
			return nil, err
		}
		keys = append(keys, x.Eval)
	}
	groups := map[string][]int{}
	var order []string
	for i, vals := range in.rows {
		pv := make([]row.Value, len(parts))
		for k, f := range parts {
			pv[k] = f(vals)
		}
		k := key(pv)
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
	}
	rn := make([]int64, len(in.rows))
	for _, k := range order {
		idx := groups[k]
		sort.SliceStable(idx, func(a, b int) bool {
			ra, rb := in.rows[idx[a]], in.rows[idx[b]]
			for n, f := range keys {
				if cmp := orderCompare(f(ra), f(rb), c.Over.OrderBy[n]); cmp != 0 {
					return cmp < 0
				}
			}
			// Ties on the ORDER BY keys: the smaller whole row first
			// (Sluice's rule; identical rows keep arrival order).
			return compareRows(ra, rb) < 0
		})
		for n, i := range idx {
			rn[i] = int64(n + 1)
		}
	}
	return rn, nil
}

func (e *env) orderLimit(out, in *rel, order []ast.OrderItem, limit ast.Expr) (*rel, error) {
	if len(order) == 0 && limit == nil {
		return out, nil
	}
	comp := e.cat.compiler()
	var keys []expr.EvalFunc
	for _, o := range order {
		x, err := comp.Compile(o.Expr, out)
		if err != nil {
			return nil, err
		}
		keys = append(keys, x.Eval)
	}
	idx := make([]int, len(out.rows))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		for n, f := range keys {
			if c := orderCompare(f(out.rows[idx[a]]), f(out.rows[idx[b]]), order[n]); c != 0 {
				return c < 0
			}
		}
		if len(keys) == 0 {
			return false // LIMIT alone: the first rows to arrive
		}
		return compareRows(out.rows[idx[a]], out.rows[idx[b]]) < 0
	})
	n := len(idx)
	if limit != nil {
		x, err := comp.Compile(limit, out)
		if err != nil {
			return nil, err
		}
		if l := int(x.Eval(nil).AsInt()); l < n {
			n = l
		}
	}
	res := &rel{cols: out.cols}
	for _, i := range idx[:n] {
		res.add(out.rows[i], out.wm[i])
	}
	return res, nil
}

// compareRows orders rows column by column with row.Compare, NULL first:
// how the engine breaks ties on ORDER BY keys.
func compareRows(a, b []row.Value) int {
	for i := range min(len(a), len(b)) {
		x, y := a[i], b[i]
		switch {
		case x.IsNull() && y.IsNull():
			continue
		case x.IsNull():
			return -1
		case y.IsNull():
			return 1
		}
		if c := row.Compare(x, y); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}

// orderCompare compares two values for one ORDER BY key: negative when
// x comes first. NULL sorts as the smallest value (NULLS FIRST ascending,
// NULLS LAST descending, as in Flink) unless the key says otherwise.
func orderCompare(x, y row.Value, k ast.OrderItem) int {
	xn, yn := x.IsNull(), y.IsNull()
	if xn || yn {
		if xn && yn {
			return 0
		}
		nullsFirst := !k.Desc
		if k.NullsFirst != nil {
			nullsFirst = *k.NullsFirst
		}
		if xn == nullsFirst {
			return -1
		}
		return 1
	}
	c := row.Compare(x, y)
	if k.Desc {
		return -c
	}
	return c
}

// walk calls f on x and every expression inside it.
func walk(x ast.Expr, f func(ast.Expr)) {
	rewrite(x, func(n ast.Expr) ast.Expr { f(n); return nil })
}

// rewrite returns x with every subexpression n for which f returns a
// non-nil replacement replaced (f sees the outer expression first).
func rewrite(x ast.Expr, f func(ast.Expr) ast.Expr) ast.Expr {
	if x == nil {
		return nil
	}
	if r := f(x); r != nil {
		return r
	}
	rw := func(y ast.Expr) ast.Expr { return rewrite(y, f) }
	list := func(ys []ast.Expr) []ast.Expr {
		out := make([]ast.Expr, len(ys))
		for i, y := range ys {
			out[i] = rw(y)
		}
		return out
	}
	switch x := x.(type) {
	case *ast.Unary:
		c := *x
		c.X = rw(x.X)
		return &c
	case *ast.Binary:
		c := *x
		c.L, c.R = rw(x.L), rw(x.R)
		return &c
	case *ast.Like:
		c := *x
		c.X, c.Pattern, c.Escape = rw(x.X), rw(x.Pattern), rw(x.Escape)
		return &c
	case *ast.Between:
		c := *x
		c.X, c.Lo, c.Hi = rw(x.X), rw(x.Lo), rw(x.Hi)
		return &c
	case *ast.In:
		c := *x
		c.X, c.List = rw(x.X), list(x.List)
		return &c
	case *ast.Is:
		c := *x
		c.X = rw(x.X)
		return &c
	case *ast.IsDistinct:
		c := *x
		c.L, c.R = rw(x.L), rw(x.R)
		return &c
	case *ast.Case:
		c := *x
		c.Operand, c.Else = rw(x.Operand), rw(x.Else)
		c.Whens = make([]ast.When, len(x.Whens))
		for i, w := range x.Whens {
			c.Whens[i] = ast.When{Cond: rw(w.Cond), Result: rw(w.Result)}
		}
		return &c
	case *ast.Cast:
		c := *x
		c.X = rw(x.X)
		return &c
	case *ast.Extract:
		c := *x
		c.X = rw(x.X)
		return &c
	case *ast.Call:
		c := *x
		c.Args, c.Filter = list(x.Args), rw(x.Filter)
		return &c
	case *ast.FieldAccess:
		c := *x
		c.X = rw(x.X)
		return &c
	case *ast.Index:
		c := *x
		c.X, c.Index = rw(x.X), rw(x.Index)
		return &c
	case *ast.RowExpr:
		c := *x
		c.Items = list(x.Items)
		return &c
	case *ast.ArrayExpr:
		c := *x
		c.Items = list(x.Items)
		return &c
	}
	return x
}

func ref(name string) *ast.ColumnRef { return &ast.ColumnRef{Parts: []ast.Ident{{Name: name}}} }

// ------------------------------------------------------------ GROUP BY

type aggCall struct {
	name     string
	args     []expr.EvalFunc
	star     bool
	distinct bool
	filter   func([]row.Value) bool
	typ      types.Type
	udaf     *Aggregate
}

var legacyStart = map[string]string{
	"TUMBLE_START": "$wstart", "HOP_START": "$wstart", "SESSION_START": "$wstart", "CUMULATE_START": "$wstart",
	"TUMBLE_END": "$wend", "HOP_END": "$wend", "SESSION_END": "$wend", "CUMULATE_END": "$wend",
	"TUMBLE_ROWTIME": "$wtime", "HOP_ROWTIME": "$wtime", "SESSION_ROWTIME": "$wtime", "CUMULATE_ROWTIME": "$wtime",
}

// aggregate groups in by s's GROUP BY (assigning legacy group windows
// and session windows first) and returns the grouped relation (key
// columns $g<i>, window columns, aggregate columns $a<i>) with the select
// list and HAVING rewritten over it.
func (e *env) aggregate(in *rel, s *ast.Select) (*rel, []ast.SelectItem, ast.Expr, error) {
	comp := e.cat.compiler()
	ts := types.Type{Kind: types.Timestamp, Precision: 3}
	// A legacy group window becomes window columns of the input.
	var keyExprs []ast.Expr
	var legacy *ast.Call
	for _, g := range s.GroupBy {
		if c, ok := g.(*ast.Call); ok {
			switch strings.ToUpper(c.Name.Name) {
			case "TUMBLE", "HOP", "SESSION", "CUMULATE":
				legacy = c
				continue
			}
		}
		keyExprs = append(keyExprs, g)
	}
	// window_time may be selected when window_start and window_end are
	// grouped: it is a key too.
	for _, g := range keyExprs {
		if cr, ok := g.(*ast.ColumnRef); ok {
			if idx, err := in.find(cr.Parts); err == nil && in.cols[idx].Name() == "window_end" && idx+1 < len(in.cols) && in.cols[idx+1].Name() == "window_time" {
				wt := &ast.ColumnRef{Parts: append(append([]ast.Ident(nil), cr.Parts[:len(cr.Parts)-1]...), ast.Ident{Name: "window_time"})}
				keyExprs = append(keyExprs, wt)
				break
			}
		}
	}
	keys := make([]expr.Compiled, len(keyExprs))
	for i, g := range keyExprs {
		x, err := comp.Compile(g, in)
		if err != nil {
			return nil, nil, nil, err
		}
		keys[i] = x
	}
	keyOf := func(vals []row.Value, skip map[int]bool) string {
		kv := make([]row.Value, 0, len(keys))
		for i, k := range keys {
			if !skip[i] {
				kv = append(kv, k.Eval(vals))
			}
		}
		return key(kv)
	}
	windowCol := map[int]bool{}
	if in.session != nil {
		for i, g := range keyExprs {
			if cr, ok := g.(*ast.ColumnRef); ok {
				if idx, err := in.find(cr.Parts); err == nil && idx >= in.session.wstart && idx < in.session.wstart+3 {
					windowCol[i] = true
				}
			}
		}
		in = sessions(in, in.session.tcol, in.session.gap, in.session.wstart, func(v []row.Value) string { return keyOf(v, windowCol) })
	}
	var wstart = -1
	if legacy != nil {
		fn := strings.ToUpper(legacy.Name.Name)
		tx, err := comp.Compile(legacy.Args[0], in)
		if err != nil {
			return nil, nil, nil, err
		}
		var ds []int64
		for _, a := range legacy.Args[1:] {
			x, err := comp.Compile(a, in)
			if err != nil {
				return nil, nil, nil, err
			}
			ds = append(ds, x.Eval(nil).AsInt())
		}
		ext := &rel{cols: append(append([]Column(nil), in.cols...), Column{Path: []string{"$wstart"}, Type: ts}, Column{Path: []string{"$wend"}, Type: ts}, Column{Path: []string{"$wtime"}, Type: windowTimeType(tx.Type)})}
		wstart = len(in.cols)
		if fn == "SESSION" {
			for i, vals := range in.rows {
				ext.add(append(append([]row.Value(nil), vals...), row.Null(), row.Null(), row.Null()), in.wm[i])
			}
			// The time attribute is a column reference: find it.
			cr, ok := legacy.Args[0].(*ast.ColumnRef)
			if !ok {
				return nil, nil, nil, fmt.Errorf("oracle: SESSION needs a time column")
			}
			tcol, err := in.find(cr.Parts)
			if err != nil {
				return nil, nil, nil, err
			}
			ext = sessions(ext, tcol, ds[0], wstart, func(v []row.Value) string { return keyOf(v, nil) })
		} else {
			var size, slide, offset int64
			switch fn {
			case "TUMBLE":
				size, slide = ds[0], ds[0]
				if len(ds) > 1 {
					offset = ds[1]
				}
			case "HOP", "CUMULATE":
				slide, size = ds[0], ds[1]
				if len(ds) > 2 {
					offset = ds[2]
				}
			}
			for i, vals := range in.rows {
				t := tx.Eval(vals)
				if t.IsNull() {
					continue
				}
				for _, w := range assign(fn, t.AsInt(), size, slide, offset) {
					if w[1]-1 <= in.wm[i] {
						continue
					}
					ext.add(append(append([]row.Value(nil), vals...), row.Timestamp(w[0]), row.Timestamp(w[1]), row.Timestamp(w[1]-1)), in.wm[i])
				}
			}
		}
		in = ext
	}
	// Collect the aggregate calls and rewrite the select list and HAVING
	// over the grouped relation.
	var calls []*aggCall
	keyIdx := map[int]int{} // input column → key, for plain column keys
	keyText := map[string]int{}
	for i, g := range keyExprs {
		keyText[parser.Format(g)] = i
		if cr, ok := g.(*ast.ColumnRef); ok {
			if idx, err := in.find(cr.Parts); err == nil {
				keyIdx[idx] = i
			}
		}
	}
	var rwErr error
	var rw func(x ast.Expr) ast.Expr
	rw = func(x ast.Expr) ast.Expr {
		return rewrite(x, func(n ast.Expr) ast.Expr {
			if k, ok := keyText[parser.Format(n)]; ok {
				return ref(fmt.Sprintf("$g%d", k))
			}
			switch n := n.(type) {
			case *ast.ColumnRef:
				if idx, err := in.find(n.Parts); err == nil {
					if k, ok := keyIdx[idx]; ok {
						return ref(fmt.Sprintf("$g%d", k))
					}
				}
			case *ast.Call:
				name := strings.ToUpper(n.Name.Name)
				if w, ok := legacyStart[name]; ok && legacy != nil {
					return ref(w)
				}
				if !e.isAgg(n) {
					return nil
				}
				ac, err := e.aggCall(n, in)
				if err != nil {
					rwErr = err
					return n
				}
				calls = append(calls, ac)
				return ref(fmt.Sprintf("$a%d", len(calls)-1))
			}
			return nil
		})
	}
	items := make([]ast.SelectItem, len(s.Items))
	for i, it := range s.Items {
		items[i] = it
		if it.Expr == nil {
			continue
		}
		if it.Alias == nil {
			if cr, ok := it.Expr.(*ast.ColumnRef); ok {
				a := cr.Parts[len(cr.Parts)-1]
				items[i].Alias = &a
			}
		}
		items[i].Expr = rw(it.Expr)
	}
	having := rw(s.Having)
	if rwErr != nil {
		return nil, nil, nil, rwErr
	}
	// Group.
	type group struct {
		first []row.Value
		rows  []int
	}
	groups := map[string]*group{}
	var order []string
	for i, vals := range in.rows {
		k := keyOf(vals, nil)
		if wstart >= 0 {
			k += key(vals[wstart : wstart+2])
		}
		g, ok := groups[k]
		if !ok {
			g = &group{first: vals}
			groups[k] = g
			order = append(order, k)
		}
		g.rows = append(g.rows, i)
	}
	out := &rel{}
	for i, k := range keys {
		out.cols = append(out.cols, Column{Path: []string{fmt.Sprintf("$g%d", i)}, Type: k.Type})
	}
	if wstart >= 0 {
		out.cols = append(out.cols, in.cols[wstart:wstart+3]...)
	}
	for i, c := range calls {
		out.cols = append(out.cols, Column{Path: []string{fmt.Sprintf("$a%d", i)}, Type: c.typ})
	}
	for _, k := range order {
		g := groups[k]
		vals := make([]row.Value, 0, len(out.cols))
		for _, kx := range keys {
			vals = append(vals, kx.Eval(g.first))
		}
		if wstart >= 0 {
			vals = append(vals, g.first[wstart:wstart+3]...)
		}
		for _, c := range calls {
			vals = append(vals, c.eval(in, g.rows))
		}
		out.add(vals, noWatermark)
	}
	return out, items, having, nil
}

func (e *env) aggCall(n *ast.Call, in *rel) (*aggCall, error) {
	comp := e.cat.compiler()
	name := strings.ToUpper(n.Name.Name)
	ac := &aggCall{name: name, star: n.Star, distinct: n.Distinct}
	var argTypes []types.Type
	for _, a := range n.Args {
		x, err := comp.Compile(a, in)
		if err != nil {
			return nil, err
		}
		ac.args = append(ac.args, x.Eval)
		argTypes = append(argTypes, x.Type)
	}
	if n.Filter != nil {
		p, err := comp.Predicate(n.Filter, in)
		if err != nil {
			return nil, err
		}
		ac.filter = p
	}
	switch name {
	case "COUNT":
		ac.typ = types.TBigInt
	case "SUM", "AVG", "MIN", "MAX":
		if len(argTypes) != 1 {
			return nil, fmt.Errorf("oracle: %s takes one argument", name)
		}
		ac.typ = argTypes[0].WithNull(false)
		if name == "SUM" && argTypes[0].IsInteger() {
			ac.typ = types.TBigInt
		}
		if (name == "SUM" || name == "AVG") && argTypes[0].Kind == types.Decimal {
			return nil, fmt.Errorf("oracle: %s of DECIMAL is not supported", name)
		}
	default:
		u := e.cat.Aggregates[name]
		t, err := u.Result(argTypes)
		if err != nil {
			return nil, err
		}
		ac.typ, ac.udaf = t, &u
	}
	return ac, nil
}

func (c *aggCall) eval(in *rel, rows []int) row.Value {
	var args [][]row.Value
	seen := map[string]bool{}
	for _, i := range rows {
		vals := in.rows[i]
		if c.filter != nil && !c.filter(vals) {
			continue
		}
		a := make([]row.Value, len(c.args))
		for k, f := range c.args {
			a[k] = f(vals)
		}
		if c.udaf == nil && len(a) == 1 && a[0].IsNull() {
			continue // built-in aggregates skip NULL
		}
		if c.distinct {
			k := key(a)
			if seen[k] {
				continue
			}
			seen[k] = true
		}
		args = append(args, a)
	}
	if c.udaf != nil {
		acc := c.udaf.Fn.CreateAccumulator()
		for _, a := range args {
			acc.Accumulate(a)
		}
		return acc.Value()
	}
	if c.name == "COUNT" {
		return row.Int(int64(len(args)))
	}
	if len(args) == 0 {
		return row.Null()
	}
	switch c.name {
	case "MIN", "MAX":
		best := args[0][0]
		for _, a := range args[1:] {
			cmp := row.Compare(a[0], best)
			if c.name == "MIN" && cmp < 0 || c.name == "MAX" && cmp > 0 {
				best = a[0]
			}
		}
		return best
	}
	if c.typ.Kind == types.Float || c.typ.Kind == types.Double {
		var s float64
		for _, a := range args {
			s += a[0].AsFloat()
		}
		if c.name == "AVG" {
			return row.Float(s / float64(len(args)))
		}
		return row.Float(s)
	}
	var s int64
	for _, a := range args {
		s += a[0].AsInt()
	}
	if c.name == "AVG" {
		return row.Int(s / int64(len(args)))
	}
	return row.Int(s)
}

// sessions fills the window columns at wstart of every row with its
// session window: each group's rows (by groupKey) are sorted by time and
// merged while less than gap apart. A row late for its own window
// [ts, ts + gap) is dropped first.
func sessions(in *rel, tcol int, gap int64, wstart int, groupKey func([]row.Value) string) *rel {
	out := &rel{cols: in.cols}
	groups := map[string][]int{}
	var order []string
	for i, vals := range in.rows {
		if vals[tcol].IsNull() || vals[tcol].AsInt()+gap-1 <= in.wm[i] {
			continue
		}
		k := groupKey(vals)
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
	}
	for _, k := range order {
		idx := groups[k]
		sort.SliceStable(idx, func(a, b int) bool { return in.rows[idx[a]][tcol].AsInt() < in.rows[idx[b]][tcol].AsInt() })
		for s := 0; s < len(idx); {
			start := in.rows[idx[s]][tcol].AsInt()
			end := start + gap
			e := s + 1
			for e < len(idx) && in.rows[idx[e]][tcol].AsInt() < end {
				if t := in.rows[idx[e]][tcol].AsInt() + gap; t > end {
					end = t
				}
				e++
			}
			for _, i := range idx[s:e] {
				vals := append([]row.Value(nil), in.rows[i]...)
				vals[wstart], vals[wstart+1], vals[wstart+2] = row.Timestamp(start), row.Timestamp(end), row.Timestamp(end-1)
				out.add(vals, in.wm[i])
			}
			s = e
		}
	}
	return out
}

// FormatValue renders a value for comparison: NULL, timestamps as
// yyyy-MM-dd HH:mm:ss.SSS, decimals with their scale, floats in Go's
// shortest form.
func FormatValue(v row.Value, t types.Type) string {
	if v.IsNull() {
		return "NULL"
	}
	switch {
	case t.IsTimestamp():
		return time.UnixMilli(v.AsInt()).UTC().Format("2006-01-02 15:04:05.000")
	case t.Kind == types.Decimal:
		n := v.AsInt()
		if t.Scale == 0 {
			return strconv.FormatInt(n, 10)
		}
		neg := n < 0
		if neg {
			n = -n
		}
		s := fmt.Sprintf("%0*d", t.Scale+1, n)
		s = s[:len(s)-t.Scale] + "." + s[len(s)-t.Scale:]
		if neg {
			s = "-" + s
		}
		return s
	case t.Kind == types.Date:
		return time.UnixMilli(v.AsInt() * 86400000).UTC().Format("2006-01-02")
	}
	switch v.Kind() {
	case row.KindString:
		return v.AsString()
	case row.KindFloat:
		return strconv.FormatFloat(v.AsFloat(), 'g', -1, 64)
	}
	return v.String()
}

// windowTimeType is the type of window_time (and TUMBLE_ROWTIME ...) for
// a time attribute of type t: TIMESTAMP_LTZ(3) for a TIMESTAMP_LTZ, else
// TIMESTAMP(3), as in Flink.
func windowTimeType(t types.Type) types.Type {
	if t.Kind == types.TimestampLTZ {
		return types.Type{Kind: types.TimestampLTZ, Precision: 3}
	}
	return types.Type{Kind: types.Timestamp, Precision: 3}
}
