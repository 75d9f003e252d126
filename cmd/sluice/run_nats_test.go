package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/internal/testservice"
)

// TestRunNATSJetStreamSIGKILL: a `sluice run` child reads a JetStream
// stream (durable pull consumer) into a JetStream subject (message-id
// dedup) and a file sink (two-phase) under exactly_once; it is killed
// with SIGKILL mid-stream, twice, and restarted on the same data
// directory. Every published record ends up exactly once in the output
// stream and exactly once in the committed files.
func TestRunNATSJetStreamSIGKILL(t *testing.T) {
	addr := testservice.Addr(t, "SLUICE_TEST_NATS", "127.0.0.1:4222", "NATS server")
	nc, err := nats.Connect("nats://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var rb [5]byte
	_, _ = rand.Read(rb[:])
	p := "sluicekill_" + hex.EncodeToString(rb[:])
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: p, Subjects: []string{p + ".>"}, Storage: jetstream.FileStorage, Duplicates: 5 * time.Minute}); err != nil {
		t.Skipf("JetStream not available at %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = js.DeleteStream(context.Background(), p) })

	const n = 30000
	pubDone := make(chan error, 1)
	go func() {
		// Published while the pipeline runs and dies.
		for i := range n {
			if _, err := js.PublishAsync(p+".in", fmt.Appendf(nil, `{"id":%d,"v":"%s"}`, i, strings.Repeat("x", 60))); err != nil {
				pubDone <- err
				return
			}
			if i%2000 == 1999 {
				<-js.PublishAsyncComplete()
			}
		}
		<-js.PublishAsyncComplete()
		pubDone <- nil
	}()

	dir := t.TempDir()
	out := filepath.Join(dir, "files")
	spec := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(spec, fmt.Appendf(nil, `name: %[1]s
source:
  nats: {url: "nats://%[2]s", stream: %[1]s, subject: %[1]s.in, durable: kill, batch: 200}
  format: json
delivery: exactly_once
checkpoint: {interval: 200ms}
steps:
  - set: {twice: id * 2}
sinks:
  - nats: {url: "nats://%[2]s", subject: %[1]s.out}
    format: json
  - file: {path: %[3]q}
    format: json
`, p, addr, out), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	run := func() (*exec.Cmd, *lockedBuffer) {
		cmd := exec.Command(os.Args[0], "run", "--data-dir", data, "--log-format", "text", spec)
		cmd.Env = append(os.Environ(), "SLUICE_TEST_MAIN=1")
		logs := &lockedBuffer{}
		cmd.Stdout = logs
		cmd.Stderr = logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
		return cmd, logs
	}
	subjCount := func() uint64 {
		st, err := js.Stream(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx, jetstream.WithSubjectFilter(p+".out"))
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Subjects[p+".out"]
	}
	waitOut := func(cmd *exec.Cmd, logs *lockedBuffer, atLeast uint64) {
		deadline := time.Now().Add(120 * time.Second)
		for subjCount() < atLeast {
			if time.Now().After(deadline) {
				t.Fatalf("output stuck at %d (< %d); child log:\n%s", subjCount(), atLeast, logs.String())
			}
			if cmd.ProcessState != nil {
				t.Fatalf("child exited; log:\n%s", logs.String())
			}
			time.Sleep(20 * time.Millisecond) // polling the output stream
		}
	}
	for _, at := range []uint64{4000, 14000} {
		cmd, logs := run()
		waitOut(cmd, logs, at)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_, _ = cmd.Process.Wait()
	}
	if err := <-pubDone; err != nil {
		t.Fatal(err)
	}
	cmd, logs := run()
	waitOut(cmd, logs, n)

	// The output stream: every id exactly once.
	cons, err := js.OrderedConsumer(ctx, p, jetstream.OrderedConsumerConfig{FilterSubjects: []string{p + ".out"}})
	if err != nil {
		t.Fatal(err)
	}
	seen := make([]int, n)
	for got := 0; got < n; {
		mb, err := cons.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		k := 0
		for m := range mb.Messages() {
			var r struct{ ID, Twice int }
			if err := json.Unmarshal(m.Data(), &r); err != nil || r.Twice != 2*r.ID || r.ID < 0 || r.ID >= n {
				t.Fatalf("output %s: %v", m.Data(), err)
			}
			seen[r.ID]++
			k++
		}
		if k == 0 {
			t.Fatalf("output stream has %d records, want %d", got, n)
		}
		got += k
	}
	for id, c := range seen {
		if c != 1 {
			t.Fatalf("id %d in the output stream %d times", id, c)
		}
	}
	if c := subjCount(); c != n {
		t.Fatalf("output stream holds %d, want %d", c, n)
	}

	// The committed files: every id exactly once once they hold n lines.
	deadline := time.Now().Add(60 * time.Second)
	for {
		lines, ids := readCommitted(t, out)
		if lines >= n {
			if lines != n {
				t.Fatalf("files hold %d lines, want %d", lines, n)
			}
			for id := range n {
				if ids[id] != 1 {
					t.Fatalf("id %d in the files %d times", id, ids[id])
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("files hold %d of %d lines; child log:\n%s", lines, n, logs.String())
		}
		time.Sleep(50 * time.Millisecond) // polling the committed files
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_, _ = cmd.Process.Wait()
}

// readCommitted counts the lines of the committed part files in dir (not
// the hidden in-progress ones) per id.
func readCommitted(t *testing.T, dir string) (int, map[int]int) {
	t.Helper()
	ids := map[int]int{}
	lines := 0
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, ids
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") || e.IsDir() {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var r struct{ ID int }
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("%s: %q: %v", e.Name(), sc.Text(), err)
			}
			ids[r.ID]++
			lines++
		}
		f.Close()
	}
	return lines, ids
}
