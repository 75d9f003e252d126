package checkpoint

import (
	"context"
	"io"
)

// Storage keeps the checkpoints of one job. Dir is the directory
// implementation; ObjectStorage keeps them in an object store (S3 and
// compatible services), uploading files and putting the manifest last.
type Storage interface {
	// Begin starts writing checkpoint id. Anything left of an earlier
	// attempt at the same id is discarded.
	Begin(id ID) (Pending, error)
	// Latest returns the newest complete checkpoint. Checkpoints that are
	// incomplete or corrupt (missing manifest, truncated file, bad
	// checksum) are skipped with a warning; an error reading one (the
	// storage failed, not the checkpoint) is returned instead, as
	// restoring an older checkpoint would lose progress. It returns
	// ErrNoCheckpoint when none is complete.
	Latest(ctx context.Context) (*Checkpoint, error)
	// Complete returns the IDs of the checkpoints that have a manifest,
	// oldest first, without verifying their files.
	Complete() ([]ID, error)
}

// Pending is a checkpoint being written. Its methods are safe for
// concurrent use by the subtasks that write their state into it.
type Pending interface {
	// ID returns the checkpoint's ID.
	ID() ID
	// Create returns a writer for a new file of this checkpoint called
	// name (a plain file name, unique in the checkpoint). The file counts
	// once its writer is closed without error.
	Create(name string) (FileWriter, error)
	// Shared returns a file of the shared area that an earlier checkpoint
	// stored under name, and makes it available to this checkpoint's
	// manifest. It reports false when there is none.
	Shared(name string) (FileInfo, bool)
	// PutShared stores the local file at localPath in the shared area under
	// name (a hard link when possible, a copy otherwise); shared files are
	// immutable and kept as long as a retained checkpoint names them.
	PutShared(name, localPath string) (FileInfo, error)
	// Commit completes the checkpoint: it resolves the files named by m's
	// tasks, fills m.Files and writes the manifest last, atomically. Older
	// checkpoints beyond the retention are then deleted.
	Commit(m *Manifest) error
	// Abort discards the checkpoint's own files.
	Abort() error
}

// Retainer is an optional capability of a Pending (Dir's has it): a
// Commit in two steps, so that a caller with work that waits for the
// checkpoint (the commits of two-phase-commit sinks, which publish
// exactly-once output) does it before the clean-up.
type Retainer interface {
	// CommitManifest completes the checkpoint as Commit does, without
	// deleting anything.
	CommitManifest(m *Manifest) error
	// Retain then deletes what the checkpoint made obsolete, as Commit
	// does after the manifest: older checkpoints beyond the retention and
	// the shared files none of the retained ones names. Failures are
	// logged (they cost disk space, not correctness).
	Retain()
}

// SharedCreator is an optional capability of a Pending (Dir's has it):
// writing a file straight into the shared area, for state that later
// checkpoints reference without copying (the increments of in-memory
// state, see docs/checkpoints.md).
type SharedCreator interface {
	// CreateShared returns a writer of a new shared file called name (a
	// plain file name, unique in the storage). Once its writer is closed
	// without error the file is durable, counts as a file of this
	// checkpoint and can be named by later ones through Shared. Like
	// every shared file it is deleted when no retained checkpoint names
	// it any more.
	CreateShared(name string) (FileWriter, error)
}

// FileWriter writes one file of a pending checkpoint; it checksums as it
// writes. Close makes the file durable; Discard abandons it.
type FileWriter interface {
	io.Writer
	// Path returns the file's path relative to the storage root, as
	// manifests name it.
	Path() string
	Close() error
	// Discard abandons a file whose writing failed: nothing of it is
	// stored (a shared file never appears in the shared area under its
	// name) and it does not count as a file of the checkpoint. Discard
	// after Close does nothing; the writer is not used after Discard.
	Discard()
}

// File is a checkpoint file opened for reading.
type File interface {
	io.Reader
	io.ReaderAt
	io.Closer
	Size() int64
}

// Store is a Storage that a job checkpoints into: Dir and ObjectStorage.
type Store interface {
	Storage
	// Open opens a file of the storage by the path a manifest names it
	// with (for reading back files of earlier checkpoints, such as the
	// chain of increments a compaction folds into one file).
	Open(path string) (File, error)
	// Location returns where checkpoint id lives (a directory, or an
	// s3:// URL), as Load takes it.
	Location(id ID) string
}

// Checkpoint is a complete, verified checkpoint.
type Checkpoint struct {
	Manifest *Manifest
	// Location is where the checkpoint lives (its directory for Dir, its
	// s3:// URL for ObjectStorage); it can be passed to Load to restore
	// from this checkpoint explicitly.
	Location string
	files    fileSource
	// release removes the local copy of a checkpoint read from an object
	// store.
	release func() error
}

// Close releases what reading the checkpoint took: the local copy of its
// files for a checkpoint of an ObjectStorage (nothing for a Dir). Open and
// Fetch fail afterwards for such a checkpoint; files fetched before stay.
func (c *Checkpoint) Close() error {
	if c.release == nil {
		return nil
	}
	r := c.release
	c.release = nil
	return r()
}

type fileSource interface {
	open(path string) (File, error)
	fetch(path, dst string) error
}

// Open opens a file that the manifest names.
func (c *Checkpoint) Open(path string) (File, error) { return c.files.open(path) }

// Fetch makes the file at path available as the local file dst (a hard
// link when possible, a copy otherwise). Backends that need local files
// (Pebble) use it.
func (c *Checkpoint) Fetch(path, dst string) error { return c.files.fetch(path, dst) }
