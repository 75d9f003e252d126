package pipeline

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/sluicehq/sluice/cluster"
	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/sluicehq/sluice/logstore"
)

// TestProtobufCluster runs a protobuf pipeline in cluster mode over
// Sluice's Kafka server: protobuf orders in, a window across a
// repartition topic, protobuf totals out, read back with the official
// library; the result is exact (exactly-once).
func TestProtobufCluster(t *testing.T) {
	srv := kafkatest.Start(t, kafkatest.Options{Fsync: logstore.FsyncPolicy{Mode: logstore.FsyncNever}})
	cl := srv.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), 2, 1, nil, "pb-orders"); err != nil {
		t.Fatal(err)
	}
	v2, _ := protoMessage(t, "order_v2.proto", "shop.Order")
	orders := makeOrders(1000, false)
	var recs []*kgo.Record
	for i, o := range orders {
		o.qty = int32(i%4 + 1)
		orders[i] = o
		recs = append(recs, &kgo.Record{Topic: "pb-orders", Partition: int32(i % 2), Value: encodeOrder(t, v2, o)})
	}
	// One far-future order per partition pushes the watermarks past every
	// window.
	for p := range int32(2) {
		end := testOrder{user: "end", cents: 1, created: orders[0].created + 10_000_000, paid: true}
		recs = append(recs, &kgo.Record{Topic: "pb-orders", Partition: p, Value: encodeOrder(t, v2, end)})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cfg, topo := clusterTopology(t, ctx, "pb.yaml", fmt.Appendf(nil, `
name: pbtotals
cluster: {brokers: [%q], application_id: pbtotals, commit_interval: 100ms, session_timeout: 6s}
source:
  kafka: {topic: pb-orders}
  format: protobuf
  schema: {file: %s, message: shop.Order}
  event_time: {field: created, max_out_of_orderness: 1s}
steps:
  - filter: status == "PAID"
  - window: {key: [user], tumbling: 1m, aggregate: {orders: count(), cents: sum(amount_cents), items: sum(qty)}}
sink:
  kafka: {topic: pb-totals, key: user}
  format: protobuf
  schema: {file: %s, message: shop.UserTotals}
delivery: exactly_once
`, srv.Addr, protoTestdata(t, "order_v2.proto"), protoTestdata(t, "totals.proto")), "a")
	inst, err := cluster.New(ctx, cfg, topo)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- inst.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("instance: %v", err)
		}
	}()

	want := expectTotals(orders)
	md, _ := protoMessage(t, "totals.proto", "shop.UserTotals")
	rd, err := kgo.NewClient(kgo.SeedBrokers(srv.Addr), kgo.ConsumeTopics("pb-totals"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	got := map[totalsKey]totals{}
	deadline := time.Now().Add(60 * time.Second)
	for len(got) < len(want) && time.Now().Before(deadline) {
		pctx, pcancel := context.WithTimeout(context.Background(), time.Second)
		fs := rd.PollFetches(pctx)
		pcancel()
		fs.EachRecord(func(r *kgo.Record) {
			m := dynamicpb.NewMessage(md)
			if err := proto.Unmarshal(r.Value, m); err != nil {
				t.Errorf("the library cannot read an output record: %v", err)
				return
			}
			f := md.Fields().ByName
			user := m.Get(f("user")).String()
			if user == "end" {
				return
			}
			ts := m.Get(f("window_start")).Message()
			secs := ts.Get(ts.Descriptor().Fields().ByName("seconds")).Int()
			got[totalsKey{user, secs * 1000}] = totals{m.Get(f("orders")).Int(), m.Get(f("cents")).Int(), m.Get(f("items")).Int()}
		})
	}
	compareTotals(t, got, want)
}
