package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
)

// The tests in this file restart the real server under a running
// pipeline, where the outage tests elsewhere only cut the link with a
// proxy: they check that what the server acknowledged before it went away
// is still there afterwards and that the connectors carry on. Each test
// runs a server process of its own (on a free port, its data in the
// test's directory) so that restarting it disturbs nobody else; it skips
// when the server's binary is not installed.

// ownServer is a server process the test started and restarts.
type ownServer struct {
	t    *testing.T
	name string
	args []string
	port int
	cmd  *exec.Cmd
	log  *os.File
}

// startOwnServer runs bin with args (where "PORT" is replaced by a free
// port) and waits until it accepts connections.
func startOwnServer(t *testing.T, bin string, args ...string) *ownServer {
	t.Helper()
	path, err := exec.LookPath(bin)
	if err != nil {
		t.Skipf("%s is not installed: %v", bin, err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	for i, a := range args {
		args[i] = strings.ReplaceAll(a, "PORT", strconv.Itoa(port))
	}
	lf, err := os.Create(filepath.Join(t.TempDir(), bin+".log"))
	if err != nil {
		t.Fatal(err)
	}
	s := &ownServer{t: t, name: path, args: args, port: port, log: lf}
	t.Cleanup(func() {
		s.stop()
		lf.Close()
	})
	s.start()
	return s
}

func (s *ownServer) addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

func (s *ownServer) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.name, s.args...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.addr(), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(s.log.Name())
			s.t.Fatalf("%s did not come up on %s: %v\n%s", s.name, s.addr(), err, out)
		}
		time.Sleep(20 * time.Millisecond) // polling
	}
}

// stop ends the server as an operator would (SIGTERM: it shuts down
// cleanly) and waits for the process.
func (s *ownServer) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	_ = s.cmd.Wait()
	s.cmd = nil
}

// restart stops the server and starts it again on the same port and data.
func (s *ownServer) restart() {
	s.t.Helper()
	t0 := time.Now()
	s.stop()
	s.start()
	s.t.Logf("%s restarted in %v", filepath.Base(s.name), time.Since(t0).Round(time.Millisecond))
}

// waitJob waits for cond while the job runs.
func waitJob(t *testing.T, j *Job, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		select {
		case <-j.Done():
			t.Fatalf("waiting for %s: the job ended: %v", what, j.Wait())
		case <-time.After(50 * time.Millisecond): // polling
		}
	}
}

// waitJobState is waitJob that says, on a timeout, what state reports.
func waitJobState(t *testing.T, j *Job, what string, d time.Duration, state func() string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %s", what, state())
		}
		select {
		case <-j.Done():
			t.Fatalf("waiting for %s: the job ended: %v (%s)", what, j.Wait(), state())
		case <-time.After(50 * time.Millisecond): // polling
		}
	}
}

func startRestartSpec(t *testing.T, name, spec string) *Job {
	t.Helper()
	s, err := Parse(name, []byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	j, err := p.Start(context.Background(), &Host{DataDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		j.Cancel()
		_ = j.Wait()
	})
	return j
}

// restartRecords is how many records each test publishes: half before
// the restart (some of them through the pipeline by then), half after.
const restartRecords = 10000

// TestNATSServerRestart: nats-server (its own, file storage) restarted under a JetStream →
// JetStream pipeline under exactly_once. The stream (file storage) keeps
// what it acknowledged, the source's durable consumer and the sink
// reconnect, and every published record is in the output exactly once.
func TestNATSServerRestart(t *testing.T) {
	srv := startOwnServer(t, "nats-server", "-a", "127.0.0.1", "-p", "PORT", "-js", "-sd", t.TempDir())
	addr := srv.addr()
	ctx := context.Background()
	connect := func() (*nats.Conn, jetstream.JetStream) {
		nc, err := nats.Connect("nats://"+addr, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		return nc, js
	}
	nc, js := connect()
	p := "sluicetest_restart_" + randSuffix()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: p, Subjects: []string{p + ".>"}, Storage: jetstream.FileStorage, Duplicates: 5 * time.Minute}); err != nil {
		t.Skipf("JetStream not available: %v", err)
	}
	t.Cleanup(func() {
		nc, js := connect()
		_ = js.DeleteStream(context.Background(), p)
		nc.Close()
	})
	publish := func(js jetstream.JetStream, from, to int) {
		for i := from; i < to; i++ {
			// Synchronous: the server acknowledged (stored) each one.
			if _, err := js.Publish(ctx, p+".in", fmt.Appendf(nil, `{"id":%d}`, i)); err != nil {
				t.Fatalf("publishing %d: %v", i, err)
			}
		}
	}
	publish(js, 0, restartRecords/2)
	nc.Close()
	j := startRestartSpec(t, "nats-restart.yaml", fmt.Sprintf(`name: %[1]s
source:
  nats: {url: "nats://%[2]s", stream: %[1]s, subject: %[1]s.in, durable: d, batch: 100}
  format: json
delivery: exactly_once
checkpoint: {interval: 100ms, dir: %[3]q}
sink:
  nats: {url: "nats://%[2]s", subject: %[1]s.out, ack_timeout: 1s}
  format: json
`, p, addr, t.TempDir()))
	mon, mjs := connect() // reconnects by itself after the restart
	defer mon.Close()
	outCount := func() uint64 {
		st, err := mjs.Stream(ctx, p)
		if err != nil {
			return 0 // the server is not back yet
		}
		info, err := st.Info(ctx, jetstream.WithSubjectFilter(p+".out"))
		if err != nil {
			return 0
		}
		return info.State.Subjects[p+".out"]
	}
	waitJob(t, j, "output before the restart", 120*time.Second, func() bool { return outCount() >= 1000 })
	srv.restart()
	nc, js = connect()
	defer nc.Close()
	publish(js, restartRecords/2, restartRecords)
	waitJob(t, j, "every record in the output", 180*time.Second, func() bool { return outCount() >= restartRecords })
	expectJetStreamIDsOnce(ctx, t, js, p, p+".out", restartRecords, 5*time.Second)
	if c := outCount(); c != restartRecords {
		t.Fatalf("the output holds %d records, want %d", c, restartRecords)
	}
}

// TestRedisServerRestart: Redis (its own, append-only file fsynced on
// every write) restarted under a stream → stream pipeline with a
// consumer group. The entries, the group and its pending entries survive;
// the source and the sink reconnect; every entry reaches the output
// stream (at-least-once for the sink, as documented), the source hands
// each entry over once, and the group ends with nothing pending.
func TestRedisServerRestart(t *testing.T) {
	// Every write is in the append-only file before Redis answers it.
	srv := startOwnServer(t, "redis-server", "--port", "PORT", "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
		"--appendfsync", "always", "--dir", t.TempDir(), "--daemonize", "no")
	cli := redis.NewClient(&redis.Options{Addr: srv.addr(), DialTimeout: 2 * time.Second})
	defer cli.Close()
	ctx := context.Background()
	suffix := randSuffix()
	in, out := "sluice-restart-in-"+suffix, "sluice-restart-out-"+suffix
	publish := func(from, to int) {
		for i := from; i < to; i++ {
			if err := cli.XAdd(ctx, &redis.XAddArgs{Stream: in, Values: []any{"value", fmt.Sprintf(`{"id":%d}`, i)}}).Err(); err != nil {
				t.Fatalf("XADD %d: %v", i, err)
			}
		}
	}
	publish(0, restartRecords/2)
	j := startRestartSpec(t, "redis-restart.yaml", fmt.Sprintf(`name: redis-restart
source:
  redis: {addr: %q, stream: %s, group: g, batch: 500}
  format: json
sink:
  redis: {addr: %q, stream: %s}
  format: json
delivery: exactly_once
checkpoint: {interval: 100ms, dir: %q}
`, srv.addr(), in, srv.addr(), out, t.TempDir()))
	waitJob(t, j, "output before the restart", 120*time.Second, func() bool { return cli.XLen(ctx, out).Val() >= 1000 })
	srv.restart()
	// Redis accepts connections while it still loads its append-only
	// file, and answers writes LOADING until it is done.
	waitJob(t, j, "Redis to load its append-only file", 60*time.Second, func() bool {
		info, err := cli.Info(ctx, "persistence").Result()
		return err == nil && strings.Contains(info, "loading:0")
	})
	publish(restartRecords/2, restartRecords)
	state := func() string {
		pend, err := cli.XPending(ctx, in, "g").Result()
		var handed int64
		for _, m := range j.connectorMeters() {
			if m.field == "source" {
				handed += m.m.Records.Load()
			}
		}
		return fmt.Sprintf("output %d entries, input %d, source handed over %d, pending %+v (%v)", cli.XLen(ctx, out).Val(), cli.XLen(ctx, in).Val(), handed, pend, err)
	}
	waitJobState(t, j, "every entry in the output, acknowledged", 180*time.Second, state, func() bool {
		pend, err := cli.XPending(ctx, in, "g").Result()
		return err == nil && pend.Count == 0 && cli.XLen(ctx, out).Val() >= restartRecords
	})
	msgs, err := cli.XRange(ctx, out, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	seen := make([]int, restartRecords)
	for _, m := range msgs {
		var r struct{ ID int }
		v, _ := m.Values["value"].(string)
		if err := json.Unmarshal([]byte(v), &r); err != nil || r.ID < 0 || r.ID >= restartRecords {
			t.Fatalf("output %v: %v", m.Values, err)
		}
		seen[r.ID]++
	}
	for id, c := range seen {
		if c == 0 {
			t.Fatalf("entry %d is not in the output", id)
		}
	}
	// The source hands each of its entries over once (the group's
	// pending list survived the restart); copies in the output are the
	// sink's retries of XADDs whose answers the restart cut off.
	var handed int64
	for _, m := range j.connectorMeters() {
		if m.field == "source" {
			handed += m.m.Records.Load()
		}
	}
	if handed != restartRecords {
		t.Fatalf("the source handed over %d entries, want %d", handed, restartRecords)
	}
	t.Logf("%d entries, %d output entries (%d copies from the sink's retries)", restartRecords, len(msgs), len(msgs)-restartRecords)
}
