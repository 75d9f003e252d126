package web

import (
	"context"
	"net"
	"net/http"
	"testing"
)

// Without a token the server answers only requests addressed to a
// loopback name, and no browser request from another origin: a web page
// the local user visits could otherwise read and change it through DNS
// rebinding (its own name resolving to 127.0.0.1) or a cross-site POST.
func TestLoopbackWithoutTokenRefusesForeignHostAndOrigin(t *testing.T) {
	s, err := New(Config{Addr: "127.0.0.1:0"}, nil)
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
	defer func() {
		cancel()
		<-done
	}()
	_, p, err := net.SplitHostPort(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		host, origin string
		want         int
	}{
		{"127.0.0.1:" + p, "", 200},
		{"localhost:" + p, "", 200},
		{"LOCALHOST:" + p, "", 200},
		{"[::1]:" + p, "", 200},
		{"127.0.0.1:" + p, "http://127.0.0.1:" + p, 200},
		{"rebind.example:" + p, "", 403},
		{"rebind.example:" + p, "http://rebind.example:" + p, 403},
		{"127.0.0.1:" + p, "https://evil.example", 403},
		{"127.0.0.1:" + p, "null", 403},
	} {
		req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/metrics", nil)
		req.Host = c.host
		if c.origin != "" {
			req.Header.Set("Origin", c.origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("Host %s Origin %q: %d, want %d", c.host, c.origin, resp.StatusCode, c.want)
		}
	}
}
