package connector

import "fmt"

// Start says where a partitioned source's split begins when no restored
// checkpoint position (or, for Kafka, group offset) says otherwise.
type Start int

const (
	// StartEarliest begins at the earliest offset still stored (the default).
	StartEarliest Start = iota
	// StartLatest begins at the end of the partition as it is when the job
	// starts: only records appended afterwards are read.
	StartLatest
	// StartOffset begins at the configured offset, clamped to the offsets
	// stored.
	StartOffset
)

// ParseStart parses "earliest" (or ""), "latest" or "offset".
func ParseStart(s string) (Start, error) {
	switch s {
	case "", "earliest":
		return StartEarliest, nil
	case "latest":
		return StartLatest, nil
	case "offset":
		return StartOffset, nil
	}
	return 0, fmt.Errorf("start %q: want earliest, latest or offset", s)
}

// Isolation says which records a source of a transactional log delivers.
type Isolation int

const (
	// ReadCommitted skips aborted transactions and reads only up to the
	// last stable offset (the default).
	ReadCommitted Isolation = iota
	// ReadUncommitted delivers every data record up to the high watermark.
	ReadUncommitted
)
