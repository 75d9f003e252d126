package rabbitmq

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/stream"
)

// DefaultMaxInFlight is SinkConfig.MaxInFlight's default.
const DefaultMaxInFlight = 10000

// ErrUnroutable is returned when the broker returns a mandatory message
// that no queue was bound to receive.
var ErrUnroutable = errors.New("message unroutable: no queue is bound to its exchange and routing key")

// ErrNacked is returned when the broker refuses (nacks) a published
// message.
var ErrNacked = errors.New("broker nacked a published message")

// SinkConfig configures a Sink.
type SinkConfig struct {
	// URL is the AMQP URL.
	URL string
	// Exchange is the exchange published to; "" is the default exchange
	// (the routing key is then a queue name).
	Exchange string
	// RoutingKey is the routing key of messages without a Key of their
	// own (the pipeline sets Key from its routing_key template).
	RoutingKey string
	// Persistent marks messages persistent (delivery mode 2): they
	// survive a broker restart in durable queues.
	Persistent bool
	// Mandatory makes the broker return messages no queue receives, which
	// fails the sink (ErrUnroutable) instead of losing them silently.
	Mandatory bool
	// MaxInFlight bounds the published messages not yet confirmed; Write
	// waits for confirmations beyond it. Default DefaultMaxInFlight.
	MaxInFlight int
	// MessageIDPrefix starts every message-id:
	// "<prefix>/<operator>/<subtask>/<n>", n counting the subtask's
	// messages from the start of the job (restored from checkpoints).
	// Default "sluice".
	MessageIDPrefix string
	// Logger receives connection losses and reconnections. Default
	// slog.Default().
	Logger *slog.Logger
	// Dial opens connections; nil means amqp.DialConfig with a 10s
	// connection timeout.
	Dial func(url string) (*amqp.Connection, error)
}

// Sink publishes messages to a RabbitMQ exchange with publisher confirms;
// it implements stream.Sink[connector.Message].
type Sink struct {
	cfg   SinkConfig
	meter *connector.Meter
}

var _ stream.Sink[connector.Message] = (*Sink)(nil)

// NewSink validates cfg and returns a sink. It does not connect.
func NewSink(cfg SinkConfig) (*Sink, error) {
	if cfg.URL == "" {
		return nil, errors.New("rabbitmq sink: no url")
	}
	if _, err := amqp.ParseURI(cfg.URL); err != nil {
		return nil, fmt.Errorf("rabbitmq sink: url: %w", err)
	}
	if cfg.MaxInFlight < 0 {
		return nil, fmt.Errorf("rabbitmq sink: negative max in flight %d", cfg.MaxInFlight)
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.MessageIDPrefix == "" {
		cfg.MessageIDPrefix = "sluice"
	}
	if err := CheckRoutingKey(cfg.RoutingKey); err != nil {
		return nil, fmt.Errorf("rabbitmq sink: %w", err)
	}
	if len(cfg.Exchange) > maxIDLen {
		return nil, fmt.Errorf("rabbitmq sink: exchange name of %d bytes: at most %d", len(cfg.Exchange), maxIDLen)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Dial == nil {
		cfg.Dial = defaultDial
	}
	return &Sink{cfg: cfg, meter: connector.NewMeter()}, nil
}

// Meter implements connector.Metered: messages and bytes
// confirmed by the broker, errors and reconnections.
func (s *Sink) Meter() *connector.Meter { return s.meter }

// Open implements stream.Sink. The writer connects at its first write.
func (s *Sink) Open(_ context.Context, info stream.SubtaskInfo) (stream.SinkWriter[connector.Message], error) {
	idBase := s.cfg.MessageIDPrefix + "/" + info.Operator + "/" + strconv.Itoa(info.Index) + "/"
	if len(idBase)+20 > maxIDLen { // 20: the digits of a uint64
		return nil, fmt.Errorf("rabbitmq sink: message-id %q... can outgrow an AMQP short string (%d bytes): shorten the message-id prefix or the operator's name", idBase, maxIDLen)
	}
	return &writer{sink: s, idBase: idBase}, nil
}

// checkShortStrings rejects a message whose routing key or header names
// AMQP cannot carry: the library would fail to encode it and close the
// connection, which looks like an outage (the message would be published
// again on every reconnection).
func checkShortStrings(key string, hs []connector.Header) error {
	if err := CheckRoutingKey(key); err != nil {
		return fmt.Errorf("rabbitmq sink: %w", err)
	}
	for _, h := range hs {
		if len(h.Key) > maxIDLen {
			return fmt.Errorf("rabbitmq sink: header name of %d bytes (%.40q...): at most %d", len(h.Key), h.Key, maxIDLen)
		}
	}
	return nil
}

// pub is a published message awaiting its confirmation, kept to publish
// it again on a new channel if the connection goes away first.
type pub struct {
	key string
	msg amqp.Publishing
}

// writer is one subtask's publisher: one connection, one channel in
// confirm mode. It runs on the sink's task only (Commit and Abort touch
// nothing of it).
type writer struct {
	sink   *Sink
	idBase string
	// n counts the subtask's messages; message-id idBase+n.
	n uint64

	conn     *amqp.Connection
	ch       *amqp.Channel
	confirms chan amqp.Confirmation
	returns  chan amqp.Return
	closeErr chan *amqp.Error
	// chClose says why the broker closed the channel (a refused publish).
	chClose chan *amqp.Error
	// unconf are the published messages not yet confirmed, in publish
	// order; the first has delivery tag base on the current channel.
	unconf []pub
	base   uint64
	down   bool
	err    error // a sticky failure (nack, unroutable)
}

// connect opens a channel in confirm mode and publishes again what the
// previous channel left unconfirmed, retrying with backoff until ctx ends.
func (w *writer) connect(ctx context.Context) error {
	if w.err != nil {
		return w.err
	}
	var backoff time.Duration
	attempts := 0
	for {
		err := w.dial()
		if err == nil {
			if w.down {
				w.sink.meter.Reconnects.Add(1)
				w.sink.cfg.Logger.Info("rabbitmq sink: reconnected; publishing the unconfirmed messages again", "url", redact(w.sink.cfg.URL), "exchange", w.sink.cfg.Exchange, "attempts", attempts+1, "unconfirmed", len(w.unconf))
				w.down = false
			}
			again := w.unconf
			w.unconf, w.base = nil, 1
			for i, p := range again {
				if w.ch == nil {
					// The new connection was lost too (publish called
					// lost): the rest waits, in order, for the next one.
					w.unconf = append(w.unconf, again[i:]...)
					break
				}
				if err := w.publish(ctx, p); err != nil {
					return err
				}
			}
			return nil
		}
		if permanent(err) {
			return fmt.Errorf("rabbitmq sink exchange %q: %w", w.sink.cfg.Exchange, err)
		}
		w.sink.meter.Errors.Add(1)
		if !w.down {
			w.down = true
			w.sink.cfg.Logger.Warn("rabbitmq sink: cannot connect; retrying with backoff", "url", redact(w.sink.cfg.URL), "exchange", w.sink.cfg.Exchange, "err", err)
		}
		attempts++
		backoff = nextBackoff(backoff)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

func (w *writer) dial() error {
	cfg := &w.sink.cfg
	conn, err := cfg.Dial(cfg.URL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	ch, err := conn.Channel()
	if err != nil {
		conn.Close()
		return fmt.Errorf("open channel: %w", err)
	}
	if err := ch.Confirm(false); err != nil {
		conn.Close()
		return fmt.Errorf("confirm mode: %w", err)
	}
	if cfg.Exchange != "" {
		if err := ch.ExchangeDeclarePassive(cfg.Exchange, "", false, false, false, false, nil); err != nil {
			conn.Close()
			return fmt.Errorf("exchange %s: %w", cfg.Exchange, err)
		}
	}
	// Room for every confirmation and return of MaxInFlight messages, so
	// that the library never blocks delivering them.
	w.confirms = ch.NotifyPublish(make(chan amqp.Confirmation, cfg.MaxInFlight+1))
	w.returns = ch.NotifyReturn(make(chan amqp.Return, cfg.MaxInFlight+1))
	w.closeErr = conn.NotifyClose(make(chan *amqp.Error, 1))
	w.chClose = ch.NotifyClose(make(chan *amqp.Error, 1))
	w.conn, w.ch = conn, ch
	return nil
}

// lost drops the broken connection; its unconfirmed messages stay in
// unconf and are published again by the next connect.
func (w *writer) lost(cause error) {
	w.sink.meter.Errors.Add(1)
	if !w.down {
		w.down = true
		w.sink.cfg.Logger.Warn("rabbitmq sink: connection lost; reconnecting with backoff (unconfirmed messages are published again: at-least-once)",
			"url", redact(w.sink.cfg.URL), "exchange", w.sink.cfg.Exchange, "unconfirmed", len(w.unconf), "err", cause)
	}
	if w.conn != nil {
		w.conn.Close()
	}
	// What the old channel delivered before it closed still counts: a
	// return fails the writer, a confirmation spares a message being
	// published again. The library closes these channels when it has shut
	// the channel down (closing the connection does); a closed one must
	// not be read again (it yields zero values, which looked like a
	// returned message).
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	for w.returns != nil || w.confirms != nil {
		select {
		case r, ok := <-w.returns:
			w.drainedReturn(r, ok)
			continue
		default:
		}
		select {
		case r, ok := <-w.returns:
			w.drainedReturn(r, ok)
		case c, ok := <-w.confirms:
			if !ok {
				w.confirms = nil
			} else {
				w.confirm(c)
			}
		case <-t.C:
			w.confirms, w.returns = nil, nil // the rest are published again
		}
	}
	// The broker closes the channel, not the connection, when it refuses
	// a publish (no write permission, an internal exchange, a message over
	// its size limit): publishing it again on a new channel would be
	// refused the same way, forever.
	select {
	case e := <-w.chClose:
		if e != nil && permanent(e) && w.err == nil {
			w.sink.cfg.Logger.Error("rabbitmq sink: the broker refused a publish", "exchange", w.sink.cfg.Exchange, "err", e)
			w.err = fmt.Errorf("rabbitmq sink: exchange %q: the broker closed the channel: %w", w.sink.cfg.Exchange, e)
		}
	default:
	}
	w.conn, w.ch, w.closeErr, w.chClose = nil, nil, nil, nil
}

// publish sends one message on the current channel and records it as
// unconfirmed; a connection loss is left for the next confirmation wait.
func (w *writer) publish(ctx context.Context, p pub) error {
	if len(w.unconf) == 0 {
		w.base = w.ch.GetNextPublishSeqNo()
	}
	w.unconf = append(w.unconf, p)
	err := w.ch.PublishWithContext(ctx, w.sink.cfg.Exchange, p.key, w.sink.cfg.Mandatory, false, p.msg)
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		w.lost(err)
	}
	return nil
}

// Write implements stream.SinkWriter: each message is published with its
// message-id; Write returns once at most MaxInFlight are unconfirmed.
func (w *writer) Write(ctx context.Context, msgs []connector.Message) error {
	if w.err != nil {
		return w.err
	}
	cfg := &w.sink.cfg
	for i := range msgs {
		m := &msgs[i]
		w.n++
		p := pub{key: cfg.RoutingKey, msg: amqp.Publishing{Body: m.Value, MessageId: w.idBase + strconv.FormatUint(w.n, 10)}}
		if m.Key != nil {
			p.key = string(m.Key)
		}
		if err := checkShortStrings(p.key, m.Headers); err != nil {
			return err
		}
		if cfg.Persistent {
			p.msg.DeliveryMode = amqp.Persistent
		}
		if m.Timestamp > 0 {
			p.msg.Timestamp = time.UnixMilli(m.Timestamp)
		}
		if len(m.Headers) > 0 {
			p.msg.Headers = make(amqp.Table, len(m.Headers))
			for _, h := range m.Headers {
				p.msg.Headers[h.Key] = h.Value
			}
		}
		for w.ch == nil {
			if err := w.connect(ctx); err != nil {
				return err
			}
		}
		if err := w.publish(ctx, p); err != nil {
			return err
		}
		if len(w.unconf) >= cfg.MaxInFlight {
			if err := w.await(ctx, cfg.MaxInFlight/2); err != nil {
				return err
			}
		}
	}
	return w.await(ctx, -1)
}

// await processes confirmations until at most limit messages are
// unconfirmed (limit < 0: only those already arrived), reconnecting and
// publishing again when the connection goes away.
func (w *writer) await(ctx context.Context, limit int) error {
	for {
		// A returned message arrives before its confirmation: look at
		// returns first.
		select {
		case r, ok := <-w.returns:
			if ok {
				w.returned(r)
			} else {
				w.lost(errors.New("channel closed"))
			}
		default:
		}
		if w.err != nil {
			return w.err
		}
		if limit >= 0 && len(w.unconf) <= limit {
			return nil
		}
		if w.ch == nil {
			if limit < 0 {
				return nil
			}
			if err := w.connect(ctx); err != nil {
				return err
			}
			continue
		}
		if limit < 0 {
			select {
			case c, ok := <-w.confirms:
				w.confirmed(c, ok)
			case e := <-w.closeErr:
				w.lost(closeCause(e))
			default:
				return nil
			}
			continue
		}
		t := time.NewTimer(time.Second)
		select {
		case r, ok := <-w.returns:
			if ok {
				w.returned(r)
			} else {
				w.lost(errors.New("channel closed"))
			}
		case c, ok := <-w.confirms:
			w.confirmed(c, ok)
		case e := <-w.closeErr:
			w.lost(closeCause(e))
		case <-t.C:
			if w.conn != nil && w.conn.IsClosed() {
				w.lost(errors.New("connection closed"))
			}
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		t.Stop()
	}
}

// drainedReturn takes one receive from the old channel's returns: a
// returned message (ok), or the end of the channel, which is not read
// again.
func (w *writer) drainedReturn(r amqp.Return, ok bool) {
	if !ok {
		w.returns = nil
		return
	}
	w.returned(r)
}

func (w *writer) returned(r amqp.Return) {
	w.sink.meter.Errors.Add(1)
	if w.err == nil {
		w.err = fmt.Errorf("rabbitmq sink: exchange %q routing key %q: %w (%d %s); bind a queue that receives it, or set mandatory: false to let the broker drop such messages",
			w.sink.cfg.Exchange, r.RoutingKey, ErrUnroutable, r.ReplyCode, r.ReplyText)
	}
}

func (w *writer) confirmed(c amqp.Confirmation, ok bool) {
	if !ok {
		w.lost(errors.New("channel closed"))
		return
	}
	w.confirm(c)
}

// confirm applies one confirmation (the library delivers them one per
// message, in delivery-tag order).
func (w *writer) confirm(c amqp.Confirmation) {
	if c.DeliveryTag < w.base || len(w.unconf) == 0 {
		return
	}
	if !c.Ack {
		w.sink.meter.Errors.Add(1)
		w.err = fmt.Errorf("rabbitmq sink: exchange %q: %w (delivery tag %d); the job restarts from its last checkpoint", w.sink.cfg.Exchange, ErrNacked, c.DeliveryTag)
		return
	}
	k := int(c.DeliveryTag - w.base + 1)
	k = min(k, len(w.unconf))
	for _, p := range w.unconf[:k] {
		w.sink.meter.Records.Add(1)
		w.sink.meter.Bytes.Add(int64(len(p.msg.Body)))
	}
	clear(w.unconf[:k])
	w.unconf = w.unconf[k:]
	w.base += uint64(k)
}

// flush waits until every published message is confirmed.
func (w *writer) flush(ctx context.Context) error {
	if err := w.await(ctx, 0); err != nil {
		return err
	}
	return w.await(ctx, -1) // a return that came with the last confirmation
}

// PreCommit implements checkpoint.TwoPhaseCommitter: the checkpoint
// completes only once every message written before the barrier is
// confirmed by the broker. The handle carries the subtask's message count,
// from which the message-ids continue after a restore; there is nothing
// to stage: published messages are visible at once (at-least-once).
func (w *writer) PreCommit(ctx context.Context, _ checkpoint.ID) (checkpoint.Transaction, error) {
	if err := w.flush(ctx); err != nil {
		return nil, err
	}
	return binary.BigEndian.AppendUint64(nil, w.n), nil
}

// Commit implements checkpoint.TwoPhaseCommitter; there is nothing to do.
func (w *writer) Commit(context.Context, checkpoint.Transaction) error { return nil }

// Abort implements checkpoint.TwoPhaseCommitter; published messages cannot
// be taken back.
func (w *writer) Abort(context.Context, checkpoint.Transaction) error { return nil }

// Recover implements checkpoint.TwoPhaseCommitter: the message count
// continues from the restored checkpoint's, so that replayed records get
// the message-ids they had before the restart.
func (w *writer) Recover(_ context.Context, committed []checkpoint.Transaction) error {
	for _, tx := range committed {
		if len(tx) != 8 {
			return fmt.Errorf("rabbitmq sink: %w: handle of %d bytes, want 8", stream.ErrBadPosition, len(tx))
		}
		w.n = max(w.n, binary.BigEndian.Uint64(tx))
	}
	return nil
}

// Close implements stream.SinkWriter: it waits for every confirmation
// unless the job stopped early.
func (w *writer) Close(ctx context.Context) error {
	defer func() {
		if w.conn != nil {
			w.conn.Close()
		}
	}()
	if ctx.Err() != nil {
		return nil
	}
	return w.flush(ctx)
}

var _ checkpoint.TwoPhaseCommitter = (*writer)(nil)
