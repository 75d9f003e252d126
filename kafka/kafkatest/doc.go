// Package kafkatest starts Sluice's Kafka listener for tests: a log in a
// temporary (or given) data directory served on 127.0.0.1:0, with helpers to
// restart it on the same directory and to make franz-go clients for it.
package kafkatest
