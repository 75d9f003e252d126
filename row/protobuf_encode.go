package row

import (
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fastjson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// ProtoEncoder writes rows as protobuf messages of one type: each field
// of the message takes the row field of the same name, converted as the
// decoder's mapping says in reverse (timestamps and int milliseconds to
// Timestamp, int milliseconds to Duration, enum names to numbers, base64
// strings to bytes, json values to messages, repeated fields and maps).
// Null values and proto3 zero values of fields without presence are not
// written. Members kept in Row.Rest are written to the message fields of
// their names. It is safe for concurrent use.
type ProtoEncoder struct {
	msg  *pbMsg
	from []int // per message field: row position, -1
	pp   fastjson.ParserPool
	// restWire: Row.Rest holds protobuf fields (ProtoRestWire) of
	// restMsg; copied verbatim when restSame.
	restWire bool
	restSame bool
	restMsg  *pbMsg
}

// RestWire declares that the rows' Row.Rest holds the wire fields of
// messages md (a ProtoDecoder with ProtoRestWire). When md's fields have
// the same numbers, names and types in the encoder's message (the same
// message, or a compatible version), they are copied as they are;
// otherwise they are converted by name. Call it before the first Append.
func (e *ProtoEncoder) RestWire(md protoreflect.MessageDescriptor) {
	e.restWire = true
	e.restMsg = compileProto(md, map[protoreflect.FullName]*pbMsg{})
	e.restSame = sameFields(e.restMsg, e.msg)
}

// sameFields reports whether every field of a is a field of b with the
// same number, name, kind and cardinality (messages compared by name).
func sameFields(a, b *pbMsg) bool {
	for _, fa := range a.fields {
		i := b.lookup(fa.num)
		if i < 0 {
			return false
		}
		fb := &b.fields[i]
		if fa.name != fb.name || fa.kind != fb.kind || fa.list != fb.list || fa.isMap != fb.isMap ||
			(fa.msg == nil) != (fb.msg == nil) || (fa.msg != nil && fa.msg.name != fb.msg.name) {
			return false
		}
	}
	return true
}

// NewProtoEncoder returns an encoder of rows of s as messages md. Every
// field of s must name a field of md.
func NewProtoEncoder(md protoreflect.MessageDescriptor, s *Schema) (*ProtoEncoder, error) {
	m := compileProto(md, map[protoreflect.FullName]*pbMsg{})
	e := &ProtoEncoder{msg: m, from: make([]int, len(m.fields))}
	for i, f := range m.fields {
		e.from[i] = -1
		if p, ok := s.Index(f.name); ok {
			e.from[i] = p
		}
	}
	var missing []string
	for _, f := range s.Fields() {
		if _, ok := m.byName[f.Name]; !ok {
			missing = append(missing, f.Name)
		}
	}
	if len(missing) > 0 {
		names := make([]string, len(m.fields))
		for i, f := range m.fields {
			names[i] = f.name
		}
		return nil, fmt.Errorf("%w: message %s has no field %s (its fields: %s)", ErrProtobuf, md.FullName(),
			strings.Join(missing, ", "), strings.Join(names, ", "))
	}
	return e, nil
}

// Append appends r encoded as one message to dst. On error dst is
// returned unchanged with the error, which names the field.
func (e *ProtoEncoder) Append(dst []byte, r Row) ([]byte, error) {
	start := len(dst)
	var p *fastjson.Parser
	defer func() {
		if p != nil {
			e.pp.Put(p)
		}
	}()
	parser := func() *fastjson.Parser {
		if p == nil {
			p = e.pp.Get()
		}
		return p
	}
	var err error
	for i := range e.msg.fields {
		pos := e.from[i]
		if pos < 0 {
			continue
		}
		v := r.Get(pos)
		if v.IsNull() {
			continue
		}
		dst, err = appendFieldValue(dst, &e.msg.fields[i], v, parser, 0)
		if err != nil {
			return dst[:start], err
		}
	}
	if len(r.Rest) > 0 && e.restWire {
		if e.restSame {
			return append(dst, r.Rest...), nil
		}
		obj, err := appendMsgJSON(nil, e.restMsg, r.Rest, 0)
		if err != nil {
			return dst[:start], err
		}
		jv, perr := parser().ParseBytes(obj)
		if perr != nil {
			return dst[:start], fmt.Errorf("%w: kept fields: %w", ErrProtobuf, perr)
		}
		dst, err = appendMsgFromJSON(dst, e.msg, jv, 0)
		if err != nil {
			return dst[:start], err
		}
		return dst, nil
	}
	if len(r.Rest) > 0 {
		obj := make([]byte, 0, len(r.Rest)+2)
		obj = append(append(append(obj, '{'), r.Rest...), '}')
		jv, perr := parser().ParseBytes(obj)
		if perr != nil {
			return dst[:start], fmt.Errorf("%w: kept fields: %w", ErrProtobuf, perr)
		}
		dst, err = appendMsgFromJSON(dst, e.msg, jv, 0)
		if err != nil {
			return dst[:start], err
		}
	}
	return dst, nil
}

// appendFieldValue appends field f holding v (not null).
func appendFieldValue(dst []byte, f *pbField, v Value, parser func() *fastjson.Parser, depth int) ([]byte, error) {
	if f.list || f.isMap || (f.msg != nil && f.msg.wkt == wktNone) || (f.msg != nil && v.Kind() == KindJSON) {
		if v.Kind() != KindJSON {
			want := "a JSON object"
			if f.list {
				want = "a JSON array"
			}
			return dst, protoErr("field %s: want %s, not a %s value", f.name, want, v.Kind())
		}
		jv, err := parser().Parse(v.AsString())
		if err != nil {
			return dst, protoErr("field %s: %v", f.name, err)
		}
		return appendFieldFromJSON(dst, f, jv, depth)
	}
	if f.msg != nil {
		return appendWKT(dst, f, v)
	}
	return appendScalar(dst, f, v, !f.presence)
}

// appendWKT appends a Timestamp, Duration, wrapper or Value field from a
// scalar value.
func appendWKT(dst []byte, f *pbField, v Value) ([]byte, error) {
	switch f.msg.wkt {
	case wktTimestamp:
		ms, err := v.Millis()
		if err != nil {
			return dst, protoErr("field %s: %v", f.name, err)
		}
		return appendSecondsNanos(dst, f.num, ms), nil
	case wktDuration:
		var ms int64
		switch v.Kind() {
		case KindInt, KindFloat:
			ms = v.AsInt()
		case KindString:
			d, err := time.ParseDuration(v.AsString())
			if err != nil {
				return dst, protoErr("field %s: %q is neither milliseconds nor a duration like 1.5s", f.name, v.AsString())
			}
			ms = d.Milliseconds()
		default:
			return dst, protoErr("field %s: a duration is int milliseconds, not a %s value", f.name, v.Kind())
		}
		return appendSecondsNanos(dst, f.num, ms), nil
	case wktWrapper:
		return appendNested(dst, f.num, func(b []byte) ([]byte, error) {
			return appendScalar(b, &f.msg.fields[0], v, true)
		})
	case wktValue:
		return appendNested(dst, f.num, func(b []byte) ([]byte, error) { return appendValueMsg(b, f.msg, v) })
	}
	return dst, protoErr("field %s: want a JSON value, not a %s value", f.name, v.Kind())
}

func appendSecondsNanos(dst []byte, num protowire.Number, ms int64) []byte {
	secs, rem := ms/1000, ms%1000
	if rem < 0 {
		secs--
		rem += 1000
	}
	dst = protowire.AppendTag(dst, num, protowire.BytesType)
	var body [24]byte
	b := body[:0]
	if secs != 0 {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(secs))
	}
	if rem != 0 {
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(rem*1e6))
	}
	return protowire.AppendBytes(dst, b)
}

// appendNested appends field num as a length-delimited message whose body
// build appends.
func appendNested(dst []byte, num protowire.Number, build func([]byte) ([]byte, error)) ([]byte, error) {
	dst = protowire.AppendTag(dst, num, protowire.BytesType)
	at := len(dst)
	dst = append(dst, 0)
	dst, err := build(dst)
	if err != nil {
		return dst, err
	}
	n := len(dst) - at - 1
	if n < 128 {
		dst[at] = byte(n)
		return dst, nil
	}
	sz := protowire.SizeVarint(uint64(n))
	dst = append(dst, make([]byte, sz-1)...)
	copy(dst[at+sz:], dst[at+1:at+1+n])
	protowire.AppendVarint(dst[:at], uint64(n))
	return dst, nil
}

// appendGroupOrNested appends a message-typed field: a group (proto2) or
// a length-delimited message.
func appendGroupOrNested(dst []byte, f *pbField, build func([]byte) ([]byte, error)) ([]byte, error) {
	if f.kind == protoreflect.GroupKind {
		dst = protowire.AppendTag(dst, f.num, protowire.StartGroupType)
		dst, err := build(dst)
		if err != nil {
			return dst, err
		}
		return protowire.AppendTag(dst, f.num, protowire.EndGroupType), nil
	}
	return appendNested(dst, f.num, build)
}

// appendFieldFromJSON appends field f from a parsed JSON value.
func appendFieldFromJSON(dst []byte, f *pbField, jv *fastjson.Value, depth int) ([]byte, error) {
	if depth > maxProtoDepth {
		return dst, protoErr("values nested more than %d deep", maxProtoDepth)
	}
	if jv.Type() == fastjson.TypeNull && !(f.msg != nil && f.msg.wkt == wktValue && !f.list && !f.isMap) {
		return dst, nil
	}
	switch {
	case f.isMap:
		o, err := jv.Object()
		if err != nil {
			return dst, protoErr("field %s: a map is a JSON object, not %s", f.name, jv.Type())
		}
		entry := f.msg
		kf, vf := &entry.fields[entry.lookup(1)], &entry.fields[entry.lookup(2)]
		var ferr error
		o.Visit(func(key []byte, ev *fastjson.Value) {
			if ferr != nil {
				return
			}
			dst, ferr = appendNested(dst, f.num, func(b []byte) ([]byte, error) {
				kv := String(string(key))
				b, err := appendScalar(b, kf, kv, false)
				if err != nil {
					return b, err
				}
				return appendFieldFromJSON(b, vf, ev, depth+1)
			})
		})
		return dst, ferr
	case f.list:
		a, err := jv.Array()
		if err != nil {
			return dst, protoErr("field %s: a repeated field is a JSON array, not %s", f.name, jv.Type())
		}
		one := *f
		one.list = false
		one.presence = true // every element is written, zeros too
		if f.packed && f.msg == nil && len(a) > 0 {
			return appendNested(dst, f.num, func(b []byte) ([]byte, error) {
				for _, el := range a {
					v, err := scalarFromJSON(&one, el)
					if err != nil {
						return b, err
					}
					b, err = appendPackedScalar(b, &one, v)
					if err != nil {
						return b, err
					}
				}
				return b, nil
			})
		}
		for _, el := range a {
			if el.Type() == fastjson.TypeNull && f.msg == nil {
				return dst, protoErr("field %s: null in a repeated field", f.name)
			}
			dst, err = appendFieldFromJSON(dst, &one, el, depth+1)
			if err != nil {
				return dst, err
			}
		}
		return dst, nil
	case f.msg != nil:
		switch f.msg.wkt {
		case wktNone:
			if jv.Type() != fastjson.TypeObject {
				return dst, protoErr("field %s: a message is a JSON object, not %s", f.name, jv.Type())
			}
			return appendGroupOrNested(dst, f, func(b []byte) ([]byte, error) { return appendMsgFromJSON(b, f.msg, jv, depth+1) })
		case wktStruct, wktList:
			return appendNested(dst, f.num, func(b []byte) ([]byte, error) {
				return appendFieldFromJSON(b, &f.msg.fields[0], jv, depth+1)
			})
		case wktValue:
			return appendNested(dst, f.num, func(b []byte) ([]byte, error) { return appendValueFromJSON(b, f.msg, jv, depth+1) })
		}
		v, err := jsonToValue(jv)
		if err != nil {
			return dst, protoErr("field %s: %v", f.name, err)
		}
		return appendWKT(dst, f, v)
	}
	v, err := scalarFromJSON(f, jv)
	if err != nil {
		return dst, err
	}
	return appendScalar(dst, f, v, !f.presence)
}

// appendValueFromJSON appends the body of a google.protobuf.Value.
func appendValueFromJSON(dst []byte, m *pbMsg, jv *fastjson.Value, depth int) ([]byte, error) {
	field := func(num protowire.Number) *pbField { return &m.fields[m.lookup(num)] }
	switch jv.Type() {
	case fastjson.TypeNull:
		dst = protowire.AppendTag(dst, 1, protowire.VarintType)
		return protowire.AppendVarint(dst, 0), nil
	case fastjson.TypeNumber:
		dst = protowire.AppendTag(dst, 2, protowire.Fixed64Type)
		return protowire.AppendFixed64(dst, math.Float64bits(jv.GetFloat64())), nil
	case fastjson.TypeString:
		return protowire.AppendBytes(protowire.AppendTag(dst, 3, protowire.BytesType), jv.GetStringBytes()), nil
	case fastjson.TypeTrue, fastjson.TypeFalse:
		dst = protowire.AppendTag(dst, 4, protowire.VarintType)
		return protowire.AppendVarint(dst, protowire.EncodeBool(jv.GetBool())), nil
	case fastjson.TypeObject:
		return appendFieldFromJSON(dst, field(5), jv, depth)
	}
	return appendFieldFromJSON(dst, field(6), jv, depth)
}

// appendValueMsg appends the body of a google.protobuf.Value from a row
// value.
func appendValueMsg(dst []byte, m *pbMsg, v Value) ([]byte, error) {
	switch v.Kind() {
	case KindNull:
		return protowire.AppendVarint(protowire.AppendTag(dst, 1, protowire.VarintType), 0), nil
	case KindInt, KindFloat:
		dst = protowire.AppendTag(dst, 2, protowire.Fixed64Type)
		return protowire.AppendFixed64(dst, math.Float64bits(v.AsFloat())), nil
	case KindBool:
		dst = protowire.AppendTag(dst, 4, protowire.VarintType)
		return protowire.AppendVarint(dst, protowire.EncodeBool(v.AsBool())), nil
	case KindJSON:
		jv, err := fastjson.Parse(v.AsString())
		if err != nil {
			return dst, protoErr("%v", err)
		}
		return appendValueFromJSON(dst, m, jv, 0)
	}
	return protowire.AppendString(protowire.AppendTag(dst, 3, protowire.BytesType), v.String()), nil
}

// appendMsgFromJSON appends the fields of message m from a JSON object
// whose members name them (proto or JSON names).
func appendMsgFromJSON(dst []byte, m *pbMsg, jv *fastjson.Value, depth int) ([]byte, error) {
	o, err := jv.Object()
	if err != nil {
		return dst, protoErr("message %s: want a JSON object, not %s", m.name, jv.Type())
	}
	var ferr error
	o.Visit(func(key []byte, fv *fastjson.Value) {
		if ferr != nil {
			return
		}
		i, ok := m.byName[string(key)]
		if !ok {
			ferr = protoErr("message %s has no field %q", m.name, key)
			return
		}
		dst, ferr = appendFieldFromJSON(dst, &m.fields[i], fv, depth)
	})
	return dst, ferr
}

// jsonToValue converts a JSON scalar to a Value.
func jsonToValue(jv *fastjson.Value) (Value, error) {
	switch jv.Type() {
	case fastjson.TypeNull:
		return Null(), nil
	case fastjson.TypeTrue:
		return Bool(true), nil
	case fastjson.TypeFalse:
		return Bool(false), nil
	case fastjson.TypeString:
		return String(string(jv.GetStringBytes())), nil
	case fastjson.TypeNumber:
		raw := jv.MarshalTo(nil)
		if i, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
			return Int(i), nil
		}
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil {
			return Value{}, fmt.Errorf("number %s: %w", raw, err)
		}
		return Float(f), nil
	}
	return JSON(string(jv.MarshalTo(nil))), nil
}

func scalarFromJSON(f *pbField, jv *fastjson.Value) (Value, error) {
	if f.kind == protoreflect.Uint64Kind || f.kind == protoreflect.Fixed64Kind {
		if jv.Type() == fastjson.TypeNumber {
			raw := jv.MarshalTo(nil)
			if u, err := strconv.ParseUint(string(raw), 10, 64); err == nil {
				return String(strconv.FormatUint(u, 10)), nil
			}
		}
	}
	v, err := jsonToValue(jv)
	if err != nil {
		return Value{}, protoErr("field %s: %v", f.name, err)
	}
	if v.Kind() == KindJSON {
		return Value{}, protoErr("field %s: want a scalar, not %s", f.name, jv.Type())
	}
	return v, nil
}

// appendScalar appends scalar field f holding v; with skipZero a zero
// value is not written (proto3 fields without presence).
func appendScalar(dst []byte, f *pbField, v Value, skipZero bool) ([]byte, error) {
	tag := len(dst)
	dst = protowire.AppendTag(dst, f.num, wireType(f.kind))
	dst, zero, err := appendScalarBody(dst, f, v)
	if err != nil {
		return dst[:tag], err
	}
	if zero && skipZero {
		return dst[:tag], nil
	}
	return dst, nil
}

// appendPackedScalar appends one element of a packed run.
func appendPackedScalar(dst []byte, f *pbField, v Value) ([]byte, error) {
	dst, _, err := appendScalarBody(dst, f, v)
	return dst, err
}

// appendScalarBody appends the encoding of v as a value of f's kind and
// reports whether it is the kind's zero value.
func appendScalarBody(dst []byte, f *pbField, v Value) ([]byte, bool, error) {
	bad := func(want string) error {
		return protoErr("field %s: cannot use %s value %s as %s", f.name, v.Kind(), truncate(v.String(), 40), want)
	}
	switch f.kind {
	case protoreflect.BoolKind:
		b, err := Coerce(v, KindBool)
		if err != nil || b.Kind() != KindBool {
			return dst, false, bad("bool")
		}
		return protowire.AppendVarint(dst, protowire.EncodeBool(b.AsBool())), !b.AsBool(), nil
	case protoreflect.StringKind:
		if v.Kind() == KindJSON {
			return dst, false, bad("string")
		}
		s := v.String()
		return protowire.AppendString(dst, s), s == "", nil
	case protoreflect.BytesKind:
		if v.Kind() != KindString {
			return dst, false, bad("bytes (base64 text)")
		}
		b, err := base64.StdEncoding.DecodeString(v.AsString())
		if err != nil {
			return dst, false, protoErr("field %s: bytes are written from base64 text: %v", f.name, err)
		}
		return protowire.AppendBytes(dst, b), len(b) == 0, nil
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		var x float64
		switch v.Kind() {
		case KindInt, KindFloat:
			x = v.AsFloat()
		case KindString:
			p, err := strconv.ParseFloat(v.AsString(), 64)
			if err != nil {
				return dst, false, bad("a float")
			}
			x = p
		default:
			return dst, false, bad("a float")
		}
		if f.kind == protoreflect.FloatKind {
			return protowire.AppendFixed32(dst, math.Float32bits(float32(x))), x == 0 && !math.Signbit(x), nil
		}
		return protowire.AppendFixed64(dst, math.Float64bits(x)), x == 0 && !math.Signbit(x), nil
	case protoreflect.EnumKind:
		var n int64
		switch v.Kind() {
		case KindString:
			if ev := f.enum.ByName(protoreflect.Name(v.AsString())); ev != nil {
				n = int64(ev.Number())
			} else if i, err := strconv.ParseInt(v.AsString(), 10, 32); err == nil {
				n = i
			} else {
				return dst, false, protoErr("field %s: %q is not a value of the enum", f.name, v.AsString())
			}
		case KindInt:
			n = v.AsInt()
			if n != int64(int32(n)) {
				return dst, false, bad("an enum number")
			}
		default:
			return dst, false, bad("an enum value")
		}
		return protowire.AppendVarint(dst, uint64(n)), n == 0, nil
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind, protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		var u uint64
		switch v.Kind() {
		case KindInt, KindTimestamp:
			if v.AsInt() < 0 {
				return dst, false, bad("an unsigned int")
			}
			u = uint64(v.AsInt())
		case KindFloat:
			x := v.AsFloat()
			if x < 0 || x != math.Trunc(x) || x >= 1<<64 {
				return dst, false, bad("an unsigned int")
			}
			u = uint64(x)
		case KindString:
			p, err := strconv.ParseUint(v.AsString(), 10, 64)
			if err != nil {
				return dst, false, bad("an unsigned int")
			}
			u = p
		case KindBool:
			u = uint64(v.AsInt())
		default:
			return dst, false, bad("an unsigned int")
		}
		switch f.kind {
		case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
			if u > math.MaxUint32 {
				return dst, false, bad("a uint32")
			}
			if f.kind == protoreflect.Fixed32Kind {
				return protowire.AppendFixed32(dst, uint32(u)), u == 0, nil
			}
		case protoreflect.Fixed64Kind:
			return protowire.AppendFixed64(dst, u), u == 0, nil
		}
		return protowire.AppendVarint(dst, u), u == 0, nil
	}
	// Signed integers.
	var i int64
	switch v.Kind() {
	case KindInt, KindTimestamp, KindBool:
		i = v.AsInt()
	case KindFloat:
		x := v.AsFloat()
		if x != math.Trunc(x) || x < -(1<<63) || x >= 1<<63 {
			return dst, false, bad("an int")
		}
		i = int64(x)
	case KindString:
		p, err := strconv.ParseInt(v.AsString(), 10, 64)
		if err != nil {
			return dst, false, bad("an int")
		}
		i = p
	default:
		return dst, false, bad("an int")
	}
	switch f.kind {
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		if i != int64(int32(i)) {
			return dst, false, bad("an int32")
		}
	}
	switch f.kind {
	case protoreflect.Int32Kind, protoreflect.Int64Kind:
		return protowire.AppendVarint(dst, uint64(i)), i == 0, nil
	case protoreflect.Sint32Kind:
		return protowire.AppendVarint(dst, protowire.EncodeZigZag(int64(int32(i)))&math.MaxUint32), i == 0, nil
	case protoreflect.Sint64Kind:
		return protowire.AppendVarint(dst, protowire.EncodeZigZag(i)), i == 0, nil
	case protoreflect.Sfixed32Kind:
		return protowire.AppendFixed32(dst, uint32(int32(i))), i == 0, nil
	case protoreflect.Sfixed64Kind:
		return protowire.AppendFixed64(dst, uint64(i)), i == 0, nil
	}
	return dst, false, protoErr("field %s: unsupported kind %s", f.name, f.kind)
}
