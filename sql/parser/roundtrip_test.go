package parser

import (
	"math/rand"
	"reflect"
	"testing"

	"github.com/sluicehq/sluice/sql/ast"
)

// gen builds random trees of the shapes the parser produces, to check
// that Format's parenthesisation is right: Parse(Format(t)) == t.
type gen struct{ r *rand.Rand }

func (g gen) pick(xs ...string) string { return xs[g.r.Intn(len(xs))] }

func (g gen) ident() ast.Ident {
	if g.r.Intn(5) == 0 {
		return ast.Ident{Name: g.pick("x y", "select", "a`b", "Day"), Quoted: true}
	}
	return ast.Ident{Name: g.pick("a", "b", "c", "day", "value", "T1", "hour")}
}

func (g gen) typ(d int) *ast.TypeName {
	t := &ast.TypeName{Name: g.pick("INT", "BIGINT", "DOUBLE", "STRING", "DECIMAL", "TIMESTAMP", "ROW", "ARRAY", "MAP")}
	switch t.Name {
	case "DECIMAL":
		t.Params = []int{10, 2}
	case "TIMESTAMP":
		t.Params = []int{3}
	case "ROW":
		if d > 0 {
			t.Fields = []ast.ColumnDef{{Name: g.ident(), Type: g.typ(d - 1)}}
		} else {
			t.Name = "INT"
		}
	case "ARRAY":
		t.Elem = &ast.TypeName{Name: "INT"}
	case "MAP":
		t.Fields = []ast.ColumnDef{{Name: ast.Ident{Name: "key"}, Type: &ast.TypeName{Name: "STRING"}}, {Name: ast.Ident{Name: "value"}, Type: &ast.TypeName{Name: "INT"}}}
	}
	t.NotNull = g.r.Intn(4) == 0
	return t
}

func (g gen) exprs(d, n int) []ast.Expr {
	if n == 0 {
		return nil
	}
	out := make([]ast.Expr, n)
	for i := range out {
		out[i] = g.expr(d)
	}
	return out
}

func (g gen) query(d int) ast.Query {
	s := &ast.Select{Items: []ast.SelectItem{{Expr: g.expr(d)}}}
	if g.r.Intn(2) == 0 {
		a := g.ident()
		s.Items[0].Alias = &a
	}
	if g.r.Intn(2) == 0 {
		s.From = &ast.TableName{Name: []ast.Ident{g.ident()}}
		s.Where = g.expr(d)
	}
	if g.r.Intn(3) == 0 {
		return &ast.SetOp{Op: g.pick("UNION", "INTERSECT", "EXCEPT"), All: g.r.Intn(2) == 0, Left: s, Right: &ast.Values{Rows: [][]ast.Expr{{g.expr(d)}}}}
	}
	return s
}

func (g gen) expr(d int) ast.Expr {
	if d <= 0 {
		switch g.r.Intn(6) {
		case 0:
			return &ast.NumberLit{Text: g.pick("1", "2.5", "1e3")}
		case 1:
			return &ast.StringLit{Value: g.pick("", "x", "it's")}
		case 2:
			return &ast.BoolLit{Value: g.r.Intn(2) == 0}
		case 3:
			return &ast.NullLit{}
		case 4:
			return &ast.IntervalLit{Value: "1", Negative: g.r.Intn(2) == 0, Unit: g.pick("SECOND", "DAY"), ToUnit: g.pick("", "HOUR")}
		}
		parts := []ast.Ident{g.ident()}
		for g.r.Intn(3) == 0 {
			parts = append(parts, g.ident())
		}
		return &ast.ColumnRef{Parts: parts}
	}
	d--
	switch g.r.Intn(22) {
	case 0:
		return &ast.Unary{Op: g.pick("-", "+", "NOT"), X: g.expr(d)}
	case 1, 2, 3:
		return &ast.Binary{Op: g.pick("OR", "AND", "=", "<>", "<", ">=", "+", "-", "||", "*", "/", "%"), L: g.expr(d), R: g.expr(d)}
	case 4:
		l := &ast.Like{X: g.expr(d), Pattern: g.expr(d), Not: g.r.Intn(2) == 0, Similar: g.r.Intn(2) == 0}
		if g.r.Intn(2) == 0 {
			l.Escape = g.expr(d)
		}
		return l
	case 5:
		return &ast.Between{X: g.expr(d), Lo: g.expr(d), Hi: g.expr(d), Not: g.r.Intn(2) == 0, Symmetric: g.r.Intn(2) == 0}
	case 6:
		in := &ast.In{X: g.expr(d), Not: g.r.Intn(2) == 0}
		if g.r.Intn(2) == 0 {
			in.Query = g.query(d)
		} else {
			in.List = g.exprs(d, 1+g.r.Intn(3))
		}
		return in
	case 7:
		return &ast.Is{X: g.expr(d), What: g.pick("NULL", "TRUE", "FALSE", "UNKNOWN"), Not: g.r.Intn(2) == 0}
	case 8:
		return &ast.IsDistinct{L: g.expr(d), R: g.expr(d), Not: g.r.Intn(2) == 0}
	case 9:
		return &ast.Exists{Query: g.query(d), Not: g.r.Intn(2) == 0}
	case 10:
		return &ast.Subquery{Query: g.query(d)}
	case 11:
		c := &ast.Case{Whens: []ast.When{{Cond: g.expr(d), Result: g.expr(d)}}}
		if g.r.Intn(2) == 0 {
			c.Operand = g.expr(d)
		}
		if g.r.Intn(2) == 0 {
			c.Else = g.expr(d)
		}
		return c
	case 12:
		return &ast.Cast{X: g.expr(d), To: g.typ(2), Try: g.r.Intn(2) == 0}
	case 13:
		return &ast.Extract{Unit: g.pick("YEAR", "HOUR"), X: g.expr(d)}
	case 14:
		c := &ast.Call{Name: ast.Ident{Name: g.pick("f", "count", "POSITION", "SUBSTRING", "TRIM", "OVERLAY")}}
		switch g.r.Intn(4) {
		case 0:
			c.Star = true
		case 1:
			c.Args = g.exprs(d, 1+g.r.Intn(3))
			c.Distinct = g.r.Intn(3) == 0
		default:
			c.Args = g.exprs(d, g.r.Intn(5))
		}
		if g.r.Intn(3) == 0 {
			c.Filter = g.expr(d)
		}
		if g.r.Intn(3) == 0 {
			c.Over = &ast.WindowSpec{PartitionBy: g.exprs(d, g.r.Intn(2)), OrderBy: []ast.OrderItem{{Expr: g.expr(d), Desc: true}}}
			if g.r.Intn(2) == 0 {
				c.Over.Frame = &ast.Frame{Rows: true, Start: ast.FrameBound{Kind: "PRECEDING", Offset: g.expr(d)}, End: ast.FrameBound{Kind: "CURRENT ROW"}}
			}
		}
		if c.Name.Name == "TRIM" && len(c.Args) == 3 && g.r.Intn(2) == 0 {
			c.Args[1] = &ast.StringLit{Value: g.pick("BOTH", "LEADING")}
		}
		if c.Name.Name == "TRIM" && len(c.Args) == 1 {
			c.Args = append(c.Args, &ast.StringLit{Value: "BOTH"}, &ast.StringLit{Value: " "})
		}
		return c
	case 15:
		return &ast.FieldAccess{X: g.expr(d), Field: g.ident()}
	case 16:
		return &ast.Index{X: g.expr(d), Index: g.expr(d)}
	case 17:
		return &ast.RowExpr{Items: g.exprs(d, 1+g.r.Intn(3))}
	case 18:
		return &ast.ArrayExpr{Items: g.exprs(d, 1+g.r.Intn(2))}
	case 19:
		return &ast.TypedLit{Type: g.pick("DATE", "TIMESTAMP"), Value: "2020-01-01"}
	}
	return g.expr(d)
}

func TestFormatRoundTripRandom(t *testing.T) {
	g := gen{rand.New(rand.NewSource(1))}
	for i := 0; i < 5000; i++ {
		e := g.expr(1 + i%5)
		src := Format(e)
		back, err := ParseExpr(src)
		if err != nil {
			t.Fatalf("tree %s\nformatted %q does not parse: %v", dump(e), src, err)
		}
		if !reflect.DeepEqual(stripPos(e), stripPos(back)) {
			t.Fatalf("formatted %q\nwant %s\n got %s", src, dump(e), dump(back))
		}
	}
}

func (g gen) maybe() bool { return g.r.Intn(3) == 0 }

func (g gen) orderItems(d int) []ast.OrderItem {
	it := ast.OrderItem{Expr: g.expr(d), Desc: g.r.Intn(2) == 0}
	if g.maybe() {
		b := g.r.Intn(2) == 0
		it.NullsFirst = &b
	}
	return []ast.OrderItem{it}
}

func (g gen) fullQuery(d int) ast.Query {
	if d <= 0 {
		return &ast.Select{Items: []ast.SelectItem{{Star: true}}, From: &ast.TableName{Name: []ast.Ident{g.ident()}}}
	}
	d--
	switch g.r.Intn(6) {
	case 0, 1:
		s := &ast.Select{Distinct: g.maybe()}
		for n := 1 + g.r.Intn(2); n > 0; n-- {
			switch g.r.Intn(4) {
			case 0:
				s.Items = append(s.Items, ast.SelectItem{Star: true})
			case 1:
				s.Items = append(s.Items, ast.SelectItem{Star: true, Qualifier: []ast.Ident{g.ident()}})
			default:
				it := ast.SelectItem{Expr: g.expr(1)}
				if g.maybe() {
					a := g.ident()
					it.Alias = &a
				}
				s.Items = append(s.Items, it)
			}
		}
		if g.r.Intn(4) != 0 {
			s.From = g.tableRef(d)
		}
		if g.maybe() {
			s.Where = g.expr(1)
		}
		if g.maybe() {
			s.GroupBy = g.exprs(1, 2)
			if g.maybe() {
				s.Having = g.expr(1)
			}
		}
		if g.maybe() {
			s.OrderBy = g.orderItems(1)
		}
		if g.maybe() {
			s.Limit = &ast.NumberLit{Text: "10"}
		}
		if g.maybe() {
			s.Offset = &ast.NumberLit{Text: "2"}
		}
		return s
	case 2, 3:
		op := &ast.SetOp{Op: g.pick("UNION", "INTERSECT", "EXCEPT"), All: g.maybe(), Left: g.fullQuery(d), Right: g.fullQuery(d)}
		if g.maybe() {
			op.OrderBy = g.orderItems(1)
		}
		if g.maybe() {
			op.Limit = &ast.NumberLit{Text: "3"}
		}
		return op
	case 4:
		v := &ast.Values{}
		for n := 1 + g.r.Intn(2); n > 0; n-- {
			v.Rows = append(v.Rows, g.exprs(1, 1+g.r.Intn(2)))
		}
		return v
	}
	w := &ast.With{Query: g.fullQuery(d)}
	for n := 1 + g.r.Intn(2); n > 0; n-- {
		c := ast.CTE{Name: g.ident(), Query: g.fullQuery(d)}
		if g.maybe() {
			c.Columns = []ast.Ident{g.ident()}
		}
		w.CTEs = append(w.CTEs, c)
	}
	return w
}

func (g gen) tableAlias() *ast.Alias {
	if g.r.Intn(2) == 0 {
		return nil
	}
	a := &ast.Alias{Name: g.ident()}
	if g.maybe() {
		a.Columns = []ast.Ident{g.ident(), g.ident()}
	}
	return a
}

func (g gen) tableRef(d int) ast.TableRef {
	if d <= 0 {
		return &ast.TableName{Name: []ast.Ident{g.ident()}, Alias: g.tableAlias()}
	}
	d--
	switch g.r.Intn(5) {
	case 0:
		t := &ast.TableName{Name: []ast.Ident{g.ident(), g.ident()}, Alias: g.tableAlias()}
		if g.maybe() {
			t.ForSystemTime = g.expr(1)
		}
		return t
	case 1:
		return &ast.SubqueryRef{Query: g.fullQuery(d), Alias: g.tableAlias(), Lateral: g.maybe()}
	case 2:
		tf := &ast.TableFunction{Name: ast.Ident{Name: g.pick("TUMBLE", "HOP", "f")}, Alias: g.tableAlias(), Lateral: g.maybe()}
		for n := g.r.Intn(4); n > 0; n-- {
			var a ast.Expr
			switch g.r.Intn(3) {
			case 0:
				a = &ast.TableArg{Name: []ast.Ident{g.ident()}}
			case 1:
				a = &ast.Descriptor{Columns: []ast.Ident{g.ident()}}
			default:
				a = g.expr(1)
			}
			if g.maybe() {
				a = &ast.NamedArg{Name: g.ident(), Value: a}
			}
			tf.Args = append(tf.Args, a)
		}
		return tf
	}
	kinds := []ast.JoinKind{ast.JoinInner, ast.JoinLeft, ast.JoinRight, ast.JoinFull, ast.JoinCross, ast.JoinComma}
	j := &ast.Join{Kind: kinds[g.r.Intn(len(kinds))], Left: g.tableRef(d), Right: g.tableRef(d)}
	if j.Kind != ast.JoinComma && j.Kind != ast.JoinCross {
		if g.r.Intn(2) == 0 {
			j.On = g.expr(1)
		} else {
			j.Using = []ast.Ident{g.ident()}
		}
	}
	return j
}

func TestFormatRoundTripRandomQueries(t *testing.T) {
	g := gen{rand.New(rand.NewSource(2))}
	for i := 0; i < 3000; i++ {
		q := g.fullQuery(1 + i%4)
		src := Format(q)
		back, err := ParseQuery(src)
		if err != nil {
			t.Fatalf("tree %s\nformatted:\n%s\ndoes not parse: %v", dump(q), src, err)
		}
		if !reflect.DeepEqual(stripPos(q), stripPos(back)) {
			t.Fatalf("formatted:\n%s\nwant %s\n got %s", src, dump(q), dump(back))
		}
	}
}
