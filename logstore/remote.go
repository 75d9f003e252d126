package logstore

import (
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Tiered storage, as the log sees it.
//
// A topic with remote.storage.enable keeps its closed segments in a remote
// tier (object storage, package tier) as well as on the local disk. The log
// does not know how: it talks to a RemoteTier, which the server wires in with
// SetRemoteTier. Three things change for such a topic:
//
//   - Local retention (local.retention.ms/bytes, at most the total
//     retention) removes local segments, but only those the tier reports as
//     uploaded (RemoteTier.Uploaded): nothing is deleted locally that is not
//     safely remote. Total retention (retention.ms/bytes) is the tier's: it
//     deletes remote segments.
//   - Reads below the local log start go to the tier (RemoteTier.Read), so
//     Read, OffsetForTime and AbortedTransactions serve the whole range and
//     the Kafka layer needs no change. Offsets reports the log start offset
//     of both tiers together; LocalLogStart the local one.
//   - A segment roll tells the tier (RemoteTier.SegmentRolled), so that the
//     uploader need not poll.
//
// Without a tier (a server started without remote storage) such a topic
// keeps every segment locally: local retention never deletes what it cannot
// prove is remote.

// RemoteTier is the remote tier of the log's remote-enabled topics. Its
// methods are called concurrently, from the data path (Read) and from
// retention; they must not call back into the partition's locks (they may
// read its public state).
type RemoteTier interface {
	// Uploaded reports whether the sealed segment [base, end) of the
	// partition is recorded in the remote manifest (or was, and remote
	// retention has since deleted it): local retention may then delete the
	// local copy.
	Uploaded(topic string, partition int32, base, end int64) bool
	// RemoteStart returns the first offset readable from the remote tier,
	// and false when it holds nothing for the partition.
	RemoteStart(topic string, partition int32) (int64, bool)
	// Ready reports whether the tier knows the partition's remote
	// segments (it has read its manifest): until then RemoteStart says
	// nothing, and a read below the local start fails with
	// ErrRemoteNotReady rather than ErrOffsetOutOfRange.
	Ready(topic string, partition int32) bool
	// Read returns whole batches from the remote segment holding offset,
	// starting with the batch that contains it, up to maxBytes but at
	// least one batch, each CRC-checked (as Partition.Read does). An offset
	// the tier does not hold fails with ErrOffsetOutOfRange.
	Read(topic string, partition int32, offset int64, maxBytes int) ([]byte, error)
	// OffsetForTime is Partition.OffsetForTime over the remote segments:
	// the first record at or after offset from (the DeleteRecords floor)
	// whose timestamp is at or after ts.
	OffsetForTime(topic string, partition int32, ts, from int64) (offset, timestamp int64, found bool, err error)
	// AbortedTransactions lists the aborted transactions recorded with the
	// remote segments that overlap [from, to).
	AbortedTransactions(topic string, partition int32, from, to int64) []AbortedTxn
	// SegmentRolled says that the partition sealed a segment. It must not
	// block.
	SegmentRolled(topic string, partition int32)
}

type remoteHolder struct{ rt RemoteTier }

// SetRemoteTier wires the remote tier of remote-enabled topics (nil: none).
// Call it once, right after Open.
func (l *Log) SetRemoteTier(rt RemoteTier) {
	if rt == nil {
		l.remote.Store(nil)
		return
	}
	l.remote.Store(&remoteHolder{rt: rt})
}

// HasRemoteTier reports whether a remote tier is wired.
func (l *Log) HasRemoteTier() bool { return l.remote.Load() != nil }

// remoteTier is the partition's remote tier, or nil when its topic is not
// remote-enabled or there is none.
func (p *Partition) remoteTier() RemoteTier {
	h := p.topic.log.remote.Load()
	if h == nil || !p.topic.Config().RemoteStorage {
		return nil
	}
	return h.rt
}

// ErrRemoteNotReady: a read below the local start of a remote-enabled
// partition whose remote segments the tier does not know yet (the store was
// unreachable since the start). It is retriable (Kafka:
// KAFKA_STORAGE_ERROR); ErrOffsetOutOfRange would make a consumer with
// auto.offset.reset=earliest skip to the local start, past every remote
// record.
var ErrRemoteNotReady = errors.New("remote storage not available yet")

// ErrRemoteUnavailable: a read of the remote tier failed on the object
// store (unreachable, timed out, an error status): retriable (Kafka:
// KAFKA_STORAGE_ERROR, or REQUEST_TIMED_OUT when the call timed out), so
// that a consumer retries rather than failing on UNKNOWN_SERVER_ERROR.
var ErrRemoteUnavailable = errors.New("remote storage unavailable")

// ErrRemoteStorage: a remote-storage config that cannot be applied (Kafka:
// INVALID_CONFIG).
var ErrRemoteStorage = errors.New("remote storage")

// checkRemoteConfig checks the remote-storage settings of next (prev is the
// current config of an existing topic, nil for a new one) against the log.
func (l *Log) checkRemoteConfig(prev *TopicConfig, next TopicConfig) error {
	if prev != nil && prev.RemoteStorage && !next.RemoteStorage {
		return fmt.Errorf("%w: %w: remote.storage.enable cannot be turned off once on (the remote segments would be orphaned); delete the topic instead", ErrInvalidConfig, ErrRemoteStorage)
	}
	if !next.RemoteStorage {
		return nil
	}
	if l.cleanupOf(next).Compact() {
		return fmt.Errorf("%w: %w: remote.storage.enable is not supported with cleanup.policy compact (as in Kafka): compaction rewrites segments that are already remote", ErrInvalidConfig, ErrRemoteStorage)
	}
	if (prev == nil || !prev.RemoteStorage) && l.remote.Load() == nil {
		return fmt.Errorf("%w: %w: this server has no remote storage; start it with --remote-storage s3://BUCKET/PREFIX", ErrInvalidConfig, ErrRemoteStorage)
	}
	return nil
}

// assignRemoteID gives cfg a fresh RemoteID when it enables remote storage
// without one (prev: the config it replaces, nil for a new topic).
func assignRemoteID(prev *TopicConfig, cfg *TopicConfig) {
	if prev != nil && prev.RemoteID != "" {
		cfg.RemoteID = prev.RemoteID
		return
	}
	if cfg.RemoteStorage && cfg.RemoteID == "" {
		var b [8]byte
		crand.Read(b[:])
		cfg.RemoteID = hex.EncodeToString(b[:])
	}
}

// LocalLogStart returns the first offset stored on the local disk. For a
// topic without remote storage it is the log start offset.
func (p *Partition) LocalLogStart() int64 { return p.logStart.Load() }

// logStartOffset is the log start offset of both tiers: the remote start
// when the remote tier holds offsets below the local start, never below the
// DeleteRecords floor.
func (p *Partition) logStartOffset() int64 {
	ls := p.logStart.Load()
	rt := p.remoteTier()
	if rt == nil {
		return ls
	}
	rs, ok := rt.RemoteStart(p.topic.name, p.id)
	if !ok || rs >= ls {
		return ls
	}
	return max(rs, p.deleteFloor.Load())
}

// RemoteReady returns ErrRemoteNotReady when the partition may hold
// offsets below its local start in a remote tier that has not read its
// manifest yet (the store unreachable since the start): its log start
// offset, and the offsets of timestamps below the local start, are then
// unknown. Otherwise nil.
func (p *Partition) RemoteReady() error {
	rt := p.remoteTier()
	if rt == nil || p.logStart.Load() <= p.deleteFloor.Load() || rt.Ready(p.topic.name, p.id) {
		return nil
	}
	return fmt.Errorf("partition %s: offsets below the local start %d: %w", p.name, p.logStart.Load(), ErrRemoteNotReady)
}

// DeleteFloor returns the offset below which DeleteRecords removed the
// records (0 when never used): the remote tier deletes its segments below it.
func (p *Partition) DeleteFloor() int64 { return p.deleteFloor.Load() }

// SealedSegment is a closed segment opened for upload by the remote tier.
// Close it when done.
type SealedSegment struct {
	Base         int64 // first offset
	End          int64 // offset after the last batch
	Size         int64 // bytes of the log file
	MaxTimestamp int64 // largest batch timestamp; math.MinInt64 when none
	// Log reads the segment's batches (Size bytes).
	Log interface {
		ReadAt(b []byte, off int64) (int, error)
	}
	// Index and TimeIndex are the offset and time indexes in the on-disk
	// format (docs/log.md); DecodeSegmentIndex reads them back.
	Index, TimeIndex []byte
	// ProducerSnapshot is the producer-state snapshot as of End, when the
	// partition still has it (nil otherwise).
	ProducerSnapshot []byte
	// Aborted lists the aborted transactions overlapping the segment.
	Aborted []AbortedTxn
	seg     *segment
}

// Close releases the segment.
func (s *SealedSegment) Close() {
	if s.seg != nil {
		s.seg.release()
		s.seg = nil
	}
}

// SealedSegments returns the bases of the partition's sealed (closed)
// segments at or after from, oldest first, with their end offsets; none
// while a cleaner pass that began before the topic's switch from compact
// to remote storage may still merge them (the uploader tries again later).
func (p *Partition) SealedSegments(from int64) (bases, ends []int64) {
	if p.cleaner.rewriting.Load() {
		return nil, nil
	}
	p.segMu.RLock()
	defer p.segMu.RUnlock()
	for i := 0; i+1 < len(p.segments); i++ {
		s := p.segments[i]
		if s.base < from {
			continue
		}
		bases = append(bases, s.base)
		ends = append(ends, p.segments[i+1].base)
	}
	return bases, ends
}

// OpenSealedSegment opens the sealed segment starting at base for reading
// (the remote tier's uploader). It fails with ErrOffsetOutOfRange when
// there is no such sealed segment (deleted, or still active).
func (p *Partition) OpenSealedSegment(base int64) (*SealedSegment, error) {
	p.segMu.RLock()
	var seg *segment
	var end int64
	for i := 0; i+1 < len(p.segments); i++ {
		if p.segments[i].base == base {
			seg, end = p.segments[i], p.segments[i+1].base
			break
		}
	}
	if seg != nil && !seg.acquire() {
		seg = nil
	}
	p.segMu.RUnlock()
	if seg == nil {
		return nil, fmt.Errorf("partition %s: sealed segment %d: %w", p.name, base, ErrOffsetOutOfRange)
	}
	offs, times := seg.idx.encode(uint32(end - base))
	s := &SealedSegment{Base: base, End: end, Size: seg.visible.Load(), MaxTimestamp: seg.idx.maxTimestamp(),
		Log: seg.f, Index: offs, TimeIndex: times, seg: seg}
	b, err := readFile(p.fs, filepath.Join(p.dir, snapshotName(end)))
	switch {
	case err == nil:
		s.ProducerSnapshot = b
	case !errors.Is(err, os.ErrNotExist):
		p.logger.Warn("cannot read the producer-state snapshot of a segment for upload; uploading without it", "partition", p.name, "segment", seg.path, "err", err)
	}
	s.Aborted = p.localAbortedTxns(base, end)
	return s, nil
}

// SegmentIndex is a sealed segment's offset and time index, decoded from
// the bytes of SealedSegment.Index and TimeIndex.
type SegmentIndex struct {
	x    *segIndex
	base int64
	end  int64
}

// DecodeSegmentIndex parses the indexes of the sealed segment [base, ...)
// whose log has size bytes, checking them as recovery does.
func DecodeSegmentIndex(base int64, index, timeIndex []byte, size int64) (SegmentIndex, error) {
	x, endRel, err := decodeIndex(index, timeIndex, size)
	if err != nil {
		return SegmentIndex{}, fmt.Errorf("segment %d index: %w", base, err)
	}
	return SegmentIndex{x: x, base: base, end: base + int64(endRel)}, nil
}

// End is the offset after the segment's last batch.
func (s SegmentIndex) End() int64 { return s.end }

// MaxTimestamp is the largest batch timestamp of the segment.
func (s SegmentIndex) MaxTimestamp() int64 { return s.x.maxTimestamp() }

// Lookup returns the largest indexed offset <= offset and the byte
// position of its batch (the segment's base and 0 at worst).
func (s SegmentIndex) Lookup(offset int64) (int64, int64) {
	rel, pos := s.x.lookup(uint32(offset - s.base))
	return s.base + int64(rel), int64(pos)
}

// TimeLookup returns the offset and byte position from which a scan for the
// first record with a timestamp >= ts may start.
func (s SegmentIndex) TimeLookup(ts int64) (int64, int64) {
	return s.Lookup(s.base + int64(s.x.timeLookup(ts)))
}
