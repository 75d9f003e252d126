package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/objstore"
	"github.com/sluicehq/sluice/objstore/objstoretest"
)

// TestRunKillObjectStoreCheckpoints: a `sluice run` child checkpoints to
// an S3-compatible store (the in-process gofakes3 server of objstoretest,
// over real HTTP: the test process keeps the objects while children come
// and go), is killed with SIGKILL mid-stream, and is run again with
// another data directory (fresh local checkpoint cache and state
// directory), as on another machine: only the object store carries the
// state. The pipeline deduplicates a generated sequence on seq % keys
// into an exactly-once file sink, so the output must hold every key
// exactly once: a lost source position, lost dedup state (memory, or
// Pebble's sstables) or a lost transaction shows up as a missing or
// repeated key.
func TestRunKillObjectStoreCheckpoints(t *testing.T) {
	if testing.Short() {
		t.Skip("starts sluice run three times")
	}
	srv := objstoretest.StartServer(t)
	for _, backend := range []string{"memory", "pebble"} {
		t.Run(backend, func(t *testing.T) { testRunKillObjectStore(t, srv, backend) })
	}
}

func testRunKillObjectStore(t *testing.T, srv *objstoretest.Server, backend string) {
	const n, keys = 16000, 4000
	cfg := srv.Bucket(t, "ckpt", "jobs/"+backend)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	env := append(os.Environ(), "SLUICE_TEST_MAIN=1")
	extra := ""
	if backend == "pebble" {
		// The endpoint in the spec rather than the environment.
		extra = "state: {backend: pebble}\n"
		for _, kv := range srv.Env() {
			if !strings.HasPrefix(kv, "AWS_ENDPOINT_URL=") {
				env = append(env, kv)
			}
		}
		env = append(env, "AWS_ENDPOINT_URL=")
	} else {
		env = append(env, srv.Env()...)
	}
	chk := fmt.Sprintf("{interval: 50ms, dir: %q}", cfg.URL)
	if backend == "pebble" {
		chk = fmt.Sprintf("{interval: 50ms, dir: %q, endpoint: %q}", cfg.URL, srv.Endpoint)
	}
	spec := fmt.Sprintf(`name: objkill
parallelism: 2
source: {generate: {preset: sequence, count: %d, rate: 3000, splits: 2, start: 0}}
steps:
  - set: {k: "seq %% %d"}
  - dedup: {key: [k], within: 1000h}
sink: {file: {path: %s}}
delivery: exactly_once
checkpoint: %s
%s`, n, keys, out, chk, extra)
	specFile := filepath.Join(dir, "spec.yaml")
	if err := os.WriteFile(specFile, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	start := func(dataDir string) (*exec.Cmd, *lockedBuffer, <-chan error) {
		logs := &lockedBuffer{}
		cmd := exec.Command(os.Args[0], "run", "--data-dir", dataDir, "--log-format", "text", specFile)
		cmd.Env = env
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		return cmd, logs, done
	}
	cmd, logs, done := start(filepath.Join(dir, "data-a"))
	deadline := time.Now().Add(90 * time.Second)
	for {
		if _, total := keyCounts(t, out); total >= 300 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("sluice run exited before the kill: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for committed output\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond) // polling a file, not synchronisation
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("first run not killed: %v\n%s", err, logs.String())
	}
	_, before := keyCounts(t, out)
	st, err := objstore.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := st.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	manifests := 0
	for _, o := range objs {
		if strings.HasSuffix(o.Key, "/MANIFEST") {
			manifests++
		}
	}
	if manifests == 0 {
		t.Fatalf("no manifest in the object store after the first run: %d objects", len(objs))
	}

	// Another machine: a new data directory; the spec and the store are
	// the same.
	_, logs, done = start(filepath.Join(dir, "data-b"))
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("second run: %v\n%s", err, logs.String())
		}
	case <-time.After(3 * time.Minute):
		t.Fatalf("second run did not end\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "restoring checkpoint") || !strings.Contains(logs.String(), cfg.URL+"/chk-") {
		t.Fatalf("the second run did not restore from the object store:\n%s", logs.String())
	}
	counts, total := keyCounts(t, out)
	for k := range keys {
		if counts[k] != 1 {
			t.Fatalf("key %d committed %d times (%d records, %d before the kill)", k, counts[k], total, before)
		}
	}
	if total != keys {
		t.Fatalf("%d records committed, want %d", total, keys)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "data-b", "checkpoint-cache", "objkill")); len(ents) != 0 {
		t.Fatalf("the restored checkpoint's local copy was left behind: %d entries", len(ents))
	}
	t.Logf("%d records committed before the kill, %d in all, each key once; %d manifests after the kill", before, total, manifests)
}

// keyCounts counts the records by k in the committed part files of dir.
func keyCounts(t *testing.T, dir string) (map[int]int, int) {
	return committedCountsBy(t, dir, func(line []byte) (int, error) {
		var r struct {
			K   int `json:"k"`
			Seq int `json:"seq"`
		}
		if err := json.Unmarshal(line, &r); err != nil {
			return 0, err
		}
		if r.Seq%4000 != r.K {
			return 0, fmt.Errorf("k is not seq %% 4000")
		}
		return r.K, nil
	})
}

// TestRunObjectStoreMissingBucket: a checkpoint dir in a bucket that does
// not exist fails at startup with the store's message.
func TestRunObjectStoreMissingBucket(t *testing.T) {
	srv := objstoretest.StartServer(t)
	srv.Bucket(t, "exists", "")
	dir := t.TempDir()
	specFile := filepath.Join(dir, "spec.yaml")
	spec := "name: nobucket\nsource: {generate: {count: 10}}\nsink: {stdout: {}}\ncheckpoint: {interval: 1s, dir: \"s3://missing/x\"}\n"
	if err := os.WriteFile(specFile, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SLUICE_DATA_DIR": dir}
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v) // read by the S3 client
	}
	code, _, errs := runCLI(t, env, "", "run", "--quiet", specFile)
	if code == 0 || !strings.Contains(errs, `bucket "missing" does not exist`) {
		t.Fatalf("status %d, stderr %q", code, errs)
	}
	t.Logf("stderr: %s", errs)
}

// TestSQLObjectStoreCheckpoints: a SQL job with state.checkpoints.dir in
// an object store checkpoints there (its final checkpoint's manifest is in
// the bucket), and Pebble state then needs a local state.backend.dir.
func TestSQLObjectStoreCheckpoints(t *testing.T) {
	srv := objstoretest.StartServer(t)
	cfg := srv.Bucket(t, "sqlchk", "q1")
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v) // read by the S3 client
	}
	query := "SELECT k, COUNT(*) AS n FROM (VALUES ('x'), ('y'), ('x')) AS t(k) GROUP BY k"
	code, out, errs := runCLI(t, nil, "", "sql", "--format", "json", "--set", "execution.checkpointing.interval=20 ms",
		"--set", "state.checkpoints.dir="+cfg.URL, "-e", query)
	if code != 0 || !strings.Contains(out, `{"op":"+U","k":"x","n":2}`) {
		t.Fatalf("status %d, stderr %s, stdout %s", code, errs, out)
	}
	st, err := objstore.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := st.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, o := range objs {
		found = found || strings.HasSuffix(o.Key, "/MANIFEST")
	}
	if !found {
		t.Fatalf("no manifest in %s: %d objects", cfg.URL, len(objs))
	}
	code, _, errs = runCLI(t, nil, "", "sql", "--set", "execution.checkpointing.interval=20 ms",
		"--set", "state.checkpoints.dir="+cfg.URL, "--set", "state.backend=pebble", "-e", query)
	if code == 0 || !strings.Contains(errs, "state.backend.dir") {
		t.Fatalf("pebble without a local directory: status %d, stderr %s", code, errs)
	}
}
