package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/sluicehq/sluice/auth"
	"github.com/sluicehq/sluice/internal/kvtopic"
	"github.com/sluicehq/sluice/kafka"
	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/sluicehq/sluice/logstore"
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
	// --password-file: its first line is the password.
	pwFile := filepath.Join(t.TempDir(), "erin.pw")
	if err := os.WriteFile(pwFile, []byte("erin-pw\nnot the password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runCLI(t, env, "", "user", "add", "erin", "--mechanism", "scram-sha-256", "--password-file", pwFile); code != 0 || !strings.Contains(out, "SCRAM-SHA-256 credential stored") || strings.Contains(out, "SCRAM-SHA-512") {
		t.Fatalf("user add --password-file: %d %q %q", code, out, errs)
	}
	if code, _, errs := runCLI(t, env, "", "user", "add", "erin", "--password-file", pwFile+".missing"); code != 1 || !strings.Contains(errs, "--password-file") {
		t.Fatalf("user add with a missing --password-file: %d %q", code, errs)
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
	login := func(user, pass string, mech func(scram.Auth) sasl.Mechanism) error {
		return saslPing(s.Addrs["SASL"], mech(scram.Auth{User: user, Pass: pass}))
	}
	sha512 := scram.Auth.AsSha512Mechanism
	sha256 := scram.Auth.AsSha256Mechanism
	if err := login("carol", "s3cret", sha512); err != nil {
		t.Fatalf("carol with SCRAM-SHA-512: %v", err)
	}
	if err := login("carol", "s3cret", sha256); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("carol with the deleted SCRAM-SHA-256: %v", err)
	}
	if err := login("erin", "erin-pw", sha256); err != nil {
		t.Fatalf("erin with SCRAM-SHA-256 and the password of her file: %v", err)
	}
	if err := login("erin", "erin-pw", sha512); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("erin has only SCRAM-SHA-256, yet SCRAM-SHA-512: %v", err)
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
	if code, _, errs := runCLI(t, env, "", "namespace", "create", "acme/logs", "--max-storage", "1000", "--on-full", "drop"); code != 2 || !strings.Contains(errs, "refuse or evict") {
		t.Fatalf("bad --on-full: %d %q", code, errs)
	}
	if code, out, errs := runCLI(t, env, "", "namespace", "create", "acme/logs", "--max-storage", "2000000", "--on-full", "evict"); code != 0 {
		t.Fatalf("namespace create --on-full evict: %d %q %q", code, out, errs)
	}
	if code, _, errs := runCLI(t, env, "", "namespace", "create", "acme.x/prod"); code != 2 {
		t.Fatalf("bad tenant name: %d %q", code, errs)
	}
	if code, out, _ := runCLI(t, env, "", "tenant", "list"); code != 0 || !strings.Contains(out, "48h0m0s") || !strings.Contains(out, "1000000") || !strings.Contains(out, "evict") {
		t.Fatalf("tenant list: %d %q", code, out)
	}
	if code, _, errs := runCLI(t, env, "", "tenant", "delete", "acme"); code != 1 || !strings.Contains(errs, "still has namespaces") {
		t.Fatalf("deleting a tenant with namespaces: %d %q", code, errs)
	}
	s := kafkatest.Start(t, kafkatest.Options{Dir: dir})
	if ns, ok, _ := s.Kafka.Tenants().NamespaceOf("acme.prod.orders"); !ok || ns.ProduceRate != 5000 {
		t.Fatalf("the server started on the directory sees %+v (%v)", ns, ok)
	}
	if ns, ok, _ := s.Kafka.Tenants().NamespaceOf("acme.logs.app"); !ok || ns.OnFull != auth.OnFullEvict || ns.MaxStorage != 2000000 {
		t.Fatalf("the server started on the directory sees %+v (%v)", ns, ok)
	}
}

// TestTokenCommands: sluice token create prints a token once (only its
// hash is stored) tied to a principal; list shows it without the secret;
// revoke removes it; the store on the directory maps it to the principal
// until its lifetime ends.
func TestTokenCommands(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"SLUICE_DATA_DIR": dir}
	if code, _, errs := runCLI(t, env, "", "token", "create", "--principal", "alice"); code != 1 || !strings.Contains(errs, "User:NAME") {
		t.Fatalf("principal without User: %d %q", code, errs)
	}
	if code, _, errs := runCLI(t, env, "", "token", "create"); code != 2 {
		t.Fatalf("no --principal: %d %q", code, errs)
	}
	// A negative lifetime is refused before any store is opened, so it
	// cannot turn into a token that never expires (with --server neither).
	for _, extra := range [][]string{nil, {"--server", "http://127.0.0.1:1"}} {
		args := append([]string{"token", "create", "--principal", "User:alice", "--ttl", "-1h"}, extra...)
		if code, _, errs := runCLI(t, env, "", args...); code != 2 || !strings.Contains(errs, "negative") {
			t.Fatalf("negative --ttl %v: %d %q", extra, code, errs)
		}
	}
	code, out, errs := runCLI(t, env, "", "token", "create", "--principal", "User:alice", "--ttl", "1h")
	token := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(token, "sluice_") || !strings.Contains(errs, "shown once") {
		t.Fatalf("token create: %d %q %q", code, out, errs)
	}
	code, out, _ = runCLI(t, env, "", "token", "list")
	if code != 0 || !strings.Contains(out, "User:alice") || strings.Contains(out, token) {
		t.Fatalf("token list: %d %q", code, out)
	}
	var id string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "User:alice") {
			id = strings.Fields(line)[0]
		}
	}
	func() {
		l, err := logstore.Open(logstore.Options{Dir: dir, Logger: slog.New(slog.DiscardHandler), RetentionCheckInterval: -1, Cleaner: logstore.CleanerOptions{Interval: -1}})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		tokens, err := auth.OpenTokens(context.Background(), l)
		if err != nil {
			t.Fatal(err)
		}
		if p, ok := tokens.Principal(token, time.Now()); !ok || p != "User:alice" {
			t.Fatalf("stored token acts as %q (%v)", p, ok)
		}
		if _, ok := tokens.Principal(token, time.Now().Add(2*time.Hour)); ok {
			t.Fatal("token valid past its --ttl")
		}
	}()
	if code, out, errs := runCLI(t, env, "", "token", "revoke", id); code != 0 {
		t.Fatalf("token revoke %q: %d %q %q", id, code, out, errs)
	}
	if code, out, _ := runCLI(t, env, "", "token", "list"); code != 0 || strings.Contains(out, "User:alice") {
		t.Fatalf("token list after revoke: %d %q", code, out)
	}
	if code, _, errs := runCLI(t, env, "", "token", "revoke", id); code != 1 || !strings.Contains(errs, "no token") {
		t.Fatalf("revoking twice: %d %q", code, errs)
	}
}

// TestUserAnonymousReserved: User:ANONYMOUS is the principal of
// connections that did not authenticate, so no user may be named
// ANONYMOUS: sluice user add refuses it on a directory and through the
// server (AlterUserScramCredentials answers UNACCEPTABLE_CREDENTIAL), and a
// credential stored before the name was reserved does not log in (PLAIN
// or SCRAM) yet can still be deleted.
func TestUserAnonymousReserved(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"SLUICE_DATA_DIR": dir}
	if code, _, errs := runCLI(t, env, "pw\n", "user", "add", "ANONYMOUS"); code != 2 || !strings.Contains(errs, "reserved") {
		t.Fatalf("user add ANONYMOUS on a directory: %d %q", code, errs)
	}
	// A credential written straight into __sluice_users, as an older
	// version stored it.
	func() {
		l, err := logstore.Open(logstore.Options{Dir: dir, Logger: slog.New(slog.DiscardHandler), RetentionCheckInterval: -1, Cleaner: logstore.CleanerOptions{Interval: -1}})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		kv, err := kvtopic.Open(l, auth.UsersTopic)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range auth.Mechanisms {
			c, err := auth.NewCredential(m, "anon-pw", auth.MinIterations)
			if err != nil {
				t.Fatal(err)
			}
			v, err := json.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			if err := kv.Put(context.Background(), []byte(auth.AnonymousUser+"\x00"+string(m)), v); err != nil {
				t.Fatal(err)
			}
		}
	}()
	cfg := kafka.DefaultConfig()
	cfg.SASLMechanisms = []string{"SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"}
	s := kafkatest.Start(t, kafkatest.Options{Dir: dir, Config: &cfg, Listeners: []kafka.Listener{
		{Name: "PLAIN", Protocol: kafka.Plaintext}, {Name: "SASL", Protocol: kafka.SASLPlaintext},
	}})
	anon := scram.Auth{User: auth.AnonymousUser, Pass: "anon-pw"}
	for name, m := range map[string]sasl.Mechanism{
		"SCRAM-SHA-512": anon.AsSha512Mechanism(),
		"SCRAM-SHA-256": anon.AsSha256Mechanism(),
		"PLAIN":         plain.Auth{User: auth.AnonymousUser, Pass: "anon-pw"}.AsMechanism(),
	} {
		if err := saslPing(s.Addrs["SASL"], m); !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Errorf("ANONYMOUS logged in with %s: %v", name, err)
		}
	}
	benv := map[string]string{"SLUICE_BROKER": s.Addrs["PLAIN"]}
	if code, _, errs := runCLI(t, benv, "pw\n", "user", "add", "ANONYMOUS"); code != 2 || !strings.Contains(errs, "reserved") {
		t.Fatalf("user add ANONYMOUS through the server: %d %q", code, errs)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Addrs["PLAIN"]))
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	defer adm.Close()
	resp, err := adm.AlterUserSCRAMs(context.Background(), nil, []kadm.UpsertSCRAM{{User: auth.AnonymousUser, Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "pw"}})
	if err != nil {
		t.Fatal(err)
	}
	if r := resp[auth.AnonymousUser]; !errors.Is(r.Err, kerr.UnacceptableCredential) || !strings.Contains(r.ErrMessage, "reserved") {
		t.Fatalf("AlterUserScramCredentials for ANONYMOUS: %v %q", r.Err, r.ErrMessage)
	}
	if code, out, errs := runCLI(t, benv, "", "user", "delete", "ANONYMOUS"); code != 0 || !strings.Contains(out, "deleted") {
		t.Fatalf("deleting the old ANONYMOUS credential: %d %q %q", code, out, errs)
	}
}

// saslPing connects to a SASL listener with mech and pings it: nil once
// authenticated, else why not.
func saslPing(addr string, mech sasl.Mechanism) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.SASL(mech), kgo.RequestRetries(0))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return cl.Ping(ctx)
}
