package row

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// This file maps protobuf messages to rows and back. The decoder walks the
// wire bytes with protowire against a plan compiled once from the message
// descriptor (field number -> row position and conversion); it builds no
// message object, so a field nobody reads costs one skip and a string
// field one copy into the arena.
//
// Mapping of the top-level fields of the message (docs/pipeline-spec.md):
//
//   - bool -> bool; all integer kinds -> int (a uint64 above 2^63-1 is an
//     error); float, double -> float; string -> string; bytes -> string,
//     base64 (standard, padded) as in protobuf's JSON mapping;
//   - enum -> string, the value's name (the decimal number for a number
//     the enum does not declare);
//   - google.protobuf.Timestamp -> timestamp (milliseconds); Duration ->
//     int milliseconds; the wrappers (Int64Value, StringValue, ...) -> the
//     wrapped value, or null when absent; Struct, ListValue -> json;
//     Value -> its value;
//   - other messages, repeated fields and maps -> json: objects with the
//     fields' proto names (absent fields left out), arrays, and objects
//     keyed by the map key's text.
//
// A field absent from the record is null when it has presence (messages,
// proto3 optional, proto2 optional, oneof members) and its default value
// otherwise ("" / 0 / false / the enum's zero value; [] and {} for
// repeated fields and maps), as a protobuf reader sees it.

// maxProtoDepth bounds the nesting of messages the decoder follows.
const maxProtoDepth = 100

// ErrProtobuf is wrapped by every protobuf decoding and encoding error.
var ErrProtobuf = errors.New("protobuf")

// wkt identifies the well-known types with their own mapping.
type wkt uint8

const (
	wktNone wkt = iota
	wktTimestamp
	wktDuration
	wktWrapper
	wktStruct
	wktValue
	wktList
)

func wktOf(md protoreflect.MessageDescriptor) wkt {
	switch md.FullName() {
	case "google.protobuf.Timestamp":
		return wktTimestamp
	case "google.protobuf.Duration":
		return wktDuration
	case "google.protobuf.DoubleValue", "google.protobuf.FloatValue",
		"google.protobuf.Int64Value", "google.protobuf.UInt64Value",
		"google.protobuf.Int32Value", "google.protobuf.UInt32Value",
		"google.protobuf.BoolValue", "google.protobuf.StringValue",
		"google.protobuf.BytesValue":
		return wktWrapper
	case "google.protobuf.Struct":
		return wktStruct
	case "google.protobuf.Value":
		return wktValue
	case "google.protobuf.ListValue":
		return wktList
	}
	return wktNone
}

// pbMsg is the compiled plan of one message type.
type pbMsg struct {
	name   protoreflect.FullName
	wkt    wkt
	fields []pbField // in declaration order
	dense  []int16   // field number -> index in fields, -1; for small numbers
	sparse map[protowire.Number]int
	byName map[string]int // proto name and JSON name -> index
	oneofs int            // real oneofs (not proto3 optional's)
}

// pbField is one field of a pbMsg.
type pbField struct {
	num      protowire.Number
	name     string
	kind     protoreflect.Kind
	list     bool
	isMap    bool
	packed   bool // encode packed (decoding accepts both)
	presence bool
	oneof    int  // index of the real oneof f is a member of, -1
	utf8     bool // validate strings
	msg      *pbMsg
	enum     protoreflect.EnumValueDescriptors
	def      Value // value when absent (top level)
}

func (m *pbMsg) lookup(num protowire.Number) int {
	if int(num) < len(m.dense) {
		return int(m.dense[num])
	}
	if i, ok := m.sparse[num]; ok {
		return i
	}
	return -1
}

// compileProto builds the plan of md and of every message it reaches.
func compileProto(md protoreflect.MessageDescriptor, seen map[protoreflect.FullName]*pbMsg) *pbMsg {
	if m, ok := seen[md.FullName()]; ok {
		return m
	}
	m := &pbMsg{name: md.FullName(), wkt: wktOf(md), byName: map[string]int{}}
	seen[md.FullName()] = m
	fds := md.Fields()
	maxDense := 0
	for i := 0; i < fds.Len(); i++ {
		if n := int(fds.Get(i).Number()); n < 256 && n+1 > maxDense {
			maxDense = n + 1
		}
	}
	m.dense = make([]int16, maxDense)
	for i := range m.dense {
		m.dense[i] = -1
	}
	for i := 0; i < fds.Len(); i++ {
		fd := fds.Get(i)
		f := pbField{
			num:      fd.Number(),
			name:     string(fd.Name()),
			kind:     fd.Kind(),
			list:     fd.IsList(),
			isMap:    fd.IsMap(),
			packed:   fd.IsPacked(),
			presence: fd.HasPresence(),
			oneof:    -1,
			utf8:     fd.Kind() == protoreflect.StringKind && fd.Syntax() != protoreflect.Proto2,
		}
		if o := fd.ContainingOneof(); o != nil && !o.IsSynthetic() {
			f.oneof = o.Index()
			m.oneofs = max(m.oneofs, o.Index()+1)
		}
		if fd.Message() != nil {
			f.msg = compileProto(fd.Message(), seen)
		}
		if fd.Enum() != nil {
			f.enum = fd.Enum().Values()
		}
		f.def = fieldDefault(fd, f.msg)
		if int(f.num) < len(m.dense) {
			m.dense[f.num] = int16(i)
		} else {
			if m.sparse == nil {
				m.sparse = map[protowire.Number]int{}
			}
			m.sparse[f.num] = i
		}
		m.byName[f.name] = i
		if j := fd.JSONName(); j != "" {
			if _, dup := m.byName[j]; !dup {
				m.byName[j] = i
			}
		}
		m.fields = append(m.fields, f)
	}
	return m
}

// fieldDefault is the value of an absent top-level field.
func fieldDefault(fd protoreflect.FieldDescriptor, msg *pbMsg) Value {
	switch {
	case fd.IsMap():
		return JSON("{}")
	case fd.IsList():
		return JSON("[]")
	case fd.HasPresence() || msg != nil:
		return Null()
	}
	d := fd.Default()
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return Bool(d.Bool())
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return Int(d.Int())
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return Int(int64(d.Uint()))
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return Float(d.Float())
	case protoreflect.StringKind:
		return String(d.String())
	case protoreflect.BytesKind:
		return String(base64Std(d.Bytes()))
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(d.Enum()); ev != nil {
			return String(string(ev.Name()))
		}
		return String(strconv.Itoa(int(d.Enum())))
	}
	return Null()
}

// ProtoFields returns the row fields of the top-level fields of md, with
// the kinds their values take (KindNull where the kind varies, as for
// google.protobuf.Value).
func ProtoFields(md protoreflect.MessageDescriptor) []Field {
	fds := md.Fields()
	out := make([]Field, 0, fds.Len())
	for i := 0; i < fds.Len(); i++ {
		out = append(out, Field{Name: string(fds.Get(i).Name()), Kind: protoKind(fds.Get(i))})
	}
	return out
}

func protoKind(fd protoreflect.FieldDescriptor) Kind {
	if fd.IsList() || fd.IsMap() {
		return KindJSON
	}
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return KindBool
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return KindFloat
	case protoreflect.StringKind, protoreflect.BytesKind, protoreflect.EnumKind:
		return KindString
	case protoreflect.MessageKind, protoreflect.GroupKind:
		md := fd.Message()
		switch wktOf(md) {
		case wktTimestamp:
			return KindTimestamp
		case wktDuration:
			return KindInt
		case wktWrapper:
			return protoKind(md.Fields().ByNumber(1))
		case wktValue:
			return KindNull
		}
		return KindJSON
	}
	return KindInt
}

// ProtoRest says what a ProtoDecoder does with the fields of a message
// that are not fields of its schema.
type ProtoRest uint8

const (
	// ProtoRestDrop skips them without decoding.
	ProtoRestDrop ProtoRest = iota
	// ProtoRestJSON keeps them in Row.Rest as JSON members, as the JSON
	// decoder does.
	ProtoRestJSON
	// ProtoRestWire keeps them in Row.Rest as they were on the wire
	// (tag and value, unknown fields too): a protobuf body that a
	// ProtoEncoder of the same message copies verbatim, and that
	// ProtoRestToJSON turns into JSON members for other sinks.
	ProtoRestWire
)

// ProtoDecoder decodes protobuf messages of one type into rows of a
// schema: each schema field takes the message field of the same name (a
// schema field the message lacks stays null); the other fields are
// dropped or kept in Row.Rest (see ProtoRest). A ProtoDecoder is not safe
// for concurrent use; make one per goroutine.
type ProtoDecoder struct {
	msg    *pbMsg
	schema *Schema
	pos    []int   // per message field: row position, -1
	defs   []Value // per row position: value when absent
	keep   bool    // ProtoRestJSON
	wire   bool    // ProtoRestWire
	arena  Arena
	spans  []pbSpan
	buf    []byte // scratch of one value
	tmp    []byte // scratch of one deferred field
	rest   []byte // scratch of Row.Rest
	// last is, per oneof of the message, the member last seen on the
	// wire (-1: none); clash says some oneof had two members.
	last  []int
	clash bool
}

// pbSpan is one occurrence of a field whose value is built after the walk
// (repeated fields, maps, repeated message fields, kept fields).
type pbSpan struct {
	field int
	typ   protowire.Type
	b     []byte // the value's encoding, as consumed
}

// NewProtoDecoder returns a decoder of messages md into rows of s.
func NewProtoDecoder(md protoreflect.MessageDescriptor, s *Schema, rest ProtoRest) *ProtoDecoder {
	m := compileProto(md, map[protoreflect.FullName]*pbMsg{})
	d := &ProtoDecoder{msg: m, schema: s, keep: rest == ProtoRestJSON, wire: rest == ProtoRestWire, pos: make([]int, len(m.fields)), defs: make([]Value, s.Len())}
	for i, f := range m.fields {
		d.pos[i] = -1
		if p, ok := s.Index(f.name); ok {
			d.pos[i] = p
			d.defs[p] = f.def
		}
	}
	return d
}

// MessageName returns the full name of the decoded message type.
func (d *ProtoDecoder) MessageName() string { return string(d.msg.name) }

func protoErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrProtobuf, fmt.Sprintf(format, args...))
}

func wireErr(what string, n int) error {
	return fmt.Errorf("%w: %s: %w", ErrProtobuf, what, protowire.ParseError(n))
}

// Decode decodes one message. The returned row does not share memory with
// data.
func (d *ProtoDecoder) Decode(data []byte) (Row, error) {
	r := Row{Vals: d.arena.Values(d.schema.Len())}
	copy(r.Vals, d.defs)
	spans := d.spans[:0]
	m := d.msg
	b := data
	raw := d.rest[:0] // ProtoRestWire: the fields kept as they are
	if m.oneofs > 0 {
		d.last = d.last[:0]
		for range m.oneofs {
			d.last = append(d.last, -1)
		}
		d.clash = false
	}
	for len(b) > 0 {
		field := b
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return Row{}, wireErr("tag", n)
		}
		if num > protowire.MaxValidNumber {
			return Row{}, protoErr("field number %d out of range", num)
		}
		b = b[n:]
		fi := m.lookup(num)
		if fi >= 0 && m.fields[fi].oneof >= 0 && wireMatches(&m.fields[fi], typ) {
			k := m.fields[fi].oneof
			d.clash = d.clash || d.last[k] >= 0 && d.last[k] != fi
			d.last[k] = fi
		}
		if fi < 0 || (d.pos[fi] < 0 && !d.keep) || !wireMatches(&m.fields[fi], typ) {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return Row{}, wireErr(fmt.Sprintf("field %d", num), n)
			}
			b = b[n:]
			if d.wire {
				// Not a field of the schema, or of a wire type the
				// message does not declare (an unknown field to
				// protobuf, which keeps those too).
				raw = append(raw, field[:len(field)-len(b)]...)
			}
			continue
		}
		f := &m.fields[fi]
		n = consumeValue(f.num, typ, b)
		if n < 0 {
			return Row{}, wireErr("field "+f.name, n)
		}
		val := b[:n]
		b = b[n:]
		if f.list || f.isMap || d.pos[fi] < 0 || f.msg != nil {
			// Built after the walk: a repeated field's values may be
			// spread over the record, and a singular message given twice
			// is the merge of both.
			spans = append(spans, pbSpan{field: fi, typ: typ, b: val})
			continue
		}
		v, err := d.value(f, typ, val, 0)
		if err != nil {
			return Row{}, err
		}
		r.Vals[d.pos[fi]] = v
	}
	if m.oneofs > 0 && d.clash {
		var err error
		if spans, raw, err = d.dropSuperseded(r.Vals, spans, raw); err != nil {
			return Row{}, err
		}
	}
	d.spans = spans
	if d.wire {
		if len(raw) > 0 {
			r.Rest = d.arena.Bytes(raw)
		}
		d.rest = raw[:0]
	}
	if len(spans) > 0 {
		var rest []byte
		var err error
		rest, err = d.finish(r.Vals, spans, d.rest[:0])
		if err != nil {
			return Row{}, err
		}
		if len(rest) > 0 {
			r.Rest = d.arena.Bytes(rest)
		}
		d.rest = rest[:0]
	}
	return r, nil
}

// dropSuperseded applies oneofs' last-member-wins to a decoded record:
// the members of a oneof before its last one are reset to their absent
// value and dropped from the deferred spans and the wire rest.
func (d *ProtoDecoder) dropSuperseded(vals []Value, spans []pbSpan, raw []byte) ([]pbSpan, []byte, error) {
	m := d.msg
	for fi := range m.fields {
		if p := d.pos[fi]; p >= 0 && superseded(m, d.last, fi) {
			vals[p] = d.defs[p]
		}
	}
	spans, err := dropSupersededSpans(m, d.last, spans, 0)
	if err != nil {
		return nil, nil, err
	}
	if !d.wire {
		return spans, raw, nil
	}
	// Filtered in place: what is kept moves towards the start only.
	kept, b := raw[:0], raw
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		n += protowire.ConsumeFieldValue(num, typ, b[n:]) // read once already
		fi := m.lookup(num)
		if fi < 0 || !wireMatches(&m.fields[fi], typ) || !superseded(m, d.last, fi) {
			kept = append(kept, b[:n]...)
		}
		b = b[n:]
	}
	return spans, kept, nil
}

// superseded reports whether field fi of m is a member of a oneof whose
// last member on the wire (last, per oneof) is another field: "If the
// parser encounters multiple members of the same oneof on the wire, only
// the last member seen is used in the parsed message" (protobuf language
// guide, Oneof).
func superseded(m *pbMsg, last []int, fi int) bool {
	k := m.fields[fi].oneof
	return k >= 0 && last[k] >= 0 && last[k] != fi
}

// dropSupersededSpans removes the spans of superseded oneof members, once
// checked: protobuf readers parse every member they meet.
func dropSupersededSpans(m *pbMsg, last []int, spans []pbSpan, depth int) ([]pbSpan, error) {
	kept := spans[:0]
	for _, sp := range spans {
		if !superseded(m, last, sp.field) {
			kept = append(kept, sp)
			continue
		}
		if _, err := appendOneJSON(nil, &m.fields[sp.field], sp.typ, sp.b, depth); err != nil {
			return nil, err
		}
	}
	return kept, nil
}

// lastMembers applies oneofs' last-member-wins to the spans of a nested
// message's fields, in wire order.
func lastMembers(m *pbMsg, spans []pbSpan, depth int) ([]pbSpan, error) {
	var local [8]int
	last := local[:0]
	for range m.oneofs {
		last = append(last, -1)
	}
	clash := false
	for _, sp := range spans {
		if k := m.fields[sp.field].oneof; k >= 0 {
			clash = clash || last[k] >= 0 && last[k] != sp.field
			last[k] = sp.field
		}
	}
	if !clash {
		return spans, nil
	}
	return dropSupersededSpans(m, last, spans, depth)
}

// finish builds the values of the deferred fields from their spans and
// appends the kept ones to rest as JSON members.
func (d *ProtoDecoder) finish(vals []Value, spans []pbSpan, rest []byte) ([]byte, error) {
	sortSpans(spans)
	tmp := d.tmp
	defer func() { d.tmp = tmp[:0] }()
	for i := 0; i < len(spans); {
		j := i + 1
		for j < len(spans) && spans[j].field == spans[i].field {
			j++
		}
		fi := spans[i].field
		f := &d.msg.fields[fi]
		p := d.pos[fi]
		var err error
		if p >= 0 && !f.list && !f.isMap {
			typ, val := spans[i].typ, spans[i].b
			if j-i > 1 {
				for _, sp := range spans[i:j] {
					if _, err := appendOneJSON(nil, f, sp.typ, sp.b, 0); err != nil {
						return nil, err
					}
				}
				typ, val = protowire.BytesType, protowire.AppendBytes(nil, mergeSpans(spans[i:j]))
			}
			v, err := d.value(f, typ, val, 0)
			if err != nil {
				return nil, err
			}
			vals[p] = v
			i = j
			continue
		}
		tmp, err = appendFieldJSON(tmp[:0], f, spans[i:j], 0)
		if err != nil {
			return nil, err
		}
		if p >= 0 {
			vals[p] = JSON(d.arena.String(tmp))
		} else {
			if len(rest) > 0 {
				rest = append(rest, ',')
			}
			rest = AppendQuoted(rest, f.name)
			rest = append(rest, ':')
			rest = append(rest, tmp...)
		}
		i = j
	}
	return rest, nil
}

// mergeSpans concatenates the payloads of a singular message field's
// occurrences (protobuf merges them so).
func mergeSpans(spans []pbSpan) []byte {
	var out []byte
	for _, s := range spans {
		out = append(out, payload(s)...)
	}
	return out
}

// payload returns the bytes of a length-delimited or group value.
func payload(s pbSpan) []byte {
	if s.typ == protowire.StartGroupType {
		return groupBody(s.b)
	}
	v, _ := protowire.ConsumeBytes(s.b)
	return v
}

// groupBody strips the end-group tag from a consumed group value.
func groupBody(b []byte) []byte {
	// The value ends with an END_GROUP tag whose varint is at most 5
	// bytes; find where the walk over the body stops.
	body := b
	off := 0
	for off < len(body) {
		_, typ, n := protowire.ConsumeTag(body[off:])
		if n < 0 {
			return nil
		}
		if typ == protowire.EndGroupType {
			return body[:off]
		}
		num, _, _ := protowire.ConsumeTag(body[off:])
		m := protowire.ConsumeFieldValue(num, typ, body[off+n:])
		if m < 0 {
			return nil
		}
		off += n + m
	}
	return body
}

// sortSpans sorts by field index, stably (insertion sort: spans are few
// and usually in order already).
func sortSpans(s []pbSpan) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j].field < s[j-1].field; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// consumeValue returns the length of the value of wire type typ at the
// start of b, or a negative protowire error code.
func consumeValue(num protowire.Number, typ protowire.Type, b []byte) int {
	switch typ {
	case protowire.VarintType:
		_, n := protowire.ConsumeVarint(b)
		return n
	case protowire.Fixed32Type:
		_, n := protowire.ConsumeFixed32(b)
		return n
	case protowire.Fixed64Type:
		_, n := protowire.ConsumeFixed64(b)
		return n
	case protowire.BytesType:
		_, n := protowire.ConsumeBytes(b)
		return n
	}
	return protowire.ConsumeFieldValue(num, typ, b)
}

// wireType is the wire type of a single (unpacked) value of kind k.
func wireType(k protoreflect.Kind) protowire.Type {
	switch k {
	case protoreflect.BoolKind, protoreflect.EnumKind, protoreflect.Int32Kind, protoreflect.Sint32Kind,
		protoreflect.Uint32Kind, protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Uint64Kind:
		return protowire.VarintType
	case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind, protoreflect.FloatKind:
		return protowire.Fixed32Type
	case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind, protoreflect.DoubleKind:
		return protowire.Fixed64Type
	case protoreflect.GroupKind:
		return protowire.StartGroupType
	}
	return protowire.BytesType
}

// wireMatches reports whether a value of wire type typ belongs to f; a
// mismatch is an unknown field to protobuf readers (skipped).
func wireMatches(f *pbField, typ protowire.Type) bool {
	w := wireType(f.kind)
	if typ == w {
		return true
	}
	// A packed run of a repeated scalar; a group written as a
	// length-delimited message is not accepted by protobuf either.
	return f.list && typ == protowire.BytesType && w != protowire.BytesType && w != protowire.StartGroupType
}

// scalar decodes one scalar value of f from the start of b.
func (d *ProtoDecoder) scalar(f *pbField, typ protowire.Type, b []byte) (Value, int, error) {
	switch typ {
	case protowire.VarintType:
		v, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return Value{}, 0, wireErr("field "+f.name, n)
		}
		switch f.kind {
		case protoreflect.BoolKind:
			return Bool(v != 0), n, nil
		case protoreflect.Int32Kind:
			return Int(int64(int32(v))), n, nil
		case protoreflect.Uint32Kind:
			return Int(int64(uint32(v))), n, nil
		case protoreflect.Sint32Kind:
			return Int(int64(int32(protowire.DecodeZigZag(v & math.MaxUint32)))), n, nil
		case protoreflect.Sint64Kind:
			return Int(protowire.DecodeZigZag(v)), n, nil
		case protoreflect.Uint64Kind:
			if v > math.MaxInt64 {
				return Value{}, 0, protoErr("field %s: %d does not fit an int", f.name, v)
			}
			return Int(int64(v)), n, nil
		case protoreflect.EnumKind:
			return String(enumName(f.enum, int32(v))), n, nil
		}
		return Int(int64(v)), n, nil
	case protowire.Fixed32Type:
		v, n := protowire.ConsumeFixed32(b)
		if n < 0 {
			return Value{}, 0, wireErr("field "+f.name, n)
		}
		switch f.kind {
		case protoreflect.FloatKind:
			return Float(float64(math.Float32frombits(v))), n, nil
		case protoreflect.Sfixed32Kind:
			return Int(int64(int32(v))), n, nil
		}
		return Int(int64(v)), n, nil
	case protowire.Fixed64Type:
		v, n := protowire.ConsumeFixed64(b)
		if n < 0 {
			return Value{}, 0, wireErr("field "+f.name, n)
		}
		switch f.kind {
		case protoreflect.DoubleKind:
			return Float(math.Float64frombits(v)), n, nil
		case protoreflect.Sfixed64Kind:
			return Int(int64(v)), n, nil
		}
		if v > math.MaxInt64 {
			return Value{}, 0, protoErr("field %s: %d does not fit an int", f.name, v)
		}
		return Int(int64(v)), n, nil
	case protowire.BytesType:
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return Value{}, 0, wireErr("field "+f.name, n)
		}
		if f.kind == protoreflect.BytesKind {
			return String(d.arena.String(appendBase64(d.buf[:0], v))), n, nil
		}
		if f.utf8 && !utf8.Valid(v) {
			return Value{}, 0, protoErr("field %s: string is not valid UTF-8", f.name)
		}
		return String(d.arena.String(v)), n, nil
	}
	return Value{}, 0, protoErr("field %s: unexpected wire type %d", f.name, typ)
}

func enumName(vals protoreflect.EnumValueDescriptors, n int32) string {
	if ev := vals.ByNumber(protoreflect.EnumNumber(n)); ev != nil {
		return string(ev.Name())
	}
	return strconv.Itoa(int(n))
}

// value decodes the single (non-repeated) value of f held in val, the
// bytes consumed for it.
func (d *ProtoDecoder) value(f *pbField, typ protowire.Type, val []byte, depth int) (Value, error) {
	if f.msg == nil {
		v, _, err := d.scalar(f, typ, val)
		return v, err
	}
	body := payload(pbSpan{typ: typ, b: val})
	if body == nil && len(val) > 0 && typ == protowire.StartGroupType {
		return Value{}, protoErr("field %s: bad group", f.name)
	}
	switch f.msg.wkt {
	case wktTimestamp, wktDuration:
		secs, nanos, err := secondsNanos(body)
		if err != nil {
			return Value{}, fmt.Errorf("field %s: %w", f.name, err)
		}
		ms := secs*1000 + int64(nanos)/1e6
		if nanos < 0 && nanos%1e6 != 0 && f.msg.wkt == wktTimestamp {
			ms-- // floor, as for times before the epoch
		}
		if f.msg.wkt == wktTimestamp {
			return Timestamp(ms), nil
		}
		return Int(ms), nil
	case wktWrapper:
		inner := &f.msg.fields[0]
		v := inner.def
		if inner.kind == protoreflect.BytesKind || inner.kind == protoreflect.StringKind {
			v = String("")
		}
		err := walk(body, func(num protowire.Number, typ protowire.Type, b []byte) error {
			if num != 1 || !wireMatches(inner, typ) {
				return nil
			}
			x, _, err := d.scalar(inner, typ, b)
			if err != nil {
				return err
			}
			v = x
			return nil
		})
		if err != nil {
			return Value{}, fmt.Errorf("field %s: %w", f.name, err)
		}
		return v, nil
	case wktValue:
		js, err := appendMsgJSON(d.buf[:0], f.msg, body, depth+1)
		if err != nil {
			return Value{}, fmt.Errorf("field %s: %w", f.name, err)
		}
		d.buf = js[:0]
		return jsonScalar(js, &d.arena), nil
	}
	js, err := appendMsgJSON(d.buf[:0], f.msg, body, depth+1)
	if err != nil {
		return Value{}, fmt.Errorf("field %s: %w", f.name, err)
	}
	d.buf = js[:0]
	return JSON(d.arena.String(js)), nil
}

// jsonScalar turns the JSON text of a google.protobuf.Value into a Value:
// null, bool, number and string as themselves, objects and arrays as json.
func jsonScalar(js []byte, a *Arena) Value {
	switch {
	case len(js) == 0, string(js) == "null":
		return Null()
	case string(js) == "true":
		return Bool(true)
	case string(js) == "false":
		return Bool(false)
	case js[0] == '"':
		s, err := strconv.Unquote(string(js))
		if err != nil {
			return JSON(a.String(js))
		}
		return String(a.String([]byte(s)))
	case js[0] == '{' || js[0] == '[':
		return JSON(a.String(js))
	}
	f, err := strconv.ParseFloat(string(js), 64)
	if err != nil {
		return JSON(a.String(js))
	}
	return Float(f)
}

// walk calls fn for each field of a message body with the bytes of its
// value.
func walk(b []byte, fn func(num protowire.Number, typ protowire.Type, val []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return wireErr("tag", n)
		}
		if num > protowire.MaxValidNumber {
			return protoErr("field number %d out of range", num)
		}
		b = b[n:]
		n = consumeValue(num, typ, b)
		if n < 0 {
			return wireErr(fmt.Sprintf("field %d", num), n)
		}
		if err := fn(num, typ, b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// secondsNanos reads a Timestamp or Duration body.
func secondsNanos(body []byte) (int64, int32, error) {
	var secs int64
	var nanos int32
	err := walk(body, func(num protowire.Number, typ protowire.Type, b []byte) error {
		if typ != protowire.VarintType || (num != 1 && num != 2) {
			return nil
		}
		v, _ := protowire.ConsumeVarint(b)
		if num == 1 {
			secs = int64(v)
		} else {
			nanos = int32(v)
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	if secs > math.MaxInt64/1000-1 || secs < math.MinInt64/1000+1 {
		return 0, 0, protoErr("seconds %d out of range", secs)
	}
	return secs, nanos, nil
}

// appendFieldJSON appends the JSON value of field f from its occurrences.
func appendFieldJSON(dst []byte, f *pbField, spans []pbSpan, depth int) ([]byte, error) {
	var err error
	switch {
	case f.isMap:
		return appendMapJSON(dst, f, spans, depth)
	case f.list:
		dst = append(dst, '[')
		first := true
		for _, s := range spans {
			if f.msg == nil && s.typ == protowire.BytesType && wireType(f.kind) != protowire.BytesType {
				run, _ := protowire.ConsumeBytes(s.b)
				wt := wireType(f.kind)
				for len(run) > 0 {
					if !first {
						dst = append(dst, ',')
					}
					first = false
					var n int
					dst, n, err = appendScalarJSON(dst, f, wt, run)
					if err != nil {
						return nil, err
					}
					run = run[n:]
				}
				continue
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst, err = appendOneJSON(dst, f, s.typ, s.b, depth)
			if err != nil {
				return nil, err
			}
		}
		return append(dst, ']'), nil
	case f.msg != nil && len(spans) > 1:
		// Each occurrence must be a valid message on its own; the value
		// is their merge.
		for _, sp := range spans {
			if _, err := appendOneJSON(nil, f, sp.typ, sp.b, depth); err != nil {
				return nil, err
			}
		}
		return appendOneJSON(dst, f, protowire.BytesType, protowire.AppendBytes(nil, mergeSpans(spans)), depth)
	}
	if err := validateEarlier(f, spans, depth); err != nil {
		return nil, err
	}
	last := spans[len(spans)-1]
	return appendOneJSON(dst, f, last.typ, last.b, depth)
}

// validateEarlier checks the occurrences of a last-wins field before the
// last one: protobuf readers reject a record if any of them is bad.
func validateEarlier(f *pbField, spans []pbSpan, depth int) error {
	for _, s := range spans[:len(spans)-1] {
		if _, err := appendOneJSON(nil, f, s.typ, s.b, depth); err != nil {
			return err
		}
	}
	return nil
}

// appendOneJSON appends one value of f (consumed bytes val) as JSON.
func appendOneJSON(dst []byte, f *pbField, typ protowire.Type, val []byte, depth int) ([]byte, error) {
	if f.msg == nil {
		out, _, err := appendScalarJSON(dst, f, typ, val)
		return out, err
	}
	body := payload(pbSpan{typ: typ, b: val})
	return appendMsgJSON(dst, f.msg, body, depth+1)
}

// appendScalarJSON appends the scalar at the start of b as JSON and
// returns how many bytes it took.
func appendScalarJSON(dst []byte, f *pbField, typ protowire.Type, b []byte) ([]byte, int, error) {
	switch typ {
	case protowire.VarintType:
		v, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return nil, 0, wireErr("field "+f.name, n)
		}
		switch f.kind {
		case protoreflect.BoolKind:
			if v != 0 {
				return append(dst, "true"...), n, nil
			}
			return append(dst, "false"...), n, nil
		case protoreflect.Int32Kind:
			return strconv.AppendInt(dst, int64(int32(v)), 10), n, nil
		case protoreflect.Uint32Kind:
			return strconv.AppendUint(dst, uint64(uint32(v)), 10), n, nil
		case protoreflect.Sint32Kind:
			return strconv.AppendInt(dst, int64(int32(protowire.DecodeZigZag(v&math.MaxUint32))), 10), n, nil
		case protoreflect.Sint64Kind:
			return strconv.AppendInt(dst, protowire.DecodeZigZag(v), 10), n, nil
		case protoreflect.Uint64Kind:
			return strconv.AppendUint(dst, v, 10), n, nil
		case protoreflect.EnumKind:
			return AppendQuoted(dst, enumName(f.enum, int32(v))), n, nil
		}
		return strconv.AppendInt(dst, int64(v), 10), n, nil
	case protowire.Fixed32Type:
		v, n := protowire.ConsumeFixed32(b)
		if n < 0 {
			return nil, 0, wireErr("field "+f.name, n)
		}
		switch f.kind {
		case protoreflect.FloatKind:
			return appendFloat(dst, float64(math.Float32frombits(v))), n, nil
		case protoreflect.Sfixed32Kind:
			return strconv.AppendInt(dst, int64(int32(v)), 10), n, nil
		}
		return strconv.AppendUint(dst, uint64(v), 10), n, nil
	case protowire.Fixed64Type:
		v, n := protowire.ConsumeFixed64(b)
		if n < 0 {
			return nil, 0, wireErr("field "+f.name, n)
		}
		switch f.kind {
		case protoreflect.DoubleKind:
			return appendFloat(dst, math.Float64frombits(v)), n, nil
		case protoreflect.Sfixed64Kind:
			return strconv.AppendInt(dst, int64(v), 10), n, nil
		}
		return strconv.AppendUint(dst, v, 10), n, nil
	case protowire.BytesType:
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return nil, 0, wireErr("field "+f.name, n)
		}
		if f.kind == protoreflect.BytesKind {
			dst = append(dst, '"')
			dst = appendBase64(dst, v)
			return append(dst, '"'), n, nil
		}
		if f.utf8 && !utf8.Valid(v) {
			return nil, 0, protoErr("field %s: string is not valid UTF-8", f.name)
		}
		return AppendQuoted(dst, unsafeString(v)), n, nil
	}
	return nil, 0, protoErr("field %s: unexpected wire type %d", f.name, typ)
}

// appendMsgJSON appends the message body b of type m as a JSON object
// (well-known types as their JSON mapping).
func appendMsgJSON(dst []byte, m *pbMsg, b []byte, depth int) ([]byte, error) {
	if depth > maxProtoDepth {
		return nil, protoErr("messages nested more than %d deep", maxProtoDepth)
	}
	var spans []pbSpan
	var local [16]pbSpan
	spans = local[:0]
	err := walk(b, func(num protowire.Number, typ protowire.Type, val []byte) error {
		fi := m.lookup(num)
		if fi < 0 || !wireMatches(&m.fields[fi], typ) {
			return nil
		}
		spans = append(spans, pbSpan{field: fi, typ: typ, b: val})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if m.oneofs > 0 {
		if spans, err = lastMembers(m, spans, depth); err != nil {
			return nil, err
		}
	}
	sortSpans(spans)
	switch m.wkt {
	case wktTimestamp:
		secs, nanos, err := secondsNanos(b)
		if err != nil {
			return nil, err
		}
		ms := secs*1000 + int64(nanos)/1e6
		return Timestamp(ms).AppendJSON(dst), nil
	case wktDuration:
		secs, nanos, err := secondsNanos(b)
		if err != nil {
			return nil, err
		}
		return strconv.AppendInt(dst, secs*1000+int64(nanos)/1e6, 10), nil
	case wktWrapper:
		if len(spans) == 0 {
			return appendZeroJSON(dst, &m.fields[0]), nil
		}
		return appendFieldJSON(dst, &m.fields[0], spans, depth)
	case wktStruct:
		if len(spans) == 0 {
			return append(dst, "{}"...), nil
		}
		return appendFieldJSON(dst, &m.fields[0], spans, depth)
	case wktList:
		if len(spans) == 0 {
			return append(dst, "[]"...), nil
		}
		return appendFieldJSON(dst, &m.fields[0], spans, depth)
	case wktValue:
		if len(spans) == 0 {
			return append(dst, "null"...), nil
		}
		// The kind is a oneof: the spans left are of its last member.
		f := &m.fields[spans[len(spans)-1].field]
		if f.kind == protoreflect.EnumKind { // null_value
			return append(dst, "null"...), nil
		}
		return appendFieldJSON(dst, f, spans, depth)
	}
	dst = append(dst, '{')
	first := true
	for i := 0; i < len(spans); {
		j := i + 1
		for j < len(spans) && spans[j].field == spans[i].field {
			j++
		}
		f := &m.fields[spans[i].field]
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = AppendQuoted(dst, f.name)
		dst = append(dst, ':')
		dst, err = appendFieldJSON(dst, f, spans[i:j], depth)
		if err != nil {
			return nil, err
		}
		i = j
	}
	return append(dst, '}'), nil
}

// appendZeroJSON appends the JSON of f's zero value.
func appendZeroJSON(dst []byte, f *pbField) []byte {
	switch f.kind {
	case protoreflect.BoolKind:
		return append(dst, "false"...)
	case protoreflect.StringKind, protoreflect.BytesKind:
		return append(dst, `""`...)
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return append(dst, "0.0"...)
	}
	return append(dst, '0')
}

// appendMapJSON appends a map field's entries as a JSON object keyed by
// the keys' text; a key given twice keeps its last value.
func appendMapJSON(dst []byte, f *pbField, spans []pbSpan, depth int) ([]byte, error) {
	entry := f.msg
	kf, vf := entry.lookup(1), entry.lookup(2)
	if kf < 0 || vf < 0 {
		return nil, protoErr("field %s: map entry without key or value", f.name)
	}
	type kv struct {
		key string
		val []byte
		typ protowire.Type
	}
	var ents []kv
	var index map[string]int // key -> index in ents, once ents is long
	for _, s := range spans {
		body := payload(s)
		e := kv{}
		var keyVal []byte
		var keyTyp protowire.Type
		err := walk(body, func(num protowire.Number, typ protowire.Type, val []byte) error {
			switch num {
			case 1:
				if wireMatches(&entry.fields[kf], typ) {
					if keyVal != nil {
						if _, _, err := appendScalarJSON(nil, &entry.fields[kf], keyTyp, keyVal); err != nil {
							return err
						}
					}
					keyVal, keyTyp = val, typ
				}
			case 2:
				if wireMatches(&entry.fields[vf], typ) {
					if e.val != nil {
						if _, err := appendOneJSON(nil, &entry.fields[vf], e.typ, e.val, depth); err != nil {
							return err
						}
					}
					e.val, e.typ = val, typ
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", f.name, err)
		}
		if keyVal == nil {
			e.key = mapZeroKey(&entry.fields[kf])
		} else {
			k, _, err := appendScalarJSON(nil, &entry.fields[kf], keyTyp, keyVal)
			if err != nil {
				return nil, err
			}
			if k[0] == '"' {
				s, err := strconv.Unquote(string(k))
				if err == nil {
					k = []byte(s)
				}
			}
			e.key = string(k)
		}
		i, seen := index[e.key]
		if index == nil {
			// Few entries: a linear search. Many: an index, so that a
			// record of n entries costs O(n), not O(n²).
			i, seen = -1, false
			for j := range ents {
				if ents[j].key == e.key {
					i, seen = j, true
					break
				}
			}
		}
		if !seen {
			ents = append(ents, e)
			if index != nil {
				index[e.key] = len(ents) - 1
			} else if len(ents) > 16 {
				index = make(map[string]int, 2*len(ents))
				for j, x := range ents {
					index[x.key] = j
				}
			}
			continue
		}
		if old := ents[i]; old.val != nil {
			if _, err := appendOneJSON(nil, &entry.fields[vf], old.typ, old.val, depth); err != nil {
				return nil, err
			}
		}
		ents[i] = e
	}
	dst = append(dst, '{')
	for i, e := range ents {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendQuoted(dst, e.key)
		dst = append(dst, ':')
		v := &entry.fields[vf]
		if e.val == nil {
			if v.msg != nil {
				var err error
				dst, err = appendMsgJSON(dst, v.msg, nil, depth+1)
				if err != nil {
					return nil, err
				}
			} else if v.kind == protoreflect.EnumKind {
				dst = AppendQuoted(dst, enumName(v.enum, 0))
			} else {
				dst = appendZeroJSON(dst, v)
			}
			continue
		}
		var err error
		dst, err = appendOneJSON(dst, v, e.typ, e.val, depth)
		if err != nil {
			return nil, err
		}
	}
	return append(dst, '}'), nil
}

func mapZeroKey(f *pbField) string {
	switch f.kind {
	case protoreflect.BoolKind:
		return "false"
	case protoreflect.StringKind:
		return ""
	}
	return "0"
}

// appendBase64 appends standard, padded base64 of src (protobuf's JSON
// mapping of bytes).
func appendBase64(dst, src []byte) []byte { return base64.StdEncoding.AppendEncode(dst, src) }

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// ProtoRestToJSON converts the Row.Rest of a ProtoDecoder with
// ProtoRestWire back to JSON members (without braces) for encoders of
// other formats. It is safe for concurrent use.
type ProtoRestToJSON struct{ msg *pbMsg }

// NewProtoRestToJSON returns the converter of the rest of messages md.
func NewProtoRestToJSON(md protoreflect.MessageDescriptor) *ProtoRestToJSON {
	return &ProtoRestToJSON{msg: compileProto(md, map[protoreflect.FullName]*pbMsg{})}
}

// AppendMembers appends the fields of rest as JSON members (fields the
// message does not declare are left out).
func (c *ProtoRestToJSON) AppendMembers(dst, rest []byte) ([]byte, error) {
	start := len(dst)
	dst, err := appendMsgJSON(dst, c.msg, rest, 0)
	if err != nil {
		return dst[:start], err
	}
	// Strip the braces of the object.
	body := dst[start+1 : len(dst)-1]
	n := copy(dst[start:], body)
	return dst[:start+n], nil
}
