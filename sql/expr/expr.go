package expr

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/ast"
	"github.com/sluicehq/sluice/sql/types"
)

// Scope resolves column references; the planner implements it. Errors
// it returns are passed on unchanged.
type Scope interface {
	Resolve(ref *ast.ColumnRef) (index int, t types.Type, err error)
}

// EvalFunc evaluates an expression over the values of one row.
type EvalFunc = func(vals []row.Value) row.Value

// Compiled is a type-checked expression ready to run.
type Compiled struct {
	Type types.Type
	Eval EvalFunc
	// Const is set when the expression does not depend on the row and is
	// deterministic; Eval then returns a precomputed value (and may be
	// called with nil).
	Const bool
}

// Compiler compiles expressions. The zero Compiler works: built-in
// functions only, UTC session time zone, wall-clock time, run-time
// errors dropped.
type Compiler struct {
	// Funcs are the functions known by name; nil means the built-ins
	// (NewRegistry()).
	Funcs *Registry
	// Location is the session time zone (Flink's table.local-time-zone)
	// used where a TIMESTAMP_LTZ meets wall-clock fields: HOUR and
	// DATE_FORMAT of a TIMESTAMP_LTZ, CURRENT_DATE, LOCALTIMESTAMP,
	// FROM_UNIXTIME, UNIX_TIMESTAMP(string). nil means UTC.
	Location *time.Location
	// Now returns the current time for CURRENT_TIMESTAMP, NOW(),
	// PROCTIME() and friends; nil means time.Now.
	Now func() time.Time
	// OnError receives the run-time errors of evaluation: a failed CAST,
	// a division by zero, a DECIMAL overflow, an invalid argument. Flink
	// fails the job on these; here the expression's value becomes NULL
	// and the error is reported to OnError (which may fail the job, count
	// or log). nil drops them. It must be safe for concurrent use if the
	// compiled expressions are.
	OnError func(error)
}

func (c *Compiler) registry() *Registry {
	if c.Funcs == nil {
		return defaultRegistry()
	}
	return c.Funcs
}

func (c *Compiler) loc() *time.Location {
	if c.Location == nil {
		return time.UTC
	}
	return c.Location
}

func (c *Compiler) now() time.Time {
	if c.Now == nil {
		return time.Now()
	}
	return c.Now()
}

// fail reports a run-time error and returns NULL.
func (c *Compiler) fail(pos ast.Pos, format string, args ...any) row.Value {
	if c.OnError != nil {
		c.OnError(fmt.Errorf("%s: %s", pos, fmt.Sprintf(format, args...)))
	}
	return row.Null()
}

// errorf returns a compile error at pos.
func errorf(pos ast.Pos, format string, args ...any) error {
	return fmt.Errorf("%s: %s", pos, fmt.Sprintf(format, args...))
}

// Compile type-checks e and compiles it into an evaluator over the row
// values that s resolves column references into.
func (c *Compiler) Compile(e ast.Expr, s Scope) (Compiled, error) {
	out, err := c.compile(e, s)
	if err != nil {
		return Compiled{}, err
	}
	return out, nil
}

// Predicate compiles a condition (WHERE, HAVING, ON, FILTER): e must be
// BOOLEAN; NULL counts as false.
func (c *Compiler) Predicate(e ast.Expr, s Scope) (func([]row.Value) bool, error) {
	x, err := c.compile(e, s)
	if err != nil {
		return nil, err
	}
	if x.Type.Kind == types.Null {
		return func([]row.Value) bool { return false }, nil
	}
	if x.Type.Kind != types.Boolean {
		return nil, errorf(e.Start(), "a condition must be BOOLEAN, not %s", typeName(x.Type))
	}
	if x.Const {
		b := x.Eval(nil).AsBool()
		return func([]row.Value) bool { return b }, nil
	}
	f := x.Eval
	return func(v []row.Value) bool { return f(v).AsBool() }, nil
}

// typeName is the type as error messages name it.
func typeName(t types.Type) string {
	switch t.Kind {
	case types.Decimal:
		return fmt.Sprintf("DECIMAL(%d, %d)", t.Precision, t.Scale)
	case types.Row, types.Array, types.Map:
		return t.Plain().WithNull(false).String()
	}
	return t.Kind.String()
}

// constant returns a constant expression of type t and value v.
func constant(t types.Type, v row.Value) Compiled {
	return Compiled{Type: t, Eval: func([]row.Value) row.Value { return v }, Const: true}
}

// fold evaluates x once if it is constant.
func fold(x Compiled) Compiled {
	if !x.Const {
		return x
	}
	v := x.Eval(nil)
	x.Eval = func([]row.Value) row.Value { return v }
	return x
}

// allConst reports whether every argument is constant.
func allConst(args []Compiled) bool {
	for _, a := range args {
		if !a.Const {
			return false
		}
	}
	return true
}

func nullable(args ...Compiled) bool {
	for _, a := range args {
		if !a.Type.NotNull {
			return true
		}
	}
	return false
}

// withNull returns t NOT NULL when no argument is nullable.
func withNull(t types.Type, args ...Compiled) types.Type {
	t = t.Plain()
	t.NotNull = !nullable(args...)
	return t
}

func (c *Compiler) compile(e ast.Expr, s Scope) (Compiled, error) {
	switch n := e.(type) {
	case *ast.ColumnRef:
		if len(n.Parts) == 1 && !n.Parts[0].Quoted {
			if k, ok := niladic[strings.ToUpper(n.Parts[0].Name)]; ok {
				return c.nowOf(k), nil
			}
		}
		if s == nil {
			return Compiled{}, errorf(n.Pos, "column %s cannot be used here: no columns are in scope", refName(n))
		}
		i, t, err := s.Resolve(n)
		if err != nil {
			return Compiled{}, err
		}
		return Compiled{Type: t, Eval: func(v []row.Value) row.Value { return v[i] }}, nil
	case *ast.NumberLit:
		return numberLit(n)
	case *ast.StringLit:
		return constant(types.Type{Kind: types.Char, Length: len([]rune(n.Value)), NotNull: true}, row.String(n.Value)), nil
	case *ast.BoolLit:
		return constant(types.TBoolean.WithNull(true), row.Bool(n.Value)), nil
	case *ast.NullLit:
		return constant(types.TNull, row.Null()), nil
	case *ast.IntervalLit:
		return intervalLit(n)
	case *ast.TypedLit:
		return typedLit(n)
	case *ast.Unary:
		return c.unary(n, s)
	case *ast.Binary:
		return c.binary(n, s)
	case *ast.Like:
		return c.like(n, s)
	case *ast.Between:
		return c.between(n, s)
	case *ast.In:
		return c.in(n, s)
	case *ast.Is:
		return c.is(n, s)
	case *ast.IsDistinct:
		return c.isDistinct(n, s)
	case *ast.Case:
		return c.caseExpr(n, s)
	case *ast.Cast:
		return c.cast(n, s)
	case *ast.Extract:
		x, err := c.compile(n.X, s)
		if err != nil {
			return Compiled{}, err
		}
		return c.extract(n.Pos, n.Unit, x)
	case *ast.Call:
		return c.call(n, s)
	case *ast.Exists, *ast.Subquery:
		return Compiled{}, errorf(e.Start(), "subqueries are not supported in this expression; rewrite it as a join")
	case *ast.FieldAccess:
		return Compiled{}, errorf(n.Pos, "field access (x).%s is not supported here: name the nested column as a path (t.%s)", n.Field.Name, n.Field.Name)
	case *ast.Index, *ast.RowExpr, *ast.ArrayExpr:
		return Compiled{}, errorf(e.Start(), "ROW, ARRAY and indexing expressions are not supported yet")
	case *ast.TableArg, *ast.Descriptor, *ast.NamedArg:
		return Compiled{}, errorf(e.Start(), "TABLE, DESCRIPTOR and named arguments are only allowed in the arguments of a table-valued function")
	}
	return Compiled{}, fmt.Errorf("unsupported expression %T", e)
}

func refName(n *ast.ColumnRef) string {
	parts := make([]string, len(n.Parts))
	for i, p := range n.Parts {
		parts[i] = p.Name
	}
	return strings.Join(parts, ".")
}

// numberLit types a number: INT if it fits 32 bits, else BIGINT;
// with a point DECIMAL(p, s); with an exponent DOUBLE.
func numberLit(n *ast.NumberLit) (Compiled, error) {
	text := n.Text
	if strings.ContainsAny(text, "eE") {
		f, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return Compiled{}, errorf(n.Pos, "invalid number %s", text)
		}
		return constant(types.TDouble.WithNull(true), row.Float(f)), nil
	}
	if !strings.Contains(text, ".") {
		i, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			d, err2 := parseDecimal(text)
			if err2 != nil {
				return Compiled{}, errorf(n.Pos, "number %s is too large for BIGINT and DECIMAL(18)", text)
			}
			return constant(d.typ.WithNull(true), row.Int(d.v)), nil
		}
		if i >= math.MinInt32 && i <= math.MaxInt32 {
			return constant(types.TInt.WithNull(true), row.Int(i)), nil
		}
		return constant(types.TBigInt.WithNull(true), row.Int(i)), nil
	}
	d, err := parseDecimal(text)
	if err != nil {
		return Compiled{}, errorf(n.Pos, "decimal literal %s: %v", text, err)
	}
	return constant(d.typ.WithNull(true), row.Int(d.v)), nil
}

func intervalLit(n *ast.IntervalLit) (Compiled, error) {
	v, ym, err := parseInterval(n.Value, n.Unit, n.ToUnit)
	if err != nil {
		return Compiled{}, errorf(n.Pos, "%v", err)
	}
	if n.Negative {
		v = -v
	}
	t := types.TInterval
	if ym {
		t = types.Type{Kind: types.IntervalYearMonth}
	}
	return constant(t.WithNull(true), row.Int(v)), nil
}

var unitMillis = map[string]int64{
	"MILLISECOND": 1, "SECOND": 1000, "MINUTE": 60_000, "HOUR": 3_600_000, "DAY": 86_400_000,
	"WEEK": 7 * 86_400_000,
}

// parseInterval returns the interval's value: milliseconds, or months
// when ym.
func parseInterval(value, unit, to string) (v int64, ym bool, err error) {
	value = strings.TrimSpace(value)
	neg := false
	if strings.HasPrefix(value, "-") {
		neg, value = true, value[1:]
	} else if strings.HasPrefix(value, "+") {
		value = value[1:]
	}
	defer func() {
		if neg {
			v = -v
		}
	}()
	unit, to = strings.ToUpper(unit), strings.ToUpper(to)
	switch unit {
	case "YEAR", "MONTH":
		if to == "" {
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil {
				return 0, true, fmt.Errorf("INTERVAL '%s' %s: the value must be a whole number", value, unit)
			}
			if unit == "YEAR" {
				n *= 12
			}
			return n, true, nil
		}
		if unit == "YEAR" && to == "MONTH" {
			y, m, ok := strings.Cut(value, "-")
			yn, err1 := strconv.ParseInt(y, 10, 64)
			mn, err2 := strconv.ParseInt(m, 10, 64)
			if !ok || err1 != nil || err2 != nil {
				return 0, true, fmt.Errorf("INTERVAL '%s' YEAR TO MONTH: write 'years-months', e.g. '1-6'", value)
			}
			return yn*12 + mn, true, nil
		}
		return 0, true, fmt.Errorf("INTERVAL %s TO %s is not a valid interval qualifier", unit, to)
	}
	m, ok := unitMillis[unit]
	if !ok {
		return 0, false, fmt.Errorf("unknown interval unit %s (use SECOND, MINUTE, HOUR, DAY, MONTH or YEAR)", unit)
	}
	if to == "" {
		if strings.Contains(value, ".") {
			f, err := strconv.ParseFloat(value, 64)
			if err != nil {
				return 0, false, fmt.Errorf("INTERVAL '%s' %s: the value must be a number", value, unit)
			}
			return int64(math.Round(f * float64(m))), false, nil
		}
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return 0, false, fmt.Errorf("INTERVAL '%s' %s: the value must be a number", value, unit)
		}
		return n * m, false, nil
	}
	if _, ok := unitMillis[to]; !ok || unitMillis[to] >= m {
		return 0, false, fmt.Errorf("INTERVAL %s TO %s is not a valid interval qualifier", unit, to)
	}
	// 'D HH:MM:SS.fff' style: split into fields from the leading unit down.
	order := []string{"DAY", "HOUR", "MINUTE", "SECOND"}
	start := -1
	for i, u := range order {
		if u == unit {
			start = i
		}
	}
	fields := strings.FieldsFunc(value, func(r rune) bool { return r == ' ' || r == ':' })
	var total int64
	for i, f := range fields {
		if start+i >= len(order) {
			return 0, false, fmt.Errorf("INTERVAL '%s' %s TO %s: too many fields", value, unit, to)
		}
		u := order[start+i]
		if u == "SECOND" {
			sec, err := strconv.ParseFloat(f, 64)
			if err != nil {
				return 0, false, fmt.Errorf("INTERVAL '%s': %q is not a number", value, f)
			}
			total += int64(math.Round(sec * 1000))
		} else {
			n, err := strconv.ParseInt(f, 10, 64)
			if err != nil {
				return 0, false, fmt.Errorf("INTERVAL '%s': %q is not a number", value, f)
			}
			total += n * unitMillis[u]
		}
		if u == to {
			break
		}
	}
	return total, false, nil
}

func typedLit(n *ast.TypedLit) (Compiled, error) {
	switch strings.ToUpper(n.Type) {
	case "TIMESTAMP":
		ms, err := parseTimestamp(n.Value)
		if err != nil {
			return Compiled{}, errorf(n.Pos, "TIMESTAMP '%s': %v", n.Value, err)
		}
		return constant(types.TTimestamp.WithNull(true), row.Timestamp(ms)), nil
	case "DATE":
		d, err := parseDate(n.Value)
		if err != nil {
			return Compiled{}, errorf(n.Pos, "DATE '%s': %v", n.Value, err)
		}
		return constant(types.TDate.WithNull(true), row.Int(d)), nil
	case "TIME":
		ms, err := parseTime(n.Value)
		if err != nil {
			return Compiled{}, errorf(n.Pos, "TIME '%s': %v", n.Value, err)
		}
		return constant(types.Type{Kind: types.Time, NotNull: true}, row.Int(ms)), nil
	}
	return Compiled{}, errorf(n.Pos, "unknown literal type %s (use TIMESTAMP, DATE or TIME)", n.Type)
}
