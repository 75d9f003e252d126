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

// TestFailedAcks0ProduceClosesConnection: an acks=0 produce that fails
// gets no answer, so the broker closes the connection, as Kafka does: the
// client notices, refreshes its metadata and learns what is wrong (a
// deleted topic, a record too large) instead of sending into the void. A
// request sent after it on the connection gets no answer either.
func TestFailedAcks0ProduceClosesConnection(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	createTopic(t, s, "acks0", 1)
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("acks0"))
	batch, err := record.AppendBatch(nil, []record.Record{{Value: []byte("v"), Timestamp: 1}}, record.BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	meta := kmsg.NewPtrMetadataRequest()
	meta.SetVersion(4)
	for _, c := range []struct {
		topic string
		fails bool
	}{{"acks0", false}, {"acks0-missing", true}} {
		r := dialRaw(t, s.Addr)
		produce := produceReq(c.topic, batch, 7)
		produce.Acks = 0
		wire := f.AppendRequest(nil, produce, 1)
		wire = append(wire, f.AppendRequest(nil, meta, 2)...)
		r.send(wire)
		_, err := r.readFrame()
		if c.fails && err == nil {
			t.Fatalf("%s: the connection answered after a failed acks=0 produce", c.topic)
		}
		if !c.fails && err != nil {
			t.Fatalf("%s: %v", c.topic, err)
		}
	}
}
