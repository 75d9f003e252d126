package pipeline

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/sluicehq/sluice/row"
)

// Binary encodings of the state the keyed steps keep (window keys and
// accumulators, dedup keys, join rows), for checkpoints: the state codecs
// use these through encoding.BinaryMarshaler. Each starts with a version
// byte so that a later Sluice can still read them.

const codecVersion = 1

var errCodec = errors.New("pipeline: bad state encoding")

// MarshalBinary implements encoding.BinaryMarshaler.
func (k rowKey) MarshalBinary() ([]byte, error) {
	b := []byte{codecVersion}
	if k.enc != "" {
		b = append(b, 1)
		b = binary.AppendUvarint(b, uint64(len(k.enc)))
		return append(b, k.enc...), nil
	}
	return k.v.AppendBinary(append(b, 0)), nil
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler.
func (k *rowKey) UnmarshalBinary(b []byte) error {
	if len(b) < 2 || b[0] != codecVersion {
		return fmt.Errorf("%w: key", errCodec)
	}
	switch b[1] {
	case 0:
		v, _, err := row.DecodeValue(b[2:])
		if err != nil {
			return err
		}
		*k = rowKey{v: v}
		return nil
	case 1:
		l, n := binary.Uvarint(b[2:])
		if n <= 0 || l != uint64(len(b)-2-n) {
			return fmt.Errorf("%w: key length", errCodec)
		}
		*k = rowKey{enc: string(b[2+n:])}
		return nil
	}
	return fmt.Errorf("%w: key tag %d", errCodec, b[1])
}

// MarshalBinary implements encoding.BinaryMarshaler.
func (k keyedRow) MarshalBinary() ([]byte, error) {
	kb, _ := k.key.MarshalBinary()
	b := binary.AppendUvarint([]byte{codecVersion}, uint64(len(kb)))
	b = append(b, kb...)
	return k.r.AppendBinary(b), nil
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler.
func (k *keyedRow) UnmarshalBinary(b []byte) error {
	if len(b) < 1 || b[0] != codecVersion {
		return fmt.Errorf("%w: keyed row", errCodec)
	}
	l, n := binary.Uvarint(b[1:])
	if n <= 0 || l > uint64(len(b)-1-n) {
		return fmt.Errorf("%w: keyed row key", errCodec)
	}
	if err := k.key.UnmarshalBinary(b[1+n : 1+n+int(l)]); err != nil {
		return err
	}
	r, _, err := row.DecodeRow(b[1+n+int(l):])
	if err != nil {
		return err
	}
	k.r = r
	return nil
}

// MarshalBinary implements encoding.BinaryMarshaler.
func (a winAcc) MarshalBinary() ([]byte, error) {
	b := []byte{codecVersion}
	b = binary.AppendUvarint(b, uint64(len(a.keyVals)))
	for _, v := range a.keyVals {
		b = v.AppendBinary(b)
	}
	b = binary.AppendUvarint(b, uint64(len(a.aggs)))
	for i := range a.aggs {
		s := &a.aggs[i]
		var flags byte
		if s.isFloat {
			flags |= 1
		}
		if s.set {
			flags |= 2
		}
		b = append(b, flags)
		b = binary.AppendVarint(b, s.n)
		b = binary.AppendVarint(b, s.i)
		b = binary.BigEndian.AppendUint64(b, math.Float64bits(s.f))
		b = s.v.AppendBinary(b)
		b = binary.AppendVarint(b, s.ts)
		keys := make([]string, 0, len(s.distinct))
		for k := range s.distinct {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = binary.AppendUvarint(b, uint64(len(keys)))
		for _, k := range keys {
			b = binary.AppendUvarint(b, uint64(len(k)))
			b = append(b, k...)
		}
	}
	return b, nil
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler.
func (a *winAcc) UnmarshalBinary(b []byte) error {
	d := decoder{b: b}
	if d.byte() != codecVersion {
		return fmt.Errorf("%w: window accumulator version", errCodec)
	}
	nk := d.uvarint()
	if nk > uint64(len(b)) {
		d.fail()
		nk = 0
	}
	a.keyVals = make([]row.Value, 0, nk)
	for range nk {
		a.keyVals = append(a.keyVals, d.value())
	}
	na := d.uvarint()
	if na > uint64(len(b)) {
		d.fail()
		na = 0
	}
	a.aggs = make([]aggState, na)
	for i := range a.aggs {
		s := &a.aggs[i]
		flags := d.byte()
		s.isFloat, s.set = flags&1 != 0, flags&2 != 0
		s.n = d.varint()
		s.i = d.varint()
		s.f = math.Float64frombits(d.uint64())
		s.v = d.value()
		s.ts = d.varint()
		nd := d.uvarint()
		if nd > uint64(len(b)) {
			d.fail()
			nd = 0
		}
		for range nd {
			if s.distinct == nil {
				s.distinct = map[string]struct{}{}
			}
			s.distinct[d.str()] = struct{}{}
		}
	}
	if d.err != nil {
		return fmt.Errorf("%w: window accumulator: %w", errCodec, d.err)
	}
	return nil
}

// decoder reads a byte slice, keeping the first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errCodec
	}
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) < 1 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uint64() uint64 {
	if d.err != nil || len(d.b) < 8 {
		d.fail()
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) value() row.Value {
	if d.err != nil {
		return row.Value{}
	}
	v, n, err := row.DecodeValue(d.b)
	if err != nil {
		d.err = err
		return row.Value{}
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string {
	l := d.uvarint()
	if d.err != nil || l > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	s := string(d.b[:l])
	d.b = d.b[l:]
	return s
}
