package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// HeaderSize is the size in bytes of a v2 record batch header.
const HeaderSize = 61

// lengthFieldEnd is where the batchLength field ends: batchLength counts the
// bytes after it, so a whole batch is batchLength+12 bytes.
const lengthFieldEnd = 12

// crcStart is the first byte covered by the batch CRC (the attributes field).
const crcStart = 21

// MaxBatchSize bounds the length a header may claim, so that a corrupt length
// field cannot make a reader allocate or skip gigabytes.
const MaxBatchSize = 256 << 20

var (
	// ErrCorrupt reports bytes that are not a valid record batch: a bad
	// length, magic byte or CRC, or records that do not parse.
	ErrCorrupt = errors.New("corrupt record batch")
	// ErrShort reports a buffer too short to hold what its header announces.
	ErrShort = errors.New("short record batch")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Attribute bits of the batch header.
const (
	attrCodecMask     = 0x07
	attrLogAppendTime = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20
)

// Header is the fixed part of a v2 record batch.
type Header struct {
	BaseOffset           int64
	Length               int32 // bytes after the Length field
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	BaseTimestamp        int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	NumRecords           int32
}

// Size is the number of bytes of the whole batch, header included.
func (h Header) Size() int { return int(h.Length) + lengthFieldEnd }

// LastOffset is the offset of the batch's last record.
func (h Header) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// LastSequence is the sequence number of the batch's last record (wrapping
// at MaxInt32 as Kafka does), or -1 for a batch without sequence numbers.
func (h Header) LastSequence() int32 {
	if h.BaseSequence < 0 {
		return -1
	}
	s := int64(h.BaseSequence) + int64(h.LastOffsetDelta)
	if s > 1<<31-1 {
		s -= 1 << 31
	}
	return int32(s)
}

// Codec is the compression codec of the batch's records.
func (h Header) Codec() Codec { return Codec(h.Attributes & attrCodecMask) }

// IsTransactional reports whether the batch belongs to a transaction.
func (h Header) IsTransactional() bool { return h.Attributes&attrTransactional != 0 }

// IsControl reports whether the batch holds control records (transaction
// commit or abort markers) rather than user data.
func (h Header) IsControl() bool { return h.Attributes&attrControl != 0 }

// LogAppendTime reports whether the log, not the producer, set the batch's
// timestamps; every record's timestamp is then MaxTimestamp.
func (h Header) LogAppendTime() bool { return h.Attributes&attrLogAppendTime != 0 }

// ParseHeader parses the header at the start of b, which may hold more bytes
// than the header. It checks the magic byte and that the announced length is
// plausible, not the CRC (see Verify).
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("%w: %d bytes, a header needs %d", ErrShort, len(b), HeaderSize)
	}
	h := Header{
		BaseOffset:           int64(binary.BigEndian.Uint64(b[0:])),
		Length:               int32(binary.BigEndian.Uint32(b[8:])),
		PartitionLeaderEpoch: int32(binary.BigEndian.Uint32(b[12:])),
		Magic:                int8(b[16]),
		CRC:                  binary.BigEndian.Uint32(b[17:]),
		Attributes:           int16(binary.BigEndian.Uint16(b[21:])),
		LastOffsetDelta:      int32(binary.BigEndian.Uint32(b[23:])),
		BaseTimestamp:        int64(binary.BigEndian.Uint64(b[27:])),
		MaxTimestamp:         int64(binary.BigEndian.Uint64(b[35:])),
		ProducerID:           int64(binary.BigEndian.Uint64(b[43:])),
		ProducerEpoch:        int16(binary.BigEndian.Uint16(b[51:])),
		BaseSequence:         int32(binary.BigEndian.Uint32(b[53:])),
		NumRecords:           int32(binary.BigEndian.Uint32(b[57:])),
	}
	if h.Magic != 2 {
		return h, fmt.Errorf("%w: magic byte %d at offset %d, only magic 2 is supported", ErrCorrupt, h.Magic, h.BaseOffset)
	}
	if h.Length < HeaderSize-lengthFieldEnd || h.Length > MaxBatchSize {
		return h, fmt.Errorf("%w: batch length %d at offset %d", ErrCorrupt, h.Length, h.BaseOffset)
	}
	if h.LastOffsetDelta < 0 || h.NumRecords < 0 {
		return h, fmt.Errorf("%w: negative record count at offset %d", ErrCorrupt, h.BaseOffset)
	}
	return h, nil
}

// Verify checks that b is exactly one whole batch with a correct CRC-32C and
// returns its header.
func Verify(b []byte) (Header, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return h, err
	}
	if h.Size() != len(b) {
		return h, fmt.Errorf("%w: header announces %d bytes, have %d (offset %d)", ErrCorrupt, h.Size(), len(b), h.BaseOffset)
	}
	if got := crc32.Checksum(b[crcStart:], castagnoli); got != h.CRC {
		return h, fmt.Errorf("%w: CRC mismatch at offset %d (stored %08x, computed %08x)", ErrCorrupt, h.BaseOffset, h.CRC, got)
	}
	return h, nil
}

// SetBaseOffset assigns the base offset of the batch at the start of b. The
// base offset is not covered by the CRC.
func SetBaseOffset(b []byte, off int64) { binary.BigEndian.PutUint64(b[0:], uint64(off)) }

// SetPartitionLeaderEpoch sets the leader epoch field (not covered by the CRC).
func SetPartitionLeaderEpoch(b []byte, epoch int32) {
	binary.BigEndian.PutUint32(b[12:], uint32(epoch))
}

// SetLogAppendTime marks the batch at the start of b (one whole batch) as
// timestamped by the log at ts (epoch milliseconds) and recomputes its CRC.
func SetLogAppendTime(b []byte, ts int64) {
	attrs := binary.BigEndian.Uint16(b[21:]) | attrLogAppendTime
	binary.BigEndian.PutUint16(b[21:], attrs)
	binary.BigEndian.PutUint64(b[35:], uint64(ts))
	fixCRC(b)
}

func fixCRC(b []byte) {
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[crcStart:], castagnoli))
}

// Batches calls fn for each whole batch at the start of b, in order, with its
// parsed header and raw bytes. A trailing partial batch, as a Kafka fetch may
// return, is ignored. CRCs are not checked; see Verify.
func Batches(b []byte, fn func(h Header, raw []byte) error) error {
	for len(b) >= HeaderSize {
		h, err := ParseHeader(b)
		if err != nil {
			return err
		}
		if h.Size() > len(b) {
			return nil
		}
		if err := fn(h, b[:h.Size()]); err != nil {
			return err
		}
		b = b[h.Size():]
	}
	return nil
}
