package logstore

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sluicehq/sluice/record"
)

// Recovery.
//
// A partition remembers a recovery point: (offset, segment, position) such
// that every byte of the log before it is durable and was verified. It is
// written at every segment roll (the new segment's start) and on Close (the
// end of the log), each time after an fsync of everything before it. Open
// trusts segments before the recovery point (it only checks their index
// files against the log's shape) and verifies every batch after it: length,
// magic byte, CRC-32C and offset contiguity. A bad batch at the end of the
// last segment with nothing valid after it is a torn tail from a crash: it is
// truncated away with a warning saying how much was cut. A bad batch
// followed by valid data is corruption, not a crash artifact: Open fails with
// a CorruptionError naming the offset (unless Options.RepairCorruption, which
// truncates there too).

const recoveryPointFile = "recovery-point"

type recoveryPoint struct {
	Offset   int64 `json:"offset"`   // every offset below is durable and verified
	Segment  int64 `json:"segment"`  // base of the segment holding Offset
	Position int64 `json:"position"` // byte position of Offset in that segment
}

func (p *Partition) writeRecoveryPoint(rp recoveryPoint) error {
	b, err := json.Marshal(rp)
	if err != nil {
		return err
	}
	return writeFileAtomic(p.fs, filepath.Join(p.dir, recoveryPointFile), append(b, '\n'))
}

func readRecoveryPoint(fsys FS, dir string) (recoveryPoint, bool) {
	b, err := readFile(fsys, filepath.Join(dir, recoveryPointFile))
	if err != nil {
		return recoveryPoint{}, false
	}
	var rp recoveryPoint
	if err := json.Unmarshal(b, &rp); err != nil || rp.Offset < 0 || rp.Position < 0 || rp.Segment < 0 {
		return recoveryPoint{}, false
	}
	return rp, true
}

// batchInfo describes one batch met by scanSegment. raw is valid only during
// the callback.
type batchInfo struct {
	h     record.Header
	base  int64
	last  int64
	pos   int64
	size  int
	maxTs int64
	raw   []byte
}

// scanError is a bad batch met by scanSegment.
type scanError struct {
	pos    int64 // byte position of the bad batch
	offset int64 // offset it should have started at
	err    error
}

func (e *scanError) Error() string {
	return fmt.Sprintf("bad batch at byte %d (expected offset %d): %v", e.pos, e.offset, e.err)
}

func (e *scanError) Unwrap() error { return e.err }

var errTornBatch = errors.New("batch cut short by the end of the file")

// scanSegment reads the batches of f between byte positions from and limit,
// the first of which must start at offset expect, verifying each (length,
// magic, CRC-32C, contiguous offsets) and calling fn for each good one. It
// returns the position and offset after the last good batch, and a
// *scanError for the first bad one (nil if the range ends on a batch
// boundary). Errors from fn or from reading are returned as they are.
func scanSegment(f File, from, expect, limit int64, fn func(batchInfo) error) (pos, next int64, err error) {
	pos, next = from, expect
	if limit <= from {
		return pos, next, nil
	}
	// A buffer no larger than the range: Open scans the short tail of
	// every sealed segment (checkSealedTail).
	r := bufio.NewReaderSize(io.NewSectionReader(f, from, limit-from), int(min(limit-from, 1<<20)))
	var hdr [record.HeaderSize]byte
	var buf []byte
	for pos < limit {
		n, rerr := io.ReadFull(r, hdr[:])
		if rerr != nil {
			if errors.Is(rerr, io.ErrUnexpectedEOF) || (errors.Is(rerr, io.EOF) && n == 0 && pos < limit) {
				return pos, next, &scanError{pos: pos, offset: next, err: fmt.Errorf("%w: %d header bytes", errTornBatch, n)}
			}
			return pos, next, rerr
		}
		h, herr := record.ParseHeader(hdr[:])
		if herr != nil {
			return pos, next, &scanError{pos: pos, offset: next, err: herr}
		}
		size := h.Size()
		if pos+int64(size) > limit {
			return pos, next, &scanError{pos: pos, offset: next, err: fmt.Errorf("%w: batch of %d bytes, %d left", errTornBatch, size, limit-pos)}
		}
		if cap(buf) < size {
			buf = make([]byte, size)
		}
		buf = buf[:size]
		copy(buf, hdr[:])
		if _, rerr := io.ReadFull(r, buf[record.HeaderSize:]); rerr != nil {
			if errors.Is(rerr, io.ErrUnexpectedEOF) || errors.Is(rerr, io.EOF) {
				return pos, next, &scanError{pos: pos, offset: next, err: errTornBatch}
			}
			return pos, next, rerr
		}
		if _, verr := record.Verify(buf); verr != nil {
			return pos, next, &scanError{pos: pos, offset: next, err: verr}
		}
		if h.BaseOffset != next {
			return pos, next, &scanError{pos: pos, offset: next, err: fmt.Errorf("%w: batch has base offset %d", ErrCorrupt, h.BaseOffset)}
		}
		if fn != nil {
			if err := fn(batchInfo{h: h, base: h.BaseOffset, last: h.LastOffset(), pos: pos, size: size, maxTs: h.MaxTimestamp, raw: buf}); err != nil {
				return pos, next, err
			}
		}
		pos += int64(size)
		next = h.LastOffset() + 1
	}
	return pos, next, nil
}

// validBatchAfter reports whether a valid batch with a base offset >= minOffset
// starts anywhere in f after byte from (and before limit): the difference
// between a torn tail and corruption in the middle of a segment. It reads
// the tail in chunks, so its memory use does not depend on the segment size.
func validBatchAfter(f File, from, limit, minOffset int64) (bool, error) {
	const chunk = 1 << 20
	buf := make([]byte, chunk+record.HeaderSize)
	for c := from + 1; c+record.HeaderSize <= limit; c += chunk {
		n := min(int64(len(buf)), limit-c)
		data := buf[:n]
		if _, err := f.ReadAt(data, c); err != nil && !errors.Is(err, io.EOF) {
			return false, err
		}
		for q := 0; q < chunk && q+record.HeaderSize <= len(data); q++ {
			if data[q+16] != 2 { // magic
				continue
			}
			h, err := record.ParseHeader(data[q:])
			pos := c + int64(q)
			if err != nil || h.BaseOffset < minOffset || pos+int64(h.Size()) > limit {
				continue
			}
			batch := make([]byte, h.Size())
			if _, err := f.ReadAt(batch, pos); err != nil && !errors.Is(err, io.EOF) {
				return false, err
			}
			if _, err := record.Verify(batch); err == nil {
				return true, nil
			}
		}
	}
	return false, nil
}

// countBatchesCut estimates how many batches a truncation at from removes:
// the headers that still parse one after the other, plus a partial one.
func countBatchesCut(f File, from, limit int64) int {
	n := 0
	pos := from
	var hdr [record.HeaderSize]byte
	for pos < limit {
		if limit-pos < record.HeaderSize {
			return n + 1
		}
		if _, err := f.ReadAt(hdr[:], pos); err != nil {
			return n + 1
		}
		h, err := record.ParseHeader(hdr[:])
		if err != nil {
			return n + 1
		}
		n++
		pos += int64(h.Size())
	}
	return n
}

// recoverPartition loads the segments of p.dir, verifying and repairing them
// as described above, and sets up p's segments, offsets and tip.
func (p *Partition) recoverPartition(repair bool) error {
	p.repair = repair
	if err := p.finishSwaps(); err != nil { // an interrupted compaction (cleaner.go)
		return fmt.Errorf("partition %s: %w", p.name, err)
	}
	p.loadCleanerCheckpoint()
	entries, err := p.fs.ReadDir(p.dir)
	if err != nil {
		return ioError("list partition "+p.dir, err)
	}
	var bases []int64
	for _, e := range entries {
		name := e.Name()
		if base, ok := parseSegmentName(name); ok {
			bases = append(bases, base)
			continue
		}
		if strings.HasSuffix(name, ".tmp") && !strings.HasSuffix(name, snapshotSuffix+".tmp") {
			p.fs.Remove(filepath.Join(p.dir, name)) // an interrupted atomic write
		}
	}
	if len(bases) == 0 {
		seg, err := p.createSegment(0)
		if err != nil {
			return err
		}
		p.segments = []*segment{seg}
		if err := p.finishRecovery(false); err != nil {
			return p.closeSegmentsErr(err)
		}
		return p.loadProducers()
	}
	rp, haveRP := readRecoveryPoint(p.fs, p.dir)
	if !haveRP {
		rp = recoveryPoint{Segment: -1}
	}
	scanned := false
	var scannedBytes int64
	var rewrite []*segment
	for i, base := range bases {
		last := i == len(bases)-1
		if i > 0 {
			prevEnd := p.segments[i-1].end.Load()
			if prevEnd != base {
				return p.closeSegmentsErr(&CorruptionError{
					Segment: filepath.Join(p.dir, segmentName(base)+logSuffix), Offset: prevEnd, Position: 0,
					Err: fmt.Errorf("segment starts at offset %d but the previous one ends at %d", base, prevEnd)})
			}
		}
		path := filepath.Join(p.dir, segmentName(base)+logSuffix)
		f, err := p.fs.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return p.closeSegmentsErr(ioError("open segment "+path, err))
		}
		seg := newSegment(p.dir, base, f)
		p.segments = append(p.segments, seg)
		st, err := f.Stat()
		if err != nil {
			return p.closeSegmentsErr(ioError("stat segment "+path, err))
		}
		size := st.Size()

		// What can be trusted without reading the batches?
		trustedPos, trustedNext := int64(0), base
		switch {
		case base < rp.Segment:
			trustedPos = size
		case base == rp.Segment && rp.Position <= size:
			trustedPos, trustedNext = rp.Position, rp.Offset
		case base == rp.Segment:
			p.logger.Error("segment is shorter than its recovery point: data that was synced is gone (disk or file-system damage); verifying it from the start",
				"partition", p.name, "segment", path, "size", size, "recovery_point", rp.Position)
		}
		if trustedPos > 0 {
			x, endRel, ierr := p.loadIndexes(seg, trustedPos)
			want := int64(-1)
			if trustedPos == size && !last {
				want = bases[i+1]
			} else if base == rp.Segment {
				want = rp.Offset
			}
			if ierr == nil && base+int64(endRel) != want {
				ierr = fmt.Errorf("index says the segment ends at offset %d, expected %d", base+int64(endRel), want)
			}
			if ierr != nil {
				if !errors.Is(ierr, os.ErrNotExist) {
					p.logger.Warn("rebuilding segment index", "segment", path, "reason", ierr)
				}
				trustedPos, trustedNext = 0, base
				scanned = true // rewrite the index at the end
			} else {
				seg.idx = x
				seg.idx.bytesSince = int(trustedPos - lastIndexedPos(x))
				trustedNext = base + int64(endRel)
				if trustedPos == size && !last {
					// A sealed segment below the recovery point: check
					// that its last batch ends at the file's end.
					cut, ok, err := p.checkSealedTail(seg, path, size, bases[i+1])
					if err != nil {
						return p.closeSegmentsErr(err)
					}
					if !ok {
						trustedPos, trustedNext = 0, base // verify it all (corruption)
						seg.idx = newSegIndex()
						scanned = true
					} else {
						size = cut
						trustedPos = cut
						seg.idx.bytesSince = int(trustedPos - lastIndexedPos(x))
					}
				}
				if !last && trustedPos > 0 {
					seg.idx.thin(sealedIndexGap)
				}
			}
		}
		endPos, next := trustedPos, trustedNext
		if trustedPos < size {
			scanned = true
			var serr error
			endPos, next, serr = scanSegment(f, trustedPos, trustedNext, size, func(b batchInfo) error {
				seg.idx.add(uint32(b.base-base), uint32(b.pos), b.size, b.maxTs, p.indexInterval)
				return nil
			})
			scannedBytes += endPos - trustedPos
			var se *scanError
			if serr != nil && !errors.As(serr, &se) {
				return p.closeSegmentsErr(ioError("read segment "+path, serr))
			}
			if se != nil && last {
				// A pre-written tail (prefill.go) after a crash: zeros
				// from the end of the last batch to the end of the file.
				zero, err := zeroTail(f, se.pos, size)
				if err != nil {
					return p.closeSegmentsErr(ioError("read segment "+path, err))
				}
				if zero {
					if err := f.Truncate(se.pos); err != nil {
						return p.closeSegmentsErr(ioError("truncate segment "+path, err))
					}
					p.logger.Debug("cut pre-written tail of segment", "partition", p.name, "segment", path, "position", se.pos, "bytes_cut", size-se.pos)
					size, se = se.pos, nil
				}
			}
			if se != nil {
				middle := !last
				if !middle {
					middle, err = validBatchAfter(f, se.pos, size, se.offset)
					if err != nil {
						return p.closeSegmentsErr(ioError("read segment "+path, err))
					}
				}
				if middle && !repair {
					return p.closeSegmentsErr(&CorruptionError{Segment: path, Offset: se.offset, Position: se.pos, Err: se.err})
				}
				cut := size - se.pos
				batches := countBatchesCut(f, se.pos, size)
				if middle {
					p.logger.Error("truncating corrupt segment (RepairCorruption set): data after the corruption is lost",
						"partition", p.name, "segment", path, "offset", se.offset, "position", se.pos, "bytes_cut", cut, "batches_cut", batches, "reason", se.err)
				} else {
					p.logger.Warn("truncated torn tail of segment",
						"partition", p.name, "segment", path, "offset", se.offset, "position", se.pos, "bytes_cut", cut, "batches_cut", batches, "reason", se.err)
				}
				if err := f.Truncate(se.pos); err != nil {
					return p.closeSegmentsErr(ioError("truncate segment "+path, err))
				}
				if !last {
					// Repair of a middle segment: later segments are gone too.
					for _, b := range bases[i+1:] {
						stem := filepath.Join(p.dir, segmentName(b))
						p.logger.Error("removing segment after repaired corruption", "segment", stem+logSuffix)
						for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
							if err := p.fs.Remove(stem + suf); err != nil && !errors.Is(err, os.ErrNotExist) {
								return p.closeSegmentsErr(ioError("remove "+stem+suf, err))
							}
						}
					}
					bases = bases[:i+1]
					last = true
				}
				size = se.pos
			}
		}
		seg.assigned, seg.written = endPos, endPos
		seg.visible.Store(endPos)
		seg.end.Store(next)
		if last {
			break
		}
		if trustedPos < size || trustedPos == 0 {
			rewrite = append(rewrite, seg) // a sealed segment verified by a scan
		}
	}
	// Sealed segments that were scanned get durable data and fresh index
	// files, so that the next open trusts them.
	for _, seg := range rewrite {
		if err := seg.f.Sync(); err != nil {
			return p.closeSegmentsErr(ioError("fsync segment "+seg.path, err))
		}
		if err := seg.writeIndexes(p.fs); err != nil {
			return p.closeSegmentsErr(err)
		}
		seg.idx.thin(sealedIndexGap)
	}
	if _, err := p.segments[len(p.segments)-1].f.Seek(p.segments[len(p.segments)-1].written, io.SeekStart); err != nil {
		return p.closeSegmentsErr(ioError("seek segment", err))
	}
	if err := p.finishRecovery(scanned); err != nil {
		return p.closeSegmentsErr(err)
	}
	if err := p.loadProducers(); err != nil {
		return p.closeSegmentsErr(err)
	}
	p.logger.Debug("partition recovered", "partition", p.name, "segments", len(p.segments),
		"log_start", p.logStart.Load(), "next_offset", p.nextOffset, "verified_bytes", scannedBytes)
	if scanned {
		// Make what was verified durable and move the recovery point, so
		// that the next open need not scan it again.
		if err := p.checkpoint(); err != nil {
			return p.closeSegmentsErr(err)
		}
	}
	return nil
}

// checkSealedTail verifies the end of a sealed segment that the recovery
// point vouches for: the batches from its last index entry (the index is
// sparse, so this reads at most one index interval and a batch) must be
// valid and end exactly at the file's end with the next segment's base
// offset. Bytes after the last complete batch, when every offset up to the
// next segment is there before them, are not the log's (a torn write by
// another tool, a disk error): they are cut, and the new size returned,
// since nothing acknowledged is lost. ok is false when batches are missing
// or bad before the end: the caller then verifies the whole segment, which
// reports the corruption. Compaction met such bytes only later, failing on
// every pass.
func (p *Partition) checkSealedTail(seg *segment, path string, size, next int64) (cut int64, ok bool, err error) {
	from, fromOff := int64(0), seg.base
	if n := len(seg.idx.offs); n > 0 {
		e := seg.idx.offs[n-1]
		from, fromOff = int64(e.pos), seg.base+int64(e.rel)
	}
	endPos, endOff, serr := scanSegment(seg.f, from, fromOff, size, nil)
	var se *scanError
	if serr != nil && !errors.As(serr, &se) {
		return 0, false, ioError("read segment "+path, serr)
	}
	if endOff != next {
		return 0, false, nil
	}
	if se == nil {
		return size, true, nil
	}
	zero, err := zeroTail(seg.f, endPos, size)
	if err != nil {
		return 0, false, ioError("read segment "+path, err)
	}
	if err := seg.f.Truncate(endPos); err != nil {
		return 0, false, ioError("truncate segment "+path, err)
	}
	if err := seg.f.Sync(); err != nil {
		return 0, false, ioError("fsync segment "+path, err)
	}
	if zero {
		p.logger.Debug("cut pre-written tail of sealed segment", "partition", p.name, "segment", path, "position", endPos, "bytes_cut", size-endPos)
	} else {
		p.logger.Warn("cut bytes after the last batch of a sealed segment (not written by the log; no offset lost)",
			"partition", p.name, "segment", path, "position", endPos, "bytes_cut", size-endPos, "reason", se.err)
	}
	return endPos, true, nil
}

func lastIndexedPos(x *segIndex) int64 {
	if len(x.offs) == 0 {
		return 0
	}
	return int64(x.offs[len(x.offs)-1].pos)
}

// loadIndexes reads a segment's index files and checks them against a log of
// size bytes.
func (p *Partition) loadIndexes(seg *segment, size int64) (*segIndex, uint32, error) {
	offs, err := readFile(p.fs, seg.indexPath())
	if err != nil {
		return nil, 0, err
	}
	times, err := readFile(p.fs, seg.timeIndexPath())
	if err != nil {
		return nil, 0, err
	}
	return decodeIndex(offs, times, size)
}

// finishRecovery sets the partition's offsets and tip from its segments.
func (p *Partition) finishRecovery(bool) error {
	last := p.segments[len(p.segments)-1]
	if last.written > 0 {
		last.firstAppend.Store(time.Now().UnixMilli())
	}
	p.active = last
	p.nextOffset = last.end.Load()
	p.durable.Store(p.nextOffset)
	p.logStart.Store(p.segments[0].base)
	if err := p.loadLogStart(); err != nil { // moved further by DeleteRecords (alter.go)
		return err
	}
	p.tip.Store(&tip{hw: p.nextOffset, lso: p.nextOffset, seg: last, size: last.written})
	return nil
}

// closeSegmentsErr closes the segments opened so far and returns err.
func (p *Partition) closeSegmentsErr(err error) error {
	for _, s := range p.segments {
		s.f.Close()
	}
	p.segments = nil
	return fmt.Errorf("partition %s: %w", p.name, err)
}

// checkpoint fsyncs the active segment, writes its indexes and moves the
// recovery point to the end of the log. It runs with syncMu and mu held (or
// before the partition is shared).
func (p *Partition) checkpoint() error {
	seg := p.active
	if err := seg.f.Sync(); err != nil {
		return ioError("fsync segment "+seg.path, err)
	}
	p.unsynced = false
	if err := seg.writeIndexes(p.fs); err != nil {
		return err
	}
	return p.writeRecoveryPoint(recoveryPoint{Offset: p.nextOffset, Segment: seg.base, Position: seg.written})
}

// loadProducers loads the newest producer-state snapshot and replays the
// batches after it.
func (p *Partition) loadProducers() error {
	if err := removeSnapshotsAbove(p.fs, p.dir, p.nextOffset); err != nil {
		return err
	}
	st, from, err := loadProducerStateLogger(p.fs, p.dir, p.logger)
	if err != nil {
		return err
	}
	if err := p.replayProducers(st, from, p.nextOffset); err != nil {
		return err
	}
	st.dropBelow(p.logStart.Load())
	p.pstate = st
	if t := p.tip.Load(); t != nil {
		nt := *t
		nt.lso = st.lastStable(t.hw)
		p.tip.Store(&nt)
	}
	return nil
}

// reloadProducerState rebuilds the producer state from disk up to the
// committed offset (after a failed write discarded assigned batches).
func (p *Partition) reloadProducerState() error {
	if p.pstate == nil {
		return nil
	}
	return p.loadProducers()
}

// replayProducers feeds st every producer batch in [from, to).
func (p *Partition) replayProducers(st *producerState, from, to int64) error {
	from = max(from, p.logStart.Load())
	if from >= to {
		return nil
	}
	segs := p.segmentsFrom(from)
	defer func() {
		for _, s := range segs {
			s.release()
		}
	}()
	for _, seg := range segs {
		end := seg.end.Load()
		if end <= from {
			continue
		}
		rel, pos := uint32(0), uint32(0)
		if from > seg.base {
			rel, pos = seg.idx.lookup(uint32(from - seg.base))
		}
		_, _, err := scanSegment(seg.f, int64(pos), seg.base+int64(rel), seg.written, func(b batchInfo) error {
			if b.last < from || b.base >= to || b.h.ProducerID < 0 {
				return nil
			}
			st.onAppendBatch(b.h, b.raw, b.maxTs)
			return nil
		})
		if err != nil {
			var se *scanError
			if p.repair && errors.As(err, &se) {
				p.logger.Error("producer state replay stopped at corrupt data (RepairCorruption set); idempotence state may be incomplete",
					"partition", p.name, "segment", seg.path, "offset", se.offset, "position", se.pos, "reason", se.err)
				return nil
			}
			var ce *CorruptionError
			if errors.As(err, &se) {
				ce = &CorruptionError{Segment: seg.path, Offset: se.offset, Position: se.pos, Err: se.err}
				return ce
			}
			return fmt.Errorf("replay producer state from segment %s: %w", seg.path, err)
		}
	}
	return nil
}

// snapshotProducers persists the producer state as of offset (mu held; all
// batches below offset durable).
func (p *Partition) snapshotProducers(offset int64) error {
	if p.pstate == nil {
		return nil
	}
	return p.pstate.writeSnapshot(offset)
}
