package kafka_test

import (
	"encoding/binary"
	"hash/crc32"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/record"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestFetchEmptyRecordsAreNotNull: a partition with nothing to return (at the
// high watermark, or with an error) must carry an empty record set, not a
// null one. librdkafka rejects a null record set in non-flexible Fetch
// versions ("invalid MessageSetSize -1"), so kcat -e could never see the end.
func TestFetchEmptyRecordsAreNotNull(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	createTopic(t, s, "empty", 1)
	raw := s.Client(t)
	ctx := testCtx(t)
	req := fetchReq("empty", 0, 0, 1<<20, 1<<20, 0)
	unknown := kmsg.NewFetchRequestTopic()
	unknown.Topic = "no-such-topic"
	up := kmsg.NewFetchRequestTopicPartition()
	unknown.Partitions = append(unknown.Partitions, up)
	req.Topics = append(req.Topics, unknown)
	req.Version = 11
	resp, err := req.RequestWith(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range resp.Topics {
		for _, p := range rt.Partitions {
			if p.RecordBatches == nil {
				t.Fatalf("topic %s partition %d: null record set", rt.Topic, p.Partition)
			}
		}
	}
	// And on the wire: the v11 encoding's records length is 0, not -1.
	resp.Version = 11
	b := resp.AppendTo(nil)
	if n := int32(binary.BigEndian.Uint32(b[len(b)-4:])); n != 0 {
		t.Fatalf("last partition's records length on the wire is %d, want 0", n)
	}
}

// TestKcatExitAtEnd: kcat -e (no -c) returns once it reaches the end.
func TestKcatExitAtEnd(t *testing.T) {
	kcat := needKcat(t)
	s := kafkatest.Start(t, kafkatest.Options{})
	createTopic(t, s, "eof", 2)
	cl := s.Client(t, kgo.DefaultProduceTopic("eof"))
	if err := cl.ProduceSync(testCtx(t), &kgo.Record{Value: []byte("one")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	out := run(t, "", kcat, "-b", s.Addr, "-C", "-t", "eof", "-o", "beginning", "-e", "-f", "%s\n")
	if strings.TrimSpace(out) != "one" {
		t.Fatalf("kcat -e printed %q", out)
	}
}

// TestProduceRejectsInconsistentRecordCount: a batch whose record count does
// not match its offset range (or that has no records) is refused with
// INVALID_RECORD, as Kafka does, instead of consuming offsets that hold no
// records or skipping offsets.
func TestProduceRejectsInconsistentRecordCount(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	createTopic(t, s, "cnt", 1)
	raw := s.Client(t)
	ctx := testCtx(t)
	for _, tc := range []struct {
		name              string
		numRecords, delta int32
	}{
		{"no records", 0, 0},
		{"delta beyond count", 1, 1000},
		{"count beyond delta", 3, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := record.AppendBatch(nil, []record.Record{{Value: []byte("v"), Timestamp: 1}}, record.BatchOptions{})
			if err != nil {
				t.Fatal(err)
			}
			binary.BigEndian.PutUint32(b[23:], uint32(tc.delta))
			binary.BigEndian.PutUint32(b[57:], uint32(tc.numRecords))
			binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
			resp, err := produceReq("cnt", b, 7).RequestWith(ctx, raw)
			if err != nil {
				t.Fatal(err)
			}
			if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.InvalidRecord.Code {
				t.Fatalf("error code %d, want INVALID_RECORD", code)
			}
		})
	}
}
