package pipeline

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/connector"
	nethttp "github.com/sluicehq/sluice/connector/http"
	"github.com/sluicehq/sluice/stream"
)

// committedLines counts the lines of the committed part files in dir (the
// files under their final names; staged parts are hidden dot files).
func committedLines(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if len(sc.Bytes()) > 0 {
				n++
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// TestHTTPExactlyOnceAnswersAfterCheckpoint: under delivery: exactly_once
// the HTTP source answers a request only once a completed checkpoint
// covers its records, so by the time the client has its 200 the file
// sink has committed them under their final names.
func TestHTTPExactlyOnceAnswersAfterCheckpoint(t *testing.T) {
	out := t.TempDir()
	yaml := fmt.Sprintf(`
name: http-eo
source:
  http: {addr: "127.0.0.1:0"}
  format: json
sink:
  file: {path: %q}
parallelism: 1
delivery: exactly_once
checkpoint: {interval: 20ms, dir: %q}
`, filepath.Join(out, "sink"), filepath.Join(out, "checkpoints"))
	spec, err := Parse("http-eo.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(spec)
	if err != nil {
		t.Fatal(err)
	}
	var src *nethttp.Source
	host := &Host{Stdout: io.Discard, OnSourceOpen: func(_ string, s stream.Source[connector.Message]) { src = s.(*nethttp.Source) }}
	j, err := p.Start(context.Background(), host)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Listen(); err != nil {
		t.Fatal(err)
	}
	sent := 0
	for req := range 5 {
		var body strings.Builder
		for i := range 3 + req {
			fmt.Fprintf(&body, "{\"req\":%d,\"i\":%d}\n", req, i)
			sent++
		}
		resp, err := http.Post("http://"+src.Addr()+"/ingest", "application/x-ndjson", strings.NewReader(body.String()))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d answered %s", req, resp.Status)
		}
		if got := committedLines(t, filepath.Join(out, "sink")); got != sent {
			t.Fatalf("request %d answered with %d records committed, want %d", req, got, sent)
		}
	}
	src.Stop()
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}
	if got := committedLines(t, filepath.Join(out, "sink")); got != sent {
		t.Fatalf("%d records committed at the end, want %d", got, sent)
	}
}
