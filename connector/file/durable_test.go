package file

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/internal/durable"
	"github.com/sluicehq/sluice/stream"
)

// TestStagedPartsSurvivePowerLoss: the parts a PreCommit stages are named
// by the checkpoint, so their hidden names must be durable when it
// returns (the directory fsynced after their creation), as must the
// final names once Commit returns, and the sink's directory itself. A
// power loss (the entries no directory fsync covered are dropped) after
// the checkpoint must leave Recover the parts to commit, and the records
// committed.
func TestStagedPartsSurvivePowerLoss(t *testing.T) {
	for _, mode := range []string{"staged", "committed"} {
		t.Run(mode, func(t *testing.T) {
			crash := &durable.CrashDir{}
			root := t.TempDir()
			dir := filepath.Join(root, "out", "parts")
			ctx := context.Background()
			cfg := SinkConfig{Path: dir, TwoPhase: true}
			s, err := newSink(cfg, crash.SyncDir)
			if err != nil {
				t.Fatal(err)
			}
			if !crash.Durable(filepath.Join(root, "out")) || !crash.Durable(dir) {
				t.Fatalf("the sink's new directories are not durable")
			}
			sw, _ := s.Open(ctx, stream.SubtaskInfo{Parallelism: 1})
			w := sw.(*Writer)
			if err := w.Write(ctx, []connector.Message{{Value: []byte("a")}, {Value: []byte("b")}}); err != nil {
				t.Fatal(err)
			}
			tx, err := w.PreCommit(ctx, 1)
			if err != nil || tx == nil {
				t.Fatalf("pre-commit: %v, %v", tx, err)
			}
			ps, _ := decodeParts(tx)
			for _, p := range ps {
				if !crash.Durable(p.tmp) {
					t.Errorf("staged part %s is not durable when PreCommit returns", p.tmp)
				}
			}
			if mode == "committed" {
				if err := w.Commit(ctx, tx); err != nil {
					t.Fatal(err)
				}
				for _, p := range ps {
					if !crash.Durable(p.final) {
						t.Errorf("part %s is not durable when Commit returns", p.final)
					}
				}
			}
			// Power loss; the next run recovers the checkpoint.
			if err := crash.Crash(dir); err != nil {
				t.Fatal(err)
			}
			s2, err := newSink(cfg, crash.SyncDir)
			if err != nil {
				t.Fatal(err)
			}
			w2, _ := s2.Open(ctx, stream.SubtaskInfo{Parallelism: 1})
			if err := w2.(*Writer).Recover(ctx, []checkpoint.Transaction{tx}); err != nil {
				t.Fatalf("recover after a power loss: %v", err)
			}
			var got []string
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
				got = append(got, strings.TrimSpace(string(b)))
			}
			if strings.Join(got, ",") != "a\nb" {
				t.Errorf("after the power loss and recovery: %q, want the committed records", got)
			}
		})
	}
}

// TestFailedSyncNeverPublishes: a part whose fsync failed may have lost
// pages (the kernel reports a writeback error once and may drop the
// dirty pages), so it must never be committed or staged, even when the
// failing subtask's writer is then closed with a live context (the
// stream runtime's abort does so) and a retried fsync would succeed. The
// writer fails with the error and removes the part.
func TestFailedSyncNeverPublishes(t *testing.T) {
	for _, twoPhase := range []bool{false, true} {
		t.Run(map[bool]string{false: "at-least-once", true: "two-phase"}[twoPhase], func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			s, err := newSink(SinkConfig{Path: dir, TwoPhase: twoPhase}, durable.SyncDir)
			if err != nil {
				t.Fatal(err)
			}
			eio := errors.New("input/output error")
			fails := 1
			s.syncFile = func(f *os.File) error {
				if fails > 0 {
					fails--
					return eio
				}
				return f.Sync()
			}
			sw, _ := s.Open(ctx, stream.SubtaskInfo{Parallelism: 1})
			w := sw.(*Writer)
			if err := w.Write(ctx, []connector.Message{{Value: []byte("a")}}); err != nil {
				t.Fatal(err)
			}
			if twoPhase {
				_, err = w.PreCommit(ctx, 1)
			} else {
				err = w.OnBarrier(ctx, 1)
			}
			if !errors.Is(err, eio) {
				t.Fatalf("barrier: %v, want the fsync error", err)
			}
			werr := w.Write(ctx, []connector.Message{{Value: []byte("b")}})
			cerr := w.Close(ctx)
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				t.Errorf("file %s left after a failed fsync", e.Name())
			}
			if !errors.Is(werr, eio) {
				t.Errorf("write after a failed fsync: %v, want the fsync error", werr)
			}
			if !errors.Is(cerr, eio) {
				t.Errorf("close after a failed fsync: %v, want the fsync error", cerr)
			}
		})
	}
}
