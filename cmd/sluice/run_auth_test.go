package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/internal/testcerts"
	"github.com/sluicehq/sluice/kafka"
	"github.com/sluicehq/sluice/kafka/kafkatest"
)

// TestRunAsPrincipal: `sluice run --principal` authenticates a spec's
// kafka source that has no security settings of its own (SCRAM over TLS
// to a SASL_SSL listener), with the password from --password-file or
// SLUICE_PASSWORD; a wrong password fails the run with the
// authentication error and a hint, never the password; missing or
// contradictory flags are usage errors.
func TestRunAsPrincipal(t *testing.T) {
	certs, err := testcerts.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srvTLS, err := certs.ServerTLS(false)
	if err != nil {
		t.Fatal(err)
	}
	cfg := kafka.DefaultConfig()
	cfg.TLS = srvTLS
	s := kafkatest.Start(t, kafkatest.Options{Config: &cfg, Listeners: []kafka.Listener{{Name: "SASL_SSL", Protocol: kafka.SASLSSL}}})
	const pw = "dana-pa55-word"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := kadm.NewClient(s.Client(t)).AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "dana", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: pw}})
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	prod := s.Client(t, kgo.DefaultProduceTopic("events"))
	for i := range 5 {
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, `{"n":%d}`, i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	spec := filepath.Join(dir, "p.yaml")
	body := "name: p\nsource:\n  kafka: {brokers: [\"" + s.Addrs["SASL_SSL"] + "\"], topic: events, bounded: true}\nsink: {stdout: {}}\n"
	if err := os.WriteFile(spec, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SLUICE_DATA_DIR": dir}
	want := `{"n":0} {"n":1} {"n":2} {"n":3} {"n":4}`
	check := func(out string) {
		t.Helper()
		lines := strings.Fields(out)
		sort.Strings(lines)
		if got := strings.Join(lines, " "); got != want {
			t.Fatalf("output %q, want %q", got, want)
		}
	}
	code, out, errs := runCLI(t, env, "", "run", "--quiet", "--principal", "User:dana", "--password-file", pwFile,
		"--sasl-mechanism", "scram-sha-256", "--tls-ca", certs.CAFile, spec)
	if code != 0 {
		t.Fatalf("run --principal --password-file: status %d: %s", code, errs)
	}
	check(out)
	envPW := map[string]string{"SLUICE_DATA_DIR": dir, "SLUICE_PASSWORD": pw}
	code, out, errs = runCLI(t, envPW, "", "run", "--quiet", "--principal", "dana", "--sasl-mechanism", "SCRAM-SHA-256",
		"--security-protocol", "SASL_SSL", "--tls-ca", certs.CAFile, spec)
	if code != 0 {
		t.Fatalf("run --principal with %s: status %d: %s", passwordEnv, code, errs)
	}
	check(out)

	const wrong = "not-danas-password"
	bad := map[string]string{"SLUICE_DATA_DIR": dir, "SLUICE_PASSWORD": wrong}
	code, _, errs = runCLI(t, bad, "", "run", "--quiet", "--principal", "dana", "--sasl-mechanism", "SCRAM-SHA-256", "--tls-ca", certs.CAFile, spec)
	if code != 1 || !strings.Contains(errs, "SASL_AUTHENTICATION_FAILED") || !strings.Contains(errs, "check the password of --principal dana") {
		t.Fatalf("wrong password: status %d, stderr %q", code, errs)
	}
	if strings.Contains(errs, wrong) {
		t.Fatalf("stderr contains the password: %q", errs)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--principal", "dana"}, "needs its password"},
		{[]string{"--password-file", pwFile}, "--password-file needs --principal"},
		{[]string{"--principal", "dana", "--password-file", pwFile, "--security-protocol", "SSL"}, "--principal is set but --security-protocol SSL"},
		{[]string{"--security-protocol", "SASL_SSL"}, "--security-protocol SASL_SSL needs --principal"},
		{[]string{"--principal", "dana", "--password-file", pwFile, "--sasl-mechanism", "GSSAPI"}, `--sasl-mechanism "GSSAPI"`},
		{[]string{"--principal", "dana", "--password-file", pwFile, "--security-protocol", "SASL_PLAINTEXT", "--tls-ca", certs.CAFile}, "--tls-ca is set but --security-protocol SASL_PLAINTEXT does not use TLS"},
	} {
		code, _, errs := runCLI(t, env, "", append(append([]string{"run", "--quiet"}, c.args...), spec)...)
		if code != 2 || !strings.Contains(errs, c.want) {
			t.Errorf("run %v: status %d, stderr %q; want status 2 and %q", c.args, code, errs, c.want)
		}
	}
}

// TestValidateDoesNotEchoPasswords: `sluice validate` reports a bad kafka
// block's sasl settings by file, line and key, without the password.
func TestValidateDoesNotEchoPasswords(t *testing.T) {
	const pw = "v4lidate-must-not-print-this"
	spec := filepath.Join(t.TempDir(), "p.yaml")
	body := "source:\n  kafka:\n    brokers: [b]\n    topic: t\n    security_protocol: SSL\n    sasl: {mechanism: SCRAM-SHA-1, username: u, password: " + pw + "}\nsink: {stdout: {}}\n"
	if err := os.WriteFile(spec, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCLI(t, nil, "", "validate", spec)
	if code != 1 || !strings.Contains(errs, "p.yaml:6:") || !strings.Contains(errs, "source.kafka.sasl.mechanism") || !strings.Contains(errs, "p.yaml:5:") {
		t.Fatalf("validate: status %d, stderr %q", code, errs)
	}
	if strings.Contains(out+errs, pw) {
		t.Fatalf("validate printed the password: %q %q", out, errs)
	}
}
