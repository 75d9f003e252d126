package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/internal/faultproxy"
	"github.com/sluicehq/sluice/internal/testservice"
)

func testServer(t *testing.T, env, def, what string) string {
	t.Helper()
	return testservice.Addr(t, env, def, what)
}

func randSuffix() string { return testservice.Suffix() }

// TestSpecMessagingErrors: mistakes in mqtt and nats blocks are reported
// with the line, the key and what is allowed.
func TestSpecMessagingErrors(t *testing.T) {
	for _, c := range []struct{ spec, want string }{
		{"source:\n  mqtt: {url: tcp://h:1883}\n", "spec.yaml:3:9: source.mqtt.topics: is required"},
		{"source:\n  mqtt: {url: tcp://h:1883, topics: [\"a/#/b\"]}\n", "source.mqtt.topics: topic filter \"a/#/b\": '#' must be the whole last level"},
		{"source:\n  mqtt: {url: tcp://h:1883, topics: [a], qos: 3}\n", "spec.yaml:3:47: source.mqtt.qos: is 3; allowed: an integer from 0 to 2"},
		{"source:\n  mqtt: {url: tcp://h:1883, topics: [a], clean: true}\n", "source.mqtt.clean: unknown key"},
		{"source:\n  nats: {url: nats://h, stream: S}\n", "source.nats.durable: is required"},
		{"source:\n  nats: {url: nats://h, stream: S, durable: d, queue: q}\n", "source.nats.queue: is for core NATS (jetstream: false)"},
		{"source:\n  nats: {url: nats://h, jetstream: false, durable: d, subject: a}\n", "source.nats.durable: is for JetStream"},
		{"source:\n  nats: {url: nats://h, jetstream: false}\n", "source.nats.subject: is required with jetstream: false"},
	} {
		spec := "name: x\n" + c.spec + "  format: json\nsink:\n  stdout: {}\n"
		_, err := Parse("spec.yaml", []byte(spec))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.spec, err, c.want)
		}
	}
	for _, c := range []struct{ sink, want string }{
		{"mqtt: {url: tcp://h:1883}", "sink.mqtt.topic: is required"},
		{"mqtt: {url: tcp://h:1883, topic: \"a/+/b\"}", "sink.mqtt.topic: wildcards (+, #) are not allowed"},
		{"mqtt: {url: tcp://h:1883, topic: \"a/{dev\"}", "unclosed '{'"},
		{"nats: {url: nats://h, subject: \"a.>\"}", "sink.nats.subject: wildcards"},
		{"nats: {url: nats://h, subject: \"a..b\"}", "empty token"},
	} {
		spec := "name: x\nsource:\n  generate: {count: 1}\n  format: json\nsink:\n  " + c.sink + "\n  format: json\n"
		_, err := Parse("spec.yaml", []byte(spec))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.sink, err, c.want)
		}
	}
	// A template's fields must exist where the sink is.
	spec := "name: x\nsource:\n  generate: {count: 1}\n  format: json\nsteps:\n  - window: {key: [user], tumbling: 1m, aggregate: {n: count()}}\nsink:\n  nats: {url: nats://h, subject: \"per.{device}\"}\n  format: json\n"
	s, err := Parse("spec.yaml", []byte(spec))
	if err == nil {
		_, err = Compile(s)
	}
	if err == nil || !strings.Contains(err.Error(), `spec.yaml:8:34: sink.nats.subject: template: unknown field "device"`) {
		t.Errorf("template after a window: %v", err)
	}
}

// TestExampleMQTTSensorAlerts runs examples/mqtt-sensor-alerts.yaml
// against the Mosquitto broker (on topics of its own): readings from 300
// devices go in, and exactly the hot ones come out as alerts on
// alerts/<device>, carrying their source topic as a field.
func TestExampleMQTTSensorAlerts(t *testing.T) {
	addr := testServer(t, "SLUICE_TEST_MQTT", "127.0.0.1:1883", "MQTT broker")
	spec, err := ParseFile("../examples/mqtt-sensor-alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p := "sluicetest-" + randSuffix()
	src := spec.Source.cfg.(*mqttSourceConfig)
	src.cfg.URL, src.cfg.Topics, src.cfg.ClientID = "tcp://"+addr, []string{p + "/sensors/+/temp"}, p
	snk := spec.Sinks[0].cfg.(*mqttSinkConfig)
	snk.cfg.URL, snk.topic, snk.cfg.ClientID = "tcp://"+addr, p+"/alerts/{device}", p+"-sink"
	spec.Checkpoint.Dir = t.TempDir()
	plan, err := Compile(spec)
	if err != nil {
		t.Fatal(err)
	}

	cl := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(p + "-test").SetCleanSession(true))
	if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer cl.Disconnect(100)
	var mu sync.Mutex
	alerts := map[string]map[string]any{}
	if tok := cl.Subscribe(p+"/alerts/#", 1, func(_ paho.Client, m paho.Message) {
		var v map[string]any
		if err := json.Unmarshal(m.Payload(), &v); err != nil {
			t.Errorf("alert %s: %v", m.Payload(), err)
			return
		}
		mu.Lock()
		alerts[m.Topic()] = v
		mu.Unlock()
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}

	j, err := plan.Start(context.Background(), &Host{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		j.Cancel()
		_ = j.Wait()
	}()
	// The source subscribes asynchronously: publish a cold probe until
	// the pipeline has read one.
	deadline := time.Now().Add(30 * time.Second)
	for j.Summary().RecordsIn == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the pipeline read nothing")
		}
		cl.Publish(p+"/sensors/probe/temp", 1, false, `{"device":"probe","c":1}`).Wait()
		select {
		case <-j.Done():
			t.Fatalf("job ended: %v", j.Wait())
		case <-time.After(50 * time.Millisecond): // probe interval, not synchronisation
		}
	}
	const devices = 300
	want := map[string]float64{}
	var toks []paho.Token
	for i := range devices {
		dev := fmt.Sprintf("d-%03d", i)
		c := float64(i%40) + 0.5 // above 30 for i%40 >= 30
		if c > 30 {
			want[p+"/alerts/"+dev] = c
		}
		toks = append(toks, cl.Publish(p+"/sensors/"+dev+"/temp", 1, false, fmt.Sprintf(`{"device":%q,"c":%g}`, dev, c)))
	}
	for _, tok := range toks {
		if !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	deadline = time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		n := len(alerts)
		mu.Unlock()
		if n >= len(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d alerts", n, len(want))
		}
		select {
		case <-j.Done():
			t.Fatalf("job ended: %v", j.Wait())
		case <-time.After(20 * time.Millisecond): // polling the alerts received
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for topic, v := range alerts {
		c, ok := want[topic]
		if !ok {
			t.Fatalf("unexpected alert on %s: %v", topic, v)
		}
		dev := strings.TrimPrefix(topic, p+"/alerts/")
		if v["c"] != c || v["alert"] != "hot" || v["topic"] != p+"/sensors/"+dev+"/temp" || v["device"] != dev {
			t.Fatalf("alert %s: %v", topic, v)
		}
	}
}

// TestExampleNATSOrders runs examples/nats-orders-exactly-once.yaml
// against the NATS server (on a stream of its own) with the example
// orders: every paid order arrives once on orders.paid.<channel>.
func TestExampleNATSOrders(t *testing.T) {
	addr := testServer(t, "SLUICE_TEST_NATS", "127.0.0.1:4222", "NATS server")
	spec, err := ParseFile("../examples/nats-orders-exactly-once.yaml")
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect("nats://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p := "sluicetest_" + randSuffix()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: p, Subjects: []string{p + ".>"}, Duplicates: 2 * time.Minute}); err != nil {
		t.Skipf("JetStream not available: %v", err)
	}
	defer js.DeleteStream(ctx, p)
	src := spec.Source.cfg.(*natsSourceConfig)
	src.cfg.URL, src.cfg.Stream, src.cfg.Subject = "nats://"+addr, p, p+".new"
	snk := spec.Sinks[0].cfg.(*natsSinkConfig)
	snk.cfg.URL, snk.subject = "nats://"+addr, p+".paid.{channel}"
	spec.Checkpoint.Dir = t.TempDir()
	spec.Checkpoint.Interval = 200 * time.Millisecond
	plan, err := Compile(spec)
	if err != nil {
		t.Fatal(err)
	}
	wantIDs := map[float64]int{} // the example has exact duplicates: count lines
	wantN := 0
	for _, l := range exampleLines(t) {
		if _, err := js.PublishAsync(p+".new", l); err != nil {
			t.Fatal(err)
		}
		var o map[string]any
		if json.Unmarshal(l, &o) == nil && o["status"] == "paid" {
			// An order without a channel has no subject: a failed record.
			if q, ok := o["qty"].(float64); ok && q > 0 && o["channel"] != nil {
				wantIDs[o["order_id"].(float64)]++
				wantN++
			}
		}
	}
	<-js.PublishAsyncComplete()
	j, err := plan.Start(ctx, &Host{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		j.Cancel()
		_ = j.Wait()
	}()
	cons, err := js.OrderedConsumer(ctx, p, jetstream.OrderedConsumerConfig{FilterSubjects: []string{p + ".paid.>"}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[float64]int{}
	total := 0
	deadline := time.Now().Add(60 * time.Second)
	for total < wantN {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d paid orders", total, wantN)
		}
		select {
		case <-j.Done():
			t.Fatalf("job ended: %v", j.Wait())
		default:
		}
		mb, err := cons.Fetch(100, jetstream.FetchMaxWait(500*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		for m := range mb.Messages() {
			var o map[string]any
			if err := json.Unmarshal(m.Data(), &o); err != nil {
				t.Fatal(err)
			}
			if m.Subject() != p+".paid."+fmt.Sprint(o["channel"]) || o["total"] == nil {
				t.Fatalf("%s: %s", m.Subject(), m.Data())
			}
			got[o["order_id"].(float64)]++
			total++
		}
	}
	for id, n := range got {
		if n != wantIDs[id] {
			t.Fatalf("order %v arrived %d times, published paid %d times", id, n, wantIDs[id])
		}
	}
}

// TestNATSPipelineOutage: a JetStream → JetStream pipeline under
// exactly_once whose link to the server is cut mid-stream (a proxy drops
// every connection and refuses new ones) and then restored: it
// reconnects, and every record is in the output once.
func TestNATSPipelineOutage(t *testing.T) {
	addr := testServer(t, "SLUICE_TEST_NATS", "127.0.0.1:4222", "NATS server")
	nc, err := nats.Connect("nats://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p := "sluicetest_" + randSuffix()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: p, Subjects: []string{p + ".>"}, Duplicates: 5 * time.Minute}); err != nil {
		t.Skipf("JetStream not available: %v", err)
	}
	defer js.DeleteStream(ctx, p)
	px, err := faultproxy.Start(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	const n = 20000
	for i := range n {
		if _, err := js.PublishAsync(p+".in", fmt.Appendf(nil, `{"id":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	<-js.PublishAsyncComplete()
	spec, err := Parse("outage.yaml", fmt.Appendf(nil, `name: %[1]s
source:
  nats: {url: "nats://%[2]s", stream: %[1]s, subject: %[1]s.in, durable: d, batch: 100}
  format: json
delivery: exactly_once
checkpoint: {interval: 100ms, dir: %[3]q}
sink:
  nats: {url: "nats://%[2]s", subject: %[1]s.out, ack_timeout: 1s}
  format: json
`, p, px.Addr(), t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := Compile(spec)
	if err != nil {
		t.Fatal(err)
	}
	j, err := plan.Start(ctx, &Host{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		j.Cancel()
		_ = j.Wait()
	}()
	outCount := func() uint64 {
		st, err := js.Stream(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx, jetstream.WithSubjectFilter(p+".out"))
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Subjects[p+".out"]
	}
	waitFor := func(what string, cond func() bool) {
		deadline := time.Now().Add(90 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s (output %d)", what, outCount())
			}
			select {
			case <-j.Done():
				t.Fatalf("job ended: %v", j.Wait())
			case <-time.After(10 * time.Millisecond): // polling
			}
		}
	}
	meters := func() (errs, reconnects int64) {
		for _, m := range j.connectorMeters() {
			errs += m.m.Errors.Load()
			reconnects += m.m.Reconnects.Load()
		}
		return
	}
	waitFor("output to start", func() bool { return outCount() >= 3000 })
	px.Cut()
	waitFor("the outage to be noticed", func() bool { e, _ := meters(); return e >= 2 })
	px.Restore()
	waitFor("reconnection", func() bool { _, r := meters(); return r >= 2 })
	waitFor("all output", func() bool { return outCount() >= n })
	expectJetStreamIDsOnce(ctx, t, js, p, p+".out", n, 2*time.Second)
	if c := outCount(); c != n {
		t.Fatalf("output holds %d, want %d", c, n)
	}
}

// expectJetStreamIDsOnce reads n outputs of stream's subject and fails
// unless every record id 0..n-1 is there exactly once.
func expectJetStreamIDsOnce(ctx context.Context, t *testing.T, js jetstream.JetStream, stream, subject string, n int, wait time.Duration) {
	t.Helper()
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		t.Fatal(err)
	}
	seen := make([]int, n)
	for got := 0; got < n; {
		mb, err := cons.Fetch(1000, jetstream.FetchMaxWait(wait))
		if err != nil {
			t.Fatal(err)
		}
		k := 0
		for m := range mb.Messages() {
			var r struct{ ID int }
			if err := json.Unmarshal(m.Data(), &r); err != nil || r.ID < 0 || r.ID >= n {
				t.Fatalf("output %s: %v", m.Data(), err)
			}
			seen[r.ID]++
			k++
		}
		if k == 0 {
			t.Fatalf("read %d of %d outputs", got, n)
		}
		got += k
	}
	for id, c := range seen {
		if c != 1 {
			t.Fatalf("record %d is in the output %d times", id, c)
		}
	}
}
