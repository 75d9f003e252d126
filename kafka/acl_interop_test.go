package kafka_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/sluicehq/sluice/auth"
	"github.com/sluicehq/sluice/kafka"
	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/sluicehq/sluice/logstore"
)

// confluentACLScript produces one record to argv[2] on the PLAINTEXT
// listener argv[1] (principal User:ANONYMOUS) and prints the delivery
// error name or "ok"; then it consumes with group argv[3] and prints the
// first error name or "ok".
const confluentACLScript = `
import sys
from confluent_kafka import Producer, Consumer
addr, topic, group = sys.argv[1:4]
res = []
p = Producer({'bootstrap.servers': addr, 'message.timeout.ms': 10000})
p.produce(topic, b'v', on_delivery=lambda err, msg: res.append(err.name() if err else 'ok'))
p.flush(15)
print('produce', res[0] if res else 'timeout')
c = Consumer({'bootstrap.servers': addr, 'group.id': group, 'auto.offset.reset': 'earliest'})
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

// TestConfluentPythonAuthorization: librdkafka (confluent-kafka-python)
// gets Kafka's authorisation errors without ACLs, and produces and
// consumes once they are granted. Its principal is User:ANONYMOUS on the
// PLAINTEXT listener; the super user admin grants the ACLs over SASL.
func TestConfluentPythonAuthorization(t *testing.T) {
	needConfluentPython(t)
	dir := t.TempDir()
	addAdmin(t, dir)
	cfg := kafka.DefaultConfig()
	cfg.Authorizer = kafka.AuthorizerConfig{Enabled: true, SuperUsers: []string{"User:admin"}}
	s := kafkatest.Start(t, kafkatest.Options{Dir: dir, Config: &cfg, Listeners: []kafka.Listener{{Name: "SASL_PLAINTEXT", Protocol: kafka.SASLPlaintext}}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(userClient(t, s, "admin"))
	if _, err := adm.CreateTopics(ctx, 1, 1, nil, "py-orders"); err != nil {
		t.Fatal(err)
	}
	out := run(t, "", pythonPath, "-c", confluentACLScript, s.Addr, "py-orders", "pyg")
	if !strings.Contains(out, "produce TOPIC_AUTHORIZATION_FAILED") || !strings.Contains(out, "consume GROUP_AUTHORIZATION_FAILED") {
		t.Fatalf("without ACLs:\n%s", out)
	}
	createACLs(ctx, t, adm, kadm.NewACLs().Allow("User:ANONYMOUS").Topics("py-orders").Operations(kadm.OpWrite, kadm.OpRead))
	createACLs(ctx, t, adm, kadm.NewACLs().Allow("User:ANONYMOUS").Groups("pyg").Operations(kadm.OpRead))
	out = run(t, "", pythonPath, "-c", confluentACLScript, s.Addr, "py-orders", "pyg")
	if !strings.Contains(out, "produce ok") || !strings.Contains(out, "consume ok") {
		t.Fatalf("with ACLs:\n%s", out)
	}
}

// addAdmin stores user admin (password admin-secret) in the data
// directory dir before a server opens it.
func addAdmin(t *testing.T, dir string) {
	t.Helper()
	l, err := logstore.Open(logstore.Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	st, err := auth.OpenStore(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	c, err := auth.NewCredential(auth.ScramSHA512, "admin-secret", auth.MinIterations)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Set(context.Background(), "admin", c); err != nil {
		t.Fatal(err)
	}
}
