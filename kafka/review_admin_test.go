package kafka_test

import (
	"errors"
	"testing"

	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// alterOne runs one IncrementalAlterConfigs operation on a topic and
// returns its error and message.
func alterOne(t *testing.T, adm *kadm.Client, topic string, op kadm.IncrementalOp, name, value string) (error, string) {
	t.Helper()
	resps, err := adm.AlterTopicConfigs(testCtx(t), []kadm.AlterConfig{{Op: op, Name: name, Value: strp(value)}}, topic)
	return alterResult(t, resps, err)
}

// TestCreateTopicsValidateOnlyMatchesCreate: CreateTopics with
// validate_only answers what the same request without it would answer,
// also for configs that are each valid but invalid together.
func TestCreateTopicsValidateOnlyMatchesCreate(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	adm := kadm.NewClient(s.Client(t))
	for i, cfgs := range []map[string]*string{
		{"min.compaction.lag.ms": strp("5000"), "max.compaction.lag.ms": strp("1000")},
		{"retention.ms": strp("1000"), "local.retention.ms": strp("5000")},
		{"remote.storage.enable": strp("true")}, // this server has no remote storage
	} {
		topic := "validate-only-" + string(rune('a'+i))
		v, err := adm.ValidateCreateTopics(testCtx(t), 1, 1, cfgs, topic)
		if err != nil {
			t.Fatal(err)
		}
		c, err := adm.CreateTopics(testCtx(t), 1, 1, cfgs, topic)
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(c[topic].Err, kerr.InvalidConfig) {
			t.Fatalf("%v: create answered %v, want INVALID_CONFIG", cfgs, c[topic].Err)
		}
		if !errors.Is(v[topic].Err, kerr.InvalidConfig) {
			t.Errorf("%v: validate_only answered %v, create %v", cfgs, v[topic].Err, c[topic].Err)
		}
	}
}

// TestMaxMessageBytesEnforced: max.message.bytes given at creation or
// altered later bounds the batches a producer may write (MESSAGE_TOO_LARGE
// above it), is described, and survives a restart.
func TestMaxMessageBytesEnforced(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	const topic = "max-message-bytes"
	adm := kadm.NewClient(s.Client(t))
	c, err := adm.CreateTopics(testCtx(t), 1, 1, map[string]*string{"max.message.bytes": strp("1000")}, topic)
	if err != nil || c[topic].Err != nil {
		t.Fatalf("create: %v %v", err, c[topic].Err)
	}
	if v, def := describedConfig(t, adm, topic, "max.message.bytes"); v != "1000" || def {
		t.Fatalf("max.message.bytes = %q (default %v), want 1000", v, def)
	}
	cl := s.Client(t, kgo.RecordRetries(1), kgo.ProducerBatchCompression(kgo.NoCompression()))
	produce := func(size int) error {
		t.Helper()
		r := &kgo.Record{Topic: topic, Value: make([]byte, size)}
		return cl.ProduceSync(testCtx(t), r).FirstErr()
	}
	if err := produce(100); err != nil {
		t.Fatalf("small record: %v", err)
	}
	if err := produce(2000); !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("record above max.message.bytes: %v, want MESSAGE_TOO_LARGE", err)
	}
	for _, bad := range []string{"-1", "x", "0"} {
		if err, _ := alterOne(t, adm, topic, kadm.SetConfig, "max.message.bytes", bad); !errors.Is(err, kerr.InvalidConfig) {
			t.Errorf("max.message.bytes=%s: %v, want INVALID_CONFIG", bad, err)
		}
	}
	if err, msg := alterOne(t, adm, topic, kadm.SetConfig, "max.message.bytes", "5000"); err != nil {
		t.Fatalf("alter: %v %s", err, msg)
	}
	if err := produce(2000); err != nil {
		t.Fatalf("record below the raised max.message.bytes: %v", err)
	}
	s = s.Restart(t)
	adm = kadm.NewClient(s.Client(t))
	if v, def := describedConfig(t, adm, topic, "max.message.bytes"); v != "5000" || def {
		t.Fatalf("after restart max.message.bytes = %q (default %v), want 5000", v, def)
	}
	cl = s.Client(t, kgo.RecordRetries(1), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err := produce(8000); !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("after restart, record above max.message.bytes: %v, want MESSAGE_TOO_LARGE", err)
	}
}

// TestSubtractLastCleanupPolicyRefused: SUBTRACT that would leave
// cleanup.policy empty is refused with INVALID_CONFIG rather than
// acknowledged while the policy silently stays (or returns to) the
// default.
func TestSubtractLastCleanupPolicyRefused(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	const topic = "subtract-all"
	createTopic(t, s, topic, 1)
	adm := kadm.NewClient(s.Client(t))
	for _, c := range []struct{ set, subtract string }{
		{"delete", "delete"},
		{"compact", "compact"},
		{"compact,delete", "delete,compact"},
	} {
		if err, msg := alterOne(t, adm, topic, kadm.SetConfig, "cleanup.policy", c.set); err != nil {
			t.Fatalf("set %s: %v %s", c.set, err, msg)
		}
		if err, _ := alterOne(t, adm, topic, kadm.SubtractConfig, "cleanup.policy", c.subtract); !errors.Is(err, kerr.InvalidConfig) {
			t.Errorf("subtract %s from %s: %v, want INVALID_CONFIG", c.subtract, c.set, err)
		}
		if v, _ := describedConfig(t, adm, topic, "cleanup.policy"); v != c.set {
			t.Errorf("after a refused subtract of %s, cleanup.policy is %q, want %q", c.subtract, v, c.set)
		}
	}
}

// TestReplicaAssignmentsOnOneNode: CreateTopics and CreatePartitions
// accept explicit replica assignments that place every partition on this
// node alone (kafka-topics --replica-assignment, AdminClient's NewTopic
// with assignments), and refuse others as Kafka does.
func TestReplicaAssignmentsOnOneNode(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	cl := plainClient(t, s)
	node := int32(0) // kafkatest's node id
	create := func(topic string, parts int32, rf int16, assign ...[]int32) int16 {
		t.Helper()
		req := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, parts, rf
		for i, r := range assign {
			a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
			a.Partition, a.Replicas = int32(i), r
			rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
		}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(testCtx(t), cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].ErrorCode
	}
	if code := create("assigned", -1, -1, []int32{node}, []int32{node}, []int32{node}); code != 0 {
		t.Fatalf("create with assignments on this node: %v", kerr.ErrorForCode(code))
	}
	adm := kadm.NewClient(cl)
	td, err := adm.ListTopics(testCtx(t), "assigned")
	if err != nil || len(td["assigned"].Partitions) != 3 {
		t.Fatalf("assigned topic: %v %+v", err, td["assigned"])
	}
	for name, c := range map[string]struct {
		parts  int32
		rf     int16
		assign [][]int32
		want   error
	}{
		"other-node": {-1, -1, [][]int32{{node + 1}}, kerr.InvalidReplicaAssignment},
		"two-copies": {-1, -1, [][]int32{{node, node}}, kerr.InvalidReplicaAssignment},
		"no-replica": {-1, -1, [][]int32{{}}, kerr.InvalidReplicaAssignment},
		"with-count": {1, -1, [][]int32{{node}}, kerr.InvalidRequest},
	} {
		if code := create(name, c.parts, c.rf, c.assign...); code != c.want.(*kerr.Error).Code {
			t.Errorf("%s: %v, want %v", name, kerr.ErrorForCode(code), c.want)
		}
	}
	grow := func(count int32, assign ...[]int32) int16 {
		t.Helper()
		req := kmsg.NewPtrCreatePartitionsRequest()
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = "assigned", count
		for _, r := range assign {
			a := kmsg.NewCreatePartitionsRequestTopicAssignment()
			a.Replicas = r
			rt.Assignment = append(rt.Assignment, a)
		}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(testCtx(t), cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].ErrorCode
	}
	if code := grow(5, []int32{node}); code != kerr.InvalidReplicaAssignment.Code {
		t.Errorf("one assignment for two new partitions: %v", kerr.ErrorForCode(code))
	}
	if code := grow(4, []int32{node + 1}); code != kerr.InvalidReplicaAssignment.Code {
		t.Errorf("a new partition on another node: %v", kerr.ErrorForCode(code))
	}
	if code := grow(5, []int32{node}, []int32{node}); code != 0 {
		t.Fatalf("grow with assignments on this node: %v", kerr.ErrorForCode(code))
	}
	td, err = adm.ListTopics(testCtx(t), "assigned")
	if err != nil || len(td["assigned"].Partitions) != 5 {
		t.Fatalf("grown topic: %v %+v", err, td["assigned"])
	}
}

// TestDeleteTopicsByNameAndIDRefused: a DeleteTopics entry naming both a
// topic and an id answers INVALID_REQUEST, as Kafka does, and deletes
// nothing: with a stale id it must not delete the topic created again
// under that name.
func TestDeleteTopicsByNameAndIDRefused(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	cl := plainClient(t, s)
	const topic = "named-twice"
	idOf := func() [16]byte {
		t.Helper()
		tp, err := s.Log.Topic(topic)
		if err != nil {
			t.Fatal(err)
		}
		return tp.ID()
	}
	createTopic(t, s, topic, 1)
	oldID := idOf()
	if err := s.Log.DeleteTopic(topic); err != nil {
		t.Fatal(err)
	}
	createTopic(t, s, topic, 1)
	newID := idOf()
	req := kmsg.NewPtrDeleteTopicsRequest()
	rt := kmsg.NewDeleteTopicsRequestTopic()
	rt.Topic, rt.TopicID = kmsg.StringPtr(topic), oldID
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testCtx(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].ErrorCode; code != kerr.InvalidRequest.Code {
		t.Errorf("name and stale id: %v, want INVALID_REQUEST", kerr.ErrorForCode(code))
	}
	if id := idOf(); id != newID {
		t.Fatalf("topic id %v, want %v: the topic created again was deleted", id, newID)
	}
}

// TestDuplicateTopicsInOneRequest: a topic named twice in one CreateTopics
// or DeleteTopics request answers INVALID_REQUEST for it and is neither
// created nor deleted, as Kafka answers; the other topics are served.
func TestDuplicateTopicsInOneRequest(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	cl := plainClient(t, s)
	creq := kmsg.NewPtrCreateTopicsRequest()
	for _, name := range []string{"dup", "single", "dup"} {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 1, 1
		creq.Topics = append(creq.Topics, rt)
	}
	cresp, err := creq.RequestWith(testCtx(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range cresp.Topics {
		want := int16(0)
		if rt.Topic == "dup" {
			want = kerr.InvalidRequest.Code
		}
		if rt.ErrorCode != want {
			t.Errorf("create %s: %v, want %v", rt.Topic, kerr.ErrorForCode(rt.ErrorCode), kerr.ErrorForCode(want))
		}
	}
	if _, err := s.Log.Topic("dup"); err == nil {
		t.Error("the topic named twice was created")
	}
	createTopic(t, s, "dup", 1)
	dreq := kmsg.NewPtrDeleteTopicsRequest()
	for _, name := range []string{"dup", "single", "dup"} {
		rt := kmsg.NewDeleteTopicsRequestTopic()
		rt.Topic = kmsg.StringPtr(name)
		dreq.Topics = append(dreq.Topics, rt)
		dreq.TopicNames = append(dreq.TopicNames, name)
	}
	dresp, err := dreq.RequestWith(testCtx(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range dresp.Topics {
		want := int16(0)
		if *rt.Topic == "dup" {
			want = kerr.InvalidRequest.Code
		}
		if rt.ErrorCode != want {
			t.Errorf("delete %s: %v, want %v", *rt.Topic, kerr.ErrorForCode(rt.ErrorCode), kerr.ErrorForCode(want))
		}
	}
	if _, err := s.Log.Topic("dup"); err != nil {
		t.Errorf("the topic named twice was deleted: %v", err)
	}
}
