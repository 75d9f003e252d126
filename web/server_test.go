package web

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestNonLoopbackNeedsToken(t *testing.T) {
	if _, err := New(Config{Addr: "0.0.0.0:0"}, nil); err == nil || !strings.Contains(err.Error(), "token") {
		t.Fatalf("want a token error, got %v", err)
	}
	if _, err := New(Config{Addr: "0.0.0.0:0", Token: "s3cret"}, nil); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
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

func TestEndpointsAndToken(t *testing.T) {
	s, err := New(Config{Addr: "127.0.0.1:0", Token: "tok"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	base := "http://" + ln.Addr().String()
	if code, body := get(t, base+"/healthz", ""); code != 200 || !strings.Contains(body, "ok") {
		t.Fatalf("healthz: %d %s", code, body)
	}
	if code, _ := get(t, base+"/metrics", ""); code != 401 {
		t.Fatalf("metrics without token: %d", code)
	}
	if code, body := get(t, base+"/metrics", "tok"); code != 200 || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("metrics: %d", code)
	}
	// The probes need no token: Kubernetes' httpGet probes cannot send one.
	if code, body := get(t, base+"/readyz", ""); code != 200 || !strings.Contains(body, "ready") {
		t.Fatalf("readyz without token: %d %s", code, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
