package kafka_test

import (
	"context"
	"testing"

	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestTxnOffsetsOfDeletedTopicDropped: offsets recorded in a transaction
// (TxnOffsetCommit) for a topic deleted before the transaction commits are
// not written when it commits, as Kafka drops pending transactional
// offsets of deleted partitions; otherwise the topic created again under
// the same name would resume the group at the old topic's offset. The
// transaction's other offsets are written.
func TestTxnOffsetsOfDeletedTopicDropped(t *testing.T) { txnOffsetsOfDeletedTopic(t, false) }

// TestTxnOffsetsOfRecreatedTopicDropped: the same when the topic is created
// again under its name before the transaction commits: the offsets were
// the deleted topic's (its topic id), and the new topic's group must not
// resume at them.
func TestTxnOffsetsOfRecreatedTopicDropped(t *testing.T) { txnOffsetsOfDeletedTopic(t, true) }

func txnOffsetsOfDeletedTopic(t *testing.T, recreate bool) {
	s := kafkatest.Start(t, kafkatest.Options{})
	ctx := testCtx(t)
	const gone, kept, out, group, txnID = "txd-gone", "txd-kept", "txd-out", "txd-group", "txd-txn"
	createTopic(t, s, gone, 1)
	createTopic(t, s, kept, 1)
	createTopic(t, s, out, 1)
	cl := s.Client(t, kgo.TransactionalID(txnID), kgo.DefaultProduceTopic(out))
	pid, epoch := beginTxnWithGroup(ctx, t, cl, txnID, group)
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group, req.Generation = txnID, pid, epoch, group, -1
	for _, topic := range []string{gone, kept} {
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch = 0, 5, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
	}
	r, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range r.Topics {
		if c := rt.Partitions[0].ErrorCode; c != 0 {
			t.Fatalf("txn offset commit of %s: %v", rt.Topic, kerr.ErrorForCode(c))
		}
	}
	adm := kadm.NewClient(s.Client(t))
	if _, err := adm.DeleteTopic(ctx, gone); err != nil {
		t.Fatal(err)
	}
	if recreate {
		createTopic(t, s, gone, 1)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	f, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := f.Lookup(gone, 0); ok && o.At >= 0 {
		t.Errorf("the deleted topic's offset was committed: %d", o.At)
	}
	if o, ok := f.Lookup(kept, 0); !ok || o.At != 5 {
		t.Errorf("the kept topic's offset: %+v %v", o, ok)
	}
}

// TestTxnEndsAfterTopicRecreatedSmaller: a transaction whose partition's
// topic was deleted and created again with fewer partitions before it
// ended has nothing to close there (the partition is gone, as when the
// topic stays deleted): EndTxn commits. Before, the marker write failed on
// the missing partition every time, and the transactional id stayed in
// PrepareCommit for good.
func TestTxnEndsAfterTopicRecreatedSmaller(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	ctx := testCtx(t)
	const topic, txnID = "txr-topic", "txr-txn"
	createTopic(t, s, topic, 2)
	cl := s.Client(t, kgo.TransactionalID(txnID), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 1, Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	pid, epoch, err := cl.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(s.Client(t))
	if _, err := adm.DeleteTopic(ctx, topic); err != nil {
		t.Fatal(err)
	}
	createTopic(t, s, topic, 1)
	end := kmsg.NewPtrEndTxnRequest()
	end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = txnID, pid, epoch, true
	r, err := end.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if r.ErrorCode != 0 {
		t.Fatalf("end txn: %v", kerr.ErrorForCode(r.ErrorCode))
	}
}

// beginTxnWithGroup begins a transaction of cl (transactional id txnID)
// with one record written to its default topic and group's offsets added
// to it, and returns the producer id and epoch for hand-made requests.
func beginTxnWithGroup(ctx context.Context, t *testing.T, cl *kgo.Client, txnID, group string) (int64, int16) {
	t.Helper()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	pid, epoch, err := cl.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = txnID, pid, epoch, group
	if r, err := add.RequestWith(ctx, cl); err != nil || r.ErrorCode != 0 {
		t.Fatalf("add offsets to txn: %v %+v", err, r)
	}
	return pid, epoch
}
