package cluster

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// nopTask is a task that does nothing (the topology only needs factories).
type nopTask struct{}

func (nopTask) Process(Output, *kgo.Record) error { return nil }
func (nopTask) Watermark(Output, int64) error     { return nil }
func (nopTask) Flush(Output) error                { return nil }
func (nopTask) Commit()                           {}
func (nopTask) Abort()                            {}
func (nopTask) Restore([]byte, []byte) error      { return nil }

// TestRepartitionTopicKeepsOldEventTimes: a repartition record carries
// its event time as its Kafka timestamp, and Kafka's time retention
// (7 days by default) goes by record timestamps: a backfill of older
// data, or a downstream task more than the retention behind, lost its
// repartitioned records before they were processed. Repartition topics
// are created without time retention (consumed records are purged
// instead, see purge.go), as Kafka Streams creates them.
func TestRepartitionTopicKeepsOldEventTimes(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	topo := &Topology{Source: "orders", MaxOutOfOrderness: -1, SubTopologies: []SubTopology{
		{Name: "source", NewTask: func(int32) Task { return nopTask{} }},
		{Name: "step1-window", Stateful: true, NewTask: func(int32) Task { return nopTask{} }},
	}}
	in, err := New(ctx, Config{Brokers: c.ListenAddrs(), ApplicationID: "app", InstanceID: "a",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, topo)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = in.close(false) }()

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rep := RepartitionTopic("app", "step1-window")
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC) // a backfill's event time
	for i := range 10 {
		r := &kgo.Record{Topic: rep, Partition: 0, Key: []byte{byte(i)}, Value: []byte("row"), Timestamp: old}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	c.ApplyRetention()
	starts, err := kadm.NewClient(cl).ListStartOffsets(ctx, rep)
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := starts.Lookup(rep, 0); o.Offset != 0 {
		t.Fatalf("time retention removed repartitioned records not processed yet: log start offset %d, want 0", o.Offset)
	}
}
