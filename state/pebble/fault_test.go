package pebble

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/cockroachdb/pebble/vfs/errorfs"

	"github.com/sluicehq/sluice/state"
)

// syncBuffer is a bytes.Buffer safe for Pebble's background goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestBackgroundErrorsAreLogged: a flush that fails on a full disk is
// retried by Pebble in the background, and a snapshot (and the writes
// behind a full memtable) wait for it; the error must reach the log, so
// that a job waiting for disk space says why. It was given to the logger
// that silences Pebble's chatter and lost.
func TestBackgroundErrorsAreLogged(t *testing.T) {
	var mu sync.Mutex
	fails := 3
	inj := errorfs.InjectorFunc(func(op errorfs.Op, path string) error {
		mu.Lock()
		defer mu.Unlock()
		if op == errorfs.OpCreate && strings.HasSuffix(path, ".sst") && fails > 0 {
			fails--
			return syscall.ENOSPC
		}
		return nil
	})
	var logs syncBuffer
	opts := small(t.TempDir())
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	opts.fs = errorfs.Wrap(vfs.Default, inj)
	b, err := Open(opts, testMaxPar, state.KeyGroupRange{Start: 0, End: testMaxPar})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	want := fill(t, b, 500, 1)
	if _, err := b.Snapshot(); err != nil { // waits for the flush, retried until it succeeds
		t.Fatal(err)
	}
	check(t, b, want)
	out := logs.String()
	if !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "no space left on device") {
		t.Fatalf("the failed flush was not logged as an error: %q", out)
	}
}
