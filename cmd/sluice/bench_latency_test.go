package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/latbench"
)

// TestBenchLatencyTiny runs `sluice bench latency` in-process with tiny
// settings. Its pipeline modes really start `sluice run` as a child
// process: the command runs os.Executable(), which is this test binary,
// and SLUICE_TEST_MAIN=1 (inherited by the child) makes TestMain run it as
// the sluice command. Figures are not checked against any time: only that
// every mode ran, received every measured record once, and reported
// ordered percentiles.
func TestBenchLatencyTiny(t *testing.T) {
	t.Setenv("SLUICE_TEST_MAIN", "1")
	code, out, errs := runCLI(t, nil, "", "bench", "latency", "--rate", "200", "--duration", "1s", "--warmup", "0",
		"--partitions", "1", "--checkpoint-interval", "100ms", "--dir", t.TempDir(), "--relay", "--json")
	if code != 0 {
		t.Fatalf("status %d\nstdout %s\nstderr %s", code, out, errs)
	}
	var res latbench.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("output is not the JSON result: %v\n%s", err, out)
	}
	var modes []string
	for _, m := range res.Modes {
		modes = append(modes, string(m.Mode))
		if m.Sent != 200 || m.Received != 200 || m.Missing != 0 || m.Rate <= 0 {
			t.Errorf("%s: %+v", m.Mode, m)
		}
		if !(m.P50 <= m.P99 && m.P99 <= m.P999 && m.P999 <= m.Max) {
			t.Errorf("%s: percentiles out of order: %+v", m.Mode, m)
		}
	}
	if got := strings.Join(modes, ","); got != "direct,relay,at_least_once,exactly_once" {
		t.Fatalf("modes %s", got)
	}
	if res.Rate != 200 || res.CheckpointInterval != "100ms" || res.Machine.CPUs < 1 {
		t.Fatalf("result header: %+v", res)
	}
}

func TestBenchLatencyUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--rate", "0"},
		{"--delivery", "sometimes"},
		{"--delivery", "direct"},
		{"--delivery", "relay"},
		{"--direct=false", "--delivery", "none"},
		{"extra"},
	} {
		code, _, errs := runCLI(t, nil, "", append([]string{"bench", "latency"}, args...)...)
		if code != 2 {
			t.Errorf("%v: status %d, stderr %q; want 2", args, code, errs)
		}
	}
}

// --trace and --pipeline-trace write Go execution traces of the driver
// and of the pipeline child (`sluice run --trace`).
func TestBenchLatencyTraces(t *testing.T) {
	t.Setenv("SLUICE_TEST_MAIN", "1")
	dir := t.TempDir()
	drv, pipe := filepath.Join(dir, "driver.trace"), filepath.Join(dir, "pipe.trace")
	code, out, errs := runCLI(t, nil, "", "bench", "latency", "--rate", "200", "--duration", "1s", "--warmup", "0",
		"--partitions", "1", "--checkpoint-interval", "100ms", "--dir", filepath.Join(dir, "data"), "--json",
		"--direct=false", "--delivery", "at_least_once", "--trace", drv, "--pipeline-trace", pipe)
	if code != 0 {
		t.Fatalf("status %d\nstdout %s\nstderr %s", code, out, errs)
	}
	for _, f := range []string{drv, pipe + ".at_least_once"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte("go 1.")) || len(b) < 1024 {
			t.Errorf("%s: %d bytes, not a Go execution trace", f, len(b))
		}
	}
}
