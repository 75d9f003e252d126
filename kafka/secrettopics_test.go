package kafka_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
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
