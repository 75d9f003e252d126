package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/internal/kcodec"
	"github.com/sluicehq/sluice/stream"
)

// DefaultMaxPendingCheckpoints is SinkConfig.MaxPendingCheckpoints's default.
const DefaultMaxPendingCheckpoints = 2

// DefaultTransactionTimeout is SinkConfig.TransactionTimeout's default:
// Kafka's default transaction.max.timeout.ms, the longest a broker allows
// without a change to its configuration. A pre-committed transaction must
// outlive the checkpoint interval plus the time a crashed job takes to
// restart and recover it; one the broker aborts first is lost.
const DefaultTransactionTimeout = 15 * time.Minute

// SinkConfig configures a Sink.
type SinkConfig struct {
	// Brokers are the seed brokers, HOST:PORT.
	Brokers []string
	// Topic is the topic written to. Records with a key go to the
	// partition Kafka's default partitioner picks (murmur2).
	Topic string
	// Transactional writes inside Kafka transactions, and the writer
	// implements checkpoint.TwoPhaseCommitter (see the package doc).
	Transactional bool
	// TransactionalID prefixes the subtasks' transactional ids; it must be
	// unique to this sink among all jobs writing to the cluster and stable
	// across restarts. Default: "sluice-<Topic>".
	TransactionalID string
	// MaxPendingCheckpoints is how many pre-committed transactions a
	// subtask keeps a client for while their checkpoints complete, beside
	// the open one and the spare made ready for the next. Default
	// DefaultMaxPendingCheckpoints. More are pending only when checkpoints
	// fail (an aborted checkpoint's transaction waits for the next one
	// that completes): the oldest then go idle, their clients closed, and
	// are committed with EndTxn once a checkpoint holding them completes
	// (counted in IdledTransactions). Nothing is committed before its
	// checkpoint completes.
	MaxPendingCheckpoints int
	// TransactionTimeout bounds a transaction on the broker (which caps
	// it at its transaction.max.timeout.ms); 0 means
	// DefaultTransactionTimeout. It must exceed the checkpoint interval
	// plus the restart time of a crashed job (see DefaultTransactionTimeout).
	TransactionTimeout time.Duration
	// Logger gets the errors recovery cannot act on (a pre-committed
	// transaction the broker aborted: its output is lost). Default
	// slog.Default().
	Logger *slog.Logger
	// Linger is how long a partition's batch waits for more records
	// before it is sent. The default, 0, sends at once (while a request
	// to the broker is in flight records gather anyway, so throughput
	// keeps its batching); franz-go's own default would be 10ms, the
	// latency an idle pipeline would add. A kgo.ProducerLinger in
	// ClientOptions overrides it.
	Linger time.Duration
	// Compression is the codec of the produced batches, as Kafka's
	// compression.type names them: none, gzip, snappy, lz4 or zstd. ""
	// keeps franz-go's default (snappy, falling back to none for brokers
	// that do not support it). none saves the compression work and the
	// consumer's decompression, at the cost of bytes on the wire and the
	// disk.
	Compression string
	// ClientOptions are added to every client (TLS, SASL, linger, ...).
	ClientOptions []kgo.Opt
}

// Sink writes messages to a Kafka topic; it implements
// stream.Sink[connector.Message].
type Sink struct {
	cfg   SinkConfig
	idled atomic.Int64
	lost  atomic.Int64

	// beforeCommit, when set (by tests), runs in Commit before the
	// transaction is committed; an error fails the Commit there, as a
	// crash between pre-commit and commit would.
	beforeCommit func(Txn) error
	// beforeInit, when set (by tests), runs before the client of the
	// subtask's transaction number n starts (in the background, for a
	// spare).
	beforeInit func(ctx context.Context, subtask int, n uint64)
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
	if cfg.Compression != "" {
		if _, err := kcodec.Parse(cfg.Compression); err != nil {
			return nil, fmt.Errorf("kafka sink %s: %w", cfg.Topic, err)
		}
	}
	if cfg.TransactionTimeout == 0 {
		cfg.TransactionTimeout = DefaultTransactionTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Linger < 0 {
		return nil, fmt.Errorf("kafka sink %s: negative linger %v", cfg.Topic, cfg.Linger)
	}
	return &Sink{cfg: cfg}, nil
}

// IdledTransactions counts pre-committed transactions whose client was
// closed because more than MaxPendingCheckpoints were waiting for their
// checkpoints (checkpoints kept failing); each is committed with EndTxn
// once a checkpoint holding it completes.
func (s *Sink) IdledTransactions() int64 { return s.idled.Load() }

// LostTransactions counts pre-committed transactions that recovery found
// aborted by the broker (their transaction timeout expired before the
// job came back): their records are lost. Each is logged as an error.
func (s *Sink) LostTransactions() int64 { return s.lost.Load() }

func (s *Sink) newClient(extra ...kgo.Opt) (*kgo.Client, error) {
	opts := []kgo.Opt{kgo.SeedBrokers(s.cfg.Brokers...), kgo.DefaultProduceTopic(s.cfg.Topic),
		kgo.ProducerLinger(s.cfg.Linger)}
	if s.cfg.Compression != "" {
		codec, err := kcodec.Parse(s.cfg.Compression)
		if err != nil {
			return nil, fmt.Errorf("kafka sink %s: %w", s.cfg.Topic, err)
		}
		opts = append(opts, kgo.ProducerBatchCompression(codec))
	}
	opts = append(opts, s.cfg.ClientOptions...)
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka sink %s: %w", s.cfg.Topic, err)
	}
	return cl, nil
}

// Open implements stream.Sink. A transactional writer connects no
// transactional id yet: Recover (or the first write) does, after it has
// committed what the restored checkpoint pre-committed.
func (s *Sink) Open(ctx context.Context, info stream.SubtaskInfo) (stream.SinkWriter[connector.Message], error) {
	cl, err := s.newClient()
	if err != nil {
		return nil, err
	}
	if err := s.checkTopic(ctx, cl); err != nil {
		cl.Close()
		return nil, err
	}
	if !s.cfg.Transactional {
		return &writer{prod: producer{cl: cl}, topic: s.cfg.Topic}, nil
	}
	bg, stop := context.WithCancel(context.Background())
	return &txnWriter{sink: s, index: info.Index, ctl: cl, bg: bg, stopBg: stop}, nil
}

// topicCheckTimeout bounds Open's question whether the topic exists, and
// topicUnknownGrace how long an "unknown topic" answer is asked again: a
// topic just created may not be in every broker's metadata yet.
const (
	topicCheckTimeout = 10 * time.Second
	topicUnknownGrace = 3 * time.Second
)

// checkTopic fails when the brokers answer that the sink's topic does
// not exist. The sink does not ask them to create topics, so every write
// would fail, the job only stopping at its first checkpoint with
// records, with UNKNOWN_TOPIC_OR_PARTITION. Any other outcome (brokers
// not reachable yet, no right to describe the topic) is left to the
// writes, which retry as before.
func (s *Sink) checkTopic(ctx context.Context, cl *kgo.Client) error {
	ctx, cancel := context.WithTimeout(ctx, topicCheckTimeout)
	defer cancel()
	adm := kadm.NewClient(cl)
	var firstUnknown time.Time
	for {
		td, err := adm.ListTopics(ctx, s.cfg.Topic)
		if err != nil {
			return nil
		}
		if t, ok := td[s.cfg.Topic]; ok && !errors.Is(t.Err, kerr.UnknownTopicOrPartition) {
			return nil
		}
		if firstUnknown.IsZero() {
			firstUnknown = time.Now()
		}
		if time.Since(firstUnknown) >= topicUnknownGrace {
			break
		}
		select {
		case <-time.After(250 * time.Millisecond):
		case <-ctx.Done():
			return nil
		}
	}
	return fmt.Errorf("kafka sink: topic %s does not exist on %s: create it first (sluice topic create %s --broker %s, or your Kafka's tools); the sink does not ask the brokers to create topics",
		s.cfg.Topic, strings.Join(s.cfg.Brokers, ","), s.cfg.Topic, s.cfg.Brokers[0])
}

// producer is one client with the first asynchronous produce error.
type producer struct {
	cl  *kgo.Client
	mu  sync.Mutex
	err error
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
	return p.produceWith(ctx, topic, msgs, p.fail)
}

// produceWith sends msgs in the background; promise is called for each
// once the broker acknowledged it or it failed.
func (p *producer) produceWith(ctx context.Context, topic string, msgs []connector.Message, promise func(*kgo.Record, error)) error {
	if err := p.firstErr(); err != nil {
		return err
	}
	recs := records(topic, msgs)
	for i := range recs {
		p.cl.Produce(ctx, &recs[i], promise)
	}
	return nil
}

// records builds the client's records of msgs in one allocation (and
// their headers in one more), instead of one per record: the client
// keeps each until it is acknowledged, which keeps the batch's slice
// alive that long. Messages without a timestamp get the time of the call,
// read once for all of them (the client would read the clock for each
// record).
func records(topic string, msgs []connector.Message) []kgo.Record {
	recs := make([]kgo.Record, len(msgs))
	nh := 0
	for i := range msgs {
		nh += len(msgs[i].Headers)
	}
	var hdrs []kgo.RecordHeader
	if nh > 0 {
		hdrs = make([]kgo.RecordHeader, 0, nh)
	}
	var now time.Time
	for i := range msgs {
		m := &msgs[i]
		r := &recs[i]
		r.Topic, r.Key, r.Value = topic, m.Key, m.Value
		switch {
		case m.Timestamp > 0:
			r.Timestamp = time.UnixMilli(m.Timestamp)
		case now.IsZero():
			now = time.Now()
			fallthrough
		default:
			r.Timestamp = now
		}
		if len(m.Headers) > 0 {
			start := len(hdrs)
			for _, h := range m.Headers {
				hdrs = append(hdrs, kgo.RecordHeader{Key: h.Key, Value: h.Value})
			}
			r.Headers = hdrs[start:len(hdrs):len(hdrs)]
		}
	}
	return recs
}

func (p *producer) flush(ctx context.Context) error {
	if err := p.cl.Flush(ctx); err != nil {
		return err
	}
	return p.firstErr()
}

// writer is the at-least-once writer: an idempotent producer whose
// records are tracked by checkpoint epoch, so that a barrier is answered
// when the records before it are acknowledged without stopping the
// writes behind it; flushed at close.
type writer struct {
	prod  producer
	topic string
	acks  ackEpochs
}

// ackEpochs tracks an at-least-once writer's records by epoch (the
// records written between two barriers) and answers each barrier once
// its epoch and every earlier one are acknowledged.
type ackEpochs struct {
	mu     sync.Mutex
	cur    *ackEpoch   // the epoch being written
	sealed []*ackEpoch // epochs ended by a barrier, oldest first, not yet answered
}

// ackEpoch is one epoch. pending counts its records not yet acknowledged
// plus one while the epoch is being written, so that it cannot settle
// before its barrier.
type ackEpoch struct {
	pending atomic.Int64
	owner   *ackEpochs
	prod    *producer
	done    func(error)
	promise func(*kgo.Record, error) // ack, made once per epoch
}

func (a *ackEpochs) current(p *producer) *ackEpoch {
	if a.cur == nil {
		e := &ackEpoch{owner: a, prod: p}
		e.pending.Store(1)
		e.promise = e.ack
		a.cur = e
	}
	return a.cur
}

func (e *ackEpoch) ack(r *kgo.Record, err error) {
	if err != nil {
		e.prod.fail(r, err)
	}
	if e.pending.Add(-1) == 0 {
		e.owner.settle()
	}
}

// seal ends the current epoch at a barrier; done is called once it and
// every earlier epoch are acknowledged.
func (a *ackEpochs) seal(p *producer, done func(error)) {
	e := a.current(p)
	a.cur = nil
	e.done = done
	a.mu.Lock()
	a.sealed = append(a.sealed, e)
	a.mu.Unlock()
	if e.pending.Add(-1) == 0 {
		a.settle()
	}
}

// settle answers the barriers of the oldest sealed epochs whose records
// are all acknowledged, oldest first (two settle calls racing may run
// their answers in either order; the coordinator has one checkpoint in
// flight, so that order does not matter).
func (a *ackEpochs) settle() {
	a.mu.Lock()
	var ready []*ackEpoch
	for len(a.sealed) > 0 && a.sealed[0].pending.Load() == 0 {
		ready = append(ready, a.sealed[0])
		a.sealed[0] = nil
		a.sealed = a.sealed[1:]
	}
	a.mu.Unlock()
	for _, e := range ready {
		e.done(e.prod.firstErr())
	}
}

// Write implements stream.SinkWriter. Records are sent in the background;
// an earlier failure is returned by the next Write, OnBarrier or Close.
func (w *writer) Write(ctx context.Context, msgs []connector.Message) error {
	e := w.acks.current(&w.prod)
	e.pending.Add(int64(len(msgs)))
	if err := w.prod.produceWith(ctx, w.topic, msgs, e.promise); err != nil {
		e.pending.Add(-int64(len(msgs)))
		return fmt.Errorf("kafka sink %s: %w", w.topic, err)
	}
	return nil
}

// OnBarrierAsync implements stream.AsyncBarrierWriter: done is called
// once every record written before the barrier is acknowledged (with the
// first produce error, if any).
func (w *writer) OnBarrierAsync(_ context.Context, _ uint64, done func(error)) {
	w.acks.seal(&w.prod, func(err error) {
		if err != nil {
			err = fmt.Errorf("kafka sink %s: %w", w.topic, err)
		}
		done(err)
	})
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

var (
	_ stream.BarrierWriter      = (*writer)(nil)
	_ stream.AsyncBarrierWriter = (*writer)(nil)
)
