package pipeline

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/connector"
	nethttp "github.com/sluicehq/sluice/connector/http"
	"github.com/sluicehq/sluice/stream"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestHTTPCleanStopDrainsAndRestarts: a request whose records the
// pipeline has read but no checkpoint covers yet when the source is
// stopped is covered by the job's final checkpoint and answered 200 (not
// 503: its records are committed); a request after the stop is answered
// 503 with Retry-After; and the same plan starts again in the same
// process, from the final checkpoint, and takes requests.
func TestHTTPCleanStopDrainsAndRestarts(t *testing.T) {
	out := t.TempDir()
	sink := filepath.Join(out, "sink")
	yaml := fmt.Sprintf(`
name: http-stop
source:
  http: {addr: "127.0.0.1:0"}
  format: json
sink:
  file: {path: %q}
parallelism: 1
delivery: exactly_once
checkpoint: {interval: 1h, dir: %q}
`, sink, filepath.Join(out, "checkpoints"))
	spec, err := Parse("http-stop.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(spec)
	if err != nil {
		t.Fatal(err)
	}
	sent := 0
	restore := ""
	for run := range 2 {
		var src *nethttp.Source
		host := &Host{Stdout: io.Discard, OnSourceOpen: func(_ string, s stream.Source[connector.Message]) { src = s.(*nethttp.Source) }}
		var opts []StartOption
		if restore != "" {
			opts = append(opts, RestoreFrom(restore))
		}
		j, err := p.Start(context.Background(), host, opts...)
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		if err := src.Listen(); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		url := "http://" + src.Addr() + "/ingest"
		body := fmt.Sprintf("{\"run\":%d,\"i\":0}\n{\"run\":%d,\"i\":1}\n", run, run)
		type result struct {
			code int
			err  error
		}
		res := make(chan result, 1)
		handed := src.Stats().Handed
		go func() {
			resp, err := http.Post(url, "application/x-ndjson", strings.NewReader(body))
			if err != nil {
				res <- result{err: err}
				return
			}
			resp.Body.Close()
			res <- result{code: resp.StatusCode}
		}()
		// The records are in the pipeline; no checkpoint covers them
		// (the interval is an hour).
		waitFor(t, "the records to be read", func() bool { return src.Stats().Handed == handed+2 })
		sent += 2
		src.Stop()
		resp, err := http.Post(url, "application/x-ndjson", strings.NewReader("{\"late\":1}\n"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
				t.Errorf("run %d: a request after the stop answered %s, Retry-After %q; want 503 with Retry-After", run, resp.Status, resp.Header.Get("Retry-After"))
			}
		} // a refused connection is as clear once the server is down
		if err := j.Wait(); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		restore = j.CheckpointStats().LastPath
		r := <-res
		if r.err != nil || r.code != http.StatusOK {
			t.Errorf("run %d: the request read before the stop answered %d (%v), want 200", run, r.code, r.err)
		}
		if got := committedLines(t, sink); got != sent {
			t.Fatalf("run %d: %d records committed, want %d", run, got, sent)
		}
	}
}
