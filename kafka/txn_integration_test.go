package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/kafka"
	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/sluicehq/sluice/record"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestTransactionsCommitAbortIsolation(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	const topic = "txn"
	createTopic(t, s, topic, 1)
	ctx := testCtx(t)
	p := s.Client(t, kgo.TransactionalID("tx-1"), kgo.DefaultProduceTopic(topic), kgo.TransactionTimeout(10*time.Second))
	run := func(prefix string, n int, commit kgo.TransactionEndTry) {
		t.Helper()
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("%s%d", prefix, i))}).FirstErr(); err != nil {
				t.Fatalf("produce: %v", err)
			}
		}
		if commit == kgo.TryCommit || commit == kgo.TryAbort {
			if err := p.EndTransaction(ctx, commit); err != nil {
				t.Fatalf("end: %v", err)
			}
		}
	}
	plain := s.Client(t, kgo.DefaultProduceTopic(topic))
	run("c", 3, kgo.TryCommit)
	run("a", 2, kgo.TryAbort)
	if err := plain.ProduceSync(ctx, &kgo.Record{Value: []byte("p0")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	run("c", 2, kgo.TryCommit)

	committed := readValues(t, s, topic, kgo.ReadCommitted(), 6)
	if want := []string{"c0", "c1", "c2", "p0", "c0", "c1"}; !slices.Equal(committed, want) {
		t.Fatalf("read_committed: %v, want %v", committed, want)
	}
	uncommitted := readValues(t, s, topic, kgo.ReadUncommitted(), 8)
	if want := []string{"c0", "c1", "c2", "a0", "a1", "p0", "c0", "c1"}; !slices.Equal(uncommitted, want) {
		t.Fatalf("read_uncommitted: %v, want %v", uncommitted, want)
	}

	// An open transaction holds read_committed readers back at its start.
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("open")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := plain.ProduceSync(ctx, &kgo.Record{Value: []byte("after-open")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(s.Client(t))
	lso, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	hwm, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	l, _ := lso.Lookup(topic, 0)
	h, _ := hwm.Lookup(topic, 0)
	if l.Offset >= h.Offset-1 {
		t.Fatalf("open transaction: last stable %d, high watermark %d", l.Offset, h.Offset)
	}
	if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	committed = readValues(t, s, topic, kgo.ReadCommitted(), 8)
	if want := []string{"c0", "c1", "c2", "p0", "c0", "c1", "open", "after-open"}; !slices.Equal(committed, want) {
		t.Fatalf("read_committed after commit: %v, want %v", committed, want)
	}
}

// readValues consumes n records of topic from the start with a fresh client.
func readValues(t *testing.T, s *kafkatest.Server, topic string, iso kgo.IsolationLevel, n int) []string {
	t.Helper()
	var out []string
	for _, r := range consumeN(t, s, topic, n, kgo.FetchIsolationLevel(iso)) {
		out = append(out, string(r.Value))
	}
	return out
}

func TestTransactionFencingAndTimeout(t *testing.T) {
	cfg := kafka.DefaultConfig()
	cfg.TickInterval = 20 * time.Millisecond
	s := kafkatest.Start(t, kafkatest.Options{Config: &cfg})
	const topic = "fence"
	createTopic(t, s, topic, 1)
	ctx := testCtx(t)

	// A second producer with the same transactional id fences the first
	// and aborts what it left open.
	p1 := s.Client(t, kgo.TransactionalID("tx-f"), kgo.DefaultProduceTopic(topic))
	if err := p1.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p1.ProduceSync(ctx, &kgo.Record{Value: []byte("zombie")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	p2 := s.Client(t, kgo.TransactionalID("tx-f"), kgo.DefaultProduceTopic(topic))
	if err := p2.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p2.ProduceSync(ctx, &kgo.Record{Value: []byte("winner")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := p2.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	err := p1.EndTransaction(ctx, kgo.TryCommit)
	if err == nil {
		t.Fatal("fenced producer committed")
	}
	if !errors.Is(err, kerr.InvalidProducerEpoch) && !errors.Is(err, kerr.ProducerFenced) && !strings.Contains(err.Error(), "fenced") {
		t.Logf("fenced producer error: %v", err)
	}
	if got := readValues(t, s, topic, kgo.ReadCommitted(), 1); !slices.Equal(got, []string{"winner"}) {
		t.Fatalf("read_committed: %v", got)
	}

	// An abandoned transaction is aborted by its timeout.
	p3 := s.Client(t, kgo.TransactionalID("tx-t"), kgo.DefaultProduceTopic(topic), kgo.TransactionTimeout(300*time.Millisecond))
	if err := p3.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p3.ProduceSync(ctx, &kgo.Record{Value: []byte("abandoned")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(s.Client(t))
	waitFor(t, "the abandoned transaction to be aborted", func() bool {
		lso, err1 := adm.ListCommittedOffsets(context.Background(), topic)
		hwm, err2 := adm.ListEndOffsets(context.Background(), topic)
		if err1 != nil || err2 != nil {
			return false
		}
		l, _ := lso.Lookup(topic, 0)
		h, _ := hwm.Lookup(topic, 0)
		return l.Offset == h.Offset
	})
	plain := s.Client(t, kgo.DefaultProduceTopic(topic))
	if err := plain.ProduceSync(ctx, &kgo.Record{Value: []byte("later")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if got := readValues(t, s, topic, kgo.ReadCommitted(), 2); !slices.Equal(got, []string{"winner", "later"}) {
		t.Fatalf("read_committed after timeout: %v", got)
	}
	if err := p3.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Fatal("commit of a timed-out transaction succeeded")
	}
}

// TestTxnOffsetCommitMetadataTooLarge: a TxnOffsetCommit whose metadata is
// longer than the offset store takes answers OFFSET_METADATA_TOO_LARGE for
// that partition, as OffsetCommit does (and Kafka), and keeps the offset
// out of the transaction; one for a group id the store cannot take (empty,
// over 64 KiB) answers INVALID_GROUP_ID. Accepted, it made the commit of the transaction
// fail when writing its offsets, every time: the transactional id stayed
// in PrepareCommit for good and answered every request with an error.
func TestTxnOffsetCommitMetadataTooLarge(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	ctx := testCtx(t)
	const in, out, group, txnID = "txm-in", "txm-out", "txm-group", "txm-txn"
	createTopic(t, s, in, 2)
	createTopic(t, s, out, 1)
	cl := s.Client(t, kgo.TransactionalID(txnID), kgo.DefaultProduceTopic(out))
	pid, epoch := beginTxnWithGroup(ctx, t, cl, txnID, group)
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group, req.Generation = txnID, pid, epoch, group, -1
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	rt.Topic = in
	for p, meta := range []string{strings.Repeat("m", 5000), "ok"} {
		rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = int32(p), 7, -1, kmsg.StringPtr(meta)
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	r, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	codes := map[int32]int16{}
	for _, p := range r.Topics[0].Partitions {
		codes[p.Partition] = p.ErrorCode
	}
	if codes[0] != kerr.OffsetMetadataTooLarge.Code || codes[1] != 0 {
		t.Fatalf("txn offset commit codes %v, want partition 0 OFFSET_METADATA_TOO_LARGE, partition 1 none", codes)
	}
	// Nor group ids it cannot store: the empty one, one over 64 KiB.
	req.Topics[0].Partitions = req.Topics[0].Partitions[1:]
	for _, g := range []string{"", strings.Repeat("g", 1<<16)} {
		add := kmsg.NewPtrAddOffsetsToTxnRequest()
		add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = txnID, pid, epoch, g
		if r, err := add.RequestWith(ctx, cl); err != nil || r.ErrorCode != 0 {
			t.Fatalf("add offsets of a group of %d bytes to txn: %v %+v", len(g), err, r)
		}
		req.Group = g
		if r, err = req.RequestWith(ctx, cl); err != nil {
			t.Fatal(err)
		}
		if c := r.Topics[0].Partitions[0].ErrorCode; c != kerr.InvalidGroupID.Code {
			t.Fatalf("txn offset commit of a group of %d bytes: %v, want INVALID_GROUP_ID", len(g), kerr.ErrorForCode(c))
		}
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	f, err := kadm.NewClient(s.Client(t)).FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := f.Lookup(in, 0); ok && o.At >= 0 {
		t.Errorf("the oversized offset was committed: %d", o.At)
	}
	if o, ok := f.Lookup(in, 1); !ok || o.At != 7 || o.Metadata != "ok" {
		t.Errorf("partition 1's offset: %+v %v", o, ok)
	}
}

// TestTransactionalProduceNeedsItsOwnTransactionalID: a transactional
// batch is accepted only in a produce request that names the batch's
// producer's own transactional id (as Kafka's partition leaders verify
// with the coordinator, KIP-890). Before, any transactional request could
// carry batches of another transactional id's producer, whose transaction
// then committed or aborted them, with the authorization of its own id
// only.
func TestTransactionalProduceNeedsItsOwnTransactionalID(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	ctx := testCtx(t)
	const topic = "tpo-topic"
	createTopic(t, s, topic, 1)
	victim := s.Client(t, kgo.TransactionalID("tpo-victim"), kgo.DefaultProduceTopic(topic))
	if err := victim.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := victim.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	pid, epoch, err := victim.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	other := s.Client(t, kgo.TransactionalID("tpo-other"))
	if _, _, err := other.ProducerID(ctx); err != nil {
		t.Fatal(err)
	}
	batch, err := record.AppendBatch(nil, []record.Record{{Value: []byte("intruder"), Timestamp: 1}},
		record.BatchOptions{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: 1, Idempotent: true, Transactional: true})
	if err != nil {
		t.Fatal(err)
	}
	if c := sendBatch(t, other, topic, kmsg.StringPtr("tpo-other"), batch).ErrorCode; c != kerr.InvalidProducerIDMapping.Code {
		t.Fatalf("another transactional id's batch: %v, want INVALID_PRODUCER_ID_MAPPING", kerr.ErrorForCode(c))
	}
	// The victim's transaction goes on unharmed.
	if err := victim.ProduceSync(ctx, &kgo.Record{Value: []byte("w")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := victim.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
}
