// Package nats connects pipelines to NATS (github.com/nats-io/nats.go):
// JetStream streams through durable pull consumers and publishes with
// acknowledgements and message ids, and core NATS subjects.
//
// # JetStream source
//
// One split per source reads the stream through the durable pull consumer
// Durable, with ack policy "all", AckWait and MaxAckPending as configured.
// The split's position is the stream sequence of the last message read.
// With AckOnCheckpoint (set under checkpointing) nothing is acknowledged
// until the checkpoint covering it completes; then one acknowledgement,
// confirmed by the server, acknowledges everything up to the checkpoint's
// position. MaxAckPending bounds what is delivered and unacknowledged,
// so at most that many messages are read per checkpoint interval.
//
// Exactly-once into transactional sinks. The consumer is owned by the
// pipeline: on every start it is deleted and created again to deliver from
// the restored checkpoint's position + 1 (without a checkpoint: from its
// acknowledgement floor + 1, or for a new consumer from the start of the
// stream, or its end with StartNew). Messages the crashed run had read
// after its last completed checkpoint are therefore delivered again, in
// stream order, and the sinks' transactions of that run were never
// committed; messages of the completed checkpoint are not. Within a run,
// first deliveries arrive in stream order, so a message at or below the
// last sequence received is a redelivery (its AckWait expired before its
// checkpoint completed) and is skipped; after the consumer is recreated
// mid-run (a lost delivery), the messages it delivers again are skipped
// and acknowledged on it once a checkpoint covers them, since they count
// against MaxAckPending. Redelivery on failure is thus the
// restart's replay from the checkpoint, not the server's timer. Two
// pipelines must not share a durable.
//
// Without checkpointing, messages are acknowledged as they are read: a
// crash loses what the pipeline held (at-most-once).
//
// Lag is the consumer's pending count (messages matching the filter not
// yet delivered) carried by each delivered message.
//
// # JetStream sink
//
// Publishes are asynchronous, at most MaxInFlight unacknowledged; at a
// checkpoint barrier the sink waits for every acknowledgement. Every
// message carries a Nats-Msg-Id: IDPrefix.base.subtask.seq.hash (hash of
// key and value). A publish that fails or is not acknowledged within
// AckTimeout (the server went away) is sent again with the same id; a
// message larger than the server's max_payload or the stream's
// max_msg_size, or a subject over MaxSubjectLen bytes (the server would
// close the connection for good), fails the write at once, as does a
// connection the server closed for good. With
// ExactlyOnce the writer is a checkpoint.TwoPhaseCommitter whose handle
// records base and seq at the barrier; a job restored from that
// checkpoint numbers the replayed records from there, so each replayed
// record gets the id it had before the crash and the stream drops it as a
// duplicate: exactly-once, provided the replay happens within the
// stream's duplicate window (2 minutes by default) and the sink's input
// is replayed in the same order (a single-split source such as JetStream
// or one log partition, through steps without a shuffle). When the order
// differs the hash makes the ids differ: records are duplicated, never
// dropped. A job started without a checkpoint uses a fresh base.
//
// # Core NATS
//
// With JetStream off the source subscribes (optionally in a queue group)
// and the sink publishes plainly: at-most-once. Messages published while
// the pipeline is away, or dropped because it fell behind (MaxInFlight
// buffered; counted as Dropped), are gone. The sink flushes at barriers.
//
// Connections reconnect forever with exponential backoff (250 ms to 5 s,
// with jitter), logging every loss and recovery; publishes made while
// disconnected wait in the client's reconnect buffer.
package nats
