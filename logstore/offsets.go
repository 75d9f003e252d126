package logstore

// Consumer-group committed offsets, stored in the log itself.
//
// Every commit is one record batch appended to the internal topic
// __consumer_offsets (fsync always: a commit is durable before Commit
// returns), one record per (group, topic, partition); a group's records all
// go to the partition Kafka's partitioner picks for the group name, so their
// log order is the order of the commits. On open the whole topic is replayed
// into memory: the latest record per key wins and a record with a null value
// (tombstone) deletes the key.
//
// The topic is compacted (cleanup.policy compact): the log cleaner keeps the
// latest record of every key and drops tombstones after
// delete.retention.ms, so the topic, and the replay on open, stay about
// the size of the live state however long the server runs. The
// record format is in docs/log-producers.md.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/sluicehq/sluice/record"
)

// OffsetsTopic is the internal topic that stores consumer-group offsets.
const OffsetsTopic = "__consumer_offsets"

// SinkTxnsTopic is the internal topic of the transactional log sinks of
// sluice run (connector/logsrc): transactional id -> producer id, epoch.
// It is named here so that the Kafka listener, serving such a data
// directory later, keeps clients from writing it.
const SinkTxnsTopic = "__sluice_sink_txns"

const (
	offsetsPartitions    = 1
	offsetsSegmentBytes  = 16 << 20
	offsetsMaxBatchBytes = 8 << 20 // one commit; bounded by the segment size
	offsetsReadChunk     = 1 << 20

	// MaxOffsetMetadata is the largest metadata string Commit accepts, as
	// Kafka's offset.metadata.max.bytes default.
	MaxOffsetMetadata = 4096

	maxOffsetKeyString = 1<<16 - 1 // group and topic lengths are u16

	// MaxGroupIDBytes is the longest group id Commit accepts (its length
	// is stored in 16 bits).
	MaxGroupIDBytes = maxOffsetKeyString

	offsetKeyVersion   = 1
	offsetValueVersion = 1
	// recordOverhead approximates a record's framing inside a batch.
	recordOverhead = 16
)

// ErrOffsetMetadataTooLarge: Commit was given metadata longer than
// MaxOffsetMetadata (Kafka: OFFSET_METADATA_TOO_LARGE).
var ErrOffsetMetadataTooLarge = errors.New("offset metadata too large")

// errBadOffsetRecord marks a record of __consumer_offsets that does not
// decode; replay skips it with a warning.
var errBadOffsetRecord = errors.New("malformed consumer offset record")

// TopicPartition names one partition of a topic.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// CommittedOffset is what a consumer group committed for one partition: the
// next offset to consume, the leader epoch of the record before it (-1 when
// unknown), free-form client metadata and the commit time (epoch ms).
type CommittedOffset struct {
	Offset      int64
	LeaderEpoch int32
	Metadata    string
	CommitTime  int64
}

// offsetEntry is the in-memory state of one key: its value and the log
// offset of the record that set it (concurrent commits apply in log order).
type offsetEntry struct {
	CommittedOffset
	at      int64
	deleted bool // a tombstone, kept while commits are in flight
}

// OffsetStore holds consumer groups' committed offsets, durable in the
// internal topic __consumer_offsets of a Log. It is safe for concurrent use.
type OffsetStore struct {
	log    *Log
	topic  *Topic
	logger *slog.Logger
	sizing offsetsSizing

	mu         sync.Mutex
	groups     map[string]map[TopicPartition]*offsetEntry
	inflight   int
	tombstones int
	liveBytes  int64 // encoded size of the live records
}

// OpenOffsetStore opens the consumer-offset store of l, creating the internal
// topic __consumer_offsets (fsync always, compacted) on first use, and
// replays it into memory. Open it once per Log.
func OpenOffsetStore(ctx context.Context, l *Log) (*OffsetStore, error) {
	return openOffsetStore(ctx, l, defaultOffsetsSizing)
}

// offsetsSizing sizes the offsets topic (tests shrink it).
type offsetsSizing struct {
	segmentBytes int64
}

var defaultOffsetsSizing = offsetsSizing{segmentBytes: offsetsSegmentBytes}

func openOffsetStore(ctx context.Context, l *Log, sz offsetsSizing) (*OffsetStore, error) {
	t, err := internalTopic(l, OffsetsTopic, TopicConfig{
		Partitions:   offsetsPartitions,
		Fsync:        FsyncPolicy{Mode: FsyncAlways},
		SegmentBytes: sz.segmentBytes,
		Cleanup:      CleanupCompact,
	})
	if err != nil {
		return nil, err
	}
	s := &OffsetStore{log: l, topic: t, logger: l.logger, sizing: sz, groups: make(map[string]map[TopicPartition]*offsetEntry)}
	for i := range t.NumPartitions() {
		p, err := t.Partition(i)
		if err != nil {
			return nil, err
		}
		_, err = replayPartition(ctx, p, func(h record.Header, r record.Record) {
			if h.IsControl() {
				return
			}
			group, tp, val, err := decodeOffsetRecord(r.Key, r.Value)
			if err != nil {
				s.logger.Warn("consumer offsets: skipping malformed record", "partition", i, "offset", r.Offset, "err", err)
				return
			}
			s.applyLocked(group, tp, val, r.Offset, offsetRecordSize(group, tp, val != nil, len(r.Value)))
		})
		if err != nil {
			return nil, fmt.Errorf("consumer offsets: replay %s/%d: %w", OffsetsTopic, i, err)
		}
	}
	s.purgeLocked()
	return s, nil
}

// internalTopic returns the named topic, creating it with cfg if missing,
// and brings an existing topic's cleanup policy and retention to cfg's (a
// data directory from before internal topics were compacted).
func internalTopic(l *Log, name string, cfg TopicConfig) (*Topic, error) {
	t, err := openInternalTopic(l, name, cfg)
	if err != nil {
		return nil, err
	}
	return t, reconfigureInternal(l, t, cfg)
}

// openInternalTopic returns the named topic, creating it with cfg if missing.
func openInternalTopic(l *Log, name string, cfg TopicConfig) (*Topic, error) {
	t, err := l.Topic(name)
	if errors.Is(err, ErrUnknownTopic) {
		if err = l.CreateTopic(name, cfg); err != nil && !errors.Is(err, ErrTopicExists) {
			return nil, fmt.Errorf("create internal topic: %w", err)
		}
		t, err = l.Topic(name)
	}
	return t, err
}

// reconfigureInternal gives t cfg's cleanup policy and retention if it has
// others; its partition count stays.
func reconfigureInternal(l *Log, t *Topic, cfg TopicConfig) error {
	have := t.Config()
	if have.Cleanup == cfg.Cleanup && have.Retention == cfg.Retention && have.RetentionBytes == cfg.RetentionBytes {
		return nil
	}
	_, err := l.AlterTopicConfig(t.Name(), false, func(c *TopicConfig) error {
		c.Cleanup, c.Retention, c.RetentionBytes = cfg.Cleanup, cfg.Retention, cfg.RetentionBytes
		return nil
	})
	if err != nil {
		return fmt.Errorf("reconfigure internal topic %s: %w", t.Name(), err)
	}
	l.logger.Info("internal topic reconfigured", "topic", t.Name(), "cleanup", cfg.Cleanup)
	return nil
}

// replayPartition calls fn for every record of p from its start to its high
// watermark and returns the bytes read.
func replayPartition(ctx context.Context, p *Partition, fn func(record.Header, record.Record)) (int64, error) {
	start, hw, _ := p.Offsets()
	var n int64
	for off := start; off < hw; {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		res, err := p.Read(off, offsetsReadChunk)
		if errors.Is(err, ErrOffsetOutOfRange) && res.LogStartOffset > off {
			off = res.LogStartOffset // retention moved the start meanwhile
			continue
		}
		if err != nil {
			return n, err
		}
		if len(res.Batches) == 0 {
			break
		}
		next := off
		err = record.Batches(res.Batches, func(h record.Header, raw []byte) error {
			next = h.LastOffset() + 1
			n += int64(len(raw))
			return record.Decode(raw, func(h record.Header, r record.Record) error {
				if r.Offset >= off {
					fn(h, r)
				}
				return nil
			})
		})
		if err != nil {
			return n, err
		}
		if next <= off {
			return n, fmt.Errorf("read at offset %d made no progress", off)
		}
		off = next
	}
	return n, nil
}

// partitionFor is the partition of the offsets topic that holds group.
func (s *OffsetStore) partitionFor(group string) (*Partition, error) {
	return s.topic.Partition(record.KafkaPartition([]byte(group), s.topic.NumPartitions()))
}

// Commit stores offs as group's committed offsets, atomically (one record
// batch) and durably: it returns only once the batch is fsynced. Later
// commits of the same partitions replace earlier ones. An empty offs is a
// no-op.
func (s *OffsetStore) Commit(ctx context.Context, group string, offs map[TopicPartition]CommittedOffset) error {
	if group == "" || len(group) > maxOffsetKeyString {
		return fmt.Errorf("commit offsets: group id of %d bytes (1 to %d)", len(group), maxOffsetKeyString)
	}
	if len(offs) == 0 {
		return nil
	}
	keys := make([]TopicPartition, 0, len(offs))
	for tp, o := range offs {
		if len(tp.Topic) > maxOffsetKeyString {
			return fmt.Errorf("commit offsets of group %s: topic name of %d bytes", group, len(tp.Topic))
		}
		if len(o.Metadata) > MaxOffsetMetadata {
			return fmt.Errorf("commit offsets of group %s for %s/%d: %d bytes of metadata, at most %d: %w",
				group, tp.Topic, tp.Partition, len(o.Metadata), MaxOffsetMetadata, ErrOffsetMetadataTooLarge)
		}
		keys = append(keys, tp)
	}
	slices.SortFunc(keys, compareTP)
	now := time.Now().UnixMilli()
	recs := make([]record.Record, len(keys))
	vals := make([]*CommittedOffset, len(keys))
	for i, tp := range keys {
		o := offs[tp]
		if o.CommitTime == 0 {
			o.CommitTime = now
		}
		vals[i] = &o
		recs[i] = record.Record{Timestamp: now, Key: encodeOffsetKey(nil, group, tp), Value: encodeOffsetValue(nil, o)}
	}
	return s.write(ctx, group, keys, vals, recs)
}

// DeleteGroup removes every committed offset of group (tombstones, durable
// before it returns). Deleting a group without offsets is a no-op.
func (s *OffsetStore) DeleteGroup(ctx context.Context, group string) error {
	s.mu.Lock()
	var keys []TopicPartition
	for tp, e := range s.groups[group] {
		if !e.deleted {
			keys = append(keys, tp)
		}
	}
	s.mu.Unlock()
	if len(keys) == 0 {
		return nil
	}
	slices.SortFunc(keys, compareTP)
	now := time.Now().UnixMilli()
	recs := make([]record.Record, len(keys))
	for i, tp := range keys {
		recs[i] = record.Record{Timestamp: now, Key: encodeOffsetKey(nil, group, tp)}
	}
	return s.write(ctx, group, keys, make([]*CommittedOffset, len(keys)), recs)
}

// write appends recs (the records of keys/vals, nil = tombstone) for group
// as one batch and applies them in memory in log order.
func (s *OffsetStore) write(ctx context.Context, group string, keys []TopicPartition, vals []*CommittedOffset, recs []record.Record) error {
	p, err := s.partitionFor(group)
	if err != nil {
		return err
	}
	groups := make([]string, len(keys))
	for i := range groups {
		groups[i] = group
	}
	if err := s.writeBatch(ctx, p, groups, keys, vals, recs); err != nil {
		return fmt.Errorf("offsets of group %s: %w", group, err)
	}
	return nil
}

// writeBatch appends recs (record i sets, or with vals[i] nil deletes,
// groups[i]'s offset of keys[i]) to p as one batch, durable and atomic,
// and applies them.
func (s *OffsetStore) writeBatch(ctx context.Context, p *Partition, groups []string, keys []TopicPartition, vals []*CommittedOffset, recs []record.Record) error {
	batch, err := record.AppendBatch(nil, recs, record.BatchOptions{})
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	if limit := s.batchLimit(); int64(len(batch)) > limit {
		return fmt.Errorf("commit of %d partitions is %d bytes, at most %d", len(keys), len(batch), limit)
	}
	s.mu.Lock()
	s.inflight++
	s.mu.Unlock()
	res, err := p.Append(ctx, batch)
	s.mu.Lock()
	s.inflight--
	if err == nil {
		for i, tp := range keys {
			valLen := 0
			if vals[i] != nil {
				valLen = len(recs[i].Value)
			}
			s.applyLocked(groups[i], tp, vals[i], res.BaseOffset+int64(i), offsetRecordSize(groups[i], tp, vals[i] != nil, valLen))
		}
	}
	s.purgeLocked()
	s.mu.Unlock()
	return err
}

// batchLimit is the largest batch of the offsets topic.
func (s *OffsetStore) batchLimit() int64 { return min(offsetsMaxBatchBytes, s.sizing.segmentBytes) }

// applyLocked sets (val != nil) or deletes a key whose record is at log
// offset at, unless a later record already applied; s.mu is held.
func (s *OffsetStore) applyLocked(group string, tp TopicPartition, val *CommittedOffset, at int64, size int64) {
	g := s.groups[group]
	e := g[tp]
	if e != nil && e.at >= at {
		return
	}
	if e != nil && !e.deleted {
		s.liveBytes -= e.size(group, tp)
	}
	if val == nil {
		if e == nil {
			return
		}
		if !e.deleted {
			e.deleted = true
			s.tombstones++
		}
		e.at = at
		return
	}
	if g == nil {
		g = make(map[TopicPartition]*offsetEntry)
		s.groups[group] = g
	}
	if e == nil {
		e = &offsetEntry{}
		g[tp] = e
	} else if e.deleted {
		e.deleted = false
		s.tombstones--
	}
	e.CommittedOffset, e.at = *val, at
	s.liveBytes += size
}

// size is the encoded size of the entry's record.
func (e *offsetEntry) size(group string, tp TopicPartition) int64 {
	return offsetRecordSize(group, tp, true, offsetValueSize(e.Metadata))
}

// purgeLocked forgets tombstoned keys once no commit is in flight (an
// in-flight commit's record may precede the tombstone); s.mu is held.
func (s *OffsetStore) purgeLocked() {
	if s.inflight > 0 || s.tombstones == 0 {
		return
	}
	for group, g := range s.groups {
		for tp, e := range g {
			if e.deleted {
				delete(g, tp)
			}
		}
		if len(g) == 0 {
			delete(s.groups, group)
		}
	}
	s.tombstones = 0
}

// Fetch returns a copy of group's committed offsets (empty if none).
func (s *OffsetStore) Fetch(group string) map[TopicPartition]CommittedOffset {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[TopicPartition]CommittedOffset, len(s.groups[group]))
	for tp, e := range s.groups[group] {
		if !e.deleted {
			out[tp] = e.CommittedOffset
		}
	}
	return out
}

// Groups returns the groups that have committed offsets, sorted.
func (s *OffsetStore) Groups() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for group, g := range s.groups {
		for _, e := range g {
			if !e.deleted {
				out = append(out, group)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

func compareTP(a, b TopicPartition) int {
	if a.Topic != b.Topic {
		if a.Topic < b.Topic {
			return -1
		}
		return 1
	}
	return int(a.Partition) - int(b.Partition)
}

// Record encoding (version 1), big-endian:
//
//	key:   version u16 = 1 | group length u16 | group | topic length u16 | topic | partition i32
//	value: version u16 = 1 | offset i64 | leader epoch i32 | commit time i64 | metadata length u32 | metadata
//	       (a null value is a tombstone)

func encodeOffsetKey(dst []byte, group string, tp TopicPartition) []byte {
	dst = binary.BigEndian.AppendUint16(dst, offsetKeyVersion)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(group)))
	dst = append(dst, group...)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(tp.Topic)))
	dst = append(dst, tp.Topic...)
	return binary.BigEndian.AppendUint32(dst, uint32(tp.Partition))
}

func encodeOffsetValue(dst []byte, o CommittedOffset) []byte {
	dst = binary.BigEndian.AppendUint16(dst, offsetValueVersion)
	dst = binary.BigEndian.AppendUint64(dst, uint64(o.Offset))
	dst = binary.BigEndian.AppendUint32(dst, uint32(o.LeaderEpoch))
	dst = binary.BigEndian.AppendUint64(dst, uint64(o.CommitTime))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(o.Metadata)))
	return append(dst, o.Metadata...)
}

func offsetValueSize(metadata string) int { return 2 + 8 + 4 + 8 + 4 + len(metadata) }

func offsetRecordSize(group string, tp TopicPartition, live bool, valLen int) int64 {
	if !live {
		return 0
	}
	return int64(2+2+len(group)+2+len(tp.Topic)+4+valLen) + recordOverhead
}

// decodeOffsetRecord parses a record of __consumer_offsets; val is nil for a
// tombstone. Errors wrap errBadOffsetRecord.
func decodeOffsetRecord(key, value []byte) (group string, tp TopicPartition, val *CommittedOffset, err error) {
	d := snapDecoder{b: key}
	if v := d.u16(); d.err == nil && v != offsetKeyVersion {
		return "", tp, nil, fmt.Errorf("%w: key version %d", errBadOffsetRecord, v)
	}
	group = string(d.take(int(d.u16())))
	tp.Topic = string(d.take(int(d.u16())))
	tp.Partition = d.i32()
	if d.err != nil || len(d.b) != 0 || group == "" {
		return "", tp, nil, fmt.Errorf("%w: bad key of %d bytes", errBadOffsetRecord, len(key))
	}
	if value == nil {
		return group, tp, nil, nil
	}
	d = snapDecoder{b: value}
	if v := d.u16(); d.err == nil && v != offsetValueVersion {
		return "", tp, nil, fmt.Errorf("%w: value version %d", errBadOffsetRecord, v)
	}
	o := CommittedOffset{Offset: d.i64(), LeaderEpoch: d.i32(), CommitTime: d.i64()}
	n := d.u32()
	if d.err == nil && int64(n) != int64(len(d.b)) {
		return "", tp, nil, fmt.Errorf("%w: metadata of %d bytes, %d left", errBadOffsetRecord, n, len(d.b))
	}
	o.Metadata = string(d.take(int(n)))
	if d.err != nil {
		return "", tp, nil, fmt.Errorf("%w: bad value of %d bytes", errBadOffsetRecord, len(value))
	}
	return group, tp, &o, nil
}
