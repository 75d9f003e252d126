package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
)

// ErrInvalidRecord reports a batch whose header is sound but whose records
// are not what it announces (Kafka: INVALID_RECORD). Errors of CheckRecords
// that match it are *InvalidRecordError.
var ErrInvalidRecord = errors.New("invalid record")

// InvalidRecordError is a record of a batch that does not parse: Index is
// its position in the batch (what a produce response's record errors
// name), -1 when the fault is the batch's (bytes after its last record).
type InvalidRecordError struct {
	Index  int32
	Reason string
}

// Error describes the record and what is wrong with it.
func (e *InvalidRecordError) Error() string {
	if e.Index < 0 {
		return fmt.Sprintf("%v: %s", ErrInvalidRecord, e.Reason)
	}
	return fmt.Sprintf("%v: record %d: %s", ErrInvalidRecord, e.Index, e.Reason)
}

// Unwrap makes the error match ErrInvalidRecord.
func (e *InvalidRecordError) Unwrap() error { return ErrInvalidRecord }

// Checked is what CheckRecords learnt of a batch's records besides their
// validity.
type Checked struct {
	// FirstKeyless is the index of the first record without a key (a
	// null key; an empty one is a key), -1 if every record has one.
	FirstKeyless int32
	// MinTimestamp and MaxTimestamp are the smallest and largest record
	// timestamps (the batch's base timestamp plus each record's delta),
	// and MinIndex and MaxIndex the records that hold them; records
	// without a timestamp (-1) are left out. Both indexes are -1 when no
	// record has a timestamp.
	MinTimestamp, MaxTimestamp int64
	MinIndex, MaxIndex         int32
}

// checkBufs holds the buffers CheckRecords decompresses into (*[]byte),
// so that checking compressed batches does not allocate and clear a
// batch-sized buffer for each.
var checkBufs sync.Pool

// maxPooledCheckBuf is the largest buffer checkBufs keeps: a producer's
// batch (1 MiB by default) fits; a rare larger one is left to the GC.
const maxPooledCheckBuf = 4 << 20

// CheckRecords walks the records of the whole batch b (one batch, its
// header already checked by ParseHeader or Verify) and checks that they
// are exactly what the header announces, as Kafka's log validator does
// before it appends a producer's batch: NumRecords records and not a byte
// more, the i-th with offset delta i, each of exactly its announced
// length, with varints neither truncated nor longer than their type
// (5 bytes for 32-bit fields, 10 for the timestamp delta), no length below
// -1 (null) and no negative header count or header key length. A
// compressed batch is decompressed to be checked, bounded by
// MaxDecompressed (beyond it: ErrTooLarge; undecodable: ErrCorrupt). A
// record that does not parse fails with an *InvalidRecordError.
//
// An uncompressed batch is walked in place, without allocating; a
// compressed one is decompressed into a reused buffer.
func CheckRecords(b []byte) (Checked, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return Checked{}, err
	}
	if h.Size() > len(b) {
		return Checked{}, fmt.Errorf("%w: header announces %d bytes, have %d", ErrShort, h.Size(), len(b))
	}
	body := b[HeaderSize:h.Size()]
	if h.Codec() != None {
		buf, _ := checkBufs.Get().(*[]byte)
		if buf == nil {
			buf = new([]byte)
		}
		defer func() {
			if cap(*buf) <= maxPooledCheckBuf {
				checkBufs.Put(buf)
			}
		}()
		if body, err = decompressInto(*buf, h.Codec(), body, MaxDecompressed); err != nil {
			return Checked{}, decompressError(h, err)
		}
		*buf = body[:0]
	}
	c := Checked{FirstKeyless: -1, MinIndex: -1, MaxIndex: -1}
	for i := int32(0); i < h.NumRecords; i++ {
		var keyless bool
		var reason string
		var delta int64
		body, keyless, delta, reason = checkRecord(body, i)
		if reason != "" {
			return Checked{}, &InvalidRecordError{Index: i, Reason: reason}
		}
		if keyless && c.FirstKeyless < 0 {
			c.FirstKeyless = i
		}
		if ts := h.BaseTimestamp + delta; ts != -1 {
			if c.MinIndex < 0 || ts < c.MinTimestamp {
				c.MinTimestamp, c.MinIndex = ts, i
			}
			if c.MaxIndex < 0 || ts > c.MaxTimestamp {
				c.MaxTimestamp, c.MaxIndex = ts, i
			}
		}
	}
	if len(body) > 0 {
		return Checked{}, &InvalidRecordError{Index: -1, Reason: fmt.Sprintf("%d bytes after the batch's %d records", len(body), h.NumRecords)}
	}
	return c, nil
}

// checkRecord checks the record at the start of b, the batch's i-th, and
// returns what follows it, whether its key is null and its timestamp
// delta; reason is empty when the record is sound. Reasons are constants:
// the walk of a sound batch allocates nothing.
func checkRecord(b []byte, i int32) (rest []byte, keyless bool, tsDelta int64, reason string) {
	size, n := varint32(b)
	if n <= 0 {
		return nil, false, 0, varintReason(n, "record length")
	}
	b = b[n:]
	if size < 1 || int64(size) > int64(len(b)) {
		return nil, false, 0, "record length beyond the batch or below 1"
	}
	rec, rest := b[:size], b[size:]
	rec = rec[1:] // attributes: none defined for records
	if tsDelta, n = binary.Varint(rec); n <= 0 {
		return nil, false, 0, varintReason(n, "timestamp delta")
	}
	rec = rec[n:]
	delta, n := varint32(rec)
	if n <= 0 {
		return nil, false, 0, varintReason(n, "offset delta")
	}
	if delta != i {
		return nil, false, 0, "offset delta is not the record's index in the batch"
	}
	rec = rec[n:]
	var keyLen int32
	if keyLen, rec, reason = lengthPrefixed(rec, "key"); reason != "" {
		return nil, false, 0, reason
	}
	if _, rec, reason = lengthPrefixed(rec, "value"); reason != "" {
		return nil, false, 0, reason
	}
	headers, n := varint32(rec)
	if n <= 0 {
		return nil, false, 0, varintReason(n, "header count")
	}
	if headers < 0 {
		return nil, false, 0, "negative header count"
	}
	rec = rec[n:]
	for range headers {
		var l int32
		if l, rec, reason = lengthPrefixed(rec, "header key"); reason != "" {
			return nil, false, 0, reason
		}
		if l < 0 {
			return nil, false, 0, "header without a key"
		}
		if _, rec, reason = lengthPrefixed(rec, "header value"); reason != "" {
			return nil, false, 0, reason
		}
	}
	if len(rec) > 0 {
		return nil, false, 0, "bytes after the record's fields, within its length"
	}
	return rest, keyLen < 0, tsDelta, ""
}

// lengthPrefixed skips a field of a varint length (-1: null) and its
// bytes at the start of b.
func lengthPrefixed(b []byte, field string) (length int32, rest []byte, reason string) {
	l, n := varint32(b)
	if n <= 0 {
		return 0, nil, varintReason(n, field+" length")
	}
	b = b[n:]
	switch {
	case l < -1:
		return 0, nil, field + " length below -1"
	case int64(l) > int64(len(b)):
		return 0, nil, field + " beyond the record"
	case l > 0:
		b = b[l:]
	}
	return l, b, ""
}

// varint32 decodes a zigzag varint of a 32-bit field at the start of b.
// n is the bytes read, 0 if b ends first, -1 if the varint runs past 5
// bytes or its value past 32 bits.
func varint32(b []byte) (v int32, n int) {
	if len(b) > 0 && b[0] < 0x80 { // the common case: one byte
		u := uint32(b[0])
		return int32(u>>1) ^ -int32(u&1), 1
	}
	u, n := binary.Uvarint(b)
	switch {
	case n == 0:
		return 0, 0
	case n < 0 || n > 5:
		return 0, -1
	}
	x := int64(u>>1) ^ -int64(u&1)
	if x < math.MinInt32 || x > math.MaxInt32 {
		return 0, -1
	}
	return int32(x), n
}

// varintReason says why the varint of field could not be read (n as
// varint32 or binary.Varint return it).
func varintReason(n int, field string) string {
	if n == 0 {
		return field + " truncated"
	}
	return field + " varint too long"
}
