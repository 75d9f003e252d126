package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/sluicehq/sluice/logstore"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// These tests put a second operation in the window between an operation's
// check and its write, through the checked hook. interleave runs it there
// when the lock that must cover the window is free (the race the
// operation must not allow); when the lock is held, the second operation
// would wait for it, so it runs in a goroutine joined after the first
// operation. Each test then asserts an outcome that some serial order of
// the two operations gives.

// raceServer is a Server whose background tick never fires (tests call
// tickGroups themselves).
func raceServer(t *testing.T, topics map[string]int32) *Server {
	t.Helper()
	l := openTestLog(t)
	cfg := DefaultConfig()
	cfg.TickInterval = time.Hour
	s, err := New(l, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for name, n := range topics {
		if err := l.CreateTopic(name, logstore.TopicConfig{Partitions: n}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// at makes fn run once, in the window of the first operation named op.
func (s *Server) at(op string, fn func()) {
	done := false
	s.checked = func(o string) {
		if o == op && !done {
			done = true
			fn()
		}
	}
}

// interleave runs fn at once if free reports the window's lock free, and
// otherwise in a goroutine; the returned wait joins it.
func interleave(free func() bool, fn func()) (wait func()) {
	if free() {
		fn()
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	return func() { <-done }
}

func (s *Server) gmuFree() bool {
	if s.gmu.TryLock() {
		s.gmu.Unlock()
		return true
	}
	return false
}

func (s *Server) offmuFree() bool {
	if s.offmu.TryLock() {
		s.offmu.Unlock()
		return true
	}
	return false
}

// join848 joins (or heartbeats, epoch > 0) member of a consumer-protocol
// group subscribed to topics, and returns its member epoch.
func join848(t *testing.T, s *Server, group, member string, epoch int32, topics ...string) int32 {
	t.Helper()
	hb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	hb.Group, hb.MemberID, hb.MemberEpoch, hb.RebalanceTimeoutMillis = group, member, epoch, 10000
	hb.SubscribedTopicNames, hb.Topics = topics, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	r := s.handleConsumerGroupHeartbeat(&clientConn{}, hb).(*kmsg.ConsumerGroupHeartbeatResponse)
	if r.ErrorCode != 0 {
		t.Errorf("heartbeat of %s: %v", member, kerr.ErrorForCode(r.ErrorCode))
	}
	return r.MemberEpoch
}

// commit commits offset for topic/0 as member at epoch (a consumer-protocol
// member; "" and -1 for an admin commit).
func commit(t *testing.T, s *Server, group, member string, epoch int32, topic string, offset int64) {
	t.Helper()
	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.Version, oc.Group, oc.MemberID, oc.Generation = 9, group, member, epoch
	oc.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: topic, Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: offset, LeaderEpoch: -1}}}}
	r := s.handleOffsetCommit(context.Background(), oc).(*kmsg.OffsetCommitResponse)
	if c := r.Topics[0].Partitions[0].ErrorCode; c != 0 {
		t.Errorf("commit of %s/0 by %q: %v", topic, member, kerr.ErrorForCode(c))
	}
}

// committed returns group's committed offset of topic/0, or -1.
func committed(s *Server, group, topic string) int64 {
	if o, ok := s.offsets.Fetch(group)[logstore.TopicPartition{Topic: topic}]; ok {
		return o.Offset
	}
	return -1
}

// TestDeleteGroupsRacesJoinAndCommit: a member that joins a group and
// commits while DeleteGroups is between its emptiness check and its
// deletion of the offsets keeps its commit. The serial orders are delete,
// join, commit (the commit survives) and join, delete (NON_EMPTY_GROUP);
// in none is an acknowledged commit of a member deleted.
func TestDeleteGroupsRacesJoinAndCommit(t *testing.T) {
	const topic, group = "dgr", "dgr-group"
	s := raceServer(t, map[string]int32{topic: 1})
	commit(t, s, group, "", -1, topic, 3)
	var wait func()
	s.at("deletegroups", func() {
		wait = interleave(s.gmuFree, func() {
			epoch := join848(t, s, group, "m1", 0, topic)
			commit(t, s, group, "m1", epoch, topic, 9)
		})
	})
	req := kmsg.NewPtrDeleteGroupsRequest()
	req.Groups = []string{group}
	r := s.handleDeleteGroups(context.Background(), req).(*kmsg.DeleteGroupsResponse)
	wait()
	s.checked = nil
	switch code := r.Groups[0].ErrorCode; code {
	case 0:
		if got := committed(s, group, topic); got != 9 {
			t.Errorf("the group was deleted, then its new member committed 9; committed offset %d", got)
		}
	case kerr.NonEmptyGroup.Code:
		// joined first: nothing deleted
	default:
		t.Errorf("delete: %v", kerr.ErrorForCode(code))
	}
}

// TestOffsetDeleteRacesJoinAndCommit: a member that joins subscribing to
// the topic and commits while OffsetDelete is between its subscription
// check and its deletion keeps its commit (serial orders: delete, join,
// commit; or join, delete refused with GROUP_SUBSCRIBED_TO_TOPIC).
func TestOffsetDeleteRacesJoinAndCommit(t *testing.T) {
	const topic, group = "odr", "odr-group"
	s := raceServer(t, map[string]int32{topic: 1})
	commit(t, s, group, "", -1, topic, 3)
	var wait func()
	s.at("offsetdelete", func() {
		wait = interleave(s.gmuFree, func() {
			epoch := join848(t, s, group, "m1", 0, topic)
			commit(t, s, group, "m1", epoch, topic, 9)
		})
	})
	req := kmsg.NewPtrOffsetDeleteRequest()
	req.Group = group
	req.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: topic, Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
	r := s.handleOffsetDelete(context.Background(), req).(*kmsg.OffsetDeleteResponse)
	wait()
	s.checked = nil
	if r.ErrorCode != 0 {
		t.Fatalf("offset delete: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	switch code := r.Topics[0].Partitions[0].ErrorCode; code {
	case 0:
		if got := committed(s, group, topic); got != 9 {
			t.Errorf("the offset was deleted, then the new member committed 9; committed offset %d", got)
		}
	case kerr.GroupSubscribedToTopic.Code:
		// joined first: nothing deleted
	default:
		t.Errorf("offset delete: %v", kerr.ErrorForCode(code))
	}
}

// TestDeleteTopicsRacesCommit: a topic deleted while a commit of its
// offset is between its topic check and its write leaves no offset of the
// deleted topic (serial orders: commit, delete; or delete, commit refused
// with UNKNOWN_TOPIC_OR_PARTITION).
func TestDeleteTopicsRacesCommit(t *testing.T) {
	const topic, group = "dtr", "dtr-group"
	s := raceServer(t, map[string]int32{topic: 1})
	var wait func()
	s.at("offsetcommit", func() {
		wait = interleave(s.offmuFree, func() {
			req := kmsg.NewPtrDeleteTopicsRequest()
			req.TopicNames = []string{topic}
			r := s.handleDeleteTopics(req).(*kmsg.DeleteTopicsResponse)
			if c := r.Topics[0].ErrorCode; c != 0 {
				t.Errorf("delete topic: %v", kerr.ErrorForCode(c))
			}
		})
	})
	commit(t, s, group, "", -1, topic, 5)
	wait()
	s.checked = nil
	if got := committed(s, group, topic); got != -1 {
		t.Errorf("an offset of the deleted topic survived: %d", got)
	}
}

// TestTickRacesHeartbeatTopicList: a tick that read the topic list before
// a topic was deleted cannot apply it after a heartbeat applied the newer
// list: the group's target assignment must not hold the deleted topic's
// partitions once both are done.
func TestTickRacesHeartbeatTopicList(t *testing.T) {
	const kept, gone, group = "tr-kept", "tr-gone", "tr-group"
	s := raceServer(t, map[string]int32{kept: 1, gone: 2})
	epoch := join848(t, s, group, "m1", 0, kept, gone)
	var wait func()
	s.at("tick", func() {
		if err := s.deleteTopic(gone); err != nil {
			t.Error(err)
		}
		wait = interleave(s.gmuFree, func() { join848(t, s, group, "m1", epoch, kept, gone) })
	})
	s.tickGroups(time.Now())
	wait()
	s.checked = nil
	s.gmu.Lock()
	defer s.gmu.Unlock()
	g := s.cgroups.groups[group]
	if _, ok := g.subMeta[gone]; ok {
		t.Errorf("the group's subscribed partitions hold the deleted topic: %v", g.subMeta)
	}
}
