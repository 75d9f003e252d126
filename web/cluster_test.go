package web

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/cluster"
	"github.com/sluicehq/sluice/observe"
)

// fakeCluster stands in for a running cluster instance: each Status call
// counts one more record on the first task, so a page that polls sees a
// figure change.
type fakeCluster struct {
	calls atomic.Int64
	// ctxOK records whether the last call got a live request context.
	ctxOK atomic.Bool
}

func (f *fakeCluster) Status(ctx context.Context) cluster.Status {
	f.ctxOK.Store(ctx != nil && ctx.Err() == nil)
	return clusterStatus(f.calls.Add(1))
}

// clusterStatus is the fake instance's status at its n-th call: instance
// "b" of three, with two tasks and two rebalances. Member c's host holds
// markup, which the dashboard must show as text.
func clusterStatus(n int64) cluster.Status {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	return cluster.Status{
		Application: "orders-app", Instance: "b", ExactlyOnce: true, Generation: 7, MemberID: "b-member",
		Members: []cluster.Member{
			{MemberID: "a-member", InstanceID: "a", ClientID: "sluice-a", Host: "/10.0.0.1", Tasks: "orders[1 2]"},
			{MemberID: "b-member", InstanceID: "b", ClientID: "sluice-b", Host: "/10.0.0.2", Tasks: "orders[0 3]"},
			{MemberID: "c-member", InstanceID: "c", ClientID: "sluice-c", Host: "<b>bold</b>"},
		},
		Topics: []string{"orders"},
		Tasks: []cluster.TaskStatus{
			{ID: "0_0", Topic: "orders", Partition: 0, Records: 100 + n, Lag: 5, Restored: true},
			{ID: "0_3", Topic: "orders", Partition: 3, Records: 40},
		},
		Commits: 12, Aborts: 1, LastCommit: t0.Add(time.Minute), Rebalances: 2,
		History: []cluster.RebalanceEvent{
			{Time: t0, Assigned: "orders[0 1 3]"},
			{Time: t0.Add(30 * time.Second), Revoked: "orders[1]"},
		},
		Restores: 1, RestoreSecs: 0.25, BusyRatio: 0.9, LagGrowth: 12.5, Recommended: 4,
	}
}

// TestClusterEndpoint checks /api/v1/cluster, /api/v1/info and the
// dashboard's files on a cluster-only server (no Observer), on one with
// both, and on one with neither.
func TestClusterEndpoint(t *testing.T) {
	f := &fakeCluster{}
	s, err := New(Config{Addr: "127.0.0.1:0", Cluster: f.Status}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.srv.Handler)
	defer ts.Close()

	var st cluster.Status
	if code := getJSON(t, ts.URL+"/api/v1/cluster", "", &st); code != http.StatusOK {
		t.Fatalf("cluster: status %d", code)
	}
	if want := clusterStatus(1); !reflect.DeepEqual(st, want) {
		t.Fatalf("cluster status:\n got %+v\nwant %+v", st, want)
	}
	if !f.ctxOK.Load() {
		t.Fatal("the Cluster func did not get the request's live context")
	}
	var info Info
	if code := getJSON(t, ts.URL+"/api/v1/info", "", &info); code != http.StatusOK || info != (Info{Cluster: true}) {
		t.Fatalf("info: status %d, %+v", code, info)
	}
	var apiErr apiError
	if code := getJSON(t, ts.URL+"/api/v1/overview", "", &apiErr); code != http.StatusNotFound || !strings.Contains(apiErr.Error, "no such API endpoint") {
		t.Fatalf("overview on a cluster-only server: status %d, %+v", code, apiErr)
	}
	for _, c := range []struct{ path, ctype, has string }{
		{"/", "text/html", `src="/assets/app.js"`},
		{"/assets/app.js", "javascript", "showCluster"},
		{"/assets/style.css", "text/css", "nav"},
	} {
		resp, body := getResp(t, ts.URL+c.path, "")
		if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Type"), c.ctype) || !strings.Contains(body, c.has) {
			t.Fatalf("GET %s: status %d, content type %q, body without %q", c.path, resp.StatusCode, resp.Header.Get("Content-Type"), c.has)
		}
	}

	// A server with both the observer and the cluster has both APIs.
	both, err := New(Config{Addr: "127.0.0.1:0", Observer: observe.New(observe.Options{Log: openLog(t)}), Cluster: f.Status}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tb := httptest.NewServer(both.srv.Handler)
	defer tb.Close()
	if code := getJSON(t, tb.URL+"/api/v1/info", "", &info); code != http.StatusOK || info != (Info{Jobs: true, Cluster: true}) {
		t.Fatalf("info with both: status %d, %+v", code, info)
	}
	var ov Overview
	if code := getJSON(t, tb.URL+"/api/v1/overview", "", &ov); code != http.StatusOK || len(ov.Topics) == 0 {
		t.Fatalf("overview with both: status %d, %+v", code, ov)
	}
	if code := getJSON(t, tb.URL+"/api/v1/cluster", "", &st); code != http.StatusOK || st.Application != "orders-app" {
		t.Fatalf("cluster with both: status %d, %+v", code, st)
	}

	// With neither, there is no dashboard and no API.
	bare, err := New(Config{Addr: "127.0.0.1:0"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tn := httptest.NewServer(bare.srv.Handler)
	defer tn.Close()
	for _, p := range []string{"/", "/assets/app.js", "/api/v1/info", "/api/v1/cluster"} {
		if resp, _ := getResp(t, tn.URL+p, ""); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("GET %s without observer or cluster: status %d, want 404", p, resp.StatusCode)
		}
	}
}

// TestClusterEndpointToken checks that the cluster API needs the token
// and the dashboard's files do not.
func TestClusterEndpointToken(t *testing.T) {
	f := &fakeCluster{}
	s, err := New(Config{Addr: "127.0.0.1:0", Token: "s3cret", Cluster: f.Status}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.srv.Handler)
	defer ts.Close()
	for _, p := range []string{"/api/v1/cluster", "/api/v1/info"} {
		if code := getJSON(t, ts.URL+p, "", nil); code != http.StatusUnauthorized {
			t.Fatalf("GET %s without the token: status %d, want 401", p, code)
		}
		if code := getJSON(t, ts.URL+p, "s3cret", nil); code != http.StatusOK {
			t.Fatalf("GET %s with the token: status %d", p, code)
		}
	}
	if f.calls.Load() != 1 {
		t.Fatalf("the Cluster func was called %d times, want once (only the authorized request)", f.calls.Load())
	}
	for _, p := range []string{"/", "/assets/app.js"} {
		if resp, _ := getResp(t, ts.URL+p, ""); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s without the token: status %d, want 200", p, resp.StatusCode)
		}
	}
}

// getResp GETs url with an optional token and returns the response (its
// body already read and closed) and the body.
func getResp(t *testing.T, url, token string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
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
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}
