package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/connector/logsrc"
	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/schema"
	"github.com/sluicehq/sluice/stream"
)

// protoTestdata returns the absolute path of a file in testdata/proto.
func protoTestdata(t testing.TB, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", "proto", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// protoMessage compiles a testdata .proto file and returns its message.
func protoMessage(t testing.TB, file, msg string) (protoreflect.MessageDescriptor, string) {
	t.Helper()
	md, text, err := loadProto(&FormatSchemaSpec{File: protoTestdata(t, file), Message: msg})
	if err != nil {
		t.Fatal(err)
	}
	return md, text
}

func openProtoTestLog(t testing.TB) (*logstore.Log, string) {
	t.Helper()
	dir := t.TempDir()
	l, err := logstore.Open(logstore.Options{Dir: filepath.Join(dir, "log"), DefaultFsync: logstore.FsyncPolicy{Mode: logstore.FsyncNever}, RetentionCheckInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, dir
}

// appendLog appends messages to a new single-partition topic.
func appendLog(t testing.TB, l *logstore.Log, topic string, msgs []connector.Message) {
	t.Helper()
	s, err := logsrc.NewSink(l, logsrc.SinkConfig{Topic: topic, CreatePartitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w, err := s.Open(ctx, stream.SubtaskInfo{Operator: "test", Parallelism: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// testOrder is one order of the test data and its expected effect.
type testOrder struct {
	user    string
	cents   int64
	created int64 // ms
	paid    bool
	qty     int32 // v2 only
	v2      bool
}

// makeOrders builds n orders of five users over about n/10 seconds; odd
// ones are version 2 (with qty and ship_to) when mixed.
func makeOrders(n int, mixed bool) []testOrder {
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixMilli()
	out := make([]testOrder, n)
	for i := range out {
		out[i] = testOrder{
			user:    fmt.Sprintf("u%d", i%5),
			cents:   int64(i*37%1000) + 1,
			created: base + int64(i)*100,
			paid:    i%3 != 0,
			v2:      mixed && i%2 == 1,
		}
		if out[i].v2 {
			out[i].qty = int32(i%4 + 1)
		}
	}
	return out
}

// encodeOrder marshals o with the official library as message md (v1
// or v2 of shop.Order).
func encodeOrder(t testing.TB, md protoreflect.MessageDescriptor, o testOrder) []byte {
	m := dynamicpb.NewMessage(md)
	f := md.Fields().ByName
	m.Set(f("user"), protoreflect.ValueOfString(o.user))
	m.Set(f("amount_cents"), protoreflect.ValueOfInt64(o.cents))
	m.Set(f("created"), protoreflect.ValueOfMessage(timestamppb.New(time.UnixMilli(o.created)).ProtoReflect()))
	if o.paid {
		m.Set(f("status"), protoreflect.ValueOfEnum(1))
	}
	m.Mutable(f("tags")).List().Append(protoreflect.ValueOfString("t"))
	if fd := f("qty"); fd != nil {
		m.Set(fd, protoreflect.ValueOfInt32(o.qty))
		addr := dynamicpb.NewMessage(f("ship_to").Message())
		addr.Set(addr.Descriptor().Fields().ByName("city"), protoreflect.ValueOfString("Oslo"))
		m.Set(f("ship_to"), protoreflect.ValueOfMessage(addr))
	}
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type totalsKey struct {
	user  string
	start int64
}

type totals struct{ orders, cents, items int64 }

// expectTotals is what the test pipelines compute: per user and minute,
// of the paid orders, their count, cents and quantities.
func expectTotals(orders []testOrder) map[totalsKey]totals {
	want := map[totalsKey]totals{}
	for _, o := range orders {
		if !o.paid {
			continue
		}
		k := totalsKey{o.user, o.created - o.created%60000}
		w := want[k]
		w.orders++
		w.cents += o.cents
		w.items += int64(o.qty)
		want[k] = w
	}
	return want
}

// readTotals decodes the output topic with the official library. With
// id >= 0 each record must carry the Confluent header of that id.
func readTotals(t *testing.T, l *logstore.Log, topic string, id int) map[totalsKey]totals {
	t.Helper()
	md, _ := protoMessage(t, "totals.proto", "shop.UserTotals")
	got := map[totalsKey]totals{}
	var h sr.ConfluentHeader
	for _, m := range committedLog(t, l, topic) {
		b := m.Value
		if id >= 0 {
			gotID, rest, err := h.DecodeID(b)
			if err != nil || gotID != id {
				t.Fatalf("record header: id %d, %v; want id %d", gotID, err, id)
			}
			idx, rest, err := h.DecodeIndex(rest, 8)
			if err != nil || len(idx) != 1 || idx[0] != 0 {
				t.Fatalf("message indexes %v, %v", idx, err)
			}
			b = rest
		}
		msg := dynamicpb.NewMessage(md)
		if err := proto.Unmarshal(b, msg); err != nil {
			t.Fatalf("the library cannot read an output record: %v", err)
		}
		f := md.Fields().ByName
		ts := msg.Get(f("window_start")).Message()
		secs := ts.Get(ts.Descriptor().Fields().ByName("seconds")).Int()
		k := totalsKey{msg.Get(f("user")).String(), secs * 1000}
		if _, dup := got[k]; dup {
			t.Fatalf("window %v written twice", k)
		}
		got[k] = totals{msg.Get(f("orders")).Int(), msg.Get(f("cents")).Int(), msg.Get(f("items")).Int()}
	}
	return got
}

func compareTotals(t *testing.T, got, want map[totalsKey]totals) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d windows, want %d", len(got), len(want))
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%v: got %+v, want %+v", k, got[k], w)
		}
	}
}

func startSpec(t *testing.T, src string, host *Host) *Job {
	t.Helper()
	s, err := Parse("spec.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	j, err := p.Start(context.Background(), host)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// TestProtobufPipelineRoundTrip reads protobuf orders written by the
// official library from the embedded log with a .proto file, aggregates
// them per user and minute, writes protobuf totals back, and reads those
// with the official library again.
func TestProtobufPipelineRoundTrip(t *testing.T) {
	l, dir := openProtoTestLog(t)
	v2, _ := protoMessage(t, "order_v2.proto", "shop.Order")
	orders := makeOrders(3000, false)
	msgs := make([]connector.Message, len(orders))
	for i, o := range orders {
		o.qty = int32(i%4 + 1)
		orders[i] = o
		msgs[i] = connector.Message{Key: []byte(o.user), Value: encodeOrder(t, v2, o)}
	}
	appendLog(t, l, "orders", msgs)
	j := startSpec(t, fmt.Sprintf(`
source:
  log: {topic: orders, bounded: true}
  format: protobuf
  schema: {file: %s, message: shop.Order}
  event_time: {field: created}
steps:
  - filter: status == "PAID" && len(tags) == 1
  - window:
      key: [user]
      tumbling: 1m
      aggregate: {orders: count(), cents: sum(amount_cents), items: sum(qty)}
sink:
  log: {topic: totals, partitions: 1}
  format: protobuf
  schema: {file: %s, message: shop.UserTotals}
`, protoTestdata(t, "order_v2.proto"), protoTestdata(t, "totals.proto")), &Host{DataDir: dir, Log: l})
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}
	compareTotals(t, readTotals(t, l, "totals", -1), expectTotals(orders))
}

// badRecords are records no protobuf source may accept, with what their
// dead letters must say.
func badRecords(good []byte, unknownID int) ([]connector.Message, []string) {
	var h sr.ConfluentHeader
	unknown, _ := h.AppendEncode(nil, unknownID, []int{0})
	trunc := append([]byte(nil), good[:len(good)-1]...) // the last field loses its last byte
	return []connector.Message{
			{Value: append(unknown, good[6:]...)},
			{Value: append([]byte{1}, good[1:]...)},
			{Value: trunc},
			{Value: []byte{0, 0, 0}},
		}, []string{
			fmt.Sprintf("schema id %d is unknown", unknownID),
			"magic byte 1, want 0",
			"unexpected EOF",
			"too short for the header",
		}
}

// testRegistries starts the registries the protobuf tests run against:
// franz-go's fake (srfake) and Sluice's own (package schema, as `sluice
// serve` serves it, stored in the log l), both spoken to through
// franz-go's client.
func testRegistries(t *testing.T, l *logstore.Log) map[string]string {
	fake := srfake.New()
	t.Cleanup(fake.Close)
	own, err := schema.Open(context.Background(), l, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(schema.NewHandler(own, slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)
	return map[string]string{"srfake": fake.URL(), "sluice": srv.URL}
}

func registerTest(t *testing.T, cl *sr.Client, subject, text string) int {
	t.Helper()
	ss, err := cl.CreateSchema(context.Background(), subject, sr.Schema{Schema: text, Type: sr.TypeProtobuf})
	if err != nil {
		t.Fatalf("registering under %s: %v", subject, err)
	}
	return ss.ID
}

// TestProtobufRegistryEvolution runs v1 and v2 orders interleaved in one
// topic, in the Confluent wire format, through a pipeline that reads each
// record with its writer's schema and one that reads all with the v2
// file; both results are exact. Bad records (unknown schema id, wrong
// magic byte, truncated data, a short header) go to the dead letters
// with the reason. The output is registered under totals-<case>-value and
// framed with that id. It runs against franz-go's fake registry and
// against Sluice's own (which checks that v2 is BACKWARD compatible with
// v1).
func TestProtobufRegistryEvolution(t *testing.T) {
	l, dir := openProtoTestLog(t)
	v1, v1text := protoMessage(t, "order_v1.proto", "shop.Order")
	v2, v2text := protoMessage(t, "order_v2.proto", "shop.Order")
	for regName, url := range testRegistries(t, l) {
		t.Run(regName, func(t *testing.T) {
			cl, err := sr.NewClient(sr.URLs(url))
			if err != nil {
				t.Fatal(err)
			}
			id1 := registerTest(t, cl, "orders-value", v1text)
			id2 := registerTest(t, cl, "orders-value", v2text)
			orders := makeOrders(3000, true)
			var h sr.ConfluentHeader
			var msgs []connector.Message
			var reasons []string
			for i, o := range orders {
				md, id := v1, id1
				if o.v2 {
					md, id = v2, id2
				}
				b, _ := h.AppendEncode(nil, id, []int{0})
				msgs = append(msgs, connector.Message{Key: []byte(o.user), Value: append(b, encodeOrder(t, md, o)...)})
				if i == 1500 {
					var bad []connector.Message
					bad, reasons = badRecords(msgs[len(msgs)-1].Value, 999)
					msgs = append(msgs, bad...)
				}
			}
			in := "orders-" + regName
			appendLog(t, l, in, msgs)
			for _, tc := range []struct{ name, schema string }{
				// By writer schema: qty is null in v1 records (sum skips it).
				{"writer", ""},
				// By the v2 file: qty is 0 in v1 records, as protobuf reads them.
				{"reader", fmt.Sprintf("schema: {file: %s, message: shop.Order}", protoTestdata(t, "order_v2.proto"))},
			} {
				t.Run(tc.name, func(t *testing.T) {
					out, dead := "totals-"+regName+"-"+tc.name, "dead-"+regName+"-"+tc.name
					j := startSpec(t, fmt.Sprintf(`
registry: {url: %s}
source:
  log: {topic: %s, bounded: true}
  format: protobuf
  %s
  event_time: {field: created}
steps:
  - filter: status == "PAID"
  - window:
      key: [user]
      tumbling: 1m
      aggregate: {orders: count(), cents: sum(amount_cents), items: sum(qty)}
sink:
  log: {topic: %s, partitions: 1}
  format: protobuf
  schema: {file: %s, message: shop.UserTotals}
errors: {tolerance: all, dead_letter: {log: {topic: %s, partitions: 1}}}
`, url, in, tc.schema, out, protoTestdata(t, "totals.proto"), dead), &Host{DataDir: dir, Log: l})
					if err := j.Wait(); err != nil {
						t.Fatal(err)
					}
					ss, err := cl.SchemaByVersion(context.Background(), out+"-value", 1)
					if err != nil {
						t.Fatalf("the sink registered no schema under %s-value: %v", out, err)
					}
					compareTotals(t, readTotals(t, l, out, ss.ID), expectTotals(orders))
					dl := committedLog(t, l, dead)
					if len(dl) != len(reasons) {
						for _, m := range dl {
							t.Log(string(m.Value))
						}
						t.Fatalf("%d dead letters, want %d", len(dl), len(reasons))
					}
					for i, m := range dl {
						var d struct {
							Error, Stage string
							Record       string `json:"record_base64"`
						}
						if err := json.Unmarshal(m.Value, &d); err != nil {
							t.Fatal(err)
						}
						if !strings.Contains(d.Error, reasons[i]) || d.Stage != "source.decode" || d.Record == "" {
							t.Errorf("dead letter %d: %s; want the reason %q and the record", i, m.Value, reasons[i])
						}
					}
				})
			}
		})
	}
}

// TestProtobufToleranceNone fails the job on the first bad record, and
// names the reason.
func TestProtobufToleranceNone(t *testing.T) {
	reg := srfake.New()
	defer reg.Close()
	l, dir := openProtoTestLog(t)
	appendLog(t, l, "orders", []connector.Message{{Value: []byte{0, 0, 0, 0, 42, 0, 8, 1}}})
	j := startSpec(t, fmt.Sprintf(`
registry: {url: %s}
source:
  log: {topic: orders, bounded: true}
  format: protobuf
sink: {stdout: {}}
`, reg.URL()), &Host{DataDir: dir, Log: l, Stdout: &strings.Builder{}})
	err := j.Wait()
	if err == nil || !strings.Contains(err.Error(), "schema id 42") {
		t.Fatalf("err = %v, want the unknown schema id named", err)
	}
}

// TestProtobufRegistryDown fails the job (the records are not at fault)
// even under tolerance all.
func TestProtobufRegistryDown(t *testing.T) {
	reg := srfake.New()
	url := reg.URL()
	reg.Close()
	l, dir := openProtoTestLog(t)
	appendLog(t, l, "orders", []connector.Message{{Value: []byte{0, 0, 0, 0, 1, 0, 8, 1}}})
	j := startSpec(t, fmt.Sprintf(`
registry: {url: %s}
source:
  log: {topic: orders, bounded: true}
  format: protobuf
sink: {stdout: {}}
errors: {tolerance: all}
`, url), &Host{DataDir: dir, Log: l, Stdout: &strings.Builder{}})
	err := j.Wait()
	if err == nil || !strings.Contains(err.Error(), "schema registry "+url) || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("err = %v, want the registry named", err)
	}
}

// TestJSONSchemaDeadLetters validates json records against a JSON
// Schema: the valid ones go on, the others are dead-lettered with the
// reasons.
func TestJSONSchemaDeadLetters(t *testing.T) {
	l, dir := openProtoTestLog(t)
	var out strings.Builder
	in := filepath.Join(dir, "in.jsonl")
	if err := os.WriteFile(in, []byte(`{"user":"a","amount":3}
{"user":"","amount":1}
{"user":"b","amount":-2}
{"amount":5}
{"user":"c","amount":"x"}
{"user":"d","amount":4.5,"extra":true}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	j := startSpec(t, fmt.Sprintf(`
source:
  file: {path: %s}
  schema: {json_schema: %s}
sink: {stdout: {}}
errors: {tolerance: all, dead_letter: {log: {topic: dead, partitions: 1}}}
`, in, protoTestdata(t, "order.schema.json")), &Host{DataDir: dir, Log: l, Stdout: &out})
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "{\"user\":\"a\",\"amount\":3}\n{\"user\":\"d\",\"amount\":4.5,\"extra\":true}\n" {
		t.Fatalf("output:\n%s", got)
	}
	dl := committedLog(t, l, "dead")
	want := []string{"at /user: minLength", "at /amount: minimum", "missing property 'user'", "at /amount: got string, want number"}
	if len(dl) != len(want) {
		t.Fatalf("%d dead letters, want %d", len(dl), len(want))
	}
	for i, m := range dl {
		if !strings.Contains(string(m.Value), want[i]) || !strings.Contains(string(m.Value), "does not match the JSON Schema") {
			t.Errorf("dead letter %d: %s; want %q", i, m.Value, want[i])
		}
	}
}

// TestProtobufPassThrough filters protobuf orders without naming their
// other fields: a protobuf sink of the same message writes them as they
// came (the library reads back messages equal to the input), and a json
// sink writes them all as JSON.
func TestProtobufPassThrough(t *testing.T) {
	l, dir := openProtoTestLog(t)
	v2, _ := protoMessage(t, "order_v2.proto", "shop.Order")
	orders := makeOrders(200, false)
	var msgs []connector.Message
	var want [][]byte
	for i, o := range orders {
		o.qty = int32(i % 3)
		b := encodeOrder(t, v2, o)
		if len(want) == 0 && o.paid && o.cents > 300 {
			// An unknown field (number 99) passes through too.
			b = append(b, 0x9a, 0x06, 0x01, 'x')
		}
		msgs = append(msgs, connector.Message{Value: b})
		if o.paid && o.cents > 300 {
			want = append(want, b)
		}
	}
	appendLog(t, l, "orders", msgs)
	var out strings.Builder
	j := startSpec(t, fmt.Sprintf(`
source:
  log: {topic: orders, bounded: true}
  format: protobuf
  schema: {file: %s, message: shop.Order}
steps:
  - filter: status == "PAID" && amount_cents > 300
sinks:
  - log: {topic: paid, partitions: 1}
    format: protobuf
    schema: {file: %s, message: shop.Order}
  - stdout: {}
`, protoTestdata(t, "order_v2.proto"), protoTestdata(t, "order_v2.proto")), &Host{DataDir: dir, Log: l, Stdout: &out})
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}
	got := committedLog(t, l, "paid")
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i, m := range got {
		a, b := dynamicpb.NewMessage(v2), dynamicpb.NewMessage(v2)
		if err := proto.Unmarshal(m.Value, a); err != nil {
			t.Fatal(err)
		}
		if err := proto.Unmarshal(want[i], b); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(a, b) {
			t.Fatalf("record %d changed:\n got %v\nwant %v", i, a, b)
		}
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d json lines, want %d", len(lines), len(want))
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"status", "amount_cents", "user", "created", "tags", "qty", "ship_to"} {
		if _, ok := first[k]; !ok && k != "qty" {
			t.Errorf("json output lacks %s: %s", k, lines[0])
		}
	}
	if first["ship_to"].(map[string]any)["city"] != "Oslo" {
		t.Errorf("ship_to = %v", first["ship_to"])
	}
}

// TestProtobufSinkIncompatible starts a protobuf sink whose schema is
// incompatible with what its subject holds in Sluice's registry: the
// registry refuses it (Confluent's 409) and the job does not start.
func TestProtobufSinkIncompatible(t *testing.T) {
	l, dir := openProtoTestLog(t)
	url := testRegistries(t, l)["sluice"]
	cl, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		t.Fatal(err)
	}
	registerTest(t, cl, "totals-value", `syntax = "proto3";
package shop;
message UserTotals {
  int64 user = 1;
}
`)
	appendLog(t, l, "orders", nil)
	s, err := Parse("spec.yaml", []byte(fmt.Sprintf(`
registry: {url: %s}
source:
  log: {topic: orders, bounded: true}
  format: protobuf
  schema: {file: %s, message: shop.Order}
  event_time: {field: created}
steps:
  - window: {key: [user], tumbling: 1m, aggregate: {orders: count()}}
sink:
  log: {topic: totals, partitions: 1}
  format: protobuf
  schema: {file: %s, message: shop.UserTotals}
`, url, protoTestdata(t, "order_v1.proto"), protoTestdata(t, "totals.proto"))))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Start(context.Background(), &Host{DataDir: dir, Log: l})
	if err == nil || !strings.Contains(err.Error(), "totals-value") {
		t.Fatalf("err = %v, want the registration under totals-value refused", err)
	}
	var re *sr.ResponseError
	if !errors.As(err, &re) || re.ErrorCode != 409 {
		t.Fatalf("err = %v, want Confluent's error code 409 (incompatible schema)", err)
	}
}
