package stream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/checkpoint"
)

// fileTxSink is a transactional file sink: each transaction is a part
// file written under staging/ and made visible in out/ by an atomic
// rename on commit.
type fileTxSink struct{ dir string }

func (s fileTxSink) Open(_ context.Context, info SubtaskInfo) (SinkWriter[Windowed[string, int64]], error) {
	for _, d := range []string{"staging", "out"} {
		if err := os.MkdirAll(filepath.Join(s.dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	return &fileTxWriter{dir: s.dir, sub: info.Index, run: fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano())}, nil
}

type fileTxWriter struct {
	dir string
	sub int
	run string
	seq int
	buf []byte
}

func (w *fileTxWriter) Write(_ context.Context, rs []Windowed[string, int64]) error {
	for _, r := range rs {
		w.buf = fmt.Appendf(w.buf, "%s %d %d\n", r.Key, r.Window.Start, r.Value)
	}
	return nil
}

func (w *fileTxWriter) Close(context.Context) error { return nil }

func (w *fileTxWriter) PreCommit(_ context.Context, id checkpoint.ID) (checkpoint.Transaction, error) {
	w.seq++
	name := fmt.Sprintf("%d_%s_%d.part", w.sub, w.run, w.seq)
	f, err := os.Create(filepath.Join(w.dir, "staging", name))
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(w.buf); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	w.buf = w.buf[:0]
	return checkpoint.Transaction(name), f.Close()
}

func (w *fileTxWriter) Commit(_ context.Context, tx checkpoint.Transaction) error {
	name := string(tx)
	err := os.Rename(filepath.Join(w.dir, "staging", name), filepath.Join(w.dir, "out", name))
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(filepath.Join(w.dir, "out", name)); serr == nil {
			return nil // committed before
		}
	}
	return err
}

func (w *fileTxWriter) Abort(_ context.Context, tx checkpoint.Transaction) error {
	err := os.Remove(filepath.Join(w.dir, "staging", string(tx)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func (w *fileTxWriter) Recover(ctx context.Context, txs []checkpoint.Transaction) error {
	keep := map[string]bool{}
	for _, tx := range txs {
		if err := w.Commit(ctx, tx); err != nil {
			return err
		}
		keep[string(tx)] = true
	}
	ents, err := os.ReadDir(filepath.Join(w.dir, "staging"))
	if err != nil {
		return err
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), fmt.Sprintf("%d_", w.sub)) && !strings.HasPrefix(e.Name(), fmt.Sprintf("%d_%s_", w.sub, w.run)) && !keep[e.Name()] {
			os.Remove(filepath.Join(w.dir, "staging", e.Name()))
		}
	}
	return nil
}

func readCommitted(t *testing.T, dir string) []cres {
	ents, err := os.ReadDir(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	var out []cres
	for _, e := range ents {
		f, err := os.Open(filepath.Join(dir, "out", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var r cres
			if _, err := fmt.Sscanf(sc.Text(), "%s %d %d", &r.Key, &r.Start, &r.Sum); err != nil {
				t.Fatalf("%s: %q: %v", e.Name(), sc.Text(), err)
			}
			out = append(out, r)
		}
		f.Close()
	}
	sortRes(out)
	return out
}

func killData() [][]cev { return genEvents(42, 3, 2000, 25) }

// TestKillChild is the job run by TestKillExactlyOnce in a child process.
func TestKillChild(t *testing.T) {
	dir := os.Getenv("SLUICE_KILL_DIR")
	if dir == "" {
		t.Skip("run by TestKillExactlyOnce")
	}
	delivery := ExactlyOnce
	if os.Getenv("SLUICE_KILL_DELIVERY") == "at_least_once" {
		delivery = AtLeastOnce
	}
	env := New(WithParallelism(2), WithBatchSize(8), WithMaxParallelism(16), WithDelivery(delivery),
		WithCheckpointing(filepath.Join(dir, "chk"), 20*time.Millisecond), WithLogger(quietLog()))
	s := FromSource(env, "events", &pacedSource{data: killData(), chunk: 5, pace: 1500 * time.Microsecond},
		WatermarkStrategy[cev]{Timestamp: func(e cev) int64 { return e.Ts }})
	buildAggTo(s, fileTxSink{dir: filepath.Join(dir, "sink")})
	if err := env.Execute(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestKillExactlyOnce kills the job process with SIGKILL at random
// moments and restarts it until it finishes: with exactly_once the
// committed output equals the oracle; with at_least_once no result is
// missing.
func TestKillExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	want := oracle(killData())
	for _, delivery := range []string{"exactly_once", "at_least_once"} {
		t.Run(delivery, func(t *testing.T) {
			dir := t.TempDir()
			rnd := rand.New(rand.NewSource(time.Now().UnixNano()))
			kills := 0
			for round := 0; ; round++ {
				cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$", "-test.count=1")
				cmd.Env = append(os.Environ(), "SLUICE_KILL_DIR="+dir, "SLUICE_KILL_DELIVERY="+delivery)
				out := &strings.Builder{}
				cmd.Stdout, cmd.Stderr = out, out
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				done := make(chan error, 1)
				go func() { done <- cmd.Wait() }()
				if round < 4 {
					select {
					case err := <-done:
						if err != nil {
							t.Fatalf("child failed: %v\n%s", err, out)
						}
						goto finished
					case <-time.After(time.Duration(100+rnd.Intn(400)) * time.Millisecond):
						cmd.Process.Signal(syscall.SIGKILL)
						<-done
						kills++
						parts, _ := os.ReadDir(filepath.Join(dir, "sink", "out"))
						t.Logf("killed run %d: %d part files committed so far", round, len(parts))
						continue
					}
				}
				if err := <-done; err != nil {
					t.Fatalf("final run failed: %v\n%s", err, out)
				}
				break
			}
		finished:
			t.Logf("%s: %d kills", delivery, kills)
			got := readCommitted(t, filepath.Join(dir, "sink"))
			if delivery == "exactly_once" {
				sameResults(t, got, want)
				return
			}
			seen := map[[2]any]bool{}
			for _, r := range got {
				seen[[2]any{r.Key, r.Start}] = true
			}
			for _, r := range want {
				if !seen[[2]any{r.Key, r.Start}] {
					t.Fatalf("result for %s window %d missing", r.Key, r.Start)
				}
			}
		})
	}
}
