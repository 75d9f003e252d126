package nats

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/stream"
)

// Defaults of SinkConfig.
const (
	DefaultSinkMaxInFlight = 4096
	DefaultAckTimeout      = 5 * time.Second
	DefaultPublishRetries  = 20
)

// SinkConfig configures a Sink.
type SinkConfig struct {
	ConnConfig
	// JetStream publishes with acknowledgements (and message ids); without
	// it the sink publishes on core NATS, at-most-once.
	JetStream bool
	// Subject is where a message without a key goes; a message's key,
	// when set, is its subject (the pipeline renders the spec's subject
	// template into the key).
	Subject string
	// MaxInFlight bounds the publishes not yet acknowledged (JetStream;
	// 0: DefaultSinkMaxInFlight).
	MaxInFlight int
	// AckTimeout bounds the wait for one publish acknowledgement (0:
	// DefaultAckTimeout); a publish not acknowledged in time is sent
	// again with the same message id, up to Retries times (0:
	// DefaultPublishRetries), backing off up to 5 s between tries.
	AckTimeout time.Duration
	Retries    int
	// ExactlyOnce makes the writers checkpoint.TwoPhaseCommitters whose
	// message ids continue, after a restore, from the restored
	// checkpoint's count, so that a replay repeats the ids of what was
	// already published (JetStream only).
	ExactlyOnce bool
	// IDPrefix starts every message id; it should name the pipeline and
	// the sink (stable across runs).
	IDPrefix string
}

// Sink publishes messages to NATS: JetStream subjects with publish
// acknowledgements and deduplicating message ids, or core NATS subjects.
type Sink struct {
	cfg   SinkConfig
	meter *connector.Meter
}

// NewSink checks cfg and returns a sink.
func NewSink(cfg SinkConfig) (*Sink, error) {
	if cfg.URL == "" {
		return nil, errors.New("nats sink: url is required (nats://HOST:4222)")
	}
	if cfg.Subject != "" {
		if err := ValidateSubject(cfg.Subject); err != nil {
			return nil, fmt.Errorf("nats sink: %w", err)
		}
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultSinkMaxInFlight
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = DefaultAckTimeout
	}
	if cfg.Retries <= 0 {
		cfg.Retries = DefaultPublishRetries
	}
	if cfg.IDPrefix == "" {
		cfg.IDPrefix = "sluice"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Sink{cfg: cfg, meter: connector.NewMeter()}, nil
}

// MaxSubjectLen is the longest subject the sink publishes to. The server
// refuses a protocol line over its max_control_line (4 KiB by default)
// and closes the connection for good; the line also holds the reply
// subject and the sizes.
const MaxSubjectLen = 3840

// ValidateSubject checks a subject messages are published to: not empty,
// at most MaxSubjectLen bytes, no wildcard, no whitespace, no empty token.
func ValidateSubject(s string) error {
	if s == "" {
		return errors.New("empty subject")
	}
	if len(s) > MaxSubjectLen {
		return fmt.Errorf("subject of %d bytes (%.40q...): at most %d (the server closes the connection on longer protocol lines)", len(s), s, MaxSubjectLen)
	}
	if strings.ContainsAny(s, "*> \t\r\n") {
		return fmt.Errorf("subject %q: wildcards (*, >) and whitespace are not allowed in a published subject", s)
	}
	for _, t := range strings.Split(s, ".") {
		if t == "" {
			return fmt.Errorf("subject %q: empty token", s)
		}
	}
	return nil
}

// Meter returns the sink's counters: records and bytes acknowledged;
// Dropped counts publishes the stream discarded as duplicates.
func (s *Sink) Meter() *connector.Meter { return s.meter }

// Open connects one sink subtask.
func (s *Sink) Open(ctx context.Context, info stream.SubtaskInfo) (stream.SinkWriter[connector.Message], error) {
	cc := s.cfg.ConnConfig
	if cc.Name == "" {
		cc.Name = s.cfg.IDPrefix + "-" + strconv.Itoa(info.Index)
	}
	nc, err := connect(ctx, cc, s.meter, "sink")
	if err != nil {
		return nil, err
	}
	if !s.cfg.JetStream {
		return &coreWriter{s: s, nc: nc}, nil
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(s.cfg.MaxInFlight+1), jetstream.WithPublishAsyncTimeout(s.cfg.AckTimeout))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats sink: %w", err)
	}
	w := &jsWriter{s: s, nc: nc, js: js, subtask: info.Index, base: newBase()}
	if s.cfg.Subject != "" {
		w.checkStream(ctx, s.cfg.Subject)
	}
	if s.cfg.ExactlyOnce {
		return &jsWriter2PC{jsWriter: w}, nil
	}
	return w, nil
}

func newBase() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type pub struct {
	fut   jetstream.PubAckFuture
	msg   *nats.Msg
	tries int
}

// jsWriter publishes asynchronously with a message id per record:
// IDPrefix.base.subtask.seq.hash, where seq counts the subtask's records
// since base began and hash is of the record's key and value.
type jsWriter struct {
	s       *Sink
	nc      *nats.Conn
	js      jetstream.JetStream
	subtask int
	base    string
	seq     uint64
	pending []pub
	head    int
	backoff time.Duration
}

// checkStream logs when no stream captures subject, or when its
// duplicate window is short.
func (w *jsWriter) checkStream(ctx context.Context, subject string) {
	log := w.s.cfg.Logger.With("connector", "nats", "subject", subject)
	name, err := w.js.StreamNameBySubject(ctx, subject)
	if err != nil {
		log.Warn("nats sink: no JetStream stream captures the subject yet; publishes fail until one does", "err", err)
		return
	}
	st, err := w.js.Stream(ctx, name)
	if err != nil {
		return
	}
	info := st.CachedInfo()
	log.Info("nats sink: publishing to stream", "stream", name, "duplicate_window", info.Config.Duplicates)
}

// ID returns the message id of the seq-th record of a subtask.
func ID(prefix, base string, subtask int, seq uint64, key, value []byte) string {
	h := xxhash.New()
	_, _ = h.Write(key)
	_, _ = h.Write([]byte{0})
	_, _ = h.Write(value)
	b := make([]byte, 0, len(prefix)+len(base)+48)
	b = append(b, prefix...)
	b = append(b, '.')
	b = append(b, base...)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(subtask), 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, h.Sum64(), 16)
	return string(b)
}

func (w *jsWriter) Write(ctx context.Context, msgs []connector.Message) error {
	for i := range msgs {
		m := &msgs[i]
		subject := w.s.cfg.Subject
		if len(m.Key) > 0 {
			subject = string(m.Key)
		}
		if err := ValidateSubject(subject); err != nil {
			return fmt.Errorf("nats sink: %w (check the subject template and the fields it uses)", err)
		}
		for len(w.pending)-w.head >= w.s.cfg.MaxInFlight {
			if err := w.settleOldest(ctx); err != nil {
				return err
			}
		}
		w.seq++
		nm := nats.NewMsg(subject)
		nm.Data = append([]byte(nil), m.Value...)
		for _, h := range m.Headers {
			nm.Header.Add(h.Key, string(h.Value))
		}
		nm.Header.Set(jetstream.MsgIDHeader, ID(w.s.cfg.IDPrefix, w.base, w.subtask, w.seq, m.Key, m.Value))
		fut, err := w.js.PublishMsgAsync(nm)
		if err != nil {
			if tooLarge(err) {
				return publishErr(nm, err)
			}
			fut = nil // retried when settled
		}
		w.pending = append(w.pending, pub{fut: fut, msg: nm})
	}
	return nil
}

// settleOldest waits for the oldest publish's acknowledgement. When it
// failed or timed out (the server went away), it backs off once and then
// sends again, with their message ids, every pending publish that failed
// so far: the stream drops a copy it already has.
func (w *jsWriter) settleOldest(ctx context.Context) error {
	p := &w.pending[w.head]
	for {
		var err error
		if p.fut == nil {
			err = errNotSent
		} else {
			select {
			case ack := <-p.fut.Ok():
				if ack.Duplicate {
					w.s.meter.Dropped.Add(1)
				}
				w.s.meter.Records.Add(1)
				w.s.meter.Bytes.Add(int64(len(p.msg.Data)))
				w.backoff = 0
				w.pending[w.head] = pub{}
				w.head++
				if w.head == len(w.pending) {
					w.pending, w.head = w.pending[:0], 0
				}
				return nil
			case err = <-p.fut.Err():
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		p.fut = nil
		p.tries++
		w.s.meter.Errors.Add(1)
		if tooLarge(err) {
			return publishErr(p.msg, err)
		}
		if w.nc.IsClosed() {
			// nats.go reconnects forever; a closed connection was closed
			// by a fatal error of the server, which retries cannot fix.
			return fmt.Errorf("nats sink: publish to %q: the connection was closed (%v): %w", p.msg.Subject, w.nc.LastError(), err)
		}
		if p.tries > w.s.cfg.Retries {
			return fmt.Errorf("nats sink: publish to %q not acknowledged after %d tries: %w (is a stream capturing the subject, and the server up?)", p.msg.Subject, p.tries, err)
		}
		if p.tries == 1 || p.tries%5 == 0 {
			w.s.cfg.Logger.Warn("nats sink: publish not acknowledged; sending the pending publishes again with their message ids", "subject", p.msg.Subject, "try", p.tries, "err", err)
		}
		w.backoff = min(max(2*w.backoff, 100*time.Millisecond), 5*time.Second)
		select {
		case <-time.After(w.backoff):
		case <-ctx.Done():
			return ctx.Err()
		}
		for i := w.head; i < len(w.pending); i++ {
			q := &w.pending[i]
			if q.fut != nil {
				select {
				case <-q.fut.Err():
					q.fut = nil
				default:
					continue // still waiting for its acknowledgement
				}
			}
			fut, perr := w.js.PublishMsgAsync(q.msg)
			if perr == nil {
				q.fut = fut
			} else if tooLarge(perr) {
				return publishErr(q.msg, perr)
			}
		}
	}
}

var errNotSent = errors.New("not sent")

// tooLarge reports an error no retry can fix: the message exceeds the
// server's max_payload or the stream's max_msg_size.
func tooLarge(err error) bool {
	var ae *jetstream.APIError
	return errors.Is(err, nats.ErrMaxPayload) ||
		errors.As(err, &ae) && ae.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum
}

func publishErr(m *nats.Msg, err error) error {
	return fmt.Errorf("nats sink: publish to %q: message of %d bytes: %w", m.Subject, len(m.Data), err)
}

func (w *jsWriter) flush(ctx context.Context) error {
	for w.head < len(w.pending) {
		if err := w.settleOldest(ctx); err != nil {
			return err
		}
	}
	return nil
}

// OnBarrier waits until every publish so far is acknowledged by the
// stream.
func (w *jsWriter) OnBarrier(ctx context.Context, _ uint64) error { return w.flush(ctx) }

func (w *jsWriter) Close(ctx context.Context) error {
	var err error
	if ctx.Err() == nil {
		err = w.flush(ctx)
	}
	w.nc.Close()
	return err
}

// jsWriter2PC adds the checkpoint protocol: the transaction handle of a
// checkpoint records the message-id base and the count of records
// published before its barrier, so that a job restored from it numbers
// the replayed records as the first run did. Publishing is not deferred:
// the records are in the stream when PreCommit returns, and a replay
// repeats their ids, which the stream drops within its duplicate window.
type jsWriter2PC struct{ *jsWriter }

var _ checkpoint.TwoPhaseCommitter = (*jsWriter2PC)(nil)

// OnBarrier is PreCommit's job here.
func (w *jsWriter2PC) OnBarrier(context.Context, uint64) error { return nil }

// PreCommit waits for every acknowledgement and returns the handle
// (base, count).
func (w *jsWriter2PC) PreCommit(ctx context.Context, _ checkpoint.ID) (checkpoint.Transaction, error) {
	if err := w.flush(ctx); err != nil {
		return nil, err
	}
	return EncodeTxn(w.base, w.seq), nil
}

// Commit has nothing to do: the records were published (and
// acknowledged) before the checkpoint completed.
func (w *jsWriter2PC) Commit(context.Context, checkpoint.Transaction) error { return nil }

// Abort has nothing to do: the records after the checkpoint are replayed
// with the same ids.
func (w *jsWriter2PC) Abort(context.Context, checkpoint.Transaction) error { return nil }

// Recover continues the ids of the newest restored handle; without one,
// a fresh base starts (ids never collide with an earlier job's).
func (w *jsWriter2PC) Recover(_ context.Context, txs []checkpoint.Transaction) error {
	found := false
	for _, tx := range txs {
		base, seq, err := DecodeTxn(tx)
		if err != nil {
			return err
		}
		if !found || seq >= w.seq {
			w.base, w.seq, found = base, seq, true
		}
	}
	if !found {
		w.base, w.seq = newBase(), 0
	}
	return nil
}

// EncodeTxn encodes a transaction handle: the count, then the base.
func EncodeTxn(base string, seq uint64) checkpoint.Transaction {
	b := binary.BigEndian.AppendUint64(nil, seq)
	return append(b, base...)
}

// DecodeTxn decodes EncodeTxn's handle.
func DecodeTxn(tx checkpoint.Transaction) (base string, seq uint64, err error) {
	if len(tx) < 8 || len(tx) > 8+64 {
		return "", 0, fmt.Errorf("nats sink: bad transaction handle %x", []byte(tx))
	}
	return string(tx[8:]), binary.BigEndian.Uint64(tx), nil
}

// coreWriter publishes on core NATS: at-most-once.
type coreWriter struct {
	s  *Sink
	nc *nats.Conn
}

func (w *coreWriter) Write(_ context.Context, msgs []connector.Message) error {
	for i := range msgs {
		m := &msgs[i]
		subject := w.s.cfg.Subject
		if len(m.Key) > 0 {
			subject = string(m.Key)
		}
		if err := ValidateSubject(subject); err != nil {
			return fmt.Errorf("nats sink: %w (check the subject template and the fields it uses)", err)
		}
		nm := &nats.Msg{Subject: subject, Data: m.Value}
		if len(m.Headers) > 0 {
			nm.Header = nats.Header{}
			for _, h := range m.Headers {
				nm.Header.Add(h.Key, string(h.Value))
			}
		}
		if err := w.nc.PublishMsg(nm); err != nil {
			w.s.meter.Errors.Add(1)
			return fmt.Errorf("nats sink: publish to %q: %w", subject, err)
		}
		w.s.meter.Records.Add(1)
		w.s.meter.Bytes.Add(int64(len(m.Value)))
	}
	return nil
}

// OnBarrier flushes to the server; a failure (the server is away) is
// logged, not fatal: core NATS is at-most-once.
func (w *coreWriter) OnBarrier(context.Context, uint64) error {
	if err := w.nc.FlushTimeout(w.s.cfg.AckTimeout); err != nil {
		w.s.meter.Errors.Add(1)
		w.s.cfg.Logger.Warn("nats sink: flush to the server failed (core NATS is at-most-once)", "err", err)
	}
	return nil
}

func (w *coreWriter) Close(ctx context.Context) error {
	if ctx.Err() == nil {
		_ = w.nc.FlushTimeout(w.s.cfg.AckTimeout)
	}
	w.nc.Close()
	return nil
}
