package latbench

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// tail keeps the last bytes written to it (a child's stderr, for error
// messages).
type tail struct {
	mu  sync.Mutex
	buf []byte
}

const tailSize = 8 << 10

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > tailSize {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-tailSize:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(bytes.ToValidUTF8(t.buf, nil)))
}

// child is the process between the topics: `sluice run` or the relay.
type child struct {
	cmd    *exec.Cmd
	dir    string // its working directory, removed once it has exited
	stderr *tail
	exited chan struct{} // closed when the process has exited
	err    error         // its exit status, once exited is closed
}

// startChild starts `bin ARGS` in dir with the environment of this
// process plus env.
func startChild(bin, dir string, env []string, args ...string) (*child, error) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	c := &child{cmd: cmd, stderr: &tail{}, exited: make(chan struct{})}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s %s: %w", bin, args[0], err)
	}
	go func() {
		c.err = cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

// exitError describes an exit that the benchmark did not ask for.
func (c *child) exitError() error {
	msg := c.stderr.String()
	if msg == "" {
		msg = "(no output)"
	}
	return fmt.Errorf("the %s process exited (%v): %s", c.cmd.Args[1], c.err, msg)
}

// stop interrupts the process (a checkpointing pipeline stops with a
// savepoint, as on Ctrl-C) and kills it if it has not exited within
// grace.
func (c *child) stop(grace time.Duration) {
	if c.dir != "" {
		defer os.RemoveAll(c.dir)
	}
	select {
	case <-c.exited:
		return
	default:
	}
	_ = c.cmd.Process.Signal(os.Interrupt)
	select {
	case <-c.exited:
	case <-time.After(grace):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}
