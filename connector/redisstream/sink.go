package redisstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/stream"
)

// SinkConfig configures a Sink.
type SinkConfig struct {
	// Options are the client's (Addr, Password, DB, TLS, timeouts).
	Options redis.Options
	// Stream is the stream appended to (created by the first XADD).
	Stream string
	// MaxLen caps the stream's length (XADD MAXLEN); 0 means no cap.
	MaxLen int64
	// Exact trims to exactly MaxLen (MAXLEN =) instead of Redis's
	// cheaper approximate trimming (MAXLEN ~, whole macro nodes), which
	// is the default.
	Exact bool
	// ValueField is the field that holds each message's value. Default
	// "value"; a message's key, when it has one, goes in field "key".
	ValueField string
	// Logger receives outages and reconnections. Default slog.Default().
	Logger *slog.Logger
}

// Sink appends messages to a Redis stream with XADD, one pipelined round
// trip per batch; it implements stream.Sink[connector.Message].
type Sink struct {
	cfg   SinkConfig
	meter *connector.Meter
}

var _ stream.Sink[connector.Message] = (*Sink)(nil)

// NewSink validates cfg and returns a sink. It does not connect.
func NewSink(cfg SinkConfig) (*Sink, error) {
	if cfg.Options.Addr == "" {
		cfg.Options.Addr = "127.0.0.1:6379"
	}
	if cfg.Stream == "" {
		return nil, errors.New("redis sink: no stream")
	}
	if cfg.MaxLen < 0 {
		return nil, fmt.Errorf("redis sink %s: negative maxlen", cfg.Stream)
	}
	if cfg.ValueField == "" {
		cfg.ValueField = "value"
	}
	if cfg.ValueField == "key" {
		return nil, fmt.Errorf("redis sink %s: value field \"key\" is the key's field; choose another name", cfg.Stream)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Sink{cfg: cfg, meter: connector.NewMeter()}, nil
}

// Meter implements connector.Metered: entries and bytes
// appended, errors and reconnections.
func (s *Sink) Meter() *connector.Meter { return s.meter }

// Open implements stream.Sink.
func (s *Sink) Open(context.Context, stream.SubtaskInfo) (stream.SinkWriter[connector.Message], error) {
	opts := s.cfg.Options
	if opts.DialTimeout == 0 {
		opts.DialTimeout = 2 * time.Second
	}
	return &writer{sink: s, cli: redis.NewClient(&opts)}, nil
}

type writer struct {
	sink *Sink
	cli  *redis.Client
	down bool
}

// Write implements stream.SinkWriter: the batch's XADDs go in one
// pipeline; Write returns once Redis answered every one, so a checkpoint
// barrier after it covers only appended entries (at-least-once). When the
// server does not answer, the entries not known to be appended are sent
// again with backoff until it does (an entry whose answer was lost may be
// appended twice).
func (w *writer) Write(ctx context.Context, msgs []connector.Message) error {
	cfg := &w.sink.cfg
	todo := msgs
	var backoff time.Duration
	for len(todo) > 0 {
		cmds, _ := w.cli.Pipelined(ctx, func(p redis.Pipeliner) error {
			// XADD stream [MAXLEN ~|= n] * [key K] field V, built once
			// per batch into one argument array.
			head := []any{"xadd", cfg.Stream}
			if cfg.MaxLen > 0 {
				op := "~"
				if cfg.Exact {
					op = "="
				}
				head = append(head, "maxlen", op, cfg.MaxLen)
			}
			head = append(head, "*")
			per := len(head) + 4
			args := make([]any, 0, per*len(todo))
			for i := range todo {
				m := &todo[i]
				start := len(args)
				args = append(args, head...)
				if m.Key != nil {
					args = append(args, "key", m.Key)
				}
				args = append(args, cfg.ValueField, m.Value)
				p.Do(ctx, args[start:len(args):len(args)]...)
			}
			return nil
		})
		var failed []connector.Message
		var firstErr error
		for i, c := range cmds {
			if err := c.Err(); err != nil {
				if firstErr == nil {
					firstErr = err
				}
				failed = append(failed, todo[i])
				continue
			}
			w.sink.meter.Records.Add(1)
			w.sink.meter.Bytes.Add(int64(len(todo[i].Value)))
		}
		if len(cmds) < len(todo) { // the pipeline did not even start
			failed = todo[len(cmds):]
		}
		if firstErr == nil && len(failed) == 0 {
			if w.down {
				w.down = false
				w.sink.meter.Reconnects.Add(1)
				cfg.Logger.Info("redis sink: reconnected", "addr", cfg.Options.Addr, "stream", cfg.Stream)
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		w.sink.meter.Errors.Add(1)
		if firstErr != nil && permanent(firstErr) {
			return fmt.Errorf("redis sink %s: XADD: %w", cfg.Stream, firstErr)
		}
		var re redis.Error
		if errors.As(firstErr, &re) {
			return fmt.Errorf("redis sink %s: XADD: %w", cfg.Stream, firstErr)
		}
		if !w.down {
			w.down = true
			cfg.Logger.Warn("redis sink: server unreachable; retrying with backoff (entries whose answer was lost may be appended twice)",
				"addr", cfg.Options.Addr, "stream", cfg.Stream, "err", firstErr)
		}
		todo = failed
		backoff = nextBackoff(backoff)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	return nil
}

// Close implements stream.SinkWriter.
func (w *writer) Close(context.Context) error { return w.cli.Close() }
