// Package logbench measures the embedded log in-process: append throughput
// (records/s, MB/s) and append-acknowledgement latency (p50/p99) for a
// record size, records per batch, partition count, producer concurrency and
// fsync policy, read-back throughput, and, for comparison, the disk's own
// limits (sequential write with fdatasync, fsync latency) measured the same
// way. `sluice bench log` prints its results; docs/benchmarks-log.md records
// figures taken with it.
package logbench
