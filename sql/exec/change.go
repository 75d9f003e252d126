package exec

import "github.com/sluicehq/sluice/row"

// Op is the kind of a changelog row, as Flink names them.
type Op uint8

// The changelog operations. An append-only stream holds only Insert.
const (
	Insert       Op = iota // +I
	UpdateBefore           // -U: the previous value of an updated row
	UpdateAfter            // +U: the new value of an updated row
	Delete                 // -D
)

var opNames = [...]string{"+I", "-U", "+U", "-D"}

// String returns +I, -U, +U or -D.
func (o Op) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return "?"
}

// IsRetract reports -U and -D: the row is withdrawn.
func (o Op) IsRetract() bool { return o == UpdateBefore || o == Delete }

// Change is one row of a SQL stream: its values, in the columns of the
// plan node that produced it, and its changelog operation. The stream
// record's timestamp is the row's event time when the node has a rowtime
// column. Vals is never written after the Change is emitted: operators
// that change a row build a new slice.
type Change struct {
	Op   Op
	Vals []row.Value
}

// Key returns the key of the columns idx of vals, as a string usable as
// a map key and a state key: equal exactly when the columns are equal
// value by value (row.Row.AppendKey). A nil or empty idx gives the one
// key "" (a global aggregate).
func Key(vals []row.Value, idx []int) string {
	if len(idx) == 0 {
		return ""
	}
	return string(row.Row{Vals: vals}.AppendKey(nil, idx))
}

// AppendBinary appends c's binary encoding (op, then the values) to dst,
// for state and checkpoints.
func (c Change) AppendBinary(dst []byte) []byte {
	dst = append(dst, byte(c.Op))
	return row.Row{Vals: c.Vals}.AppendBinary(dst)
}

// DecodeChange decodes a Change written by AppendBinary and returns the
// number of bytes read.
func DecodeChange(b []byte) (Change, int, error) {
	if len(b) == 0 {
		return Change{}, 0, row.ErrBinary
	}
	r, n, err := row.DecodeRow(b[1:])
	if err != nil {
		return Change{}, 0, err
	}
	return Change{Op: Op(b[0]), Vals: r.Vals}, n + 1, nil
}
