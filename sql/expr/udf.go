package expr

import (
	"fmt"
	"time"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/types"
)

// GoType lists the Go types a typed user-defined function may take and
// return, and their SQL types: int64 BIGINT, int32 INT, float64 DOUBLE,
// string STRING, bool BOOLEAN, time.Time TIMESTAMP(3).
type GoType interface {
	int64 | int32 | float64 | string | bool | time.Time
}

// goTypeOf returns the SQL type of T and the conversions from and to a
// row.Value, chosen once (no reflection per row).
func goTypeOf[T GoType]() (types.Type, func(row.Value) T, func(T) row.Value) {
	var zero T
	switch any(zero).(type) {
	case int64:
		return types.TBigInt,
			any(func(v row.Value) int64 { return v.AsInt() }).(func(row.Value) T),
			any(func(x int64) row.Value { return row.Int(x) }).(func(T) row.Value)
	case int32:
		return types.TInt,
			any(func(v row.Value) int32 { return int32(v.AsInt()) }).(func(row.Value) T),
			any(func(x int32) row.Value { return row.Int(int64(x)) }).(func(T) row.Value)
	case float64:
		return types.TDouble,
			any(func(v row.Value) float64 { return v.AsFloat() }).(func(row.Value) T),
			any(func(x float64) row.Value { return row.Float(x) }).(func(T) row.Value)
	case string:
		return types.TVarchar,
			any(func(v row.Value) string { return v.AsString() }).(func(row.Value) T),
			any(func(x string) row.Value { return row.String(x) }).(func(T) row.Value)
	case bool:
		return types.TBoolean,
			any(func(v row.Value) bool { return v.AsBool() }).(func(row.Value) T),
			any(func(x bool) row.Value { return row.Bool(x) }).(func(T) row.Value)
	default: // time.Time
		return types.TTimestamp,
			any(func(v row.Value) time.Time { return time.UnixMilli(v.AsInt()).UTC() }).(func(row.Value) T),
			any(func(x time.Time) row.Value { return row.Timestamp(x.UnixMilli()) }).(func(T) row.Value)
	}
}

// accepts reports whether an argument of SQL type t can be passed where
// want is declared: the same storage family (any integer for an
// integer, any number for DOUBLE, any string for STRING, any timestamp).
func accepts(want, t types.Type) bool {
	switch {
	case t.Kind == types.Null:
		return true
	case want.IsInteger():
		return t.IsInteger()
	case want.Kind == types.Double:
		return t.IsInteger() || t.Kind == types.Float || t.Kind == types.Double
	case want.IsString():
		return t.IsString()
	case want.IsTimestamp():
		return t.Kind == types.Timestamp
	}
	return want.Kind == t.Kind
}

// Func1 makes a deterministic ScalarFunc of one argument from a Go
// function; NULL in gives NULL out. Integers are accepted where DOUBLE
// is declared (AsFloat converts them).
func Func1[A, R GoType](name string, f func(A) R) ScalarFunc {
	ta, fromA, _ := goTypeOf[A]()
	tr, _, toR := goTypeOf[R]()
	return ScalarFunc{
		Name: name, Deterministic: true,
		Check: func(args []types.Type) (types.Type, error) {
			if len(args) != 1 {
				return types.Type{}, fmt.Errorf("expects 1 argument (%s), got %d", ta, len(args))
			}
			if !accepts(ta, args[0]) {
				return types.Type{}, fmt.Errorf("expects %s, got %s", ta, typeName(args[0]))
			}
			return tr, nil
		},
		Eval: func(args []row.Value) row.Value {
			if args[0].IsNull() {
				return null
			}
			return toR(f(fromA(args[0])))
		},
	}
}

// Func2 makes a deterministic ScalarFunc of two arguments from a Go
// function; any NULL in gives NULL out.
func Func2[A, B, R GoType](name string, f func(A, B) R) ScalarFunc {
	ta, fromA, _ := goTypeOf[A]()
	tb, fromB, _ := goTypeOf[B]()
	tr, _, toR := goTypeOf[R]()
	return ScalarFunc{
		Name: name, Deterministic: true,
		Check: func(args []types.Type) (types.Type, error) {
			if len(args) != 2 {
				return types.Type{}, fmt.Errorf("expects 2 arguments (%s, %s), got %d", ta, tb, len(args))
			}
			if !accepts(ta, args[0]) || !accepts(tb, args[1]) {
				return types.Type{}, fmt.Errorf("expects (%s, %s), got (%s, %s)", ta, tb, typeName(args[0]), typeName(args[1]))
			}
			return tr, nil
		},
		Eval: func(args []row.Value) row.Value {
			if args[0].IsNull() || args[1].IsNull() {
				return null
			}
			return toR(f(fromA(args[0]), fromB(args[1])))
		},
	}
}
