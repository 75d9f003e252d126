// Package rabbitmq connects pipelines to RabbitMQ (AMQP 0-9-1) through
// github.com/rabbitmq/amqp091-go.
//
// # Source
//
// Source consumes one queue with one consumer (one split) and manual
// acknowledgements, at most Prefetch messages unacknowledged (basic.qos).
// Under checkpointing a message is acknowledged only once a checkpoint
// covering it has completed: CommitPosition sends basic.ack with
// multiple=true up to the last delivery tag the checkpoint covers, then a
// synchronous passive queue declare on the same channel, whose answer
// comes after the broker processed the ack (and carries the queue depth,
// the lag metric). Without checkpoints (AckOnHandover) messages are
// acknowledged once handed to the pipeline. Because acknowledgements wait
// for checkpoints, Prefetch must exceed the messages arriving in one
// checkpoint interval, or the consumer idles until each checkpoint.
//
// Delivery tags belong to a channel: when the connection goes away the
// source forgets its tags (the broker requeues every unacknowledged
// message), logs the loss once and reconnects with backoff (100 ms
// doubling to 5 s), logging the reconnection.
//
// What holds. The broker keeps every message that was not acknowledged,
// and the source acknowledges only what a completed checkpoint covers,
// so nothing is lost: at-least-once. Two windows bring messages back that
// a checkpoint already covers: a crash after a checkpoint completed and
// before the broker processed its ack (then the restored checkpoint
// covers messages the broker redelivers), and a reconnection (what was
// handed over on the old channel comes back). With Dedup, the position
// saved in each checkpoint holds the message-ids of the messages handed
// over whose ack was not yet confirmed (at most Prefetch of them, plus
// those orphaned by a reconnection); a redelivered message (redelivered
// flag set) whose message-id is among them is acknowledged and dropped
// instead of handed over again. Given unique message-ids (the Sink's are),
// the pipeline then sees each message once: into a two-phase-commit sink
// the effects are exactly-once. Messages without a message-id are
// at-least-once. The broker requeues unacknowledged messages ahead of
// those never delivered, so the ids kept for a reconnection are dropped
// at the first message that is not a redelivery; a message another
// consumer of the same queue got and gave back later can still come
// twice. All this holds across restarts of the pipeline and clean
// restarts of the broker. A broker that crashes (killed, power lost) may
// also come back without some acknowledgements and delivery marks it had
// not yet written to disk: it then delivers again, not flagged
// redelivered, messages the pipeline already had, and dedup does not
// drop them: across a broker crash the source is at-least-once
// (pipeline/restart_rabbitmq_test.go measures both).
//
// # Sink
//
// Sink publishes to an exchange with publisher confirms, on one channel
// per subtask. Each message gets the message-id
// "<prefix>/<operator>/<subtask>/<n>", n counting the subtask's messages
// from the job's start; the count is saved with each checkpoint (the
// writer's checkpoint.TwoPhaseCommitter handle) and restored, so a record
// replayed after a restart carries the message-id it had before, for
// consumers that deduplicate (when the pipeline's output order up to the
// sink is deterministic: a replayable source, no processing-time
// windows, the same parallelism). PreCommit waits until the broker
// confirmed every message written before the barrier, so a checkpoint
// completes only when its output is in the broker: at-least-once. At most
// MaxInFlight messages are unconfirmed; a nack fails the job (it restarts
// from its last checkpoint), and with Mandatory (the default in pipelines)
// a message no queue receives fails it too (ErrUnroutable) instead of
// vanishing. A message whose routing key or a header name exceeds 255
// bytes (an AMQP short string) fails the write with an error naming it,
// and so does a publish the broker refuses by closing the channel (no
// write permission, an internal exchange, a message over its size
// limit): sending it again would be refused the same way.
// When the connection goes away the writer reconnects with
// backoff and publishes its unconfirmed messages again, with the same
// message-ids (confirmations and returns the old channel delivered before
// it closed are applied first).
package rabbitmq
