package tier

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
	"time"

	"github.com/sluicehq/sluice/logstore"
)

// run is the uploader: it wakes on segment rolls (Kick) and every
// UploadInterval, uploads the sealed segments of every remote-enabled
// partition and applies remote retention. After a failure it backs off
// exponentially, from RetryMin to RetryMax, and tries again.
func (t *Tier) run() {
	defer close(t.done)
	tick := time.NewTicker(t.opts.UploadInterval)
	defer tick.Stop()
	backoff := time.Duration(0)
	cleaned := false
	// retry fires once after a failed pass; ticks and rolls that arrive
	// meanwhile must not restart it, or a backoff longer than the tick
	// would never end.
	var retry <-chan time.Time
	for {
		select {
		case <-t.stop:
			return
		case <-t.kick:
			if backoff > 0 {
				continue // a roll does not cut a backoff short
			}
		case <-tick.C:
			if backoff > 0 {
				continue
			}
		case <-retry:
			retry = nil
		}
		err := t.pass()
		if err == nil && !cleaned {
			ctx, cancel := t.ctx()
			if cerr := t.removeDeletedTopics(ctx); cerr != nil {
				t.logger.Warn("remote storage: cannot remove the objects of deleted topics yet", "err", cerr)
			} else {
				cleaned = true
			}
			cancel()
		}
		switch {
		case err == nil:
			backoff = 0
		case t.closed.Load():
			return
		default:
			t.m.uploadFailures.Inc()
			backoff = min(max(2*backoff, t.opts.RetryMin), t.opts.RetryMax)
			retry = time.After(backoff)
			t.logger.Warn("remote storage: upload pass failed; retrying", "in", backoff, "err", err)
		}
	}
}

// pass uploads what is pending in every remote-enabled partition and
// applies remote retention, returning the first error.
func (t *Tier) pass() error {
	var errs []error
	for _, ps := range t.remotePartitions() {
		if t.closed.Load() {
			return errors.New("tier closed")
		}
		if err := t.syncPartition(ps); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Sync uploads every sealed segment of the remote-enabled partitions and
// applies remote retention once, now (tests and benchmarks; the uploader
// does the same in the background).
func (t *Tier) Sync() error { return t.pass() }

func (t *Tier) partition(ps *partState) (*logstore.Partition, logstore.TopicConfig, error) {
	tp, err := t.log.Topic(ps.key.topic)
	if err != nil {
		return nil, logstore.TopicConfig{}, err
	}
	cfg := tp.Config()
	if ps.dir != partDir(ps.key.topic, cfg.RemoteID, ps.key.part) {
		// The topic was deleted and created again under its name.
		return nil, cfg, fmt.Errorf("topic %s: %w (created again since)", ps.key.topic, logstore.ErrUnknownTopic)
	}
	p, err := tp.Partition(ps.key.part)
	return p, cfg, err
}

// syncPartition uploads the sealed segments of ps that the manifest does
// not have yet, in order, then applies remote retention.
func (t *Tier) syncPartition(ps *partState) error {
	ps.uploadMu.Lock()
	defer ps.uploadMu.Unlock()
	if ps.deleted.Load() {
		return nil // its topic was deleted since the pass began
	}
	m, err := t.load(ps)
	if err != nil {
		return err
	}
	p, cfg, err := t.partition(ps)
	if err != nil {
		return nil // deleted meanwhile
	}
	bases, _ := p.SealedSegments(m.RemoteEnd)
	for _, base := range bases {
		if t.closed.Load() {
			return errors.New("tier closed")
		}
		if ps.deleted.Load() {
			return nil
		}
		if err := t.upload(ps, p, base); err != nil {
			return err
		}
	}
	return t.enforceRetention(ps, p, cfg, time.Now())
}

// upload copies one sealed segment to the store and records it in a new
// manifest version.
func (t *Tier) upload(ps *partState, p *logstore.Partition, base int64) error {
	seg, err := p.OpenSealedSegment(base)
	if errors.Is(err, logstore.ErrOffsetOutOfRange) {
		return nil // deleted meanwhile (DeleteRecords)
	}
	if err != nil {
		return err
	}
	defer seg.Close()
	start := time.Now()
	var id [6]byte
	rand.Read(id[:])
	rs := remoteSegment{
		Base: seg.Base, End: seg.End, Size: seg.Size, MaxTimestamp: seg.MaxTimestamp,
		UploadID: hex.EncodeToString(id[:]), ChunkBytes: t.opts.ChunkBytes, Aborted: seg.Aborted,
		IndexCRC: crc(seg.Index), IndexSize: int64(len(seg.Index)),
		TimeIndexCRC: crc(seg.TimeIndex), TimeIndexSz: int64(len(seg.TimeIndex)),
	}
	// The log, streamed, with its whole and per-chunk CRCs computed on the
	// way.
	cw := &chunkCRC{chunk: t.opts.ChunkBytes, whole: crc32.New(castagnoli)}
	r := io.TeeReader(io.NewSectionReader(seg.Log, 0, seg.Size), cw)
	lctx, lcancel := t.transferCtx(seg.Size)
	err = t.store.Put(lctx, rs.logKey(ps.dir), r, seg.Size)
	lcancel()
	if err != nil {
		t.noteStore(err)
		return fmt.Errorf("remote storage %s: upload segment %d of %s: %w", t.store, base, ps.dir, err)
	}
	rs.LogCRC, rs.ChunkCRCs = cw.finish()
	ctx, cancel := t.ctx() // the indexes, the snapshot and the manifest
	defer cancel()
	puts := []struct {
		key  string
		data []byte
	}{{rs.indexKey(ps.dir), seg.Index}, {rs.timeKey(ps.dir), seg.TimeIndex}}
	if seg.ProducerSnapshot != nil {
		rs.HasSnapshot, rs.SnapshotCRC = true, crc(seg.ProducerSnapshot)
		puts = append(puts, struct {
			key  string
			data []byte
		}{rs.snapKey(ps.dir), seg.ProducerSnapshot})
	}
	for _, o := range puts {
		if ps.deleted.Load() {
			t.abandon(ctx, ps, &rs)
			return nil
		}
		if err := t.store.Put(ctx, o.key, bytes.NewReader(o.data), int64(len(o.data))); err != nil {
			t.noteStore(err)
			// No manifest names them: removed now rather than left
			// until the next start, as each retry uploads anew.
			t.abandon(ctx, ps, &rs)
			return fmt.Errorf("remote storage %s: upload %s: %w", t.store, o.key, err)
		}
	}
	// Last, the manifest that names it.
	ps.manMu.Lock()
	defer ps.manMu.Unlock()
	if ps.deleted.Load() {
		t.abandon(ctx, ps, &rs)
		return nil
	}
	cur := ps.man.Load()
	next := &manifest{Version: cur.Version + 1, Topic: cur.Topic, Partition: cur.Partition, RemoteEnd: seg.End}
	next.Segments = append(next.Segments, cur.Segments...)
	if n := len(next.Segments); n > 0 && next.Segments[n-1].End != seg.Base {
		// A gap: DeleteRecords removed local segments that were not
		// uploaded. Remote segments below its floor are dropped with it.
		floor := p.DeleteFloor()
		t.logger.Warn("remote storage: a gap before the uploaded segment (records deleted locally before upload)",
			"partition", ps.dir, "remote_end", next.Segments[n-1].End, "segment", seg.Base, "delete_floor", floor)
	}
	next.Segments = append(next.Segments, rs)
	if err := t.publish(ctx, ps, next); err != nil {
		return err
	}
	t.noteStore(nil)
	t.m.uploads.Inc()
	t.m.uploadedBytes.Add(float64(seg.Size))
	t.logger.Debug("remote storage: segment uploaded", "partition", ps.key.topic+"/"+strconv.Itoa(int(ps.key.part)),
		"base", seg.Base, "end", seg.End, "bytes", seg.Size, "took", time.Since(start))
	return nil
}

// abandon removes the objects of an upload of rs stopped before its
// manifest: one that failed (each retry uploads under a new id), or whose
// topic was deleted meanwhile (the deletion may have emptied the topic's
// folder already: it waits for manMu, under which the manifest is
// checked, before it lists it). Never after a failed manifest write: the
// manifest may be stored all the same, naming them.
func (t *Tier) abandon(ctx context.Context, ps *partState, rs *remoteSegment) {
	for _, k := range rs.keys(ps.dir) {
		if err := t.store.Delete(ctx, k); err != nil {
			t.logger.Debug("remote storage: object of an abandoned upload not removed; removed at the next start", "key", k, "err", err)
		}
	}
}

// chunkCRC computes the CRC-32C of a stream and of each of its chunks.
type chunkCRC struct {
	chunk int64
	whole interface {
		io.Writer
		Sum32() uint32
	}
	cur  uint32
	n    int64
	crcs []uint32
}

func (c *chunkCRC) Write(b []byte) (int, error) {
	c.whole.Write(b)
	total := len(b)
	for len(b) > 0 {
		k := min(int64(len(b)), c.chunk-c.n)
		c.cur = crc32.Update(c.cur, castagnoli, b[:k])
		c.n += k
		b = b[k:]
		if c.n == c.chunk {
			c.crcs = append(c.crcs, c.cur)
			c.cur, c.n = 0, 0
		}
	}
	return total, nil
}

func (c *chunkCRC) finish() (uint32, []uint32) {
	if c.n > 0 {
		c.crcs = append(c.crcs, c.cur)
	}
	if c.crcs == nil {
		c.crcs = []uint32{}
	}
	return c.whole.Sum32(), c.crcs
}

// enforceRetention deletes the remote segments past the topic's total
// retention or below its DeleteRecords floor: a manifest without them
// first, then their objects.
func (t *Tier) enforceRetention(ps *partState, p *logstore.Partition, cfg logstore.TopicConfig, now time.Time) error {
	m := ps.man.Load()
	if len(m.Segments) == 0 {
		return nil
	}
	localStart := p.LocalLogStart()
	floor := p.DeleteFloor()
	total := p.Stats().Bytes
	for _, s := range m.Segments {
		if s.End <= localStart {
			total += s.Size
		}
	}
	cutoff := now.Add(-cfg.Retention).UnixMilli()
	n := 0
	for _, s := range m.Segments {
		expired := cfg.Retention > 0 && s.MaxTimestamp < cutoff
		over := cfg.RetentionBytes > 0 && s.End <= localStart && total-s.Size >= cfg.RetentionBytes
		if !(expired || over || s.End <= floor) {
			break
		}
		if s.End <= localStart {
			total -= s.Size
		}
		n++
	}
	if n == 0 {
		return nil
	}
	ctx, cancel := t.ctx()
	defer cancel()
	ps.manMu.Lock()
	cur := ps.man.Load()
	if ps.deleted.Load() || len(cur.Segments) < n || cur.Segments[0].Base != m.Segments[0].Base {
		ps.manMu.Unlock()
		return nil
	}
	gone := append([]remoteSegment(nil), cur.Segments[:n]...)
	next := &manifest{Version: cur.Version + 1, Topic: cur.Topic, Partition: cur.Partition, RemoteEnd: cur.RemoteEnd,
		Segments: append([]remoteSegment(nil), cur.Segments[n:]...)}
	err := t.publish(ctx, ps, next)
	ps.manMu.Unlock()
	if err != nil {
		return err
	}
	for _, s := range gone {
		for _, k := range s.keys(ps.dir) {
			if err := t.store.Delete(ctx, k); err != nil {
				t.logger.Warn("remote storage: object of a deleted segment not removed; removed at the next start", "key", k, "err", err)
			}
		}
		t.dropIndex(ps, s.UploadID)
		t.logger.Info("remote retention deleted segment", "partition", ps.dir, "base", s.Base, "end", s.End)
	}
	return nil
}
