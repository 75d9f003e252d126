package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// serveInProcess runs `sluice serve args...` in this process until the
// returned stop is called, once its HTTP listener at httpAddr answers.
func serveInProcess(t *testing.T, httpAddr string, args ...string) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &lockedBuffer{}
	done := make(chan int, 1)
	go func() {
		c := &cli{stdin: strings.NewReader(""), stdout: logs, stderr: logs, getenv: func(string) string { return "" }}
		done <- run(ctx, c, append([]string{"serve", "--log-format", "text", "--http-addr", httpAddr}, args...))
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + httpAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case code := <-done:
			cancel()
			t.Fatalf("serve exited with %d:\n%s", code, logs)
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("serve did not answer on %s:\n%s", httpAddr, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if code := <-done; code != 0 {
				t.Errorf("serve exited with %d:\n%s", code, logs)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// TestServeSchemaRegistry: `sluice serve` serves the registry on its HTTP
// listener behind the bearer token, keeps it across a restart, and
// --schema-registry=false turns it off.
func TestServeSchemaRegistry(t *testing.T) {
	dir := t.TempDir()
	httpAddr := freeAddr(t)
	args := []string{"--data-dir", dir, "--kafka-addr", "127.0.0.1:0", "--http-token", "s3cret"}
	stop := serveInProcess(t, httpAddr, args...)
	ctx := context.Background()

	anon, err := sr.NewClient(sr.URLs("http://" + httpAddr))
	if err != nil {
		t.Fatal(err)
	}
	var re *sr.ResponseError
	if _, err := anon.Subjects(ctx); !errors.As(err, &re) || re.StatusCode != http.StatusUnauthorized {
		t.Fatalf("registry without the token: %v", err)
	}
	cl, err := sr.NewClient(sr.URLs("http://"+httpAddr), sr.BearerToken("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	v1 := `{"type":"record","name":"Click","fields":[{"name":"url","type":"string"}]}`
	id, err := cl.RegisterSchema(ctx, "clicks-value", sr.Schema{Schema: v1}, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	bad := `{"type":"record","name":"Click","fields":[{"name":"url","type":"string"},{"name":"ms","type":"long"}]}`
	if _, err := cl.RegisterSchema(ctx, "clicks-value", sr.Schema{Schema: bad}, -1, -1); !errors.As(err, &re) || re.ErrorCode != 409 {
		t.Fatalf("incompatible registration: %v", err)
	}
	// The dashboard's API and the registry share the listener.
	req, _ := http.NewRequest("GET", "http://"+httpAddr+"/api/v1/topics", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/api/v1/topics next to the registry: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	stop()

	stop = serveInProcess(t, httpAddr, args...)
	s, err := cl.SchemaByID(ctx, id)
	if err != nil || s.Schema != v1 {
		t.Fatalf("schema %d after a restart: %+v %v", id, s, err)
	}
	stop()

	serveInProcess(t, httpAddr, append(args, "--schema-registry=false")...)
	if _, err := cl.Subjects(ctx); !errors.As(err, &re) || re.StatusCode != http.StatusNotFound {
		t.Fatalf("registry turned off: %v", err)
	}
}
