package logstore

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
)

const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
)

// segmentName is the file name stem of a segment: its base offset in 20 digits.
func segmentName(base int64) string { return fmt.Sprintf("%020d", base) }

// parseSegmentName returns the base offset of a "<20 digits>.log" file name.
func parseSegmentName(name string) (int64, bool) {
	stem, ok := strings.CutSuffix(name, logSuffix)
	if !ok || len(stem) != 20 {
		return 0, false
	}
	n, err := strconv.ParseInt(stem, 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// segment is one log file of a partition and its indexes.
//
// Field ownership: assigned and the index's bytesSince belong to the
// partition's append lock (Partition.mu); written belongs to the committer
// (Partition.syncMu); visible and end are published atomically for readers.
type segment struct {
	base int64
	path string // the .log file
	f    File
	idx  *segIndex

	assigned int64 // bytes assigned to batches, including those not yet written (mu)
	written  int64 // bytes written to f (syncMu)
	// filled is where the file's pre-written tail ends (prefill.go): the
	// bytes from written to filled are zeros written and synced ahead of
	// the appends (after a failed pre-write: perhaps zeros, perhaps beyond
	// the file's end; either way cut before a seal); filled <= written when
	// there are none. Written under writeMu (the filler's, fillPiece, holds
	// only writeMu).
	filled int64
	// refillAt is the written size past which a commit starts the filler
	// (prefill.go); 0 for a new segment.
	refillAt atomic.Int64
	// fillRound is set while the filler tops the tail up, a piece after
	// each commit (writeMu).
	fillRound bool
	uncached  int64 // bytes from the start dropped from the page cache (syncMu)

	visible atomic.Int64 // bytes readers may read
	end     atomic.Int64 // offset after the last visible batch

	refs    atomic.Int64 // readers using f, plus one for the partition while the segment is live
	deleted atomic.Bool

	// firstAppend is the wall-clock time (epoch ms) of the segment's first
	// batch, for segment.ms rolls; 0 while empty. Recovery sets it to the
	// open time for an active segment that already has data.
	firstAppend atomic.Int64
}

func newSegment(dir string, base int64, f File) *segment {
	s := &segment{base: base, path: filepath.Join(dir, segmentName(base)+logSuffix), f: f, idx: newSegIndex()}
	s.end.Store(base)
	s.refs.Store(1)
	return s
}

func (s *segment) indexPath() string { return strings.TrimSuffix(s.path, logSuffix) + indexSuffix }
func (s *segment) timeIndexPath() string {
	return strings.TrimSuffix(s.path, logSuffix) + timeIndexSuffix
}

// acquire pins the segment's file for a reader; it fails if the segment has
// been deleted by retention.
func (s *segment) acquire() bool {
	for {
		n := s.refs.Load()
		if n <= 0 {
			return false
		}
		if s.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release unpins the file; the last release of a deleted segment closes it.
func (s *segment) release() {
	if s.refs.Add(-1) == 0 {
		s.f.Close()
	}
}

// writeIndexes persists the segment's indexes (sealing it) durably.
func (s *segment) writeIndexes(fsys FS) error {
	endRel := s.end.Load() - s.base
	offs, times := s.idx.encode(uint32(endRel))
	if err := writeFileDurable(fsys, s.indexPath(), offs); err != nil {
		return err
	}
	return writeFileDurable(fsys, s.timeIndexPath(), times)
}

// writeFileDurable overwrites name with data and syncs it. Unlike
// writeFileAtomic it does not rename: index files are validated on load, so a
// torn index is rebuilt rather than trusted.
func writeFileDurable(fsys FS, name string, data []byte) error {
	f, err := fsys.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return ioError("create "+name, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return ioError("write "+name, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return ioError("sync "+name, err)
	}
	return ioError("close "+name, f.Close())
}
