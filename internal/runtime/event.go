package runtime

import (
	"math"
	"time"
)

// Kind says what a batch that travels through a queue carries. Control
// events travel in the same queues as data, in order, so that an operator
// sees them exactly between the records that preceded and followed them.
type Kind uint8

const (
	// KindData is a batch of records.
	KindData Kind = iota
	// KindWatermark promises that no record with an event time at or before
	// the watermark will follow on this channel.
	KindWatermark
	// KindIdle says that the channel will not produce records or watermarks
	// for a while and must not hold back the combined watermark. Any later
	// record or watermark on the channel makes it active again.
	KindIdle
	// KindBarrier is a checkpoint barrier. Operators with several input
	// channels align barriers (see Aligner) before they snapshot their state
	// and forward the barrier.
	KindBarrier
	// KindEnd is the last event on a channel: its producer has finished.
	KindEnd
	// KindMarker is a latency marker: a record-less event a source emits
	// now and then (its argument is the Clock reading when it was made)
	// that travels with the data, so that every operator it passes can
	// report how long after its creation it arrived.
	KindMarker
)

// String returns the kind's name for error messages and logs.
func (k Kind) String() string {
	switch k {
	case KindData:
		return "data"
	case KindWatermark:
		return "watermark"
	case KindIdle:
		return "idle"
	case KindBarrier:
		return "barrier"
	case KindEnd:
		return "end"
	case KindMarker:
		return "marker"
	}
	return "unknown"
}

const (
	// MinWatermark is the watermark before any has been received.
	MinWatermark int64 = math.MinInt64
	// MaxWatermark is the final watermark of a bounded input: it fires every
	// remaining event-time window and timer.
	MaxWatermark int64 = math.MaxInt64
)

// NowMillis returns the wall clock in milliseconds since the Unix epoch,
// the unit of event and processing time throughout Sluice.
func NowMillis() int64 { return time.Now().UnixMilli() }
