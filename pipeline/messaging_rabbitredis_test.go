package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"
)

// paidOrders is the oracle of the messaging examples: the example orders
// that decode and are paid, by order id, with their channel and how many
// times they appear (the example file repeats a few).
func rrPaidOrders(t *testing.T) (map[int64]string, map[int64]int) {
	out, times := map[int64]string{}, map[int64]int{}
	for _, l := range exampleLines(t) {
		var o struct {
			OrderID int64  `json:"order_id"`
			Status  string `json:"status"`
			Channel string `json:"channel"`
		}
		if json.Unmarshal(l, &o) != nil || o.Status != "paid" {
			continue
		}
		out[o.OrderID] = o.Channel
		times[o.OrderID]++
	}
	return out, times
}

func rrTotal(m map[int64]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func rrWaitUntil(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestExampleRabbitMQ runs examples/rabbitmq-orders-routing.yaml against
// the local RabbitMQ on a queue of its own, its output routed by channel
// to a queue bound for the test: every paid order arrives once, with the
// routing key of its channel and a message-id.
func TestExampleRabbitMQ(t *testing.T) {
	conn, err := amqp.DialConfig("amqp://guest:guest@127.0.0.1:5672/", amqp.Config{Dial: amqp.DefaultDial(2 * time.Second)})
	if err != nil {
		t.Skipf("no RabbitMQ at 127.0.0.1:5672: %v", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	suffix := fmt.Sprint(time.Now().UnixNano())
	in, out, prefix := "sluice-example-orders-"+suffix, "sluice-example-paid-"+suffix, "sluice-test-"+suffix
	if _, err := ch.QueueDeclare(out, false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	defer ch.QueueDelete(out, false, false, false)
	defer ch.QueueDelete(in, false, false, false)
	if err := ch.QueueBind(out, prefix+".paid.#", "amq.topic", false, nil); err != nil {
		t.Fatal(err)
	}
	spec, err := ParseFile("../examples/rabbitmq-orders-routing.yaml")
	if err != nil {
		t.Fatal(err)
	}
	spec.Source.cfg.(*rabbitSourceConfig).cfg.Queue = in
	sk := spec.Sinks[0].cfg.(*rabbitSinkConfig)
	sk.key = strings.Replace(sk.key, "orders", prefix, 1)
	spec.Checkpoint.Dir = t.TempDir()
	spec.Checkpoint.Interval = 100 * time.Millisecond
	p, err := Compile(spec)
	if err != nil {
		t.Fatal(err)
	}
	j, err := p.Start(context.Background(), &Host{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { j.job.Cancel(); _ = j.Wait() }()
	// The source declared its queue; publish the example orders to it.
	rrWaitUntil(t, "the source's queue", 20*time.Second, func() bool {
		c, err := conn.Channel()
		if err != nil {
			return false
		}
		defer c.Close()
		_, err = c.QueueDeclarePassive(in, true, false, false, false, nil)
		return err == nil
	})
	for i, l := range exampleLines(t) {
		if err := ch.Publish("", in, false, false, amqp.Publishing{Body: l, MessageId: fmt.Sprint("order-line-", i)}); err != nil {
			t.Fatal(err)
		}
	}
	want, times := rrPaidOrders(t)
	got, gotTimes, n := map[int64]string{}, map[int64]int{}, 0
	rrWaitUntil(t, "every paid order", 60*time.Second, func() bool {
		for {
			d, ok, err := ch.Get(out, true)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				return n >= rrTotal(times)
			}
			var o struct {
				Order   int64  `json:"order"`
				Channel string `json:"channel"`
			}
			if err := json.Unmarshal(d.Body, &o); err != nil {
				t.Fatal(err)
			}
			n++
			if gotTimes[o.Order]++; gotTimes[o.Order] > times[o.Order] {
				t.Fatalf("order %d %d times, want %d", o.Order, gotTimes[o.Order], times[o.Order])
			}
			if d.RoutingKey != prefix+".paid."+o.Channel || !strings.HasPrefix(d.MessageId, "rabbitmq-orders-routing/") {
				t.Fatalf("order %d: routing key %q, message-id %q", o.Order, d.RoutingKey, d.MessageId)
			}
			got[o.Order] = o.Channel
		}
	})
	for id, c := range want {
		if got[id] != c {
			t.Fatalf("order %d: got channel %q, want %q", id, got[id], c)
		}
	}
	// The sink counts a message once it processed its confirmation, which
	// may come after the message reached the queue.
	rrWaitUntil(t, "the connectors' counts", 30*time.Second, func() bool {
		st := map[string]int64{}
		for _, m := range j.connectorMeters() {
			st[m.field] = m.m.Records.Load()
		}
		return st["source"] == int64(len(exampleLines(t))) && st["sinks[0]"] == int64(rrTotal(times))
	})
}

// TestExampleRedisStream runs examples/redis-stream-orders.yaml against
// the local Redis on streams of its own: every paid order lands once in
// the output stream with its user as key, and the group has nothing
// pending once the checkpoints acknowledged it.
func TestExampleRedisStream(t *testing.T) {
	cli := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", DialTimeout: 2 * time.Second})
	defer cli.Close()
	ctx := context.Background()
	if err := cli.Ping(ctx).Err(); err != nil {
		t.Skipf("no Redis at 127.0.0.1:6379: %v", err)
	}
	suffix := fmt.Sprint(time.Now().UnixNano())
	in, out := "sluice-example-orders-"+suffix, "sluice-example-paid-"+suffix
	defer cli.Del(ctx, in, out)
	for _, l := range exampleLines(t) {
		if err := cli.XAdd(ctx, &redis.XAddArgs{Stream: in, Values: []any{"value", l}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	spec, err := ParseFile("../examples/redis-stream-orders.yaml")
	if err != nil {
		t.Fatal(err)
	}
	spec.Source.cfg.(*redisSourceConfig).cfg.Stream = in
	spec.Sinks[0].cfg.(*redisSinkConfig).cfg.Stream = out
	spec.Checkpoint.Dir = t.TempDir()
	spec.Checkpoint.Interval = 100 * time.Millisecond
	p, err := Compile(spec)
	if err != nil {
		t.Fatal(err)
	}
	j, err := p.Start(ctx, &Host{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { j.job.Cancel(); _ = j.Wait() }()
	_, times := rrPaidOrders(t)
	rrWaitUntil(t, "every paid order, acknowledged", 60*time.Second, func() bool {
		pend, err := cli.XPending(ctx, in, "paid-orders").Result()
		return cli.XLen(ctx, out).Val() >= int64(rrTotal(times)) && err == nil && pend.Count == 0
	})
	msgs, err := cli.XRange(ctx, out, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int64]int{}
	for _, m := range msgs {
		var o struct {
			Order int64  `json:"order"`
			User  string `json:"user"`
		}
		if err := json.Unmarshal([]byte(m.Values["value"].(string)), &o); err != nil {
			t.Fatal(err)
		}
		if seen[o.Order]++; seen[o.Order] > times[o.Order] || o.User != "" && m.Values["key"] != o.User {
			t.Fatalf("order %d: %d times (want %d), key %v", o.Order, seen[o.Order], times[o.Order], m.Values["key"])
		}
	}
	if len(msgs) != rrTotal(times) {
		t.Fatalf("%d orders, want %d", len(msgs), rrTotal(times))
	}
}

// TestMessagingSpecErrors: bad rabbitmq and redis blocks are reported
// with the file, line and key.
func TestMessagingSpecErrors(t *testing.T) {
	for _, c := range []struct{ spec, want string }{
		{`name: x
source:
  rabbitmq: {url: "http://nope", queue: q, prefetch: 0}
sinks: [{stdout: {}}]
`, "x.yaml:3:19: source.rabbitmq.url: AMQP scheme"},
		{`name: x
source:
  rabbitmq: {url: "amqp://127.0.0.1/", queue: q, prefetch: 0}
sinks: [{stdout: {}}]
`, "source.rabbitmq.prefetch: is 0; allowed: an integer from 1 to 65535"},
		{`name: x
source:
  rabbitmq: {url: "amqp://127.0.0.1/", queue: q, declare: {queue_type: fancy}}
sinks: [{stdout: {}}]
`, "source.rabbitmq.declare.queue_type"},
		{`name: x
source: {generate: {count: 1}, format: json}
steps: [{map: {a: "1"}}]
sinks:
  - rabbitmq: {url: "amqp://127.0.0.1/", routing_key: "a.{nope}"}
`, `unknown field "nope"`},
		{`name: x
source: {generate: {count: 1}, format: json}
sinks:
  - rabbitmq: {url: "amqp://127.0.0.1/", routing_key: "a.{open"}
`, "x.yaml:4:55: sinks[0].rabbitmq.routing_key"},
		{`name: x
source:
  redis: {stream: s}
sinks: [{stdout: {}}]
`, "source.redis.group: is required"},
		{`name: x
source:
  redis: {stream: s, group: g, block: 1m}
sinks: [{stdout: {}}]
`, "source.redis.block: is 1m0s; allowed: up to 10s"},
		{`name: x
source: {generate: {count: 1}, format: json}
sinks:
  - redis: {stream: s, maxlen: -1, bogus: 1}
`, "sinks[0].redis.bogus: unknown key"},
	} {
		spec, err := Parse("x.yaml", []byte(c.spec))
		if err == nil {
			_, err = Compile(spec)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("spec:\n%s\ngot %v\nwant an error containing %q", c.spec, err, c.want)
		}
	}
}
