package runtime

import "io"

// Snapshotter is the checkpoint hook of operators that own state (window
// operators, keyed process functions, joins) and of sources (their split
// positions). When checkpoint barrier id has been aligned at an operator,
// the runtime calls SnapshotState after every record before the barrier
// and before any record after it, then forwards the barrier. On recovery
// RestoreState is called before the first record, once per stored snapshot
// whose key groups overlap the subtask's range (several after rescaling
// down, a part of one after rescaling up): implementations keep only the
// key groups they own.
//
// The stream package's checkpointing (stream/checkpointing.go) snapshots
// its operators through typed methods and key-grouped state files
// (checkpoint.StateWriter) instead; this interface remains for operators
// whose state is a plain byte stream.
type Snapshotter interface {
	SnapshotState(checkpointID uint64, w io.Writer) error
	RestoreState(r io.Reader) error
}
