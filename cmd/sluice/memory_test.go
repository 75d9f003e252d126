package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sluicehq/sluice/internal/memlimit"
	"github.com/sluicehq/sluice/nexmark/queries"
)

// restoreMemoryLimit puts the Go memory limit back after a test that ran
// a command with --memory (the commands leave it set: the process ends).
func restoreMemoryLimit(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
}

func wantGoLimit(t *testing.T, size string) int64 {
	t.Helper()
	n, err := memlimit.ParseSize(size)
	if err != nil {
		t.Fatal(err)
	}
	p, err := memlimit.Split(n)
	if err != nil {
		t.Fatal(err)
	}
	return p.GoLimit()
}

func TestMemoryFlagSetsGOMEMLIMIT(t *testing.T) {
	restoreMemoryLimit(t)
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
		size string
	}{
		{"nexmark memory", nil, []string{"nexmark", "run", "--query", "q0", "--events", "2000", "--parallelism", "1", "--json", "--memory", "256MiB"}, "256MiB"},
		{"nexmark pebble env", map[string]string{"SLUICE_MEMORY": "300MB"}, []string{"nexmark", "run", "--query", "q16", "--events", "5000", "--parallelism", "2", "--state", "pebble", "--json"}, "300MB"},
		{"sql", nil, []string{"sql", "--memory", "1GiB", "-e", "SELECT 1"}, "1GiB"},
	} {
		t.Run(c.name, func(t *testing.T) {
			debug.SetMemoryLimit(1 << 62)
			code, out, errs := runCLI(t, c.env, "", c.args...)
			if code != 0 {
				t.Fatalf("%v: status %d, stderr %s", c.args, code, errs)
			}
			if got, want := debug.SetMemoryLimit(-1), wantGoLimit(t, c.size); got != want {
				t.Fatalf("%v: GOMEMLIMIT %d, want %d", c.args, got, want)
			}
			if c.args[0] != "nexmark" {
				return
			}
			var r queries.Result
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatalf("%v: %v in %q", c.args, err, out)
			}
			if r.Events == 0 || r.MaxRSSBytes <= 0 || r.GCCPUShare < 0 || r.GCCPUShare > 1 || !strings.Contains(out, `"gc_cpu_share"`) {
				t.Errorf("%v: result %+v", c.args, r)
			}
		})
	}
}

func TestMemoryFlagErrors(t *testing.T) {
	restoreMemoryLimit(t)
	for _, args := range [][]string{
		{"nexmark", "run", "--query", "q0", "--memory", "lots"},
		{"nexmark", "run", "--query", "q0", "--memory", "1MiB"},
		{"sql", "--memory", "-5GiB", "-e", "SELECT 1"},
		{"run", "--memory", "12QB", "nosuchfile.yaml"},
		{"serve", "--memory", "1KiB"},
	} {
		code, _, errs := runCLI(t, nil, "", args...)
		if code != 2 || !strings.Contains(errs, "--memory") {
			t.Errorf("%v: status %d, stderr %q; want 2 and a --memory error", args, code, errs)
		}
	}
}

// The registry of the commands gathers the memory metrics beside the Go
// and process collectors, without clashing names.
func TestMemoryMetricsRegistered(t *testing.T) {
	restoreMemoryLimit(t)
	v := "512MiB"
	mf := memoryFlag{value: &v}
	mem, err := mf.setup()
	if err != nil {
		t.Fatal(err)
	}
	defer mem.release()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), mem.collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range mfs {
		m := f.GetMetric()[0]
		if g := m.GetGauge(); g != nil {
			got[f.GetName()] = g.GetValue()
		} else {
			got[f.GetName()] = m.GetCounter().GetValue()
		}
	}
	for _, name := range []string{"sluice_memory_limit_bytes", "sluice_memory_go_limit_bytes", "go_gc_gomemlimit_bytes",
		"sluice_memory_budget_bytes", "sluice_memory_go_bytes", "sluice_gc_cpu_share", "sluice_gc_cpu_seconds_total", "sluice_pebble_cache_bytes"} {
		if _, ok := got[name]; !ok {
			t.Errorf("metric %s missing", name)
		}
	}
	if got["sluice_memory_limit_bytes"] != 512<<20 || got["go_gc_gomemlimit_bytes"] != float64(wantGoLimit(t, v)) {
		t.Errorf("limits %v and %v", got["sluice_memory_limit_bytes"], got["go_gc_gomemlimit_bytes"])
	}
}

// `sluice run --memory` sets GOMEMLIMIT and, with the smaller batches and
// queues it sizes, prints the same windows as without it.
func TestRunMemoryFlag(t *testing.T) {
	restoreMemoryLimit(t)
	examples, err := filepath.Abs("../../examples")
	if err != nil {
		t.Fatal(err)
	}
	scratch := t.TempDir()
	if err := os.Symlink(examples, filepath.Join(scratch, "examples")); err != nil {
		t.Fatal(err)
	}
	t.Chdir(scratch)
	runOnce := func(extra ...string) []string {
		env := map[string]string{"SLUICE_DATA_DIR": t.TempDir()}
		args := append(append([]string{"run", "--quiet"}, extra...), "examples/revenue-per-user-file.yaml")
		code, out, errs := runCLI(t, env, "", args...)
		if code != 0 {
			t.Fatalf("%v: status %d: %s", args, code, errs)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		sort.Strings(lines)
		return lines
	}
	debug.SetMemoryLimit(1 << 62)
	plain := runOnce()
	if got := debug.SetMemoryLimit(-1); got != 1<<62 {
		t.Fatalf("run without --memory changed GOMEMLIMIT to %d", got)
	}
	limited := runOnce("--memory", "64MiB")
	if got, want := debug.SetMemoryLimit(-1), wantGoLimit(t, "64MiB"); got != want {
		t.Fatalf("GOMEMLIMIT %d after run --memory 64MiB, want %d", got, want)
	}
	if len(plain) < 10 || !strings.Contains(plain[0], `"revenue"`) {
		t.Fatalf("run printed %d lines: %q", len(plain), plain)
	}
	if strings.Join(plain, "\n") != strings.Join(limited, "\n") {
		t.Fatalf("output differs with --memory:\n%d lines without, %d with", len(plain), len(limited))
	}
}

// `sluice serve --memory` sets GOMEMLIMIT and exports the memory metrics
// on /metrics.
func TestServeMemoryMetrics(t *testing.T) {
	restoreMemoryLimit(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	httpAddr := freeAddr(t)
	pr, pw := io.Pipe()
	c := &cli{stdin: strings.NewReader(""), stdout: io.Discard, stderr: pw, getenv: func(string) string { return "" }}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, c, []string{"serve", "--data-dir", t.TempDir(), "--kafka-addr", freeAddr(t), "--http-addr", httpAddr,
			"--log-format", "text", "--memory", "256MiB"})
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	for sc.Scan() && !strings.Contains(sc.Text(), "sluice serving") {
	}
	go io.Copy(io.Discard, pr)
	if got, want := debug.SetMemoryLimit(-1), wantGoLimit(t, "256MiB"); got != want {
		t.Fatalf("GOMEMLIMIT %d, want %d", got, want)
	}
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"sluice_memory_limit_bytes 2.68435456e+08", "sluice_memory_budget_bytes{part=\"pebble_cache\"}",
		"sluice_memory_go_bytes{class=\"heap_objects\"}", "sluice_gc_cpu_share", "sluice_pebble_cache_bytes{kind=\"capacity\"}", "go_gc_gomemlimit_bytes"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("serve ended with status %d", code)
	}
}

// `sluice run --state pebble --state-dir DIR` runs the windows of a spec
// without a state block on Pebble in DIR, with the same output as in
// memory; bad combinations are usage errors.
func TestRunStateFlag(t *testing.T) {
	restoreMemoryLimit(t)
	examples, err := filepath.Abs("../../examples")
	if err != nil {
		t.Fatal(err)
	}
	scratch := t.TempDir()
	if err := os.Symlink(examples, filepath.Join(scratch, "examples")); err != nil {
		t.Fatal(err)
	}
	t.Chdir(scratch)
	runOnce := func(extra ...string) []string {
		env := map[string]string{"SLUICE_DATA_DIR": t.TempDir()}
		args := append(append([]string{"run", "--quiet"}, extra...), "examples/revenue-per-user-file.yaml")
		code, out, errs := runCLI(t, env, "", args...)
		if code != 0 {
			t.Fatalf("%v: status %d: %s", args, code, errs)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		sort.Strings(lines)
		return lines
	}
	mem := runOnce("--state", "memory")
	dir := filepath.Join(t.TempDir(), "pebble-state")
	peb := runOnce("--state", "pebble", "--state-dir", dir, "--memory", "128MiB")
	if len(mem) < 10 || strings.Join(mem, "\n") != strings.Join(peb, "\n") {
		t.Fatalf("output differs on Pebble: %d lines in memory, %d on Pebble", len(mem), len(peb))
	}
	// The window operator's subtasks had their databases in dir.
	var dbs []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, _ error) error {
		if d != nil && d.IsDir() && d.Name() == "db" {
			dbs = append(dbs, p)
		}
		return nil
	})
	if len(dbs) == 0 {
		t.Fatalf("no Pebble database under --state-dir %s", dir)
	}
	for _, bad := range [][]string{{"--state", "rocksdb"}, {"--state", "memory", "--state-dir", dir}} {
		args := append(append([]string{"run", "--quiet"}, bad...), "examples/revenue-per-user-file.yaml")
		code, _, errs := runCLI(t, map[string]string{"SLUICE_DATA_DIR": t.TempDir()}, "", args...)
		if code != 2 || !strings.Contains(errs, "--state") {
			t.Fatalf("%v: status %d, stderr %q; want a usage error naming --state", bad, code, errs)
		}
	}
}

// --heap-floor: a size, never above --memory's heap share, 0 for off, and
// a bad size is a usage error.
func TestHeapFloorFlag(t *testing.T) {
	small, err := memlimit.Split(memlimit.MinLimit)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		floor string
		plan  *memlimit.Plan
		want  int64
	}{
		{"64MiB", nil, 64 << 20},
		{"1GiB", nil, 1 << 30},
		{"1GiB", &small, small.Heap},
		{"0", nil, 0},
		{"", nil, 0},
	} {
		f := c.floor
		mf := memoryFlag{floor: &f}
		got, err := mf.heapFloor(c.plan)
		if err != nil || got != c.want {
			t.Errorf("--heap-floor %q (plan %v): %d, %v; want %d", c.floor, c.plan != nil, got, err, c.want)
		}
	}
	code, _, errs := runCLI(t, nil, "", "run", "--heap-floor", "lots", "nosuchfile.yaml")
	if code != 2 || !strings.Contains(errs, "--heap-floor") {
		t.Errorf("run --heap-floor lots: status %d, stderr %q; want 2 and a --heap-floor error", code, errs)
	}
}
