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
