package kafka_test

import (
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/sluicehq/sluice/internal/recordbomb"
	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/sluicehq/sluice/record"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// misnumbered returns a batch of two records whose second has offset
// delta 5, with a correct CRC: a client's encoding bug, not damage in
// transit.
func misnumbered(t *testing.T) []byte {
	t.Helper()
	b, err := record.AppendBatch(nil, []record.Record{{Value: []byte("a"), Timestamp: 1}, {Value: []byte("b"), Timestamp: 1}}, record.BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	first, n := binary.Varint(b[record.HeaderSize:])
	second := record.HeaderSize + n + int(first)
	_, n = binary.Varint(b[second:])
	// length, attributes, timestamp delta (one byte: 0), offset delta
	b[second+n+2] = byte(binary.AppendVarint(nil, 5)[0])
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// TestProduceRefusesMalformedRecords: a batch whose CRC is right but
// whose records are not what its header says is refused with
// INVALID_RECORD naming the record (CORRUPT_MESSAGE before Produce v8),
// as Kafka's log validator refuses it, and nothing of it is stored.
// Before, it was stored as received and every consumer of the partition
// met it.
func TestProduceRefusesMalformedRecords(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	ctx := testCtx(t)
	const topic = "malformed"
	createTopic(t, s, topic, 1)
	cl := s.Client(t, kgo.DefaultProduceTopic(topic))
	bad := misnumbered(t)
	if _, err := record.Verify(bad); err != nil {
		t.Fatalf("the test batch: %v", err)
	}
	answer := func(version int16) kmsg.ProduceResponseTopicPartition {
		return dialRaw(t, s.Addr).request(produceReq(topic, bad, version)).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	}
	r := answer(9)
	if r.ErrorCode != kerr.InvalidRecord.Code {
		t.Fatalf("misnumbered records: %v, want INVALID_RECORD", kerr.ErrorForCode(r.ErrorCode))
	}
	if len(r.ErrorRecords) != 1 || r.ErrorRecords[0].RelativeOffset != 1 {
		t.Fatalf("record errors %+v, want record 1", r.ErrorRecords)
	}
	if c := answer(7).ErrorCode; c != kerr.CorruptMessage.Code {
		t.Fatalf("Produce v7: %v, want CORRUPT_MESSAGE", kerr.ErrorForCode(c))
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("good")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	recs := consumeN(t, s, topic, 1)
	if string(recs[0].Value) != "good" || recs[0].Offset != 0 {
		t.Fatalf("read %q at offset %d, want only the good record", recs[0].Value, recs[0].Offset)
	}
}

// TestProduceRefusesDecompressionBombUnderDelete: a compressed batch is
// decompressed to have its records checked under every cleanup policy, so
// one that inflates beyond record.MaxDecompressed is refused with
// MESSAGE_TOO_LARGE (before, only compacted topics decompressed, and this
// one was stored).
func TestProduceRefusesDecompressionBombUnderDelete(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	const topic = "delete-bomb"
	createTopic(t, s, topic, 1)
	r := dialRaw(t, s.Addr).request(produceReq(topic, recordbomb.Batch(0, 256<<20), 9)).(*kmsg.ProduceResponse)
	if c := r.Topics[0].Partitions[0].ErrorCode; c != kerr.MessageTooLarge.Code {
		t.Fatalf("bomb: %v, want MESSAGE_TOO_LARGE", kerr.ErrorForCode(c))
	}
}
