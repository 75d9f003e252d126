package kafka_test

import (
	"fmt"
	"testing"

	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/sluicehq/sluice/record"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func fetchReq(topic string, maxWait, minBytes, maxBytes, partMax int32, offsets ...int64) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = maxWait, minBytes, maxBytes
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = topic
	for p, off := range offsets {
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes = int32(p), off, partMax
		ft.Partitions = append(ft.Partitions, fp)
	}
	req.Topics = append(req.Topics, ft)
	return req
}

func countBatches(b []byte) int {
	n := 0
	record.Batches(b, func(record.Header, []byte) error { n++; return nil })
	return n
}

func TestFetchLimitsAndLongPoll(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	createTopic(t, s, "f", 2)
	cl := s.Client(t, kgo.DefaultProduceTopic("f"), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	ctx := testCtx(t)
	for i := range 10 { // ten batches per partition
		for p := range int32(2) {
			if err := cl.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	raw := s.Client(t)

	t.Run("response max bytes: first batch only", func(t *testing.T) {
		resp, err := fetchReq("f", 0, 1, 1, 1<<20, 0, 0).RequestWith(ctx, raw)
		if err != nil {
			t.Fatal(err)
		}
		ps := resp.Topics[0].Partitions
		if countBatches(ps[0].RecordBatches) != 1 || countBatches(ps[1].RecordBatches) != 0 || ps[1].HighWatermark != 10 {
			t.Fatalf("batches %d and %d, hwm %d", countBatches(ps[0].RecordBatches), countBatches(ps[1].RecordBatches), ps[1].HighWatermark)
		}
	})
	t.Run("partition max bytes: one batch each", func(t *testing.T) {
		resp, err := fetchReq("f", 0, 1, 1<<20, 1, 0, 3).RequestWith(ctx, raw)
		if err != nil {
			t.Fatal(err)
		}
		ps := resp.Topics[0].Partitions
		if countBatches(ps[0].RecordBatches) != 1 || countBatches(ps[1].RecordBatches) != 1 {
			t.Fatalf("batches %d and %d", countBatches(ps[0].RecordBatches), countBatches(ps[1].RecordBatches))
		}
	})
	t.Run("everything", func(t *testing.T) {
		resp, err := fetchReq("f", 0, 1, 1<<20, 1<<20, 0, 0).RequestWith(ctx, raw)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range resp.Topics[0].Partitions {
			if n := countBatches(p.RecordBatches); n != 10 {
				t.Fatalf("partition %d: %d batches", p.Partition, n)
			}
		}
	})
	t.Run("min bytes not reached: answered at max wait with what there is", func(t *testing.T) {
		resp, err := fetchReq("f", 100, 1<<20, 1<<20, 1<<20, 9, 10).RequestWith(ctx, raw)
		if err != nil {
			t.Fatal(err)
		}
		ps := resp.Topics[0].Partitions
		if countBatches(ps[0].RecordBatches) != 1 || len(ps[1].RecordBatches) != 0 {
			t.Fatalf("batches %d and %d", countBatches(ps[0].RecordBatches), countBatches(ps[1].RecordBatches))
		}
	})
}
