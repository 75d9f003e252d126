package main

import (
	"bufio"
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

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"
)

// The crash tests of the messaging sources: a `sluice run` child reads
// RabbitMQ or a Redis stream under exactly_once into a file sink
// (two-phase), is killed with SIGKILL mid-stream and run again on the same
// data directory; the committed output holds every published record
// exactly once.

// committedCounts counts the records {"n": i} in the committed part files
// of dir (hidden files are parts not yet committed).
func committedCounts(t *testing.T, dir string) (map[int]int, int) {
	return committedCountsBy(t, dir, func(line []byte) (int, error) {
		var r struct{ N int }
		err := json.Unmarshal(line, &r)
		return r.N, err
	})
}

// committedCountsBy counts the records of the committed part files of dir
// by the key that key finds in each line (an error fails the test).
func committedCountsBy(t *testing.T, dir string, key func(line []byte) (int, error)) (map[int]int, int) {
	t.Helper()
	counts, total := map[int]int{}, 0
	ents, err := os.ReadDir(dir)
	if err != nil {
		return counts, 0
	}
	for _, e := range ents {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // renamed under us
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, err := key(sc.Bytes())
			if err != nil {
				f.Close()
				t.Fatalf("%s: %q: %v", e.Name(), sc.Text(), err)
			}
			counts[k]++
			total++
		}
		f.Close()
	}
	return counts, total
}

// runKillResume writes spec, runs `sluice run` on it, kills it once the
// committed output holds at least kill records while publishMore
// publishes the rest, runs it again and waits for n distinct records; then
// every record must be there exactly once.
func runKillResume(t *testing.T, spec, out string, n, kill int, publishMore func()) {
	t.Helper()
	dir := t.TempDir()
	specFile := filepath.Join(dir, "spec.yaml")
	if err := os.WriteFile(specFile, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(dir, "data")
	start := func() (*exec.Cmd, *lockedBuffer, <-chan error) {
		logs := &lockedBuffer{}
		cmd := exec.Command(os.Args[0], "run", "--data-dir", dataDir, "--log-format", "text", specFile)
		cmd.Env = append(os.Environ(), "SLUICE_TEST_MAIN=1")
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		return cmd, logs, done
	}
	wait := func(what string, logs *lockedBuffer, done <-chan error, cond func() bool) {
		deadline := time.Now().Add(90 * time.Second)
		for !cond() {
			select {
			case err := <-done:
				t.Fatalf("sluice run exited while waiting for %s: %v\n%s", what, err, logs.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s\n%s", what, logs.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	cmd, logs, done := start()
	wait("committed output", logs, done, func() bool { _, tot := committedCounts(t, out); return tot >= kill })
	// The rest is published while the run is killed, so that records are
	// in flight; publishing it all first gave a fast machine the time to
	// commit everything before the kill.
	published := make(chan struct{})
	go func() {
		defer close(published)
		publishMore()
	}()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("first run not killed: %v", err)
	}
	<-published
	_, before := committedCounts(t, out)
	if before >= n {
		t.Fatalf("the first run committed all %d records before it was killed: kill earlier", before)
	}
	cmd, logs, done = start()
	wait("every record", logs, done, func() bool { c, _ := committedCounts(t, out); return len(c) >= n })
	counts, total := committedCounts(t, out)
	for i := range n {
		if counts[i] != 1 {
			t.Fatalf("record %d committed %d times (%d records, %d committed before the kill)", i, counts[i], total, before)
		}
	}
	if total != n {
		t.Fatalf("%d records committed, want %d", total, n)
	}
	t.Logf("%d records committed before the kill, %d in all, each once", before, total)
	_ = cmd.Process.Kill()
}

func TestRunKillRabbitMQ(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	const url = "amqp://guest:guest@127.0.0.1:5672/"
	conn, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(2 * time.Second)})
	if err != nil {
		t.Skipf("no RabbitMQ at 127.0.0.1:5672: %v", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	q := fmt.Sprintf("sluice-test-kill-%d", time.Now().UnixNano())
	if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	defer ch.QueueDelete(q, false, false, false)
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 20000))
	publish := func(from, to int) {
		for i := from; i < to; i++ {
			if err := ch.Publish("", q, false, false, amqp.Publishing{Body: fmt.Appendf(nil, `{"n":%d}`, i), MessageId: fmt.Sprint("m-", i), DeliveryMode: amqp.Persistent}); err != nil {
				t.Error(err) // also called off the test goroutine
				return
			}
		}
		for range to - from {
			if c := <-confirms; !c.Ack {
				t.Error("nacked")
				return
			}
		}
	}
	const n = 6000
	publish(0, n/2)
	out := filepath.Join(t.TempDir(), "out")
	spec := fmt.Sprintf(`name: kill-rabbitmq
source:
  rabbitmq: {url: %q, queue: %q, prefetch: 2000, dedup: true}
  format: json
sinks:
  - file: {path: %q}
checkpoint: {interval: 100ms}
delivery: exactly_once
parallelism: 1
`, url, q, out)
	runKillResume(t, spec, out, n, 300, func() { publish(n/2, n) })
	if d, err := ch.QueueDeclarePassive(q, true, false, false, false, nil); err == nil && d.Messages > 0 {
		t.Logf("%d messages ready after the run (acknowledged by checkpoints not completed before the kill)", d.Messages)
	}
}

func TestRunKillRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	cli := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", DialTimeout: 2 * time.Second})
	defer cli.Close()
	ctx := context.Background()
	if err := cli.Ping(ctx).Err(); err != nil {
		t.Skipf("no Redis at 127.0.0.1:6379: %v", err)
	}
	s := fmt.Sprintf("sluice-test-kill-%d", time.Now().UnixNano())
	defer cli.Del(ctx, s)
	publish := func(from, to int) {
		if _, err := cli.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := from; i < to; i++ {
				p.XAdd(ctx, &redis.XAddArgs{Stream: s, Values: []any{"value", fmt.Sprintf(`{"n":%d}`, i)}})
			}
			return nil
		}); err != nil {
			t.Error(err) // also called off the test goroutine
		}
	}
	const n = 20000
	publish(0, n/2)
	out := filepath.Join(t.TempDir(), "out")
	spec := fmt.Sprintf(`name: kill-redis
source:
  redis: {addr: 127.0.0.1:6379, stream: %q, group: g, consumer: c1, batch: 200}
  format: json
sinks:
  - file: {path: %q}
checkpoint: {interval: 100ms}
delivery: exactly_once
parallelism: 1
`, s, out)
	runKillResume(t, spec, out, n, 1000, func() { publish(n/2, n) })
}
