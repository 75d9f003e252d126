package latbench

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/kafka/kbench"
)

// The relay copies every record, key, value and header, into the same
// partition of the output topic, in order, and ends without an error when
// its context is cancelled.
func TestRunRelayCopiesPartitionForPartition(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := kbench.StartServer(kbench.ServerConfig{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, topic := range []string{"relay-in", "relay-out"} {
		if err := kbench.CreateTopic(ctx, srv.Addr, kbench.Config{Topic: topic, Partitions: 3}); err != nil {
			t.Fatal(err)
		}
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(srv.Addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	const n = 300
	want := make(map[int32][]string)
	for i := range n {
		p := int32(i * 7 % 3)
		v := fmt.Sprintf("v%03d", i)
		r := &kgo.Record{Topic: "relay-in", Partition: p, Key: []byte(fmt.Sprint(i % 5)), Value: []byte(v),
			Headers: []kgo.RecordHeader{{Key: "h", Value: []byte(v)}}}
		if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		want[p] = append(want[p], v)
	}

	rctx, rcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- RunRelay(rctx, RelayConfig{Broker: srv.Addr, From: "relay-in", To: "relay-out"}) }()

	cons, err := kgo.NewClient(kgo.SeedBrokers(srv.Addr), kgo.ConsumeTopics("relay-out"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	got := make(map[int32][]string)
	for seen := 0; seen < n; {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("after %d records: %v", seen, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			seen++
			if len(r.Headers) != 1 || string(r.Headers[0].Value) != string(r.Value) {
				t.Errorf("record %s: headers %v", r.Value, r.Headers)
			}
			var i int
			if _, err := fmt.Sscanf(string(r.Value), "v%d", &i); err != nil || string(r.Key) != fmt.Sprint(i%5) {
				t.Errorf("record %s: key %q", r.Value, r.Key)
			}
			got[r.Partition] = append(got[r.Partition], string(r.Value))
		})
	}
	rcancel()
	if err := <-done; err != nil {
		t.Fatalf("relay ended with %v after its context was cancelled", err)
	}
	for p := int32(0); p < 3; p++ {
		if fmt.Sprint(got[p]) != fmt.Sprint(want[p]) {
			t.Errorf("partition %d: got %v, want %v", p, got[p], want[p])
		}
	}
}

func TestRunRelayRefusesBadConfig(t *testing.T) {
	for _, cfg := range []RelayConfig{
		{From: "a", To: "b"},
		{Broker: "127.0.0.1:1", To: "b"},
		{Broker: "127.0.0.1:1", From: "a", To: "a"},
	} {
		if err := RunRelay(context.Background(), cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}

// relayEnd reports a cancellation from outside as a clean end and any
// other cause (the first failed produce) as the relay's error.
func TestRelayEnd(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(nil)
	if err := relayEnd(ctx); err != nil {
		t.Fatalf("cancelled: %v", err)
	}
	boom := errors.New("boom")
	ctx, cancel = context.WithCancelCause(context.Background())
	cancel(boom)
	if err := relayEnd(ctx); !errors.Is(err, boom) {
		t.Fatalf("failed: %v", err)
	}
}
