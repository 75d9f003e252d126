// Package latbench measures end-to-end latency as a user sees it: a
// franz-go producer writes records at a fixed rate (open loop: each
// record is scheduled by time and stamped with its intended send time, so
// a stalled producer or broker shows as latency instead of being hidden
// by coordinated omission), and a franz-go consumer reads them; the
// latency of a record is its receive time minus its intended send time.
//
// It measures, in one run and against one broker (an in-process Sluice
// Kafka listener, or any Kafka-compatible server), up to four paths:
// direct (the consumer reads the topic the producer writes); a bare client
// relay in a separate process (`sluice bench relay`: a consumer and a
// producer with nothing between them), the floor of any pipeline that
// reads one topic and writes another; and a pipeline (kafka → map → kafka
// by default, or a user's spec) run by a separate `sluice run` process
// under at-least-once and exactly-once delivery (read_committed
// consumer). Each mode has a warm-up that is excluded. It serves `sluice
// bench latency` and `sluice bench relay`.
package latbench
