package kafka_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/auth"
	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/record"
)

// The transactional-id registry of sluice run's log sinks
// (__sluice_sink_txns) is internal once the data directory is served: a
// client may not write it, delete it or change its configuration.
func TestSinkTxnsTopicNotWritable(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	if err := s.Log.CreateTopic(logstore.SinkTxnsTopic, logstore.TopicConfig{Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	batch, err := record.AppendBatch(nil, []record.Record{{Value: []byte("v"), Timestamp: 1}}, record.BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := dialRaw(t, s.Addr)
	resp := r.request(produceReq(logstore.SinkTxnsTopic, batch, 7)).(*kmsg.ProduceResponse)
	if got := resp.Topics[0].Partitions[0].ErrorCode; got != kerr.InvalidTopicException.Code {
		t.Errorf("produce to %s: code %d, want INVALID_TOPIC_EXCEPTION", logstore.SinkTxnsTopic, got)
	}
	ctx := testCtx(t)
	res, err := kadm.NewClient(s.Client(t)).DeleteTopics(ctx, logstore.SinkTxnsTopic)
	if err != nil {
		t.Fatal(err)
	}
	if err := res[logstore.SinkTxnsTopic].Err; err == nil {
		t.Errorf("deleting %s succeeded", logstore.SinkTxnsTopic)
	}
	if _, err := s.Log.Topic(logstore.SinkTxnsTopic); err != nil {
		t.Errorf("%s after the delete: %v", logstore.SinkTxnsTopic, err)
	}
}

// tenantServer is aclServer with tenant acme (member alice) and its
// namespace prod.
func tenantServer(t *testing.T) *kafkatest.Server {
	t.Helper()
	s := aclServer(t)
	ctx := testCtx(t)
	tn := s.Kafka.Tenants()
	if err := tn.PutTenant(ctx, auth.Tenant{Name: "acme", Members: []string{"User:alice"}}); err != nil {
		t.Fatal(err)
	}
	if err := tn.PutNamespace(ctx, auth.Namespace{Tenant: "acme", Name: "prod"}); err != nil {
		t.Fatal(err)
	}
	return s
}

// CREATE on the cluster does not reach into a tenant's namespace: a
// non-member with it creates topics anywhere else, but not acme's, by
// CreateTopics or by auto-creation through Metadata.
func TestClusterCreateStopsAtTenants(t *testing.T) {
	s := tenantServer(t)
	ctx := testCtx(t)
	adm := kadm.NewClient(s.Client(t))
	createACLs(ctx, t, adm, kadm.NewACLs().Allow("User:bob").AllowHosts().Clusters().Operations(kadm.OpCreate))
	createACLs(ctx, t, adm, kadm.NewACLs().Allow("User:bob").AllowHosts().Topics("*").Operations(kadm.OpDescribe))
	bob := userClient(t, s, "bob", kgo.AllowAutoTopicCreation(), kgo.RequestRetries(0))
	res, err := kadm.NewClient(bob).CreateTopics(ctx, 1, 1, nil, "acme.prod.bobs", "bobs")
	if err != nil {
		t.Fatal(err)
	}
	if err := res["acme.prod.bobs"].Err; !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("bob creating in acme's namespace: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	if err := res["bobs"].Err; err != nil {
		t.Errorf("bob creating outside tenants: %v", err)
	}
	if err := metadataErr(ctx, bob, "acme.prod.auto"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("bob auto-creating in acme's namespace: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	for _, topic := range []string{"acme.prod.bobs", "acme.prod.auto"} {
		if _, err := s.Log.Topic(topic); err == nil {
			t.Errorf("%s was created", topic)
		}
	}
	// The member still creates there.
	alice := userClient(t, s, "alice")
	res, err = kadm.NewClient(alice).CreateTopics(ctx, 1, 1, nil, "acme.prod.alices")
	if err != nil || res["acme.prod.alices"].Err != nil {
		t.Fatalf("alice creating in her namespace: %v %v", err, res["acme.prod.alices"].Err)
	}
}

// The idempotent-producer check (IDEMPOTENT_WRITE on the cluster or WRITE
// on some topic) of a tenant member honours DENY ACLs as for any other
// principal: a DENY WRITE on every topic leaves nothing to write.
func TestTenantMemberIdempotentWriteDenied(t *testing.T) {
	s := tenantServer(t)
	ctx := testCtx(t)
	adm := kadm.NewClient(s.Client(t))
	alice := userClient(t, s, "alice", kgo.RequestRetries(0))
	if code := initProducerIDCode(ctx, t, alice); code != 0 {
		t.Fatalf("alice's InitProducerID before the DENY: code %d", code)
	}
	createACLs(ctx, t, adm, kadm.NewACLs().Deny("User:alice").DenyHosts().Topics("acme.").ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpWrite))
	if code := initProducerIDCode(ctx, t, alice); code != kerr.ClusterAuthorizationFailed.Code {
		t.Errorf("alice's InitProducerID with WRITE denied on her tenant's topics: code %d, want CLUSTER_AUTHORIZATION_FAILED", code)
	}
}

func initProducerIDCode(ctx context.Context, t *testing.T, cl *kgo.Client) int16 {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionTimeoutMillis = int32((time.Minute).Milliseconds())
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.ErrorCode
}

// A crash between a topic's deletion (durable) and that of its groups'
// offsets leaves the offsets behind; the next start deletes them, so that a
// topic created again under the name does not resume its groups at them.
func TestOffsetsOfTopicDeletedBeforeCrashDropped(t *testing.T) {
	dir := t.TempDir()
	s := kafkatest.Start(t, kafkatest.Options{Dir: dir})
	createTopic(t, s, "gone", 1)
	createTopic(t, s, "kept", 1)
	ctx := testCtx(t)
	adm := kadm.NewClient(s.Client(t))
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "gone", Partition: 0, At: 5, LeaderEpoch: -1})
	offs.Add(kadm.Offset{Topic: "kept", Partition: 0, At: 7, LeaderEpoch: -1})
	if err := adm.CommitAllOffsets(ctx, "g", offs); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The topic goes without its offsets, as a crash after the unlink.
	l, err := logstore.Open(logstore.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.DeleteTopic("gone"); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	s = kafkatest.Start(t, kafkatest.Options{Dir: dir})
	got, err := kadm.NewClient(s.Client(t)).FetchOffsets(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := got.Lookup("gone", 0); ok && o.At >= 0 {
		t.Errorf("offset of the deleted topic after the restart: %+v", o)
	}
	if o, ok := got.Lookup("kept", 0); !ok || o.At != 7 {
		t.Errorf("offset of kept after the restart: %+v (found %v), want 7", o, ok)
	}
}
