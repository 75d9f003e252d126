package nats

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/stream"
)

// Defaults of SourceConfig.
const (
	DefaultBatch         = 500
	DefaultMaxAckPending = 65536
	DefaultAckWait       = 30 * time.Second
	// DefaultMaxInFlight bounds a core NATS source's buffered messages.
	DefaultMaxInFlight = 65536
)

// Start says where a new durable consumer begins when neither a restored
// checkpoint nor the consumer's acknowledgements say.
type Start int

const (
	// StartAll begins at the first message stored (the default).
	StartAll Start = iota
	// StartNew begins after the last message stored when the job starts.
	StartNew
)

// SourceConfig configures a Source.
type SourceConfig struct {
	ConnConfig
	// JetStream reads a stream through a durable pull consumer; without
	// it the source subscribes to core NATS subjects (at-most-once).
	JetStream bool
	// Stream names the JetStream stream (JetStream only).
	Stream string
	// Subject is the subject (wildcards allowed) to read: the consumer's
	// filter, or the core subscription's subject.
	Subject string
	// Durable names the consumer (JetStream only). The pipeline owns it:
	// the source recreates it at its start position on every start.
	Durable string
	// Queue, for core NATS, joins a queue group (messages shared among
	// its members).
	Queue string
	// Batch is the pull request size (JetStream; 0: DefaultBatch).
	Batch int
	// MaxAckPending bounds the messages delivered and not acknowledged
	// (JetStream; 0: DefaultMaxAckPending). With acknowledgements at
	// checkpoints it is also the most a source reads per checkpoint.
	MaxAckPending int
	// AckWait is how long the server waits for an acknowledgement before
	// delivering a message again (0: DefaultAckWait).
	AckWait time.Duration
	// MaxInFlight bounds a core NATS subscription's buffered messages
	// (0: DefaultMaxInFlight); beyond it the client drops messages.
	MaxInFlight int
	// Start is where a new consumer begins.
	Start Start
	// AckOnCheckpoint acknowledges messages only when the checkpoint that
	// covers them completes; without it, as soon as they are read.
	AckOnCheckpoint bool
}

func (c *SourceConfig) validate() error {
	if c.URL == "" {
		return errors.New("nats source: url is required (nats://HOST:4222)")
	}
	if c.Subject == "" && !c.JetStream {
		return errors.New("nats source: subject is required")
	}
	if c.JetStream {
		if c.Stream == "" {
			return errors.New("nats source: stream is required with jetstream")
		}
		if c.Durable == "" {
			return errors.New("nats source: durable is required with jetstream (the consumer's name)")
		}
	}
	return nil
}

// Source reads NATS messages: from a JetStream stream through a durable
// pull consumer, or from core NATS subjects. It has one split.
type Source struct {
	cfg   SourceConfig
	meter *connector.Meter
}

// NewSource checks cfg and returns a source; nothing connects until the
// job starts.
func NewSource(cfg SourceConfig) (*Source, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.MaxAckPending <= 0 {
		cfg.MaxAckPending = DefaultMaxAckPending
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = DefaultAckWait
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Source{cfg: cfg, meter: connector.NewMeter()}, nil
}

// Meter returns the source's counters; Lag is the JetStream consumer's
// pending count as of the last message.
func (s *Source) Meter() *connector.Meter { return s.meter }

// Splits connects and returns the one split.
func (s *Source) Splits(ctx context.Context, _ int) ([]stream.Split[connector.Message], error) {
	nc, err := connect(ctx, s.cfg.ConnConfig, s.meter, "source")
	if err != nil {
		return nil, err
	}
	if !s.cfg.JetStream {
		sp, err := newCoreSplit(nc, s.cfg, s.meter)
		if err != nil {
			nc.Close()
			return nil, err
		}
		return []stream.Split[connector.Message]{sp}, nil
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats source: %w", err)
	}
	if _, err := js.Stream(ctx, s.cfg.Stream); err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats source: stream %q: %w (create it first, e.g. `nats stream add`)", s.cfg.Stream, err)
	}
	sp := &jsSplit{cfg: s.cfg, meter: s.meter, nc: nc, js: js, in: make(chan jsIn, s.cfg.Batch*2), stop: make(chan struct{}), done: make(chan struct{})}
	return []stream.Split[connector.Message]{sp}, nil
}

// jsIn is a message passed from the fetching goroutine to Read.
type jsIn struct {
	gen     uint64 // the consumer incarnation that delivered it
	msg     jetstream.Msg
	seq     uint64
	pending uint64
	at      time.Time
}

// mark remembers the message behind a position handed out, to
// acknowledge it (ack-all) when that position's checkpoint completes.
type mark struct {
	seq uint64
	gen uint64
	msg jetstream.Msg
}

const maxMarks = 1024

// jsSplit reads a stream through a durable pull consumer with ack policy
// "all". The design (see doc.go): the position is the stream sequence of
// the last message read; first deliveries arrive in stream order, so any
// message at or below it is a redelivery of one already read and is
// skipped; on every start the consumer is recreated to begin right after
// the restored position (or its acknowledgement floor), so that nothing
// delivered to an earlier incarnation is redelivered out of order.
type jsSplit struct {
	cfg   SourceConfig
	meter *connector.Meter
	nc    *nats.Conn
	js    jetstream.JetStream

	started bool
	seek    uint64 // restored position (0: none)
	hasSeek bool
	in      chan jsIn
	stop    chan struct{}
	done    chan struct{}
	err     atomic.Pointer[error]
	iter    jetstream.MessagesContext

	recv      atomic.Uint64 // highest stream sequence received (fetcher)
	committed atomic.Uint64 // highest sequence acknowledged

	read    uint64 // Read's goroutine: sequence of the last message read
	lastMsg jetstream.Msg
	lastGen uint64
	// gen counts consumer incarnations: a message can only be
	// acknowledged to the incarnation that delivered it.
	gen   atomic.Uint64
	pos   atomic.Uint64
	mu    sync.Mutex
	marks []mark
	// skipped is the highest redelivery the fetcher skipped from the
	// current consumer incarnation: after a reset, the messages read
	// since the last acknowledgement come again from the new consumer and
	// only it can acknowledge them. Until a checkpoint covering them does,
	// they count against MaxAckPending, and the new consumer may hold
	// back everything else (no new message is read, so no mark of its
	// incarnation exists): CommitPosition acknowledges through skipped.
	skipped mark
	// covered is the highest position a completed checkpoint covers
	// (CommitPosition): a redelivery at or below it is acknowledged at
	// once.
	covered  atomic.Uint64
	closeOne sync.Once
}

func (sp *jsSplit) ID() string { return sp.cfg.Stream + "/" + sp.cfg.Durable }

// Seek restores the stream sequence of the last message the checkpoint
// covers.
func (sp *jsSplit) Seek(pos []byte) error {
	if len(pos) != 8 {
		return fmt.Errorf("nats source: bad position %x (want 8 bytes)", pos)
	}
	sp.seek, sp.hasSeek = binary.BigEndian.Uint64(pos), true
	sp.read = sp.seek
	sp.pos.Store(sp.seek)
	return nil
}

// Position is the stream sequence of the last message read (8 bytes).
func (sp *jsSplit) Position() []byte {
	seq := sp.pos.Load()
	if sp.cfg.AckOnCheckpoint {
		sp.remember(seq)
	}
	return binary.BigEndian.AppendUint64(nil, seq)
}

// remember records the message of sequence seq as a mark, to be
// acknowledged when a checkpoint at that position completes (Position is
// called on Read's goroutine, at barriers).
func (sp *jsSplit) remember(seq uint64) {
	m := sp.lastMsg
	if m == nil || seq != sp.read {
		return
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if n := len(sp.marks); n > 0 && sp.marks[n-1].seq >= seq {
		return
	}
	if len(sp.marks) >= maxMarks {
		// Forget the oldest: a commit of its position acknowledges an
		// earlier mark instead, which is safe (less is acknowledged; a
		// later commit covers the rest).
		sp.marks = append(sp.marks[:0], sp.marks[1:]...)
	}
	sp.marks = append(sp.marks, mark{seq: seq, gen: sp.lastGen, msg: m})
}

// start recreates the consumer at the start sequence and starts the
// fetching goroutine.
func (sp *jsSplit) start(ctx context.Context) error {
	log := sp.cfg.Logger.With("connector", "nats", "stream", sp.cfg.Stream, "durable", sp.cfg.Durable)
	var startSeq uint64
	switch {
	case sp.hasSeek:
		startSeq = sp.seek + 1
	default:
		if c, err := sp.js.Consumer(ctx, sp.cfg.Stream, sp.cfg.Durable); err == nil {
			info, err := c.Info(ctx)
			if err != nil {
				return fmt.Errorf("nats source: consumer %q: %w", sp.cfg.Durable, err)
			}
			if info.AckFloor.Stream > 0 {
				startSeq = info.AckFloor.Stream + 1
			}
		} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("nats source: consumer %q: %w", sp.cfg.Durable, err)
		}
		if startSeq == 0 {
			st, err := sp.js.Stream(ctx, sp.cfg.Stream)
			if err != nil {
				return fmt.Errorf("nats source: stream %q: %w", sp.cfg.Stream, err)
			}
			info, err := st.Info(ctx)
			if err != nil {
				return fmt.Errorf("nats source: stream %q: %w", sp.cfg.Stream, err)
			}
			startSeq = max(info.State.FirstSeq, 1)
			if sp.cfg.Start == StartNew {
				startSeq = info.State.LastSeq + 1
			}
		}
		sp.read = startSeq - 1
		sp.pos.Store(startSeq - 1)
	}
	sp.recv.Store(startSeq - 1)
	sp.committed.Store(startSeq - 1)
	it, err := sp.consume(ctx, startSeq)
	if err != nil {
		return err
	}
	log.Info("nats: consuming", "from_sequence", startSeq)
	go sp.fetch(it)
	return nil
}

// consume (re)creates the durable consumer to deliver from stream
// sequence startSeq and starts pulling from it.
func (sp *jsSplit) consume(ctx context.Context, startSeq uint64) (jetstream.MessagesContext, error) {
	if err := sp.js.DeleteConsumer(ctx, sp.cfg.Stream, sp.cfg.Durable); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("nats source: recreate consumer %q: %w", sp.cfg.Durable, err)
	}
	cc := jetstream.ConsumerConfig{
		Durable:       sp.cfg.Durable,
		Description:   "sluice pipeline source (recreated at its checkpoint position on every start)",
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   startSeq,
		AckPolicy:     jetstream.AckAllPolicy,
		AckWait:       sp.cfg.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: sp.cfg.MaxAckPending,
		FilterSubject: sp.cfg.Subject,
	}
	cons, err := sp.js.CreateConsumer(ctx, sp.cfg.Stream, cc)
	if err != nil {
		return nil, fmt.Errorf("nats source: create consumer %q on stream %q: %w", sp.cfg.Durable, sp.cfg.Stream, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(sp.cfg.Batch))
	if err != nil {
		return nil, fmt.Errorf("nats source: consume %q: %w", sp.cfg.Durable, err)
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	select {
	case <-sp.stop:
		// Close came while the consumer was being created, and has
		// stopped the iterator it found: this one must not outlive it.
		it.Stop()
		return nil, errClosed
	default:
	}
	sp.iter = it
	sp.gen.Add(1)
	return it, nil
}

// errClosed is consume's answer once Close has begun.
var errClosed = errors.New("nats source: closed")

// reset recreates the consumer after a lost delivery, to deliver again,
// in stream order, from just after the last acknowledged message: those
// already passed on are skipped, and nothing is passed on out of order.
// It retries with backoff while the server is away.
func (sp *jsSplit) reset(old jetstream.MessagesContext) (jetstream.MessagesContext, bool) {
	old.Stop()
	backoff := 100 * time.Millisecond
	for {
		select {
		case <-sp.stop:
			return nil, false
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		it, err := sp.consume(ctx, sp.committed.Load()+1)
		cancel()
		if err == nil {
			return it, true
		}
		if errors.Is(err, errClosed) {
			return nil, false
		}
		sp.meter.Errors.Add(1)
		sp.cfg.Logger.Warn("nats: cannot recreate the consumer yet; retrying", "stream", sp.cfg.Stream, "durable", sp.cfg.Durable, "err", err)
		select {
		case <-time.After(backoff):
		case <-sp.stop:
			return nil, false
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// fetch moves messages from the consumer to Read, skipping redeliveries
// of messages already passed on.
//
// First deliveries come in stream order, but one can be lost on its way
// (the connection broke after the server sent it): the server sends it
// again only after the ack wait, behind later messages. The consumer
// sequence numbers every delivery, so a gap in it reveals the loss; the
// consumer is then recreated from the last acknowledged message, which
// restores the order.
func (sp *jsSplit) fetch(it jetstream.MessagesContext) {
	defer close(sp.done)
	var lastCons uint64
	for {
		msg, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				select {
				case <-sp.stop:
					return
				default:
				}
			}
			// The iterator survives disconnections (heartbeats, new pull
			// requests); anything else: start over.
			sp.meter.Errors.Add(1)
			sp.cfg.Logger.Warn("nats: consumer interrupted; recreating it", "stream", sp.cfg.Stream, "durable", sp.cfg.Durable, "err", err)
			var ok bool
			if it, ok = sp.reset(it); !ok {
				return
			}
			lastCons = 0
			continue
		}
		md, err := msg.Metadata()
		if err != nil {
			sp.meter.Errors.Add(1)
			continue
		}
		if md.Sequence.Consumer != lastCons+1 {
			sp.meter.Errors.Add(1)
			sp.cfg.Logger.Warn("nats: a delivery was lost (consumer sequence gap); recreating the consumer from the last acknowledged message",
				"stream", sp.cfg.Stream, "durable", sp.cfg.Durable, "expected", lastCons+1, "got", md.Sequence.Consumer)
			var ok bool
			if it, ok = sp.reset(it); !ok {
				return
			}
			lastCons = 0
			continue
		}
		lastCons = md.Sequence.Consumer
		seq := md.Sequence.Stream
		if seq <= sp.recv.Load() {
			// A redelivery (ack wait expired before the checkpoint
			// completed) of a message already read: skip it. If its
			// checkpoint completed, acknowledging it again is harmless.
			sp.meter.Dropped.Add(1)
			if seq <= sp.covered.Load() {
				_ = msg.Ack()
				continue
			}
			gen := sp.gen.Load()
			sp.mu.Lock()
			if sp.skipped.msg == nil || sp.skipped.gen != gen || seq > sp.skipped.seq {
				sp.skipped = mark{seq: seq, gen: gen, msg: msg}
			}
			sp.mu.Unlock()
			continue
		}
		sp.recv.Store(seq)
		sp.meter.Lag.Store(int64(md.NumPending))
		select {
		case sp.in <- jsIn{gen: sp.gen.Load(), msg: msg, seq: seq, pending: md.NumPending, at: md.Timestamp}:
		case <-sp.stop:
			return
		}
	}
}

// Read returns the messages fetched so far, waiting up to 100 ms for the
// first.
func (sp *jsSplit) Read(ctx context.Context, dst []connector.Message) (int, error) {
	if !sp.started {
		if err := sp.start(ctx); err != nil {
			return 0, err
		}
		sp.started = true
	}
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
		return 0, sp.loadErr()
	case <-ctx.Done():
		return 0, nil
	case <-sp.done:
		return 0, sp.loadErr()
	}
fill:
	for n < len(dst) {
		select {
		case m := <-sp.in:
			sp.fill(&dst[n], m)
			n++
		default:
			break fill
		}
	}
	sp.pos.Store(sp.read)
	if !sp.cfg.AckOnCheckpoint {
		// Acknowledged as read: a crash loses what the pipeline held.
		if err := sp.lastMsg.Ack(); err != nil {
			sp.meter.Errors.Add(1)
		} else {
			sp.committed.Store(sp.read)
		}
	}
	return n, nil
}

func (sp *jsSplit) loadErr() error {
	if e := sp.err.Load(); e != nil {
		return *e
	}
	return nil
}

func (sp *jsSplit) fill(d *connector.Message, m jsIn) {
	raw := m.msg
	sp.read, sp.lastMsg, sp.lastGen = m.seq, raw, m.gen
	data := raw.Data()
	var hs []connector.Header
	for k, vs := range raw.Headers() {
		for _, v := range vs {
			hs = append(hs, connector.Header{Key: k, Value: []byte(v)})
		}
	}
	*d = connector.Message{
		Key:       []byte(raw.Subject()),
		Value:     data,
		Headers:   hs,
		Timestamp: m.at.UnixMilli(),
		Origin:    sp.cfg.Stream,
		Offset:    int64(m.seq),
	}
	sp.meter.Records.Add(1)
	sp.meter.Bytes.Add(int64(len(data)))
}

// CommitPosition acknowledges (ack-all, confirmed by the server) every
// message up to pos: the checkpoint covering them has completed.
func (sp *jsSplit) CommitPosition(ctx context.Context, pos []byte) error {
	if len(pos) != 8 {
		return fmt.Errorf("nats source: bad position %x", pos)
	}
	seq := binary.BigEndian.Uint64(pos)
	raise(&sp.covered, seq)
	sp.mu.Lock()
	var m jetstream.Msg
	var mseq uint64
	i := 0
	gen := sp.gen.Load()
	for i < len(sp.marks) && sp.marks[i].seq <= seq {
		if sp.marks[i].gen == gen {
			m, mseq = sp.marks[i].msg, sp.marks[i].seq
		}
		i++
	}
	sp.marks = append(sp.marks[:0], sp.marks[i:]...)
	if k := sp.skipped; k.msg != nil && k.gen == gen && k.seq <= seq && k.seq > mseq {
		m, mseq = k.msg, k.seq // redelivered to this incarnation, read before it
	}
	sp.mu.Unlock()
	if m == nil {
		// Nothing read from this consumer incarnation up to pos (it was
		// recreated at or after it): nothing to acknowledge.
		return nil
	}
	// A message already acknowledged (the last one read, covered again by
	// a checkpoint taken while nothing new arrived) needs nothing more.
	if err := m.DoubleAck(ctx); err != nil && !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
		sp.meter.Errors.Add(1)
		return fmt.Errorf("nats source: acknowledge up to stream sequence %d: %w", mseq, err)
	}
	sp.committed.Store(mseq)
	return nil
}

// raise sets v to n unless it holds more already.
func raise(v *atomic.Uint64, n uint64) {
	for c := v.Load(); c < n; c = v.Load() {
		if v.CompareAndSwap(c, n) {
			return
		}
	}
}

// Lag is the consumer's pending count as of the last message fetched.
func (sp *jsSplit) Lag() int64 { return sp.meter.Lag.Load() }

// Close stops fetching and closes the connection; unacknowledged
// messages stay with the consumer.
func (sp *jsSplit) Close() error {
	sp.closeOne.Do(func() {
		close(sp.stop)
		sp.mu.Lock()
		it := sp.iter
		sp.mu.Unlock()
		if it != nil {
			it.Stop()
			<-sp.done
		}
		sp.nc.Close()
	})
	return nil
}

// coreSplit reads a core NATS subscription: at-most-once.
type coreSplit struct {
	cfg   SourceConfig
	meter *connector.Meter
	nc    *nats.Conn
	sub   *nats.Subscription
	in    chan *nats.Msg
	stop  chan struct{}
	once  sync.Once
	seq   uint64
}

func newCoreSplit(nc *nats.Conn, cfg SourceConfig, m *connector.Meter) (*coreSplit, error) {
	sp := &coreSplit{cfg: cfg, meter: m, nc: nc, in: make(chan *nats.Msg, min(cfg.MaxInFlight, 4096)), stop: make(chan struct{})}
	handle := func(msg *nats.Msg) {
		select {
		case sp.in <- msg:
		case <-sp.stop:
		}
	}
	var err error
	if cfg.Queue != "" {
		sp.sub, err = nc.QueueSubscribe(cfg.Subject, cfg.Queue, handle)
	} else {
		sp.sub, err = nc.Subscribe(cfg.Subject, handle)
	}
	if err != nil {
		return nil, fmt.Errorf("nats source: subscribe %q: %w", cfg.Subject, err)
	}
	// While the pipeline is behind, messages wait in the subscription
	// (up to MaxInFlight, 64 MiB); beyond, the client drops them (slow
	// consumer), which Dropped counts.
	if err := sp.sub.SetPendingLimits(cfg.MaxInFlight, 64<<20); err != nil {
		return nil, fmt.Errorf("nats source: %w", err)
	}
	// The subscription is in place at the server once this returns.
	if err := nc.FlushTimeout(DefaultConnectTimeout); err != nil {
		return nil, fmt.Errorf("nats source: subscribe %q: %w", cfg.Subject, err)
	}
	return sp, nil
}

func (sp *coreSplit) ID() string { return "nats/" + sp.cfg.Subject }

// Read returns buffered messages, waiting up to 100 ms for the first.
func (sp *coreSplit) Read(ctx context.Context, dst []connector.Message) (int, error) {
	if d, err := sp.sub.Dropped(); err == nil {
		sp.meter.Dropped.Store(int64(d))
	}
	if len(dst) == 0 {
		return 0, nil
	}
	timer := time.NewTimer(100 * time.Millisecond)
	defer timer.Stop()
	n := 0
	select {
	case m := <-sp.in:
		sp.fill(&dst[0], m)
		n = 1
	case <-timer.C:
		return 0, nil
	case <-ctx.Done():
		return 0, nil
	}
fill:
	for n < len(dst) {
		select {
		case m := <-sp.in:
			sp.fill(&dst[n], m)
			n++
		default:
			break fill
		}
	}
	return n, nil
}

func (sp *coreSplit) fill(d *connector.Message, m *nats.Msg) {
	sp.seq++
	var hs []connector.Header
	for k, vs := range m.Header {
		for _, v := range vs {
			hs = append(hs, connector.Header{Key: k, Value: []byte(v)})
		}
	}
	*d = connector.Message{Key: []byte(m.Subject), Value: m.Data, Headers: hs, Timestamp: time.Now().UnixMilli(), Origin: m.Subject, Offset: int64(sp.seq)}
	sp.meter.Records.Add(1)
	sp.meter.Bytes.Add(int64(len(m.Data)))
}

// Position is empty: core NATS cannot replay.
func (sp *coreSplit) Position() []byte { return nil }

// Seek ignores the position: core NATS cannot replay.
func (sp *coreSplit) Seek([]byte) error { return nil }

// Close unsubscribes and closes the connection.
func (sp *coreSplit) Close() error {
	sp.once.Do(func() {
		close(sp.stop)
		_ = sp.sub.Unsubscribe()
		sp.nc.Close()
	})
	return nil
}
