// Package kafka connects pipelines to any Kafka-compatible cluster, Sluice's
// own `sluice serve` included, through github.com/twmb/franz-go.
//
// # Source
//
// Source reads one topic with one split per partition, each split its own
// client with the partition assigned directly (no group rebalancing), so
// that a split's Position, the partition's next offset (8 bytes,
// big-endian), is exact and can be restored by Seek. Without a restored
// position a split starts at the earliest or latest offset as of the job's
// start, at a given offset, or, when Group is set, at the group's committed
// offset (falling back to Start where the group has none). Under
// ReadCommitted (the default) only committed transactional data is read.
// A bounded source reads up to the end offsets present when the job starts
// (the last stable offsets under ReadCommitted) and finishes.
//
// Offsets are committed to Group only by CommitPosition, which the
// checkpoint coordinator calls once a checkpoint holding that position is
// complete, and by Source.CommitFinished after a bounded run ended
// successfully: the group's offsets never run ahead of what the job has
// durably processed. Sharing a topic's partitions among several Sluice
// processes through the group's assignment is not done yet.
//
// Splits report their lag (stream.Lagger): the records between their
// position and the partition's end as last fetched (the last stable offset
// under ReadCommitted), for the per-partition lag metric.
//
// # Sink
//
// Sink writes each subtask through one idempotent producer (no duplicates
// from the client's own retries). Write hands records to the client, which
// batches and sends them in the background; OnBarrier and Close flush and
// report the first failure, so a checkpoint covers only acknowledged
// records: at-least-once.
//
// With Transactional set, a subtask writes inside Kafka transactions under
// transactional ids "<TransactionalID>-<subtask>-<slot>": a transaction
// begins at the first write after a barrier, is flushed (pre-committed) at
// the barrier, and is committed by CommitCheckpoint when that checkpoint
// completes, while the next transaction goes on in another slot. Opening
// the sink fences and aborts whatever earlier incarnations of its slots
// left open. docs/connectors.md lists what exactly-once still needs.
package kafka
