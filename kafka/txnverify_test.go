package kafka_test

import (
	"slices"
	"testing"

	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/sluicehq/sluice/record"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestProduceAfterEndTxnRefused: a transactional batch that reaches the
// partition after its transaction was committed (a retry arriving late,
// or a produce sent with EndTxn) is refused with INVALID_TXN_STATE, as
// Kafka's KIP-890 verification refuses it, instead of opening a
// transaction that no marker will close; read_committed consumers read
// past it. The race of the same produce with EndTxn is
// TestTransactionalProduceRacesEndTxn.
func TestProduceAfterEndTxnRefused(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	ctx := testCtx(t)
	const topic = "late-produce"
	createTopic(t, s, topic, 1)
	cl := s.Client(t, kgo.TransactionalID("late-tx"), kgo.DefaultProduceTopic(topic))
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	// The first produce right after AddPartitionsToTxn is accepted.
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	pid, epoch, err := cl.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	late, err := record.AppendBatch(nil, []record.Record{{Value: []byte("late"), Timestamp: 1}},
		record.BatchOptions{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: 1, Idempotent: true, Transactional: true})
	if err != nil {
		t.Fatal(err)
	}
	if r := sendBatch(t, cl, topic, kmsg.StringPtr("late-tx"), late); r.ErrorCode != kerr.InvalidTxnState.Code {
		t.Fatalf("produce after EndTxn: %v, want INVALID_TXN_STATE", kerr.ErrorForCode(r.ErrorCode))
	}
	plain := s.Client(t, kgo.DefaultProduceTopic(topic))
	if err := plain.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if got := readValues(t, s, topic, kgo.ReadCommitted(), 2); !slices.Equal(got, []string{"v", "after"}) {
		t.Fatalf("read_committed: %v", got)
	}
}
