package logstore

import (
	"errors"
	"fmt"
	"io"

	"github.com/sluicehq/sluice/record"
)

// minReadWindow is the smallest read from a segment file: it covers the walk
// from an index entry to the wanted batch (at most an index interval) and,
// for small fetches, the data itself, in one pread.
const minReadWindow = 16 << 10

// Read returns whole batches starting with the batch that contains offset,
// up to maxBytes in total but always at least one whole batch if any exists
// (as Kafka does). Batches come from one segment; the next Read continues.
// Only acknowledged (durable under the policy) data is returned, and every
// returned batch has had its CRC-32C checked: corrupt data is reported as an
// error matching ErrCorrupt, never returned. An offset below the log start
// offset or above the high watermark fails with ErrOffsetOutOfRange; offset
// == high watermark returns no batches. The returned slice belongs to the
// caller.
func (p *Partition) Read(offset int64, maxBytes int) (ReadResult, error) {
	select {
	case <-p.closing:
		return ReadResult{}, p.closedErrNoLock()
	default:
	}
	t := p.tip.Load()
	ls := p.logStart.Load()
	res := ReadResult{HighWatermark: t.hw, LastStable: t.lso, LogStartOffset: ls}
	rt := p.remoteTier()
	if rt != nil {
		if offset < ls && offset >= 0 {
			return p.readRemote(rt, res, offset, maxBytes)
		}
		res.LogStartOffset = p.logStartOffset() // of both tiers
	}
	if offset < ls || offset > t.hw {
		return res, fmt.Errorf("partition %s: read offset %d: %w (available: %d to %d)", p.name, offset, ErrOffsetOutOfRange, ls, t.hw)
	}
	if offset == t.hw {
		return res, nil
	}
	seg := p.segmentFor(offset)
	if seg == nil {
		// Retention removed the segment after we looked at the log start.
		ls = p.logStart.Load()
		if rt != nil && offset < ls {
			// It was uploaded first: the remote tier has it.
			return p.readRemote(rt, res, offset, maxBytes)
		}
		if rt == nil {
			res.LogStartOffset = ls
		}
		return res, fmt.Errorf("partition %s: read offset %d: %w (available: %d to %d)", p.name, offset, ErrOffsetOutOfRange, ls, t.hw)
	}
	defer seg.release()
	limit := seg.visible.Load()
	if seg == t.seg {
		limit = t.size
	}
	data, err := p.readSegment(seg, offset, limit, maxBytes)
	if err != nil {
		return res, err
	}
	res.Batches = data
	return res, nil
}

// readRemote serves a read below the local log start from the remote tier.
func (p *Partition) readRemote(rt RemoteTier, res ReadResult, offset int64, maxBytes int) (ReadResult, error) {
	if offset >= p.deleteFloor.Load() {
		if err := p.RemoteReady(); err != nil {
			return res, fmt.Errorf("read offset %d: %w", offset, err)
		}
	}
	start := p.logStartOffset()
	res.LogStartOffset = start
	if offset < start {
		return res, fmt.Errorf("partition %s: read offset %d: %w (available: %d to %d)", p.name, offset, ErrOffsetOutOfRange, start, res.HighWatermark)
	}
	data, err := rt.Read(p.topic.name, p.id, offset, maxBytes)
	if errors.Is(err, ErrOffsetOutOfRange) {
		// The remote tier dropped it meanwhile, or local retention moved
		// the local start after we looked: try the local tier once more.
		if ls := p.logStart.Load(); offset >= ls {
			return p.Read(offset, maxBytes)
		}
		res.LogStartOffset = p.logStartOffset()
		return res, fmt.Errorf("partition %s: read offset %d: %w (available: %d to %d)", p.name, offset, ErrOffsetOutOfRange, res.LogStartOffset, res.HighWatermark)
	}
	if err != nil {
		return res, fmt.Errorf("partition %s: read offset %d from remote storage: %w", p.name, offset, err)
	}
	res.Batches = data
	return res, nil
}

// readSegment returns the whole batches of seg from the one containing offset,
// within byte limit, up to maxBytes (at least one batch).
func (p *Partition) readSegment(seg *segment, offset, limit int64, maxBytes int) ([]byte, error) {
	rel, ipos := seg.idx.lookup(uint32(offset - seg.base))
	want := int64(max(minReadWindow, 2*p.indexInterval+maxBytes))
	win := window{f: seg.f, limit: limit}
	pos, next, err := p.walkTo(seg, &win, int64(ipos), seg.base+int64(rel), offset, want)
	if err != nil && ipos != 0 {
		// A damaged index entry: walk from the segment's start instead.
		p.logger.Warn("index entry does not point at a batch; reading from the segment start", "partition", p.name, "segment", seg.path, "err", err)
		pos, next, err = p.walkTo(seg, &win, 0, seg.base, offset, want)
	}
	if err != nil {
		return nil, err
	}
	// Take whole batches up to maxBytes (at least one).
	start, end := pos, pos
	for end < limit {
		hb, err := win.bytes(end, record.HeaderSize, want)
		if err != nil {
			return nil, p.readErr(seg, end, err)
		}
		h, err := record.ParseHeader(hb)
		if err != nil {
			break // reported below if it is the first batch
		}
		size := int64(h.Size())
		if end > start && end-start+size > int64(maxBytes) {
			break
		}
		if end+size > limit {
			break
		}
		end += size
	}
	if end == start {
		return nil, fmt.Errorf("partition %s: segment %s byte %d: %w: unreadable batch header", p.name, seg.path, start, ErrCorrupt)
	}
	data, err := win.bytes(start, int(end-start), int64(end-start))
	if err != nil {
		return nil, p.readErr(seg, start, err)
	}
	// Verify every batch; stop before the first bad one.
	good := 0
	expect := next
	for good < len(data) {
		h, err := record.ParseHeader(data[good:])
		if err == nil {
			_, err = record.Verify(data[good : good+h.Size()])
		}
		if err == nil && h.BaseOffset != expect {
			err = fmt.Errorf("%w: base offset %d, expected %d", ErrCorrupt, h.BaseOffset, expect)
		}
		if err != nil {
			if good == 0 {
				return nil, fmt.Errorf("partition %s: segment %s byte %d (offset %d): %w", p.name, seg.path, start, expect, err)
			}
			break
		}
		good += h.Size()
		expect = h.LastOffset() + 1
	}
	return data[:good:good], nil
}

// walkTo walks the batch headers of seg from pos (where the batch of offset
// next starts) to the batch that contains offset.
func (p *Partition) walkTo(seg *segment, win *window, pos, next, offset, want int64) (int64, int64, error) {
	for {
		if pos >= win.limit {
			return 0, 0, fmt.Errorf("partition %s: segment %s: %w: offset %d not found before byte %d", p.name, seg.path, ErrCorrupt, offset, win.limit)
		}
		hb, err := win.bytes(pos, record.HeaderSize, want)
		if err != nil {
			return 0, 0, p.readErr(seg, pos, err)
		}
		h, err := record.ParseHeader(hb)
		if err != nil {
			return 0, 0, fmt.Errorf("partition %s: segment %s byte %d: %w", p.name, seg.path, pos, err)
		}
		if h.BaseOffset != next {
			return 0, 0, fmt.Errorf("partition %s: segment %s byte %d: %w: base offset %d, expected %d", p.name, seg.path, pos, ErrCorrupt, h.BaseOffset, next)
		}
		if h.LastOffset() >= offset {
			return pos, next, nil
		}
		pos += int64(h.Size())
		next = h.LastOffset() + 1
	}
}

func (p *Partition) readErr(seg *segment, pos int64, err error) error {
	return ioError(fmt.Sprintf("partition %s: read segment %s at byte %d", p.name, seg.path, pos), err)
}

// window is a buffered view of a segment file for one read.
type window struct {
	f     File
	limit int64
	pos   int64
	buf   []byte
}

// load reads up to n bytes at pos (clipped to limit) into a fresh buffer.
func (w *window) load(pos, n int64) error {
	n = min(n, w.limit-pos)
	if n <= 0 {
		w.pos, w.buf = pos, nil
		return nil
	}
	buf := make([]byte, n)
	m, err := w.f.ReadAt(buf, pos)
	if err != nil && !(errors.Is(err, io.EOF) && int64(m) == n) {
		return err
	}
	w.pos, w.buf = pos, buf
	return nil
}

// bytes returns n bytes at pos, reloading the window (at least hint bytes)
// when they are not in it. The result aliases the window's buffer.
func (w *window) bytes(pos int64, n int, hint int64) ([]byte, error) {
	if pos+int64(n) > w.limit {
		return nil, fmt.Errorf("%w: %d bytes at %d run past the end of the data (%d)", ErrCorrupt, n, pos, w.limit)
	}
	if pos < w.pos || pos+int64(n) > w.pos+int64(len(w.buf)) {
		if err := w.load(pos, max(hint, int64(n))); err != nil {
			return nil, err
		}
	}
	off := pos - w.pos
	return w.buf[off : off+int64(n)], nil
}

// OffsetForTime returns the first offset at or past the log start whose
// record timestamp is >= ts (epoch ms; Kafka ListOffsets semantics) and
// that record's timestamp.
// found is false when no visible record has such a timestamp (callers then
// answer with the high watermark).
func (p *Partition) OffsetForTime(ts int64) (offset int64, timestamp int64, found bool, err error) {
	if rt := p.remoteTier(); rt != nil {
		if err := p.RemoteReady(); err != nil {
			return 0, 0, false, fmt.Errorf("offset for time %d: %w", ts, err)
		}
		if rs, ok := rt.RemoteStart(p.topic.name, p.id); ok && rs < p.logStart.Load() {
			off, rts, ok, err := rt.OffsetForTime(p.topic.name, p.id, ts, p.deleteFloor.Load())
			if err != nil {
				return 0, 0, false, fmt.Errorf("partition %s: offset for time %d in remote storage: %w", p.name, ts, err)
			}
			if ok && off < p.logStart.Load() {
				return off, rts, true, nil
			}
		}
	}
	t := p.tip.Load()
	start := p.logStart.Load()
	segs := p.segmentsFrom(start)
	defer func() {
		for _, s := range segs {
			s.release()
		}
	}()
	for _, seg := range segs {
		if seg.base >= t.hw {
			break
		}
		if seg.idx.maxTimestamp() < ts {
			continue
		}
		limit := seg.visible.Load()
		if seg == t.seg {
			limit = t.size
		}
		rel := seg.idx.timeLookup(ts)
		irel, ipos := seg.idx.lookup(rel)
		off, rts, ok, err := p.scanForTime(seg, int64(ipos), seg.base+int64(irel), limit, ts, start)
		if err != nil || ok {
			return off, rts, ok, err
		}
	}
	return 0, 0, false, nil
}

// scanForTime scans seg from pos for the first record at or after offset
// from (the log start) with timestamp >= ts.
func (p *Partition) scanForTime(seg *segment, pos, expect, limit, ts, from int64) (int64, int64, bool, error) {
	var offset, timestamp int64
	found := false
	errFound := errors.New("found")
	_, _, err := scanSegment(seg.f, pos, expect, limit, func(b batchInfo) error {
		if b.maxTs < ts || b.last < from {
			return nil
		}
		var derr error
		if offset, timestamp, found, derr = record.OffsetForTime(b.raw, ts, from); derr != nil {
			return derr
		}
		if found {
			return errFound
		}
		return nil
	})
	if found {
		return offset, timestamp, true, nil
	}
	if err != nil {
		return 0, 0, false, fmt.Errorf("partition %s: offset for time %d: %w", p.name, ts, err)
	}
	return 0, 0, false, nil
}
