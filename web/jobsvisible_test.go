package web

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/auth"
	"github.com/sluicehq/sluice/observe"
)

// The overview (and its event stream) carries the job summaries only to a
// principal that may GET /api/v1/jobs: a principal whose token the
// Authorize hook keeps from the jobs (sluice serve: no DESCRIBE on the
// cluster) saw every job's name, status and error through the overview.
func TestOverviewJobsNeedJobsAccess(t *testing.T) {
	l := openLog(t)
	ctx := context.Background()
	tokens, err := auth.OpenTokens(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	alice, _, err := tokens.Create(ctx, "User:alice", 0)
	if err != nil {
		t.Fatal(err)
	}
	o := observe.New(observe.Options{Log: l})
	// As sluice serve's hook: the per-resource endpoints are checked
	// topic by topic; everything else (the jobs) needs more than alice has.
	authorize := func(p string, r *http.Request) bool {
		return r.URL.Path == "/api/v1/overview" || r.URL.Path == "/api/v1/events" || strings.HasPrefix(r.URL.Path, "/api/v1/topics")
	}
	s, err := New(Config{Addr: "127.0.0.1:0", Token: "static", Tokens: tokens, Observer: o, Authorize: authorize, Registerer: prometheus.NewRegistry()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	un, err := s.Jobs().Register("secret-job", startJob(t, false))
	if err != nil {
		t.Fatal(err)
	}
	defer un()
	base := serve(t, s)
	o.Sample()
	var v any
	if code := getJSON(t, base+"/api/v1/jobs", alice, &v); code != http.StatusForbidden {
		t.Fatalf("alice GET /api/v1/jobs: %d, want 403", code)
	}
	var ov Overview
	if code := getJSON(t, base+"/api/v1/overview", alice, &ov); code != 200 || len(ov.Jobs) != 0 {
		t.Errorf("alice's overview: %d with jobs %+v; want no job", code, ov.Jobs)
	}
	if code := getJSON(t, base+"/api/v1/overview", "static", &ov); code != 200 || len(ov.Jobs) != 1 {
		t.Errorf("the static token's overview: %d with %d jobs; want 1", code, len(ov.Jobs))
	}
}
