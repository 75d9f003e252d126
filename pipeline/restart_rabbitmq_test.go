package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// rabbitNode is a RabbitMQ node of the test's own: its own node name,
// AMQP and distribution ports, database, logs, configuration and Erlang
// cookie, all in the test's directory, so that killing it disturbs
// neither the shared broker on 5672 nor another test. It registers with
// the machine's epmd (or starts one) like any node.
type rabbitNode struct {
	t    *testing.T
	bin  string
	dir  string
	env  []string
	port int
	cmd  *exec.Cmd
	log  *os.File
	// exited is closed when the running node's script has exited.
	exited chan struct{}
}

// rabbitServerBin finds the broker's start script. Debian's
// /usr/sbin/rabbitmq-server re-runs itself as the rabbitmq user through
// su, which drops the environment that makes the node private, so the
// script it wraps is preferred.
func rabbitServerBin(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("rabbitmq-server")
	if err != nil {
		t.Skipf("rabbitmq-server is not installed (Debian: apt-get install rabbitmq-server): %v", err)
	}
	if _, err := os.Stat("/usr/lib/rabbitmq/bin/rabbitmq-server"); err == nil {
		return "/usr/lib/rabbitmq/bin/rabbitmq-server"
	}
	return path
}

// freeLowPort returns a port below Linux's ephemeral range (32768 and
// up) that nothing listens on. A port inside that range can be taken,
// while the node boots, by an outgoing connection's local end (another
// program's, or a readiness probe connecting to itself), and the node
// then fails to bind it.
func freeLowPort(t *testing.T) int {
	t.Helper()
	for range 200 {
		p := 20000 + rand.IntN(12000)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		l2, err := net.Listen("tcp", fmt.Sprintf("0.0.0.0:%d", p+1))
		l.Close()
		if err != nil {
			continue
		}
		l2.Close()
		return p
	}
	t.Fatal("no free port pair below 32000")
	return 0
}

// startRabbitNode boots a private node (AMQP on a free port, distribution
// on the next one) and waits until it accepts AMQP connections.
func startRabbitNode(t *testing.T) *rabbitNode {
	t.Helper()
	bin := rabbitServerBin(t)
	dir := t.TempDir()
	port := freeLowPort(t)
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("rabbitmq-env.conf", "")                          // not /etc/rabbitmq's: its node name and listener are the shared broker's
	write("rabbitmq.conf", "loopback_users = none\n")       // guest may log in (over loopback anyway)
	write("enabled_plugins", "[].\n")                       // no management listener
	write(".erlang.cookie", "sluicetest"+randSuffix()+"\n") // the node's and rabbitmqctl's (HOME)
	n := &rabbitNode{t: t, bin: bin, dir: dir, port: port}
	n.env = append(os.Environ(),
		"HOME="+dir,
		"RABBITMQ_CONF_ENV_FILE="+filepath.Join(dir, "rabbitmq-env.conf"),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(dir, "rabbitmq.conf"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_PLUGINS_EXPAND_DIR="+filepath.Join(dir, "plugins-expand"),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"),
		"RABBITMQ_NODENAME=sluicetest"+strconv.Itoa(port)+"@localhost",
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT="+strconv.Itoa(port),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(port+1),
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}",
		"ERL_EPMD_ADDRESS=127.0.0.1",
	)
	lf, err := os.Create(filepath.Join(dir, "rabbitmq-server.out"))
	if err != nil {
		t.Fatal(err)
	}
	n.log = lf
	t.Cleanup(func() {
		n.stop()
		lf.Close()
	})
	n.start()
	return n
}

func (n *rabbitNode) url() string { return fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", n.port) }

// start runs the node (the script and the Erlang VM in a process group of
// their own) and waits for the broker to answer an AMQP handshake, which
// it does only once it has recovered its queues.
func (n *rabbitNode) start() {
	n.t.Helper()
	t0 := time.Now()
	n.cmd = exec.Command(n.bin)
	n.cmd.Dir, n.cmd.Env = n.dir, n.env
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := n.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	exited := make(chan struct{})
	n.exited = exited
	cmd := n.cmd
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	deadline := time.Now().Add(240 * time.Second) // boots in seconds; minutes on a loaded 2-core machine
	for {
		c, err := amqp.DialConfig(n.url(), amqp.Config{Dial: amqp.DefaultDial(2 * time.Second)})
		if err == nil {
			c.Close()
			n.t.Logf("private RabbitMQ node on %d up in %v", n.port, time.Since(t0).Round(time.Millisecond))
			return
		}
		select {
		case <-exited:
			out, _ := os.ReadFile(n.log.Name())
			n.t.Fatalf("the private RabbitMQ node exited while starting: %s", out)
		default:
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(n.log.Name())
			n.t.Fatalf("the private RabbitMQ node did not come up on %d: %v\n%s", n.port, err, out)
		}
		time.Sleep(100 * time.Millisecond) // polling
	}
}

// signal sends sig to the node's process group (the script, the VM and
// its helpers) and waits up to d for the script to exit.
func (n *rabbitNode) signal(sig syscall.Signal, d time.Duration) bool {
	if n.cmd == nil || n.cmd.Process == nil {
		return true
	}
	_ = syscall.Kill(-n.cmd.Process.Pid, sig)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-n.exited:
		n.cmd = nil
		return true
	case <-t.C:
		return false
	}
}

// stop shuts the node down cleanly (SIGTERM: the script stops the VM),
// killing it if it takes more than two minutes.
func (n *rabbitNode) stop() {
	if !n.signal(syscall.SIGTERM, 2*time.Minute) {
		n.signal(syscall.SIGKILL, time.Minute)
	}
}

// restart stops the node and starts it again on the same ports and data:
// cleanly (SIGTERM), or with crash set by SIGKILL, with no shutdown at
// all (the broker then recovers its queues from what it had written to
// disk).
func (n *rabbitNode) restart(crash bool) {
	n.t.Helper()
	t0 := time.Now()
	if crash {
		if !n.signal(syscall.SIGKILL, time.Minute) {
			n.t.Fatal("the private RabbitMQ node did not die on SIGKILL")
		}
	} else {
		n.stop()
	}
	n.start()
	n.t.Logf("private RabbitMQ node stopped (crash: %v) and restarted in %v", crash, time.Since(t0).Round(time.Millisecond))
}

// TestRabbitMQServerRestart: a private RabbitMQ node is restarted under
// a queue → queue pipeline (source with dedup, sink with publisher
// confirms, exactly_once checkpoints), once cleanly and once after
// SIGKILL. The messages the broker confirmed to the test's publisher and
// to the sink are persistent in durable queues, so they survive either;
// the source and the sink reconnect by themselves; every published
// message is in the output queue. Copies in the output are the sink's
// republishing of messages whose confirmations the restart cut off, with
// their original message-ids (at-least-once; exactly-once for a consumer
// that deduplicates on message-id).
//
// After a clean restart the source hands each message over once: the
// broker redelivers what was unacknowledged flagged redelivered, and
// dedup drops what the pipeline already had. After a crash the broker may
// also redeliver messages whose acknowledgement, or whose delivery, it
// had not yet written to disk, unflagged: the pipeline may see those
// twice (documented: at-least-once across a broker crash), each copy with
// a message-id of its own.
func TestRabbitMQServerRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("boots RabbitMQ nodes of its own")
	}
	t.Run("clean", func(t *testing.T) { testRabbitMQRestart(t, false) })
	t.Run("crash", func(t *testing.T) { testRabbitMQRestart(t, true) })
}

func testRabbitMQRestart(t *testing.T, crash bool) {
	node := startRabbitNode(t)
	suffix := randSuffix()
	in, out := "sluice-restart-in-"+suffix, "sluice-restart-out-"+suffix
	// dial connects to the node, waiting for it while it restarts.
	dial := func() (*amqp.Connection, *amqp.Channel) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			c, err := amqp.DialConfig(node.url(), amqp.Config{Dial: amqp.DefaultDial(2 * time.Second)})
			if err == nil {
				ch, err := c.Channel()
				if err != nil {
					t.Fatal(err)
				}
				return c, ch
			}
			if time.Now().After(deadline) {
				t.Fatalf("connecting to the private node: %v", err)
			}
			time.Sleep(100 * time.Millisecond) // polling
		}
	}
	conn, ch := dial()
	for _, q := range []string{in, out} {
		if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	// publish sends persistent messages and waits for the broker to
	// confirm each one: from then on the broker answers for them.
	publish := func(ch *amqp.Channel, from, to int) {
		t.Helper()
		if err := ch.Confirm(false); err != nil {
			t.Fatal(err)
		}
		confirms := ch.NotifyPublish(make(chan amqp.Confirmation, to-from))
		for i := from; i < to; i++ {
			if err := ch.Publish("", in, true, false, amqp.Publishing{Body: fmt.Appendf(nil, `{"id":%d}`, i), MessageId: fmt.Sprint("m-", i), DeliveryMode: amqp.Persistent}); err != nil {
				t.Fatalf("publishing %d: %v", i, err)
			}
		}
		for i := from; i < to; i++ {
			if c := <-confirms; !c.Ack {
				t.Fatalf("the broker nacked message %d", from+int(c.DeliveryTag)-1)
			}
		}
	}
	publish(ch, 0, restartRecords/2)
	conn.Close()
	j := startRestartSpec(t, "rabbitmq-restart.yaml", fmt.Sprintf(`name: rabbitmq-restart
source:
  rabbitmq: {url: %[1]q, queue: %[2]s, prefetch: 2000, dedup: true}
  format: json
sink:
  rabbitmq: {url: %[1]q, routing_key: %[3]s}
  format: json
delivery: exactly_once
checkpoint: {interval: 100ms, dir: %[4]q}
`, node.url(), in, out, t.TempDir()))
	mon, mch := dial()
	outReady := func() int {
		q, err := mch.QueueDeclarePassive(out, true, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		return q.Messages
	}
	waitJob(t, j, "output before the restart", 3*time.Minute, func() bool { return outReady() >= 1000 })
	mon.Close()
	node.restart(crash)
	if crash {
		// Once in a CI run the node came back from SIGKILL without the
		// durable queues declared before it (NOT_FOUND for the output
		// queue that held the confirmed output): the broker's own
		// metadata was lost, so nothing can be said of the pipeline's
		// delivery after that.
		kc, kch := dial()
		_, err := kch.QueueDeclarePassive(out, true, false, false, false, nil)
		kc.Close()
		var aerr *amqp.Error
		if errors.As(err, &aerr) && aerr.Code == amqp.NotFound {
			t.Skipf("the RabbitMQ node lost its durable queue %s across SIGKILL (its metadata store, not the pipeline): %v", out, err)
		}
	}

	conn, ch = dial()
	defer conn.Close()
	publish(ch, restartRecords/2, restartRecords)
	// Read the output as it comes: each input message's copies, and the
	// message-ids they carry.
	rch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	deliveries, err := rch.Consume(out, "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	copies := make([]int, restartRecords)
	idOf := map[string]int{} // message-id -> input id
	distinct, total := 0, 0
	handed := func() (n int64) {
		for _, m := range j.connectorMeters() {
			if m.field == "source" {
				n += m.m.Records.Load()
			}
		}
		return n
	}
	deadline := time.After(4 * time.Minute)
	for distinct < restartRecords {
		select {
		case d, ok := <-deliveries:
			if !ok {
				t.Fatalf("the output consumer closed: %d of %d messages", distinct, restartRecords)
			}
			var r struct{ ID int }
			if err := json.Unmarshal(d.Body, &r); err != nil || r.ID < 0 || r.ID >= restartRecords {
				t.Fatalf("output %q: %v", d.Body, err)
			}
			if prev, seen := idOf[d.MessageId]; seen && prev != r.ID {
				t.Fatalf("message-id %q on inputs %d and %d", d.MessageId, prev, r.ID)
			}
			idOf[d.MessageId] = r.ID
			if copies[r.ID] == 0 {
				distinct++
			}
			copies[r.ID]++
			total++
		case <-j.Done():
			t.Fatalf("the job ended with %d of %d messages in the output: %v", distinct, restartRecords, j.Wait())
		case <-deadline:
			missing := -1
			for id, c := range copies {
				if c == 0 {
					missing = id
					break
				}
			}
			t.Fatalf("timed out: %d of %d messages in the output (first missing: %d); the source handed over %d", distinct, restartRecords, missing, handed())
		}
	}
	h := handed()
	t.Logf("%d messages; the source handed over %d; %d output messages with %d message-ids", restartRecords, h, total, len(idOf))
	if crash {
		return // at-least-once: every message is in the output
	}
	// Each input message went through the pipeline once: one message-id
	// each, and the source handed over each once.
	if len(idOf) != restartRecords {
		t.Fatalf("%d message-ids in the output for %d messages: the pipeline saw some twice", len(idOf), restartRecords)
	}
	if h != restartRecords {
		t.Fatalf("the source handed over %d messages, want %d", h, restartRecords)
	}
}
