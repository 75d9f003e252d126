package kafka_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestConsumeTransformProduce runs the exactly-once loop: a transactional
// session consumes "in" as group "eos", writes each value doubled to "out"
// and commits its consumer offsets in the same transaction. The session is
// interrupted and restarted midway; read_committed output must hold every
// input exactly once.
func TestConsumeTransformProduce(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	createTopic(t, s, "in", 2)
	createTopic(t, s, "out", 2)
	ctx := testCtx(t)
	const n = 300
	prod := s.Client(t, kgo.DefaultProduceTopic("in"))
	for i := range n {
		prod.Produce(ctx, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: []byte(strconv.Itoa(i))}, nil)
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	runSession := func(limit int) int {
		sess, err := kgo.NewGroupTransactSession(
			kgo.SeedBrokers(s.Addr),
			kgo.TransactionalID("eos-1"),
			kgo.ConsumerGroup("eos"), kgo.ConsumeTopics("in"),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.DefaultProduceTopic("out"),
			kgo.HeartbeatInterval(100*time.Millisecond),
			kgo.RequireStableFetchOffsets(),
		)
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		done := 0
		for done < limit {
			fs := sess.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("session: %v after %d", ctx.Err(), done)
			}
			fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
			if fs.NumRecords() == 0 {
				continue
			}
			if err := sess.Begin(); err != nil {
				t.Fatal(err)
			}
			fs.EachRecord(func(r *kgo.Record) {
				v, _ := strconv.Atoi(string(r.Value))
				sess.Produce(ctx, &kgo.Record{Key: r.Key, Value: []byte(strconv.Itoa(2 * v))}, nil)
				done++
			})
			committed, err := sess.End(ctx, kgo.TryCommit)
			if err != nil {
				t.Fatalf("end: %v", err)
			}
			if !committed {
				t.Logf("transaction aborted (rebalance); retrying")
			}
		}
		return done
	}
	runSession(n / 3)
	// Remaining work after a restart of the session (and of the server).
	s = s.Restart(t)
	adm := kadm.NewClient(s.Client(t))
	waitFor(t, "every input processed", func() bool {
		offs, err := adm.FetchOffsets(context.Background(), "eos")
		if err != nil {
			return false
		}
		total := int64(0)
		offs.Each(func(o kadm.OffsetResponse) { total += o.At })
		if total >= n {
			return true
		}
		runSession(1)
		return false
	})
	got := readValues(t, s, "out", kgo.ReadCommitted(), n)
	var ints []int
	for _, v := range got {
		i, _ := strconv.Atoi(v)
		ints = append(ints, i)
	}
	slices.Sort(ints)
	for i := range n {
		if i >= len(ints) || ints[i] != 2*i {
			t.Fatalf("output %d: got %v", i, fmt.Sprint(ints[:min(len(ints), i+3)]))
		}
	}
	if len(ints) != n {
		t.Fatalf("%d outputs, want %d", len(ints), n)
	}
}
