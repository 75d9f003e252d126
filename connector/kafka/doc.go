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
// With Transactional set, the writer implements
// checkpoint.TwoPhaseCommitter, the one commit protocol the stream runtime
// drives: a transaction begins at the first write after a pre-commit (on
// a client whose transactional id was initialised in the background
// while the previous transaction ran), PreCommit flushes it at the barrier and returns its handle (Txn:
// transactional id, producer id and epoch), and Commit ends it once the
// checkpoint is complete. Each transaction has a transactional id of its
// own, "<TransactionalID>-<subtask>-<n>", and its own client, so a handle
// names exactly one transaction. After a crash between a checkpoint's
// completion and its commit, Recover commits the restored handles by
// sending EndTxn with their producer ids and epochs (kmsg, through a kgo
// client's Request, which finds the transaction coordinator with
// FindCoordinator), as Flink's Kafka sink resumes a transaction; only then
// does it initialise the ids the crashed run used after the checkpoint,
// which aborts what they left open and fences their zombies. A transaction
// the coordinator aborted first (its TransactionTimeout expired: keep it
// well above the checkpoint interval plus the restart time) is lost:
// logged as an error with its checkpoint id, counted in
// Sink.LostTransactions. txn.go documents which Kafka answer means what.
// Without checkpoints (no two-phase commit) a subtask writes one
// transaction, committed when its input ends.
//
// # Security
//
// SourceConfig.ClientOptions and SinkConfig.ClientOptions are added to
// every client the connector makes: each split's consumer, the admin
// clients that list offsets and commit to the group, each transaction's
// producer and the clients recovery sends EndTxn and InitProducerId
// through. TLS (kgo.DialTLSConfig) and SASL (kgo.SASL with franz-go's
// pkg/sasl/scram or pkg/sasl/plain) given there therefore apply to every
// connection; package pipeline builds them from a spec's
// security_protocol, sasl and tls keys.
package kafka
