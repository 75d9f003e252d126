package row

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// testProto compiles testdata/name and returns its message msg.
func testProto(t testing.TB, name, msg string) protoreflect.MessageDescriptor {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	c := protocompile.Compiler{Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
		Accessor: protocompile.SourceAccessorFromMap(map[string]string{name: string(src)}),
	})}
	files, err := c.Compile(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	d := files[0].FindDescriptorByName(protoreflect.FullName(msg))
	md, ok := d.(protoreflect.MessageDescriptor)
	if !ok {
		t.Fatalf("%s: no message %s", name, msg)
	}
	return md
}

// sampleOrder builds an Order with the official library's dynamic
// messages.
func sampleOrder(md protoreflect.MessageDescriptor) *dynamicpb.Message {
	m := dynamicpb.NewMessage(md)
	f := md.Fields().ByName
	set := func(n string, v protoreflect.Value) { m.Set(f(protoreflect.Name(n)), v) }
	set("id", protoreflect.ValueOfInt64(42))
	set("user", protoreflect.ValueOfString("ann ünïcode"))
	set("amount", protoreflect.ValueOfFloat64(12.5))
	set("status", protoreflect.ValueOfEnum(2))
	set("created", protoreflect.ValueOfMessage(timestamppb.New(time.UnixMilli(1700000000123)).ProtoReflect()))
	set("ttl", protoreflect.ValueOfMessage(durationpb.New(1500*time.Millisecond).ProtoReflect()))
	set("discount", protoreflect.ValueOfMessage(wrapperspb.Int64(0).ProtoReflect()))
	addr := dynamicpb.NewMessage(f("ship_to").Message())
	addr.Set(addr.Descriptor().Fields().ByName("city"), protoreflect.ValueOfString("Oslo"))
	set("ship_to", protoreflect.ValueOfMessage(addr))
	items := m.Mutable(f("items")).List()
	for i := range 2 {
		it := dynamicpb.NewMessage(f("items").Message())
		it.Set(it.Descriptor().Fields().ByName("sku"), protoreflect.ValueOfString("s"+string(rune('a'+i))))
		it.Set(it.Descriptor().Fields().ByName("qty"), protoreflect.ValueOfInt32(int32(i+1)))
		it.Set(it.Descriptor().Fields().ByName("price"), protoreflect.ValueOfFloat64(2.25))
		items.Append(protoreflect.ValueOfMessage(it))
	}
	tags := m.Mutable(f("tags")).List()
	tags.Append(protoreflect.ValueOfString("x"))
	tags.Append(protoreflect.ValueOfString("y \"q\""))
	ctr := m.Mutable(f("counters")).Map()
	ctr.Set(protoreflect.ValueOfString("a").MapKey(), protoreflect.ValueOfInt64(-3))
	set("blob", protoreflect.ValueOfBytes([]byte{0, 1, 2, 250}))
	set("priority", protoreflect.ValueOfInt32(0))
	set("delta", protoreflect.ValueOfInt64(-77))
	set("f32", protoreflect.ValueOfUint32(4000000000))
	set("sf64", protoreflect.ValueOfInt64(-5))
	set("big", protoreflect.ValueOfUint64(1<<62))
	set("flag", protoreflect.ValueOfBool(true))
	set("ratio", protoreflect.ValueOfFloat32(0.5))
	st, _ := structpb.NewStruct(map[string]any{"k": "v", "n": 1.5, "l": []any{true, nil}})
	set("attrs", protoreflect.ValueOfMessage(st.ProtoReflect()))
	nums := m.Mutable(f("nums")).List()
	for _, n := range []int32{1, -1, 300} {
		nums.Append(protoreflect.ValueOfInt32(n))
	}
	set("note", protoreflect.ValueOfMessage(wrapperspb.String("hi").ProtoReflect()))
	set("iban", protoreflect.ValueOfString("NO93"))
	bz := m.Mutable(f("by_zone")).Map()
	za := dynamicpb.NewMessage(f("by_zone").MapValue().Message())
	za.Set(za.Descriptor().Fields().ByName("zip"), protoreflect.ValueOfString("0150"))
	bz.Set(protoreflect.ValueOfInt32(7).MapKey(), protoreflect.ValueOfMessage(za))
	hist := m.Mutable(f("history")).List()
	hist.Append(protoreflect.ValueOfEnum(1))
	hist.Append(protoreflect.ValueOfEnum(9))
	set("extra", protoreflect.ValueOfMessage(structpb.NewStringValue("e").ProtoReflect()))
	return m
}

func protoSchema(md protoreflect.MessageDescriptor) *Schema {
	return MustSchema(ProtoFields(md)...)
}

func TestProtoDecodeValues(t *testing.T) {
	md := testProto(t, "order.proto", "shop.Order")
	data, err := proto.Marshal(sampleOrder(md))
	if err != nil {
		t.Fatal(err)
	}
	s := protoSchema(md)
	r, err := NewProtoDecoder(md, s, ProtoRestDrop).Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"id":       "42",
		"user":     `"ann ünïcode"`,
		"amount":   "12.5",
		"status":   `"SHIPPED"`,
		"created":  `"2023-11-14T22:13:20.123Z"`,
		"ttl":      "1500",
		"discount": "0",
		"ship_to":  `{"city":"Oslo"}`,
		"items":    `[{"sku":"sa","qty":1,"price":2.25},{"sku":"sb","qty":2,"price":2.25}]`,
		"tags":     `["x","y \"q\""]`,
		"counters": `{"a":-3}`,
		"blob":     `"AAEC+g=="`,
		"priority": "0",
		"delta":    "-77",
		"f32":      "4000000000",
		"sf64":     "-5",
		"big":      "4611686018427387904",
		"flag":     "true",
		"ratio":    "0.5",
		"nums":     "[1,-1,300]",
		"note":     `"hi"`,
		"card":     "null",
		"iban":     `"NO93"`,
		"by_zone":  `{"7":{"zip":"0150"}}`,
		"history":  `["PAID","9"]`,
		"extra":    `"e"`,
	}
	for name, w := range want {
		i, _ := s.Index(name)
		if got := string(r.Vals[i].AppendJSON(nil)); got != w {
			t.Errorf("%s = %s, want %s", name, got, w)
		}
	}
	i, _ := s.Index("created")
	if r.Vals[i].Kind() != KindTimestamp {
		t.Errorf("created is a %s", r.Vals[i].Kind())
	}
	// Struct members come out in wire order, which the library does not
	// fix for maps: compare them parsed.
	i, _ = s.Index("attrs")
	got := r.Vals[i].Any().(map[string]any)
	if got["k"] != "v" || got["n"] != 1.5 || len(got["l"].([]any)) != 2 {
		t.Errorf("attrs = %v", got)
	}
}

func TestProtoDecodeDefaults(t *testing.T) {
	md := testProto(t, "order.proto", "shop.Order")
	s := protoSchema(md)
	r, err := NewProtoDecoder(md, s, ProtoRestDrop).Decode(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"id": "0", "user": `""`, "status": `"STATUS_UNKNOWN"`, "created": "null", "discount": "null",
		"items": "[]", "counters": "{}", "priority": "null", "blob": `""`, "card": "null", "extra": "null",
	}
	for name, w := range want {
		i, _ := s.Index(name)
		if got := string(r.Vals[i].AppendJSON(nil)); got != w {
			t.Errorf("%s = %s, want %s", name, got, w)
		}
	}
}

// TestProtoRoundTrip decodes messages made by the official library and
// encodes the rows back; the library must read back an equal message.
func TestProtoRoundTrip(t *testing.T) {
	md := testProto(t, "order.proto", "shop.Order")
	s := protoSchema(md)
	dec := NewProtoDecoder(md, s, ProtoRestDrop)
	enc, err := NewProtoEncoder(md, s)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		m := sampleOrder(md)
		mutateOrder(rng, m)
		data, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		r, err := dec.Decode(data)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		out, err := enc.Append(nil, r)
		if err != nil {
			t.Fatalf("record %d: encode: %v", i, err)
		}
		back := dynamicpb.NewMessage(md)
		if err := proto.Unmarshal(out, back); err != nil {
			t.Fatalf("record %d: the library cannot read our encoding: %v", i, err)
		}
		if !proto.Equal(m, back) {
			t.Fatalf("record %d: round trip changed the message:\n in: %v\nout: %v", i, m, back)
		}
	}
}

// mutateOrder clears or changes some fields at random.
func mutateOrder(rng *rand.Rand, m *dynamicpb.Message) {
	fds := m.Descriptor().Fields()
	for i := 0; i < fds.Len(); i++ {
		fd := fds.Get(i)
		switch rng.IntN(4) {
		case 0:
			m.Clear(fd)
		case 1:
			switch fd.Kind() {
			case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
				if !fd.IsList() && !fd.IsMap() {
					m.Set(fd, protoreflect.ValueOfInt64(rng.Int64()-rng.Int64()/2))
				}
			case protoreflect.StringKind:
				if !fd.IsList() && !fd.IsMap() {
					m.Set(fd, protoreflect.ValueOfString(strings.Repeat("é", rng.IntN(200))))
				}
			case protoreflect.DoubleKind:
				if !fd.IsList() {
					m.Set(fd, protoreflect.ValueOfFloat64(rng.NormFloat64()*1e9))
				}
			}
		}
	}
}

// TestProtoUnpackedAndMerged checks wire forms the library does not
// write for proto3 but must read: unpacked repeated scalars, a singular
// message given twice (merged), a scalar given twice (last wins), and
// unknown fields (skipped).
func TestProtoUnpackedAndMerged(t *testing.T) {
	md := testProto(t, "order.proto", "shop.Order")
	var b []byte
	b = protowire.AppendTag(b, 21, protowire.VarintType)
	b = protowire.AppendVarint(b, 5)
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, 1)
	b = protowire.AppendTag(b, 8, protowire.BytesType)
	b = protowire.AppendBytes(b, protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "Oslo"))
	b = protowire.AppendTag(b, 99, protowire.BytesType)
	b = protowire.AppendBytes(b, []byte("unknown"))
	b = protowire.AppendTag(b, 21, protowire.VarintType)
	b = protowire.AppendVarint(b, 6)
	b = protowire.AppendTag(b, 8, protowire.BytesType)
	b = protowire.AppendBytes(b, protowire.AppendString(protowire.AppendTag(nil, 2, protowire.BytesType), "0150"))
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, 2)
	// The official library agrees on every field.
	ref := dynamicpb.NewMessage(md)
	if err := proto.Unmarshal(b, ref); err != nil {
		t.Fatal(err)
	}
	s := MustSchema(Field{Name: "nums"}, Field{Name: "id"}, Field{Name: "ship_to"})
	r, err := NewProtoDecoder(md, s, ProtoRestDrop).Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	got := string(NewJSONEncoder(s).Append(nil, r))
	if want := `{"nums":[5,6],"id":2,"ship_to":{"city":"Oslo","zip":"0150"}}`; got != want {
		t.Fatalf("got %s, want %s (library: %v)", got, want, ref)
	}
}

// TestProtoKeepRest keeps the fields no step names as JSON members, and
// the encoder writes them back.
func TestProtoKeepRest(t *testing.T) {
	md := testProto(t, "order.proto", "shop.Order")
	m := sampleOrder(md)
	data, _ := proto.Marshal(m)
	s := MustSchema(Field{Name: "id"})
	r, err := NewProtoDecoder(md, s, ProtoRestJSON).Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(r.Rest), `"user":"ann ünïcode"`) || !strings.Contains(string(r.Rest), `"created":"2023-11-14T22:13:20.123Z"`) {
		t.Fatalf("rest = %s", r.Rest)
	}
	enc, err := NewProtoEncoder(md, s)
	if err != nil {
		t.Fatal(err)
	}
	out, err := enc.Append(nil, r)
	if err != nil {
		t.Fatal(err)
	}
	back := dynamicpb.NewMessage(md)
	if err := proto.Unmarshal(out, back); err != nil {
		t.Fatal(err)
	}
	// Struct values and the enum number 9 (kept as "9") survive as well.
	if !proto.Equal(m, back) {
		t.Fatalf("round trip through Rest changed the message:\n in: %v\nout: %v", m, back)
	}
}

func TestProtoBadInput(t *testing.T) {
	md := testProto(t, "order.proto", "shop.Order")
	dec := NewProtoDecoder(md, protoSchema(md), ProtoRestDrop)
	// Deterministic: map entries come out in a random order otherwise,
	// and a cut could fall on a field boundary. Cutting the last byte
	// always leaves a partial field (every field is at least two bytes).
	good, _ := proto.MarshalOptions{Deterministic: true}.Marshal(sampleOrder(md))
	for name, b := range map[string][]byte{
		"truncated":   good[:len(good)-1],
		"bad tag":     {0x80},
		"zero field":  {0x00, 0x01},
		"bad utf8":    protowire.AppendString(protowire.AppendTag(nil, 2, protowire.BytesType), "\xff"),
		"long length": {0x12, 0x7f, 'a'},
		"end group":   {0x0c},
	} {
		if _, err := dec.Decode(b); err == nil {
			t.Errorf("%s: decoded", name)
		} else if ref := proto.Unmarshal(b, dynamicpb.NewMessage(md)); ref == nil {
			t.Errorf("%s: we refuse (%v) what the library reads", name, err)
		}
	}
}

func TestProtoEncodeErrors(t *testing.T) {
	md := testProto(t, "order.proto", "shop.Order")
	if _, err := NewProtoEncoder(md, MustSchema(Field{Name: "id"}, Field{Name: "nope"})); err == nil || !strings.Contains(err.Error(), "no field nope") {
		t.Fatalf("err = %v", err)
	}
	s := MustSchema(Field{Name: "id"}, Field{Name: "status"}, Field{Name: "items"}, Field{Name: "blob"})
	enc, err := NewProtoEncoder(md, s)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		vals []Value
		want string
	}{
		{[]Value{Float(1.5)}, "field id: cannot use float"},
		{[]Value{Null(), String("LOST")}, `"LOST" is not a value of the enum`},
		{[]Value{Null(), Null(), String("x")}, "field items: want a JSON array"},
		{[]Value{Null(), Null(), JSON(`[{"nope":1}]`)}, `has no field "nope"`},
		{[]Value{Null(), Null(), Null(), String("!!")}, "base64"},
	} {
		_, err := enc.Append(nil, Row{Vals: tc.vals})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.vals, err, tc.want)
		}
	}
}

// protoMapEntry appends one entry of map<int32, Address> by_zone (field
// 25) with key k and a city.
func protoMapEntry(b []byte, k int, city string) []byte {
	e := protowire.AppendTag(nil, 1, protowire.VarintType)
	e = protowire.AppendVarint(e, uint64(k))
	e = protowire.AppendTag(e, 2, protowire.BytesType)
	e = protowire.AppendBytes(e, protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), city))
	b = protowire.AppendTag(b, 25, protowire.BytesType)
	return protowire.AppendBytes(b, e)
}

// TestProtoMapLastWins checks map fields against the official library
// with keys given again, in maps short and long (the decoder indexes long
// ones): "When parsing from the wire or when merging, if there are
// duplicate map keys the last key seen is used" (protobuf language guide,
// Maps, "Maps Features").
func TestProtoMapLastWins(t *testing.T) {
	md := testProto(t, "order.proto", "shop.Order")
	s := MustSchema(Field{Name: "by_zone"})
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{3, 17, 40, 300} {
		var b []byte
		for i := range n {
			b = protoMapEntry(b, rng.IntN(n/2+1), strconv.Itoa(i))
		}
		ref := dynamicpb.NewMessage(md)
		if err := proto.Unmarshal(b, ref); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{}
		ref.Get(md.Fields().ByName("by_zone")).Map().Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
			want[k.String()] = v.Message().Get(v.Message().Descriptor().Fields().ByName("city")).String()
			return true
		})
		r, err := NewProtoDecoder(md, s, ProtoRestDrop).Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]struct{ City string }
		if err := json.Unmarshal([]byte(r.Vals[0].AsString()), &got); err != nil {
			t.Fatalf("%d entries: %v in %s", n, err, r.Vals[0].AsString())
		}
		if len(got) != len(want) {
			t.Fatalf("%d entries: %d keys, the library %d", n, len(got), len(want))
		}
		for k, city := range want {
			if got[k].City != city {
				t.Errorf("%d entries: key %s: city %q, the library %q", n, k, got[k].City, city)
			}
		}
	}
}

// TestProtoOneofLastWins checks oneofs against the official library:
// "If the parser encounters multiple members of the same oneof on the
// wire, only the last member seen is used in the parsed message"
// (protobuf language guide, Oneof, "Oneof Features"). At the top level,
// inside nested messages, in google.protobuf.Value (whose kind is a
// oneof), and for fields passed through as they were on the wire.
func TestProtoOneofLastWins(t *testing.T) {
	md := testProto(t, "oneof.proto", "shop.Holder")
	str := func(num protowire.Number, s string) []byte {
		return protowire.AppendString(protowire.AppendTag(nil, num, protowire.BytesType), s)
	}
	num := func(n protowire.Number, v uint64) []byte {
		return protowire.AppendVarint(protowire.AppendTag(nil, n, protowire.VarintType), v)
	}
	msg := func(n protowire.Number, parts ...[]byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, n, protowire.BytesType), bytes.Join(parts, nil))
	}
	// Members of Holder.method and of Pay.method: card (2 / 1), account
	// (3 / 2), card_msg (4 / 3).
	type member struct{ top, nested []byte }
	card := member{str(2, "x"), str(1, "x")}
	account := member{num(3, 5), num(2, 5)}
	cardMsg := member{msg(4, str(1, "n1")), msg(3, str(1, "n1"))}
	orders := [][]member{{card, account}, {account, card}, {cardMsg, card}, {card, cardMsg}, {account, cardMsg, account}, {cardMsg, card, cardMsg}}
	all := MustSchema(Field{Name: "pay"}, Field{Name: "card"}, Field{Name: "account"}, Field{Name: "card_msg"}, Field{Name: "extra"})
	some := MustSchema(Field{Name: "card"})
	enc, err := NewProtoEncoder(md, some)
	if err != nil {
		t.Fatal(err)
	}
	enc.RestWire(md)
	for _, order := range orders {
		var b, nested []byte
		for _, m := range order {
			b = append(b, m.top...)
			nested = append(nested, m.nested...)
		}
		b = append(b, msg(1, nested)...)
		// extra: string_value "s", then number_value 2.
		b = append(b, msg(5, str(3, "s"), protowire.AppendFixed64(protowire.AppendTag(nil, 2, protowire.Fixed64Type), math.Float64bits(2)))...)
		ref := dynamicpb.NewMessage(md)
		if err := proto.Unmarshal(b, ref); err != nil {
			t.Fatal(err)
		}
		want, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(ref)
		if err != nil {
			t.Fatal(err)
		}
		r, err := NewProtoDecoder(md, all, ProtoRestDrop).Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		got := NewJSONEncoder(all).Append(nil, r)
		if !sameJSONMembers(t, got, want) {
			t.Errorf("%x: we read %s, the library %s", b, got, want)
		}
		// Passed through as on the wire, with one member a row field: the
		// library reads the same message back.
		rs, err := NewProtoDecoder(md, some, ProtoRestWire).Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		out, err := enc.Append(nil, rs)
		if err != nil {
			t.Fatal(err)
		}
		back := dynamicpb.NewMessage(md)
		if err := proto.Unmarshal(out, back); err != nil || !proto.Equal(ref, back) {
			t.Errorf("%x passed through as %x (%v): %v, the library read %v", b, out, err, back, ref)
		}
	}
}

// sameJSONMembers reports whether two JSON objects have the same members,
// at every depth, null members counted as absent and int64 values (strings
// in protobuf's JSON mapping) compared as numbers.
func sameJSONMembers(t *testing.T, a, b []byte) bool {
	t.Helper()
	var clean func(v any) any
	clean = func(v any) any {
		m, ok := v.(map[string]any)
		if !ok {
			return v
		}
		for k, x := range m {
			switch x := x.(type) {
			case nil:
				delete(m, k)
			case string:
				if f, err := strconv.ParseFloat(x, 64); err == nil && k == "account" {
					m[k] = f
				}
			default:
				m[k] = clean(x)
			}
		}
		return m
	}
	norm := func(js []byte) string {
		var v any
		if err := json.Unmarshal(js, &v); err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		out, _ := json.Marshal(clean(v))
		return string(out)
	}
	return norm(a) == norm(b)
}
