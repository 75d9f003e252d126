package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

// These tests put Sluice's registry and pipelines between implementations
// Sluice does not use itself: franz-go's pkg/sr client registers and looks
// up schemas in a `sluice serve` child process, goavro writes and reads
// the Avro bytes, and a `sluice run` child process decodes, aggregates
// and encodes them with the registry at serve's HTTP address.

// Two versions of the producers' schema (the pipeline package's avro
// tests use the same shapes). v2 removes legacy, widens qty from int to
// long, adds the REFUNDED symbol and a channel field with a default: a
// BACKWARD-compatible change, so v2 reads v1 records.
const (
	srOrderV1 = `{"type":"record","name":"Order","namespace":"shop","fields":[
	{"name":"order_id","type":"long"},
	{"name":"user","type":"string"},
	{"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","PAID","CANCELLED"]}},
	{"name":"qty","type":"int"},
	{"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}},
	{"name":"legacy","type":"string"},
	{"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}}]}`
	srOrderV2 = `{"type":"record","name":"Order","namespace":"shop","fields":[
	{"name":"order_id","type":"long"},
	{"name":"user","type":"string"},
	{"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","PAID","CANCELLED","REFUNDED"]}},
	{"name":"qty","type":"long"},
	{"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}},
	{"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},
	{"name":"channel","type":"string","default":"web"}]}`
)

// srOrder is one order as a producer writes it.
type srOrder struct {
	id      int64
	user    string
	status  string
	qty     int64
	cents   int64
	ts      int64
	channel string
	v2      bool
}

var srBase = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()

// srOrders makes n orders 50 ms of event time apart; v2 says which ones a
// v2 producer writes (those may be REFUNDED or on the test channel).
func srOrders(n int, v2 func(int) bool) []srOrder {
	statuses := []string{"PAID", "PAID", "NEW", "CANCELLED"}
	out := make([]srOrder, n)
	for i := range out {
		o := srOrder{id: int64(i), user: fmt.Sprintf("u%d", i%7), status: statuses[i%4], qty: int64(1 + i%5),
			cents: int64(100 + (i*37)%5000), ts: srBase + int64(i)*50, channel: "web", v2: v2(i)}
		if o.v2 && i%4 == 1 {
			o.status = "REFUNDED"
		}
		if o.v2 && i%10 == 2 {
			o.channel = "test"
		}
		out[i] = o
	}
	return out
}

// payload writes o's Avro body with goavro, v1 or v2 as o says.
func (o srOrder) payload(t *testing.T, c *goavro.Codec) []byte {
	t.Helper()
	m := map[string]any{"order_id": o.id, "user": o.user, "status": o.status,
		"price": big.NewRat(o.cents, 100), "ts": time.UnixMilli(o.ts).UTC()}
	if o.v2 {
		m["qty"], m["channel"] = o.qty, o.channel
	} else {
		m["qty"], m["legacy"] = int32(o.qty), "x"
	}
	b, err := c.BinaryFromNative(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// confluent frames an Avro body in the Confluent wire format under id.
func confluent(id int, body []byte) []byte {
	var hdr sr.ConfluentHeader
	b, _ := hdr.AppendEncode(nil, id, nil) // fails only for negative ids
	return append(b, body...)
}

// srRevenue is one window's aggregates as the pipelines below compute them.
type srRevenue struct{ orders, qty, topCents, lastTS int64 }

// wantRevenue computes the windows (user@window start) of the PAID orders
// that keep returns true for.
func wantRevenue(orders []srOrder, keep func(srOrder) bool) map[string]srRevenue {
	want := map[string]srRevenue{}
	for _, o := range orders {
		if o.status != "PAID" || !keep(o) {
			continue
		}
		k := fmt.Sprintf("%s@%d", o.user, o.ts-o.ts%60000)
		a := want[k]
		a.orders++
		a.qty += o.qty
		a.topCents = max(a.topCents, o.cents)
		a.lastTS = max(a.lastTS, o.ts)
		want[k] = a
	}
	return want
}

// srServe is a `sluice serve` child process.
type srServe struct {
	kafka, http, token string
	logs               *lockedBuffer
}

// startServeChild runs `sluice serve` with an HTTP token as a child
// process (this test binary, SLUICE_TEST_MAIN=1) and waits until it
// serves; the child is stopped when the test ends.
func startServeChild(t *testing.T) *srServe {
	t.Helper()
	s := &srServe{kafka: freeAddr(t), http: freeAddr(t), token: "tok3n", logs: &lockedBuffer{}}
	cmd := exec.Command(os.Args[0], "serve", "--data-dir", t.TempDir(), "--kafka-addr", s.kafka, "--http-addr", s.http,
		"--http-token", s.token, "--fsync", "never", "--log-format", "text")
	cmd.Env = append(os.Environ(), "SLUICE_TEST_MAIN=1")
	ready := watchChild(t, cmd, s.logs, "sluice serving")
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		stopped := make(chan struct{})
		go func() {
			_ = cmd.Wait()
			close(stopped)
		}()
		select {
		case <-stopped:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-stopped
		}
	})
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not start:\n%s", s.logs)
	}
	return s
}

// watchChild starts cmd with its stderr copied into logs and returns a
// channel closed when a line contains marker.
func watchChild(t *testing.T, cmd *exec.Cmd, logs *lockedBuffer, marker string) <-chan struct{} {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	ready := make(chan struct{})
	go func() {
		defer pr.Close()
		sc := bufio.NewScanner(pr)
		seen := false
		for sc.Scan() {
			logs.Write([]byte(sc.Text() + "\n"))
			if !seen && strings.Contains(sc.Text(), marker) {
				seen = true
				close(ready)
			}
		}
	}()
	return ready
}

func (s *srServe) registry(t *testing.T) *sr.Client {
	t.Helper()
	cl, err := sr.NewClient(sr.URLs("http://"+s.http), sr.BearerToken(s.token))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func (s *srServe) kafkaClient(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(s.kafka)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func (s *srServe) createTopics(t *testing.T, partitions int32, topics ...string) {
	t.Helper()
	adm := kadm.NewClient(s.kafkaClient(t))
	resp, err := adm.CreateTopics(context.Background(), partitions, 1, nil, topics...)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
}

// produce writes values to topic, value i to partition parts[i].
func (s *srServe) produce(t *testing.T, cl *kgo.Client, topic string, values [][]byte, parts []int32) {
	t.Helper()
	recs := make([]*kgo.Record, len(values))
	for i, v := range values {
		recs[i] = &kgo.Record{Topic: topic, Partition: parts[i], Value: v}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// readRevenue reads every record of topic (as it is when called) and
// decodes it with goavro, with the schema that the registry gives for the
// id the record carries. It reports a window seen twice.
func (s *srServe) readRevenue(t *testing.T, topic string) (map[string]srRevenue, []int) {
	t.Helper()
	ctx := context.Background()
	adm := kadm.NewClient(s.kafkaClient(t))
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	cl := s.kafkaClient(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	reg := s.registry(t)
	codecs := map[int]*goavro.Codec{}
	var ids []int
	got := map[string]srRevenue{}
	var hdr sr.ConfluentHeader
	deadline := time.Now().Add(15 * time.Second)
	for len(want) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s: records left to read up to %v", topic, want)
		}
		fctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(fctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
				delete(want, r.Partition)
			}
			id, payload, err := hdr.DecodeID(r.Value)
			if err != nil {
				t.Fatalf("record %d/%d: %v", r.Partition, r.Offset, err)
			}
			c := codecs[id]
			if c == nil {
				ss, err := reg.SchemaByID(ctx, id)
				if err != nil {
					t.Fatalf("schema id %d from sluice serve: %v", id, err)
				}
				if c, err = goavro.NewCodec(ss.Schema); err != nil {
					t.Fatalf("goavro: schema id %d %s: %v", id, ss.Schema, err)
				}
				codecs[id] = c
				ids = append(ids, id)
			}
			v, rest, err := c.NativeFromBinary(payload)
			if err != nil || len(rest) > 0 {
				t.Fatalf("goavro: %v (%d bytes left)", err, len(rest))
			}
			m := v.(map[string]any)
			user := unionValue(m["user"]).(string)
			if string(r.Key) != user {
				t.Errorf("key %q, user %q", r.Key, user)
			}
			k := fmt.Sprintf("%s@%d", user, avroInt(t, m["window_start"]))
			if _, dup := got[k]; dup {
				t.Errorf("window %s twice", k)
			}
			top, ok := unionValue(m["top_price"]).(float64)
			if !ok {
				t.Fatalf("top_price %#v", m["top_price"])
			}
			got[k] = srRevenue{orders: avroInt(t, m["orders"]), qty: avroInt(t, m["qty"]), topCents: int64(top*100 + 0.5), lastTS: avroInt(t, m["last_ts"])}
		})
	}
	return got, ids
}

// unionValue returns the value of a goavro union ({"type": value}), or v.
func unionValue(v any) any {
	if m, ok := v.(map[string]any); ok && len(m) == 1 {
		for _, x := range m {
			return x
		}
	}
	return v
}

// avroInt returns an integer or timestamp (as epoch ms) goavro decoded.
func avroInt(t *testing.T, v any) int64 {
	t.Helper()
	switch x := unionValue(v).(type) {
	case int64:
		return x
	case int32:
		return int64(x)
	case time.Time:
		return x.UnixMilli()
	}
	t.Fatalf("not an integer: %#v", v)
	return 0
}

func checkRevenue(t *testing.T, got, want map[string]srRevenue) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d windows, want %d", len(got), len(want))
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("window %s: %+v, want %+v", k, got[k], w)
		}
	}
}

// runSpec is the text of a pipeline that reads avro orders from
// sluice serve's topic orders with serve's registry, keeps the PAID ones
// (and what filter adds), aggregates them per user and minute and writes
// Avro to revenue, registering the output schema.
func (s *srServe) runSpec(t *testing.T, schemaKey, filter, sourceExtra, outOfOrder string) string {
	t.Helper()
	return writeSpec(t, t.TempDir(), "revenue.yaml", fmt.Sprintf(`
name: sr-revenue
registry: {url: http://%[1]s, token: %[2]s}
source:
  kafka: {brokers: [%[3]q], topic: orders%[4]s}
  format: avro
  schema: %[5]s
  event_time: {field: ts, max_out_of_orderness: %[6]s}
steps:
  - filter: status == "PAID"%[7]s
  - window:
      key: [user]
      tumbling: 1m
      aggregate: {orders: count(), qty: sum(qty), top_price: max(price), last_ts: max(ts)}
sink:
  kafka: {brokers: [%[3]q], topic: revenue, key: user}
  format: avro
parallelism: 2
`, s.http, s.token, s.kafka, sourceExtra, schemaKey, outOfOrder, filter))
}

// startRun runs `sluice run spec` as a child process with its stderr in
// logs; running is closed once the pipeline runs, done has its exit.
func startRun(t *testing.T, spec string, logs *lockedBuffer) (cmd *exec.Cmd, running <-chan struct{}, done <-chan error) {
	t.Helper()
	cmd = exec.Command(os.Args[0], "run", "--data-dir", t.TempDir(), "--log-format", "text", spec)
	cmd.Env = append(os.Environ(), "SLUICE_TEST_MAIN=1")
	running = watchChild(t, cmd, logs, "pipeline running")
	exit := make(chan error, 1)
	go func() { exit <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() }) // no-op once it exited
	return cmd, running, exit
}

// TestServeRegistryAvroPipeline: franz-go's sr client registers an order
// schema in `sluice serve`'s registry and goavro writes orders in the
// Confluent wire format into serve's topic; a bounded `sluice run`
// pipeline reads them with serve's registry (its reader schema by
// subject, its token), aggregates per user and minute and writes Avro,
// registering its output schema there; goavro reads every output record
// with the schema that serve's registry returns for the record's id, and
// the aggregates are exact. An incompatible registration through sr is
// refused with 409.
func TestServeRegistryAvroPipeline(t *testing.T) {
	s := startServeChild(t)
	ctx := context.Background()
	reg := s.registry(t)
	ss, err := reg.CreateSchema(ctx, "orders-value", sr.Schema{Schema: srOrderV1, Type: sr.TypeAvro})
	if err != nil {
		t.Fatal(err)
	}
	// A required field without a default cannot read the v1 records.
	incompatible := strings.Replace(srOrderV1, `{"name":"legacy","type":"string"},`, `{"name":"legacy","type":"string"},{"name":"coupon","type":"string"},`, 1)
	var re *sr.ResponseError
	if _, err := reg.CreateSchema(ctx, "orders-value", sr.Schema{Schema: incompatible, Type: sr.TypeAvro}); !errors.As(err, &re) ||
		re.StatusCode != http.StatusConflict || re.ErrorCode != 409 {
		t.Fatalf("incompatible registration: %v, want HTTP 409 with error code 409", err)
	}

	codec, err := goavro.NewCodec(srOrderV1)
	if err != nil {
		t.Fatal(err)
	}
	const n = 3000
	orders := srOrders(n, func(int) bool { return false })
	values, parts := make([][]byte, n), make([]int32, n)
	for i, o := range orders {
		values[i], parts[i] = confluent(ss.ID, o.payload(t, codec)), int32(i%2)
	}
	s.createTopics(t, 2, "orders", "revenue")
	s.produce(t, s.kafkaClient(t, kgo.RecordPartitioner(kgo.ManualPartitioner())), "orders", values, parts)

	logs := &lockedBuffer{}
	spec := s.runSpec(t, "{subject: orders-value}", "", ", bounded: true", "1m")
	_, _, done := startRun(t, spec, logs)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("sluice run: %v\n%s", err, logs)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("sluice run did not finish:\n%s", logs)
	}

	got, ids := s.readRevenue(t, "revenue")
	checkRevenue(t, got, wantRevenue(orders, func(srOrder) bool { return true }))
	out, err := reg.SchemaByVersion(ctx, "revenue-value", -1)
	if err != nil || len(ids) != 1 || ids[0] != out.ID || !strings.Contains(out.Schema.Schema, "sr_revenue") {
		t.Errorf("output ids %v, revenue-value %+v %v", ids, out, err)
	}
}

// TestServeRegistryAvroEvolution: schema evolution under load through the
// real server. A pipeline with the v2 reader schema runs against serve's
// topic; a v1 producer starts, a v2 producer registers v2 (BACKWARD
// compatible) in serve's registry halfway through and writes alongside it,
// both into the same partitions; the pipeline reads every record of both
// versions without stopping, and the aggregates (which filter on v2's
// enum symbol and on its new field, v1 records taking its default) are
// exact.
func TestServeRegistryAvroEvolution(t *testing.T) {
	s := startServeChild(t)
	ctx := context.Background()
	reg := s.registry(t)
	s1, err := reg.CreateSchema(ctx, "orders-value", sr.Schema{Schema: srOrderV1, Type: sr.TypeAvro})
	if err != nil {
		t.Fatal(err)
	}
	c1, err := goavro.NewCodec(srOrderV1)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := goavro.NewCodec(srOrderV2)
	if err != nil {
		t.Fatal(err)
	}
	s.createTopics(t, 2, "orders", "revenue")

	// The pipeline runs before any order is written: unbounded, with an
	// out-of-orderness that covers the producers' lead on each other, so
	// nothing is late; a last record an hour later closes every window.
	logs := &lockedBuffer{}
	spec := s.runSpec(t, "{inline: '"+strings.ReplaceAll(srOrderV2, "\n", " ")+"'}", ` && channel != "test"`, "", "10m")
	cmd, running, done := startRun(t, spec, logs)
	select {
	case <-running:
	case err := <-done:
		t.Fatalf("sluice run exited: %v\n%s", err, logs)
	case <-time.After(15 * time.Second):
		t.Fatalf("sluice run did not start:\n%s", logs)
	}

	const n = 6000
	orders := srOrders(n, func(i int) bool { return i%3 != 0 })
	bodies := make([][]byte, n)
	for i, o := range orders {
		c := c1
		if o.v2 {
			c = c2
		}
		bodies[i] = o.payload(t, c)
	}
	manual := kgo.RecordPartitioner(kgo.ManualPartitioner())
	half := make(chan int, 1) // the v2 schema's id, once registered
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	producer := func(v2 bool) {
		defer wg.Done()
		cl, err := kgo.NewClient(kgo.SeedBrokers(s.kafka), manual)
		if err != nil {
			errc <- err
			return
		}
		defer cl.Close()
		id := s1.ID
		if v2 {
			var ok bool
			if id, ok = <-half; !ok {
				return
			}
		}
		var batch []*kgo.Record
		flush := func() bool {
			if err := cl.ProduceSync(ctx, batch...).FirstErr(); err != nil {
				errc <- err
				return false
			}
			batch = batch[:0]
			return true
		}
		for i, o := range orders {
			if o.v2 != v2 {
				continue
			}
			batch = append(batch, &kgo.Record{Topic: "orders", Partition: int32(i % 2), Value: confluent(id, bodies[i])})
			if len(batch) == 250 && !flush() {
				return
			}
			if !v2 && i == n/2 {
				ss, err := reg.CreateSchema(ctx, "orders-value", sr.Schema{Schema: srOrderV2, Type: sr.TypeAvro})
				if err != nil {
					errc <- fmt.Errorf("registering v2: %w", err)
					close(half)
					return
				}
				half <- ss.ID
			}
		}
		flush()
	}
	wg.Add(2)
	go producer(false)
	go producer(true)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	// PAID: the filter runs inside the source's decoding, and records it
	// drops do not move the watermark. Its own window stays open.
	late := srOrder{id: n, user: "u0", status: "PAID", qty: 1, cents: 1, ts: srBase + time.Hour.Milliseconds(), channel: "web", v2: true}
	ss, err := reg.SchemaByVersion(ctx, "orders-value", -1)
	if err != nil || ss.Version != 2 {
		t.Fatalf("orders-value latest: %+v %v", ss, err)
	}
	last := confluent(ss.ID, late.payload(t, c2))
	s.produce(t, s.kafkaClient(t, manual), "orders", [][]byte{last, last}, []int32{0, 1})

	// Wait for every window, then stop the pipeline and read the topic
	// whole: nothing more, nothing twice.
	want := wantRevenue(orders, func(o srOrder) bool { return o.channel != "test" })
	cl := s.kafkaClient(t)
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(15 * time.Second)
	for {
		ends, err := adm.ListEndOffsets(ctx, "revenue")
		if err != nil {
			t.Fatal(err)
		}
		total := int64(0)
		ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
		if total >= int64(len(want)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d windows written:\n%s", total, len(want), logs)
		}
		select {
		case err := <-done:
			t.Fatalf("sluice run exited: %v\n%s", err, logs)
		case <-time.After(50 * time.Millisecond):
		}
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("sluice run: %v\n%s", err, logs)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("sluice run did not stop:\n%s", logs)
	}
	got, ids := s.readRevenue(t, "revenue")
	checkRevenue(t, got, want)
	if len(ids) != 1 {
		t.Errorf("output under schema ids %v", ids)
	}
	if !strings.Contains(logs.String(), "failed_records=0") {
		t.Errorf("the pipeline failed records:\n%s", logs)
	}
}
