package logstore

// The log cleaner: compaction of topics whose cleanup policy includes
// compact, as Kafka's log cleaner does it.
//
// A partition's log is split at the first dirty offset (the cleaner
// checkpoint): offsets below it were compacted by an earlier pass, the
// closed segments from it on are dirty. A pass
//
//  1. finds the cleanable segments: closed ones (never the active
//     segment), wholly below the last stable offset (an open transaction may
//     still abort), and older than min.compaction.lag.ms;
//  2. runs when the dirty share of their bytes reaches
//     min.cleanable.dirty.ratio, or when the oldest dirty record is older
//     than max.compaction.lag.ms (or when forced);
//  3. reads the dirty segments into an offset map (key hash -> offset of the
//     key's latest record; fixed memory, see offsetmap.go), stopping at the
//     segment where the map fills: that is where the pass ends;
//  4. rewrites every segment below that end, from the log start, grouped so
//     that a group's output stays within segment.bytes, keeping a record
//     only if it is its key's latest (or its key is not in the map),
//     removing records of aborted transactions and records without a key,
//     tombstones (null values) and transaction markers once they have been
//     in the cleaned part of the log for delete.retention.ms, and keeping
//     an empty batch in place of a producer's last batch so that
//     idempotence survives. Batches keep their offsets; a run of batches
//     removed whole is replaced by one empty batch covering their offsets
//     (record.AppendEmptyBatch), so that batches still follow each other
//     without gaps (the log's check against damaged base offsets, which
//     the CRC does not cover, stays as strict as before) while the offsets
//     of removed records are gaps inside batches, which readers skip;
//     A dirty segment that the map shows wholly superseded, and that holds
//     no batch needing a look (control, transactional, a producer's
//     remembered batch), is not read again: its output is the empty
//     batches covering its offsets (see pass), so a pass reads the dirty
//     part once plus what of it stays;
//  5. replaces each group's segments by its output atomically (below), and
//     moves the first dirty offset to the pass's end.
//
// Crash safety. A group's output is written to <base>.log.cleaned and
// fsynced; it is then renamed to <base>.<last base>.swap (the names say
// which segments it replaces) and the directory fsynced: from that moment
// the swap is decided. The old segments' index files and logs other than
// <base>.log are removed, and the swap file is renamed over <base>.log,
// which replaces the first old log in one step. Open finishes an
// interrupted swap the same way and deletes stray .cleaned files, so a
// crash at any moment leaves either the old segments or the new one, never
// a mix.
//
// Delete horizon. A tombstone or marker is removed only once a pass that
// covered its offset completed at least delete.retention.ms ago (the pass
// history is kept in the cleaner checkpoint), so a consumer that reads the
// log from the start within that time sees every deletion.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/sluicehq/sluice/record"
)

// CleanerOptions configure the log cleaner (Options.Cleaner).
type CleanerOptions struct {
	// Interval is how often the background cleaner looks for partitions to
	// compact (Kafka's log.cleaner.backoff.ms); 0 = 15 s, negative = no
	// background cleaner (call Log.Clean yourself).
	Interval time.Duration
	// DedupeBufferBytes is the memory of one pass's offset map (Kafka's
	// log.cleaner.dedupe.buffer.size): 25 bytes per distinct key of the
	// dirty segments (a 24-byte slot and a byte of the latest-record
	// bitmap), filled to 90 %. 0 = 32 MiB (about 1.2 M keys per pass).
	DedupeBufferBytes int
	// IOBytesPerSecond bounds what the cleaner reads plus writes
	// (log.cleaner.io.max.bytes.per.second); 0 = unlimited.
	IOBytesPerSecond float64
	// MaxDutyCycle is the share of wall time a pass may work while the
	// log takes appends (an append within the last second); it rests the
	// remainder, which bounds it to that share of one core and leaves the
	// CPU to the produce path (cleanerduty.go). A pass on an idle log runs
	// at full speed. 0 = 0.25; 1 = no duty cycle. It applies to every
	// pass: the background cleaner's, Log.Clean and Partition.Compact.
	MaxDutyCycle float64
}

const (
	defaultCleanerInterval = 15 * time.Second
	defaultDedupeBuffer    = 32 << 20
	cleanerWriteChunk      = 1 << 20
	cleanerCheckpointFile  = "cleaner-checkpoint"
	cleanedSuffix          = ".cleaned"
	swapSuffix             = ".swap"
	maxPassHistory         = 64
)

// CleanerStats is the cleaner's progress on one partition.
type CleanerStats struct {
	Passes         int64         // completed passes since Open
	BytesRead      int64         // since Open
	BytesWritten   int64         // since Open
	RecordsRemoved int64         // since Open
	LastPass       time.Time     // when the last pass completed (zero: none recorded)
	LastPassTook   time.Duration // how long it ran
	FirstDirty     int64         // offsets below were compacted
	DirtyRatio     float64       // uncleaned share of the cleanable bytes, as of the last look
	LastError      string        // the last pass's error, "" if it succeeded
	Rested         time.Duration // since Open: time passes rested to leave the CPU to appends (MaxDutyCycle)
	// Worked is the wall time passes worked while the log took appends,
	// since Open: what the duty cycle counts against Rested (about
	// MaxDutyCycle/(1-MaxDutyCycle) of it).
	Worked time.Duration
	// CPU is the CPU time (user and system) of the passes since Open, as
	// the operating system counts it for the thread that ran them (0 where
	// it cannot: see threadCPU).
	CPU time.Duration
}

// cleanerCheckpoint is the cleaner's durable state of a partition.
type cleanerCheckpoint struct {
	FirstDirty int64      `json:"first_dirty"`
	Passes     []passMark `json:"passes"` // oldest first
}

// passMark records that a pass completed at TimeMs having cleaned every
// offset below End.
type passMark struct {
	End    int64 `json:"end"`
	TimeMs int64 `json:"time_ms"`
}

// cleanerState is a partition's cleaner bookkeeping.
type cleanerState struct {
	mu        sync.Mutex // serialises passes, retention deletions and DeleteRecords on the partition
	ckpt      cleanerCheckpoint
	abort     chan struct{} // closed by close: a pass stops at the next batch
	abortOnce sync.Once
	// rewriting is set while a pass may rewrite segments (from before its
	// policy check to its end). A compacted topic switched to delete with
	// remote storage may still be in a pass that merges sealed segments:
	// SealedSegments offers none for upload meanwhile, or the uploader
	// would upload one the pass is about to replace by a merged segment
	// starting below the remote end, which it would then never upload.
	rewriting atomic.Bool
	// unfinished is a swap that a pass made in memory but whose files a
	// failure left half done (mu): see finishSwapLocked.
	unfinished *unfinishedSwap

	statsMu sync.Mutex
	stats   CleanerStats
}

// horizon is the offset below which tombstones and markers may go: the end
// of the newest pass that completed at least retention before now.
func (c *cleanerCheckpoint) horizon(nowMs int64, retention time.Duration) int64 {
	h := int64(0)
	for _, m := range c.Passes {
		if m.TimeMs <= nowMs-retention.Milliseconds() {
			h = max(h, m.End)
		}
	}
	return h
}

// record adds a completed pass and forgets what no horizon will need.
func (c *cleanerCheckpoint) record(m passMark, nowMs int64, retention time.Duration) {
	c.FirstDirty = m.End
	c.Passes = append(c.Passes, m)
	keepFrom := 0
	for i, p := range c.Passes {
		if p.TimeMs <= nowMs-retention.Milliseconds() {
			keepFrom = i // older qualifying passes have smaller ends
		}
	}
	c.Passes = c.Passes[keepFrom:]
	if len(c.Passes) > maxPassHistory {
		c.Passes = slices.Clone(c.Passes[len(c.Passes)-maxPassHistory:])
	}
}

func (p *Partition) loadCleanerCheckpoint() {
	b, err := readFile(p.fs, filepath.Join(p.dir, cleanerCheckpointFile))
	if err != nil {
		return // none yet: everything is dirty
	}
	var c cleanerCheckpoint
	if err := json.Unmarshal(b, &c); err != nil || c.FirstDirty < 0 {
		p.logger.Warn("ignoring unreadable cleaner checkpoint; the next pass cleans from the log start", "partition", p.name, "err", err)
		return
	}
	p.cleaner.ckpt = c
	p.cleaner.stats.FirstDirty = c.FirstDirty
	if n := len(c.Passes); n > 0 {
		p.cleaner.stats.LastPass = time.UnixMilli(c.Passes[n-1].TimeMs) // from before this open
	}
}

func (p *Partition) writeCleanerCheckpoint() error {
	b, err := json.Marshal(p.cleaner.ckpt)
	if err != nil {
		return err
	}
	return writeFileAtomic(p.fs, filepath.Join(p.dir, cleanerCheckpointFile), append(b, '\n'))
}

// finishSwaps completes swaps that a crash interrupted and removes the
// output of interrupted passes (see Crash safety above). Open runs it
// before it lists the segments.
func (p *Partition) finishSwaps() error {
	entries, err := p.fs.ReadDir(p.dir)
	if err != nil {
		return ioError("list partition "+p.dir, err)
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, cleanedSuffix):
			if err := p.fs.Remove(filepath.Join(p.dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return ioError("remove interrupted cleaner output "+name, err)
			}
		case strings.HasSuffix(name, swapSuffix):
			first, last, ok := parseSwapName(name)
			if !ok {
				p.logger.Warn("ignoring unexpected file", "partition", p.name, "file", name)
				continue
			}
			p.logger.Info("finishing an interrupted compaction swap", "partition", p.name, "file", name)
			var replaced []int64
			for _, x := range entries {
				if b, ok := parseSegmentName(x.Name()); ok && b >= first && b <= last {
					replaced = append(replaced, b)
				}
			}
			if err := p.completeSwap(filepath.Join(p.dir, name), first, replaced); err != nil {
				return err
			}
		}
	}
	return nil
}

func swapName(first, last int64) string {
	return segmentName(first) + "." + segmentName(last) + swapSuffix
}

func parseSwapName(name string) (first, last int64, ok bool) {
	stem, _ := strings.CutSuffix(name, swapSuffix)
	a, b, found := strings.Cut(stem, ".")
	if !found {
		return 0, 0, false
	}
	first, ok1 := parseSegmentName(a + logSuffix)
	last, ok2 := parseSegmentName(b + logSuffix)
	return first, last, ok1 && ok2 && last >= first
}

// completeSwap removes the replaced segments' files (bases in replaced, the
// first being first) and renames the swap file over <first>.log. Every step
// may be repeated after a crash.
func (p *Partition) completeSwap(swapPath string, first int64, replaced []int64) error {
	for _, b := range replaced {
		stem := filepath.Join(p.dir, segmentName(b))
		names := []string{stem + indexSuffix, stem + timeIndexSuffix}
		if b != first {
			names = append(names, stem+logSuffix)
		}
		for _, n := range names {
			if err := p.fs.Remove(n); err != nil && !errors.Is(err, os.ErrNotExist) {
				return ioError("compaction swap: remove "+n, err)
			}
			cleanStep("old file removed")
		}
	}
	final := filepath.Join(p.dir, segmentName(first)+logSuffix)
	if err := p.fs.Rename(swapPath, final); err != nil {
		return ioError("compaction swap: rename "+swapPath, err)
	}
	return ioError("compaction swap: sync "+p.dir, p.fs.SyncDir(p.dir))
}

// unfinishedSwap is a compaction swap whose file steps (completeSwap)
// failed after the new segment seg took the old ones' place in memory.
type unfinishedSwap struct {
	path     string // the .swap file
	first    int64
	replaced []int64
	seg      *segment
}

// finishSwapLocked completes the swap a failure left half done, if any
// (cleaner.mu held): the old segments' files are removed, the .swap file
// renamed over the first and the new segment's indexes written. Every
// change of the sealed segments (a pass, retention, DeleteRecords) calls
// it first and fails with its error: the .swap file describes the layout
// of its own pass, and once another change went by, completing it at the
// next open would put stale segments back over newer ones (Open then
// refuses the partition as corrupt).
func (p *Partition) finishSwapLocked() error {
	u := p.cleaner.unfinished
	if u == nil {
		return nil
	}
	if _, err := p.fs.Stat(u.path); errors.Is(err, os.ErrNotExist) {
		// Renamed already: only the directory sync failed.
		if err := p.fs.SyncDir(p.dir); err != nil {
			return fmt.Errorf("partition %s: finish the interrupted compaction swap: %w", p.name, ioError("sync "+p.dir, err))
		}
	} else if err := p.completeSwap(u.path, u.first, u.replaced); err != nil {
		return fmt.Errorf("partition %s: finish the interrupted compaction swap: %w", p.name, err)
	}
	p.cleaner.unfinished = nil
	if err := u.seg.writeIndexes(p.fs); err != nil {
		return err // the indexes are rebuilt at the next open
	}
	u.seg.idx.thin(sealedIndexGap)
	p.logger.Info("finished an interrupted compaction swap", "partition", p.name, "file", u.path)
	return nil
}

// cleanPlan is what a look at a partition found.
type cleanPlan struct {
	segs       []*segment // from the log start to the last cleanable one, acquired
	next       int64      // base of the segment after the last cleanable one
	firstDirty int        // index in segs of the first dirty segment (len(segs): none)
	ratio      float64
	overdue    bool // max.compaction.lag.ms passed for the oldest dirty record
}

func (pl *cleanPlan) release() {
	for _, s := range pl.segs {
		s.release()
	}
	pl.segs = nil
}

// plan looks at the partition (cleaner lock held).
func (p *Partition) plan(now time.Time, cfg TopicConfig) (*cleanPlan, error) {
	lso := p.tip.Load().lso
	p.segMu.RLock()
	all := slices.Clone(p.segments)
	p.segMu.RUnlock()
	pl := &cleanPlan{}
	if len(all) < 2 {
		return pl, nil
	}
	lagCut := now.Add(-cfg.MinCompactionLag).UnixMilli()
	n := 0
	for _, s := range all[:len(all)-1] {
		if all[n+1].base > lso {
			break // part of it may still be aborted
		}
		if cfg.MinCompactionLag > 0 && s.idx.maxTimestamp() > lagCut {
			break
		}
		n++
	}
	if n == 0 {
		return pl, nil
	}
	for _, s := range all[:n] {
		if !s.acquire() {
			pl.release()
			return &cleanPlan{}, nil // being deleted: look again later
		}
		pl.segs = append(pl.segs, s)
	}
	pl.next = all[n].base
	fd := p.cleaner.ckpt.FirstDirty
	pl.firstDirty = sort.Search(n, func(i int) bool { return pl.segs[i].base >= fd })
	var clean, dirty int64
	for i, s := range pl.segs {
		if i < pl.firstDirty {
			clean += s.visible.Load()
		} else {
			dirty += s.visible.Load()
		}
	}
	if clean+dirty > 0 {
		pl.ratio = float64(dirty) / float64(clean+dirty)
	}
	if cfg.MaxCompactionLag > 0 && pl.firstDirty < n {
		first, err := p.firstTimestamp(pl.segs[pl.firstDirty])
		if err != nil {
			pl.release()
			return nil, err
		}
		pl.overdue = first != noTimestamp && first <= now.Add(-cfg.MaxCompactionLag).UnixMilli()
	}
	return pl, nil
}

// firstTimestamp is the first batch's timestamp of seg (noTimestamp if empty).
func (p *Partition) firstTimestamp(seg *segment) (int64, error) {
	if seg.visible.Load() < record.HeaderSize {
		return noTimestamp, nil
	}
	var hb [record.HeaderSize]byte
	if _, err := seg.f.ReadAt(hb[:], 0); err != nil {
		return 0, p.readErr(seg, 0, err)
	}
	h, err := record.ParseHeader(hb[:])
	if err != nil {
		return 0, fmt.Errorf("partition %s: segment %s: %w", p.name, seg.path, err)
	}
	if h.LogAppendTime() {
		return h.MaxTimestamp, nil
	}
	return h.BaseTimestamp, nil
}

// cleaner is one pass's working set: the map, the throttle and the stop
// signals, shared by the partitions a Log.Clean call visits.
type cleaner struct {
	txns *txnView // of the partition being cleaned (set by pass)
	om   *offsetMap
	lim  *rate.Limiter // nil = unlimited
	duty *dutyCycle    // nil = none
	// urgent is set for a pass over a partition whose oldest dirty record
	// is older than max.compaction.lag.ms: it ignores the duty cycle.
	urgent bool
	// cpuMark is threadCPU at the last charge of the pass's CPU time to
	// its partition's stats (chargeCPU); cur is the running pass's
	// counts, pub what of them the stats already have.
	cpuMark  time.Duration
	cur, pub passStats
	stop     <-chan struct{}
	now      time.Time
	force    bool

	// sums are the map phase's summaries of the dirty segments it read
	// whole, by base offset (reset by each pass).
	sums map[int64]segSummary

	// Buffers reused from batch to batch.
	spans   []record.Span
	kept    []record.Span
	scratch []byte
}

var errCleanStopped = errors.New("cleaner stopped")

// testHookCleanStep, when set (tests, before Open), runs at every step of a
// pass's swap that a crash could interrupt: the crash test kills its own
// process there.
var testHookCleanStep func(step string)

func cleanStep(step string) {
	if testHookCleanStep != nil {
		testHookCleanStep(step)
	}
}

func (c *cleaner) throttle(p *Partition, n int) error {
	select {
	case <-c.stop:
		return errCleanStopped
	case <-p.cleaner.abort:
		return errCleanStopped
	default:
	}
	if c.duty != nil && !c.urgent {
		if err := c.payDuty(p); err != nil {
			return err
		}
		defer c.duty.rested() // the I/O limiter's wait is not work
	}
	if c.lim == nil {
		return nil
	}
	for n > 0 {
		k := min(n, c.lim.Burst())
		if err := c.lim.WaitN(context.Background(), k); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// payDuty accounts the work since the duty cycle's last look and rests
// what it owes, in rests of at most maxRest (or until the log is idle).
func (c *cleaner) payDuty(p *Partition) error {
	w0 := c.duty.worked
	defer func() {
		c.chargeCPU(p, c.duty.worked-w0)
	}()
	for r := c.duty.step(); r > 0; r = c.duty.step() {
		if err := c.rest(p, r); err != nil {
			return err
		}
		c.duty.rested() // a rest is not work
	}
	return nil
}

// chargeCPU adds the pass's CPU time, bytes and removed records since the
// last charge, and worked of duty-cycle work, to p's stats: they move
// while a pass runs, not only at its end.
func (c *cleaner) chargeCPU(p *Partition, worked time.Duration) {
	cpu := threadCPU()
	p.cleaner.statsMu.Lock()
	s := &p.cleaner.stats
	s.CPU += cpu - c.cpuMark
	s.Worked += worked
	s.BytesRead += c.cur.read - c.pub.read
	s.BytesWritten += c.cur.written - c.pub.written
	s.RecordsRemoved += c.cur.removed - c.pub.removed
	p.cleaner.statsMu.Unlock()
	c.cpuMark, c.pub = cpu, c.cur
}

// testHookCleanerRest, when set (tests), replaces a pass's rests: it is
// called with the rest's length instead of waiting.
var testHookCleanerRest func(time.Duration)

// rest pauses the pass for d (the duty cycle), or until it is stopped.
func (c *cleaner) rest(p *Partition, d time.Duration) error {
	if testHookCleanerRest != nil {
		testHookCleanerRest(d)
	} else {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-c.stop:
			return errCleanStopped
		case <-p.cleaner.abort:
			return errCleanStopped
		case <-t.C:
		}
	}
	p.cleaner.statsMu.Lock()
	p.cleaner.stats.Rested += d
	p.cleaner.statsMu.Unlock()
	return nil
}

// Compact runs one cleaner pass on the partition now, whatever its dirty
// ratio when force is set (tests, `sluice topic compact`), with a fresh
// offset map of Options.Cleaner.DedupeBufferBytes. It does nothing on a
// topic whose policy does not compact. It reports whether a pass ran.
func (p *Partition) Compact(now time.Time, force bool) (bool, error) {
	l := p.topic.log
	l.cleanerRunMu.Lock()
	defer l.cleanerRunMu.Unlock()
	runtime.LockOSThread() // threadCPU measures the pass
	defer runtime.UnlockOSThread()
	c := &cleaner{om: l.cleanerMap(), lim: l.cleanerLimiter(), duty: l.cleanerDuty(), stop: l.stop, now: now, force: force}
	return p.clean(c)
}

// clean runs a pass if the partition needs one.
func (p *Partition) clean(c *cleaner) (ran bool, err error) {
	p.cleaner.mu.Lock()
	defer p.cleaner.mu.Unlock()
	p.cleaner.rewriting.Store(true) // before the policy check (see rewriting)
	defer p.cleaner.rewriting.Store(false)
	if err := p.finishSwapLocked(); err != nil {
		return false, err
	}
	if !p.settings().cleanup.Compact() {
		return false, nil
	}
	select {
	case <-p.closing:
		return false, nil
	default:
	}
	cfg := p.topic.Config()
	pl, err := p.plan(c.now, cfg)
	if err != nil {
		return false, err
	}
	defer pl.release()
	p.cleaner.statsMu.Lock()
	p.cleaner.stats.DirtyRatio = pl.ratio
	p.cleaner.statsMu.Unlock()
	if pl.firstDirty >= len(pl.segs) {
		return false, nil
	}
	if !c.force && pl.ratio < cfg.minCleanableDirtyRatio() && !pl.overdue {
		return false, nil
	}
	start := time.Now()
	c.cpuMark = threadCPU()
	c.urgent = pl.overdue
	st, err := p.pass(c, pl, cfg)
	switch {
	case c.duty == nil:
		c.chargeCPU(p, 0)
	case c.urgent:
		c.duty.rested() // the work of an urgent pass is not the duty cycle's
		c.chargeCPU(p, 0)
	case err == nil:
		// The work after the last batch (the last group's fsync and
		// swap, the index files, the checkpoint) counts like the rest;
		// a stop during its rest leaves the pass complete.
		_ = c.payDuty(p)
	default:
		c.chargeCPU(p, 0)
	}
	c.urgent = false
	p.cleaner.statsMu.Lock()
	defer p.cleaner.statsMu.Unlock()
	s := &p.cleaner.stats
	if err != nil {
		if errors.Is(err, errCleanStopped) {
			return false, nil
		}
		s.LastError = err.Error()
		return false, fmt.Errorf("partition %s: compaction: %w", p.name, err)
	}
	s.Passes++
	s.LastPass = time.Now()
	s.LastPassTook = s.LastPass.Sub(start)
	s.FirstDirty = p.cleaner.ckpt.FirstDirty
	s.LastError = ""
	s.DirtyRatio = 0
	p.logger.Info("compacted partition", "partition", p.name, "first_dirty", s.FirstDirty,
		"bytes_read", st.read, "bytes_not_reread", st.skipped, "bytes_written", st.written, "records_removed", st.removed, "took", s.LastPassTook)
	return true, nil
}

type passStats struct {
	read, written, removed int64
	// skipped is the bytes of superseded dirty segments that the rewrite
	// did not read again.
	skipped int64
}

// pass builds the offset map over the dirty segments of pl, rewrites the
// segments below its end and records the pass.
func (p *Partition) pass(c *cleaner, pl *cleanPlan, cfg TopicConfig) (passStats, error) {
	c.cur, c.pub = passStats{}, passStats{}
	st := &c.cur
	if pl.firstDirty < len(pl.segs) {
		c.om.reset(pl.segs[pl.firstDirty].base)
	} else {
		c.om.reset(pl.next)
	}
	c.txns = p.txnView()
	clear(c.sums)
	if c.sums == nil {
		c.sums = make(map[int64]segSummary)
	}
	end := pl.next
	for i := pl.firstDirty; i < len(pl.segs); i++ {
		seg := pl.segs[i]
		full, err := p.mapSegment(c, seg, st)
		if err != nil {
			return *st, err
		}
		if full {
			if i == pl.firstDirty {
				return *st, fmt.Errorf("the offset map (%d bytes) cannot hold the keys of segment %s; raise the cleaner's dedupe buffer", len(c.om.slots)*mapBytesPerKey, seg.path)
			}
			// Keys of seg already in the map have their latest record at
			// or after end, which this pass does not touch: still right.
			end = seg.base
			break
		}
	}
	nowMs := c.now.UnixMilli()
	horizon := p.cleaner.ckpt.horizon(nowMs, cfg.deleteRetention())
	var cleanSegs []*segment
	for _, s := range pl.segs {
		if s.base < end {
			cleanSegs = append(cleanSegs, s)
		}
	}
	// A dirty segment none of whose records is its key's latest, and
	// which holds nothing else the rewrite must look at (superseded), is
	// not read again: its output is the empty batches that cover its
	// offsets, so it counts for that much in its group's size.
	superseded := make([]bool, len(cleanSegs))
	outSize := make([]int64, len(cleanSegs))
	for i, s := range cleanSegs {
		outSize[i] = s.visible.Load()
		sum, ok := c.sums[s.base]
		if !ok || !sum.plain {
			continue
		}
		segEnd := end
		if i+1 < len(cleanSegs) {
			segEnd = cleanSegs[i+1].base
		}
		if found, known := c.om.anyLatest(s.base, segEnd); known && !found && !testHookNoSkip {
			superseded[i] = true
			outSize[i] = 2 * record.HeaderSize // at most two empty batches: a group spans < 2^32 offsets
		}
	}
	w := &groupWriter{p: p, c: c, horizon: horizon, txnRetained: make(map[int64]bool), st: st}
	segBytes := p.settings().segBytes
	for i := 0; i < len(cleanSegs); {
		j, size := i+1, outSize[i]
		for j < len(cleanSegs) {
			nextBase := end
			if j+1 < len(cleanSegs) {
				nextBase = cleanSegs[j+1].base
			}
			if size+outSize[j] > segBytes || nextBase-cleanSegs[i].base >= math.MaxUint32 {
				break
			}
			size += outSize[j]
			j++
		}
		nextBase := end
		if j < len(cleanSegs) {
			nextBase = cleanSegs[j].base
		}
		if err := w.cleanGroup(cleanSegs[i:j], superseded[i:j], nextBase); err != nil {
			return *st, err
		}
		i = j
	}
	p.cleaner.ckpt.record(passMark{End: end, TimeMs: nowMs}, nowMs, cfg.deleteRetention())
	if err := p.writeCleanerCheckpoint(); err != nil {
		return *st, err
	}
	cleanStep("checkpoint written")
	p.mu.Lock()
	ps := p.pstate
	p.mu.Unlock()
	if ps != nil && len(w.removedAborts) > 0 {
		ps.dropAborted(w.removedAborts)
	}
	return *st, nil
}

// segSummary is what the map phase learnt of a dirty segment for the
// rewrite: whether every batch is plain (neither a control batch, nor
// transactional, nor one of the batches the producer state remembers, all
// of which the rewrite must look at whatever their records), and the
// segment's record count and largest batch timestamp.
type segSummary struct {
	plain   bool
	records int64
	maxTs   int64
}

// testHookNoSkip, when set (tests), makes a pass read and decode every
// batch it rewrites, as before superseded segments and batches were
// skipped: the reference the skipping is compared with.
var testHookNoSkip bool

// mapSegment puts every keyed record of seg that counts (not aborted, not
// control) into the offset map and, when all fitted, its summary into
// c.sums; full reports that a key did not fit.
func (p *Partition) mapSegment(c *cleaner, seg *segment, st *passStats) (full bool, err error) {
	errFull := errors.New("offset map full")
	sum := segSummary{plain: true, maxTs: -1}
	rd := p.readDropper(seg)
	defer rd.finish()
	_, _, err = scanSegment(seg.f, 0, seg.base, seg.visible.Load(), func(b batchInfo) error {
		rd.at(b.pos)
		st.read += int64(b.size)
		if err := c.throttle(p, b.size); err != nil {
			return err
		}
		sum.records += int64(b.h.NumRecords)
		sum.maxTs = max(sum.maxTs, b.maxTs)
		if b.h.IsControl() || b.h.IsTransactional() || c.txns.isLastBatch(b.h) {
			sum.plain = false
		}
		if b.h.IsControl() || c.txns.aborted(b.h) {
			return nil
		}
		var err error
		if _, c.spans, err = record.Split(c.spans[:0], b.raw); errors.Is(err, record.ErrTooLarge) {
			// Beyond the bound (written before it, or while the
			// topic was not compacted): its keys stay unknown and
			// the rewrite keeps it whole, so mark it as holding a
			// latest record for that rewrite not to drop it unread.
			c.om.setLatest(b.h.BaseOffset, -1)
			return nil
		} else if err != nil {
			return err
		}
		for _, r := range c.spans {
			if r.Key != nil && !c.om.put(r.Key, r.Offset) {
				return errFull
			}
		}
		return nil
	})
	if errors.Is(err, errFull) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("read segment %s: %w", seg.path, err)
	}
	c.sums[seg.base] = sum
	return false, nil
}

// cleanerReadDropper drops from the page cache what the cleaner has read
// of a segment behind the page-cache window (one the committer dropped,
// dropSealed), in steps of dropChunk as it reads and the rest at the end:
// a pass then leaves the page cache as it found it, and the pages its
// reads took are freed a moment later for the next reads and writes
// instead of piling up (gigabytes over a backlog) while the writers take
// fresh ones. Segments within the window were cached and stay so.
type cleanerReadDropper struct {
	f    File
	size int64
	done int64 // bytes from the start dropped
	on   bool
}

// readDropper is the dropper for a read of seg from its start.
func (p *Partition) readDropper(seg *segment) *cleanerReadDropper {
	return &cleanerReadDropper{
		f:    seg.f,
		size: seg.visible.Load(),
		on:   p.cacheWindow > 0 && seg.end.Load() <= p.cacheDroppedTo.Load(),
	}
}

// at is called with the position of the batch about to be handled: every
// byte before it has been read.
func (d *cleanerReadDropper) at(pos int64) {
	if d.on && pos-d.done >= dropChunk {
		to := pos &^ (pageSize - 1)
		dropCache(d.f, d.done, to-d.done)
		d.done = to
	}
}

// finish drops the rest of the segment's whole pages.
func (d *cleanerReadDropper) finish() {
	if to := d.size &^ (pageSize - 1); d.on && to > d.done {
		dropCache(d.f, d.done, to-d.done)
		d.done = to
	}
}

// txnView is what a pass needs of the producer state, copied once when the
// pass starts so that the cleaner does not contend with appends for the
// state's lock on every batch: the aborted transactions (ordered by marker
// offset) and every producer's remembered batches. Batches a pass rewrites
// are below the last stable offset, so their transactions were decided
// before it started; producers' later batches only make more of the
// remembered ones redundant, so keeping the ones remembered at the start
// is safe.
type txnView struct {
	aborts  []AbortedTxn
	maxSpan int64
	last    map[int64][]int64 // producer id -> last offsets of its remembered batches
}

func (p *Partition) txnView() *txnView {
	v := &txnView{last: map[int64][]int64{}}
	p.mu.Lock()
	ps := p.pstate
	p.mu.Unlock()
	if ps == nil {
		return v
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	v.aborts = slices.Clone(ps.aborted)
	v.maxSpan = ps.maxSpan
	for pid, e := range ps.producers {
		for _, b := range e.batches {
			v.last[pid] = append(v.last[pid], b.lastOffset)
		}
	}
	return v
}

// aborted reports whether the transactional batch h belongs to an aborted
// transaction: one of its producer's whose range, up to the abort marker,
// covers the batch.
func (v *txnView) aborted(h record.Header) bool {
	if !h.IsTransactional() || h.ProducerID < 0 {
		return false
	}
	last := h.LastOffset()
	i := sort.Search(len(v.aborts), func(i int) bool { return v.aborts[i].LastOffset > last })
	for _, a := range v.aborts[i:] {
		if a.LastOffset-v.maxSpan > h.BaseOffset {
			break // every later entry starts after the batch
		}
		if a.ProducerID == h.ProducerID && a.FirstOffset <= h.BaseOffset {
			return true
		}
	}
	return false
}

// isLastBatch reports whether h is one of the batches the producer state
// remembers for its producer (its latest ones): they stay, emptied if need
// be, so that a state rebuilt from the log keeps the producer's sequence.
func (v *txnView) isLastBatch(h record.Header) bool {
	return h.ProducerID >= 0 && slices.Contains(v.last[h.ProducerID], h.LastOffset())
}

// groupWriter rewrites groups of segments, in offset order, for one pass.
type groupWriter struct {
	p           *Partition
	c           *cleaner
	horizon     int64
	txnRetained map[int64]bool // producer id -> its current transaction kept records
	// removedAborts are the abort markers this pass removed (producer id
	// and marker offset): their aborted-transaction entries go too.
	removedAborts []AbortedTxn
	st            *passStats
}

// cleanGroup writes the cleaned records of group (consecutive segments)
// into one new segment that ends at nextBase, and swaps it in. The
// segments marked in superseded are not read: none of their records stays
// (see pass), and their summaries give what removing them needs.
func (w *groupWriter) cleanGroup(group []*segment, superseded []bool, nextBase int64) (err error) {
	p := w.p
	base := group[0].base
	tmp := filepath.Join(p.dir, segmentName(base)+logSuffix+cleanedSuffix)
	f, err := p.fs.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return ioError("create "+tmp, err)
	}
	ns := newSegment(p.dir, base, f)
	swapped := false
	defer func() {
		if !swapped {
			f.Close()
			p.fs.Remove(tmp)
		}
	}()
	var buf []byte
	var pos int64
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		if err := w.c.throttle(p, len(buf)); err != nil {
			return err
		}
		if _, err := f.Write(buf); err != nil {
			return ioError("write "+tmp, err)
		}
		pos += int64(len(buf))
		w.st.written += int64(len(buf))
		buf = buf[:0]
		return nil
	}
	// expect is the next offset the output must cover; gapTs the largest
	// timestamp of the batches removed since.
	expect, gapTs := base, int64(-1)
	emit := func(b []byte, first int64) {
		h, _ := record.ParseHeader(b)
		ns.idx.add(uint32(first-base), uint32(pos+int64(len(buf))), len(b), h.MaxTimestamp, p.indexInterval)
		buf = append(buf, b...)
	}
	fill := func(upTo int64) { // cover [expect, upTo) with empty batches
		for expect < upTo {
			last := min(upTo-1, expect+math.MaxInt32)
			emit(record.AppendEmptyBatch(nil, expect, last, gapTs), expect)
			expect = last + 1
		}
		gapTs = -1
	}
	var out []byte
	for i, s := range group {
		if superseded[i] {
			sum := w.c.sums[s.base]
			gapTs = max(gapTs, sum.maxTs)
			w.st.removed += sum.records
			w.st.skipped += s.visible.Load()
			continue
		}
		rd := p.readDropper(s)
		_, _, err := scanSegment(s.f, 0, s.base, s.visible.Load(), func(b batchInfo) error {
			rd.at(b.pos)
			w.st.read += int64(b.size)
			if err := w.c.throttle(p, b.size); err != nil {
				return err
			}
			var err error
			out, err = w.filter(out[:0], b)
			if err != nil {
				return err
			}
			if len(out) == 0 {
				gapTs = max(gapTs, b.maxTs)
				return nil
			}
			fill(b.base)
			emit(out, b.base)
			expect = b.last + 1
			if len(buf) >= cleanerWriteChunk {
				return flush()
			}
			return nil
		})
		rd.finish()
		if err != nil {
			return fmt.Errorf("clean segment %s: %w", s.path, err)
		}
	}
	fill(nextBase)
	if err := flush(); err != nil {
		return err
	}
	cleanStep("output written")
	if err := f.Sync(); err != nil {
		return ioError("fsync "+tmp, err)
	}
	cleanStep("output synced")
	// Output behind the page-cache window leaves the cache as the
	// segments it replaces had (the committer dropped them, dropSealed):
	// the pass leaves no more pages in use than it found, and the pages
	// freed are the next writes' recently freed ones.
	if nextBase <= p.cacheDroppedTo.Load() && p.cacheWindow > 0 {
		ns.uncached = pos &^ (pageSize - 1)
		dropCache(f, 0, ns.uncached)
	}
	ns.assigned, ns.written = pos, pos
	ns.visible.Store(pos)
	ns.end.Store(nextBase)

	// The swap is decided once the .swap name is durable.
	swap := filepath.Join(p.dir, swapName(base, group[len(group)-1].base))
	if err := p.fs.Rename(tmp, swap); err != nil {
		return ioError("rename "+tmp, err)
	}
	if err := p.fs.SyncDir(p.dir); err != nil {
		return ioError("sync "+p.dir, err)
	}
	swapped = true
	cleanStep("swap decided")
	p.segMu.Lock()
	i := slices.Index(p.segments, group[0])
	if i < 0 || i+len(group) > len(p.segments)-1 || !slices.Equal(p.segments[i:i+len(group)], group) {
		p.segMu.Unlock()
		// Cannot happen while the cleaner lock is held; leave the swap
		// for the next open rather than guess.
		return fmt.Errorf("segments changed under the cleaner; the swap %s completes at the next open", swap)
	}
	segs := slices.Clone(p.segments[:i])
	segs = append(segs, ns)
	segs = append(segs, p.segments[i+len(group):]...)
	p.segments = segs
	p.segMu.Unlock()
	for _, s := range group {
		s.deleted.Store(true)
		s.release() // the partition's reference; readers keep theirs
	}
	bases := make([]int64, len(group))
	for i, s := range group {
		bases[i] = s.base
	}
	if err := p.completeSwap(swap, base, bases); err != nil {
		// Finished before the next change of the segments, or at the
		// next open (finishSwapLocked).
		p.cleaner.unfinished = &unfinishedSwap{path: swap, first: base, replaced: bases, seg: ns}
		return err
	}
	cleanStep("swap done")
	if err := ns.writeIndexes(p.fs); err != nil {
		return err
	}
	ns.idx.thin(sealedIndexGap)
	cleanStep("indexes written")
	return nil
}

// filter appends to buf what the cleaner keeps of batch b.
func (w *groupWriter) filter(buf []byte, b batchInfo) ([]byte, error) {
	h := b.h
	if h.IsControl() {
		// A marker stays while its transaction kept records, and until
		// it has been in the cleaned log for delete.retention.ms.
		keep := w.txnRetained[h.ProducerID] || h.BaseOffset >= w.horizon
		delete(w.txnRetained, h.ProducerID)
		if keep {
			return append(buf, b.raw...), nil
		}
		if commit, err := controlBatchCommits(b.raw); err == nil && !commit {
			w.removedAborts = append(w.removedAborts, AbortedTxn{ProducerID: h.ProducerID, LastOffset: h.LastOffset()})
		}
		w.st.removed += int64(h.NumRecords)
		return buf, nil
	}
	c := w.c
	keepEmpty := c.txns.isLastBatch(h)
	if !keepEmpty && !h.IsTransactional() && !testHookNoSkip {
		if found, known := c.om.anyLatest(h.BaseOffset, h.LastOffset()+1); known && !found {
			// Every record was superseded (the map phase put them all):
			// no need to decode the batch.
			w.st.removed += int64(h.NumRecords)
			return buf, nil
		}
	}
	kept := c.kept[:0]
	if !c.txns.aborted(h) {
		var err error
		if _, c.spans, err = record.Split(c.spans[:0], b.raw); errors.Is(err, record.ErrTooLarge) {
			// Its keys are unknown (see the map phase): kept whole.
			if h.IsTransactional() {
				w.txnRetained[h.ProducerID] = true
			}
			return append(buf, b.raw...), nil
		} else if err != nil {
			return buf, err
		}
		for _, r := range c.spans {
			if r.Key == nil {
				continue
			}
			if latest, known := c.om.latest(r.Offset); known {
				if !latest {
					continue
				}
			} else if latest, ok := c.om.get(r.Key); ok && latest > r.Offset {
				continue
			}
			if r.Value == nil && r.Offset < w.horizon {
				continue // a tombstone past its delete retention
			}
			kept = append(kept, r)
		}
	}
	c.kept = kept
	out, scratch, err := record.AppendKept(buf, c.scratch, b.raw, h, kept, keepEmpty)
	c.scratch = scratch
	if err != nil {
		return buf, err
	}
	if h.IsTransactional() && (len(kept) > 0 || keepEmpty) {
		// Something of the transaction stays (if only an empty batch that
		// keeps the producer's sequence): so does its marker, or a state
		// rebuilt from the log would take the transaction for open.
		w.txnRetained[h.ProducerID] = true
	}
	w.st.removed += int64(h.NumRecords) - int64(len(kept))
	return out, nil
}

// stopCleaning makes a running pass stop at its next batch and waits for
// it (close, before it takes the partition's locks).
func (p *Partition) stopCleaning() {
	p.cleaner.abortOnce.Do(func() { close(p.cleaner.abort) })
	p.cleaner.mu.Lock()
	p.cleaner.mu.Unlock() //nolint:staticcheck // waits for the running pass
}

// Clean runs a cleaner pass on every partition of a compacted topic that
// needs one (dirty ratio or max.compaction.lag.ms), dirtiest first. The
// background cleaner calls it every CleanerOptions.Interval.
func (l *Log) Clean(now time.Time) error {
	l.cleanerRunMu.Lock()
	defer l.cleanerRunMu.Unlock()
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return fmt.Errorf("clean: %w", ErrClosed)
	}
	var parts []*Partition
	for _, t := range l.topics {
		if t.Cleanup().Compact() {
			parts = append(parts, t.partitions()...)
		}
	}
	l.mu.RUnlock()
	if len(parts) == 0 {
		return nil
	}
	runtime.LockOSThread() // threadCPU measures the passes
	defer runtime.UnlockOSThread()
	c := &cleaner{om: l.cleanerMap(), lim: l.cleanerLimiter(), duty: l.cleanerDuty(), stop: l.stop, now: now}
	sort.SliceStable(parts, func(i, j int) bool {
		return parts[i].CleanerStats().DirtyRatio > parts[j].CleanerStats().DirtyRatio
	})
	var errs []error
	for _, p := range parts {
		select {
		case <-l.stop:
			return errors.Join(errs...)
		default:
		}
		if _, err := p.clean(c); err != nil && !errors.Is(err, ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// CleanerStats returns the cleaner's progress on the partition.
func (p *Partition) CleanerStats() CleanerStats {
	p.cleaner.statsMu.Lock()
	defer p.cleaner.statsMu.Unlock()
	return p.cleaner.stats
}

// DirtyBytes returns the bytes of the partition's closed segments below
// the cleaner's first dirty offset (compacted by earlier passes) and from
// it on (not yet compacted), whatever the topic's policy; the active
// segment is in neither.
func (p *Partition) DirtyBytes() (clean, dirty int64) {
	fd := p.CleanerStats().FirstDirty
	p.segMu.RLock()
	defer p.segMu.RUnlock()
	if len(p.segments) == 0 {
		return 0, 0
	}
	for _, s := range p.segments[:len(p.segments)-1] {
		if s.base < fd {
			clean += s.visible.Load()
		} else {
			dirty += s.visible.Load()
		}
	}
	return clean, dirty
}

func (l *Log) dedupeBytes() int {
	if l.opts.Cleaner.DedupeBufferBytes > 0 {
		return l.opts.Cleaner.DedupeBufferBytes
	}
	return defaultDedupeBuffer
}

// cleanerMap returns the background cleaner's offset map, made on first use
// and reused by every pass (one pass at a time: Clean runs on one goroutine).
func (l *Log) cleanerMap() *offsetMap {
	l.cleanerMu.Lock()
	defer l.cleanerMu.Unlock()
	if l.om == nil {
		l.om = newOffsetMap(l.dedupeBytes())
	}
	return l.om
}

func (l *Log) cleanerLimiter() *rate.Limiter {
	r := l.opts.Cleaner.IOBytesPerSecond
	if r <= 0 {
		return nil
	}
	burst := int(min(max(r/10, 64<<10), 8<<20))
	return rate.NewLimiter(rate.Limit(r), burst)
}

// cleanerDuty returns a duty cycle for the passes of one Clean or Compact
// call (nil: MaxDutyCycle 1 or more, none).
func (l *Log) cleanerDuty() *dutyCycle {
	share := l.opts.Cleaner.MaxDutyCycle
	if share <= 0 {
		share = defaultCleanerDuty
	}
	now, appends := time.Now, l.appendCount.Load
	if testHookDutyClock != nil {
		now, appends = testHookDutyClock()
	}
	return newDutyCycle(share, now, appends)
}

// testHookDutyClock, when set (tests), gives the duty cycles of passes
// their clock and append count.
var testHookDutyClock func() (now func() time.Time, appends func() int64)

func (l *Log) cleanerLoop(every time.Duration) {
	defer l.cleanerWG.Done()
	tk := time.NewTicker(every)
	defer tk.Stop()
	for {
		select {
		case <-l.stop:
			return
		case now := <-tk.C:
			if err := l.Clean(now); err != nil && !errors.Is(err, ErrClosed) {
				l.logger.Error("log cleaner", "err", err)
			}
		}
	}
}

// CheckKeys refuses a batch holding a record without a key: a compacted
// topic keeps the latest record per key, so Kafka refuses keyless records
// there (INVALID_RECORD). Append checks it for compacted topics; the Kafka
// listener checks a request's batches before appending any. A batch that
// decompresses beyond record.MaxDecompressed is refused with
// ErrBatchTooLarge (MESSAGE_TOO_LARGE), having cost no more than that bound.
func CheckKeys(batch []byte) error {
	err := record.Decode(batch, func(h record.Header, r record.Record) error {
		if r.Key == nil {
			return fmt.Errorf("%w: record at offset delta %d has no key; a compacted topic needs a key on every record", ErrInvalidRecord, r.Offset-h.BaseOffset)
		}
		return nil
	})
	if errors.Is(err, record.ErrTooLarge) {
		return fmt.Errorf("%w: %w", ErrBatchTooLarge, err)
	}
	return err
}
