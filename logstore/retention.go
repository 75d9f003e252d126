package logstore

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// EnforceRetention first rolls every active segment whose first batch is
// older than its topic's segment.ms (so that compaction and retention reach
// quiet partitions), then deletes, in every partition of every topic whose
// cleanup policy includes delete and that has a retention limit, the oldest whole segments that are past the topic's
// Retention (their newest record is older than now - Retention) or beyond
// its RetentionBytes. The log start offset moves to the first remaining
// offset; readers behind it get ErrOffsetOutOfRange. An active segment
// that has entirely expired is rolled and deleted too, so an idle topic
// empties. It runs in the background every Options.RetentionCheckInterval.
func (l *Log) EnforceRetention(now time.Time) error {
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return fmt.Errorf("retention: %w", ErrClosed)
	}
	topics := make([]*Topic, 0, len(l.topics))
	for _, t := range l.topics {
		topics = append(topics, t)
	}
	l.mu.RUnlock()
	var errs []error
	for _, t := range topics {
		cfg := t.Config()
		for _, p := range t.partitions() {
			if err := p.rollAged(now, cfg.segmentAge()); err != nil && !errors.Is(err, ErrClosed) {
				errs = append(errs, err)
			}
		}
		age, maxBytes := cfg.Retention, cfg.RetentionBytes
		if cfg.RemoteStorage {
			// The local limits; the total ones are the remote tier's.
			age, maxBytes = cfg.localRetention(), cfg.localRetentionBytes()
		}
		if !t.Cleanup().Delete() || (age <= 0 && maxBytes <= 0) {
			continue
		}
		for _, p := range t.partitions() {
			var uploaded func(base, end int64) bool
			if cfg.RemoteStorage {
				uploaded = p.uploadedFunc()
			}
			if err := p.enforceRetention(now, age, maxBytes, uploaded); err != nil && !errors.Is(err, ErrClosed) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// uploadedFunc says which sealed segments of a remote-enabled partition are
// safely remote; without a remote tier, none.
func (p *Partition) uploadedFunc() func(base, end int64) bool {
	h := p.topic.log.remote.Load()
	if h == nil {
		return func(int64, int64) bool { return false }
	}
	return func(base, end int64) bool { return h.rt.Uploaded(p.topic.name, p.id, base, end) }
}

// enforceRetention deletes the oldest segments past age or beyond maxBytes.
// With uploaded set (a remote-enabled topic) it deletes only segments that
// uploaded reports as safely remote, stopping at the first that is not; the
// bytes retention would have deleted but could not are reported in
// PartitionStats.RetentionBlockedBytes and logged.
func (p *Partition) enforceRetention(now time.Time, age time.Duration, maxBytes int64, uploaded func(base, end int64) bool) error {
	p.cleaner.mu.Lock() // not while the cleaner rewrites these segments
	defer p.cleaner.mu.Unlock()
	if err := p.finishSwapLocked(); err != nil {
		return err
	}
	cutoff := now.Add(-age).UnixMilli()
	expired := func(s *segment) bool {
		ts := s.idx.maxTimestamp()
		return age > 0 && ts != noTimestamp && ts < cutoff
	}
	for {
		p.segMu.RLock()
		segs := append([]*segment(nil), p.segments...)
		p.segMu.RUnlock()
		sealed := segs[:len(segs)-1]
		var total int64
		for _, s := range segs {
			total += s.visible.Load()
		}
		n := 0
		var blocked int64
		for i, s := range sealed {
			if !expired(s) && !(maxBytes > 0 && total-s.visible.Load() >= maxBytes) {
				break
			}
			if uploaded != nil && (blocked > 0 || !uploaded(s.base, segs[i+1].base)) {
				blocked += s.visible.Load() // not remote yet: kept
				continue
			}
			n++
			total -= s.visible.Load()
		}
		p.noteRetentionBlocked(blocked)
		if n > 0 {
			if err := p.deleteOldest(segs[:n]); err != nil {
				return err
			}
		}
		// An active segment that expired whole: roll it so it can go too.
		active := segs[len(segs)-1]
		if n == len(sealed) && active.visible.Load() > 0 && expired(active) {
			p.mu.Lock()
			idle := p.active == active && active.assigned == active.visible.Load()
			p.mu.Unlock()
			if !idle {
				return nil
			}
			if err := p.roll(false, 0); err != nil {
				return err
			}
			continue
		}
		return nil
	}
}

// noteRetentionBlocked records (and logs on change) how many bytes local
// retention keeps only because they are not yet remote.
//
// Uploads trail segment rolls by a little in normal operation, so only a
// wait over blockedRunsToWarn consecutive retention runs is logged as a
// warning.
func (p *Partition) noteRetentionBlocked(blocked int64) {
	p.retentionBlocked.Store(blocked)
	if blocked == 0 {
		if p.blockedRuns.Swap(0) >= blockedRunsToWarn {
			p.logger.Info("uploads to remote storage caught up; local retention applies again", "partition", p.name)
		}
		return
	}
	if p.blockedRuns.Add(1) == blockedRunsToWarn {
		p.logger.Warn("local retention is waiting for uploads to remote storage: the local disk grows past local.retention until they succeed",
			"partition", p.name, "bytes_waiting", blocked)
	}
}

// blockedRunsToWarn is how many consecutive retention runs must find
// segments waiting for upload before a warning is logged.
const blockedRunsToWarn = 3

// deleteOldest removes the given segments, which must be the oldest ones.
func (p *Partition) deleteOldest(del []*segment) error {
	p.segMu.Lock()
	if len(p.segments) <= len(del) || p.segments[0] != del[0] {
		p.segMu.Unlock()
		return nil // raced with another retention run or a close
	}
	p.segments = append([]*segment(nil), p.segments[len(del):]...)
	start := max(p.segments[0].base, p.logStart.Load()) // DeleteRecords may have moved it further
	p.logStart.Store(start)
	p.segMu.Unlock()
	p.mu.Lock()
	st := p.pstate
	p.mu.Unlock()
	if st != nil {
		st.dropBelow(start)
	}
	var errs []error
	for _, s := range del {
		s.deleted.Store(true)
		stem := strings.TrimSuffix(s.path, logSuffix)
		// Indexes first: a crash in between leaves a segment whose index is
		// rebuilt, never an index without its log.
		for _, name := range []string{stem + indexSuffix, stem + timeIndexSuffix, s.path} {
			if err := p.fs.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, ioError("retention: remove "+name, err))
			}
		}
		s.release()
		p.logger.Info("retention deleted segment", "partition", p.name, "segment", s.path, "new_log_start", start)
	}
	return errors.Join(errs...)
}

// rollAged rolls the active segment if its first batch is at least age old.
func (p *Partition) rollAged(now time.Time, age time.Duration) error {
	p.segMu.RLock()
	active := p.segments[len(p.segments)-1]
	p.segMu.RUnlock()
	first := active.firstAppend.Load()
	if first == 0 || now.UnixMilli()-first < age.Milliseconds() {
		return nil
	}
	return p.roll(false, 0)
}
