package mqtt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/stream"
)

// Defaults of the configurations.
const (
	// DefaultMaxInFlight bounds the messages a source holds between the
	// broker and the pipeline (received, not yet acknowledged).
	DefaultMaxInFlight = 10000
	// DefaultMaxReconnectInterval caps the reconnection backoff.
	DefaultMaxReconnectInterval = 10 * time.Second
	// DefaultKeepAlive is the MQTT keep-alive interval.
	DefaultKeepAlive = 30 * time.Second
	// DefaultConnectTimeout bounds one connection attempt.
	DefaultConnectTimeout = 10 * time.Second
	// HeaderTopic is the header that carries a received message's topic
	// (it is also the message key).
	HeaderTopic = "mqtt_topic"
)

// SourceConfig configures a Source.
type SourceConfig struct {
	// URL is the broker: tcp://HOST:PORT, ssl://HOST:PORT, ws://...
	URL string
	// Topics are topic filters, wildcards (+, #) allowed.
	Topics []string
	// QoS is the subscription's maximum quality of service (0, 1 or 2).
	QoS byte
	// ClientID names the session at the broker; required without
	// CleanSession (the broker keeps the session, its subscriptions and
	// its queued messages under this id).
	ClientID string
	// CleanSession discards the broker's session at every connection:
	// nothing published while the pipeline is away is kept.
	CleanSession bool
	// Username and Password authenticate, when set.
	Username, Password string
	// AckOnCheckpoint holds the acknowledgement (PUBACK, PUBREC) of each
	// QoS 1 and 2 message until the checkpoint covering it completes
	// (CommitPosition). Without it a message is acknowledged as soon as
	// the pipeline reads it.
	AckOnCheckpoint bool
	// MaxInFlight bounds the messages received and not yet acknowledged
	// or read; 0 means DefaultMaxInFlight. When it is reached the client
	// stops reading from the broker (backpressure).
	MaxInFlight int
	// TopicField, when set, adds the topic to every JSON object payload
	// as a string field of that name (placed first: a field of the same
	// name in the payload comes later and wins).
	TopicField string
	// KeepAlive, ConnectTimeout and MaxReconnectInterval tune the
	// connection; zero means the defaults.
	KeepAlive, ConnectTimeout, MaxReconnectInterval time.Duration
	// Logger receives connection events; nil means slog.Default().
	Logger *slog.Logger
}

func (c *SourceConfig) validate() error {
	if c.URL == "" {
		return errors.New("mqtt source: url is required (tcp://HOST:1883)")
	}
	if len(c.Topics) == 0 {
		return errors.New("mqtt source: topics is required (a list of topic filters)")
	}
	for _, t := range c.Topics {
		if err := ValidateFilter(t); err != nil {
			return fmt.Errorf("mqtt source: %w", err)
		}
	}
	if c.QoS > 2 {
		return fmt.Errorf("mqtt source: qos %d: want 0, 1 or 2", c.QoS)
	}
	if !c.CleanSession && c.ClientID == "" {
		return errors.New("mqtt source: client_id is required with clean_session: false (the broker keeps the session under it)")
	}
	return nil
}

// maxTopicLen is the longest topic or filter MQTT can carry (a string
// with a 16-bit length); the client truncates longer ones.
const maxTopicLen = 65535

// checkString checks what MQTT requires of every topic and filter: at
// most 65535 bytes of well-formed UTF-8. A longer one would be cut short
// by the client (a message published to another topic); a broker that
// receives ill-formed UTF-8 closes the connection (and a sink's session
// would send the publish again on every reconnection).
func checkString(what, s string) error {
	if len(s) > maxTopicLen {
		return fmt.Errorf("%s of %d bytes (%.40q...): at most %d", what, len(s), s, maxTopicLen)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s %.80q: not UTF-8", what, s)
	}
	return nil
}

// ValidateFilter checks an MQTT topic filter: not empty, at most 65535
// bytes of UTF-8, '+' alone in its level, '#' alone in the last level.
func ValidateFilter(f string) error {
	if f == "" {
		return errors.New("empty topic filter")
	}
	if err := checkString("topic filter", f); err != nil {
		return err
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		if strings.Contains(l, "#") && (l != "#" || i != len(levels)-1) {
			return fmt.Errorf("topic filter %q: '#' must be the whole last level", f)
		}
		if strings.Contains(l, "+") && l != "+" {
			return fmt.Errorf("topic filter %q: '+' must be a whole level", f)
		}
	}
	return nil
}

// ValidateTopic checks a topic a message is published to: not empty, at
// most 65535 bytes of UTF-8, no wildcard, no NUL.
func ValidateTopic(t string) error {
	if t == "" {
		return errors.New("empty topic")
	}
	if err := checkString("topic", t); err != nil {
		return err
	}
	if strings.ContainsAny(t, "+#\x00") {
		return fmt.Errorf("topic %q: wildcards (+, #) and NUL are not allowed in a published topic", t)
	}
	return nil
}

// Source reads MQTT messages from topic filters with one client: a single
// split (MQTT has no partitions; a shared subscription would lose the
// session's guarantees).
type Source struct {
	cfg   SourceConfig
	meter *connector.Meter
}

// NewSource checks cfg and returns a source. Nothing connects until the
// job starts.
func NewSource(cfg SourceConfig) (*Source, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
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
	return &Source{cfg: cfg, meter: connector.NewMeter()}, nil
}

// Meter returns the source's counters.
func (s *Source) Meter() *connector.Meter { return s.meter }

// Splits returns the source's one split; it connects to the broker and
// subscribes (retrying with backoff until ctx ends).
func (s *Source) Splits(ctx context.Context, _ int) ([]stream.Split[connector.Message], error) {
	sp := &split{cfg: s.cfg, meter: s.meter, in: make(chan inMsg, s.cfg.MaxInFlight), closed: make(chan struct{})}
	sp.room = make(chan struct{}, 1)
	if err := sp.connect(ctx); err != nil {
		return nil, err
	}
	return []stream.Split[connector.Message]{sp}, nil
}

// inMsg is a received message on its way to Read.
type inMsg struct {
	seq   uint64
	topic string
	data  []byte
	at    int64
}

// held is a received QoS 1/2 message not yet acknowledged.
type held struct {
	seq uint64
	mid uint16
	msg paho.Message
}

type split struct {
	cfg    SourceConfig
	meter  *connector.Meter
	client paho.Client
	in     chan inMsg
	closed chan struct{}
	once   sync.Once

	// conn numbers connections (incremented on each connect).
	conn atomic.Uint64

	mu   sync.Mutex
	recv uint64 // messages received (the last one's seq)
	held []held // in arrival order, seq increasing
	room chan struct{}

	read uint64 // seq of the last message Read returned (Read's goroutine)
	pos  atomic.Uint64
}

func (sp *split) ID() string { return "mqtt" }

func (sp *split) connect(ctx context.Context) error {
	log := sp.cfg.Logger.With("connector", "mqtt", "url", sp.cfg.URL, "client_id", sp.cfg.ClientID)
	o := paho.NewClientOptions().AddBroker(sp.cfg.URL).
		SetClientID(sp.cfg.ClientID).
		SetCleanSession(sp.cfg.CleanSession).
		SetUsername(sp.cfg.Username).SetPassword(sp.cfg.Password).
		SetKeepAlive(sp.cfg.KeepAlive).
		SetConnectTimeout(sp.cfg.ConnectTimeout).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(sp.cfg.MaxReconnectInterval).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetOrderMatters(true).
		SetAutoAckDisabled(true).
		SetResumeSubs(false).
		SetMessageChannelDepth(uint(min(sp.cfg.MaxInFlight, 1<<16))).
		SetDefaultPublishHandler(sp.handle)
	o.SetConnectionLostHandler(func(_ paho.Client, err error) {
		sp.meter.Errors.Add(1)
		log.Warn("mqtt: connection to the broker lost; reconnecting with backoff (unacknowledged messages will be redelivered by the broker)", "err", err)
	})
	o.SetReconnectingHandler(func(_ paho.Client, _ *paho.ClientOptions) {
		log.Info("mqtt: reconnecting to the broker")
	})
	o.SetOnConnectHandler(func(c paho.Client) {
		if sp.conn.Add(1) > 1 {
			sp.meter.Reconnects.Add(1)
			log.Info("mqtt: reconnected to the broker")
		}
		// Subscribe on every connection: with a persistent session the
		// broker still has the subscriptions, but a broker that lost its
		// session state (restarted without persistence) would not.
		filters := make(map[string]byte, len(sp.cfg.Topics))
		for _, t := range sp.cfg.Topics {
			filters[t] = sp.cfg.QoS
		}
		go func() {
			tok := c.SubscribeMultiple(filters, nil)
			if !tok.WaitTimeout(sp.cfg.ConnectTimeout) {
				log.Warn("mqtt: subscribe not acknowledged in time; it stays pending", "topics", sp.cfg.Topics)
				return
			}
			if err := tok.Error(); err != nil {
				sp.meter.Errors.Add(1)
				log.Error("mqtt: subscribe failed", "topics", sp.cfg.Topics, "err", err)
			}
		}()
	})
	sp.client = paho.NewClient(o)
	tok := sp.client.Connect()
	// With ConnectRetry the token completes once connected; wait for it
	// or for ctx, saying what is happening meanwhile.
	t := time.NewTicker(sp.cfg.ConnectTimeout)
	defer t.Stop()
	for {
		select {
		case <-tok.Done():
			if err := tok.Error(); err != nil {
				return fmt.Errorf("mqtt source: connect to %s: %w", sp.cfg.URL, err)
			}
			return nil
		case <-ctx.Done():
			sp.client.Disconnect(0)
			return fmt.Errorf("mqtt source: connect to %s: %w", sp.cfg.URL, ctx.Err())
		case <-t.C:
			log.Warn("mqtt: broker not reachable yet; still trying")
		}
	}
}

// handle is paho's message callback (one goroutine, in arrival order).
func (sp *split) handle(_ paho.Client, m paho.Message) {
	qos := m.Qos()
	sp.mu.Lock()
	if qos > 0 && m.Duplicate() {
		// The broker resends, after a reconnection, the messages it sent
		// on an earlier connection and never saw acknowledged. One we
		// still hold was already passed on: keep the new copy's
		// acknowledgement (the old connection's is dead) and skip it.
		// The packet id alone tells: the broker cannot reuse it while we
		// hold it unacknowledged, and the connection count cannot, as
		// paho runs the on-connect handler that counts a connection
		// concurrently with the resends that follow the CONNACK.
		for i := range sp.held {
			h := &sp.held[i]
			if h.mid == m.MessageID() {
				h.msg = m
				sp.mu.Unlock()
				sp.meter.Dropped.Add(1)
				return
			}
		}
	}
	// Bound what is held: wait for acknowledgements to make room.
	for qos > 0 && sp.cfg.AckOnCheckpoint && len(sp.held) >= sp.cfg.MaxInFlight {
		sp.mu.Unlock()
		select {
		case <-sp.room:
		case <-sp.closed:
			return
		}
		sp.mu.Lock()
	}
	sp.recv++
	seq := sp.recv
	if qos > 0 {
		sp.held = append(sp.held, held{seq: seq, mid: m.MessageID(), msg: m})
	}
	sp.mu.Unlock()
	select {
	case sp.in <- inMsg{seq: seq, topic: m.Topic(), data: m.Payload(), at: time.Now().UnixMilli()}:
	case <-sp.closed:
	}
}

// Read returns the messages received so far, waiting up to 100 ms for
// the first.
func (sp *split) Read(ctx context.Context, dst []connector.Message) (int, error) {
	if len(dst) == 0 {
		return 0, nil
	}
	n := 0
	timer := time.NewTimer(100 * time.Millisecond)
	defer timer.Stop()
	select {
	case m := <-sp.in:
		sp.fill(&dst[0], m)
		n = 1
	case <-timer.C:
		return 0, nil
	case <-ctx.Done():
		return 0, nil
	}
	for n < len(dst) {
		select {
		case m := <-sp.in:
			sp.fill(&dst[n], m)
			n++
			continue
		default:
		}
		break
	}
	sp.pos.Store(sp.read)
	if !sp.cfg.AckOnCheckpoint {
		sp.ackUpTo(sp.read)
	}
	return n, nil
}

func (sp *split) fill(d *connector.Message, m inMsg) {
	sp.read = m.seq
	v := m.data
	if f := sp.cfg.TopicField; f != "" {
		v = AddTopicField(v, f, m.topic)
	}
	*d = connector.Message{
		Key:       []byte(m.topic),
		Value:     v,
		Headers:   []connector.Header{{Key: HeaderTopic, Value: []byte(m.topic)}},
		Timestamp: m.at,
		Origin:    m.topic,
		Offset:    int64(m.seq),
	}
	sp.meter.Records.Add(1)
	sp.meter.Bytes.Add(int64(len(m.data)))
}

// AddTopicField returns a JSON object payload with a string field name
// holding topic added first; any other payload is returned as it is.
func AddTopicField(payload []byte, name, topic string) []byte {
	i := 0
	for i < len(payload) && (payload[i] == ' ' || payload[i] == '\t' || payload[i] == '\n' || payload[i] == '\r') {
		i++
	}
	if i >= len(payload) || payload[i] != '{' {
		return payload
	}
	rest := payload[i+1:]
	out := make([]byte, 0, len(payload)+len(name)+len(topic)+8)
	out = append(out, '{')
	out = appendJSONString(out, name)
	out = append(out, ':')
	out = appendJSONString(out, topic)
	j := 0
	for j < len(rest) && (rest[j] == ' ' || rest[j] == '\t' || rest[j] == '\n' || rest[j] == '\r') {
		j++
	}
	if j < len(rest) && rest[j] != '}' {
		out = append(out, ',')
	}
	return append(out, rest...)
}

func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// Position is the sequence number (in this process) of the last message
// Read returned. It is only meaningful to this run: MQTT cannot replay,
// so a restored position is ignored and the broker's session supplies the
// unacknowledged messages.
func (sp *split) Position() []byte {
	return binary.BigEndian.AppendUint64(nil, sp.pos.Load())
}

// Seek accepts any position: the broker, not the checkpoint, knows what
// was not acknowledged.
func (sp *split) Seek([]byte) error { return nil }

// CommitPosition acknowledges, in arrival order, every held message up to
// pos: the checkpoint that covers them has completed.
func (sp *split) CommitPosition(_ context.Context, pos []byte) error {
	if len(pos) != 8 {
		return fmt.Errorf("mqtt source: bad position %x", pos)
	}
	sp.ackUpTo(binary.BigEndian.Uint64(pos))
	return nil
}

func (sp *split) ackUpTo(seq uint64) {
	sp.mu.Lock()
	n := 0
	for n < len(sp.held) && sp.held[n].seq <= seq {
		n++
	}
	acks := make([]paho.Message, n)
	for i := range n {
		acks[i] = sp.held[i].msg
	}
	sp.held = append(sp.held[:0], sp.held[n:]...)
	sp.mu.Unlock()
	for _, m := range acks {
		m.Ack()
	}
	if n > 0 {
		select {
		case sp.room <- struct{}{}:
		default:
		}
	}
}

// Close disconnects (unacknowledged messages stay with the broker's
// session).
func (sp *split) Close() error {
	sp.once.Do(func() {
		close(sp.closed)
		sp.client.Disconnect(250)
	})
	return nil
}
