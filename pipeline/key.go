package pipeline

import (
	"encoding/binary"
	"math"

	"github.com/cespare/xxhash/v2"

	"github.com/sluicehq/sluice/row"
)

// rowKey is the key of keyed steps. A one-field key is the field's value
// itself (no allocation: a string key shares the decoded row's memory);
// a composite key is the fields' binary encoding (row.Row.AppendKey).
// Equal keys are equal field by field, kind by kind (int 1 and float 1.0
// differ; -0.0 and +0.0 do not).
type rowKey struct {
	v   row.Value
	enc string
}

func makeKey(r row.Row, idx []int) rowKey {
	if len(idx) == 1 {
		v := r.Get(idx[0])
		if v.Kind() == row.KindFloat && v.AsFloat() == 0 {
			v = row.Float(0)
		}
		return rowKey{v: v}
	}
	var kb [64]byte // the encoding stays on the stack when short
	return rowKey{enc: string(r.AppendKey(kb[:0], idx))}
}

// KeyHash implements state.KeyHasher: a hash stable across processes, so
// that a key keeps its key group when state is restored.
func (k rowKey) KeyHash() uint64 {
	if k.enc != "" {
		return xxhash.Sum64String(k.enc)
	}
	var b [9]byte
	b[0] = byte(k.v.Kind())
	switch k.v.Kind() {
	case row.KindString, row.KindJSON:
		d := xxhash.New()
		d.Write(b[:1])
		d.WriteString(k.v.AsString())
		return d.Sum64()
	case row.KindFloat:
		binary.BigEndian.PutUint64(b[1:], math.Float64bits(k.v.AsFloat()))
	case row.KindBool:
		if k.v.AsBool() {
			b[1] = 1
		}
	case row.KindNull:
	default:
		binary.BigEndian.PutUint64(b[1:], uint64(k.v.AsInt()))
	}
	return xxhash.Sum64(b[:])
}
