package row

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	"github.com/valyala/fastjson"
)

// ErrNotObject is returned when a JSON record is not an object.
var ErrNotObject = errors.New("record is not a JSON object")

// JSONDecoder decodes JSON objects into rows of a schema, extracting only
// the schema's fields (absent fields are null). With keepRest, every other
// member is kept verbatim in Row.Rest. A JSONDecoder is not safe for
// concurrent use; make one per goroutine.
type JSONDecoder struct {
	schema  *Schema
	keep    bool
	p       fastjson.Parser
	arena   Arena
	scratch []byte
	nested  []byte
	// byOrdinal caches, per member ordinal, the last key seen there and
	// its schema position (-1: not a field): records of one source
	// usually list their keys in the same order, so this usually spares
	// the map lookup.
	byOrdinal []ordinalEntry
}

type ordinalEntry struct {
	key string
	idx int
}

// NewJSONDecoder returns a decoder of rows of s. keepRest keeps members
// that are not fields of s in Row.Rest.
func NewJSONDecoder(s *Schema, keepRest bool) *JSONDecoder {
	return &JSONDecoder{schema: s, keep: keepRest}
}

// Decode decodes one JSON object. The returned row does not share memory
// with data. A field whose schema kind is declared is converted to it (see
// Coerce); a value that cannot be is an error.
func (d *JSONDecoder) Decode(data []byte) (Row, error) {
	v, err := d.p.ParseBytes(data)
	if err != nil {
		return Row{}, fmt.Errorf("json: %w", err)
	}
	o, err := v.Object()
	if err != nil {
		return Row{}, fmt.Errorf("json: %w (it is %s)", ErrNotObject, v.Type())
	}
	r := Row{Vals: d.arena.Values(d.schema.Len())}
	rest := d.scratch[:0]
	var ferr error
	ord := 0
	o.Visit(func(key []byte, fv *fastjson.Value) {
		if ferr != nil {
			return
		}
		var i int
		if ord < len(d.byOrdinal) && d.byOrdinal[ord].key == string(key) {
			i = d.byOrdinal[ord].idx
		} else {
			j, found := d.schema.index[string(key)]
			if !found {
				j = -1
			}
			i = j
			if ord < 64 {
				for len(d.byOrdinal) <= ord {
					d.byOrdinal = append(d.byOrdinal, ordinalEntry{idx: -1})
				}
				d.byOrdinal[ord] = ordinalEntry{key: string(key), idx: j}
			}
		}
		ord++
		if i < 0 {
			if d.keep {
				if len(rest) > 0 {
					rest = append(rest, ',')
				}
				rest = AppendQuoted(rest, string(key))
				rest = append(rest, ':')
				rest = appendValue(rest, fv)
			}
			return
		}
		val := d.value(fv)
		if k := d.schema.fields[i].Kind; k != KindNull && val.kind != KindNull && val.kind != k {
			val, ferr = Coerce(val, k)
			if ferr != nil {
				ferr = fmt.Errorf("json: field %q: %w", d.schema.fields[i].Name, ferr)
				return
			}
		}
		r.Vals[i] = val
	})
	if ferr != nil {
		return Row{}, ferr
	}
	if len(rest) > 0 {
		r.Rest = d.arena.Bytes(rest)
	}
	d.scratch = rest[:0]
	return r, nil
}

func (d *JSONDecoder) value(fv *fastjson.Value) Value {
	switch fv.Type() {
	case fastjson.TypeTrue:
		return Bool(true)
	case fastjson.TypeFalse:
		return Bool(false)
	case fastjson.TypeNumber:
		d.nested = fv.MarshalTo(d.nested[:0])
		raw := d.nested
		if i, ok := parseSmallInt(raw); ok {
			return Int(i)
		}
		// fastjson's Int64 builds an error for every non-integer, and its
		// float parsing is not always correctly rounded: use strconv.
		if !bytes.ContainsAny(raw, ".eE") {
			if i, err := strconv.ParseInt(unsafeString(raw), 10, 64); err == nil {
				return Int(i)
			}
		}
		f, err := strconv.ParseFloat(unsafeString(raw), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			f, _ = fv.Float64()
		}
		return Float(f)
	case fastjson.TypeString:
		b, _ := fv.StringBytes()
		return String(d.arena.String(b))
	case fastjson.TypeObject, fastjson.TypeArray:
		d.nested = appendValue(d.nested[:0], fv)
		return JSON(d.arena.String(d.nested))
	}
	return Null()
}

// ErrType is returned by Coerce for a value that cannot be converted.
var ErrType = errors.New("type mismatch")

// Coerce converts v to kind k where that loses nothing essential: ints to
// floats, integral floats to ints, numbers and RFC 3339 strings to
// timestamps, strings of numbers or bools to those, scalars to strings.
// Null stays null; KindNull accepts anything.
func Coerce(v Value, k Kind) (Value, error) {
	if k == KindNull || v.kind == KindNull || v.kind == k {
		return v, nil
	}
	switch k {
	case KindFloat:
		switch v.kind {
		case KindInt:
			return Float(float64(int64(v.n))), nil
		case KindString:
			if f, err := parseFloat(v.s); err == nil {
				return Float(f), nil
			}
		}
	case KindInt:
		switch v.kind {
		case KindFloat:
			f := v.AsFloat()
			if f == float64(int64(f)) {
				return Int(int64(f)), nil
			}
		case KindString:
			if i, err := parseInt(v.s); err == nil {
				return Int(i), nil
			}
		case KindTimestamp:
			return Int(int64(v.n)), nil
		}
	case KindTimestamp:
		if ms, err := v.Millis(); err == nil {
			return Timestamp(ms), nil
		}
	case KindBool:
		if v.kind == KindString {
			switch v.s {
			case "true":
				return Bool(true), nil
			case "false":
				return Bool(false), nil
			}
		}
	case KindString:
		if v.kind != KindJSON {
			return String(v.String()), nil
		}
	case KindJSON:
		return JSON(string(v.AppendJSON(nil))), nil
	}
	return Value{}, fmt.Errorf("%w: cannot use %s value %s as %s", ErrType, v.kind, truncate(v.String(), 40), k)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// JSONEncoder writes rows of a schema as JSON objects: the schema's
// fields in order (nulls included), then the row's Rest members. It is
// safe for concurrent use.
type JSONEncoder struct {
	keys [][]byte // `"name":` per field
}

// NewJSONEncoder returns an encoder of rows of s.
func NewJSONEncoder(s *Schema) *JSONEncoder {
	e := &JSONEncoder{keys: make([][]byte, s.Len())}
	for i, f := range s.fields {
		e.keys[i] = append(AppendQuoted(nil, f.Name), ':')
	}
	return e
}

// Append appends r as one JSON object (no newline) to dst.
func (e *JSONEncoder) Append(dst []byte, r Row) []byte {
	dst = append(dst, '{')
	for i, k := range e.keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, k...)
		dst = r.Get(i).AppendJSON(dst)
	}
	if len(r.Rest) > 0 {
		if len(e.keys) > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, r.Rest...)
	}
	return append(dst, '}')
}

// appendValue writes a parsed JSON value back as strictly valid JSON.
// fastjson's own MarshalTo repeats some lenient input verbatim (invalid
// escapes, numbers like "01"), which this normalises.
func appendValue(dst []byte, v *fastjson.Value) []byte {
	switch v.Type() {
	case fastjson.TypeObject:
		o, _ := v.Object()
		dst = append(dst, '{')
		first := true
		o.Visit(func(key []byte, fv *fastjson.Value) {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = AppendQuoted(dst, string(key))
			dst = append(dst, ':')
			dst = appendValue(dst, fv)
		})
		return append(dst, '}')
	case fastjson.TypeArray:
		a, _ := v.Array()
		dst = append(dst, '[')
		for i, e := range a {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendValue(dst, e)
		}
		return append(dst, ']')
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		return AppendQuoted(dst, string(b))
	case fastjson.TypeNumber:
		start := len(dst)
		dst = v.MarshalTo(dst)
		if validNumber(dst[start:]) {
			return dst
		}
		f, err := strconv.ParseFloat(string(dst[start:]), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			f, _ = v.Float64()
		}
		return appendFloat(dst[:start], f)
	case fastjson.TypeTrue:
		return append(dst, "true"...)
	case fastjson.TypeFalse:
		return append(dst, "false"...)
	}
	return append(dst, "null"...)
}

// validNumber reports whether b follows the JSON number grammar.
func validNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(b)
}

// parseSmallInt parses an optionally negative decimal integer of at most
// 18 digits (which cannot overflow).
func parseSmallInt(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && b[0] == '-' {
		neg = true
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 18 || (b[0] == '0' && len(b) > 1) {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}
