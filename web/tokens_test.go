package web

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/auth"
	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/observe"
)

// TestPrincipalTokens: tokens tied to principals authenticate requests as
// their principal, which the Authorize hook then judges; the static token
// is the super principal; unknown, revoked and expired tokens are refused.
func TestPrincipalTokens(t *testing.T) {
	l, err := logstore.Open(logstore.Options{Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler), RetentionCheckInterval: -1, Cleaner: logstore.CleanerOptions{Interval: -1}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	tokens, err := auth.OpenTokens(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	alice, info, err := tokens.Create(ctx, "User:alice", 0)
	if err != nil {
		t.Fatal(err)
	}
	bob, _, err := tokens.Create(ctx, "User:bob", 0)
	if err != nil {
		t.Fatal(err)
	}
	short, _, err := tokens.Create(ctx, "User:alice", time.Nanosecond)
	if err != nil {
		t.Fatal(err)
	}
	var seen string
	reg := prometheus.NewRegistry()
	s, err := New(Config{Addr: "127.0.0.1:0", Token: "static", Tokens: tokens, Registerer: reg,
		Authorize: func(p string, r *http.Request) bool { return p == "User:alice" && r.Method == http.MethodGet }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Mux.HandleFunc("GET /api/v1/whoami", func(w http.ResponseWriter, r *http.Request) {
		seen = PrincipalFrom(r.Context())
		w.WriteHeader(http.StatusNoContent)
	})
	base := serve(t, s)
	get := func(token string) int {
		req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/whoami", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := get(""); c != http.StatusUnauthorized {
		t.Fatalf("no token: %d", c)
	}
	if c := get(alice); c != http.StatusNoContent || seen != "User:alice" {
		t.Fatalf("alice's token: %d as %q", c, seen)
	}
	if c := get(bob); c != http.StatusForbidden {
		t.Fatalf("bob's token, not allowed: %d", c)
	}
	if c := get("static"); c != http.StatusNoContent || seen != SuperPrincipal {
		t.Fatalf("static token: %d as %q", c, seen)
	}
	if c := get(short); c != http.StatusUnauthorized {
		t.Fatalf("expired token: %d", c)
	}
	if c := get("sluice_nope"); c != http.StatusUnauthorized {
		t.Fatalf("unknown token: %d", c)
	}
	if err := tokens.Revoke(ctx, info.ID); err != nil {
		t.Fatal(err)
	}
	if c := get(alice); c != http.StatusUnauthorized {
		t.Fatalf("revoked token: %d", c)
	}
	// The store keeps hashes, never a token.
	for _, ti := range tokens.List() {
		if ti.ID == "" || ti.Principal == "" {
			t.Fatalf("token info %+v", ti)
		}
	}
	// Each refusal is counted by reason (and logged).
	want := map[string]float64{"missing": 1, "forbidden": 1, "expired": 1, "invalid": 2}
	if got := authFailures(t, reg); !maps.Equal(got, want) {
		t.Errorf("sluice_http_auth_failures_total by reason: %v, want %v", got, want)
	}
}

// authFailures returns sluice_http_auth_failures_total by reason.
func authFailures(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "sluice_http_auth_failures_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	return got
}

// TestPrincipalVisibility: with a Visible hook, a principal token sees in
// the JSON API only the topics and groups it may describe (lists and the
// overview leave the others out, a named one answers 403), while the
// static token sees everything.
func TestPrincipalVisibility(t *testing.T) {
	l := openLog(t)
	ctx := context.Background()
	for _, name := range []string{"acme.prod.orders", "globex.prod.orders"} {
		if err := l.CreateTopic(name, logstore.TopicConfig{Partitions: 1}); err != nil {
			t.Fatal(err)
		}
	}
	offs, err := logstore.OpenOffsetStore(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{"acme.billing", "globex.billing"} {
		topic := strings.Split(g, ".")[0] + ".prod.orders"
		if err := offs.Commit(ctx, g, map[logstore.TopicPartition]logstore.CommittedOffset{{Topic: topic}: {Offset: 0, LeaderEpoch: -1}}); err != nil {
			t.Fatal(err)
		}
	}
	tokens, err := auth.OpenTokens(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	alice, _, err := tokens.Create(ctx, "User:alice", 0)
	if err != nil {
		t.Fatal(err)
	}
	o := observe.New(observe.Options{Log: l, Offsets: offs})
	visible := func(p string, _ *http.Request, kind, name string) bool {
		return p == "User:alice" && strings.HasPrefix(name, "acme.") && (kind == ResourceTopic || kind == ResourceGroup)
	}
	s, err := New(Config{Addr: "127.0.0.1:0", Token: "static", Tokens: tokens, Observer: o, Visible: visible, Registerer: prometheus.NewRegistry()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, s)
	o.Sample()
	names := func(token string) (topics, groups []string) {
		var ov Overview
		if code := getJSON(t, base+"/api/v1/overview", token, &ov); code != 200 {
			t.Fatalf("overview: %d", code)
		}
		var ts []TopicSummary
		getJSON(t, base+"/api/v1/topics", token, &ts)
		var gs []GroupSummary
		getJSON(t, base+"/api/v1/groups", token, &gs)
		if len(ts) != len(ov.Topics) || len(gs) != len(ov.Groups) {
			t.Fatalf("lists and overview differ: %d/%d topics, %d/%d groups", len(ts), len(ov.Topics), len(gs), len(ov.Groups))
		}
		for _, x := range ts {
			if !strings.HasPrefix(x.Name, "__") {
				topics = append(topics, x.Name)
			}
		}
		for _, x := range gs {
			groups = append(groups, x.Name)
		}
		slices.Sort(topics)
		slices.Sort(groups)
		return topics, groups
	}
	if ts, gs := names(alice); !slices.Equal(ts, []string{"acme.prod.orders"}) || !slices.Equal(gs, []string{"acme.billing"}) {
		t.Fatalf("alice sees topics %v and groups %v", ts, gs)
	}
	if ts, gs := names("static"); !slices.Contains(ts, "acme.prod.orders") || !slices.Contains(ts, "globex.prod.orders") || !slices.Equal(gs, []string{"acme.billing", "globex.billing"}) {
		t.Fatalf("the static token sees topics %v and groups %v", ts, gs)
	}
	var v any
	for path, want := range map[string]int{
		"/api/v1/topics/acme.prod.orders":   200,
		"/api/v1/topics/globex.prod.orders": 403,
		"/api/v1/groups/acme.billing":       200,
		"/api/v1/groups/globex.billing":     403,
	} {
		if code := getJSON(t, base+path, alice, &v); code != want {
			t.Errorf("alice GET %s: %d, want %d", path, code, want)
		}
	}
}

// TestStoredAdminTokenIsNotStatic: a stored token issued to the principal
// the static --http-token stands for (User:admin) is judged like any
// other token (the ACL hook, the super-user list), never as the static
// token; and revoking an unknown token id answers 404, an invalid
// request 400.
func TestStoredAdminTokenIsNotStatic(t *testing.T) {
	l := openLog(t)
	ctx := context.Background()
	tokens, err := auth.OpenTokens(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	stored, _, err := tokens.Create(ctx, SuperPrincipal, 0)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Addr: "127.0.0.1:0", Token: "static", Tokens: tokens, TokenAdmin: tokens, Registerer: prometheus.NewRegistry(),
		Authorize: func(string, *http.Request) bool { return false }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, s)
	do := func(method, path, token string) int {
		req, _ := http.NewRequest(method, base+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := do(http.MethodGet, "/api/v1/tokens", "static"); c != http.StatusOK {
		t.Fatalf("static token on the token admin API: %d", c)
	}
	if c := do(http.MethodGet, "/api/v1/tokens", stored); c != http.StatusForbidden {
		t.Fatalf("stored token of %s, refused by the ACL hook: %d, want 403", SuperPrincipal, c)
	}
	if c := do(http.MethodDelete, "/api/v1/tokens/no-such-id", "static"); c != http.StatusNotFound {
		t.Fatalf("revoking an unknown token id: %d, want 404", c)
	}
	if _, _, err := tokens.Create(ctx, "alice", 0); !errors.Is(err, auth.ErrToken) || auth.IsNotFound(err) {
		t.Fatalf("a bad principal: %v, want a token error that is not 'not found'", err)
	}

	// Without an ACL hook the stored token reaches the admin API's own
	// check, which only the static token and super users pass.
	s2, err := New(Config{Addr: "127.0.0.1:0", Token: "static", Tokens: tokens, TokenAdmin: tokens, Registerer: prometheus.NewRegistry(),
		SuperUser: func(p string) bool { return p == "User:root" }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	base = serve(t, s2)
	if c := do(http.MethodGet, "/api/v1/tokens", stored); c != http.StatusForbidden {
		t.Fatalf("stored token of %s, not a super user: %d, want 403", SuperPrincipal, c)
	}
	root, _, err := tokens.Create(ctx, "User:root", 0)
	if err != nil {
		t.Fatal(err)
	}
	if c := do(http.MethodGet, "/api/v1/tokens", root); c != http.StatusOK {
		t.Fatalf("a super user's token: %d", c)
	}
}

// TestEventStreamEndsWhenRevoked: an open event stream is checked again
// before each event, as a new request would be: it ends once its token is
// revoked, or once its principal's ACLs no longer allow it, instead of
// streaming on for as long as the client keeps it open.
func TestEventStreamEndsWhenRevoked(t *testing.T) {
	ctx := context.Background()
	tokens, made := tokensFor(t, openLog(t), "User:alice", "User:bob")
	alice, bob := made[0], made[1]
	var bobAllowed atomic.Bool
	bobAllowed.Store(true)
	o := observe.New(observe.Options{})
	reg := prometheus.NewRegistry()
	s, err := New(Config{Addr: "127.0.0.1:0", Token: "static", Tokens: tokens, Observer: o, Registerer: reg,
		Authorize: func(p string, _ *http.Request) bool { return p != "User:bob" || bobAllowed.Load() }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, s)
	open := func(token string) (*bufio.Reader, func()) {
		req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/events", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("event stream: status %d", resp.StatusCode)
		}
		r := bufio.NewReader(resp.Body)
		readEvent(t, r)
		return r, func() { resp.Body.Close() }
	}
	// ended reads the stream to its end and fails if an event comes first.
	ended := func(who string, r *bufio.Reader) {
		t.Helper()
		for {
			line, err := r.ReadString('\n')
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				t.Fatalf("%s's stream: %v", who, err)
			}
			if strings.HasPrefix(line, "event: ") {
				t.Fatalf("%s's stream sent %q after the token lost its rights", who, strings.TrimSpace(line))
			}
		}
	}
	ra, closeA := open(alice.token)
	defer closeA()
	rb, closeB := open(bob.token)
	defer closeB()
	rs, closeS := open("static")
	defer closeS()
	if err := tokens.Revoke(ctx, alice.id); err != nil {
		t.Fatal(err)
	}
	bobAllowed.Store(false)
	o.Sample()
	ended("alice (revoked)", ra)
	ended("bob (no longer allowed)", rb)
	if name, _ := readEvent(t, rs); name != "overview" {
		t.Fatalf("the static token's stream: event %q", name)
	}
	want := map[string]float64{"invalid": 1, "forbidden": 1}
	if got := authFailures(t, reg); !maps.Equal(got, want) {
		t.Errorf("sluice_http_auth_failures_total by reason: %v, want %v", got, want)
	}
}

// TestPrincipalVisibilityInDetails: the details of a topic or group a
// principal may see leave out what it may not: a topic's partitions list
// only the groups it may describe, and a group's committed partitions,
// lag and members' subscriptions and assignments only the topics it may
// describe (Kafka's ListGroups and OffsetFetch hide them the same way),
// so that a topic two tenants read does not name one tenant's groups to
// the other.
func TestPrincipalVisibilityInDetails(t *testing.T) {
	l := openLog(t)
	ctx := context.Background()
	for _, name := range []string{"shared", "globex.prod.orders"} {
		if err := l.CreateTopic(name, logstore.TopicConfig{Partitions: 1}); err != nil {
			t.Fatal(err)
		}
		appendRecords(t, l, name, 0, 10)
	}
	offs, err := logstore.OpenOffsetStore(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	commit := func(group string, topics ...string) {
		m := map[logstore.TopicPartition]logstore.CommittedOffset{}
		for _, topic := range topics {
			m[logstore.TopicPartition{Topic: topic}] = logstore.CommittedOffset{Offset: 4, LeaderEpoch: -1}
		}
		if err := offs.Commit(ctx, group, m); err != nil {
			t.Fatal(err)
		}
	}
	commit("acme.billing", "shared", "globex.prod.orders")
	commit("globex.analytics", "shared")
	tokens, made := tokensFor(t, l, "User:alice")
	alice := made[0].token
	live := func() []observe.LiveGroup {
		return []observe.LiveGroup{{Name: "acme.billing", State: "Stable", ProtocolType: "consumer", Members: []observe.GroupMember{{
			MemberID:     "m1",
			Subscription: []string{"globex.prod.orders", "shared"},
			Assignment:   []observe.MemberAssignment{{Topic: "globex.prod.orders", Partitions: []int32{0}}, {Topic: "shared", Partitions: []int32{0}}},
		}}}}
	}
	o := observe.New(observe.Options{Log: l, Offsets: offs, Groups: live})
	visible := func(p string, _ *http.Request, kind, name string) bool {
		return p == "User:alice" && (strings.HasPrefix(name, "acme.") || kind == ResourceTopic && name == "shared")
	}
	s, err := New(Config{Addr: "127.0.0.1:0", Token: "static", Tokens: tokens, Observer: o, Visible: visible, Registerer: prometheus.NewRegistry()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, s)
	o.Sample()
	for _, c := range []struct {
		who, token string
		groups     []string // in shared's partition
		topics     []string // of acme.billing: committed, subscribed, assigned
		lag        int64
	}{
		{"alice", alice, []string{"acme.billing"}, []string{"shared"}, 6},
		{"the static token", "static", []string{"acme.billing", "globex.analytics"}, []string{"globex.prod.orders", "shared"}, 12},
	} {
		var topic observe.TopicStatus
		if code := getJSON(t, base+"/api/v1/topics/shared", c.token, &topic); code != 200 {
			t.Fatalf("topic shared: %d", code)
		}
		var groups []string
		for _, g := range topic.Partitions[0].Groups {
			groups = append(groups, g.Group)
		}
		slices.Sort(groups)
		if !slices.Equal(groups, c.groups) {
			t.Errorf("%s: topic shared lists groups %v, want %v", c.who, groups, c.groups)
		}
		var g observe.GroupStatus
		if code := getJSON(t, base+"/api/v1/groups/acme.billing", c.token, &g); code != 200 {
			t.Fatalf("group acme.billing: %d", code)
		}
		var committed, assigned []string
		for _, p := range g.Partitions {
			committed = append(committed, p.Topic)
		}
		for _, a := range g.Members[0].Assignment {
			assigned = append(assigned, a.Topic)
		}
		for what, got := range map[string][]string{"committed": committed, "subscribed": g.Members[0].Subscription, "assigned": assigned} {
			if !slices.Equal(got, c.topics) {
				t.Errorf("%s: group acme.billing %s topics %v, want %v", c.who, what, got, c.topics)
			}
		}
		if g.TotalLag != c.lag {
			t.Errorf("%s: group acme.billing total lag %d, want %d", c.who, g.TotalLag, c.lag)
		}
		var ov Overview
		getJSON(t, base+"/api/v1/overview", c.token, &ov)
		for _, gs := range ov.Groups {
			if gs.Name == "acme.billing" && (gs.Partitions != len(c.topics) || gs.TotalLag != c.lag) {
				t.Errorf("%s: overview of acme.billing: %d partitions, lag %d; want %d, %d", c.who, gs.Partitions, gs.TotalLag, len(c.topics), c.lag)
			}
		}
	}
}

// madeToken is a token tokensFor made, and its id.
type madeToken struct{ token, id string }

// tokensFor opens the token store of l and makes a token (without expiry)
// for each principal, in order.
func tokensFor(t *testing.T, l *logstore.Log, principals ...string) (*auth.Tokens, []madeToken) {
	t.Helper()
	tokens, err := auth.OpenTokens(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	var out []madeToken
	for _, p := range principals {
		token, info, err := tokens.Create(context.Background(), p, 0)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, madeToken{token, info.ID})
	}
	return tokens, out
}
