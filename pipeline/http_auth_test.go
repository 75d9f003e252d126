package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/auth"
	"github.com/sluicehq/sluice/connector"
	nethttp "github.com/sluicehq/sluice/connector/http"
	"github.com/sluicehq/sluice/stream"
)

// lockedBuffer is an io.Writer safe for the sink and the test to share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestHTTPPrincipalTokens: under auth: principals the http source takes
// bearer tokens from the embedded log's token store and lets a principal
// in only with WRITE on the ACL topic of that log: an allowed principal's
// records reach the sink, a principal without the ACL gets 403, unknown,
// revoked and expired tokens get 401, the static token keeps working, and
// each refusal is counted.
func TestHTTPPrincipalTokens(t *testing.T) {
	for _, tc := range []struct {
		name, aclTopic, grant string
	}{
		{"default acl topic is the pipeline name", "", "ingest-auth"},
		{"acl_topic", "orders", "orders"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			l := openTestLog(t)
			tokens, err := auth.OpenTokens(ctx, l)
			if err != nil {
				t.Fatal(err)
			}
			acls, err := auth.OpenACLStore(ctx, l)
			if err != nil {
				t.Fatal(err)
			}
			mk := func(p string, ttl time.Duration) (string, auth.TokenInfo) {
				tok, info, err := tokens.Create(ctx, p, ttl)
				if err != nil {
					t.Fatal(err)
				}
				return tok, info
			}
			alice, _ := mk("User:alice", 0)
			bob, _ := mk("User:bob", 0)
			revoked, rinfo := mk("User:alice", 0)
			expired, _ := mk("User:alice", time.Nanosecond) // expires within its creation second
			if err := tokens.Revoke(ctx, rinfo.ID); err != nil {
				t.Fatal(err)
			}
			err = acls.Add(ctx,
				auth.ACL{ResourceType: auth.ResourceTopic, ResourceName: tc.grant, PatternType: auth.PatternLiteral, Principal: "User:alice", Host: "*", Operation: auth.OpWrite, Permission: auth.PermAllow},
				// bob may write another topic only.
				auth.ACL{ResourceType: auth.ResourceTopic, ResourceName: "elsewhere", PatternType: auth.PatternLiteral, Principal: "User:bob", Host: "*", Operation: auth.OpWrite, Permission: auth.PermAllow},
				// READ does not let anyone ingest.
				auth.ACL{ResourceType: auth.ResourceTopic, ResourceName: tc.grant, PatternType: auth.PatternLiteral, Principal: "User:bob", Host: "*", Operation: auth.OpRead, Permission: auth.PermAllow},
			)
			if err != nil {
				t.Fatal(err)
			}
			aclLine := ""
			if tc.aclTopic != "" {
				aclLine = ", acl_topic: " + tc.aclTopic
			}
			spec, err := Parse("ingest-auth.yaml", []byte(fmt.Sprintf(`
name: ingest-auth
source:
  http: {addr: "127.0.0.1:0", token: static-secret, auth: principals%s}
  format: json
sink:
  stdout: {}
parallelism: 1
`, aclLine)))
			if err != nil {
				t.Fatal(err)
			}
			p, err := Compile(spec)
			if err != nil {
				t.Fatal(err)
			}
			var src *nethttp.Source
			out := &lockedBuffer{}
			host := &Host{Log: l, Stdout: out, OnSourceOpen: func(_ string, s stream.Source[connector.Message]) { src = s.(*nethttp.Source) }}
			j, err := p.Start(ctx, host)
			if err != nil {
				t.Fatal(err)
			}
			if err := src.Listen(); err != nil {
				t.Fatal(err)
			}
			send := func(token, body string) int {
				t.Helper()
				req, err := http.NewRequest(http.MethodPost, "http://"+src.Addr()+"/ingest", strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				if token != "" {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				return res.StatusCode
			}
			for _, c := range []struct {
				who, token, body string
				want             int
			}{
				{"alice", alice, `{"from":"alice"}`, 200},
				{"static token", "static-secret", `{"from":"static"}`, 200},
				{"bob without WRITE", bob, `{"from":"bob"}`, 403},
				{"revoked", revoked, `{"from":"revoked"}`, 401},
				{"expired", expired, `{"from":"expired"}`, 401},
				{"unknown", "sluice_nosuchtoken", `{"from":"unknown"}`, 401},
				{"no token", "", `{"from":"none"}`, 401},
			} {
				if got := send(c.token, c.body); got != c.want {
					t.Errorf("%s: answered %d, want %d", c.who, got, c.want)
				}
			}
			deadline := time.Now().Add(30 * time.Second)
			for !(strings.Contains(out.String(), "alice") && strings.Contains(out.String(), "static")) {
				if time.Now().After(deadline) {
					t.Fatalf("accepted records not delivered; sink got %q", out.String())
				}
				time.Sleep(5 * time.Millisecond)
			}
			src.Stop()
			if err := j.Wait(); err != nil {
				t.Fatal(err)
			}
			got := out.String()
			for _, refused := range []string{"bob", "revoked", "expired", "unknown", "none"} {
				if strings.Contains(got, refused) {
					t.Errorf("refused request's record %q reached the sink: %q", refused, got)
				}
			}
			if n := strings.Count(got, "\n"); n != 2 {
				t.Errorf("sink got %d records, want 2: %q", n, got)
			}
			if st := src.Stats(); st.Unauthorized != 4 || st.Forbidden != 1 || st.Requests != 2 {
				t.Errorf("stats %+v: want 4 unauthorized, 1 forbidden, 2 decoded", st)
			}
		})
	}
}

func TestHTTPAuthSpecErrors(t *testing.T) {
	for _, c := range []struct{ http, want string }{
		{`{acl_topic: x}`, "needs auth: principals"},
		{`{auth: bogus}`, "auth"},
		{`{addr: "0.0.0.0:0"}`, "auth: principals"},
	} {
		_, err := Parse("x.yaml", []byte("name: x\nsource:\n  http: "+c.http+"\n  format: json\nsink:\n  stdout: {}\n"))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("http %s: error %v, want one containing %q", c.http, err, c.want)
		}
	}
	// A non-loopback address with principal tokens only is accepted.
	if _, err := Parse("x.yaml", []byte("name: x\nsource:\n  http: {addr: \"0.0.0.0:0\", auth: principals}\n  format: json\nsink:\n  stdout: {}\n")); err != nil {
		t.Errorf("non-loopback with auth: principals: %v", err)
	}
}
