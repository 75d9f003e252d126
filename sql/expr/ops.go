package expr

import (
	"math"
	"math/big"
	"strings"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/ast"
	"github.com/sluicehq/sluice/sql/types"
)

var null = row.Null()

type numClass uint8

const (
	clsNone numClass = iota
	clsInt
	clsDec
	clsFloat
)

func classOf(t types.Type) numClass {
	switch t.Kind {
	case types.TinyInt, types.SmallInt, types.Int, types.BigInt:
		return clsInt
	case types.Decimal:
		return clsDec
	case types.Float, types.Double:
		return clsFloat
	}
	return clsNone
}

func intRank(k types.Kind) int {
	switch k {
	case types.TinyInt:
		return 1
	case types.SmallInt:
		return 2
	case types.Int:
		return 3
	}
	return 4
}

// wrapInt truncates v to the width of an integer type, as Java's
// arithmetic wraps.
func wrapFunc(k types.Kind) func(int64) int64 {
	switch k {
	case types.TinyInt:
		return func(v int64) int64 { return int64(int8(v)) }
	case types.SmallInt:
		return func(v int64) int64 { return int64(int16(v)) }
	case types.Int:
		return func(v int64) int64 { return int64(int32(v)) }
	}
	return nil
}

// commonType is the type values of ts are converted to when they meet in
// CASE, COALESCE, IF, IN, UNION or a comparison.
func commonType(ts ...types.Type) (types.Type, bool) {
	var out types.Type
	notNull := true
	first := true
	for _, t := range ts {
		if t.Kind == types.Null {
			notNull = false
			continue
		}
		if !t.NotNull {
			notNull = false
		}
		t = t.Plain()
		if first {
			out, first = t, false
			continue
		}
		m, ok := common2(out, t)
		if !ok {
			return types.Type{}, false
		}
		out = m
	}
	if first {
		return types.TNull, true
	}
	out.NotNull = notNull
	return out, true
}

func common2(a, b types.Type) (types.Type, bool) {
	ca, cb := classOf(a), classOf(b)
	switch {
	case ca != clsNone && cb != clsNone:
		if ca == clsFloat || cb == clsFloat {
			return types.TDouble, true
		}
		if ca == clsDec || cb == clsDec {
			da, db := asDecimal(a), asDecimal(b)
			s := max(da.Scale, db.Scale)
			return capPrecision(max(da.Precision-da.Scale, db.Precision-db.Scale)+s, s), true
		}
		if intRank(a.Kind) >= intRank(b.Kind) {
			return types.Type{Kind: a.Kind}, true
		}
		return types.Type{Kind: b.Kind}, true
	case a.IsString() && b.IsString():
		if a.Kind == types.Char && b.Kind == types.Char && a.Length == b.Length {
			return types.Type{Kind: types.Char, Length: a.Length}, true
		}
		return types.TVarchar, true
	case a.IsTimestamp() && b.IsTimestamp():
		if a.Kind != b.Kind {
			return types.Type{}, false
		}
		return types.Type{Kind: a.Kind, Precision: max(a.Precision, b.Precision)}, true
	case a.Kind == types.Date && b.IsTimestamp():
		return types.Type{Kind: b.Kind, Precision: b.Precision}, true
	case b.Kind == types.Date && a.IsTimestamp():
		return types.Type{Kind: a.Kind, Precision: a.Precision}, true
	case a.Kind == b.Kind:
		switch a.Kind {
		case types.Row, types.Array, types.Map:
			if !types.Equal(a, b) {
				return types.Type{}, false
			}
		}
		a.NotNull = false
		a.Time = types.NoTimeAttr
		if a.Kind == types.Time {
			a.Precision = max(a.Precision, b.Precision)
		}
		return a, true
	}
	return types.Type{}, false
}

// ---------------------------------------------------------------- unary

func (c *Compiler) unary(n *ast.Unary, s Scope) (Compiled, error) {
	x, err := c.compile(n.X, s)
	if err != nil {
		return Compiled{}, err
	}
	switch n.Op {
	case "NOT":
		if x.Type.Kind != types.Boolean && x.Type.Kind != types.Null {
			return Compiled{}, errorf(n.Pos, "NOT needs a BOOLEAN operand, got %s", typeName(x.Type))
		}
		return fold(notOf(x)), nil
	case "+":
		if classOf(x.Type) == clsNone && x.Type.Kind != types.IntervalDayTime && x.Type.Kind != types.IntervalYearMonth && x.Type.Kind != types.Null {
			return Compiled{}, errorf(n.Pos, "unary + needs a numeric operand, got %s", typeName(x.Type))
		}
		return x, nil
	case "-":
		// Fold -literal into the literal, so that -2147483648 is an INT.
		if lit, ok := n.X.(*ast.NumberLit); ok {
			return numberLit(&ast.NumberLit{Text: "-" + lit.Text, Pos: n.Pos})
		}
		f := x.Eval
		t := x.Type.Plain()
		switch classOf(x.Type) {
		case clsFloat:
			x.Eval = func(v []row.Value) row.Value {
				a := f(v)
				if a.IsNull() {
					return a
				}
				return row.Float(-a.AsFloat())
			}
		case clsInt, clsDec:
			wrap := wrapFunc(x.Type.Kind)
			x.Eval = func(v []row.Value) row.Value {
				a := f(v)
				if a.IsNull() {
					return a
				}
				r := -a.AsInt()
				if wrap != nil {
					r = wrap(r)
				}
				return row.Int(r)
			}
		default:
			if x.Type.Kind == types.IntervalDayTime || x.Type.Kind == types.IntervalYearMonth {
				x.Eval = func(v []row.Value) row.Value {
					a := f(v)
					if a.IsNull() {
						return a
					}
					return row.Int(-a.AsInt())
				}
			} else if x.Type.Kind != types.Null {
				return Compiled{}, errorf(n.Pos, "unary - needs a numeric operand, got %s", typeName(x.Type))
			}
		}
		x.Type = t
		return fold(x), nil
	}
	return Compiled{}, errorf(n.Pos, "unknown unary operator %s", n.Op)
}

func notOf(x Compiled) Compiled {
	f := x.Eval
	return Compiled{Type: withNull(types.TBoolean, x), Const: x.Const, Eval: func(v []row.Value) row.Value {
		a := f(v)
		if a.IsNull() {
			return a
		}
		return row.Bool(!a.AsBool())
	}}
}

// --------------------------------------------------------------- binary

func (c *Compiler) binary(n *ast.Binary, s Scope) (Compiled, error) {
	l, err := c.compile(n.L, s)
	if err != nil {
		return Compiled{}, err
	}
	r, err := c.compile(n.R, s)
	if err != nil {
		return Compiled{}, err
	}
	switch n.Op {
	case "AND", "OR":
		for _, x := range []Compiled{l, r} {
			if x.Type.Kind != types.Boolean && x.Type.Kind != types.Null {
				return Compiled{}, errorf(n.Pos, "%s needs BOOLEAN operands, got %s", n.Op, typeName(x.Type))
			}
		}
		if n.Op == "AND" {
			return fold(andOf(l, r)), nil
		}
		return fold(orOf(l, r)), nil
	case "=", "<>", "<", "<=", ">", ">=":
		return c.comparison(n.Pos, n.Op, l, r)
	case "||":
		return c.concatOp(n.Pos, l, r)
	case "+", "-", "*", "/", "%":
		return c.arith(n.Pos, n.Op, l, r)
	}
	return Compiled{}, errorf(n.Pos, "unknown operator %s", n.Op)
}

// andOf is three-valued AND: FALSE wins over NULL.
func andOf(l, r Compiled) Compiled {
	lf, rf := l.Eval, r.Eval
	return Compiled{Type: withNull(types.TBoolean, l, r), Const: l.Const && r.Const, Eval: func(v []row.Value) row.Value {
		a := lf(v)
		if !a.IsNull() && !a.AsBool() {
			return a
		}
		b := rf(v)
		if b.IsNull() {
			return b
		}
		if !b.AsBool() {
			return b
		}
		return a
	}}
}

// orOf is three-valued OR: TRUE wins over NULL.
func orOf(l, r Compiled) Compiled {
	lf, rf := l.Eval, r.Eval
	return Compiled{Type: withNull(types.TBoolean, l, r), Const: l.Const && r.Const, Eval: func(v []row.Value) row.Value {
		a := lf(v)
		if a.AsBool() {
			return a
		}
		b := rf(v)
		if b.AsBool() {
			return b
		}
		if a.IsNull() || b.IsNull() {
			return null
		}
		return b
	}}
}

func (c *Compiler) concatOp(pos ast.Pos, l, r Compiled) (Compiled, error) {
	for _, x := range []Compiled{l, r} {
		if !x.Type.IsString() && x.Type.Kind != types.Null {
			return Compiled{}, errorf(pos, "|| concatenates strings, got %s; CAST it to STRING", typeName(x.Type))
		}
	}
	lf, rf := l.Eval, r.Eval
	return fold(Compiled{Type: withNull(types.TVarchar, l, r), Const: l.Const && r.Const, Eval: func(v []row.Value) row.Value {
		a := lf(v)
		if a.IsNull() {
			return a
		}
		b := rf(v)
		if b.IsNull() {
			return b
		}
		return row.String(a.AsString() + b.AsString())
	}}), nil
}

// ----------------------------------------------------------- arithmetic

// arith compiles + - * / % over numbers, times and intervals.
func (c *Compiler) arith(pos ast.Pos, op string, l, r Compiled) (Compiled, error) {
	lt, rt := l.Type, r.Type
	if lt.Kind == types.Null && rt.Kind == types.Null {
		return constant(types.TNull, null), nil
	}
	if lt.Kind == types.Null {
		lt = rt
	}
	if rt.Kind == types.Null {
		rt = lt
	}
	cl, cr := classOf(lt), classOf(rt)
	if cl != clsNone && cr != clsNone {
		out, err := c.numericArith(pos, op, l, r, lt, rt)
		if err != nil {
			return Compiled{}, err
		}
		out.Type.NotNull = !nullable(l, r) && op != "/" && op != "%" && out.Type.Kind != types.Decimal
		out.Const = l.Const && r.Const
		return fold(out), nil
	}
	out, err := c.timeArith(pos, op, l, r, lt, rt)
	if err != nil {
		return Compiled{}, err
	}
	out.Const = l.Const && r.Const
	return fold(out), nil
}

func (c *Compiler) numericArith(pos ast.Pos, op string, l, r Compiled, lt, rt types.Type) (Compiled, error) {
	cl, cr := classOf(lt), classOf(rt)
	switch {
	case cl == clsFloat || cr == clsFloat:
		l, _ = c.convert(pos, l, types.TDouble, false)
		r, _ = c.convert(pos, r, types.TDouble, false)
		return Compiled{Type: types.TDouble, Eval: floatArith(op, l.Eval, r.Eval)}, nil
	case cl == clsDec || cr == clsDec:
		return c.decimalArith(pos, op, l, r, asDecimal(lt), asDecimal(rt))
	}
	k := lt.Kind
	if intRank(rt.Kind) > intRank(k) {
		k = rt.Kind
	}
	return Compiled{Type: types.Type{Kind: k}, Eval: c.intArith(pos, op, l.Eval, r.Eval, wrapFunc(k))}, nil
}

func floatArith(op string, lf, rf EvalFunc) EvalFunc {
	var f func(a, b float64) float64
	switch op {
	case "+":
		return func(v []row.Value) row.Value {
			a := lf(v)
			if a.IsNull() {
				return a
			}
			b := rf(v)
			if b.IsNull() {
				return b
			}
			return row.Float(a.AsFloat() + b.AsFloat())
		}
	case "-":
		f = func(a, b float64) float64 { return a - b }
	case "*":
		return func(v []row.Value) row.Value {
			a := lf(v)
			if a.IsNull() {
				return a
			}
			b := rf(v)
			if b.IsNull() {
				return b
			}
			return row.Float(a.AsFloat() * b.AsFloat())
		}
	case "/":
		f = func(a, b float64) float64 { return a / b }
	case "%":
		f = math.Mod
	}
	return func(v []row.Value) row.Value {
		a := lf(v)
		if a.IsNull() {
			return a
		}
		b := rf(v)
		if b.IsNull() {
			return b
		}
		return row.Float(f(a.AsFloat(), b.AsFloat()))
	}
}

func (c *Compiler) intArith(pos ast.Pos, op string, lf, rf EvalFunc, wrap func(int64) int64) EvalFunc {
	var f func(a, b int64) int64
	switch op {
	case "+":
		f = func(a, b int64) int64 { return a + b }
	case "-":
		f = func(a, b int64) int64 { return a - b }
	case "*":
		f = func(a, b int64) int64 { return a * b }
	case "/", "%":
		div := op == "/"
		return func(v []row.Value) row.Value {
			a := lf(v)
			if a.IsNull() {
				return a
			}
			b := rf(v)
			if b.IsNull() {
				return b
			}
			d := b.AsInt()
			if d == 0 {
				return c.fail(pos, "division by zero")
			}
			var r int64
			if div {
				r = a.AsInt() / d
			} else {
				r = a.AsInt() % d
			}
			if wrap != nil {
				r = wrap(r)
			}
			return row.Int(r)
		}
	}
	if wrap == nil {
		return func(v []row.Value) row.Value {
			a := lf(v)
			if a.IsNull() {
				return a
			}
			b := rf(v)
			if b.IsNull() {
				return b
			}
			return row.Int(f(a.AsInt(), b.AsInt()))
		}
	}
	return func(v []row.Value) row.Value {
		a := lf(v)
		if a.IsNull() {
			return a
		}
		b := rf(v)
		if b.IsNull() {
			return b
		}
		return row.Int(wrap(f(a.AsInt(), b.AsInt())))
	}
}

// decimalArith follows Flink's result types: + and - take the larger
// scale and one more integer digit; * adds the scales and precisions;
// % keeps the larger scale; / (pragmatic, as the unscaled value is an
// int64) has scale max(6, s1) capped at 18 and rounds HALF_UP. A result
// that does not fit 18 digits is NULL and reported to OnError.
func (c *Compiler) decimalArith(pos ast.Pos, op string, l, r Compiled, lt, rt types.Type) (Compiled, error) {
	p1, s1, p2, s2 := lt.Precision, lt.Scale, rt.Precision, rt.Scale
	lf, rf := l.Eval, r.Eval
	bin := func(f func(a, b int64) (int64, bool)) EvalFunc {
		return func(v []row.Value) row.Value {
			a := lf(v)
			if a.IsNull() {
				return a
			}
			b := rf(v)
			if b.IsNull() {
				return b
			}
			x, ok := f(a.AsInt(), b.AsInt())
			if !ok {
				return c.fail(pos, "%v in %s", errOverflow, op)
			}
			return row.Int(x)
		}
	}
	switch op {
	case "+", "-":
		s := max(s1, s2)
		t := capPrecision(max(p1-s1, p2-s2)+s+1, s)
		ml, mr := pow10[min(s-s1, 18)], pow10[min(s-s2, 18)]
		sub := op == "-"
		return Compiled{Type: t, Eval: bin(func(a, b int64) (int64, bool) {
			var ok bool
			if ml != 1 {
				if a, ok = mulCheck(a, ml); !ok {
					return 0, false
				}
			}
			if mr != 1 {
				if b, ok = mulCheck(b, mr); !ok {
					return 0, false
				}
			}
			if sub {
				if b == math.MinInt64 {
					return 0, false
				}
				b = -b
			}
			return addCheck(a, b)
		})}, nil
	case "*":
		s := s1 + s2
		if s <= 18 {
			return Compiled{Type: capPrecision(p1+p2, s), Eval: bin(mulCheck)}, nil
		}
		// Scales beyond 18 cannot be held: round the product to 18.
		return Compiled{Type: capPrecision(p1+p2, 18), Eval: bin(func(a, b int64) (int64, bool) {
			p := new(big.Rat).SetFrac(new(big.Int).Mul(big.NewInt(a), big.NewInt(b)), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(s)), nil))
			return ratToDecimal(p, 18)
		})}, nil
	case "/":
		s := min(max(6, s1), 18)
		t := capPrecision(p1-s1+s2+s, s)
		// a/10^s1 ÷ b/10^s2 = a·10^(s-s1+s2)/b at scale s.
		e := s - s1 + s2
		return Compiled{Type: t, Eval: func(v []row.Value) row.Value {
			a := lf(v)
			if a.IsNull() {
				return a
			}
			b := rf(v)
			if b.IsNull() {
				return b
			}
			x, y := a.AsInt(), b.AsInt()
			if y == 0 {
				return c.fail(pos, "division by zero")
			}
			if e <= 18 {
				if n, ok := mulCheck(x, pow10[e]); ok {
					return row.Int(divRound(n, y))
				}
			}
			q := new(big.Rat).SetFrac(new(big.Int).Mul(big.NewInt(x), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(e)), nil)), big.NewInt(y))
			n, ok := ratToDecimal(q, 0)
			if !ok {
				return c.fail(pos, "%v in /", errOverflow)
			}
			return row.Int(n)
		}}, nil
	case "%":
		s := max(s1, s2)
		t := capPrecision(min(p1-s1, p2-s2)+s, s)
		ml, mr := pow10[min(s-s1, 18)], pow10[min(s-s2, 18)]
		return Compiled{Type: t, Eval: func(v []row.Value) row.Value {
			a := lf(v)
			if a.IsNull() {
				return a
			}
			b := rf(v)
			if b.IsNull() {
				return b
			}
			x, ok1 := mulCheck(a.AsInt(), ml)
			y, ok2 := mulCheck(b.AsInt(), mr)
			if !ok1 || !ok2 {
				return c.fail(pos, "%v in %%", errOverflow)
			}
			if y == 0 {
				return c.fail(pos, "division by zero")
			}
			return row.Int(x % y)
		}}, nil
	}
	return Compiled{}, errorf(pos, "unknown operator %s", op)
}

// timeArith: TIMESTAMP ± INTERVAL, DATE ± INTERVAL, INTERVAL ± INTERVAL,
// INTERVAL * number.
func (c *Compiler) timeArith(pos ast.Pos, op string, l, r Compiled, lt, rt types.Type) (Compiled, error) {
	isIv := func(t types.Type) bool {
		return t.Kind == types.IntervalDayTime || t.Kind == types.IntervalYearMonth
	}
	lf, rf := l.Eval, r.Eval
	both := func(f func(a, b row.Value) row.Value) EvalFunc {
		return func(v []row.Value) row.Value {
			a := lf(v)
			if a.IsNull() {
				return a
			}
			b := rf(v)
			if b.IsNull() {
				return b
			}
			return f(a, b)
		}
	}
	nn := !nullable(l, r)
	switch {
	case (lt.IsTimestamp() || lt.Kind == types.Date) && isIv(rt) && (op == "+" || op == "-"),
		isIv(lt) && (rt.IsTimestamp() || rt.Kind == types.Date) && op == "+":
		ts, iv := lf, rf
		tt, it := lt, rt
		if isIv(lt) {
			ts, iv, tt, it = rf, lf, rt, lt
		}
		sign := int64(1)
		if op == "-" {
			sign = -1
		}
		out := types.Type{Kind: tt.Kind, Precision: tt.Precision, NotNull: nn}
		date := tt.Kind == types.Date
		if it.Kind == types.IntervalYearMonth {
			return Compiled{Type: out, Eval: func(v []row.Value) row.Value {
				a := ts(v)
				if a.IsNull() {
					return a
				}
				b := iv(v)
				if b.IsNull() {
					return b
				}
				r, ok := addMonthsChecked(a.AsInt(), sign*b.AsInt(), date)
				if !ok {
					return c.fail(pos, "%s in %s", errTimeRange, op)
				}
				if date {
					return row.Int(r)
				}
				return row.Timestamp(r)
			}}, nil
		}
		if date {
			return Compiled{Type: out, Eval: func(v []row.Value) row.Value {
				a := ts(v)
				if a.IsNull() {
					return a
				}
				b := iv(v)
				if b.IsNull() {
					return b
				}
				if !daysInRange(a.AsInt()) {
					return c.fail(pos, "%s in %s", errTimeRange, op)
				}
				r, ok := addSpan(a.AsInt()*msPerDay, sign*floorDiv(b.AsInt(), msPerDay), msPerDay)
				if !ok {
					return c.fail(pos, "%s in %s", errTimeRange, op)
				}
				return row.Int(r / msPerDay)
			}}, nil
		}
		return Compiled{Type: out, Eval: func(v []row.Value) row.Value {
			a := ts(v)
			if a.IsNull() {
				return a
			}
			b := iv(v)
			if b.IsNull() {
				return b
			}
			r, ok := addSpan(a.AsInt(), sign, b.AsInt())
			if !ok {
				return c.fail(pos, "%s in %s", errTimeRange, op)
			}
			return row.Timestamp(r)
		}}, nil
	case isIv(lt) && lt.Kind == rt.Kind && (op == "+" || op == "-"):
		sign := int64(1)
		if op == "-" {
			sign = -1
		}
		return Compiled{Type: types.Type{Kind: lt.Kind, NotNull: nn}, Eval: both(func(a, b row.Value) row.Value {
			return row.Int(a.AsInt() + sign*b.AsInt())
		})}, nil
	case isIv(lt) && classOf(rt) != clsNone && (op == "*" || op == "/"),
		isIv(rt) && classOf(lt) != clsNone && op == "*":
		iv, n, it, nt := lf, rf, lt, rt
		if isIv(rt) {
			iv, n, it, nt = rf, lf, rt, lt
		}
		toF := floatOf(nt)
		div := op == "/"
		return Compiled{Type: types.Type{Kind: it.Kind}, Eval: func(v []row.Value) row.Value {
			a := iv(v)
			if a.IsNull() {
				return a
			}
			b := n(v)
			if b.IsNull() {
				return b
			}
			f := toF(b)
			if div {
				if f == 0 {
					return c.fail(pos, "division by zero")
				}
				return intervalOf(c, pos, op, float64(a.AsInt())/f)
			}
			return intervalOf(c, pos, op, float64(a.AsInt())*f)
		}}, nil
	}
	if lt.IsString() || rt.IsString() {
		if op == "+" {
			return Compiled{}, errorf(pos, "cannot apply + to %s and %s; use || or CONCAT to join strings, or CAST the string to a number", typeName(lt), typeName(rt))
		}
	}
	return Compiled{}, errorf(pos, "cannot apply %s to %s and %s", op, typeName(lt), typeName(rt))
}

// intervalOf rounds an interval scaled by * or / to whole units (months
// or milliseconds); NULL, reported, when it is not finite or leaves the
// span of the TIMESTAMP range (its int64 conversion would be undefined).
func intervalOf(c *Compiler, pos ast.Pos, op string, f float64) row.Value {
	f = math.Round(f)
	if !(f >= minMillis-maxMillis && f <= maxMillis-minMillis) { // NaN too
		return c.fail(pos, "INTERVAL overflow in %s: the result is too long for the TIMESTAMP range", op)
	}
	return row.Int(int64(f))
}

// floatOf returns a converter of a numeric value of type t to float64.
func floatOf(t types.Type) func(row.Value) float64 {
	switch classOf(t) {
	case clsDec:
		s := t.Scale
		return func(v row.Value) float64 { return decimalToFloat(v.AsInt(), s) }
	case clsInt:
		return func(v row.Value) float64 { return float64(v.AsInt()) }
	}
	return row.Value.AsFloat
}

// addMonthsDays adds months to a date, clamping the day to the month's
// end (2020-01-31 + 1 month = 2020-02-29).
func addMonthsDays(days, months int64) int64 {
	y, m, d := civil(days)
	total := y*12 + int64(m-1) + months
	ny, nm := floorDiv(total, 12), int(floorMod(total, 12))+1
	return daysFromCivil(ny, nm, min(d, daysInMonth(ny, nm)))
}

func addMonthsMillis(ms, months int64) int64 {
	days := floorDiv(ms, msPerDay)
	return addMonthsDays(days, months)*msPerDay + (ms - days*msPerDay)
}

// ------------------------------------------------------------ comparison

// comparison compiles l op r for op in = <> < <= > >=.
func (c *Compiler) comparison(pos ast.Pos, op string, l, r Compiled) (Compiled, error) {
	cmp, err := c.comparator(pos, l, r)
	if err != nil {
		return Compiled{}, err
	}
	var test func(int) bool
	switch op {
	case "=":
		test = func(x int) bool { return x == 0 }
	case "<>":
		test = func(x int) bool { return x != 0 }
	case "<":
		test = func(x int) bool { return x < 0 }
	case "<=":
		test = func(x int) bool { return x <= 0 }
	case ">":
		test = func(x int) bool { return x > 0 }
	case ">=":
		test = func(x int) bool { return x >= 0 }
	}
	out := Compiled{Type: withNull(types.TBoolean, l, r), Const: l.Const && r.Const}
	// Fast paths: integers against a constant.
	lf, rf := cmp.l, cmp.r
	if cmp.kind == cmpInt && r.Const {
		b := rf(nil)
		if b.IsNull() {
			return constant(types.TBoolean, null), nil
		}
		out.Eval = intConstCmp(op, lf, b.AsInt())
		return fold(out), nil
	}
	if cmp.kind == cmpString && r.Const && (op == "=" || op == "<>") {
		b := rf(nil)
		if b.IsNull() {
			return constant(types.TBoolean, null), nil
		}
		k, eq := b.AsString(), op == "="
		out.Eval = func(v []row.Value) row.Value {
			a := lf(v)
			if a.IsNull() {
				return a
			}
			return row.Bool((a.AsString() == k) == eq)
		}
		return fold(out), nil
	}
	f := cmp.f
	out.Eval = func(v []row.Value) row.Value {
		a := lf(v)
		if a.IsNull() {
			return a
		}
		b := rf(v)
		if b.IsNull() {
			return b
		}
		return row.Bool(test(f(a, b)))
	}
	return fold(out), nil
}

type cmpKind uint8

const (
	cmpOther cmpKind = iota
	cmpInt
	cmpString
)

// intConstCmp compares integers with a constant, one closure per
// operator.
func intConstCmp(op string, lf EvalFunc, k int64) EvalFunc {
	switch op {
	case "=":
		return func(v []row.Value) row.Value {
			a := lf(v)
			if a.IsNull() {
				return a
			}
			return row.Bool(a.AsInt() == k)
		}
	case "<>":
		return func(v []row.Value) row.Value {
			a := lf(v)
			if a.IsNull() {
				return a
			}
			return row.Bool(a.AsInt() != k)
		}
	case "<":
		return func(v []row.Value) row.Value {
			a := lf(v)
			if a.IsNull() {
				return a
			}
			return row.Bool(a.AsInt() < k)
		}
	case "<=":
		return func(v []row.Value) row.Value {
			a := lf(v)
			if a.IsNull() {
				return a
			}
			return row.Bool(a.AsInt() <= k)
		}
	case ">":
		return func(v []row.Value) row.Value {
			a := lf(v)
			if a.IsNull() {
				return a
			}
			return row.Bool(a.AsInt() > k)
		}
	}
	return func(v []row.Value) row.Value {
		a := lf(v)
		if a.IsNull() {
			return a
		}
		return row.Bool(a.AsInt() >= k)
	}
}

// comparer holds both sides converted to a common representation and the
// function ordering two non-null values of it.
type comparer struct {
	l, r EvalFunc
	f    func(a, b row.Value) int
	kind cmpKind
}

func cmp3[T int64 | float64 | string](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpInts(a, b row.Value) int    { return cmp3(a.AsInt(), b.AsInt()) }
func cmpFloats(a, b row.Value) int  { return cmp3(a.AsFloat(), b.AsFloat()) }
func cmpStrings(a, b row.Value) int { return strings.Compare(a.AsString(), b.AsString()) }
func cmpBools(a, b row.Value) int {
	x, y := a.AsBool(), b.AsBool()
	switch {
	case x == y:
		return 0
	case !x:
		return -1
	}
	return 1
}

// comparator brings l and r to a common type and returns their order.
func (c *Compiler) comparator(pos ast.Pos, l, r Compiled) (comparer, error) {
	lt, rt := l.Type, r.Type
	if lt.Kind == types.Null {
		lt = rt
	}
	if rt.Kind == types.Null {
		rt = lt
	}
	// A string meets a time: the string is parsed (Flink's implicit cast).
	if lt.IsString() && (rt.IsTimestamp() || rt.Kind == types.Date || rt.Kind == types.Time) {
		l, _ = c.convert(pos, l, rt, false)
		lt = rt
	} else if rt.IsString() && (lt.IsTimestamp() || lt.Kind == types.Date || lt.Kind == types.Time) {
		r, _ = c.convert(pos, r, lt, false)
		rt = lt
	}
	if lt.Kind == types.Null {
		return comparer{l: l.Eval, r: r.Eval, f: cmpInts}, nil
	}
	ct, ok := common2(lt.Plain(), rt.Plain())
	if !ok || ct.Kind == types.Row || ct.Kind == types.Array || ct.Kind == types.Map {
		return comparer{}, errorf(pos, "cannot compare %s with %s; CAST one side", typeName(lt), typeName(rt))
	}
	if classOf(ct) == clsDec {
		// Compare decimals exactly whatever their scales.
		dl, dr := asDecimal(lt), asDecimal(rt)
		if dl.Scale == dr.Scale {
			return comparer{l: l.Eval, r: r.Eval, f: cmpInts, kind: cmpInt}, nil
		}
		sl, sr := dl.Scale, dr.Scale
		if r.Const && sl > sr {
			// Bring the constant to the column's scale once.
			if v := r.Eval(nil); !v.IsNull() {
				if k, ok := rescale(v.AsInt(), sr, sl); ok {
					kv := row.Int(k)
					return comparer{l: l.Eval, r: func([]row.Value) row.Value { return kv }, f: cmpInts, kind: cmpInt}, nil
				}
			}
		}
		return comparer{l: l.Eval, r: r.Eval, f: func(a, b row.Value) int { return cmpDecimal(a.AsInt(), sl, b.AsInt(), sr) }}, nil
	}
	var err error
	if l, err = c.convert(pos, l, ct, false); err != nil {
		return comparer{}, err
	}
	if r, err = c.convert(pos, r, ct, false); err != nil {
		return comparer{}, err
	}
	cm := comparer{l: l.Eval, r: r.Eval}
	switch ct.Storage() {
	case row.KindInt, row.KindTimestamp:
		cm.f, cm.kind = cmpInts, cmpInt
	case row.KindFloat:
		cm.f = cmpFloats
	case row.KindString:
		cm.f, cm.kind = cmpStrings, cmpString
	case row.KindBool:
		cm.f = cmpBools
	default:
		return comparer{}, errorf(pos, "cannot compare %s with %s; CAST one side", typeName(lt), typeName(rt))
	}
	return cm, nil
}

// cmpDecimal orders a·10^-sa and b·10^-sb exactly.
func cmpDecimal(a int64, sa int, b int64, sb int) int {
	if sa < sb {
		if x, ok := rescale(a, sa, sb); ok {
			return cmp3(x, b)
		}
	} else if y, ok := rescale(b, sb, sa); ok {
		return cmp3(a, y)
	}
	x := new(big.Rat).SetFrac(big.NewInt(a), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(sa)), nil))
	y := new(big.Rat).SetFrac(big.NewInt(b), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(sb)), nil))
	return x.Cmp(y)
}

// --------------------------------------------------- BETWEEN, IN, IS ...

func (c *Compiler) between(n *ast.Between, s Scope) (Compiled, error) {
	x, err := c.compile(n.X, s)
	if err != nil {
		return Compiled{}, err
	}
	lo, err := c.compile(n.Lo, s)
	if err != nil {
		return Compiled{}, err
	}
	hi, err := c.compile(n.Hi, s)
	if err != nil {
		return Compiled{}, err
	}
	ge, err := c.comparison(n.Pos, ">=", x, lo)
	if err != nil {
		return Compiled{}, err
	}
	le, err := c.comparison(n.Pos, "<=", x, hi)
	if err != nil {
		return Compiled{}, err
	}
	out := andOf(ge, le)
	if n.Symmetric {
		ge2, _ := c.comparison(n.Pos, ">=", x, hi)
		le2, _ := c.comparison(n.Pos, "<=", x, lo)
		out = orOf(out, andOf(ge2, le2))
	}
	if n.Not {
		out = notOf(out)
	}
	return fold(out), nil
}

func (c *Compiler) in(n *ast.In, s Scope) (Compiled, error) {
	if n.Query != nil {
		return Compiled{}, errorf(n.Pos, "IN (subquery) is not supported in this expression; rewrite it as a join")
	}
	x, err := c.compile(n.X, s)
	if err != nil {
		return Compiled{}, err
	}
	items := make([]Compiled, len(n.List))
	consts := true
	for i, e := range n.List {
		if items[i], err = c.compile(e, s); err != nil {
			return Compiled{}, err
		}
		if _, err := c.comparator(e.Start(), x, items[i]); err != nil {
			return Compiled{}, err
		}
		consts = consts && items[i].Const
	}
	ts := []types.Type{x.Type}
	for _, it := range items {
		ts = append(ts, it.Type)
	}
	ct, ok := commonType(ts...)
	if !ok {
		return Compiled{}, errorf(n.Pos, "the values of IN have incompatible types; CAST them to %s", typeName(x.Type))
	}
	out := Compiled{Type: withNull(types.TBoolean, append(items, x)...), Const: x.Const && consts}
	st := ct.Storage()
	if consts && (st == row.KindInt || st == row.KindString || st == row.KindTimestamp) && classOf(ct) != clsDec {
		// A hash set of the constants.
		xc, err := c.convert(n.Pos, x, ct, false)
		if err != nil {
			return Compiled{}, err
		}
		hasNull := false
		ints := map[int64]struct{}{}
		strs := map[string]struct{}{}
		for _, it := range items {
			it, err := c.convert(n.Pos, it, ct, false)
			if err != nil {
				return Compiled{}, err
			}
			v := it.Eval(nil)
			switch {
			case v.IsNull():
				hasNull = true
			case st == row.KindString:
				strs[v.AsString()] = struct{}{}
			default:
				ints[v.AsInt()] = struct{}{}
			}
		}
		xf := xc.Eval
		not := n.Not
		str := st == row.KindString
		out.Eval = func(v []row.Value) row.Value {
			a := xf(v)
			if a.IsNull() {
				return a
			}
			var found bool
			if str {
				_, found = strs[a.AsString()]
			} else {
				_, found = ints[a.AsInt()]
			}
			if found {
				return row.Bool(!not)
			}
			if hasNull {
				return null
			}
			return row.Bool(not)
		}
		return fold(out), nil
	}
	eqs := make([]Compiled, len(items))
	for i, it := range items {
		if eqs[i], err = c.comparison(n.Pos, "=", x, it); err != nil {
			return Compiled{}, err
		}
	}
	acc := eqs[0]
	for _, e := range eqs[1:] {
		acc = orOf(acc, e)
	}
	if n.Not {
		acc = notOf(acc)
	}
	acc.Type = out.Type
	return fold(acc), nil
}

func (c *Compiler) is(n *ast.Is, s Scope) (Compiled, error) {
	x, err := c.compile(n.X, s)
	if err != nil {
		return Compiled{}, err
	}
	f := x.Eval
	not := n.Not
	var test func(row.Value) bool
	switch strings.ToUpper(n.What) {
	case "NULL":
		test = row.Value.IsNull
	case "TRUE", "FALSE", "UNKNOWN":
		if x.Type.Kind != types.Boolean && x.Type.Kind != types.Null {
			return Compiled{}, errorf(n.Pos, "IS %s needs a BOOLEAN operand, got %s", n.What, typeName(x.Type))
		}
		switch strings.ToUpper(n.What) {
		case "TRUE":
			test = func(v row.Value) bool { return v.AsBool() }
		case "FALSE":
			test = func(v row.Value) bool { return !v.IsNull() && !v.AsBool() }
		default:
			test = row.Value.IsNull
		}
	default:
		return Compiled{}, errorf(n.Pos, "unknown IS %s (use NULL, TRUE, FALSE or UNKNOWN)", n.What)
	}
	return fold(Compiled{Type: types.TBoolean.WithNull(true), Const: x.Const, Eval: func(v []row.Value) row.Value {
		return row.Bool(test(f(v)) != not)
	}}), nil
}

func (c *Compiler) isDistinct(n *ast.IsDistinct, s Scope) (Compiled, error) {
	l, err := c.compile(n.L, s)
	if err != nil {
		return Compiled{}, err
	}
	r, err := c.compile(n.R, s)
	if err != nil {
		return Compiled{}, err
	}
	cm, err := c.comparator(n.Pos, l, r)
	if err != nil {
		return Compiled{}, err
	}
	not := n.Not
	lf, rf, f := cm.l, cm.r, cm.f
	return fold(Compiled{Type: types.TBoolean.WithNull(true), Const: l.Const && r.Const, Eval: func(v []row.Value) row.Value {
		a, b := lf(v), rf(v)
		var distinct bool
		switch {
		case a.IsNull() || b.IsNull():
			distinct = a.IsNull() != b.IsNull()
		default:
			distinct = f(a, b) != 0
		}
		return row.Bool(distinct != not)
	}}), nil
}

// ------------------------------------------------------------------ CASE

func (c *Compiler) caseExpr(n *ast.Case, s Scope) (Compiled, error) {
	var operand Compiled
	var err error
	if n.Operand != nil {
		if operand, err = c.compile(n.Operand, s); err != nil {
			return Compiled{}, err
		}
	}
	conds := make([]Compiled, len(n.Whens))
	results := make([]Compiled, len(n.Whens), len(n.Whens)+1)
	for i, w := range n.Whens {
		cond, err := c.compile(w.Cond, s)
		if err != nil {
			return Compiled{}, err
		}
		if n.Operand != nil {
			if cond, err = c.comparison(w.Cond.Start(), "=", operand, cond); err != nil {
				return Compiled{}, err
			}
		} else if cond.Type.Kind != types.Boolean && cond.Type.Kind != types.Null {
			return Compiled{}, errorf(w.Cond.Start(), "a WHEN condition must be BOOLEAN, not %s", typeName(cond.Type))
		}
		conds[i] = cond
		if results[i], err = c.compile(w.Result, s); err != nil {
			return Compiled{}, err
		}
	}
	var elseC Compiled
	if n.Else != nil {
		if elseC, err = c.compile(n.Else, s); err != nil {
			return Compiled{}, err
		}
	} else {
		elseC = constant(types.TNull, null)
	}
	all := append(results, elseC)
	ts := make([]types.Type, len(all))
	for i, r := range all {
		ts[i] = r.Type
	}
	ct, ok := commonType(ts...)
	if !ok {
		return Compiled{}, errorf(n.Pos, "the results of CASE have incompatible types (%s); CAST them to one type", typeList(ts))
	}
	return c.caseOf(n.Pos, conds, all, ct)
}

// caseOf builds the evaluation of CASE from conditions and results (the
// last result is ELSE).
func (c *Compiler) caseOf(pos ast.Pos, conds, results []Compiled, ct types.Type) (Compiled, error) {
	rs := make([]EvalFunc, len(results))
	cs := make([]EvalFunc, len(conds))
	isConst := true
	for i, r := range results {
		r, err := c.convert(pos, r, ct, false)
		if err != nil {
			return Compiled{}, err
		}
		rs[i] = r.Eval
		isConst = isConst && r.Const
	}
	for i, cd := range conds {
		cs[i] = cd.Eval
		isConst = isConst && cd.Const
	}
	out := Compiled{Type: ct, Const: isConst}
	if len(cs) == 1 {
		c0, r0, r1 := cs[0], rs[0], rs[1]
		out.Eval = func(v []row.Value) row.Value {
			if c0(v).AsBool() {
				return r0(v)
			}
			return r1(v)
		}
		return fold(out), nil
	}
	elseF := rs[len(rs)-1]
	out.Eval = func(v []row.Value) row.Value {
		for i, cf := range cs {
			if cf(v).AsBool() {
				return rs[i](v)
			}
		}
		return elseF(v)
	}
	return fold(out), nil
}

func typeList(ts []types.Type) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = typeName(t)
	}
	return strings.Join(parts, ", ")
}
