package logstore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/sluicehq/sluice/record"
)

// epochFile is the partition's leader-epoch checkpoint: the start offset of
// every leader epoch that still has data in the log.
const epochFile = "leader-epoch-checkpoint"

// epochFileVersion is the version line of the checkpoint file.
const epochFileVersion = 0

// maxEpochEntries bounds the entries read from a checkpoint file (one per
// open of the log; far more than any real partition accumulates).
const maxEpochEntries = 1 << 20

// UndefinedEpoch is the leader epoch (and UndefinedEpochOffset the offset)
// of an answer that is not known, as Kafka's UNDEFINED_EPOCH and
// UNDEFINED_EPOCH_OFFSET.
const (
	UndefinedEpoch       int32 = -1
	UndefinedEpochOffset int64 = -1
)

// EpochEntry is one leader epoch of a partition and the first offset
// written in it.
type EpochEntry struct {
	Epoch       int32
	StartOffset int64
}

// leaderEpochs is a partition's leader-epoch cache. Sluice is a single
// broker: it takes the leadership of a partition each time the log opens it,
// so each open starts a new epoch at the log end offset.
type leaderEpochs struct {
	mu      sync.RWMutex
	entries []EpochEntry // strictly increasing epochs and start offsets
	current atomic.Int32 // the epoch being written; stamped on every batch
}

// beginLeaderEpoch loads the partition's leader-epoch checkpoint, drops the
// entries the recovered log no longer backs (starting above its end, or
// wholly below its start), starts the next epoch at the log end offset and
// writes the checkpoint back durably. It runs once the partition is
// recovered, before it is shared; on failure it closes the segments.
func (p *Partition) beginLeaderEpoch() error {
	name := filepath.Join(p.dir, epochFile)
	var entries []EpochEntry
	b, err := readFile(p.fs, name)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return p.closeSegmentsErr(ioError("read "+name, err))
	default:
		entries, err = decodeEpochCheckpoint(b)
		if err != nil && !p.repair {
			return p.closeSegmentsErr(fmt.Errorf("%s: %w: %v", name, ErrCorrupt, err))
		}
		if err != nil {
			p.logger.Error("discarding corrupt leader-epoch checkpoint (RepairCorruption set); epochs continue after the newest one stamped in the active segment",
				"partition", p.name, "file", name, "reason", err)
			entries = nil
		}
	}
	next := int32(0)
	if len(entries) > 0 {
		next = entries[len(entries)-1].Epoch + 1
	} else if len(b) > 0 {
		next = p.newestStampedEpoch() + 1 // a discarded checkpoint: never go back
	}
	entries = truncateEpochsAbove(entries, p.nextOffset)
	entries = truncateEpochsBelow(entries, p.logStart.Load())
	entries = assignEpoch(entries, EpochEntry{Epoch: next, StartOffset: p.nextOffset})
	if err := writeFileAtomic(p.fs, name, encodeEpochCheckpoint(entries)); err != nil {
		return p.closeSegmentsErr(err)
	}
	p.epochs.mu.Lock()
	p.epochs.entries = entries
	p.epochs.mu.Unlock()
	p.epochs.current.Store(next)
	return nil
}

// newestStampedEpoch returns the largest PartitionLeaderEpoch of the
// batches of the active segment (-1 if none), read before the partition is
// shared.
func (p *Partition) newestStampedEpoch() int32 {
	newest := UndefinedEpoch
	for off := p.active.base; off < p.nextOffset; {
		res, err := p.Read(max(off, p.logStart.Load()), 1<<20)
		if err != nil || len(res.Batches) == 0 {
			break
		}
		for b := res.Batches; len(b) >= record.HeaderSize; {
			h, err := record.ParseHeader(b)
			if err != nil || h.Size() > len(b) {
				return newest
			}
			newest = max(newest, h.PartitionLeaderEpoch)
			off = h.LastOffset() + 1
			b = b[h.Size():]
		}
	}
	return newest
}

// assignEpoch appends e to entries, first removing every entry that is not
// below it in both epoch and start offset (an epoch that began at the same
// offset wrote nothing).
func assignEpoch(entries []EpochEntry, e EpochEntry) []EpochEntry {
	n := len(entries)
	for n > 0 && (entries[n-1].Epoch >= e.Epoch || entries[n-1].StartOffset >= e.StartOffset) {
		n--
	}
	return append(entries[:n:n], e)
}

// truncateEpochsAbove drops the entries that start above end (their data
// did not survive recovery).
func truncateEpochsAbove(entries []EpochEntry, end int64) []EpochEntry {
	n := len(entries)
	for n > 0 && entries[n-1].StartOffset > end {
		n--
	}
	return entries[:n]
}

// truncateEpochsBelow drops the entries whose data is wholly below start
// (removed by retention); the last of them, if its epoch reaches past
// start, is kept and moved to start.
func truncateEpochsBelow(entries []EpochEntry, start int64) []EpochEntry {
	i := 0
	for i < len(entries) && entries[i].StartOffset <= start {
		i++
	}
	if i == 0 {
		return entries
	}
	out := make([]EpochEntry, 0, len(entries)-i+1)
	out = append(out, EpochEntry{Epoch: entries[i-1].Epoch, StartOffset: start})
	return append(out, entries[i:]...)
}

// encodeEpochCheckpoint renders entries as the checkpoint file: a version
// line, a count line, then one "epoch start-offset" line per entry.
func encodeEpochCheckpoint(entries []EpochEntry) []byte {
	b := fmt.Appendf(nil, "%d\n%d\n", epochFileVersion, len(entries))
	for _, e := range entries {
		b = fmt.Appendf(b, "%d %d\n", e.Epoch, e.StartOffset)
	}
	return b
}

// decodeEpochCheckpoint parses a checkpoint file. It rejects anything but
// the exact format encodeEpochCheckpoint writes with non-negative,
// strictly increasing epochs and start offsets.
func decodeEpochCheckpoint(b []byte) ([]EpochEntry, error) {
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return nil, errors.New("leader-epoch checkpoint is not newline-terminated")
	}
	lines := bytes.Split(b[:len(b)-1], []byte{'\n'})
	if len(lines) < 2 {
		return nil, errors.New("leader-epoch checkpoint has no header")
	}
	v, err := strconv.Atoi(string(lines[0]))
	if err != nil || v != epochFileVersion {
		return nil, fmt.Errorf("leader-epoch checkpoint version %q, expected %d", lines[0], epochFileVersion)
	}
	n, err := strconv.Atoi(string(lines[1]))
	if err != nil || n < 0 || n > maxEpochEntries || n != len(lines)-2 {
		return nil, fmt.Errorf("leader-epoch checkpoint count %q does not match its %d entries", lines[1], len(lines)-2)
	}
	entries := make([]EpochEntry, 0, n)
	for i, line := range lines[2:] {
		epoch, start, ok := bytes.Cut(line, []byte{' '})
		if !ok {
			return nil, fmt.Errorf("leader-epoch checkpoint entry %d: %q is not \"epoch offset\"", i, line)
		}
		e, err1 := strconv.ParseInt(string(epoch), 10, 32)
		o, err2 := strconv.ParseInt(string(start), 10, 64)
		if err1 != nil || err2 != nil || e < 0 || o < 0 {
			return nil, fmt.Errorf("leader-epoch checkpoint entry %d: %q is not two non-negative numbers", i, line)
		}
		if i > 0 && (int32(e) <= entries[i-1].Epoch || o <= entries[i-1].StartOffset) {
			return nil, fmt.Errorf("leader-epoch checkpoint entry %d: %q does not follow epoch %d at offset %d", i, line, entries[i-1].Epoch, entries[i-1].StartOffset)
		}
		entries = append(entries, EpochEntry{Epoch: int32(e), StartOffset: o})
	}
	return entries, nil
}

// LeaderEpoch returns the partition's current leader epoch: the one stamped
// on every batch appended since the log was opened.
func (p *Partition) LeaderEpoch() int32 { return p.epochs.current.Load() }

// LeaderEpochs returns the partition's leader-epoch cache, oldest first,
// without the epochs whose data retention removed.
func (p *Partition) LeaderEpochs() []EpochEntry {
	p.epochs.mu.RLock()
	defer p.epochs.mu.RUnlock()
	return truncateEpochsBelow(append([]EpochEntry(nil), p.epochs.entries...), p.logStart.Load())
}

// EndOffsetForEpoch answers Kafka's OffsetForLeaderEpoch for epoch: the
// largest epoch not above it that the cache knows and the offset where that
// epoch ends (the start offset of the next larger epoch, or the log end
// offset for the current epoch). An epoch below every known one answers
// itself and the start offset of the first epoch; an undefined or unknown
// larger epoch answers UndefinedEpoch and UndefinedEpochOffset.
func (p *Partition) EndOffsetForEpoch(epoch int32) (leaderEpoch int32, endOffset int64) {
	if epoch < 0 {
		return UndefinedEpoch, UndefinedEpochOffset
	}
	if epoch == p.LeaderEpoch() {
		return epoch, p.logEndOffset()
	}
	return endOffsetFor(p.LeaderEpochs(), epoch)
}

// endOffsetFor is EndOffsetForEpoch over a cache, for an epoch that is not
// the current one.
func endOffsetFor(entries []EpochEntry, epoch int32) (int32, int64) {
	higher := -1 // first entry with a larger epoch
	for i, e := range entries {
		if e.Epoch > epoch {
			higher = i
			break
		}
	}
	switch {
	case higher < 0:
		return UndefinedEpoch, UndefinedEpochOffset
	case higher == 0:
		return epoch, entries[0].StartOffset
	default:
		return entries[higher-1].Epoch, entries[higher].StartOffset
	}
}

// EpochForOffset returns the leader epoch the batch at offset was written
// in, by the cache, or UndefinedEpoch when the cache does not cover it.
func (p *Partition) EpochForOffset(offset int64) int32 {
	epoch := UndefinedEpoch
	for _, e := range p.LeaderEpochs() {
		if e.StartOffset > offset {
			break
		}
		epoch = e.Epoch
	}
	return epoch
}

// logEndOffset is the offset the next appended batch gets.
func (p *Partition) logEndOffset() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.nextOffset
}
