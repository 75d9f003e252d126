package logstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sluicehq/sluice/record"
)

// DeleteOffsets removes group's committed offsets of the given partitions
// (Kafka's OffsetDelete): one batch of tombstones, durable before it
// returns, so the offsets stay deleted after a restart. Partitions without
// a committed offset are skipped; deleting none is a no-op. It returns the
// partitions whose offsets it deleted.
func (s *OffsetStore) DeleteOffsets(ctx context.Context, group string, tps []TopicPartition) ([]TopicPartition, error) {
	s.mu.Lock()
	var keys []TopicPartition
	seen := make(map[TopicPartition]bool, len(tps))
	g := s.groups[group]
	for _, tp := range tps {
		if e := g[tp]; e != nil && !e.deleted && !seen[tp] {
			seen[tp] = true
			keys = append(keys, tp)
		}
	}
	s.mu.Unlock()
	if len(keys) == 0 {
		return nil, nil
	}
	slices.SortFunc(keys, compareTP)
	now := time.Now().UnixMilli()
	recs := make([]record.Record, len(keys))
	for i, tp := range keys {
		recs[i] = record.Record{Timestamp: now, Key: encodeOffsetKey(nil, group, tp)}
	}
	if err := s.write(ctx, group, keys, make([]*CommittedOffset, len(keys)), recs); err != nil {
		return nil, err
	}
	return keys, nil
}

// DeleteTopicOffsets removes every group's committed offsets of topic's
// partitions (what Kafka does when a topic is deleted, so that a topic
// created again under the same name does not resume its groups at the old
// topic's offsets): the tombstones of all groups go in one durable batch
// per offsets partition (more only past the batch limit), so that a
// deletion costs one fsync, not one per group, and is atomic within a
// batch. It returns the number of offsets deleted; on an error, those of
// the failed batch and the ones after it are kept.
func (s *OffsetStore) DeleteTopicOffsets(ctx context.Context, topic string) (int, error) {
	n, err := s.deleteOffsetsOf(ctx, func(t string) bool { return t == topic })
	if err != nil {
		return n, fmt.Errorf("delete offsets of topic %s: %w", topic, err)
	}
	return n, nil
}

// DeleteOffsetsOfMissingTopics removes every group's committed offsets of
// the topics that exists says are gone: those a crash left between a
// topic's deletion and that of its offsets (DeleteTopicOffsets), so that a
// topic created again under the name does not resume its groups at them.
// Batched as DeleteTopicOffsets.
func (s *OffsetStore) DeleteOffsetsOfMissingTopics(ctx context.Context, exists func(topic string) bool) (int, error) {
	known := map[string]bool{}
	n, err := s.deleteOffsetsOf(ctx, func(t string) bool {
		e, ok := known[t]
		if !ok {
			e = exists(t)
			known[t] = e
		}
		return !e
	})
	if err != nil {
		return n, fmt.Errorf("delete offsets of deleted topics: %w", err)
	}
	return n, nil
}

// deleteOffsetsOf deletes every group's offsets of the topics selects
// picks (called under s.mu: it must not use the store).
func (s *OffsetStore) deleteOffsetsOf(ctx context.Context, selects func(topic string) bool) (int, error) {
	type del struct {
		part  int32
		group string
		tp    TopicPartition
	}
	nparts := s.topic.NumPartitions()
	s.mu.Lock()
	var dels []del
	for group, g := range s.groups {
		for tp, e := range g {
			if !e.deleted && selects(tp.Topic) {
				dels = append(dels, del{record.KafkaPartition([]byte(group), nparts), group, tp})
			}
		}
	}
	s.mu.Unlock()
	slices.SortFunc(dels, func(a, b del) int {
		if a.part != b.part {
			return int(a.part - b.part)
		}
		if c := strings.Compare(a.group, b.group); c != 0 {
			return c
		}
		return compareTP(a.tp, b.tp)
	})
	now := time.Now().UnixMilli()
	budget := s.batchLimit() / 2 // the estimate below leaves out the batch header and varints
	n := 0
	for len(dels) > 0 {
		var (
			groups []string
			keys   []TopicPartition
			recs   []record.Record
			size   int64
		)
		part := dels[0].part
		for len(dels) > 0 && dels[0].part == part {
			d := dels[0]
			key := encodeOffsetKey(nil, d.group, d.tp)
			if len(keys) > 0 && size+int64(len(key))+32 > budget {
				break
			}
			size += int64(len(key)) + 32
			groups, keys = append(groups, d.group), append(keys, d.tp)
			recs = append(recs, record.Record{Timestamp: now, Key: key})
			dels = dels[1:]
		}
		p, err := s.topic.Partition(part)
		if err == nil {
			err = s.writeBatch(ctx, p, groups, keys, make([]*CommittedOffset, len(keys)), recs)
		}
		if err != nil {
			return n, err
		}
		n += len(keys)
	}
	return n, nil
}
