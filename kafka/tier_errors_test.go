package kafka_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/objstore"
	"github.com/sluicehq/sluice/record"
	"github.com/sluicehq/sluice/tier"
)

// TestRemoteStoreFailureIsRetriable: a Fetch or ListOffsets of the remote
// range while the object store fails (down, 5xx, unreachable) answers
// KAFKA_STORAGE_ERROR, which clients retry, not UNKNOWN_SERVER_ERROR; and
// the same read succeeds once the store is back.
func TestRemoteStoreFailureIsRetriable(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	f := objstore.NewFaulty(objstore.NewMem())
	tr, err := tier.Open(tier.Options{Store: f, Log: s.Log, Logger: slog.New(slog.DiscardHandler), ChunkBytes: 4096,
		UploadInterval: time.Hour, RetryMin: time.Millisecond, RetryMax: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	cfg := logstore.TopicConfig{Partitions: 1}
	for k, v := range map[string]string{"remote.storage.enable": "true", "segment.bytes": "4096", "local.retention.bytes": "4096"} {
		if err := cfg.SetConfig(k, &v); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Log.CreateTopic("tiered", cfg); err != nil {
		t.Fatal(err)
	}
	tp, _ := s.Log.Topic("tiered")
	p, _ := tp.Partition(0)
	for i := 0; i < 300; i += 5 {
		var recs []record.Record
		for j := i; j < i+5; j++ {
			recs = append(recs, record.Record{Timestamp: int64(1_700_000_000_000 + j), Value: fmt.Appendf(nil, "value-%04d-%060d", j, j)})
		}
		if _, err := p.AppendRecords(context.Background(), recs); err != nil {
			t.Fatal(err)
		}
	}
	if err := tr.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := s.Log.EnforceRetention(time.Now()); err != nil {
		t.Fatal(err)
	}
	if p.LocalLogStart() == 0 {
		t.Fatal("nothing only remote: the test needs offset 0 in the remote tier")
	}
	cl := s.Client(t)
	f.SetDown(true)
	if err := fetchErr(t, cl, "tiered", 0); err != kerr.KafkaStorageError {
		t.Fatalf("fetch of the remote range with the store down: %v, want KAFKA_STORAGE_ERROR (retriable)", err)
	}
	lo := kmsg.NewPtrListOffsetsRequest()
	lo.ReplicaID = -1
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "tiered"
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Partition, lp.Timestamp, lp.CurrentLeaderEpoch = 0, 1_700_000_000_010, -1
	lt.Partitions = append(lt.Partitions, lp)
	lo.Topics = append(lo.Topics, lt)
	resp, err := lo.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode); err != kerr.KafkaStorageError {
		t.Fatalf("ListOffsets by time in the remote range with the store down: %v, want KAFKA_STORAGE_ERROR (retriable)", err)
	}
	if !kerr.IsRetriable(kerr.KafkaStorageError) {
		t.Fatal("KAFKA_STORAGE_ERROR is not retriable for this client")
	}
	f.SetDown(false)
	if err := fetchErr(t, cl, "tiered", 0); err != nil {
		t.Fatalf("fetch with the store back: %v", err)
	}
}
