package pipeline

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/sluicehq/sluice/connector"
)

// benchProtobufFormat is BenchmarkFormats' protobuf case: the same
// orders, marshalled by the official library, through a filter
// pipeline's protobuf decoder and protobuf sink encoder (the fields the
// filter does not name pass through as wire bytes).
func benchProtobufFormat(b *testing.B, orders []benchOrder) {
	file := protoTestdata(b, "bench_order.proto")
	md, _ := protoMessage(b, "bench_order.proto", "bench.Order")
	n := len(orders)
	msgs := make([]connector.Message, n)
	f := md.Fields().ByName
	for i, o := range orders {
		m := dynamicpb.NewMessage(md)
		m.Set(f("ts"), protoreflect.ValueOfInt64(o.TS))
		m.Set(f("order_id"), protoreflect.ValueOfInt64(o.OrderID))
		m.Set(f("user_id"), protoreflect.ValueOfString(o.UserID))
		m.Set(f("status"), protoreflect.ValueOfString(o.Status))
		m.Set(f("price"), protoreflect.ValueOfFloat64(o.Price))
		m.Set(f("qty"), protoreflect.ValueOfInt64(o.Qty))
		m.Set(f("channel"), protoreflect.ValueOfString(o.Channel))
		bin, err := proto.Marshal(m)
		if err != nil {
			b.Fatal(err)
		}
		msgs[i] = connector.Message{Value: bin}
	}
	s, err := Parse("bench.yaml", fmt.Appendf(nil, `
source: {log: {topic: in}, format: protobuf, schema: {file: %s, message: bench.Order}}
steps: [{filter: status == "paid"}]
sink: {log: {topic: out}, format: protobuf, schema: {file: %s, message: bench.Order}}
`, file, file))
	if err != nil {
		b.Fatal(err)
	}
	p, err := Compile(s)
	if err != nil {
		b.Fatal(err)
	}
	pi, err := newProtoInput(p.input, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	dec, err := newMsgDecoder(p.input, nil, pi)
	if err != nil {
		b.Fatal(err)
	}
	enc, err := p.rowEncoderFor(context.Background(), nil, s.Sinks[0], p.OutputSchema())
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 4096)
	kept := 0
	measure(b, func(i int) {
		tr, keep, f := dec.message(&msgs[i%n])
		if f != nil {
			b.Fatal(f.Err)
		}
		if keep {
			kept++
			if buf, err = enc.Append(buf[:0], tr.r); err != nil {
				b.Fatal(err)
			}
		}
	})
	if b.N >= 5 && kept == 0 {
		b.Fatal("nothing passed the filter")
	}
}
