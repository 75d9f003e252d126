package logsrc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/record"
	"github.com/sluicehq/sluice/stream"
)

// DefaultMaxBatchBytes is SinkConfig.MaxBatchBytes's default.
const DefaultMaxBatchBytes = 1 << 20

// SinkConfig configures a Sink.
type SinkConfig struct {
	// Topic is the topic to append to.
	Topic string
	// CreatePartitions, when above 0, creates the topic with that many
	// partitions (and the log's default fsync policy) if it does not exist
	// when the sink opens. With 0 a missing topic is an error.
	CreatePartitions int32
	// MaxBatchBytes bounds the record bytes of one appended batch; a Write
	// with more for one partition appends several. 0 means
	// DefaultMaxBatchBytes.
	MaxBatchBytes int
	// Codec compresses appended batches; the zero value is none.
	Codec record.Codec

	// Transactional writes inside the log's transactions, and the writer
	// implements checkpoint.TwoPhaseCommitter (see txn.go). It needs
	// ProducerIDs.
	Transactional bool
	// ProducerIDs is the log's producer-id allocator (one per Log, shared
	// with the Kafka listener when there is one).
	ProducerIDs *logstore.ProducerIDs
	// TransactionalID prefixes the subtasks' transactional ids; unique to
	// the sink and stable across restarts. Default "sluice-<Topic>".
	TransactionalID string
	// MaxPendingCheckpoints is how many pre-committed transactions a
	// subtask holds slots for from the start; one more takes new writes.
	// Default 2. More are pending only when checkpoints fail (an aborted
	// checkpoint's transaction waits for the next one that completes):
	// the writer then adds a slot (counted in AddedSlots); nothing
	// commits before its checkpoint completes.
	MaxPendingCheckpoints int
}

// Sink appends messages to a topic of an embedded log. It implements
// stream.Sink[connector.Message].
type Sink struct {
	log *logstore.Log
	cfg SinkConfig

	mu    sync.Mutex
	topic *logstore.Topic
	reg   *registry // transactional: the transactional-id registry

	addedSlots atomic.Int64
}

var _ stream.Sink[connector.Message] = (*Sink)(nil)

// NewSink returns a sink appending to cfg.Topic of l.
func NewSink(l *logstore.Log, cfg SinkConfig) (*Sink, error) {
	if l == nil {
		return nil, errors.New("log sink: no log")
	}
	if err := logstore.ValidTopicName(cfg.Topic); err != nil {
		return nil, fmt.Errorf("log sink: %w", err)
	}
	if cfg.MaxBatchBytes <= 0 {
		cfg.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if cfg.Transactional && cfg.ProducerIDs == nil {
		return nil, fmt.Errorf("log sink %s: transactional writes need the log's producer-id allocator", cfg.Topic)
	}
	if cfg.TransactionalID == "" {
		cfg.TransactionalID = "sluice-" + cfg.Topic
	}
	if cfg.MaxPendingCheckpoints <= 0 {
		cfg.MaxPendingCheckpoints = 2
	}
	return &Sink{log: l, cfg: cfg}, nil
}

func (s *Sink) openTopic() (*logstore.Topic, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.topic != nil {
		return s.topic, nil
	}
	t, err := s.log.Topic(s.cfg.Topic)
	if errors.Is(err, logstore.ErrUnknownTopic) && s.cfg.CreatePartitions > 0 {
		err = s.log.CreateTopic(s.cfg.Topic, logstore.TopicConfig{Partitions: s.cfg.CreatePartitions})
		if err == nil || errors.Is(err, logstore.ErrTopicExists) {
			t, err = s.log.Topic(s.cfg.Topic)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("log sink: %w", err)
	}
	s.topic = t
	return t, nil
}

// Open implements stream.Sink.
func (s *Sink) Open(ctx context.Context, info stream.SubtaskInfo) (stream.SinkWriter[connector.Message], error) {
	t, err := s.openTopic()
	if err != nil {
		return nil, err
	}
	n := int(t.NumPartitions())
	parts := make([]*logstore.Partition, n)
	for i := range parts {
		if parts[i], err = t.Partition(int32(i)); err != nil {
			return nil, fmt.Errorf("log sink: %w", err)
		}
	}
	w := &writer{
		cfg:     s.cfg,
		topic:   t,
		parts:   parts,
		rr:      info.Index % n,
		pending: make([][]record.Record, n),
		bufs:    make([][]byte, n),
	}
	if !s.cfg.Transactional {
		return w, nil
	}
	return s.openTxn(ctx, info, w)
}

// writer is one sink subtask's writer. Its buffers are reused across
// Writes; nothing of a Write's slice is kept after it returns.
type writer struct {
	cfg     SinkConfig
	topic   *logstore.Topic
	parts   []*logstore.Partition
	rr      int
	pending [][]record.Record
	bufs    [][]byte
	written int64
	txn     *slot // transactional writers: the transaction taking writes
}

// Write appends records, one or more batches per partition, in parallel
// across partitions, and returns once all are durable.
func (w *writer) Write(ctx context.Context, msgs []connector.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	n := int32(len(w.parts))
	now := time.Now().UnixMilli()
	rr := int32(w.rr)
	w.rr = (w.rr + 1) % len(w.parts)
	for i := range msgs {
		m := &msgs[i]
		p := rr
		if m.Key != nil {
			p = record.KafkaPartition(m.Key, n)
		}
		r := record.Record{Timestamp: m.Timestamp, Key: m.Key, Value: m.Value}
		if r.Timestamp == 0 {
			r.Timestamp = now
		}
		if len(m.Headers) > 0 {
			r.Headers = make([]record.RecordHeader, len(m.Headers))
			for j, h := range m.Headers {
				r.Headers[j] = record.RecordHeader{Key: h.Key, Value: h.Value}
			}
		}
		w.pending[p] = append(w.pending[p], r)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	busy := 0
	for p := range w.pending {
		if len(w.pending[p]) > 0 {
			busy++
		}
	}
	for p := range w.pending {
		recs := w.pending[p]
		if len(recs) == 0 {
			continue
		}
		appendAll := func() {
			if err := w.appendPartition(ctx, p, recs); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}
		if busy == 1 {
			appendAll()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			appendAll()
		}()
	}
	wg.Wait()
	for p := range w.pending {
		clear(w.pending[p])
		w.pending[p] = w.pending[p][:0]
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("log sink %s: %w", w.cfg.Topic, err)
	}
	w.written += int64(len(msgs))
	return nil
}

// appendPartition appends recs to partition p in batches of at most
// MaxBatchBytes of keys and values, and within the topic's
// max.message.bytes.
func (w *writer) appendPartition(ctx context.Context, p int, recs []record.Record) error {
	for len(recs) > 0 {
		size, k := 0, 0
		for k < len(recs) && (k == 0 || size+len(recs[k].Key)+len(recs[k].Value) <= w.cfg.MaxBatchBytes) {
			size += len(recs[k].Key) + len(recs[k].Value)
			k++
		}
		opts := record.BatchOptions{Codec: w.cfg.Codec}
		if t := w.txn; t != nil {
			opts.ProducerID, opts.ProducerEpoch, opts.BaseSequence = t.pid, t.epoch, t.seq[p]
			opts.Idempotent, opts.Transactional = true, true
		}
		var b []byte
		for {
			var err error
			if b, err = record.AppendBatch(w.bufs[p][:0], recs[:k], opts); err != nil {
				return fmt.Errorf("partition %d: encode batch: %w", p, err)
			}
			w.bufs[p] = b
			// Above the topic's max.message.bytes (read at every batch:
			// it may change while the sink runs), which the log refuses:
			// half the records, until one is left (which fails if still
			// too large).
			if m := int(w.topic.Config().MaxMessageBytes); k == 1 || m == 0 || len(b) <= m {
				break
			}
			k /= 2
		}
		if _, err := w.parts[p].Append(ctx, b); err != nil {
			return err
		}
		if t := w.txn; t != nil {
			t.seq[p] += int32(k)
			t.touched[p] = true
		}
		recs = recs[k:]
	}
	return nil
}

// OnBarrier implements stream.BarrierWriter. Every Write is durable when it
// returns, so there is nothing to flush: the barrier's checkpoint covers
// every record written before it.
func (w *writer) OnBarrier(context.Context, uint64) error { return nil }

// Close implements stream.SinkWriter.
func (w *writer) Close(context.Context) error { return nil }

var _ stream.BarrierWriter = (*writer)(nil)

// AddedSlots counts the transaction slots transactional writers added
// beyond MaxPendingCheckpoints+1 because checkpoints kept failing and
// pre-committed transactions waited for the next completed one.
func (s *Sink) AddedSlots() int64 { return s.addedSlots.Load() }
