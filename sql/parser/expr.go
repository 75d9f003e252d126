package parser

import (
	"github.com/sluicehq/sluice/sql/ast"
)

// Precedence, loosest first: OR; AND; NOT; comparison, IS, LIKE, BETWEEN,
// IN; || + -; * / %; unary - +; postfix [i] and .field.

func (p *parser) expr() ast.Expr {
	p.enter()
	defer p.leave()
	return p.orExpr()
}

func (p *parser) orExpr() ast.Expr {
	l := p.andExpr()
	for p.isKw("OR") {
		p.i++
		l = &ast.Binary{Op: "OR", L: l, R: p.andExpr(), Pos: l.Start()}
	}
	return l
}

func (p *parser) andExpr() ast.Expr {
	l := p.notExpr()
	for p.isKw("AND") {
		p.i++
		l = &ast.Binary{Op: "AND", L: l, R: p.notExpr(), Pos: l.Start()}
	}
	return l
}

func (p *parser) notExpr() ast.Expr {
	if p.isKw("NOT") {
		t := p.next()
		if p.isKw("EXISTS") {
			// NOT EXISTS (q) is Exists{Not: true}, unless an operator
			// follows: NOT binds looser than every operator but AND, OR.
			x := p.comparison()
			if e, ok := x.(*ast.Exists); ok {
				e.Not = true
				e.Pos = t.pos
				return e
			}
			return &ast.Unary{Op: "NOT", X: x, Pos: t.pos}
		}
		p.enter()
		x := p.notExpr()
		p.leave()
		return &ast.Unary{Op: "NOT", X: x, Pos: t.pos}
	}
	return p.comparison()
}

// exprFrom continues an expression whose first operand x, read at the
// additive level, is already parsed.
func (p *parser) exprFrom(x ast.Expr) ast.Expr {
	l := p.comparisonRest(x)
	for p.isKw("AND") {
		p.i++
		l = &ast.Binary{Op: "AND", L: l, R: p.notExpr(), Pos: l.Start()}
	}
	for p.isKw("OR") {
		p.i++
		l = &ast.Binary{Op: "OR", L: l, R: p.andExpr(), Pos: l.Start()}
	}
	return l
}

func (p *parser) exists() *ast.Exists {
	t := p.next() // EXISTS
	p.expectOp("(", " after EXISTS")
	if !p.startsQuery() {
		p.failExpected("a query after EXISTS (")
	}
	q := p.query()
	p.expectOp(")", " after the EXISTS query")
	return &ast.Exists{Query: q, Pos: t.pos}
}

func (p *parser) comparison() ast.Expr {
	return p.comparisonRest(p.additive())
}

var comparisonOps = map[string]string{"=": "=", "<>": "<>", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}

func (p *parser) comparisonRest(l ast.Expr) ast.Expr {
	for {
		t := p.peek()
		if t.kind == tOp {
			op, ok := comparisonOps[t.text]
			if !ok {
				return l
			}
			p.i++
			l = &ast.Binary{Op: op, L: l, R: p.additive(), Pos: l.Start()}
			continue
		}
		if t.kind != tWord {
			return l
		}
		not := false
		switch t.upper {
		case "IS":
			p.i++
			not = p.acceptKw("NOT")
			if p.acceptKw("DISTINCT") {
				p.expectKw("FROM", " after IS [NOT] DISTINCT")
				l = &ast.IsDistinct{L: l, R: p.additive(), Not: not, Pos: l.Start()}
				continue
			}
			w := p.peek()
			if w.kind != tWord || (w.upper != "NULL" && w.upper != "TRUE" && w.upper != "FALSE" && w.upper != "UNKNOWN") {
				p.failExpected("NULL, TRUE, FALSE, UNKNOWN or DISTINCT FROM after IS", "NULL", "TRUE", "FALSE", "UNKNOWN", "DISTINCT")
			}
			p.i++
			l = &ast.Is{X: l, What: w.upper, Not: not, Pos: l.Start()}
			continue
		case "NOT":
			nt := p.peekAt(1)
			if nt.kind != tWord || (nt.upper != "LIKE" && nt.upper != "IN" && nt.upper != "BETWEEN" && nt.upper != "SIMILAR") {
				return l
			}
			p.i++
			not = true
		case "LIKE", "IN", "BETWEEN", "SIMILAR":
		default:
			return l
		}
		kw := p.next()
		switch kw.upper {
		case "LIKE", "SIMILAR":
			lk := &ast.Like{X: l, Not: not, Similar: kw.upper == "SIMILAR", Pos: l.Start()}
			if lk.Similar {
				p.expectKw("TO", " after SIMILAR")
			}
			lk.Pattern = p.additive()
			if p.acceptKw("ESCAPE") {
				lk.Escape = p.additive()
			}
			l = lk
		case "BETWEEN":
			b := &ast.Between{X: l, Not: not, Pos: l.Start()}
			if !p.acceptKw("SYMMETRIC") {
				p.acceptKw("ASYMMETRIC")
			} else {
				b.Symmetric = true
			}
			b.Lo = p.additive()
			p.expectKw("AND", " between the bounds of BETWEEN")
			b.Hi = p.additive()
			l = b
		case "IN":
			in := &ast.In{X: l, Not: not, Pos: l.Start()}
			p.expectOp("(", " after IN")
			if p.startsDirectQuery(0) {
				in.Query = p.query()
			} else {
				for {
					in.List = append(in.List, p.expr())
					if !p.acceptOp(",") {
						break
					}
				}
				if sq, ok := in.List[0].(*ast.Subquery); ok && len(in.List) == 1 && p.continuesQuery() {
					in.List, in.Query = nil, p.queryBodyFrom(sq.Query)
				}
			}
			p.expectOp(")", " after the IN list")
			l = in
		}
	}
}

func (p *parser) additive() ast.Expr {
	l := p.multiplicative()
	for {
		t := p.peek()
		if t.kind != tOp || (t.text != "+" && t.text != "-" && t.text != "||") {
			return l
		}
		p.i++
		l = &ast.Binary{Op: t.text, L: l, R: p.multiplicative(), Pos: l.Start()}
	}
}

func (p *parser) multiplicative() ast.Expr {
	l := p.unary()
	for {
		t := p.peek()
		if t.kind != tOp || (t.text != "*" && t.text != "/" && t.text != "%") {
			return l
		}
		p.i++
		l = &ast.Binary{Op: t.text, L: l, R: p.unary(), Pos: l.Start()}
	}
}

func (p *parser) unary() ast.Expr {
	t := p.peek()
	if t.kind == tOp && (t.text == "-" || t.text == "+") {
		p.i++
		p.enter()
		x := p.unary()
		p.leave()
		return &ast.Unary{Op: t.text, X: x, Pos: t.pos}
	}
	return p.postfix(p.primary())
}

func (p *parser) postfix(x ast.Expr) ast.Expr {
	for {
		t := p.peek()
		switch {
		case p.isOp("["):
			p.i++
			i := p.expr()
			p.expectOp("]", " after the index")
			x = &ast.Index{X: x, Index: i, Pos: x.Start()}
		case p.isOp("."):
			p.i++
			x = &ast.FieldAccess{X: x, Field: p.ident("a field name after '.'"), Pos: x.Start()}
		case p.isOp("::"):
			p.failAt(t, "'::' casts are not supported; write CAST(x AS type)")
		default:
			return x
		}
	}
}

// niladic are the functions called without parentheses.
var niladic = map[string]bool{
	"CURRENT_TIMESTAMP": true, "CURRENT_DATE": true, "CURRENT_TIME": true,
	"LOCALTIMESTAMP": true, "LOCALTIME": true, "CURRENT_USER": true,
	"CURRENT_CATALOG": true, "CURRENT_DATABASE": true,
}

var intervalUnits = map[string]bool{"YEAR": true, "MONTH": true, "DAY": true, "HOUR": true, "MINUTE": true, "SECOND": true}

func (p *parser) primary() ast.Expr {
	t := p.peek()
	switch t.kind {
	case tNumber:
		p.i++
		return &ast.NumberLit{Text: t.text, Pos: t.pos}
	case tString:
		p.i++
		return &ast.StringLit{Value: t.text, Pos: t.pos}
	case tQIdent:
		if p.isOpAt(1, "(") {
			return p.call()
		}
		return p.columnRef()
	case tOp:
		if t.text == "(" {
			p.i++
			if p.startsDirectQuery(0) {
				q := p.query()
				p.expectOp(")", " after the subquery")
				return &ast.Subquery{Query: q, Pos: t.pos}
			}
			x := p.expr()
			if sq, ok := x.(*ast.Subquery); ok && p.continuesQuery() {
				// ((SELECT ...) UNION ...): the parenthesised query was
				// the first operand of a query.
				q := p.queryBodyFrom(sq.Query)
				p.expectOp(")", " after the subquery")
				return &ast.Subquery{Query: q, Pos: t.pos}
			}
			if p.isOp(",") {
				r := &ast.RowExpr{Items: []ast.Expr{x}, Pos: t.pos}
				for p.acceptOp(",") {
					r.Items = append(r.Items, p.expr())
				}
				x = r
			}
			p.expectOp(")", " closing the parenthesis")
			return x
		}
		p.failExpected("an expression")
	case tEOF:
		p.failExpected("an expression")
	case tBadNumber:
		p.failAt(t, "malformed number %s", quote(t.text))
	}
	// A word.
	next := p.peekAt(1)
	paren := next.kind == tOp && next.text == "("
	switch t.upper {
	case "TRUE", "FALSE":
		p.i++
		return &ast.BoolLit{Value: t.upper == "TRUE", Pos: t.pos}
	case "NULL":
		p.i++
		return &ast.NullLit{Pos: t.pos}
	case "INTERVAL":
		return p.interval()
	case "TIMESTAMP", "DATE", "TIME":
		if next.kind == tString {
			p.i += 2
			return &ast.TypedLit{Type: t.upper, Value: next.text, Pos: t.pos}
		}
	case "CASE":
		return p.caseExpr()
	case "CAST", "TRY_CAST":
		if paren {
			p.i += 2
			c := &ast.Cast{X: p.expr(), Try: t.upper == "TRY_CAST", Pos: t.pos}
			p.expectKw("AS", " and a type in "+t.upper+"(x AS type)")
			c.To = p.typeName()
			p.expectOp(")", " closing "+t.upper+"(...)")
			return c
		}
	case "EXTRACT":
		if paren {
			p.i += 2
			u := p.peek()
			if u.kind != tWord {
				p.failExpected("a time unit (YEAR, MONTH, DAY, HOUR, ...) in EXTRACT(unit FROM x)")
			}
			p.i++
			p.expectKw("FROM", " after the unit in EXTRACT(unit FROM x)")
			e := &ast.Extract{Unit: u.upper, X: p.expr(), Pos: t.pos}
			p.expectOp(")", " closing EXTRACT(...)")
			return e
		}
	case "EXISTS":
		return p.exists()
	case "ROW":
		if paren {
			p.i += 2
			r := &ast.RowExpr{Pos: t.pos}
			if !p.acceptOp(")") {
				r.Items = p.exprList(")", "ROW(...)")
			}
			return r
		}
	case "ARRAY":
		if next.kind == tOp && next.text == "[" {
			p.i += 2
			a := &ast.ArrayExpr{Pos: t.pos}
			if !p.acceptOp("]") {
				a.Items = p.exprList("]", "ARRAY[...]")
			}
			return a
		}
	case "LEFT", "RIGHT":
		if paren {
			return p.call()
		}
	}
	if reserved[t.upper] {
		p.failExpected("an expression")
	}
	if paren {
		return p.call()
	}
	if niladic[t.upper] {
		p.i++
		return &ast.Call{Name: ast.Ident{Name: t.text, Pos: t.pos}, Pos: t.pos}
	}
	return p.columnRef()
}

// exprList is expr {, expr} close.
func (p *parser) exprList(close, what string) []ast.Expr {
	var out []ast.Expr
	for {
		out = append(out, p.expr())
		if p.acceptOp(close) {
			return out
		}
		if !p.acceptOp(",") {
			p.failExpected("a comma or '" + close + "' in " + what)
		}
	}
}

func (p *parser) columnRef() ast.Expr {
	t := p.peek()
	c := &ast.ColumnRef{Pos: t.pos}
	c.Parts = append(c.Parts, p.ident("a column name"))
	for p.isOp(".") && !p.isOpAt(1, "*") {
		p.i++
		c.Parts = append(c.Parts, p.ident("a name after '.'"))
	}
	return c
}

func (p *parser) interval() ast.Expr {
	t := p.next() // INTERVAL
	iv := &ast.IntervalLit{Pos: t.pos}
	if p.acceptOp("-") {
		iv.Negative = true
	} else {
		p.acceptOp("+")
	}
	iv.Value = p.stringLit("the interval's value in quotes, e.g. INTERVAL '10' SECOND")
	u := p.peek()
	if u.kind != tWord || !intervalUnits[u.upper] {
		p.failExpected("a unit (SECOND, MINUTE, HOUR, DAY, MONTH, YEAR) after INTERVAL '...'", "SECOND", "MINUTE", "HOUR", "DAY", "MONTH", "YEAR")
	}
	p.i++
	iv.Unit = u.upper
	if p.acceptKw("TO") {
		u := p.peek()
		if u.kind != tWord || !intervalUnits[u.upper] {
			p.failExpected("a unit after TO in INTERVAL '...' unit TO unit", "SECOND", "MINUTE", "HOUR", "MONTH")
		}
		p.i++
		iv.ToUnit = u.upper
	}
	return iv
}

func (p *parser) caseExpr() ast.Expr {
	t := p.next() // CASE
	c := &ast.Case{Pos: t.pos}
	if !p.isKw("WHEN") {
		c.Operand = p.expr()
	}
	for p.acceptKw("WHEN") {
		var w ast.When
		w.Cond = p.expr()
		p.expectKw("THEN", " after the WHEN condition")
		w.Result = p.expr()
		c.Whens = append(c.Whens, w)
	}
	if len(c.Whens) == 0 {
		p.failExpected("WHEN after CASE", "WHEN")
	}
	if p.acceptKw("ELSE") {
		c.Else = p.expr()
	}
	p.expectKw("END", " closing CASE (CASE WHEN ... THEN ... [ELSE ...] END)")
	return c
}

func strLit(s string) *ast.StringLit { return &ast.StringLit{Value: s} }

// call parses name(args) with the special forms, FILTER and OVER.
func (p *parser) call() ast.Expr {
	p.enter()
	defer p.leave()
	nt := p.next()
	c := &ast.Call{Name: ast.Ident{Name: nt.text, Quoted: nt.kind == tQIdent, Pos: nt.pos}, Pos: nt.pos}
	p.i++ // '('
	special := ""
	if nt.kind == tWord {
		special = nt.upper
	}
	switch {
	case p.acceptOp(")"):
	case p.isOp("*") && p.isOpAt(1, ")"):
		p.i += 2
		c.Star = true
	case p.isOp("*") && !p.isOpAt(1, "."):
		// COUNT(* FROM t): the ')' is missing.
		p.i++
		p.failExpected("')' after '*' in " + nt.text + "(*)")
	case special == "TRIM" && !p.isKw("DISTINCT") && !p.isKw("ALL"):
		c.Args = p.trimArgs()
	default:
		if p.acceptKw("DISTINCT") {
			c.Distinct = true
		} else {
			p.acceptKw("ALL")
		}
		var first ast.Expr
		if special == "POSITION" && !p.isKw("NOT") {
			// POSITION(a IN b): read a without IN; when IN does not
			// follow, go on reading the whole argument from there.
			if first = p.additive(); !p.isKw("IN") {
				first = p.exprFrom(first)
			}
		} else {
			first = p.expr()
		}
		c.Args = []ast.Expr{first}
		switch {
		case special == "SUBSTRING" && p.acceptKw("FROM"):
			c.Args = append(c.Args, p.expr())
			if p.acceptKw("FOR") {
				c.Args = append(c.Args, p.expr())
			}
			p.expectOp(")", " closing SUBSTRING(s FROM a FOR b)")
		case (special == "FLOOR" || special == "CEIL" || special == "CEILING") && p.acceptKw("TO"):
			// FLOOR(ts TO HOUR): the unit becomes a one-part column
			// reference, the form the expression compiler reads a unit
			// argument in (as in TIMESTAMPADD(HOUR, 1, ts)).
			u := p.peek()
			if u.kind != tWord {
				p.failExpected("a time unit (SECOND, MINUTE, HOUR, DAY, WEEK, MONTH, QUARTER, YEAR) in " + special + "(x TO unit)")
			}
			p.i++
			c.Args = append(c.Args, &ast.ColumnRef{Parts: []ast.Ident{{Name: u.text, Pos: u.pos}}, Pos: u.pos})
			p.expectOp(")", " closing "+special+"(x TO unit)")
		case special == "POSITION" && p.acceptKw("IN"):
			c.Args = append(c.Args, p.expr())
			p.expectOp(")", " closing POSITION(a IN b)")
		case special == "OVERLAY" && p.acceptKw("PLACING"):
			c.Args = append(c.Args, p.expr())
			p.expectKw("FROM", " in OVERLAY(s PLACING r FROM a [FOR n])")
			c.Args = append(c.Args, p.expr())
			if p.acceptKw("FOR") {
				c.Args = append(c.Args, p.expr())
			}
			p.expectOp(")", " closing OVERLAY(...)")
		default:
			if p.acceptOp(",") {
				c.Args = append(c.Args, p.exprList(")", "the function's arguments")...)
			} else if !p.acceptOp(")") {
				p.failExpected("a comma or ')' in the arguments of " + nt.text)
			}
		}
	}
	if p.isKw("FILTER") && p.isOpAt(1, "(") {
		p.i += 2
		p.expectKw("WHERE", " in FILTER (WHERE condition)")
		c.Filter = p.expr()
		p.expectOp(")", " closing FILTER (WHERE ...)")
	}
	if p.isKw("OVER") {
		c.Over = p.windowSpec()
	}
	return c
}

var trimModes = map[string]bool{"BOTH": true, "LEADING": true, "TRAILING": true}

// trimArgs parses TRIM's arguments after '(' into [s, mode, chars].
func (p *parser) trimArgs() []ast.Expr {
	mode := "BOTH"
	var chars ast.Expr
	explicit := false
	if t := p.peek(); t.kind == tWord && trimModes[t.upper] {
		p.i++
		mode, explicit = t.upper, true
	}
	if explicit && p.acceptKw("FROM") {
		s := p.expr()
		p.expectOp(")", " closing TRIM(...)")
		return []ast.Expr{s, strLit(mode), strLit(" ")}
	}
	first := p.expr()
	if p.acceptKw("FROM") {
		chars = first
		s := p.expr()
		p.expectOp(")", " closing TRIM(...)")
		return []ast.Expr{s, strLit(mode), chars}
	}
	if explicit {
		p.failExpected("FROM in TRIM(" + mode + " [chars] FROM string)")
	}
	if p.acceptOp(")") {
		return []ast.Expr{first, strLit("BOTH"), strLit(" ")}
	}
	if !p.acceptOp(",") {
		p.failExpected("FROM, a comma or ')' in TRIM(...)")
	}
	return append([]ast.Expr{first}, p.exprList(")", "TRIM(...)")...)
}

func (p *parser) windowSpec() *ast.WindowSpec {
	t := p.next() // OVER
	w := &ast.WindowSpec{Pos: t.pos}
	if !p.isOp("(") {
		p.failExpected("'(' after OVER (named windows are not supported)")
	}
	p.i++
	if p.acceptKw("PARTITION") {
		p.expectKw("BY", " after PARTITION")
		for {
			w.PartitionBy = append(w.PartitionBy, p.expr())
			if !p.acceptOp(",") {
				break
			}
		}
	}
	if p.acceptKw("ORDER") {
		p.expectKw("BY", " after ORDER")
		w.OrderBy = p.orderItems()
	}
	if p.isKw("ROWS") || p.isKw("RANGE") {
		f := &ast.Frame{Rows: p.next().upper == "ROWS"}
		if p.acceptKw("BETWEEN") {
			f.Start = p.frameBound()
			p.expectKw("AND", " between the frame bounds")
			f.End = p.frameBound()
		} else {
			f.Start = p.frameBound()
			f.End = ast.FrameBound{Kind: "CURRENT ROW"}
		}
		w.Frame = f
	}
	p.expectOp(")", " closing OVER (...)")
	return w
}

func (p *parser) frameBound() ast.FrameBound {
	switch {
	case p.acceptKws("UNBOUNDED", "PRECEDING"):
		return ast.FrameBound{Kind: "UNBOUNDED PRECEDING"}
	case p.acceptKws("UNBOUNDED", "FOLLOWING"):
		return ast.FrameBound{Kind: "UNBOUNDED FOLLOWING"}
	case p.acceptKws("CURRENT", "ROW"):
		return ast.FrameBound{Kind: "CURRENT ROW"}
	}
	off := p.additive()
	switch {
	case p.acceptKw("PRECEDING"):
		return ast.FrameBound{Kind: "PRECEDING", Offset: off}
	case p.acceptKw("FOLLOWING"):
		return ast.FrameBound{Kind: "FOLLOWING", Offset: off}
	}
	p.failExpected("PRECEDING or FOLLOWING after the frame offset", "PRECEDING", "FOLLOWING")
	return ast.FrameBound{}
}
