package state

import "github.com/sluicehq/sluice/checkpoint"

// BackendFactory makes the backend of one keyed operator subtask: operator
// op (its stable id), subtask sub, owning key groups r of maxParallelism.
// When restored is not nil the backend starts from the state the
// operator's subtasks stored in that checkpoint (files: every state file
// of the operator, whatever subtask wrote it; the factory picks its own).
// The default, when no factory is configured, is the memory backend.
type BackendFactory func(op string, sub, maxParallelism int, r KeyGroupRange, restored *checkpoint.Checkpoint, files []string) (Backend, error)

// FileSnapshotter is implemented by backends that checkpoint themselves
// as files (Pebble). SnapshotFiles runs on the subtask's goroutine and
// takes a consistent view; the returned function writes it into a pending
// checkpoint under names starting with name, possibly on another
// goroutine, and returns the paths to acknowledge. Called with a nil p
// (the checkpoint failed or was aborted before the files were written),
// it only discards the view.
type FileSnapshotter interface {
	SnapshotFiles() (func(p checkpoint.Pending, name string) ([]string, error), error)
}

// Flusher is implemented by backends that buffer their writes (Pebble:
// one write batch per record batch instead of one write per record).
// Reads see buffered writes at once; Flush applies them to the store.
// Operators call it at the end of each record batch, watermark and timer
// round; a snapshot flushes first by itself.
type Flusher interface {
	Flush() error
}
