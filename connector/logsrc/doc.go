// Package logsrc connects pipelines to topics of Sluice's embedded log
// (package logstore): a Source that reads a topic with one split per
// partition, and a Sink that appends to a topic.
//
// # Source
//
// Each partition is one split. A split starts at the earliest offset still
// stored, at the end of the partition (latest) or at a given offset, and
// remembers the next offset to deliver: that offset is the split's Position
// (8 bytes, big-endian), saved in checkpoints and restored by Seek, so that
// a restored job reads each record exactly once after its checkpoint.
//
// Under ReadCommitted (the default) a split delivers only committed data:
// records of aborted transactions and control batches (transaction markers)
// are skipped, and nothing at or above the partition's last stable offset is
// read until the transaction holding it ends. ReadUncommitted delivers every
// data record up to the high watermark.
//
// A bounded source reads up to the end offsets present when Splits is
// called (the last stable offsets under ReadCommitted, the high watermarks
// otherwise) and then ends (io.EOF); an unbounded source waits for new data
// and returns (0, nil) at least every PollInterval so that the runtime can
// mark it idle.
//
// # Sink
//
// The sink appends each Write as one batch per partition it touches, the
// partitions written in parallel so that they share the log's group commit.
// A record with a key goes to the partition Kafka's default partitioner
// picks (record.KafkaPartition), so that Sluice and Kafka clients agree on
// where a key lives; a record without a key goes to the partitions in round
// robin, one partition per Write. An append returns once durable under the
// topic's fsync policy, so when Write returns its records are in the log:
// the sink is at-least-once, and OnBarrier has nothing left to flush.
//
// With SinkConfig.Transactional the sink writes inside the log's own
// transactions, two-phase: a transaction per subtask and checkpoint,
// pre-committed at the barrier and committed (commit markers written) by
// CommitCheckpoint once the checkpoint completes; read_committed readers
// never see uncommitted output. A restarted sink fences and aborts what
// its earlier incarnation left open, after recovery has committed what the
// restored checkpoint pre-committed (CommitRecovered). txn.go explains the
// protocol.
package logsrc
