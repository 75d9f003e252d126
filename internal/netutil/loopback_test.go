package netutil

import (
	"net/http"
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
