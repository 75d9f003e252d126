package record

import (
	"encoding/binary"
	"fmt"
)

// Span is one record of a batch as Split returns it: what the log cleaner
// needs to decide whether the record stays, and its encoded bytes to copy
// it if it does. Key, Value and Enc alias the batch (or its decompressed
// body); a nil Key or Value is Kafka's null.
type Span struct {
	Offset int64 // absolute: the batch's base offset plus the record's delta
	Key    []byte
	Value  []byte
	Enc    []byte // the record's bytes, length prefix included
}

// Split appends the records of the one whole batch raw to spans and returns
// raw's header. It decompresses the batch when it is compressed, and checks
// every record's framing as Decode does (sizes, varints, header count and
// header fields), but decodes neither timestamps nor record headers: it is
// for callers that look at many records before deciding which to keep
// (AppendKept then rewrites the batch with the kept ones).
// The CRC is not checked (see Verify). A batch that would decompress
// beyond MaxDecompressed fails with ErrTooLarge.
func Split(spans []Span, raw []byte) (Header, []Span, error) {
	h, err := ParseHeader(raw)
	if err != nil {
		return h, spans, err
	}
	if h.Size() != len(raw) {
		return h, spans, fmt.Errorf("%w: header announces %d bytes, have %d (offset %d)", ErrCorrupt, h.Size(), len(raw), h.BaseOffset)
	}
	if h.NumRecords == 0 {
		return h, spans, nil
	}
	body, err := decompress(h.Codec(), raw[HeaderSize:])
	if err != nil {
		return h, spans, decompressError(h, err)
	}
	for i := int32(0); i < h.NumRecords; i++ {
		var s Span
		s, body, err = splitRecord(body)
		if err != nil {
			return h, spans, fmt.Errorf("%w: record %d of batch at offset %d: %v", ErrCorrupt, i, h.BaseOffset, err)
		}
		s.Offset += h.BaseOffset
		spans = append(spans, s)
	}
	return h, spans, nil
}

// splitRecord is decodeRecord without the timestamp and headers: it returns
// the record's offset delta, key, value and encoding, and the bytes after it.
func splitRecord(b []byte) (Span, []byte, error) {
	rd := reader{b: b}
	size := rd.varint()
	if rd.err != nil {
		return Span{}, b, rd.err
	}
	if size < 0 || size > int64(len(rd.b)) {
		return Span{}, b, fmt.Errorf("record of %d bytes, %d left", size, len(rd.b))
	}
	rest := rd.b[size:]
	rd.b = rd.b[:size]
	if len(rd.b) < 1 {
		return Span{}, b, fmt.Errorf("empty record")
	}
	rd.b = rd.b[1:] // attributes
	rd.varint()     // timestamp delta
	var s Span
	s.Offset = rd.varint()
	s.Key = rd.bytes()
	s.Value = rd.bytes()
	n := rd.varint()
	if rd.err == nil && (n < 0 || n > int64(len(rd.b))) {
		return Span{}, b, fmt.Errorf("bad header count %d", n)
	}
	for i := int64(0); i < n && rd.err == nil; i++ {
		rd.bytes()
		rd.bytes()
	}
	if rd.err != nil {
		return Span{}, b, rd.err
	}
	s.Enc = b[:len(b)-len(rest)]
	return s, rest, nil
}

// AppendKept appends to dst a copy of the one whole batch raw (whose header
// is h, as Split returned it) holding only the records kept, which must be
// some of the spans Split returned for raw, in their order.
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
// case a batch with the same header and no records is appended (Kafka
// keeps such a batch when it is a producer's last one, so that its
// sequence numbers survive). scratch is a buffer for compressed batches'
// kept records, returned for reuse.
func AppendKept(dst, scratch, raw []byte, h Header, kept []Span, keepEmpty bool) (out, scratchOut []byte, err error) {
	if len(kept) == int(h.NumRecords) && len(kept) > 0 {
		return append(dst, raw...), scratch, nil
	}
	if len(kept) == 0 && !keepEmpty {
		return dst, scratch, nil
	}
	start := len(dst)
	dst = append(dst, raw[:HeaderSize]...)
	switch {
	case len(kept) == 0:
	case h.Codec() == None:
		for _, s := range kept {
			dst = append(dst, s.Enc...)
		}
	default:
		scratch = scratch[:0]
		for _, s := range kept {
			scratch = append(scratch, s.Enc...)
		}
		if dst, err = compress(dst, h.Codec(), scratch); err != nil {
			return dst[:start], scratch, fmt.Errorf("record batch at offset %d: %s: %w", h.BaseOffset, h.Codec(), err)
		}
	}
	b := dst[start:]
	if len(kept) == 0 {
		// No records, no compressed body: say so, as Kafka's empty
		// batches do, so that readers do not try to decompress nothing.
		attrs := binary.BigEndian.Uint16(b[21:]) &^ attrCodecMask
		binary.BigEndian.PutUint16(b[21:], attrs)
	}
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-lengthFieldEnd))
	binary.BigEndian.PutUint32(b[57:], uint32(len(kept)))
	fixCRC(b)
	return dst, scratch, nil
}
