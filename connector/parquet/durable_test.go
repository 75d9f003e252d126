package parquet

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/internal/durable"
	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/stream"
)

// TestStagedFilesSurvivePowerLoss: the files a PreCommit hands to the
// checkpoint (staged under TwoPhase, filed at the barrier in the default
// mode) must have durable names when it returns (the directory fsynced
// after their creation), as must the sink's new directory: a power loss
// (the entries no directory fsync covered are dropped) after the
// checkpoint completed must leave Recover the files to publish.
func TestStagedFilesSurvivePowerLoss(t *testing.T) {
	for _, mode := range []struct {
		name string
		cfg  Config
	}{{"two-phase", Config{TwoPhase: true}}, {"default", Config{}}} {
		t.Run(mode.name, func(t *testing.T) {
			crash := &durable.CrashDir{}
			root := t.TempDir()
			dir := filepath.Join(root, "out", "parquet")
			ctx := context.Background()
			open := func() checkpoint.TwoPhaseCommitter {
				cfg := mode.cfg
				cfg.Path = dir
				s := newSink(t, cfg)
				s.syncDir = crash.SyncDir
				return openWriter(t, s, stream.SubtaskInfo{Parallelism: 1}).(checkpoint.TwoPhaseCommitter)
			}
			c := open()
			if !crash.Durable(filepath.Join(root, "out")) || !crash.Durable(dir) {
				t.Fatal("the sink's new directories are not durable")
			}
			if err := c.Recover(ctx, nil); err != nil {
				t.Fatal(err)
			}
			w := c.(stream.SinkWriter[row.Row])
			writeRows(t, w, 1)
			barrier(t, w, 1)
			tx, err := c.PreCommit(ctx, 1)
			if err != nil || len(tx) == 0 {
				t.Fatalf("pre-commit: %q, %v", tx, err)
			}
			names, _ := decodeTx(tx)
			for _, n := range names {
				if !crash.Durable(filepath.Join(dir, "."+n+".inprogress")) {
					t.Errorf("staged file of %s is not durable when PreCommit returns", n)
				}
			}
			// The checkpoint completed; power loss before its commit.
			if err := crash.Crash(dir); err != nil {
				t.Fatal(err)
			}
			if err := open().Recover(ctx, []checkpoint.Transaction{tx}); err != nil {
				t.Fatalf("recover after a power loss: %v", err)
			}
			for _, n := range names {
				if !crash.Durable(filepath.Join(dir, n)) {
					t.Errorf("%s is not durable once Recover published it", n)
				}
			}
			if got := readBack(t, dir); !slices.Equal(got, []string{wantLine(1)}) {
				t.Errorf("rows after the power loss and recovery: %v, want %v", got, []string{wantLine(1)})
			}
		})
	}
}
