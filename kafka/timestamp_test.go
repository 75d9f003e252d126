package kafka_test

import (
	"errors"
	"testing"
	"time"

	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/sluicehq/sluice/record"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestProduceTimestampBounds: a CreateTime topic with
// message.timestamp.before.max.ms / message.timestamp.after.max.ms
// (KIP-937) refuses a batch holding a record stamped further in the past
// or the future with INVALID_TIMESTAMP, as Kafka does, and stores
// nothing of it; records within the bounds, and records without a
// timestamp (-1), are stored. Before, the configs were unknown: the
// bounds could not be set and any timestamp was stored.
func TestProduceTimestampBounds(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	ctx := testCtx(t)
	adm := kadm.NewClient(s.Client(t))
	const topic = "bounded-ts"
	hour := "3600000"
	resp, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"message.timestamp.before.max.ms": &hour, "message.timestamp.after.max.ms": &hour}, topic)
	if err != nil || resp.Err != nil {
		t.Fatalf("create: %v %v", err, resp.Err)
	}
	for _, name := range []string{"message.timestamp.before.max.ms", "message.timestamp.after.max.ms"} {
		if v, def := describedConfig(t, adm, topic, name); v != hour || def {
			t.Fatalf("%s = %q (default %v), want %s set on the topic", name, v, def, hour)
		}
	}
	cl := s.Client(t, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0), kgo.RecordRetries(1))
	now := time.Now()
	for _, tc := range []struct {
		name string
		ts   time.Time
		ok   bool
	}{
		{"now", now, true},
		{"two hours ago", now.Add(-2 * time.Hour), false},
		{"in two hours", now.Add(2 * time.Hour), false},
		{"half an hour ago", now.Add(-30 * time.Minute), true},
		{"no timestamp", time.UnixMilli(-1), true},
	} {
		err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(tc.name), Timestamp: tc.ts}).FirstErr()
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case !tc.ok && !errors.Is(err, kerr.InvalidTimestamp):
			t.Errorf("%s: %v, want INVALID_TIMESTAMP", tc.name, err)
		}
	}
	recs := consumeN(t, s, topic, 3)
	for i, want := range []string{"now", "half an hour ago", "no timestamp"} {
		if string(recs[i].Value) != want {
			t.Fatalf("record %d is %q, want %q", i, recs[i].Value, want)
		}
	}
	// The default is no bound (Kafka's before 4.0): any timestamp goes.
	createTopic(t, s, "unbounded-ts", 1)
	if v, def := describedConfig(t, adm, "unbounded-ts", "message.timestamp.after.max.ms"); v != "9223372036854775807" || !def {
		t.Fatalf("default after.max.ms %q (default %v)", v, def)
	}
	free := s.Client(t, kgo.DefaultProduceTopic("unbounded-ts"))
	if err := free.ProduceSync(ctx, &kgo.Record{Value: []byte("old"), Timestamp: time.UnixMilli(1)}).FirstErr(); err != nil {
		t.Fatalf("an old timestamp on a topic without bounds: %v", err)
	}
}

// TestLogAppendTimeOverProtocol: on a LogAppendTime topic the broker
// stamps the batch: franz-go reads every record with the append time
// (not the producer's) and the LogAppendTime timestamp type; the bounds of KIP-937 do not apply
// (the producer's timestamps are replaced), as in Kafka.
func TestLogAppendTimeOverProtocol(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	ctx := testCtx(t)
	adm := kadm.NewClient(s.Client(t))
	const topic = "lat"
	lat, zero := "LogAppendTime", "0"
	resp, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"message.timestamp.type": &lat, "message.timestamp.before.max.ms": &zero}, topic)
	if err != nil || resp.Err != nil {
		t.Fatalf("create: %v %v", err, resp.Err)
	}
	cl := s.Client(t, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0))
	before := time.Now().UnixMilli()
	rs := []*kgo.Record{{Value: []byte("a"), Timestamp: time.UnixMilli(1000)}, {Value: []byte("b"), Timestamp: time.UnixMilli(5000)}}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	after := time.Now().UnixMilli()
	recs := consumeN(t, s, topic, 2)
	stamped := recs[0].Timestamp.UnixMilli()
	if stamped < before || stamped > after {
		t.Fatalf("record timestamp %d, want the append time in [%d, %d]", stamped, before, after)
	}
	for _, r := range recs {
		if r.Timestamp.UnixMilli() != stamped || r.Attrs.TimestampType() != 1 {
			t.Fatalf("record %q: timestamp %d type %d, want %d and LogAppendTime (1)", r.Value, r.Timestamp.UnixMilli(), r.Attrs.TimestampType(), stamped)
		}
	}
	// The Produce answer carries the append time (franz-go does not
	// surface it: a raw request).
	batch, err := record.AppendBatch(nil, []record.Record{{Value: []byte("c"), Timestamp: 1}}, record.BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	before = time.Now().UnixMilli()
	ans := dialRaw(t, s.Addr).request(produceReq(topic, batch, 9)).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	after = time.Now().UnixMilli()
	if ans.ErrorCode != 0 || ans.LogAppendTime < before || ans.LogAppendTime > after {
		t.Fatalf("produce answer: error %d, log append time %d, want it in [%d, %d]", ans.ErrorCode, ans.LogAppendTime, before, after)
	}
}
