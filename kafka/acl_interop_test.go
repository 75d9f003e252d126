package kafka_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/sluicehq/sluice/internal/testcerts"
	"github.com/sluicehq/sluice/kafka"
	"github.com/sluicehq/sluice/kafka/kafkatest"
)

// confluentACLScript produces one record to argv[2] with the librdkafka
// properties in argv[1] (JSON) and prints the delivery error name or
// "ok"; then it consumes with group argv[3] and prints the first error
// name or "ok".
const confluentACLScript = `
import sys, json
from confluent_kafka import Producer, Consumer
conf, topic, group = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
res = []
p = Producer(dict(conf, **{'message.timeout.ms': 10000}))
p.produce(topic, b'v', on_delivery=lambda err, msg: res.append(err.name() if err else 'ok'))
p.flush(15)
print('produce', res[0] if res else 'timeout')
c = Consumer(dict(conf, **{'group.id': group, 'auto.offset.reset': 'earliest'}))
c.subscribe([topic])
out = 'timeout'
for _ in range(40):
    m = c.poll(0.5)
    if m is None:
        continue
    out = m.error().name() if m.error() else 'ok'
    break
c.close()
print('consume', out)
`

// secureACLServer starts a server with the authorizer on, a SASL_SSL
// listener, user alice (password alice-secret, SCRAM-SHA-512) and topic
// sec-orders; the PLAINTEXT listener (Addr) is the super user
// User:ANONYMOUS's, for granting ACLs.
func secureACLServer(t *testing.T) (*kafkatest.Server, *testcerts.Set, *kadm.Client) {
	t.Helper()
	s, certs := tlsServer(t, false, func(c *kafka.Config) {
		c.Authorizer = kafka.AuthorizerConfig{Enabled: true, SuperUsers: []string{"User:ANONYMOUS"}}
	}, kafka.Listener{Name: "SASL_SSL", Protocol: kafka.SASLSSL})
	adm := kadm.NewClient(s.Client(t))
	upsertSCRAM(t, adm, "alice", kadm.ScramSha512)
	if _, err := adm.CreateTopics(context.Background(), 1, 1, nil, "sec-orders"); err != nil {
		t.Fatal(err)
	}
	return s, certs, adm
}

// TestConfluentPythonAuthorization: confluent-kafka-python as alice over
// SASL_SSL with SCRAM-SHA-512 gets Kafka's authorisation errors without
// ACLs (TOPIC_AUTHORIZATION_FAILED producing, GROUP_AUTHORIZATION_FAILED
// joining the group), and produces and consumes once they are granted.
func TestConfluentPythonAuthorization(t *testing.T) {
	needConfluentPython(t)
	s, certs, adm := secureACLServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conf, err := json.Marshal(withBootstrap(saslProps("SASL_SSL", "SCRAM-SHA-512", "alice-secret", certs), s.Addrs["SASL_SSL"]))
	if err != nil {
		t.Fatal(err)
	}
	out := run(t, "", pythonPath, "-c", confluentACLScript, string(conf), "sec-orders", "pyg")
	if !strings.Contains(out, "produce TOPIC_AUTHORIZATION_FAILED") || !strings.Contains(out, "consume GROUP_AUTHORIZATION_FAILED") {
		t.Fatalf("without ACLs:\n%s", out)
	}
	createACLs(ctx, t, adm, kadm.NewACLs().Allow("User:alice").Topics("sec-orders").Operations(kadm.OpWrite, kadm.OpRead))
	out = run(t, "", pythonPath, "-c", confluentACLScript, string(conf), "sec-orders", "pyg")
	if !strings.Contains(out, "produce ok") || !strings.Contains(out, "consume GROUP_AUTHORIZATION_FAILED") {
		t.Fatalf("with topic ACLs only:\n%s", out)
	}
	createACLs(ctx, t, adm, kadm.NewACLs().Allow("User:alice").Groups("pyg").Operations(kadm.OpRead))
	out = run(t, "", pythonPath, "-c", confluentACLScript, string(conf), "sec-orders", "pyg")
	if !strings.Contains(out, "produce ok") || !strings.Contains(out, "consume ok") {
		t.Fatalf("with ACLs:\n%s", out)
	}
	if got := s.Kafka.Principals(); !contains(got, "User:alice") {
		t.Fatalf("principals %v, want User:alice", got)
	}
}

// TestKcatAuthorization: kcat as alice over SASL_SSL with SCRAM-SHA-512
// is refused with TOPIC_AUTHORIZATION_FAILED producing to and consuming
// from a topic without ACLs, and round-trips once WRITE and READ are
// granted.
func TestKcatAuthorization(t *testing.T) {
	kcat := needKcat(t)
	s, certs, adm := secureACLServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	addr := s.Addrs["SASL_SSL"]
	conf := kcatConf(saslProps("SASL_SSL", "SCRAM-SHA-512", "alice-secret", certs))
	const refused = "Topic authorization failed"
	out := runFailIn(t, "refused\n", kcat, append([]string{"-b", addr, "-P", "-t", "sec-orders"}, conf...)...)
	if !strings.Contains(out, refused) {
		t.Fatalf("kcat producing without an ACL printed:\n%s", out)
	}
	out = runFail(t, kcat, append([]string{"-b", addr, "-C", "-t", "sec-orders", "-o", "beginning", "-e"}, conf...)...)
	if !strings.Contains(out, refused) {
		t.Fatalf("kcat consuming without an ACL printed:\n%s", out)
	}
	createACLs(ctx, t, adm, kadm.NewACLs().Allow("User:alice").Topics("sec-orders").Operations(kadm.OpWrite, kadm.OpRead))
	kcatRoundTrip(t, kcat, addr, "sec-orders", saslProps("SASL_SSL", "SCRAM-SHA-512", "alice-secret", certs))
}
