package kafka_test

import (
	"bytes"
	"context"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testcerts"
	"github.com/sluicehq/sluice/kafka"
	"github.com/sluicehq/sluice/kafka/kafkatest"
)

// Interop of the TLS and SASL listeners with librdkafka (kcat and
// confluent-kafka-python; Debian ships librdkafka 2.0.2). They skip when
// the clients are absent, like interop_test.go.

// authFailedText is what Kafka (and Sluice) put in SASL_AUTHENTICATION_FAILED
// and librdkafka prints.
func authFailedText(mech string) string {
	return "Authentication failed during authentication due to invalid credentials with SASL mechanism " + mech
}

// runFail runs a command that must fail and returns its stdout and stderr.
func runFail(t *testing.T, name string, args ...string) string {
	t.Helper()
	return runFailIn(t, "", name, args...)
}

// runFailIn is runFail with stdin.
func runFailIn(t *testing.T, stdin, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err == nil {
		t.Fatalf("%s %s succeeded, want a failure:\n%s", name, strings.Join(args, " "), out.String())
	}
	if ctx.Err() != nil {
		t.Fatalf("%s %s hung:\n%s", name, strings.Join(args, " "), out.String())
	}
	return out.String()
}

// kcatConf turns librdkafka properties into kcat -X arguments.
func kcatConf(props map[string]string) []string {
	var args []string
	for k, v := range props {
		args = append(args, "-X", k+"="+v)
	}
	return args
}

// saslProps are the librdkafka properties of alice on a SASL listener.
func saslProps(listener, mech, pass string, certs *testcerts.Set) map[string]string {
	p := map[string]string{"security.protocol": listener, "sasl.mechanisms": mech, "sasl.username": "alice", "sasl.password": pass}
	if listener == "SASL_SSL" {
		p["ssl.ca.location"] = certs.CAFile
	}
	return p
}

var saslCases = []struct{ listener, mech string }{
	{"SASL_SSL", "SCRAM-SHA-512"},
	{"SASL_SSL", "SCRAM-SHA-256"},
	{"SASL_SSL", "PLAIN"},
	{"SASL_PLAINTEXT", "SCRAM-SHA-512"},
	{"SASL_PLAINTEXT", "PLAIN"},
}

// kcatRoundTrip produces 20 lines with kcat and reads them back.
func kcatRoundTrip(t *testing.T, kcat, addr, topic string, props map[string]string) {
	t.Helper()
	var in strings.Builder
	for i := range 20 {
		fmt.Fprintf(&in, "%s-%d\n", topic, i)
	}
	conf := kcatConf(props)
	run(t, in.String(), kcat, append([]string{"-b", addr, "-P", "-t", topic}, conf...)...)
	out := run(t, "", kcat, append([]string{"-b", addr, "-C", "-t", topic, "-o", "beginning", "-e", "-c", "20"}, conf...)...)
	if got := strings.TrimSpace(out); got != strings.TrimSpace(in.String()) {
		t.Fatalf("kcat consumed:\n%s\nwant:\n%s", got, in.String())
	}
}

func TestKcatSASL(t *testing.T) {
	kcat := needKcat(t)
	s, certs := secureServer(t, 0)
	for _, c := range saslCases {
		t.Run(c.listener+"/"+c.mech, func(t *testing.T) {
			addr := s.Addrs[c.listener]
			topic := strings.ToLower(strings.ReplaceAll("kcat-"+c.listener+"-"+c.mech, "_", "-"))
			kcatRoundTrip(t, kcat, addr, topic, saslProps(c.listener, c.mech, "alice-secret", certs))
			// The wrong password: kcat reports Kafka's message and gives up.
			out := runFail(t, kcat, append([]string{"-b", addr, "-L", "-m", "5"}, kcatConf(saslProps(c.listener, c.mech, "wrong", certs))...)...)
			if !strings.Contains(out, "SASL authentication error: "+authFailedText(c.mech)) {
				t.Fatalf("kcat with a wrong password printed:\n%s", out)
			}
		})
	}
	if got := s.Kafka.Principals(); !contains(got, "User:alice") {
		t.Fatalf("principals %v, want User:alice", got)
	}
}

// mutualTLSServer starts a server with an SSL listener "MTLS" that
// requires client certificates signed by the test CA.
func mutualTLSServer(t *testing.T) (*kafkatest.Server, *testcerts.Set) {
	t.Helper()
	return tlsServer(t, true, nil, kafka.Listener{Name: "MTLS", Protocol: kafka.SSL})
}

func TestKcatMutualTLS(t *testing.T) {
	kcat := needKcat(t)
	s, certs := mutualTLSServer(t)
	cf, kf, err := certs.Client("kcat", pkix.Name{CommonName: "kcat", Organization: []string{"sluice"}})
	if err != nil {
		t.Fatal(err)
	}
	props := map[string]string{"security.protocol": "SSL", "ssl.ca.location": certs.CAFile, "ssl.certificate.location": cf, "ssl.key.location": kf}
	kcatRoundTrip(t, kcat, s.Addrs["MTLS"], "kcat-mtls", props)
	if got := s.Kafka.Principals(); !contains(got, "User:CN=kcat,O=sluice") {
		t.Fatalf("principals %v, want the certificate's User:CN=kcat,O=sluice", got)
	}
	// Without a certificate the TLS handshake is refused.
	out := runFail(t, kcat, append([]string{"-b", s.Addrs["MTLS"], "-L", "-m", "5"}, kcatConf(map[string]string{"security.protocol": "SSL", "ssl.ca.location": certs.CAFile})...)...)
	if !strings.Contains(out, "alert certificate required") {
		t.Fatalf("kcat without a client certificate printed:\n%s", out)
	}
}

// confluentSecurityScript drives confluent-kafka-python with the
// librdkafka properties in argv[1] (JSON). Modes:
//
//	roundtrip TOPIC N: produce N records, consume them; prints {"acked", "seen"}
//	fail: list topics, which must fail; prints {"errors", "exception"}
//	paced TOPIC N PAUSE: produce N records one at a time, PAUSE seconds
//	  apart; prints {"acked", "errors"}
const confluentSecurityScript = `
import sys, json, time
from confluent_kafka import Producer, Consumer, KafkaException
from confluent_kafka.admin import AdminClient
conf, mode = json.loads(sys.argv[1]), sys.argv[2]
errors = []
def on_error(err):
    errors.append(str(err))
acked = []
def report(err, msg):
    if err is not None:
        raise KafkaException(err)
    acked.append(msg.offset())
if mode == "roundtrip":
    topic, n = sys.argv[3], int(sys.argv[4])
    p = Producer(dict(conf, **{"enable.idempotence": True, "acks": "all", "linger.ms": 5}))
    for i in range(n):
        p.produce(topic, value="py-%d" % i, on_delivery=report)
        p.poll(0)
    if p.flush(30) != 0:
        sys.exit("flush timed out")
    c = Consumer(dict(conf, **{"group.id": "py-sec", "auto.offset.reset": "earliest", "session.timeout.ms": 6000}))
    c.subscribe([topic])
    seen = []
    deadline = time.time() + 30
    while len(seen) < n and time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            sys.exit("consume error: %s" % m.error())
        seen.append(m.value().decode())
    c.close()
    print(json.dumps({"acked": len(acked), "seen": seen}))
elif mode == "fail":
    a = AdminClient(dict(conf, **{"error_cb": on_error}))
    exc = ""
    try:
        a.list_topics(timeout=5)
    except KafkaException as e:
        exc = str(e)
    else:
        sys.exit("list_topics succeeded")
    deadline = time.time() + 10
    while not errors and time.time() < deadline:
        a.poll(0.2)  # serves error_cb
    print(json.dumps({"errors": errors, "exception": exc}))
elif mode == "paced":
    topic, n, pause = sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
    p = Producer(dict(conf, **{"enable.idempotence": True, "acks": "all", "error_cb": on_error}))
    for i in range(n):
        p.produce(topic, value="paced-%d" % i, on_delivery=report)
        if p.flush(30) != 0:
            sys.exit("flush timed out")
        time.sleep(pause)
    print(json.dumps({"acked": len(acked), "errors": errors}))
`

type pyResult struct {
	Acked     int      `json:"acked"`
	Seen      []string `json:"seen"`
	Errors    []string `json:"errors"`
	Exception string   `json:"exception"`
}

func runPython(t *testing.T, props map[string]string, args ...string) pyResult {
	t.Helper()
	conf, err := json.Marshal(props)
	if err != nil {
		t.Fatal(err)
	}
	out := run(t, "", pythonPath, append([]string{"-c", confluentSecurityScript, string(conf)}, args...)...)
	var r pyResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("script output %q: %v", out, err)
	}
	return r
}

func pyRoundTrip(t *testing.T, addr, topic string, props map[string]string) {
	t.Helper()
	const n = 50
	props = withBootstrap(props, addr)
	r := runPython(t, props, "roundtrip", topic, fmt.Sprint(n))
	if r.Acked != n || len(r.Seen) != n {
		t.Fatalf("acked %d, consumed %d of %d", r.Acked, len(r.Seen), n)
	}
	for i, v := range r.Seen {
		if want := fmt.Sprintf("py-%d", i); v != want {
			t.Fatalf("record %d: %q, want %q", i, v, want)
		}
	}
}

func withBootstrap(props map[string]string, addr string) map[string]string {
	p := map[string]string{"bootstrap.servers": addr}
	for k, v := range props {
		p[k] = v
	}
	return p
}

func TestConfluentKafkaPythonSASL(t *testing.T) {
	needConfluentPython(t)
	s, certs := secureServer(t, 0)
	for _, c := range saslCases {
		t.Run(c.listener+"/"+c.mech, func(t *testing.T) {
			addr := s.Addrs[c.listener]
			topic := strings.ToLower(strings.ReplaceAll("py-"+c.listener+"-"+c.mech, "_", "-"))
			pyRoundTrip(t, addr, topic, saslProps(c.listener, c.mech, "alice-secret", certs))
			r := runPython(t, withBootstrap(saslProps(c.listener, c.mech, "wrong", certs), addr), "fail")
			all := strings.Join(append(r.Errors, r.Exception), "\n")
			if !strings.Contains(all, "_AUTHENTICATION") || !strings.Contains(all, authFailedText(c.mech)) {
				t.Fatalf("confluent-kafka-python with a wrong password reported:\n%s", all)
			}
		})
	}
}

func TestConfluentKafkaPythonMutualTLS(t *testing.T) {
	needConfluentPython(t)
	s, certs := mutualTLSServer(t)
	cf, kf, err := certs.Client("py", pkix.Name{CommonName: "py-client", Organization: []string{"sluice"}})
	if err != nil {
		t.Fatal(err)
	}
	pyRoundTrip(t, s.Addrs["MTLS"], "py-mtls", map[string]string{"security.protocol": "SSL", "ssl.ca.location": certs.CAFile, "ssl.certificate.location": cf, "ssl.key.location": kf})
	if got := s.Kafka.Principals(); !contains(got, "User:CN=py-client,O=sluice") {
		t.Fatalf("principals %v, want User:CN=py-client,O=sluice", got)
	}
	r := runPython(t, map[string]string{"bootstrap.servers": s.Addrs["MTLS"], "security.protocol": "SSL", "ssl.ca.location": certs.CAFile}, "fail")
	if all := strings.Join(append(r.Errors, r.Exception), "\n"); !strings.Contains(all, "alert certificate required") {
		t.Fatalf("confluent-kafka-python without a client certificate reported:\n%s", all)
	}
}

// TestConfluentKafkaPythonReauthentication records what librdkafka does
// with a session lifetime (KIP-368, --reauth-interval). librdkafka
// re-authenticates from 2.2.0; Debian's 2.0.2 does not: the server closes
// its connection at the first request after the session ended, and the
// client reconnects, authenticates afresh and carries on (the idempotent
// producer resends what the closed connection did not answer).
func TestConfluentKafkaPythonReauthentication(t *testing.T) {
	needConfluentPython(t)
	const lifetime = 500 * time.Millisecond
	s, certs := secureServer(t, lifetime)
	ver, err := strconv.Atoi(strings.TrimSpace(run(t, "", pythonPath, "-c", "import confluent_kafka; print(confluent_kafka.libversion()[1])")))
	if err != nil {
		t.Fatal(err)
	}
	reauthenticates := ver >= 0x020200ff
	const n = 4
	// Pacing: each record goes out after the previous connection's session
	// has ended (the client has to outlive it; nothing waits on timing).
	props := withBootstrap(saslProps("SASL_SSL", "SCRAM-SHA-512", "alice-secret", certs), s.Addrs["SASL_SSL"])
	r := runPython(t, props, "paced", "py-reauth", fmt.Sprint(n), "0.8")
	if r.Acked != n {
		t.Fatalf("acked %d of %d records; errors %v", r.Acked, n, r.Errors)
	}
	auths, reauths := s.Kafka.Authentications(), s.Kafka.Reauthentications()
	t.Logf("librdkafka %#x: %d authentications, %d re-authentications, client errors %q", ver, auths, reauths, r.Errors)
	if reauthenticates {
		if reauths == 0 {
			t.Fatalf("librdkafka %#x should re-authenticate (KIP-368) but did not", ver)
		}
		return
	}
	if reauths != 0 {
		t.Fatalf("librdkafka %#x re-authenticated %d times: update this test and docs/kafka.md", ver, reauths)
	}
	// Closed on expiry and reconnected: more logins than the connections
	// a single session would need, and the client saw the disconnection.
	if auths < n {
		t.Fatalf("%d authentications for %d records spaced beyond the session lifetime: the expired connections were not closed", auths, n)
	}
	if !strings.Contains(strings.Join(r.Errors, "\n"), "Disconnected") {
		t.Fatalf("client errors %q: want the disconnection of the expired session", r.Errors)
	}
}
