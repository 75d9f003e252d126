package row

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sluicehq/sluice/row/internal/benchpb"
)

// The records of the format benchmarks: orders of ten fields (ints, short
// strings, an enum, a Timestamp, a repeated string and a nested message),
// 84-91 bytes in protobuf and 221-230 in JSON, the same values in both.
// Two thirds pass the filter status == PAID && amount_cents > 100.
func benchOrders(n int) []*benchpb.Order {
	out := make([]*benchpb.Order, n)
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range out {
		st := benchpb.Order_PAID
		if i%3 == 0 {
			st = benchpb.Order_CANCELLED
		}
		out[i] = &benchpb.Order{
			Id:          int64(1_000_000 + i),
			User:        fmt.Sprintf("user-%04d", i%997),
			AmountCents: int64(100 + i*37%9000),
			Currency:    "EUR",
			Status:      st,
			Created:     timestamppb.New(base.Add(time.Duration(i) * 37 * time.Millisecond)),
			Tags:        []string{"web", fmt.Sprintf("campaign-%d", i%7)},
			Qty:         int32(i%5 + 1),
			ShipTo:      &benchpb.Address{City: "Oslo", Zip: fmt.Sprintf("%04d", i%500)},
			Note:        "leave at the door",
		}
	}
	return out
}

func benchProtoData(b *testing.B) [][]byte {
	var out [][]byte
	for _, o := range benchOrders(1024) {
		data, err := proto.Marshal(o)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, data)
	}
	return out
}

// benchJSONData is the same orders as JSON objects, as a JSON producer
// writes them (created as RFC 3339, status as its name).
func benchJSONData(b *testing.B) [][]byte {
	var out [][]byte
	for _, o := range benchOrders(1024) {
		out = append(out, fmt.Appendf(nil, `{"id":%d,"user":%q,"amount_cents":%d,"currency":%q,"status":%q,"created":%q,"tags":[%q,%q],"qty":%d,"ship_to":{"city":%q,"zip":%q},"note":%q}`,
			o.Id, o.User, o.AmountCents, o.Currency, o.Status.String(), o.Created.AsTime().Format(time.RFC3339Nano),
			o.Tags[0], o.Tags[1], o.Qty, o.ShipTo.City, o.ShipTo.Zip, o.Note))
	}
	return out
}

// reportRecords reports records per CPU-second of the process (user +
// system, GC included), which a shared machine disturbs far less than
// wall time. cpu0 is cpuSeconds() before the loop.
func reportRecords(b *testing.B, n int, cpu0 float64) {
	if cpu := cpuSeconds() - cpu0; cpu > 0 {
		b.ReportMetric(float64(n)/cpu, "records/cpu-s")
	}
}

// BenchmarkProtobufFormats measures decode + filter + encode of one record per
// op on one core, for the paths a pipeline with one filter step takes:
//
//   - json: the JSON decoder extracts the two fields the filter reads and
//     keeps the other members raw; the encoder writes them back;
//   - protobuf: likewise, Sluice's decoder extracts the two fields and
//     keeps the others as they were on the wire (ProtoRestWire); the
//     encoder writes the two and copies the rest;
//   - protobuf-all-fields: every field decoded into the row (nested and
//     repeated ones as json) and encoded back, as when a step names them
//     all;
//   - protobuf-generated: the official library with generated code
//     (proto.Unmarshal into a reused struct, proto.MarshalAppend), the
//     fastest the library goes;
//   - protobuf-dynamicpb: the official library with dynamic messages, the
//     way it reads a schema known only at run time (Sluice's case).
//
// The -decode variants stop after decoding.
func BenchmarkProtobufFormats(b *testing.B) {
	md := (&benchpb.Order{}).ProtoReflect().Descriptor()
	pdata := benchProtoData(b)
	jdata := benchJSONData(b)

	b.Run("json", func(b *testing.B) {
		s := MustSchema(Field{Name: "status"}, Field{Name: "amount_cents"})
		dec, enc := NewJSONDecoder(s, true), NewJSONEncoder(s)
		var buf []byte
		b.ReportAllocs()
		cpu0 := cpuSeconds()
		for i := 0; b.Loop(); i++ {
			data := jdata[i%len(jdata)]
			b.SetBytes(int64(len(data)))
			r, err := dec.Decode(data)
			if err != nil {
				b.Fatal(err)
			}
			if r.Vals[0].AsString() == "PAID" && r.Vals[1].AsInt() > 100 {
				buf = enc.Append(buf[:0], r)
			}
		}
		reportRecords(b, b.N, cpu0)
	})
	b.Run("protobuf", func(b *testing.B) {
		s := MustSchema(Field{Name: "status", Kind: KindString}, Field{Name: "amount_cents", Kind: KindInt})
		dec := NewProtoDecoder(md, s, ProtoRestWire)
		enc, err := NewProtoEncoder(md, s)
		if err != nil {
			b.Fatal(err)
		}
		enc.RestWire(md)
		var buf []byte
		b.ReportAllocs()
		cpu0 := cpuSeconds()
		for i := 0; b.Loop(); i++ {
			data := pdata[i%len(pdata)]
			b.SetBytes(int64(len(data)))
			r, err := dec.Decode(data)
			if err != nil {
				b.Fatal(err)
			}
			if r.Vals[0].AsString() == "PAID" && r.Vals[1].AsInt() > 100 {
				if buf, err = enc.Append(buf[:0], r); err != nil {
					b.Fatal(err)
				}
			}
		}
		reportRecords(b, b.N, cpu0)
	})
	b.Run("protobuf-all-fields", func(b *testing.B) {
		s := MustSchema(ProtoFields(md)...)
		dec := NewProtoDecoder(md, s, ProtoRestDrop)
		enc, err := NewProtoEncoder(md, s)
		if err != nil {
			b.Fatal(err)
		}
		st, _ := s.Index("status")
		amt, _ := s.Index("amount_cents")
		var buf []byte
		b.ReportAllocs()
		cpu0 := cpuSeconds()
		for i := 0; b.Loop(); i++ {
			data := pdata[i%len(pdata)]
			b.SetBytes(int64(len(data)))
			r, err := dec.Decode(data)
			if err != nil {
				b.Fatal(err)
			}
			if r.Vals[st].AsString() == "PAID" && r.Vals[amt].AsInt() > 100 {
				if buf, err = enc.Append(buf[:0], r); err != nil {
					b.Fatal(err)
				}
			}
		}
		reportRecords(b, b.N, cpu0)
	})
	b.Run("protobuf-generated", func(b *testing.B) {
		var m benchpb.Order
		var buf []byte
		b.ReportAllocs()
		cpu0 := cpuSeconds()
		for i := 0; b.Loop(); i++ {
			data := pdata[i%len(pdata)]
			b.SetBytes(int64(len(data)))
			m.Reset()
			if err := proto.Unmarshal(data, &m); err != nil {
				b.Fatal(err)
			}
			if m.Status == benchpb.Order_PAID && m.AmountCents > 100 {
				var err error
				if buf, err = (proto.MarshalOptions{}).MarshalAppend(buf[:0], &m); err != nil {
					b.Fatal(err)
				}
			}
		}
		reportRecords(b, b.N, cpu0)
	})
	b.Run("protobuf-dynamicpb", func(b *testing.B) {
		m := dynamicpb.NewMessage(md)
		stf, amtf := md.Fields().ByName("status"), md.Fields().ByName("amount_cents")
		var buf []byte
		b.ReportAllocs()
		cpu0 := cpuSeconds()
		for i := 0; b.Loop(); i++ {
			data := pdata[i%len(pdata)]
			b.SetBytes(int64(len(data)))
			proto.Reset(m)
			if err := proto.Unmarshal(data, m); err != nil {
				b.Fatal(err)
			}
			if m.Get(stf).Enum() == 1 && m.Get(amtf).Int() > 100 {
				var err error
				if buf, err = (proto.MarshalOptions{}).MarshalAppend(buf[:0], m); err != nil {
					b.Fatal(err)
				}
			}
		}
		reportRecords(b, b.N, cpu0)
	})
	b.Run("json-decode", func(b *testing.B) {
		dec := NewJSONDecoder(MustSchema(Field{Name: "status"}, Field{Name: "amount_cents"}), true)
		b.ReportAllocs()
		cpu0 := cpuSeconds()
		for i := 0; b.Loop(); i++ {
			if _, err := dec.Decode(jdata[i%len(jdata)]); err != nil {
				b.Fatal(err)
			}
		}
		reportRecords(b, b.N, cpu0)
	})
	b.Run("protobuf-decode", func(b *testing.B) {
		dec := NewProtoDecoder(md, MustSchema(Field{Name: "status"}, Field{Name: "amount_cents"}), ProtoRestWire)
		b.ReportAllocs()
		cpu0 := cpuSeconds()
		for i := 0; b.Loop(); i++ {
			if _, err := dec.Decode(pdata[i%len(pdata)]); err != nil {
				b.Fatal(err)
			}
		}
		reportRecords(b, b.N, cpu0)
	})
	b.Run("protobuf-all-fields-decode", func(b *testing.B) {
		dec := NewProtoDecoder(md, MustSchema(ProtoFields(md)...), ProtoRestDrop)
		b.ReportAllocs()
		cpu0 := cpuSeconds()
		for i := 0; b.Loop(); i++ {
			if _, err := dec.Decode(pdata[i%len(pdata)]); err != nil {
				b.Fatal(err)
			}
		}
		reportRecords(b, b.N, cpu0)
	})
	b.Run("protobuf-generated-decode", func(b *testing.B) {
		var m benchpb.Order
		b.ReportAllocs()
		cpu0 := cpuSeconds()
		for i := 0; b.Loop(); i++ {
			m.Reset()
			if err := proto.Unmarshal(pdata[i%len(pdata)], &m); err != nil {
				b.Fatal(err)
			}
		}
		reportRecords(b, b.N, cpu0)
	})
	b.Run("protobuf-dynamicpb-decode", func(b *testing.B) {
		m := dynamicpb.NewMessage(md)
		b.ReportAllocs()
		cpu0 := cpuSeconds()
		for i := 0; b.Loop(); i++ {
			proto.Reset(m)
			if err := proto.Unmarshal(pdata[i%len(pdata)], m); err != nil {
				b.Fatal(err)
			}
		}
		reportRecords(b, b.N, cpu0)
	})
}

// cpuSeconds is the user+system CPU time of the process so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// BenchmarkProtoDecodeManyMapEntries decodes a map field of many distinct
// keys: hostile or not, a record of n entries must cost O(n) (each key
// is checked against those before it, as the last one given wins).
func BenchmarkProtoDecodeManyMapEntries(b *testing.B) {
	md := testProto(b, "order.proto", "shop.Order")
	var msg []byte
	for i := range 40_000 {
		msg = protoMapEntry(msg, i, "c")
	}
	d := NewProtoDecoder(md, MustSchema(Field{Name: "by_zone"}), ProtoRestDrop)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Decode(msg); err != nil {
			b.Fatal(err)
		}
	}
}
