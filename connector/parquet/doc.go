// Package parquet is a rolling-file sink of row.Row values into Parquet
// files (github.com/parquet-go/parquet-go), readable by any Parquet reader.
//
// # Schema
//
// One optional column per field of the row schema, typed from the field's
// kind: bool → BOOLEAN, int → INT64, float → DOUBLE, string → BYTE_ARRAY
// (STRING), timestamp → INT64 (TIMESTAMP millis, UTC), json → BYTE_ARRAY
// (JSON). A field of no declared kind takes the kind of its first non-null
// value in the first batch a subtask writes (string when there is none).
// Members kept in Row.Rest are not written.
//
// # Files and commits
//
// Each subtask writes part files into Path. A file is written under a
// hidden temporary name (".part-....parquet.inprogress") and appears under
// its final name, part-<subtask>-<run>-<seq>.parquet, only through an
// atomic rename once committed, so readers of the directory never see a
// partial file. A file is closed when it reaches MaxRowsPerFile rows and
// at every checkpoint barrier; the files closed up to barrier N are
// renamed when checkpoint N completes (CommitCheckpoint; under the stream
// runtime's checkpointing, which does not call it, the commit of the
// handle PreCommit returns, also after a crash through Recover), or at the
// barrier itself with CommitOnBarrier (at-least-once pipelines, which have
// no completion notice). At the end of the input Close commits everything;
// when the job stops early Close deletes the file in progress and leaves
// the files pre-committed at barriers for recovery to commit or discard.
// Recovery publishes the files a restored checkpoint saved (PreCommitted)
// with Sink.CommitRecovered; a writer that is not recovered then deletes,
// before its first file, the temporary files of every writer not open
// (earlier runs', and a failed attempt's when a job restarts with the
// same Sink), never those of a writer still open.
package parquet
