package pipeline

import (
	"context"
	"fmt"
	"strings"
	"testing"

	havro "github.com/hamba/avro/v2"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/row/avro"
)

// benchAvroSchema is the order record as Avro (the JSON benchmarks'
// fields and values).
const benchAvroSchema = `{"type":"record","name":"Order","fields":[
	{"name":"ts","type":"long"},
	{"name":"order_id","type":"long"},
	{"name":"user_id","type":"string"},
	{"name":"status","type":"string"},
	{"name":"price","type":"double"},
	{"name":"qty","type":"long"},
	{"name":"channel","type":"string"}]}`

// benchOrder is the record as a Go struct, for hamba/avro's own loop.
type benchOrder struct {
	TS      int64   `avro:"ts"`
	OrderID int64   `avro:"order_id"`
	UserID  string  `avro:"user_id"`
	Status  string  `avro:"status"`
	Price   float64 `avro:"price"`
	Qty     int64   `avro:"qty"`
	Channel string  `avro:"channel"`
}

func benchOrders(n int) []benchOrder {
	statuses := []string{"paid", "paid", "paid", "pending", "cancelled"}
	out := make([]benchOrder, n)
	for i := range out {
		out[i] = benchOrder{TS: 1767225600000 + int64(i)*10, OrderID: int64(i), UserID: fmt.Sprintf("u%d", (i*7919)%10000),
			Status: statuses[i%5], Price: float64(1+i%97) + float64(i%100)/100, Qty: int64(1 + i%4), Channel: "web"}
	}
	return out
}

// BenchmarkFormats is decode + filter + encode of one record, the work a
// source split and a byte sink do per record of a filter pipeline that
// writes whole records (status == "paid", three in five pass), for each
// format on the same records:
//
//   - json: row.JSONDecoder extracting status and keeping the rest raw,
//     row.JSONEncoder writing the record back;
//   - avro: this package's avro decoder and encoder (bare Avro, the schema
//     from the spec; status decoded, the six other fields carried as Avro
//     bytes in Row.Rest and copied by the sink, whose derived schema is
//     the input's);
//   - hamba: hamba/avro's own loop, Unmarshal into a Go struct, the
//     filter in Go, Marshal: the library at its fastest, without rows;
//   - protobuf: the same records as protobuf (format_protobuf_bench_test.go).
//
// One op is one record; records/cpu-s counts them per CPU-second of the
// process.
func BenchmarkFormats(b *testing.B) {
	const n = 4096
	orders := benchOrders(n)
	schema := havro.MustParse(benchAvroSchema)
	avroMsgs := make([]connector.Message, n)
	jsonMsgs := make([]connector.Message, n)
	for i, o := range orders {
		bin, err := havro.Marshal(schema, o)
		if err != nil {
			b.Fatal(err)
		}
		avroMsgs[i] = connector.Message{Value: bin}
		jsonMsgs[i] = connector.Message{Value: fmt.Appendf(nil, `{"ts":%d,"order_id":%d,"user_id":"%s","status":"%s","price":%v,"qty":%d,"channel":"web"}`,
			o.TS, o.OrderID, o.UserID, o.Status, o.Price, o.Qty)}
	}
	pipelineLoop := func(b *testing.B, format, extra string, msgs []connector.Message) {
		spec := fmt.Sprintf(`
source: {log: {topic: in}, format: %s %s}
steps: [{filter: status == "paid"}]
sink: {log: {topic: out}, format: %s}
`, format, extra, format)
		s, err := Parse("bench.yaml", []byte(spec))
		if err != nil {
			b.Fatal(err)
		}
		p, err := Compile(s)
		if err != nil {
			b.Fatal(err)
		}
		var ai *avroInput
		if format == "avro" {
			if ai, err = newAvroInput(context.Background(), p.input, nil, nil); err != nil {
				b.Fatal(err)
			}
		}
		md, err := newMsgDecoder(p.input, ai, nil)
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
			tr, keep, f := md.message(&msgs[i%n])
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
	b.Run("json", func(b *testing.B) { pipelineLoop(b, "json", "", jsonMsgs) })
	b.Run("avro", func(b *testing.B) {
		pipelineLoop(b, "avro", ", schema: {inline: '"+strings.ReplaceAll(benchAvroSchema, "\n", " ")+"'}", avroMsgs)
	})
	b.Run("protobuf", func(b *testing.B) { benchProtobufFormat(b, orders) })
	b.Run("hamba", func(b *testing.B) {
		buf := make([]byte, 0, 4096)
		var o benchOrder
		var err error
		measure(b, func(i int) {
			if err := havro.Unmarshal(schema, avroMsgs[i%n].Value, &o); err != nil {
				b.Fatal(err)
			}
			if o.Status == "paid" {
				if buf, err = havroAppend(schema, buf[:0], &o); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// BenchmarkAvroDecode is decoding alone, every field of the record: this
// package's decoder into rows against hamba/avro's Unmarshal into a Go
// struct (its fastest form; into a map it is several times slower).
func BenchmarkAvroDecode(b *testing.B) {
	const n = 4096
	orders := benchOrders(n)
	schema := havro.MustParse(benchAvroSchema)
	msgs := make([][]byte, n)
	for i, o := range orders {
		msgs[i], _ = havro.Marshal(schema, o)
	}
	b.Run("rows", func(b *testing.B) {
		s := avro.MustParse(benchAvroSchema)
		var names []string
		for _, f := range s.Fields() {
			names = append(names, f.Name)
		}
		rs, _ := row.Untyped(names...)
		p, err := avro.Compile(s, nil, rs, avro.Options{})
		if err != nil {
			b.Fatal(err)
		}
		var d avro.Decoder
		measure(b, func(i int) {
			if _, err := d.Decode(p, msgs[i%n]); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("hamba-struct", func(b *testing.B) {
		var o benchOrder
		measure(b, func(i int) {
			if err := havro.Unmarshal(schema, msgs[i%n], &o); err != nil {
				b.Fatal(err)
			}
		})
	})
	// A new struct per record, as a pipeline keeps each record apart.
	b.Run("hamba-struct-new", func(b *testing.B) {
		measure(b, func(i int) {
			o := new(benchOrder)
			if err := havro.Unmarshal(schema, msgs[i%n], o); err != nil {
				b.Fatal(err)
			}
		})
	})
}

func havroAppend(s havro.Schema, dst []byte, v any) ([]byte, error) {
	out, err := havro.Marshal(s, v)
	return append(dst, out...), err
}

// measure runs f b.N times and reports records per CPU-second.
func measure(b *testing.B, f func(i int)) {
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := range b.N {
		f(i)
	}
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "records/cpu-s")
	}
}
