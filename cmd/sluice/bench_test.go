package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/logstore/compactbench"
)

// TestBenchCompactionTiny runs `sluice bench compaction` with tiny sizes:
// the disk test, a timed pass (whose result the command checks by reading
// the compacted log back) and both produce phases through the Kafka
// protocol.
func TestBenchCompactionTiny(t *testing.T) {
	dir := t.TempDir()
	code, out, errs := runCLI(t, nil, "", "bench", "compaction", "--json", "--data-dir", dir,
		"--keys", "200", "--record-size", "100", "--batch", "20", "--bytes", "256KiB", "--segment-bytes", "64KiB",
		"--duration", "100ms", "--disk-time", "50ms", "--partitions", "2")
	if code != 0 {
		t.Fatalf("status %d, stderr %s", code, errs)
	}
	var res compactbench.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if res.Disk == nil || res.Disk.SeqWriteMBPerSec <= 0 || res.Disk.DDWriteMBPerSec <= 0 {
		t.Errorf("disk: %+v", res.Disk)
	}
	p := res.Pass
	if p == nil {
		t.Fatal("no pass result")
	}
	if p.Passes < 1 || p.RecordsAfter != p.DistinctKeys || p.DistinctKeys < 1 || p.DistinctKeys > 200 ||
		p.RecordsRemoved != p.RecordsAppended-p.RecordsAfter || p.BytesRead < p.BytesAppended || p.IOVsDisk <= 0 || p.IOVsSyncedDisk <= 0 || !p.Evicted {
		t.Errorf("pass: %+v", p)
	}
	pr := res.Produce
	if pr == nil || pr.Without.Records < 1 || pr.With.Records < 1 || pr.WithoutAfter.Records < 1 || pr.Ratio <= 0 || pr.RatioFirst <= 0 {
		t.Fatalf("produce: %+v", pr)
	}
	if pr.Without.CleanerPasses != 0 {
		t.Errorf("the cleaner ran in the phase without it: %+v", pr.Without)
	}
	// The text summary names both targets.
	code, out, errs = runCLI(t, nil, "", "bench", "compaction", "--data-dir", dir, "--disk=false", "--produce=false",
		"--keys", "50", "--record-size", "10", "--bytes", "64KiB", "--segment-bytes", "8KiB", "--warm")
	if code != 0 || !strings.Contains(out, "records removed") || strings.Contains(out, "target >= 50") {
		t.Fatalf("status %d, stdout %s, stderr %s", code, out, errs)
	}
	// The background cleaner's mode of the produce phases.
	code, out, errs = runCLI(t, nil, "", "bench", "compaction", "--data-dir", dir, "--disk=false", "--pass=false",
		"--keys", "50", "--record-size", "10", "--segment-bytes", "8KiB", "--duration", "100ms",
		"--cleaner", "background", "--cleaner-interval", "10ms", "--dirty-ratio", "0.2", "--partitions", "1", "--cleaner-duty", "0.5")
	if code != 0 || !strings.Contains(out, "min.cleanable.dirty.ratio 0.2, duty cycle 0.5") || !strings.Contains(out, "target >= 80") ||
		!strings.Contains(out, "not yet compacted") {
		t.Fatalf("status %d, stdout %s, stderr %s", code, out, errs)
	}
}

func TestBenchCompactionUsage(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "compaction", "--keys", "0"},
		{"bench", "compaction", "--bytes", "lots"},
		{"bench", "compaction", "--disk=false", "--pass=false", "--produce=false"},
		{"bench", "compaction", "extra"},
		{"bench", "compaction", "--cleaner", "sometimes"},
		{"bench", "compaction", "--dirty-ratio", "2"},
		{"bench", "compaction", "--cleaner-duty", "1.5"},
		{"bench", "compaction", "--cleaner-duty", "-1"},
	} {
		if code, _, errs := runCLI(t, nil, "", args...); code != 2 || errs == "" {
			t.Errorf("%v: status %d (want 2), stderr %q", args, code, errs)
		}
	}
}

// TestS3ServerRefusesNonLoopback: the in-memory S3 server checks no
// credentials, so, as every Sluice server, it binds only a loopback
// address; any other is refused before anything listens.
func TestS3ServerRefusesNonLoopback(t *testing.T) {
	// A cancelled context: a server that did start stops at once, and
	// the command then succeeds instead of failing.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0"} {
		var errb bytes.Buffer
		c := &cli{stdin: strings.NewReader(""), stdout: io.Discard, stderr: &errb, getenv: func(string) string { return "" }}
		code, errs := run(ctx, c, []string{"bench", "s3-server", "--addr", addr}), errb.String()
		if code != 2 || !strings.Contains(errs, "loopback") {
			t.Errorf("--addr %s: status %d, stderr %q; want a usage error about loopback", addr, code, errs)
		}
	}
}

// TestS3ServerRefusesForeignHost: binding loopback is not enough for a
// server without credentials, since a web page can reach it by DNS
// rebinding (its own name resolving to 127.0.0.1) or a cross-site form;
// as the HTTP API, the in-memory S3 server answers 403 to requests
// addressed to another name or sent from another site's page, and serves
// the others.
func TestS3ServerRefusesForeignHost(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	c := &cli{stdin: strings.NewReader(""), stdout: io.Discard, stderr: pw, getenv: func(string) string { return "" }}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, c, []string{"bench", "s3-server", "--addr", "127.0.0.1:0", "--bucket", "b"})
		pw.Close()
	}()
	defer func() {
		cancel()
		go io.Copy(io.Discard, pr) // the command's last words, if any
		if code := <-done; code != 0 {
			t.Errorf("s3-server exited with %d", code)
		}
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("no start line: %v", err)
	}
	_, rest, ok := strings.Cut(line, "http://")
	if !ok {
		t.Fatalf("start line %q names no address", line)
	}
	base := "http://" + strings.Fields(rest)[0]
	for _, x := range []struct {
		name, host, origin string
		want               int
	}{
		{"loopback", "", "", http.StatusOK},
		{"localhost", "localhost:9000", "", http.StatusOK},
		{"rebound name", "evil.example:9000", "", http.StatusForbidden},
		{"other site's page", "", "https://evil.example", http.StatusForbidden},
	} {
		req, err := http.NewRequest(http.MethodGet, base+"/b", nil)
		if err != nil {
			t.Fatal(err)
		}
		if x.host != "" {
			req.Host = x.host
		}
		if x.origin != "" {
			req.Header.Set("Origin", x.origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != x.want {
			t.Errorf("%s: status %d (want %d): %s", x.name, resp.StatusCode, x.want, body)
		}
	}
}
