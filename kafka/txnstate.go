package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/record"
)

// txnStateTopic is the internal topic holding the transaction coordinator's
// state: one record per change, key = transactional id, value = JSON
// txnRecord; the latest record of a key wins on replay.
const txnStateTopic = "__transaction_state"

// logTxnBackend implements txnBackend on the log.
type logTxnBackend struct {
	log     *logstore.Log
	offsets *logstore.OffsetStore
	pids    *logstore.ProducerIDs
	state   *logstore.Partition
	logger  *slog.Logger
	// offmu is the server's (see Server.offmu): commitOffsets holds it
	// shared from its check that the topics exist to its write.
	offmu *sync.RWMutex
}

func newLogTxnBackend(ctx context.Context, log *logstore.Log, offsets *logstore.OffsetStore, logger *slog.Logger) (*logTxnBackend, error) {
	pids, err := logstore.OpenProducerIDs(ctx, log)
	if err != nil {
		return nil, fmt.Errorf("kafka: opening the producer id allocator: %w", err)
	}
	// Compacted: the latest state of every transactional id is all a
	// replay needs, so restarts stay fast however long the server runs.
	t, err := log.Topic(txnStateTopic)
	if errors.Is(err, logstore.ErrUnknownTopic) {
		err = log.CreateTopic(txnStateTopic, logstore.TopicConfig{Partitions: 1, Fsync: logstore.FsyncPolicy{Mode: logstore.FsyncAlways}, Cleanup: logstore.CleanupCompact})
		if err != nil && !errors.Is(err, logstore.ErrTopicExists) {
			return nil, fmt.Errorf("creating %s: %w", txnStateTopic, err)
		}
		t, err = log.Topic(txnStateTopic)
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", txnStateTopic, err)
	}
	if !t.Cleanup().Compact() {
		// A data directory from before the topic was compacted.
		if _, err := log.AlterTopicConfig(txnStateTopic, false, func(c *logstore.TopicConfig) error {
			c.Cleanup = logstore.CleanupCompact
			return nil
		}); err != nil {
			return nil, fmt.Errorf("compacting %s: %w", txnStateTopic, err)
		}
	}
	p, err := t.Partition(0)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", txnStateTopic, err)
	}
	return &logTxnBackend{log: log, offsets: offsets, pids: pids, state: p, logger: logger}, nil
}

// replay loads every persisted transaction state into c.
func (b *logTxnBackend) replay(c *txnCoordinator) error {
	off, hwm, _ := b.state.Offsets()
	for off < hwm {
		res, err := b.state.Read(off, 1<<20)
		if err != nil {
			return fmt.Errorf("replaying %s at offset %d: %w", txnStateTopic, off, err)
		}
		if len(res.Batches) == 0 {
			break
		}
		next := off
		_ = record.Batches(res.Batches, func(h record.Header, _ []byte) error {
			next = max(next, h.LastOffset()+1) // compaction may leave empty batches and gaps
			return nil
		})
		err = record.Decode(res.Batches, func(h record.Header, r record.Record) error {
			if r.Offset < off || h.IsControl() {
				return nil
			}
			var tr txnRecord
			if err := json.Unmarshal(r.Value, &tr); err != nil || tr.TransactionalID == "" {
				// Only this package writes the topic; skip what it did not.
				b.logger.Warn("skipping malformed transaction state record", "topic", txnStateTopic, "offset", r.Offset, "err", err)
				return nil
			}
			c.load(tr)
			return nil
		})
		if err != nil {
			return fmt.Errorf("replaying %s: %w", txnStateTopic, err)
		}
		if next <= off {
			break
		}
		off = next
	}
	return nil
}

func (b *logTxnBackend) persist(ctx context.Context, r *txnRecord) error {
	_, err := b.state.AppendRecords(ctx, []record.Record{{Key: []byte(r.TransactionalID), Value: r.marshal()}})
	return err
}

func (b *logTxnBackend) nextProducerID(ctx context.Context) (int64, error) {
	return b.pids.Next(ctx)
}

func (b *logTxnBackend) writeMarker(ctx context.Context, p tp, pid int64, epoch int16, commit bool) error {
	t, err := b.log.Topic(p.Topic)
	if errors.Is(err, logstore.ErrUnknownTopic) {
		return nil // deleted since: nothing to close
	}
	if err != nil {
		return err
	}
	part, err := t.Partition(p.Partition)
	if errors.Is(err, logstore.ErrPartitionOutOfRange) {
		return nil // the topic was created again with fewer partitions: gone too
	}
	if err != nil {
		return err
	}
	_, err = part.WriteTxnMarker(ctx, pid, epoch, commit)
	return err
}

// commitOffsets writes a committed transaction's offsets, but not those of
// partitions deleted since TxnOffsetCommit (Kafka drops a deleted
// partition's pending transactional offsets), created again under their
// name or not (the topic id differs): the topic's deletion deleted its
// groups' offsets, and must not see them come back.
func (b *logTxnBackend) commitOffsets(ctx context.Context, group string, offs []txnOffset) error {
	b.offmu.RLock()
	defer b.offmu.RUnlock()
	m := make(map[logstore.TopicPartition]logstore.CommittedOffset, len(offs))
	for _, o := range offs {
		if !b.partitionOf(tp{o.Topic, o.Partition}, o.TopicID) {
			continue
		}
		m[logstore.TopicPartition{Topic: o.Topic, Partition: o.Partition}] = logstore.CommittedOffset{Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata}
	}
	return b.offsets.Commit(ctx, group, m)
}

func (b *logTxnBackend) partitionExists(p tp) bool { return b.partitionOf(p, logstore.TopicID{}) }

// partitionOf reports whether the partition exists in the topic of id id
// (in any topic of its name for the zero id).
func (b *logTxnBackend) partitionOf(p tp, id logstore.TopicID) bool {
	t, err := b.log.Topic(p.Topic)
	return err == nil && p.Partition >= 0 && p.Partition < t.NumPartitions() && (id.IsZero() || t.ID() == id)
}
