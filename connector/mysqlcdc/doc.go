// Package mysqlcdc is a change-data-capture source for MySQL and MariaDB:
// an initial consistent snapshot of the configured tables, read in
// primary-key chunks, then the server's binary log (row format) from the
// snapshot's position, each change one JSON message in the row shape that
// connector/pgcdc shares:
//
//	{"op":"c|u|d|r", "before":{...}|null, "after":{...}|null,
//	 "source":{"connector":"mysql","db","table","file","pos","gtid","server_id","ts_ms"},
//	 "ts_ms"}
//
// keyed by the primary-key columns as a JSON object, stamped with the
// transaction's time as event time. The binary log is read with
// github.com/go-mysql-org/go-mysql (replication and client packages).
//
// # Positions and exactly-once
//
// The source has one split: the binary log is one ordered stream. Its
// position (saved in checkpoints; nothing is stored on the server) is a
// small JSON document: while the snapshot runs, the last primary key
// emitted per table; during streaming, the binlog file and position of the
// start of the current transaction, the GTID set executed before it (when
// the server writes GTIDs) and how many of the transaction's row changes
// were already delivered. A restart from a checkpoint reconnects at the
// transaction's start (by GTID set when there is one, else by file and
// position) and skips the delivered changes, so a transaction is never
// split or doubled, however large.
//
// # Resuming a snapshot
//
// A snapshot cut by a crash cannot continue in its old transaction. The
// source opens a new consistent snapshot at a later binlog position P2
// and reads the remaining keys (above the last one emitted) there; the
// key ranges of each table remember the position they were read at
// (segments). While the binary log is replayed from the original position
// P1 up to P2, a change to a key is emitted only when it comes after the
// position its key range was read at, so every change appears exactly
// once, either inside a snapshot row or as a change event.
package mysqlcdc
