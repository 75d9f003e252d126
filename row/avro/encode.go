package avro

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"time"

	havro "github.com/hamba/avro/v2"
	"github.com/valyala/fastjson"

	"github.com/sluicehq/sluice/row"
)

// ErrEncode is wrapped by the errors of encoding a row: a value that the
// writer schema has no place for.
var ErrEncode = errors.New("avro: cannot encode")

// Encoder writes rows of a row schema in the binary encoding of a writer
// schema. It is immutable and safe for concurrent use.
type Encoder struct {
	schema *Schema
	fields []encField
	rest   bool // NewRestEncoder
	pp     fastjson.ParserPool
}

type encField struct {
	name string
	pos  int    // row position, or -1: the default, or -2: from Row.Rest
	rest *node  // pos -2: the field's type, to find its end in Row.Rest
	def  []byte // binary default when pos < 0
	n    *enode
}

// enode writes one value of a writer type.
type enode struct {
	w        wire
	logical  havro.LogicalType
	scale    int
	prec     int // decimal: the most significant digits (0: unbounded)
	size     int
	items    *enode
	branches []*enode
	// nullBranch is the union's null branch, -1 if none; byKind[k] the
	// branch a value of kind k goes to (-1: none); arrayBranch the one
	// for JSON arrays.
	nullBranch  int
	byKind      [row.KindJSON + 1]int
	arrayBranch int
	fields      []encRecField
	symbols     map[string]int
	name        string
}

type encRecField struct {
	name string
	n    *enode
	def  []byte // binary default, nil if none
}

// NewEncoder returns an encoder of rows of rs in s's encoding. Each field
// of s takes the row field of its name; a field of s that rs lacks takes
// its default, and is an error without one.
func NewEncoder(s *Schema, rs *row.Schema) (*Encoder, error) {
	e := &Encoder{schema: s}
	memo := map[havro.Schema]*enode{}
	for _, f := range s.rec.Fields() {
		n, err := compileEnc(f.Type(), memo)
		if err != nil {
			return nil, fmt.Errorf("%w: field %s: %w", ErrSchema, f.Name(), err)
		}
		ef := encField{name: f.Name(), pos: -1, n: n}
		if p, ok := rs.Index(f.Name()); ok {
			ef.pos = p
		} else {
			if !f.HasDefault() {
				return nil, fmt.Errorf("%w: field %s is not an output field (output fields: %s) and has no default", ErrSchema, f.Name(), rs)
			}
			ef.def, err = appendDefault(nil, f.Type(), f.Default())
			if err != nil {
				return nil, fmt.Errorf("%w: field %s: default: %w", ErrSchema, f.Name(), err)
			}
		}
		e.fields = append(e.fields, ef)
	}
	return e, nil
}

// Schema returns the writer schema.
func (e *Encoder) Schema() *Schema { return e.schema }

func compileEnc(t havro.Schema, memo map[havro.Schema]*enode) (*enode, error) {
	t = deref(t)
	if n, ok := memo[t]; ok {
		return n, nil
	}
	n := &enode{logical: logicalOf(t), nullBranch: -1, arrayBranch: -1}
	memo[t] = n
	if d, ok := logicalSchema(t).(*havro.DecimalLogicalSchema); ok {
		n.scale, n.prec = d.Scale(), d.Precision()
	}
	pw, primitive := primitiveWire(t)
	n.w = pw
	switch t.Type() {
	case havro.Fixed:
		n.w = wFixed
		n.size = t.(*havro.FixedSchema).Size()
	case havro.Enum:
		n.w = wEnum
		n.symbols = map[string]int{}
		for i, s := range t.(*havro.EnumSchema).Symbols() {
			n.symbols[s] = i
		}
	case havro.Array:
		n.w = wArray
		it, err := compileEnc(t.(*havro.ArraySchema).Items(), memo)
		if err != nil {
			return nil, err
		}
		n.items = it
	case havro.Map:
		n.w = wMap
		it, err := compileEnc(t.(*havro.MapSchema).Values(), memo)
		if err != nil {
			return nil, err
		}
		n.items = it
	case havro.Record:
		n.w = wRecord
		n.name = t.(*havro.RecordSchema).FullName()
		for _, f := range t.(*havro.RecordSchema).Fields() {
			fn, err := compileEnc(f.Type(), memo)
			if err != nil {
				return nil, err
			}
			rf := encRecField{name: f.Name(), n: fn}
			if f.HasDefault() {
				rf.def, err = appendDefault(nil, f.Type(), f.Default())
				if err != nil {
					return nil, fmt.Errorf("%s: default: %w", f.Name(), err)
				}
			}
			n.fields = append(n.fields, rf)
		}
	case havro.Union:
		n.w = wUnion
		for _, b := range t.(*havro.UnionSchema).Types() {
			bn, err := compileEnc(b, memo)
			if err != nil {
				return nil, err
			}
			n.branches = append(n.branches, bn)
		}
		n.chooseBranches()
	default:
		if !primitive {
			return nil, fmt.Errorf("unsupported type %s", t.Type())
		}
	}
	return n, nil
}

// chooseBranches fills the union's branch table: for each kind, the first
// branch in order of preference.
func (n *enode) chooseBranches() {
	find := func(pred func(b *enode) bool) int {
		for i, b := range n.branches {
			if pred(b) {
				return i
			}
		}
		return -1
	}
	is := func(ws ...wire) func(*enode) bool {
		return func(b *enode) bool {
			for _, w := range ws {
				if b.w == w {
					return true
				}
			}
			return false
		}
	}
	plain := func(ws ...wire) func(*enode) bool {
		return func(b *enode) bool { return b.logical == "" && is(ws...)(b) }
	}
	timeLike := func(b *enode) bool { return b.logical == havro.Date || isTimestamp(b.logical) }
	decimal := func(b *enode) bool { return b.logical == havro.Decimal }
	first := func(preds ...func(*enode) bool) int {
		for _, p := range preds {
			if i := find(p); i >= 0 {
				return i
			}
		}
		return find(func(b *enode) bool { return b.w != wNull })
	}
	n.nullBranch = find(is(wNull))
	n.byKind[row.KindBool] = first(is(wBool), plain(wString))
	n.byKind[row.KindInt] = first(plain(wLong), plain(wInt), is(wLong, wInt), is(wDouble, wFloat), decimal, plain(wString))
	n.byKind[row.KindFloat] = first(is(wDouble), is(wFloat), decimal, plain(wString))
	n.byKind[row.KindString] = first(plain(wString), is(wString), is(wEnum), plain(wBytes), is(wBytes, wFixed))
	n.byKind[row.KindTimestamp] = first(timeLike, plain(wLong), plain(wString))
	n.byKind[row.KindJSON] = first(is(wRecord, wMap), is(wArray), plain(wString))
	n.byKind[row.KindNull] = n.nullBranch
	n.arrayBranch = first(is(wArray), plain(wString))
}

// Append appends r's encoding to dst. On error dst is returned as it was
// given (up to its length).
func (e *Encoder) Append(dst []byte, r row.Row) ([]byte, error) {
	start := len(dst)
	var err error
	restAt := 0
	for i := range e.fields {
		f := &e.fields[i]
		if f.rest != nil {
			end, err := skipOne(f.rest, r.Rest, restAt)
			if err != nil {
				return dst[:start], fmt.Errorf("%w: field %s from the record's rest: %w", ErrEncode, f.name, err)
			}
			dst = append(dst, r.Rest[restAt:end]...)
			restAt = end
			continue
		}
		if f.pos < 0 {
			dst = append(dst, f.def...)
			continue
		}
		dst, err = e.value(dst, f.n, r.Get(f.pos))
		if err != nil {
			return dst[:start], fmt.Errorf("%w: field %s: %w", ErrEncode, f.name, err)
		}
	}
	if restAt != len(r.Rest) && e.rest {
		return dst[:start], fmt.Errorf("%w: %d bytes left in the record's rest (not written with this schema)", ErrEncode, len(r.Rest)-restAt)
	}
	return dst, nil
}

func appendLong(dst []byte, v int64) []byte {
	return binary.AppendUvarint(dst, uint64(v<<1)^uint64(v>>63))
}

func appendBytes(dst []byte, b string) []byte {
	dst = appendLong(dst, int64(len(b)))
	return append(dst, b...)
}

func (e *Encoder) value(dst []byte, n *enode, v row.Value) ([]byte, error) {
	switch n.w {
	case wNull:
		if !v.IsNull() {
			return dst, fmt.Errorf("%s value %s where the schema has null", v.Kind(), short(v))
		}
		return dst, nil
	case wUnion:
		if v.IsNull() {
			if n.nullBranch < 0 {
				return dst, errors.New("null, but the union has no null branch")
			}
			return appendLong(dst, int64(n.nullBranch)), nil
		}
		b := n.byKind[v.Kind()]
		if v.Kind() == row.KindJSON && isJSONArray(v.AsString()) {
			b = n.arrayBranch
		}
		if b < 0 {
			return dst, fmt.Errorf("%s value %s fits no branch of the union", v.Kind(), short(v))
		}
		dst = appendLong(dst, int64(b))
		return e.value(dst, n.branches[b], v)
	}
	if v.IsNull() {
		return dst, fmt.Errorf("null, but the schema's %s is not nullable", wireName(n))
	}
	switch n.w {
	case wBool:
		c, err := row.Coerce(v, row.KindBool)
		if err != nil {
			return dst, err
		}
		if c.AsBool() {
			return append(dst, 1), nil
		}
		return append(dst, 0), nil
	case wInt, wLong:
		i, err := intFor(n, v)
		if err != nil {
			return dst, err
		}
		if n.w == wInt && i != int64(int32(i)) {
			return dst, fmt.Errorf("%d does not fit an Avro int", i)
		}
		return appendLong(dst, i), nil
	case wFloat, wDouble:
		c, err := row.Coerce(v, row.KindFloat)
		if err != nil {
			return dst, err
		}
		if n.w == wFloat {
			return binary.LittleEndian.AppendUint32(dst, math.Float32bits(float32(c.AsFloat()))), nil
		}
		return binary.LittleEndian.AppendUint64(dst, math.Float64bits(c.AsFloat())), nil
	case wString:
		return appendBytes(dst, text(v)), nil
	case wBytes:
		if n.logical == havro.Decimal {
			b, err := unscaledBytes(v, n.scale, n.prec, 0)
			if err != nil {
				return dst, err
			}
			return appendBytes(dst, string(b)), nil
		}
		return appendBytes(dst, text(v)), nil
	case wFixed:
		if n.logical == havro.Decimal {
			b, err := unscaledBytes(v, n.scale, n.prec, n.size)
			if err != nil {
				return dst, err
			}
			return append(dst, b...), nil
		}
		s := text(v)
		if n.logical == havro.UUID && len(s) != n.size {
			return parseUUID(dst, s)
		}
		if len(s) != n.size {
			return dst, fmt.Errorf("%d bytes for a fixed of %d", len(s), n.size)
		}
		return append(dst, s...), nil
	case wEnum:
		i, ok := n.symbols[text(v)]
		if !ok {
			return dst, fmt.Errorf("%q is not a symbol of the enum", text(v))
		}
		return appendLong(dst, int64(i)), nil
	}
	// Records, arrays and maps come from json values (or strings of JSON).
	if v.Kind() != row.KindJSON && v.Kind() != row.KindString {
		return dst, fmt.Errorf("%s value %s where the schema has %s", v.Kind(), short(v), wireName(n))
	}
	return e.jsonText(dst, n, v.AsString())
}

// jsonText encodes the JSON text s as n's type. (Apart from value: a
// defer there would cost every call, since value has too many returns
// for open-coded defers.)
func (e *Encoder) jsonText(dst []byte, n *enode, s string) ([]byte, error) {
	p := e.pp.Get()
	defer e.pp.Put(p)
	jv, err := p.Parse(s)
	if err != nil {
		return dst, fmt.Errorf("%s is not JSON: %w", wireName(n), err)
	}
	return e.jsonValue(dst, n, jv, 0)
}

func isJSONArray(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ', '\t', '\n', '\r':
			continue
		case '[':
			return true
		}
		return false
	}
	return false
}

func text(v row.Value) string {
	switch v.Kind() {
	case row.KindString, row.KindJSON:
		return v.AsString()
	case row.KindTimestamp:
		return time.UnixMilli(v.AsInt()).UTC().Format("2006-01-02T15:04:05.000Z07:00")
	}
	return v.String()
}

func short(v row.Value) string {
	s := v.String()
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return s
}

func wireName(n *enode) string {
	names := [...]string{"null", "boolean", "int", "long", "float", "double", "bytes", "string", "fixed", "enum", "array", "map", "union", "record"}
	if int(n.w) < len(names) {
		if n.name != "" {
			return "record " + n.name
		}
		return names[n.w]
	}
	return "?"
}

// intFor converts v to the integer an int or long of n's logical type
// holds: times (timestamps, epoch-millisecond numbers, RFC 3339 strings)
// to milliseconds, microseconds, nanoseconds or days; other values to integers.
func intFor(n *enode, v row.Value) (int64, error) {
	if n.logical == havro.Date || isTimestamp(n.logical) {
		ms, err := v.Millis()
		if err != nil {
			return 0, err
		}
		per := int64(1) // units per millisecond
		switch n.logical {
		case havro.TimestampMicros, havro.LocalTimestampMicros:
			per = 1000
		case timestampNanos, localTimestampNanos:
			per = 1_000_000
		case havro.Date:
			return floorDiv(ms, 86_400_000), nil
		}
		if ms > math.MaxInt64/per || ms < math.MinInt64/per {
			return 0, fmt.Errorf("time %d ms out of range of %s", ms, n.logical)
		}
		return ms * per, nil
	}
	c, err := row.Coerce(v, row.KindInt)
	if err != nil {
		return 0, err
	}
	return c.AsInt(), nil
}

// maxDecimalExponent bounds the exponent of a decimal string: past it a
// value is far beyond any decimal's precision (or rounds to zero), and
// reading it exactly would first build a number of up to a million
// digits.
const maxDecimalExponent = 1000

// unscaledBytes returns v·10^scale rounded to an integer (half away from
// zero) as a two's-complement big-endian byte string: minimal when size
// is 0, else exactly size bytes. A value of more than prec significant
// digits once scaled (prec > 0) is refused: the precision is "the
// (maximum) precision of decimals stored in this type" (Avro spec,
// Logical Types, Decimal).
func unscaledBytes(v row.Value, scale, prec, size int) ([]byte, error) {
	var r big.Rat
	switch v.Kind() {
	case row.KindInt:
		r.SetInt64(v.AsInt())
	case row.KindFloat:
		f := v.AsFloat()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%v is not a decimal", f)
		}
		// The shortest decimal that reads back as f, not its binary
		// expansion: 0.1 is 0.1.
		if _, ok := r.SetString(strconv.FormatFloat(f, 'g', -1, 64)); !ok {
			return nil, fmt.Errorf("%v is not a decimal", f)
		}
	case row.KindString:
		s := v.AsString()
		if i := strings.IndexAny(s, "eE"); i >= 0 {
			if e, err := strconv.ParseInt(s[i+1:], 10, 64); err != nil || e > maxDecimalExponent || e < -maxDecimalExponent {
				return nil, fmt.Errorf("%q is not a decimal of at most %d digits", short(v), prec)
			}
		}
		if _, ok := r.SetString(s); !ok {
			return nil, fmt.Errorf("%q is not a decimal", short(v))
		}
	default:
		return nil, fmt.Errorf("%s value %s is not a decimal", v.Kind(), short(v))
	}
	r.Mul(&r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)))
	// Round half away from zero.
	num, den := new(big.Int).Set(r.Num()), r.Denom()
	q, m := new(big.Int).QuoRem(num, den, new(big.Int))
	m.Abs(m).Lsh(m, 1)
	if m.Cmp(den) >= 0 {
		if num.Sign() < 0 {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
	}
	if prec > 0 && new(big.Int).Abs(q).Cmp(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(prec)), nil)) >= 0 {
		return nil, fmt.Errorf("%s has more than the %d digits of a decimal(%d,%d)", short(v), prec, prec, scale)
	}
	b := twosComplement(q)
	if size > 0 {
		if len(b) > size {
			return nil, fmt.Errorf("%s does not fit a decimal of %d bytes", short(v), size)
		}
		pad := byte(0)
		if q.Sign() < 0 {
			pad = 0xff
		}
		out := make([]byte, size)
		for i := range size - len(b) {
			out[i] = pad
		}
		copy(out[size-len(b):], b)
		return out, nil
	}
	return b, nil
}

// twosComplement returns the shortest two's-complement big-endian bytes
// of x.
func twosComplement(x *big.Int) []byte {
	if x.Sign() >= 0 {
		b := x.Bytes()
		if len(b) == 0 || b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return b
	}
	// -x-1 has the complement bits of x.
	y := new(big.Int).Neg(x)
	y.Sub(y, big.NewInt(1))
	b := y.Bytes()
	for i := range b {
		b[i] = ^b[i]
	}
	if len(b) == 0 || b[0]&0x80 == 0 {
		b = append([]byte{0xff}, b...)
	}
	return b
}

const maxJSONDepth = 128

// jsonValue encodes a JSON value as n's type.
func (e *Encoder) jsonValue(dst []byte, n *enode, jv *fastjson.Value, depth int) ([]byte, error) {
	if depth > maxJSONDepth {
		return dst, fmt.Errorf("nested deeper than %d", maxJSONDepth)
	}
	switch n.w {
	case wUnion:
		b := -1
		switch jv.Type() {
		case fastjson.TypeNull:
			b = n.nullBranch
		case fastjson.TypeObject:
			b = n.byKind[row.KindJSON]
		case fastjson.TypeArray:
			b = n.arrayBranch
		case fastjson.TypeString:
			b = n.byKind[row.KindString]
		case fastjson.TypeTrue, fastjson.TypeFalse:
			b = n.byKind[row.KindBool]
		case fastjson.TypeNumber:
			if _, err := jv.Int64(); err == nil {
				b = n.byKind[row.KindInt]
			} else {
				b = n.byKind[row.KindFloat]
			}
		}
		if b < 0 {
			return dst, fmt.Errorf("JSON %s fits no branch of the union", jv.Type())
		}
		dst = appendLong(dst, int64(b))
		return e.jsonValue(dst, n.branches[b], jv, depth+1)
	case wArray:
		a, err := jv.Array()
		if err != nil {
			return dst, fmt.Errorf("JSON %s where the schema has an array", jv.Type())
		}
		if len(a) > 0 {
			dst = appendLong(dst, int64(len(a)))
			for _, it := range a {
				if dst, err = e.jsonValue(dst, n.items, it, depth+1); err != nil {
					return dst, err
				}
			}
		}
		return append(dst, 0), nil
	case wMap:
		o, err := jv.Object()
		if err != nil {
			return dst, fmt.Errorf("JSON %s where the schema has a map", jv.Type())
		}
		if o.Len() > 0 {
			dst = appendLong(dst, int64(o.Len()))
			o.Visit(func(k []byte, it *fastjson.Value) {
				if err != nil {
					return
				}
				dst = appendBytes(dst, unsafeString(k))
				dst, err = e.jsonValue(dst, n.items, it, depth+1)
			})
			if err != nil {
				return dst, err
			}
		}
		return append(dst, 0), nil
	case wRecord:
		o, err := jv.Object()
		if err != nil {
			return dst, fmt.Errorf("JSON %s where the schema has %s", jv.Type(), wireName(n))
		}
		for _, f := range n.fields {
			m := o.Get(f.name)
			if m == nil {
				if f.def == nil {
					return dst, fmt.Errorf("%s: member %q is missing and has no default", wireName(n), f.name)
				}
				dst = append(dst, f.def...)
				continue
			}
			if dst, err = e.jsonValue(dst, f.n, m, depth+1); err != nil {
				return dst, fmt.Errorf("%s.%s: %w", wireName(n), f.name, err)
			}
		}
		return dst, nil
	}
	return e.value(dst, n, scalarOf(jv))
}

// scalarOf converts a JSON value to a row value: numbers to ints where
// integral, objects and arrays to json.
func scalarOf(jv *fastjson.Value) row.Value {
	switch jv.Type() {
	case fastjson.TypeNull:
		return row.Null()
	case fastjson.TypeTrue:
		return row.Bool(true)
	case fastjson.TypeFalse:
		return row.Bool(false)
	case fastjson.TypeString:
		b, _ := jv.StringBytes()
		return row.String(string(b))
	case fastjson.TypeNumber:
		if i, err := jv.Int64(); err == nil {
			return row.Int(i)
		}
		f, _ := jv.Float64()
		return row.Float(f)
	}
	return row.JSON(string(jv.MarshalTo(nil)))
}

// appendDefault appends the binary encoding of a field default as
// hamba/avro parses it (nil, bool, int, int64, float32, float64, string,
// []byte, a byte array for fixed, []any, map[string]any).
func appendDefault(dst []byte, t havro.Schema, def any) ([]byte, error) {
	t = deref(t)
	switch t.Type() {
	case havro.Null:
		return dst, nil
	case havro.Boolean:
		b, ok := def.(bool)
		if !ok {
			return dst, fmt.Errorf("%v is not a boolean", def)
		}
		if b {
			return append(dst, 1), nil
		}
		return append(dst, 0), nil
	case havro.Int, havro.Long:
		i, ok := toInt64(def)
		if !ok {
			return dst, fmt.Errorf("%v is not an integer", def)
		}
		return appendLong(dst, i), nil
	case havro.Float, havro.Double:
		f, ok := toFloat64(def)
		if !ok {
			return dst, fmt.Errorf("%v is not a number", def)
		}
		if t.Type() == havro.Float {
			return binary.LittleEndian.AppendUint32(dst, math.Float32bits(float32(f))), nil
		}
		return binary.LittleEndian.AppendUint64(dst, math.Float64bits(f)), nil
	case havro.String, havro.Bytes:
		b, ok := toBytes(def)
		if !ok {
			return dst, fmt.Errorf("%v is not a string", def)
		}
		return appendBytes(dst, string(b)), nil
	case havro.Fixed:
		b, ok := toBytes(def)
		if !ok || len(b) != t.(*havro.FixedSchema).Size() {
			return dst, fmt.Errorf("%v is not a fixed of %d bytes", def, t.(*havro.FixedSchema).Size())
		}
		return append(dst, b...), nil
	case havro.Enum:
		s, _ := def.(string)
		for i, sym := range t.(*havro.EnumSchema).Symbols() {
			if sym == s {
				return appendLong(dst, int64(i)), nil
			}
		}
		return dst, fmt.Errorf("%v is not a symbol", def)
	case havro.Array:
		a, ok := def.([]any)
		if !ok {
			return dst, fmt.Errorf("%v is not an array", def)
		}
		if len(a) > 0 {
			dst = appendLong(dst, int64(len(a)))
			var err error
			for _, it := range a {
				if dst, err = appendDefault(dst, t.(*havro.ArraySchema).Items(), it); err != nil {
					return dst, err
				}
			}
		}
		return append(dst, 0), nil
	case havro.Map:
		m, ok := def.(map[string]any)
		if !ok {
			return dst, fmt.Errorf("%v is not a map", def)
		}
		if len(m) > 0 {
			dst = appendLong(dst, int64(len(m)))
			keys := sortedKeys(m)
			var err error
			for _, k := range keys {
				dst = appendBytes(dst, k)
				if dst, err = appendDefault(dst, t.(*havro.MapSchema).Values(), m[k]); err != nil {
					return dst, err
				}
			}
		}
		return append(dst, 0), nil
	case havro.Record:
		m, ok := def.(map[string]any)
		if !ok {
			return dst, fmt.Errorf("%v is not a record", def)
		}
		var err error
		for _, f := range t.(*havro.RecordSchema).Fields() {
			fv, ok := m[f.Name()]
			if !ok {
				fv = f.Default()
			}
			if dst, err = appendDefault(dst, f.Type(), fv); err != nil {
				return dst, err
			}
		}
		return dst, nil
	case havro.Union:
		// A union's default is of its first branch.
		dst = append(dst, 0)
		return appendDefault(dst, t.(*havro.UnionSchema).Types()[0], def)
	}
	return dst, fmt.Errorf("unsupported type %s", t.Type())
}

func toInt64(x any) (int64, bool) {
	switch v := x.(type) {
	case int:
		return int64(v), true
	case int8:
		return int64(v), true
	case int16:
		return int64(v), true
	case int32:
		return int64(v), true
	case int64:
		return v, true
	case float64:
		return int64(v), v == math.Trunc(v)
	case float32:
		return int64(v), float64(v) == math.Trunc(float64(v))
	}
	return 0, false
}

func toFloat64(x any) (float64, bool) {
	switch v := x.(type) {
	case float32:
		return float64(v), true
	case float64:
		return v, true
	}
	if i, ok := toInt64(x); ok {
		return float64(i), true
	}
	return 0, false
}

func toBytes(x any) ([]byte, bool) {
	switch v := x.(type) {
	case string:
		return []byte(v), true
	case []byte:
		return v, true
	}
	rv := reflect.ValueOf(x)
	if rv.Kind() == reflect.Array && rv.Type().Elem().Kind() == reflect.Uint8 {
		b := make([]byte, rv.Len())
		reflect.Copy(reflect.ValueOf(b), rv)
		return b, true
	}
	return nil, false
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}
