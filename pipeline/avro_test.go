package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/record"
)

// Two versions of the producers' schema. v2 removes legacy, widens qty
// from int to long, adds the REFUNDED symbol and a channel field with a
// default: a BACKWARD-compatible change, so v2 reads v1 records.
const (
	orderV1 = `{"type":"record","name":"Order","namespace":"shop","fields":[
	{"name":"order_id","type":"long"},
	{"name":"user","type":"string"},
	{"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","PAID","CANCELLED"]}},
	{"name":"qty","type":"int"},
	{"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}},
	{"name":"legacy","type":"string"},
	{"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}}]}`
	orderV2 = `{"type":"record","name":"Order","namespace":"shop","fields":[
	{"name":"order_id","type":"long"},
	{"name":"user","type":"string"},
	{"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","PAID","CANCELLED","REFUNDED"]}},
	{"name":"qty","type":"long"},
	{"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}},
	{"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},
	{"name":"channel","type":"string","default":"web"}]}`
)

type avroOrder struct {
	id       int64
	user     string
	status   string
	qty      int64
	cents    int64
	ts       int64
	channel  string
	v2       bool
	excluded bool
}

func openTestLog(t *testing.T) *logstore.Log {
	t.Helper()
	l, err := logstore.Open(logstore.Options{Dir: filepath.Join(t.TempDir(), "log"), DefaultFsync: logstore.FsyncPolicy{Mode: logstore.FsyncNever}, RetentionCheckInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func appendTopic(t *testing.T, l *logstore.Log, topic string, partitions int32, values [][]byte) {
	t.Helper()
	if err := l.CreateTopic(topic, logstore.TopicConfig{Partitions: partitions}); err != nil {
		t.Fatal(err)
	}
	tp, _ := l.Topic(topic)
	for p := range partitions {
		part, _ := tp.Partition(p)
		var recs []record.Record
		for i, v := range values {
			if int32(i)%partitions == p {
				recs = append(recs, record.Record{Value: v, Timestamp: int64(i)})
			}
		}
		if _, err := part.AppendRecords(context.Background(), recs); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAvroRegistryEvolution: a producer that Sluice does not share code
// with (goavro for the bytes, franz-go's sr client for the registry)
// writes v1 and v2 records interleaved into one topic, with a few bad
// ones. One running pipeline reads them all with the v2 schema as reader
// (event time from a timestamp-millis field, an enum in a filter, a field
// only v2 has), aggregates per user and minute, and writes Avro back,
// registering its output schema. goavro reads the output with the schema
// the registry returns for the records' id; the aggregates are exact and
// the bad records are dead-lettered with their reasons.
func TestAvroRegistryEvolution(t *testing.T) {
	reg := srfake.New()
	defer reg.Close()
	cl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s1, err := cl.CreateSchema(ctx, "orders-value", sr.Schema{Schema: orderV1, Type: sr.TypeAvro})
	if err != nil {
		t.Fatal(err)
	}
	s2, err := cl.CreateSchema(ctx, "orders-value", sr.Schema{Schema: orderV2, Type: sr.TypeAvro})
	if err != nil {
		t.Fatal(err)
	}
	c1, err := goavro.NewCodec(orderV1)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := goavro.NewCodec(orderV2)
	if err != nil {
		t.Fatal(err)
	}
	var hdr sr.ConfluentHeader
	const n = 6000
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	statuses := []string{"PAID", "PAID", "NEW", "CANCELLED"}
	var orders []avroOrder
	var values [][]byte
	for i := range n {
		o := avroOrder{id: int64(i), user: fmt.Sprintf("u%d", i%7), status: statuses[i%4], qty: int64(1 + i%5),
			cents: int64(100 + (i*37)%5000), ts: base + int64(i)*50, channel: "web", v2: i%3 != 0}
		m := map[string]any{"order_id": o.id, "user": o.user, "status": o.status,
			"price": big.NewRat(o.cents, 100), "ts": time.UnixMilli(o.ts).UTC()}
		var b []byte
		if o.v2 {
			if i%4 == 1 {
				o.status = "REFUNDED"
				m["status"] = o.status
			}
			if i%10 == 2 {
				o.channel = "test"
			}
			m["qty"], m["channel"] = o.qty, o.channel
			b, _ = hdr.AppendEncode(nil, s2.ID, nil)
			b, err = c2.BinaryFromNative(b, m)
		} else {
			m["qty"], m["legacy"] = int32(o.qty), "x"
			b, _ = hdr.AppendEncode(nil, s1.ID, nil)
			b, err = c1.BinaryFromNative(b, m)
		}
		if err != nil {
			t.Fatal(err)
		}
		orders = append(orders, o)
		values = append(values, b)
	}
	// Bad records: a wrong magic byte, an id the registry does not know,
	// a truncated payload, and a v1 id on v2 bytes (a trailing field).
	good2, _ := c2.BinaryFromNative(nil, map[string]any{"order_id": int64(1), "user": "z", "status": "PAID", "qty": int64(1),
		"price": big.NewRat(1, 1), "ts": time.UnixMilli(base).UTC(), "channel": "web"})
	bad := [][]byte{
		append([]byte{1, 0, 0, 0, byte(s2.ID)}, good2...),
		append([]byte{0, 0, 0, 3, 0xe7}, good2...),
		append(append([]byte{0, 0, 0, 0, byte(s2.ID)}, good2...)[:12:12], []byte{}...),
		append([]byte{0, 0, 0, 0, byte(s1.ID)}, good2...),
	}
	reasons := []string{"magic byte", "schema id 999 is unknown", "truncated", "avro: bad record"}
	values = append(values[:n/2], append(bad, values[n/2:]...)...)

	l := openTestLog(t)
	appendTopic(t, l, "orders", 2, values)
	dir := t.TempDir()
	spec := fmt.Sprintf(`
name: avro-revenue
registry: {url: %s}
source:
  log: {topic: orders, bounded: true}
  format: avro
  schema: {inline: '%s'}
  event_time: {field: ts, max_out_of_orderness: 1m}
steps:
  - filter: status == "PAID" && channel != "test"
  - window:
      key: [user]
      tumbling: 1m
      aggregate: {orders: count(), qty: sum(qty), top_price: max(price), last_ts: max(ts)}
sink:
  log: {topic: revenue, key: user}
  format: avro
parallelism: 2
errors: {tolerance: all, dead_letter: {file: {path: %s/dead}}}
`, reg.URL(), strings.ReplaceAll(orderV2, "\n", " "), dir)
	s, err := Parse("avro.yaml", []byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	j, err := p.Start(ctx, &Host{Log: l, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}

	// Expected aggregates.
	type agg struct {
		orders, qty, top, last int64
	}
	want := map[string]agg{}
	for _, o := range orders {
		if o.status != "PAID" || o.channel == "test" {
			continue
		}
		w := o.ts - o.ts%60000
		k := fmt.Sprintf("%s@%d", o.user, w)
		a := want[k]
		a.orders++
		a.qty += o.qty
		a.top = max(a.top, o.cents)
		a.last = max(a.last, o.ts)
		want[k] = a
	}

	// The output, read as another implementation would: the schema by
	// the id each record carries, goavro for the bytes.
	msgs := committedLog(t, l, "revenue")
	got := map[string]agg{}
	codecs := map[int]*goavro.Codec{}
	for _, m := range msgs {
		id, payload, err := hdr.DecodeID(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		c := codecs[id]
		if c == nil {
			sch, err := cl.SchemaByID(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if c, err = goavro.NewCodec(sch.Schema); err != nil {
				t.Fatalf("output schema %s: %v", sch.Schema, err)
			}
			codecs[id] = c
		}
		v, rest, err := c.NativeFromBinary(payload)
		if err != nil || len(rest) > 0 {
			t.Fatalf("goavro: %v (%d bytes left)", err, len(rest))
		}
		r := v.(map[string]any)
		un := func(k, typ string) any { return r[k].(map[string]any)[typ] }
		user := un("user", "string").(string)
		if string(m.Key) != user {
			t.Errorf("key %q, user %q", m.Key, user)
		}
		top := un("top_price", "double").(float64)
		k := fmt.Sprintf("%s@%d", user, un("window_start", "long").(int64))
		if _, dup := got[k]; dup {
			t.Errorf("window %s twice", k)
		}
		got[k] = agg{orders: un("orders", "long").(int64), qty: un("qty", "long").(int64),
			top: int64(top*100 + 0.5), last: un("last_ts", "long.timestamp-millis").(time.Time).UnixMilli()}
	}
	if len(codecs) != 1 {
		t.Errorf("output under %d schema ids", len(codecs))
	}
	if len(got) != len(want) {
		t.Errorf("%d windows, want %d", len(got), len(want))
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("window %s: %+v, want %+v", k, got[k], w)
		}
	}
	// The output schema is registered under the topic's subject.
	if ss, err := cl.SchemaByVersion(ctx, "revenue-value", -1); err != nil || !strings.Contains(ss.Schema.Schema, "avro_revenue") {
		t.Errorf("revenue-value: %+v %v", ss, err)
	}

	// Each bad record is a dead letter with its reason and its bytes.
	if d := j.DeadLetters(); d != int64(len(bad)) {
		t.Errorf("%d dead letters, want %d", d, len(bad))
	}
	dead := readDir(t, filepath.Join(dir, "dead"))
	for _, r := range reasons {
		if !strings.Contains(dead, r) {
			t.Errorf("no dead letter says %q:\n%s", r, dead)
		}
	}
	if !strings.Contains(dead, `"record_base64":"AQAA`) {
		t.Errorf("dead letters lack the bytes:\n%s", dead)
	}
}

func readDir(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") || strings.HasPrefix(e.Name(), "_") {
			continue
		}
		c, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		b.Write(c)
	}
	return b.String()
}

// TestAvroBareWithSchemaFile: without a registry, records are bare Avro
// binary written with the schema file's schema; a filter pipeline with
// the input's shape writes every field back (the input schema's types
// kept), and a JSON sink of the same pipeline gets whole records.
func TestAvroBareWithSchemaFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "order.avsc"), []byte(orderV2), 0o644); err != nil {
		t.Fatal(err)
	}
	c2, _ := goavro.NewCodec(orderV2)
	var values [][]byte
	for i := range 10 {
		b, err := c2.BinaryFromNative(nil, map[string]any{"order_id": int64(i), "user": "u", "status": []string{"PAID", "NEW"}[i%2],
			"qty": int64(i), "price": big.NewRat(int64(i), 4), "ts": time.UnixMilli(int64(i)).UTC(), "channel": "app"})
		if err != nil {
			t.Fatal(err)
		}
		values = append(values, b)
	}
	l := openTestLog(t)
	appendTopic(t, l, "orders", 1, values)
	spec := fmt.Sprintf(`
name: bare
source:
  log: {topic: orders, bounded: true}
  format: avro
  schema: {file: order.avsc}
steps:
  - filter: status == "PAID"
sinks:
  - log: {topic: paid}
    format: avro
  - file: {path: %s/json}
`, dir)
	s, err := Parse(filepath.Join(dir, "bare.yaml"), []byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := Run(context.Background(), p, &Host{Log: l, DataDir: dir}); err != nil {
		t.Fatal(err)
	}
	msgs := committedLog(t, l, "paid")
	if len(msgs) != 5 {
		t.Fatalf("%d records, want 5", len(msgs))
	}
	// The derived output schema is the input's (its fields, in its order,
	// with its types): goavro reads the records with the input schema.
	for i, m := range msgs {
		v, rest, err := c2.NativeFromBinary(m.Value)
		if err != nil || len(rest) > 0 {
			t.Fatalf("record %d: %v (%d left)", i, err, len(rest))
		}
		r := v.(map[string]any)
		if r["order_id"] != int64(2*i) || r["status"] != "PAID" || r["channel"] != "app" || r["price"].(*big.Rat).Cmp(big.NewRat(int64(2*i), 4)) != 0 {
			t.Errorf("record %d: %v", i, r)
		}
	}
	lines := strings.Split(strings.TrimSpace(readDir(t, filepath.Join(dir, "json"))), "\n")
	sort.Strings(lines)
	if len(lines) != 5 || lines[0] != `{"status":"PAID","order_id":0,"user":"u","qty":0,"price":0.0,"ts":"1970-01-01T00:00:00.000Z","channel":"app"}` {
		t.Errorf("json lines:\n%s", strings.Join(lines, "\n"))
	}
}

// TestAvroToleranceNone: a bad record fails the job with its reason; a
// registry that cannot be reached fails it under any tolerance.
func TestAvroToleranceNone(t *testing.T) {
	reg := srfake.New()
	defer reg.Close()
	l := openTestLog(t)
	appendTopic(t, l, "in", 1, [][]byte{{0, 0, 0, 0, 1, 2}, {7, 0, 0, 0, 1, 2}})
	run := func(url, tolerance string) error {
		s, err := Parse("t.yaml", []byte(fmt.Sprintf(`
registry: {url: %s}
source: {log: {topic: in, bounded: true}, format: avro}
steps: [{filter: a > 1}]
sink: {stdout: {}}
errors: {tolerance: %s}
`, url, tolerance)))
		if err != nil {
			t.Fatal(err)
		}
		p, err := Compile(s)
		if err != nil {
			t.Fatal(err)
		}
		return Run(context.Background(), p, &Host{Log: l, Stdout: &syncBuf{}})
	}
	err := run(reg.URL(), "none")
	if !errors.Is(err, ErrTolerance) || !strings.Contains(err.Error(), "schema id 1 is unknown") {
		t.Errorf("tolerance none: %v", err)
	}
	// Nothing listens there: the job fails whatever the tolerance.
	dead := reg.URL()
	reg.Close()
	err = run(dead, "all")
	if err == nil || errors.Is(err, ErrTolerance) || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("registry down: %v", err)
	}
}

func TestAvroSpecErrors(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "o.avsc"), []byte(orderV2), 0o644)
	for _, tc := range []struct{ spec, want string }{
		{`source: {log: {topic: t}, format: avro, schema: {file: o.avsc}}
steps: [{filter: amount > 1}]
sink: {stdout: {}}`, `uses field "amount", which the avro schema shop.Order does not have`},
		{`source: {log: {topic: t}, format: avro, schema: {file: nope.avsc}}
sink: {stdout: {}}`, "source.schema.file: cannot read the schema"},
		{`source: {log: {topic: t}, format: avro, schema: {inline: '{"type":"record"}'}}
sink: {stdout: {}}`, "source.schema.inline: avro schema"},
		{`source: {log: {topic: t}, format: avro, avro: {framing: none}}
sink: {stdout: {}}`, "is required with framing: none"},
		{`source: {log: {topic: t}, format: json, schema: {file: o.avsc}}
sink: {stdout: {}}`, "source.schema.file: unknown key; allowed here: json_schema"},
		{`source: {log: {topic: t}, format: csv, schema: {file: o.avsc}}
sink: {stdout: {}}`, "source.schema: is only allowed with format: avro, protobuf or json"},
		{`registry: {url: localhost:8081}
source: {log: {topic: t}}
sink: {stdout: {}}`, `"localhost:8081" is not an http:// or https:// URL`},
		{`source: {log: {topic: t}}
steps: [{map: {a: x}}]
sink: {stdout: {}, format: avro}`, "sink.format: format avro is for kafka, log and file connectors and http sources: stdout records are lines"},
		{`source: {file: {path: in}, format: avro, avro: {framing: none}}
sink: {stdout: {}}`, "source.avro.framing: does not apply to file: format avro there means Avro object container files"},
		{`source: {log: {topic: t}}
sink: {stdout: {}}
errors: {tolerance: all, dead_letter: {log: {topic: d}, format: avro}}`, "dead letters are JSON lines: format avro is not allowed here"},
		{`source: {log: {topic: t}}
sink: {log: {topic: o}, format: avro}`, "format avro writes fixed fields, but the records here still have the input's shape"},
		{`source: {log: {topic: t}}
steps: [{map: {a: x}}]
sink: {log: {topic: o}, format: avro, schema: {inline: '{"type":"record","name":"R","fields":[{"name":"b","type":"long"}]}'}}`, "the schema's fields b are not output fields and have no default"},
	} {
		s, err := Parse(filepath.Join(dir, "x.yaml"), []byte(tc.spec))
		if err == nil {
			_, err = Compile(s)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s\n: error %v, want %q", tc.spec, err, tc.want)
		}
	}
}

// The derived output schema of a window takes kinds from the avro input.
func TestAvroDerivedWindowSchema(t *testing.T) {
	s, err := Parse("w.yaml", []byte(fmt.Sprintf(`
name: w
source: {log: {topic: t}, format: avro, schema: {inline: '%s'}, event_time: {field: ts}}
steps:
  - window: {key: [user], tumbling: 1m, aggregate: {n: count(), q: sum(qty), p: max(price), s: first(status)}}
sink: {log: {topic: o}, format: avro, avro: {framing: none, record_name: shop.Revenue}}
`, strings.ReplaceAll(orderV2, "\n", " "))))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := p.rowEncoderFor(context.Background(), nil, s.Sinks[0], p.OutputSchema())
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		Name, Namespace string
		Fields          []struct {
			Name string
			Type json.RawMessage
		}
	}
	if err := json.Unmarshal([]byte(enc.(*avroRows).enc.Schema().Text()), &rec); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range rec.Fields {
		got = append(got, f.Name+" "+string(f.Type))
	}
	want := []string{`user ["null","string"]`, `window_start ["null","long"]`, `window_end ["null","long"]`, `n ["null","long"]`,
		`q ["null","long"]`, `p ["null","double"]`, `s ["null","string"]`}
	if rec.Namespace != "shop" || rec.Name != "Revenue" || strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("derived %s.%s: %s", rec.Namespace, rec.Name, strings.Join(got, "; "))
	}
}
