package kafka_test

import (
	"encoding/binary"
	"testing"

	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/sluicehq/sluice/record"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestRequestSeesEarlierProduceOnItsConnection: an acks=0 produce followed,
// on the same connection and without waiting, by ListOffsets(latest): as
// on Kafka, which handles a connection's requests one after the other, the
// ListOffsets sees the record (produce requests are pipelined, but any
// other request waits for the answers before it).
func TestRequestSeesEarlierProduceOnItsConnection(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	createTopic(t, s, "seen", 1)
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("order"))
	r := dialRaw(t, s.Addr)
	for round := range 50 {
		batch, err := record.AppendBatch(nil, []record.Record{{Value: []byte("v"), Timestamp: 1}}, record.BatchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		produce := produceReq("seen", batch, 7)
		produce.Acks = 0
		lo := kmsg.NewPtrListOffsetsRequest()
		lo.SetVersion(4)
		lt := kmsg.NewListOffsetsRequestTopic()
		lt.Topic = "seen"
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Timestamp = -1 // latest
		lt.Partitions = append(lt.Partitions, lp)
		lo.Topics = append(lo.Topics, lt)
		wire := f.AppendRequest(nil, produce, 1)
		wire = append(wire, f.AppendRequest(nil, lo, 2)...)
		r.send(wire)
		body, err := r.readFrame()
		if err != nil {
			t.Fatal(err)
		}
		if c := int32(binary.BigEndian.Uint32(body)); c != 2 {
			t.Fatalf("answer to correlation id %d, want 2 (acks=0 gets none)", c)
		}
		resp := kmsg.NewPtrListOffsetsResponse()
		resp.SetVersion(4)
		if err := resp.ReadFrom(body[4:]); err != nil {
			t.Fatal(err)
		}
		if got, want := resp.Topics[0].Partitions[0].Offset, int64(round+1); got != want {
			t.Fatalf("round %d: latest offset %d, want %d: the ListOffsets did not see the produce sent before it", round, got, want)
		}
	}
}
