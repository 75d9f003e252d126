package record

import (
	"encoding/binary"
)

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
