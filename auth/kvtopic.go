package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/record"
)

// kvTopic is a compacted internal topic of the log used as a durable map:
// every record is a key's latest value (nil: deleted), fsynced before a
// write returns, replayed into memory at open. The stores of this package
// (credentials, quotas) keep their state in one each.
type kvTopic struct {
	name string
	p    *logstore.Partition
}

// openKV opens (creating: one partition, fsync always, compacted) the
// internal topic name of l.
func openKV(l *logstore.Log, name string) (*kvTopic, error) {
	t, err := l.Topic(name)
	if errors.Is(err, logstore.ErrUnknownTopic) {
		err = l.CreateTopic(name, logstore.TopicConfig{Partitions: 1, Fsync: logstore.FsyncPolicy{Mode: logstore.FsyncAlways}, Cleanup: logstore.CleanupCompact})
		if err != nil && !errors.Is(err, logstore.ErrTopicExists) {
			return nil, fmt.Errorf("create %s: %w", name, err)
		}
		t, err = l.Topic(name)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p, err := t.Partition(0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &kvTopic{name: name, p: p}, nil
}

// replay calls fn for every record of the topic in log order; fn's slices
// are valid only during the call.
func (kv *kvTopic) replay(ctx context.Context, fn func(key, value []byte)) error {
	start, hw, _ := kv.p.Offsets()
	for off := start; off < hw; {
		if err := ctx.Err(); err != nil {
			return err
		}
		res, err := kv.p.Read(off, 1<<20)
		if err != nil {
			return fmt.Errorf("read %s at %d: %w", kv.name, off, err)
		}
		if len(res.Batches) == 0 {
			break
		}
		next := off
		err = record.Batches(res.Batches, func(h record.Header, raw []byte) error {
			next = h.LastOffset() + 1
			return record.Decode(raw, func(h record.Header, r record.Record) error {
				if r.Offset >= off && !h.IsControl() && r.Key != nil {
					fn(r.Key, r.Value)
				}
				return nil
			})
		})
		if err != nil {
			return fmt.Errorf("replay %s: %w", kv.name, err)
		}
		off = next
	}
	return nil
}

// put durably sets key to value (nil: deletes it).
func (kv *kvTopic) put(ctx context.Context, key, value []byte) error {
	_, err := kv.p.AppendRecords(ctx, []record.Record{{Key: key, Value: value, Timestamp: time.Now().UnixMilli()}})
	if err != nil {
		return fmt.Errorf("write %s: %w", kv.name, err)
	}
	return nil
}
