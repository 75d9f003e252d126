// Package kbench measures the Kafka listener end to end: a franz-go producer
// writes records over loopback with acks=-1, then a franz-go consumer reads
// them back, and the run reports records/s, MB/s and the produce latency
// distribution. It serves `sluice bench kafka` and the package benchmark.
package kbench
