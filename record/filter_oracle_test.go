package record

import (
	"encoding/binary"
	"fmt"
)

// This file keeps the first, record-by-record implementation of batch
// filtering as the test oracle of AppendKept (which the log cleaner uses
// on the spans of Split): it decodes every record and rebuilds the batch
// from those kept, independently of Split's span parsing.

// FilterResult says what FilterBatch did with a batch.
type FilterResult struct {
	Kept    int // records kept
	Removed int // records removed
}

// FilterBatch (the oracle) appends to dst a copy of the one whole batch raw holding only
// the records for which keep returns true, and reports how many were kept.
//
// The copy keeps every header field that identifies the batch: base offset,
// last offset delta (so the batch still ends where it ended, and its last
// sequence number stays what the producer sent), base and max timestamp,
// attributes (codec, transactional, control, timestamp type), producer id,
// epoch, base sequence and partition leader epoch. Kept records are copied
// byte for byte (their offset and timestamp deltas are relative to the
// unchanged base), recompressed with the batch's codec; the length, record
// count and CRC are recomputed. Offsets of removed records become gaps, as
// in a compacted Kafka log.
//
// When every record is kept, raw is appended unchanged. When none is kept
// (or the batch had none), nothing is appended unless keepEmpty, in which
// case a batch with the same header and no records is appended (Kafka keeps such a batch when it is a
// producer's last one, so that its sequence numbers survive).
//
// keep receives decoded records like Decode's callback: they alias a buffer
// valid only during the call.
func FilterBatch(dst, raw []byte, keepEmpty bool, keep func(h Header, r Record) bool) ([]byte, FilterResult, error) {
	h, err := ParseHeader(raw)
	if err != nil {
		return dst, FilterResult{}, err
	}
	if h.Size() != len(raw) {
		return dst, FilterResult{}, fmt.Errorf("%w: header announces %d bytes, have %d (offset %d)", ErrCorrupt, h.Size(), len(raw), h.BaseOffset)
	}
	body, err := decompress(h.Codec(), raw[HeaderSize:])
	if err != nil {
		return dst, FilterResult{}, fmt.Errorf("%w: batch at offset %d: %s: %v", ErrCorrupt, h.BaseOffset, h.Codec(), err)
	}
	var res FilterResult
	var kept []byte // raw bytes of the kept records
	var hdrs []RecordHeader
	for i := int32(0); i < h.NumRecords; i++ {
		start := body
		var r Record
		r, body, hdrs, err = decodeRecord(body, hdrs[:0])
		if err != nil {
			return dst, FilterResult{}, fmt.Errorf("%w: record %d of batch at offset %d: %v", ErrCorrupt, i, h.BaseOffset, err)
		}
		enc := start[:len(start)-len(body)]
		r.Offset += h.BaseOffset
		if h.LogAppendTime() {
			r.Timestamp = h.MaxTimestamp
		} else {
			r.Timestamp += h.BaseTimestamp
		}
		if keep(h, r) {
			res.Kept++
			kept = append(kept, enc...)
		} else {
			res.Removed++
		}
	}
	if res.Removed == 0 && res.Kept > 0 {
		return append(dst, raw...), res, nil
	}
	if res.Kept == 0 && !keepEmpty {
		return dst, res, nil
	}
	start := len(dst)
	dst = append(dst, raw[:HeaderSize]...)
	if res.Kept > 0 {
		if dst, err = compress(dst, h.Codec(), kept); err != nil {
			return dst[:start], FilterResult{}, fmt.Errorf("record batch at offset %d: %s: %w", h.BaseOffset, h.Codec(), err)
		}
	}
	b := dst[start:]
	if res.Kept == 0 {
		// No records, no compressed body: say so, as Kafka's empty
		// batches do, so that readers do not try to decompress nothing.
		attrs := binary.BigEndian.Uint16(b[21:]) &^ attrCodecMask
		binary.BigEndian.PutUint16(b[21:], attrs)
	}
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-lengthFieldEnd))
	binary.BigEndian.PutUint32(b[57:], uint32(res.Kept))
	fixCRC(b)
	return dst, res, nil
}
