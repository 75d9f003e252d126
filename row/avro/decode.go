package avro

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"unsafe"

	"github.com/sluicehq/sluice/row"
)

// ErrData is wrapped by every error about a record's bytes: truncated,
// malformed, or holding a value the reader's schema has no place for.
var ErrData = errors.New("avro: bad record")

// maxDepth bounds the nesting of records, arrays, maps and unions.
const maxDepth = 128

// maxEmptyItems bounds the number of array or map items that take no
// bytes (nulls, empty records), which the input's size cannot bound, in
// one record: all its arrays and maps and all their blocks together, so
// that a few bytes of block counts cannot make millions of items.
const maxEmptyItems = 1 << 16

// Decoder decodes records with Programs. Strings of the rows it returns
// live in an arena it owns, like row.JSONDecoder's. A Decoder is not safe
// for concurrent use; make one per goroutine.
type Decoder struct {
	arena   row.Arena
	b       []byte
	pos     int
	err     error
	depth   int
	empty   int // items of no size read in this record (maxEmptyItems)
	scratch []byte
	num     []byte // decimal text
	digits  []byte
	rest    []byte
	big     big.Int
	// RawRest out of order: the rest fields' bytes in seg, segs[i] the
	// span of rest field i.
	seg  []byte
	segs [][2]int
}

// Decode decodes one record written with p's writer schema (the payload
// only: no wire-format header). The returned row does not share memory
// with data.
func (d *Decoder) Decode(p *Program, data []byte) (row.Row, error) {
	d.start(data)
	r := row.Row{Vals: d.arena.Values(p.width)}
	var rest []byte
	if p.keepRest || p.rawN > 0 {
		rest = d.rest[:0]
	}
	if p.rawN > 0 && !p.rawOrdered {
		d.seg = d.seg[:0]
		d.segs = append(d.segs[:0], make([][2]int, p.rawN)...)
	}
	for i := range p.fields {
		f := &p.fields[i]
		switch f.pos {
		case posSkip:
			d.skip(f.n)
		case posRaw:
			if p.rawOrdered {
				rest = d.raw(p, f, rest)
			} else {
				start := len(d.seg)
				d.seg = d.raw(p, f, d.seg)
				d.segs[f.raw] = [2]int{start, len(d.seg)}
			}
		case posRest:
			if len(rest) > 0 {
				rest = append(rest, ',')
			}
			rest = append(rest, f.key...)
			rest = d.json(f.n, rest)
		default:
			r.Vals[f.pos] = d.value(f.n)
		}
		if d.err != nil {
			return row.Row{}, d.done(rest, d.err)
		}
	}
	if d.pos != len(data) {
		return row.Row{}, d.done(rest, fmt.Errorf("%w: %d bytes left after the record (written with another schema?)", ErrData, len(data)-d.pos))
	}
	for _, dv := range p.defaults {
		r.Vals[dv.pos] = dv.v
	}
	if p.coerce {
		for i, k := range p.kinds {
			if v := r.Vals[i]; k != row.KindNull && !v.IsNull() && v.Kind() != k {
				cv, err := row.Coerce(v, k)
				if err != nil {
					return row.Row{}, d.done(rest, fmt.Errorf("%w: %w", ErrData, err))
				}
				r.Vals[i] = cv
			}
		}
	}
	if p.rawN > 0 {
		if !p.rawOrdered {
			for i, dv := range p.rawDefaults {
				d.segs[dv.idx] = [2]int{-1, i} // a default: its index
			}
			for _, sp := range d.segs {
				if sp[0] < 0 {
					rest = append(rest, p.rawDefaults[sp[1]].bin...)
				} else {
					rest = append(rest, d.seg[sp[0]:sp[1]]...)
				}
			}
		}
		if len(rest) > 0 {
			r.Rest = d.arena.Bytes(rest)
		}
	}
	if p.keepRest {
		if len(p.restDefaults) > 0 {
			if len(rest) > 0 {
				rest = append(rest, ',')
			}
			rest = append(rest, p.restDefaults...)
		}
		if len(rest) > 0 {
			r.Rest = d.arena.Bytes(rest)
		}
	}
	return r, d.done(rest, nil)
}

// raw appends rest field f in the reader's encoding: its bytes when the
// writer's type is the reader's, else its value re-encoded.
func (d *Decoder) raw(p *Program, f *topField, dst []byte) []byte {
	if f.conv == nil {
		start := d.pos
		d.skip(f.n)
		if d.err != nil {
			return dst
		}
		return append(dst, d.b[start:d.pos]...)
	}
	v := d.value(f.n)
	if d.err != nil {
		return dst
	}
	out, err := p.conv.value(dst, f.conv, v)
	if err != nil {
		d.fail("%v", err)
		return dst
	}
	return out
}

// done ends a Decode: it keeps the rest buffer for the next record and
// drops the reference to the input.
func (d *Decoder) done(rest []byte, err error) error {
	if rest != nil {
		d.rest = rest[:0]
	}
	d.b = nil
	return err
}

// decodeOne decodes a single value of n from b (defaults at compile time).
func (d *Decoder) decodeOne(n *node, b []byte) (row.Value, error) {
	d.start(b)
	v := d.value(n)
	d.b = nil
	return v, d.err
}

// jsonOne renders a single value of n from b as JSON.
func (d *Decoder) jsonOne(n *node, b []byte) ([]byte, error) {
	d.start(b)
	js := d.json(n, nil)
	d.b = nil
	return js, d.err
}

// start makes d read b from its first byte, with no error and the
// record's limits reset.
func (d *Decoder) start(b []byte) {
	d.b, d.pos, d.err, d.depth, d.empty = b, 0, nil, 0, 0
}

func (d *Decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrData}, args...)...)
	}
}

func (d *Decoder) truncated() {
	d.fail("truncated at byte %d", len(d.b))
}

// long reads a zigzag varint.
func (d *Decoder) long() int64 {
	var v uint64
	var shift uint
	for i := d.pos; i < len(d.b); i++ {
		c := d.b[i]
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			d.pos = i + 1
			return int64(v>>1) ^ -int64(v&1)
		}
		shift += 7
		if shift > 63 {
			d.fail("varint longer than 10 bytes at byte %d", d.pos)
			return 0
		}
	}
	d.pos = len(d.b)
	d.truncated()
	return 0
}

func (d *Decoder) int() int64 {
	v := d.long()
	if v != int64(int32(v)) {
		d.fail("int %d out of range", v)
		return 0
	}
	return v
}

// bytes reads a length-prefixed byte string; the result aliases the input.
func (d *Decoder) bytes() []byte {
	n := d.long()
	if d.err != nil {
		return nil
	}
	if n < 0 {
		d.fail("negative length %d", n)
		return nil
	}
	if n > int64(len(d.b)-d.pos) {
		d.truncated()
		return nil
	}
	b := d.b[d.pos : d.pos+int(n)]
	d.pos += int(n)
	return b
}

func (d *Decoder) fixed(size int) []byte {
	if size > len(d.b)-d.pos {
		d.truncated()
		return nil
	}
	b := d.b[d.pos : d.pos+size]
	d.pos += size
	return b
}

func (d *Decoder) boolean() bool {
	if d.pos >= len(d.b) {
		d.truncated()
		return false
	}
	c := d.b[d.pos]
	d.pos++
	if c > 1 {
		d.fail("boolean byte %d", c)
	}
	return c == 1
}

func (d *Decoder) float32() float64 {
	if len(d.b)-d.pos < 4 {
		d.truncated()
		return 0
	}
	b := d.b[d.pos:]
	d.pos += 4
	return float64(math.Float32frombits(uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24))
}

func (d *Decoder) float64() float64 {
	if len(d.b)-d.pos < 8 {
		d.truncated()
		return 0
	}
	b := d.b[d.pos:]
	d.pos += 8
	return math.Float64frombits(uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56)
}

// branch reads a union's branch index.
func (d *Decoder) branch(n *node) *node {
	i := d.long()
	if d.err != nil {
		return nil
	}
	if i < 0 || i >= int64(len(n.branches)) {
		d.fail("union branch %d of %d", i, len(n.branches))
		return nil
	}
	b := n.branches[i]
	if b.w == wFail {
		d.fail("union branch %d: %s", i, b.fail)
		return nil
	}
	return b
}

// enum reads an enum index and returns the reader's symbol.
func (d *Decoder) enum(n *node) string {
	i := d.long()
	if d.err != nil {
		return ""
	}
	if i < 0 || i >= int64(len(n.symbols)) {
		d.fail("enum index %d of %d", i, len(n.symbols))
		return ""
	}
	s := n.symbols[i]
	if s == "" {
		d.fail("enum symbol %d is not in the reader's enum (which has no default)", i)
	}
	return s
}

// blockCount reads the item count of an array or map block; itemMin is
// the fewest bytes one item takes. 0 ends the array or map. A block that
// states its size in bytes (a negative count) returns where it must end,
// for endBlock to check; others return end -1.
func (d *Decoder) blockCount(itemMin int) (c int64, end int) {
	c, end = d.long(), -1
	if c < 0 {
		c = -c
		size := d.long()
		if c < 0 {
			d.fail("bad block count")
			return 0, -1
		}
		if d.err == nil && (size < 0 || size > int64(len(d.b)-d.pos)) {
			d.fail("block size %d at byte %d, %d bytes left", size, d.pos, len(d.b)-d.pos)
		}
		end = d.pos + int(size)
	}
	if d.err != nil {
		return 0, -1
	}
	if itemMin > 0 {
		if c > int64((len(d.b)-d.pos)/itemMin) {
			d.truncated()
			return 0, -1
		}
	} else if !d.emptyItems(c) {
		return 0, -1
	}
	return c, end
}

// endBlock checks that a block with a stated size ended where it said.
// The items are read, not jumped over, even when skipped: skipped values
// are checked as decoded ones are (see skip).
func (d *Decoder) endBlock(end int) {
	if end >= 0 && d.err == nil && d.pos != end {
		d.fail("a block that says it ends at byte %d ends at byte %d", end, d.pos)
	}
}

// emptyItems counts c more items of no size in the record and reports
// whether they stay within maxEmptyItems (else d fails).
func (d *Decoder) emptyItems(c int64) bool {
	if c > int64(maxEmptyItems-d.empty) {
		d.fail("more than %d array or map items of no size in the record", maxEmptyItems)
		return false
	}
	d.empty += int(c)
	return true
}

// value reads one value of n as a row value; records, arrays and maps
// become JSON.
func (d *Decoder) value(n *node) row.Value {
	switch n.w {
	case wNull:
		return row.Null()
	case wBool:
		return row.Bool(d.boolean())
	case wInt:
		return d.intOut(n, d.int())
	case wLong:
		return d.intOut(n, d.long())
	case wFloat:
		return row.Float(d.float32())
	case wDouble:
		return row.Float(d.float64())
	case wString, wBytes:
		return d.bytesOut(n, d.bytes())
	case wFixed:
		return d.bytesOut(n, d.fixed(n.size))
	case wEnum:
		return row.String(d.enum(n))
	case wUnion:
		d.depth++
		if d.depth > maxDepth {
			d.fail("nested deeper than %d", maxDepth)
			return row.Null()
		}
		b := d.branch(n)
		if b == nil {
			return row.Null()
		}
		v := d.value(b)
		d.depth--
		return v
	case wFail:
		d.fail("%s", n.fail)
		return row.Null()
	}
	d.scratch = d.json(n, d.scratch[:0])
	if d.err != nil {
		return row.Null()
	}
	return row.JSON(d.arena.String(d.scratch))
}

func (d *Decoder) intOut(n *node, i int64) row.Value {
	switch n.o {
	case oFloat:
		return row.Float(float64(i))
	case oTsMillis:
		return row.Timestamp(i)
	case oTsMicros:
		return row.Timestamp(floorDiv(i, 1000))
	case oTsNanos:
		return row.Timestamp(floorDiv(i, 1_000_000))
	case oDate:
		return row.Timestamp(i * 86_400_000)
	}
	return row.Int(i)
}

// floorDiv returns i/d rounded towards negative infinity (d > 0): a time
// before the epoch falls in the millisecond it is part of.
func floorDiv(i, d int64) int64 {
	q := i / d
	if i%d < 0 {
		q--
	}
	return q
}

func (d *Decoder) bytesOut(n *node, b []byte) row.Value {
	if d.err != nil {
		return row.Null()
	}
	switch n.o {
	case oUUID:
		if len(b) == 16 {
			d.num = appendUUID(d.num[:0], b)
			return row.String(d.arena.String(d.num))
		}
	case oDecimal:
		return row.Float(d.decimalFloat(b, n.scale))
	case oDecimalString:
		d.num = d.decimalText(d.num[:0], b, n.scale)
		return row.String(d.arena.String(d.num))
	}
	return row.String(d.arena.String(b))
}

// unscaled sets d.big to the two's-complement big-endian integer b and
// reports whether it fits an int64 (then returned).
func (d *Decoder) unscaled(b []byte) (int64, bool) {
	if len(b) <= 8 {
		var v int64
		if len(b) > 0 && b[0]&0x80 != 0 {
			v = -1
		}
		for _, c := range b {
			v = v<<8 | int64(c)
		}
		return v, true
	}
	d.big.SetBytes(b)
	if b[0]&0x80 != 0 {
		// Negative: subtract 2^(8·len).
		var m big.Int
		m.Lsh(big.NewInt(1), uint(8*len(b)))
		d.big.Sub(&d.big, &m)
	}
	return 0, false
}

func (d *Decoder) decimalFloat(b []byte, scale int) float64 {
	if v, ok := d.unscaled(b); ok {
		if scale == 0 {
			return float64(v)
		}
		// Parse the exact decimal text: correctly rounded.
		d.num = appendDecimal(d.num[:0], strconv.AppendInt(d.digits[:0], v, 10), scale)
	} else {
		d.num = appendDecimal(d.num[:0], d.big.Append(d.digits[:0], 10), scale)
	}
	f, _ := strconv.ParseFloat(unsafeString(d.num), 64)
	return f
}

func (d *Decoder) decimalText(dst, b []byte, scale int) []byte {
	if v, ok := d.unscaled(b); ok {
		d.digits = strconv.AppendInt(d.digits[:0], v, 10)
	} else {
		d.digits = d.big.Append(d.digits[:0], 10)
	}
	return appendDecimal(dst, d.digits, scale)
}

// appendDecimal appends the integer text digits (optionally signed)
// divided by 10^scale.
func appendDecimal(dst, digits []byte, scale int) []byte {
	if scale <= 0 {
		return append(dst, digits...)
	}
	if len(digits) > 0 && digits[0] == '-' {
		dst = append(dst, '-')
		digits = digits[1:]
	}
	if len(digits) <= scale {
		dst = append(dst, '0', '.')
		for range scale - len(digits) {
			dst = append(dst, '0')
		}
		return append(dst, digits...)
	}
	dst = append(dst, digits[:len(digits)-scale]...)
	dst = append(dst, '.')
	return append(dst, digits[len(digits)-scale:]...)
}

// json appends one value of n as JSON.
func (d *Decoder) json(n *node, dst []byte) []byte {
	if d.err != nil {
		return dst
	}
	switch n.w {
	case wNull:
		return append(dst, "null"...)
	case wString, wBytes:
		b := d.bytes()
		if n.o == oString {
			return row.AppendQuoted(dst, unsafeString(b))
		}
		return d.bytesOut(n, b).AppendJSON(dst)
	case wEnum:
		return row.AppendQuoted(dst, d.enum(n))
	case wUnion, wArray, wMap, wRecord:
		d.depth++
		if d.depth > maxDepth {
			d.fail("nested deeper than %d", maxDepth)
			return dst
		}
		dst = d.jsonComplex(n, dst)
		d.depth--
		return dst
	}
	return d.value(n).AppendJSON(dst)
}

func (d *Decoder) jsonComplex(n *node, dst []byte) []byte {
	switch n.w {
	case wUnion:
		if b := d.branch(n); b != nil {
			return d.json(b, dst)
		}
		return dst
	case wArray:
		dst = append(dst, '[')
		first := true
		for {
			c, end := d.blockCount(n.items.min)
			if c == 0 || d.err != nil {
				break
			}
			for ; c > 0 && d.err == nil; c-- {
				if !first {
					dst = append(dst, ',')
				}
				first = false
				dst = d.json(n.items, dst)
			}
			d.endBlock(end)
		}
		return append(dst, ']')
	case wMap:
		dst = append(dst, '{')
		first := true
		for {
			c, end := d.blockCount(n.items.min + 1)
			if c == 0 || d.err != nil {
				break
			}
			for ; c > 0 && d.err == nil; c-- {
				if !first {
					dst = append(dst, ',')
				}
				first = false
				dst = row.AppendQuoted(dst, unsafeString(d.bytes()))
				dst = append(dst, ':')
				dst = d.json(n.items, dst)
			}
			d.endBlock(end)
		}
		return append(dst, '}')
	}
	// record
	dst = append(dst, '{')
	first := true
	for i := range n.fields {
		f := &n.fields[i]
		if f.skip {
			d.skip(f.n)
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, f.key...)
		dst = d.json(f.n, dst)
	}
	if len(n.defaults) > 0 {
		if !first {
			dst = append(dst, ',')
		}
		dst = append(dst, n.defaults...)
	}
	return append(dst, '}')
}

// skip reads past one value of n.
func (d *Decoder) skip(n *node) {
	if d.err != nil {
		return
	}
	switch n.w {
	case wNull:
	// Skipped values are checked as decoded ones are: skipped fields
	// may be copied (Options.RawRest), and a record is bad or not
	// whichever fields a pipeline names.
	case wBool:
		d.boolean()
	case wInt:
		d.int()
	case wLong:
		d.long()
	case wEnum:
		d.enum(n)
	case wFloat:
		d.fixed(4)
	case wDouble:
		d.fixed(8)
	case wString, wBytes:
		d.bytes()
	case wFixed:
		d.fixed(n.size)
	case wUnion:
		i := d.long()
		if d.err == nil && (i < 0 || i >= int64(len(n.branches))) {
			d.fail("union branch %d of %d", i, len(n.branches))
			return
		}
		if d.err != nil {
			return
		}
		d.depth++
		if d.depth > maxDepth {
			d.fail("nested deeper than %d", maxDepth)
			return
		}
		d.skip(n.branches[i])
		d.depth--
	case wArray, wMap:
		itemMin := n.items.min
		if n.w == wMap {
			itemMin++
		}
		d.depth++
		if d.depth > maxDepth {
			d.fail("nested deeper than %d", maxDepth)
			return
		}
		for d.err == nil {
			c, end := d.blockCount(itemMin)
			if c == 0 || d.err != nil {
				break
			}
			for ; c > 0 && d.err == nil; c-- {
				if n.w == wMap {
					d.bytes()
				}
				d.skip(n.items)
			}
			d.endBlock(end)
		}
		d.depth--
	case wRecord:
		d.depth++
		if d.depth > maxDepth {
			d.fail("nested deeper than %d", maxDepth)
			return
		}
		for i := range n.fields {
			d.skip(n.fields[i].n)
		}
		d.depth--
	case wFail:
		d.fail("%s", n.fail)
	}
}

func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}
