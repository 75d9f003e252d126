package row

import (
	"encoding/json"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// FuzzProtoDecode checks the protobuf decoder against the official
// library on outside bytes: it never panics; it accepts exactly what the
// library accepts (except integers our rows cannot hold); json values it
// makes are valid JSON; and what it accepts encodes to bytes the library
// reads back.
func FuzzProtoDecode(f *testing.F) {
	md := testProto(f, "order.proto", "shop.Order")
	good, err := proto.Marshal(sampleOrder(md))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte{})
	f.Add([]byte{0x0b, 0x0c})
	s := protoSchema(md)
	enc, err := NewProtoEncoder(md, s)
	if err != nil {
		f.Fatal(err)
	}
	sub := MustSchema(Field{Name: "id"}, Field{Name: "user"})
	subEnc, err := NewProtoEncoder(md, sub)
	if err != nil {
		f.Fatal(err)
	}
	subEnc.RestWire(md)
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewProtoDecoder(md, s, ProtoRestDrop).Decode(data)
		ref, ok := refUnmarshal(data, md)
		if !ok {
			return // the reference itself panicked
		}
		if ref == nil {
			// Two fields decoded, the rest passed through: the library
			// reads the same message back.
			rs, err := NewProtoDecoder(md, sub, ProtoRestWire).Decode(data)
			if err != nil {
				t.Fatalf("subset decode of %x: %v", data, err)
			}
			out, err := subEnc.Append(nil, rs)
			if err != nil {
				t.Fatalf("subset encode of %x: %v", data, err)
			}
			a, b := dynamicpb.NewMessage(md), dynamicpb.NewMessage(md)
			if proto.Unmarshal(data, a) == nil {
				if err := proto.Unmarshal(out, b); err != nil || !proto.Equal(a, b) {
					t.Fatalf("pass-through of %x changed the message (%v):\n%v\n%v", data, err, a, b)
				}
			}
		}
		if err != nil {
			if ref == nil && !strings.Contains(err.Error(), "does not fit an int") && !strings.Contains(err.Error(), "out of range") {
				t.Fatalf("we refuse %x (%v); the library reads it", data, err)
			}
			return
		}
		if ref != nil {
			t.Fatalf("we read %x; the library refuses it: %v", data, ref)
		}
		for i, v := range r.Vals {
			if v.Kind() == KindJSON && !json.Valid([]byte(v.AsString())) {
				t.Fatalf("field %s: invalid JSON %q", s.Field(i).Name, v.AsString())
			}
		}
		out, err := enc.Append(nil, r)
		if err != nil {
			// Values of Value / Struct fields that a JSON number cannot
			// carry, say; never a panic.
			return
		}
		if err, _ := refUnmarshal(out, md); err != nil {
			t.Fatalf("re-encoding of %x is not readable: %v", data, err)
		}
	})
}

// refUnmarshal unmarshals with the official library into a dynamic
// message. ok is false when the library panicked: dynamicpb does on some
// map entries whose key has the wrong wire type (a bug of the reference,
// not a verdict on the bytes).
func refUnmarshal(data []byte, md protoreflect.MessageDescriptor) (err error, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return proto.Unmarshal(data, dynamicpb.NewMessage(md)), true
}
