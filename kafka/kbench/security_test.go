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
	addr, sec, stop, err := StartSecureServer(t.TempDir(), logstore.FsyncPolicy{Mode: logstore.FsyncNever}, Security{Protocol: "SASL_SSL"})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
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
