package kafka

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/sluicehq/sluice/logstore"
)

func openTestLog(t *testing.T) *logstore.Log {
	t.Helper()
	l, err := logstore.Open(logstore.Options{Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestServeStopsOnContextAndClose(t *testing.T) {
	l := openTestLog(t)
	s, err := New(l, DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cancel()
	if err := <-done; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after cancel: %v", err)
	}

	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { done <- s.Serve(context.Background(), ln2) }()
	c2, err := net.Dial("tcp", ln2.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Close: %v", err)
	}
	// The open connection was closed by Close.
	c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c2.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection still open after Close")
	}
	if err := s.Serve(context.Background(), ln2); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Close: %v", err)
	}
}

func TestNewRefusesNonLoopback(t *testing.T) {
	l := openTestLog(t)
	cfg := DefaultConfig()
	cfg.Addr = "0.0.0.0:9092"
	if _, err := New(l, cfg, nil); !errors.Is(err, ErrNotLoopback) {
		t.Fatalf("New with 0.0.0.0: %v", err)
	}
	cfg.AllowUnauthenticated = true
	s, err := New(l, cfg, nil)
	if err != nil {
		t.Fatalf("New with --allow-unauthenticated: %v", err)
	}
	s.Close()
}
