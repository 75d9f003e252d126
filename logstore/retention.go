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
		if !t.Cleanup().Delete() || (cfg.Retention <= 0 && cfg.RetentionBytes <= 0) {
			continue
		}
		for _, p := range t.partitions() {
			if err := p.enforceRetention(now, cfg.Retention, cfg.RetentionBytes); err != nil && !errors.Is(err, ErrClosed) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func (p *Partition) enforceRetention(now time.Time, age time.Duration, maxBytes int64) error {
	p.cleaner.mu.Lock() // not while the cleaner rewrites these segments
	defer p.cleaner.mu.Unlock()
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
		for _, s := range sealed {
			if expired(s) {
				n++
				total -= s.visible.Load()
				continue
			}
			if maxBytes > 0 && total-s.visible.Load() >= maxBytes {
				n++
				total -= s.visible.Load()
				continue
			}
			break
		}
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
