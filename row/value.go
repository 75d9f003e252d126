package row

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"time"
)

// Kind is the type of a Value.
type Kind uint8

// The kinds of values. In a Schema, a field of KindNull has no declared
// type and may hold values of any kind.
const (
	KindNull Kind = iota
	KindBool
	KindInt
	KindFloat
	KindString
	KindTimestamp
	KindJSON
)

var kindNames = [...]string{"null", "bool", "int", "float", "string", "timestamp", "json"}

// String returns the kind's name as used in pipeline specs ("int", ...).
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// ParseKind returns the kind named s (as returned by Kind.String).
func ParseKind(s string) (Kind, error) {
	for i, n := range kindNames {
		if n == s {
			return Kind(i), nil
		}
	}
	return 0, fmt.Errorf("unknown type %q (allowed: null, bool, int, float, string, timestamp, json)", s)
}

// Value is one typed field value. The zero Value is null. Values are
// immutable and small (32 bytes); copy them freely.
type Value struct {
	s    string
	n    uint64
	kind Kind
}

// Null returns the null value.
func Null() Value { return Value{} }

// Bool returns a bool value.
func Bool(b bool) Value {
	v := Value{kind: KindBool}
	if b {
		v.n = 1
	}
	return v
}

// Int returns an integer value.
func Int(i int64) Value { return Value{kind: KindInt, n: uint64(i)} }

// Float returns a float value.
func Float(f float64) Value { return Value{kind: KindFloat, n: math.Float64bits(f)} }

// String returns a string value.
func String(s string) Value { return Value{kind: KindString, s: s} }

// Timestamp returns a timestamp value of ms milliseconds since the Unix
// epoch.
func Timestamp(ms int64) Value { return Value{kind: KindTimestamp, n: uint64(ms)} }

// JSON returns a value holding raw JSON text (an object or an array),
// written out verbatim. The caller promises raw is valid JSON.
func JSON(raw string) Value { return Value{kind: KindJSON, s: raw} }

// Kind returns the value's kind.
func (v Value) Kind() Kind { return v.kind }

// IsNull reports whether v is null.
func (v Value) IsNull() bool { return v.kind == KindNull }

// AsBool returns v's bool; false unless v is a bool.
func (v Value) AsBool() bool { return v.kind == KindBool && v.n != 0 }

// AsInt returns v as an integer: ints and timestamps as they are, floats
// truncated, bools as 0 or 1, anything else 0.
func (v Value) AsInt() int64 {
	switch v.kind {
	case KindInt, KindTimestamp, KindBool:
		return int64(v.n)
	case KindFloat:
		return int64(math.Float64frombits(v.n))
	}
	return 0
}

// AsFloat returns v as a float: numbers and timestamps converted, anything
// else 0.
func (v Value) AsFloat() float64 {
	switch v.kind {
	case KindFloat:
		return math.Float64frombits(v.n)
	case KindInt, KindTimestamp, KindBool:
		return float64(int64(v.n))
	}
	return 0
}

// AsString returns the text of a string or JSON value, "" otherwise.
func (v Value) AsString() string { return v.s }

// IsNumber reports whether v is an int or a float.
func (v Value) IsNumber() bool { return v.kind == KindInt || v.kind == KindFloat }

// ErrNoTime is returned by Millis for a value that is not a time.
var ErrNoTime = errors.New("not a time")

// Millis interprets v as an event time in milliseconds since the Unix
// epoch: a timestamp, an integer or float number of milliseconds, or a
// string in RFC 3339 format or of decimal milliseconds.
func (v Value) Millis() (int64, error) {
	switch v.kind {
	case KindTimestamp, KindInt:
		return int64(v.n), nil
	case KindFloat:
		f := math.Float64frombits(v.n)
		if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1<<62 {
			return 0, fmt.Errorf("%w: float %v", ErrNoTime, f)
		}
		return int64(f), nil
	case KindString:
		return ParseMillis(v.s)
	case KindNull:
		return 0, fmt.Errorf("%w: null", ErrNoTime)
	}
	return 0, fmt.Errorf("%w: %s value", ErrNoTime, v.kind)
}

// ParseMillis parses an RFC 3339 time or a decimal number of milliseconds
// since the Unix epoch.
func ParseMillis(s string) (int64, error) {
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, fmt.Errorf("%w: %q is neither RFC 3339 nor epoch milliseconds", ErrNoTime, s)
	}
	return t.UnixMilli(), nil
}

// Any returns v as a plain Go value for expression evaluation: nil, bool,
// int, float64, string or time.Time (UTC). JSON values are decoded into
// map[string]any / []any (numbers as float64), so that expressions can
// reach into them (payload.user.id, len(items)); text that does not
// decode is returned as a string.
func (v Value) Any() any {
	switch v.kind {
	case KindBool:
		return v.n != 0
	case KindInt:
		return int(int64(v.n))
	case KindFloat:
		return math.Float64frombits(v.n)
	case KindString:
		return v.s
	case KindJSON:
		var x any
		if err := json.Unmarshal([]byte(v.s), &x); err != nil {
			return v.s
		}
		return x
	case KindTimestamp:
		return time.UnixMilli(int64(v.n)).UTC()
	}
	return nil
}

// ErrUnsupported is returned by FromAny for a Go value with no Value kind.
var ErrUnsupported = errors.New("unsupported value type")

// FromAny converts the result of an expression back to a Value. Integer
// types become ints, float types floats, time.Time a timestamp,
// time.Duration an int of milliseconds, slices, arrays and maps (whatever
// their element types) nested JSON values.
func FromAny(x any) (Value, error) {
	switch t := x.(type) {
	case nil:
		return Null(), nil
	case bool:
		return Bool(t), nil
	case int:
		return Int(int64(t)), nil
	case int64:
		return Int(t), nil
	case int32:
		return Int(int64(t)), nil
	case int16:
		return Int(int64(t)), nil
	case int8:
		return Int(int64(t)), nil
	case uint:
		return Int(int64(t)), nil
	case uint64:
		return Int(int64(t)), nil
	case uint32:
		return Int(int64(t)), nil
	case uint16:
		return Int(int64(t)), nil
	case uint8:
		return Int(int64(t)), nil
	case float64:
		return Float(t), nil
	case float32:
		return Float(float64(t)), nil
	case string:
		return String(t), nil
	case time.Time:
		return Timestamp(t.UnixMilli()), nil
	case time.Duration:
		return Int(t.Milliseconds()), nil
	case Value:
		return t, nil
	case map[string]any, []any:
		return jsonOf(x, t)
	}
	// Other slices, arrays and maps (expr's split() gives a []string,
	// groupBy() a map[any][]any) are nested values too.
	switch reflect.ValueOf(x).Kind() {
	case reflect.Slice, reflect.Array, reflect.Map:
		n, err := plainJSON(reflect.ValueOf(x))
		if err != nil {
			return Value{}, fmt.Errorf("%w: %T: %w", ErrUnsupported, x, err)
		}
		return jsonOf(x, n)
	}
	return Value{}, fmt.Errorf("%w: %T", ErrUnsupported, x)
}

// jsonOf is the nested value of x, given as n (x itself, or its plain
// JSON form from plainJSON).
func jsonOf(x, n any) (Value, error) {
	if n == nil {
		return Null(), nil // a nil slice or map
	}
	b, err := json.Marshal(n)
	if err != nil {
		return Value{}, fmt.Errorf("%w: %T: %w", ErrUnsupported, x, err)
	}
	return JSON(string(b)), nil
}

// plainJSON converts v to what encoding/json writes as FromAny's nested
// values: slices and arrays to []any, maps to map[string]any (keys that
// are not strings written as fmt.Sprint writes them), a duration to its
// milliseconds, as at the top level; other values are kept.
func plainJSON(v reflect.Value) (any, error) {
	switch v.Kind() {
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			return nil, nil
		}
		return plainJSON(v.Elem())
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			return nil, nil // as encoding/json writes it
		}
		if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8 && v.CanInterface() {
			return v.Interface(), nil // bytes: base64, as encoding/json writes them
		}
		out := make([]any, v.Len())
		for i := range out {
			e, err := plainJSON(v.Index(i))
			if err != nil {
				return nil, err
			}
			out[i] = e
		}
		return out, nil
	case reflect.Map:
		out := make(map[string]any, v.Len())
		it := v.MapRange()
		for it.Next() {
			k := it.Key()
			for k.Kind() == reflect.Interface && !k.IsNil() {
				k = k.Elem()
			}
			var name string
			switch k.Kind() {
			case reflect.String:
				name = k.String()
			case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
				reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
				name = fmt.Sprint(k.Interface())
			default:
				return nil, fmt.Errorf("map key of type %s", k.Type())
			}
			e, err := plainJSON(it.Value())
			if err != nil {
				return nil, err
			}
			out[name] = e
		}
		return out, nil
	}
	if !v.CanInterface() {
		return nil, fmt.Errorf("value of type %s", v.Type())
	}
	if d, ok := v.Interface().(time.Duration); ok {
		return d.Milliseconds(), nil
	}
	return v.Interface(), nil
}

// Equal reports whether a and b are the same value: same kind and
// content, except that ints and floats of the same numeric value are
// equal.
func Equal(a, b Value) bool { return Compare(a, b) == 0 }

// Compare orders values: null first, then bools, numbers (ints and floats
// compared numerically), timestamps, strings and JSON by their text.
// It returns -1, 0 or +1. NaN sorts before every other float.
func Compare(a, b Value) int {
	ra, rb := rank(a.kind), rank(b.kind)
	if ra != rb {
		return cmp3(ra, rb)
	}
	switch a.kind {
	case KindNull:
		return 0
	case KindBool:
		return cmp3(a.n, b.n)
	case KindInt, KindFloat:
		if a.kind == KindInt && b.kind == KindInt {
			return cmp3(int64(a.n), int64(b.n))
		}
		fa, fb := a.AsFloat(), b.AsFloat()
		switch {
		case math.IsNaN(fa) && math.IsNaN(fb):
			return 0
		case math.IsNaN(fa):
			return -1
		case math.IsNaN(fb):
			return 1
		}
		if c := cmp3(fa, fb); c != 0 || a.kind == b.kind {
			return c
		}
		// Equal as floats: compare precisely when an int is beyond 2^53.
		if a.kind == KindInt {
			return cmpIntFloat(int64(a.n), fb)
		}
		return -cmpIntFloat(int64(b.n), fa)
	case KindTimestamp:
		return cmp3(int64(a.n), int64(b.n))
	}
	if a.kind != b.kind {
		return cmp3(a.kind, b.kind)
	}
	return cmp3(a.s, b.s)
}

func cmpIntFloat(i int64, f float64) int {
	if f >= 9.2e18 {
		return -1
	}
	if f <= -9.2e18 {
		return 1
	}
	return cmp3(i, int64(f))
}

func rank(k Kind) int {
	switch k {
	case KindNull:
		return 0
	case KindBool:
		return 1
	case KindInt, KindFloat:
		return 2
	case KindTimestamp:
		return 3
	}
	return 4
}

func cmp3[T int | int64 | uint64 | float64 | string | Kind](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// String returns v as text: the JSON encoding, except that strings are
// unquoted.
func (v Value) String() string {
	if v.kind == KindString {
		return v.s
	}
	return string(v.AppendJSON(nil))
}

// AppendJSON appends v's JSON encoding to dst. Timestamps are written as
// RFC 3339 strings with millisecond precision, non-finite floats as null.
func (v Value) AppendJSON(dst []byte) []byte {
	switch v.kind {
	case KindNull:
		return append(dst, "null"...)
	case KindBool:
		if v.n != 0 {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case KindInt:
		return strconv.AppendInt(dst, int64(v.n), 10)
	case KindFloat:
		return appendFloat(dst, math.Float64frombits(v.n))
	case KindString:
		return AppendQuoted(dst, v.s)
	case KindTimestamp:
		dst = append(dst, '"')
		dst = time.UnixMilli(int64(v.n)).UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z07:00")
		return append(dst, '"')
	case KindJSON:
		return append(dst, v.s...)
	}
	return append(dst, "null"...)
}

// appendFloat writes a float so that it reads back as a float (3 -> 3.0).
func appendFloat(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, 'g', -1, 64)
	for _, c := range dst[start:] {
		if c == '.' || c == 'e' || c == 'E' {
			return dst
		}
	}
	return append(dst, ".0"...)
}

const hexDigits = "0123456789abcdef"

// safeASCII[c] is true for bytes written unescaped inside a JSON string.
var safeASCII = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	for c := 0x80; c < 0x100; c++ {
		t[c] = true // UTF-8 bytes pass through; invalid ones are fixed below
	}
	return t
}()

// AppendQuoted appends s as a JSON string. Invalid UTF-8 becomes U+FFFD.
func AppendQuoted(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x80 {
			if safeASCII[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := decodeRune(s[i:])
		if r == runeError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\uFFFD"...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
