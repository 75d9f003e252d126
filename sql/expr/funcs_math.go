package expr

import (
	"math"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/types"
)

// map1 applies g to a non-null value; NULL in, NULL out.
func map1(f EvalFunc, g func(row.Value) row.Value) EvalFunc {
	return func(v []row.Value) row.Value {
		a := f(v)
		if a.IsNull() {
			return a
		}
		return g(a)
	}
}

// map2 applies g to two non-null values; any NULL in, NULL out.
func map2(f1, f2 EvalFunc, g func(a, b row.Value) row.Value) EvalFunc {
	return func(v []row.Value) row.Value {
		a := f1(v)
		if a.IsNull() {
			return a
		}
		b := f2(v)
		if b.IsNull() {
			return b
		}
		return g(a, b)
	}
}

// mapN applies g to the arguments' values; any NULL in, NULL out.
func mapN(args []Compiled, g func(vals []row.Value) row.Value) EvalFunc {
	fs := evals(args)
	return func(v []row.Value) row.Value {
		vals := make([]row.Value, len(fs))
		for i, f := range fs {
			vals[i] = f(v)
			if vals[i].IsNull() {
				return null
			}
		}
		return g(vals)
	}
}

func evals(args []Compiled) []EvalFunc {
	fs := make([]EvalFunc, len(args))
	for i, a := range args {
		fs[i] = a.Eval
	}
	return fs
}

// toDouble converts a numeric argument to DOUBLE.
func (b *call) toDouble(i int) (EvalFunc, error) {
	if err := b.wantNumeric(i); err != nil {
		return nil, err
	}
	x, err := b.c.convert(b.pos(), b.args[i], types.TDouble, false)
	if err != nil {
		return nil, err
	}
	return x.Eval, nil
}

func registerMath(r *Registry) {
	double1 := func(fn func(float64) float64, domain func(float64) bool) func(b *call) (Compiled, error) {
		return func(b *call) (Compiled, error) {
			if err := b.argc(1, 1); err != nil {
				return Compiled{}, err
			}
			f, err := b.toDouble(0)
			if err != nil {
				return Compiled{}, err
			}
			return b.result(types.TDouble, map1(f, func(a row.Value) row.Value {
				x := a.AsFloat()
				if domain != nil && !domain(x) {
					return b.c.fail(b.pos(), "%s(%v) is undefined", b.name, x)
				}
				return row.Float(fn(x))
			}))
		}
	}
	positive := func(x float64) bool { return x > 0 }
	r.det("SQRT", double1(math.Sqrt, func(x float64) bool { return x >= 0 }))
	r.det("LN", double1(math.Log, positive))
	r.det("LOG10", double1(math.Log10, positive))
	r.det("LOG2", double1(math.Log2, positive))
	r.det("EXP", double1(math.Exp, nil))
	r.det("SIN", double1(math.Sin, nil))
	r.det("COS", double1(math.Cos, nil))
	r.det("TAN", double1(math.Tan, nil))
	r.det("DEGREES", double1(func(x float64) float64 { return x * 180 / math.Pi }, nil))
	r.det("RADIANS", double1(func(x float64) float64 { return x * math.Pi / 180 }, nil))
	r.det("PI", func(b *call) (Compiled, error) {
		if err := b.argc(0, 0); err != nil {
			return Compiled{}, err
		}
		return constant(types.TDouble.WithNull(true), row.Float(math.Pi)), nil
	})
	r.det("LOG", func(b *call) (Compiled, error) {
		if err := b.argc(1, 2); err != nil {
			return Compiled{}, err
		}
		if len(b.args) == 1 {
			return double1(math.Log, positive)(b)
		}
		base, err := b.toDouble(0)
		if err != nil {
			return Compiled{}, err
		}
		x, err := b.toDouble(1)
		if err != nil {
			return Compiled{}, err
		}
		return b.result(types.TDouble, map2(base, x, func(a, c row.Value) row.Value {
			if a.AsFloat() <= 0 || a.AsFloat() == 1 || c.AsFloat() <= 0 {
				return b.c.fail(b.pos(), "LOG(%v, %v) is undefined", a.AsFloat(), c.AsFloat())
			}
			return row.Float(math.Log(c.AsFloat()) / math.Log(a.AsFloat()))
		}))
	})
	power := func(b *call) (Compiled, error) {
		if err := b.argc(2, 2); err != nil {
			return Compiled{}, err
		}
		x, err := b.toDouble(0)
		if err != nil {
			return Compiled{}, err
		}
		y, err := b.toDouble(1)
		if err != nil {
			return Compiled{}, err
		}
		return b.result(types.TDouble, map2(x, y, func(a, c row.Value) row.Value {
			return row.Float(math.Pow(a.AsFloat(), c.AsFloat()))
		}))
	}
	r.det("POWER", power)
	r.det("POW", power)
	r.det("ABS", func(b *call) (Compiled, error) {
		if err := b.argc(1, 1); err != nil {
			return Compiled{}, err
		}
		if err := b.wantNumeric(0); err != nil {
			return Compiled{}, err
		}
		x := b.args[0]
		t := x.Type.Plain()
		if classOf(t) == clsFloat {
			return b.result(t, map1(x.Eval, func(a row.Value) row.Value { return row.Float(math.Abs(a.AsFloat())) }))
		}
		wrap := wrapFunc(t.Kind)
		return b.result(t, map1(x.Eval, func(a row.Value) row.Value {
			i := a.AsInt()
			if i < 0 {
				i = -i
			}
			if wrap != nil && classOf(t) == clsInt {
				i = wrap(i)
			}
			return row.Int(i)
		}))
	})
	r.det("SIGN", func(b *call) (Compiled, error) {
		if err := b.argc(1, 1); err != nil {
			return Compiled{}, err
		}
		if err := b.wantNumeric(0); err != nil {
			return Compiled{}, err
		}
		x := b.args[0]
		t := x.Type.Plain()
		switch classOf(t) {
		case clsFloat:
			return b.result(t, map1(x.Eval, func(a row.Value) row.Value {
				f := a.AsFloat()
				switch {
				case f > 0:
					return row.Float(1)
				case f < 0:
					return row.Float(-1)
				}
				return row.Float(f)
			}))
		case clsDec:
			one := pow10[min(t.Scale, 18)]
			return b.result(t, map1(x.Eval, func(a row.Value) row.Value {
				return row.Int(int64(cmp3(a.AsInt(), 0)) * one)
			}))
		}
		return b.result(t, map1(x.Eval, func(a row.Value) row.Value { return row.Int(int64(cmp3(a.AsInt(), 0))) }))
	})
	r.det("MOD", func(b *call) (Compiled, error) {
		if err := b.argc(2, 2); err != nil {
			return Compiled{}, err
		}
		for i := range 2 {
			if err := b.wantNumeric(i); err != nil {
				return Compiled{}, err
			}
		}
		return b.c.arith(b.pos(), "%", b.args[0], b.args[1])
	})
	r.add("FLOOR", builtin{compile: func(b *call) (Compiled, error) { return floorCeil(b, true) }, raw: true, deterministic: true})
	r.add("CEIL", builtin{compile: func(b *call) (Compiled, error) { return floorCeil(b, false) }, raw: true, deterministic: true})
	r.add("CEILING", builtin{compile: func(b *call) (Compiled, error) { return floorCeil(b, false) }, raw: true, deterministic: true})
	r.det("ROUND", func(b *call) (Compiled, error) { return roundTrunc(b, true) })
	r.det("TRUNCATE", func(b *call) (Compiled, error) { return roundTrunc(b, false) })
}

// compileRaw compiles the arguments of a raw built-in from index from.
func (b *call) compileRaw(from int) error {
	b.args = make([]Compiled, len(b.node.Args))
	for i := from; i < len(b.node.Args); i++ {
		x, err := b.c.compile(b.node.Args[i], b.s)
		if err != nil {
			return err
		}
		b.args[i] = x
	}
	return nil
}

// floorCeil compiles FLOOR(x), CEIL(x) and FLOOR(ts TO unit).
func floorCeil(b *call, floor bool) (Compiled, error) {
	if len(b.node.Args) == 2 {
		unit, ok := unitArg(b.node.Args[1])
		if !ok {
			return Compiled{}, b.errorf("the second argument must be a time unit: %s(ts TO HOUR)", b.name)
		}
		x, err := b.c.compile(b.node.Args[0], b.s)
		if err != nil {
			return Compiled{}, err
		}
		b.args = []Compiled{x}
		if err := b.wantTime(0); err != nil {
			return Compiled{}, err
		}
		out, err := floorTime(b, unit, floor)
		out.Const = allConst(b.args)
		return out, err
	}
	if err := b.compileRaw(0); err != nil {
		return Compiled{}, err
	}
	if err := b.argc(1, 1); err != nil {
		return Compiled{}, err
	}
	if err := b.wantNumeric(0); err != nil {
		return Compiled{}, err
	}
	x := b.args[0]
	t := x.Type.Plain()
	var out Compiled
	switch classOf(t) {
	case clsInt:
		out = x
		out.Type = t
	case clsFloat:
		fn := math.Ceil
		if floor {
			fn = math.Floor
		}
		out = Compiled{Type: t, Eval: map1(x.Eval, func(a row.Value) row.Value { return row.Float(fn(a.AsFloat())) })}
	default:
		p := pow10[min(t.Scale, 18)]
		out = Compiled{Type: types.DecimalOf(max(t.Precision-t.Scale+1, 1), 0), Eval: map1(x.Eval, func(a row.Value) row.Value {
			v := a.AsInt()
			q := floorDiv(v, p)
			if !floor && q*p != v {
				q++
			}
			return row.Int(q)
		})}
	}
	out.Const = x.Const
	return out, nil
}

// roundTrunc compiles ROUND(x[, d]) (HALF_UP, as Flink) and TRUNCATE.
func roundTrunc(b *call, round bool) (Compiled, error) {
	if err := b.argc(1, 2); err != nil {
		return Compiled{}, err
	}
	if err := b.wantNumeric(0); err != nil {
		return Compiled{}, err
	}
	d := 0
	if len(b.args) == 2 {
		if err := b.wantInteger(1); err != nil {
			return Compiled{}, err
		}
		if !b.args[1].Const {
			return Compiled{}, b.errorf("the number of digits must be a constant")
		}
		d = int(b.args[1].Eval(nil).AsInt())
	}
	x := b.args[0]
	t := x.Type.Plain()
	switch classOf(t) {
	case clsFloat:
		scale := math.Pow10(d)
		return b.result(t, map1(x.Eval, func(a row.Value) row.Value {
			f := a.AsFloat()
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return a
			}
			if d > 300 {
				return a
			}
			if round {
				if d >= 0 && d <= 15 {
					if dec, ok := floatToDecimal(f, d); ok {
						return row.Float(decimalToFloat(dec, d))
					}
				}
				return row.Float(roundHalfUp(f*scale) / scale)
			}
			return row.Float(math.Trunc(f*scale) / scale)
		}))
	case clsDec:
		s := t.Scale
		nd := min(max(d, 0), s)
		out := t
		if d < s {
			// Flink: one more digit for the carry of rounding.
			carry := 0
			if round {
				carry = 1
			}
			out = capPrecision(max(t.Precision-s+nd+carry, 1), nd)
		}
		return b.result(out, map1(x.Eval, func(a row.Value) row.Value {
			v := a.AsInt()
			if d >= s {
				return row.Int(v)
			}
			drop := s - d
			if drop > 18 {
				return row.Int(0)
			}
			var q int64
			if round {
				q, _ = rescale(v, s, d)
			} else {
				q = v / pow10[drop]
			}
			if d < 0 {
				q *= pow10[min(-d, 18)]
			}
			return row.Int(q)
		}))
	}
	wrap := wrapFunc(t.Kind)
	return b.result(t, map1(x.Eval, func(a row.Value) row.Value {
		v := a.AsInt()
		if d >= 0 {
			return a
		}
		if -d > 18 {
			return row.Int(0)
		}
		p := pow10[-d]
		var q int64
		if round {
			q = divRound(v, p) * p
		} else {
			q = v / p * p
		}
		if wrap != nil {
			q = wrap(q)
		}
		return row.Int(q)
	}))
}

func roundHalfUp(f float64) float64 {
	if f < 0 {
		return -math.Floor(-f + 0.5)
	}
	return math.Floor(f + 0.5)
}
