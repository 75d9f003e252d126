package kbench

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluicehq/sluice/logstore"
)

// TestCompareSecuritySmall runs the security comparison with tiny
// settings: every protocol produces everything, and the report has a
// line per protocol with its ratio to the baseline.
func TestCompareSecuritySmall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	protocols := []string{"PLAINTEXT", "SSL", "SASL_SSL", "SASL_PLAINTEXT"}
	cmp, err := Compare(ctx, Config{Records: 300, RecordSize: 1024, Partitions: 1, Security: Security{Mechanism: "SCRAM-SHA-256"}}, protocols, 1)
	if err != nil {
		t.Fatal(err)
	}
	out := cmp.String()
	for _, p := range protocols {
		if len(cmp.Rates[p]) != 1 || cmp.Median(p) <= 0 || !strings.Contains(out, p) {
			t.Fatalf("%s: rates %v\n%s", p, cmp.Rates[p], out)
		}
	}
	if !strings.Contains(out, "1.00× PLAINTEXT") {
		t.Fatalf("report lacks the baseline ratio:\n%s", out)
	}
	t.Log(out)
	if _, err := Run(ctx, Config{Records: 1, Security: Security{Protocol: "KERBEROS"}}); err == nil {
		t.Fatal("unknown protocol accepted")
	}
}

// TestMeasureAuthSmall times a few logins per mechanism and checks that a
// wrong password fails with Kafka's error rather than being timed.
func TestMeasureAuthSmall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv, err := StartServer(ServerConfig{DataDir: t.TempDir(), Fsync: logstore.FsyncPolicy{Mode: logstore.FsyncNever}, Security: Security{Protocol: "SASL_SSL"}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	addr, sec := srv.Addr, srv.Security
	for _, m := range []string{"SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"} {
		sec.Mechanism = m
		res, err := MeasureAuth(ctx, addr, sec, 3)
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		if res.Logins != 3 || res.LoginP50 <= 0 || res.TLSP50 <= 0 || res.LoginP99 < res.LoginP50 {
			t.Fatalf("%s: %+v", m, res)
		}
		t.Log(res.String())
	}
	bad := sec
	bad.Password = "wrong"
	if _, err := MeasureAuth(ctx, addr, bad, 1); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("wrong password: %v, want SASL_AUTHENTICATION_FAILED", err)
	}
	if _, err := MeasureAuth(ctx, addr, Security{Protocol: "SSL"}, 1); err == nil {
		t.Fatal("auth bench on a protocol without SASL accepted")
	}
}

// TestProduceSecure creates a compacted topic and runs a keyed,
// time-bounded Produce over a SASL_SSL listener: CreateTopic and Produce
// connect with Config.Security (a plaintext client cannot talk to this
// listener), and an unknown protocol is refused before connecting.
func TestProduceSecure(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv, err := StartServer(ServerConfig{DataDir: t.TempDir(), Fsync: logstore.FsyncPolicy{Mode: logstore.FsyncNever},
		Security: Security{Protocol: "sasl_ssl", Mechanism: "SCRAM-SHA-256"}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if srv.Security.Protocol != "SASL_SSL" || srv.Security.User == "" || srv.Security.Password == "" || srv.Security.TLS == nil {
		t.Fatalf("server security not completed: %+v", srv.Security)
	}
	compact := "compact"
	cfg := Config{Topic: "secure-compacted", Partitions: 2, TopicConfigs: map[string]*string{"cleanup.policy": &compact},
		Keys: 5, RecordSize: 10, Duration: 50 * time.Millisecond, Security: srv.Security}
	if err := CreateTopic(ctx, srv.Addr, cfg); err != nil {
		t.Fatal(err)
	}
	tp, err := srv.Log.Topic(cfg.Topic)
	if err != nil {
		t.Fatal(err)
	}
	if tp.NumPartitions() != 2 || !tp.Cleanup().Compact() {
		t.Fatalf("topic: %d partitions, cleanup %v", tp.NumPartitions(), tp.Cleanup())
	}
	res, err := Produce(ctx, srv.Addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Produced < 1 || res.ProducedBytes != int64(res.Produced)*int64(10+len(KeyFor(0))) {
		t.Fatalf("result: %+v", res)
	}
	if !strings.Contains(res.String(), "SASL_SSL SCRAM-SHA-256") || !strings.Contains(res.String(), "over 5 keys") {
		t.Fatalf("report: %s", res.String())
	}
	bad := cfg
	bad.Security.Protocol = "KERBEROS"
	if _, err := Produce(ctx, srv.Addr, bad); err == nil {
		t.Fatal("Produce accepted an unknown security protocol")
	}
	if err := CreateTopic(ctx, srv.Addr, bad); err == nil {
		t.Fatal("CreateTopic accepted an unknown security protocol")
	}
}
