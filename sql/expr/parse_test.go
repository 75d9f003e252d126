package expr

// A small SQL expression parser for the tests only, so that testdata can
// be written as SQL while sql/parser is being written. It produces the
// same ast shapes sql/ast documents (special forms as plain argument
// lists, units as one-part column references).

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/sluicehq/sluice/sql/ast"
)

type tok struct {
	kind byte // 'i' ident, 'n' number, 's' string, 'q' quoted ident, 'o' operator, 'e' end
	text string
	pos  ast.Pos
}

func lexExpr(src string) ([]tok, error) {
	var out []tok
	line, col := 1, 1
	i := 0
	adv := func(n int) {
		for k := 0; k < n; k++ {
			if src[i] == '\n' {
				line++
				col = 1
			} else {
				col++
			}
			i++
		}
	}
	for i < len(src) {
		c := src[i]
		p := ast.Pos{Line: line, Col: col, Offset: i}
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			adv(1)
		case c == '\'':
			var b strings.Builder
			adv(1)
			for {
				if i >= len(src) {
					return nil, fmt.Errorf("%s: unterminated string", p)
				}
				if src[i] == '\'' {
					if i+1 < len(src) && src[i+1] == '\'' {
						b.WriteByte('\'')
						adv(2)
						continue
					}
					adv(1)
					break
				}
				b.WriteByte(src[i])
				adv(1)
			}
			out = append(out, tok{kind: 's', text: b.String(), pos: p})
		case c == '`':
			j := strings.IndexByte(src[i+1:], '`')
			if j < 0 {
				return nil, fmt.Errorf("%s: unterminated identifier", p)
			}
			out = append(out, tok{kind: 'q', text: src[i+1 : i+1+j], pos: p})
			adv(j + 2)
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(src) && src[i+1] >= '0' && src[i+1] <= '9':
			j := i
			for j < len(src) && (src[j] >= '0' && src[j] <= '9' || src[j] == '.') {
				j++
			}
			if j < len(src) && (src[j] == 'e' || src[j] == 'E') {
				j++
				if j < len(src) && (src[j] == '-' || src[j] == '+') {
					j++
				}
				for j < len(src) && src[j] >= '0' && src[j] <= '9' {
					j++
				}
			}
			out = append(out, tok{kind: 'n', text: src[i:j], pos: p})
			adv(j - i)
		case unicode.IsLetter(rune(c)) || c == '_':
			j := i
			for j < len(src) && (unicode.IsLetter(rune(src[j])) || unicode.IsDigit(rune(src[j])) || src[j] == '_') {
				j++
			}
			out = append(out, tok{kind: 'i', text: src[i:j], pos: p})
			adv(j - i)
		default:
			for _, op := range []string{"<>", "!=", "<=", ">=", "||", "=", "<", ">", "+", "-", "*", "/", "%", "(", ")", ",", "."} {
				if strings.HasPrefix(src[i:], op) {
					if op == "!=" {
						op = "<>"
					}
					out = append(out, tok{kind: 'o', text: op, pos: p})
					adv(len(op))
					goto next
				}
			}
			return nil, fmt.Errorf("%s: unexpected %q", p, c)
		next:
		}
	}
	out = append(out, tok{kind: 'e', pos: ast.Pos{Line: line, Col: col, Offset: i}})
	return out, nil
}

type exprParser struct {
	toks []tok
	i    int
}

func parseExpr(src string) (ast.Expr, error) {
	toks, err := lexExpr(src)
	if err != nil {
		return nil, err
	}
	p := &exprParser{toks: toks}
	e, err := p.expr(0)
	if err != nil {
		return nil, err
	}
	if p.peek().kind != 'e' {
		return nil, fmt.Errorf("%s: unexpected %q", p.peek().pos, p.peek().text)
	}
	return e, nil
}

func (p *exprParser) peek() tok { return p.toks[p.i] }
func (p *exprParser) next() tok {
	t := p.toks[p.i]
	if t.kind != 'e' {
		p.i++
	}
	return t
}

func (p *exprParser) isKw(words ...string) bool {
	for k, w := range words {
		if p.i+k >= len(p.toks) {
			return false
		}
		t := p.toks[p.i+k]
		if t.kind != 'i' || !strings.EqualFold(t.text, w) {
			return false
		}
	}
	return true
}

func (p *exprParser) kw(w string) bool {
	if p.isKw(w) {
		p.i++
		return true
	}
	return false
}

func (p *exprParser) op(o string) bool {
	if t := p.peek(); t.kind == 'o' && t.text == o {
		p.i++
		return true
	}
	return false
}

func (p *exprParser) expect(o string) error {
	if !p.op(o) {
		return fmt.Errorf("%s: expected %s", p.peek().pos, o)
	}
	return nil
}

// binding powers: OR 1, AND 2, NOT 3, comparison/IS/LIKE/BETWEEN/IN 4,
// + - || 5, * / % 6, unary 7.
func (p *exprParser) expr(minBP int) (ast.Expr, error) {
	var left ast.Expr
	var err error
	t := p.peek()
	switch {
	case p.isKw("NOT"):
		p.i++
		x, err := p.expr(3)
		if err != nil {
			return nil, err
		}
		left = &ast.Unary{Op: "NOT", X: x, Pos: t.pos}
	case t.kind == 'o' && (t.text == "-" || t.text == "+"):
		p.i++
		x, err := p.expr(7)
		if err != nil {
			return nil, err
		}
		left = &ast.Unary{Op: t.text, X: x, Pos: t.pos}
	default:
		if left, err = p.primary(); err != nil {
			return nil, err
		}
	}
	for {
		t := p.peek()
		pos := t.pos
		switch {
		case p.isKw("OR") && minBP < 1:
			p.i++
			r, err := p.expr(1)
			if err != nil {
				return nil, err
			}
			left = &ast.Binary{Op: "OR", L: left, R: r, Pos: pos}
		case p.isKw("AND") && minBP < 2:
			p.i++
			r, err := p.expr(2)
			if err != nil {
				return nil, err
			}
			left = &ast.Binary{Op: "AND", L: left, R: r, Pos: pos}
		case t.kind == 'o' && minBP < 4 && (t.text == "=" || t.text == "<>" || t.text == "<" || t.text == "<=" || t.text == ">" || t.text == ">="):
			p.i++
			r, err := p.expr(4)
			if err != nil {
				return nil, err
			}
			left = &ast.Binary{Op: t.text, L: left, R: r, Pos: pos}
		case p.isKw("IS") && minBP < 4:
			p.i++
			not := p.kw("NOT")
			if p.kw("DISTINCT") {
				if !p.kw("FROM") {
					return nil, fmt.Errorf("%s: expected FROM", p.peek().pos)
				}
				r, err := p.expr(4)
				if err != nil {
					return nil, err
				}
				left = &ast.IsDistinct{L: left, R: r, Not: not, Pos: pos}
				continue
			}
			w := p.next()
			left = &ast.Is{X: left, What: strings.ToUpper(w.text), Not: not, Pos: pos}
		case minBP < 4 && (p.isKw("NOT", "LIKE") || p.isKw("LIKE") || p.isKw("SIMILAR") || p.isKw("NOT", "SIMILAR") ||
			p.isKw("BETWEEN") || p.isKw("NOT", "BETWEEN") || p.isKw("IN") || p.isKw("NOT", "IN")):
			not := p.kw("NOT")
			switch {
			case p.kw("LIKE"), p.kw("SIMILAR"):
				similar := p.toks[p.i-1].text
				if strings.EqualFold(similar, "SIMILAR") && !p.kw("TO") {
					return nil, fmt.Errorf("%s: expected TO", p.peek().pos)
				}
				pat, err := p.expr(5)
				if err != nil {
					return nil, err
				}
				l := &ast.Like{X: left, Pattern: pat, Not: not, Similar: strings.EqualFold(similar, "SIMILAR"), Pos: pos}
				if p.kw("ESCAPE") {
					if l.Escape, err = p.expr(5); err != nil {
						return nil, err
					}
				}
				left = l
			case p.kw("BETWEEN"):
				sym := p.kw("SYMMETRIC")
				p.kw("ASYMMETRIC")
				lo, err := p.expr(5)
				if err != nil {
					return nil, err
				}
				if !p.kw("AND") {
					return nil, fmt.Errorf("%s: expected AND", p.peek().pos)
				}
				hi, err := p.expr(5)
				if err != nil {
					return nil, err
				}
				left = &ast.Between{X: left, Lo: lo, Hi: hi, Not: not, Symmetric: sym, Pos: pos}
			case p.kw("IN"):
				if err := p.expect("("); err != nil {
					return nil, err
				}
				list, err := p.list()
				if err != nil {
					return nil, err
				}
				left = &ast.In{X: left, List: list, Not: not, Pos: pos}
			}
		case t.kind == 'o' && minBP < 5 && (t.text == "+" || t.text == "-" || t.text == "||"):
			p.i++
			r, err := p.expr(5)
			if err != nil {
				return nil, err
			}
			left = &ast.Binary{Op: t.text, L: left, R: r, Pos: pos}
		case t.kind == 'o' && minBP < 6 && (t.text == "*" || t.text == "/" || t.text == "%"):
			p.i++
			r, err := p.expr(6)
			if err != nil {
				return nil, err
			}
			left = &ast.Binary{Op: t.text, L: left, R: r, Pos: pos}
		default:
			return left, nil
		}
	}
}

// list reads expressions up to ")".
func (p *exprParser) list() ([]ast.Expr, error) {
	var out []ast.Expr
	if p.op(")") {
		return out, nil
	}
	for {
		e, err := p.expr(0)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
		if p.op(")") {
			return out, nil
		}
		if err := p.expect(","); err != nil {
			return nil, err
		}
	}
}

func (p *exprParser) typeName() (*ast.TypeName, error) {
	t := p.next()
	if t.kind != 'i' {
		return nil, fmt.Errorf("%s: expected a type", t.pos)
	}
	tn := &ast.TypeName{Name: strings.ToUpper(t.text), Pos: t.pos}
	if tn.Name == "DOUBLE" && p.kw("PRECISION") {
		tn.Name = "DOUBLE PRECISION"
	}
	if p.op("(") {
		for {
			n := p.next()
			var v int
			fmt.Sscan(n.text, &v)
			tn.Params = append(tn.Params, v)
			if p.op(")") {
				break
			}
			if err := p.expect(","); err != nil {
				return nil, err
			}
		}
	}
	if p.isKw("NOT", "NULL") {
		p.i += 2
		tn.NotNull = true
	}
	return tn, nil
}

func (p *exprParser) primary() (ast.Expr, error) {
	t := p.next()
	switch t.kind {
	case 'n':
		return &ast.NumberLit{Text: t.text, Pos: t.pos}, nil
	case 's':
		return &ast.StringLit{Value: t.text, Pos: t.pos}, nil
	case 'o':
		if t.text == "(" {
			e, err := p.expr(0)
			if err != nil {
				return nil, err
			}
			return e, p.expect(")")
		}
		return nil, fmt.Errorf("%s: unexpected %s", t.pos, t.text)
	case 'q':
		return p.ref(ast.Ident{Name: t.text, Quoted: true, Pos: t.pos})
	case 'e':
		return nil, fmt.Errorf("%s: unexpected end", t.pos)
	}
	up := strings.ToUpper(t.text)
	switch up {
	case "TRUE", "FALSE":
		return &ast.BoolLit{Value: up == "TRUE", Pos: t.pos}, nil
	case "NULL":
		return &ast.NullLit{Pos: t.pos}, nil
	case "INTERVAL":
		neg := p.op("-")
		v := p.next()
		if v.kind != 's' {
			return nil, fmt.Errorf("%s: expected the interval's value", v.pos)
		}
		unit := strings.ToUpper(p.next().text)
		to := ""
		if p.kw("TO") {
			to = strings.ToUpper(p.next().text)
		}
		return &ast.IntervalLit{Value: v.text, Negative: neg, Unit: unit, ToUnit: to, Pos: t.pos}, nil
	case "TIMESTAMP", "DATE", "TIME":
		if p.peek().kind == 's' {
			return &ast.TypedLit{Type: up, Value: p.next().text, Pos: t.pos}, nil
		}
	case "CASE":
		c := &ast.Case{Pos: t.pos}
		if !p.isKw("WHEN") {
			op, err := p.expr(0)
			if err != nil {
				return nil, err
			}
			c.Operand = op
		}
		for p.kw("WHEN") {
			cond, err := p.expr(0)
			if err != nil {
				return nil, err
			}
			if !p.kw("THEN") {
				return nil, fmt.Errorf("%s: expected THEN", p.peek().pos)
			}
			res, err := p.expr(0)
			if err != nil {
				return nil, err
			}
			c.Whens = append(c.Whens, ast.When{Cond: cond, Result: res})
		}
		if p.kw("ELSE") {
			e, err := p.expr(0)
			if err != nil {
				return nil, err
			}
			c.Else = e
		}
		if !p.kw("END") {
			return nil, fmt.Errorf("%s: expected END", p.peek().pos)
		}
		return c, nil
	case "CAST", "TRY_CAST":
		if p.op("(") {
			x, err := p.expr(0)
			if err != nil {
				return nil, err
			}
			if !p.kw("AS") {
				return nil, fmt.Errorf("%s: expected AS", p.peek().pos)
			}
			tn, err := p.typeName()
			if err != nil {
				return nil, err
			}
			return &ast.Cast{X: x, To: tn, Try: up == "TRY_CAST", Pos: t.pos}, p.expect(")")
		}
	case "EXTRACT":
		if p.op("(") {
			unit := strings.ToUpper(p.next().text)
			if !p.kw("FROM") {
				return nil, fmt.Errorf("%s: expected FROM", p.peek().pos)
			}
			x, err := p.expr(0)
			if err != nil {
				return nil, err
			}
			return &ast.Extract{Unit: unit, X: x, Pos: t.pos}, p.expect(")")
		}
	}
	id := ast.Ident{Name: t.text, Pos: t.pos}
	if p.op("(") {
		call := &ast.Call{Name: id, Pos: t.pos}
		call.Name.Name = up
		switch up {
		case "FLOOR", "CEIL", "CEILING":
			x, err := p.expr(0)
			if err != nil {
				return nil, err
			}
			call.Args = []ast.Expr{x}
			if p.kw("TO") {
				u := p.next()
				call.Args = append(call.Args, &ast.ColumnRef{Parts: []ast.Ident{{Name: strings.ToUpper(u.text), Pos: u.pos}}, Pos: u.pos})
			}
			return call, p.expect(")")
		case "POSITION":
			a, err := p.expr(4)
			if err != nil {
				return nil, err
			}
			if p.kw("IN") {
				b, err := p.expr(0)
				if err != nil {
					return nil, err
				}
				call.Args = []ast.Expr{a, b}
				return call, p.expect(")")
			}
			p.expect(",")
			rest, err := p.list()
			call.Args = append([]ast.Expr{a}, rest...)
			return call, err
		}
		if p.op("*") {
			call.Star = true
			return call, p.expect(")")
		}
		call.Distinct = p.kw("DISTINCT")
		args, err := p.list()
		call.Args = args
		return call, err
	}
	return p.ref(id)
}

func (p *exprParser) ref(id ast.Ident) (ast.Expr, error) {
	r := &ast.ColumnRef{Parts: []ast.Ident{id}, Pos: id.Pos}
	for p.op(".") {
		t := p.next()
		r.Parts = append(r.Parts, ast.Ident{Name: t.text, Quoted: t.kind == 'q', Pos: t.pos})
	}
	return r, nil
}
