package expr

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/ast"
	"github.com/sluicehq/sluice/sql/types"
)

// likeToken is one element of a LIKE pattern: literal text, '_' (one
// character) or '%' (any characters).
type likeToken struct {
	kind byte // 'l' literal, '_', '%'
	text string
}

// likeMatcher is a LIKE pattern compiled once.
type likeMatcher struct {
	match func(s string) bool
}

// compileLike compiles a LIKE pattern; escape is 0 for none. With an
// escape character, it must be followed by %, _ or itself.
func compileLike(p string, escape rune) (*likeMatcher, error) {
	var toks []likeToken
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			toks = append(toks, likeToken{kind: 'l', text: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(p); {
		r, size := utf8.DecodeRuneInString(p[i:])
		i += size
		switch {
		case escape != 0 && r == escape:
			if i >= len(p) {
				return nil, fmt.Errorf("LIKE pattern %q ends with the escape character", p)
			}
			n, nsize := utf8.DecodeRuneInString(p[i:])
			if n != '%' && n != '_' && n != escape {
				return nil, fmt.Errorf("invalid escape sequence in LIKE pattern %q: the escape character must be followed by %%, _ or itself", p)
			}
			lit.WriteRune(n)
			i += nsize
		case r == '%':
			flush()
			if len(toks) == 0 || toks[len(toks)-1].kind != '%' {
				toks = append(toks, likeToken{kind: '%'})
			}
		case r == '_':
			flush()
			toks = append(toks, likeToken{kind: '_'})
		default:
			lit.WriteRune(r)
		}
	}
	flush()
	// Fast shapes.
	switch {
	case len(toks) == 0:
		return &likeMatcher{match: func(s string) bool { return s == "" }}, nil
	case len(toks) == 1 && toks[0].kind == 'l':
		t := toks[0].text
		return &likeMatcher{match: func(s string) bool { return s == t }}, nil
	case len(toks) == 1 && toks[0].kind == '%':
		return &likeMatcher{match: func(string) bool { return true }}, nil
	case len(toks) == 2 && toks[0].kind == 'l' && toks[1].kind == '%':
		t := toks[0].text
		return &likeMatcher{match: func(s string) bool { return strings.HasPrefix(s, t) }}, nil
	case len(toks) == 2 && toks[0].kind == '%' && toks[1].kind == 'l':
		t := toks[1].text
		return &likeMatcher{match: func(s string) bool { return strings.HasSuffix(s, t) }}, nil
	case len(toks) == 3 && toks[0].kind == '%' && toks[1].kind == 'l' && toks[2].kind == '%':
		t := toks[1].text
		return &likeMatcher{match: func(s string) bool { return strings.Contains(s, t) }}, nil
	}
	return &likeMatcher{match: func(s string) bool { return likeMatch(toks, s) }}, nil
}

// likeMatch matches tokens against s, backtracking to the last % only
// (O(len(toks)·len(s)) at worst); a literal after % is found with
// strings.Index rather than tried at every position.
func likeMatch(toks []likeToken, s string) bool {
	ti, si := 0, 0
	starT, starS := -1, 0
	// seek moves starS to the next place the token after the last %
	// can match; false when there is none.
	seek := func() bool {
		if starT+1 < len(toks) && toks[starT+1].kind == 'l' {
			i := strings.Index(s[starS:], toks[starT+1].text)
			if i < 0 {
				return false
			}
			starS += i
		}
		return true
	}
	for {
		if ti < len(toks) {
			t := toks[ti]
			switch t.kind {
			case '%':
				starT, starS = ti, si
				if !seek() {
					return false
				}
				ti, si = ti+1, starS
				continue
			case '_':
				if si < len(s) {
					_, size := utf8.DecodeRuneInString(s[si:])
					si += size
					ti++
					continue
				}
			case 'l':
				if strings.HasPrefix(s[si:], t.text) {
					si += len(t.text)
					ti++
					continue
				}
			}
		} else if si == len(s) {
			return true
		}
		// mismatch: let the last % take one more character
		if starT < 0 || starS >= len(s) {
			return false
		}
		_, size := utf8.DecodeRuneInString(s[starS:])
		starS += size
		if !seek() {
			return false
		}
		ti, si = starT+1, starS
	}
}

// similarToRegexp translates a SQL SIMILAR TO pattern into an anchored
// regular expression: % and _ become .* and ., the regular expression
// operators | * + ? {m,n} ( ) [ ] keep their meaning, everything else is
// literal.
func similarToRegexp(p string, escape rune) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString(`^(?s:`)
	inClass := false
	for i := 0; i < len(p); {
		r, size := utf8.DecodeRuneInString(p[i:])
		i += size
		switch {
		case escape != 0 && r == escape:
			if i >= len(p) {
				return nil, errors.New("the pattern ends with the escape character")
			}
			n, nsize := utf8.DecodeRuneInString(p[i:])
			i += nsize
			b.WriteString(regexp.QuoteMeta(string(n)))
		case inClass:
			if r == ']' {
				inClass = false
			}
			if r == '\\' {
				b.WriteString(`\\`)
			} else {
				b.WriteRune(r)
			}
		case r == '%':
			b.WriteString(".*")
		case r == '_':
			b.WriteString(".")
		case r == '[':
			inClass = true
			b.WriteRune(r)
		case strings.ContainsRune("|*+?{}()", r):
			b.WriteRune(r)
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString(`)$`)
	return regexp.Compile(b.String())
}

func (c *Compiler) like(n *ast.Like, s Scope) (Compiled, error) {
	x, err := c.compile(n.X, s)
	if err != nil {
		return Compiled{}, err
	}
	pat, err := c.compile(n.Pattern, s)
	if err != nil {
		return Compiled{}, err
	}
	op := "LIKE"
	if n.Similar {
		op = "SIMILAR TO"
	}
	for _, a := range []Compiled{x, pat} {
		if !a.Type.IsString() && a.Type.Kind != types.Null {
			return Compiled{}, errorf(n.Pos, "%s needs strings, got %s; CAST it to STRING", op, typeName(a.Type))
		}
	}
	var escape rune
	if n.Escape != nil {
		e, err := c.compile(n.Escape, s)
		if err != nil {
			return Compiled{}, err
		}
		v := e.Eval(nil)
		if !e.Const || !e.Type.IsString() || utf8.RuneCountInString(v.AsString()) != 1 {
			return Compiled{}, errorf(n.Escape.Start(), "ESCAPE needs a constant string of one character")
		}
		escape, _ = utf8.DecodeRuneInString(v.AsString())
	}
	compile := func(p string) (func(string) bool, error) {
		if n.Similar {
			re, err := similarToRegexp(p, escape)
			if err != nil {
				return nil, fmt.Errorf("invalid SIMILAR TO pattern %q: %v", p, err)
			}
			return re.MatchString, nil
		}
		m, err := compileLike(p, escape)
		if err != nil {
			return nil, err
		}
		return m.match, nil
	}
	out := Compiled{Type: withNull(types.TBoolean, x, pat), Const: x.Const && pat.Const}
	not := n.Not
	xf := x.Eval
	if pat.Const {
		pv := pat.Eval(nil)
		if pv.IsNull() {
			return constant(types.TBoolean, null), nil
		}
		m, err := compile(pv.AsString())
		if err != nil {
			return Compiled{}, errorf(n.Pattern.Start(), "%v", err)
		}
		out.Eval = func(v []row.Value) row.Value {
			a := xf(v)
			if a.IsNull() {
				return a
			}
			return row.Bool(m(a.AsString()) != not)
		}
		return fold(out), nil
	}
	var mu sync.Mutex
	var lastP string
	var last func(string) bool
	pf := pat.Eval
	pos := n.Pos
	out.Eval = func(v []row.Value) row.Value {
		a := xf(v)
		if a.IsNull() {
			return a
		}
		p := pf(v)
		if p.IsNull() {
			return p
		}
		mu.Lock()
		m := last
		if m == nil || lastP != p.AsString() {
			var err error
			if m, err = compile(p.AsString()); err != nil {
				mu.Unlock()
				return c.fail(pos, "%v", err)
			}
			last, lastP = m, p.AsString()
		}
		mu.Unlock()
		return row.Bool(m(a.AsString()) != not)
	}
	return out, nil
}
