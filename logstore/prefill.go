package logstore

import (
	"fmt"
	"io"
	"math"
	"os"
)

// Pre-written segment tails.
//
// An fdatasync after an append that grows the file must also make the
// file's metadata durable: the new size and the newly allocated blocks,
// which a later read of the data needs (a journal commit on a journaling
// ext4; synchronous inode and allocation writes on the development VM's
// ext4, which is mounted without a journal).
// An fdatasync after writing over blocks that are already allocated,
// written and synced has only the data to flush. On the development VM's
// disk a 16 KiB write+fdatasync costs 244 µs (p50) appended and 132 µs
// overwriting; 1 MiB costs 3.45 ms and 0.56 ms (docs/benchmarks.md,
// "Pre-written segment tails"). fallocate does not help: its unwritten
// extents must be converted, which is a metadata write too.
//
// So under FsyncAlways a filler keeps the active segment's file
// written with zeros, and synced, a bounded distance (Options.SegmentPrefill)
// beyond the append position; appends then overwrite those zeros, and the
// commit's fdatasync finds no metadata to write. The file's size is then
// larger than the segment's logical length (segment.written), which is the
// only length the log uses: readers stop at the published tip, rolls and
// retention use the assigned and written sizes, and nothing but recovery
// looks at a segment file's size.
//
// Invariants:
//
//   - Zeros are only ever written at or beyond segment.written, under
//     writeMu (which every data write holds), so they never overwrite data.
//   - The fill runs in a goroutine of its own (fillPiece, at most one per
//     partition), one prefillChunk piece after a commit that passed the
//     segment's refill mark and published its tip, if no append waits for
//     a commit, and holds no lock while it syncs: it delays no commit
//     except by what the kernel shares (a commit's fdatasync that starts
//     while the filler's runs waits for the zeros under writeback, which
//     is why a piece is small and starts just after a commit, in the gap
//     before the next). When commits come back to back and the tail runs
//     low (a quarter of Options.SegmentPrefill), or on a new segment, the
//     committer tops it up itself, as it always did (kickPrefill). It writes, then syncs, each piece, so a later
//     commit's fdatasync does not flush it. It syncs through a file
//     descriptor of its own, so a writeback error it meets is still
//     reported to the committer's next fdatasync; it also records the
//     error (fillErr), and that commit fails as if its own fdatasync had,
//     as before.
//   - Roll and close cut the tail (trimPrefill) after a flush that took
//     writeMu, with mu held from the end of that flush and sealing set
//     during it; the filler checks sealing, closed and the active segment
//     under mu with writeMu held before every piece, so it never writes
//     zeros after the cut, and close waits for it to end.
//   - A segment is sealed (roll) or closed at its logical length: the
//     pre-written tail is truncated and the truncation synced before the
//     next segment exists or the recovery point names the end, so only the
//     last segment of a partition can end in zeros, and only after a crash.
//   - Recovery reads the last segment's batches up to the first one that
//     does not parse; if every byte from there to the end of the file is
//     zero, that is a pre-written tail, cut without a warning. A torn or
//     corrupt batch is not all zeros (a batch starts with a non-zero
//     length), so it is handled as before: a torn tail if no valid batch
//     follows, corruption otherwise.
//   - The fill backs off when the partition is throughput-bound: a commit
//     that wrote more than prefillMaxCommit bytes fills nothing, since at
//     that size the metadata write is a small part of the fdatasync and
//     writing zeros first would double the bytes written.

// defaultSegmentPrefill is Options.SegmentPrefill's default.
const defaultSegmentPrefill = 1 << 20

// prefillMaxCommit is the largest commit (bytes written by one flush)
// after which the committer still extends the pre-written tail.
const prefillMaxCommit = 64 << 10

// zeroWriter is a File that can write zeros at an offset without moving
// its file position (pwrite(2) on Unix). Files without it get no
// pre-written tail.
type zeroWriter interface {
	WriteZerosAt(off, n int64) error
}

// zeroBuf is the source of the zeros WriteZerosAt writes.
var zeroBuf = make([]byte, 64<<10)

// writeZerosAt writes n zeros at off with WriteAt, in zeroBuf-sized pieces.
func writeZerosAt(w io.WriterAt, off, n int64) error {
	for n > 0 {
		k := min(n, int64(len(zeroBuf)))
		m, err := w.WriteAt(zeroBuf[:k], off)
		if err != nil {
			return err
		}
		off += int64(m)
		n -= int64(m)
	}
	return nil
}

// prefillChunk is how many zeros the filler writes and syncs after one
// commit. A commit whose fdatasync starts while the filler's runs waits,
// in the kernel, for the zeros under writeback and for the file's size
// and allocation, which the zeros changed; a small piece, started just
// after a commit, is usually synced before the next commit's fdatasync.
const prefillChunk = 64 << 10

// testHookPrefillSync, when set (tests, before Open), runs in the filler
// after it wrote a piece of zeros and before it syncs them.
var testHookPrefillSync func()

// kickPrefill tops up the active segment's pre-written tail after a
// commit that wrote wrote bytes and synced them (syncMu held, tip
// published). The committer only compares its size with the segment's
// refill mark, so a commit that needs no top-up costs an atomic load.
// Otherwise:
//
//   - if no other append is waiting for a commit, the filler (fillPiece)
//     writes and syncs one prefillChunk piece in a goroutine of its own,
//     at most one per partition, so no commit waits for it, and its
//     fdatasync falls in the gap before the partition's next commit;
//   - if appends are waiting (commits back to back, where a piece's
//     fdatasync would overlap theirs), nothing is written now, and the
//     next commit looks again;
//   - if less than a quarter of Options.SegmentPrefill is left ahead (a
//     new segment, or commits that kept coming back to back), the
//     committer tops the tail up itself, as it always did before: one
//     write and one fdatasync, which delays the next commit but not this
//     one.
func (p *Partition) kickPrefill(seg *segment, size, wrote int64) {
	if p.prefill <= 0 || wrote > prefillMaxCommit || size < seg.refillAt.Load() {
		return
	}
	if _, ok := seg.f.(zeroWriter); !ok {
		return
	}
	if !p.filling.CompareAndSwap(false, true) {
		return // a piece is being written; the next commit asks again
	}
	low, busy := p.tailState(seg)
	switch {
	case low:
		p.fillInCommitter(seg)
		p.filling.Store(false)
	case busy || !seg.acquire():
		p.filling.Store(false)
	default:
		p.fillWG.Add(1)
		go p.fillPiece(seg)
	}
}

// tailState reports whether less than a quarter of Options.SegmentPrefill
// is pre-written ahead of seg's written data, and whether appends are
// waiting for a commit.
func (p *Partition) tailState(seg *segment) (low, busy bool) {
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	low = max(seg.filled, seg.written)-seg.written < p.prefill/4
	p.mu.Lock()
	busy = len(p.pending) > 0
	p.mu.Unlock()
	return low, busy
}

// fillInCommitter tops seg's tail up to its limit in the committer
// (syncMu held, filling set): one write of zeros and one fdatasync of the
// committer's own descriptor; a failed fdatasync is a failed fsync of the
// partition (it may have covered batches written ahead).
func (p *Partition) fillInCommitter(seg *segment) {
	from, to, ok := p.nextFill(seg, math.MaxInt64)
	if !ok {
		return
	}
	if err := p.writeFill(seg, from, to); err != nil {
		p.logger.Warn("pre-writing the segment tail failed; appends extend the file", "partition", p.name, "segment", seg.path, "err", err)
		return
	}
	p.syncing.Store(true) // appenders write ahead meanwhile
	err := seg.f.Sync()
	p.syncing.Store(false)
	if err != nil {
		p.failSync(seg, ioError(fmt.Sprintf("partition %s: fsync pre-written tail of segment %s", p.name, seg.path), err))
		return
	}
	p.syncs.Add(1)
}

// fillPiece is the filler: it writes and syncs the next piece of seg's
// pre-written tail (nextFill), if it needs one. The piece is written under
// writeMu at or beyond seg.written, after checking under mu that seg is
// still the active segment and no roll or close is sealing it (those take
// writeMu before they cut the tail, so they wait for a piece being written
// and the filler writes nothing after them), and then synced without any
// lock, through a file descriptor of its own: a writeback error is then
// reported to the committer's next fdatasync too (Linux reports it to
// every open file description), and the filler also records it (fillErr),
// so that commit fails as if its own fdatasync had. A failed write of zeros
// adds no tail, but the range it asked for counts as pre-written
// (seg.filled), so that trimPrefill cuts whatever part of the zeros
// reached the file before the segment is sealed or closed.
func (p *Partition) fillPiece(seg *segment) {
	defer p.fillWG.Done()
	defer seg.release()
	defer p.filling.Store(false)
	from, to, ok := p.nextFill(seg, prefillChunk)
	if !ok {
		return
	}
	syncer, err := p.fillSyncer(seg)
	if err != nil {
		p.stopFill(seg, "opening the segment to sync its pre-written tail failed; appends extend the file", err)
		return
	}
	if err := p.writeFill(seg, from, to); err != nil {
		p.stopFill(seg, "pre-writing the segment tail failed; appends extend the file", err)
		return
	}
	if testHookPrefillSync != nil {
		testHookPrefillSync()
	}
	if err := syncer.Sync(); err != nil {
		p.fillErr.Store(&err)
		p.stopFill(seg, "fsync of the pre-written segment tail failed", err)
		return
	}
	p.syncs.Add(1)
}

// fillSyncer is the filler's own descriptor of seg's file, opened once per
// segment. Only the running filler (filling set) touches it, and close
// after the last one ended.
func (p *Partition) fillSyncer(seg *segment) (File, error) {
	if p.fillFile != nil && p.fillFileSeg == seg {
		return p.fillFile, nil
	}
	p.closeFillSyncer()
	f, err := p.fs.OpenFile(seg.path, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	p.fillFile, p.fillFileSeg = f, seg
	return f, nil
}

// closeFillSyncer closes the filler's descriptor, if any (the filler, or
// close once no filler runs).
func (p *Partition) closeFillSyncer() {
	if p.fillFile != nil {
		p.fillFile.Close()
		p.fillFile, p.fillFileSeg = nil, nil
	}
}

// nextFill is the next piece of zeros for seg, [from, to), of at most
// piece bytes; ok is false when seg needs none now. A round of pieces
// starts when less than half of Options.SegmentPrefill is left ahead and
// at least half can be filled before the segment's roll size (near the
// end of a segment the last stretch is appended as before: a fill of a
// few pages after every commit would cost an fdatasync each); it goes on,
// a piece after each commit (the refill mark at 0), until a piece reaches
// Options.SegmentPrefill ahead of the append position. Between rounds the
// refill mark is the size past which a commit starts the next one.
func (p *Partition) nextFill(seg *segment, piece int64) (from, to int64, ok bool) {
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	if !p.fillable(seg) {
		return 0, 0, false
	}
	half := p.prefill / 2
	from = max(seg.filled, seg.written)
	limit := min(seg.written+p.prefill, p.settings().segBytes) &^ (pageSize - 1)
	switch {
	case !seg.fillRound && from-seg.written < half && limit-from < half:
		seg.refillAt.Store(math.MaxInt64) // the rest of this segment is appended
		return 0, 0, false
	case !seg.fillRound && from-seg.written >= half || from >= limit:
		seg.fillRound = false
		seg.refillAt.Store(from - half)
		return 0, 0, false
	}
	to = from + min(limit-from, piece)
	if to < limit {
		seg.fillRound = true
		seg.refillAt.Store(0) // the next commit asks for the next piece
	} else {
		seg.fillRound = false // the round ends with this piece
		seg.refillAt.Store(to - half)
	}
	return from, to, true
}

// fillable reports whether the filler may write zeros into seg (writeMu
// held): seg is the active segment, not being sealed, and the partition
// is healthy.
func (p *Partition) fillable(seg *segment) bool {
	if p.aheadErr != nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.closed && !p.sealing && p.syncErr == nil && seg == p.active
}

// writeFill writes zeros into seg's [from, to) (writeMu taken), if seg
// still may be filled and nothing was written there meanwhile.
func (p *Partition) writeFill(seg *segment, from, to int64) error {
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	if !p.fillable(seg) || max(seg.filled, seg.written) != from {
		return nil
	}
	err := seg.f.(zeroWriter).WriteZerosAt(from, to-from)
	// On failure, part of the zeros may be in the file: the cut before the
	// seal (trimPrefill) must cover them.
	seg.filled = to
	return err
}

// fillSyncErr is the error of a failed fdatasync of the filler, if any,
// as an error of the partition's fsync.
func (p *Partition) fillSyncErr() error {
	if e := p.fillErr.Load(); e != nil {
		return fmt.Errorf("fsync of the pre-written tail: %w", *e)
	}
	return nil
}

// stopFill ends seg's filler after a failure: appends extend the file
// from there on (a failed fdatasync also fails the committer's next one,
// which sees the same writeback error).
func (p *Partition) stopFill(seg *segment, msg string, err error) {
	seg.refillAt.Store(math.MaxInt64)
	p.logger.Warn(msg, "partition", p.name, "segment", seg.path, "err", err)
}

// trimPrefill cuts seg's file back to its logical length and syncs the
// cut, if it has a pre-written tail. It runs before a segment is sealed or
// closed, with syncMu held and nothing pending, so no write can race it.
func (p *Partition) trimPrefill(seg *segment) error {
	if seg.filled <= seg.written {
		return nil
	}
	if err := seg.f.Truncate(seg.written); err != nil {
		return ioError("truncate pre-written tail of segment "+seg.path, err)
	}
	if err := seg.f.Sync(); err != nil {
		return ioError("fsync segment "+seg.path, err)
	}
	seg.filled = 0
	return nil
}

// zeroTail reports whether every byte of f in [from, limit) is zero: a
// pre-written tail left by a crash.
func zeroTail(f File, from, limit int64) (bool, error) {
	buf := make([]byte, 64<<10)
	for pos := from; pos < limit; {
		n := min(int64(len(buf)), limit-pos)
		m, err := f.ReadAt(buf[:n], pos)
		if m < int(n) {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return false, err
		}
		for _, c := range buf[:n] {
			if c != 0 {
				return false, nil
			}
		}
		pos += n
	}
	return true, nil
}
