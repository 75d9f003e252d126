package kafka_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/kafka"
	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// startConsumerProtocol starts a server whose consumer-protocol groups
// heartbeat quickly.
func startConsumerProtocol(t *testing.T) *kafkatest.Server {
	cfg := kafka.DefaultConfig()
	cfg.ConsumerHeartbeatInterval = 100 * time.Millisecond
	cfg.ConsumerSessionTimeout = 10 * time.Second
	return kafkatest.Start(t, kafkatest.Options{Config: &cfg})
}

// tally counts every record value consumed by any member of a test.
type tally struct {
	mu     sync.Mutex
	counts map[string]int
}

func (c *tally) add(v string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts[v]++
}

func (c *tally) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.counts))
	for k, v := range c.counts {
		out[k] = v
	}
	return out
}

// consumer is one group member consuming into a tally. Rebalances are
// blocked while polled records are processed, so that the offsets
// committed on revocation cover exactly what was counted.
type consumer struct {
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	owned  map[int32]bool
}

func startConsumer(t *testing.T, s *kafkatest.Server, group, topic string, c *tally, opts ...kgo.Opt) *consumer {
	m := &consumer{done: make(chan struct{}), owned: map[int32]bool{}}
	base := []kgo.Opt{
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.BlockRebalanceOnPoll(), kgo.AutoCommitInterval(100 * time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, p := range a[topic] {
				m.owned[p] = true
			}
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, r map[string][]int32) {
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				t.Errorf("commit on revoke: %v", err)
			}
			m.drop(r[topic])
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, r map[string][]int32) { m.drop(r[topic]) }),
	}
	m.cl = s.Client(t, append(base, opts...)...)
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			fs := m.cl.PollFetches(ctx)
			fs.EachRecord(func(r *kgo.Record) { c.add(string(r.Value)) })
			m.cl.AllowRebalance()
		}
	}()
	return m
}

func (m *consumer) drop(parts []int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range parts {
		delete(m.owned, p)
	}
}

func (m *consumer) ownedCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.owned)
}

func (m *consumer) stop() {
	m.cancel()
	<-m.done
	m.cl.Close() // revokes (committing) and leaves the group
}

func produceRange(t *testing.T, cl *kgo.Client, prefix string, from, to int) {
	t.Helper()
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("%s%d", prefix, i))})
	}
	if err := cl.ProduceSync(testCtx(t), recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// checkOnce fails unless the tally holds exactly the values prefix+[0,n),
// each once.
func checkOnce(t *testing.T, c *tally, prefix string, n int) {
	t.Helper()
	got := c.snapshot()
	for v, k := range got {
		if k != 1 {
			t.Errorf("%s consumed %d times", v, k)
		}
	}
	for i := range n {
		if got[fmt.Sprintf("%s%d", prefix, i)] == 0 {
			t.Errorf("%s%d never consumed", prefix, i)
		}
	}
	if len(got) != n {
		t.Errorf("consumed %d distinct values, want %d", len(got), n)
	}
}

// TestConsumerProtocolGroup: three kgo consumers using the consumer group
// protocol (KIP-848, server-side assignment) share a topic while members
// join and leave, consuming every record exactly once; their committed
// offsets resume after the consumers restart; a classic-protocol group
// consumes the same topic side by side.
func TestConsumerProtocolGroup(t *testing.T) {
	s := startConsumerProtocol(t)
	const topic, group, classicGroup, parts = "kip848", "g848", "gclassic", 6
	createTopic(t, s, topic, parts)
	prod := s.Client(t, kgo.DefaultProduceTopic(topic))
	produceRange(t, prod, "v", 0, 300)

	var got, classicGot tally
	got.counts, classicGot.counts = map[string]int{}, map[string]int{}
	classic := startConsumer(t, s, classicGroup, topic, &classicGot)

	a := startConsumer(t, s, group, topic, &got, kgo.ServerSideBalancer())
	waitFor(t, "a owns every partition", func() bool { return a.ownedCount() == parts })
	b := startConsumer(t, s, group, topic, &got, kgo.ServerSideBalancer())
	produceRange(t, prod, "v", 300, 600)
	c := startConsumer(t, s, group, topic, &got, kgo.ServerSideBalancer())
	waitFor(t, "a, b and c own two partitions each", func() bool {
		return a.ownedCount() == 2 && b.ownedCount() == 2 && c.ownedCount() == 2
	})
	checkGroupViews(t, s, group, classicGroup, 3)

	produceRange(t, prod, "v", 600, 900)
	b.stop()
	waitFor(t, "a and c own every partition", func() bool { return a.ownedCount()+c.ownedCount() == parts })
	produceRange(t, prod, "v", 900, 1200)
	waitFor(t, "every record consumed", func() bool { return len(got.snapshot()) == 1200 })
	a.stop()
	c.stop()
	checkOnce(t, &got, "v", 1200)

	// Restarted consumers resume from the committed offsets.
	produceRange(t, prod, "v", 1200, 1500)
	var again tally
	again.counts = map[string]int{}
	for range 3 {
		m := startConsumer(t, s, group, topic, &again, kgo.ServerSideBalancer())
		defer m.stop()
	}
	waitFor(t, "the new records consumed", func() bool { return len(again.snapshot()) == 300 })
	for v := range again.snapshot() {
		if got.counts[v] > 0 {
			t.Errorf("%s consumed again after the restart", v)
		}
	}

	waitFor(t, "the classic group consumed everything", func() bool { return len(classicGot.snapshot()) == 1500 })
	classic.stop()
	checkOnce(t, &classicGot, "v", 1500)
}

// checkGroupViews checks the admin view of both kinds of groups and that a
// classic JoinGroup cannot take the consumer group's id.
func checkGroupViews(t *testing.T, s *kafkatest.Server, group, classicGroup string, members int) {
	t.Helper()
	ctx := testCtx(t)
	raw := s.Client(t)
	adm := kadm.NewClient(raw)

	waitFor(t, "the consumer group to be stable", func() bool {
		d := kmsg.NewPtrConsumerGroupDescribeRequest()
		d.Groups = []string{group, classicGroup}
		resp, err := d.RequestWith(ctx, raw)
		if err != nil {
			t.Fatal(err)
		}
		if g := resp.Groups[1]; g.ErrorCode != kerr.GroupIDNotFound.Code {
			t.Fatalf("ConsumerGroupDescribe of a classic group: %+v", g)
		}
		g := resp.Groups[0]
		if g.ErrorCode != 0 || g.AssignorName != "uniform" || len(g.Members) != members {
			t.Fatalf("ConsumerGroupDescribe: %+v", g)
		}
		total := 0
		for _, m := range g.Members {
			for _, tp := range m.Assignment.TopicPartitions {
				total += len(tp.Partitions)
			}
		}
		return g.State == "Stable" && total == 6
	})

	for _, types := range [][]string{{"consumer"}, {"classic"}} {
		l := kmsg.NewPtrListGroupsRequest()
		l.TypesFilter = types
		resp, err := l.RequestWith(ctx, raw)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"consumer": group, "classic": classicGroup}[types[0]]
		found := false
		for _, g := range resp.Groups {
			if g.GroupType != types[0] {
				t.Errorf("ListGroups %v returned %+v", types, g)
			}
			found = found || g.Group == want
		}
		if !found {
			t.Errorf("ListGroups %v: %s missing from %+v", types, want, resp.Groups)
		}
	}

	described, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if d := described[group]; d.ProtocolType != "consumer" || len(d.Members) != members {
		t.Errorf("DescribeGroups of the consumer group: %+v", d)
	}

	join := kmsg.NewPtrJoinGroupRequest()
	join.Group, join.ProtocolType, join.SessionTimeoutMillis = group, "consumer", 10000
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: (&kmsg.ConsumerMemberMetadata{Topics: []string{"kip848"}}).AppendTo(nil)}}
	if jr, err := join.RequestWith(ctx, raw); err != nil || jr.ErrorCode != kerr.InconsistentGroupProtocol.Code {
		t.Errorf("JoinGroup on a consumer group: %v %+v", err, jr)
	}

	// A consumer heartbeat cannot take the classic group's id.
	hb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	hb.Group, hb.MemberID, hb.RebalanceTimeoutMillis = classicGroup, "intruder", 10000
	hb.SubscribedTopicNames, hb.Topics = []string{"kip848"}, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	if r, err := hb.RequestWith(ctx, raw); err != nil || r.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Errorf("ConsumerGroupHeartbeat on a classic group: %v %+v", err, r)
	}

	// Commits and fetches are checked against the member epoch.
	d := kmsg.NewPtrConsumerGroupDescribeRequest()
	d.Groups = []string{group}
	dr, err := d.RequestWith(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	member := dr.Groups[0].Members[0]
	for _, c := range []struct {
		id    string
		epoch int32
		want  *kerr.Error
	}{{"nobody", member.MemberEpoch, kerr.UnknownMemberID}, {member.MemberID, member.MemberEpoch + 10, kerr.StaleMemberEpoch}} {
		oc := kmsg.NewPtrOffsetCommitRequest()
		oc.Version, oc.Group, oc.MemberID, oc.Generation = 9, group, c.id, c.epoch
		oc.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "kip848", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 0}}}}
		if r, err := oc.RequestWith(ctx, raw); err != nil || r.Topics[0].Partitions[0].ErrorCode != c.want.Code {
			t.Errorf("OffsetCommit as %s at %d: %v %+v", c.id, c.epoch, err, r)
		}
		of := kmsg.NewPtrOffsetFetchRequest()
		of.Version = 9
		of.Groups = []kmsg.OffsetFetchRequestGroup{{Group: group, MemberID: kmsg.StringPtr(c.id), MemberEpoch: c.epoch}}
		if r, err := of.RequestWith(ctx, raw); err != nil || r.Groups[0].ErrorCode != c.want.Code {
			t.Errorf("OffsetFetch as %s at %d: %v %+v", c.id, c.epoch, err, r)
		}
	}

	if resp, err := adm.DeleteGroups(ctx, group); err != nil || resp[group].Err == nil || !errorsIs(resp[group].Err, kerr.NonEmptyGroup) {
		t.Errorf("DeleteGroups of a non-empty consumer group: %v %+v", err, resp)
	}
}

func errorsIs(err error, target *kerr.Error) bool {
	ke, ok := err.(*kerr.Error)
	return ok && ke.Code == target.Code
}

// TestConsumerProtocolSessionTimeout: a member that joins and goes silent
// is fenced when its session times out, and a live kgo member then gets
// every partition.
func TestConsumerProtocolSessionTimeout(t *testing.T) {
	cfg := kafka.DefaultConfig()
	cfg.ConsumerHeartbeatInterval = 100 * time.Millisecond
	cfg.ConsumerSessionTimeout = 2 * time.Second
	s := kafkatest.Start(t, kafkatest.Options{Config: &cfg})
	const topic, group = "kip848to", "g848to"
	createTopic(t, s, topic, 4)
	raw := s.Client(t)
	ctx := testCtx(t)
	hb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	hb.Group, hb.MemberID, hb.RebalanceTimeoutMillis = group, "silent", 10000
	hb.SubscribedTopicNames, hb.Topics = []string{topic}, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	r, err := hb.RequestWith(ctx, raw)
	if err != nil || r.ErrorCode != 0 || r.MemberEpoch != 1 || r.Assignment == nil || len(r.Assignment.Topics[0].Partitions) != 4 {
		t.Fatalf("silent member join: %v %+v", err, r)
	}
	// It never heartbeats again.
	var got tally
	got.counts = map[string]int{}
	prod := s.Client(t, kgo.DefaultProduceTopic(topic))
	produceRange(t, prod, "s", 0, 100)
	m := startConsumer(t, s, group, topic, &got, kgo.ServerSideBalancer())
	defer m.stop()
	waitFor(t, "the live member to own every partition", func() bool { return m.ownedCount() == 4 })
	waitFor(t, "every record consumed", func() bool { return len(got.snapshot()) == 100 })
	hb.MemberEpoch, hb.Topics = 1, nil
	if r, err := hb.RequestWith(ctx, raw); err != nil || r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("silent member after its session: %v %+v", err, r)
	}
}

// TestConsumerProtocolRegex: a kgo consumer subscribed by regex gets the
// topics the server matches, including one created after it joined.
func TestConsumerProtocolRegex(t *testing.T) {
	s := startConsumerProtocol(t)
	createTopic(t, s, "kre-a", 2)
	createTopic(t, s, "other", 1)
	var got tally
	got.counts = map[string]int{}
	cl := s.Client(t)
	produceTo := func(topic string, n int) {
		for i := range n {
			if err := cl.ProduceSync(testCtx(t), &kgo.Record{Topic: topic, Value: []byte(fmt.Sprintf("%s-%d", topic, i))}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	produceTo("kre-a", 10)
	produceTo("other", 5)
	m := &consumer{done: make(chan struct{}), owned: map[int32]bool{}}
	m.cl = s.Client(t, kgo.ConsumerGroup("gre"), kgo.ConsumeRegex(), kgo.ConsumeTopics("kre-.*"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.ServerSideBalancer(), kgo.MetadataMinAge(100*time.Millisecond), kgo.MetadataMaxAge(200*time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			m.cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got.add(string(r.Value)) })
		}
	}()
	defer m.stop()
	waitFor(t, "kre-a consumed", func() bool { return len(got.snapshot()) == 10 })
	createTopic(t, s, "kre-b", 1)
	produceTo("kre-b", 5)
	waitFor(t, "kre-b consumed", func() bool { return len(got.snapshot()) == 15 })
	for v := range got.snapshot() {
		if len(v) < 4 || v[:4] != "kre-" {
			t.Fatalf("consumed %s, which the regex does not match", v)
		}
	}
	d := kmsg.NewPtrConsumerGroupDescribeRequest()
	d.Groups = []string{"gre"}
	resp, err := d.RequestWith(testCtx(t), cl)
	if err != nil || len(resp.Groups[0].Members) != 1 || resp.Groups[0].Members[0].SubscribedTopicRegex == nil {
		t.Fatalf("describe: %v %+v", err, resp)
	}
}
