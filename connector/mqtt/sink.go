package mqtt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/stream"
)

// DefaultSinkMaxInFlight bounds a sink subtask's publishes not yet
// acknowledged by the broker.
const DefaultSinkMaxInFlight = 1000

// SinkConfig configures a Sink.
type SinkConfig struct {
	// URL is the broker: tcp://HOST:PORT, ssl://HOST:PORT, ws://...
	URL string
	// Topic is where a message without a key is published. A message's
	// key, when set, is its topic (the pipeline renders the topic
	// template of the spec into the key).
	Topic string
	// QoS of the publishes (0, 1 or 2).
	QoS byte
	// Retain sets the retain flag on every publish.
	Retain bool
	// ClientID names the sink's session; subtask i > 0 of a parallel sink
	// appends -i. Required: a QoS 1/2 sink keeps its session (clean
	// session off) so that publishes in flight at a disconnection are
	// sent again after it.
	ClientID string
	// Username and Password authenticate, when set.
	Username, Password string
	// MaxInFlight bounds the publishes not yet acknowledged; 0 means
	// DefaultSinkMaxInFlight. Write waits when it is reached.
	MaxInFlight int
	// KeepAlive, ConnectTimeout and MaxReconnectInterval tune the
	// connection; zero means the defaults.
	KeepAlive, ConnectTimeout, MaxReconnectInterval time.Duration
	// Logger receives connection events; nil means slog.Default().
	Logger *slog.Logger
}

// Sink publishes messages to an MQTT broker. It is at-least-once for QoS 1
// and 2 (every publish of a checkpoint is acknowledged before the
// checkpoint completes; a replay after a failure publishes again) and
// at-most-once for QoS 0.
type Sink struct {
	cfg   SinkConfig
	meter *connector.Meter
}

// NewSink checks cfg and returns a sink.
func NewSink(cfg SinkConfig) (*Sink, error) {
	if cfg.URL == "" {
		return nil, errors.New("mqtt sink: url is required (tcp://HOST:1883)")
	}
	if cfg.QoS > 2 {
		return nil, fmt.Errorf("mqtt sink: qos %d: want 0, 1 or 2", cfg.QoS)
	}
	if cfg.ClientID == "" {
		return nil, errors.New("mqtt sink: client_id is required")
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultSinkMaxInFlight
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.MaxReconnectInterval <= 0 {
		cfg.MaxReconnectInterval = DefaultMaxReconnectInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Sink{cfg: cfg, meter: connector.NewMeter()}, nil
}

// Meter returns the sink's counters (records and bytes acknowledged).
func (s *Sink) Meter() *connector.Meter { return s.meter }

// Open connects one sink subtask, retrying with backoff until ctx ends.
func (s *Sink) Open(ctx context.Context, info stream.SubtaskInfo) (stream.SinkWriter[connector.Message], error) {
	id := s.cfg.ClientID
	if info.Index > 0 {
		id += "-" + strconv.Itoa(info.Index)
	}
	log := s.cfg.Logger.With("connector", "mqtt", "url", s.cfg.URL, "client_id", id)
	var conns atomic.Int64
	o := paho.NewClientOptions().AddBroker(s.cfg.URL).
		SetClientID(id).
		SetCleanSession(s.cfg.QoS == 0).
		SetUsername(s.cfg.Username).SetPassword(s.cfg.Password).
		SetKeepAlive(s.cfg.KeepAlive).
		SetConnectTimeout(s.cfg.ConnectTimeout).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(s.cfg.MaxReconnectInterval).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetOrderMatters(false)
	o.SetConnectionLostHandler(func(_ paho.Client, err error) {
		s.meter.Errors.Add(1)
		log.Warn("mqtt: connection to the broker lost; reconnecting with backoff (unacknowledged publishes are sent again)", "err", err)
	})
	o.SetOnConnectHandler(func(paho.Client) {
		if conns.Add(1) > 1 {
			s.meter.Reconnects.Add(1)
			log.Info("mqtt: reconnected to the broker")
		}
	})
	c := paho.NewClient(o)
	tok := c.Connect()
	t := time.NewTicker(s.cfg.ConnectTimeout)
	defer t.Stop()
	for done := false; !done; {
		select {
		case <-tok.Done():
			if err := tok.Error(); err != nil {
				return nil, fmt.Errorf("mqtt sink: connect to %s: %w", s.cfg.URL, err)
			}
			done = true
		case <-ctx.Done():
			c.Disconnect(0)
			return nil, fmt.Errorf("mqtt sink: connect to %s: %w", s.cfg.URL, ctx.Err())
		case <-t.C:
			log.Warn("mqtt: broker not reachable yet; still trying")
		}
	}
	return &writer{s: s, c: c}, nil
}

type pending struct {
	tok     paho.Token
	topic   string
	payload []byte
	tries   int
}

// DefaultPublishRetries is how often a publish whose token failed (the
// connection broke while it was being written) is sent again.
const DefaultPublishRetries = 20

type writer struct {
	s       *Sink
	c       paho.Client
	pending []pending // in publish order
}

// Write publishes msgs, waiting for acknowledgements only when more than
// MaxInFlight are outstanding.
func (w *writer) Write(ctx context.Context, msgs []connector.Message) error {
	for i := range msgs {
		m := &msgs[i]
		topic := w.s.cfg.Topic
		if len(m.Key) > 0 {
			topic = string(m.Key)
		}
		if err := ValidateTopic(topic); err != nil {
			return fmt.Errorf("mqtt sink: %w (check the topic template and the fields it uses)", err)
		}
		for len(w.pending) >= w.s.cfg.MaxInFlight {
			if err := w.waitOldest(ctx); err != nil {
				return err
			}
		}
		// paho keeps the payload until it is acknowledged: copy it.
		payload := append([]byte(nil), m.Value...)
		w.pending = append(w.pending, pending{tok: w.c.Publish(topic, w.s.cfg.QoS, w.s.cfg.Retain, payload), topic: topic, payload: payload})
	}
	return nil
}

// waitOldest waits for the oldest publish; one whose token failed (the
// connection broke while it was written) is published again after a
// backoff: at-least-once.
func (w *writer) waitOldest(ctx context.Context) error {
	p := &w.pending[0]
	backoff := 250 * time.Millisecond
	for {
		select {
		case <-p.tok.Done():
		case <-ctx.Done():
			return ctx.Err()
		}
		err := p.tok.Error()
		if err == nil {
			break
		}
		w.s.meter.Errors.Add(1)
		p.tries++
		if p.tries > DefaultPublishRetries {
			return fmt.Errorf("mqtt sink: publish to %q failed %d times: %w (is the broker reachable?)", p.topic, p.tries, err)
		}
		if p.tries == 1 || p.tries%5 == 0 {
			w.s.cfg.Logger.Warn("mqtt sink: publish failed; sending it again", "topic", p.topic, "try", p.tries, "err", err)
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff = min(2*backoff, 5*time.Second)
		p.tok = w.c.Publish(p.topic, w.s.cfg.QoS, w.s.cfg.Retain, p.payload)
	}
	w.s.meter.Records.Add(1)
	w.s.meter.Bytes.Add(int64(len(p.payload)))
	w.pending[0] = pending{}
	w.pending = w.pending[1:]
	if len(w.pending) == 0 {
		w.pending = nil
	}
	return nil
}

func (w *writer) flush(ctx context.Context) error {
	for len(w.pending) > 0 {
		if err := w.waitOldest(ctx); err != nil {
			return err
		}
	}
	return nil
}

// OnBarrier waits until every publish so far is acknowledged (QoS 1, 2)
// or written (QoS 0): the checkpoint then covers them.
func (w *writer) OnBarrier(ctx context.Context, _ uint64) error { return w.flush(ctx) }

// Close flushes and disconnects.
func (w *writer) Close(ctx context.Context) error {
	var err error
	if ctx.Err() == nil {
		err = w.flush(ctx)
	}
	w.c.Disconnect(250)
	return err
}
