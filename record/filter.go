package record

import (
	"encoding/binary"
	"fmt"
)

// FilterResult says what FilterBatch did with a batch.
type FilterResult struct {
	Kept    int // records kept
	Removed int // records removed
}

// FilterBatch appends to dst a copy of the one whole batch raw holding only
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

// AppendEmptyBatch appends a batch with no records that covers offsets
// first..last (last-first must fit in an int32): what the log cleaner
// writes in place of batches whose records it all removed, so that a
// compacted log's batches still follow each other without gaps. It has no
// producer, and ts as its timestamps. Kafka clients skip such batches and
// go on at last+1.
func AppendEmptyBatch(dst []byte, first, last, ts int64) []byte {
	start := len(dst)
	dst = binary.BigEndian.AppendUint64(dst, uint64(first))
	dst = binary.BigEndian.AppendUint32(dst, HeaderSize-lengthFieldEnd)
	dst = binary.BigEndian.AppendUint32(dst, 0) // partition leader epoch
	dst = append(dst, 2)                        // magic
	dst = binary.BigEndian.AppendUint32(dst, 0) // crc, below
	dst = binary.BigEndian.AppendUint16(dst, 0) // attributes
	dst = binary.BigEndian.AppendUint32(dst, uint32(last-first))
	dst = binary.BigEndian.AppendUint64(dst, uint64(ts))
	dst = binary.BigEndian.AppendUint64(dst, uint64(ts))
	dst = binary.BigEndian.AppendUint64(dst, ^uint64(0)) // producer id -1
	dst = binary.BigEndian.AppendUint16(dst, ^uint16(0)) // epoch -1
	dst = binary.BigEndian.AppendUint32(dst, ^uint32(0)) // base sequence -1
	dst = binary.BigEndian.AppendUint32(dst, 0)          // no records
	fixCRC(dst[start:])
	return dst
}
