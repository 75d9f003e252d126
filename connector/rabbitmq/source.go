package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/stream"
)

// DefaultPrefetch is SourceConfig.Prefetch's default.
const DefaultPrefetch = 2000

// DefaultPollInterval is SourceConfig.PollInterval's default.
const DefaultPollInterval = 100 * time.Millisecond

// Declare describes the queue a source declares before consuming (and
// the bindings it adds), for pipelines that own their queue.
type Declare struct {
	// Durable queues survive a broker restart.
	Durable bool
	// AutoDelete deletes the queue when its last consumer goes.
	AutoDelete bool
	// QueueType is "classic" (default), "quorum" or "stream"
	// (x-queue-type).
	QueueType string
	// Bindings bind the queue to exchanges.
	Bindings []Binding
}

// Binding binds a queue to an exchange with a routing key (pattern).
type Binding struct {
	Exchange, RoutingKey string
}

// SourceConfig configures a Source.
type SourceConfig struct {
	// URL is the AMQP URL, amqp://user:pass@host:5672/vhost.
	URL string
	// Queue is the queue consumed.
	Queue string
	// Prefetch bounds the messages delivered and not yet acknowledged
	// (basic.qos). Under checkpointing messages are acknowledged only
	// when the checkpoint covering them completes, so Prefetch must
	// exceed the messages that arrive in one checkpoint interval, or
	// the source waits for each checkpoint. Default DefaultPrefetch.
	Prefetch int
	// Declare, if set, declares the queue (and its bindings) first;
	// otherwise the queue must exist.
	Declare *Declare
	// Dedup drops messages the broker delivers again (redelivered, with a
	// message-id) that a restored checkpoint, or the run itself before a
	// reconnection, already handed to the pipeline: with unique message
	// ids, exactly-once (see the package doc).
	Dedup bool
	// AckOnHandover acknowledges messages as soon as they are handed to
	// the pipeline instead of when a checkpoint covering them completes:
	// for pipelines without checkpoints (a crash loses what was in the
	// pipeline).
	AckOnHandover bool
	// PollInterval is the longest a Read waits for messages. Default
	// DefaultPollInterval.
	PollInterval time.Duration
	// Logger receives connection losses and reconnections. Default
	// slog.Default().
	Logger *slog.Logger
	// Dial opens connections; nil means amqp.DialConfig with a 10s
	// connection timeout. Tests use it to inject faults.
	Dial func(url string) (*amqp.Connection, error)
}

// Source consumes one RabbitMQ queue; it implements
// stream.Source[connector.Message] with one split (one consumer).
type Source struct {
	cfg   SourceConfig
	meter *connector.Meter

	mu   sync.Mutex
	last *split // of the last Splits call
}

var _ stream.Source[connector.Message] = (*Source)(nil)

// NewSource validates cfg and returns a source. It does not connect.
func NewSource(cfg SourceConfig) (*Source, error) {
	if cfg.URL == "" {
		return nil, errors.New("rabbitmq source: no url")
	}
	if _, err := amqp.ParseURI(cfg.URL); err != nil {
		return nil, fmt.Errorf("rabbitmq source: url: %w", err)
	}
	if cfg.Queue == "" {
		return nil, errors.New("rabbitmq source: no queue")
	}
	if cfg.Prefetch < 0 || cfg.Prefetch > 65535 {
		return nil, fmt.Errorf("rabbitmq source %s: prefetch %d: want 1 to 65535", cfg.Queue, cfg.Prefetch)
	}
	if cfg.Prefetch == 0 {
		cfg.Prefetch = DefaultPrefetch
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Dial == nil {
		cfg.Dial = defaultDial
	}
	if d := cfg.Declare; d != nil {
		switch d.QueueType {
		case "", "classic", "quorum", "stream":
		default:
			return nil, fmt.Errorf("rabbitmq source %s: queue type %q: want classic, quorum or stream", cfg.Queue, d.QueueType)
		}
	}
	return &Source{cfg: cfg, meter: connector.NewMeter()}, nil
}

func defaultDial(url string) (*amqp.Connection, error) {
	return amqp.DialConfig(url, amqp.Config{Heartbeat: 10 * time.Second, Dial: amqp.DefaultDial(10 * time.Second)})
}

// Meter implements connector.Metered: messages and bytes
// handed to the pipeline, errors, reconnections and the queue's ready
// messages as last seen.
func (s *Source) Meter() *connector.Meter { return s.meter }

// Splits implements stream.Source: one split, one consumer.
func (s *Source) Splits(context.Context, int) ([]stream.Split[connector.Message], error) {
	sp := &split{src: s, orphans: map[string]uint64{}, wake: make(chan struct{}, 1)}
	s.mu.Lock()
	s.last = sp
	s.mu.Unlock()
	return []stream.Split[connector.Message]{sp}, nil
}

// counters are the connector's statistics.

// entry is a delivery awaiting its acknowledgement.
type entry struct {
	seq uint64 // covered once a checkpoint with position seq >= this completes
	tag uint64
	id  string // message-id under Dedup, else ""
}

// split is the source's one consumer. Read and Position/Seek run on the
// source's task; CommitPosition on a goroutine of the checkpoint
// coordinator: mu guards what they share.
type split struct {
	src *Source

	mu sync.Mutex
	// handed is the number of messages handed to the pipeline in this
	// job (restored by Seek).
	handed uint64
	// gen counts channels: a delivery tag means something only on the
	// channel that delivered it.
	gen  uint64
	conn *amqp.Connection
	ch   *amqp.Channel
	// pending are the deliveries of channel gen not yet acknowledged, in
	// delivery-tag order; unconfirmed are those acknowledged but not yet
	// confirmed processed by the broker (still in Position's ids).
	pending []entry
	// orphans (Dedup) are message ids handed over (id -> seq) whose
	// channel is gone, or that the restored checkpoint covers: if the
	// broker delivers them again they are dropped, not handed over twice.
	orphans map[string]uint64
	closed  bool

	// Read's own state (the source task only).
	deliveries <-chan amqp.Delivery
	closeErr   chan *amqp.Error
	retryAt    time.Time
	backoff    time.Duration
	down       bool // a connection loss was logged and not yet recovered
	attempts   int
	lastDepth  time.Time
	wake       chan struct{}
}

func (sp *split) ID() string { return "rabbitmq/" + sp.src.cfg.Queue }

// Position implements stream.Split.
func (sp *split) Position() []byte {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	p := position{seq: sp.handed}
	if sp.src.cfg.Dedup {
		for _, e := range sp.pending {
			if e.id != "" {
				p.ids = append(p.ids, e.id)
			}
		}
		for id := range sp.orphans {
			p.ids = append(p.ids, id)
		}
	}
	return p.encode()
}

// Seek implements stream.Split: the restored count, and under Dedup the
// ids the restored checkpoint covers that the broker may deliver again.
func (sp *split) Seek(pos []byte) error {
	p, err := decodePosition(pos)
	if err != nil {
		return fmt.Errorf("split %s: %w", sp.ID(), err)
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	sp.handed = p.seq
	if sp.src.cfg.Dedup {
		for _, id := range p.ids {
			sp.orphans[id] = p.seq
		}
	}
	return nil
}

// Wake implements stream.Waker.
func (sp *split) Wake() {
	select {
	case sp.wake <- struct{}{}:
	default:
	}
}

// connect opens a connection and a channel, declares what the config
// asks for, sets the prefetch and starts consuming.
func (sp *split) connect() error {
	cfg := &sp.src.cfg
	conn, err := cfg.Dial(cfg.URL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	ch, err := conn.Channel()
	if err != nil {
		conn.Close()
		return fmt.Errorf("open channel: %w", err)
	}
	if err := declare(ch, cfg.Queue, cfg.Declare); err != nil {
		conn.Close()
		return err
	}
	if err := ch.Qos(cfg.Prefetch, 0, false); err != nil {
		conn.Close()
		return fmt.Errorf("qos: %w", err)
	}
	closeErr := conn.NotifyClose(make(chan *amqp.Error, 1))
	d, err := ch.Consume(cfg.Queue, "", false, false, false, false, nil)
	if err != nil {
		conn.Close()
		return fmt.Errorf("consume queue %s: %w", cfg.Queue, err)
	}
	sp.mu.Lock()
	sp.gen++
	sp.conn, sp.ch = conn, ch
	sp.mu.Unlock()
	sp.deliveries, sp.closeErr = d, closeErr
	return nil
}

func declare(ch *amqp.Channel, queue string, d *Declare) error {
	if d == nil {
		return nil
	}
	var args amqp.Table
	if d.QueueType != "" {
		args = amqp.Table{"x-queue-type": d.QueueType}
	}
	if _, err := ch.QueueDeclare(queue, d.Durable, d.AutoDelete, false, false, args); err != nil {
		return fmt.Errorf("declare queue %s: %w", queue, err)
	}
	for _, b := range d.Bindings {
		if err := ch.QueueBind(queue, b.RoutingKey, b.Exchange, false, nil); err != nil {
			return fmt.Errorf("bind queue %s to exchange %s with key %q: %w", queue, b.Exchange, b.RoutingKey, err)
		}
	}
	return nil
}

// lost forgets the channel after the connection went away: its delivery
// tags are void, the broker requeues what it had not had acknowledged,
// and under Dedup the ids handed over become orphans so that their
// redeliveries are dropped.
func (sp *split) lost(cause error) {
	sp.mu.Lock()
	if sp.src.cfg.Dedup {
		for _, e := range sp.pending {
			if e.id != "" {
				sp.orphans[e.id] = e.seq
			}
		}
	}
	inFlight := len(sp.pending)
	sp.pending = sp.pending[:0]
	conn := sp.conn
	sp.conn, sp.ch = nil, nil
	sp.gen++
	sp.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
	sp.deliveries, sp.closeErr = nil, nil
	sp.src.meter.Errors.Add(1)
	if !sp.down {
		sp.down = true
		sp.src.cfg.Logger.Warn("rabbitmq source: connection lost; reconnecting with backoff (the broker redelivers the unacknowledged messages)",
			"url", redact(sp.src.cfg.URL), "queue", sp.src.cfg.Queue, "unacknowledged", inFlight, "err", cause)
	}
	sp.retryAt = time.Time{}
}

// ensure connects when there is no channel, at most once per backoff
// step. It returns false while disconnected.
func (sp *split) ensure() (bool, error) {
	if sp.deliveries != nil {
		return true, nil
	}
	if time.Now().Before(sp.retryAt) {
		return false, nil
	}
	err := sp.connect()
	if err == nil {
		if sp.down {
			sp.src.meter.Reconnects.Add(1)
			sp.src.cfg.Logger.Info("rabbitmq source: reconnected", "url", redact(sp.src.cfg.URL), "queue", sp.src.cfg.Queue, "attempts", sp.attempts+1)
		}
		sp.down, sp.attempts, sp.backoff = false, 0, 0
		return true, nil
	}
	if sp.gen == 0 && permanent(err) {
		// The first connection failed on something retrying cannot fix
		// (no such queue, access refused): say so now.
		return false, fmt.Errorf("rabbitmq source %s: %w", sp.src.cfg.Queue, err)
	}
	sp.src.meter.Errors.Add(1)
	sp.attempts++
	sp.backoff = nextBackoff(sp.backoff)
	sp.retryAt = time.Now().Add(sp.backoff)
	if !sp.down {
		sp.down = true
		sp.src.cfg.Logger.Warn("rabbitmq source: cannot connect; retrying with backoff", "url", redact(sp.src.cfg.URL), "queue", sp.src.cfg.Queue, "err", err)
	}
	return false, nil
}

// Read implements stream.Split.
func (sp *split) Read(ctx context.Context, dst []connector.Message) (int, error) {
	ok, err := sp.ensure()
	if err != nil {
		return 0, err
	}
	if !ok {
		sp.wait(ctx, time.Until(sp.retryAt))
		return 0, nil
	}
	sp.refreshDepth()
	n := 0
	timer := time.NewTimer(sp.src.cfg.PollInterval)
	defer timer.Stop()
	var lastTag uint64
fill:
	for n < len(dst) {
		var d amqp.Delivery
		var open bool
		if n == 0 {
			select {
			case d, open = <-sp.deliveries:
			case e := <-sp.closeErr:
				sp.lost(closeCause(e))
				return 0, nil
			case <-timer.C:
				return 0, nil
			case <-sp.wake:
				return 0, nil
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		} else {
			select {
			case d, open = <-sp.deliveries:
			default:
				break fill
			}
		}
		if !open {
			if n > 0 {
				break // hand over what arrived; the loss is seen next Read
			}
			var cause error = errors.New("delivery channel closed")
			select {
			case e := <-sp.closeErr:
				cause = closeCause(e)
			default:
			}
			sp.lost(cause)
			return 0, nil
		}
		if sp.take(d, &dst[n]) {
			n++
		}
		lastTag = d.DeliveryTag
	}
	if sp.src.cfg.AckOnHandover && lastTag > 0 {
		sp.ackHandedOver(lastTag)
	}
	return n, nil
}

// permanent reports whether err is an answer of the broker that a retry
// would get again: access refused, no such queue or exchange, a
// precondition failed (a queue declared with other arguments).
func permanent(err error) bool {
	var ae *amqp.Error
	if !errors.As(err, &ae) {
		return errors.Is(err, amqp.ErrSASL) || errors.Is(err, amqp.ErrCredentials) || errors.Is(err, amqp.ErrVhost)
	}
	switch ae.Code {
	case amqp.AccessRefused, amqp.NotFound, amqp.PreconditionFailed, amqp.NotAllowed:
		return true
	}
	return false
}

func closeCause(e *amqp.Error) error {
	if e == nil {
		return errors.New("connection closed")
	}
	return e
}

// take records delivery d and fills m unless d is a redelivery of a
// message already handed over (Dedup); it reports whether m was filled.
func (sp *split) take(d amqp.Delivery, m *connector.Message) bool {
	sp.mu.Lock()
	id := ""
	if sp.src.cfg.Dedup && d.MessageId != "" {
		id = d.MessageId
	}
	if id != "" && d.Redelivered {
		if seq, ok := sp.orphans[id]; ok {
			delete(sp.orphans, id)
			sp.pending = append(sp.pending, entry{seq: seq, tag: d.DeliveryTag, id: id})
			sp.mu.Unlock()
			sp.src.meter.Dropped.Add(1)
			return false
		}
	}
	if !d.Redelivered && len(sp.orphans) > 0 {
		// The broker requeues unacknowledged messages ahead of those
		// never delivered: once one of those arrives, no orphan can
		// come back.
		clear(sp.orphans)
	}
	sp.handed++
	sp.pending = append(sp.pending, entry{seq: sp.handed, tag: d.DeliveryTag, id: id})
	sp.mu.Unlock()
	*m = connector.Message{Value: d.Body, Origin: sp.ID(), Offset: int64(d.DeliveryTag), Headers: headersOf(d)}
	if !d.Timestamp.IsZero() {
		m.Timestamp = d.Timestamp.UnixMilli()
	}
	sp.src.meter.Records.Add(1)
	sp.src.meter.Bytes.Add(int64(len(d.Body)))
	return true
}

// headersOf turns a delivery's routing key, message-id and headers into
// message headers.
func headersOf(d amqp.Delivery) []connector.Header {
	hs := make([]connector.Header, 0, len(d.Headers)+2)
	hs = append(hs, connector.Header{Key: "routing-key", Value: []byte(d.RoutingKey)})
	if d.MessageId != "" {
		hs = append(hs, connector.Header{Key: "message-id", Value: []byte(d.MessageId)})
	}
	for k, v := range d.Headers {
		switch x := v.(type) {
		case string:
			hs = append(hs, connector.Header{Key: k, Value: []byte(x)})
		case []byte:
			hs = append(hs, connector.Header{Key: k, Value: x})
		default:
			hs = append(hs, connector.Header{Key: k, Value: fmt.Append(nil, x)})
		}
	}
	return hs
}

func (sp *split) ackHandedOver(tag uint64) {
	sp.mu.Lock()
	ch := sp.ch
	sp.pending = sp.pending[:0]
	sp.mu.Unlock()
	if ch != nil {
		if err := ch.Ack(tag, true); err != nil {
			sp.src.meter.Errors.Add(1)
		}
	}
}

// refreshDepth reads the queue's ready messages about once a second (a
// passive declare) for the lag metric, when no acknowledgement did.
func (sp *split) refreshDepth() {
	if time.Since(sp.lastDepth) < time.Second {
		return
	}
	sp.lastDepth = time.Now()
	sp.mu.Lock()
	ch := sp.ch
	sp.mu.Unlock()
	if ch == nil {
		return
	}
	if q, err := ch.QueueDeclarePassive(sp.src.cfg.Queue, false, false, false, false, nil); err == nil {
		sp.src.meter.Lag.Store(int64(q.Messages))
	}
}

func (sp *split) wait(ctx context.Context, d time.Duration) {
	d = min(max(d, time.Millisecond), sp.src.cfg.PollInterval)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-sp.wake:
	case <-ctx.Done():
	}
}

// Lag implements stream.Lagger: the queue's ready messages as last seen.
func (sp *split) Lag() int64 { return sp.src.meter.Lag.Load() }

// CommitPosition implements stream.PositionCommitter: once a checkpoint
// completes, it acknowledges (multiple) every delivery of the current
// channel that the checkpoint covers, then waits for the broker to have
// processed the acknowledgement (a synchronous passive declare on the same
// channel, which also reads the queue depth) before it forgets them.
func (sp *split) CommitPosition(_ context.Context, pos []byte) error {
	p, err := decodePosition(pos)
	if err != nil {
		return fmt.Errorf("split %s: %w", sp.ID(), err)
	}
	sp.mu.Lock()
	if sp.closed || sp.ch == nil {
		sp.mu.Unlock()
		return nil
	}
	k := 0
	for k < len(sp.pending) && sp.pending[k].seq <= p.seq {
		k++
	}
	if k == 0 {
		sp.mu.Unlock()
		return nil
	}
	tag, gen, ch := sp.pending[k-1].tag, sp.gen, sp.ch
	sp.mu.Unlock()
	if err := ch.Ack(tag, true); err != nil {
		sp.src.meter.Errors.Add(1)
		return fmt.Errorf("split %s: ack up to delivery tag %d: %w (the broker redelivers them)", sp.ID(), tag, err)
	}
	q, err := ch.QueueDeclarePassive(sp.src.cfg.Queue, false, false, false, false, nil)
	if err != nil {
		sp.src.meter.Errors.Add(1)
		return fmt.Errorf("split %s: confirm ack up to delivery tag %d: %w", sp.ID(), tag, err)
	}
	sp.src.meter.Lag.Store(int64(q.Messages))
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.gen == gen {
		i := 0
		for i < len(sp.pending) && sp.pending[i].tag <= tag {
			i++
		}
		sp.pending = append(sp.pending[:0], sp.pending[i:]...)
	}
	return nil
}

// Close implements io.Closer.
func (sp *split) Close() error {
	sp.mu.Lock()
	conn := sp.conn
	sp.conn, sp.ch, sp.closed = nil, nil, true
	sp.mu.Unlock()
	if conn != nil {
		return conn.Close()
	}
	return nil
}

var (
	_ stream.PositionCommitter = (*split)(nil)
	_ stream.Lagger            = (*split)(nil)
	_ stream.Waker             = (*split)(nil)
)
