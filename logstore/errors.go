package logstore

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/sluicehq/sluice/record"
)

// Sentinel errors. Every error returned by this package that matches one of
// these does so through errors.Is, wrapped with context (topic, partition,
// offset, file).
var (
	// ErrUnknownTopic: the topic does not exist.
	ErrUnknownTopic = errors.New("unknown topic")
	// ErrTopicExists: CreateTopic of a name that is already taken.
	ErrTopicExists = errors.New("topic already exists")
	// ErrInvalidTopic: the name breaks Kafka's rules ([a-zA-Z0-9._-]{1,249}, not "." or "..")
	// or the configuration is invalid.
	ErrInvalidTopic = errors.New("invalid topic")
	// ErrPartitionOutOfRange: a partition number outside [0, NumPartitions).
	ErrPartitionOutOfRange = errors.New("partition out of range")
	// ErrOffsetOutOfRange: a read below the log start offset or above the high watermark.
	ErrOffsetOutOfRange = errors.New("offset out of range")
	// ErrCorrupt: bytes that fail the record-batch checks (length, magic, CRC-32C).
	ErrCorrupt = record.ErrCorrupt
	// ErrOutOfOrderSequence: an idempotent producer skipped sequence numbers.
	ErrOutOfOrderSequence = errors.New("out of order sequence number")
	// ErrDuplicateSequence is internal: a sequence that is neither the next one
	// nor one of the recently appended batches.
	ErrDuplicateSequence = errors.New("duplicate sequence number")
	// ErrProducerFenced: a newer epoch of the same producer id has been seen.
	ErrProducerFenced = errors.New("producer fenced by a newer epoch")
	// ErrInvalidProducerEpoch: the producer epoch is not valid for this operation.
	ErrInvalidProducerEpoch = errors.New("invalid producer epoch")
	// ErrClosed: the log, topic or partition has been closed or deleted.
	ErrClosed = errors.New("log closed")
	// ErrIncompatibleFormat: the data directory was written by an
	// incompatible version of the on-disk format.
	ErrIncompatibleFormat = errors.New("incompatible data directory format")
	// ErrBatchTooLarge: a batch larger than the topic's segment size, or
	// (compacted topics, whose keys are checked) one whose records
	// decompress beyond record.MaxDecompressed.
	ErrBatchTooLarge = errors.New("record batch too large")
	// ErrInvalidRecord: a record the topic cannot take, such as one without
	// a key in a compacted topic (Kafka: INVALID_RECORD).
	ErrInvalidRecord = errors.New("invalid record")
	// ErrDiskFull: a write failed because the device is out of space (wraps ENOSPC).
	ErrDiskFull = errors.New("disk full")
	// ErrIO: reading or writing the data directory failed (every I/O error
	// of the log's files wraps it; ENOSPC is ErrDiskFull too). Kafka
	// answers KAFKA_STORAGE_ERROR for such log directory failures.
	ErrIO = errors.New("log I/O error")
)

// LockedError is returned by Open when another process holds the data
// directory's lock.
type LockedError struct {
	Dir   string // the data directory
	Owner string // "pid 1234 on host foo" as recorded by the owner, or "unknown"
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("data directory %s is locked by another process (%s)", e.Dir, e.Owner)
}

// CorruptionError reports damaged data found by recovery that cannot be
// repaired by truncating a torn tail: a bad batch followed by valid data. It
// matches ErrCorrupt with errors.Is.
type CorruptionError struct {
	Segment  string // path of the segment file
	Offset   int64  // the first offset that could not be read (the expected next offset)
	Position int64  // byte position of the bad batch in the segment file
	Err      error  // what was wrong
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("segment %s: corrupt batch at offset %d (byte %d) followed by valid data: %v (restore the partition from a replica, or open with RepairCorruption to truncate it there, losing what follows)", e.Segment, e.Offset, e.Position, e.Err)
}

// Unwrap makes errors.Is(err, ErrCorrupt) hold.
func (e *CorruptionError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }

// ioError wraps an I/O error with context, marks it ErrIO and ENOSPC as
// ErrDiskFull.
func ioError(what string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, syscall.ENOSPC) && !errors.Is(err, ErrDiskFull) {
		err = fmt.Errorf("%w: %w", ErrDiskFull, err)
	}
	if !errors.Is(err, ErrIO) {
		return fmt.Errorf("%s: %w: %w", what, ErrIO, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
