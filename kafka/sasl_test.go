package kafka_test

import (
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/sluicehq/sluice/internal/testcerts"
	"github.com/sluicehq/sluice/kafka"
	"github.com/sluicehq/sluice/kafka/kafkatest"
)

// secureServer starts a server with a PLAINTEXT listener (Addr), a
// SASL_SSL, a SASL_PLAINTEXT and a mutual-TLS SSL listener, and user
// "alice" (password "alice-secret") with both SCRAM mechanisms, created
// through AlterUserScramCredentials on the PLAINTEXT listener.
func secureServer(t *testing.T, reauth time.Duration) (*kafkatest.Server, *testcerts.Set) {
	t.Helper()
	return secureServerWith(t, func(c *kafka.Config) { c.ReauthInterval = reauth })
}

// secureServerWith is secureServer with its configuration changed by edit.
func secureServerWith(t *testing.T, edit func(*kafka.Config)) (*kafkatest.Server, *testcerts.Set) {
	t.Helper()
	s, certs := tlsServer(t, false, edit,
		kafka.Listener{Name: "SASL_SSL", Protocol: kafka.SASLSSL},
		kafka.Listener{Name: "SASL_PLAINTEXT", Protocol: kafka.SASLPlaintext})
	adm := kadm.NewClient(s.Client(t))
	upsertSCRAM(t, adm, "alice", kadm.ScramSha256)
	upsertSCRAM(t, adm, "alice", kadm.ScramSha512)
	return s, certs
}

// tlsServer starts a server with a certificate of the test CA (requiring
// client certificates it signed when mutual), its configuration changed
// by edit (if not nil), and the listeners.
func tlsServer(t *testing.T, mutual bool, edit func(*kafka.Config), listeners ...kafka.Listener) (*kafkatest.Server, *testcerts.Set) {
	t.Helper()
	certs, err := testcerts.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srvTLS, err := certs.ServerTLS(mutual)
	if err != nil {
		t.Fatal(err)
	}
	cfg := kafka.DefaultConfig()
	cfg.TLS = srvTLS
	if edit != nil {
		edit(&cfg)
	}
	return kafkatest.Start(t, kafkatest.Options{Config: &cfg, Listeners: listeners}), certs
}

// upsertSCRAM gives user the password USER-secret for the SCRAM
// mechanism mech.
func upsertSCRAM(t *testing.T, adm *kadm.Client, user string, mech kadm.ScramMechanism) {
	t.Helper()
	res, err := adm.AlterUserSCRAMs(context.Background(), nil, []kadm.UpsertSCRAM{{User: user, Mechanism: mech, Iterations: 4096, Password: user + "-secret"}})
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		t.Fatalf("upsert %s %v: %v", user, mech, err)
	}
}

func saslClient(t *testing.T, addr string, tlsCfg *tls.Config, mech string, user, pass string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	o := []kgo.Opt{kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation(), kgo.RequestRetries(0), kgo.RetryTimeout(3 * time.Second)}
	if tlsCfg != nil {
		o = append(o, kgo.DialTLSConfig(tlsCfg))
	}
	switch mech {
	case "SCRAM-SHA-512":
		o = append(o, kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()))
	case "SCRAM-SHA-256":
		o = append(o, kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()))
	case "PLAIN":
		o = append(o, kgo.SASL(plain.Auth{User: user, Pass: pass}.AsMechanism()))
	}
	cl, err := kgo.NewClient(append(o, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func TestSASLSCRAMAndPlain(t *testing.T) {
	s, certs := secureServer(t, 0)
	ctlsCfg, err := certs.ClientTLS("", "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, c := range []struct {
		listener string
		tls      *tls.Config
		mech     string
	}{
		{"SASL_SSL", ctlsCfg, "SCRAM-SHA-512"},
		{"SASL_SSL", ctlsCfg, "SCRAM-SHA-256"},
		{"SASL_SSL", ctlsCfg, "PLAIN"},
		{"SASL_PLAINTEXT", nil, "SCRAM-SHA-512"},
	} {
		t.Run(c.listener+"/"+c.mech, func(t *testing.T) {
			topic := strings.ToLower(strings.ReplaceAll(c.listener+"-"+c.mech, "_", "-"))
			cl := saslClient(t, s.Addrs[c.listener], c.tls, c.mech, "alice", "alice-secret", kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			for i := range 3 {
				if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, "v%d", i)}).FirstErr(); err != nil {
					t.Fatalf("produce as alice: %v", err)
				}
			}
			var got []string
			for len(got) < 3 {
				fs := cl.PollFetches(ctx)
				if err := fs.Err0(); err != nil {
					t.Fatalf("consume as alice: %v", err)
				}
				fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
			}
			if strings.Join(got, ",") != "v0,v1,v2" {
				t.Fatalf("consumed %v", got)
			}
			// The wrong password fails authentication, with Kafka's error.
			bad := saslClient(t, s.Addrs[c.listener], c.tls, c.mech, "alice", "wrong")
			err := bad.Ping(ctx)
			if !errors.Is(err, kerr.SaslAuthenticationFailed) {
				t.Fatalf("wrong password: %v, want SASL_AUTHENTICATION_FAILED", err)
			}
			unknown := saslClient(t, s.Addrs[c.listener], c.tls, c.mech, "mallory", "x")
			if err := unknown.Ping(ctx); !errors.Is(err, kerr.SaslAuthenticationFailed) {
				t.Fatalf("unknown user: %v, want SASL_AUTHENTICATION_FAILED", err)
			}
		})
	}
}

// TestSASLRequestBeforeAuthentication: on a SASL listener anything but
// ApiVersions and the SASL exchange closes the connection.
func TestSASLRequestBeforeAuthentication(t *testing.T) {
	s, _ := secureServer(t, 0)
	r := dialRaw(t, s.Addrs["SASL_PLAINTEXT"])
	// ApiVersions is answered.
	if resp := r.request(kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 {
		t.Fatalf("ApiVersions before authentication: error %d", resp.ErrorCode)
	}
	// Metadata closes the connection.
	r.send(kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw")).AppendRequest(nil, kmsg.NewPtrMetadataRequest(), 8))
	r.expectClosed()

	// Authenticate before the handshake: closed too.
	r = dialRaw(t, s.Addrs["SASL_PLAINTEXT"])
	r.send(kmsg.NewRequestFormatter().AppendRequest(nil, &kmsg.SASLAuthenticateRequest{Version: 1, SASLAuthBytes: []byte("\x00alice\x00alice-secret")}, 9))
	r.expectClosed()

	// An unknown mechanism is answered with the ones offered.
	r = dialRaw(t, s.Addrs["SASL_PLAINTEXT"])
	hs := r.request(&kmsg.SASLHandshakeRequest{Version: 1, Mechanism: "GSSAPI"}).(*kmsg.SASLHandshakeResponse)
	if hs.ErrorCode != kerr.UnsupportedSaslMechanism.Code || !contains(hs.SupportedMechanisms, "SCRAM-SHA-512") {
		t.Fatalf("GSSAPI handshake: %+v", hs)
	}
	r.expectClosed() // as Kafka: the client reconnects with a mechanism offered
	// Malformed PLAIN and SCRAM messages fail authentication, then close.
	for _, c := range []struct{ mech, msg string }{{"PLAIN", "no-nuls"}, {"PLAIN", "\x00\x00"}, {"SCRAM-SHA-256", "garbage"}, {"SCRAM-SHA-512", ""}} {
		r = dialRaw(t, s.Addrs["SASL_PLAINTEXT"])
		if hs := r.request(&kmsg.SASLHandshakeRequest{Version: 1, Mechanism: c.mech}).(*kmsg.SASLHandshakeResponse); hs.ErrorCode != 0 {
			t.Fatalf("%s handshake: %d", c.mech, hs.ErrorCode)
		}
		ar := r.request(&kmsg.SASLAuthenticateRequest{Version: 1, SASLAuthBytes: []byte(c.msg)}).(*kmsg.SASLAuthenticateResponse)
		if ar.ErrorCode != kerr.SaslAuthenticationFailed.Code {
			t.Fatalf("%s %q: error %d, want SASL_AUTHENTICATION_FAILED", c.mech, c.msg, ar.ErrorCode)
		}
		r.expectClosed()
	}
	// Oversize frames before authentication close the connection at once
	// (the server reads no more than their size): a request, and a SASL
	// message after the handshake.
	for _, handshake := range []bool{false, true} {
		r = dialRaw(t, s.Addrs["SASL_PLAINTEXT"])
		if handshake {
			if hs := r.request(&kmsg.SASLHandshakeRequest{Version: 1, Mechanism: "PLAIN"}).(*kmsg.SASLHandshakeResponse); hs.ErrorCode != 0 {
				t.Fatalf("handshake: %d", hs.ErrorCode)
			}
		}
		r.send([]byte{0, 0x10, 0, 0}) // announces 1 MiB, over the 512 KiB allowed before authentication
		r.expectClosed()
	}
	// A handshake on a PLAINTEXT listener: ILLEGAL_SASL_STATE, closed.
	r = dialRaw(t, s.Addr)
	if hs := r.request(&kmsg.SASLHandshakeRequest{Version: 1, Mechanism: "PLAIN"}).(*kmsg.SASLHandshakeResponse); hs.ErrorCode != kerr.IllegalSaslState.Code {
		t.Fatalf("handshake on PLAINTEXT: %d, want ILLEGAL_SASL_STATE", hs.ErrorCode)
	}
	r.expectClosed()
}

// TestSecurityRefusalMetrics: each way a client is refused is counted
// under its reason, beside the successful logins: a wrong password, an
// unknown mechanism, a request before authenticating, an oversize frame
// before authenticating and a plaintext client on a TLS listener.
func TestSecurityRefusalMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, certs := secureServerWith(t, func(c *kafka.Config) { c.Registerer = reg })
	ctlsCfg, err := certs.ClientTLS("", "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := saslClient(t, s.Addrs["SASL_SSL"], ctlsCfg, "SCRAM-SHA-512", "alice", "alice-secret").Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := saslClient(t, s.Addrs["SASL_SSL"], ctlsCfg, "SCRAM-SHA-512", "alice", "wrong").Ping(ctx); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("wrong password: %v", err)
	}
	if err := saslClient(t, s.Addrs["SASL_PLAINTEXT"], nil, "PLAIN", "alice", "wrong").Ping(ctx); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("wrong PLAIN password: %v", err)
	}
	r := dialRaw(t, s.Addrs["SASL_PLAINTEXT"])
	if hs := r.request(&kmsg.SASLHandshakeRequest{Version: 1, Mechanism: "GSSAPI"}).(*kmsg.SASLHandshakeResponse); hs.ErrorCode != kerr.UnsupportedSaslMechanism.Code {
		t.Fatalf("GSSAPI: %d", hs.ErrorCode)
	}
	r = dialRaw(t, s.Addrs["SASL_PLAINTEXT"])
	r.send(kmsg.NewRequestFormatter().AppendRequest(nil, kmsg.NewPtrMetadataRequest(), 1))
	r.expectClosed()
	r = dialRaw(t, s.Addrs["SASL_PLAINTEXT"])
	r.send([]byte{0, 0x10, 0, 0})
	r.expectClosed()
	r = dialRaw(t, s.Addrs["SASL_SSL"])
	r.send(kmsg.NewRequestFormatter().AppendRequest(nil, kmsg.NewPtrApiVersionsRequest(), 1))
	r.expectClosed()
	for _, c := range []struct {
		name   string
		labels map[string]string
		min    float64
	}{
		{"sluice_kafka_authentications_total", map[string]string{"mechanism": "SCRAM-SHA-512", "result": "ok"}, 1},
		{"sluice_kafka_authentications_total", map[string]string{"mechanism": "SCRAM-SHA-512", "result": "invalid_credentials"}, 1},
		{"sluice_kafka_authentications_total", map[string]string{"mechanism": "PLAIN", "result": "invalid_credentials"}, 1},
		{"sluice_kafka_authentications_total", map[string]string{"mechanism": "GSSAPI", "result": "unsupported_mechanism"}, 1},
		{"sluice_kafka_connections_closed_on_bad_input_total", map[string]string{"reason": "unauthenticated"}, 1},
		{"sluice_kafka_connections_closed_on_bad_input_total", map[string]string{"reason": "frame_too_large"}, 1},
		{"sluice_kafka_connections_closed_on_bad_input_total", map[string]string{"reason": "tls_handshake"}, 1},
	} {
		if v := metricValue(t, reg, c.name, c.labels); v < c.min {
			t.Errorf("%s%v = %v, want at least %v", c.name, c.labels, v, c.min)
		}
	}
}

// TestTLSListenerRefusesPlaintextClient: a plaintext client on a TLS
// listener fails the handshake and is disconnected; it never hangs.
func TestTLSListenerRefusesPlaintextClient(t *testing.T) {
	s, _ := secureServer(t, 0)
	r := dialRaw(t, s.Addrs["SASL_SSL"])
	r.send(kmsg.NewRequestFormatter().AppendRequest(nil, kmsg.NewPtrApiVersionsRequest(), 1))
	r.expectClosed()
}

// TestSASLReauthentication: with a session lifetime, franz-go
// re-authenticates on its connection (KIP-368) and keeps working.
func TestSASLReauthentication(t *testing.T) {
	s, _ := secureServer(t, 300*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := saslClient(t, s.Addrs["SASL_PLAINTEXT"], nil, "SCRAM-SHA-256", "alice", "alice-secret")
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; ; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "reauth", Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
		if s.Kafka.Reauthentications() >= 2 {
			break // connections re-authenticated and kept working
		}
		if time.Now().After(deadline) {
			t.Fatalf("no re-authentication within 20s (%d authentications, %d re-authentications)", s.Kafka.Authentications(), s.Kafka.Reauthentications())
		}
		time.Sleep(50 * time.Millisecond) // pacing the producer, not synchronising
	}
}

// TestMutualTLSPrincipal: on an SSL listener that requires client
// certificates the certificate's subject is the principal; a client
// without a certificate is refused.
func TestMutualTLSPrincipal(t *testing.T) {
	s, certs := mutualTLSServer(t)
	cf, kf, err := certs.Client("bob", pkix.Name{CommonName: "bob", Organization: []string{"sluice"}})
	if err != nil {
		t.Fatal(err)
	}
	withCert, _ := certs.ClientTLS(cf, kf)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl := saslClient(t, s.Addrs["MTLS"], withCert, "", "", "")
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "mtls", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatalf("produce with a client certificate: %v", err)
	}
	if got := s.Kafka.Principals(); !contains(got, "User:CN=bob,O=sluice") {
		t.Fatalf("principals seen: %v, want User:CN=bob,O=sluice", got)
	}
	noCert, _ := certs.ClientTLS("", "")
	bare := saslClient(t, s.Addrs["MTLS"], noCert, "", "", "")
	if err := bare.Ping(ctx); err == nil {
		t.Fatal("a client without a certificate was served on a mutual-TLS listener")
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// TestSCRAMCredentialAdmin: DescribeUserScramCredentials and
// AlterUserScramCredentials through kadm, with Kafka's errors.
func TestSCRAMCredentialAdmin(t *testing.T) {
	s, _ := secureServer(t, 0)
	ctx := context.Background()
	adm := kadm.NewClient(s.Client(t))
	desc, err := adm.DescribeUserSCRAMs(ctx, "alice", "nobody")
	if err != nil {
		t.Fatal(err)
	}
	if a := desc["alice"]; a.Err != nil || len(a.CredInfos) != 2 || a.CredInfos[0].Iterations != 4096 {
		t.Fatalf("alice: %+v", a)
	}
	if n := desc["nobody"]; !errors.Is(n.Err, kerr.ResourceNotFound) {
		t.Fatalf("unknown user: %+v, want RESOURCE_NOT_FOUND", n)
	}
	// kadm checks iterations itself: a raw request reaches the server.
	up := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
	up.Name, up.Mechanism, up.Iterations, up.Salt, up.SaltedPassword = "weak", 1, 10, []byte("salt"), []byte("salted")
	up2 := up
	up2.Name, up2.Mechanism, up2.Iterations = "odd", 9, 4096
	raw := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	raw.Upsertions = []kmsg.AlterUserSCRAMCredentialsRequestUpsertion{up, up2}
	rresp, err := raw.RequestWith(ctx, s.Client(t))
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]int16{}
	for _, r := range rresp.Results {
		codes[r.User] = r.ErrorCode
	}
	if codes["weak"] != kerr.UnacceptableCredential.Code || codes["odd"] != kerr.UnsupportedSaslMechanism.Code {
		t.Fatalf("10 iterations and mechanism 9: %v, want UNACCEPTABLE_CREDENTIAL and UNSUPPORTED_SASL_MECHANISM", codes)
	}
	res, err := adm.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: "alice", Mechanism: kadm.ScramSha256}}, nil)
	if err != nil || res.Error() != nil {
		t.Fatalf("delete: %v %v", err, res.Error())
	}
	// Deleted: SHA-256 logins fail, SHA-512 ones still work; and it
	// survives a restart.
	s = s.Restart(t)
	adm2 := kadm.NewClient(s.Client(t))
	desc, err = adm2.DescribeUserSCRAMs(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if a := desc["alice"]; a.Err != nil || len(a.CredInfos) != 1 || a.CredInfos[0].Mechanism != kadm.ScramSha512 {
		t.Fatalf("after deleting SHA-256 and restarting: %+v", a)
	}
}
