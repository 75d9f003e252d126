package queries

import (
	"fmt"

	"github.com/cespare/xxhash/v2"
)

// Fingerprint is an order-independent digest of a multiset of rows: the
// number of rows and the sum, modulo 2^64, of the xxHash64 of each row's
// canonical JSON encoding (Row.AppendJSON). Two runs that produce the same
// rows in any order, split over any number of sink subtasks, have equal
// fingerprints; retracted rows are subtracted, so an updating query's
// fingerprint is that of its final rows.
type Fingerprint struct {
	Rows int64
	Sum  uint64
}

// Add adds one row given its canonical encoding.
func (f *Fingerprint) Add(encoded []byte) {
	f.Rows++
	f.Sum += xxhash.Sum64(encoded)
}

// Remove takes away one row given its canonical encoding: the retraction
// of a row added before. Adding and removing commute, so a changelog
// fingerprints to its final rows whatever the order of its changes.
func (f *Fingerprint) Remove(encoded []byte) {
	f.Rows--
	f.Sum -= xxhash.Sum64(encoded)
}

// Merge adds the rows of g.
func (f *Fingerprint) Merge(g Fingerprint) {
	f.Rows += g.Rows
	f.Sum += g.Sum
}

// String returns the sum as 16 hex digits, the checksum the runner prints.
func (f Fingerprint) String() string { return fmt.Sprintf("%016x", f.Sum) }

// FingerprintRows returns the fingerprint of rows.
func FingerprintRows[R Row](rows []R) Fingerprint {
	var f Fingerprint
	var buf []byte
	for _, r := range rows {
		buf = r.AppendJSON(buf[:0])
		f.Add(buf)
	}
	return f
}
