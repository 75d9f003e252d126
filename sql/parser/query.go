package parser

import (
	"github.com/sluicehq/sluice/sql/ast"
)

// startsQuery reports whether the current token can start a query.
func (p *parser) startsQuery() bool { return p.startsQueryAt(0) }

// startsQueryAt reports whether the token k ahead starts a query: SELECT,
// VALUES, WITH, or '(' followed (through any number of '(') by one of
// those.
func (p *parser) startsQueryAt(k int) bool {
	for {
		t := p.peekAt(k)
		if t.kind == tOp && t.text == "(" {
			k++
			continue
		}
		return t.kind == tWord && (t.upper == "SELECT" || t.upper == "VALUES" || t.upper == "WITH")
	}
}

// query is [WITH ctes] body [ORDER BY ...] [LIMIT ...].
func (p *parser) query() ast.Query {
	p.enter()
	defer p.leave()
	if p.isKw("WITH") {
		start := p.next()
		w := &ast.With{Pos: start.pos}
		for {
			var c ast.CTE
			c.Name = p.ident("a name for the WITH query")
			if p.isOp("(") {
				c.Columns = p.identList("WITH query's column list")
			}
			p.expectKw("AS", " after the WITH query's name")
			p.expectOp("(", " after AS in WITH name AS (query)")
			c.Query = p.query()
			p.expectOp(")", " after the WITH query")
			w.CTEs = append(w.CTEs, c)
			if !p.acceptOp(",") {
				break
			}
		}
		if !p.startsQuery() {
			p.failExpected("a query (SELECT or VALUES) after the WITH clause")
		}
		w.Query = p.queryBody()
		return w
	}
	return p.queryBody()
}

// queryBody is set operations with the trailing ORDER BY, LIMIT, OFFSET
// and FETCH that apply to the whole.
func (p *parser) queryBody() ast.Query { return p.queryBodyFrom(nil) }

// startsDirectQuery reports whether the token k ahead is SELECT, VALUES
// or WITH: then a '(' before it opens a query, not an expression or a
// parenthesised join.
func (p *parser) startsDirectQuery(k int) bool {
	t := p.peekAt(k)
	return t.kind == tWord && (t.upper == "SELECT" || t.upper == "VALUES" || t.upper == "WITH")
}

// continuesQuery reports whether the current token continues a query
// after an operand: a set operator or ORDER BY, LIMIT, OFFSET, FETCH.
func (p *parser) continuesQuery() bool {
	t := p.peek()
	if t.kind != tWord {
		return false
	}
	switch t.upper {
	case "UNION", "INTERSECT", "EXCEPT", "MINUS", "ORDER", "LIMIT", "OFFSET", "FETCH":
		return true
	}
	return false
}

// queryBodyFrom is queryBody whose first operand, when not nil, is
// already parsed (a parenthesised query read as an expression or a table
// reference before the set operator showed it was a query operand).
func (p *parser) queryBodyFrom(first ast.Query) ast.Query {
	q := p.unionTerm(first)
	if !(p.isKw("ORDER") || p.isKw("LIMIT") || p.isKw("OFFSET") || p.isKw("FETCH")) {
		return q
	}
	start := p.peek()
	var order []ast.OrderItem
	var limit, offset ast.Expr
	if p.acceptKw("ORDER") {
		p.expectKw("BY", " after ORDER")
		order = p.orderItems()
	}
	if p.acceptKw("LIMIT") {
		limit = p.expr()
	}
	if p.acceptKw("OFFSET") {
		offset = p.expr()
		if !p.acceptKw("ROWS") {
			p.acceptKw("ROW")
		}
	}
	if p.acceptKw("FETCH") {
		if limit != nil {
			p.failAt(&p.toks[p.i-1], "both LIMIT and FETCH written; use one")
		}
		if !p.acceptKw("FIRST") && !p.acceptKw("NEXT") {
			p.failExpected("FIRST or NEXT after FETCH", "FIRST", "NEXT")
		}
		limit = p.expr()
		if !p.acceptKw("ROWS") && !p.acceptKw("ROW") {
			p.failExpected("ROWS ONLY after FETCH FIRST n", "ROWS")
		}
		p.expectKw("ONLY", " after FETCH FIRST n ROWS")
	}
	switch q := q.(type) {
	case *ast.Select:
		if (order != nil && q.OrderBy != nil) || (limit != nil && q.Limit != nil) || (offset != nil && q.Offset != nil) {
			p.failAt(start, "ORDER BY, LIMIT or OFFSET written twice for one query; wrap the inner query in SELECT * FROM (...)")
		}
		if order != nil {
			q.OrderBy = order
		}
		if limit != nil {
			q.Limit = limit
		}
		if offset != nil {
			q.Offset = offset
		}
	case *ast.SetOp:
		if offset != nil {
			p.failAt(start, "OFFSET after %s is not supported; wrap the set operation in SELECT * FROM (...)", q.Op)
		}
		if (order != nil && q.OrderBy != nil) || (limit != nil && q.Limit != nil) {
			p.failAt(start, "ORDER BY or LIMIT written twice for one query; wrap the inner query in SELECT * FROM (...)")
		}
		if order != nil {
			q.OrderBy = order
		}
		if limit != nil {
			q.Limit = limit
		}
	default:
		p.failAt(start, "ORDER BY, LIMIT, OFFSET and FETCH are not supported after VALUES or a parenthesised WITH query; wrap it in SELECT * FROM (...)")
	}
	return q
}

// unionTerm is intersectTerm {UNION|EXCEPT [ALL|DISTINCT] intersectTerm}.
func (p *parser) unionTerm(first ast.Query) ast.Query {
	l := p.intersectTerm(first)
	for p.isKw("UNION") || p.isKw("EXCEPT") || p.isKw("MINUS") {
		t := p.next()
		op := t.upper
		if op == "MINUS" {
			op = "EXCEPT"
		}
		all := p.setQuantifier()
		r := p.intersectTerm(nil)
		l = &ast.SetOp{Op: op, All: all, Left: l, Right: r, Pos: l.Start()}
	}
	return l
}

func (p *parser) setQuantifier() bool {
	if p.acceptKw("ALL") {
		return true
	}
	p.acceptKw("DISTINCT")
	return false
}

func (p *parser) intersectTerm(first ast.Query) ast.Query {
	l := first
	if l == nil {
		l = p.queryPrimary()
	}
	for p.isKw("INTERSECT") {
		p.i++
		all := p.setQuantifier()
		r := p.queryPrimary()
		l = &ast.SetOp{Op: "INTERSECT", All: all, Left: l, Right: r, Pos: l.Start()}
	}
	return l
}

func (p *parser) queryPrimary() ast.Query {
	t := p.peek()
	switch {
	case p.isKw("SELECT"):
		return p.selectBlock()
	case p.isKw("VALUES"):
		p.i++
		v := &ast.Values{Pos: t.pos}
		for {
			p.expectOp("(", " before a row of VALUES")
			var row []ast.Expr
			for {
				row = append(row, p.expr())
				if p.acceptOp(")") {
					break
				}
				if !p.acceptOp(",") {
					p.failExpected("a comma or ')' in the row of VALUES")
				}
			}
			v.Rows = append(v.Rows, row)
			if !p.acceptOp(",") {
				return v
			}
		}
	case p.isOp("("):
		p.i++
		p.enter()
		q := p.query()
		p.leave()
		p.expectOp(")", " after the parenthesised query")
		return q
	}
	p.failExpected("a query (SELECT, VALUES or '(')", "SELECT", "VALUES")
	return nil
}

// clauseFollowers are the keywords that may follow a SELECT list or a
// FROM list.
func (p *parser) atClauseEnd() bool {
	t := p.peek()
	switch t.kind {
	case tEOF:
		return true
	case tOp:
		return t.text == ")" || t.text == ";"
	case tWord:
		switch t.upper {
		case "FROM", "WHERE", "GROUP", "HAVING", "ORDER", "LIMIT", "OFFSET", "FETCH",
			"UNION", "INTERSECT", "EXCEPT", "MINUS", "END", "WINDOW":
			return true
		}
	}
	return false
}

var selectFollowers = []string{"FROM", "WHERE", "GROUP", "HAVING", "ORDER", "LIMIT", "UNION"}

func (p *parser) selectBlock() *ast.Select {
	start := p.next() // SELECT
	s := &ast.Select{Pos: start.pos}
	if p.acceptKw("DISTINCT") {
		s.Distinct = true
	} else {
		p.acceptKw("ALL")
	}
	for {
		s.Items = append(s.Items, p.selectItem())
		if !p.acceptOp(",") {
			break
		}
	}
	if !p.atClauseEnd() {
		p.failExpected("FROM or a comma after the select list", selectFollowers...)
	}
	if p.acceptKw("FROM") {
		s.From = p.fromList()
		if !p.atClauseEnd() {
			p.failExpected("WHERE, GROUP BY, a join or a comma after the FROM list", "WHERE", "GROUP", "JOIN", "ORDER", "HAVING")
		}
	}
	if p.acceptKw("WHERE") {
		s.Where = p.expr()
	}
	if p.acceptKw("GROUP") {
		p.expectKw("BY", " after GROUP")
		if p.isKw("GROUPING") && p.isKwAt(1, "SETS") {
			p.failAt(p.peek(), "GROUPING SETS are not supported; write one GROUP BY per set and combine them with UNION ALL")
		}
		for {
			// Without this, ROLLUP(a) and CUBE(a) would be read as calls
			// of functions that do not exist.
			for _, kw := range []string{"ROLLUP", "CUBE"} {
				if p.isKw(kw) && p.isOpAt(1, "(") {
					p.failAt(p.peek(), "GROUP BY %s(...) is not supported; write one GROUP BY per grouping and combine them with UNION ALL", kw)
				}
			}
			s.GroupBy = append(s.GroupBy, p.expr())
			if !p.acceptOp(",") {
				break
			}
		}
	}
	if p.acceptKw("HAVING") {
		s.Having = p.expr()
	}
	if p.isKw("WINDOW") {
		p.failAt(p.peek(), "named windows (WINDOW w AS (...)) are not supported; write OVER (...) at each call")
	}
	return s
}

// isStarAhead reports whether the tokens ahead are name(.name)*.* .
func (p *parser) isStarAhead() (n int, ok bool) {
	k := 0
	for {
		t := p.peekAt(k)
		if !(t.kind == tQIdent || t.kind == tWord && !reserved[t.upper]) {
			return 0, false
		}
		d := p.peekAt(k + 1)
		if !(d.kind == tOp && d.text == ".") {
			return 0, false
		}
		s := p.peekAt(k + 2)
		if s.kind == tOp && s.text == "*" {
			return k/2 + 1, true
		}
		k += 2
	}
}

func (p *parser) selectItem() ast.SelectItem {
	t := p.peek()
	if p.acceptOp("*") {
		return ast.SelectItem{Star: true, Pos: t.pos}
	}
	if n, ok := p.isStarAhead(); ok {
		item := ast.SelectItem{Star: true, Pos: t.pos}
		for k := 0; k < n; k++ {
			item.Qualifier = append(item.Qualifier, p.ident("a table name"))
			p.i++ // '.'
		}
		p.i++ // '*'
		return item
	}
	item := ast.SelectItem{Expr: p.expr(), Pos: t.pos}
	item.Alias = p.alias("the select list", false, selectFollowers)
	return item
}

// alias parses [AS] name; without AS the name must not be a reserved word
// and, to report misspelled keywords where they are written, must not be
// followed by another name.
func (p *parser) alias(where string, columns bool, followers []string) *ast.Ident {
	if p.acceptKw("AS") {
		id := p.ident("an alias after AS")
		return &id
	}
	if !p.isName() {
		return nil
	}
	nt := p.peekAt(1)
	// A name followed by another name, a literal or BY is no alias but a
	// misspelled keyword (FORM t, WHRE x, GROPU BY).
	if nt.kind == tQIdent || nt.kind == tNumber || nt.kind == tString || nt.kind == tWord && (!reserved[nt.upper] || nt.upper == "BY") {
		t := p.peek()
		msg := "expected FROM or a comma after the select list, found " + describe(t)
		if columns {
			msg = "expected WHERE, GROUP BY, a join or a comma after the table, found " + describe(t)
		}
		if t.kind == tWord {
			msg += suggest(t.text, followers...)
		}
		p.failAt(t, "%s", msg)
	}
	id := p.ident("an alias")
	return &id
}

func (p *parser) tableAlias() *ast.Alias {
	id := p.alias("the table", true, []string{"WHERE", "GROUP", "JOIN", "LEFT", "INNER", "CROSS", "ORDER", "HAVING", "ON", "USING"})
	if id == nil {
		return nil
	}
	a := &ast.Alias{Name: *id}
	if p.isOp("(") {
		a.Columns = p.identList("alias's column list")
	}
	return a
}

// fromList is joined {, joined}: comma joins bind looser than JOIN.
func (p *parser) fromList() ast.TableRef {
	l := p.joined()
	for p.isOp(",") {
		p.i++
		r := p.joined()
		l = &ast.Join{Kind: ast.JoinComma, Left: l, Right: r, Pos: l.Start()}
	}
	return l
}

func (p *parser) joinKind() (ast.JoinKind, *token, bool) {
	t := p.peek()
	switch {
	case p.acceptKw("JOIN"):
		return ast.JoinInner, t, true
	case p.acceptKws("INNER", "JOIN"):
		return ast.JoinInner, t, true
	case p.acceptKws("CROSS", "JOIN"):
		return ast.JoinCross, t, true
	case p.isKw("LEFT") || p.isKw("RIGHT") || p.isKw("FULL"):
		k := ast.JoinKind(t.upper)
		if p.acceptKws(t.upper, "JOIN") || p.acceptKws(t.upper, "OUTER", "JOIN") {
			return k, t, true
		}
		p.i++
		p.acceptKw("OUTER")
		p.failExpected("JOIN after "+t.upper, "JOIN")
	case p.isKw("INNER") || p.isKw("CROSS"):
		p.i++
		p.failExpected("JOIN after "+t.upper, "JOIN")
	case p.isKw("NATURAL"):
		p.failAt(t, "NATURAL JOIN is not supported; write JOIN ... ON a.col = b.col")
	}
	return "", nil, false
}

func (p *parser) joined() ast.TableRef {
	l := p.tablePrimary()
	for {
		kind, _, ok := p.joinKind()
		if !ok {
			return l
		}
		j := &ast.Join{Kind: kind, Left: l, Pos: l.Start()}
		j.Right = p.tablePrimary()
		if kind != ast.JoinCross {
			switch {
			case p.acceptKw("ON"):
				j.On = p.expr()
			case p.acceptKw("USING"):
				j.Using = p.identList("USING column list")
			default:
				p.failExpected("ON or USING after the joined table", "ON", "USING")
			}
		}
		l = j
	}
}

func (p *parser) tablePrimary() ast.TableRef {
	p.enter()
	defer p.leave()
	t := p.peek()
	switch {
	case p.isOp("("):
		if p.startsDirectQuery(1) {
			p.i++
			q := p.query()
			p.expectOp(")", " after the subquery")
			return &ast.SubqueryRef{Query: q, Alias: p.tableAlias(), Pos: t.pos}
		}
		// A parenthesised join, or a query whose first operand is in
		// parentheses: ((SELECT ...) UNION ...) or ((SELECT ...)).
		p.i++
		r := p.fromList()
		if sr, ok := r.(*ast.SubqueryRef); ok && sr.Alias == nil && !sr.Lateral && (p.continuesQuery() || p.isOp(")")) {
			q := p.queryBodyFrom(sr.Query)
			p.expectOp(")", " after the subquery")
			return &ast.SubqueryRef{Query: q, Alias: p.tableAlias(), Pos: t.pos}
		}
		p.expectOp(")", " after the parenthesised join")
		return r
	case p.isKw("LATERAL"):
		p.i++
		if p.isKw("TABLE") {
			tf := p.tableFunction()
			tf.Lateral = true
			tf.Pos = t.pos
			return tf
		}
		if p.isOp("(") && p.startsQueryAt(1) {
			p.i++
			q := p.query()
			p.expectOp(")", " after the LATERAL subquery")
			return &ast.SubqueryRef{Query: q, Alias: p.tableAlias(), Lateral: true, Pos: t.pos}
		}
		p.failExpected("TABLE(f(...)) or (query) after LATERAL", "TABLE")
	case p.isKw("TABLE"):
		return p.tableFunction()
	case p.isKw("UNNEST"):
		p.failAt(t, "UNNEST is not supported yet")
	}
	if !p.isName() {
		p.failExpected("a table name, (query), TABLE(...) or LATERAL TABLE(...)")
	}
	tn := &ast.TableName{Pos: t.pos}
	tn.Name = p.qualifiedName("a table name")
	if p.acceptKw("FOR") {
		if !p.acceptKws("SYSTEM_TIME", "AS", "OF") {
			p.failExpected("SYSTEM_TIME AS OF after FOR", "SYSTEM_TIME")
		}
		tn.ForSystemTime = p.expr()
	}
	tn.Alias = p.tableAlias()
	return tn
}

// tableFunction is TABLE(name(args)) [alias].
func (p *parser) tableFunction() *ast.TableFunction {
	start := p.next() // TABLE
	tf := &ast.TableFunction{Pos: start.pos}
	p.expectOp("(", " after TABLE (TABLE(TUMBLE(TABLE t, DESCRIPTOR(col), INTERVAL '1' MINUTE)))")
	if !(p.peek().kind == tQIdent || p.peek().kind == tWord) || !p.isOpAt(1, "(") {
		p.failExpected("a table function call such as TUMBLE(...) inside TABLE(...)")
	}
	nt := p.next()
	tf.Name = ast.Ident{Name: nt.text, Quoted: nt.kind == tQIdent, Pos: nt.pos}
	p.i++ // '('
	if !p.acceptOp(")") {
		for {
			tf.Args = append(tf.Args, p.tvfArg())
			if p.acceptOp(")") {
				break
			}
			if !p.acceptOp(",") {
				p.failExpected("a comma or ')' in the table function's arguments")
			}
		}
	}
	p.expectOp(")", " closing TABLE(...)")
	tf.Alias = p.tableAlias()
	return tf
}

func (p *parser) isOpAt(k int, op string) bool {
	t := p.peekAt(k)
	return t.kind == tOp && t.text == op
}

// tvfArg is TABLE name | DESCRIPTOR(cols) | name => arg | expr.
func (p *parser) tvfArg() ast.Expr {
	p.enter()
	defer p.leave()
	t := p.peek()
	switch {
	case p.isKw("TABLE") && !p.isOpAt(1, "("):
		p.i++
		return &ast.TableArg{Name: p.qualifiedName("a table name after TABLE"), Pos: t.pos}
	case p.isKw("DESCRIPTOR") && p.isOpAt(1, "("):
		p.i++
		return &ast.Descriptor{Columns: p.identList("DESCRIPTOR column list"), Pos: t.pos}
	case (t.kind == tWord || t.kind == tQIdent) && p.isOpAt(1, "=>"):
		p.i += 2
		v := p.tvfArg()
		if _, ok := v.(*ast.NamedArg); ok {
			p.failAt(t, "a named argument's value cannot be another named argument")
		}
		return &ast.NamedArg{Name: ast.Ident{Name: t.text, Quoted: t.kind == tQIdent, Pos: t.pos}, Value: v, Pos: t.pos}
	}
	return p.expr()
}

func (p *parser) orderItems() []ast.OrderItem {
	var out []ast.OrderItem
	for {
		it := ast.OrderItem{Expr: p.expr()}
		if p.acceptKw("DESC") {
			it.Desc = true
		} else {
			p.acceptKw("ASC")
		}
		if p.acceptKw("NULLS") {
			var first bool
			switch {
			case p.acceptKw("FIRST"):
				first = true
			case p.acceptKw("LAST"):
			default:
				p.failExpected("FIRST or LAST after NULLS", "FIRST", "LAST")
			}
			it.NullsFirst = &first
		}
		out = append(out, it)
		if !p.acceptOp(",") {
			return out
		}
	}
}
