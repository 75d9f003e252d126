// Package kbench measures the Kafka listener end to end: a franz-go producer
// writes records (optionally keyed, for a number of records or a time)
// over loopback with acks=-1, then a franz-go consumer reads them back, and
// the run reports records/s, MB/s and the produce latency distribution. It
// serves `sluice bench kafka` and the package benchmark; StartServer,
// CreateTopic and Produce serve other benchmarks (logstore/compactbench).
package kbench
