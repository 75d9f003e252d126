package rabbitmq

import (
	"fmt"
	"net/url"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Reconnection backoff: doubling from minBackoff up to maxBackoff.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

func nextBackoff(d time.Duration) time.Duration {
	if d < minBackoff {
		return minBackoff
	}
	return min(2*d, maxBackoff)
}

// redact returns the URL without its password, for logs and errors.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable url)"
	}
	return u.Redacted()
}

// CheckURL reports whether raw is an AMQP URL the client accepts.
func CheckURL(raw string) error {
	_, err := amqp.ParseURI(raw)
	return err
}

// CheckRoutingKey reports whether k can be a routing key: at most 255
// bytes (an AMQP short string).
func CheckRoutingKey(k string) error {
	if len(k) > maxIDLen {
		return fmt.Errorf("routing key of %d bytes: at most %d", len(k), maxIDLen)
	}
	return nil
}
