// Package checkpoint makes a running dataflow recoverable: consistent
// snapshots taken with asynchronous barriers (Carbone et al. 2015,
// "Lightweight Asynchronous Snapshots for Distributed Dataflows"), durable
// checkpoint storage with manifests, and the two-phase-commit protocol that
// makes sink output exactly-once.
//
// # Coordinator
//
// Coordinator is a deterministic state machine, in the style of etcd's raft
// core: it never starts a goroutine, reads a clock or touches a file. The
// caller feeds it the time (Tick), the acknowledgements of the tasks (Ack,
// Decline, Finished) and carries out the Actions it returns: inject barrier
// n at the sources (ActionTrigger), persist the completed checkpoint and
// then tell the sinks to commit (ActionComplete), or discard a failed one
// (ActionAbort). At most one checkpoint is in flight; one that fails or
// times out is discarded and the next one starts at the next interval.
//
// # Storage
//
// Storage keeps checkpoints; Dir is the directory implementation and
// ObjectStorage keeps them in an object store (objstore.Store: S3 and
// compatible services) with the same layout, files put as their writers
// close, shared files put once and the manifest put last; OpenStore picks
// one by location (a path or s3://BUCKET/PREFIX). A checkpoint is a set of files
// written by the task subtasks while it is pending, and a manifest written
// last: atomically (temporary file, fsync, rename, directory fsync), naming
// every file with its size and CRC-32C. A checkpoint without a valid
// manifest, or whose files do not match it, is not complete; loading skips
// it (with a warning) in favour of the previous complete one. Files can be
// shared between checkpoints (the sstables of incremental Pebble
// checkpoints): they live once in a shared area and are deleted when no
// retained manifest names them any more. The last N complete checkpoints
// are retained.
//
// The manifest records the pipeline it belongs to (operator ids, names,
// parallelism and the maximum parallelism, i.e. the number of key groups);
// Pipeline.Compatible refuses to restore a checkpoint into a pipeline whose
// operators differ and names what differs. Parallelism may change between
// runs: keyed state is written in key-group sections (StateWriter) so that
// a subtask restoring at another parallelism reads exactly the key groups
// it now owns, from every file that holds some of them.
//
// # Two-phase commit
//
// A sink that wants exactly-once output implements TwoPhaseCommitter: at
// the barrier it pre-commits (flushes and makes its pending output durable
// but invisible) and returns a Transaction handle, which is stored in the
// checkpoint; when the checkpoint completes the sink commits the handle;
// on recovery the sink commits the handles of the restored checkpoint
// (commits are idempotent) and aborts whatever else it had left pending.
// See docs/checkpoints.md for the full contract.
package checkpoint
