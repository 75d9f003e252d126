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
