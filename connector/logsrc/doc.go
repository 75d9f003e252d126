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
// transactions and its writer implements checkpoint.TwoPhaseCommitter, the
// protocol the stream runtime drives under exactly-once checkpointing: a
// transaction per subtask and checkpoint, its batches durable as written
// but invisible to read_committed readers; PreCommit at the barrier files
// it and returns its handle (EncodeTxn); Commit writes its commit markers
// once the checkpoint completes. On a restart Recover, called after Open
// and before the first record, commits what the restored checkpoint had
// pre-committed and then fences the earlier incarnation's transactional
// ids (new epochs, abort markers), which aborts whatever it left open and
// fences its zombies. txn.go explains the protocol.
package logsrc
