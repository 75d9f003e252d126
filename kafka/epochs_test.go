package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/kafka"
	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/sluicehq/sluice/logstore"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fixedServer serves a data directory on one address that survives
// restarts, so that a client keeps its connection target across them.
type fixedServer struct {
	dir, addr string
	log       *logstore.Log
	ks        *kafka.Server
	done      chan error
}

func startFixed(t *testing.T, dir, addr string) *fixedServer {
	t.Helper()
	l, err := logstore.Open(logstore.Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ks, err := kafka.New(l, kafka.DefaultConfig(), nil)
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		ks.Close()
		l.Close()
		t.Fatal(err)
	}
	s := &fixedServer{dir: dir, addr: ln.Addr().String(), log: l, ks: ks, done: make(chan error, 1)}
	go func() { s.done <- ks.Serve(context.Background(), ln) }()
	return s
}

func (s *fixedServer) stop(t *testing.T) {
	t.Helper()
	if s.ks == nil {
		return
	}
	s.ks.Close()
	if err := <-s.done; !errors.Is(err, kafka.ErrServerClosed) {
		t.Errorf("serve: %v", err)
	}
	if err := s.log.Close(); err != nil {
		t.Errorf("closing the log: %v", err)
	}
	s.ks = nil
}

func (s *fixedServer) restart(t *testing.T) *fixedServer {
	t.Helper()
	s.stop(t)
	return startFixed(t, s.dir, s.addr)
}

func leaderEpochOf(t *testing.T, cl *kgo.Client, topic string, partition int32) int32 {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testCtx(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range resp.Topics[0].Partitions {
		if p.Partition == partition {
			return p.LeaderEpoch
		}
	}
	t.Fatalf("metadata has no partition %d of %s", partition, topic)
	return 0
}

func produceValues(t *testing.T, cl *kgo.Client, topic string, partition int32, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		r := &kgo.Record{Topic: topic, Partition: partition, Value: fmt.Appendf(nil, "%d", i)}
		if err := cl.ProduceSync(testCtx(t), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLeaderEpochAcrossRestarts: each start of the server is a new leader
// epoch, which Metadata, ListOffsets, stored batches, Fetch and
// OffsetForLeaderEpoch all agree on.
func TestLeaderEpochAcrossRestarts(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	createTopic(t, s, "ep", 2)
	prod := func(s *kafkatest.Server) *kgo.Client {
		return s.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	}
	produceValues(t, prod(s), "ep", 0, 0, 3) // offsets 0..2, epoch 0
	if e := leaderEpochOf(t, s.Client(t), "ep", 0); e != 0 {
		t.Fatalf("first epoch %d, want 0", e)
	}
	s = s.Restart(t)
	produceValues(t, prod(s), "ep", 0, 3, 5) // offsets 3..4, epoch 1
	cl := s.Client(t)
	if e := leaderEpochOf(t, cl, "ep", 0); e != 1 {
		t.Fatalf("epoch after restart %d, want 1", e)
	}
	ctx := testCtx(t)

	t.Run("stored batches carry their epoch", func(t *testing.T) {
		recs := consumeN(t, s, "ep", 5)
		for _, r := range recs {
			want := int32(0)
			if r.Offset >= 3 {
				want = 1
			}
			if r.LeaderEpoch != want {
				t.Errorf("record at %d has leader epoch %d, want %d", r.Offset, r.LeaderEpoch, want)
			}
		}
	})

	t.Run("kadm OffsetForLeaderEpoch", func(t *testing.T) {
		adm := kadm.NewClient(cl)
		for _, c := range []struct {
			req, epoch int32
			end        int64
		}{{0, 0, 3}, {1, 1, 5}, {2, -1, -1}, {-1, -1, -1}} {
			res, err := adm.OffsetForLeaderEpoch(ctx, kadm.OffsetForLeaderEpochRequest{"ep": {0: c.req}})
			if err != nil {
				t.Fatal(err)
			}
			got := res["ep"][0]
			if got.Err != nil || got.LeaderEpoch != c.epoch || got.EndOffset != c.end {
				t.Errorf("epoch %d: got %d/%d (%v), want %d/%d", c.req, got.LeaderEpoch, got.EndOffset, got.Err, c.epoch, c.end)
			}
		}
		// The other partition was empty through both epochs: epoch 0
		// ended where it began, at 0.
		res, err := adm.OffsetForLeaderEpoch(ctx, kadm.OffsetForLeaderEpochRequest{"ep": {1: 0}})
		if err != nil {
			t.Fatal(err)
		}
		if got := res["ep"][1]; got.LeaderEpoch != 0 || got.EndOffset != 0 {
			t.Errorf("empty partition: %d/%d, want 0/0", got.LeaderEpoch, got.EndOffset)
		}
	})

	t.Run("raw OffsetForLeaderEpoch at every version", func(t *testing.T) {
		rc := dialRaw(t, s.Addr)
		for v := int16(0); v <= 4; v++ {
			type part struct {
				topic          string
				partition      int32
				current, epoch int32
				code           int16
				wantEpoch      int32
				wantEnd        int64
			}
			cases := []part{
				{"ep", 0, -1, 0, 0, 0, 3},
				{"ep", 0, 1, 1, 0, 1, 5},
				{"ep", 0, 0, 0, kerr.FencedLeaderEpoch.Code, -1, -1},
				{"ep", 0, 2, 0, kerr.UnknownLeaderEpoch.Code, -1, -1},
				{"ep", 9, -1, 0, kerr.UnknownTopicOrPartition.Code, -1, -1},
				{"nope", 0, -1, 0, kerr.UnknownTopicOrPartition.Code, -1, -1},
			}
			req := kmsg.NewPtrOffsetForLeaderEpochRequest()
			req.SetVersion(v)
			req.ReplicaID = -1
			for _, c := range cases {
				rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
				rt.Topic = c.topic
				rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
				rp.Partition, rp.CurrentLeaderEpoch, rp.LeaderEpoch = c.partition, c.current, c.epoch
				rt.Partitions = append(rt.Partitions, rp)
				req.Topics = append(req.Topics, rt)
			}
			resp := rc.request(req).(*kmsg.OffsetForLeaderEpochResponse)
			if len(resp.Topics) != len(cases) {
				t.Fatalf("v%d: %d topics answered", v, len(resp.Topics))
			}
			for i, c := range cases {
				if v < 2 && (c.code == kerr.FencedLeaderEpoch.Code || c.code == kerr.UnknownLeaderEpoch.Code) {
					// No CurrentLeaderEpoch before v2: no check.
					c.code, c.wantEpoch, c.wantEnd = 0, 0, 3
				}
				if v < 1 {
					c.wantEpoch = -1 // not in v0 responses
				}
				got := resp.Topics[i].Partitions[0]
				if got.ErrorCode != c.code || got.LeaderEpoch != c.wantEpoch || got.EndOffset != c.wantEnd {
					t.Errorf("v%d case %d %+v: got code %d epoch %d end %d", v, i, c, got.ErrorCode, got.LeaderEpoch, got.EndOffset)
				}
			}
		}
	})

	t.Run("ListOffsets epochs and fencing", func(t *testing.T) {
		rc := dialRaw(t, s.Addr)
		for _, c := range []struct {
			ts, offset int64
			current    int32
			code       int16
			epoch      int32
		}{
			{-2, 0, -1, 0, 0},
			{-1, 5, -1, 0, 1},
			{-1, 5, 1, 0, 1},
			{-1, -1, 0, kerr.FencedLeaderEpoch.Code, -1},
			{-1, -1, 7, kerr.UnknownLeaderEpoch.Code, -1},
		} {
			req := kmsg.NewPtrListOffsetsRequest()
			req.SetVersion(6)
			req.ReplicaID = -1
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = "ep"
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Timestamp, rp.CurrentLeaderEpoch = c.ts, c.current
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			got := rc.request(req).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
			if got.ErrorCode != c.code || got.Offset != c.offset || got.LeaderEpoch != c.epoch {
				t.Errorf("%+v: got code %d offset %d epoch %d", c, got.ErrorCode, got.Offset, got.LeaderEpoch)
			}
		}
	})

	t.Run("Fetch fencing and diverging epochs", func(t *testing.T) {
		rc := dialRaw(t, s.Addr)
		for _, c := range []struct {
			current, lastFetched int32
			offset               int64
			code                 int16
			records              bool
			divEpoch             int32
			divEnd               int64
		}{
			{-1, -1, 0, 0, true, -1, -1},
			{1, -1, 0, 0, true, -1, -1},
			{0, -1, 0, kerr.FencedLeaderEpoch.Code, false, -1, -1},
			{2, -1, 0, kerr.UnknownLeaderEpoch.Code, false, -1, -1},
			{1, 0, 3, 0, true, -1, -1},  // epoch 0 ended at 3: consistent
			{1, 0, 4, 0, false, 0, 3},   // the client has data of epoch 0 past its end
			{1, 1, 5, 0, false, -1, -1}, // at the end: nothing yet
			{1, 5, 5, kerr.OffsetOutOfRange.Code, false, -1, -1},
		} {
			req := fetchReq("ep", 0, 1, 1<<20, 1<<20, c.offset)
			req.SetVersion(12)
			req.SessionEpoch = -1
			req.Topics[0].Partitions[0].CurrentLeaderEpoch = c.current
			req.Topics[0].Partitions[0].LastFetchedEpoch = c.lastFetched
			got := rc.request(req).(*kmsg.FetchResponse).Topics[0].Partitions[0]
			if got.ErrorCode != c.code || (len(got.RecordBatches) > 0) != c.records ||
				got.DivergingEpoch.Epoch != c.divEpoch || got.DivergingEpoch.EndOffset != c.divEnd {
				t.Errorf("%+v: got code %d, %d bytes, diverging %+v", c, got.ErrorCode, len(got.RecordBatches), got.DivergingEpoch)
			}
		}
	})
}

// TestConsumerAcrossRestart: a franz-go consumer that was reading when the
// server restarted (a new leader epoch) is fenced, reloads the metadata,
// validates its position with OffsetForLeaderEpoch and goes on exactly
// where it was: no offset reset, no record twice, none lost.
func TestConsumerAcrossRestart(t *testing.T) {
	s := startFixed(t, t.TempDir(), "127.0.0.1:0")
	t.Cleanup(func() { s.stop(t) })
	var mu sync.Mutex
	sent := map[int16]int{}
	hook := brokerWriteHook(func(key int16) {
		mu.Lock()
		sent[key]++
		mu.Unlock()
	})
	admin := func() *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(s.addr), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	cl := admin()
	if _, err := kadm.NewClient(cl).CreateTopic(testCtx(t), 3, 1, nil, "across"); err != nil {
		t.Fatal(err)
	}
	for p := range int32(3) {
		produceValues(t, cl, "across", p, 0, 20)
	}
	cl.Close()

	consumer, err := kgo.NewClient(kgo.SeedBrokers(s.addr), kgo.ConsumeTopics("across"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.WithHooks(hook))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	seen := map[string]bool{}
	next := map[int32]int64{}
	consume := func(n int, wantEpoch int32) {
		t.Helper()
		ctx := testCtx(t)
		for got := 0; got < n; {
			fs := consumer.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("consumed %d of %d records before the deadline", got, n)
			}
			fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch error %s/%d: %v", topic, p, err) })
			fs.EachRecord(func(r *kgo.Record) {
				key := fmt.Sprintf("%d/%d", r.Partition, r.Offset)
				if seen[key] {
					t.Fatalf("record %s consumed twice", key)
				}
				if r.Offset != next[r.Partition] {
					t.Fatalf("partition %d: offset %d after %d", r.Partition, r.Offset, next[r.Partition]-1)
				}
				if string(r.Value) != fmt.Sprint(r.Offset) {
					t.Fatalf("record %s holds %q", key, r.Value)
				}
				if r.LeaderEpoch != wantEpoch {
					t.Fatalf("record %s has leader epoch %d, want %d", key, r.LeaderEpoch, wantEpoch)
				}
				seen[key] = true
				next[r.Partition]++
				got++
			})
		}
	}
	consume(60, 0)

	s = s.restart(t)
	cl = admin()
	defer cl.Close()
	for p := range int32(3) {
		produceValues(t, cl, "across", p, 20, 30)
	}
	consume(30, 1)
	mu.Lock()
	defer mu.Unlock()
	if sent[int16(kmsg.OffsetForLeaderEpoch)] == 0 {
		t.Fatalf("the consumer never validated its position with OffsetForLeaderEpoch (requests: %v)", sent)
	}
}

// brokerWriteHook calls fn with the key of every request a client writes.
type brokerWriteHook func(key int16)

func (h brokerWriteHook) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err == nil {
		h(key)
	}
}
