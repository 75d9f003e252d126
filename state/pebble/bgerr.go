package pebble

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble"
)

// bgErrLogEvery is how often a run of repeated background errors is
// logged after its first: Pebble retries a failed flush at once, again
// and again, until it succeeds.
const bgErrLogEvery = 10 * time.Second

// bgErrRunGap is the quiet time after which an error starts a new run
// even without a successful flush in between (an idle database): a flush
// failing for good is retried at once, so its errors are never this far
// apart.
const bgErrRunGap = 10 * time.Second

// ErrBackgroundFailed is wrapped by the error a backend returns once
// Pebble's background errors have lasted longer than
// Options.BackgroundErrorTimeout without a successful flush.
var ErrBackgroundFailed = errors.New("pebble state: background errors persisted")

// bgErrors sends Pebble's background errors (failed flushes and
// compactions) to the backend's logger and bounds how long they may last.
// Pebble retries them itself; a snapshot and the writes behind a full
// memtable wait meanwhile, so the log is where a stalled job says why. The
// first error of a run is logged, then at most one every bgErrLogEvery
// with the count, and a line when a flush succeeds again.
//
// A run that lasts limit or longer (measured at each error, from the first
// one of the run) is fatal: err returns it from then on and failed is
// closed, so that the backend's next state access or a snapshot waiting
// for a flush fails the job (which restarts from its last checkpoint)
// instead of waiting for the disk forever. A run that a successful flush
// ends before the limit fails nothing. Pebble calls report and flushEnd
// from its own goroutines (holding its mutex: they must not call into the
// database).
type bgErrors struct {
	log     *slog.Logger
	dir     string
	limit   time.Duration    // <= 0: never fatal
	now     func() time.Time // time.Now; tests inject a clock
	failed  chan struct{}    // closed when the run became fatal
	running atomic.Bool      // a run of errors is going on

	mu      sync.Mutex
	failing bool
	count   int64
	since   time.Time // first error of the run
	last    time.Time // latest error
	next    time.Time
	fatal   error
	dead    atomic.Bool   // fatal != nil, read without the mutex
	changed chan struct{} // closed (and replaced) at each error or flush
}

func newBGErrors(log *slog.Logger, dir string, limit time.Duration) *bgErrors {
	return &bgErrors{log: log, dir: dir, limit: limit, now: time.Now, failed: make(chan struct{}), changed: make(chan struct{})}
}

// report implements pebble.EventListener.BackgroundError.
func (e *bgErrors) report(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.count++
	e.signal()
	now := e.now()
	if !e.failing || now.Sub(e.last) > bgErrRunGap {
		e.since = now // a new run
	}
	e.last = now
	if e.fatal == nil && e.limit > 0 && now.Sub(e.since) >= e.limit {
		what := "a background flush or compaction keeps failing"
		if errors.Is(err, syscall.ENOSPC) {
			what = "the disk is full"
		}
		e.fatal = fmt.Errorf("%w: %s: state directory %s: %d errors in %v, the last: %w; free space there (or move Dir), then the job restarts from its last checkpoint",
			ErrBackgroundFailed, what, e.dir, e.count, now.Sub(e.since).Round(time.Millisecond), err)
		e.dead.Store(true)
		close(e.failed)
		e.log.Error("pebble state: failing the job after persistent background errors", "dir", e.dir, "err", e.fatal)
	}
	if e.failing && now.Before(e.next) {
		return
	}
	e.failing = true
	e.running.Store(true)
	e.next = now.Add(bgErrLogEvery)
	hint := "Pebble retries it; checkpoints and state writes wait meanwhile"
	if e.limit > 0 {
		hint += fmt.Sprintf(" (the job fails if it lasts %v)", e.limit)
	}
	if errors.Is(err, syscall.ENOSPC) {
		hint += "; free space on the state directory's disk"
	}
	e.log.Error("pebble state: background error", "dir", e.dir, "err", err, "errors", e.count, "action", hint)
}

// flushEnd implements pebble.EventListener.FlushEnd: a flush that
// succeeds after errors ends their run. A run already fatal stays so: the
// job has been told to fail.
func (e *bgErrors) flushEnd(info pebble.FlushInfo) {
	if info.Err != nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.signal()
	if e.failing {
		e.running.Store(false)
		e.log.Info("pebble state: flushing again after background errors", "dir", e.dir, "errors", e.count)
		e.failing, e.count = false, 0
	}
}

// compactionEnd implements pebble.EventListener.CompactionEnd: a
// compaction that succeeds, like a flush, ends a run of errors.
func (e *bgErrors) compactionEnd(info pebble.CompactionInfo) {
	if info.Err == nil {
		e.flushEnd(pebble.FlushInfo{})
	}
}

// err returns the fatal error, or nil. It costs one atomic load until
// then: it runs on every state access.
func (e *bgErrors) err() error {
	if !e.dead.Load() {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.fatal
}

// signal wakes the waiters of wait (mu held).
func (e *bgErrors) signal() {
	close(e.changed)
	e.changed = make(chan struct{})
}

// wait returns a channel closed at the next background error or flush.
func (e *bgErrors) wait() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.changed
}
