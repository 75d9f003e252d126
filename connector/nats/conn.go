package nats

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sluicehq/sluice/connector"
)

// Defaults shared by sources and sinks.
const (
	// DefaultReconnectWait is the first reconnection delay; nats.go adds
	// jitter and retries forever.
	DefaultReconnectWait = 250 * time.Millisecond
	// DefaultConnectTimeout bounds one connection attempt.
	DefaultConnectTimeout = 5 * time.Second
)

// ConnConfig is how a source or sink connects.
type ConnConfig struct {
	// URL is the server list, nats://HOST:4222 (comma-separated for
	// several).
	URL string
	// Name names the connection at the server (monitoring).
	Name string
	// Username/Password or Token authenticate, when set.
	Username, Password, Token string
	// Logger receives connection events; nil means slog.Default().
	Logger *slog.Logger
}

// connect opens a connection that reconnects forever with backoff and
// logs every loss and recovery. The first connection is retried until
// ctx ends.
func connect(ctx context.Context, c ConnConfig, m *connector.Meter, role string) (*nats.Conn, error) {
	log := c.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("connector", "nats", "role", role, "url", c.URL)
	connected := make(chan struct{})
	var once sync.Once
	opts := []nats.Option{
		nats.Name(c.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(DefaultReconnectWait),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.CustomReconnectDelay(func(attempts int) time.Duration {
			// Exponential backoff from 250 ms, capped at 5 s.
			d := DefaultReconnectWait << min(attempts, 5)
			return min(d, 5*time.Second)
		}),
		nats.Timeout(DefaultConnectTimeout),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err == nil {
				return // closed on purpose
			}
			m.Errors.Add(1)
			log.Warn("nats: connection to the server lost; reconnecting with backoff", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			m.Reconnects.Add(1)
			log.Info("nats: reconnected to the server", "server", nc.ConnectedUrlRedacted())
		}),
		nats.ConnectHandler(func(*nats.Conn) { once.Do(func() { close(connected) }) }),
	}
	if c.Username != "" {
		opts = append(opts, nats.UserInfo(c.Username, c.Password))
	}
	if c.Token != "" {
		opts = append(opts, nats.Token(c.Token))
	}
	nc, err := nats.Connect(c.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("nats %s: connect to %s: %w", role, c.URL, err)
	}
	// RetryOnFailedConnect returns at once: wait for the first connection.
	t := time.NewTicker(DefaultConnectTimeout)
	defer t.Stop()
	for !nc.IsConnected() {
		select {
		case <-ctx.Done():
			nc.Close()
			return nil, fmt.Errorf("nats %s: connect to %s: %w", role, c.URL, ctx.Err())
		case <-t.C:
			log.Warn("nats: server not reachable yet; still trying")
		case <-connected:
		}
	}
	return nc, nil
}
