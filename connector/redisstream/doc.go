// Package redisstream connects pipelines to Redis streams through
// github.com/redis/go-redis/v9.
//
// # Source
//
// Source reads one stream as one consumer of a consumer group (created
// with the stream, MKSTREAM, when missing; at the stream's start unless
// Latest). It first reads its consumer's pending entries (XREADGROUP from
// id 0), then those of its claims consumer (Consumer + "~claims"), then
// new entries (">"), Batch at a time, waiting up to Block. Entries are
// acknowledged (XACK) only once a checkpoint covering them completes
// (CommitPosition); without checkpoints (AckOnHandover) once handed over.
//
// Entries pending on another consumer for longer than ClaimIdle (a dead
// consumer: another instance that crashed for good) are claimed with
// XAUTOCLAIM into the claims consumer and handed over. An entry of this
// source's own that waited that long for its checkpoint is given back to
// its consumer (XCLAIM JUSTID) and not handed over twice.
//
// The position saved in each checkpoint is the id of the last own entry
// handed over (own entries are handed over in id order) and the ids of the
// claimed entries handed over and not yet acknowledged. On restart, a
// pending own entry up to that id, or a pending claimed entry in that set,
// is covered by the restored checkpoint: it is acknowledged, not handed
// over again; every other pending entry is handed over. So a crash
// anywhere, including between a checkpoint's completion and its XACK,
// neither loses nor repeats an entry of the source's own: into a
// two-phase-commit sink the effects are exactly-once. Entries claimed
// from a dead consumer are at-least-once: that consumer may have
// processed them before it died. An entry deleted from the stream while
// pending (XDEL, trimming) is acknowledged and skipped.
//
// When the server does not answer, reads pause with backoff (100 ms
// doubling to 5 s); the outage and the recovery are logged once each;
// unacknowledged entries stay pending in Redis, and acknowledgements that
// failed are sent with the next completed checkpoint. A group deleted
// under the job is created again (logged). The lag metric is the group's
// lag from XINFO GROUPS (entries not yet delivered to the group).
//
// # Sink
//
// Sink appends each message with XADD (field "value", and "key" when the
// message has one), capped at MaxLen entries with approximate trimming
// (MAXLEN ~) unless Exact, one pipelined round trip per batch. Write
// returns once Redis answered every XADD of the batch, so a checkpoint
// covers only appended entries: at-least-once. XADD has no idempotence in
// Redis 7, so an entry whose answer was lost in an outage (sent again)
// and the records a restart replays since the last checkpoint may be
// appended twice.
package redisstream
