package faultproxy

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
)

// echoServer answers every line it reads with the same line.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// start starts a proxy to target, closed when the test ends.
func start(t *testing.T, target string) *Proxy {
	t.Helper()
	p, err := Start(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// dial connects to the proxy; the connection is closed when the test ends.
func dial(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// roundTrip sends line through c and returns what comes back.
func roundTrip(c net.Conn, line string) (string, error) {
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return "", err
	}
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return "", err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	return got[:len(got)-1], nil
}

func TestCutRestore(t *testing.T) {
	p := start(t, echoServer(t))

	// Traffic passes both ways.
	c1 := dial(t, p)
	for _, s := range []string{"a", "hello", "third line"} {
		if got, err := roundTrip(c1, s); err != nil || got != s {
			t.Fatalf("through the proxy: sent %q, got %q, %v", s, got, err)
		}
	}

	// Cut closes the open connection: reading it ends (EOF or reset)
	// rather than timing out.
	p.Cut()
	if err := c1.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c1.Read(make([]byte, 1)); err == nil {
		t.Fatal("read on a cut connection succeeded")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("cut connection stayed open")
	}

	// While cut, new connections are accepted by the listener but closed
	// without reaching the server.
	c2, err := net.Dial("tcp", p.Addr())
	if err == nil {
		if got, err := roundTrip(c2, "refused"); err == nil {
			t.Fatalf("a connection made while cut forwarded traffic: got %q", got)
		}
		c2.Close()
	}

	// Restore: new connections work again.
	p.Restore()
	c3 := dial(t, p)
	if got, err := roundTrip(c3, "back"); err != nil || got != "back" {
		t.Fatalf("after Restore: got %q, %v", got, err)
	}

	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// A target that does not answer: the client's connection is closed
// instead of hanging.
func TestUnreachableTarget(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there any more
	if _, err := roundTrip(dial(t, start(t, addr)), "x"); err == nil {
		t.Fatal("traffic passed to a target that is down")
	}
}
