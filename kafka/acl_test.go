package kafka_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/kafka"
	"github.com/sluicehq/sluice/kafka/kafkatest"
)

// aclServer starts a server with the authorizer on, a PLAINTEXT listener
// (Addr) whose ANONYMOUS principal is a super user (local tools), a
// SASL_PLAINTEXT listener, super user admin and users alice and bob (each
// with password NAME-secret), and topics orders, logs-a, logs-secret and
// other.
func aclServer(t *testing.T) *kafkatest.Server {
	t.Helper()
	return aclServerWithMetrics(t, nil)
}

// aclServerWithMetrics is aclServer registering its metrics with reg.
func aclServerWithMetrics(t *testing.T, reg prometheus.Registerer) *kafkatest.Server {
	t.Helper()
	cfg := kafka.DefaultConfig()
	cfg.Registerer = reg
	cfg.Authorizer = kafka.AuthorizerConfig{Enabled: true, SuperUsers: []string{"User:admin", "User:ANONYMOUS"}}
	s := kafkatest.Start(t, kafkatest.Options{Config: &cfg, Listeners: []kafka.Listener{{Name: "SASL_PLAINTEXT", Protocol: kafka.SASLPlaintext}}})
	setupUsers(t, s)
	return s
}

func setupUsers(t *testing.T, s *kafkatest.Server) {
	t.Helper()
	ctx := context.Background()
	adm := kadm.NewClient(s.Client(t))
	for _, u := range []string{"admin", "alice", "bob"} {
		upsertSCRAM(t, adm, u, kadm.ScramSha512)
	}
	if _, err := adm.CreateTopics(ctx, 1, 1, nil, "orders", "logs-a", "logs-secret", "other"); err != nil {
		t.Fatal(err)
	}
}

// userClient is a SCRAM-SHA-512 client of user on the SASL listener.
func userClient(t *testing.T, s *kafkatest.Server, user string, opts ...kgo.Opt) *kgo.Client {
	return saslClient(t, s.Addrs["SASL_PLAINTEXT"], nil, "SCRAM-SHA-512", user, user+"-secret", opts...)
}

func produceAs(ctx context.Context, cl *kgo.Client, topic string) error {
	return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("v")}).FirstErr()
}

// fetchCode fetches partition 0 of topic from offset 0 and returns the
// partition's error code.
func fetchCode(ctx context.Context, t *testing.T, cl *kgo.Client, topic string) int16 {
	t.Helper()
	code, _ := fetchSecret(ctx, t, cl, topic)
	return code
}

func joinCode(ctx context.Context, t *testing.T, cl *kgo.Client, group string) int16 {
	t.Helper()
	req := kmsg.NewPtrJoinGroupRequest()
	req.Group, req.ProtocolType, req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = group, "consumer", 10000, 10000
	req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0, 0}}}
	resp, err := req.RequestWith(ctx, cl)
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code // from FindCoordinator (DESCRIBE on the group), which kgo sends first
	}
	if err != nil {
		t.Fatal(err)
	}
	return resp.ErrorCode
}

// listedTopics lists every topic with a Metadata request of its own (kadm
// may answer from kgo's metadata cache).
func listedTopics(ctx context.Context, t *testing.T, cl *kgo.Client) []string {
	t.Helper()
	resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mt := range resp.Topics {
		if mt.Topic != nil && !mt.IsInternal {
			names = append(names, *mt.Topic)
		}
	}
	slices.Sort(names)
	return names
}

func createACLs(ctx context.Context, t *testing.T, adm *kadm.Client, b *kadm.ACLBuilder) {
	t.Helper()
	res, err := adm.CreateACLs(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("create ACL %+v: %v", r, r.Err)
		}
	}
}

func TestACLsEnforced(t *testing.T) {
	s := aclServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	alice := userClient(t, s, "alice")
	admin := userClient(t, s, "admin")
	adm := kadm.NewClient(admin)

	// No ACLs: alice may do nothing, and sees no topic.
	if err := produceAs(ctx, alice, "orders"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("produce without ACLs: %v", err)
	}
	if code := fetchCode(ctx, t, alice, "orders"); code != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("fetch without ACLs: %v", kerr.ErrorForCode(code))
	}
	if got := listedTopics(ctx, t, alice); len(got) != 0 {
		t.Fatalf("alice lists %v without ACLs", got)
	}
	if err := metadataErr(ctx, alice, "orders"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("metadata of orders without ACLs: %v", err)
	}
	if code := joinCode(ctx, t, alice, "g1"); code != kerr.GroupAuthorizationFailed.Code {
		t.Fatalf("join without ACLs: %v", kerr.ErrorForCode(code))
	}
	// Alice may not manage ACLs: CLUSTER_AUTHORIZATION_FAILED.
	res, err := kadm.NewClient(alice).CreateACLs(ctx, kadm.NewACLs().Allow("User:alice").Topics("orders").Operations(kadm.OpAll))
	if err != nil || len(res) != 1 || !errors.Is(res[0].Err, kerr.ClusterAuthorizationFailed) {
		t.Fatalf("alice creating an ACL: %v %+v", err, res)
	}
	// The super user bypasses the ACLs.
	if err := produceAs(ctx, admin, "orders"); err != nil {
		t.Fatalf("admin produce: %v", err)
	}

	// Literal ALLOW: produce, consume in a group, see the topic.
	createACLs(ctx, t, adm, kadm.NewACLs().Allow("User:alice").Topics("orders").ResourcePatternType(kadm.ACLPatternLiteral).Operations(kadm.OpRead, kadm.OpWrite))
	createACLs(ctx, t, adm, kadm.NewACLs().Allow("User:alice").Groups("g1").Operations(kadm.OpRead))
	if err := produceAs(ctx, alice, "orders"); err != nil {
		t.Fatalf("produce with a WRITE ACL: %v", err)
	}
	if got := listedTopics(ctx, t, alice); !slices.Equal(got, []string{"orders"}) {
		t.Fatalf("alice lists %v, want [orders]", got)
	}
	consumer := userClient(t, s, "alice", kgo.ConsumerGroup("g1"), kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	n := 0
	for n < 2 {
		fs := consumer.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume with READ ACLs: %v", err)
		}
		n += fs.NumRecords()
	}
	if err := consumer.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit with READ ACLs: %v", err)
	}
	// READ does not give WRITE elsewhere, nor a group not granted.
	if err := produceAs(ctx, alice, "other"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("produce to other: %v", err)
	}
	if code := joinCode(ctx, t, alice, "g2"); code != kerr.GroupAuthorizationFailed.Code {
		t.Fatalf("join g2: %v", kerr.ErrorForCode(code))
	}
	// DESCRIBE on g2 finds its coordinator; JoinGroup itself needs READ.
	createACLs(ctx, t, adm, kadm.NewACLs().Allow("User:alice").Groups("g2").Operations(kadm.OpDescribe))
	if code := joinCode(ctx, t, alice, "g2"); code != kerr.GroupAuthorizationFailed.Code {
		t.Fatalf("JoinGroup g2 with DESCRIBE only: %v", kerr.ErrorForCode(code))
	}

	// Prefixed ALLOW, and a DENY that wins over it.
	createACLs(ctx, t, adm, kadm.NewACLs().Allow("User:alice").Topics("logs-").ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpWrite))
	createACLs(ctx, t, adm, kadm.NewACLs().Deny("User:alice").Topics("logs-secret").Operations(kadm.OpWrite))
	if err := produceAs(ctx, alice, "logs-a"); err != nil {
		t.Fatalf("produce under a prefixed ACL: %v", err)
	}
	if err := produceAs(ctx, alice, "logs-secret"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("produce against a DENY: %v", err)
	}
	// Auto-creation needs CREATE.
	if err := metadataErr(ctx, alice, "logs-new"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("auto-create without CREATE: %v", err)
	}
	createACLs(ctx, t, adm, kadm.NewACLs().Allow("User:alice").Topics("logs-").ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpCreate))
	if err := produceAs(ctx, alice, "logs-new"); err != nil {
		t.Fatalf("auto-create with CREATE: %v", err)
	}
	// User:* reaches bob.
	bob := userClient(t, s, "bob")
	if got := listedTopics(ctx, t, bob); len(got) != 0 {
		t.Fatalf("bob lists %v", got)
	}
	createACLs(ctx, t, adm, kadm.NewACLs().Allow("User:*").Topics("other").Operations(kadm.OpDescribe))
	if got := listedTopics(ctx, t, bob); !slices.Equal(got, []string{"other"}) {
		t.Fatalf("bob lists %v, want [other]", got)
	}

	// ACLs survive a restart and are still enforced.
	before, err := adm.DescribeACLs(ctx, kadm.NewACLs().AnyResource().ResourcePatternType(kadm.ACLPatternAny).Allow().AllowHosts().Deny().DenyHosts().Operations())
	if err != nil {
		t.Fatal(err)
	}
	s = s.Restart(t)
	alice = userClient(t, s, "alice")
	adm = kadm.NewClient(userClient(t, s, "admin"))
	after, err := adm.DescribeACLs(ctx, kadm.NewACLs().AnyResource().ResourcePatternType(kadm.ACLPatternAny).Allow().AllowHosts().Deny().DenyHosts().Operations())
	if err != nil {
		t.Fatal(err)
	}
	if nb, na := countDescribed(before), countDescribed(after); nb != 8 || na != nb {
		t.Fatalf("%d ACLs before the restart, %d after", nb, na)
	}
	if err := produceAs(ctx, alice, "orders"); err != nil {
		t.Fatalf("produce after restart: %v", err)
	}
	if err := produceAs(ctx, alice, "logs-secret"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("DENY after restart: %v", err)
	}
}

// metadataErr asks Metadata (auto-creation allowed) for one topic and
// returns its error.
func metadataErr(ctx context.Context, cl *kgo.Client, topic string) error {
	req := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	req.Topics, req.AllowAutoTopicCreation = append(req.Topics, mt), true
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	for _, t := range resp.Topics {
		if t.Topic != nil && *t.Topic == topic {
			return kerr.ErrorForCode(t.ErrorCode)
		}
	}
	return errors.New("topic missing from the metadata response")
}

func countDescribed(rs kadm.DescribeACLsResults) int {
	n := 0
	for _, r := range rs {
		n += len(r.Described)
	}
	return n
}

// TestACLDeleteAndFilters deletes through kadm with MATCH and PREFIXED
// filters and checks what each filter removed.
func TestACLDeleteAndFilters(t *testing.T) {
	s := aclServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(s.Client(t))
	createACLs(ctx, t, adm, kadm.NewACLs().Allow("User:alice").Topics("orders").Operations(kadm.OpRead))
	createACLs(ctx, t, adm, kadm.NewACLs().Allow("User:alice").Topics("ord").ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpWrite))
	createACLs(ctx, t, adm, kadm.NewACLs().Allow("User:bob").Topics("*").Operations(kadm.OpDescribe))
	createACLs(ctx, t, adm, kadm.NewACLs().Allow("User:bob").Groups("g").Operations(kadm.OpRead))

	// MATCH orders: the literal, the prefix and the wildcard apply.
	d, err := adm.DescribeACLs(ctx, kadm.NewACLs().Topics("orders").ResourcePatternType(kadm.ACLPatternMatch).Allow().AllowHosts().Operations())
	if err != nil || countDescribed(d) != 3 {
		t.Fatalf("describe MATCH orders: %v, %+v", err, d)
	}
	// LITERAL orders: only the literal.
	d, err = adm.DescribeACLs(ctx, kadm.NewACLs().Topics("orders").ResourcePatternType(kadm.ACLPatternLiteral).Allow().AllowHosts().Operations())
	if err != nil || countDescribed(d) != 1 {
		t.Fatalf("describe LITERAL orders: %v, %+v", err, d)
	}
	del, err := adm.DeleteACLs(ctx, kadm.NewACLs().Topics("orders").ResourcePatternType(kadm.ACLPatternMatch).Allow("User:alice").AllowHosts().Operations())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range del {
		if r.Err != nil {
			t.Fatalf("delete: %v", r.Err)
		}
		n += len(r.Deleted)
	}
	if n != 2 {
		t.Fatalf("deleted %d ACLs, want alice's two: %+v", n, del)
	}
	d, err = adm.DescribeACLs(ctx, kadm.NewACLs().AnyResource().ResourcePatternType(kadm.ACLPatternAny).Allow().AllowHosts().Deny().DenyHosts().Operations())
	if err != nil || countDescribed(d) != 2 {
		t.Fatalf("left after delete: %v, %+v", err, d)
	}
}

// TestACLAdminErrors checks the error codes of the ACL APIs: invalid
// ACLs and filters (INVALID_REQUEST, each creation answered in its
// place), and SECURITY_DISABLED without an authorizer.
func TestACLAdminErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := aclServer(t)
	cl := s.Client(t)
	good := kmsg.NewCreateACLsRequestCreation()
	good.ResourceType, good.ResourceName, good.Principal, good.Host = kmsg.ACLResourceTypeTopic, "t", "User:alice", "*"
	good.Operation, good.PermissionType = kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow
	mutate := func(f func(c *kmsg.CreateACLsRequestCreation)) kmsg.CreateACLsRequestCreation {
		c := good
		f(&c)
		return c
	}
	creq := kmsg.NewPtrCreateACLsRequest()
	creq.Creations = []kmsg.CreateACLsRequestCreation{
		mutate(func(c *kmsg.CreateACLsRequestCreation) { c.ResourceType = kmsg.ACLResourceTypeAny }),
		mutate(func(c *kmsg.CreateACLsRequestCreation) { c.ResourcePatternType = kmsg.ACLResourcePatternTypeMatch }),
		mutate(func(c *kmsg.CreateACLsRequestCreation) { c.Operation = kmsg.ACLOperationAny }),
		mutate(func(c *kmsg.CreateACLsRequestCreation) { c.PermissionType = kmsg.ACLPermissionTypeAny }),
		mutate(func(c *kmsg.CreateACLsRequestCreation) { c.Principal = "alice" }),
		mutate(func(c *kmsg.CreateACLsRequestCreation) { c.ResourceName = "" }),
		mutate(func(c *kmsg.CreateACLsRequestCreation) {
			c.ResourceType, c.ResourceName, c.Operation = kmsg.ACLResourceTypeCluster, "my-cluster", kmsg.ACLOperationAlter
		}),
		good,
	}
	cresp, err := creq.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(cresp.Results) != len(creq.Creations) {
		t.Fatalf("%d results for %d creations", len(cresp.Results), len(creq.Creations))
	}
	for i, r := range cresp.Results {
		want := kerr.InvalidRequest.Code
		if i == len(cresp.Results)-1 {
			want = 0
		}
		if r.ErrorCode != want {
			t.Errorf("creation %d: %v, want %v", i, kerr.ErrorForCode(r.ErrorCode), kerr.ErrorForCode(want))
		}
	}
	dreq := kmsg.NewPtrDescribeACLsRequest()
	dreq.ResourceType, dreq.Operation, dreq.PermissionType = kmsg.ACLResourceTypeUnknown, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	if dresp, err := dreq.RequestWith(ctx, cl); err != nil || dresp.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("describe with an UNKNOWN resource type: %v %+v", err, dresp)
	}
	delreq := kmsg.NewPtrDeleteACLsRequest()
	bad := kmsg.NewDeleteACLsRequestFilter()
	bad.ResourceType, bad.Operation, bad.PermissionType = kmsg.ACLResourceTypeAny, kmsg.ACLOperationUnknown, kmsg.ACLPermissionTypeAny
	all := bad
	all.Operation, all.ResourcePatternType = kmsg.ACLOperationAny, kmsg.ACLResourcePatternTypeAny
	delreq.Filters = []kmsg.DeleteACLsRequestFilter{bad, all}
	delresp, err := delreq.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if delresp.Results[0].ErrorCode != kerr.InvalidRequest.Code || delresp.Results[1].ErrorCode != 0 || len(delresp.Results[1].MatchingACLs) != 1 {
		t.Fatalf("delete: %+v", delresp.Results)
	}

	// No authorizer: SECURITY_DISABLED.
	plain := kafkatest.Start(t, kafkatest.Options{})
	padm := kadm.NewClient(plain.Client(t))
	if _, err := padm.DescribeACLs(ctx, kadm.NewACLs().AnyResource().Allow().AllowHosts().Operations()); !errors.Is(err, kerr.SecurityDisabled) {
		d, _ := padm.DescribeACLs(ctx, kadm.NewACLs().AnyResource().Allow().AllowHosts().Operations())
		if len(d) == 0 || !errors.Is(d[0].Err, kerr.SecurityDisabled) {
			t.Fatalf("describe without an authorizer: %v %+v", err, d)
		}
	}
	res, err := padm.CreateACLs(ctx, kadm.NewACLs().Allow("User:alice").Topics("t").Operations(kadm.OpRead))
	if err != nil || len(res) != 1 || !errors.Is(res[0].Err, kerr.SecurityDisabled) {
		t.Fatalf("create without an authorizer: %v %+v", err, res)
	}
}

// TestACLTransactionsAndIdempotence: an idempotent producer needs WRITE
// on some topic (or IDEMPOTENT_WRITE on the cluster); a transactional one
// WRITE on its transactional id.
func TestACLTransactionsAndIdempotence(t *testing.T) {
	s := aclServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(s.Client(t))
	bob := userClient(t, s, "bob")
	init := func(txn *string) int16 {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.TransactionalID, req.TransactionTimeoutMillis = txn, 10000
		resp, err := req.RequestWith(ctx, bob)
		var ke *kerr.Error
		if errors.As(err, &ke) {
			return ke.Code // from FindCoordinator, which kgo sends first
		}
		if err != nil {
			t.Fatal(err)
		}
		return resp.ErrorCode
	}
	if code := init(nil); code != kerr.ClusterAuthorizationFailed.Code {
		t.Fatalf("idempotent init without ACLs: %v", kerr.ErrorForCode(code))
	}
	if code := init(kmsg.StringPtr("tx1")); code != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Fatalf("transactional init without ACLs: %v", kerr.ErrorForCode(code))
	}
	createACLs(ctx, t, adm, kadm.NewACLs().Allow("User:bob").Topics("orders").Operations(kadm.OpWrite))
	createACLs(ctx, t, adm, kadm.NewACLs().Allow("User:bob").TransactionalIDs("tx1").Operations(kadm.OpWrite))
	if code := init(nil); code != 0 {
		t.Fatalf("idempotent init with WRITE on a topic: %v", kerr.ErrorForCode(code))
	}
	// A whole transaction through kgo.
	tx := userClient(t, s, "bob", kgo.TransactionalID("tx1"))
	if err := tx.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := produceAs(ctx, tx, "orders"); err != nil {
		t.Fatalf("transactional produce: %v", err)
	}
	if err := tx.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("commit: %v", err)
	}
	// Another transactional id is refused.
	other := userClient(t, s, "bob", kgo.TransactionalID("tx2"))
	err := other.BeginTransaction() // kgo initializes the producer id here
	if err == nil {
		err = produceAs(ctx, other, "orders")
	}
	if err == nil || !strings.Contains(err.Error(), kerr.TransactionalIDAuthorizationFailed.Message) {
		t.Fatalf("produce with an unauthorized transactional id: %v", err)
	}
}

// TestACLAdminRequests: the admin APIs refuse what the ACLs do not grant,
// each with Kafka's error code, and listings leave out what the principal
// may not describe.
func TestACLAdminRequests(t *testing.T) {
	s := aclServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(s.Client(t))
	alice := kadm.NewClient(userClient(t, s, "alice"))

	ct, err := alice.CreateTopics(ctx, 1, 1, nil, "new-topic")
	if err != nil || !errors.Is(ct["new-topic"].Err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("create topic without CREATE: %v %+v", err, ct)
	}
	createACLs(ctx, t, adm, kadm.NewACLs().Allow("User:alice").Topics("new-").ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpCreate))
	if ct, err = alice.CreateTopics(ctx, 1, 1, nil, "new-topic"); err != nil || ct["new-topic"].Err != nil {
		t.Fatalf("create topic with CREATE: %v %+v", err, ct)
	}
	dt, err := alice.DeleteTopics(ctx, "other")
	if err != nil || !errors.Is(dt["other"].Err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("delete topic without DELETE: %v %+v", err, dt)
	}
	if _, err := alice.DescribeBrokerConfigs(ctx); !errors.Is(err, kerr.ClusterAuthorizationFailed) {
		rcs, _ := alice.DescribeBrokerConfigs(ctx)
		if len(rcs) == 0 || !errors.Is(rcs[0].Err, kerr.ClusterAuthorizationFailed) {
			t.Fatalf("describe broker configs: %v %+v", err, rcs)
		}
	}
	rc, err := alice.DescribeTopicConfigs(ctx, "orders")
	if err == nil {
		_, err = rc.On("orders", nil)
	}
	if !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("describe topic configs: %v", err)
	}
	pr, err := alice.CreatePartitions(ctx, 2, "orders") // kadm asks Metadata first
	if err == nil {
		err = pr["orders"].Err
	}
	if !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("create partitions without ALTER: %v %+v", err, pr)
	}

	// Groups: alice lists only those she may describe.
	for _, g := range []string{"ga", "gb"} {
		cl := s.Client(t, kgo.ConsumerGroup(g), kgo.ConsumeTopics("orders"))
		if err := cl.CommitRecords(ctx, &kgo.Record{Topic: "orders", Partition: 0, Offset: 0}); err != nil {
			t.Fatal(err)
		}
	}
	createACLs(ctx, t, adm, kadm.NewACLs().Allow("User:alice").Groups("ga").Operations(kadm.OpDescribe))
	lg, err := alice.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := lg.Groups(); !slices.Equal(got, []string{"ga"}) {
		t.Fatalf("alice lists groups %v, want [ga]", got)
	}
	// DESCRIBE finds gb's coordinator; DeleteGroups itself needs DELETE.
	createACLs(ctx, t, adm, kadm.NewACLs().Allow("User:alice").Groups("gb").Operations(kadm.OpDescribe))
	dg, err := alice.DeleteGroups(ctx, "gb")
	if err != nil || !errors.Is(dg["gb"].Err, kerr.GroupAuthorizationFailed) {
		t.Fatalf("delete group without DELETE: %v %+v", err, dg)
	}

	// Client quotas: ALTER_CONFIGS on the cluster to change them (a
	// principal must not lift its own quota), DESCRIBE_CONFIGS to list.
	user := "alice"
	lift := []kadm.AlterClientQuotaEntry{{
		Entity: kadm.ClientQuotaEntity{{Type: "user", Name: &user}},
		Ops:    []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 1 << 30}},
	}}
	if _, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{
		Entity: kadm.ClientQuotaEntity{{Type: "user", Name: &user}},
		Ops:    []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 1024}},
	}}); err != nil {
		t.Fatalf("super user sets a quota: %v", err)
	}
	res, err := alice.AlterClientQuotas(ctx, lift)
	if err != nil || len(res) != 1 || !errors.Is(res[0].Err, kerr.ClusterAuthorizationFailed) {
		t.Fatalf("alice lifts her own quota: %v %+v", err, res)
	}
	if _, err := alice.DescribeClientQuotas(ctx, false, nil); !errors.Is(err, kerr.ClusterAuthorizationFailed) {
		t.Fatalf("alice lists quotas: %v", err)
	}
	qs, err := adm.DescribeClientQuotas(ctx, false, nil)
	if err != nil || len(qs) != 1 || len(qs[0].Values) != 1 || qs[0].Values[0].Value != 1024 {
		t.Fatalf("quota after alice's attempt: %v %+v", err, qs)
	}
	createACLs(ctx, t, adm, kadm.NewACLs().Allow("User:alice").Clusters().Operations(kadm.OpDescribeConfigs))
	if qs, err := alice.DescribeClientQuotas(ctx, false, nil); err != nil || len(qs) != 1 {
		t.Fatalf("alice lists quotas with DESCRIBE_CONFIGS: %v %+v", err, qs)
	}
}

// TestListingCountsNoDenials: leaving out of a listing of every topic
// those a principal may not describe is no refusal, as in Kafka (which
// logs denials only for topics asked for by name): it is neither counted
// in sluice_kafka_authorization_denied_total nor logged, or every client's
// metadata refresh would count each topic it cannot see. A topic asked
// for by name still is.
func TestListingCountsNoDenials(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := aclServerWithMetrics(t, reg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	alice := userClient(t, s, "alice")
	denied := map[string]string{"operation": "DESCRIBE", "resource_type": "TOPIC"}
	if topics := listedTopics(ctx, t, alice); len(topics) != 0 {
		t.Fatalf("alice, without ACLs, lists topics %v", topics)
	}
	if v := metricValue(t, reg, "sluice_kafka_authorization_denied_total", denied); v != 0 {
		t.Fatalf("listing every topic counted %v denials", v)
	}
	if err := metadataErr(ctx, alice, "orders"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("alice asking for orders: %v", err)
	}
	if v := metricValue(t, reg, "sluice_kafka_authorization_denied_total", denied); v != 1 {
		t.Fatalf("asking for one topic by name counted %v denials, want 1", v)
	}
}
