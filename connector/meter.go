package connector

import "sync/atomic"

// Meter counts what a messaging connector (MQTT, NATS, ...) moved, for
// metrics. Its fields are safe for concurrent use; the pipeline reads
// them on every scrape.
type Meter struct {
	// Records and Bytes count the messages (and their payload bytes) read
	// by a source or written, and acknowledged where the system
	// acknowledges, by a sink.
	Records atomic.Int64
	Bytes   atomic.Int64
	// Errors counts failed operations: publishes that failed or timed
	// out, acknowledgements that did not reach the server, connection
	// losses.
	Errors atomic.Int64
	// Reconnects counts connections re-established after a loss.
	Reconnects atomic.Int64
	// Dropped counts messages a source skipped or lost: redeliveries of
	// messages already delivered, or messages the client dropped because
	// the pipeline did not keep up (core NATS slow consumer).
	Dropped atomic.Int64
	// Lag is how many messages the server still holds for the source
	// (JetStream: the consumer's pending count), or -1 when the system
	// has no such figure.
	Lag atomic.Int64
}

// NewMeter returns a Meter whose lag is unknown (-1).
func NewMeter() *Meter {
	m := &Meter{}
	m.Lag.Store(-1)
	return m
}

// Metered is implemented by sources and sinks that keep a Meter.
type Metered interface {
	Meter() *Meter
}
