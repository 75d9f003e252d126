package connect

import (
	"github.com/sluicehq/sluice/nexmark"
	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/exec"
)

// JSONEncoder writes the rows of one table's columns as AppendChangeJSON
// does, byte for byte, with the work that depends only on the columns
// (quoting the member names) done once. Use it where many rows of the
// same columns are written.
type JSONEncoder struct {
	cols []Column
	o    JSONOptions
	// keys[i] is `"name":` of column i, preceded by a comma but for the
	// first member; nil when some column is nested (a ROW's fields):
	// Append then writes as AppendChangeJSON.
	keys [][]byte
}

// NewJSONEncoder returns an encoder of rows of cols.
func NewJSONEncoder(cols []Column, o JSONOptions) *JSONEncoder {
	e := &JSONEncoder{cols: cols, o: o}
	for _, c := range cols {
		if len(c.Path) > 1 {
			return e
		}
	}
	e.keys = make([][]byte, len(cols))
	for i, c := range cols {
		var k []byte
		if i > 0 || o.Op {
			k = append(k, ',')
		}
		k = nexmark.AppendJSONString(k, c.path()[0])
		e.keys[i] = append(k, ':')
	}
	return e
}

// Append appends c's JSON object to dst.
func (e *JSONEncoder) Append(dst []byte, c exec.Change) []byte {
	if e.keys == nil {
		return AppendChangeJSON(dst, e.cols, c, e.o)
	}
	dst = append(dst, '{')
	if e.o.Op {
		dst = append(dst, `"op":"`...)
		dst = append(dst, c.Op.String()...)
		dst = append(dst, '"')
	}
	for i, k := range e.keys {
		dst = append(dst, k...)
		var v row.Value
		if i < len(c.Vals) {
			v = c.Vals[i]
		}
		dst = appendValue(dst, e.cols[i].Type, v, e.o)
	}
	return append(dst, '}')
}
