package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// rawMember is a classic group member driven by raw requests, so that a
// test can keep an old generation or member id (a zombie).
type rawMember struct {
	cl       *kgo.Client
	group    string
	topic    string
	instance *string
	id       string
	gen      int32
}

// join joins (or rejoins) the group, through KIP-394's MEMBER_ID_REQUIRED
// when asked, and records the member id and generation.
func (m *rawMember) join(ctx context.Context, t *testing.T) {
	t.Helper()
	if err := m.joinE(ctx); err != nil {
		t.Fatal(err)
	}
}

// joinE is join for another goroutine than the test's.
func (m *rawMember) joinE(ctx context.Context) error {
	for {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Group = m.group
		req.MemberID = m.id
		req.InstanceID = m.instance
		req.ProtocolType = "consumer"
		req.SessionTimeoutMillis = 10000
		req.RebalanceTimeoutMillis = 10000
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name = "cooperative-sticky"
		meta := kmsg.NewConsumerMemberMetadata()
		meta.Topics = []string{m.topic}
		p.Metadata = meta.AppendTo(nil)
		req.Protocols = append(req.Protocols, p)
		resp, err := req.RequestWith(ctx, m.cl)
		if err != nil {
			return fmt.Errorf("join: %w", err)
		}
		if resp.ErrorCode == kerr.MemberIDRequired.Code {
			m.id = resp.MemberID
			continue
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return fmt.Errorf("join %s: %w", m.id, err)
		}
		m.id, m.gen = resp.MemberID, resp.Generation
		return nil
	}
}

// sync syncs; the leader assigns nothing (the broker does not look).
func (m *rawMember) sync(ctx context.Context, t *testing.T, members ...string) {
	t.Helper()
	req := kmsg.NewPtrSyncGroupRequest()
	req.Group, req.MemberID, req.InstanceID, req.Generation = m.group, m.id, m.instance, m.gen
	for _, id := range members {
		a := kmsg.NewSyncGroupRequestGroupAssignment()
		a.MemberID = id
		req.GroupAssignment = append(req.GroupAssignment, a)
	}
	resp, err := req.RequestWith(ctx, m.cl)
	if err != nil || resp.ErrorCode != 0 {
		t.Fatalf("sync %s: %v %v", m.id, err, kerr.ErrorForCode(resp.ErrorCode))
	}
}

func (m *rawMember) heartbeat(ctx context.Context, t *testing.T) error {
	t.Helper()
	req := kmsg.NewPtrHeartbeatRequest()
	req.Group, req.MemberID, req.InstanceID, req.Generation = m.group, m.id, m.instance, m.gen
	resp, err := req.RequestWith(ctx, m.cl)
	if err != nil {
		t.Fatalf("heartbeat: %v", err)
	}
	return kerr.ErrorForCode(resp.ErrorCode)
}

// txnProducer is a transactional producer whose consumed offsets are
// committed by raw AddOffsetsToTxn and TxnOffsetCommit requests, as a
// member (possibly a zombie) of a group.
type txnProducer struct {
	cl    *kgo.Client
	txnID string
}

func newTxnProducer(t *testing.T, c *eosCluster, txnID, topic string) *txnProducer {
	return &txnProducer{cl: c.rawClient(t, kgo.TransactionalID(txnID), kgo.DefaultProduceTopic(topic), kgo.TransactionTimeout(20*time.Second)), txnID: txnID}
}

func (p *txnProducer) begin(ctx context.Context, t *testing.T, values ...string) {
	t.Helper()
	if err := p.cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, v := range values {
		if err := p.cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", v, err)
		}
	}
}

// commitOffset commits topic/0 = offset for group inside the open
// transaction, as member m (generation, member id, instance id); it
// returns the partition's error.
func (p *txnProducer) commitOffset(ctx context.Context, t *testing.T, m *rawMember, offset int64) error {
	t.Helper()
	pid, epoch, err := p.cl.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = p.txnID, pid, epoch, m.group
	aresp, err := add.RequestWith(ctx, p.cl)
	if err != nil || aresp.ErrorCode != 0 {
		t.Fatalf("add offsets to txn: %v %v", err, kerr.ErrorForCode(aresp.ErrorCode))
	}
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group = p.txnID, pid, epoch, m.group
	req.Generation, req.MemberID, req.InstanceID = m.gen, m.id, m.instance
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	rt.Topic = m.topic
	rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = 0, offset
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, p.cl)
	if err != nil {
		t.Fatalf("txn offset commit: %v", err)
	}
	return kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
}

func (p *txnProducer) end(ctx context.Context, t *testing.T, commit kgo.TransactionEndTry) {
	t.Helper()
	if err := p.cl.EndTransaction(ctx, commit); err != nil {
		t.Fatalf("end transaction: %v", err)
	}
}

// fetchStableOffset returns group's committed offset of topic/0 (asking
// for a stable one when requireStable), or the error answered.
func fetchStableOffset(ctx context.Context, t *testing.T, cl *kgo.Client, group, topic string, requireStable bool) (int64, error) {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	req.RequireStable = requireStable
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic, rt.Partitions = topic, []int32{0}
	req.Topics = append(req.Topics, rt)
	rg := kmsg.NewOffsetFetchRequestGroup() // v8+
	rg.Group = group
	rgt := kmsg.NewOffsetFetchRequestGroupTopic()
	rgt.Topic, rgt.Partitions = topic, []int32{0}
	rg.Topics = append(rg.Topics, rgt)
	req.Groups = append(req.Groups, rg)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("offset fetch: %v", err)
	}
	if len(resp.Groups) > 0 {
		g := resp.Groups[0]
		if g.ErrorCode != 0 {
			return 0, kerr.ErrorForCode(g.ErrorCode)
		}
		p := g.Topics[0].Partitions[0]
		return p.Offset, kerr.ErrorForCode(p.ErrorCode)
	}
	if resp.ErrorCode != 0 {
		return 0, kerr.ErrorForCode(resp.ErrorCode)
	}
	p := resp.Topics[0].Partitions[0]
	return p.Offset, kerr.ErrorForCode(p.ErrorCode)
}

// TestEOSv2TxnOffsetCommitFencesZombies checks KIP-447's fencing on the
// broker: a member that kept an old generation, a member removed from the
// group and a static member whose instance restarted under a new member id
// cannot commit offsets in a transaction (ILLEGAL_GENERATION,
// UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID); its client aborts, so what it
// produced is never visible to read_committed readers and its offsets are
// never committed.
func TestEOSv2TxnOffsetCommitFencesZombies(t *testing.T) {
	onEachCluster(t, func(t *testing.T, c *eosCluster) {
		const in, out = "zin", "zout"
		c.createTopic(t, in, 1)
		c.createTopic(t, out, 1)
		ctx := testCtx(t)
		cl := c.rawClient(t)
		p := newTxnProducer(t, c, "zombie-tx", out)

		// A rejected commit is aborted by the client: no offsets, no
		// records, no pending offsets left behind.
		rejected := func(group, what string, zombie *rawMember, want *kerr.Error, value string) {
			t.Helper()
			p.begin(ctx, t, value)
			if err := p.commitOffset(ctx, t, zombie, 99); !errors.Is(err, want) {
				t.Fatalf("%s: txn offset commit: %v, want %v", what, err, want)
			}
			p.end(ctx, t, kgo.TryAbort)
			if off, err := fetchStableOffset(ctx, t, cl, group, in, true); err != nil || off == 99 {
				t.Fatalf("%s: committed offset %d, %v", what, off, err)
			}
		}

		// Generation: the only member rejoins (generation 2); a commit at
		// generation 1 is stale. A commit at generation 2 goes through.
		m := &rawMember{cl: cl, group: "g-gen", topic: in}
		m.join(ctx, t)
		m.sync(ctx, t, m.id)
		zombie := *m
		m.join(ctx, t)
		m.sync(ctx, t, m.id)
		if m.gen == zombie.gen {
			t.Fatalf("rejoin kept generation %d", m.gen)
		}
		rejected("g-gen", "old generation", &zombie, kerr.IllegalGeneration, "zombie-gen")
		p.begin(ctx, t, "live-gen")
		if err := p.commitOffset(ctx, t, m, 7); err != nil {
			t.Fatalf("current generation: %v", err)
		}
		p.end(ctx, t, kgo.TryCommit)
		if off, err := fetchStableOffset(ctx, t, cl, "g-gen", in, true); err != nil || off != 7 {
			t.Fatalf("committed offset %d, %v; want 7", off, err)
		}

		// Unknown member: m1 is removed by a rebalance it missed while m2
		// joined; m1 then commits with its old identity.
		m1 := &rawMember{cl: cl, group: "g-gone", topic: in}
		m1.join(ctx, t)
		m1.sync(ctx, t, m1.id)
		m2 := &rawMember{cl: c.rawClient(t), group: "g-gone", topic: in}
		joined := make(chan error, 1)
		go func() { joined <- m2.joinE(ctx) }()
		waitFor(t, "m1 told to rejoin", func() bool { return errors.Is(m1.heartbeat(ctx, t), kerr.RebalanceInProgress) })
		leave := kmsg.NewPtrLeaveGroupRequest()
		leave.Group = "g-gone"
		lm := kmsg.NewLeaveGroupRequestMember()
		lm.MemberID = m1.id
		leave.Members = append(leave.Members, lm)
		if resp, err := leave.RequestWith(ctx, cl); err != nil || resp.ErrorCode != 0 {
			t.Fatalf("leave: %v %v", err, resp)
		}
		if err := <-joined; err != nil {
			t.Fatal(err)
		}
		m2.sync(ctx, t, m2.id)
		rejected("g-gone", "removed member", m1, kerr.UnknownMemberID, "zombie-gone")

		// Static member: the instance restarts (no member id) and takes
		// over; the old member id is fenced.
		inst := "i1"
		s1 := &rawMember{cl: cl, group: "g-static", topic: in, instance: &inst}
		s1.join(ctx, t)
		s1.sync(ctx, t, s1.id)
		old := *s1
		s1.id = ""
		s1.join(ctx, t)
		if s1.id == old.id {
			t.Fatalf("restarted static member kept member id %s", s1.id)
		}
		s1.sync(ctx, t)
		if err := old.heartbeat(ctx, t); !errors.Is(err, kerr.FencedInstanceID) {
			t.Fatalf("old member's heartbeat: %v, want FENCED_INSTANCE_ID", err)
		}
		rejected("g-static", "fenced instance", &old, kerr.FencedInstanceID, "zombie-static")

		committed := c.readToSentinel(t, out, 1, kgo.ReadCommitted())
		if !slices.Equal(committed, []string{"live-gen"}) {
			t.Fatalf("read_committed: %v, want only live-gen", committed)
		}
		uncommitted := c.readToSentinel(t, out, 1, kgo.ReadUncommitted())
		if want := []string{"zombie-gen", "live-gen", "zombie-gone", "zombie-static"}; !slices.Equal(uncommitted, want) {
			t.Fatalf("read_uncommitted: %v, want %v", uncommitted, want)
		}
	})
}

// TestEOSv2RequireStableOffsets checks OffsetFetch with RequireStable
// (KIP-447): while a transaction holds pending offsets for a group's
// partition the answer is UNSTABLE_OFFSET_COMMIT (a new owner retries
// instead of reading an offset about to change); once the transaction
// commits it is the committed offset, once it aborts the previous one.
func TestEOSv2RequireStableOffsets(t *testing.T) {
	onEachCluster(t, func(t *testing.T, c *eosCluster) {
		const in, out, group = "sin", "sout", "stable"
		c.createTopic(t, in, 1)
		c.createTopic(t, out, 1)
		ctx := testCtx(t)
		cl := c.rawClient(t)
		p := newTxnProducer(t, c, "stable-tx", out)
		m := &rawMember{cl: cl, group: group, topic: in}
		m.join(ctx, t)
		m.sync(ctx, t, m.id)

		check := func(what string, requireStable bool, want int64, wantErr error) {
			t.Helper()
			off, err := fetchStableOffset(ctx, t, cl, group, in, requireStable)
			if !errors.Is(err, wantErr) || (wantErr == nil && off != want) {
				t.Fatalf("%s: offset %d, err %v; want %d, %v", what, off, err, want, wantErr)
			}
		}
		p.begin(ctx, t, "a")
		if err := p.commitOffset(ctx, t, m, 5); err != nil {
			t.Fatal(err)
		}
		check("pending, stable", true, 0, kerr.UnstableOffsetCommit)
		check("pending, not stable", false, -1, nil)
		p.end(ctx, t, kgo.TryCommit)
		check("committed", true, 5, nil)

		p.begin(ctx, t, "b")
		if err := p.commitOffset(ctx, t, m, 9); err != nil {
			t.Fatal(err)
		}
		check("pending again", true, 0, kerr.UnstableOffsetCommit)
		p.end(ctx, t, kgo.TryAbort)
		check("aborted", true, 5, nil)
	})
}
