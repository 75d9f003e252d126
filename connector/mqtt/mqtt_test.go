package mqtt

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/internal/faultproxy"
	"github.com/sluicehq/sluice/internal/testservice"
	"github.com/sluicehq/sluice/stream"
)

// brokerAddr returns the test broker's HOST:PORT, or skips.
func brokerAddr(t testing.TB) string {
	t.Helper()
	return testservice.Addr(t, "SLUICE_TEST_MQTT", "127.0.0.1:1883", "MQTT broker")
}

func randName(t testing.TB) string { return "sluicetest-" + testservice.Suffix() }

// publisher is a plain paho client publishing straight to the broker.
func publisher(t testing.TB, addr string) paho.Client {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(randName(t)).SetCleanSession(true))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func publishAll(t testing.TB, c paho.Client, qos byte, topics []string, payload func(i int) string) {
	t.Helper()
	toks := make([]paho.Token, 0, len(topics))
	for i, tp := range topics {
		toks = append(toks, c.Publish(tp, qos, false, payload(i)))
		if len(toks) >= 500 {
			waitTokens(t, toks)
			toks = toks[:0]
		}
	}
	waitTokens(t, toks)
}

func waitTokens(t testing.TB, toks []paho.Token) {
	t.Helper()
	for _, tok := range toks {
		if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
}

func openSplit(t testing.TB, cfg SourceConfig) (*Source, *split) {
	t.Helper()
	src, err := NewSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sps, err := src.Splits(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	sp := sps[0].(*split)
	t.Cleanup(func() { _ = sp.Close() })
	return src, sp
}

// readUntil reads (committing after each read, as the periodic completed
// checkpoints would, when commit is set) until done says so or the deadline passes.
func readUntil(t testing.TB, sp stream.Split[connector.Message], commit bool, d time.Duration, done func(connector.Message) bool) {
	t.Helper()
	if err := readUntilErr(sp, commit, d, done); err != nil {
		t.Fatal(err)
	}
}

// readUntilErr is readUntil for a goroutine other than the test's.
func readUntilErr(sp stream.Split[connector.Message], commit bool, d time.Duration, done func(connector.Message) bool) error {
	ctx := context.Background()
	buf := make([]connector.Message, 256)
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		n, err := sp.Read(ctx, buf)
		if err != nil {
			return err
		}
		stop := false
		for _, m := range buf[:n] {
			if done(m) {
				stop = true
			}
		}
		// Checkpoints complete whether or not anything new was read: a
		// read that returned nothing (the broker resending only what the
		// source holds, which it skips) must still be followed by the
		// acknowledgements, or the broker's full in-flight window never
		// empties and nothing more comes.
		if commit {
			if err := sp.(stream.PositionCommitter).CommitPosition(ctx, sp.Position()); err != nil {
				return err
			}
		}
		if stop {
			return nil
		}
	}
	return fmt.Errorf("condition not reached within %v", d)
}

// waitSubscribed publishes probes to topic until the split reads one:
// its subscription is then in place.
func waitSubscribed(t testing.TB, sp *split, pub paho.Client, topic string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	buf := make([]connector.Message, 64)
	for time.Now().Before(deadline) {
		waitTokens(t, []paho.Token{pub.Publish(topic, 1, false, "probe")})
		n, err := sp.Read(context.Background(), buf)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range buf[:n] {
			if string(m.Value) == "probe" {
				_ = sp.CommitPosition(context.Background(), sp.Position())
				return
			}
		}
	}
	t.Fatal("subscription never delivered a probe")
}

// TestSourceKeepsQoS1WhileDown: QoS 1 messages published while the
// source is away arrive after it comes back (persistent session), and
// messages read but never acknowledged (their checkpoint did not
// complete) are delivered again after a restart.
func TestSourceKeepsQoS1WhileDown(t *testing.T) {
	addr := brokerAddr(t)
	name := randName(t)
	cfg := SourceConfig{URL: "tcp://" + addr, Topics: []string{name + "/+/temp"}, QoS: 1, ClientID: name, AckOnCheckpoint: true}
	pub := publisher(t, addr)
	t.Cleanup(func() {
		// Drop the session at the broker.
		c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(name).SetCleanSession(true))
		if tok := c.Connect(); tok.WaitTimeout(5 * time.Second) {
			c.Disconnect(100)
		}
	})

	_, sp := openSplit(t, cfg)
	waitSubscribed(t, sp, pub, name+"/probe/temp")
	_ = sp.Close()

	// Published while the pipeline is down (fewer than Mosquitto's
	// default queue of 1000 per session).
	const n = 500
	topics := make([]string, n)
	for i := range topics {
		topics[i] = fmt.Sprintf("%s/dev-%03d/temp", name, i)
	}
	publishAll(t, pub, 1, topics, func(i int) string { return fmt.Sprintf(`{"i":%d}`, i) })

	_, sp = openSplit(t, cfg)
	got := map[string]int{}
	readUntil(t, sp, true, 60*time.Second, func(m connector.Message) bool {
		if string(m.Value) == "probe" {
			return false
		}
		got[string(m.Key)]++
		return len(got) == n
	})
	for i, tp := range topics {
		if got[tp] == 0 {
			t.Fatalf("message %d (%s) published while down never arrived", i, tp)
		}
	}

	// Read without acknowledging (no checkpoint completes), stop, and
	// come back: the broker delivers them again.
	more := make([]string, 50)
	for i := range more {
		more[i] = fmt.Sprintf("%s/late-%02d/temp", name, i)
	}
	publishAll(t, pub, 1, more, func(i int) string { return fmt.Sprintf(`{"late":%d}`, i) })
	seen := map[string]bool{}
	readUntil(t, sp, false, 30*time.Second, func(m connector.Message) bool {
		if strings.Contains(string(m.Key), "/late-") {
			seen[string(m.Key)] = true
		}
		return len(seen) > 0
	})
	_ = sp.Close()
	_, sp = openSplit(t, cfg)
	again := map[string]bool{}
	readUntil(t, sp, true, 60*time.Second, func(m connector.Message) bool {
		if strings.Contains(string(m.Key), "/late-") {
			again[string(m.Key)] = true
		}
		return len(again) == len(more)
	})
	for k := range seen {
		if !again[k] {
			t.Fatalf("%s was read but not acknowledged, and was not delivered again", k)
		}
	}
}

// TestSourceWildcard10000Devices: one message from each of 10,000
// devices' topics arrives through one wildcard filter, each with its
// topic as the key and as a JSON field.
func TestSourceWildcard10000Devices(t *testing.T) {
	addr := brokerAddr(t)
	name := randName(t)
	cfg := SourceConfig{URL: "tcp://" + addr, Topics: []string{name + "/+/temp"}, QoS: 1, ClientID: name, CleanSession: true, TopicField: "topic"}
	pub := publisher(t, addr)
	_, sp := openSplit(t, cfg)
	waitSubscribed(t, sp, pub, name+"/probe/temp")
	const n = 10000
	topics := make([]string, n)
	for i := range topics {
		topics[i] = fmt.Sprintf("%s/dev-%05d/temp", name, i)
	}
	// The devices publish at QoS 1, paced so that no more than 500 wait
	// at the broker for the pipeline (Mosquitto queues up to 1000 per
	// client by default and drops beyond).
	var received atomic.Int64
	pubErr := make(chan error, 1)
	go func() {
		defer close(pubErr)
		for i := 0; i < n; i += 250 {
			deadline := time.Now().Add(60 * time.Second)
			for int64(i)-received.Load() > 500 {
				if time.Now().After(deadline) {
					pubErr <- fmt.Errorf("reader stuck at %d", received.Load())
					return
				}
				time.Sleep(time.Millisecond) // pacing the devices
			}
			var toks []paho.Token
			for j := i; j < i+250; j++ {
				toks = append(toks, pub.Publish(topics[j], 1, false, fmt.Sprintf(`{"device":%d,"c":21.5}`, j)))
			}
			for _, tok := range toks {
				if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
					pubErr <- fmt.Errorf("publish: %v", tok.Error())
					return
				}
			}
		}
	}()
	got := make(map[string]bool, n)
	readUntil(t, sp, false, 120*time.Second, func(m connector.Message) bool {
		received.Add(1)
		if string(m.Value) == "probe" {
			return false
		}
		var dev int
		if _, err := fmt.Sscanf(string(m.Key), name+"/dev-%05d/temp", &dev); err != nil {
			t.Fatalf("key %q: %v", m.Key, err)
		}
		want := fmt.Sprintf(`{"topic":%q,"device":%d,"c":21.5}`, string(m.Key), dev)
		if string(m.Value) != want {
			t.Fatalf("value %s, want %s", m.Value, want)
		}
		got[string(m.Key)] = true
		return len(got) == n
	})
	if err := <-pubErr; err != nil {
		t.Fatal(err)
	}
	if src := sp.meter.Records.Load(); src < n {
		t.Fatalf("meter counted %d records, want ≥ %d", src, n)
	}
}

// TestSourceSurvivesOutage: the link to the broker is cut (a proxy
// drops every connection and refuses new ones) while messages are
// published; once it is back the source reconnects and every message the
// broker accepted arrives (duplicates allowed: at-least-once).
func TestSourceSurvivesOutage(t *testing.T) {
	addr := brokerAddr(t)
	name := randName(t)
	px, err := faultproxy.Start(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	cfg := SourceConfig{URL: "tcp://" + px.Addr(), Topics: []string{name + "/#"}, QoS: 1, ClientID: name, AckOnCheckpoint: true, MaxReconnectInterval: time.Second}
	t.Cleanup(func() {
		c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(name).SetCleanSession(true))
		if tok := c.Connect(); tok.WaitTimeout(5 * time.Second) {
			c.Disconnect(100)
		}
	})
	pub := publisher(t, addr)
	_, sp := openSplit(t, cfg)
	waitSubscribed(t, sp, pub, name+"/probe")

	const n = 900 // below Mosquitto's default queue of 1000 per session
	topics := make([]string, n)
	for i := range topics {
		topics[i] = fmt.Sprintf("%s/m/%d", name, i)
	}
	half := n / 3
	publishAll(t, pub, 1, topics[:half/2], func(i int) string { return fmt.Sprint(i) })
	got := map[string]int{}
	record := func(m connector.Message) {
		if strings.Contains(string(m.Key), "/m/") {
			got[string(m.Key)]++
		}
	}
	readUntil(t, sp, true, 60*time.Second, func(m connector.Message) bool {
		record(m)
		return len(got) == half/2
	})
	// Read the next ones without a checkpoint completing until the
	// broker stops sending: the source holds them unacknowledged (as
	// many as the broker's in-flight window, Mosquitto's
	// max_inflight_messages, lets through). After the reconnection the
	// broker sends those again first, the source skips them as
	// duplicates, and when they fill the window nothing else comes until
	// a checkpoint acknowledges them (the case that made this test hang
	// now and then: it acknowledged only after reads that returned
	// something).
	publishAll(t, pub, 1, topics[half/2:half], func(i int) string { return fmt.Sprint(half/2 + i) })
	buf := make([]connector.Message, 16)
	for idle := 0; idle < 3; {
		n, err := sp.Read(context.Background(), buf)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			idle++
		} else {
			idle = 0
		}
		for _, m := range buf[:n] {
			record(m)
		}
	}
	sp.mu.Lock()
	held := len(sp.held)
	sp.mu.Unlock()
	t.Logf("%d of %d read before the cut, %d of them unacknowledged", len(got), half, held)
	px.Cut()
	// Keep reading until the source notices the cut. What it returns now
	// is passed on like any read (the broker's redelivery of these
	// unacknowledged messages is recognised as a duplicate and skipped,
	// as a pipeline already holds them), so the test must count it too.
	deadline := time.Now().Add(30 * time.Second)
	for sp.meter.Errors.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the source did not notice the outage")
		}
		n, err := sp.Read(context.Background(), buf)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range buf[:n] {
			record(m)
		}
	}
	// Published during the outage: the broker queues them for the session.
	publishAll(t, pub, 1, topics[half:], func(i int) string { return fmt.Sprint(half + i) })
	px.Restore()
	readUntil(t, sp, true, 90*time.Second, func(m connector.Message) bool {
		record(m)
		return len(got) == n
	})
	if sp.meter.Reconnects.Load() == 0 {
		t.Fatal("no reconnection counted")
	}
	dups := 0
	for _, c := range got {
		dups += c - 1
	}
	t.Logf("%d messages, %d delivered twice (at-least-once)", n, dups)
}

// TestSinkSurvivesOutage: a QoS 1 sink whose link is cut mid-stream
// delivers every message once the link is back (flush at the barrier
// waits for all acknowledgements).
func TestSinkSurvivesOutage(t *testing.T) {
	addr := brokerAddr(t)
	name := randName(t)
	px, err := faultproxy.Start(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	sub := SourceConfig{URL: "tcp://" + addr, Topics: []string{name + "/#"}, QoS: 1, ClientID: name + "-sub", CleanSession: true}
	pub := publisher(t, addr)
	_, sp := openSplit(t, sub)
	waitSubscribed(t, sp, pub, name+"/probe")

	sink, err := NewSink(SinkConfig{URL: "tcp://" + px.Addr(), Topic: name + "/out", QoS: 1, ClientID: name + "-sink", MaxReconnectInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w, err := sink.Open(ctx, stream.SubtaskInfo{})
	if err != nil {
		t.Fatal(err)
	}
	// The subscriber reads while the sink writes, so that the broker's
	// per-client queue (Mosquitto drops QoS 1 messages beyond
	// max_queued_messages, 1000 by default) never fills, however many
	// publishes the outage makes the sink send twice.
	const n = 800
	got := map[uint32]bool{}
	read := make(chan error, 1)
	go func() {
		read <- readUntilErr(sp, false, 90*time.Second, func(m connector.Message) bool {
			if len(m.Value) == 4 {
				got[binary.BigEndian.Uint32(m.Value)] = true
			}
			return len(got) == n
		})
	}()
	msgs := make([]connector.Message, 0, 100)
	for i := 0; i < n; i += 100 {
		msgs = msgs[:0]
		for j := i; j < i+100; j++ {
			msgs = append(msgs, connector.Message{Key: []byte(fmt.Sprintf("%s/out/%d", name, j%7)), Value: binary.BigEndian.AppendUint32(nil, uint32(j))})
		}
		if err := w.Write(ctx, msgs); err != nil {
			t.Fatal(err)
		}
		if i == 400 {
			px.Cut()
			go func() {
				deadline := time.Now().Add(20 * time.Second)
				for sink.meter.Errors.Load() == 0 && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond) // polling a counter, not synchronising the test
				}
				px.Restore()
			}()
		}
	}
	if err := w.(stream.BarrierWriter).OnBarrier(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if sink.meter.Reconnects.Load() == 0 {
		t.Fatal("the sink did not reconnect")
	}
	if err := <-read; err != nil {
		t.Fatalf("%v: %d of %d messages arrived", err, len(got), n)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestSinkRejectsTopicsMQTTCannotCarry: a topic rendered from the data
// that MQTT cannot carry fails the write with an error saying why. One
// over 65,535 bytes used to be truncated by the client, so the message
// went to another topic; one that is not UTF-8 was sent as it was, which
// MQTT forbids (a broker that checks closes the connection, and the
// sink's session sends the publish again on every reconnection).
func TestSinkRejectsTopicsMQTTCannotCarry(t *testing.T) {
	addr := brokerAddr(t)
	name := randName(t)
	for _, tc := range []struct{ name, topic, want string }{
		{"too long", name + "/" + strings.Repeat("x", 70000), "65535"},
		{"not UTF-8", name + "/\xff\xfe", "UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink, err := NewSink(SinkConfig{URL: "tcp://" + addr, Topic: name + "/out", QoS: 1, ClientID: randName(t) + "-sink"})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			w, err := sink.Open(ctx, stream.SubtaskInfo{})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = w.Close(context.Background()) }()
			err = w.Write(ctx, []connector.Message{{Key: []byte(tc.topic), Value: []byte("v")}})
			if err == nil {
				err = w.(stream.BarrierWriter).OnBarrier(ctx, 1)
			}
			if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v (context: %v); want an error naming %s", err, ctx.Err(), tc.want)
			}
		})
	}
}
