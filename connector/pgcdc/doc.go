// Package pgcdc is a change-data-capture source for PostgreSQL on logical
// replication (the pgoutput plugin, through github.com/jackc/pglogrepl and
// pgx): an initial consistent snapshot of the configured tables, read in
// the snapshot a new replication slot exports, chunked by primary key and
// resumable from a checkpoint, then the change stream from the slot.
//
// Every change is one JSON message in the shape Debezium made familiar:
//
//	{"op":"c|u|d|r","before":{...}|null,"after":{...}|null,
//	 "source":{"connector":"postgres","db","schema","table","lsn","txid","ts_ms","snapshot"},
//	 "ts_ms":...}
//
// keyed by the primary-key columns as a JSON object, timestamped with the
// transaction's commit time (the snapshot's start for "r" reads).
//
// Positions. A split's position (saved in checkpoints) is either the
// snapshot's progress (table, last key read, the snapshot LSN of every key
// range read) or a stream position: the end LSN of the last transaction
// wholly emitted plus how many records of the next one were. The slot's
// confirmed flush LSN is advanced (standby status updates) only through
// CommitPosition, which the runtime calls when the checkpoint holding the
// position has completed, so after a crash the slot still has everything
// after the restored checkpoint and the split resumes exactly there.
//
// A snapshot interrupted by a crash resumes in a new snapshot (exported by
// a temporary slot) for the keys not read yet. Changes between the first
// snapshot and the new one are then emitted only for the keys read in the
// older snapshots (the newer one already shows them), so every row's
// history is emitted exactly once: its snapshot read, then the changes
// committed after that read.
package pgcdc
