package logstore

import (
	"bufio"
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/sluicehq/sluice/record"
)

// The SIGKILL crash test. The parent re-executes the test binary as a child
// (TestCrashChild with LOGSTORE_CRASH_DIR set) that appends from several
// goroutines with fsync "always" and prints "base last crc" for every
// acknowledged batch. The parent kills it with SIGKILL after a random number
// of acknowledgements (sometimes before the first, during Open), reopens the
// log and checks that every acknowledged batch is present and intact and
// that offsets are contiguous; then the next child continues the same log.

const crashDirEnv = "LOGSTORE_CRASH_DIR"

// crashPrefillEnv set makes the child use 256 KiB segments with a 16 KiB
// pre-written tail (prefill.go), so that most kills leave zeros after the
// last batch; without it the child's 8 KiB segments roll too often for a
// tail to be written.
const crashPrefillEnv = "LOGSTORE_CRASH_PREFILL"

func valuesCRC(recs []record.Record) uint32 {
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	for _, r := range recs {
		h.Write(r.Value)
	}
	return h.Sum32()
}

func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("helper process of TestCrashSIGKILL")
	}
	opts, _ := testOptions(dir)
	opts.Logger = nil
	segBytes := int64(8 << 10)
	if os.Getenv(crashPrefillEnv) != "" {
		segBytes, opts.SegmentPrefill = 256<<10, 16<<10
	}
	l, err := Open(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(3)
	}
	if _, err := l.Topic("crash"); err != nil {
		if err := l.CreateTopic("crash", TopicConfig{Partitions: 1, SegmentBytes: segBytes, Fsync: FsyncPolicy{Mode: FsyncAlways}}); err != nil {
			fmt.Fprintln(os.Stderr, "child create:", err)
			os.Exit(3)
		}
	}
	tp, _ := l.Topic("crash")
	p, _ := tp.Partition(0)
	var outMu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(os.Getpid()), uint64(w)))
			for {
				b, recs := makeBatch(t, rng.Uint64(), 1+rng.IntN(5), rng.IntN(400), 1)
				res, err := p.Append(context.Background(), b)
				if err != nil {
					fmt.Fprintln(os.Stderr, "child append:", err)
					os.Exit(4)
				}
				line := fmt.Sprintf("%d %d %d\n", res.BaseOffset, res.LastOffset, valuesCRC(recs))
				outMu.Lock()
				os.Stdout.WriteString(line) // one write(2): atomic on a pipe
				outMu.Unlock()
			}
		}()
	}
	wg.Wait()
}

type ackedBatch struct {
	last int64
	crc  uint32
}

func TestCrashSIGKILL(t *testing.T) { crashRounds(t, false) }

// TestCrashSIGKILLPrefill is TestCrashSIGKILL with a pre-written segment
// tail: acknowledged batches survive kills that leave zeros after them,
// and the zeros are cut (at least one round must have had some).
func TestCrashSIGKILLPrefill(t *testing.T) {
	if logs := crashRounds(t, true); !strings.Contains(logs, "cut pre-written tail") {
		t.Fatalf("no round left a pre-written tail to recover:\n%s", logs)
	}
}

// crashRounds runs the kill-and-verify rounds of the SIGKILL crash test
// and returns the recovery logs of the reopens.
func crashRounds(t *testing.T, prefill bool) string {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	dir := t.TempDir()
	var logs strings.Builder
	acked := make(map[int64]ackedBatch)
	rng := rand.New(rand.NewPCG(42, 43))
	const rounds = 12
	for round := 0; round < rounds; round++ {
		target := rng.IntN(120) // acknowledgements before the kill; 0 kills during start-up
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
		if prefill {
			cmd.Env = append(cmd.Env, crashPrefillEnv+"=1")
		}
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		rd := bufio.NewReader(out)
		n := 0
		var lines []string
		for n < target {
			line, err := rd.ReadString('\n')
			if err != nil {
				break
			}
			lines = append(lines, line)
			n++
		}
		cmd.Process.Signal(syscall.SIGKILL)
		rest, _ := io.ReadAll(rd)
		cmd.Wait()
		// Complete lines only: a line cut by the kill was never fully reported.
		for _, line := range strings.SplitAfter(string(rest), "\n") {
			if strings.HasSuffix(line, "\n") {
				lines = append(lines, line)
			}
		}
		for _, line := range lines {
			f := strings.Fields(line)
			if len(f) != 3 || f[0] == "PASS" {
				continue
			}
			base, err1 := strconv.ParseInt(f[0], 10, 64)
			last, err2 := strconv.ParseInt(f[1], 10, 64)
			crc, err3 := strconv.ParseUint(f[2], 10, 32)
			if err1 != nil || err2 != nil || err3 != nil {
				continue // test framework output
			}
			if prev, ok := acked[base]; ok && prev.last != last {
				t.Fatalf("round %d: offset %d acknowledged twice with different batches", round, base)
			}
			acked[base] = ackedBatch{last: last, crc: uint32(crc)}
		}
		logs.WriteString(verifyCrashLog(t, dir, round, acked))
	}
	if len(acked) == 0 {
		t.Fatal("no append was acknowledged in any round")
	}
	t.Logf("%d rounds, %d acknowledged batches verified", rounds, len(acked))
	return logs.String()
}

// verifyCrashLog reopens the log and checks every acknowledged batch; it
// returns the log's messages from the reopen.
func verifyCrashLog(t *testing.T, dir string, round int, acked map[int64]ackedBatch) string {
	t.Helper()
	opts, lb := testOptions(dir)
	l, err := Open(opts)
	if err != nil {
		t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
	}
	defer l.Close()
	tp, err := l.Topic("crash")
	if err != nil {
		if len(acked) == 0 {
			return lb.String() // killed before the topic existed
		}
		t.Fatalf("round %d: %v", round, err)
	}
	p, _ := tp.Partition(0)
	recs := readAllRecords(t, p, 0) // checks contiguity and CRCs
	_, hw, _ := p.Offsets()
	if int64(len(recs)) != hw {
		t.Fatalf("round %d: %d records below high watermark %d", round, len(recs), hw)
	}
	for base, a := range acked {
		if a.last >= hw {
			t.Fatalf("round %d: acknowledged batch %d..%d lost (high watermark %d)\n%s", round, base, a.last, hw, lb.String())
		}
		if got := valuesCRC(recs[base : a.last+1]); got != a.crc {
			t.Fatalf("round %d: acknowledged batch %d..%d has different contents", round, base, a.last)
		}
	}
	return lb.String()
}

const lockDirEnv = "LOGSTORE_LOCK_DIR"

// TestLockChild tries to open the directory held by TestDirectoryLockOtherProcess.
func TestLockChild(t *testing.T) {
	dir := os.Getenv(lockDirEnv)
	if dir == "" {
		t.Skip("helper process of TestDirectoryLockOtherProcess")
	}
	opts, _ := testOptions(dir)
	_, err := Open(opts)
	fmt.Printf("OPEN-ERROR: %v\n", err)
}

func TestDirectoryLockOtherProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	dir := t.TempDir()
	opts, _ := testOptions(dir)
	l := mustOpen(t, opts)
	defer l.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), lockDirEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	want := fmt.Sprintf("OPEN-ERROR: data directory %s is locked by another process (pid %d on host", dir, os.Getpid())
	if !strings.Contains(string(out), want) {
		t.Fatalf("child output lacks %q:\n%s", want, out)
	}
}
