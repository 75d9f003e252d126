package logstore

import (
	"context"
	"fmt"
	"slices"
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
// topic's offsets): one durable batch of tombstones per group. It returns
// the number of offsets deleted; on an error, the groups after the failing
// one keep theirs.
func (s *OffsetStore) DeleteTopicOffsets(ctx context.Context, topic string) (int, error) {
	n := 0
	for _, group := range s.Groups() {
		var del []TopicPartition
		for tp := range s.Fetch(group) {
			if tp.Topic == topic {
				del = append(del, tp)
			}
		}
		if len(del) == 0 {
			continue
		}
		done, err := s.DeleteOffsets(ctx, group, del)
		n += len(done)
		if err != nil {
			return n, fmt.Errorf("delete offsets of topic %s: %w", topic, err)
		}
	}
	return n, nil
}
