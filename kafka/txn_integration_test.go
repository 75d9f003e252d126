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
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
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
