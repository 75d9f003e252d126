package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/sluicehq/sluice/kafka"
	"github.com/sluicehq/sluice/kafka/kafkatest"
)

// TestACLCommands: sluice acl add/list/delete on a data directory and on
// a server (--broker); the server enforces what was added.
func TestACLCommands(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"SLUICE_DATA_DIR": dir}
	if code, _, errs := runCLI(t, env, "alice-pw\n", "user", "add", "alice"); code != 0 {
		t.Fatalf("user add: %d %q", code, errs)
	}
	if code, out, errs := runCLI(t, env, "", "acl", "add", "--principal", "User:alice", "--operation", "write,describe", "--topic", "logs-", "--pattern", "prefixed"); code != 0 || strings.Count(out, "added:") != 2 {
		t.Fatalf("acl add: %d %q %q", code, out, errs)
	}
	if code, out, _ := runCLI(t, env, "", "acl", "list"); code != 0 || !strings.Contains(out, "TOPIC:logs-") || !strings.Contains(out, "PREFIXED") || strings.Count(out, "User:alice") != 2 {
		t.Fatalf("acl list: %d %q", code, out)
	}
	if code, out, _ := runCLI(t, env, "", "acl", "list", "--topic", "logs-x", "--pattern", "match"); code != 0 || strings.Count(out, "User:alice") != 2 {
		t.Fatalf("acl list --pattern match: %d %q", code, out)
	}
	for _, bad := range [][]string{
		{"acl", "add", "--principal", "alice", "--operation", "read", "--topic", "t"},
		{"acl", "add", "--principal", "User:alice", "--operation", "fly", "--topic", "t"},
		{"acl", "add", "--principal", "User:alice", "--operation", "read"},
		{"acl", "add", "--principal", "User:alice", "--operation", "read", "--topic", "t", "--group", "g"},
		{"acl", "add", "--principal", "User:alice", "--operation", "read", "--topic", "t", "--pattern", "match"},
		{"acl", "delete"},
	} {
		if code, _, errs := runCLI(t, env, "", bad...); code != 2 {
			t.Errorf("%q: exit %d, want 2 (%q)", bad, code, errs)
		}
	}

	// The server on that directory enforces the ACLs; PLAINTEXT is a
	// super user, as `sluice serve --super-user User:ANONYMOUS` makes it.
	cfg := kafka.DefaultConfig()
	cfg.Authorizer = kafka.AuthorizerConfig{Enabled: true, SuperUsers: []string{"User:ANONYMOUS"}}
	s := kafkatest.Start(t, kafkatest.Options{Dir: dir, Config: &cfg, Listeners: []kafka.Listener{{Name: "SASL", Protocol: kafka.SASLPlaintext}}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	alice, err := kgo.NewClient(kgo.SeedBrokers(s.Addrs["SASL"]), kgo.SASL(scram.Auth{User: "alice", Pass: "alice-pw"}.AsSha512Mechanism()), kgo.RequestRetries(0), kgo.RetryTimeout(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	if _, err := s.Client(t).ProduceSync(ctx, &kgo.Record{Topic: "logs-a"}, &kgo.Record{Topic: "other"}).First(); err != nil {
		t.Fatal(err)
	}
	if err := alice.ProduceSync(ctx, &kgo.Record{Topic: "logs-a", Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("alice produce under the CLI's ACL: %v", err)
	}
	if err := alice.ProduceSync(ctx, &kgo.Record{Topic: "other", Value: []byte("v")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("alice produce to other: %v", err)
	}

	// Through the server.
	benv := map[string]string{"SLUICE_BROKER": s.Addr}
	if code, out, errs := runCLI(t, benv, "", "acl", "add", "--principal", "User:alice", "--operation", "write", "--topic", "other", "--permission", "deny"); code != 0 {
		t.Fatalf("acl add --broker: %d %q %q", code, out, errs)
	}
	if code, out, _ := runCLI(t, benv, "", "acl", "list", "--principal", "User:alice"); code != 0 || strings.Count(out, "User:alice") != 3 || !strings.Contains(out, "DENY") {
		t.Fatalf("acl list --broker: %d %q", code, out)
	}
	if code, out, errs := runCLI(t, benv, "", "acl", "delete", "--topic", "logs-", "--pattern", "prefixed", "--operation", "write"); code != 0 || strings.Count(out, "deleted:") != 1 {
		t.Fatalf("acl delete --broker: %d %q %q", code, out, errs)
	}
	if code, _, errs := runCLI(t, benv, "", "acl", "delete", "--topic", "nothing"); code != 1 || !strings.Contains(errs, "no ACL matched") {
		t.Fatalf("acl delete of nothing: %d %q", code, errs)
	}
	if err := alice.ProduceSync(ctx, &kgo.Record{Topic: "logs-a", Value: []byte("v")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("alice produce after the WRITE ACL was deleted: %v", err)
	}
}
