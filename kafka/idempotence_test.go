package kafka_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/kafka"
	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/sluicehq/sluice/record"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// lossyProxy forwards connections to a server but, every dropEvery-th
// response frame, closes the connection instead of forwarding the response:
// the request was handled, the client never learns it and must retry.
type lossyProxy struct {
	ln        net.Listener
	target    string
	dropEvery atomic.Int64 // 0: forward everything
	frames    atomic.Int64
	dropped   atomic.Int64
	wg        sync.WaitGroup
}

func newLossyProxy(t *testing.T, dropEvery int64) *lossyProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &lossyProxy{ln: ln}
	p.dropEvery.Store(dropEvery)
	return p
}

func (p *lossyProxy) start(t *testing.T, target string) {
	p.target = target
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() { p.ln.Close(); p.wg.Wait() })
}

func (p *lossyProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.wg.Add(2)
		go func() { defer p.wg.Done(); io.Copy(s, c); s.Close() }()
		go func() {
			defer p.wg.Done()
			defer c.Close()
			defer s.Close()
			var size [4]byte
			for {
				if _, err := io.ReadFull(s, size[:]); err != nil {
					return
				}
				body := make([]byte, binary.BigEndian.Uint32(size[:]))
				if _, err := io.ReadFull(s, body); err != nil {
					return
				}
				if n, every := p.frames.Add(1), p.dropEvery.Load(); every > 0 && n%every == 0 {
					p.dropped.Add(1)
					return
				}
				if _, err := c.Write(append(size[:], body...)); err != nil {
					return
				}
			}
		}()
	}
}

// TestIdempotentProducerDedupUnderRetries produces through a proxy that
// loses responses: the client retries batches the server already stored,
// and the server must acknowledge them without writing them twice.
func TestIdempotentProducerDedupUnderRetries(t *testing.T) {
	proxy := newLossyProxy(t, 0) // lossy once the producer id is loaded
	cfg := kafka.DefaultConfig()
	cfg.AdvertisedAddr = proxy.ln.Addr().String() // clients must come through the proxy
	s := kafkatest.Start(t, kafkatest.Options{Config: &cfg})
	proxy.start(t, s.Addr)
	createTopic(t, s, "idem", 3)
	cl, err := kgo.NewClient(kgo.SeedBrokers(proxy.ln.Addr().String()), kgo.DefaultProduceTopic("idem"),
		kgo.RecordRetries(1000), kgo.RequestRetries(1000), kgo.MaxBufferedRecords(50), kgo.ProducerLinger(0),
		kgo.RetryBackoffFn(func(int) time.Duration { return 5 * time.Millisecond }), kgo.MetadataMinAge(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := testCtx(t)
	// franz-go fails the buffered records when its InitProducerId gets no
	// answer ("unable to initialize a producer ID"): load the id first.
	if _, _, err := cl.ProducerID(ctx); err != nil {
		t.Fatal(err)
	}
	proxy.dropEvery.Store(7)
	const n = 1000
	var failed atomic.Int64
	for i := range n {
		cl.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i % 10)), Value: []byte(fmt.Sprint(i))}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Add(1)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if failed.Load() != 0 {
		t.Fatalf("%d records failed", failed.Load())
	}
	if proxy.dropped.Load() == 0 {
		t.Fatal("the proxy dropped no response: retries were not exercised")
	}
	proxy.dropEvery.Store(0)
	recs := consumeN(t, s, "idem", n)
	seen := map[string]int{}
	lastPerKey := map[string]int{}
	for _, r := range recs {
		seen[string(r.Value)]++
		var v int
		fmt.Sscan(string(r.Value), &v)
		if last, ok := lastPerKey[string(r.Key)]; ok && v <= last {
			t.Fatalf("key %s: %d after %d (order broken)", r.Key, v, last)
		}
		lastPerKey[string(r.Key)] = v
	}
	for i := range n {
		if c := seen[fmt.Sprint(i)]; c != 1 {
			t.Fatalf("value %d stored %d times (dropped responses: %d)", i, c, proxy.dropped.Load())
		}
	}
	if len(recs) != n {
		t.Fatalf("%d records stored, want %d", len(recs), n)
	}
}

// produceRaw sends one idempotent batch with the given sequence.
func produceRaw(t *testing.T, cl *kgo.Client, topic string, pid int64, epoch int16, seq int32, values ...string) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	var recs []record.Record
	for _, v := range values {
		recs = append(recs, record.Record{Value: []byte(v), Timestamp: 1})
	}
	batch, err := record.AppendBatch(nil, recs, record.BatchOptions{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq, Idempotent: true})
	if err != nil {
		t.Fatal(err)
	}
	return sendBatch(t, cl, topic, nil, batch)
}

// sendBatch sends batch to partition 0 of topic in a produce request
// (acks=-1) naming transactional id txnID (nil: none) and returns the
// partition's answer.
func sendBatch(t *testing.T, cl *kgo.Client, topic string, txnID *string, batch []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	return produceBatch(t, cl, topic, txnID, batch).Topics[0].Partitions[0]
}

// produceBatch is sendBatch returning the whole response.
func produceBatch(t *testing.T, cl *kgo.Client, topic string, txnID *string, batch []byte) *kmsg.ProduceResponse {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis, req.TransactionID = -1, 10000, txnID
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestIdempotentSequencesSurviveRestart drives sequences by hand: a retried
// batch is acknowledged with its original offset, a gap is refused, and
// both still hold after a restart of the server.
func TestIdempotentSequencesSurviveRestart(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	createTopic(t, s, "seq", 1)
	cl := s.Client(t)
	init := kmsg.NewPtrInitProducerIDRequest()
	ir, err := init.RequestWith(context.Background(), cl)
	if err != nil || ir.ErrorCode != 0 {
		t.Fatalf("init producer id: %v %d", err, ir.ErrorCode)
	}
	pid, epoch := ir.ProducerID, ir.ProducerEpoch

	first := produceRaw(t, cl, "seq", pid, epoch, 0, "a", "b")
	if first.ErrorCode != 0 || first.BaseOffset != 0 {
		t.Fatalf("first batch: %+v", first)
	}
	second := produceRaw(t, cl, "seq", pid, epoch, 2, "c")
	if second.ErrorCode != 0 || second.BaseOffset != 2 {
		t.Fatalf("second batch: %+v", second)
	}
	if dup := produceRaw(t, cl, "seq", pid, epoch, 2, "c"); dup.ErrorCode != 0 || dup.BaseOffset != 2 {
		t.Fatalf("retried batch: %+v, want offset 2 without error", dup)
	}
	if gap := produceRaw(t, cl, "seq", pid, epoch, 5, "x"); gap.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("sequence gap: code %d, want OUT_OF_ORDER_SEQUENCE_NUMBER", gap.ErrorCode)
	}

	s = s.Restart(t)
	cl = s.Client(t)
	if dup := produceRaw(t, cl, "seq", pid, epoch, 2, "c"); dup.ErrorCode != 0 || dup.BaseOffset != 2 {
		t.Fatalf("retried batch after restart: %+v", dup)
	}
	if gap := produceRaw(t, cl, "seq", pid, epoch, 5, "x"); gap.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("gap after restart: code %d", gap.ErrorCode)
	}
	if next := produceRaw(t, cl, "seq", pid, epoch, 3, "d"); next.ErrorCode != 0 || next.BaseOffset != 3 {
		t.Fatalf("next batch after restart: %+v", next)
	}
	if got := readValues(t, s, "seq", kgo.ReadUncommitted(), 4); fmt.Sprint(got) != "[a b c d]" {
		t.Fatalf("stored %v", got)
	}
}

// initCounter counts the InitProducerId requests a client writes.
type initCounter struct{ n atomic.Int64 }

// OnBrokerWrite implements kgo.HookBrokerWrite.
func (c *initCounter) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == int16(kmsg.InitProducerID) && err == nil {
		c.n.Add(1)
	}
}

// idemFixture is a server with a one-partition topic and a franz-go
// idempotent producer to it that has produced its first record, "a0".
type idemFixture struct {
	ctx   context.Context
	s     *kafkatest.Server
	topic string
	cl    *kgo.Client
	inits *initCounter // the producer's InitProducerId requests
	pid   int64        // the producer's id and epoch after "a0"
	epoch int16
}

func startIdempotent(t *testing.T, topic string) *idemFixture {
	t.Helper()
	f := &idemFixture{ctx: testCtx(t), s: kafkatest.Start(t, kafkatest.Options{}), topic: topic, inits: &initCounter{}}
	createTopic(t, f.s, topic, 1)
	f.cl = f.s.Client(t, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0), kgo.WithHooks(f.inits),
		kgo.MetadataMinAge(10*time.Millisecond)) // the retry after an error waits for a metadata refresh
	f.produce(t, "a0")
	var err error
	if f.pid, f.epoch, err = f.cl.ProducerID(f.ctx); err != nil {
		t.Fatal(err)
	}
	return f
}

// produce produces one record through the idempotent producer.
func (f *idemFixture) produce(t *testing.T, value string) {
	t.Helper()
	if err := f.cl.ProduceSync(f.ctx, kgo.StringRecord(value)).FirstErr(); err != nil {
		t.Fatalf("producing %q: %v", value, err)
	}
}

// stored returns the topic's first n values, in order.
func (f *idemFixture) stored(t *testing.T, n int) string {
	t.Helper()
	var got []string
	for _, r := range consumeN(t, f.s, f.topic, n) {
		got = append(got, string(r.Value))
	}
	return fmt.Sprint(got)
}

// assertProducer checks a client's producer id and epoch.
func assertProducer(ctx context.Context, t *testing.T, cl *kgo.Client, pid int64, epoch int16) {
	t.Helper()
	p, e, err := cl.ProducerID(ctx)
	if err != nil || p != pid || e != epoch {
		t.Fatalf("producer %d epoch %d (%v), want %d epoch %d", p, e, err, pid, epoch)
	}
}

// TestIdempotentProducerNotFencedByInit: a client sending InitProducerId
// without a transactional id but with another client's idempotent
// producer id and epoch gets a fresh id at epoch 0, as from Kafka, not
// that id at the next epoch: with it, producing to the partition would
// fence the owner (ids are sequential, so any client could).
func TestIdempotentProducerNotFencedByInit(t *testing.T) {
	f := startIdempotent(t, "fence")
	ctx, pidA, epochA := f.ctx, f.pid, f.epoch
	b := f.s.Client(t)
	init := kmsg.NewPtrInitProducerIDRequest()
	init.ProducerID, init.ProducerEpoch = pidA, epochA
	ir, err := init.RequestWith(ctx, b)
	if err != nil || ir.ErrorCode != 0 {
		t.Fatalf("B's init: %v %v", err, kerr.ErrorForCode(ir.ErrorCode))
	}
	if ir.ProducerID == pidA || ir.ProducerEpoch != 0 {
		t.Fatalf("B sent A's id %d epoch %d and got id %d epoch %d, want a fresh id at epoch 0", pidA, epochA, ir.ProducerID, ir.ProducerEpoch)
	}
	if r := produceRaw(t, b, "fence", ir.ProducerID, ir.ProducerEpoch, 0, "b0"); r.ErrorCode != 0 {
		t.Fatalf("B's produce: %v", kerr.ErrorForCode(r.ErrorCode))
	}

	// A goes on with its id and epoch, and its record is stored.
	f.produce(t, "a1")
	assertProducer(ctx, t, f.cl, pidA, epochA)
	if got := f.stored(t, 3); got != "[a0 b0 a1]" {
		t.Fatalf("stored %s, want [a0 b0 a1]", got)
	}
}

// TestIdempotentProducerRecoversFromOutOfOrderSequence: franz-go's
// idempotent producer answered OUT_OF_ORDER_SEQUENCE_NUMBER bumps its
// epoch itself (KIP-360) and resets its sequences; the broker accepts the
// bumped epoch from sequence 0, with no InitProducerId in between.
func TestIdempotentProducerRecoversFromOutOfOrderSequence(t *testing.T) {
	f := startIdempotent(t, "ooo")
	// Two records under A's id take the sequences A expects next.
	if r := produceRaw(t, f.s.Client(t), "ooo", f.pid, f.epoch, 1, "x1", "x2"); r.ErrorCode != 0 {
		t.Fatalf("raw produce: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	f.produce(t, "a1") // first answered OUT_OF_ORDER_SEQUENCE_NUMBER
	assertProducer(f.ctx, t, f.cl, f.pid, f.epoch+1)
	if n := f.inits.n.Load(); n != 1 {
		t.Fatalf("%d InitProducerId requests, want 1", n)
	}
	if got := f.stored(t, 4); got != "[a0 x1 x2 a1]" {
		t.Fatalf("stored %s, want [a0 x1 x2 a1]", got)
	}
}
