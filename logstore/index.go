package logstore

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"sync"
)

// The sparse indexes of a segment.
//
// The offset index maps a relative offset (offset - segment base) to the byte
// position of the batch that starts there; an entry is added every
// IndexIntervalBytes of log, so a lookup lands at most one interval before the
// wanted batch. The position of the segment's first batch (0) is implicit.
//
// The time index holds entries (T, rel): T is the largest timestamp of all
// batches before relative offset rel. T strictly increases from entry to
// entry, so the last entry with T < ts says where a scan for the first record
// with a timestamp >= ts may start. A sealed segment's last time entry is
// (largest timestamp of the segment, relative end offset); it doubles as a
// consistency check of the index against the log.
//
// On disk an offset entry is 8 bytes (rel uint32, pos uint32, big endian) and
// a time entry 12 bytes (T int64, rel uint32). Both files are rewritten whole
// when a segment is sealed (roll or Close); the active segment's entries live
// in memory and are rebuilt by recovery after a crash.

const (
	offsetEntrySize = 8
	timeEntrySize   = 12
	noTimestamp     = int64(-1) << 63
)

type offsetIndexEntry struct {
	rel uint32
	pos uint32
}

type timeIndexEntry struct {
	ts  int64
	rel uint32
}

// segIndex is a segment's in-memory index. Appenders add entries under the
// partition's append lock and mu; readers search under mu.RLock.
type segIndex struct {
	mu    sync.RWMutex
	offs  []offsetIndexEntry
	times []timeIndexEntry
	maxTs int64 // largest timestamp of all batches added

	bytesSince int // log bytes since the last offset entry (append lock)
}

func newSegIndex() *segIndex { return &segIndex{maxTs: noTimestamp} }

// add records the batch that starts at rel/pos, of size bytes, whose largest
// timestamp is maxTs.
func (x *segIndex) add(rel uint32, pos uint32, size int, maxTs int64, interval int) {
	needEntry := pos > 0 && x.bytesSince >= interval
	x.mu.Lock()
	if needEntry {
		x.offs = append(x.offs, offsetIndexEntry{rel: rel, pos: pos})
		if x.maxTs != noTimestamp && (len(x.times) == 0 || x.maxTs > x.times[len(x.times)-1].ts) {
			x.times = append(x.times, timeIndexEntry{ts: x.maxTs, rel: rel})
		}
		x.bytesSince = 0
	}
	if maxTs > x.maxTs {
		x.maxTs = maxTs
	}
	x.mu.Unlock()
	x.bytesSince += size
}

// lookup returns the largest indexed (rel, pos) with rel <= target (or 0, 0).
func (x *segIndex) lookup(target uint32) (uint32, uint32) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	i := sort.Search(len(x.offs), func(i int) bool { return x.offs[i].rel > target })
	if i == 0 {
		return 0, 0
	}
	e := x.offs[i-1]
	return e.rel, e.pos
}

// timeLookup returns the relative offset at which a scan for the first
// timestamp >= ts may start.
func (x *segIndex) timeLookup(ts int64) uint32 {
	x.mu.RLock()
	defer x.mu.RUnlock()
	i := sort.Search(len(x.times), func(i int) bool { return x.times[i].ts >= ts })
	if i == 0 {
		return 0
	}
	return x.times[i-1].rel
}

func (x *segIndex) maxTimestamp() int64 {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.maxTs
}

// truncate drops the entries at or beyond relative offset rel / byte pos
// (after a failed write) and resets the timestamp to maxTs.
func (x *segIndex) truncate(rel uint32, maxTs int64, bytesSince int) {
	x.mu.Lock()
	i := sort.Search(len(x.offs), func(i int) bool { return x.offs[i].rel >= rel })
	x.offs = x.offs[:i]
	j := sort.Search(len(x.times), func(i int) bool { return x.times[i].rel >= rel })
	x.times = x.times[:j]
	x.maxTs = maxTs
	x.mu.Unlock()
	x.bytesSince = bytesSince
}

func (x *segIndex) encode(endRel uint32) (offs, times []byte) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	offs = make([]byte, 0, len(x.offs)*offsetEntrySize)
	for _, e := range x.offs {
		offs = binary.BigEndian.AppendUint32(offs, e.rel)
		offs = binary.BigEndian.AppendUint32(offs, e.pos)
	}
	times = make([]byte, 0, (len(x.times)+1)*timeEntrySize)
	for _, e := range x.times {
		times = binary.BigEndian.AppendUint64(times, uint64(e.ts))
		times = binary.BigEndian.AppendUint32(times, e.rel)
	}
	// The closing entry: (largest timestamp, relative end offset).
	times = binary.BigEndian.AppendUint64(times, uint64(x.maxTs))
	times = binary.BigEndian.AppendUint32(times, endRel)
	return offs, times
}

// decodeIndex parses index files of a sealed segment whose log has size
// bytes, and checks them: entries strictly increasing, positions inside the
// log, and a closing time entry. It returns the index and the relative end
// offset recorded in the closing entry.
func decodeIndex(offs, times []byte, size int64) (*segIndex, uint32, error) {
	if len(offs)%offsetEntrySize != 0 {
		return nil, 0, fmt.Errorf("offset index of %d bytes is not a multiple of %d", len(offs), offsetEntrySize)
	}
	if len(times)%timeEntrySize != 0 || len(times) == 0 {
		return nil, 0, fmt.Errorf("time index of %d bytes is not a non-zero multiple of %d", len(times), timeEntrySize)
	}
	x := newSegIndex()
	for i := 0; i < len(offs); i += offsetEntrySize {
		e := offsetIndexEntry{rel: binary.BigEndian.Uint32(offs[i:]), pos: binary.BigEndian.Uint32(offs[i+4:])}
		if e.pos == 0 || int64(e.pos) >= size {
			return nil, 0, fmt.Errorf("offset index entry %d: position %d outside the log (%d bytes)", i/offsetEntrySize, e.pos, size)
		}
		if n := len(x.offs); n > 0 && (e.rel <= x.offs[n-1].rel || e.pos <= x.offs[n-1].pos) {
			return nil, 0, fmt.Errorf("offset index entry %d is not after the previous one", i/offsetEntrySize)
		}
		x.offs = append(x.offs, e)
	}
	for i := 0; i < len(times); i += timeEntrySize {
		e := timeIndexEntry{ts: int64(binary.BigEndian.Uint64(times[i:])), rel: binary.BigEndian.Uint32(times[i+8:])}
		x.times = append(x.times, e)
	}
	closing := x.times[len(x.times)-1]
	x.times = x.times[:len(x.times)-1]
	for i, e := range x.times {
		if i > 0 && (e.ts <= x.times[i-1].ts || e.rel <= x.times[i-1].rel) {
			return nil, 0, fmt.Errorf("time index entry %d is not after the previous one", i)
		}
		if e.rel > closing.rel || e.ts > closing.ts {
			return nil, 0, fmt.Errorf("time index entry %d is beyond the segment's end", i)
		}
	}
	if n := len(x.offs); n > 0 && x.offs[n-1].rel >= closing.rel {
		return nil, 0, fmt.Errorf("offset index entry beyond the segment's end offset")
	}
	x.maxTs = closing.ts
	return x, closing.rel, nil
}

// sealedIndexGap is the spacing of the offset-index entries kept in memory
// for sealed segments (the files keep every entry). Reads of old data walk
// at most this many bytes of batch headers; memory is 16 bytes per 64 KiB of
// log instead of 8 per 4 KiB.
const sealedIndexGap = 64 << 10

// thin keeps in memory only offset entries at least gap bytes apart, and the
// time entries at the same relative offsets. Every kept entry stays exact,
// so lookups stay correct; they only start further back.
func (x *segIndex) thin(gap uint32) {
	x.mu.Lock()
	defer x.mu.Unlock()
	var offs []offsetIndexEntry
	last := uint32(0)
	for _, e := range x.offs {
		if e.pos-last >= gap {
			offs = append(offs, e)
			last = e.pos
		}
	}
	var times []timeIndexEntry
	j := 0
	for _, e := range x.times {
		for j < len(offs) && offs[j].rel < e.rel {
			j++
		}
		if j < len(offs) && offs[j].rel == e.rel {
			times = append(times, e)
		}
	}
	x.offs = slices.Clip(offs)
	x.times = slices.Clip(times)
}
