package http

import (
	nethttp "net/http"
	"strings"
	"testing"
)

// A loopback source without a token takes records only from requests
// addressed to a loopback name and from no other origin's browser page: a
// page the local user visits could otherwise post records (a text/plain
// form needs no CORS preflight) or, through DNS rebinding, anything.
func TestLoopbackWithoutTokenRefusesForeignHostAndOrigin(t *testing.T) {
	s, sp := newSource(t, Config{})
	r, cancel := startReader(sp)
	defer cancel()
	send := func(host, origin string) int {
		req, err := nethttp.NewRequest(nethttp.MethodPost, "http://"+s.Addr()+DefaultPath, strings.NewReader(`{"x":1}`+"\n"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "text/plain")
		if host != "" {
			req.Host = host
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		res, err := nethttp.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if code := send("", "https://evil.example"); code != 403 {
		t.Errorf("cross-site post: %d, want 403", code)
	}
	if code := send("rebind.example", ""); code != 403 {
		t.Errorf("post to a rebound name: %d, want 403", code)
	}
	if code := send("", ""); code != 200 {
		t.Errorf("local post: %d, want 200", code)
	}
	// Answered once handed over: the reader has the records already.
	if got := r.values(); len(got) != 1 {
		t.Errorf("records %v, want the local post's only", got)
	}
}
