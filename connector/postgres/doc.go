// Package postgres is a sink of row.Row values into a PostgreSQL table,
// through github.com/jackc/pgx/v5.
//
// # Table
//
// The table is created when it does not exist (CREATE TABLE IF NOT
// EXISTS), one column per field of the row schema, typed from the field's
// kind: bool → boolean, int → bigint, float → double precision, string →
// text, timestamp → timestamptz, json → jsonb. A field of no declared kind
// takes the kind of its first non-null value in the first batch written
// (text when there is none). With Key columns the table's primary key is
// the key. An existing table must have a column for every field.
//
// # Writes and guarantees
//
// Rows are buffered and written in batched transactions: when BatchRows are
// buffered, at every checkpoint barrier and at close. With Key set, every
// row is an upsert (INSERT ... ON CONFLICT (key) DO UPDATE): writing the
// same rows again leaves the same table, so replaying input after a
// failure changes nothing, and the sink is effectively exactly-once for a
// deterministic pipeline. The transaction written at a barrier also stores
// the barrier's checkpoint id in a side table (CheckpointTable; one row per
// sink and subtask), so recovery can tell which checkpoint's output the
// table holds (Sink.CommittedCheckpoint). Without Key, rows are appended
// (with COPY when there are many): at-least-once.
//
// A row that cannot be written, because a value does not fit its column
// (a string in a bigint column), because a Key field is NULL (it could not
// be upserted idempotently), or because the database refuses it (a
// constraint violation), is left out: the other rows are committed and the
// call that flushed returns a *RejectError holding the rejected rows, for
// the pipeline's dead-letter sink. The writer stays usable.
package postgres
