// Package logstore is Sluice's embedded durable log: topics of partitions,
// each an append-only sequence of Kafka v2 record batches with contiguous
// offsets, stored on the local disk.
//
// # Layout
//
// A data directory holds a lock file (LOCK), a format-version file (FORMAT)
// and one directory per topic under topics/. A topic directory holds its
// configuration (topic.json) and one directory per partition, named by the
// partition number. A partition directory holds segments: the log file
// <base offset, 20 digits>.log with batches exactly as producers sent them
// (only the base offset, and with LogAppendTime the timestamp, assigned by
// the log), a sparse offset index (.index), a time index (.timeindex), a
// recovery point (recovery-point) and the producer-state snapshots.
// docs/log.md describes the bytes.
//
// # Durability
//
// Append returns only once the batch is durable under the topic's fsync
// policy; FsyncAlways shares one fsync among concurrent appends (group
// commit, see commit.go). Readers see only acknowledged data: the high
// watermark advances after the data is durable under the policy.
//
// # Recovery
//
// Open verifies the CRC-32C of every batch written after the last recovery
// point, truncates a torn tail (logging how much was cut), refuses to open a
// partition with corruption followed by valid data (CorruptionError), and
// rebuilds missing or inconsistent indexes.
//
// # Retention, metrics, faults
//
// Retention by age and size deletes whole segments from the oldest and moves
// the log start offset (EnforceRetention, also run in the background).
// Options.Registerer exports sluice_log_* Prometheus metrics. All file
// access goes through the FS interface so that tests can inject faults (a
// full disk, I/O errors): see the disk-full and crash tests.
//
// The consumer-offset store, producer-id allocation and the producer state
// behind idempotent and transactional appends live in offsets.go,
// producerid.go, producers.go and txn.go; they use this package's Append and
// Read like any client, and hook into the append path through the producer
// state (checkAppend before offsets are assigned, onAppend after).
package logstore
