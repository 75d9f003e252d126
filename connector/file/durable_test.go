package file

import (
	"context"
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
