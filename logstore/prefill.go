package logstore

import (
	"fmt"
	"io"
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
// So under FsyncAlways the committer keeps the active segment's file
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
//   - The fill runs in the committer (syncMu held), after the commit has
//     published its tip: it delays the next commit, never the one that
//     triggered it. It writes, then syncs, the zeros, so a later commit's
//     fdatasync does not flush them.
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

// extendPrefill tops up the active segment's pre-written tail after a
// commit that wrote wrote bytes and synced them (syncMu held, tip
// published). It fills only when less than half of Options.SegmentPrefill
// is left ahead, then at least that half, and never beyond the segment's
// roll size (so the last stretch of a segment is appended as before). A failed write
// of zeros adds no tail, but the range it asked for counts as pre-written
// (seg.filled), so that trimPrefill cuts whatever part of the zeros reached
// the file before the segment is sealed or closed; a failed fdatasync is a failed fsync of the
// partition (failSync), because it may have covered batches written
// ahead meanwhile, but not of the commit that ran before it.
func (p *Partition) extendPrefill(seg *segment, wrote int64) {
	if p.prefill <= 0 || wrote > prefillMaxCommit {
		return
	}
	zw, ok := seg.f.(zeroWriter)
	if !ok {
		return
	}
	p.writeMu.Lock()
	if p.closed || p.aheadErr != nil || seg != p.active {
		p.writeMu.Unlock()
		return
	}
	from := max(seg.filled, seg.written)
	if from-seg.written >= p.prefill/2 {
		p.writeMu.Unlock()
		return
	}
	// Near the end of the segment the last stretch is left to the appends:
	// a fill of a few pages after every commit would cost an fdatasync each.
	to := min(seg.written+p.prefill, p.settings().segBytes) &^ (pageSize - 1)
	if to-from < p.prefill/2 {
		p.writeMu.Unlock()
		return
	}
	if err := zw.WriteZerosAt(from, to-from); err != nil {
		// Part of the zeros may be in the file: the cut before the seal
		// (trimPrefill) must cover them.
		seg.filled = max(seg.filled, to)
		p.writeMu.Unlock()
		p.logger.Warn("pre-writing the segment tail failed; appends extend the file", "partition", p.name, "segment", seg.path, "err", err)
		return
	}
	seg.filled = to
	p.writeMu.Unlock()
	p.syncing.Store(true) // appenders write ahead meanwhile
	err := seg.f.Sync()
	p.syncing.Store(false)
	if err != nil {
		p.failSync(ioError(fmt.Sprintf("partition %s: fsync pre-written tail of segment %s", p.name, seg.path), err))
		return
	}
	p.syncs.Add(1)
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
