package kafka_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/sluicehq/sluice/kafka"
	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/sluicehq/sluice/logstore"
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

// TestFetchMaxBytesCappedByServer: a fetch asking for up to 2 GiB per
// partition and in all is held to the server's FetchMaxBytes (Kafka's
// fetch.max.bytes), besides the first batch, so that one client cannot
// make the broker read a whole segment, 128 MiB by default, into memory
// per request (and the same partition named many times, more).
func TestFetchMaxBytesCappedByServer(t *testing.T) {
	cfg := kafka.DefaultConfig()
	cfg.FetchMaxBytes = 64 << 10
	s := kafkatest.Start(t, kafkatest.Options{Config: &cfg, Fsync: logstore.FsyncPolicy{Mode: logstore.FsyncNever}})
	createTopic(t, s, "big", 1)
	cl := s.Client(t, kgo.DefaultProduceTopic("big"), kgo.ProducerLinger(0), kgo.ProducerBatchCompression(kgo.NoCompression()))
	ctx := testCtx(t)
	value := make([]byte, 8<<10)
	for range 64 { // 64 batches of 8 KiB: 512 KiB
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	req := fetchReq("big", 0, 1, math.MaxInt32, math.MaxInt32, 0, 0, 0, 0)
	for i := range req.Topics[0].Partitions {
		req.Topics[0].Partitions[i].Partition = 0 // the same partition, four times
	}
	resp, err := req.RequestWith(ctx, s.Client(t))
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, p := range resp.Topics[0].Partitions {
		if p.ErrorCode != 0 {
			t.Fatalf("error %d", p.ErrorCode)
		}
		total += len(p.RecordBatches)
	}
	if total == 0 || total > int(cfg.FetchMaxBytes)+9<<10 {
		t.Fatalf("fetch answered %d bytes of records, want some and at most the server's %d (and one batch)", total, cfg.FetchMaxBytes)
	}
}
