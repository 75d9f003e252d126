package pebble

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

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

// stepClock is a clock that moves step forward at each reading.
type stepClock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func (c *stepClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.step)
	return c.t
}

// openFaulty opens a backend whose sstable creations fail with ENOSPC
// fails times (-1: always), whose background-error clock moves a second
// per error, with the given BackgroundErrorTimeout.
func openFaulty(t *testing.T, fails int, limit time.Duration) (*Backend, *syncBuffer) {
	t.Helper()
	var mu sync.Mutex
	inj := errorfs.InjectorFunc(func(op errorfs.Op, path string) error {
		mu.Lock()
		defer mu.Unlock()
		if op == errorfs.OpCreate && strings.HasSuffix(path, ".sst") && fails != 0 {
			if fails > 0 {
				fails--
			}
			return syscall.ENOSPC
		}
		return nil
	})
	logs := &syncBuffer{}
	opts := small(t.TempDir())
	opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	opts.fs = errorfs.Wrap(vfs.Default, inj)
	opts.BackgroundErrorTimeout = limit
	b := newBackend(opts, testMaxPar, state.KeyGroupRange{Start: 0, End: testMaxPar})
	b.opts.defaults()
	clock := &stepClock{t: time.Unix(0, 0), step: time.Second}
	b.bgErrs.now = clock.now
	if err := b.open(); err != nil {
		t.Fatal(err)
	}
	return b, logs
}

// TestPersistentDiskFullFailsSnapshot: a flush that fails on a full disk
// for longer than BackgroundErrorTimeout fails the snapshot waiting for
// it, and every state access after, with an error that says the disk is
// full and where, so the job restarts from its last checkpoint. The
// snapshot used to wait for ever while Pebble retried the flush.
func TestPersistentDiskFullFailsSnapshot(t *testing.T) {
	b, _ := openFaulty(t, -1, 30*time.Second)
	fill(t, b, 500, 1)
	_, err := b.Snapshot()
	if !errors.Is(err, ErrBackgroundFailed) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("snapshot on a disk full for good: got %v, want ErrBackgroundFailed wrapping ENOSPC", err)
	}
	for _, want := range []string{"disk is full", b.opts.Dir} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not say %q", err, want)
		}
	}
	if err := b.Flush(); !errors.Is(err, ErrBackgroundFailed) {
		t.Fatalf("state access after the failure: got %v, want ErrBackgroundFailed", err)
	}
	if _, _, err := (kvStore{b}).Get([]byte("k"), nil); !errors.Is(err, ErrBackgroundFailed) {
		t.Fatalf("read after the failure: got %v, want ErrBackgroundFailed", err)
	}
	_ = b.Close() // must return: the job closes the backend as it fails
}

// TestTransientDiskFullDoesNotFail: errors that a successful flush ends
// before BackgroundErrorTimeout fail nothing, and do not count towards a
// later run.
func TestTransientDiskFullDoesNotFail(t *testing.T) {
	b, _ := openFaulty(t, 5, 10*time.Second)
	defer b.Close()
	want := fill(t, b, 500, 1)
	if _, err := b.Snapshot(); err != nil {
		t.Fatal(err)
	}
	check(t, b, want)
	if err := b.bgErrs.err(); err != nil {
		t.Fatal(err)
	}
}
