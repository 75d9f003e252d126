package avro

import (
	"fmt"
	"sync"

	havro "github.com/hamba/avro/v2"

	"github.com/sluicehq/sluice/row"
)

// Rows decoded with Options.RawRest carry the reader's fields that no step
// names in Row.Rest, in the reader schema's binary encoding: a pipeline
// that only filters copies them from input to output without decoding
// them into values. This file holds the two consumers of such a rest: an
// encoder that writes them back as they are, and a converter to JSON
// members for the other sinks.

// NewRestEncoder returns an encoder of rows of rs in s's encoding whose
// Row.Rest holds the fields of s that rs lacks, in s's binary encoding and
// field order: rows decoded with Options.RawRest and reader schema s into
// rows of rs. Those fields are copied from Row.Rest; the others are
// encoded from the row's values as NewEncoder's are.
func NewRestEncoder(s *Schema, rs *row.Schema) (*Encoder, error) {
	e := &Encoder{schema: s, rest: true}
	memo := map[havro.Schema]*enode{}
	c := &compiler{memo: map[[2]havro.Schema]*node{}}
	for _, f := range s.rec.Fields() {
		n, err := compileEnc(f.Type(), memo)
		if err != nil {
			return nil, fmt.Errorf("%w: field %s: %w", ErrSchema, f.Name(), err)
		}
		ef := encField{name: f.Name(), pos: -2, n: n}
		if p, ok := rs.Index(f.Name()); ok {
			ef.pos = p
		} else if ef.rest, err = c.resolve(f.Type(), f.Type()); err != nil {
			return nil, fmt.Errorf("%w: field %s: %w", ErrSchema, f.Name(), err)
		}
		e.fields = append(e.fields, ef)
	}
	c.setMinSizes()
	return e, nil
}

// CheckRest reports whether rows of target decoded with reader schema
// reader and Options.RawRest can be written by NewRestEncoder(s, rs): the
// fields of s that rs lacks must be those of reader that target lacks, in
// the same order and of the same types.
func CheckRest(reader *Schema, target *row.Schema, s *Schema, rs *row.Schema) error {
	var in, out []*havro.Field
	for _, f := range reader.rec.Fields() {
		if _, ok := target.Index(f.Name()); !ok {
			in = append(in, f)
		}
	}
	for _, f := range s.rec.Fields() {
		if _, ok := rs.Index(f.Name()); !ok {
			out = append(out, f)
		}
	}
	if len(in) != len(out) {
		return fmt.Errorf("%w: %d fields pass through from the input, but the output schema takes %d from them", ErrSchema, len(in), len(out))
	}
	for i := range in {
		if in[i].Name() != out[i].Name() || in[i].Type().Fingerprint() != out[i].Type().Fingerprint() {
			return fmt.Errorf("%w: input field %s passes through, but the output schema's field there is %s of another type or name", ErrSchema, in[i].Name(), out[i].Name())
		}
	}
	return nil
}

// skipOne returns the end of the value of n that starts at b[at].
func skipOne(n *node, b []byte, at int) (int, error) {
	var d Decoder
	d.start(b)
	d.pos = at
	d.skip(n)
	return d.pos, d.err
}

// RestJSON turns a Row.Rest written with Options.RawRest into JSON members
// (`"a":1,"b":"x"`, no braces), the form of Row.Rest other encoders read.
// It is safe for concurrent use.
type RestJSON struct {
	fields []restField
	pool   sync.Pool // *Decoder
}

type restField struct {
	key []byte // `"name":`
	n   *node
}

// NewRestJSON returns the converter of the rests of rows of target decoded
// with reader schema reader (the options' DecimalAsString applies).
func NewRestJSON(reader *Schema, target *row.Schema, opts Options) (*RestJSON, error) {
	c := &compiler{memo: map[[2]havro.Schema]*node{}, opts: opts}
	rj := &RestJSON{}
	for _, f := range reader.rec.Fields() {
		if _, ok := target.Index(f.Name()); ok {
			continue
		}
		n, err := c.resolve(f.Type(), f.Type())
		if err != nil {
			return nil, fmt.Errorf("%w: field %s: %w", ErrSchema, f.Name(), err)
		}
		rj.fields = append(rj.fields, restField{key: append(row.AppendQuoted(nil, f.Name()), ':'), n: n})
	}
	c.setMinSizes()
	return rj, nil
}

// AppendMembers appends rest's fields to dst as JSON members.
func (rj *RestJSON) AppendMembers(dst, rest []byte) ([]byte, error) {
	d, _ := rj.pool.Get().(*Decoder)
	if d == nil {
		d = new(Decoder)
	}
	defer rj.pool.Put(d)
	d.start(rest)
	for i, f := range rj.fields {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, f.key...)
		dst = d.json(f.n, dst)
	}
	err := d.err
	if err == nil && d.pos != len(rest) {
		err = fmt.Errorf("%w: %d bytes left in the record's rest", ErrData, len(rest)-d.pos)
	}
	d.b = nil
	return dst, err
}
