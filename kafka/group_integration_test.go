package kafka_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func createTopic(t *testing.T, s *kafkatest.Server, topic string, partitions int32) {
	t.Helper()
	adm := kadm.NewClient(s.Client(t))
	resp, err := adm.CreateTopic(testCtx(t), partitions, 1, nil, topic)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic %s: %v %v", topic, err, resp.Err)
	}
}

// groupMember is one consumer of a group, recording what it consumed and
// what it owns.
type groupMember struct {
	cl     *kgo.Client
	mu     sync.Mutex
	owned  map[int32]bool
	values map[string]int
	cancel context.CancelFunc
	done   chan struct{}
}

func startMember(t *testing.T, s *kafkatest.Server, group, topic string) *groupMember {
	m := &groupMember{owned: map[int32]bool{}, values: map[string]int{}, done: make(chan struct{})}
	m.cl = s.Client(t,
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(100*time.Millisecond),
		kgo.RebalanceTimeout(10*time.Second), kgo.AutoCommitInterval(100*time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, p := range a[topic] {
				m.owned[p] = true
			}
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, r map[string][]int32) {
			cl.CommitUncommittedOffsets(ctx)
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, p := range r[topic] {
				delete(m.owned, p)
			}
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, r map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, p := range r[topic] {
				delete(m.owned, p)
			}
		}),
	)
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			fs := m.cl.PollFetches(ctx)
			m.mu.Lock()
			fs.EachRecord(func(r *kgo.Record) { m.values[string(r.Value)]++ })
			m.mu.Unlock()
		}
	}()
	return m
}

func (m *groupMember) ownedCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.owned)
}

func (m *groupMember) stop() {
	m.cancel()
	<-m.done
	m.cl.Close() // commits and leaves the group
}

func TestConsumerGroupJoinLeave(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	const topic, group, parts = "grp", "g1", 4
	createTopic(t, s, topic, parts)
	prod := s.Client(t, kgo.DefaultProduceTopic(topic))
	produce := func(from, to int) {
		var recs []*kgo.Record
		for i := from; i < to; i++ {
			recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprint(i))})
		}
		if err := prod.ProduceSync(testCtx(t), recs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	produce(0, 200)

	a := startMember(t, s, group, topic)
	waitFor(t, "a owns every partition", func() bool { return a.ownedCount() == parts })
	b := startMember(t, s, group, topic)
	waitFor(t, "a and b split the partitions", func() bool {
		return a.ownedCount() > 0 && b.ownedCount() > 0 && a.ownedCount()+b.ownedCount() == parts
	})
	produce(200, 400)

	adm := kadm.NewClient(s.Client(t))
	described, err := adm.DescribeGroups(testCtx(t), group)
	if err != nil {
		t.Fatal(err)
	}
	if d := described[group]; d.State != "Stable" || len(d.Members) != 2 {
		t.Fatalf("describe: state %s, %d members", d.State, len(d.Members))
	}

	b.stop()
	waitFor(t, "a owns every partition again", func() bool { return a.ownedCount() == parts })
	produce(400, 500)
	seen := func() map[string]int {
		out := map[string]int{}
		for _, m := range []*groupMember{a, b} {
			m.mu.Lock()
			for v, n := range m.values {
				out[v] += n
			}
			m.mu.Unlock()
		}
		return out
	}
	waitFor(t, "every record consumed", func() bool { return len(seen()) == 500 })
	a.stop()

	// Committed offsets cover everything and survive a restart.
	s = s.Restart(t)
	adm = kadm.NewClient(s.Client(t))
	offs, err := adm.FetchOffsets(testCtx(t), group)
	if err != nil {
		t.Fatal(err)
	}
	ends, err := adm.ListEndOffsets(testCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(o kadm.ListedOffset) {
		c, ok := offs.Lookup(topic, o.Partition)
		if !ok || c.At != o.Offset {
			t.Errorf("partition %d: committed %v (found %v), end %d", o.Partition, c.At, ok, o.Offset)
		}
	})
	groups, err := adm.ListGroups(testCtx(t))
	if err != nil || !slices.Contains(groups.Groups(), group) {
		t.Fatalf("list groups after restart: %v %v", groups.Groups(), err)
	}
}

// TestConsumerGroupSessionTimeout: a member that joins and then goes silent
// (no heartbeat, no leave) is removed when its session times out, and the
// rebalance completes for the members that are alive.
func TestConsumerGroupSessionTimeout(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	const topic, group = "gto", "g-timeout"
	createTopic(t, s, topic, 2)
	raw := s.Client(t)
	ctx := testCtx(t)
	join := kmsg.NewPtrJoinGroupRequest()
	join.Group, join.ProtocolType = group, "consumer"
	join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = 500, 60000
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: (&kmsg.ConsumerMemberMetadata{Topics: []string{topic}}).AppendTo(nil)}}
	jr, err := join.RequestWith(ctx, raw)
	if err != nil || jr.ErrorCode != kerr.MemberIDRequired.Code {
		t.Fatalf("first join: %v %+v", err, jr)
	}
	join.MemberID = jr.MemberID
	if jr, err = join.RequestWith(ctx, raw); err != nil || jr.ErrorCode != 0 {
		t.Fatalf("second join: %v %+v", err, jr)
	}
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Group, sync.MemberID, sync.Generation = group, jr.MemberID, jr.Generation
	if sr, err := sync.RequestWith(ctx, raw); err != nil || sr.ErrorCode != 0 {
		t.Fatalf("sync: %v %+v", err, sr)
	}
	// The silent member now never heartbeats again.

	prod := s.Client(t, kgo.DefaultProduceTopic(topic))
	for i := range 20 {
		prod.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprint(i))}, nil)
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	m := startMember(t, s, group, topic)
	defer m.stop()
	waitFor(t, "the live member to own both partitions", func() bool { return m.ownedCount() == 2 })
	waitFor(t, "every record consumed", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return len(m.values) == 20
	})
	adm := kadm.NewClient(s.Client(t))
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if d := described[group]; len(d.Members) != 1 || d.Members[0].MemberID == jr.MemberID {
		t.Fatalf("members after the timeout: %+v", d.Members)
	}
}
