package record

import (
	"encoding/binary"
	"fmt"
)

// ControlType is the type of a control record.
type ControlType int16

// Control record types: transaction markers.
const (
	ControlAbort  ControlType = 0
	ControlCommit ControlType = 1
)

// AppendControlBatch appends a control batch holding one transaction marker
// (commit or abort) for producerID/epoch, timestamped ts.
func AppendControlBatch(dst []byte, producerID int64, epoch int16, commit bool, ts int64) []byte {
	typ := ControlAbort
	if commit {
		typ = ControlCommit
	}
	key := binary.BigEndian.AppendUint16(nil, 0) // version
	key = binary.BigEndian.AppendUint16(key, uint16(typ))
	val := binary.BigEndian.AppendUint16(nil, 0) // version
	val = binary.BigEndian.AppendUint32(val, 0)  // coordinator epoch
	start := len(dst)
	dst, _ = AppendBatch(dst, []Record{{Timestamp: ts, Key: key, Value: val}}, BatchOptions{
		ProducerID: producerID, ProducerEpoch: epoch, BaseSequence: -1, Transactional: true,
	})
	b := dst[start:]
	binary.BigEndian.PutUint16(b[21:], binary.BigEndian.Uint16(b[21:])|attrControl)
	fixCRC(b)
	return dst
}

// ParseControlKey returns the type of a control record from its key.
func ParseControlKey(key []byte) (ControlType, error) {
	if len(key) < 4 {
		return 0, fmt.Errorf("%w: control record key of %d bytes", ErrCorrupt, len(key))
	}
	return ControlType(binary.BigEndian.Uint16(key[2:])), nil
}
