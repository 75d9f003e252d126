package cluster

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestAtLeastOnceFlushTimesOut: an at-least-once commit flushed the
// producer with no time limit, so an instance whose broker stopped
// answering produce requests waited silently forever. It now warns while
// it waits, stops with an error once cluster.delivery_timeout has passed,
// and commits no offset past the records whose writes were not
// acknowledged; an instance started again (the restart path) processes
// them.
func TestAtLeastOnceFlushTimesOut(t *testing.T) {
	c := oneBrokerCluster(t, "orders")
	ctx := context.Background()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("orders"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	adm := kadm.NewClient(cl)
	td, err := adm.ListTopics(ctx, "orders")
	if err != nil || td["orders"].Err != nil {
		t.Fatalf("listing orders: %v %v", err, td["orders"].Err)
	}
	ordersID := td["orders"].ID
	// While hold is set, every produce request but the test's own (to
	// orders) goes unanswered until release is closed.
	var hold atomic.Bool
	release := make(chan struct{})
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if !hold.Load() {
			return nil, nil, false
		}
		for _, rt := range req.(*kmsg.ProduceRequest).Topics {
			if rt.Topic != "orders" && rt.TopicID != ordersID {
				c.SleepControl(func() { <-release })
				break
			}
		}
		return nil, nil, false
	})
	produce := func(keys ...string) {
		for _, k := range keys {
			if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(k), Value: []byte("v")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	repart := RepartitionTopic("app", "count")
	// committed waits until the group has committed offset n of orders
	// and of the repartition topic, or Run ends.
	committed := func(n int64, done chan error) {
		t.Helper()
		for {
			offs, err := adm.FetchOffsets(ctx, "app")
			if err != nil && !errors.Is(err, kerr.GroupIDNotFound) { // not joined yet
				t.Fatal(err)
			}
			a, _ := offs.Lookup("orders", 0)
			b, _ := offs.Lookup(repart, 0)
			if err == nil && a.At == n && b.At >= n {
				return
			}
			select {
			case err := <-done:
				done <- err // for the deferred wait
				t.Fatalf("Run returned %v before committing offset %d", err, n)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	var logs syncBuffer
	cfg := Config{Brokers: c.ListenAddrs(), ApplicationID: "app", InstanceID: "a",
		CommitInterval: 20 * time.Millisecond, SessionTimeout: 6 * time.Second, DeliveryTimeout: 500 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	topo := countTopology(func(int32) Task { return nopTask{} })
	start := func(ctx context.Context) chan error {
		in, err := New(ctx, cfg, topo)
		if err != nil {
			t.Fatal(err)
		}
		in.flushLogEvery = 20 * time.Millisecond
		done := make(chan error, 1)
		go func() { done <- in.Run(ctx) }()
		return done
	}

	produce("a")
	done := start(ctx)
	committed(1, done)
	hold.Store(true)
	produce("b", "c")
	err = <-done
	if err == nil || !strings.Contains(err.Error(), "did not acknowledge") || !strings.Contains(err.Error(), "cluster.delivery_timeout") {
		t.Fatalf("Run: %v, want the error that the brokers did not acknowledge the writes within cluster.delivery_timeout", err)
	}
	if !strings.Contains(logs.String(), "waiting for the Kafka brokers to acknowledge") {
		t.Fatalf("no warning logged while the commit waited; logs:\n%s", logs.String())
	}
	offs, err := adm.FetchOffsets(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := offs.Lookup("orders", 0); o.At != 1 {
		t.Fatalf("committed offset of orders is %d after the writes of the records from offset 1 failed, want 1", o.At)
	}

	// The broker answers again; the instance restarts and processes b
	// and c (at least once).
	hold.Store(false)
	close(release)
	ctx2, cancel := context.WithCancel(ctx)
	done = start(ctx2)
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run after the restart: %v", err)
		}
	}()
	committed(3, done)
	rd, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(repart), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	seen := map[string]bool{}
	for !seen["b"] || !seen["c"] {
		fs := rd.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Key)] = true })
	}
}
