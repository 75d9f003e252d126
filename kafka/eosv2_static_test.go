package kafka_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestEOSv2StaticMemberRestart checks static membership with the
// cooperative-sticky protocol: an instance that restarts (same instance id,
// new member id) gets its partitions back at once, well within the session
// timeout, without moving anyone else's; its old member id is fenced; and
// LeaveGroup by instance id hands its partitions to the others at once.
func TestEOSv2StaticMemberRestart(t *testing.T) {
	onEachCluster(t, func(t *testing.T, c *eosCluster) {
		const topic, group, parts = "st", "static", 4
		const session = 15 * time.Second // longer than the test may wait
		c.createTopic(t, topic, parts)
		ctx := testCtx(t)
		adm := c.admin(t)
		type member struct {
			cl         *kgo.Client
			assigned   atomic.Int64 // OnPartitionsAssigned calls
			revoked    atomic.Int64 // partitions revoked or lost
			mu         sync.Mutex
			owned      []int32
			pollCancel context.CancelFunc
			polled     chan struct{}
		}
		start := func(instance string) *member {
			m := &member{polled: make(chan struct{})}
			m.cl = c.client(t,
				kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
				kgo.Balancers(kgo.CooperativeStickyBalancer()),
				kgo.InstanceID(instance),
				kgo.SessionTimeout(session), kgo.HeartbeatInterval(100*time.Millisecond),
				kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
					m.assigned.Add(1)
					m.mu.Lock()
					defer m.mu.Unlock()
					m.owned = append(m.owned, a[topic]...)
					slices.Sort(m.owned)
				}),
				kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, r map[string][]int32) {
					m.revoked.Add(int64(len(r[topic])))
					m.mu.Lock()
					defer m.mu.Unlock()
					m.owned = slices.DeleteFunc(m.owned, func(p int32) bool { return slices.Contains(r[topic], p) })
				}),
				kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, r map[string][]int32) {
					m.revoked.Add(int64(len(r[topic])))
					m.mu.Lock()
					defer m.mu.Unlock()
					m.owned = slices.DeleteFunc(m.owned, func(p int32) bool { return slices.Contains(r[topic], p) })
				}),
			)
			pctx, cancel := context.WithCancel(context.Background())
			m.pollCancel = cancel
			go func() {
				defer close(m.polled)
				for pctx.Err() == nil {
					m.cl.PollFetches(pctx)
				}
			}()
			return m
		}
		owned := func(m *member) []int32 {
			m.mu.Lock()
			defer m.mu.Unlock()
			return slices.Clone(m.owned)
		}
		stop := func(m *member) {
			m.pollCancel()
			<-m.polled
			m.cl.Close() // static: no LeaveGroup
		}
		describe := func() kadm.DescribedGroup {
			d, err := adm.DescribeGroups(ctx, group)
			if err != nil {
				t.Fatal(err)
			}
			return d[group]
		}
		memberOf := func(g kadm.DescribedGroup, instance string) string {
			for _, m := range g.Members {
				if m.InstanceID != nil && *m.InstanceID == instance {
					return m.MemberID
				}
			}
			return ""
		}

		// A first, so that it leads.
		a := start("a")
		waitFor(t, "A to own every partition", func() bool { return len(owned(a)) == parts })
		b := start("b")
		waitFor(t, "two members sharing the partitions", func() bool { return len(owned(a)) == parts/2 && len(owned(b)) == parts/2 })
		waitFor(t, "a stable group", func() bool { return describe().State == "Stable" })
		aParts, bParts := owned(a), owned(b)

		// restart stops the instance's member and starts a fresh client
		// with the same instance id; it returns the new member and the
		// old member id.
		restart := func(m *member, instance string, want []int32) (*member, string) {
			t.Helper()
			oldID := memberOf(describe(), instance)
			stop(m)
			began := time.Now()
			m2 := start(instance)
			waitFor(t, instance+" restarted to own its partitions", func() bool { return slices.Equal(owned(m2), want) })
			if took := time.Since(began); took > session/2 {
				t.Fatalf("restart took %v: waited for the session timeout", took)
			}
			waitFor(t, "a stable group", func() bool { return describe().State == "Stable" })
			d := describe()
			if id := memberOf(d, instance); id == "" || id == oldID || len(d.Members) != 2 {
				t.Fatalf("after the restart of %s: member id %q (was %q), %d members", instance, id, oldID, len(d.Members))
			}
			return m2, oldID
		}

		// B (a follower) restarts: it takes over its slot, the group
		// does not rebalance at all.
		aAssigned, aRevoked := a.assigned.Load(), a.revoked.Load()
		b, oldB := restart(b, "b", bParts)
		t.Logf("A across B's restart: assign callbacks %d→%d, revoked %d→%d", aAssigned, a.assigned.Load(), aRevoked, a.revoked.Load())
		if a.revoked.Load() != aRevoked || !slices.Equal(owned(a), aParts) {
			t.Fatalf("A lost partitions in B's restart: owns %v (had %v)", owned(a), aParts)
		}
		if !c.fake && a.assigned.Load() != aAssigned {
			// kfake rebalances: it compares the rejoining member's
			// protocol metadata bytes, which a new cooperative client
			// changes (it owns nothing yet); Kafka only checks that
			// the group's protocol stays the same.
			t.Fatalf("B's restart rebalanced the group (A's assign callbacks %d→%d)", aAssigned, a.assigned.Load())
		}

		// A (the leader) restarts: told to keep the assignment
		// (KIP-814). franz-go may still rebalance once, cooperatively
		// (it checks the kept assignment against one it computes);
		// nobody loses partitions.
		bRevoked := b.revoked.Load()
		a2, oldA := restart(a, "a", aParts)
		if b.revoked.Load() != bRevoked || !slices.Equal(owned(b), bParts) {
			t.Fatalf("B lost partitions in A's restart: owns %v (had %v)", owned(b), bParts)
		}

		// The old member ids are fenced.
		for _, old := range []struct{ id, instance string }{{oldA, "a"}, {oldB, "b"}} {
			hb := kmsg.NewPtrHeartbeatRequest()
			hb.Group, hb.MemberID, hb.InstanceID, hb.Generation = group, old.id, &old.instance, 1
			if resp, err := hb.RequestWith(ctx, c.client(t)); err != nil || resp.ErrorCode != kerr.FencedInstanceID.Code {
				t.Fatalf("old member heartbeat: %v %v, want FENCED_INSTANCE_ID", err, resp)
			}
		}
		if !c.fake {
			// kfake resolves the instance id to its current member and
			// removes that one: a zombie's LeaveGroup would remove the
			// live instance.
			inst := "a"
			lg := kmsg.NewPtrLeaveGroupRequest()
			lg.Group = group
			lm := kmsg.NewLeaveGroupRequestMember()
			lm.MemberID, lm.InstanceID = oldA, &inst
			lg.Members = append(lg.Members, lm)
			if resp, err := lg.RequestWith(ctx, c.client(t)); err != nil || len(resp.Members) != 1 || resp.Members[0].ErrorCode != kerr.FencedInstanceID.Code {
				t.Fatalf("old member leave: %v %+v, want FENCED_INSTANCE_ID", err, resp)
			}
			if !slices.Equal(owned(a2), aParts) || len(describe().Members) != 2 {
				t.Fatal("the fenced LeaveGroup removed the live instance")
			}
		}

		// A shuts down and is removed by instance id: B takes over at
		// once, not after the session timeout.
		stop(a2)
		began := time.Now()
		left, err := adm.LeaveGroup(ctx, kadm.LeaveGroup(group).InstanceIDs("a"))
		if err != nil || left.Error() != nil {
			t.Fatalf("leave by instance id: %v %v", err, left.Error())
		}
		waitFor(t, "B to own every partition", func() bool { return len(owned(b)) == parts })
		if took := time.Since(began); took > session/2 {
			t.Fatalf("takeover took %v: waited for the session timeout", took)
		}
		stop(b)
	})
}
