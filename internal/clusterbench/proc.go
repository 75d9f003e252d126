package clusterbench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a child process (`sluice serve` or `sluice run`) whose output
// lines are kept (the last ones, for error messages) and offered to
// watchers.
type proc struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{} // closed once the process has exited and its output is read
	err    error         // its exit status, once exited is closed

	mu       sync.Mutex
	tail     []string
	watchers []func(line string, at time.Time)
	stopping bool // the benchmark asked it to stop
}

const tailLines = 40

// startProc starts bin with args in dir, with env added to this process's
// environment, and reads its stdout and stderr line by line, passing each
// to watch (when not nil) from the first and appending it to the file
// logFile (when not empty).
func startProc(name, bin, dir string, env []string, logFile string, watch func(string, time.Time), args ...string) (*proc, error) {
	var lf *os.File
	if logFile != "" {
		var err error
		if lf, err = os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
			return nil, fmt.Errorf("log file of %s: %w", name, err)
		}
		fmt.Fprintf(lf, "=== %s started at %s: %s %s\n", name, time.Now().Format(time.RFC3339Nano), bin, strings.Join(args, " "))
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		if lf != nil {
			lf.Close()
		}
		return nil, fmt.Errorf("start %s (%s %s): %w", name, bin, strings.Join(args, " "), err)
	}
	pw.Close()
	p := &proc{name: name, cmd: cmd, exited: make(chan struct{})}
	if watch != nil {
		p.watchers = append(p.watchers, watch)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.line(sc.Text())
			if lf != nil {
				fmt.Fprintln(lf, sc.Text())
			}
		}
		pr.Close()
		p.err = cmd.Wait()
		if lf != nil {
			fmt.Fprintf(lf, "=== %s exited at %s: %v\n", name, time.Now().Format(time.RFC3339Nano), p.err)
			lf.Close()
		}
		close(p.exited)
	}()
	return p, nil
}

func (p *proc) line(l string) {
	now := time.Now()
	p.mu.Lock()
	p.tail = append(p.tail, l)
	if len(p.tail) > tailLines {
		p.tail = p.tail[len(p.tail)-tailLines:]
	}
	ws := p.watchers
	p.mu.Unlock()
	for _, w := range ws {
		w(l, now)
	}
}

// Tail returns the last lines the process wrote.
func (p *proc) Tail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.tail, "\n")
}

// exitError describes an exit the benchmark did not ask for.
func (p *proc) exitError() error {
	return fmt.Errorf("%s exited (%v); its last output:\n%s", p.name, p.err, p.Tail())
}

// unexpectedExit returns the exit error of the first process in ps that
// exited without being asked to.
func unexpectedExit(ps ...*proc) error {
	for _, p := range ps {
		if p == nil {
			continue
		}
		select {
		case <-p.exited:
			p.mu.Lock()
			asked := p.stopping
			p.mu.Unlock()
			if !asked {
				return p.exitError()
			}
		default:
		}
	}
	return nil
}

// stop sends SIGTERM (a cluster instance commits, leaves its group and
// exits) and waits for the exit, killing the process after grace.
func (p *proc) stop(grace time.Duration) error {
	p.mu.Lock()
	p.stopping = true
	p.mu.Unlock()
	select {
	case <-p.exited:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("%s did not stop within %v of SIGTERM; killed", p.name, grace)
	}
}

// stopAll stops every process in ps at once (SIGTERM to all, then the
// waits) and returns the first error.
func stopAll(grace time.Duration, ps ...*proc) error {
	errs := make(chan error, len(ps))
	for _, p := range ps {
		go func() { errs <- p.stop(grace) }()
	}
	var first error
	for range ps {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// kill sends SIGKILL and waits for the exit.
func (p *proc) kill() {
	p.mu.Lock()
	p.stopping = true
	p.mu.Unlock()
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// cpu is the process's user plus system CPU time; valid once it exited.
func (p *proc) cpu() time.Duration {
	st := p.cmd.ProcessState
	if st == nil {
		return 0
	}
	return st.UserTime() + st.SystemTime()
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times (100
// on every Linux architecture Go supports).
const clockTicks = 100

// liveCPU reads a running process's user plus system CPU time from
// /proc/<pid>/stat; ok is false where that is not available.
func liveCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, false
	}
	// The command name (field 2) is in parentheses and may hold spaces;
	// utime and stime are fields 14 and 15, the 12th and 13th after it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(u+s) * time.Second / clockTicks, true
}

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// broker is the `sluice serve` child (nil proc: a broker given by
// address).
type broker struct {
	addr string
	p    *proc
}

// startBroker runs `bin serve` on dataDir with the fsync policy and waits
// until it serves.
func startBroker(bin, dataDir, fsync string, env []string, logFile string, within time.Duration) (*broker, error) {
	kafkaAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	ready := make(chan struct{})
	var once sync.Once
	p, err := startProc("sluice serve", bin, dataDir, env, logFile, func(l string, _ time.Time) {
		if strings.Contains(l, "sluice serving") {
			once.Do(func() { close(ready) })
		}
	}, "serve", "--data-dir", filepath.Join(dataDir, "log"),
		"--kafka-addr", kafkaAddr, "--http-addr", httpAddr, "--fsync", fsync, "--log-format", "json")
	if err != nil {
		return nil, err
	}
	select {
	case <-ready:
		return &broker{addr: kafkaAddr, p: p}, nil
	case <-p.exited:
		return nil, p.exitError()
	case <-time.After(within):
		p.kill()
		return nil, fmt.Errorf("sluice serve did not start within %v:\n%s", within, p.Tail())
	}
}

// cpu is the broker's CPU time so far; ok is false for a broker given by
// address.
func (b *broker) cpu() (time.Duration, bool) {
	if b.p == nil {
		return 0, false
	}
	return liveCPU(b.p.cmd.Process.Pid)
}

func (b *broker) close() error {
	if b.p == nil {
		return nil
	}
	return b.p.stop(30 * time.Second)
}

// logLine is what the benchmark reads from an instance's JSON log lines.
type logLine struct {
	Msg     string          `json:"msg"`
	Task    string          `json:"task"`
	Records int64           `json:"records"`
	Bytes   int64           `json:"bytes"`
	Elapsed json.RawMessage `json:"elapsed"`
}

// parseLogLine decodes a JSON log line; ok is false for other lines.
func parseLogLine(l string) (logLine, bool) {
	var ll logLine
	if !strings.HasPrefix(l, "{") || json.Unmarshal([]byte(l), &ll) != nil {
		return ll, false
	}
	return ll, true
}

// elapsed is the line's elapsed attribute: slog writes a duration as
// nanoseconds in JSON, a text handler as a duration string.
func (ll logLine) elapsed() (time.Duration, error) {
	if len(ll.Elapsed) == 0 {
		return 0, errors.New("no elapsed attribute")
	}
	if n, err := strconv.ParseInt(string(ll.Elapsed), 10, 64); err == nil {
		return time.Duration(n), nil
	}
	var s string
	if err := json.Unmarshal(ll.Elapsed, &s); err != nil {
		return 0, err
	}
	return time.ParseDuration(s)
}
