package kafka_test

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/sluicehq/sluice/record"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestPipelinedRequestsAnsweredInOrder writes many produce requests, with
// Metadata and acks=0 produce requests among them, on one connection
// without waiting for any answer (the listener assigns each produce
// request's batches as it reads it and answers once they are durable).
// Every answer must come back in the order sent, the offsets must follow
// the order of the requests, and every record must be stored once.
func TestPipelinedRequestsAnsweredInOrder(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	createTopic(t, s, "pipe", 2)
	r := dialRaw(t, s.Addr)
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("pipe"))

	const n = 200
	type sent struct {
		corr      int32
		key       int16
		partition int32
		value     string
	}
	var order []sent
	var wire []byte
	corr := int32(0)
	for i := range n {
		corr++
		switch {
		case i%17 == 5:
			req := kmsg.NewPtrMetadataRequest()
			req.SetVersion(9)
			wire = append(wire, f.AppendRequest(nil, req, corr)...)
			order = append(order, sent{corr: corr, key: req.Key()})
		default:
			v := fmt.Sprintf("r%03d", i)
			batch, err := record.AppendBatch(nil, []record.Record{{Value: []byte(v), Timestamp: 1}}, record.BatchOptions{})
			if err != nil {
				t.Fatal(err)
			}
			req := produceReq("pipe", batch, 7)
			p := int32(i % 2)
			req.Topics[0].Partitions[0].Partition = p
			if i%13 == 7 {
				req.Acks = 0 // no answer: nothing to expect in the sequence
				wire = append(wire, f.AppendRequest(nil, req, corr)...)
				continue
			}
			wire = append(wire, f.AppendRequest(nil, req, corr)...)
			order = append(order, sent{corr: corr, key: req.Key(), partition: p, value: v})
		}
	}
	r.send(wire) // all at once

	next := map[int32]int64{}
	for _, want := range order {
		body, err := r.readFrame()
		if err != nil {
			t.Fatalf("reading the answer to %d: %v", want.corr, err)
		}
		if got := int32(binary.BigEndian.Uint32(body)); got != want.corr {
			t.Fatalf("answer for correlation id %d, want %d (out of order)", got, want.corr)
		}
		if want.key != 0 {
			continue
		}
		resp := kmsg.NewPtrProduceResponse()
		resp.SetVersion(7)
		if err := resp.ReadFrom(body[4:]); err != nil {
			t.Fatal(err)
		}
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != 0 {
			t.Fatalf("%s: error %d", want.value, p.ErrorCode)
		}
		// Offsets grow with the order of the requests (acks=0 requests
		// in between take offsets too, so only monotonicity is known).
		if p.BaseOffset < next[want.partition] {
			t.Fatalf("%s got offset %d after offset %d", want.value, p.BaseOffset, next[want.partition]-1)
		}
		next[want.partition] = p.BaseOffset + 1
	}

	// Everything sent is stored once, in the order sent per partition.
	cl := s.Client(t, kgo.ConsumeTopics("pipe"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	want := 0
	for i := range n {
		if i%17 != 5 {
			want++
		}
	}
	var got [2][]string
	total := 0
	for total < want {
		fs := cl.PollFetches(testCtx(t))
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(rec *kgo.Record) {
			got[rec.Partition] = append(got[rec.Partition], string(rec.Value))
			total++
		})
	}
	for p := range got {
		for i := 1; i < len(got[p]); i++ {
			if got[p][i] <= got[p][i-1] {
				t.Fatalf("partition %d: %s stored after %s", p, got[p][i], got[p][i-1])
			}
		}
	}
	if total != want {
		t.Fatalf("%d records stored, want %d", total, want)
	}
}
