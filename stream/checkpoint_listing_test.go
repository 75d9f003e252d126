package stream

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/checkpoint"
)

// unlistableStore is a checkpoint store whose listing of complete
// checkpoints fails.
type unlistableStore struct {
	checkpoint.Store
	err error
}

func (s unlistableStore) Complete() ([]checkpoint.ID, error) { return nil, s.err }

// TestCheckpointListingErrorFailsStart: a run numbers its checkpoints
// after the newest complete one in the storage, so that Begin does not
// overwrite it (a restore from an older checkpoint is a roll-back). When
// the storage cannot list them (an I/O error), the run must not start
// numbering from what it restored, or from 1: its first checkpoint would
// delete a complete one. It fails to start with the error instead.
func TestCheckpointListingErrorFailsStart(t *testing.T) {
	d, err := checkpoint.NewDir(t.TempDir(), checkpoint.WithLogger(quietLog()))
	if err != nil {
		t.Fatal(err)
	}
	eio := errors.New("input/output error")
	e := New(WithCheckpointStore(unlistableStore{Store: d, err: eio}, time.Hour), WithLogger(quietLog()))
	r, err := newChkRun(context.Background(), e)
	if err == nil {
		t.Fatalf("run started with checkpoint ids after %d despite a failed listing", r.lastID())
	}
	if !errors.Is(err, eio) || !strings.Contains(err.Error(), "list") {
		t.Fatalf("start: %v, want the listing's error", err)
	}
}
