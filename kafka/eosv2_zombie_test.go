//go:build unix

package kafka_test

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// eosChild is one instance of the pipeline in a child process (see
// eosChildEnv).
type eosChild struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

func startEOSChild(t *testing.T, cfg eosChildConfig) *eosChild {
	t.Helper()
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), eosChildEnv+"="+string(raw))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &eosChild{cmd: cmd, stdin: stdin, lines: make(chan string, 16)}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGCONT)
		cmd.Process.Kill()
		cmd.Wait()
	})
	return c
}

// stop sends SIGSTOP and waits until the child has stopped (signals are
// delivered asynchronously).
func (c *eosChild) stop(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(c.cmd.Process.Pid, &ws, syscall.WUNTRACED, nil); err != nil || !ws.Stopped() {
		t.Fatalf("waiting for the child to stop: %v (status %v)", err, ws)
	}
}

// expect returns the child's next line, which must start with prefix.
func (c *eosChild) expect(t *testing.T, prefix string) string {
	t.Helper()
	select {
	case line, ok := <-c.lines:
		if !ok {
			t.Fatalf("the child exited before printing %q", prefix)
		}
		if !strings.HasPrefix(line, prefix) {
			t.Fatalf("child: %q, want %q", line, prefix)
		}
		return line
	case <-time.After(20 * time.Second):
		t.Fatalf("the child did not print %q", prefix)
	}
	return ""
}

// TestEOSv2ZombieStoppedInTransaction stops an instance with SIGSTOP in the
// middle of a transaction (its output records written, its offsets not yet
// committed) and lets its partitions move elsewhere; resumed with SIGCONT,
// the zombie must not commit: its transaction is aborted and the output,
// read_committed, holds every input exactly once. The partitions move
//
//   - to another instance, once the zombie's session has expired (the group
//     fences it: its member id is gone);
//   - to a restart of the same instance (same instance id and transactional
//     id) before the session expires: the restart takes over the static
//     member's slot, fencing the zombie's member id, and its InitProducerId
//     aborts the zombie's transaction at once, so read_committed readers
//     are not held back while the zombie is stopped.
func TestEOSv2ZombieStoppedInTransaction(t *testing.T) {
	onEachCluster(t, func(t *testing.T, c *eosCluster) {
		t.Run("another instance", func(t *testing.T) { zombieScenario(t, c, "b", time.Second) })
		t.Run("same instance restarted", func(t *testing.T) { zombieScenario(t, c, "z", 10*time.Second) })
	})
}

func zombieScenario(t *testing.T, c *eosCluster, takeover string, zombieSession time.Duration) {
	const parts, n = 4, 200
	app := "zombie-" + takeover
	in, out := app+"-in", app+"-out"
	c.createTopic(t, in, parts)
	c.createTopic(t, out, parts)
	c.produceInputs(t, in, 0, n)

	zombie := startEOSChild(t, eosChildConfig{Seeds: c.seeds, App: app, Instance: "z", In: in, Out: out,
		SessionTimeout: zombieSession.String(), PauseAt: 2})
	zombie.expect(t, "PAUSED")
	zombie.stop(t)
	if _, err := io.WriteString(zombie.stdin, "resume\n"); err != nil { // read once it runs again
		t.Fatal(err)
	}

	w := startWorker(t, c, app, takeover, in, out, 10*time.Second)
	waitFor(t, "every input processed by "+takeover, func() bool { return c.committedTotal(t, app, in) == n })
	if takeover == "z" {
		// The zombie is still stopped; its transaction is already
		// aborted.
		checkExactlyOnce(t, c.readToSentinel(t, out, parts, kgo.ReadCommitted()), n)
	}

	if err := zombie.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	end := zombie.expect(t, "END ")
	t.Logf("zombie: %s", end)
	if !strings.HasPrefix(end, "END committed=false") {
		t.Fatalf("the zombie committed: %s", end)
	}
	w.stop()
	if err := w.failure(); err != nil {
		t.Fatalf("instance %s: %v", takeover, err)
	}
	checkExactlyOnce(t, c.readToSentinel(t, out, parts, kgo.ReadCommitted()), n)
	if got := len(c.readToSentinel(t, out, parts, kgo.ReadUncommitted())); got <= n {
		t.Fatalf("%d records read uncommitted: the zombie's aborted records are missing", got)
	}
}
