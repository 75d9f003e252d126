// Package kbench measures the Kafka listener end to end: a franz-go producer
// writes records (optionally keyed, for a number of records or a time)
// over loopback with acks=-1, then a franz-go consumer reads them back, and
// the run reports records/s, MB/s and the produce latency distribution,
// with the clients connecting over any Kafka security protocol (Security).
// It serves `sluice bench kafka` and `sluice bench auth` (Compare,
// MeasureAuth) and the package benchmark; StartServer (an in-process
// server, optionally with TLS and SASL), CreateTopic and Produce serve
// other benchmarks (logstore/compactbench, internal/latbench).
package kbench
