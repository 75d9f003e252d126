package exec

import (
	"encoding/binary"
	"fmt"

	"github.com/sluicehq/sluice/row"
)

// The state records of the join and rank operators. Each implements
// encoding.BinaryMarshaler (value receiver) and BinaryUnmarshaler
// (pointer receiver), which is how package state/codec encodes them for
// checkpoints and byte-storing backends.

// joinRec is one distinct row of one side of a regular join, under the
// row's binary encoding in the side's map state.
type joinRec struct {
	Vals []row.Value
	// Count is the row's multiplicity (inserted minus retracted).
	Count int64
	// Matches is the number of rows of the other side (with their
	// multiplicities) that join with this row; kept for the preserved
	// side of outer joins and the left side of semi and anti joins.
	Matches int64
	// Ts is the record timestamp of the latest insertion.
	Ts int64
	// Touched is the processing time of the last write (state TTL).
	Touched int64
}

// MarshalBinary implements encoding.BinaryMarshaler.
func (r joinRec) MarshalBinary() ([]byte, error) {
	b := row.Row{Vals: r.Vals}.AppendBinary(nil)
	b = binary.AppendVarint(b, r.Count)
	b = binary.AppendVarint(b, r.Matches)
	b = binary.AppendVarint(b, r.Ts)
	return binary.AppendVarint(b, r.Touched), nil
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler.
func (r *joinRec) UnmarshalBinary(b []byte) error {
	rw, n, err := row.DecodeRow(b)
	if err != nil {
		return fmt.Errorf("join state row: %w", err)
	}
	r.Vals = rw.Vals
	ints, err := decodeVarints(b[n:], 4)
	if err != nil {
		return fmt.Errorf("join state row: %w", err)
	}
	r.Count, r.Matches, r.Ts, r.Touched = ints[0], ints[1], ints[2], ints[3]
	return nil
}

// timedRow is a buffered row of an interval or window join.
type timedRow struct {
	Vals    []row.Value
	Ts      int64
	Matched bool
}

// MarshalBinary implements encoding.BinaryMarshaler.
func (r timedRow) MarshalBinary() ([]byte, error) {
	b := row.Row{Vals: r.Vals}.AppendBinary(nil)
	b = binary.AppendVarint(b, r.Ts)
	m := int64(0)
	if r.Matched {
		m = 1
	}
	return binary.AppendVarint(b, m), nil
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler.
func (r *timedRow) UnmarshalBinary(b []byte) error {
	rw, n, err := row.DecodeRow(b)
	if err != nil {
		return fmt.Errorf("join buffered row: %w", err)
	}
	ints, err := decodeVarints(b[n:], 2)
	if err != nil {
		return fmt.Errorf("join buffered row: %w", err)
	}
	r.Vals, r.Ts, r.Matched = rw.Vals, ints[0], ints[1] != 0
	return nil
}

// decodeVarints decodes exactly n varints that fill b.
func decodeVarints(b []byte, n int) ([]int64, error) {
	out := make([]int64, n)
	for i := range out {
		v, k := binary.Varint(b)
		if k <= 0 {
			return nil, fmt.Errorf("%w: truncated integer %d of %d", row.ErrBinary, i+1, n)
		}
		out[i] = v
		b = b[k:]
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", row.ErrBinary, len(b))
	}
	return out, nil
}

// hasNull reports whether a key column of vals is null: such a row joins
// with nothing (SQL's = is never true on NULL).
func hasNull(vals []row.Value, key []int) bool {
	for _, i := range key {
		if i >= len(vals) || vals[i].IsNull() {
			return true
		}
	}
	return false
}

// rowKey is the identity of a row's values in state: its binary encoding.
func rowKey(vals []row.Value) string {
	var buf [128]byte // on the stack when the encoding fits
	return string(row.Row{Vals: vals}.AppendBinary(buf[:0]))
}
