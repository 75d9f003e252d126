package kafka_test

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/web"
)

// tokenMap is a web.TokenVerifier of fixed tokens.
type tokenMap map[string]string

func (m tokenMap) Principal(token string, _ time.Time) (string, bool) {
	p, ok := m[token]
	return p, ok
}

// TestTenantAdminAPILive changes tenants and namespaces through the HTTP
// admin API of a running server sharing the Kafka listener's registry: a
// tenant created live lets its member produce to its namespace's topic at
// once while a non-member gets TOPIC_AUTHORIZATION_FAILED; a produce rate
// set live throttles the next produce; only super users may use the API;
// bad requests get 4xx with the reason.
func TestTenantAdminAPILive(t *testing.T) {
	s := aclServer(t) // users alice and bob; authorizer on
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w, err := web.New(web.Config{Addr: "127.0.0.1:0", Token: "admin-token", Gatherer: prometheus.NewRegistry(),
		Tokens:    tokenMap{"root-token": "User:root", "bob-token": "User:bob"},
		Tenants:   s.Kafka.Tenants(),
		SuperUser: func(p string) bool { return p == "User:root" },
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := w.Listen()
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Serve(sctx, ln) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	base := "http://" + ln.Addr().String()
	call := func(method, path, token, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	expect := func(method, path, token, body string, code int, contains string) {
		t.Helper()
		got, msg := call(method, path, token, body)
		if got != code || !strings.Contains(msg, contains) {
			t.Fatalf("%s %s: %d %s, want %d with %q", method, path, got, msg, code, contains)
		}
	}

	// Before: alice has no ACL on acme's topic.
	alice := userClient(t, s, "alice")
	if err := produceAs(ctx, alice, "acme.prod.orders"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("alice before the tenant exists: %v", err)
	}

	// Who may: the static token and super users; bob and the anonymous
	// are refused, reads included.
	expect("PUT", "/api/v1/tenants/acme", "bob-token", `{"members":["User:bob"]}`, 403, "User:bob may not manage tenants")
	expect("GET", "/api/v1/tenants", "bob-token", "", 403, "only the --http-token and --super-user")
	expect("PUT", "/api/v1/tenants/acme", "", `{"members":["User:bob"]}`, 401, "bearer token")
	if _, ok := s.Kafka.Tenants().Tenant("acme"); ok {
		t.Fatal("a refused request created the tenant")
	}

	// Bad input.
	expect("PUT", "/api/v1/tenants/acme", "admin-token", `{"members":`, 400, "malformed JSON")
	expect("PUT", "/api/v1/tenants/acme", "admin-token", `{"member":["User:alice"]}`, 400, "unknown field")
	expect("PUT", "/api/v1/tenants/acme", "admin-token", `{"members":["alice"]}`, 400, "not a principal")
	expect("PUT", "/api/v1/tenants/ac.me", "admin-token", `{"members":[]}`, 400, "allowed are a-z")
	expect("PUT", "/api/v1/tenants/globex/namespaces/prod", "admin-token", `{}`, 404, `no tenant \"globex\"`)
	expect("DELETE", "/api/v1/tenants/globex", "admin-token", "", 404, `no tenant \"globex\"`)

	// Live: the tenant and its namespace, then alice produces at once and
	// bob is refused.
	expect("PUT", "/api/v1/tenants/acme", "root-token", `{"members":["User:alice"]}`, 200, `"members":["User:alice"]`)
	expect("PUT", "/api/v1/tenants/acme/namespaces/prod", "admin-token", `{"retention":"forever"}`, 400, "want a duration")
	expect("PUT", "/api/v1/tenants/acme/namespaces/prod", "admin-token", `{"on_full":"drop","max_storage":10}`, 400, "on-full policy")
	expect("PUT", "/api/v1/tenants/acme/namespaces/prod", "admin-token", `{"retention":"48h"}`, 200, `"retention":"48h0m0s"`)
	alice = userClient(t, s, "alice")
	if err := produceAs(ctx, alice, "acme.prod.orders"); err != nil {
		t.Fatalf("alice in the tenant created live: %v", err)
	}
	bob := userClient(t, s, "bob")
	if err := produceAs(ctx, bob, "acme.prod.orders"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("bob, not a member: %v", err)
	}
	expect("GET", "/api/v1/tenants", "admin-token", "", 200, `"namespaces":[{"tenant":"acme","name":"prod","retention":"48h0m0s"}]`)
	expect("DELETE", "/api/v1/tenants/acme", "admin-token", "", 400, "still has namespaces")

	// A produce rate set live throttles the next produce.
	var hook throttleHook
	big := func() *kgo.Record { // random bytes: batches are compressed
		v := make([]byte, 64<<10)
		rand.Read(v)
		return &kgo.Record{Topic: "acme.prod.orders", Value: v}
	}
	hooked := userClient(t, s, "alice", kgo.WithHooks(&hook), kgo.ProducerBatchMaxBytes(1<<20))
	if err := hooked.ProduceSync(ctx, big()).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if n := hook.n.Load(); n != 0 {
		t.Fatalf("throttled %d times without a produce rate", n)
	}
	expect("PUT", "/api/v1/tenants/acme/namespaces/prod", "admin-token", `{"retention":"48h","produce_rate":32768}`, 200, `"produce_rate":32768`)
	if err := hooked.ProduceSync(ctx, big()).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if hook.n.Load() == 0 {
		t.Fatal("64 KiB over a 32 KiB/s namespace rate set live was not throttled")
	}

	// Deleting live: the namespace, then the tenant once its topic is
	// gone (left behind, the topic would be no tenant's); alice loses
	// access.
	expect("DELETE", "/api/v1/tenants/acme/namespaces/prod", "admin-token", "", 204, "")
	expect("DELETE", "/api/v1/tenants/acme/namespaces/prod", "admin-token", "", 404, "no namespace acme/prod")
	expect("DELETE", "/api/v1/tenants/acme", "root-token", "", 400, "still has topics acme.prod.orders: delete them first")
	if resp, err := kadm.NewClient(alice).DeleteTopics(ctx, "acme.prod.orders"); err != nil || resp.Error() != nil {
		t.Fatalf("alice deleting her tenant's topic: %v %v", err, resp.Error())
	}
	expect("DELETE", "/api/v1/tenants/acme", "root-token", "", 204, "")
	alice = userClient(t, s, "alice")
	if err := produceAs(ctx, alice, "acme.prod.orders"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("alice after her tenant was deleted: %v", err)
	}
}
