package kafka_test

import (
	"errors"
	"testing"

	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestOffsetDeleteConsumerProtocolSubscribed: OffsetDelete of a partition
// that a consumer-protocol (KIP-848) group's members subscribe to answers
// GROUP_SUBSCRIBED_TO_TOPIC and keeps the offset, as for a classic group;
// an unsubscribed topic's offset goes.
func TestOffsetDeleteConsumerProtocolSubscribed(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	ctx := testCtx(t)
	const consumed, other, group = "od848-consumed", "od848-other", "od848-group"
	createTopic(t, s, consumed, 1)
	createTopic(t, s, other, 1)
	raw := s.Client(t)
	adm := kadm.NewClient(raw)
	var offs kadm.Offsets
	offs.Add(kadm.Offset{Topic: consumed, Partition: 0, At: 7, LeaderEpoch: -1})
	offs.Add(kadm.Offset{Topic: other, Partition: 0, At: 8, LeaderEpoch: -1})
	if err := adm.CommitAllOffsets(ctx, group, offs); err != nil {
		t.Fatal(err)
	}
	hb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	hb.Group, hb.MemberID, hb.RebalanceTimeoutMillis = group, "m1", 10000
	hb.SubscribedTopicNames, hb.Topics = []string{consumed}, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	if r, err := hb.RequestWith(ctx, raw); err != nil || r.ErrorCode != 0 {
		t.Fatalf("join: %v %+v", err, r)
	}
	res, err := adm.DeleteOffsets(ctx, group, kadm.TopicsSet{consumed: {0: {}}, other: {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := res.Lookup(consumed, 0); !errors.Is(e, kerr.GroupSubscribedToTopic) {
		t.Errorf("delete of a subscribed topic's offset: %v", e)
	}
	if e, _ := res.Lookup(other, 0); e != nil {
		t.Errorf("delete of an unsubscribed topic's offset: %v", e)
	}
	f, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := f.Lookup(consumed, 0); !ok || o.At != 7 {
		t.Errorf("subscribed offset after delete: %+v %v", o, ok)
	}
	if _, ok := f.Lookup(other, 0); ok {
		t.Errorf("unsubscribed offset survived the delete")
	}
}

// TestDeleteTopicDropsCommittedOffsets: deleting a topic deletes every
// group's committed offsets of its partitions, as Kafka does; otherwise a
// topic recreated under the same name would resume its groups at the old
// topic's offsets and skip the new topic's first records.
func TestDeleteTopicDropsCommittedOffsets(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	ctx := testCtx(t)
	const topic, kept, group = "dt-offsets", "dt-kept", "dt-group"
	createTopic(t, s, topic, 2)
	createTopic(t, s, kept, 1)
	adm := kadm.NewClient(s.Client(t))
	var offs kadm.Offsets
	offs.Add(kadm.Offset{Topic: topic, Partition: 0, At: 5, LeaderEpoch: -1})
	offs.Add(kadm.Offset{Topic: topic, Partition: 1, At: 6, LeaderEpoch: -1})
	offs.Add(kadm.Offset{Topic: kept, Partition: 0, At: 7, LeaderEpoch: -1})
	if err := adm.CommitAllOffsets(ctx, group, offs); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.DeleteTopic(ctx, topic); err != nil {
		t.Fatal(err)
	}
	createTopic(t, s, topic, 2)
	check := func(s *kafkatest.Server, when string) {
		t.Helper()
		f, err := kadm.NewClient(s.Client(t)).FetchOffsets(ctx, group)
		if err != nil {
			t.Fatal(err)
		}
		for p := range int32(2) {
			if o, ok := f.Lookup(topic, p); ok && o.At >= 0 {
				t.Errorf("%s: offset of the deleted topic's %s/%d survived: %d", when, topic, p, o.At)
			}
		}
		if o, ok := f.Lookup(kept, 0); !ok || o.At != 7 {
			t.Errorf("%s: offset of another topic: %+v %v", when, o, ok)
		}
	}
	check(s, "after the delete")
	check(s.Restart(t), "after a restart")
}

// TestLeaveGroupRemovesStaticConsumerMember: LeaveGroup naming a static
// member by its instance id alone (the admin removal of kadm's LeaveGroup
// and Kafka's removeMembersFromConsumerGroup) removes it from a
// consumer-protocol group too, freeing its partitions; naming a member of
// such a group by member id answers UNKNOWN_MEMBER_ID (it does not use the
// classic protocol), and an unknown instance id UNKNOWN_MEMBER_ID.
func TestLeaveGroupRemovesStaticConsumerMember(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	ctx := testCtx(t)
	const topic, group = "lg848", "lg848-group"
	createTopic(t, s, topic, 2)
	raw := s.Client(t)
	join := func(id, inst string) *kmsg.ConsumerGroupHeartbeatResponse {
		hb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		hb.Group, hb.MemberID, hb.RebalanceTimeoutMillis = group, id, 10000
		hb.InstanceID = kmsg.StringPtr(inst)
		hb.SubscribedTopicNames, hb.Topics = []string{topic}, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		r, err := hb.RequestWith(ctx, raw)
		if err != nil || r.ErrorCode != 0 {
			t.Fatalf("join %s: %v %+v", id, err, r)
		}
		return r
	}
	join("m1", "i1")
	join("m2", "i2")
	lg := kmsg.NewPtrLeaveGroupRequest()
	lg.Group = group
	lg.Members = []kmsg.LeaveGroupRequestMember{
		{InstanceID: kmsg.StringPtr("i1")},
		{MemberID: "m2"},
		{InstanceID: kmsg.StringPtr("nobody")},
	}
	r, err := lg.RequestWith(ctx, raw)
	if err != nil || r.ErrorCode != 0 || len(r.Members) != 3 {
		t.Fatalf("leave: %v %+v", err, r)
	}
	for i, want := range []int16{0, kerr.UnknownMemberID.Code, kerr.UnknownMemberID.Code} {
		if r.Members[i].ErrorCode != want {
			t.Errorf("leave member %d: %v, want %v", i, kerr.ErrorForCode(r.Members[i].ErrorCode), kerr.ErrorForCode(want))
		}
	}
	d := kmsg.NewPtrConsumerGroupDescribeRequest()
	d.Groups = []string{group}
	dr, err := d.RequestWith(ctx, raw)
	if err != nil || len(dr.Groups) != 1 {
		t.Fatalf("describe: %v %+v", err, dr)
	}
	if ms := dr.Groups[0].Members; len(ms) != 1 || ms[0].MemberID != "m2" {
		t.Fatalf("members after removing i1: %+v", ms)
	}
	// The instance id is free again: a new incarnation joins at once.
	join("m1b", "i1")
}

// TestDeleteGroupsUnknownGroup: DeleteGroups of a group with neither
// members nor committed offsets answers GROUP_ID_NOT_FOUND, as Kafka does;
// a group known only by its offsets is deleted, and then is unknown.
func TestDeleteGroupsUnknownGroup(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	ctx := testCtx(t)
	const topic, group = "dg-unknown", "dg-offsets-only"
	createTopic(t, s, topic, 1)
	adm := kadm.NewClient(s.Client(t))
	var offs kadm.Offsets
	offs.Add(kadm.Offset{Topic: topic, Partition: 0, At: 3, LeaderEpoch: -1})
	if err := adm.CommitAllOffsets(ctx, group, offs); err != nil {
		t.Fatal(err)
	}
	resp, err := adm.DeleteGroups(ctx, "dg-no-such-group", group)
	if err != nil {
		t.Fatal(err)
	}
	if e := resp["dg-no-such-group"].Err; !errors.Is(e, kerr.GroupIDNotFound) {
		t.Errorf("delete of an unknown group: %v", e)
	}
	if e := resp[group].Err; e != nil {
		t.Errorf("delete of a group known by its offsets: %v", e)
	}
	resp, err = adm.DeleteGroups(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if e := resp[group].Err; !errors.Is(e, kerr.GroupIDNotFound) {
		t.Errorf("second delete: %v", e)
	}
}

// TestConsumerProtocolMemberAfterRestart: consumer-protocol groups live in
// memory only, so after a restart a member heartbeating at its epoch finds
// no group. It must get UNKNOWN_MEMBER_ID, which every client answers by
// rejoining (the Java consumer treats GROUP_ID_NOT_FOUND in a heartbeat as
// fatal); its committed offsets survive the restart for the rejoin.
func TestConsumerProtocolMemberAfterRestart(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	ctx := testCtx(t)
	const topic, group = "rs848", "rs848-group"
	createTopic(t, s, topic, 1)
	raw := s.Client(t)
	hb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	hb.Group, hb.MemberID, hb.RebalanceTimeoutMillis = group, "m1", 10000
	hb.SubscribedTopicNames, hb.Topics = []string{topic}, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	r, err := hb.RequestWith(ctx, raw)
	if err != nil || r.ErrorCode != 0 {
		t.Fatalf("join: %v %+v", err, r)
	}
	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.Version, oc.Group, oc.MemberID, oc.Generation = 9, group, "m1", r.MemberEpoch
	oc.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: topic, Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 4}}}}
	if cr, err := oc.RequestWith(ctx, raw); err != nil || cr.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("commit: %v %+v", err, cr)
	}

	s = s.Restart(t)
	raw = s.Client(t)
	hb.MemberEpoch, hb.Topics = r.MemberEpoch, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	if r, err := hb.RequestWith(ctx, raw); err != nil || r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("heartbeat after a restart: %v %+v", err, r)
	}
	hb.MemberEpoch = 0
	if r, err := hb.RequestWith(ctx, raw); err != nil || r.ErrorCode != 0 || r.MemberEpoch < 1 {
		t.Fatalf("rejoin after a restart: %v %+v", err, r)
	}
	f, err := kadm.NewClient(raw).FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := f.Lookup(topic, 0); !ok || o.At != 4 {
		t.Fatalf("offset after a restart: %+v %v", o, ok)
	}
}
