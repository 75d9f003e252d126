package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/stream"
)

// DefaultMaxPendingCheckpoints is SinkConfig.MaxPendingCheckpoints's default.
const DefaultMaxPendingCheckpoints = 2

// SinkConfig configures a Sink.
type SinkConfig struct {
	// Brokers are the seed brokers, HOST:PORT.
	Brokers []string
	// Topic is the topic written to. Records with a key go to the
	// partition Kafka's default partitioner picks (murmur2).
	Topic string
	// Transactional writes inside transactions committed by
	// CommitCheckpoint (see the package doc).
	Transactional bool
	// TransactionalID prefixes the subtasks' transactional ids; it must be
	// unique to this sink among all jobs writing to the cluster and stable
	// across restarts. Default: "sluice-<Topic>".
	TransactionalID string
	// MaxPendingCheckpoints is how many pre-committed transactions a
	// subtask may hold while their checkpoints complete; one more slot
	// takes new writes. Default DefaultMaxPendingCheckpoints. When every
	// slot is taken the oldest pending transaction is committed early
	// (counted in EarlyCommits).
	MaxPendingCheckpoints int
	// TransactionTimeout bounds a transaction on the broker; 0 keeps the
	// client's default (40s). It must exceed the checkpoint interval.
	TransactionTimeout time.Duration
	// Linger is how long a partition's batch waits for more records
	// before it is sent. The default, 0, sends at once (while a request
	// to the broker is in flight records gather anyway, so throughput
	// keeps its batching); franz-go's own default would be 10ms, the
	// latency an idle pipeline would add. A kgo.ProducerLinger in
	// ClientOptions overrides it.
	Linger time.Duration
	// ClientOptions are added to every client (TLS, SASL, linger, ...).
	ClientOptions []kgo.Opt
}

// Sink writes messages to a Kafka topic; it implements
// stream.Sink[connector.Message].
type Sink struct {
	cfg          SinkConfig
	earlyCommits atomic.Int64
}

var _ stream.Sink[connector.Message] = (*Sink)(nil)

// NewSink validates cfg and returns a sink. It does not connect.
func NewSink(cfg SinkConfig) (*Sink, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("kafka sink: no brokers")
	}
	if cfg.Topic == "" {
		return nil, errors.New("kafka sink: no topic")
	}
	if cfg.TransactionalID == "" {
		cfg.TransactionalID = "sluice-" + cfg.Topic
	}
	if cfg.MaxPendingCheckpoints <= 0 {
		cfg.MaxPendingCheckpoints = DefaultMaxPendingCheckpoints
	}
	if cfg.TransactionTimeout < 0 {
		return nil, fmt.Errorf("kafka sink %s: negative transaction timeout", cfg.Topic)
	}
	if cfg.Linger < 0 {
		return nil, fmt.Errorf("kafka sink %s: negative linger %v", cfg.Topic, cfg.Linger)
	}
	return &Sink{cfg: cfg}, nil
}

// EarlyCommits counts transactions committed before their checkpoint
// completed because every slot was taken (those records are at-least-once).
func (s *Sink) EarlyCommits() int64 { return s.earlyCommits.Load() }

func (s *Sink) newClient(extra ...kgo.Opt) (*kgo.Client, error) {
	opts := append([]kgo.Opt{kgo.SeedBrokers(s.cfg.Brokers...), kgo.DefaultProduceTopic(s.cfg.Topic),
		kgo.ProducerLinger(s.cfg.Linger)}, s.cfg.ClientOptions...)
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka sink %s: %w", s.cfg.Topic, err)
	}
	return cl, nil
}

// Open implements stream.Sink. A transactional writer initialises (and so
// fences) all its slots' transactional ids here.
func (s *Sink) Open(ctx context.Context, info stream.SubtaskInfo) (stream.SinkWriter[connector.Message], error) {
	if !s.cfg.Transactional {
		cl, err := s.newClient()
		if err != nil {
			return nil, err
		}
		return &writer{prod: producer{cl: cl}, topic: s.cfg.Topic}, nil
	}
	w := &txnWriter{sink: s}
	for slot := range s.cfg.MaxPendingCheckpoints + 1 {
		opts := []kgo.Opt{kgo.TransactionalID(fmt.Sprintf("%s-%d-%d", s.cfg.TransactionalID, info.Index, slot))}
		if s.cfg.TransactionTimeout > 0 {
			opts = append(opts, kgo.TransactionTimeout(s.cfg.TransactionTimeout))
		}
		cl, err := s.newClient(opts...)
		if err == nil {
			// Initialising the producer id fences earlier holders of the
			// transactional id and aborts what they left open.
			if _, _, err = cl.ProducerID(ctx); err != nil {
				cl.Close()
				err = fmt.Errorf("kafka sink %s: init transactional producer: %w", s.cfg.Topic, err)
			}
		}
		if err != nil {
			w.closeAll()
			return nil, err
		}
		w.free = append(w.free, &producer{cl: cl})
	}
	return w, nil
}

// producer is one client with the first asynchronous produce error.
type producer struct {
	cl   *kgo.Client
	mu   sync.Mutex
	err  error
	open bool // a transaction is open (transactional writers)
}

func (p *producer) fail(_ *kgo.Record, err error) {
	if err != nil {
		p.mu.Lock()
		if p.err == nil {
			p.err = err
		}
		p.mu.Unlock()
	}
}

func (p *producer) firstErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func (p *producer) produce(ctx context.Context, topic string, msgs []connector.Message) error {
	if err := p.firstErr(); err != nil {
		return err
	}
	for i := range msgs {
		m := &msgs[i]
		r := &kgo.Record{Topic: topic, Key: m.Key, Value: m.Value}
		if m.Timestamp > 0 {
			r.Timestamp = time.UnixMilli(m.Timestamp)
		}
		if len(m.Headers) > 0 {
			r.Headers = make([]kgo.RecordHeader, len(m.Headers))
			for j, h := range m.Headers {
				r.Headers[j] = kgo.RecordHeader{Key: h.Key, Value: h.Value}
			}
		}
		p.cl.Produce(ctx, r, p.fail)
	}
	return nil
}

func (p *producer) flush(ctx context.Context) error {
	if err := p.cl.Flush(ctx); err != nil {
		return err
	}
	return p.firstErr()
}

// writer is the at-least-once writer: an idempotent producer flushed at
// barriers and at close.
type writer struct {
	prod  producer
	topic string
}

// Write implements stream.SinkWriter. Records are sent in the background;
// an earlier failure is returned by the next Write, OnBarrier or Close.
func (w *writer) Write(ctx context.Context, msgs []connector.Message) error {
	if err := w.prod.produce(ctx, w.topic, msgs); err != nil {
		return fmt.Errorf("kafka sink %s: %w", w.topic, err)
	}
	return nil
}

// OnBarrier implements stream.BarrierWriter: every record written before
// the barrier is acknowledged when it returns.
func (w *writer) OnBarrier(ctx context.Context, _ uint64) error {
	if err := w.prod.flush(ctx); err != nil {
		return fmt.Errorf("kafka sink %s: flush: %w", w.topic, err)
	}
	return nil
}

// Close implements stream.SinkWriter: it flushes unless the job stopped
// early (ctx cancelled).
func (w *writer) Close(ctx context.Context) error {
	defer w.prod.cl.Close()
	if ctx.Err() != nil {
		return nil
	}
	if err := w.prod.flush(ctx); err != nil {
		return fmt.Errorf("kafka sink %s: flush: %w", w.topic, err)
	}
	return nil
}

// txnWriter writes through a pool of transactional producers: cur takes
// writes, pending hold pre-committed transactions by checkpoint id, free
// are idle. Write and OnBarrier run on the sink's task; CommitCheckpoint
// may run on another goroutine, hence mu.
type txnWriter struct {
	sink *Sink
	cur  *producer // only touched by the task goroutine

	mu      sync.Mutex
	pending []pendingTxn
	free    []*producer
	closed  bool
}

type pendingTxn struct {
	id uint64
	p  *producer
}

func (w *txnWriter) topic() string { return w.sink.cfg.Topic }

// Write implements stream.SinkWriter; the first write after a barrier
// begins a transaction.
func (w *txnWriter) Write(ctx context.Context, msgs []connector.Message) error {
	if w.cur == nil {
		p, err := w.take(ctx)
		if err != nil {
			return err
		}
		if err := p.cl.BeginTransaction(); err != nil {
			w.giveBack(p)
			return fmt.Errorf("kafka sink %s: begin transaction: %w", w.topic(), err)
		}
		p.open = true
		w.cur = p
	}
	if err := w.cur.produce(ctx, w.topic(), msgs); err != nil {
		return fmt.Errorf("kafka sink %s: %w", w.topic(), err)
	}
	return nil
}

// take returns a free producer, committing the oldest pending transaction
// early when none is free.
func (w *txnWriter) take(ctx context.Context) (*producer, error) {
	w.mu.Lock()
	if n := len(w.free); n > 0 {
		p := w.free[n-1]
		w.free = w.free[:n-1]
		w.mu.Unlock()
		return p, nil
	}
	oldest := w.pending[0]
	w.pending = w.pending[1:]
	w.mu.Unlock()
	w.sink.earlyCommits.Add(1)
	if err := endTxn(ctx, oldest.p, kgo.TryCommit); err != nil {
		return nil, fmt.Errorf("kafka sink %s: early commit of checkpoint %d: %w", w.topic(), oldest.id, err)
	}
	return oldest.p, nil
}

func (w *txnWriter) giveBack(p *producer) {
	w.mu.Lock()
	w.free = append(w.free, p)
	w.mu.Unlock()
}

func endTxn(ctx context.Context, p *producer, how kgo.TransactionEndTry) error {
	if !p.open {
		return nil
	}
	if how == kgo.TryCommit {
		if err := p.flush(ctx); err != nil {
			return err
		}
	} else if err := p.cl.AbortBufferedRecords(ctx); err != nil {
		return err
	}
	if err := p.cl.EndTransaction(ctx, how); err != nil {
		return err
	}
	p.open = false
	return nil
}

// OnBarrier implements stream.BarrierWriter: it pre-commits the open
// transaction (every record of it acknowledged) and files it under the
// checkpoint id; the next write begins a new transaction in another slot.
func (w *txnWriter) OnBarrier(ctx context.Context, id uint64) error {
	if w.cur == nil {
		return nil
	}
	if err := w.cur.flush(ctx); err != nil {
		return fmt.Errorf("kafka sink %s: pre-commit checkpoint %d: %w", w.topic(), id, err)
	}
	w.mu.Lock()
	w.pending = append(w.pending, pendingTxn{id: id, p: w.cur})
	w.mu.Unlock()
	w.cur = nil
	return nil
}

// CommitCheckpoint commits the transactions pre-committed at barriers up to
// and including id: checkpoint id has completed. It is safe to call from
// another goroutine than Write's.
func (w *txnWriter) CommitCheckpoint(ctx context.Context, id uint64) error {
	w.mu.Lock()
	i := 0
	for i < len(w.pending) && w.pending[i].id <= id {
		i++
	}
	due := slices.Clone(w.pending[:i])
	w.pending = w.pending[i:]
	w.mu.Unlock()
	var errs []error
	for _, t := range due {
		if err := endTxn(ctx, t.p, kgo.TryCommit); err != nil {
			errs = append(errs, fmt.Errorf("commit checkpoint %d: %w", t.id, err))
		}
		w.giveBack(t.p) // closed with the writer even when it failed
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kafka sink %s: %w", w.topic(), err)
	}
	return nil
}

// PreCommit implements checkpoint.TwoPhaseCommitter. The runtime calls
// OnBarrier just before, which pre-commits the open transaction (this
// does it when OnBarrier was not called); the handle is the checkpoint id
// (8 bytes, big-endian), or nil when the checkpoint covers no record of
// this subtask.
func (w *txnWriter) PreCommit(ctx context.Context, id checkpoint.ID) (checkpoint.Transaction, error) {
	if err := w.OnBarrier(ctx, uint64(id)); err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, t := range w.pending {
		if t.id == uint64(id) {
			return binary.BigEndian.AppendUint64(nil, uint64(id)), nil
		}
	}
	return nil, nil
}

// ErrBadTransaction is returned for a transaction handle that does not
// decode.
var ErrBadTransaction = errors.New("kafka sink: bad transaction handle")

func decodeTxn(tx checkpoint.Transaction) (uint64, error) {
	if len(tx) != 8 {
		return 0, ErrBadTransaction
	}
	return binary.BigEndian.Uint64(tx), nil
}

// Commit implements checkpoint.TwoPhaseCommitter: it commits the
// transactions pre-committed up to the handle's checkpoint
// (CommitCheckpoint). Committing again is a no-op, and so is a commit
// after Close, which already ended every transaction.
func (w *txnWriter) Commit(ctx context.Context, tx checkpoint.Transaction) error {
	if tx == nil {
		return nil
	}
	id, err := decodeTxn(tx)
	if err != nil {
		return err
	}
	return w.CommitCheckpoint(ctx, id)
}

// Abort implements checkpoint.TwoPhaseCommitter: it aborts the transaction
// pre-committed at the handle's checkpoint.
func (w *txnWriter) Abort(ctx context.Context, tx checkpoint.Transaction) error {
	if tx == nil {
		return nil
	}
	id, err := decodeTxn(tx)
	if err != nil {
		return err
	}
	w.mu.Lock()
	var due []pendingTxn
	keep := w.pending[:0]
	for _, t := range w.pending {
		if t.id == id {
			due = append(due, t)
		} else {
			keep = append(keep, t)
		}
	}
	w.pending = keep
	w.mu.Unlock()
	var errs []error
	for _, t := range due {
		if err := endTxn(ctx, t.p, kgo.TryAbort); err != nil {
			errs = append(errs, fmt.Errorf("abort checkpoint %d: %w", t.id, err))
		}
		w.giveBack(t.p)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kafka sink %s: %w", w.topic(), err)
	}
	return nil
}

// Recover implements checkpoint.TwoPhaseCommitter. Open has already
// fenced this subtask's transactional ids, which aborts whatever earlier
// incarnations left open: a transaction of the restored checkpoint that
// was not committed before the job stopped cannot be resumed (franz-go
// offers no resume of another producer's transaction), so its records are
// lost; the runtime commits right after a checkpoint completes, which
// keeps that window small. See the package doc.
func (w *txnWriter) Recover(context.Context, []checkpoint.Transaction) error { return nil }

// Close implements stream.SinkWriter. At the end of the input (ctx live)
// it commits every transaction, pending or open; when the job stops early
// (ctx cancelled) it aborts them.
func (w *txnWriter) Close(ctx context.Context) error {
	how := kgo.TryCommit
	ectx := ctx
	if ctx.Err() != nil {
		how = kgo.TryAbort
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		ectx = c
	}
	w.mu.Lock()
	txns := w.pending
	w.pending = nil
	w.mu.Unlock()
	if w.cur != nil {
		txns = append(txns, pendingTxn{p: w.cur})
		w.cur = nil
	}
	var errs []error
	for _, t := range txns {
		if err := endTxn(ectx, t.p, how); err != nil {
			errs = append(errs, err)
		}
		w.giveBack(t.p)
	}
	w.closeAll()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kafka sink %s: close: %w", w.topic(), err)
	}
	return nil
}

func (w *txnWriter) closeAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	w.closed = true
	for _, p := range w.free {
		p.cl.Close()
	}
	w.free = nil
}

// The capabilities the checkpoint coordinator looks for.
var (
	_ stream.BarrierWriter = (*writer)(nil)
	_ stream.BarrierWriter = (*txnWriter)(nil)
	_ interface {
		CommitCheckpoint(context.Context, uint64) error
	} = (*txnWriter)(nil)
	_ checkpoint.TwoPhaseCommitter = (*txnWriter)(nil)
)
