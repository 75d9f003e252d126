package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/kafka/kafkatest"
)

// epipeWriter takes lines whole until it has taken max of them, then fails
// every write with EPIPE as a pipe whose reader left does.
type epipeWriter struct {
	buf   bytes.Buffer
	lines int
	max   int
}

func (w *epipeWriter) Write(p []byte) (int, error) {
	n := bytes.Count(p, []byte{'\n'})
	if w.lines+n > w.max {
		return 0, &os.PathError{Op: "write", Path: "/dev/stdout", Err: syscall.EPIPE}
	}
	w.lines += n
	return w.buf.Write(p)
}

// failWriter fails every write with err.
type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }

// newProducedTopic makes a data directory with a one-partition topic t of
// the records 1..n and returns its environment.
func newProducedTopic(t *testing.T, n int) map[string]string {
	t.Helper()
	env := map[string]string{"SLUICE_DATA_DIR": t.TempDir()}
	if code, _, errs := runCLI(t, env, "", "topic", "create", "t"); code != 0 {
		t.Fatalf("topic create: %d %s", code, errs)
	}
	var in strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&in, "%d\n", i)
	}
	if code, _, errs := runCLI(t, env, in.String(), "produce", "t"); code != 0 {
		t.Fatalf("produce: %d %s", code, errs)
	}
	return env
}

// TestConsumeClosedStdoutCommitsPrinted checks `sluice consume --group g |
// head`: the reader going away ends consume quietly with 141, and the group
// resumes after the last record the pipe took, with and without -e (with
// -e a record once sat in a buffer when fn returned, so it was committed
// though never written, and the failed flush was ignored: status 0).
func TestConsumeClosedStdoutCommitsPrinted(t *testing.T) {
	for _, extra := range [][]string{nil, {"-e"}} {
		t.Run(fmt.Sprint(extra), func(t *testing.T) {
			env := newProducedTopic(t, 100)
			w := &epipeWriter{max: 3}
			c := &cli{stdin: strings.NewReader(""), stdout: w, stderr: &bytes.Buffer{}, getenv: func(k string) string { return env[k] }}
			code := run(context.Background(), c, append([]string{"consume", "t", "--group", "g"}, extra...))
			if errs := c.stderr.(*bytes.Buffer).String(); code != 141 || errs != "" {
				t.Fatalf("status %d, stderr %q; want 141 and nothing", code, errs)
			}
			if w.buf.String() != "1\n2\n3\n" {
				t.Fatalf("printed %q", w.buf.String())
			}
			code, out, errs := runCLI(t, env, "", "consume", "t", "--group", "g", "-n", "1")
			if code != 0 || out != "4\n" {
				t.Fatalf("the group resumed at %q (status %d, %s), want 4", out, code, errs)
			}
		})
	}
}

// TestConsumeExitAtEndWriteError checks that -e, which buffers its output,
// reports a failed write (a full disk) and exits non-zero; the error of the
// last flush was once dropped and consume exited 0.
func TestConsumeExitAtEndWriteError(t *testing.T) {
	env := newProducedTopic(t, 5)
	var errb bytes.Buffer
	c := &cli{stdin: strings.NewReader(""), stdout: failWriter{syscall.ENOSPC}, stderr: &errb, getenv: func(k string) string { return env[k] }}
	if code := run(context.Background(), c, []string{"consume", "t", "-e"}); code != 1 || !strings.Contains(errb.String(), "no space left") {
		t.Fatalf("status %d, stderr %q; want 1 and the write error", code, errb.String())
	}
}

// TestConsumeSIGPIPE runs `sluice consume --group g` as a process whose
// stdout is a pipe closed after three lines: it once died of SIGPIPE
// without committing anything, so the group started again at 1.
func TestConsumeSIGPIPE(t *testing.T) {
	// More than a pipe holds, so that consume is still writing when the
	// pipe closes.
	env := newProducedTopic(t, 200000)
	cmd, out, _, errb := startConsumeThree(t, env, "consume", "t", "--group", "g")
	out.Close()
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 141 || errb.Len() > 0 {
		t.Fatalf("consume ended with %v, stderr %q; want exit status 141 and nothing", err, errb.String())
	}
	// The group resumes after what the pipe took: at 4 or later.
	code, got, errs := runCLI(t, env, "", "consume", "t", "--group", "g", "-n", "1")
	if n, err := strconv.Atoi(strings.TrimSpace(got)); code != 0 || err != nil || n < 4 {
		t.Fatalf("the group resumed at %q (status %d, %s), want 4 or later", got, code, errs)
	}
}

// startConsumeThree starts the CLI with args as a process on the data
// directory of env and reads the first three lines it prints, which must
// be 1, 2 and 3; it returns the process, its stdout pipe, the reader of
// the rest, and its stderr.
func startConsumeThree(t *testing.T, env map[string]string, args ...string) (*exec.Cmd, io.ReadCloser, *bufio.Reader, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "SLUICE_TEST_MAIN=1", "SLUICE_DATA_DIR="+env["SLUICE_DATA_DIR"])
	errb := new(bytes.Buffer)
	cmd.Stderr = errb
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(out)
	for i := 1; i <= 3; i++ {
		if line, err := br.ReadString('\n'); err != nil || line != fmt.Sprintf("%d\n", i) {
			t.Fatalf("line %d: %q %v", i, line, err)
		}
	}
	return cmd, out, br, errb
}

// blockingReader is a stdin that never ends: Read blocks until released.
type blockingReader struct{ release chan struct{} }

func (r blockingReader) Read([]byte) (int, error) {
	<-r.release
	return 0, io.EOF
}

// runBlockedStdin runs a command line whose stdin never ends and returns
// its status and stderr, failing if it has not returned within a minute.
func runBlockedStdin(t *testing.T, ctx context.Context, env map[string]string, args ...string) (int, string) {
	t.Helper()
	stdin := blockingReader{release: make(chan struct{})}
	t.Cleanup(func() { close(stdin.release) })
	var errb bytes.Buffer
	c := &cli{stdin: stdin, stdout: io.Discard, stderr: &errb, getenv: func(k string) string { return env[k] }}
	done := make(chan int, 1)
	go func() { done <- run(ctx, c, args) }()
	select {
	case code := <-done:
		return code, errb.String()
	case <-time.After(time.Minute):
		t.Fatalf("%v is still waiting for stdin to end", args)
		return 0, ""
	}
}

// TestProduceErrorDoesNotWaitForStdin checks that a produce to a topic that
// does not exist, or one interrupted (Ctrl-C), ends at once: both once read
// stdin to its end first, for ever with a terminal or `yes |`.
func TestProduceErrorDoesNotWaitForStdin(t *testing.T) {
	env := newProducedTopic(t, 1)
	code, errs := runBlockedStdin(t, context.Background(), env, "produce", "nosuch")
	if code != 1 || !strings.Contains(errs, "unknown topic") {
		t.Fatalf("unknown topic: status %d, %s", code, errs)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if code, errs := runBlockedStdin(t, ctx, env, "produce", "t"); code != 130 || errs != "" {
		t.Fatalf("interrupted: status %d, stderr %q; want 130 and nothing", code, errs)
	}
}

// linesThenBlock is a stdin that gives lines, then closes blocked and
// blocks until release is closed, as a terminal does.
type linesThenBlock struct {
	lines            *strings.Reader
	blocked, release chan struct{}
}

func (r *linesThenBlock) Read(p []byte) (int, error) {
	if r.lines.Len() > 0 {
		return r.lines.Read(p)
	}
	close(r.blocked)
	<-r.release
	return 0, io.EOF
}

// TestProduceInterrupted: Ctrl-C on produce once printed "context
// canceled" and exited 1 (and could drop a batch it had taken). Now it
// writes what it took, prints what was acknowledged and exits quietly
// with 130; the summary matches what the topic holds. With --data-dir and
// with --broker.
func TestProduceInterrupted(t *testing.T) {
	t.Run("data-dir", func(t *testing.T) { testProduceInterrupted(t, newProducedTopic(t, 0)) })
	t.Run("broker", func(t *testing.T) {
		env := map[string]string{"SLUICE_BROKER": kafkatest.Start(t, kafkatest.Options{}).Addr}
		if code, _, errs := runCLI(t, env, "", "topic", "create", "t", "--partitions", "1"); code != 0 {
			t.Fatalf("topic create: %d %s", code, errs)
		}
		testProduceInterrupted(t, env)
	})
}

func testProduceInterrupted(t *testing.T, env map[string]string) {
	stdin := &linesThenBlock{lines: strings.NewReader("a\nb\nc\n"), blocked: make(chan struct{}), release: make(chan struct{})}
	defer close(stdin.release)
	var out, errb bytes.Buffer
	c := &cli{stdin: stdin, stdout: &out, stderr: &errb, getenv: func(k string) string { return env[k] }}
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, c, []string{"produce", "t"}) }()
	<-stdin.blocked
	cancel(signalCause{syscall.SIGINT})
	if code := <-done; code != 130 || errb.Len() > 0 {
		t.Fatalf("status %d, stderr %q; want 130 and nothing", code, errb.String())
	}
	var acked int
	if _, err := fmt.Sscanf(out.String(), "acknowledged %d records to t", &acked); err != nil {
		t.Fatalf("stdout %q: %v", out.String(), err)
	}
	_, got, _ := runCLI(t, env, "", "consume", "t", "-e")
	if want := "a\nb\nc\n"[:2*acked]; got != want {
		t.Fatalf("acknowledged %d records, the topic holds %q", acked, got)
	}
}

// TestConsumeInterrupted: Ctrl-C on consume once exited 0 after printing
// the records it had buffered; now it stops printing, commits what was
// printed (--group) and exits with 128 plus the signal, as produce does.
func TestConsumeInterrupted(t *testing.T) {
	env := newProducedTopic(t, 100)
	ctx, cancel := context.WithCancelCause(context.Background())
	w := &cancelAfter{n: 3, cancel: func() { cancel(signalCause{syscall.SIGINT}) }}
	var errb bytes.Buffer
	c := &cli{stdin: strings.NewReader(""), stdout: w, stderr: &errb, getenv: func(k string) string { return env[k] }}
	if code := run(ctx, c, []string{"consume", "t", "--group", "g"}); code != 130 || errb.Len() > 0 {
		t.Fatalf("status %d, stderr %q; want 130 and nothing", code, errb.String())
	}
	if w.buf.String() != "1\n2\n3\n" {
		t.Fatalf("printed %q after Ctrl-C", w.buf.String())
	}
	code, out, errs := runCLI(t, env, "", "consume", "t", "--group", "g", "-n", "1")
	if code != 0 || out != "4\n" {
		t.Fatalf("the group resumed at %q (status %d, %s), want 4", out, code, errs)
	}
	ctx, cancelTerm := context.WithCancelCause(context.Background())
	cancelTerm(signalCause{syscall.SIGTERM})
	c = &cli{stdin: strings.NewReader(""), stdout: io.Discard, stderr: &errb, getenv: func(k string) string { return env[k] }}
	if code := run(ctx, c, []string{"consume", "t"}); code != 143 || errb.Len() > 0 {
		t.Fatalf("SIGTERM: status %d, stderr %q; want 143 and nothing", code, errb.String())
	}
}

// cancelAfter keeps what is written and calls cancel once it holds n lines.
type cancelAfter struct {
	buf    bytes.Buffer
	n      int
	cancel func()
}

func (w *cancelAfter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	if bytes.Count(w.buf.Bytes(), []byte{'\n'}) >= w.n {
		w.cancel()
	}
	return len(p), nil
}

// TestRunClusterRefusesStateFlags: --state and --state-dir were accepted
// and ignored by a clustered pipeline (its state is in changelog topics).
// The context is cancelled so that a run that went on would stop at once.
func TestRunClusterRefusesStateFlags(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(spec, []byte("cluster: {brokers: [\"127.0.0.1:1\"], application_id: c}\nsource:\n  kafka: {topic: in}\n  format: json\nsink:\n  kafka: {topic: out}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, flags := range [][]string{{"--state", "pebble"}, {"--state-dir", dir}} {
		var errb bytes.Buffer
		c := &cli{stdin: strings.NewReader(""), stdout: io.Discard, stderr: &errb, getenv: func(string) string { return "" }}
		args := append(append([]string{"run", "--quiet", "--data-dir", dir}, flags...), spec)
		if code := run(ctx, c, args); code != 2 || !strings.Contains(errb.String(), flags[0]+" does not apply in cluster mode") {
			t.Errorf("%v: status %d, stderr %q", flags, code, errb.String())
		}
	}
}

// TestProduceKeyFieldNull: a JSON null in the --key-field field is Kafka's
// null key; it was once the four-byte key "null", which also sent every
// such record to the one partition murmur2("null") picks.
func TestProduceKeyFieldNull(t *testing.T) {
	env := map[string]string{"SLUICE_DATA_DIR": t.TempDir()}
	if code, _, errs := runCLI(t, env, "", "topic", "create", "t"); code != 0 {
		t.Fatalf("topic create: %d %s", code, errs)
	}
	in := `{"k":null,"v":1}` + "\n" + `{"k":"null","v":2}` + "\n" + `{"k":7,"v":3}` + "\n"
	if code, _, errs := runCLI(t, env, in, "produce", "t", "--key-field", "k"); code != 0 {
		t.Fatalf("produce: %d %s", code, errs)
	}
	code, out, errs := runCLI(t, env, "", "consume", "t", "-e", "--format", "json")
	if code != 0 {
		t.Fatalf("consume: %d %s", code, errs)
	}
	var keys []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		_, rest, _ := strings.Cut(line, `"key":`)
		k, _, _ := strings.Cut(rest, `,"value"`)
		keys = append(keys, k)
	}
	if got := strings.Join(keys, " "); got != `null "null" "7"` {
		t.Fatalf("keys %s, want null \"null\" \"7\"", got)
	}
}

// TestConsumeSIGINT sends a real SIGINT to `sluice consume` once it has
// printed the topic: it once exited 0; main's handler now makes it 130,
// quietly.
func TestConsumeSIGINT(t *testing.T) {
	env := newProducedTopic(t, 3)
	// Printing means main's signal handler is installed.
	cmd, _, br, errb := startConsumeThree(t, env, "consume", "t")
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, br)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 || errb.Len() > 0 {
		t.Fatalf("consume ended with %v, stderr %q; want exit status 130 and nothing", err, errb.String())
	}
}
