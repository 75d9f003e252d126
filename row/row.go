package row

import (
	"encoding/binary"
	"math"
	"unsafe"
)

// Row is one record of the YAML pipeline path: Vals[i] is the value of
// field i of the schema in force where the row is. Rest holds members of
// the input JSON object that no step referenced, as raw JSON members
// separated by commas without the surrounding braces (`"a":1,"b":[2]`), or
// nil; encoders write them after the schema's fields.
//
// Rows are values; operators that change a row make a new Vals slice
// rather than write into one they received, since a row may be shared by
// several consumers of a stream.
type Row struct {
	Vals []Value
	Rest []byte
}

// Get returns field i, or null when the row is shorter.
func (r Row) Get(i int) Value {
	if i < len(r.Vals) {
		return r.Vals[i]
	}
	return Value{}
}

// AppendKey appends a binary encoding of the fields at idx to dst, such
// that two rows have equal encodings exactly when those fields are equal
// kind by kind and value by value (an int 1 and a float 1.0 differ). It is
// the key of keyed steps (window, dedup, join).
func (r Row) AppendKey(dst []byte, idx []int) []byte {
	for _, i := range idx {
		v := r.Get(i)
		dst = append(dst, byte(v.kind))
		switch v.kind {
		case KindNull:
		case KindString, KindJSON:
			dst = binary.AppendUvarint(dst, uint64(len(v.s)))
			dst = append(dst, v.s...)
		case KindFloat:
			f := math.Float64frombits(v.n)
			if f == 0 {
				f = 0 // -0 and +0 are one key
			}
			dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(f))
		default:
			dst = binary.BigEndian.AppendUint64(dst, v.n)
		}
	}
	return dst
}

// Arena hands out byte storage for the strings of decoded rows in large
// blocks: one allocation per block instead of one per string. Memory of
// a block stays alive while any string in it does. An Arena is not safe
// for concurrent use; give each decoder its own.
type Arena struct {
	buf []byte
	// Vals is a slab from which rows' value slices are cut.
	vals []Value
}

const (
	arenaBlock = 64 << 10
	slabRows   = 256
)

// String returns a string holding a copy of b, stored in the arena.
func (a *Arena) String(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(a.Bytes(b)), len(b))
}

// Bytes returns a copy of b stored in the arena, with capacity len(b).
func (a *Arena) Bytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	if len(b) > arenaBlock/4 {
		return append([]byte(nil), b...)
	}
	if cap(a.buf)-len(a.buf) < len(b) {
		a.buf = make([]byte, 0, arenaBlock)
	}
	off := len(a.buf)
	a.buf = append(a.buf, b...)
	return a.buf[off:len(a.buf):len(a.buf)]
}

// Values returns a zeroed slice of n values cut from a slab, with
// capacity n.
func (a *Arena) Values(n int) []Value {
	if n == 0 {
		return nil
	}
	if n > 64 {
		return make([]Value, n)
	}
	if len(a.vals) < n {
		a.vals = make([]Value, n*slabRows)
	}
	v := a.vals[:n:n]
	a.vals = a.vals[n:]
	return v
}

// unsafeString views b as a string without copying, for calls that do not
// keep their argument (strconv parsing).
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}
