package netutil

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9092": true, "localhost:80": true, "[::1]:1": true, "127.5.0.1:1": true,
		"0.0.0.0:9092": false, ":9092": false, "[::]:1": false, "10.0.0.1:1": false, "example.com:1": false,
	} {
		got, err := IsLoopback(addr)
		if err != nil || got != want {
			t.Errorf("IsLoopback(%q) = %v, %v; want %v", addr, got, err, want)
		}
	}
	if _, err := IsLoopback("nonsense"); err == nil {
		t.Error("IsLoopback(nonsense) did not fail")
	}
}

func TestLocalRequest(t *testing.T) {
	for _, c := range []struct {
		host, origin string
		ok           bool
	}{
		{"127.0.0.1:8080", "", true}, {"localhost", "", true}, {"[::1]:1", "", true}, {"127.9.9.9:1", "http://localhost:3000", true},
		{"example.com:8080", "", false}, {"0.0.0.0:8080", "", false}, {"127.0.0.1:8080", "https://example.com", false},
		{"127.0.0.1:8080", "null", false}, {"localhost.example.com", "", false},
	} {
		r := &http.Request{Host: c.host, Header: http.Header{}}
		if c.origin != "" {
			r.Header.Set("Origin", c.origin)
		}
		if err := LocalRequest(r); (err == nil) != c.ok {
			t.Errorf("Host %q Origin %q: %v, want ok=%v", c.host, c.origin, err, c.ok)
		}
	}
}

// TestLocalOnly: the handler is reached only by requests LocalRequest
// accepts; the others get 403 naming the server and the reason.
func TestLocalOnly(t *testing.T) {
	h := LocalOnly("test server", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	for _, c := range []struct {
		host string
		want int
	}{{"127.0.0.1:9000", http.StatusNoContent}, {"rebound.example:9000", http.StatusForbidden}} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://"+c.host+"/", nil))
		if w.Code != c.want || (c.want == http.StatusForbidden && !strings.Contains(w.Body.String(), "test server: request addressed to")) {
			t.Errorf("Host %s: %d %q, want %d", c.host, w.Code, w.Body.String(), c.want)
		}
	}
}
