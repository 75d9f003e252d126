package kafka_test

import (
	"testing"
	"time"

	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestTransactionStateCompactedAcrossRestart: __transaction_state is
// compacted, and a coordinator that replays the compacted topic after a
// restart knows every transactional id as before: state, producer id and
// epoch, and a producer goes on with the next epoch.
func TestTransactionStateCompactedAcrossRestart(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	ctx := testCtx(t)
	const topic = "txn-compact"
	createTopic(t, s, topic, 1)
	ids := []string{"tx-a", "tx-b"}
	for _, id := range ids {
		cl := s.Client(t, kgo.TransactionalID(id), kgo.DefaultProduceTopic(topic), kgo.TransactionTimeout(time.Minute))
		for i := range 6 {
			if err := cl.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(id), Value: []byte{byte(i)}}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			end := kgo.TryCommit
			if (i+len(id))%2 == 0 {
				end = kgo.TryAbort
			}
			if err := cl.EndTransaction(ctx, end); err != nil {
				t.Fatal(err)
			}
		}
		cl.Close()
	}
	describe := func(s *kafkatest.Server) kadm.DescribedTransactions {
		t.Helper()
		d, err := kadm.NewClient(s.Client(t)).DescribeTransactions(ctx, ids...)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			if d[id].Err != nil {
				t.Fatalf("describe %s: %v", id, d[id].Err)
			}
		}
		return d
	}
	before := describe(s)

	st, err := s.Log.Topic("__transaction_state")
	if err != nil {
		t.Fatal(err)
	}
	if !st.Cleanup().Compact() {
		t.Fatalf("__transaction_state has cleanup policy %v, want compact", st.Cleanup())
	}
	p, err := st.Partition(0)
	if err != nil {
		t.Fatal(err)
	}
	rollAndCompact(t, s, p, time.Now().Add(8*24*time.Hour)) // past segment.ms and delete.retention.ms
	if cs := p.CleanerStats(); cs.RecordsRemoved == 0 {
		t.Fatalf("compacting __transaction_state removed nothing: %+v", cs)
	}

	s = s.Restart(t)
	after := describe(s)
	for _, id := range ids {
		b, a := before[id], after[id]
		if a.State != b.State || a.ProducerID != b.ProducerID || a.ProducerEpoch != b.ProducerEpoch {
			t.Fatalf("%s after compaction and restart: %s pid %d epoch %d, before %s pid %d epoch %d",
				id, a.State, a.ProducerID, a.ProducerEpoch, b.State, b.ProducerID, b.ProducerEpoch)
		}
	}
	cl := s.Client(t, kgo.TransactionalID("tx-a"), kgo.DefaultProduceTopic(topic), kgo.TransactionTimeout(time.Minute))
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("tx-a"), Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if d := describe(s)["tx-a"]; d.ProducerID != before["tx-a"].ProducerID || d.ProducerEpoch <= before["tx-a"].ProducerEpoch || d.State != "CompleteCommit" {
		t.Fatalf("tx-a's next transaction after the restart: %+v (before: pid %d epoch %d)", d, before["tx-a"].ProducerID, before["tx-a"].ProducerEpoch)
	}
}
