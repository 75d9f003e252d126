package logstore

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"time"
)

// The commit pipeline.
//
// An append goes through two stages:
//
//  1. Assignment, under Partition.mu (the append lock, held for a memcpy
//     at most): the batch is checked against the producer state, given the
//     next offsets, queued on the partition's pending list (Assign copies
//     it into the pending arena first; AssignInPlace queues the caller's
//     own buffer, which the caller leaves alone until Commit returns), its
//     base offset, and with LogAppendTime its timestamp, are patched,
//     it is indexed, and the producer state is advanced. The appender
//     notes the offset its batch ends at ("end") and the buffer epoch, and
//     releases mu.
//
//  2. Commit. One appender at a time is the committer (elected under
//     commitMu); the others wait for the broadcast that ends the current
//     commit and then each checks the durable offset: if it has reached the
//     end of its batch, another committer wrote and synced it and it
//     returns at once. Otherwise the first of them becomes the next
//     committer, for everyone queued so far: under Partition.syncMu and
//     writeMu it takes the pending list (swapping in an empty one under mu,
//     so appenders keep assigning while it does I/O), writes it with one
//     writev(2), releases writeMu, fsyncs once if the policy is
//     FsyncAlways, and publishes the new high watermark. Every append that
//     arrives during one commit's fsync is covered by the next commit's
//     single fsync. This is group commit; the broadcast (rather than
//     queueing on a mutex that is handed from waiter to waiter) lets all
//     covered appenders return, and append again, while the next fsync is
//     still running.
//
//  3. Write-ahead (FsyncAlways). An appender that assigns while a commit's
//     fdatasync runs (syncing) writes the pending list to the segment
//     itself, under writeMu taken with TryLock (it never waits), without
//     syncing: the copy into the page cache then overlaps the disk's work
//     instead of following it, and the next commit finds most of its data
//     written. It also asks the kernel to start writing those pages to
//     the disk (sync_file_range, SYNC_FILE_RANGE_WRITE, which waits for
//     nothing and promises nothing), so that the disk receives them while
//     the running commit ends rather than when the next fdatasync
//     submits them. Written-ahead batches are not committed: the high watermark
//     and every acknowledgement still wait for a commit whose fdatasync
//     started after they were written (the committer takes the pending
//     list, and measures the file, under writeMu, before its fdatasync).
//     A write-ahead that fails records the error (aheadErr) and the next
//     commit rolls back.
//
// Invariants:
//
//   - Offsets are assigned contiguously and data is written in offset order:
//     the pending list is filled under mu in offset order and only a
//     writer holding writeMu takes it and writes it, so file order is
//     offset order.
//   - Acknowledged implies durable: an append returns nil only after a commit
//     that wrote its bytes (and for FsyncAlways synced them, with an
//     fdatasync that started after they were written) succeeded.
//   - The high watermark (tip) only covers committed data, so readers never
//     see data that a crash could take back (under the policy's promise:
//     FsyncAlways commits after the fsync, FsyncInterval and FsyncNever
//     after the write). tip.hw, tip.lso and tip.size are published together
//     in one atomic pointer store, after the data is committed. Bytes
//     written ahead lie beyond tip.size until a commit covers them.
//   - Lock order is commitMu (never held across I/O), then syncMu, then
//     writeMu, then mu. Readers take none of them (only the segment list's
//     RWMutex and an index's RWMutex, both briefly), so a reader never
//     blocks the writer for longer than a slice copy.
//   - A failed write (the committer's or a write-ahead's) discards
//     everything not yet committed: the file is truncated back to its
//     committed size (dropping written-ahead bytes too), the next offset
//     goes back to the high watermark, the index and the producer state
//     are rolled back and the buffer epoch is bumped so that every
//     appender whose batch was discarded gets the error. Nothing unwritten
//     is acknowledged, and offsets stay contiguous. A failed fsync is not
//     retried (the kernel may have dropped the dirty pages): the partition
//     refuses further appends until the log is reopened and recovered.
//   - A segment roll happens with syncMu and mu held, after flushing and
//     syncing everything pending, so a sealed segment is complete and
//     durable before the next one exists, and producer-state snapshots are
//     only ever taken of durable offsets.
//   - After a commit's fdatasync, the active segment's synced bytes older
//     than the page-cache window (Options.PageCacheWindow) are dropped
//     from the page cache (dropSynced): only clean, committed pages, so
//     no data or durability is affected, only where later reads of them
//     come from; new writes then reuse recently freed pages.
//   - The log holds a batch given to AssignInPlace only until it is
//     written or discarded, both before its Commit returns.

// tip is what readers see of the log's end: the high watermark, the last
// stable offset and how many bytes of the active segment hold them.
type tip struct {
	hw   int64
	lso  int64
	seg  *segment
	size int64
}

// commit makes the batch that ends at offset end (assigned in buffer epoch
// epoch) durable under the partition's policy, committing on behalf of every
// appender queued so far.
//
// Appenders do not queue on syncMu to learn that someone else committed
// them: one of them is elected committer (committing), the others wait for
// the broadcast that ends its commit (commitDone) and then check the durable
// offset themselves, all at once. Those already covered return; the first of
// the rest becomes the next committer.
func (p *Partition) commit(end int64, epoch uint64) error {
	for {
		// Load durable before epoch. A failure bumps the epoch before the
		// rolled-back offsets are assigned again, so a durable offset that
		// covers end because of a later epoch's commit (of other batches at
		// the same offsets) is always followed by an epoch that differs:
		// checking them the other way round could acknowledge a discarded
		// batch.
		durable := p.durable.Load()
		if p.testHookCommitCheck != nil {
			p.testHookCommitCheck()
		}
		if p.epoch.Load() != epoch {
			return p.commitLocked(end, epoch) // a failure happened: the slow path knows
		}
		if durable >= end {
			return nil
		}
		p.commitMu.Lock()
		if p.committing {
			done := p.commitDone
			p.commitMu.Unlock()
			<-done
			continue
		}
		p.committing = true
		p.commitMu.Unlock()
		err := p.commitLocked(end, epoch)
		p.commitMu.Lock()
		p.committing = false
		close(p.commitDone)
		p.commitDone = make(chan struct{})
		p.commitMu.Unlock()
		return err
	}
}

// commitLocked is commit's committer: under syncMu it writes (and syncs)
// everything pending, unless a failure or another commit already decided
// the fate of the batch ending at end.
func (p *Partition) commitLocked(end int64, epoch uint64) error {
	p.syncMu.Lock()
	defer p.syncMu.Unlock()
	if epoch != p.epoch.Load() {
		// A write or fsync failed after our batch was assigned. It is durable
		// only if it had been committed before that failure.
		if end <= p.durableAtEpochEnd[epoch] {
			return nil
		}
		return p.discardErr
	}
	if p.durable.Load() >= end {
		return nil
	}
	if p.syncErr != nil {
		return p.syncErr
	}
	return p.flush(p.settings().policy.Mode == FsyncAlways)
}

// maxSpareBuffer bounds the pending arena kept for reuse.
const maxSpareBuffer = 8 << 20

// flush writes every pending batch to the active segment, syncs if asked
// and publishes the new tip: the data up to the offset the last written
// batch ends at is committed. It runs under syncMu, without mu. Batches
// written ahead (writeAhead) while a previous commit's fdatasync ran are
// already in the file: flush writes the rest and its fdatasync covers
// both. On a write error (its own, or a write-ahead's) it rolls the
// partition back to its committed state (see the invariants above).
func (p *Partition) flush(sync bool) error {
	var start time.Time
	if p.metrics != nil {
		start = time.Now()
	}
	p.writeMu.Lock()
	p.mu.Lock()
	seg := p.active
	if err := p.aheadErr; err != nil {
		p.mu.Unlock()
		p.aheadErr = nil
		p.rollback(seg, err)
		p.writeMu.Unlock()
		return err
	}
	bufs, arena := p.takePendingLocked()
	upTo := p.nextOffset
	lso := p.lastStableLocked(upTo)
	p.mu.Unlock()
	if err := p.writeBufs(seg, bufs); err != nil {
		p.rollback(seg, err)
		p.writeMu.Unlock()
		return err
	}
	p.recycle(bufs, arena)
	size := seg.written
	p.writeMu.Unlock()

	committed := seg.visible.Load()
	if size > committed {
		p.unsynced = true
	}
	if sync && p.unsynced {
		// Appenders that assign meanwhile write their batches ahead
		// (writeAhead): they reach the page cache while the disk works,
		// beyond size, and the next commit syncs them.
		p.syncing.Store(true)
		err := seg.f.Sync()
		p.syncing.Store(false)
		if err == nil {
			err = p.fillSyncErr() // the filler's fdatasync may have covered these batches
		}
		if err != nil {
			return p.failSync(seg, ioError(fmt.Sprintf("partition %s: fsync segment %s", p.name, seg.path), err))
		}
		p.unsynced = false
		p.syncs.Add(1)
	}
	if p.metrics != nil && size > committed {
		p.metrics.commit(time.Since(start), int(size-committed))
	}
	p.durable.Store(upTo)
	seg.visible.Store(size)
	seg.end.Store(upTo)
	p.publish(&tip{hw: upTo, lso: lso, seg: seg, size: size})
	if sync {
		// After the acknowledgement is published: the first drop after a
		// reopen may cover most of a large segment.
		p.dropSynced(seg, size)
		// Also after it, and in the background (prefill.go): the zeros
		// delay neither this commit nor the next. A flush that wrote
		// nothing (a roll's or a close's) fills nothing.
		if size > committed {
			p.kickPrefill(seg, size, size-committed)
		}
	}
	return nil
}

// failSync records a failed fdatasync of the active segment seg (syncMu
// held): the kernel may have dropped the dirty pages, so every batch not
// yet committed is discarded and the partition refuses appends until it
// is reopened and recovered. The discarded batches are also cut from the
// file (with any pre-written tail), so that the recovery finds exactly
// the acknowledged ones rather than batches whose appenders got an error
// (and may send them again); a failed cut is logged, the recovery then
// keeps them. It returns serr.
func (p *Partition) failSync(seg *segment, serr error) error {
	p.writeMu.Lock() // a write-ahead in progress finishes first
	p.mu.Lock()
	p.syncErr = serr
	p.bumpEpoch(serr)
	p.dropPendingLocked()
	p.mu.Unlock()
	committed := seg.visible.Load()
	if max(seg.written, seg.filled) > committed {
		if err := seg.f.Truncate(committed); err != nil {
			p.logger.Error("cannot cut the batches whose fsync failed; the recovery will keep them", "partition", p.name, "segment", seg.path, "err", err)
		} else {
			seg.written, seg.filled = committed, 0
		}
	}
	p.writeMu.Unlock()
	p.logger.Error("fsync failed; the partition refuses appends until reopened", "partition", p.name, "err", serr)
	return serr
}

// defaultPageCacheWindow is Options.PageCacheWindow's default.
const defaultPageCacheWindow = 64 << 20

// dropChunk is the least a drop from the page cache covers: fewer, larger
// posix_fadvise calls.
const dropChunk = 4 << 20

// dropSynced drops the partition's synced bytes older than its page-cache
// window from the page cache (syncMu held, after an fdatasync that covered
// size bytes of the active segment seg, so the pages are clean and dropping
// them loses nothing): first seg's own bytes behind the window, then the
// sealed segments wholly behind it (dropSealed). A writer then reuses those
// recently freed pages rather than fresh ones. Only whole pages are
// dropped; errors are ignored (the advice is only about caching).
func (p *Partition) dropSynced(seg *segment, size int64) {
	if p.cacheWindow <= 0 {
		return
	}
	keepFrom := (size - p.cacheWindow) &^ (pageSize - 1)
	if keepFrom-seg.uncached >= dropChunk {
		dropCache(seg.f, seg.uncached, keepFrom-seg.uncached)
		seg.uncached = keepFrom
	}
	p.dropSealed(seg, max(0, p.cacheWindow-size))
}

// dropSealed drops from the page cache, whole, the sealed segments that lie
// behind the page-cache window: older than the newest sealed ones that
// hold the keep bytes the active segment active does not (syncMu held).
// The segment that straddles the window's start stays cached whole, so
// between window and window plus one segment stay cached in all. Each
// segment is dropped once: p.cacheDroppedTo records how far that went, and
// the walk from the newest segment stops there, so a commit with no new
// segment behind the window costs a few comparisons. Segments the cleaner
// swaps in below cacheDroppedTo are dropped by the cleaner itself
// (cleanGroup). Without this, a partition whose segments are smaller than
// the window (the compaction benchmark's 32 MiB) never drops anything and
// every write takes fresh pages.
func (p *Partition) dropSealed(active *segment, keep int64) {
	done := p.cacheDroppedTo.Load()
	var drop []*segment
	p.segMu.RLock()
	var kept int64
	for i := len(p.segments) - 1; i >= 0; i-- {
		s := p.segments[i]
		if s == active {
			continue
		}
		if s.end.Load() <= done {
			break
		}
		if kept < keep {
			kept += s.visible.Load()
			continue
		}
		if s.acquire() {
			drop = append(drop, s)
		}
	}
	p.segMu.RUnlock()
	if len(drop) == 0 {
		return
	}
	// drop is newest first: the newest segment's end is how far the
	// partition is now dropped.
	p.cacheDroppedTo.Store(drop[0].end.Load())
	for _, s := range slices.Backward(drop) {
		if to := s.visible.Load() &^ (pageSize - 1); to > s.uncached {
			dropCache(s.f, s.uncached, to-s.uncached)
			s.uncached = to
		}
		s.release()
	}
}

// pageSize is the unit the page cache drops (the smallest page size of the
// platforms the log runs on; a larger page is dropped only when whole).
const pageSize = 4096

// writeAhead writes the pending batches to the active segment without
// syncing them, unless someone else is writing (it never waits). Appenders
// call it while a commit's fdatasync runs, so that the copy into the page
// cache overlaps the disk's work instead of following it; the batches are
// still acknowledged only by a commit whose fdatasync started after they
// were written. A failed write is left for the next commit to roll back.
func (p *Partition) writeAhead() {
	if !p.writeMu.TryLock() {
		return
	}
	defer p.writeMu.Unlock()
	if p.aheadErr != nil {
		return
	}
	p.mu.Lock()
	if p.closed || p.sealing || p.syncErr != nil || len(p.pending) == 0 {
		p.mu.Unlock()
		return
	}
	seg := p.active
	bufs, arena := p.takePendingLocked()
	p.mu.Unlock()
	from := seg.written
	if err := p.writeBufs(seg, bufs); err != nil {
		p.aheadErr = err
		return
	}
	p.recycle(bufs, arena)
	// Hand the pages to the disk now: it writes them while the running
	// fdatasync completes and the committer answers, and the next
	// commit's fdatasync finds them written or on their way, instead of
	// submitting them itself (writeback only; durability is still the
	// next commit's fdatasync).
	startWriteback(seg.f, from, seg.written-from)
}

// takePendingLocked hands the pending batches (and the arena holding the
// copied ones) to a writer and starts empty ones. It runs under writeMu
// and mu.
func (p *Partition) takePendingLocked() (bufs [][]byte, arena []byte) {
	bufs, arena = p.pending, p.arena
	p.pending, p.arena = p.sparePending[:0], p.spareArena[:0]
	p.sparePending, p.spareArena = nil, nil
	return bufs, arena
}

// recycle keeps the written buffers for reuse (writeMu held), dropping
// their references to the appenders' batches.
func (p *Partition) recycle(bufs [][]byte, arena []byte) {
	if cap(bufs) <= maxSpareBuffer/64 {
		clear(bufs)
		p.sparePending = bufs[:0]
	}
	if cap(arena) <= maxSpareBuffer {
		p.spareArena = arena[:0]
	}
}

// dropPendingLocked forgets the batches not yet written (mu held), after a
// failure that discards them.
func (p *Partition) dropPendingLocked() {
	clear(p.pending)
	p.pending = p.pending[:0]
	p.arena = p.arena[:0]
}

// writeBufs appends bufs to seg with one writev(2) (writeMu held).
func (p *Partition) writeBufs(seg *segment, bufs [][]byte) error {
	if len(bufs) == 0 {
		return nil
	}
	total := 0
	for _, b := range bufs {
		total += len(b)
	}
	n, err := writeVectors(seg.f, bufs)
	seg.written += int64(n)
	if err == nil && n != total {
		err = fmt.Errorf("short write: %d of %d bytes", n, total)
	}
	if err != nil {
		return ioError(fmt.Sprintf("partition %s: append to segment %s", p.name, seg.path), err)
	}
	return nil
}

// rollback undoes every assignment after the committed state, after a
// failed write: the segment is cut back to its committed size (which also
// drops batches written ahead), the next offset goes back to the durable
// one. It runs under syncMu and writeMu and takes mu.
func (p *Partition) rollback(seg *segment, cause error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.bumpEpoch(cause)
	p.dropPendingLocked()
	committed := seg.visible.Load()
	seg.written = committed
	seg.filled = 0 // the truncation below cuts the pre-written tail too
	// The failed write may have left part of the buffer in the file.
	if err := seg.f.Truncate(committed); err != nil {
		p.syncErr = fmt.Errorf("%w (and truncating the partial write failed: %v)", cause, err)
		p.logger.Error("cannot undo a failed write; the partition refuses appends until reopened", "partition", p.name, "err", err)
		return
	}
	if _, err := seg.f.Seek(committed, 0); err != nil {
		p.syncErr = fmt.Errorf("%w (and seeking back failed: %v)", cause, err)
		return
	}
	p.nextOffset = p.durable.Load()
	seg.assigned = committed
	if err := p.rebuildActiveIndex(seg); err != nil {
		p.syncErr = fmt.Errorf("%w (and rebuilding the index failed: %v)", cause, err)
		return
	}
	if err := p.reloadProducerState(); err != nil {
		p.syncErr = fmt.Errorf("%w (and reloading producer state failed: %v)", cause, err)
		return
	}
	p.logger.Warn("append failed; uncommitted batches discarded", "partition", p.name, "next_offset", p.nextOffset, "err", cause)
}

// rebuildActiveIndex rebuilds seg's index from its committed bytes.
func (p *Partition) rebuildActiveIndex(seg *segment) error {
	x := newSegIndex()
	_, _, err := scanSegment(seg.f, 0, seg.base, seg.written, func(h batchInfo) error {
		x.add(uint32(h.base-seg.base), uint32(h.pos), h.size, h.maxTs, p.indexInterval)
		return nil
	})
	if err != nil {
		return err
	}
	seg.idx.mu.Lock()
	seg.idx.offs, seg.idx.times, seg.idx.maxTs = x.offs, x.times, x.maxTs
	seg.idx.mu.Unlock()
	seg.idx.bytesSince = x.bytesSince
	return nil
}

// bumpEpoch starts a new buffer epoch after a failure: appenders of older
// epochs whose batches were not committed get cause. It runs under syncMu
// and mu.
func (p *Partition) bumpEpoch(cause error) {
	if p.durableAtEpochEnd == nil {
		p.durableAtEpochEnd = make(map[uint64]int64)
	}
	p.durableAtEpochEnd[p.epoch.Load()] = p.durable.Load()
	p.discardErr = cause
	p.epoch.Add(1)
}

// publish makes t visible to readers and wakes waiters (Wait) and
// watchers (Watch).
func (p *Partition) publish(t *tip) {
	p.tip.Store(t)
	p.notifyMu.Lock()
	close(p.notify)
	p.notify = make(chan struct{})
	p.wakeWatchersLocked(t)
	p.notifyMu.Unlock()
}

// syncNow fsyncs the active segment if it has unsynced writes (the
// FsyncInterval ticker). The fsync runs outside syncMu, so commits (which
// under FsyncInterval only write) are not held up by it.
func (p *Partition) syncNow() error {
	p.syncMu.Lock()
	if !p.unsynced || p.syncErr != nil || p.closedSync {
		p.syncMu.Unlock()
		return nil
	}
	seg := p.active
	if !seg.acquire() {
		p.syncMu.Unlock()
		return nil
	}
	p.unsynced = false // a write during the fsync sets it again
	p.syncMu.Unlock()
	defer seg.release()
	if err := seg.f.Sync(); err != nil {
		serr := ioError(fmt.Sprintf("partition %s: fsync segment %s", p.name, seg.path), err)
		p.syncMu.Lock()
		p.mu.Lock()
		if p.syncErr == nil && !p.closedSync {
			p.syncErr = serr
			p.bumpEpoch(serr)
			p.logger.Error("fsync failed; the partition refuses appends until reopened", "partition", p.name, "err", err)
		}
		p.mu.Unlock()
		p.syncMu.Unlock()
		return serr
	}
	p.syncs.Add(1)
	return nil
}

// roll seals the active segment and starts a new one at the next offset. It
// flushes and syncs everything pending first. If onlyIfFull, it rolls only
// when the active segment cannot take another want bytes.
func (p *Partition) roll(onlyIfFull bool, want int64) error {
	p.syncMu.Lock()
	defer p.syncMu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return p.closedErr()
	}
	if p.syncErr != nil {
		return p.syncErr
	}
	old := p.active
	if onlyIfFull && (old.assigned == 0 || old.assigned+want <= p.settings().segBytes) {
		return nil
	}
	if old.assigned == 0 {
		return nil // nothing to seal
	}
	// Sync even if nothing is pending: an interval fsync (syncNow) clears
	// unsynced before its fsync completes, and the recovery point written
	// below declares the whole sealed segment durable.
	p.unsynced = true
	if err := p.flushLocked(true); err != nil {
		return err
	}
	if err := p.trimPrefill(old); err != nil {
		return err
	}
	if err := old.writeIndexes(p.fs); err != nil {
		return err
	}
	old.idx.thin(sealedIndexGap)
	if err := p.snapshotProducers(p.nextOffset); err != nil {
		return err
	}
	seg, err := p.createSegment(p.nextOffset)
	if err != nil {
		return err
	}
	p.segMu.Lock()
	p.segments = append(p.segments, seg)
	p.segMu.Unlock()
	p.active = seg
	p.unsynced = false
	if err := p.writeRecoveryPoint(recoveryPoint{Offset: seg.base, Segment: seg.base, Position: 0}); err != nil {
		return err
	}
	t := *p.tip.Load()
	t.seg, t.size = seg, 0
	p.publish(&t)
	if rt := p.remoteTier(); rt != nil {
		rt.SegmentRolled(p.topic.name, p.id)
	}
	return nil
}

// flushLocked writes and (if sync) fsyncs everything pending. It runs with
// both syncMu and mu held.
func (p *Partition) flushLocked(sync bool) error {
	// flush takes writeMu and mu (rollback too): release mu around the
	// call. syncMu keeps other committers out, and appenders that slip in
	// meanwhile are covered by the following check. sealing keeps their
	// write-aheads out: a batch taken by a write-ahead after flush released
	// writeMu would land in the segment after this flush's fdatasync, and
	// roll and close (which read and cut the segment's written size next)
	// would seal it unsynced, or race its write. flush itself takes writeMu
	// first, so it waits for a write-ahead that started before sealing was
	// set and syncs what that wrote.
	if !p.sealing {
		p.sealing = true
		defer func() { p.sealing = false }() // mu is held again on return
	}
	p.mu.Unlock()
	err := p.flush(sync)
	p.mu.Lock()
	if err != nil {
		return err
	}
	if p.syncErr != nil { // the fsync of a pre-written tail failed
		return p.syncErr
	}
	if len(p.pending) > 0 {
		return p.flushLocked(sync)
	}
	return nil
}

// createSegment creates an empty segment file at base and syncs the
// directory (mu held, or before the partition is shared). When the sync
// fails the file is removed: after a failed roll the partition goes on in
// the previous segment, past base, and a segment file that starts behind
// its predecessor's end makes the next open refuse the partition. If it
// cannot be removed either, the partition refuses appends until reopened
// (the previous segment then still ends at base).
func (p *Partition) createSegment(base int64) (*segment, error) {
	path := p.dir + string(os.PathSeparator) + segmentName(base) + logSuffix
	f, err := p.fs.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, ioError("create segment "+path, err)
	}
	if err := p.fs.SyncDir(p.dir); err != nil {
		f.Close()
		err = ioError("sync directory "+p.dir, err)
		if rerr := p.fs.Remove(path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			p.syncErr = fmt.Errorf("%w (and removing the new segment %s failed: %v; the partition refuses appends until reopened)", err, path, rerr)
			p.logger.Error("cannot remove the segment of a failed roll; the partition refuses appends until reopened", "partition", p.name, "segment", path, "err", rerr)
			return nil, p.syncErr
		}
		return nil, err
	}
	return newSegment(p.dir, base, f), nil
}
