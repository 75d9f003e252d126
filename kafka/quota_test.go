package kafka_test

import (
	"context"
	"crypto/rand"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func quotaEntity(user string) kadm.ClientQuotaEntity {
	return kadm.ClientQuotaEntity{{Type: "user", Name: &user}}
}

// TestProduceQuota: a user with a producer byte-rate quota of R is held
// to R (within 10% over a measured window) while another user without a
// quota, producing at the same time, is not throttled.
func TestProduceQuota(t *testing.T) {
	if testing.Short() {
		t.Skip("measures rates over several seconds")
	}
	s, _ := secureServer(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(s.Client(t))
	if _, err := adm.CreateTopics(ctx, 1, 1, nil, "quota-alice", "quota-bob"); err != nil {
		t.Fatal(err)
	}
	const rate = 200 << 10 // bytes per second
	upsertSCRAM(t, adm, "bob", kadm.ScramSha256)
	res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{Entity: quotaEntity("alice"), Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: rate}}}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("alter quota: %v %v", err, res)
	}
	desc, err := adm.DescribeClientQuotas(ctx, false, []kadm.DescribeClientQuotaComponent{{Type: "user", MatchType: 2}})
	if err != nil || len(desc) != 1 || desc[0].Values[0].Value != rate {
		t.Fatalf("describe quotas: %v %+v", err, desc)
	}

	// Quotas count the bytes on the wire: no compression.
	value := make([]byte, 1000)
	rand.Read(value)
	noComp := kgo.ProducerBatchCompression(kgo.NoCompression())
	produce := func(cl *kgo.Client, topic string, d time.Duration, acked *atomic.Int64, stop <-chan struct{}) {
		end := time.Now().Add(d)
		var wg sync.WaitGroup
		for time.Now().Before(end) {
			select {
			case <-stop:
				return
			default:
			}
			wg.Add(1)
			cl.Produce(ctx, &kgo.Record{Topic: topic, Value: value}, func(r *kgo.Record, err error) {
				defer wg.Done()
				if err == nil {
					acked.Add(int64(len(r.Value)))
				}
			})
		}
		wg.Wait()
	}
	var aliceThrottled throttleHook
	alice := saslClient(t, s.Addrs["SASL_PLAINTEXT"], nil, "SCRAM-SHA-512", "alice", "alice-secret", kgo.MaxBufferedRecords(100), kgo.ProducerLinger(0), noComp, kgo.WithHooks(&aliceThrottled))
	var bobThrottled throttleHook
	bob := saslClient(t, s.Addrs["SASL_PLAINTEXT"], nil, "SCRAM-SHA-256", "bob", "bob-secret", kgo.MaxBufferedRecords(500), kgo.ProducerLinger(0), noComp, kgo.WithHooks(&bobThrottled))
	var aliceBytes, bobBytes atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); produce(alice, "quota-alice", 40*time.Second, &aliceBytes, stop) }()
	go func() { defer wg.Done(); produce(bob, "quota-bob", 40*time.Second, &bobBytes, stop) }()
	// The quota's rate is metered over its whole history (up to 11 s):
	// measure the batch bytes appended for alice (what her producer sent,
	// which the quota counts) from her first byte, over 8 s. Her first
	// byte may come seconds after the producers start on a loaded machine
	// (the SCRAM login), so the window starts there.
	start := firstAppend(t, s, "quota-alice")
	b0 := bobBytes.Load()
	time.Sleep(time.Until(start.Add(8 * time.Second))) // the measurement window, not synchronisation
	elapsed := time.Since(start).Seconds()
	a1, b1 := appendedBytes(t, s, "quota-alice"), bobBytes.Load()-b0
	close(stop)
	wg.Wait()
	got := float64(a1) / elapsed
	bobRate := float64(b1) / elapsed
	t.Logf("alice %.0f B/s (quota %d), bob %.0f B/s (no quota)", got, rate, bobRate)
	if got < 0.9*rate || got > 1.1*rate {
		t.Fatalf("alice produced %.0f B/s under a quota of %d B/s: not within 10%%", got, rate)
	}
	if aliceThrottled.n.Load() == 0 {
		t.Fatal("alice was held to her quota without an answer carrying throttle_time_ms")
	}
	// bob is unaffected: never throttled, and not held to alice's rate (how
	// far above it depends on the machine's load).
	if n := bobThrottled.n.Load(); n != 0 {
		t.Fatalf("bob, without a quota, was throttled %d times", n)
	}
	if bobRate < 1.5*rate {
		t.Fatalf("bob, without a quota, produced only %.0f B/s while alice was throttled", bobRate)
	}
}

// TestFetchQuota: a consumer with a consumer byte-rate quota reads a
// backlog larger than its rate times the whole measured window. The
// answers are bounded to what the window lets through (as Kafka bounds
// them), so it gets every record, throttled (throttle_time_ms, answers
// without records) rather than refused for ever; a consumer without a
// quota is never throttled.
func TestFetchQuota(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a quota window of several seconds")
	}
	s, _ := secureServer(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	adm := kadm.NewClient(s.Client(t))
	const topic, partitions, perPartition, size = "fetch-quota", 4, 24, 1000
	if _, err := adm.CreateTopics(ctx, partitions, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	// The backlog: 4 × 24 records of 1000 B, more than 8 KiB/s × 11 s.
	const rate = 8 << 10
	res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{Entity: quotaEntity("alice"), Ops: []kadm.AlterClientQuotaOp{{Key: "consumer_byte_rate", Value: rate}}}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("alter quota: %v %v", err, res)
	}
	prod := s.Client(t, kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	value := make([]byte, size)
	rand.Read(value)
	var recs []*kgo.Record
	for p := range int32(partitions) {
		for range perPartition {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: value})
		}
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if backlog := appendedBytes(t, s, topic); backlog <= rate*11 {
		t.Fatalf("backlog %d B is not above the quota's window (%d B): the test proves nothing", backlog, rate*11)
	}
	consume := func(cl *kgo.Client) {
		n := 0
		for n < partitions*perPartition {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("consumed %d of %d records before the deadline", n, partitions*perPartition)
			}
			if err := fs.Err0(); err != nil {
				t.Fatal(err)
			}
			n += fs.NumRecords()
		}
	}
	var aliceThrottled throttleHook
	consume(saslClient(t, s.Addrs["SASL_PLAINTEXT"], nil, "SCRAM-SHA-512", "alice", "alice-secret",
		kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.WithHooks(&aliceThrottled)))
	if aliceThrottled.n.Load() == 0 {
		t.Fatal("alice read a backlog above her quota without an answer carrying throttle_time_ms")
	}
	var freeThrottled throttleHook
	consume(s.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.WithHooks(&freeThrottled)))
	if n := freeThrottled.n.Load(); n != 0 {
		t.Fatalf("a consumer without a quota was throttled %d times", n)
	}
}
