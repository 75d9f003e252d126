package logstore

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/record"
)

// Partition is one append-only sequence of record batches. All its methods
// are safe for concurrent use: many readers and appenders at once.
type Partition struct {
	topic         *Topic
	id            int32
	name          string // "topic/partition", for messages
	dir           string
	fs            FS
	logger        *slog.Logger
	set           atomic.Pointer[partSettings] // from the topic's config; replaced by AlterConfig
	indexInterval int
	cacheWindow   int64       // Options.PageCacheWindow (<= 0: never drop)
	prefill       int64       // Options.SegmentPrefill (<= 0: off)
	repair        bool        // Options.RepairCorruption
	metrics       *logMetrics // nil = none

	// mu is the append lock (see commit.go). It guards the fields below
	// down to syncMu, the active segment's assigned size and index
	// counters, and the producer state.
	mu         sync.Mutex
	nextOffset int64
	pending    [][]byte // batches assigned and not yet written, in offset order
	arena      []byte   // copies of the batches given to Assign (pending points into it)
	active     *segment
	closed     bool
	deleted    bool
	sealing    bool // roll or close is flushing the active segment: writeAhead leaves the pending batches to it
	pstate     *producerState
	epochs     leaderEpochs // leader-epoch cache, not under mu: own lock and atomic (epochs.go)

	// syncMu is held by the one committer. It guards the fields below, and
	// each segment's written size and file position. Fields also marked
	// (mu) are written with both locks held.
	syncMu            sync.Mutex
	durable           atomic.Int64 // offset below which everything is committed (written under syncMu)
	unsynced          bool
	syncing           atomic.Bool      // a commit's fdatasync is running (set under syncMu)
	epoch             atomic.Uint64    // (mu) buffer epoch, bumped on failures
	durableAtEpochEnd map[uint64]int64 // (mu)
	discardErr        error            // (mu)
	syncErr           error            // (mu) sticky: no appends until reopened
	closedSync        bool
	// cacheDroppedTo is the offset below which every sealed segment has
	// been dropped from the page cache whole, as behind the page-cache
	// window (dropSealed; written under syncMu, read by the cleaner).
	cacheDroppedTo atomic.Int64
	// filling is set while the partition's filler (prefill.go) runs;
	// fillWG lets close wait for it.
	filling atomic.Bool
	fillWG  sync.WaitGroup
	fillErr atomic.Pointer[error] // the filler's failed fdatasync, for the next commit
	// fillFile is the filler's own descriptor of fillFileSeg's file (only
	// the running filler, or close after it, touches them).
	fillFile    File
	fillFileSeg *segment

	// writeMu is held by whoever writes pending batches to the active
	// segment: the committer, or an appender writing ahead while the
	// committer's fdatasync runs (see commit.go). It guards the fields
	// below, each segment's written size and its file position. Taken
	// after syncMu and before mu.
	writeMu      sync.Mutex
	aheadErr     error    // a write-ahead failed: the next commit rolls back
	sparePending [][]byte // for reuse as pending
	spareArena   []byte   // for reuse as arena

	// commitMu guards the election of the committer (see commit).
	commitMu   sync.Mutex
	committing bool
	commitDone chan struct{}

	segMu    sync.RWMutex
	segments []*segment // ordered by base offset; the last is the active one

	tip      atomic.Pointer[tip]
	logStart atomic.Int64 // first offset on the local disk (remote.go)
	// deleteFloor is the DeleteRecords offset (alter.go): nothing below it
	// is served from either tier.
	deleteFloor atomic.Int64
	// retentionBlocked is the bytes local retention would delete but keeps
	// because they are not yet uploaded (remote storage).
	retentionBlocked atomic.Int64
	blockedRuns      atomic.Int64 // consecutive retention runs that found some
	notifyMu         sync.Mutex
	notify           chan struct{}
	watchers         []*watcher    // registered by Watch, woken by publish (notifyMu)
	closing          chan struct{} // closed by close; wakes waiters

	// testHookCommitCheck, if set (by tests, before any append), runs in
	// commit between its loads of the durable offset and the epoch.
	testHookCommitCheck func()

	cleaner cleanerState // compaction (cleaner.go)

	appendedBatches atomic.Int64
	appendedRecords atomic.Int64
	appendedBytes   atomic.Int64
	syncs           atomic.Int64
}

// partSettings is what the data path reads of the topic's configuration.
// It is replaced whole when the configuration changes.
type partSettings struct {
	policy        FsyncPolicy
	segBytes      int64
	maxBatch      int64 // largest batch a producer may append (max.message.bytes)
	logAppendTime bool
	cleanup       CleanupPolicy
}

func (p *Partition) settings() *partSettings { return p.set.Load() }

// Topic returns the partition's topic name.
func (p *Partition) Topic() string { return p.topic.name }

// ID returns the partition number.
func (p *Partition) ID() int32 { return p.id }

func (p *Partition) closedErr() error {
	if p.deleted {
		return fmt.Errorf("partition %s: %w (topic deleted)", p.name, ErrClosed)
	}
	return fmt.Errorf("partition %s: %w", p.name, ErrClosed)
}

// Append stores one Kafka v2 record batch exactly as received, assigning only
// its base offset (and, when the topic uses LogAppendTime, its timestamp). It
// verifies the batch's CRC first (ErrCorrupt). For idempotent and
// transactional producers (ProducerID >= 0) it enforces per-producer
// sequence numbers: a retried duplicate returns the original offsets with
// Duplicate set and writes nothing, a gap returns ErrOutOfOrderSequence, an
// old epoch ErrProducerFenced. It returns only once the batch is durable
// under the topic's fsync policy, and never acknowledges a batch that was not
// written (a full disk returns an error matching ErrDiskFull). The caller's
// slice is neither modified nor retained. Cancelling ctx before the batch is
// assigned offsets abandons the append; afterwards the append completes.
func (p *Partition) Append(ctx context.Context, batch []byte) (AppendResult, error) {
	a, err := p.Assign(ctx, batch)
	if err != nil {
		return AppendResult{}, err
	}
	return a.Commit()
}

// Assigned is a batch that Assign gave offsets to and that is not yet
// acknowledged. Commit waits until it is durable.
type Assigned struct {
	p       *Partition
	end     int64 // the offset after the batch
	epoch   uint64
	res     AppendResult
	records int64
	size    int64
}

// Result is what Commit will return on success: the offsets are known as
// soon as the batch is assigned.
func (a Assigned) Result() AppendResult { return a.res }

// Commit makes the assigned batch durable under the topic's fsync policy
// (sharing the write and fsync with every batch assigned meanwhile) and
// returns its offsets, or the error that kept it from the disk: a batch is
// never acknowledged unless it was written. Every Assigned must be
// committed, even by a caller no longer interested in the answer, or its
// batch waits for the next commit of the partition to be written.
func (a Assigned) Commit() (AppendResult, error) {
	if err := a.p.commit(a.end, a.epoch); err != nil {
		return AppendResult{}, err
	}
	if !a.res.Duplicate {
		a.p.appendedBatches.Add(1)
		a.p.appendedRecords.Add(a.records)
		a.p.appendedBytes.Add(a.size)
	}
	return a.res, nil
}

// Assign is the first half of Append: it checks the batch, applies the
// producer-state rules and gives it its offsets, so that it is ordered
// before anything assigned later, without waiting for the disk. Commit is
// the second half. A caller that answers requests in order while they are
// pipelined (the Kafka listener) assigns each request's batches as it
// reads it and commits them afterwards: the batches of several requests
// then share one write and fsync.
func (p *Partition) Assign(ctx context.Context, batch []byte) (Assigned, error) {
	return p.assign(ctx, batch, false)
}

// AssignInPlace is Assign for a caller that hands batch over until its
// Commit returns: instead of copying it, the log patches batch in place
// (its base offset, leader epoch and, with LogAppendTime, its timestamp)
// and writes it to the segment from there, so the bytes go from the
// caller's buffer to the file without another copy. The caller must not
// modify or reuse batch until Commit has returned (with or without an
// error); after that the log holds no reference to it. The Kafka listener
// assigns the batches of a request this way, straight from the buffer the
// request was read into.
func (p *Partition) AssignInPlace(ctx context.Context, batch []byte) (Assigned, error) {
	return p.assign(ctx, batch, true)
}

func (p *Partition) assign(ctx context.Context, batch []byte, inPlace bool) (Assigned, error) {
	h, err := record.Verify(batch)
	if err != nil {
		return Assigned{}, fmt.Errorf("partition %s: append: %w", p.name, err)
	}
	set := p.settings()
	size := int64(len(batch))
	if size > set.segBytes {
		return Assigned{}, fmt.Errorf("partition %s: append: %w: %d bytes, the segment size is %d", p.name, ErrBatchTooLarge, size, set.segBytes)
	}
	if size > set.maxBatch && !h.IsControl() {
		return Assigned{}, fmt.Errorf("partition %s: append: %w: %d bytes, the topic's max.message.bytes is %d", p.name, ErrBatchTooLarge, size, set.maxBatch)
	}
	if set.cleanup.Compact() && !h.IsControl() {
		if err := CheckKeys(batch); err != nil {
			return Assigned{}, fmt.Errorf("partition %s: append: %w", p.name, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return Assigned{}, err
	}
	p.mu.Lock()
	for {
		if p.closed {
			p.mu.Unlock()
			return Assigned{}, p.closedErr()
		}
		if p.syncErr != nil {
			err := p.syncErr
			p.mu.Unlock()
			return Assigned{}, err
		}
		if p.active.assigned == 0 || p.active.assigned+size <= set.segBytes {
			break
		}
		p.mu.Unlock()
		if err := p.roll(true, size); err != nil {
			return Assigned{}, err
		}
		p.mu.Lock()
	}

	if h.ProducerID >= 0 && p.pstate != nil {
		dup, isDup, err := p.pstate.checkAppend(h)
		if err != nil {
			p.mu.Unlock()
			return Assigned{}, fmt.Errorf("partition %s: %w", p.name, err)
		}
		if isDup {
			epoch := p.epoch.Load()
			p.mu.Unlock()
			// The original may still be on its way to the disk: Commit
			// waits for it.
			dup.Duplicate = true
			return Assigned{p: p, end: dup.LastOffset + 1, epoch: epoch, res: dup}, nil
		}
	}

	seg := p.active
	if seg.assigned == 0 {
		seg.firstAppend.Store(time.Now().UnixMilli())
	}
	base := p.nextOffset
	b := batch
	if !inPlace {
		start := len(p.arena)
		p.arena = append(p.arena, batch...)
		b = p.arena[start:len(p.arena):len(p.arena)]
	}
	p.pending = append(p.pending, b)
	record.SetBaseOffset(b, base)
	record.SetPartitionLeaderEpoch(b, p.epochs.current.Load()) // the current leader epoch (epochs.go)
	appendTime := int64(-1)
	if set.logAppendTime {
		appendTime = time.Now().UnixMilli()
		record.SetLogAppendTime(b, appendTime)
	}
	h, _ = record.ParseHeader(b) // verified above; now with our offset (and time)
	seg.idx.add(uint32(base-seg.base), uint32(seg.assigned), len(b), h.MaxTimestamp, p.indexInterval)
	seg.assigned += size
	p.nextOffset = h.LastOffset() + 1
	if h.ProducerID >= 0 && p.pstate != nil {
		ts := appendTime
		if ts < 0 {
			ts = time.Now().UnixMilli()
		}
		p.pstate.onAppendBatch(h, b, ts)
	}
	end, epoch := p.nextOffset, p.epoch.Load()
	p.mu.Unlock()
	p.topic.log.appendCount.Add(1)
	if p.syncing.Load() && set.policy.Mode == FsyncAlways {
		// A commit's fdatasync is running: put the batch in the page cache
		// now, so that the next commit finds it written and the disk
		// gets it without waiting for the copy (commit.go).
		p.writeAhead()
	}
	return Assigned{p: p, end: end, epoch: epoch, records: int64(h.NumRecords), size: size,
		res: AppendResult{BaseOffset: base, LastOffset: h.LastOffset(), LogAppendTime: appendTime}}, nil
}

// AppendRecords encodes recs as one uncompressed batch (timestamps as given;
// a zero timestamp means now) and appends it.
func (p *Partition) AppendRecords(ctx context.Context, recs []record.Record) (AppendResult, error) {
	if len(recs) == 0 {
		return AppendResult{}, fmt.Errorf("partition %s: append: no records", p.name)
	}
	now := time.Now().UnixMilli()
	stamped := recs
	for i := range recs {
		if recs[i].Timestamp == 0 {
			if &stamped[0] == &recs[0] {
				stamped = append([]record.Record(nil), recs...)
			}
			stamped[i].Timestamp = now
		}
	}
	b, err := record.AppendBatch(nil, stamped, record.BatchOptions{})
	if err != nil {
		return AppendResult{}, fmt.Errorf("partition %s: encode batch: %w", p.name, err)
	}
	return p.Append(ctx, b)
}

// Offsets returns the log start offset, the high watermark and the last
// stable offset.
//
// For a topic with remote storage the log start offset covers both tiers
// (see remote.go).
func (p *Partition) Offsets() (logStart, highWatermark, lastStable int64) {
	t := p.tip.Load()
	return p.logStartOffset(), t.hw, t.lso
}

// Wait blocks until the high watermark is above offset (data at offset is
// readable), ctx is done (its error is returned) or the partition is closed
// (ErrClosed). Any number of goroutines may wait at once.
func (p *Partition) Wait(ctx context.Context, offset int64) error {
	return p.waitTip(ctx, func(t *tip) bool { return t.hw > offset })
}

// WaitStable blocks until the last stable offset is above offset (data at
// offset is readable under read_committed: the transaction holding it back
// has ended), or ctx is done, or the partition is closed. It wakes on the
// append of the transaction marker, like Wait on any append.
func (p *Partition) WaitStable(ctx context.Context, offset int64) error {
	return p.waitTip(ctx, func(t *tip) bool { return t.lso > offset })
}

// watcher is a Watch registration: ch gets a send once the published tip
// is past offset (its high watermark, or with stable its last stable
// offset).
type watcher struct {
	offset int64
	stable bool
	ch     chan<- struct{}
}

func (w *watcher) ready(t *tip) bool {
	if w.stable {
		return t.lso > w.offset
	}
	return t.hw > w.offset
}

// wake sends on w.ch without blocking: a full channel already holds a
// wake-up.
func (w *watcher) wake() {
	select {
	case w.ch <- struct{}{}:
	default:
	}
}

// Watch asks for one send on ch (never blocking: give ch room for one)
// once data at offset is readable: the high watermark is above offset,
// or with stable the last stable offset is (the transaction holding it
// back has ended; appends alone do not wake it). If that already holds
// the send happens at once. It is Wait without a goroutine per wait: a
// caller waiting on several partitions registers one channel with each
// and is woken by the publishing committer itself. The returned function
// removes the registration (whether or not it fired); call it when done
// waiting. A closed partition sends nothing.
func (p *Partition) Watch(offset int64, stable bool, ch chan<- struct{}) (stop func()) {
	w := &watcher{offset: offset, stable: stable, ch: ch}
	p.notifyMu.Lock()
	if w.ready(p.tip.Load()) {
		p.notifyMu.Unlock()
		w.wake()
		return func() {}
	}
	p.watchers = append(p.watchers, w)
	p.notifyMu.Unlock()
	return func() { p.unwatch(w) }
}

// unwatch removes w if it is still registered.
func (p *Partition) unwatch(w *watcher) {
	p.notifyMu.Lock()
	defer p.notifyMu.Unlock()
	for i, x := range p.watchers {
		if x == w {
			last := len(p.watchers) - 1
			p.watchers[i] = p.watchers[last]
			p.watchers[last] = nil
			p.watchers = p.watchers[:last]
			return
		}
	}
}

// wakeWatchersLocked wakes and removes the watchers whose data t makes
// readable (notifyMu held).
func (p *Partition) wakeWatchersLocked(t *tip) {
	kept := p.watchers[:0]
	for _, w := range p.watchers {
		if w.ready(t) {
			w.wake()
			continue
		}
		kept = append(kept, w)
	}
	clear(p.watchers[len(kept):])
	p.watchers = kept
}

// waitTip blocks until ready holds for the published tip.
func (p *Partition) waitTip(ctx context.Context, ready func(*tip) bool) error {
	for {
		p.notifyMu.Lock()
		ch := p.notify
		p.notifyMu.Unlock()
		if ready(p.tip.Load()) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-p.closing:
			return p.closedErrNoLock()
		}
	}
}

func (p *Partition) closedErrNoLock() error {
	return fmt.Errorf("partition %s: %w", p.name, ErrClosed)
}

// AbortedTransactions lists the aborted transactions that overlap [from, to),
// for read_committed fetches.
func (p *Partition) AbortedTransactions(from, to int64) []AbortedTxn {
	if rt := p.remoteTier(); rt != nil && from < p.logStart.Load() {
		out := rt.AbortedTransactions(p.topic.name, p.id, from, to)
		for _, a := range p.localAbortedTxns(from, to) {
			if !slices.Contains(out, a) { // a transaction that spans both tiers
				out = append(out, a)
			}
		}
		return out
	}
	return p.localAbortedTxns(from, to)
}

// localAbortedTxns is AbortedTransactions of the local producer state.
func (p *Partition) localAbortedTxns(from, to int64) []AbortedTxn {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pstate == nil {
		return nil
	}
	return p.pstate.abortedTxns(from, to)
}

// lastStableLocked is the last stable offset for high watermark hw (mu held).
func (p *Partition) lastStableLocked(hw int64) int64 {
	if p.pstate == nil {
		return hw
	}
	return p.pstate.lastStable(hw)
}

// Stats returns a snapshot of the partition's size and counters.
func (p *Partition) Stats() PartitionStats {
	t := p.tip.Load()
	p.segMu.RLock()
	n := len(p.segments)
	var bytes int64
	for _, s := range p.segments {
		if s == t.seg {
			bytes += t.size
		} else {
			bytes += s.visible.Load()
		}
	}
	p.segMu.RUnlock()
	return PartitionStats{
		Topic:                 p.topic.name,
		Partition:             p.id,
		Segments:              n,
		Bytes:                 bytes,
		LogStartOffset:        p.logStartOffset(),
		LocalLogStart:         p.logStart.Load(),
		HighWatermark:         t.hw,
		LastStable:            t.lso,
		AppendedBatches:       p.appendedBatches.Load(),
		AppendedRecords:       p.appendedRecords.Load(),
		AppendedBytes:         p.appendedBytes.Load(),
		Syncs:                 p.syncs.Load(),
		RetentionBlockedBytes: p.retentionBlocked.Load(),
		Cleaner:               p.CleanerStats(),
	}
}

// SegmentInfo describes one segment of a partition.
type SegmentInfo struct {
	Base         int64 // offset of its first batch
	Bytes        int64 // visible bytes
	MaxTimestamp int64 // newest batch timestamp (epoch ms), what time retention goes by; math.MinInt64 when it has none
}

// Segments returns the partition's segments, oldest first; the last is the
// active one, which DeleteRecords and retention never remove.
func (p *Partition) Segments() []SegmentInfo {
	t := p.tip.Load()
	p.segMu.RLock()
	defer p.segMu.RUnlock()
	out := make([]SegmentInfo, len(p.segments))
	for i, s := range p.segments {
		out[i] = SegmentInfo{Base: s.base, Bytes: s.visible.Load(), MaxTimestamp: s.idx.maxTimestamp()}
		if s == t.seg {
			out[i].Bytes = t.size
		}
	}
	return out
}

// segmentFor returns the segment holding offset (acquired; release it), or
// nil if none.
func (p *Partition) segmentFor(offset int64) *segment {
	p.segMu.RLock()
	defer p.segMu.RUnlock()
	i := sort.Search(len(p.segments), func(i int) bool { return p.segments[i].base > offset })
	if i == 0 {
		return nil
	}
	s := p.segments[i-1]
	if !s.acquire() {
		return nil
	}
	return s
}

// segmentsFrom returns the acquired segments from the one holding offset on.
func (p *Partition) segmentsFrom(offset int64) []*segment {
	p.segMu.RLock()
	defer p.segMu.RUnlock()
	i := sort.Search(len(p.segments), func(i int) bool { return p.segments[i].base > offset })
	if i > 0 {
		i--
	}
	var out []*segment
	for _, s := range p.segments[i:] {
		if s.acquire() {
			out = append(out, s)
		}
	}
	return out
}
