package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/sluicehq/sluice/record"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// txnFree reports whether transactional id id's entry is unlocked.
func (s *Server) txnFree(id string) func() bool {
	return func() bool {
		e := s.txns.entry(id)
		if e.mu.TryLock() {
			e.mu.Unlock()
			return true
		}
		return false
	}
}

// TestTransactionalProduceRacesEndTxn: EndTxn writes the transaction's
// markers while a produce of the transaction is between its check with the
// coordinator and its append (a client that sent EndTxn with a produce in
// flight). The serial orders are produce, commit (the record is committed)
// and commit, produce (INVALID_TXN_STATE); in neither does data land after
// the marker, where no marker would ever close it and read_committed
// readers would be stuck at its offset for good, as they were when the
// check did not hold the transaction until the append.
func TestTransactionalProduceRacesEndTxn(t *testing.T) {
	const topic, id = "race-endtxn", "race-tx"
	s := raceServer(t, map[string]int32{topic: 1})
	ctx := context.Background()
	now := time.Now()
	pid, epoch, terr := s.txns.InitProducerID(ctx, now, str(id), 60000, -1, -1)
	if terr != nil {
		t.Fatalf("init producer id: %v", terr)
	}
	if codes := s.txns.AddPartitions(ctx, now, id, pid, epoch, []tp{{topic, 0}}); codes[0] != 0 {
		t.Fatalf("add partition: %v", kerr.ErrorForCode(codes[0]))
	}
	batch, err := record.AppendBatch(nil, []record.Record{{Value: []byte("v"), Timestamp: 1}},
		record.BatchOptions{ProducerID: pid, ProducerEpoch: epoch, Idempotent: true, Transactional: true})
	if err != nil {
		t.Fatal(err)
	}
	var wait func()
	s.at("produce", func() {
		wait = interleave(s.txnFree(id), func() {
			if terr := s.txns.EndTxn(ctx, id, pid, epoch, true); terr != nil {
				t.Errorf("commit: %v", terr)
			}
		})
	})
	resp := s.handleProduce(ctx, &clientConn{}, txnProduceReq(topic, id, batch)).(*kmsg.ProduceResponse)
	if wait == nil {
		t.Fatal("the produce never reached its append")
	}
	wait()
	s.checked = nil
	part := resp.Topics[0].Partitions[0]
	switch part.ErrorCode {
	case 0:
		if part.BaseOffset != 0 {
			t.Errorf("record appended at offset %d, after its transaction's marker", part.BaseOffset)
		}
	case kerr.InvalidTxnState.Code:
	default:
		t.Fatalf("produce: %v", kerr.ErrorForCode(part.ErrorCode))
	}
	// A record after the transaction: read_committed readers must reach it.
	plain, err := record.AppendBatch(nil, []record.Record{{Value: []byte("after"), Timestamp: 1}}, record.BatchOptions{ProducerID: -1, BaseSequence: -1})
	if err != nil {
		t.Fatal(err)
	}
	if c := s.handleProduce(ctx, &clientConn{}, txnProduceReq(topic, "", plain)).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode; c != 0 {
		t.Fatalf("plain produce: %v", kerr.ErrorForCode(c))
	}
	tpc, err := s.log.Topic(topic)
	if err != nil {
		t.Fatal(err)
	}
	p, err := tpc.Partition(0)
	if err != nil {
		t.Fatal(err)
	}
	if _, hwm, lso := p.Offsets(); lso != hwm {
		t.Fatalf("last stable offset %d, high watermark %d: a transaction hangs", lso, hwm)
	}
}

// txnProduceReq is a produce request (v9, acks=-1) of batch to partition 0
// of topic, naming transactional id id ("": none).
func txnProduceReq(topic, id string, batch []byte) *kmsg.ProduceRequest {
	var txnID *string
	if id != "" {
		txnID = kmsg.StringPtr(id)
	}
	return &kmsg.ProduceRequest{Version: 9, Acks: -1, TimeoutMillis: 10000, TransactionID: txnID,
		Topics: []kmsg.ProduceRequestTopic{{Topic: topic, Partitions: []kmsg.ProduceRequestTopicPartition{{Records: batch}}}}}
}
