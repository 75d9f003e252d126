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

// TestUserCommands: sluice user add/list/delete on a data directory and
// on a server (--broker); a user added either way can log in with SCRAM.
func TestUserCommands(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"SLUICE_DATA_DIR": dir}
	if code, out, errs := runCLI(t, env, "s3cret\n", "user", "add", "carol"); code != 0 || !strings.Contains(out, "SCRAM-SHA-512 credential stored") {
		t.Fatalf("user add: %d %q %q", code, out, errs)
	}
	if code, out, _ := runCLI(t, env, "", "user", "list"); code != 0 || !strings.Contains(out, "carol") || !strings.Contains(out, "SCRAM-SHA-256 (8192 iterations)") {
		t.Fatalf("user list: %d %q", code, out)
	}
	if code, _, errs := runCLI(t, env, "", "user", "add", "dave"); code != 1 || !strings.Contains(errs, "empty password") {
		t.Fatalf("user add without a password: %d %q", code, errs)
	}
	if code, _, errs := runCLI(t, env, "x\n", "user", "add", "bad=name"); code != 2 {
		t.Fatalf("user add with a bad name: %d %q", code, errs)
	}
	if code, _, errs := runCLI(t, env, "x\n", "user", "add", "erin", "--iterations", "10"); code != 2 || !strings.Contains(errs, "--iterations") {
		t.Fatalf("user add with 10 iterations: %d %q", code, errs)
	}
	if code, out, _ := runCLI(t, env, "", "user", "delete", "carol", "--mechanism", "scram-sha-256"); code != 0 || !strings.Contains(out, "SCRAM-SHA-256 credential deleted") {
		t.Fatalf("user delete: %d %q", code, out)
	}
	if code, _, errs := runCLI(t, env, "", "user", "delete", "carol", "--mechanism", "scram-sha-256"); code != 1 || !strings.Contains(errs, "no scram-sha-256 credential") {
		t.Fatalf("deleting twice: %d %q", code, errs)
	}

	// The server started on that directory lets carol in with SHA-512.
	cfg := kafka.DefaultConfig()
	s := kafkatest.Start(t, kafkatest.Options{Dir: dir, Config: &cfg, Listeners: []kafka.Listener{{Name: "SASL", Protocol: kafka.SASLPlaintext}}})
	login := func(user, pass string, mech func(scram.Auth) kgo.Opt) error {
		cl, err := kgo.NewClient(kgo.SeedBrokers(s.Addrs["SASL"]), mech(scram.Auth{User: user, Pass: pass}), kgo.RequestRetries(0))
		if err != nil {
			return err
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return cl.Ping(ctx)
	}
	sha512 := func(a scram.Auth) kgo.Opt { return kgo.SASL(a.AsSha512Mechanism()) }
	sha256 := func(a scram.Auth) kgo.Opt { return kgo.SASL(a.AsSha256Mechanism()) }
	if err := login("carol", "s3cret", sha512); err != nil {
		t.Fatalf("carol with SCRAM-SHA-512: %v", err)
	}
	if err := login("carol", "s3cret", sha256); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("carol with the deleted SCRAM-SHA-256: %v", err)
	}
	// Through the server: add frank, who then logs in.
	benv := map[string]string{"SLUICE_BROKER": s.Addr}
	if code, out, errs := runCLI(t, benv, "pw-frank\n", "user", "add", "frank", "--mechanism", "scram-sha-256"); code != 0 {
		t.Fatalf("user add --broker: %d %q %q", code, out, errs)
	}
	if err := login("frank", "pw-frank", sha256); err != nil {
		t.Fatalf("frank added through the server: %v", err)
	}
	if code, out, _ := runCLI(t, benv, "", "user", "list"); code != 0 || !strings.Contains(out, "frank") || !strings.Contains(out, "carol") {
		t.Fatalf("user list --broker: %d %q", code, out)
	}
}

// TestTenantCommands: sluice tenant and sluice namespace on a data
// directory, read back by list and by a server started on it.
func TestTenantCommands(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"SLUICE_DATA_DIR": dir}
	if code, _, errs := runCLI(t, env, "", "namespace", "create", "acme/prod"); code != 1 || !strings.Contains(errs, "sluice tenant create acme") {
		t.Fatalf("namespace of a missing tenant: %d %q", code, errs)
	}
	if code, out, errs := runCLI(t, env, "", "tenant", "create", "acme", "--member", "User:alice"); code != 0 || !strings.Contains(out, "User:alice") {
		t.Fatalf("tenant create: %d %q %q", code, out, errs)
	}
	if code, _, errs := runCLI(t, env, "", "tenant", "create", "acme", "--member", "alice"); code != 1 || !strings.Contains(errs, "not a principal") {
		t.Fatalf("member without User: %d %q", code, errs)
	}
	if code, out, errs := runCLI(t, env, "", "namespace", "create", "acme/prod", "--retention", "48h", "--max-storage", "1000000", "--produce-rate", "5000"); code != 0 || !strings.Contains(out, "acme.prod.") {
		t.Fatalf("namespace create: %d %q %q", code, out, errs)
	}
	if code, _, errs := runCLI(t, env, "", "namespace", "create", "acme.x/prod"); code != 2 {
		t.Fatalf("bad tenant name: %d %q", code, errs)
	}
	if code, out, _ := runCLI(t, env, "", "tenant", "list"); code != 0 || !strings.Contains(out, "48h0m0s") || !strings.Contains(out, "1000000") {
		t.Fatalf("tenant list: %d %q", code, out)
	}
	if code, _, errs := runCLI(t, env, "", "tenant", "delete", "acme"); code != 1 || !strings.Contains(errs, "still has namespaces") {
		t.Fatalf("deleting a tenant with namespaces: %d %q", code, errs)
	}
	s := kafkatest.Start(t, kafkatest.Options{Dir: dir})
	if ns, ok, _ := s.Kafka.Tenants().NamespaceOf("acme.prod.orders"); !ok || ns.ProduceRate != 5000 {
		t.Fatalf("the server started on the directory sees %+v (%v)", ns, ok)
	}
}
