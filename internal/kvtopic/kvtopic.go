// Package kvtopic keeps a durable key-value map in a compacted internal
// topic of the embedded log: every record is a key's latest value (a nil
// value deletes the key), fsynced before a write returns, and the whole
// topic is replayed into the owner's memory at open. The security model
// (package auth: users, ACLs, quotas, tenants, tokens) and the schema
// registry (package schema) each keep their state in one.
//
// A Topic has no memory of its own: its owner holds the map, serialises its
// writes, and applies a write to memory only once Put returns.
package kvtopic

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/record"
)

// Topic is a compacted, single-partition internal topic used as a durable
// map.
type Topic struct {
	name string
	p    *logstore.Partition
}

// Entry is one key's new value; a nil Value deletes the key.
type Entry struct {
	Key, Value []byte
}

// Open opens the internal topic name of l, creating it (one partition,
// fsync always, cleanup.policy compact) when it does not exist.
func Open(l *logstore.Log, name string) (*Topic, error) {
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
	return &Topic{name: name, p: p}, nil
}

// Name returns the topic's name.
func (kv *Topic) Name() string { return kv.name }

// Replay calls fn for every record of the topic in log order (a key may
// come several times until the cleaner compacts it; the last one is its
// value; a nil value is a deletion); fn's slices are valid only during the
// call.
func (kv *Topic) Replay(ctx context.Context, fn func(key, value []byte)) error {
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

// Put durably sets key to value (nil: deletes it).
func (kv *Topic) Put(ctx context.Context, key, value []byte) error {
	return kv.PutAll(ctx, []Entry{{Key: key, Value: value}})
}

// PutAll durably writes every entry in one batch of the log: after a crash
// either all of them are there or none.
func (kv *Topic) PutAll(ctx context.Context, entries []Entry) error {
	if len(entries) == 0 {
		return nil
	}
	now := time.Now().UnixMilli()
	recs := make([]record.Record, len(entries))
	for i, e := range entries {
		recs[i] = record.Record{Key: e.Key, Value: e.Value, Timestamp: now}
	}
	if _, err := kv.p.AppendRecords(ctx, recs); err != nil {
		return fmt.Errorf("write %s: %w", kv.name, err)
	}
	return nil
}
