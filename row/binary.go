package row

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// The binary encoding of values and rows, for state snapshots and
// checkpoints. It is self-delimiting and stable across versions:
//
//	value: kind byte, then
//	       bool: 1 byte; int, timestamp: zig-zag varint;
//	       float: 8 bytes big-endian IEEE 754;
//	       string, json: uvarint length, bytes; null: nothing
//	row:   uvarint count, values, uvarint length of Rest, Rest

// ErrBinary is wrapped by every binary decoding error.
var ErrBinary = errors.New("row: bad binary encoding")

// AppendBinary appends v's binary encoding to dst.
func (v Value) AppendBinary(dst []byte) []byte {
	dst = append(dst, byte(v.kind))
	switch v.kind {
	case KindBool:
		return append(dst, byte(v.n&1))
	case KindInt, KindTimestamp:
		return binary.AppendVarint(dst, int64(v.n))
	case KindFloat:
		return binary.BigEndian.AppendUint64(dst, v.n)
	case KindString, KindJSON:
		dst = binary.AppendUvarint(dst, uint64(len(v.s)))
		return append(dst, v.s...)
	}
	return dst
}

// DecodeValue decodes one value from the start of b and returns it and
// the number of bytes read.
func DecodeValue(b []byte) (Value, int, error) {
	if len(b) == 0 {
		return Value{}, 0, fmt.Errorf("%w: empty value", ErrBinary)
	}
	k := Kind(b[0])
	switch k {
	case KindNull:
		return Value{}, 1, nil
	case KindBool:
		if len(b) < 2 || b[1] > 1 {
			return Value{}, 0, fmt.Errorf("%w: bool", ErrBinary)
		}
		return Bool(b[1] == 1), 2, nil
	case KindInt, KindTimestamp:
		i, n := binary.Varint(b[1:])
		if n <= 0 {
			return Value{}, 0, fmt.Errorf("%w: %s", ErrBinary, k)
		}
		return Value{kind: k, n: uint64(i)}, 1 + n, nil
	case KindFloat:
		if len(b) < 9 {
			return Value{}, 0, fmt.Errorf("%w: float", ErrBinary)
		}
		return Float(math.Float64frombits(binary.BigEndian.Uint64(b[1:]))), 9, nil
	case KindString, KindJSON:
		l, n := binary.Uvarint(b[1:])
		if n <= 0 || l > uint64(len(b)-1-n) {
			return Value{}, 0, fmt.Errorf("%w: %s length", ErrBinary, k)
		}
		s := string(b[1+n : 1+n+int(l)])
		return Value{kind: k, s: s}, 1 + n + int(l), nil
	}
	return Value{}, 0, fmt.Errorf("%w: unknown kind %d", ErrBinary, b[0])
}

// AppendBinary appends r's binary encoding to dst.
func (r Row) AppendBinary(dst []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(r.Vals)))
	for _, v := range r.Vals {
		dst = v.AppendBinary(dst)
	}
	dst = binary.AppendUvarint(dst, uint64(len(r.Rest)))
	return append(dst, r.Rest...)
}

// DecodeRow decodes one row from the start of b and returns it and the
// number of bytes read. The row does not share memory with b.
func DecodeRow(b []byte) (Row, int, error) {
	cnt, n := binary.Uvarint(b)
	if n <= 0 || cnt > uint64(len(b)) {
		return Row{}, 0, fmt.Errorf("%w: row length", ErrBinary)
	}
	r := Row{}
	if cnt > 0 {
		r.Vals = make([]Value, cnt)
	}
	for i := range r.Vals {
		v, m, err := DecodeValue(b[n:])
		if err != nil {
			return Row{}, 0, fmt.Errorf("field %d: %w", i, err)
		}
		r.Vals[i] = v
		n += m
	}
	l, m := binary.Uvarint(b[n:])
	if m <= 0 || l > uint64(len(b)-n-m) {
		return Row{}, 0, fmt.Errorf("%w: rest length", ErrBinary)
	}
	n += m
	if l > 0 {
		r.Rest = append([]byte(nil), b[n:n+int(l)]...)
	}
	return r, n + int(l), nil
}
