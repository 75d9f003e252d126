package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets tests run this test binary as the sluice command itself
// (SLUICE_TEST_MAIN=1), to test signals and exit statuses of a real process.
func TestMain(m *testing.M) {
	if os.Getenv("SLUICE_TEST_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServe runs `sluice serve` as a child process and waits until its
// Kafka listener accepts connections.
func startServe(t *testing.T, dir string) (kafkaAddr string, cmd *exec.Cmd, stderr *bytes.Buffer) {
	t.Helper()
	return startServeWith(t, dir, nil, nil)
}

// startServeWith is startServe with more flags and environment variables.
func startServeWith(t *testing.T, dir string, flags, env []string) (kafkaAddr string, cmd *exec.Cmd, stderr *bytes.Buffer) {
	t.Helper()
	kafkaAddr, httpAddr := freeAddr(t), freeAddr(t)
	args := append([]string{"serve", "--data-dir", dir, "--kafka-addr", kafkaAddr, "--http-addr", httpAddr, "--log-format", "text"}, flags...)
	cmd = exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), "SLUICE_TEST_MAIN=1"), env...)
	stderr = &bytes.Buffer{}
	pr, pw, _ := os.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		once := false
		for sc.Scan() {
			stderr.WriteString(sc.Text() + "\n")
			if !once && strings.Contains(sc.Text(), "sluice serving") {
				once = true
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("serve did not start: %s", stderr)
	}
	return kafkaAddr, cmd, stderr
}

// TestServeOverKafkaProtocolAndSIGTERM runs the data commands against a
// running server with --broker, then stops it with SIGTERM and checks the
// data is there for the embedded commands afterwards.
func TestServeOverKafkaProtocolAndSIGTERM(t *testing.T) {
	dir := t.TempDir()
	addr, cmd, stderr := startServe(t, dir)
	defer cmd.Process.Kill()
	env := map[string]string{"SLUICE_BROKER": addr}
	mustRun := func(stdin string, args ...string) string {
		t.Helper()
		code, out, errs := runCLI(t, env, stdin, args...)
		if code != 0 {
			t.Fatalf("%v: status %d, stderr %s\nserver: %s", args, code, errs, stderr)
		}
		return out
	}
	mustRun("", "topic", "create", "events", "--partitions", "2")
	var in strings.Builder
	for i := 0; i < 50; i++ {
		fmt.Fprintf(&in, "{\"k\":\"%d\"}\n", i%5)
	}
	if out := mustRun(in.String(), "produce", "events", "--key-field", "k"); !strings.Contains(out, "acknowledged 50 records") {
		t.Fatalf("produce: %s", out)
	}
	if out := mustRun("", "consume", "events", "-e"); strings.Count(out, "\n") != 50 {
		t.Fatalf("consume over the protocol printed %d lines", strings.Count(out, "\n"))
	}
	if out := mustRun("", "consume", "events", "-e", "-n", "20", "--group", "g"); strings.Count(out, "\n") != 20 {
		t.Fatalf("-n 20 printed %d", strings.Count(out, "\n"))
	}
	if out := mustRun("", "consume", "events", "-e", "--group", "g"); strings.Count(out, "\n") != 30 {
		t.Fatalf("group resume over the protocol printed %d, want 30", strings.Count(out, "\n"))
	}
	if out := mustRun("", "topic", "describe", "events"); !strings.Contains(out, "partitions: 2") {
		t.Fatalf("describe: %s", out)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve exited with %v after SIGTERM: %s", err, stderr)
	}
	// The data directory is now free for the embedded commands.
	code, out, errs := runCLI(t, map[string]string{"SLUICE_DATA_DIR": dir}, "", "consume", "events", "-e")
	if code != 0 || strings.Count(out, "\n") != 50 {
		t.Fatalf("after restart: status %d, %d lines, %s", code, strings.Count(out, "\n"), errs)
	}
}

func TestSecondProcessGetsLockError(t *testing.T) {
	dir := t.TempDir()
	_, cmd, _ := startServe(t, dir)
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	code, _, errs := runCLI(t, map[string]string{"SLUICE_DATA_DIR": dir}, "", "topic", "list")
	if code != 1 || !strings.Contains(errs, fmt.Sprint(cmd.Process.Pid)) {
		t.Fatalf("status %d, stderr %q: want a lock error naming pid %d", code, errs, cmd.Process.Pid)
	}
}

func TestServeRefusesNonLoopbackWithoutAuth(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	c := &cli{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	code := run(ctx, c, []string{"serve", "--data-dir", t.TempDir(), "--kafka-addr", "0.0.0.0:0", "--http-addr", "127.0.0.1:0"})
	if code != 2 || !strings.Contains(errb.String(), "allow-unauthenticated") {
		t.Fatalf("status %d, stderr %s", code, errb.String())
	}
	code = run(ctx, c, []string{"serve", "--data-dir", t.TempDir(), "--http-addr", "0.0.0.0:0"})
	if code != 2 || !strings.Contains(errb.String(), "token") {
		t.Fatalf("status %d, stderr %s", code, errb.String())
	}
}
