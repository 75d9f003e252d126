package netutil

import "testing"

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
