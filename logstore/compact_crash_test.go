package logstore

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/record"
)

// The SIGKILL test of compaction. The parent re-executes the test binary as
// a child (TestCompactCrashChild) that writes keyed records ("key-N" =
// "seq") to a compacted topic with fsync always, prints "key seq" for each
// acknowledged record, and forces cleaner passes all the time. The child
// kills itself with SIGKILL at a chosen step of a chosen swap (output
// written, output synced, swap decided, each old file removed, swap done,
// indexes written, checkpoint written), or the parent kills it at a random
// moment. After each kill the parent reopens the log and checks that the
// latest value of every key is at least the latest acknowledged one (never
// older: compaction lost nothing; never a value that was not written), that
// no cleaner leftovers remain, and the next child continues the same log.

const (
	compactCrashDirEnv  = "LOGSTORE_COMPACT_CRASH_DIR"
	compactCrashStepEnv = "LOGSTORE_COMPACT_CRASH_STEP"
	compactCrashKeys    = 40
)

func compactCrashConfig() TopicConfig {
	return TopicConfig{Partitions: 1, SegmentBytes: 4 << 10, Cleanup: CleanupCompact, Fsync: FsyncPolicy{Mode: FsyncAlways}}
}

func TestCompactCrashChild(t *testing.T) {
	dir := os.Getenv(compactCrashDirEnv)
	if dir == "" {
		t.Skip("helper process of TestCompactCrashSIGKILL")
	}
	if n, err := strconv.Atoi(os.Getenv(compactCrashStepEnv)); err == nil && n > 0 {
		var steps atomic.Int64
		testHookCleanStep = func(string) {
			if steps.Add(1) == int64(n) {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
			}
		}
	}
	opts, _ := testOptions(dir)
	opts.Logger = slog.New(slog.DiscardHandler)
	opts.Cleaner = CleanerOptions{Interval: -1, DedupeBufferBytes: 1 << 16}
	l, err := Open(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(3)
	}
	if _, err := l.Topic("cc"); err != nil {
		if err := l.CreateTopic("cc", compactCrashConfig()); err != nil {
			fmt.Fprintln(os.Stderr, "child create:", err)
			os.Exit(3)
		}
	}
	tp, _ := l.Topic("cc")
	p, _ := tp.Partition(0)
	seqs := lastSeqs(t, p)
	go func() {
		for {
			if _, err := p.Compact(time.Now(), true); err != nil {
				fmt.Fprintln(os.Stderr, "child compact:", err)
				os.Exit(5)
			}
		}
	}()
	rng := rand.New(rand.NewPCG(uint64(os.Getpid()), 9))
	for {
		n := 1 + rng.IntN(8)
		recs := make([]record.Record, n)
		var line bytes.Buffer
		for i := range recs {
			k := rng.IntN(compactCrashKeys)
			seqs[k]++
			recs[i] = record.Record{Key: fmt.Appendf(nil, "key-%d", k), Value: fmt.Appendf(nil, "%d", seqs[k]), Timestamp: time.Now().UnixMilli()}
			fmt.Fprintf(&line, "%d %d\n", k, seqs[k])
		}
		b, err := record.AppendBatch(nil, recs, record.BatchOptions{})
		if err != nil {
			os.Exit(4)
		}
		if _, err := p.Append(context.Background(), b); err != nil {
			fmt.Fprintln(os.Stderr, "child append:", err)
			os.Exit(4)
		}
		os.Stdout.Write(line.Bytes())
	}
}

// lastSeqs reads the latest sequence number of every key in p, checking
// that every key's sequence only grows in log order.
func lastSeqs(t testing.TB, p *Partition) []int {
	seqs := make([]int, compactCrashKeys)
	for _, r := range readCompacted(t, p) {
		k, err1 := strconv.Atoi(strings.TrimPrefix(string(r.Key), "key-"))
		v, err2 := strconv.Atoi(string(r.Value))
		if err1 != nil || err2 != nil || k < 0 || k >= compactCrashKeys {
			t.Fatalf("offset %d: unexpected record %q=%q", r.Offset, r.Key, r.Value)
		}
		if v <= seqs[k] {
			t.Fatalf("offset %d: key %d goes back from %d to %d", r.Offset, k, seqs[k], v)
		}
		seqs[k] = v
	}
	return seqs
}

func TestCompactCrashSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	dir := t.TempDir()
	acked := make([]int, compactCrashKeys)
	rng := rand.New(rand.NewPCG(7, 8))
	const rounds = 16
	for round := 0; round < rounds; round++ {
		step := 0
		if round%4 != 3 {
			step = 1 + rng.IntN(40) // the child kills itself at this swap step
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestCompactCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), compactCrashDirEnv+"="+dir, compactCrashStepEnv+"="+strconv.Itoa(step))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		rd := bufio.NewReader(out)
		var lines []string
		for n := 0; step > 0 || n < 200+rng.IntN(2000); n++ {
			line, err := rd.ReadString('\n')
			if err != nil {
				break // the child killed itself
			}
			lines = append(lines, line)
			if n > 200_000 {
				break // the step was never reached: kill it from here
			}
		}
		cmd.Process.Signal(syscall.SIGKILL)
		rest, _ := io.ReadAll(rd)
		cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("round %d: child did not die by a signal: %v", round, cmd.ProcessState)
		}
		for _, line := range strings.SplitAfter(string(rest), "\n") {
			if strings.HasSuffix(line, "\n") {
				lines = append(lines, line)
			}
		}
		for _, line := range lines {
			var k, v int
			if _, err := fmt.Sscanf(line, "%d %d", &k, &v); err != nil || k < 0 || k >= compactCrashKeys {
				continue
			}
			acked[k] = max(acked[k], v)
		}
		// Reopen and check.
		opts, lb := testOptions(dir)
		opts.Cleaner.Interval = -1
		l, err := Open(opts)
		if err != nil {
			t.Fatalf("round %d (step %d): reopen: %v", round, step, err)
		}
		tp, err := l.Topic("cc")
		if err != nil {
			l.Close()
			continue // killed before the topic existed
		}
		p, _ := tp.Partition(0)
		if strings.Contains(lb.String(), "rebuilding segment index") && step == 0 {
			t.Logf("round %d: %s", round, lb.String())
		}
		got := lastSeqs(t, p)
		for k := range acked {
			if got[k] < acked[k] {
				t.Fatalf("round %d (step %d): key %d is at %d, %d was acknowledged\n%s", round, step, k, got[k], acked[k], lb.String())
			}
		}
		ents, _ := os.ReadDir(filepath.Join(dir, topicsDir, "cc", "0"))
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), cleanedSuffix) || strings.HasSuffix(e.Name(), swapSuffix) {
				t.Fatalf("round %d: cleaner leftover %s after open", round, e.Name())
			}
		}
		l.Close()
	}
}
