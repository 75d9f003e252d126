package logstore

// Producer state: the per-partition bookkeeping behind Kafka's idempotent and
// transactional producers.
//
// For every producer id that wrote to the partition we keep its current
// epoch, the sequence ranges and offsets of its last five batches (Kafka
// clients have at most five requests in flight per partition, so a retry is
// always one of these), and the first offset of its open transaction, if any.
// Next to it sits the aborted-transaction index that read_committed readers
// need, and the set of open transactions whose minimum first offset is the
// last stable offset (LSO).
//
// The partition drives this state machine under its append lock:
//
//	checkAppend(h)   before offsets are assigned: accept, reject, or answer
//	                 "duplicate" with the original offsets (nothing is written)
//	onAppend(h, ts)  after the batch was written at h.BaseOffset
//	                 (onAppendBatch when the caller has the batch bytes: it is
//	                 the only way to learn whether a control batch commits or
//	                 aborts during recovery replay)
//
// Durability: writeSnapshot persists the whole state covering every batch
// below an offset (at segment roll and on Close); on open, loadProducerState
// reads the newest valid snapshot and the partition replays the batches at
// and above the offset it covers through onAppendBatch. The snapshot format is
// described in docs/log-producers.md.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/record"
)

// ErrInvalidTxnState: a non-transactional batch from a producer that has an
// open transaction on the partition (Kafka: INVALID_TXN_STATE). The other
// producer errors (ErrOutOfOrderSequence, ErrProducerFenced,
// ErrInvalidProducerEpoch) are declared in errors.go.
var ErrInvalidTxnState = errors.New("invalid transaction state")

// maxCachedBatches is how many recent batches per producer are remembered for
// duplicate detection: Kafka clients keep at most five requests in flight.
const maxCachedBatches = 5

// producerExpiryMs drops producers without an open transaction that have not
// appended for this long (wall-clock time of the append or of its replay on
// open, never the batch's own timestamps) when a snapshot is written, so that short-lived producers do not accumulate forever. A producer
// that comes back after that is unknown and must start at sequence 0 again.
const producerExpiryMs = 7 * 24 * 3600 * 1000

// snapshotsKept is how many snapshots writeSnapshot leaves behind: the newest
// plus one older fallback in case the newest is found corrupt.
const snapshotsKept = 2

// snapshotSuffix names producer-state snapshot files: <20-digit offset>.snapshot.
const snapshotSuffix = ".snapshot"

// batchMeta is what duplicate detection remembers of one batch.
type batchMeta struct {
	firstSeq, lastSeq      int32
	baseOffset, lastOffset int64
	appendTimeMs           int64 // log append time when logAppendTime, else -1
}

// producerEntry is the state of one producer id on one partition.
type producerEntry struct {
	epoch        int16
	batches      []batchMeta // oldest first, at most maxCachedBatches
	txnFirst     int64       // first offset of the open transaction, -1 if none
	lastAppendMs int64
}

// producerState is the idempotence and transaction state of one partition. It
// is safe for concurrent use: the append path (checkAppend, onAppend) is
// serialised by the partition's append lock, readers call lastStable and
// abortedTxns at any time.
type producerState struct {
	logger *slog.Logger
	clock  func() int64 // wall-clock milliseconds (tests replace it)

	mu        sync.Mutex
	producers map[int64]*producerEntry
	open      map[int64]int64 // producer id -> first offset of its open transaction
	aborted   []AbortedTxn    // ordered by LastOffset (marker offset)
	maxSpan   int64           // max LastOffset-FirstOffset over aborted
	logStart  int64
	pending   map[int64]*markerExpect // markers in flight in WriteTxnMarker, by producer id

	// snapshot file I/O, serialised separately so readers are not blocked.
	snapMu sync.Mutex
	fs     FS
	dir    string
}

func newProducerState(fs FS, dir string, logger *slog.Logger) *producerState {
	if logger == nil {
		logger = slog.Default()
	}
	return &producerState{
		logger:    logger,
		clock:     func() int64 { return time.Now().UnixMilli() },
		producers: make(map[int64]*producerEntry),
		open:      make(map[int64]int64),
		pending:   make(map[int64]*markerExpect),
		fs:        fs,
		dir:       filepath.Clean(dir),
	}
}

// loadProducerState reads the newest producer-state snapshot in a partition
// dir (an empty state if none) and returns the offset it covers (batches below
// it are already reflected). A corrupt snapshot is skipped with a warning in
// favour of an older one; with none valid the state starts empty at offset 0
// and the partition rebuilds it by replaying the whole log.
func loadProducerState(fs FS, partDir string) (*producerState, int64, error) {
	return loadProducerStateLogger(fs, partDir, nil)
}

// loadProducerStateLogger is loadProducerState with the logger that receives
// its warnings (nil: slog.Default()).
func loadProducerStateLogger(fs FS, partDir string, logger *slog.Logger) (*producerState, int64, error) {
	s := newProducerState(fs, partDir, logger)
	snaps, err := listSnapshots(fs, partDir)
	if err != nil {
		return nil, 0, err
	}
	for i := len(snaps) - 1; i >= 0; i-- {
		name := filepath.Join(partDir, snapshotName(snaps[i]))
		data, err := readFile(fs, name)
		if err != nil {
			s.logger.Warn("producer state: cannot read snapshot, trying an older one", "file", name, "err", err)
			continue
		}
		snap, err := decodeProducerSnapshot(data)
		if err == nil && snap.offset != snaps[i] {
			err = fmt.Errorf("%w: file name says offset %d, contents say %d", errCorruptSnapshot, snaps[i], snap.offset)
		}
		if err != nil {
			s.logger.Warn("producer state: ignoring corrupt snapshot, trying an older one", "file", name, "err", err)
			continue
		}
		s.install(snap)
		return s, snap.offset, nil
	}
	if len(snaps) > 0 {
		s.logger.Warn("producer state: no valid snapshot, rebuilding from the whole log", "dir", partDir)
	}
	return s, 0, nil
}

// install replaces the in-memory state with a decoded snapshot.
func (s *producerState) install(snap *producerSnapshot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.producers = snap.producers
	s.open = make(map[int64]int64)
	for pid, e := range s.producers {
		if e.txnFirst >= 0 {
			s.open[pid] = e.txnFirst
		}
	}
	s.aborted = snap.aborted
	s.maxSpan = 0
	for _, a := range s.aborted {
		s.maxSpan = max(s.maxSpan, a.LastOffset-a.FirstOffset)
	}
	s.logStart = snap.logStart
}

// nextSeq is the sequence number after seq, wrapping at MaxInt32 as Kafka does.
func nextSeq(seq int32) int32 {
	if seq == math.MaxInt32 {
		return 0
	}
	return seq + 1
}

func fencedError(h record.Header, current int16) error {
	return fmt.Errorf("producer %d: epoch %d is older than the current epoch %d: %w: %w",
		h.ProducerID, h.ProducerEpoch, current, ErrProducerFenced, ErrInvalidProducerEpoch)
}

// checkAppend is called under the partition's append lock before offsets are
// assigned, for every batch with ProducerID >= 0 (including control batches).
// isDup=true: answer dup (original offsets), write nothing.
//
// Rules (Kafka's): an epoch older than the producer's current one is fenced;
// a newer epoch, and a producer never seen on this partition, must start at
// sequence 0 (this implementation answers ErrOutOfOrderSequence for an unknown
// producer with another sequence, where some Kafka versions answered
// UNKNOWN_PRODUCER_ID); within an epoch, a batch whose first and last
// sequences equal one of the last five batches' is a duplicate, and otherwise
// its first sequence must follow the last one (wrapping at MaxInt32). Control
// batches (transaction markers) carry no sequence: only their epoch is
// checked.
func (s *producerState) checkAppend(h record.Header) (dup AppendResult, isDup bool, err error) {
	if h.ProducerID < 0 {
		return AppendResult{}, false, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.producers[h.ProducerID]
	if h.IsControl() {
		if s.pending[h.ProducerID] == nil {
			return AppendResult{}, false, fmt.Errorf("producer %d: control batches are written only by WriteTxnMarker: %w", h.ProducerID, ErrInvalidTxnState)
		}
		if e != nil && h.ProducerEpoch < e.epoch {
			return AppendResult{}, false, fencedError(h, e.epoch)
		}
		return AppendResult{}, false, nil
	}
	first, last := h.BaseSequence, h.LastSequence()
	if e == nil {
		if first != 0 {
			return AppendResult{}, false, fmt.Errorf("producer %d (epoch %d) is unknown on this partition and must start at sequence 0, got %d: %w",
				h.ProducerID, h.ProducerEpoch, first, ErrOutOfOrderSequence)
		}
		return AppendResult{}, false, nil
	}
	switch {
	case h.ProducerEpoch < e.epoch:
		return AppendResult{}, false, fencedError(h, e.epoch)
	case h.ProducerEpoch > e.epoch:
		if first != 0 {
			return AppendResult{}, false, fmt.Errorf("producer %d: new epoch %d must start at sequence 0, got %d: %w",
				h.ProducerID, h.ProducerEpoch, first, ErrOutOfOrderSequence)
		}
	default:
		for _, b := range e.batches {
			if b.firstSeq == first && b.lastSeq == last {
				return AppendResult{BaseOffset: b.baseOffset, LastOffset: b.lastOffset, LogAppendTime: b.appendTimeMs, Duplicate: true}, true, nil
			}
		}
		want := int32(0)
		if n := len(e.batches); n > 0 {
			want = nextSeq(e.batches[n-1].lastSeq)
		}
		if first != want {
			return AppendResult{}, false, fmt.Errorf("producer %d epoch %d: expected sequence %d, got %d..%d: %w",
				h.ProducerID, h.ProducerEpoch, want, first, last, ErrOutOfOrderSequence)
		}
	}
	if !h.IsTransactional() && e.txnFirst >= 0 && h.ProducerEpoch == e.epoch {
		return AppendResult{}, false, fmt.Errorf("producer %d: non-transactional batch while its transaction from offset %d is open: %w",
			h.ProducerID, e.txnFirst, ErrInvalidTxnState)
	}
	return AppendResult{}, false, nil
}

// onAppend is called after the batch was assigned its base offset and written
// (h.BaseOffset set), for every batch with ProducerID >= 0, in offset order;
// and during recovery replay for every such batch at or above the snapshot
// offset.
//
// A header alone does not tell whether a control batch commits or aborts: for
// markers written by WriteTxnMarker the state remembers it (expectMarker);
// elsewhere (replay) call onAppendBatch, which reads the control record and
// should be preferred wherever the batch bytes are at hand, Partition.Append
// included. A control batch of unknown type is taken as a commit, with a
// warning.
func (s *producerState) onAppend(h record.Header, appendTimeMs int64) {
	if h.ProducerID < 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	commit := true
	if h.IsControl() {
		if m := s.pending[h.ProducerID]; m != nil {
			commit = m.commit
		} else {
			s.logger.Warn("producer state: control batch of unknown type taken as a commit (call onAppendBatch)",
				"producer", h.ProducerID, "offset", h.BaseOffset)
		}
	}
	s.apply(h, commit, appendTimeMs)
}

// onAppendBatch is onAppend for a caller holding the whole batch (h parsed
// from it, base offset assigned): it reads the type of a control batch's
// marker from its record, so commits and aborts replay correctly.
func (s *producerState) onAppendBatch(h record.Header, batch []byte, appendTimeMs int64) {
	if h.ProducerID < 0 {
		return
	}
	if !h.IsControl() {
		s.onAppend(h, appendTimeMs)
		return
	}
	commit, err := controlBatchCommits(batch)
	if err != nil {
		s.logger.Warn("producer state: unreadable control batch taken as a commit",
			"producer", h.ProducerID, "offset", h.BaseOffset, "err", err)
		commit = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apply(h, commit, appendTimeMs)
}

// controlBatchCommits reports whether the control batch holds a commit marker.
func controlBatchCommits(batch []byte) (bool, error) {
	var typ record.ControlType
	found := false
	err := record.Decode(batch, func(h record.Header, r record.Record) error {
		if found {
			return nil
		}
		t, err := record.ParseControlKey(r.Key)
		if err != nil {
			return err
		}
		typ, found = t, true
		return nil
	})
	if err != nil {
		return false, err
	}
	if !found {
		return false, fmt.Errorf("control batch without a record: %w", record.ErrCorrupt)
	}
	switch typ {
	case record.ControlCommit:
		return true, nil
	case record.ControlAbort:
		return false, nil
	}
	return false, fmt.Errorf("control record type %d: %w", typ, record.ErrCorrupt)
}

// apply updates the state for a written batch; s.mu is held.
func (s *producerState) apply(h record.Header, commit bool, appendTimeMs int64) {
	e := s.producers[h.ProducerID]
	if e == nil {
		e = &producerEntry{epoch: h.ProducerEpoch, txnFirst: -1}
		s.producers[h.ProducerID] = e
	}
	// Expiry is measured in wall-clock time of the append (or of its replay):
	// a batch's own timestamps are the producer's and may be years old
	// (backfills), which must not expire a live producer.
	e.lastAppendMs = max(e.lastAppendMs, s.clock())
	if h.ProducerEpoch > e.epoch {
		e.epoch = h.ProducerEpoch
		e.batches = e.batches[:0]
	}
	if h.IsControl() {
		if e.txnFirst < 0 {
			return // nothing of this producer's transaction on this partition
		}
		if !commit {
			s.aborted = append(s.aborted, AbortedTxn{ProducerID: h.ProducerID, FirstOffset: e.txnFirst, LastOffset: h.LastOffset()})
			s.maxSpan = max(s.maxSpan, h.LastOffset()-e.txnFirst)
		}
		e.txnFirst = -1
		delete(s.open, h.ProducerID)
		return
	}
	lat := int64(-1)
	if h.LogAppendTime() {
		lat = appendTimeMs
	}
	if len(e.batches) == maxCachedBatches {
		copy(e.batches, e.batches[1:])
		e.batches = e.batches[:maxCachedBatches-1]
	}
	e.batches = append(e.batches, batchMeta{
		firstSeq: h.BaseSequence, lastSeq: h.LastSequence(),
		baseOffset: h.BaseOffset, lastOffset: h.LastOffset(), appendTimeMs: lat,
	})
	if h.IsTransactional() && e.txnFirst < 0 {
		e.txnFirst = h.BaseOffset
		s.open[h.ProducerID] = h.BaseOffset
	}
}

// markerExpect is a marker WriteTxnMarker is appending: its type, and how
// many concurrent calls for the producer announced it.
type markerExpect struct {
	commit bool
	n      int
}

// expectMarker announces that WriteTxnMarker is about to append a marker of
// the given type for pid: checkAppend admits control batches only when
// announced, and onAppend learns the marker's type from it (a header does not
// say). Concurrent markers of different types for one producer are refused.
// Every successful call must be paired with releaseMarker.
func (s *producerState) expectMarker(pid int64, commit bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.pending[pid]; m != nil {
		if m.commit != commit {
			return fmt.Errorf("producer %d: commit and abort markers written concurrently: %w", pid, ErrInvalidTxnState)
		}
		m.n++
		return nil
	}
	s.pending[pid] = &markerExpect{commit: commit, n: 1}
	return nil
}

// releaseMarker ends an expectMarker announcement.
func (s *producerState) releaseMarker(pid int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.pending[pid]; m != nil {
		if m.n--; m.n <= 0 {
			delete(s.pending, pid)
		}
	}
}

// lastStable returns the last stable offset: the first offset of the oldest
// open transaction, or highWatermark if that is lower or none is open (never
// below the log start offset).
func (s *producerState) lastStable(highWatermark int64) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	lso := highWatermark
	for _, first := range s.open {
		lso = min(lso, first)
	}
	return min(max(lso, s.logStart), highWatermark)
}

// openTxn reports the first offset of pid's open transaction on the partition.
func (s *producerState) openTxn(pid int64) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	first, ok := s.open[pid]
	return first, ok
}

// abortedTxns returns the aborted transactions that overlap offsets
// [from, to): those with LastOffset >= from and FirstOffset < to, ordered by
// LastOffset (what a Fetch response's aborted_transactions needs).
func (s *producerState) abortedTxns(from, to int64) []AbortedTxn {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := sort.Search(len(s.aborted), func(i int) bool { return s.aborted[i].LastOffset >= from })
	var out []AbortedTxn
	for _, a := range s.aborted[i:] {
		if a.LastOffset-s.maxSpan >= to {
			break // every later entry starts at or after to
		}
		if a.FirstOffset < to {
			out = append(out, a)
		}
	}
	return out
}

// dropBelow drops aborted-transaction entries entirely below logStart (after
// retention).
func (s *producerState) dropBelow(logStart int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.logStart = max(s.logStart, logStart)
	i := sort.Search(len(s.aborted), func(i int) bool { return s.aborted[i].LastOffset >= logStart })
	if i > 0 {
		s.aborted = slices.Delete(s.aborted, 0, i)
	}
}

// dropAborted forgets the aborted transactions whose markers the cleaner
// removed (matched by producer id and marker offset), with their records.
func (s *producerState) dropAborted(gone []AbortedTxn) {
	type key struct{ pid, last int64 }
	set := make(map[key]bool, len(gone))
	for _, g := range gone {
		set[key{g.ProducerID, g.LastOffset}] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.aborted = slices.DeleteFunc(s.aborted, func(a AbortedTxn) bool { return set[key{a.ProducerID, a.LastOffset}] })
}

// hasBatch reports whether the batch of pid ending at lastOffset is one of
// the producer's remembered (latest) batches.
func (s *producerState) hasBatch(pid, lastOffset int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.producers[pid]
	if e == nil {
		return false
	}
	for _, b := range e.batches {
		if b.lastOffset == lastOffset {
			return true
		}
	}
	return false
}

// expire drops producers with no open transaction whose last append is more
// than producerExpiryMs before nowMs; s.mu is held.
func (s *producerState) expire(nowMs int64) {
	for pid, e := range s.producers {
		if e.txnFirst < 0 && nowMs-e.lastAppendMs > producerExpiryMs {
			delete(s.producers, pid)
		}
	}
}

// writeSnapshot persists the state covering all batches below offset (called
// at segment roll and on Close; durable with fsync; atomic via temp file +
// rename + dir fsync; CRC-protected; a corrupt snapshot is ignored with a
// warning and the state rebuilt from an older one or from scratch by replay);
// it prunes older snapshots, keeping the newest two. A failed prune is
// logged, not returned: an old snapshot left behind costs disk space, not
// correctness (the newest valid one is loaded, those above the log's end
// are removed at open), and must not fail the roll or close that wrote
// the new one.
//
// The caller guarantees that every batch below offset has been passed to
// onAppend and that none at or above it has, and that the batches below
// offset are durable (a snapshot must not describe data a crash can lose).
func (s *producerState) writeSnapshot(offset int64) error {
	s.mu.Lock()
	s.expire(s.clock())
	data := s.encodeLocked(offset)
	s.mu.Unlock()

	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	name := filepath.Join(s.dir, snapshotName(offset))
	if err := writeFileAtomic(s.fs, name, data); err != nil {
		return fmt.Errorf("producer state snapshot %s: %w", name, err)
	}
	snaps, err := listSnapshots(s.fs, s.dir)
	if err != nil {
		s.logger.Warn("producer state: old snapshots not pruned", "dir", s.dir, "err", err)
		return nil
	}
	// Keep the newest snapshotsKept at or below offset; anything above offset
	// describes a log that no longer exists (truncated) and goes too.
	var keep int
	for i := len(snaps) - 1; i >= 0; i-- {
		if snaps[i] <= offset && keep < snapshotsKept {
			keep++
			continue
		}
		old := filepath.Join(s.dir, snapshotName(snaps[i]))
		if err := s.fs.Remove(old); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.logger.Warn("producer state: old snapshot not pruned", "file", old, "err", err)
		}
	}
	return nil
}

// removeSnapshotsAbove deletes snapshots covering offsets beyond end, the
// recovered end of the log (a torn tail was cut below a snapshot's offset).
// Call it before loadProducerState when recovery truncated the log.
func removeSnapshotsAbove(fs FS, partDir string, end int64) error {
	snaps, err := listSnapshots(fs, partDir)
	if err != nil {
		return err
	}
	for _, off := range snaps {
		if off > end {
			name := filepath.Join(partDir, snapshotName(off))
			if err := fs.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
				return ioError("producer state: remove "+name, err)
			}
		}
	}
	return nil
}

func snapshotName(offset int64) string { return fmt.Sprintf("%020d%s", offset, snapshotSuffix) }

// listSnapshots returns the offsets of the snapshots in dir, ascending.
func listSnapshots(fs FS, dir string) ([]int64, error) {
	ents, err := fs.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, ioError("producer state: list "+dir, err)
	}
	var offs []int64
	for _, ent := range ents {
		base, ok := strings.CutSuffix(ent.Name(), snapshotSuffix)
		if !ok || len(base) != 20 {
			continue
		}
		off, err := strconv.ParseInt(base, 10, 64)
		if err != nil || off < 0 {
			continue
		}
		offs = append(offs, off)
	}
	slices.Sort(offs)
	return offs, nil
}

// Snapshot encoding (version 1), all integers big-endian:
//
//	magic "SLPS" | version u16 | body length u32 | CRC-32C(body) u32 | body
//	body: offset i64 | logStart i64 | producers u32 | aborted u32
//	  per producer: id i64 | epoch i16 | txnFirst i64 | lastAppendMs i64 | batches u8
//	    per batch: firstSeq i32 | lastSeq i32 | baseOffset i64 | lastOffset i64 | appendTimeMs i64
//	  per aborted transaction: producerID i64 | firstOffset i64 | lastOffset i64
const (
	snapMagic      = "SLPS"
	snapVersion    = 1
	snapHeaderSize = 4 + 2 + 4 + 4
	snapBatchSize  = 4 + 4 + 8 + 8 + 8
	snapProdSize   = 8 + 2 + 8 + 8 + 1
	snapAbortSize  = 8 + 8 + 8
)

var errCorruptSnapshot = errors.New("corrupt producer-state snapshot")

var castagnoliTable = crc32.MakeTable(crc32.Castagnoli)

type producerSnapshot struct {
	offset, logStart int64
	producers        map[int64]*producerEntry
	aborted          []AbortedTxn
}

func (s *producerState) encodeLocked(offset int64) []byte {
	pids := make([]int64, 0, len(s.producers))
	for pid := range s.producers {
		pids = append(pids, pid)
	}
	slices.Sort(pids) // deterministic output
	size := snapHeaderSize + 8 + 8 + 4 + 4 + len(pids)*snapProdSize + len(s.aborted)*snapAbortSize
	for _, e := range s.producers {
		size += len(e.batches) * snapBatchSize
	}
	b := make([]byte, snapHeaderSize, size)
	copy(b, snapMagic)
	binary.BigEndian.PutUint16(b[4:], snapVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(offset))
	b = binary.BigEndian.AppendUint64(b, uint64(s.logStart))
	b = binary.BigEndian.AppendUint32(b, uint32(len(pids)))
	b = binary.BigEndian.AppendUint32(b, uint32(len(s.aborted)))
	for _, pid := range pids {
		e := s.producers[pid]
		b = binary.BigEndian.AppendUint64(b, uint64(pid))
		b = binary.BigEndian.AppendUint16(b, uint16(e.epoch))
		b = binary.BigEndian.AppendUint64(b, uint64(e.txnFirst))
		b = binary.BigEndian.AppendUint64(b, uint64(e.lastAppendMs))
		b = append(b, byte(len(e.batches)))
		for _, m := range e.batches {
			b = binary.BigEndian.AppendUint32(b, uint32(m.firstSeq))
			b = binary.BigEndian.AppendUint32(b, uint32(m.lastSeq))
			b = binary.BigEndian.AppendUint64(b, uint64(m.baseOffset))
			b = binary.BigEndian.AppendUint64(b, uint64(m.lastOffset))
			b = binary.BigEndian.AppendUint64(b, uint64(m.appendTimeMs))
		}
	}
	for _, a := range s.aborted {
		b = binary.BigEndian.AppendUint64(b, uint64(a.ProducerID))
		b = binary.BigEndian.AppendUint64(b, uint64(a.FirstOffset))
		b = binary.BigEndian.AppendUint64(b, uint64(a.LastOffset))
	}
	body := b[snapHeaderSize:]
	binary.BigEndian.PutUint32(b[6:], uint32(len(body)))
	binary.BigEndian.PutUint32(b[10:], crc32.Checksum(body, castagnoliTable))
	return b
}

// decodeProducerSnapshot parses a snapshot file's bytes, rejecting anything
// malformed with an error wrapping errCorruptSnapshot.
func decodeProducerSnapshot(b []byte) (*producerSnapshot, error) {
	if len(b) < snapHeaderSize || string(b[:4]) != snapMagic {
		return nil, fmt.Errorf("%w: bad magic or short file (%d bytes)", errCorruptSnapshot, len(b))
	}
	if v := binary.BigEndian.Uint16(b[4:]); v != snapVersion {
		return nil, fmt.Errorf("%w: unsupported version %d", errCorruptSnapshot, v)
	}
	body := b[snapHeaderSize:]
	if n := binary.BigEndian.Uint32(b[6:]); int64(n) != int64(len(body)) {
		return nil, fmt.Errorf("%w: body of %d bytes, header says %d", errCorruptSnapshot, len(body), n)
	}
	if crc := binary.BigEndian.Uint32(b[10:]); crc != crc32.Checksum(body, castagnoliTable) {
		return nil, fmt.Errorf("%w: CRC mismatch", errCorruptSnapshot)
	}
	d := snapDecoder{b: body}
	snap := &producerSnapshot{offset: d.i64(), logStart: d.i64(), producers: make(map[int64]*producerEntry)}
	np, na := d.u32(), d.u32()
	if d.err != nil {
		return nil, d.err
	}
	if snap.offset < 0 || snap.logStart < 0 || int64(np)*snapProdSize+int64(na)*snapAbortSize > int64(len(d.b)) {
		return nil, fmt.Errorf("%w: bad counts or offsets", errCorruptSnapshot)
	}
	for range np {
		pid := d.i64()
		e := &producerEntry{epoch: int16(d.u16()), txnFirst: d.i64(), lastAppendMs: d.i64()}
		nb := int(d.u8())
		if d.err != nil {
			return nil, d.err
		}
		if pid < 0 || nb > maxCachedBatches || e.txnFirst < -1 || snap.producers[pid] != nil {
			return nil, fmt.Errorf("%w: bad producer %d", errCorruptSnapshot, pid)
		}
		for range nb {
			m := batchMeta{firstSeq: d.i32(), lastSeq: d.i32(), baseOffset: d.i64(), lastOffset: d.i64(), appendTimeMs: d.i64()}
			if d.err == nil && (m.firstSeq < 0 || m.lastSeq < 0 || m.baseOffset < 0 || m.lastOffset < m.baseOffset) {
				return nil, fmt.Errorf("%w: bad batch of producer %d", errCorruptSnapshot, pid)
			}
			e.batches = append(e.batches, m)
		}
		snap.producers[pid] = e
	}
	for range na {
		a := AbortedTxn{ProducerID: d.i64(), FirstOffset: d.i64(), LastOffset: d.i64()}
		if d.err == nil && (a.FirstOffset < 0 || a.LastOffset < a.FirstOffset ||
			(len(snap.aborted) > 0 && a.LastOffset < snap.aborted[len(snap.aborted)-1].LastOffset)) {
			return nil, fmt.Errorf("%w: bad aborted transaction", errCorruptSnapshot)
		}
		snap.aborted = append(snap.aborted, a)
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", errCorruptSnapshot, len(d.b))
	}
	return snap, nil
}

// snapDecoder reads big-endian integers, remembering the first shortage.
type snapDecoder struct {
	b   []byte
	err error
}

func (d *snapDecoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b) < n {
		d.err = fmt.Errorf("%w: truncated", errCorruptSnapshot)
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *snapDecoder) u8() uint8 {
	if v := d.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (d *snapDecoder) u16() uint16 {
	if v := d.take(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (d *snapDecoder) u32() uint32 {
	if v := d.take(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (d *snapDecoder) i32() int32 { return int32(d.u32()) }

func (d *snapDecoder) i64() int64 {
	if v := d.take(8); v != nil {
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}
