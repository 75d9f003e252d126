package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/internal/faultproxy"
	"github.com/sluicehq/sluice/stream"
)

const testURL = "amqp://guest:guest@127.0.0.1:5672/"

// broker connects to the local RabbitMQ or skips the test.
func broker(t testing.TB) *amqp.Connection {
	t.Helper()
	conn, err := amqp.DialConfig(testURL, amqp.Config{Dial: amqp.DefaultDial(2 * time.Second)})
	if err != nil {
		t.Skipf("no RabbitMQ at 127.0.0.1:5672 (guest/guest): %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// queue declares a queue unique to the test, deleted afterwards.
func queue(t testing.TB, conn *amqp.Connection, name string) string {
	t.Helper()
	q := fmt.Sprintf("sluice-test-%s-%d", name, time.Now().UnixNano())
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := amqp.Dial(testURL)
		if err != nil {
			return
		}
		defer c.Close()
		if ch, err := c.Channel(); err == nil {
			_, _ = ch.QueueDelete(q, false, false, false)
		}
	})
	return q
}

// publish puts n messages "m<i>" with message-id "id-<i>" for i in
// [from, from+n) on queue q, confirmed.
func publish(t *testing.T, conn *amqp.Connection, q string, from, n int) {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, n+1))
	for i := from; i < from+n; i++ {
		if err := ch.Publish("", q, false, false, amqp.Publishing{Body: []byte("m" + strconv.Itoa(i)), MessageId: "id-" + strconv.Itoa(i), DeliveryMode: amqp.Persistent}); err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		if c := <-confirms; !c.Ack {
			t.Fatal("publish nacked")
		}
	}
}

// depth is the queue's ready message count.
func depth(t *testing.T, conn *amqp.Connection, q string) int {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	qq, err := ch.QueueDeclarePassive(q, false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return qq.Messages
}

// drain takes every message of q (auto-ack) until it stays empty.
func drain(t *testing.T, conn *amqp.Connection, q string) []string {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	var out []string
	for {
		d, ok, err := ch.Get(q, true)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return out
		}
		out = append(out, string(d.Body))
	}
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// logs collects log lines, to assert on them.
type logs struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func want(from, n int) []string {
	out := make([]string, 0, n)
	for i := from; i < from+n; i++ {
		out = append(out, "m"+strconv.Itoa(i))
	}
	slices.Sort(out)
	return out
}

func sorted(ms []string) []string {
	out := slices.Clone(ms)
	slices.Sort(out)
	return out
}

// TestQueueToQueue runs a checkpointed job from one queue to another
// through the sink: the output queue holds every input message once, the
// input queue is empty (everything acknowledged after its checkpoint) and
// each output message carries a distinct message-id.
func TestQueueToQueue(t *testing.T) {
	conn := broker(t)
	in, out := queue(t, conn, "in"), queue(t, conn, "out")
	const n = 2000
	publish(t, conn, in, 0, n)
	src, err := NewSource(SourceConfig{URL: testURL, Queue: in, Prefetch: 500, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	sink, err := NewSink(SinkConfig{URL: testURL, RoutingKey: out, Persistent: true, Mandatory: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	env := stream.New(stream.WithParallelism(1), stream.WithCheckpointing(t.TempDir(), 50*time.Millisecond))
	stream.To(stream.FromSource(env, "rabbit", src, stream.WatermarkStrategy[connector.Message]{}), stream.Sink[connector.Message](sink))
	job, err := env.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the output queue to fill and the input to be acknowledged", 60*time.Second, func() bool {
		return depth(t, conn, out) >= n && depth(t, conn, in) == 0 && src.meter.Records.Load() >= n && len(src.splitPending()) == 0
	})
	job.Cancel()
	_ = job.Wait()
	ch, _ := conn.Channel()
	defer ch.Close()
	ids := map[string]bool{}
	var got []string
	for {
		d, ok, err := ch.Get(out, true)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if ids[d.MessageId] || d.MessageId == "" {
			t.Fatalf("message-id %q repeated or empty", d.MessageId)
		}
		ids[d.MessageId] = true
		got = append(got, string(d.Body))
	}
	if !slices.Equal(sorted(got), want(0, n)) {
		t.Fatalf("output: %d messages, want %d", len(got), n)
	}
	if c := sink.Meter().Records.Load(); c != n {
		t.Fatalf("sink counted %d confirmed, want %d", c, n)
	}
	if depth(t, conn, in) != 0 {
		t.Fatal("input not acknowledged")
	}
}

// splitPending is the pending count of the source's last split, for tests.
func (s *Source) splitPending() []entry {
	s.mu.Lock()
	sp := s.last
	s.mu.Unlock()
	if sp == nil {
		return nil
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return slices.Clone(sp.pending)
}

// TestPrefetchBound: with no checkpoint completing, the consumer gets
// exactly Prefetch messages and no more; once a position is committed
// (acknowledged), the next ones come.
func TestPrefetchBound(t *testing.T) {
	conn := broker(t)
	q := queue(t, conn, "prefetch")
	const n, prefetch = 100, 7
	publish(t, conn, q, 0, n)
	src, err := NewSource(SourceConfig{URL: testURL, Queue: q, Prefetch: prefetch, PollInterval: 20 * time.Millisecond, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	splits, _ := src.Splits(context.Background(), 1)
	sp := splits[0].(*split)
	defer sp.Close()
	ctx := context.Background()
	buf := make([]connector.Message, 64)
	got := 0
	read := func() {
		k, err := sp.Read(ctx, buf)
		if err != nil {
			t.Fatal(err)
		}
		got += k
		if got > prefetch && len(sp.pending) > prefetch {
			t.Fatalf("%d messages unacknowledged, prefetch %d", len(sp.pending), prefetch)
		}
	}
	// The broker holds back everything beyond the prefetch: its ready
	// count shows it.
	waitFor(t, "prefetch deliveries", 20*time.Second, func() bool { read(); return got == prefetch && depth(t, conn, q) == n-prefetch })
	for range 10 {
		read()
	}
	if got != prefetch {
		t.Fatalf("read %d messages with %d unacknowledged allowed", got, prefetch)
	}
	if err := sp.CommitPosition(ctx, sp.Position()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the next deliveries", 20*time.Second, func() bool { read(); return got == 2*prefetch })
	for range 10 {
		read()
	}
	if got != 2*prefetch {
		t.Fatalf("read %d messages after one acknowledgement, want %d", got, 2*prefetch)
	}
}

// TestDedupAfterCrash is the crash window: messages handed over before a
// barrier, the checkpoint complete, the process gone before the ack. The
// broker redelivers them; a split restored from the checkpoint's
// position drops exactly those and hands over the rest.
func TestDedupAfterCrash(t *testing.T) {
	conn := broker(t)
	q := queue(t, conn, "dedup")
	publish(t, conn, q, 0, 50)
	ctx := context.Background()
	open := func() *split {
		src, err := NewSource(SourceConfig{URL: testURL, Queue: q, Prefetch: 1000, Dedup: true, PollInterval: 20 * time.Millisecond, Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		splits, _ := src.Splits(ctx, 1)
		return splits[0].(*split)
	}
	var handed []string
	sp := open()
	buf := make([]connector.Message, 30)
	waitFor(t, "30 messages", 20*time.Second, func() bool {
		k, err := sp.Read(ctx, buf[:30-len(handed)])
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range buf[:k] {
			handed = append(handed, string(m.Value))
		}
		return len(handed) == 30
	})
	pos := sp.Position() // the barrier; the checkpoint completes
	sp.Close()           // and the process dies before CommitPosition
	sp2 := open()
	defer sp2.Close()
	if err := sp2.Seek(pos); err != nil {
		t.Fatal(err)
	}
	var after []string
	waitFor(t, "the remaining 20 messages", 20*time.Second, func() bool {
		k, err := sp2.Read(ctx, buf)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range buf[:k] {
			after = append(after, string(m.Value))
		}
		return len(after) >= 20
	})
	if got := sorted(append(handed, after...)); !slices.Equal(got, want(0, 50)) {
		t.Fatalf("handed over %v then %v", handed, after)
	}
	if err := sp2.CommitPosition(ctx, sp2.Position()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "an empty queue", 10*time.Second, func() bool { return depth(t, conn, q) == 0 })
}

// TestOutage cuts the connection between a checkpointed job and the
// broker (a TCP proxy) mid-stream and restores it: the source logs the
// loss, reconnects, and with dedup the pipeline sees every message exactly
// once; every message ends acknowledged.
func TestOutage(t *testing.T) {
	conn := broker(t)
	q := queue(t, conn, "outage")
	p, err := faultproxy.Start("127.0.0.1:5672")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var lg logs
	url := "amqp://guest:guest@" + p.Addr() + "/"
	src, err := NewSource(SourceConfig{URL: url, Queue: q, Prefetch: 300, Dedup: true, Logger: slog.New(slog.NewTextHandler(&lg, nil))})
	if err != nil {
		t.Fatal(err)
	}
	const n = 3000
	publish(t, conn, q, 0, n/2)
	env := stream.New(stream.WithParallelism(1), stream.WithCheckpointing(t.TempDir(), 50*time.Millisecond))
	sink := stream.Collect(stream.Map(stream.FromSource(env, "rabbit", src, stream.WatermarkStrategy[connector.Message]{}), func(m connector.Message) string { return string(m.Value) }))
	job, err := env.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { job.Cancel(); _ = job.Wait() })
	waitFor(t, "some messages", 30*time.Second, func() bool { return sink.Len() > 200 })
	p.Cut()
	publish(t, conn, q, n/2, n/2)
	waitFor(t, "the loss to be logged", 30*time.Second, func() bool { return strings.Contains(lg.String(), "connection lost") })
	p.Restore()
	waitFor(t, "every message", 60*time.Second, func() bool { return sink.Len() >= n })
	waitFor(t, "an acknowledged queue", 30*time.Second, func() bool { return depth(t, conn, q) == 0 && len(src.splitPending()) == 0 })
	if got := sorted(sink.Values()); !slices.Equal(got, want(0, n)) {
		t.Fatalf("collected %d messages, want %d each once", len(got), n)
	}
	if !strings.Contains(lg.String(), "reconnected") || src.Meter().Reconnects.Load() == 0 {
		t.Fatalf("no reconnection logged:\n%s", lg.String())
	}
}

// TestSinkOutage cuts the sink's connection mid-stream: it reconnects,
// publishes again what was unconfirmed, and every message arrives (some
// maybe twice, with the same message-id).
func TestSinkOutage(t *testing.T) {
	conn := broker(t)
	q := queue(t, conn, "sinkout")
	p, err := faultproxy.Start("127.0.0.1:5672")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var lg logs
	sink, err := NewSink(SinkConfig{URL: "amqp://guest:guest@" + p.Addr() + "/", RoutingKey: q, Mandatory: true, Logger: slog.New(slog.NewTextHandler(&lg, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w, err := sink.Open(ctx, stream.SubtaskInfo{Operator: "sink", Index: 0, Parallelism: 1})
	if err != nil {
		t.Fatal(err)
	}
	batch := func(from int) []connector.Message {
		ms := make([]connector.Message, 100)
		for i := range ms {
			ms[i] = connector.Message{Value: []byte("m" + strconv.Itoa(from+i))}
		}
		return ms
	}
	for b := range 10 {
		if b == 5 {
			p.Cut()
			go func() {
				waitFor(t, "the loss to be logged", 30*time.Second, func() bool {
					return strings.Contains(lg.String(), "connection lost") || strings.Contains(lg.String(), "cannot connect")
				})
				p.Restore()
			}()
		}
		if err := w.Write(ctx, batch(b*100)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.(*writer).PreCommit(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got := drain(t, conn, q)
	seen := map[string]bool{}
	for _, g := range got {
		seen[g] = true
	}
	for _, m := range want(0, 1000) {
		if !seen[m] {
			t.Fatalf("message %s lost (%d received)", m, len(got))
		}
	}
}

// TestUnroutable: a mandatory message that no queue receives fails the
// writer with ErrUnroutable.
func TestUnroutable(t *testing.T) {
	broker(t)
	sink, err := NewSink(SinkConfig{URL: testURL, RoutingKey: fmt.Sprintf("no-such-queue-%d", time.Now().UnixNano()), Mandatory: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w, _ := sink.Open(ctx, stream.SubtaskInfo{Operator: "sink"})
	err = w.Write(ctx, []connector.Message{{Value: []byte("x")}})
	if err == nil {
		_, err = w.(*writer).PreCommit(ctx, 1)
	}
	if err == nil || !strings.Contains(err.Error(), "unroutable") {
		t.Fatalf("got %v, want ErrUnroutable", err)
	}
	_ = w.Close(ctx)
}

// TestSinkRejectsOverlongShortStrings: AMQP carries routing keys,
// message-ids and header names as short strings (at most 255 bytes). A
// message with a longer one (a routing key rendered from the data, a
// header from an upstream record) fails the write with an error that
// says so; the library's encoding failure used to close the connection,
// which the writer took for an outage: it reconnected and published the
// message again, forever, without backoff.
func TestSinkRejectsOverlongShortStrings(t *testing.T) {
	conn := broker(t)
	q := queue(t, conn, "longkey")
	long := strings.Repeat("k", 256)
	for _, tc := range []struct {
		name string
		msg  connector.Message
		want string
	}{
		{"routing key", connector.Message{Key: []byte(long), Value: []byte("x")}, "routing key"},
		{"header name", connector.Message{Value: []byte("x"), Headers: []connector.Header{{Key: long, Value: []byte("v")}}}, "header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, sink, w := openTestWriter(t, SinkConfig{URL: testURL, RoutingKey: q, Logger: quiet()})
			// A good message first, so that the writer is connected.
			if err := w.Write(ctx, []connector.Message{{Value: []byte("ok")}}); err != nil {
				t.Fatal(err)
			}
			err := w.Write(ctx, []connector.Message{tc.msg})
			if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("write: %v (context: %v); want an error naming the %s", err, ctx.Err(), tc.want)
			}
			if r := sink.Meter().Reconnects.Load(); r != 0 {
				t.Fatalf("%d reconnections: the bad message was taken for an outage", r)
			}
		})
	}
	t.Run("message-id prefix", func(t *testing.T) {
		sink, err := NewSink(SinkConfig{URL: testURL, RoutingKey: q, MessageIDPrefix: long})
		if err != nil {
			t.Fatal(err)
		}
		_, err = sink.Open(context.Background(), stream.SubtaskInfo{Operator: "sink"})
		if err == nil || !strings.Contains(err.Error(), "message-id") {
			t.Fatalf("Open: %v; want an error naming the message-id", err)
		}
	})
}

// openTestWriter opens a sink of cfg and its writer with a 20 s context,
// closed when the test ends.
func openTestWriter(t *testing.T, cfg SinkConfig) (context.Context, *Sink, stream.SinkWriter[connector.Message]) {
	t.Helper()
	sink, err := NewSink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	w, err := sink.Open(ctx, stream.SubtaskInfo{Operator: "sink"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close(ctx) })
	return ctx, sink, w
}

// TestSinkFailsWhenBrokerRefusesPublish: a publish the broker refuses by
// closing the channel (here an internal exchange, as for a user without
// write permission) fails the writer with the broker's reason. The
// writer used to take the closed channel for an outage: it reconnected
// and published the message again, forever, without backoff.
func TestSinkFailsWhenBrokerRefusesPublish(t *testing.T) {
	conn := broker(t)
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	ex := fmt.Sprintf("sluice-test-internal-%d", time.Now().UnixNano())
	if err := ch.ExchangeDeclare(ex, "fanout", false, true, true, false, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ch.ExchangeDelete(ex, false, false) })
	ctx, sink, w := openTestWriter(t, SinkConfig{URL: testURL, Exchange: ex, RoutingKey: "k", Logger: quiet()})
	err = w.Write(ctx, []connector.Message{{Value: []byte("x")}})
	if err == nil {
		_, err = w.(*writer).PreCommit(ctx, 1)
	}
	var ae *amqp.Error
	if err == nil || ctx.Err() != nil || !errors.As(err, &ae) || ae.Code != amqp.AccessRefused {
		t.Fatalf("got %v (context: %v); want the broker's access-refused at once", err, ctx.Err())
	}
	if r := sink.Meter().Reconnects.Load(); r > 1 {
		t.Fatalf("%d reconnections: the refusal was taken for an outage", r)
	}
}
