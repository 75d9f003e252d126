package connect

import (
	"fmt"
	"math"
	"strconv"

	"github.com/sluicehq/sluice/nexmark"
	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/sql/types"
	"github.com/valyala/fastjson"
)

// TimestampFormat is how JSON writes TIMESTAMP values
// ('json.timestamp-format').
type TimestampFormat uint8

// The timestamp formats.
const (
	// EpochMillis writes a number of milliseconds since the epoch (the
	// default, and the canonical encoding).
	EpochMillis TimestampFormat = iota
	// SQLTimestamp writes "2015-07-15 00:00:00.123".
	SQLTimestamp
	// ISOTimestamp writes "2015-07-15T00:00:00.123" ("...Z" for
	// TIMESTAMP_LTZ).
	ISOTimestamp
)

// JSONOptions tune AppendJSON.
type JSONOptions struct {
	Timestamps TimestampFormat
	// Op writes the row's changelog operation first, {"op":"+I",...}.
	Op bool
}

func parseTimestampFormat(opts Options, key string) (TimestampFormat, error) {
	v, err := optEnum(opts, key, "EPOCH_MILLIS", "EPOCH_MILLIS", "SQL", "ISO-8601")
	if err != nil {
		return 0, err
	}
	switch v {
	case "SQL":
		return SQLTimestamp, nil
	case "ISO-8601":
		return ISOTimestamp, nil
	}
	return EpochMillis, nil
}

// AppendJSON appends the row vals of the columns cols as one JSON object:
// keys the column names in order (columns with a Path nested back into
// objects, an object whose fields are all null written as null), NULL as
// null, integers as numbers, DECIMAL with exactly its scale's fraction
// digits, TIMESTAMP as epoch milliseconds (or text, per o.Timestamps),
// DATE and TIME as text, strings escaped as nexmark.AppendJSONString does,
// ROW, ARRAY and MAP values (JSON text) verbatim, non-finite floats as
// null. It is the canonical encoding the Nexmark checksums hash.
func AppendJSON(dst []byte, cols []Column, vals []row.Value, o JSONOptions) []byte {
	return appendJSONOp(dst, cols, vals, o, exec.Insert)
}

// AppendChangeJSON is AppendJSON for a changelog row: with o.Op, the
// object starts with "op":"+I" (or -U, +U, -D).
func AppendChangeJSON(dst []byte, cols []Column, c exec.Change, o JSONOptions) []byte {
	return appendJSONOp(dst, cols, c.Vals, o, c.Op)
}

func appendJSONOp(dst []byte, cols []Column, vals []row.Value, o JSONOptions, op exec.Op) []byte {
	dst = append(dst, '{')
	first := true
	if o.Op {
		dst = append(dst, `"op":"`...)
		dst = append(dst, op.String()...)
		dst = append(dst, '"')
		first = false
	}
	dst = appendObject(dst, cols, vals, 0, o, first)
	return append(dst, '}')
}

// appendObject writes the members of the object at depth: cols all share
// the same path up to depth.
func appendObject(dst []byte, cols []Column, vals []row.Value, depth int, o JSONOptions, first bool) []byte {
	for i := 0; i < len(cols); {
		p := cols[i].path()
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = nexmark.AppendJSONString(dst, p[depth])
		dst = append(dst, ':')
		if len(p) == depth+1 {
			var v row.Value
			if i < len(vals) {
				v = vals[i]
			}
			dst = appendValue(dst, cols[i].Type, v, o)
			i++
			continue
		}
		// A nested object: the run of columns sharing p[:depth+1].
		j := i + 1
		for j < len(cols) {
			q := cols[j].path()
			if len(q) <= depth+1 || q[depth] != p[depth] {
				break
			}
			j++
		}
		allNull := true
		for k := i; k < j && k < len(vals); k++ {
			if !vals[k].IsNull() {
				allNull = false
				break
			}
		}
		if allNull {
			dst = append(dst, "null"...)
		} else {
			dst = append(dst, '{')
			dst = appendObject(dst, cols[i:j], vals[i:min(j, len(vals))], depth+1, o, true)
			dst = append(dst, '}')
		}
		i = j
	}
	return dst
}

// appendValue writes v of type t.
func appendValue(dst []byte, t types.Type, v row.Value, o JSONOptions) []byte {
	if v.IsNull() {
		return append(dst, "null"...)
	}
	switch {
	case t.Kind == types.Decimal && v.Kind() == row.KindInt:
		return appendDecimal(dst, v.AsInt(), t.Scale)
	case t.IsTimestamp() && v.Kind() == row.KindTimestamp:
		switch o.Timestamps {
		case SQLTimestamp:
			dst = append(dst, '"')
			dst = appendTimestamp(dst, v.AsInt(), false, false)
			return append(dst, '"')
		case ISOTimestamp:
			dst = append(dst, '"')
			dst = appendTimestamp(dst, v.AsInt(), true, t.Kind == types.TimestampLTZ)
			return append(dst, '"')
		}
		return strconv.AppendInt(dst, v.AsInt(), 10)
	case t.Kind == types.Date && v.Kind() == row.KindInt:
		dst = append(dst, '"')
		dst = appendDate(dst, v.AsInt())
		return append(dst, '"')
	case t.Kind == types.Time && v.Kind() == row.KindInt:
		dst = append(dst, '"')
		dst = appendTime(dst, v.AsInt())
		return append(dst, '"')
	}
	switch v.Kind() {
	case row.KindBool:
		if v.AsBool() {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case row.KindInt, row.KindTimestamp:
		return strconv.AppendInt(dst, v.AsInt(), 10)
	case row.KindFloat:
		f := v.AsFloat()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return append(dst, "null"...)
		}
		return appendFloat(dst, f)
	case row.KindString:
		return nexmark.AppendJSONString(dst, v.AsString())
	case row.KindJSON:
		return append(dst, v.AsString()...)
	}
	return append(dst, "null"...)
}

// appendFloat writes f as the shortest decimal that reads back the same,
// in plain notation between 1e-7 and 1e21 (as JavaScript and Jackson do)
// and with an exponent outside.
func appendFloat(dst []byte, f float64) []byte {
	a := math.Abs(f)
	if a != 0 && (a < 1e-7 || a >= 1e21) {
		return strconv.AppendFloat(dst, f, 'e', -1, 64)
	}
	return strconv.AppendFloat(dst, f, 'f', -1, 64)
}

// jsonDecoder reads JSON objects into the values of a table's columns,
// each column from its path. It is not safe for concurrent use.
type jsonDecoder struct {
	cols        []Column
	p           fastjson.Parser
	arena       row.Arena
	failMissing bool
	scratch     []byte
}

func newJSONDecoder(cols []Column, failMissing bool) *jsonDecoder {
	return &jsonDecoder{cols: cols, failMissing: failMissing}
}

// decode parses one JSON object into a new value slice of len(cols).
func (d *jsonDecoder) decode(data []byte) ([]row.Value, error) {
	v, err := d.p.ParseBytes(data)
	if err != nil {
		return nil, fmt.Errorf("bad JSON: %w", err)
	}
	if v.Type() != fastjson.TypeObject {
		return nil, fmt.Errorf("bad JSON: want an object, got %s", v.Type())
	}
	vals := d.arena.Values(len(d.cols))
	for i := range d.cols {
		c := &d.cols[i]
		if c.Metadata != "" {
			continue
		}
		fv := lookupPath(v, c.path())
		if fv == nil {
			if d.failMissing {
				return nil, fmt.Errorf("field %s is missing", pathString(c.path()))
			}
			continue
		}
		x, err := d.value(fv, c.Type)
		if err != nil {
			return nil, fmt.Errorf("field %s (%s): %w", pathString(c.path()), c.Type, err)
		}
		vals[i] = x
	}
	return vals, nil
}

// lookupPath returns the value at path, nil when some object on the way
// is missing; a null on the way gives the null value.
func lookupPath(v *fastjson.Value, path []string) *fastjson.Value {
	for _, k := range path {
		if v.Type() == fastjson.TypeNull {
			return v
		}
		if v.Type() != fastjson.TypeObject {
			return nil
		}
		v = v.Get(k)
		if v == nil {
			return nil
		}
	}
	return v
}

func pathString(p []string) string {
	s := p[0]
	for _, k := range p[1:] {
		s += "." + k
	}
	return s
}

func (d *jsonDecoder) value(fv *fastjson.Value, t types.Type) (row.Value, error) {
	switch fv.Type() {
	case fastjson.TypeNull:
		return row.Value{}, nil
	case fastjson.TypeString:
		b, _ := fv.StringBytes()
		b = validUTF8(b)
		if t.IsString() {
			return row.String(d.arena.String(b)), nil
		}
		return parseText(string(b), t)
	case fastjson.TypeTrue, fastjson.TypeFalse:
		switch {
		case t.Kind == types.Boolean:
			return row.Bool(fv.Type() == fastjson.TypeTrue), nil
		case t.IsString():
			return row.String(fv.String()), nil
		}
		return row.Value{}, fmt.Errorf("a boolean cannot be read as %s", t.Kind)
	case fastjson.TypeNumber:
		d.scratch = fv.MarshalTo(d.scratch[:0])
		num := string(d.scratch)
		switch {
		case t.IsInteger() || t.Kind == types.IntervalDayTime || t.Kind == types.IntervalYearMonth || t.Kind == types.Date || t.Kind == types.Time:
			n, err := fv.Int64()
			if err != nil {
				return row.Value{}, fmt.Errorf("%s is not an integer", num)
			}
			return checkRange(n, t)
		case t.IsTimestamp():
			n, err := fv.Int64()
			if err != nil {
				return row.Value{}, fmt.Errorf("%s is not epoch milliseconds", num)
			}
			return row.Timestamp(n), nil
		case t.Kind == types.Float || t.Kind == types.Double:
			f, err := fv.Float64()
			if err != nil {
				return row.Value{}, fmt.Errorf("%s is not a number", num)
			}
			return row.Float(f), nil
		case t.Kind == types.Decimal:
			n, err := parseDecimal(num, t.Scale)
			if err != nil {
				return row.Value{}, err
			}
			return row.Int(n), nil
		case t.IsString():
			return row.String(num), nil
		}
		return row.Value{}, fmt.Errorf("a number cannot be read as %s", t.Kind)
	case fastjson.TypeObject, fastjson.TypeArray:
		switch t.Kind {
		case types.Row, types.Map:
			if fv.Type() != fastjson.TypeObject {
				return row.Value{}, fmt.Errorf("an array cannot be read as %s", t.Kind)
			}
		case types.Array:
			if fv.Type() != fastjson.TypeArray {
				return row.Value{}, fmt.Errorf("an object cannot be read as ARRAY")
			}
		case types.Char, types.Varchar:
			return row.String(string(fv.MarshalTo(nil))), nil
		default:
			return row.Value{}, fmt.Errorf("%s cannot be read as %s", fv.Type(), t.Kind)
		}
		return row.JSON(string(fv.MarshalTo(nil))), nil
	}
	return row.Value{}, fmt.Errorf("unexpected JSON %s", fv.Type())
}

func validJSON(s string) bool { return fastjson.Validate(s) == nil }
