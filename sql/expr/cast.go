package expr

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/ast"
	"github.com/sluicehq/sluice/sql/types"
)

// converter converts a non-null value; ok false is a failed conversion.
type converter func(v row.Value) (row.Value, bool)

func (c *Compiler) cast(n *ast.Cast, s Scope) (Compiled, error) {
	x, err := c.compile(n.X, s)
	if err != nil {
		return Compiled{}, err
	}
	to, err := types.FromAST(n.To)
	if err != nil {
		return Compiled{}, err
	}
	to.NotNull = false
	out, err := c.convertExplicit(n.Pos, x, to, n.Try, true)
	if err != nil {
		return Compiled{}, err
	}
	if n.Try {
		out.Type.NotNull = false
	}
	return out, nil
}

// Coerce converts x to type to as an implicit cast (INSERT by position,
// UNION), as Flink allows implicitly: integers to wider integers,
// integers and DECIMAL to DECIMAL, any number to FLOAT or DOUBLE, CHAR
// to VARCHAR, DATE to TIMESTAMP, a string to a time (parsed), NULL to
// anything. Others need an explicit CAST and give an error saying so.
// A value that does not fit (a DECIMAL too narrow) becomes NULL.
func Coerce(x Compiled, to types.Type) (Compiled, error) {
	var c Compiler
	return c.CoerceAt(ast.Pos{}, x, to)
}

// CoerceAt is Coerce with run-time errors reported to this compiler's
// OnError and compile errors positioned at pos (when pos is set).
func (c *Compiler) CoerceAt(pos ast.Pos, x Compiled, to types.Type) (Compiled, error) {
	if !implicitOK(x.Type, to) {
		err := fmt.Errorf("cannot cast implicitly %s to %s; CAST it explicitly", typeName(x.Type), typeName(to))
		if pos.Line > 0 {
			err = fmt.Errorf("%s: %w", pos, err)
		}
		return Compiled{}, err
	}
	return c.convert(pos, x, to, false)
}

func implicitOK(from, to types.Type) bool {
	fc, tc := classOf(from), classOf(to)
	switch {
	case from.Kind == types.Null || types.Equal(from.Plain(), to.Plain()):
		return true
	case fc != clsNone && tc != clsNone:
		switch tc {
		case clsFloat:
			return fc != clsFloat || to.Kind == types.Double || from.Kind == types.Float
		case clsDec:
			return fc != clsFloat
		}
		return fc == clsInt && intRank(from.Kind) <= intRank(to.Kind)
	case from.IsString() && to.IsString():
		return true
	case from.IsString() && (to.IsTimestamp() || to.Kind == types.Date || to.Kind == types.Time):
		return true
	case to.IsTimestamp():
		return from.Kind == to.Kind || from.Kind == types.Date
	}
	return from.Kind == to.Kind
}

// convert is an implicit conversion (to a common type): identity when
// the storage already matches.
func (c *Compiler) convert(pos ast.Pos, x Compiled, to types.Type, try bool) (Compiled, error) {
	return c.convertExplicit(pos, x, to, try, false)
}

func (c *Compiler) convertExplicit(pos ast.Pos, x Compiled, to types.Type, try, explicit bool) (Compiled, error) {
	from := x.Type
	to = to.Plain()
	notNull := from.NotNull && to.Kind != types.Null
	if from.Kind == types.Null {
		t := to
		t.NotNull = false
		return constant(t, null), nil
	}
	conv, err := c.converterFor(from, to, explicit)
	if err != nil {
		return Compiled{}, errorf(pos, "%v", err)
	}
	t := to
	t.NotNull = notNull
	if conv == nil {
		x.Type = t // a CAST drops the time attribute, as Flink
		return x, nil
	}
	f := x.Eval
	out := Compiled{Type: t, Const: x.Const}
	if try {
		out.Eval = func(v []row.Value) row.Value {
			a := f(v)
			if a.IsNull() {
				return a
			}
			r, ok := conv(a)
			if !ok {
				return null
			}
			return r
		}
	} else {
		out.Eval = func(v []row.Value) row.Value {
			a := f(v)
			if a.IsNull() {
				return a
			}
			r, ok := conv(a)
			if !ok {
				return c.fail(pos, "cannot cast %s to %s; use TRY_CAST to get NULL instead", c.describeValue(a, from), typeName(to))
			}
			return r
		}
	}
	if out.Const {
		return fold(out), nil
	}
	return out, nil
}

func (c *Compiler) describeValue(v row.Value, t types.Type) string {
	switch t.Storage() {
	case row.KindString:
		return strconv.Quote(v.AsString())
	}
	return fmt.Sprintf("%s %s", typeName(t), c.FormatValue(v, t))
}

// FormatValue renders a value of type t as CAST(... AS STRING) does
// (TIMESTAMP_LTZ in the session zone), "NULL" for NULL.
func (c *Compiler) FormatValue(v row.Value, t types.Type) string {
	if v.IsNull() {
		return "NULL"
	}
	conv, err := c.converterFor(t, types.TVarchar, true)
	if err != nil {
		return v.String()
	}
	if conv == nil {
		return v.AsString()
	}
	s, _ := conv(v)
	return s.AsString()
}

// converterFor returns the conversion from → to: nil when the stored
// value is already right.
func (c *Compiler) converterFor(from, to types.Type, explicit bool) (converter, error) {
	refuse := func(hint string) (converter, error) {
		if hint != "" {
			hint = "; " + hint
		}
		return nil, fmt.Errorf("cannot cast %s to %s%s", typeName(from), typeName(to), hint)
	}
	fc, tc := classOf(from), classOf(to)
	switch {
	case to.IsString():
		return c.toString(from, to, explicit)
	case fc != clsNone && tc != clsNone:
		return numericConverter(from, to, fc, tc, explicit)
	case from.IsString():
		return c.fromString(to)
	}
	switch to.Kind {
	case types.Boolean:
		if from.Kind == types.Boolean {
			return nil, nil
		}
		if fc == clsInt && explicit {
			return func(v row.Value) (row.Value, bool) { return row.Bool(v.AsInt() != 0), true }, nil
		}
	case types.TinyInt, types.SmallInt, types.Int, types.BigInt:
		if from.Kind == types.Boolean && explicit {
			return func(v row.Value) (row.Value, bool) {
				if v.AsBool() {
					return row.Int(1), true
				}
				return row.Int(0), true
			}, nil
		}
		if from.Kind == types.TimestampLTZ && explicit && to.Kind == types.BigInt {
			return func(v row.Value) (row.Value, bool) { return row.Int(floorDiv(v.AsInt(), 1000)), true }, nil
		}
		if from.Kind == types.Timestamp {
			return refuse("use UNIX_TIMESTAMP(CAST(ts AS STRING)) for epoch seconds, as Flink")
		}
	case types.Timestamp, types.TimestampLTZ:
		switch from.Kind {
		case types.Timestamp, types.TimestampLTZ:
			if from.Kind == to.Kind {
				if to.Precision == 0 && from.Precision > 0 {
					return func(v row.Value) (row.Value, bool) {
						return row.Timestamp(floorDiv(v.AsInt(), 1000) * 1000), true
					}, nil
				}
				return nil, nil
			}
			loc := c.loc()
			if to.Kind == types.TimestampLTZ {
				return func(v row.Value) (row.Value, bool) { return row.Timestamp(wallToInstant(v.AsInt(), loc)), true }, nil
			}
			return func(v row.Value) (row.Value, bool) { return row.Timestamp(instantToWall(v.AsInt(), loc)), true }, nil
		case types.Date:
			if to.Kind == types.TimestampLTZ {
				loc := c.loc()
				return func(v row.Value) (row.Value, bool) {
					return row.Timestamp(wallToInstant(v.AsInt()*msPerDay, loc)), true
				}, nil
			}
			return func(v row.Value) (row.Value, bool) { return row.Timestamp(v.AsInt() * msPerDay), true }, nil
		}
		if fc == clsInt && to.Kind == types.TimestampLTZ && explicit {
			return func(v row.Value) (row.Value, bool) { return row.Timestamp(v.AsInt() * 1000), true }, nil
		}
		if fc != clsNone {
			return refuse("use TO_TIMESTAMP_LTZ(epoch, 3) for epoch milliseconds, as Flink")
		}
	case types.Date:
		switch from.Kind {
		case types.Date:
			return nil, nil
		case types.Timestamp:
			return func(v row.Value) (row.Value, bool) { return row.Int(floorDiv(v.AsInt(), msPerDay)), true }, nil
		case types.TimestampLTZ:
			loc := c.loc()
			return func(v row.Value) (row.Value, bool) {
				return row.Int(floorDiv(instantToWall(v.AsInt(), loc), msPerDay)), true
			}, nil
		}
	case types.Time:
		switch from.Kind {
		case types.Time:
			return nil, nil
		case types.Timestamp:
			return func(v row.Value) (row.Value, bool) { return row.Int(floorMod(v.AsInt(), msPerDay)), true }, nil
		case types.TimestampLTZ:
			loc := c.loc()
			return func(v row.Value) (row.Value, bool) {
				return row.Int(floorMod(instantToWall(v.AsInt(), loc), msPerDay)), true
			}, nil
		}
	case types.IntervalDayTime, types.IntervalYearMonth:
		if from.Kind == to.Kind {
			return nil, nil
		}
	case types.Row, types.Array, types.Map:
		if types.Equal(from, to) {
			return nil, nil
		}
	case types.Null:
		return func(row.Value) (row.Value, bool) { return null, true }, nil
	}
	return refuse("")
}

// wallToInstant reads wall-clock milliseconds (a TIMESTAMP) in loc.
func wallToInstant(ms int64, loc *time.Location) int64 {
	if loc == time.UTC {
		return ms
	}
	f := splitMillis(ms)
	t := time.Date(int(f.year), time.Month(f.month), f.day, f.hour, f.minute, f.second, f.milli*1e6, loc)
	return t.UnixMilli()
}

// instantToWall gives the wall-clock of an instant in loc as TIMESTAMP
// milliseconds.
func instantToWall(ms int64, loc *time.Location) int64 {
	if loc == time.UTC {
		return ms
	}
	_, off := time.UnixMilli(ms).In(loc).Zone()
	return ms + int64(off)*1000
}

func numericConverter(from, to types.Type, fc, tc numClass, explicit bool) (converter, error) {
	switch tc {
	case clsInt:
		var wrap func(int64) int64
		if intRank(to.Kind) < intRank(from.Kind) || fc != clsInt {
			wrap = wrapFunc(to.Kind)
		}
		switch fc {
		case clsInt:
			if wrap == nil {
				return nil, nil
			}
			return func(v row.Value) (row.Value, bool) { return row.Int(wrap(v.AsInt())), true }, nil
		case clsDec:
			p := pow10[min(from.Scale, 18)]
			return func(v row.Value) (row.Value, bool) {
				r := v.AsInt() / p // truncation toward zero, as Flink
				if wrap != nil {
					r = wrap(r)
				}
				return row.Int(r), true
			}, nil
		default:
			return func(v row.Value) (row.Value, bool) {
				f := v.AsFloat()
				var r int64
				switch {
				case math.IsNaN(f):
					r = 0
				case f >= math.MaxInt64:
					r = math.MaxInt64
				case f <= math.MinInt64:
					r = math.MinInt64
				default:
					r = int64(f)
				}
				if wrap != nil {
					// Java's (int), (short), (byte) of a float, as
					// Flink: saturate to the INT range, then wrap.
					r = wrap(min(max(r, math.MinInt32), math.MaxInt32))
				}
				return row.Int(r), true
			}, nil
		}
	case clsDec:
		s, p := to.Scale, to.Precision
		limit := int64(0)
		if p <= 18 {
			limit = pow10[p]
		}
		fits := func(x int64) bool { return limit == 0 || x < limit && x > -limit }
		switch fc {
		case clsInt, clsDec:
			fs := 0
			if fc == clsDec {
				fs = from.Scale
			}
			if fs == s && fc == clsDec && from.Precision <= p {
				return nil, nil
			}
			if fs == s && fc == clsInt && integerPrecision(from.Kind) <= p {
				return nil, nil
			}
			return func(v row.Value) (row.Value, bool) {
				x, ok := rescale(v.AsInt(), fs, s)
				if !ok || !fits(x) {
					return null, false
				}
				return row.Int(x), true
			}, nil
		default:
			return func(v row.Value) (row.Value, bool) {
				x, ok := floatToDecimal(v.AsFloat(), s)
				if !ok || !fits(x) {
					return null, false
				}
				return row.Int(x), true
			}, nil
		}
	default:
		switch fc {
		case clsInt:
			return func(v row.Value) (row.Value, bool) { return row.Float(float64(v.AsInt())), true }, nil
		case clsDec:
			s := from.Scale
			return func(v row.Value) (row.Value, bool) { return row.Float(decimalToFloat(v.AsInt(), s)), true }, nil
		}
		if to.Kind == types.Float && from.Kind == types.Double {
			return func(v row.Value) (row.Value, bool) { return row.Float(float64(float32(v.AsFloat()))), true }, nil
		}
		return nil, nil
	}
}

func (c *Compiler) toString(from, to types.Type, explicit bool) (converter, error) {
	var f func(v row.Value) string
	switch classOf(from) {
	case clsInt:
		f = func(v row.Value) string { return strconv.FormatInt(v.AsInt(), 10) }
	case clsDec:
		s := from.Scale
		f = func(v row.Value) string { return formatDecimal(v.AsInt(), s) }
	case clsFloat:
		f = func(v row.Value) string { return javaDouble(v.AsFloat()) }
	}
	switch from.Kind {
	case types.Char, types.Varchar:
	case types.Boolean:
		f = func(v row.Value) string {
			if v.AsBool() {
				return "TRUE"
			}
			return "FALSE"
		}
	case types.Timestamp:
		p := min(from.Precision, 3)
		f = func(v row.Value) string { return formatTimestamp(v.AsInt(), p) }
	case types.TimestampLTZ:
		p, loc := min(from.Precision, 3), c.loc()
		f = func(v row.Value) string { return formatTimestamp(instantToWall(v.AsInt(), loc), p) }
	case types.Date:
		f = func(v row.Value) string { return string(appendDate(nil, v.AsInt())) }
	case types.Time:
		p := min(from.Precision, 3)
		f = func(v row.Value) string { return string(appendTime(nil, floorMod(v.AsInt(), msPerDay), p)) }
	case types.IntervalDayTime:
		f = func(v row.Value) string { return formatIntervalDT(v.AsInt()) }
	case types.IntervalYearMonth:
		f = func(v row.Value) string {
			m := v.AsInt()
			sign := "+"
			if m < 0 {
				sign, m = "-", -m
			}
			return fmt.Sprintf("%s%d-%02d", sign, m/12, m%12)
		}
	case types.Row, types.Array, types.Map:
		f = row.Value.AsString
	default:
		if f == nil {
			return nil, fmt.Errorf("cannot cast %s to %s", typeName(from), typeName(to))
		}
	}
	// Lengths: an explicit CAST to CHAR(n)/VARCHAR(n) cuts to n
	// characters (CHAR pads with spaces), as Flink.
	n := to.Length
	pad := to.Kind == types.Char
	if !explicit || (n == 0) {
		if f == nil {
			return nil, nil
		}
		return func(v row.Value) (row.Value, bool) { return row.String(f(v)), true }, nil
	}
	return func(v row.Value) (row.Value, bool) {
		var s string
		if f == nil {
			s = v.AsString()
		} else {
			s = f(v)
		}
		return row.String(fitLength(s, n, pad)), true
	}, nil
}

func fitLength(s string, n int, pad bool) string {
	count := 0
	for i := range s {
		if count == n {
			return s[:i]
		}
		count++
	}
	if pad && count < n {
		return s + strings.Repeat(" ", n-count)
	}
	return s
}

func formatIntervalDT(ms int64) string {
	sign := "+"
	if ms < 0 {
		sign, ms = "-", -ms
	}
	d := ms / msPerDay
	ms -= d * msPerDay
	return fmt.Sprintf("%s%d %s", sign, d, appendTime(nil, ms, 3))
}

// javaDouble formats as Java's Double.toString: "1.0", "0.001",
// "1.0E7", "1.234E-5".
func javaDouble(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f == 0:
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	a := math.Abs(f)
	if a >= 1e-3 && a < 1e7 {
		s := strconv.FormatFloat(f, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	}
	s := strconv.FormatFloat(f, 'E', -1, 64)
	mant, exp, _ := strings.Cut(s, "E")
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	if exp[0] == '+' {
		exp = exp[1:]
	}
	exp = strings.TrimLeft(exp, "0")
	if strings.HasPrefix(exp, "-") {
		exp = "-" + strings.TrimLeft(exp[1:], "0")
	}
	return mant + "E" + exp
}

func (c *Compiler) fromString(to types.Type) (converter, error) {
	switch classOf(to) {
	case clsInt:
		wrap := wrapFunc(to.Kind)
		lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
		if wrap != nil {
			hi = int64(1)<<(map[types.Kind]int{types.TinyInt: 7, types.SmallInt: 15, types.Int: 31}[to.Kind]) - 1
			lo = -hi - 1
		}
		return func(v row.Value) (row.Value, bool) {
			i, ok := parseFlinkInteger(strings.TrimSpace(v.AsString()))
			if !ok || i < lo || i > hi {
				return null, false
			}
			return row.Int(i), true
		}, nil
	case clsDec:
		s, p := to.Scale, to.Precision
		return func(v row.Value) (row.Value, bool) {
			r, ok := parseRat(strings.TrimSpace(v.AsString()))
			if !ok {
				return null, false
			}
			x, ok := ratToDecimal(r, s)
			if !ok || p <= 18 && (x >= pow10[p] || x <= -pow10[p]) {
				return null, false
			}
			return row.Int(x), true
		}, nil
	case clsFloat:
		return func(v row.Value) (row.Value, bool) {
			f, err := strconv.ParseFloat(strings.TrimSpace(v.AsString()), 64)
			if err != nil {
				return null, false
			}
			return row.Float(f), true
		}, nil
	}
	switch to.Kind {
	case types.Boolean:
		return func(v row.Value) (row.Value, bool) {
			switch strings.ToLower(strings.TrimSpace(v.AsString())) {
			case "true", "t", "yes", "y", "1":
				return row.Bool(true), true
			case "false", "f", "no", "n", "0":
				return row.Bool(false), true
			}
			return null, false
		}, nil
	case types.Timestamp, types.TimestampLTZ:
		ltz := to.Kind == types.TimestampLTZ
		loc := c.loc()
		trunc := to.Precision == 0
		return func(v row.Value) (row.Value, bool) {
			ms, err := parseTimestamp(v.AsString())
			if err != nil {
				return null, false
			}
			if trunc {
				ms = floorDiv(ms, 1000) * 1000
			}
			if ltz {
				ms = wallToInstant(ms, loc)
			}
			return row.Timestamp(ms), true
		}, nil
	case types.Date:
		return func(v row.Value) (row.Value, bool) {
			d, err := parseDate(strings.TrimSpace(v.AsString()))
			if err != nil {
				return null, false
			}
			return row.Int(d), true
		}, nil
	case types.Time:
		return func(v row.Value) (row.Value, bool) {
			ms, err := parseTime(strings.TrimSpace(v.AsString()))
			if err != nil {
				return null, false
			}
			return row.Int(ms), true
		}, nil
	}
	return nil, fmt.Errorf("cannot cast %s to %s", "VARCHAR", typeName(to))
}

// parseRat parses a decimal number, refusing exponents beyond ±100 (a
// string from outside must not make big.Rat build 10^1000000000).
func parseRat(s string) (*big.Rat, bool) {
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e, err := strconv.Atoi(s[i+1:])
		if err != nil || e > 100 || e < -100 {
			return nil, false
		}
	}
	if len(s) > 200 {
		return nil, false
	}
	return new(big.Rat).SetString(s)
}

// parseFlinkInteger parses a string CAST to an integer type as Flink's
// BinaryStringDataUtil.toLong: an optional sign, decimal digits, and an
// optional fraction of digits that is dropped ("1.9" is 1, "-1.9" is -1,
// "1." is 1, "." is 0). Anything else, and a value beyond BIGINT, is not
// an integer.
func parseFlinkInteger(s string) (int64, bool) {
	whole := s
	if i := strings.IndexByte(s, '.'); i >= 0 {
		for j := i + 1; j < len(s); j++ {
			if s[j] < '0' || s[j] > '9' {
				return 0, false
			}
		}
		whole = s[:i]
		if whole == "" || whole == "+" || whole == "-" {
			return 0, true
		}
	}
	n, err := strconv.ParseInt(whole, 10, 64)
	return n, err == nil
}
