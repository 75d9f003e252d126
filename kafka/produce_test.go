package kafka_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/twmb/franz-go/pkg/kgo"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// consumeN reads n records from the start of topic.
func consumeN(t *testing.T, s *kafkatest.Server, topic string, n int, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	ctx := testCtx(t)
	cl := s.Client(t, append([]kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", len(out), n, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		out = append(out, fs.Records()...)
	}
	return out
}

func TestProduceConsumeEveryCodec(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	for name, codec := range codecs {
		t.Run(name, func(t *testing.T) {
			topic := "codec-" + name
			cl := s.Client(t, kgo.ProducerBatchCompression(codec), kgo.DefaultProduceTopic(topic))
			ctx := testCtx(t)
			const n = 500
			var recs []*kgo.Record
			for i := range n {
				recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprintf("k%d", i%7)), Value: []byte(fmt.Sprintf("value %d of codec %s, repeated repeated repeated", i, name)),
					Headers: []kgo.RecordHeader{{Key: "h", Value: []byte(name)}}})
			}
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatalf("produce: %v", err)
			}
			got := consumeN(t, s, topic, n)
			if len(got) != n {
				t.Fatalf("got %d records, want %d", len(got), n)
			}
			for i, r := range got {
				want := fmt.Sprintf("value %d of codec %s, repeated repeated repeated", i, name)
				if string(r.Value) != want || r.Offset != int64(i) || len(r.Headers) != 1 || string(r.Headers[0].Value) != name {
					t.Fatalf("record %d: offset %d value %q headers %v", i, r.Offset, r.Value, r.Headers)
				}
			}
		})
	}
}

func TestProduceAcks(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	for _, tc := range []struct {
		name string
		acks kgo.Acks
	}{{"acks=0", kgo.NoAck()}, {"acks=1", kgo.LeaderAck()}, {"acks=-1", kgo.AllISRAcks()}} {
		t.Run(tc.name, func(t *testing.T) {
			topic := "acks" + tc.name[len("acks="):]
			createTopicDefault(t, s, topic)
			cl := s.Client(t, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(tc.acks), kgo.DisableIdempotentWrite())
			var recs []*kgo.Record
			for i := range 50 {
				recs = append(recs, &kgo.Record{Value: []byte(fmt.Sprint(i))})
			}
			if err := cl.ProduceSync(testCtx(t), recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			// With acks=0 the client learns nothing; the records still arrive.
			got := readValues(t, s, topic, kgo.ReadUncommitted(), 50)
			for i, v := range got {
				if v != fmt.Sprint(i) {
					t.Fatalf("record %d: %q", i, v)
				}
			}
		})
	}
}

func createTopicDefault(t *testing.T, s *kafkatest.Server, topic string) { createTopic(t, s, topic, 1) }
