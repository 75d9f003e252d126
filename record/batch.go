package record

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// RecordHeader is one key/value header of a record.
type RecordHeader struct {
	Key   string
	Value []byte
}

// Record is one record of a batch. When decoded, Key, Value and header values
// alias a buffer that is only valid during the callback that received them;
// copy what must outlive it. A nil Key or Value is Kafka's null.
type Record struct {
	Offset    int64
	Timestamp int64 // epoch milliseconds
	Key       []byte
	Value     []byte
	Headers   []RecordHeader
}

// BatchOptions describes the batch AppendBatch builds.
type BatchOptions struct {
	Codec         Codec
	BaseOffset    int64
	ProducerID    int64 // -1 when not idempotent; the zero value is treated as -1 unless Idempotent
	ProducerEpoch int16
	BaseSequence  int32
	Idempotent    bool // ProducerID, ProducerEpoch and BaseSequence are meaningful
	Transactional bool
}

// AppendBatch appends to dst one batch holding recs, whose offsets are the
// batch's base offset plus their index (their Offset fields are ignored).
// Record timestamps are stored as deltas from the first record's.
func AppendBatch(dst []byte, recs []Record, o BatchOptions) ([]byte, error) {
	if len(recs) == 0 {
		return dst, fmt.Errorf("record batch: no records")
	}
	start := len(dst)
	base := recs[0].Timestamp
	maxTS := base
	for _, r := range recs {
		maxTS = max(maxTS, r.Timestamp)
	}
	pid, epoch, seq := int64(-1), int16(-1), int32(-1)
	if o.Idempotent || o.Transactional {
		pid, epoch, seq = o.ProducerID, o.ProducerEpoch, o.BaseSequence
	}
	attrs := int16(o.Codec) & attrCodecMask
	if o.Transactional {
		attrs |= attrTransactional
	}
	dst = binary.BigEndian.AppendUint64(dst, uint64(o.BaseOffset))
	dst = binary.BigEndian.AppendUint32(dst, 0) // length, patched below
	dst = binary.BigEndian.AppendUint32(dst, 0) // partition leader epoch
	dst = append(dst, 2)                        // magic
	dst = binary.BigEndian.AppendUint32(dst, 0) // crc, patched below
	dst = binary.BigEndian.AppendUint16(dst, uint16(attrs))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(recs)-1))
	dst = binary.BigEndian.AppendUint64(dst, uint64(base))
	dst = binary.BigEndian.AppendUint64(dst, uint64(maxTS))
	dst = binary.BigEndian.AppendUint64(dst, uint64(pid))
	dst = binary.BigEndian.AppendUint16(dst, uint16(epoch))
	dst = binary.BigEndian.AppendUint32(dst, uint32(seq))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(recs)))
	if o.Codec == None {
		for i, r := range recs {
			dst = appendRecord(dst, int64(i), r.Timestamp-base, r)
		}
	} else {
		var raw []byte
		for i, r := range recs {
			raw = appendRecord(raw, int64(i), r.Timestamp-base, r)
		}
		var err error
		if dst, err = compress(dst, o.Codec, raw); err != nil {
			return dst[:start], fmt.Errorf("record batch: %s: %w", o.Codec, err)
		}
	}
	b := dst[start:]
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-lengthFieldEnd))
	fixCRC(b)
	return dst, nil
}

func appendRecord(dst []byte, offsetDelta, tsDelta int64, r Record) []byte {
	size := 1 + varintLen(tsDelta) + varintLen(offsetDelta) +
		bytesLen(r.Key) + bytesLen(r.Value) + varintLen(int64(len(r.Headers)))
	for _, h := range r.Headers {
		size += varintLen(int64(len(h.Key))) + len(h.Key) + bytesLen(h.Value)
	}
	dst = binary.AppendVarint(dst, int64(size))
	dst = append(dst, 0) // record attributes (unused)
	dst = binary.AppendVarint(dst, tsDelta)
	dst = binary.AppendVarint(dst, offsetDelta)
	dst = appendBytes(dst, r.Key)
	dst = appendBytes(dst, r.Value)
	dst = binary.AppendVarint(dst, int64(len(r.Headers)))
	for _, h := range r.Headers {
		dst = binary.AppendVarint(dst, int64(len(h.Key)))
		dst = append(dst, h.Key...)
		dst = appendBytes(dst, h.Value)
	}
	return dst
}

func appendBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

func bytesLen(b []byte) int {
	if b == nil {
		return varintLen(-1)
	}
	return varintLen(int64(len(b))) + len(b)
}

func varintLen(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	n := 1
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}

// Decode calls fn for every record of the whole batches at the start of
// batches (a trailing partial batch is ignored), decompressing as needed.
// Control batches are passed too: check h.IsControl(). A batch that would
// decompress beyond MaxDecompressed fails with ErrTooLarge, any other that
// does not decode with ErrCorrupt. CRCs are not checked; the log checks them
// before serving a batch.
func Decode(batches []byte, fn func(h Header, r Record) error) error {
	var hdrs []RecordHeader
	return Batches(batches, func(h Header, raw []byte) error {
		if h.NumRecords == 0 {
			return nil // an empty batch left by compaction
		}
		body, err := decompress(h.Codec(), raw[HeaderSize:])
		if err != nil {
			return decompressError(h, err)
		}
		for i := int32(0); i < h.NumRecords; i++ {
			var r Record
			r, body, hdrs, err = decodeRecord(body, hdrs[:0])
			if err != nil {
				return fmt.Errorf("%w: record %d of batch at offset %d: %v", ErrCorrupt, i, h.BaseOffset, err)
			}
			r.Offset += h.BaseOffset
			if h.LogAppendTime() {
				r.Timestamp = h.MaxTimestamp
			} else {
				r.Timestamp += h.BaseTimestamp
			}
			if err := fn(h, r); err != nil {
				return err
			}
		}
		return nil
	})
}

type reader struct {
	b   []byte
	err error
}

func (rd *reader) varint() int64 {
	if rd.err != nil {
		return 0
	}
	v, n := binary.Varint(rd.b)
	if n <= 0 {
		rd.err = fmt.Errorf("bad varint")
		return 0
	}
	rd.b = rd.b[n:]
	return v
}

func (rd *reader) bytes() []byte {
	n := rd.varint()
	if rd.err != nil || n < 0 {
		return nil
	}
	if n > int64(len(rd.b)) {
		rd.err = fmt.Errorf("field of %d bytes, %d left", n, len(rd.b))
		return nil
	}
	v := rd.b[:n:n]
	rd.b = rd.b[n:]
	return v
}

func decodeRecord(b []byte, hdrs []RecordHeader) (Record, []byte, []RecordHeader, error) {
	rd := reader{b: b}
	size := rd.varint()
	if rd.err != nil {
		return Record{}, b, hdrs, rd.err
	}
	if size < 0 || size > int64(len(rd.b)) {
		return Record{}, b, hdrs, fmt.Errorf("record of %d bytes, %d left", size, len(rd.b))
	}
	rest := rd.b[size:]
	rd.b = rd.b[:size]
	if len(rd.b) < 1 {
		return Record{}, b, hdrs, fmt.Errorf("empty record")
	}
	rd.b = rd.b[1:] // attributes
	var r Record
	r.Timestamp = rd.varint()
	r.Offset = rd.varint()
	r.Key = rd.bytes()
	r.Value = rd.bytes()
	n := rd.varint()
	if n < 0 || n > int64(len(rd.b)) {
		return Record{}, b, hdrs, fmt.Errorf("bad header count %d", n)
	}
	for i := int64(0); i < n && rd.err == nil; i++ {
		k := rd.bytes()
		v := rd.bytes()
		hdrs = append(hdrs, RecordHeader{Key: string(k), Value: v})
	}
	if rd.err != nil {
		return Record{}, b, hdrs, rd.err
	}
	if len(hdrs) > 0 {
		r.Headers = hdrs
	}
	return r, rest, hdrs, nil
}

// errFound stops Decode at the record OffsetForTime looks for.
var errFound = errors.New("found")

// OffsetForTime returns the offset and timestamp of the first record of the
// whole batch raw at offset from or later whose timestamp is at or after ts
// (found false: none); from is the log start offset, below which records
// are deleted. A batch that would decompress beyond MaxDecompressed, when
// its MaxTimestamp is at or after ts, answers its base offset (from, if
// later) and MaxTimestamp instead: an offset at or before the record
// sought, so that a reader starting there misses nothing and a lookup by
// time does not fail on such a batch.
func OffsetForTime(raw []byte, ts, from int64) (offset, timestamp int64, found bool, err error) {
	h, err := ParseHeader(raw)
	if err != nil || h.MaxTimestamp < ts || h.LastOffset() < from {
		return 0, 0, false, err
	}
	err = Decode(raw, func(_ Header, r Record) error {
		if r.Timestamp >= ts && r.Offset >= from {
			offset, timestamp, found = r.Offset, r.Timestamp, true
			return errFound
		}
		return nil
	})
	switch {
	case found:
		return offset, timestamp, true, nil
	case errors.Is(err, ErrTooLarge):
		return max(h.BaseOffset, from), h.MaxTimestamp, true, nil
	}
	return 0, 0, false, err
}
