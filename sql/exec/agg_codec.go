package exec

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/sluicehq/sluice/row"
)

// The checkpoint encoding of an accRow (state/codec calls MarshalBinary
// and UnmarshalBinary), version 2:
//
//	version byte 2
//	varint rows, touched, timer, flushAt; byte dirty
//	values keyVals; byte 0 (out nil) or 1 then values out
//	uvarint calls, per call: varint n, varint i, varint hi, 8 bytes f, value v,
//	    uvarint seq, uvarint len(bag) then per entry value and varint n,
//	    byte 0 (no user accumulator) or 1 then uvarint length and bytes
//	uvarint sets, per set: uvarint nf, uvarint entries, per entry value
//	    then nf varint counts
//
// values: uvarint count then row.Value binary encodings.
//
// Version 1 is version 2 without hi (a DECIMAL sum's high word, then 0);
// it is still read.

const accVersion = 2

func aggAppendVals(dst []byte, vs []row.Value) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(vs)))
	for _, v := range vs {
		dst = v.AppendBinary(dst)
	}
	return dst
}

// MarshalBinary encodes the accumulator for a checkpoint. User
// accumulators restored from a checkpoint and not decoded since (the
// group or window saw no row) are written as they were read.
func (a accRow) MarshalBinary() ([]byte, error) {
	b := []byte{accVersion}
	b = binary.AppendVarint(b, a.rows)
	b = binary.AppendVarint(b, a.touched)
	b = binary.AppendVarint(b, a.timer)
	b = binary.AppendVarint(b, a.flushAt)
	if a.dirty {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = aggAppendVals(b, a.keyVals)
	if a.out == nil {
		b = append(b, 0)
	} else {
		b = aggAppendVals(append(b, 1), a.out)
	}
	b = binary.AppendUvarint(b, uint64(len(a.calls)))
	for i := range a.calls {
		c := &a.calls[i]
		b = binary.AppendVarint(b, c.n)
		b = binary.AppendVarint(b, c.i)
		b = binary.AppendVarint(b, c.hi)
		b = binary.BigEndian.AppendUint64(b, math.Float64bits(c.f))
		b = c.v.AppendBinary(b)
		b = binary.AppendUvarint(b, c.seq)
		b = binary.AppendUvarint(b, uint64(len(c.bag)))
		for _, e := range c.bag {
			b = e.v.AppendBinary(b)
			b = binary.AppendVarint(b, e.n)
		}
		var u []byte
		switch {
		case c.u != nil:
			u = c.u.AppendBinary(make([]byte, 0, 16)) // non-nil, even empty
		case a.userRaw != nil:
			u = a.userRaw[i] // nil: the call has no user accumulator
		}
		if u == nil {
			b = append(b, 0)
		} else {
			b = binary.AppendUvarint(append(b, 1), uint64(len(u)))
			b = append(b, u...)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(a.dist)))
	for i := range a.dist {
		d := &a.dist[i]
		nf := 0
		if d.size() > 0 {
			nf = len(d.counts) / (d.size() + len(d.free))
		}
		b = binary.AppendUvarint(b, uint64(nf))
		b = binary.AppendUvarint(b, uint64(d.size()))
		for v, slot := range d.all {
			b = v.AppendBinary(b)
			for _, n := range d.counts[int(slot)*nf : int(slot+1)*nf] {
				b = binary.AppendVarint(b, n)
			}
		}
	}
	return b, nil
}

type accDecoder struct {
	b   []byte
	err error
}

func (d *accDecoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("aggregate state: bad encoding at %s", what)
	}
	d.b = nil
}

func (d *accDecoder) varint(what string) int64 {
	x, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *accDecoder) uvarint(what string, limit int) int {
	x, n := binary.Uvarint(d.b)
	if n <= 0 || x > uint64(limit) {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return int(x)
}

func (d *accDecoder) u64(what string) uint64 {
	x, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *accDecoder) byte1(what string) byte {
	if len(d.b) == 0 {
		d.fail(what)
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *accDecoder) value(what string) row.Value {
	if d.err != nil {
		return row.Value{}
	}
	v, n, err := row.DecodeValue(d.b)
	if err != nil {
		d.fail(what)
		return row.Value{}
	}
	d.b = d.b[n:]
	return v
}

func (d *accDecoder) vals(what string) []row.Value {
	n := d.uvarint(what, len(d.b))
	if n == 0 {
		return nil
	}
	vs := make([]row.Value, n)
	for i := range vs {
		vs[i] = d.value(what)
	}
	return vs
}

// UnmarshalBinary decodes an accumulator written by MarshalBinary. User
// accumulators stay encoded until the operator's plan decodes them.
func (a *accRow) UnmarshalBinary(b []byte) error {
	if len(b) == 0 || b[0] != accVersion && b[0] != 1 {
		return fmt.Errorf("aggregate state: unknown encoding version (want 1 or %d)", accVersion)
	}
	withHi := b[0] >= 2
	d := &accDecoder{b: b[1:]}
	a.rows = d.varint("rows")
	a.touched = d.varint("touched")
	a.timer = d.varint("timer")
	a.flushAt = d.varint("flush time")
	a.dirty = d.byte1("dirty") == 1
	a.keyVals = d.vals("key")
	if d.byte1("out") == 1 {
		a.out = d.vals("out")
		if a.out == nil {
			a.out = []row.Value{}
		}
	}
	nc := d.uvarint("calls", len(d.b))
	a.calls = make([]callAcc, nc)
	for i := range a.calls {
		c := &a.calls[i]
		c.n = d.varint("n")
		c.i = d.varint("sum")
		if withHi {
			c.hi = d.varint("sum high word")
		}
		if len(d.b) < 8 {
			d.fail("float sum")
		} else {
			c.f = math.Float64frombits(binary.BigEndian.Uint64(d.b))
			d.b = d.b[8:]
		}
		c.v = d.value("value")
		c.seq = d.u64("seq")
		aggRaiseSeq(c.seq)
		if nb := d.uvarint("bag", len(d.b)); nb > 0 {
			c.bag = make([]bagEntry, nb)
			for j := range c.bag {
				c.bag[j].v = d.value("bag value")
				c.bag[j].n = d.varint("bag count")
			}
		}
		if d.byte1("user") == 1 {
			l := d.uvarint("user length", len(d.b))
			if l > len(d.b) {
				d.fail("user length")
			}
			if d.err == nil {
				if a.userRaw == nil {
					a.userRaw = make([][]byte, nc)
				}
				// Never nil, even empty: nil is "no accumulator".
				a.userRaw[i] = append(make([]byte, 0, l), d.b[:l]...)
				d.b = d.b[l:]
			}
		}
	}
	ns := d.uvarint("sets", len(d.b))
	if ns > 0 {
		a.dist = make([]distinctSet, ns)
	}
	for i := range a.dist {
		s := &a.dist[i]
		nf := d.uvarint("filters", 1<<16)
		ne := d.uvarint("entries", len(d.b))
		if ne == 0 || nf == 0 {
			continue
		}
		if ne*nf > len(d.b) {
			d.fail("distinct entries")
			break
		}
		s.counts = make([]int64, 0, ne*nf)
		for j := range ne {
			v := d.value("distinct value")
			s.put(v, int32(j))
			for range nf {
				s.counts = append(s.counts, d.varint("distinct count"))
			}
		}
	}
	if d.err != nil {
		return d.err
	}
	if len(d.b) != 0 {
		return fmt.Errorf("aggregate state: %d bytes after the accumulator", len(d.b))
	}
	return nil
}

// aggRaiseSeq lifts the FIRST/LAST_VALUE sequence past s.
func aggRaiseSeq(s uint64) {
	for {
		cur := aggSeqCounter.Load()
		if cur >= s || aggSeqCounter.CompareAndSwap(cur, s) {
			return
		}
	}
}
