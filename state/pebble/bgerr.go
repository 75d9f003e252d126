package pebble

import (
	"errors"
	"log/slog"
	"sync"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble"
)

// bgErrLogEvery is how often a run of repeated background errors is
// logged after its first: Pebble retries a failed flush at once, again
// and again, until it succeeds.
const bgErrLogEvery = 10 * time.Second

// bgErrors sends Pebble's background errors (failed flushes and
// compactions) to the backend's logger. Pebble retries them itself; a
// snapshot and the writes behind a full memtable wait meanwhile, so the
// log is where a stalled job says why. The first error of a run is
// logged, then at most one every bgErrLogEvery with the count, and a line
// when a flush succeeds again. Pebble calls it from its own goroutines
// (holding its mutex: it must not call into the database).
type bgErrors struct {
	log *slog.Logger
	dir string

	mu      sync.Mutex
	failing bool
	count   int64
	next    time.Time
}

// report implements pebble.EventListener.BackgroundError.
func (e *bgErrors) report(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.count++
	now := time.Now()
	if e.failing && now.Before(e.next) {
		return
	}
	e.failing = true
	e.next = now.Add(bgErrLogEvery)
	hint := "Pebble retries it; checkpoints and state writes wait meanwhile"
	if errors.Is(err, syscall.ENOSPC) {
		hint += "; free space on the state directory's disk"
	}
	e.log.Error("pebble state: background error", "dir", e.dir, "err", err, "errors", e.count, "action", hint)
}

// flushEnd implements pebble.EventListener.FlushEnd: a flush that
// succeeds after errors ends their run.
func (e *bgErrors) flushEnd(info pebble.FlushInfo) {
	if info.Err != nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.failing {
		e.log.Info("pebble state: flushing again after background errors", "dir", e.dir, "errors", e.count)
		e.failing, e.count = false, 0
	}
}
