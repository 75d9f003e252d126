package kafka_test

import (
	"context"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/auth"
	"github.com/sluicehq/sluice/kafka"
	"github.com/sluicehq/sluice/kafka/kafkatest"
)

// fetchSecret fetches partition 0 of topic from offset 0 and returns the
// error code and the size of the records answered.
func fetchSecret(ctx context.Context, t *testing.T, cl kmsg.Requestor, topic string) (int16, int) {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(12)
	req.MaxWaitMillis, req.MaxBytes, req.SessionEpoch = 1, 1<<20, -1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = topic
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	req.Topics = append(req.Topics, ft)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	p := resp.Topics[0].Partitions[0]
	return p.ErrorCode, len(p.RecordBatches)
}

// The internal topics holding the security state (SCRAM credentials, ACLs,
// quotas, tenants, token hashes) are never served to an ordinary
// principal, even one an ACL lets read every topic: Kafka keeps them out of
// clients' reach, and the SCRAM StoredKeys would allow an offline
// dictionary attack on every password. Super users may read them.
func TestSecurityTopicsNotFetchable(t *testing.T) {
	s := aclServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(s.Client(t))
	// A public-read setup: every principal may read every topic.
	createACLs(ctx, t, adm, kadm.NewACLs().Allow("User:*").AllowHosts().Topics("*").Operations(kadm.OpRead, kadm.OpDescribe))
	alice := userClient(t, s, "alice")
	admin := userClient(t, s, "admin")
	if code, n := fetchSecret(ctx, t, alice, "orders"); code != 0 {
		t.Fatalf("alice fetching orders: code %d (%d bytes)", code, n)
	}
	for _, topic := range []string{auth.UsersTopic, auth.ACLsTopic, auth.QuotasTopic, auth.TenantsTopic, auth.TokensTopic} {
		if code, n := fetchSecret(ctx, t, alice, topic); code != kerr.TopicAuthorizationFailed.Code || n != 0 {
			t.Errorf("alice fetching %s: code %d with %d bytes of records; want TOPIC_AUTHORIZATION_FAILED and none", topic, code, n)
		}
	}
	if code, n := fetchSecret(ctx, t, admin, auth.UsersTopic); code != 0 || n == 0 {
		t.Errorf("super user fetching %s: code %d with %d bytes; want the records", auth.UsersTopic, code, n)
	}
}

// Without an authorizer a SASL listener still keeps the credentials of the
// other users from an authenticated client.
func TestSecurityTopicsNotFetchableWithoutAuthorizer(t *testing.T) {
	cfg := kafka.DefaultConfig()
	s := kafkatest.Start(t, kafkatest.Options{Config: &cfg, Listeners: []kafka.Listener{{Name: "SASL_PLAINTEXT", Protocol: kafka.SASLPlaintext}}})
	setupUsers(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	alice := userClient(t, s, "alice")
	if code, n := fetchSecret(ctx, t, alice, auth.UsersTopic); code != kerr.TopicAuthorizationFailed.Code || n != 0 {
		t.Errorf("alice fetching %s: code %d with %d bytes of records; want TOPIC_AUTHORIZATION_FAILED and none", auth.UsersTopic, code, n)
	}
	if code, _ := fetchSecret(ctx, t, alice, "orders"); code != 0 {
		t.Errorf("alice fetching orders: code %d", code)
	}
}

// A member subscribing by regex is assigned only the matching topics its
// principal may describe, as Kafka's KIP-848 coordinator resolves regexes:
// otherwise a regex such as ".*" hands it every topic, whose names
// ConsumerGroupDescribe of its own group then shows (another tenant's
// topics included).
func TestConsumerRegexAssignsOnlyDescribableTopics(t *testing.T) {
	ctx, _, _, alice := regexMember(t)
	hb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	hb.Group, hb.MemberID, hb.MemberEpoch, hb.RebalanceTimeoutMillis = "g848", "m1", 0, 10000
	hb.SubscribedTopicRegex, hb.Topics = kmsg.StringPtr(".*"), []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	r, err := hb.RequestWith(ctx, alice)
	if err != nil || r.ErrorCode != 0 {
		t.Fatalf("ConsumerGroupHeartbeat: %v %+v", err, r)
	}
	if r.Assignment == nil || len(r.Assignment.Topics) != 1 {
		t.Errorf("regex .* assigned %d topics to alice, want 1 (logs-a): %+v", len(r.Assignment.Topics), r.Assignment)
	}
	d := kmsg.NewPtrConsumerGroupDescribeRequest()
	d.Groups = []string{"g848"}
	dr, err := d.RequestWith(ctx, alice)
	if err != nil || len(dr.Groups) != 1 || dr.Groups[0].ErrorCode != 0 || len(dr.Groups[0].Members) != 1 {
		t.Fatalf("ConsumerGroupDescribe: %v %+v", err, dr)
	}
	m := dr.Groups[0].Members[0]
	for _, a := range []kmsg.Assignment{m.Assignment, m.TargetAssignment} {
		for _, tp := range a.TopicPartitions {
			if tp.Topic != "logs-a" {
				t.Errorf("alice's group shows topic %s she may not describe", tp.Topic)
			}
		}
	}
}

// ConsumerGroupDescribe of a group whose members use topics the caller
// may not describe answers TOPIC_AUTHORIZATION_FAILED without the members,
// as Kafka does ("The described group uses topics that the client is not
// authorized to describe."): a group shared by principals would otherwise
// show each one the others' topics.
func TestConsumerGroupDescribeHidesOthersTopics(t *testing.T) {
	s := aclServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(s.Client(t))
	createACLs(ctx, t, adm, kadm.NewACLs().Allow("User:alice").AllowHosts().Topics("logs-a").Operations(kadm.OpRead))
	createACLs(ctx, t, adm, kadm.NewACLs().Allow("User:bob").AllowHosts().Topics("logs-secret").Operations(kadm.OpRead))
	createACLs(ctx, t, adm, kadm.NewACLs().Allow("User:alice", "User:bob").AllowHosts().Groups("shared").Operations(kadm.OpRead))
	join := func(cl kmsg.Requestor, member, topic string) {
		hb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		hb.Group, hb.MemberID, hb.MemberEpoch, hb.RebalanceTimeoutMillis = "shared", member, 0, 10000
		hb.SubscribedTopicNames, hb.Topics = []string{topic}, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		if r, err := hb.RequestWith(ctx, cl); err != nil || r.ErrorCode != 0 {
			t.Fatalf("heartbeat of %s: %v %+v", member, err, r)
		}
	}
	alice, bob := userClient(t, s, "alice"), userClient(t, s, "bob")
	join(alice, "ma", "logs-a")
	join(bob, "mb", "logs-secret")
	d := kmsg.NewPtrConsumerGroupDescribeRequest()
	d.Groups = []string{"shared"}
	dr, err := d.RequestWith(ctx, alice)
	if err != nil || len(dr.Groups) != 1 {
		t.Fatalf("ConsumerGroupDescribe: %v %+v", err, dr)
	}
	g := dr.Groups[0]
	if g.ErrorCode != kerr.TopicAuthorizationFailed.Code || len(g.Members) != 0 {
		t.Errorf("alice describing a group that uses logs-secret: code %d, %d members; want TOPIC_AUTHORIZATION_FAILED and none", g.ErrorCode, len(g.Members))
	}
	if dr, err = d.RequestWith(ctx, userClient(t, s, "admin")); err != nil || dr.Groups[0].ErrorCode != 0 || len(dr.Groups[0].Members) != 2 {
		t.Errorf("super user describing the group: %v %+v", err, dr)
	}
}

// A regex subscription follows ACL changes: a topic the member's principal
// may describe from now on is assigned at its next heartbeat, one it may
// no longer describe is taken away, without any topic or partition
// changing.
func TestConsumerRegexFollowsACLChanges(t *testing.T) {
	ctx, s, adm, alice := regexMember(t)
	ids := map[[16]byte]string{}
	for _, name := range []string{"logs-a", "logs-secret"} {
		tp, err := s.Log.Topic(name)
		if err != nil {
			t.Fatal(err)
		}
		ids[[16]byte(tp.ID())] = name
	}
	epoch := int32(0)
	var owned []kmsg.ConsumerGroupHeartbeatRequestTopic
	heartbeat := func() []string {
		t.Helper()
		hb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		hb.Group, hb.MemberID, hb.MemberEpoch, hb.RebalanceTimeoutMillis = "g848", "m1", epoch, 10000
		hb.SubscribedTopicRegex, hb.Topics = kmsg.StringPtr("logs-.*"), owned
		if hb.Topics == nil {
			hb.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		}
		r, err := hb.RequestWith(ctx, alice)
		if err != nil || r.ErrorCode != 0 {
			t.Fatalf("ConsumerGroupHeartbeat: %v %+v", err, r)
		}
		epoch = r.MemberEpoch
		if r.Assignment == nil {
			t.Fatal("no assignment in the answer to a full heartbeat")
		}
		owned = nil
		var names []string
		for _, at := range r.Assignment.Topics {
			rt := kmsg.NewConsumerGroupHeartbeatRequestTopic()
			rt.TopicID, rt.Partitions = at.TopicID, at.Partitions
			owned = append(owned, rt)
			names = append(names, ids[at.TopicID])
		}
		slices.Sort(names)
		return names
	}
	if got := heartbeat(); !slices.Equal(got, []string{"logs-a"}) {
		t.Fatalf("assigned %v, want [logs-a]", got)
	}
	createACLs(ctx, t, adm, kadm.NewACLs().Allow("User:alice").AllowHosts().Topics("logs-secret").Operations(kadm.OpRead))
	if got := heartbeat(); !slices.Equal(got, []string{"logs-a", "logs-secret"}) {
		t.Fatalf("after READ on logs-secret: assigned %v, want [logs-a logs-secret]", got)
	}
	createACLs(ctx, t, adm, kadm.NewACLs().Deny("User:alice").DenyHosts().Topics("logs-a").Operations(kadm.OpDescribe))
	if got := heartbeat(); !slices.Equal(got, []string{"logs-secret"}) {
		t.Fatalf("after a DENY of DESCRIBE on logs-a: assigned %v, want [logs-secret]", got)
	}
}

// regexMember starts an aclServer on which alice may read topic logs-a
// and group g848, and returns a context bounding the test, the server,
// a super user's admin client and alice's client.
func regexMember(t *testing.T) (context.Context, *kafkatest.Server, *kadm.Client, *kgo.Client) {
	t.Helper()
	s := aclServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	adm := kadm.NewClient(s.Client(t))
	createACLs(ctx, t, adm, kadm.NewACLs().Allow("User:alice").AllowHosts().Topics("logs-a").Operations(kadm.OpRead))
	createACLs(ctx, t, adm, kadm.NewACLs().Allow("User:alice").AllowHosts().Groups("g848").Operations(kadm.OpRead))
	return ctx, s, adm, userClient(t, s, "alice")
}

// ConsumerGroupDescribe's authorized operations reflect the ACLs when
// asked for, as DescribeGroups' do (alice may READ g848, so also
// DESCRIBE it, but not DELETE it), and are left out when not asked for.
func TestConsumerGroupDescribeAuthorizedOperations(t *testing.T) {
	ctx, _, _, alice := regexMember(t)
	hb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	hb.Group, hb.MemberID, hb.MemberEpoch, hb.RebalanceTimeoutMillis = "g848", "m1", 0, 10000
	hb.SubscribedTopicNames, hb.Topics = []string{"logs-a"}, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	if r, err := hb.RequestWith(ctx, alice); err != nil || r.ErrorCode != 0 {
		t.Fatalf("ConsumerGroupHeartbeat: %v %+v", err, r)
	}
	for _, include := range []bool{true, false} {
		d := kmsg.NewPtrConsumerGroupDescribeRequest()
		d.Groups, d.IncludeAuthorizedOperations = []string{"g848"}, include
		dr, err := d.RequestWith(ctx, alice)
		if err != nil || len(dr.Groups) != 1 || dr.Groups[0].ErrorCode != 0 {
			t.Fatalf("ConsumerGroupDescribe: %v %+v", err, dr)
		}
		want := int32(math.MinInt32)
		if include {
			want = 1<<kmsg.ACLOperationRead | 1<<kmsg.ACLOperationDescribe
		}
		if got := dr.Groups[0].AuthorizedOperations; got != want {
			t.Errorf("include %v: authorized operations %#x, want %#x", include, got, want)
		}
	}
}
