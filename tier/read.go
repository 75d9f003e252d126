package tier

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/objstore"
	"github.com/sluicehq/sluice/record"
)

// Read implements logstore.RemoteTier: whole batches of the remote segment
// holding offset, from the batch that contains it, up to maxBytes (at least
// one), every one CRC-checked.
func (t *Tier) Read(topic string, part int32, offset int64, maxBytes int) ([]byte, error) {
	b, err := t.read(topic, part, offset, maxBytes)
	if errors.Is(err, objstore.ErrNotExist) {
		// Remote retention deleted the segment while we read it.
		if _, m := t.loaded(topic, part); m.find(offset) == nil {
			return nil, fmt.Errorf("remote storage: offset %d: %w (deleted by retention)", offset, logstore.ErrOffsetOutOfRange)
		}
	}
	return b, err
}

func (t *Tier) read(topic string, part int32, offset int64, maxBytes int) ([]byte, error) {
	ps, m := t.loaded(topic, part)
	s := m.find(offset)
	if s == nil {
		return nil, fmt.Errorf("remote storage: offset %d: %w", offset, logstore.ErrOffsetOutOfRange)
	}
	idx, err := t.index(ps, s)
	if err != nil {
		return nil, err
	}
	r := &segReader{t: t, ps: ps, s: s}
	defer r.release()
	_, pos := idx.Lookup(offset)
	// The chunks this read will want, fetched in parallel.
	r.prefetch(pos, pos+int64(maxBytes), maxParallelChunks)
	// Walk the batch headers to the batch that contains offset.
	var hdr [record.HeaderSize]byte
	for {
		if pos >= s.Size {
			return nil, fmt.Errorf("remote segment %s: offset %d not found: %w", s.logKey(ps.dir), offset, logstore.ErrCorrupt)
		}
		if err := r.readAt(hdr[:], pos); err != nil {
			return nil, err
		}
		h, err := record.ParseHeader(hdr[:])
		if err != nil {
			return nil, fmt.Errorf("remote segment %s byte %d: %w", s.logKey(ps.dir), pos, err)
		}
		if h.LastOffset() >= offset {
			break
		}
		pos += int64(h.Size())
	}
	// Whole batches up to maxBytes (at least one).
	end := pos
	for end < s.Size {
		if err := r.readAt(hdr[:], end); err != nil {
			return nil, err
		}
		h, err := record.ParseHeader(hdr[:])
		if err != nil {
			return nil, fmt.Errorf("remote segment %s byte %d: %w", s.logKey(ps.dir), end, err)
		}
		size := int64(h.Size())
		if end > pos && end-pos+size > int64(maxBytes) || end+size > s.Size {
			break
		}
		end += size
	}
	if end == pos {
		return nil, fmt.Errorf("remote segment %s byte %d: %w: unreadable batch", s.logKey(ps.dir), pos, logstore.ErrCorrupt)
	}
	out := make([]byte, end-pos)
	if err := r.readAt(out, pos); err != nil {
		return nil, err
	}
	for i := 0; i < len(out); {
		h, err := record.ParseHeader(out[i:])
		if err == nil && i+h.Size() > len(out) {
			err = fmt.Errorf("%w: batch of %d bytes runs past the read", logstore.ErrCorrupt, h.Size())
		}
		if err == nil {
			_, err = record.Verify(out[i : i+h.Size()])
		}
		if err != nil {
			return nil, fmt.Errorf("remote segment %s byte %d: %w", s.logKey(ps.dir), pos+int64(i), err)
		}
		i += h.Size()
	}
	r.readAhead(end, int64(maxBytes))
	return out, nil
}

// unavailable marks err, a failed store call of the read path, as
// logstore.ErrRemoteUnavailable (retriable for Kafka clients): every
// failure but "no such object" (a segment remote retention deleted, which
// Read turns into ErrOffsetOutOfRange) and the cancellation of Close.
func unavailable(err error) error {
	if errors.Is(err, objstore.ErrNotExist) || errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%w: %w", logstore.ErrRemoteUnavailable, err)
}

// loaded returns the partition's state and manifest (an empty manifest when
// it has none or it is not loaded).
func (t *Tier) loaded(topic string, part int32) (*partState, *manifest) {
	ps := t.state(topic, part)
	if ps == nil || !ps.loaded.Load() {
		return ps, nil
	}
	return ps, ps.man.Load()
}

// index returns the decoded index of a remote segment, fetching and
// checking it on first use.
func (t *Tier) index(ps *partState, s *remoteSegment) (*logstore.SegmentIndex, error) {
	ps.idxMu.Lock()
	x := ps.idx[s.UploadID]
	ps.idxMu.Unlock()
	if x != nil {
		return x, nil
	}
	ctx, cancel := t.ctx()
	defer cancel()
	get := func(key string, want uint32) ([]byte, error) {
		start := time.Now()
		b, err := objstore.ReadAll(ctx, t.store, key)
		t.m.fetchSeconds.Observe(time.Since(start).Seconds())
		if err != nil {
			t.noteStore(err)
			return nil, fmt.Errorf("remote storage %s: read %s: %w", t.store, key, unavailable(err))
		}
		if got := crc(b); got != want {
			return nil, fmt.Errorf("remote storage %s: %s: %w: CRC-32C %08x, manifest says %08x", t.store, key, logstore.ErrCorrupt, got, want)
		}
		return b, nil
	}
	offs, err := get(s.indexKey(ps.dir), s.IndexCRC)
	if err != nil {
		return nil, err
	}
	times, err := get(s.timeKey(ps.dir), s.TimeIndexCRC)
	if err != nil {
		return nil, err
	}
	idx, err := logstore.DecodeSegmentIndex(s.Base, offs, times, s.Size)
	if err != nil {
		return nil, fmt.Errorf("remote segment %s: %w", s.stem(ps.dir), err)
	}
	// Kept only while the manifest names the segment: remote retention
	// publishes a manifest without it before it drops its index (under
	// idxMu), so an index fetched while it deleted the segment is not
	// kept for good.
	ps.idxMu.Lock()
	if cur := ps.man.Load().find(s.Base); cur != nil && cur.UploadID == s.UploadID {
		ps.idx[s.UploadID] = &idx
	}
	ps.idxMu.Unlock()
	return &idx, nil
}

func (t *Tier) dropIndex(ps *partState, uploadID string) {
	ps.idxMu.Lock()
	delete(ps.idx, uploadID)
	ps.idxMu.Unlock()
}

// segReader reads a remote segment's log through the chunk cache. It
// holds every chunk it reads until release, so that walking the batch
// headers and copying the batches out read each chunk once, and no chunk
// buffer is reused while it reads from it.
type segReader struct {
	t    *Tier
	ps   *partState
	s    *remoteSegment
	held []heldChunk
}

type heldChunk struct {
	i   int64
	buf *chunkBuf
}

// maxParallelChunks bounds the chunks one read starts fetching at once:
// those of its own range, and those of the read-ahead after it.
const maxParallelChunks = 8

// maxBackgroundFetches bounds the fetches running in the background at
// once, over all readers: chunks (32 MiB of buffers with 1 MiB chunks)
// and the read-ahead's segment indexes. Past it, prefetch and read-ahead
// start nothing more, and a read fetches what it needs itself.
const maxBackgroundFetches = 32

// minReadAheadChunks is the read-ahead of a read smaller than this many
// chunks.
const minReadAheadChunks = 4

func (r *segReader) chunkKey(i int64) string {
	return fmt.Sprintf("%s#%d", r.s.logKey(r.ps.dir), i)
}

// chunk returns chunk i of the segment, checked against its CRC when it
// was fetched. It is valid until release.
func (r *segReader) chunk(i int64) ([]byte, error) {
	for _, h := range r.held {
		if h.i == i {
			return h.buf.b, nil
		}
	}
	n := int(min(r.s.ChunkBytes, r.s.Size-i*r.s.ChunkBytes))
	buf, hit, err := r.t.cache.get(r.chunkKey(i), n, r.s.ChunkCRCs[i], func(b []byte) error { return r.fetch(i, b) })
	if err != nil {
		return nil, err
	}
	r.held = append(r.held, heldChunk{i: i, buf: buf})
	if hit {
		r.t.m.cacheHits.Inc()
	} else {
		r.t.m.cacheMisses.Inc()
	}
	return buf.b, nil
}

// dropBefore gives back the chunks the reader holds that end at or before
// byte off.
func (r *segReader) dropBefore(off int64) {
	kept := r.held[:0]
	for _, h := range r.held {
		if (h.i+1)*r.s.ChunkBytes <= off {
			h.buf.release()
			continue
		}
		kept = append(kept, h)
	}
	clear(r.held[len(kept):])
	r.held = kept
}

// release gives back the chunks the reader holds.
func (r *segReader) release() {
	for _, h := range r.held {
		h.buf.release()
	}
	r.held = nil
}

// fetch fills buf with chunk i of the segment (len(buf) bytes) by a ranged
// GET, reading the response body straight into it, and checks its CRC.
func (r *segReader) fetch(i int64, buf []byte) error {
	s := r.s
	off := i * s.ChunkBytes
	n := int64(len(buf))
	ctx, cancel := r.t.ctx()
	defer cancel()
	start := time.Now()
	rc, err := r.t.store.Get(ctx, s.logKey(r.ps.dir), off, n)
	if err != nil {
		r.t.noteStore(err)
		return fmt.Errorf("remote storage %s: read %s bytes %d-%d: %w", r.t.store, s.logKey(r.ps.dir), off, off+n, unavailable(err))
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, buf); err != nil {
		r.t.noteStore(err)
		return fmt.Errorf("remote storage %s: read %s bytes %d-%d: %w", r.t.store, s.logKey(r.ps.dir), off, off+n, unavailable(err))
	}
	r.t.m.fetchSeconds.Observe(time.Since(start).Seconds())
	r.t.noteStore(nil)
	if got := crc(buf); got != s.ChunkCRCs[i] {
		return fmt.Errorf("remote storage %s: %s chunk %d: %w: CRC-32C %08x, manifest says %08x", r.t.store, s.logKey(r.ps.dir), i, logstore.ErrCorrupt, got, s.ChunkCRCs[i])
	}
	return nil
}

// readAt fills b from byte off of the segment.
func (r *segReader) readAt(b []byte, off int64) error {
	if off < 0 || off+int64(len(b)) > r.s.Size {
		return fmt.Errorf("remote segment %s: %w: %d bytes at %d past its end (%d)", r.s.logKey(r.ps.dir), logstore.ErrCorrupt, len(b), off, r.s.Size)
	}
	for len(b) > 0 {
		i := off / r.s.ChunkBytes
		c, err := r.chunk(i)
		if err != nil {
			return err
		}
		k := copy(b, c[off-i*r.s.ChunkBytes:])
		b, off = b[k:], off+int64(k)
	}
	return nil
}

// prefetch starts fetching, in parallel, the chunks holding bytes
// [from, to) that are neither cached nor on their way (at most limit of
// them, and fewer when maxBackgroundFetches are on their way), and returns
// how many it started; the reads that want them wait for them.
func (r *segReader) prefetch(from, to int64, limit int) int {
	to = min(to, r.s.Size)
	n := 0
	for i := from / r.s.ChunkBytes; i*r.s.ChunkBytes < to && n < limit; i++ {
		if r.t.cache.has(r.chunkKey(i)) {
			continue
		}
		started := r.t.backgroundFetch(func() {
			rr := &segReader{t: r.t, ps: r.ps, s: r.s}
			if _, err := rr.chunk(i); err != nil {
				r.t.logger.Debug("remote storage: prefetch failed", "err", err)
			}
			rr.release()
		})
		if !started {
			break
		}
		n++
	}
	return n
}

// backgroundFetch runs fetch in the background as one of the
// maxBackgroundFetches fetches allowed at once, and reports whether it
// did (false at the bound, or when the tier is closing).
func (t *Tier) backgroundFetch(fetch func()) bool {
	if t.fetching.Add(1) > maxBackgroundFetches {
		t.fetching.Add(-1)
		return false
	}
	if !t.background(func() {
		defer t.fetching.Add(-1)
		fetch()
	}) {
		t.fetching.Add(-1)
		return false
	}
	return true
}

// indexAhead fetches the offset index of segment s in the background
// unless it is kept or on its way already; false when it is not and
// cannot be (at the bound of background fetches).
func (r *segReader) indexAhead(s *remoteSegment) bool {
	ps := r.ps
	ps.idxMu.Lock()
	_, indexed := ps.idx[s.UploadID]
	busy := indexed || ps.idxFetching[s.UploadID]
	if !busy {
		if ps.idxFetching == nil {
			ps.idxFetching = map[string]bool{}
		}
		ps.idxFetching[s.UploadID] = true
	}
	ps.idxMu.Unlock()
	if busy {
		return true
	}
	done := func() {
		ps.idxMu.Lock()
		delete(ps.idxFetching, s.UploadID)
		ps.idxMu.Unlock()
	}
	started := r.t.backgroundFetch(func() {
		defer done()
		if _, err := r.t.index(ps, s); err != nil {
			r.t.logger.Debug("remote storage: index read-ahead failed", "err", err)
		}
	})
	if !started {
		done()
	}
	return started
}

// readAhead fetches, in the background, what a sequential reader that
// read up to byte pos wants next: as many bytes as it read (readBytes; at
// least minReadAheadChunks chunks, at most a quarter of the memory tier,
// which keeps them until they are read), continuing into the next
// segments, whose offset indexes it fetches too, so that the read that
// crosses into a segment does not wait for its index.
func (r *segReader) readAhead(pos, readBytes int64) {
	ahead := min(max(readBytes, minReadAheadChunks*r.s.ChunkBytes), r.t.cache.memLimit/4)
	budget := maxParallelChunks
	s := r.s
	for ahead > 0 && budget > 0 && r.t.fetching.Load() < maxBackgroundFetches {
		if pos < s.Size {
			sr := &segReader{t: r.t, ps: r.ps, s: s}
			budget -= sr.prefetch(pos, pos+ahead, budget)
			ahead -= s.Size - pos
		}
		if ahead <= 0 || budget <= 0 {
			return
		}
		ns := r.ps.man.Load().find(s.End)
		if ns == nil {
			return
		}
		if !r.indexAhead(ns) {
			return // at the bound of background fetches
		}
		s, pos = ns, 0
	}
}

// OffsetForTime implements logstore.RemoteTier.
func (t *Tier) OffsetForTime(topic string, part int32, ts int64) (int64, int64, bool, error) {
	ps, m := t.loaded(topic, part)
	if m == nil {
		return 0, 0, false, nil
	}
	for i := range m.Segments {
		s := &m.Segments[i]
		if s.MaxTimestamp < ts {
			continue
		}
		idx, err := t.index(ps, s)
		if err != nil {
			return 0, 0, false, err
		}
		_, pos := idx.TimeLookup(ts)
		off, rts, found, err := t.offsetForTimeIn(ps, s, pos, ts)
		if err != nil || found {
			return off, rts, found, err
		}
	}
	return 0, 0, false, nil
}

// offsetForTimeIn scans the remote segment s from byte pos for the first
// record with a timestamp at or after ts.
func (t *Tier) offsetForTimeIn(ps *partState, s *remoteSegment, pos int64, ts int64) (int64, int64, bool, error) {
	r := &segReader{t: t, ps: ps, s: s}
	defer r.release()
	var hdr [record.HeaderSize]byte
	for pos < s.Size {
		r.dropBefore(pos) // a scan holds only the chunks it is in
		if err := r.readAt(hdr[:], pos); err != nil {
			return 0, 0, false, err
		}
		h, err := record.ParseHeader(hdr[:])
		if err != nil {
			return 0, 0, false, fmt.Errorf("remote segment %s byte %d: %w", s.logKey(ps.dir), pos, err)
		}
		if h.MaxTimestamp >= ts {
			b := make([]byte, h.Size())
			if err := r.readAt(b, pos); err != nil {
				return 0, 0, false, err
			}
			off, rts, found, derr := record.OffsetForTime(b, ts, 0)
			if found {
				return off, rts, true, nil
			}
			if derr != nil {
				return 0, 0, false, fmt.Errorf("remote segment %s byte %d: %w", s.logKey(ps.dir), pos, derr)
			}
		}
		pos += int64(h.Size())
	}
	return 0, 0, false, nil
}

// AbortedTransactions implements logstore.RemoteTier.
func (t *Tier) AbortedTransactions(topic string, part int32, from, to int64) []logstore.AbortedTxn {
	_, m := t.loaded(topic, part)
	if m == nil {
		return nil
	}
	var out []logstore.AbortedTxn
	seen := map[logstore.AbortedTxn]bool{}
	for _, s := range m.Segments {
		if s.End <= from || s.Base >= to {
			continue
		}
		for _, a := range s.Aborted {
			if a.LastOffset >= from && a.FirstOffset < to && !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		}
	}
	return out
}
