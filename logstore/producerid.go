package logstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sluicehq/sluice/record"
)

// ProducerIDsTopic is the internal topic that records producer-id
// reservations.
const ProducerIDsTopic = "__producer_ids"

// producerIDBlock is how many ids one durable reservation covers.
const producerIDBlock = 1000

const producerIDRecordVersion = 1

var errBadProducerIDRecord = errors.New("malformed producer-id reservation record")

// ProducerIDs allocates producer ids for InitProducerId. Ids are reserved in
// blocks of 1000 by appending the block's end to the internal topic
// __producer_ids (fsync always) before any id of the block is handed out, so
// an id is never handed out twice, even after a crash: a restart continues
// after the last reserved block (the unused rest of it is skipped). It is
// safe for concurrent use.
type ProducerIDs struct {
	p *Partition

	mu    sync.Mutex
	next  int64 // next id to hand out
	limit int64 // first id not reserved
}

// OpenProducerIDs opens the producer-id allocator of l, creating the
// internal topic __producer_ids on first use. Open it once per Log.
func OpenProducerIDs(ctx context.Context, l *Log) (*ProducerIDs, error) {
	cfg := TopicConfig{Partitions: 1, Fsync: FsyncPolicy{Mode: FsyncAlways}, Cleanup: CleanupCompact}
	t, err := openInternalTopic(l, ProducerIDsTopic, cfg)
	if err != nil {
		return nil, err
	}
	p, err := t.Partition(0)
	if err != nil {
		return nil, err
	}
	a := &ProducerIDs{p: p}
	lastKeyless := false
	_, err = replayPartition(ctx, p, func(h record.Header, r record.Record) {
		if h.IsControl() {
			return
		}
		lastKeyless = r.Key == nil
		limit, err := decodeProducerIDRecord(r.Value)
		if err != nil {
			l.logger.Warn("producer ids: skipping malformed reservation", "offset", r.Offset, "err", err)
			return
		}
		a.limit = max(a.limit, limit)
	})
	if err != nil {
		return nil, fmt.Errorf("producer ids: replay %s: %w", ProducerIDsTopic, err)
	}
	a.next = a.limit
	if lastKeyless {
		// Reservations were once written without a key, which compaction
		// drops: restate the limit under the key before compacting.
		if err := a.reserve(ctx, a.limit); err != nil {
			return nil, err
		}
	}
	if err := reconfigureInternal(l, t, cfg); err != nil {
		return nil, err
	}
	return a, nil
}

// producerIDKey is the key of every reservation record: the topic is
// compacted down to the latest (highest) reservation.
var producerIDKey = []byte("limit")

// reserve durably records that ids below limit may have been handed out.
func (a *ProducerIDs) reserve(ctx context.Context, limit int64) error {
	batch, err := record.AppendBatch(nil, []record.Record{{
		Timestamp: time.Now().UnixMilli(),
		Key:       producerIDKey,
		Value:     encodeProducerIDRecord(nil, limit),
	}}, record.BatchOptions{})
	if err != nil {
		return fmt.Errorf("producer ids: encode reservation: %w", err)
	}
	if _, err := a.p.Append(ctx, batch); err != nil {
		return fmt.Errorf("producer ids: reserve up to %d: %w", limit, err)
	}
	return nil
}

// Next returns a producer id never returned before by this data directory.
// It blocks on a durable write once every 1000 ids.
func (a *ProducerIDs) Next(ctx context.Context) (int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.next >= a.limit {
		limit := a.next + producerIDBlock
		if err := a.reserve(ctx, limit); err != nil {
			return 0, err
		}
		a.limit = limit
	}
	id := a.next
	a.next++
	return id, nil
}

// Reservation record value (version 1), big-endian:
//
//	version u16 = 1 | limit i64 (ids below limit may have been handed out)
func encodeProducerIDRecord(dst []byte, limit int64) []byte {
	dst = binary.BigEndian.AppendUint16(dst, producerIDRecordVersion)
	return binary.BigEndian.AppendUint64(dst, uint64(limit))
}

func decodeProducerIDRecord(b []byte) (int64, error) {
	if len(b) != 10 {
		return 0, fmt.Errorf("%w: %d bytes", errBadProducerIDRecord, len(b))
	}
	if v := binary.BigEndian.Uint16(b); v != producerIDRecordVersion {
		return 0, fmt.Errorf("%w: version %d", errBadProducerIDRecord, v)
	}
	limit := int64(binary.BigEndian.Uint64(b[2:]))
	if limit < 0 {
		return 0, fmt.Errorf("%w: negative limit %d", errBadProducerIDRecord, limit)
	}
	return limit, nil
}
